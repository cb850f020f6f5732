//! Test networks for `netkit ping` and the iputils runs it is compared with, built on the
//! harness's [`Netns`] (the lab's namespace primitive): a namespace with only loopback, two
//! namespaces joined by a veth pair (near 198.18.0.1 / 2001:db8::1, far .2 / ::2, nobody at
//! .3 / ::3), and near -- router -- far. (Impaired links, many hosts and far-side behaviours
//! come from the lab, `lab.rs`.) Helpers run netkit or iputils' `ping` inside a namespace and
//! read JSON Lines back.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{sh, text, Netns, Proc};

/// One end of a veth link: its namespace, device name and addresses (v4/24, v6/64).
pub struct End<'a> {
    pub ns: &'a Netns,
    pub dev: &'a str,
    pub v4: &'a str,
    pub v6: &'a str,
}

/// Joins two namespaces with a veth pair, addresses both ends and makes each end a static
/// neighbour of the other: neighbour discovery right after link-up loses its first
/// solicitation (the far end has not joined its solicited-node group yet) and retries only
/// after a second, so without this the first probes of a test would go unanswered.
pub fn link(a: End, b: End) {
    a.ns.veth(a.dev, b.ns, b.dev)
        .unwrap_or_else(|e| panic!("{e}"));
    for end in [&a, &b] {
        end.ns
            .ip(&["addr", "add", &format!("{}/24", end.v4), "dev", end.dev]);
        end.ns.ip(&[
            "addr",
            "add",
            &format!("{}/64", end.v6),
            "dev",
            end.dev,
            "nodad",
        ]);
        end.ns.ip(&["link", "set", end.dev, "up"]);
    }
    for (from, to) in [(&a, &b), (&b, &a)] {
        let mac = mac(to.ns, to.dev);
        for addr in [to.v4, to.v6] {
            from.ns
                .ip(&["neigh", "replace", addr, "lladdr", &mac, "dev", from.dev]);
        }
    }
}

pub fn mac(ns: &Netns, dev: &str) -> String {
    let brief = ns.ip(&["-br", "link", "show", dev]);
    let mac = brief.split_whitespace().nth(2).unwrap_or_default();
    assert_eq!(mac.len(), 17, "no MAC in {brief}");
    mac.to_string()
}

/// Near and far namespaces joined by a veth pair; the far end owns .2 and ::2, nobody owns
/// .3 and ::3.
pub fn two_hosts(tag: &str) -> (Netns, Netns) {
    let near = Netns::with_loopback(tag);
    let far = Netns::with_loopback(&format!("{tag}f"));
    link(
        End {
            ns: &near,
            dev: "nk0",
            v4: "198.18.0.1",
            v6: "2001:db8::1",
        },
        End {
            ns: &far,
            dev: "nk1",
            v4: "198.18.0.2",
            v6: "2001:db8::2",
        },
    );
    (near, far)
}

/// Near and far joined by a veth pair (near `nk0`, far `nk1`) with only their link-local
/// addresses, usable at once (no duplicate address detection, each end a static neighbour of
/// the other). Near also has a decoy link (a veth pair `nk8`/`nk9` of its own) with a host
/// route to far's address: what leaves without its zone goes there, and never arrives.
/// Returns both and far's address with the zone near reaches it through, `fe80::…%nk0`.
pub fn link_local_pair(tag: &str) -> (Netns, Netns, String) {
    let near = Netns::with_loopback(tag);
    let far = Netns::with_loopback(&format!("{tag}f"));
    for ns in [&near, &far] {
        for key in ["all", "default"] {
            sysctl(ns, &format!("net.ipv6.conf.{key}.accept_dad=0"));
        }
    }
    near.veth("nk0", &far, "nk1")
        .unwrap_or_else(|e| panic!("{e}"));
    near.ip(&["link", "set", "nk0", "up"]);
    far.ip(&["link", "set", "nk1", "up"]);
    let (near_ll, far_ll) = (link_local(&near, "nk0"), link_local(&far, "nk1"));
    for (ns, dev, addr, peer, peer_dev) in [
        (&near, "nk0", &far_ll, &far, "nk1"),
        (&far, "nk1", &near_ll, &near, "nk0"),
    ] {
        let mac = mac(peer, peer_dev);
        ns.ip(&["neigh", "replace", addr, "lladdr", &mac, "dev", dev]);
    }
    near.ip(&["link", "add", "nk8", "type", "veth", "peer", "name", "nk9"]);
    for dev in ["nk8", "nk9"] {
        near.ip(&["link", "set", dev, "up"]);
    }
    near.ip(&["-6", "route", "add", &format!("{far_ll}/128"), "dev", "nk8"]);
    (near, far, format!("{far_ll}%nk0"))
}

/// The link-local address of `dev` in `ns`, once the kernel has given it one (bounded wait).
fn link_local(ns: &Netns, dev: &str) -> String {
    for _ in 0..100 {
        let out = ns.ip(&["-6", "-o", "addr", "show", "dev", dev, "scope", "link"]);
        let addr = out.split_whitespace().skip_while(|w| *w != "inet6").nth(1);
        if let Some((addr, _)) = addr.and_then(|a| a.split_once('/')) {
            return addr.to_string();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no link-local address on {dev} in {}", ns.name);
}

/// [`routed`] with the router's far link narrowed to 1280 bytes (IPv6's minimum MTU): the
/// router answers bigger packets with Frag needed / Packet Too Big.
pub fn routed_narrow(tag: &str) -> [Netns; 3] {
    let [near, router, far] = routed(tag);
    router.ip(&["link", "set", "nk2", "mtu", "1280"]);
    far.ip(&["link", "set", "nk3", "mtu", "1280"]);
    [near, router, far]
}

/// near -- router -- far: the far host (198.18.1.2, 2001:db8:1::2) is two hops away.
pub fn routed(tag: &str) -> [Netns; 3] {
    let near = Netns::with_loopback(tag);
    let router = Netns::with_loopback(&format!("{tag}r"));
    let far = Netns::with_loopback(&format!("{tag}f"));
    link(
        End {
            ns: &near,
            dev: "nk0",
            v4: "198.18.0.1",
            v6: "2001:db8::1",
        },
        End {
            ns: &router,
            dev: "nk1",
            v4: "198.18.0.2",
            v6: "2001:db8::2",
        },
    );
    link(
        End {
            ns: &router,
            dev: "nk2",
            v4: "198.18.1.1",
            v6: "2001:db8:1::1",
        },
        End {
            ns: &far,
            dev: "nk3",
            v4: "198.18.1.2",
            v6: "2001:db8:1::2",
        },
    );
    let forward = ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"];
    for sysctl in forward {
        sh(&["ip", "netns", "exec", &router.name, "sysctl", "-qw", sysctl]);
    }
    for (ns, v4, v6) in [
        (&near, "198.18.0.2", "2001:db8::2"),
        (&far, "198.18.1.1", "2001:db8:1::1"),
    ] {
        ns.ip(&["route", "add", "default", "via", v4]);
        ns.ip(&["-6", "route", "add", "default", "via", v6]);
    }
    [near, router, far]
}

/// [`routed`] with a router that forwards 198.18.7.0/24 and 2001:db8:7::/48 and rejects them
/// (ICMP admin prohibited), without limits on its ICMP errors.
pub fn routed_rejecting(tag: &str) -> [Netns; 3] {
    let [near, router, far] = routed(tag);
    router.ip(&["route", "add", "198.18.7.0/24", "via", "198.18.1.2"]);
    router.ip(&[
        "-6",
        "route",
        "add",
        "2001:db8:7::/48",
        "via",
        "2001:db8:1::2",
    ]);
    for (tables, prefix, kind) in [
        ("iptables", "198.18.7.0/24", "icmp-admin-prohibited"),
        ("ip6tables", "2001:db8:7::/48", "icmp6-adm-prohibited"),
    ] {
        let rule = [
            "-I",
            "FORWARD",
            "-d",
            prefix,
            "-j",
            "REJECT",
            "--reject-with",
            kind,
        ];
        let netns = ["ip", "netns", "exec", router.name.as_str(), tables];
        sh(&[&netns[..], &rule[..]].concat());
    }
    sysctl(&router, "net.ipv4.icmp_ratelimit=0");
    sysctl(&router, "net.ipv6.icmp.ratelimit=0");
    [near, router, far]
}

pub fn ping_in(ns: &Netns, args: &[&str]) -> (i32, String, String) {
    text(&ns.netkit().arg("ping").args(args).output().expect("run"))
}

pub fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

pub fn of_type<T: serde::de::DeserializeOwned>(lines: &[Value], kind: &str) -> Vec<T> {
    lines
        .iter()
        .filter(|v| v["type"] == kind)
        .map(|v| serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}")))
        .collect()
}

/// iputils' `ping ARGS` inside `ns`.
pub fn iputils_in(ns: &Netns, args: &[&str]) -> (i32, String, String) {
    text(&iputils_cmd(ns, args).output().expect("run iputils ping"))
}

fn iputils_cmd(ns: &Netns, args: &[&str]) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.name, "ping"]).args(args);
    cmd
}

/// netkit's and iputils' `ping ARGS` run side by side (at the same time) inside `ns`, so that
/// both see the same network; returns (netkit, iputils).
pub fn both_in(ns: &Netns, args: &[&str]) -> ((i32, String, String), (i32, String, String)) {
    let mut netkit = ns.netkit();
    netkit.arg("ping").args(args);
    side_by_side(netkit, iputils_cmd(ns, args))
}

/// Runs two commands at the same time and returns their (status, stdout, stderr); each may run
/// for up to two minutes (pings end by their own `-c`, `-w` and `-W`).
pub fn side_by_side(a: Command, b: Command) -> ((i32, String, String), (i32, String, String)) {
    let (a, b) = (Proc::spawn(a), Proc::spawn(b));
    let limit = Duration::from_secs(120);
    (a.finish_within(limit), b.finish_within(limit))
}

/// The line of `out` that starts with `start`, or a panic that shows `out`.
pub fn line_starting<'a>(out: &'a str, start: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting with {start:?} in\n{out}"))
}

/// The statistics line (`N packets transmitted, ...`) of an iputils-style summary.
pub fn stats_line(out: &str) -> &str {
    out.lines()
        .find(|l| l.contains(" packets transmitted, "))
        .unwrap_or_else(|| panic!("no statistics line in\n{out}"))
}

/// The statistics line without its `, time Nms` end, which differs from run to run.
pub fn counts(out: &str) -> String {
    let line = stats_line(out);
    line.split(", time ").next().unwrap_or(line).to_string()
}

/// Asserts that netkit ended as iputils did on the same scenario: the same exit status and
/// the same statistics line (`counts`).
pub fn same_counts(code: i32, out: &str, err: &str, i_code: i32, i_out: &str) {
    assert_eq!(
        (code, counts(out)),
        (i_code, counts(i_out)),
        "netkit: {out}{err}\niputils: {i_out}"
    );
}

/// Asserts that iputils ended with exit status `want_code` and the statistics line `want`:
/// the scenario is the one the test meant to build.
pub fn iputils_counts(i_code: i32, i_out: &str, i_err: &str, want_code: i32, want: &str) {
    assert_eq!(
        (i_code, counts(i_out).as_str()),
        (want_code, want),
        "iputils: {i_out}{i_err}"
    );
}

/// netkit's and iputils' `ping ARGS` side by side inside `ns` ([`both_in`]): asserts that
/// iputils ended with `want_code` and the counts `want` ([`iputils_counts`]: the scenario is
/// the one meant), then that netkit ended as iputils did ([`same_counts`]); returns netkit's
/// and iputils' standard output.
pub fn both_counted(ns: &Netns, args: &[&str], want_code: i32, want: &str) -> (String, String) {
    let ((code, out, err), (i_code, i_out, i_err)) = both_in(ns, args);
    iputils_counts(i_code, &i_out, &i_err, want_code, want);
    same_counts(code, &out, &err, i_code, &i_out);
    (out, i_out)
}

/// Runs `sysctl -qw SETTING` inside `ns`.
pub fn sysctl(ns: &Netns, setting: &str) {
    sh(&["ip", "netns", "exec", &ns.name, "sysctl", "-qw", setting]);
}

/// Runs `iptables ARGS` inside `ns`.
pub fn iptables(ns: &Netns, args: &[&str]) {
    let mut full = vec!["ip", "netns", "exec", &ns.name, "iptables"];
    full.extend_from_slice(args);
    sh(&full);
}
