//! `netkit iface` against interfaces the test builds itself in a network namespace, compared
//! with what `ip -j addr` says about the same namespace.

use std::collections::BTreeSet;

use netkit::report::Interface;
use serde_json::Value;

use crate::harness::{privileged, text, Netns};

/// A namespace with a veth pair: `nk0` up with v4 and v6 addresses, `nk1` down, lo down.
fn lab(tag: &str) -> Netns {
    let ns = Netns::new(tag);
    ns.ip(&[
        "link", "add", "nk0", "mtu", "1400", "type", "veth", "peer", "name", "nk1",
    ]);
    ns.ip(&["addr", "add", "198.18.0.1/24", "dev", "nk0"]);
    ns.ip(&["addr", "add", "198.18.7.9/15", "dev", "nk0"]);
    ns.ip(&["addr", "add", "2001:db8::1/64", "dev", "nk0", "nodad"]);
    ns.ip(&["addr", "add", "2001:db8:1::5/120", "dev", "nk0", "nodad"]);
    ns.ip(&["link", "set", "nk0", "up"]);
    ns
}

fn netkit_json(ns: &Netns, args: &[&str]) -> Vec<Value> {
    let out = ns.netkit().arg("--json").args(args).output().expect("run");
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 0, "{args:?}: {stderr}");
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn ip_json(ns: &Netns) -> Vec<Value> {
    serde_json::from_str(&ns.ip(&["-j", "addr"])).expect("ip -j")
}

fn strings(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(String::from))
        .collect()
}

#[test]
fn list_matches_ip_addr_in_a_namespace() {
    if !privileged("iface list") {
        return;
    }
    let ns = lab("list");
    let ours = netkit_json(&ns, &["iface"]);
    let theirs = ip_json(&ns);
    assert_eq!(ours.len(), theirs.len(), "ours {ours:?}\ntheirs {theirs:?}");
    for ip in &theirs {
        let name = ip["ifname"].as_str().expect("ifname");
        let mine = ours
            .iter()
            .find(|o| o["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        compare(mine, ip);
    }
}

fn compare(mine: &Value, ip: &Value) {
    let name = &ip["ifname"];
    assert_eq!(mine["type"], "iface");
    assert_eq!(mine["index"], ip["ifindex"], "{name}");
    assert_eq!(mine["mtu"], ip["mtu"], "{name}");
    assert_eq!(mine["mac"], ip["address"], "{name}");
    assert_eq!(
        mine["operstate"].as_str().map(str::to_uppercase).as_deref(),
        ip["operstate"].as_str(),
        "{name}"
    );
    // ip shows NO-CARRIER and M-DOWN as pseudo flags and never RUNNING.
    let mut our_flags = strings(&mine["flags"]);
    our_flags.remove("RUNNING");
    let mut ip_flags = strings(&ip["flags"]);
    ip_flags.remove("NO-CARRIER");
    ip_flags.remove("M-DOWN");
    assert_eq!(our_flags, ip_flags, "{name}");
    let our_addrs: BTreeSet<(String, String, u64)> = mine["addrs"]
        .as_array()
        .expect("addrs")
        .iter()
        .map(|a| {
            (
                a["family"].as_str().expect("family").into(),
                a["addr"].as_str().expect("addr").into(),
                a["prefix"].as_u64().expect("prefix"),
            )
        })
        .collect();
    let ip_addrs: BTreeSet<(String, String, u64)> = ip["addr_info"]
        .as_array()
        .expect("addr_info")
        .iter()
        .map(|a| {
            (
                a["family"].as_str().expect("family").into(),
                a["local"].as_str().expect("local").into(),
                a["prefixlen"].as_u64().expect("prefixlen"),
            )
        })
        .collect();
    assert_eq!(our_addrs, ip_addrs, "{name}");
}

#[test]
fn down_interfaces_without_addresses_are_listed() {
    if !privileged("iface down") {
        return;
    }
    let ns = lab("down");
    let all: Vec<Interface> = netkit_json(&ns, &["iface"])
        .into_iter()
        .map(|v| serde_json::from_value(v).expect("Interface"))
        .collect();
    let nk1 = all.iter().find(|i| i.name == "nk1").expect("nk1 listed");
    assert!(!nk1.up && !nk1.running && nk1.addrs.is_empty());
    assert_eq!(nk1.operstate, "down");
    let lo = all.iter().find(|i| i.name == "lo").expect("lo listed");
    assert!(!lo.up);
}

#[test]
fn addr_prints_only_addresses_by_family() {
    if !privileged("iface addr") {
        return;
    }
    let ns = lab("addr");
    let lines = |args: &[&str]| {
        let out = ns.netkit().args(args).output().expect("run");
        let (code, stdout, stderr) = text(&out);
        assert_eq!(code, 0, "{stderr}");
        stdout.lines().map(String::from).collect::<BTreeSet<_>>()
    };
    let v4: BTreeSet<String> = ["198.18.0.1", "198.18.7.9"].map(String::from).into();
    let v6: BTreeSet<String> = ["2001:db8::1", "2001:db8:1::5"].map(String::from).into();
    assert_eq!(lines(&["iface", "addr", "nk0", "-4"]), v4);
    assert_eq!(
        lines(&["iface", "addr", "nk0", "-6"])
            .intersection(&v6)
            .count(),
        2
    );
    assert!(lines(&["iface", "addr", "nk0"]).is_superset(&v4));
    assert!(lines(&["iface", "addr", "nk1"]).is_empty());
    let json = netkit_json(&ns, &["iface", "addr", "nk0", "-4"]);
    assert!(json
        .iter()
        .all(|r| r["type"] == "addr" && r["iface"] == "nk0" && r["family"] == "inet"));
    assert!(json
        .iter()
        .any(|r| r["addr"] == "198.18.7.9" && r["prefix"] == 15));
}

#[test]
fn status_needs_up_and_running() {
    if !privileged("iface status") {
        return;
    }
    let ns = lab("status");
    let status = |name: &str| {
        let out = ns
            .netkit()
            .args(["iface", "status", name])
            .output()
            .expect("run");
        let (code, stdout, _) = text(&out);
        (code, stdout.trim().to_string())
    };
    // Carrier follows `ip link set` a moment later: poll (bounded) until the state settles.
    let settles_to = |name: &str, want: (i32, &str)| {
        let mut got = status(name);
        for _ in 0..100 {
            if got == (want.0, want.1.to_string()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
            got = status(name);
        }
        assert_eq!(got, (want.0, want.1.to_string()), "{name}");
    };
    assert_eq!(status("nk0"), (1, "down".into()));
    assert_eq!(status("nk1"), (1, "down".into()));
    ns.ip(&["link", "set", "nk1", "up"]);
    settles_to("nk0", (0, "up"));
    settles_to("nk1", (0, "up"));
    ns.ip(&["link", "set", "nk0", "down"]);
    settles_to("nk0", (1, "down"));
}

#[test]
fn human_listing_reads_like_ip_addr() {
    if !privileged("iface human") {
        return;
    }
    let ns = lab("human");
    let out = ns
        .netkit()
        .args(["iface", "show", "nk0"])
        .output()
        .expect("run");
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(": nk0: <"), "{stdout}");
    assert!(stdout.contains("mtu 1400"), "{stdout}");
    assert!(stdout.contains("    inet 198.18.0.1/24"), "{stdout}");
    assert!(stdout.contains("    inet6 2001:db8::1/64"), "{stdout}");
    assert!(stdout.contains("    link "), "{stdout}");
}

mod detail;
mod watch;
