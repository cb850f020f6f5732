//! Regressions of `netkit iface`.

use std::process::Command;

use serde_json::Value;

use crate::harness::{privileged, text, Netns};

/// A namespace with a veth pair `v0`/`v1`, `v0` up at mtu 1400 with a labelled address
/// (`ip addr add ... label v0:1`) and a plain one.
fn labelled(tag: &str) -> Netns {
    let ns = Netns::new(tag);
    ns.ip(&[
        "link", "add", "v0", "mtu", "1400", "type", "veth", "peer", "name", "v1",
    ]);
    ns.ip(&["addr", "add", "198.18.0.1/24", "dev", "v0", "label", "v0:1"]);
    ns.ip(&["addr", "add", "198.18.1.1/24", "dev", "v0"]);
    ns.ip(&["link", "set", "v0", "up"]);
    ns
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

/// `getifaddrs` names IPv4 entries by their label: `v0:1` came out as an interface of its own
/// (v0's index, no MTU) and its address was missing from `v0`.
#[test]
fn label_address_is_not_a_fake_interface() {
    if !privileged("iface label") {
        return;
    }
    let ns = labelled("iface-label");
    let out = ns.netkit().args(["--json", "iface"]).output().expect("run");
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 0, "{stderr}");
    let ours = json_lines(&stdout);
    let names: Vec<&str> = ours.iter().filter_map(|i| i["name"].as_str()).collect();
    let ip: Vec<Value> = serde_json::from_str(&ns.ip(&["-j", "link"])).expect("ip -j link");
    let ip_names: Vec<&str> = ip.iter().filter_map(|l| l["ifname"].as_str()).collect();
    assert_eq!(names, ip_names, "{stdout}");
    let v0 = ours.iter().find(|i| i["name"] == "v0").expect("v0");
    let addrs: Vec<&str> = v0["addrs"]
        .as_array()
        .expect("addrs")
        .iter()
        .filter_map(|a| a["addr"].as_str())
        .collect();
    assert!(addrs.contains(&"198.18.0.1"), "{addrs:?}");
    let out = ns
        .netkit()
        .args(["iface", "addr", "v0", "-4"])
        .output()
        .expect("run");
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["198.18.0.1", "198.18.1.1"]
    );
}

/// `iface status v0:1` said `up`: an address label is not an interface.
#[test]
fn status_of_an_address_label_is_an_unknown_interface() {
    if !privileged("iface label status") {
        return;
    }
    let ns = labelled("iface-labelst");
    for view in ["status", "show", "addr"] {
        let out = ns
            .netkit()
            .args(["iface", view, "v0:1"])
            .output()
            .expect("run");
        let (code, stdout, stderr) = text(&out);
        assert_eq!(code, 2, "{view}: {stdout}{stderr}");
        assert_eq!(stderr, "netkit: v0:1: no such interface\n", "{view}");
        assert!(stdout.is_empty(), "{view}: {stdout}");
    }
}

/// `nsenter --net` enters the namespace without remounting /sys: MTU and operstate read from
/// `/sys/class/net` were the host's (or missing), not the namespace's.
#[test]
fn nsenter_net_reads_the_namespace_not_the_host_sysfs() {
    if !privileged("iface nsenter") {
        return;
    }
    let ns = labelled("iface-nsenter");
    let ip: Vec<Value> = serde_json::from_str(&ns.ip(&["-j", "link"])).expect("ip -j link");
    for name in ["v0", "v1", "lo"] {
        let out = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", ns.name))
            .args([
                env!("CARGO_BIN_EXE_netkit"),
                "--json",
                "iface",
                "show",
                name,
            ])
            .output()
            .expect("run nsenter");
        let (code, stdout, stderr) = text(&out);
        assert_eq!(code, 0, "{name}: {stderr}");
        let ours = &json_lines(&stdout)[0];
        let theirs = ip.iter().find(|l| l["ifname"] == name).expect("in ip");
        assert_eq!(ours["mtu"], theirs["mtu"], "{name}: {stdout}");
        assert_eq!(
            ours["operstate"].as_str().map(str::to_uppercase).as_deref(),
            theirs["operstate"].as_str(),
            "{name}: {stdout}"
        );
    }
}
