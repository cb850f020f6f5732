//! `netkit iface` field by field against `ip -j -d -s addr` on the same namespace: veth,
//! bridge, macvlan on a veth, tun and tap, labelled, secondary, deprecated, tentative and
//! point-to-point addresses, altnames, an alias, and a thousand addresses; speed and duplex
//! against /sys as `ip netns exec` mounts it for the namespace.

use std::collections::BTreeSet;
use std::io::Write;

use serde_json::Value;

use crate::harness::{privileged, sh, text, Netns};

/// A namespace with one link of each kind this kernel can make, and addresses of each sort.
pub struct RichLab {
    pub ns: Netns,
}

/// Link kinds tried but not required: this kernel may not have them.
const OPTIONAL: &[(&str, &[&str])] = &[
    ("dummy", &["link", "add", "d0", "type", "dummy"]),
    (
        "vlan",
        &[
            "link", "add", "link", "v0", "name", "v0.10", "type", "vlan", "id", "10",
        ],
    ),
    ("bond", &["link", "add", "bond0", "type", "bond"]),
];

impl RichLab {
    pub fn new(tag: &str) -> RichLab {
        let ns = Netns::new(tag);
        // No router solicitations or duplicate address detection on the links that go up:
        // counters and address flags hold still between two readings.
        for key in ["router_solicitations", "dad_transmits"] {
            sysctl(&ns, &format!("net.ipv6.conf.default.{key}=0"));
        }
        for step in LINKS.iter().chain(ADDRESSES) {
            ns.ip(step);
        }
        for (kind, step) in OPTIONAL {
            let out = std::process::Command::new("ip")
                .args(["-n", &ns.name])
                .args(*step)
                .output()
                .expect("ip");
            if !out.status.success() {
                eprintln!(
                    "iface lab: no {kind} link: skipped ({})",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
        for name in ["lo", "v0", "v1", "br0", "mv0"] {
            ns.ip(&["link", "set", name, "up"]);
        }
        RichLab { ns }
    }
}

const LINKS: &[&[&str]] = &[
    &[
        "link", "add", "v0", "mtu", "1400", "type", "veth", "peer", "name", "v1",
    ],
    &[
        "link",
        "property",
        "add",
        "dev",
        "v0",
        "altname",
        "veth-zero",
    ],
    &["link", "property", "add", "dev", "v0", "altname", "uplink0"],
    &["link", "set", "v0", "alias", "uplink to v1"],
    &["link", "add", "br0", "type", "bridge"],
    &["link", "set", "v1", "master", "br0"],
    &[
        "link", "add", "mv0", "link", "v0", "type", "macvlan", "mode", "bridge",
    ],
    &["tuntap", "add", "tap0", "mode", "tap"],
    &["tuntap", "add", "tun0", "mode", "tun"],
    &["link", "set", "tun0", "txqueuelen", "42"],
];

const ADDRESSES: &[&[&str]] = &[
    &[
        "addr",
        "add",
        "198.18.0.1/24",
        "brd",
        "+",
        "dev",
        "v0",
        "label",
        "v0:1",
    ],
    &["addr", "add", "198.18.0.2/24", "dev", "v0"],
    &[
        "addr",
        "add",
        "198.18.5.1",
        "peer",
        "198.18.5.2/32",
        "dev",
        "v0",
    ],
    &[
        "addr",
        "add",
        "2001:db8::1/64",
        "dev",
        "v0",
        "preferred_lft",
        "0",
        "valid_lft",
        "600",
    ],
    &["addr", "add", "2001:db8:1::1/64", "dev", "v0", "nodad"],
    &["addr", "add", "198.18.1.1/24", "dev", "br0"],
    &[
        "addr",
        "add",
        "198.18.9.1",
        "peer",
        "198.18.9.2/32",
        "dev",
        "tun0",
    ],
    &["addr", "add", "2001:db8:5::1/64", "dev", "tap0"],
];

fn sysctl(ns: &Netns, setting: &str) {
    sh(&["ip", "netns", "exec", &ns.name, "sysctl", "-qw", setting]);
}

pub fn netkit_json(ns: &Netns, args: &[&str]) -> Vec<Value> {
    let out = ns.netkit().arg("--json").args(args).output().expect("run");
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 0, "{args:?}: {stderr}");
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

pub fn ip_detailed(ns: &Netns) -> Vec<Value> {
    serde_json::from_str(&ns.ip(&["-j", "-d", "-s", "addr"])).expect("ip -j -d -s addr")
}

/// ip's reading before and after ours: counters and lifetimes move, ours must lie between.
struct Readings {
    before: Vec<Value>,
    ours: Vec<Value>,
    after: Vec<Value>,
}

impl Readings {
    fn take(ns: &Netns, args: &[&str]) -> Readings {
        let before = ip_detailed(ns);
        let ours = netkit_json(ns, args);
        let after = ip_detailed(ns);
        Readings {
            before,
            ours,
            after,
        }
    }

    fn ip(&self, name: &str) -> (&Value, &Value) {
        let find = |all: &'_ [Value]| -> usize {
            all.iter()
                .position(|l| l["ifname"] == name)
                .unwrap_or_else(|| panic!("{name} not in ip's output"))
        };
        (
            &self.before[find(&self.before)],
            &self.after[find(&self.after)],
        )
    }

    /// Every interface of ip's, field by field.
    fn compare_all(&self) {
        let names = |all: &[Value], key: &str| -> Vec<String> {
            all.iter()
                .map(|l| l[key].as_str().expect("name").to_string())
                .collect()
        };
        assert_eq!(names(&self.ours, "name"), names(&self.before, "ifname"));
        for mine in &self.ours {
            let (before, after) = self.ip(mine["name"].as_str().expect("name"));
            compare_link(mine, before, after);
        }
    }
}

fn opt<'a>(value: &'a Value, key: &str) -> &'a Value {
    value.get(key).unwrap_or(&Value::Null)
}

fn compare_link(mine: &Value, ip: &Value, later: &Value) {
    let name = ip["ifname"].as_str().expect("ifname");
    assert_eq!(mine["type"], "iface");
    let one_of = |ours: &Value, first: &Value, last: &Value, what: &str| {
        assert!(
            ours == first || ours == last,
            "{name}: {what} {ours} is neither ip's {first} nor {last}"
        );
    };
    for (ours, theirs) in [
        ("index", "ifindex"),
        ("mtu", "mtu"),
        ("mac", "address"),
        ("master", "master"),
        ("qdisc", "qdisc"),
        ("txqlen", "txqlen"),
        ("alias", "ifalias"),
    ] {
        assert_eq!(mine[ours], *opt(ip, theirs), "{name}: {ours}");
    }
    assert_eq!(mine["kind"], *opt(&ip["linkinfo"], "info_kind"), "{name}");
    assert_eq!(mine["parent"], *opt(ip, "link"), "{name}: parent");
    assert_eq!(mine["parent_netnsid"], *opt(ip, "link_netnsid"), "{name}");
    let altnames = ip.get("altnames").cloned().unwrap_or(Value::Array(vec![]));
    assert_eq!(mine["altnames"], altnames, "{name}");
    // Carrier and operstate settle a moment after `ip link set up`: ours is ip's first or
    // second reading.
    let upper = Value::from(mine["operstate"].as_str().map(str::to_uppercase));
    one_of(&upper, &ip["operstate"], &later["operstate"], "operstate");
    let flags = |set: BTreeSet<String>| Value::from(set.into_iter().collect::<Vec<_>>());
    one_of(
        &flags(link_flags(mine)),
        &flags(ip_link_flags(ip)),
        &flags(ip_link_flags(later)),
        "flags",
    );
    for dir in ["rx", "tx"] {
        for (counter, ip_counter) in [
            ("bytes", "bytes"),
            ("packets", "packets"),
            ("errors", "errors"),
            ("dropped", "dropped"),
        ] {
            let ours = mine[format!("{dir}_{counter}")].as_u64().expect("counter");
            let first = ip["stats64"][dir][ip_counter].as_u64().expect("ip counter");
            let last = later["stats64"][dir][ip_counter]
                .as_u64()
                .expect("ip counter");
            assert!(
                first <= ours && ours <= last,
                "{name}: {dir}_{counter} {ours} not within ip's {first}..{last}"
            );
        }
    }
    let ours = mine["addrs"].as_array().expect("addrs");
    let theirs = ip["addr_info"].as_array().expect("addr_info");
    let later = later["addr_info"].as_array().expect("addr_info");
    assert_eq!(ours.len(), theirs.len(), "{name}: {ours:?}\n{theirs:?}");
    for ((mine, ip), later) in ours.iter().zip(theirs).zip(later) {
        compare_addr(name, mine, ip, later);
    }
}

fn link_flags(mine: &Value) -> BTreeSet<String> {
    let mut flags = strings(&mine["flags"]);
    flags.remove("RUNNING"); // ip never prints it
    flags
}

fn ip_link_flags(ip: &Value) -> BTreeSet<String> {
    let mut flags = strings(&ip["flags"]);
    flags.remove("NO-CARRIER"); // ip's pseudo flags
    flags.remove("M-DOWN");
    flags
}

pub fn strings(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(String::from))
        .collect()
}

/// The address flags `ip -j` prints as `"name": true`.
const IP_ADDR_FLAGS: &[&str] = &[
    "secondary",
    "temporary",
    "nodad",
    "optimistic",
    "dadfailed",
    "home",
    "deprecated",
    "tentative",
    "mngtmpaddr",
    "noprefixroute",
    "autojoin",
    "stable-privacy",
    "dynamic",
];

fn ip_addr_flags(ip: &Value) -> BTreeSet<String> {
    IP_ADDR_FLAGS
        .iter()
        .filter(|flag| ip[**flag] == true)
        .map(|flag| flag.to_string())
        .collect()
}

fn compare_addr(name: &str, mine: &Value, ip: &Value, later: &Value) {
    let local = ip["local"].as_str().expect("local");
    let what = format!("{name} {local}");
    assert_eq!(mine["family"], ip["family"], "{what}");
    assert_eq!(mine["addr"], ip["local"], "{what}");
    assert_eq!(mine["prefix"], ip["prefixlen"], "{what}");
    assert_eq!(mine["peer"], *opt(ip, "address"), "{what}: peer");
    assert_eq!(mine["broadcast"], *opt(ip, "broadcast"), "{what}");
    assert_eq!(mine["scope"], ip["scope"], "{what}");
    assert_eq!(mine["label"], *opt(ip, "label"), "{what}");
    let mut ours = strings(&mine["flags"]);
    ours.remove("permanent"); // ip prints its absence, `dynamic`
                              // Duplicate address detection may end between ip's two readings.
    let (first, last) = (ip_addr_flags(ip), ip_addr_flags(later));
    assert!(
        ours == first || ours == last,
        "{what}: flags {ours:?} are neither ip's {first:?} nor {last:?}"
    );
    for (ours, theirs) in [
        ("valid_lft_s", "valid_life_time"),
        ("preferred_lft_s", "preferred_life_time"),
    ] {
        let first = ip[theirs].as_u64().expect("lifetime");
        let last = later[theirs].as_u64().expect("lifetime");
        match mine[ours].as_u64() {
            None => assert_eq!(first, u64::from(u32::MAX), "{what}: {ours} forever"),
            Some(left) => assert!(
                first >= left && left >= last,
                "{what}: {ours} {left} not within ip's {first}..{last}"
            ),
        }
    }
}

#[test]
fn every_field_matches_ip_detailed_in_a_rich_namespace() {
    if !privileged("iface rich") {
        return;
    }
    let lab = RichLab::new("iface-rich");
    let readings = Readings::take(&lab.ns, &["iface"]);
    readings.compare_all();
    // The scenario holds what it claims, so that the comparison above is not vacuous.
    let kinds: BTreeSet<String> = readings
        .ours
        .iter()
        .filter_map(|i| i["kind"].as_str().map(String::from))
        .collect();
    for kind in ["veth", "bridge", "macvlan", "tun"] {
        assert!(kinds.contains(kind), "{kind} missing: {kinds:?}");
    }
    let flags: BTreeSet<String> = readings
        .ours
        .iter()
        .flat_map(|i| i["addrs"].as_array().expect("addrs").iter())
        .flat_map(|a| strings(&a["flags"]))
        .collect();
    for flag in [
        "secondary",
        "deprecated",
        "tentative",
        "nodad",
        "dynamic",
        "permanent",
    ] {
        assert!(flags.contains(flag), "no {flag} address: {flags:?}");
    }
    let v0 = readings
        .ours
        .iter()
        .find(|i| i["name"] == "v0")
        .expect("v0");
    assert!(v0["addrs"]
        .as_array()
        .expect("addrs")
        .iter()
        .any(|a| a["label"] == "v0:1" && a["peer"].is_null()));
    assert!(v0["addrs"]
        .as_array()
        .expect("addrs")
        .iter()
        .any(|a| a["peer"] == "198.18.5.2"));
}

#[test]
fn show_matches_ip_for_each_kind() {
    if !privileged("iface rich show") {
        return;
    }
    let lab = RichLab::new("iface-richshow");
    for name in ["v0", "v1", "br0", "mv0", "tap0", "tun0", "lo"] {
        let readings = Readings::take(&lab.ns, &["iface", "show", name]);
        assert_eq!(readings.ours.len(), 1, "{name}");
        let (before, after) = readings.ip(name);
        compare_link(&readings.ours[0], before, after);
    }
}

#[test]
fn altnames_name_the_interface_everywhere() {
    if !privileged("iface altnames") {
        return;
    }
    let lab = RichLab::new("iface-alt");
    let ns = &lab.ns;
    for name in ["veth-zero", "uplink0"] {
        let shown = netkit_json(ns, &["iface", "show", name]);
        assert_eq!(shown[0]["name"], "v0", "{name}");
        let addrs = netkit_json(ns, &["iface", "addr", name, "-4"]);
        assert!(addrs.iter().all(|a| a["iface"] == "v0"), "{addrs:?}");
        let ours: BTreeSet<String> = addrs
            .iter()
            .map(|a| a["addr"].as_str().expect("addr").to_string())
            .collect();
        let v4: BTreeSet<String> = ["198.18.0.1", "198.18.0.2", "198.18.5.1"]
            .map(String::from)
            .into();
        assert_eq!(ours, v4, "{name}");
        let status = ns
            .netkit()
            .args(["iface", "status", name])
            .output()
            .expect("run");
        let by_name = ns
            .netkit()
            .args(["iface", "status", "v0"])
            .output()
            .expect("run");
        assert_eq!(text(&status).0, text(&by_name).0, "{name}");
        assert_eq!(text(&status).1, text(&by_name).1, "{name}");
    }
    let out = ns
        .netkit()
        .args(["iface", "show", "veth-zer"])
        .output()
        .expect("run");
    let (code, _, stderr) = text(&out);
    assert_eq!(
        (code, stderr.as_str()),
        (2, "netkit: veth-zer: no such interface\n")
    );
}

#[test]
fn speed_and_duplex_match_what_the_driver_tells_sysfs() {
    if !privileged("iface speed") {
        return;
    }
    let lab = RichLab::new("iface-speed");
    let ours = netkit_json(&lab.ns, &["iface"]);
    let mut compared = 0;
    for iface in &ours {
        let name = iface["name"].as_str().expect("name");
        // /sys answers only for running devices; `ip netns exec` mounts the namespace's.
        let Some(speed) = sysfs(&lab.ns, name, "speed") else {
            continue;
        };
        let speed: i64 = speed.parse().expect("speed");
        let want = if speed < 0 { Value::Null } else { speed.into() };
        assert_eq!(iface["speed_mbps"], want, "{name}");
        let duplex = sysfs(&lab.ns, name, "duplex").expect("duplex");
        let want = match duplex.as_str() {
            "full" | "half" => Value::from(duplex),
            _ => Value::Null,
        };
        assert_eq!(iface["duplex"], want, "{name}");
        compared += 1;
    }
    assert!(compared >= 2, "no running device with a speed: {ours:?}");
    let v0 = ours.iter().find(|i| i["name"] == "v0").expect("v0");
    assert_eq!(
        (v0["speed_mbps"].as_u64(), v0["duplex"].as_str()),
        (Some(10_000), Some("full"))
    );
    let lo = ours.iter().find(|i| i["name"] == "lo").expect("lo");
    assert!(lo["speed_mbps"].is_null() && lo["duplex"].is_null());
}

fn sysfs(ns: &Netns, name: &str, attribute: &str) -> Option<String> {
    let path = format!("/sys/class/net/{name}/{attribute}");
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &ns.name, "cat", &path])
        .output()
        .expect("cat");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A namespace whose `v0` holds `count` IPv4 addresses (one primary, the rest secondary),
/// added in one `ip -batch`.
pub fn thousand_addresses(tag: &str, count: usize) -> Netns {
    let ns = Netns::new(tag);
    ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    add_in_batch(&ns, "198.18", count);
    ns
}

/// Adds `NET.X.Y/16` addresses `0..count` to v0 with one `ip -batch` (`net`: `198.18`).
pub fn add_in_batch(ns: &Netns, net: &str, count: usize) {
    let mut batch = tempfile::NamedTempFile::new().expect("batch file");
    for i in 0..count {
        writeln!(
            batch,
            "addr add {net}.{}.{}/16 dev v0",
            i / 250,
            i % 250 + 1
        )
        .expect("write");
    }
    batch.flush().expect("flush");
    let path = batch.path().to_str().expect("path").to_string();
    ns.ip(&["-batch", &path]);
}

#[test]
fn a_thousand_addresses_match_ip() {
    if !privileged("iface thousand") {
        return;
    }
    let ns = thousand_addresses("iface-1000", 1000);
    let readings = Readings::take(&ns, &["iface"]);
    readings.compare_all();
    let v0 = readings
        .ours
        .iter()
        .find(|i| i["name"] == "v0")
        .expect("v0");
    assert_eq!(v0["addrs"].as_array().expect("addrs").len(), 1000);
    let out = ns
        .netkit()
        .args(["iface", "addr", "v0", "-4"])
        .output()
        .expect("run");
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 0, "{stderr}");
    let ip: Vec<Value> =
        serde_json::from_str(&ns.ip(&["-j", "-4", "addr", "show", "dev", "v0"])).expect("ip");
    let theirs: Vec<&str> = ip[0]["addr_info"]
        .as_array()
        .expect("addr_info")
        .iter()
        .map(|a| a["local"].as_str().expect("local"))
        .collect();
    assert_eq!(stdout.lines().collect::<Vec<_>>(), theirs);
}
