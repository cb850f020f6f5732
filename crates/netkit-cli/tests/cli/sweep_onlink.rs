//! `netkit sweep --method arp|ndp` on an Ethernet segment the tests build: a namespace `s`
//! (where netkit and the peers run) owning a bridge, and one namespace per host, each joined
//! to the bridge by a veth pair, with the MAC address the kernel gave it. Host .6 drops
//! ICMP echo requests (IPv4 and IPv6), host .7 drops every IPv4 packet and ICMPv6 echo, and
//! host .9 also claims .5 (an address conflict). arp-scan (IPv4) and nmap's neighbour
//! discovery (IPv6) are the oracles: the same live hosts, the same MAC addresses.

use std::collections::{BTreeMap, BTreeSet};

use netkit::report::sweep::{DuplicateRecord, HostRecord};
use serde_json::Value;

use crate::harness::{privileged, text, Netns};

/// The hosts by last byte (IPv4 198.18.0.N, IPv6 2001:db8::N).
const HOSTS: [u8; 4] = [5, 6, 7, 9];
/// The swept ranges: the sweeper's own address (.1), the hosts and silent addresses.
const V4_RANGE: &str = "198.18.0.1-12";
const V6_RANGE: &str = "2001:db8::1-c";

/// The segment: `s` with the bridge, the hosts and their MAC addresses (as `ip link` shows
/// them), `s`'s own on the bridge, removed on drop.
struct Segment {
    s: Netns,
    _hosts: Vec<Netns>,
    macs: BTreeMap<u8, String>,
    own_mac: String,
}

impl Segment {
    fn new(tag: &str) -> Segment {
        let s = Netns::new(tag);
        no_dad(&s);
        s.ip(&["link", "add", "br0", "type", "bridge"]);
        s.ip(&["addr", "add", "198.18.0.1/24", "dev", "br0"]);
        s.ip(&["addr", "add", "2001:db8::1/64", "dev", "br0", "nodad"]);
        s.ip(&["link", "set", "br0", "up"]);
        let mut hosts = Vec::new();
        let mut macs = BTreeMap::new();
        for n in HOSTS {
            let h = Netns::new(tag);
            no_dad(&h);
            let port = format!("p{n}");
            // Made here and moved (see sweep.rs: a veth made across namespaces at once loses
            // its first neighbour solicitation).
            s.ip(&["link", "add", &port, "type", "veth", "peer", "name", "eth0"]);
            s.ip(&["link", "set", "eth0", "netns", &h.name]);
            s.ip(&["link", "set", &port, "master", "br0", "up"]);
            h.ip(&["addr", "add", &format!("198.18.0.{n}/24"), "dev", "eth0"]);
            h.ip(&[
                "addr",
                "add",
                &format!("2001:db8::{n:x}/64"),
                "dev",
                "eth0",
                "nodad",
            ]);
            h.ip(&["link", "set", "eth0", "up"]);
            macs.insert(n, mac_of(&h, "eth0"));
            hosts.push(h);
        }
        let rules = |policy: &str, icmp: &str| {
            format!("*filter\n:INPUT {policy} [0:0]\n-A INPUT -p {icmp} -j DROP\nCOMMIT\n")
        };
        let (h6, h7, h9) = (&hosts[1], &hosts[2], &hosts[3]);
        let echo4 = "icmp --icmp-type echo-request";
        let echo6 = "icmpv6 --icmpv6-type echo-request";
        h6.restore(false, &rules("ACCEPT", echo4))
            .unwrap_or_else(|e| panic!("{e}"));
        h6.restore(true, &rules("ACCEPT", echo6))
            .unwrap_or_else(|e| panic!("{e}"));
        h7.restore(false, &rules("DROP", echo4))
            .unwrap_or_else(|e| panic!("{e}"));
        h7.restore(true, &rules("ACCEPT", echo6))
            .unwrap_or_else(|e| panic!("{e}"));
        h9.ip(&["addr", "add", "198.18.0.5/32", "dev", "eth0"]);
        h9.ip(&["addr", "add", "2001:db8::5/128", "dev", "eth0", "nodad"]);
        let own_mac = mac_of(&s, "br0");
        Segment {
            s,
            _hosts: hosts,
            macs,
            own_mac,
        }
    }

    /// Runs `netkit ARGS` in `s`.
    fn netkit(&self, args: &[&str]) -> (i32, String, String) {
        text(&self.s.netkit().args(args).output().expect("run netkit"))
    }

    /// Every (address, MAC) pair the segment has for `prefix` (`198.18.0.` or `2001:db8::`):
    /// each host's own, .9's MAC for .5, and the sweeper's own address (.1) with its MAC (no
    /// host answers itself, but the address is in use: nmap reports it up).
    fn truth(&self, prefix: &str) -> BTreeSet<(String, String)> {
        let v6 = prefix.contains(':');
        let addr = |n: u8| match v6 {
            true => format!("{prefix}{n:x}"),
            false => format!("{prefix}{n}"),
        };
        let mut pairs: BTreeSet<_> = self
            .macs
            .iter()
            .map(|(n, m)| (addr(*n), m.clone()))
            .collect();
        pairs.insert((addr(5), self.macs[&9].clone()));
        pairs.insert((addr(1), self.own_mac.clone()));
        pairs
    }
}

/// Addresses usable at once: no duplicate address detection in `ns`.
pub fn no_dad(ns: &Netns) {
    let keys = ["all", "default"].map(|k| format!("net.ipv6.conf.{k}.accept_dad=0"));
    ns.sysctl(&keys).unwrap_or_else(|e| panic!("{e}"));
}

/// The MAC address of `dev` in `ns`, as `ip -o link` prints it.
pub fn mac_of(ns: &Netns, dev: &str) -> String {
    let link = ns.ip(&["-o", "link", "show", dev]);
    let words: Vec<&str> = link.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "link/ether").expect(&link);
    words[at + 1].to_string()
}

fn records(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect(line))
        .collect()
}

fn of_type<T: serde::de::DeserializeOwned>(records: &[Value], kind: &str) -> Vec<T> {
    records
        .iter()
        .filter(|r| r["type"] == kind)
        .map(|r| serde_json::from_value(r.clone()).expect(kind))
        .collect()
}

/// A sweep's (address, MAC) pairs: the live hosts' and the duplicates'.
fn pairs(stdout: &str) -> BTreeSet<(String, String)> {
    let records = records(stdout);
    let hosts: Vec<HostRecord> = of_type(&records, "host");
    let dups: Vec<DuplicateRecord> = of_type(&records, "duplicate");
    let live = hosts.iter().filter(|h| h.alive);
    let own = live.map(|h| (h.addr.to_string(), h.mac.clone().expect("a mac")));
    own.chain(dups.iter().map(|d| (d.addr.to_string(), d.mac.clone())))
        .collect()
}

fn addrs(pairs: &BTreeSet<(String, String)>) -> BTreeSet<String> {
    pairs.iter().map(|(addr, _)| addr.clone()).collect()
}

/// The live addresses of an ICMP sweep.
fn icmp_alive(segment: &Segment, range: &str) -> BTreeSet<String> {
    let args = [
        "--json",
        "sweep",
        range,
        "--retries",
        "1",
        "--timeout",
        "300ms",
    ];
    let (_, stdout, stderr) = segment.netkit(&args);
    let hosts: Vec<HostRecord> = of_type(&records(&stdout), "host");
    assert!(!hosts.is_empty(), "{stderr}");
    hosts
        .iter()
        .filter(|h| h.alive)
        .map(|h| h.addr.to_string())
        .collect()
}

#[test]
fn arp_finds_hosts_that_drop_icmp_with_the_macs_arp_scan_sees() {
    if !privileged("sweep arp") {
        return;
    }
    let segment = Segment::new("arp");
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("hosts.xml");
    let xml_arg = xml.to_str().unwrap();
    let args = [
        "--json", "sweep", V4_RANGE, "--method", "arp", "-oX", xml_arg,
    ];
    let (code, stdout, stderr) = segment.netkit(&args);
    assert_eq!(code, 1, "silent addresses: exit 1; {stderr}");
    let found = pairs(&stdout);
    assert_eq!(found, segment.truth("198.18.0."), "{stdout}");
    let summary = &of_type::<Value>(&records(&stdout), "summary")[0];
    assert_eq!(
        (summary["alive"].as_u64(), summary["dead"].as_u64()),
        (Some(5), Some(7))
    );

    // The oracle: arp-scan on the same segment, the same pairs (.5's two answers included),
    // but for the sweeper's own address, which arp-scan never lists (nothing answers it).
    let mut arp_scan = segment.s.command("arp-scan");
    arp_scan.args(["-I", "br0", "--plain", "--quiet", "198.18.0.1-198.18.0.12"]);
    let out = text(&arp_scan.output().expect("run arp-scan"));
    let arp_scan: BTreeSet<(String, String)> = out
        .1
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(addr, mac)| (addr.to_string(), mac.trim().to_string()))
        .collect();
    let others: BTreeSet<_> = found
        .iter()
        .filter(|(addr, _)| addr != "198.18.0.1")
        .cloned()
        .collect();
    assert_eq!(others, arp_scan, "arp-scan: {out:?}");

    // .6 and .7 drop ICMP: an echo sweep misses them.
    let echo = icmp_alive(&segment, V4_RANGE);
    assert!(
        echo.contains("198.18.0.5") && !echo.contains("198.18.0.6"),
        "{echo:?}"
    );
    assert!(!echo.contains("198.18.0.7"), "{echo:?}");

    // Periodic mode: the second round finds the same hosts, no change (and no second DUP
    // line: duplicates are per round, the text shows round 1's).
    let args = [
        "--json", "sweep", V4_RANGE, "--method", "arp", "--every", "200ms",
    ];
    let (_, stdout, stderr) = segment.netkit(&[&args[..], &["--rounds", "2"]].concat());
    let records = records(&stdout);
    let summaries: Vec<Value> = of_type(&records, "summary");
    let alive: Vec<_> = summaries.iter().map(|s| s["alive"].as_u64()).collect();
    assert_eq!(alive, [Some(5), Some(5)], "{stderr}");
    assert!(of_type::<Value>(&records, "change").is_empty(), "{stdout}");

    // The text: arp-scan's information, the duplicate as its "(DUP: 2)".
    let (_, stdout, stderr) = segment.netkit(&["sweep", V4_RANGE, "--method", "arp"]);
    let line6 = format!("198.18.0.6 is alive ({})", segment.macs[&6]);
    assert!(stdout.lines().any(|l| l == line6), "{stdout}{stderr}");
    let dups: Vec<&str> = stdout.lines().filter(|l| l.ends_with("(DUP: 2)")).collect();
    assert_eq!(dups.len(), 1, "{stdout}");
    assert!(dups[0].starts_with("198.18.0.5 is alive ("), "{stdout}");
    assert!(stdout.ends_with("Total 7 hosts are inactive\n"), "{stdout}");
    // --dead: no live host, no duplicate.
    let (_, stdout, _) =
        segment.netkit(&["--json", "sweep", V4_RANGE, "--method", "arp", "--dead"]);
    assert!(
        !stdout.contains("duplicate") && !stdout.contains("\"mac\""),
        "{stdout}"
    );

    // nmap's XML: the MAC address after the IP address, up by arp-response.
    let doc = std::fs::read_to_string(&xml).unwrap();
    let mac6 = segment.macs[&6].to_uppercase();
    let want = format!(
        "<address addr=\"198.18.0.6\" addrtype=\"ipv4\"/>\n<address addr=\"{mac6}\" addrtype=\"mac\"/>"
    );
    assert!(doc.contains(&want), "{doc}");
    assert!(doc.contains("reason=\"arp-response\""), "{doc}");
}

#[test]
fn ndp_finds_hosts_that_drop_icmpv6_echo_with_the_macs_nmap_sees() {
    if !privileged("sweep ndp") {
        return;
    }
    let segment = Segment::new("ndp");
    let (code, stdout, stderr) = segment.netkit(&["--json", "sweep", V6_RANGE, "--method", "ndp"]);
    assert_eq!(code, 1, "{stderr}");
    let found = pairs(&stdout);
    assert_eq!(found, segment.truth("2001:db8::"), "{stdout}");
    // The same link named with -I.
    let args = ["--json", "sweep", V6_RANGE, "--method", "ndp", "-I", "br0"];
    let (_, stdout, stderr) = segment.netkit(&args);
    assert_eq!(pairs(&stdout), found, "{stderr}");

    // The oracle: nmap's neighbour discovery (nmap -6 -sn on a local link), one MAC per host.
    let targets: Vec<String> = (1..=12).map(|n| format!("2001:db8::{n:x}")).collect();
    let mut nmap = segment.s.command("nmap");
    nmap.args(["-6", "-sn", "-n", "-oX", "-"]).args(&targets);
    let (_, doc, err) = text(&nmap.output().expect("nmap"));
    let nmap_pairs = nmap_macs(&doc);
    // nmap's own address is up without a MAC address, by localhost-response.
    let mut nmap_up = addrs(&nmap_pairs);
    assert!(doc.contains("reason=\"localhost-response\""), "{doc}");
    nmap_up.insert("2001:db8::1".to_string());
    assert_eq!(nmap_up, addrs(&found), "nmap: {doc}{err}");
    assert!(
        nmap_pairs.is_subset(&found),
        "nmap: {nmap_pairs:?}, netkit: {found:?}"
    );

    let echo = icmp_alive(&segment, V6_RANGE);
    assert!(
        echo.contains("2001:db8::5") && !echo.contains("2001:db8::6"),
        "{echo:?}"
    );
    assert!(!echo.contains("2001:db8::7"), "{echo:?}");
}

#[test]
fn arp_and_ndp_together_find_both_families_of_the_segment() {
    if !privileged("sweep arp,ndp") {
        return;
    }
    let segment = Segment::new("arpndp");
    let args = ["--json", "sweep", V4_RANGE, V6_RANGE, "--method", "arp,ndp"];
    let (code, stdout, stderr) = segment.netkit(&args);
    assert_eq!(code, 1, "{stderr}");
    let mut truth = segment.truth("198.18.0.");
    truth.extend(segment.truth("2001:db8::"));
    assert_eq!(pairs(&stdout), truth, "{stdout}");
    // Each family found by its own method.
    let hosts: Vec<HostRecord> = of_type(&records(&stdout), "host");
    for host in hosts.iter().filter(|h| h.alive) {
        let want = if host.addr.is_ipv4() { "arp" } else { "ndp" };
        assert_eq!(host.by.as_deref(), Some(want), "{host:?}");
    }
    // A family no on-link method of the list takes is left to the others (as nmap -PE -PR
    // leaves its off-link targets to -PE): arp has nothing to do, icmp finds the host.
    let args = ["--json", "sweep", "2001:db8::5", "--method", "arp,icmp"];
    let (code, stdout, stderr) = segment.netkit(&args);
    assert_eq!(code, 0, "{stderr}");
    let hosts: Vec<HostRecord> = of_type(&records(&stdout), "host");
    assert_eq!(hosts.len(), 1, "{stdout}");
    assert_eq!(hosts[0].by.as_deref(), Some("icmp"), "{stdout}");
}

/// The (address, MAC) pairs of the up hosts of an nmap XML document.
fn nmap_macs(doc: &str) -> BTreeSet<(String, String)> {
    let attr = |line: &str, name: &str| {
        let start = line.find(&format!("{name}=\""))? + name.len() + 2;
        line[start..].split('"').next().map(str::to_string)
    };
    let mut pairs = BTreeSet::new();
    let mut addr = None;
    for line in doc.lines().filter(|l| l.starts_with("<address")) {
        match attr(line, "addrtype").as_deref() {
            Some("mac") => {
                let mac = attr(line, "addr").unwrap_or_default().to_lowercase();
                pairs.insert((addr.take().unwrap_or_default(), mac));
            }
            _ => addr = attr(line, "addr"),
        }
    }
    pairs
}

#[test]
fn on_link_methods_refuse_targets_off_the_link_and_need_cap_net_raw() {
    if !privileged("sweep arp refusals") {
        return;
    }
    let ns = Netns::new("arpno");
    ns.ip(&["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
    ns.ip(&["addr", "add", "198.18.0.1/24", "dev", "d0"]);
    ns.ip(&["addr", "add", "2001:db8::1/64", "dev", "d0", "nodad"]);
    ns.ip(&["link", "set", "d0", "up"]);
    let run = |args: &[&str]| text(&ns.netkit().args(args).output().expect("run netkit"));
    let cases: [(&[&str], &str); 6] = [
        (
            &["sweep", "198.18.0.5", "-I", "d0"],
            "netkit: d0: -I/--interface chooses the link of --method arp or ndp",
        ),
        (
            &["sweep", "198.51.100.7", "--method", "arp"],
            "netkit: 198.51.100.7: not on-link (arp needs a target on a directly connected \
             network; use --method icmp or tcp:PORT)",
        ),
        (
            &["sweep", "198.18.0.5", "198.18.1.5", "--method", "arp"],
            "netkit: 198.18.1.5: not on-link of d0 (arp needs",
        ),
        (
            &["sweep", "198.18.0.5", "--method", "ndp"],
            "netkit: 198.18.0.5: ndp finds IPv6 hosts; use --method arp for IPv4",
        ),
        (
            &["sweep", "127.0.0.1", "--method", "arp", "-I", "lo"],
            "netkit: lo: has no Ethernet address (arp needs an Ethernet-like interface)",
        ),
        (
            &["sweep", "198.18.0.5", "--method", "arp", "-I", "nk-none0"],
            "netkit: nk-none0: no such interface",
        ),
    ];
    for (args, want) in cases {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.starts_with(want), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{stdout}");
    }
    // Without CAP_NET_RAW: an environment refusal that says what to do.
    for method in ["arp", "ndp"] {
        let target = if method == "arp" {
            "198.18.0.5"
        } else {
            "2001:db8::5"
        };
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", &ns.name, "setpriv"])
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .args([
                env!("CARGO_BIN_EXE_netkit"),
                "sweep",
                target,
                "--method",
                method,
            ]);
        let (code, _, stderr) = text(&cmd.output().expect("run setpriv"));
        assert_eq!(code, 3, "{method}: {stderr}");
        assert!(stderr.contains("CAP_NET_RAW"), "{stderr}");
        assert!(stderr.contains("permitted"), "{stderr}");
    }
}
