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

/// An interface name that is not UTF-8 (the kernel takes any bytes but `/`, `:`, whitespace and
/// NUL, and `ip` lists it) made every `iface` command fail with exit 3, about every other
/// interface too: the decoder refused the whole dump. The same with such an alias or address
/// label. Now such bytes read as `\xNN`, and NAME is taken as the bytes or written so.
#[test]
fn a_name_that_is_not_utf8_blinded_every_command() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    if !privileged("iface not utf-8") {
        return;
    }
    let ns = Netns::new("iface-utf8");
    let raw_ip = |args: &[&[u8]]| {
        let args = args.iter().map(|a| OsStr::from_bytes(a));
        let out = ns.command("ip").args(args).output().expect("ip");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    raw_ip(&[b"link", b"set", b"lo", b"up"]);
    raw_ip(&[
        b"link", b"add", b"bad\xff", b"type", b"veth", b"peer", b"name", b"good0",
    ]);
    raw_ip(&[b"link", b"set", b"good0", b"alias", b"x\xfe"]);
    let label: &[&[u8]] = &[
        b"addr",
        b"add",
        b"198.18.60.1/24",
        b"dev",
        b"good0",
        b"label",
    ];
    raw_ip(&[label, &[b"good0:\xff"]].concat());
    let run = |args: &[&OsStr]| text(&ns.netkit().args(args).output().expect("run"));
    let (code, stdout, stderr) = run(&["iface".as_ref(), "status".as_ref(), "lo".as_ref()]);
    assert_eq!((code, stdout.trim()), (0, "up"), "{stderr}");
    let (code, stdout, stderr) = run(&["--json".as_ref(), "iface".as_ref()]);
    assert_eq!(code, 0, "{stderr}");
    let ours = json_lines(&stdout);
    let ip = ns.command("ip").args(["-j", "link"]).output().expect("ip");
    let ip: Vec<Value> =
        serde_json::from_str(&String::from_utf8_lossy(&ip.stdout)).expect("ip -j link");
    let indices =
        |v: &[Value]| -> Vec<u64> { v.iter().filter_map(|i| i["ifindex"].as_u64()).collect() };
    let ours_indices: Vec<u64> = ours.iter().filter_map(|i| i["index"].as_u64()).collect();
    assert_eq!(ours_indices, indices(&ip), "{stdout}");
    let good = ours.iter().find(|i| i["name"] == "good0").expect("good0");
    assert_eq!(
        (&good["alias"], &good["parent"]),
        (&"x\\xfe".into(), &"bad\\xff".into())
    );
    assert_eq!(good["addrs"][0]["label"], "good0:\\xff", "{good}");
    // The odd one by its bytes, and written as it is shown.
    for name in [OsStr::from_bytes(b"bad\xff"), OsStr::new("bad\\xff")] {
        let (code, stdout, stderr) =
            run(&["--json".as_ref(), "iface".as_ref(), "show".as_ref(), name]);
        assert_eq!(code, 0, "{name:?}: {stderr}");
        assert_eq!(json_lines(&stdout)[0]["name"], "bad\\xff", "{stdout}");
    }
    let (code, stdout, stderr) = run(&["iface".as_ref(), "addr".as_ref(), "good0".as_ref()]);
    assert_eq!((code, stdout.trim()), (0, "198.18.60.1"), "{stderr}");
}

/// The same name appearing while `iface watch` ran: the event could not be decoded, the
/// resync that followed neither, and the watch ended with exit 3 (also a watch of another
/// interface). Now the new link is an event like any other.
#[test]
fn a_name_that_is_not_utf8_ended_a_running_watch() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    if !privileged("iface watch not utf-8") {
        return;
    }
    let ns = Netns::new("iface-utf8w");
    ns.ip(&["link", "set", "lo", "up"]);
    let mut watch = ns.netkit();
    watch.args(["--json", "iface", "watch"]);
    let watch = crate::harness::Proc::spawn(watch);
    watch.stderr.wait_for(|l| l.starts_with("watching"), 1);
    let bad = OsStr::from_bytes(b"z\xff");
    let out = ns
        .command("ip")
        .arg("link")
        .arg("add")
        .arg(bad)
        .args(["type", "veth"])
        .output();
    assert!(out.expect("ip").status.success());
    // A change after it: once its event is out, the new link's would be too.
    ns.ip(&["addr", "add", "198.18.61.1/32", "dev", "lo"]);
    let lines = watch.stdout.wait_for(|l| l.contains("198.18.61.1"), 1);
    let all = watch.stdout.all();
    assert!(
        all.iter()
            .any(|l| l.contains("\"added\"") && l.contains("z\\\\xff")),
        "{all:?}{lines:?}"
    );
}

/// Setting `lo` down and up again made `iface watch` report `no-carrier` and `carrier`: the
/// kernel hides `LOWER_UP` while a link is down, but its carrier never changed (`ip monitor`
/// shows no NO-CARRIER, `carrier_changes` stays 0). The carrier is now the kernel's
/// `IFLA_CARRIER`; a veth set down still loses its carrier, and says so.
#[test]
fn setting_lo_down_reported_a_carrier_change_that_never_happened() {
    if !privileged("iface watch lo carrier") {
        return;
    }
    let ns = Netns::new("iface-locarrier");
    ns.ip(&["link", "set", "lo", "up"]);
    ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    ns.ip(&["link", "set", "v1", "up"]);
    ns.ip(&["link", "set", "v0", "up"]);
    let mut watch = ns.netkit();
    watch.args(["--json", "iface", "watch"]);
    let watch = crate::harness::Proc::spawn(watch);
    watch.stderr.wait_for(|l| l.starts_with("watching"), 1);
    ns.ip(&["link", "set", "lo", "down"]);
    ns.ip(&["link", "set", "lo", "up"]);
    ns.ip(&["link", "set", "v0", "down"]);
    // A change after them all: once its event is out, theirs are too.
    ns.ip(&["addr", "add", "198.18.62.1/32", "dev", "lo"]);
    watch.stdout.wait_for(|l| l.contains("198.18.62.1"), 1);
    let events: Vec<(String, String)> = json_lines(&watch.stdout.all().join("\n"))
        .iter()
        .filter(|e| e["type"] == "link")
        .map(|e| {
            (
                e["name"].as_str().unwrap_or_default().to_string(),
                e["event"].to_string(),
            )
        })
        .collect();
    let carrier = |name: &str| {
        events
            .iter()
            .filter(|(n, e)| n == name && e.contains("carrier"))
            .map(|(_, e)| e.trim_matches('"').to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(carrier("lo"), Vec::<String>::new(), "{events:?}");
    assert_eq!(carrier("v0"), ["no-carrier"], "{events:?}");
}

/// An input with a newline or a terminal escape was printed as it was: the one error line
/// became two (`netkit: lo` / `: no such interface`), or restyled the terminal. Control
/// characters are escaped in every error line now; a backslash is left as it is.
#[test]
fn control_characters_in_an_input_split_or_restyled_the_error_line() {
    for (name, shown) in [("lo\n", "lo\\n"), ("a\x1b[31mred", "a\\x1b[31mred")] {
        let out = crate::harness::netkit()
            .args(["iface", "show", name])
            .output()
            .expect("run");
        let (code, stdout, stderr) = text(&out);
        assert_eq!(code, 2, "{stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        assert_eq!(stderr, format!("netkit: {shown}: no such interface\n"));
    }
}

/// A name longer than any interface name, 17 bytes (the kernel's limit is 15).
const SEVENTEEN: &str = "abcdefghijklmnopq";

/// `iface addr ''` and a name over the kernel's 15 bytes were called unknown interfaces (or
/// an empty name shown as nothing: `netkit: : no such interface`), as if a name of that
/// length could exist; every subcommand that takes a NAME now says what is wrong with it.
#[test]
fn an_empty_or_overlong_name_was_called_an_unknown_interface() {
    let longest = "a".repeat(128);
    let cases = [
        ("", "netkit: '': empty interface name\n".to_string()),
        (
            SEVENTEEN,
            format!(
                "netkit: {SEVENTEEN}: interface name of 17 bytes: longer than 15 bytes, the \
                 kernel's limit (IFNAMSIZ), and no interface has it as an alternative name\n"
            ),
        ),
        (
            longest.as_str(),
            format!(
                "netkit: {longest}: interface name of 128 bytes: longer than the kernel's \
                 limits (15 bytes, 127 for an alternative name)\n"
            ),
        ),
    ];
    for view in ["addr", "show", "status", "watch"] {
        for (name, want) in &cases {
            let mut cmd = crate::harness::netkit();
            cmd.args(["iface", view, name]);
            let (code, stdout, stderr) = crate::harness::run_within(cmd, crate::harness::PATIENCE);
            assert_eq!(code, 2, "{view} {name:?}: {stdout}{stderr}");
            assert_eq!(&stderr, want, "{view} {name:?}");
            assert!(stdout.is_empty(), "{view} {name:?}: {stdout}");
        }
    }
}

/// The same in a namespace, with `ip` as the oracle: `ip link show dev` refuses the empty and
/// the overlong name, and finds an interface by a long alternative name (up to 127 bytes),
/// which netkit must still take.
#[test]
fn a_long_alternative_name_still_names_its_interface() {
    if !privileged("iface long altname") {
        return;
    }
    let ns = labelled("wti-altname");
    let long = "a-long-alternative-name-of-v0";
    ns.ip(&["link", "property", "add", "dev", "v0", "altname", long]);
    let ip = |name: &str| {
        ns.command("ip")
            .args(["link", "show", "dev", name])
            .output()
    };
    for name in ["", SEVENTEEN] {
        assert!(!ip(name).expect("ip").status.success(), "ip took {name:?}");
        let (code, _, stderr) = text(
            &ns.netkit()
                .args(["iface", "addr", name])
                .output()
                .expect("run"),
        );
        assert_eq!(code, 2, "{name:?}: {stderr}");
        assert!(!stderr.contains("no such interface"), "{stderr}");
    }
    assert!(ip(long).expect("ip").status.success());
    let out = ns
        .netkit()
        .args(["iface", "addr", long, "-4"])
        .output()
        .expect("run");
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "198.18.0.1\n198.18.1.1\n");
}

/// Two ends of a veth pair in one namespace given the same IPv6 address with duplicate address
/// detection on: one of them finds the other's (`ip` shows it `dadfailed tentative`). Returns
/// the namespace and the name of the end whose address failed, once `ip` says so.
fn duplicate_address(tag: &str) -> (Netns, String) {
    let ns = Netns::new(tag);
    ns.ip(&["link", "add", "vA", "type", "veth", "peer", "name", "vB"]);
    let keys: Vec<String> = ["vA", "vB"]
        .iter()
        .flat_map(|dev| {
            [
                format!("net.ipv6.conf.{dev}.accept_dad=1"),
                format!("net.ipv6.conf.{dev}.dad_transmits=1"),
            ]
        })
        .collect();
    ns.sysctl(&keys).unwrap_or_else(|e| panic!("{e}"));
    ns.ip(&["link", "set", "vA", "up"]);
    ns.ip(&["link", "set", "vB", "up"]);
    ns.ip(&["-6", "addr", "add", "2001:db8::1/64", "dev", "vA"]);
    ns.ip(&["-6", "addr", "add", "2001:db8::1/64", "dev", "vB"]);
    let deadline = std::time::Instant::now() + crate::harness::PATIENCE;
    loop {
        let ip: Vec<Value> = serde_json::from_str(&ns.ip(&["-j", "-6", "addr"])).expect("ip -j");
        let failed = ip.iter().find(|link| {
            let addrs = link["addr_info"].as_array().into_iter().flatten();
            addrs.into_iter().any(|a| a["dadfailed"] == true)
        });
        if let Some(link) = failed {
            let name = link["ifname"].as_str().expect("ifname").to_string();
            return (ns, name);
        }
        assert!(std::time::Instant::now() < deadline, "no dadfailed: {ip:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// `iface addr NAME` printed an address that failed duplicate address detection (`ip`:
/// `dadfailed tentative`): the kernel will never use it, and a script asking for "the address
/// of NAME" got one that does not work. `iface show` still lists it, with its flag.
#[test]
fn iface_addr_gave_an_address_that_failed_dad() {
    if !privileged("iface addr dadfailed") {
        return;
    }
    let (ns, failed) = duplicate_address("wti-dad");
    let usable = |dev: &str| -> Vec<String> {
        let ip: Vec<Value> =
            serde_json::from_str(&ns.ip(&["-j", "-6", "addr", "show", "dev", dev])).expect("ip");
        let addrs = ip[0]["addr_info"].as_array().expect("addr_info").iter();
        addrs
            .filter(|a| a["dadfailed"] != true)
            .filter_map(|a| a["local"].as_str().map(String::from))
            .collect()
    };
    for dev in ["vA", "vB"] {
        let out = ns.netkit().args(["iface", "addr", dev, "-6"]).output();
        let (code, stdout, stderr) = text(&out.expect("run"));
        assert_eq!(code, 0, "{stderr}");
        let ours: Vec<&str> = stdout.lines().collect();
        assert_eq!(ours, usable(dev), "{dev} (dadfailed on {failed})");
    }
    let shown = ns
        .netkit()
        .args(["--json", "iface", "show", &failed])
        .output();
    let (_, stdout, _) = text(&shown.expect("run"));
    let iface = &json_lines(&stdout)[0];
    let listed = iface["addrs"].as_array().expect("addrs").iter();
    let dup = listed
        .into_iter()
        .find(|a| a["addr"] == "2001:db8::1")
        .unwrap_or_else(|| panic!("show lost it: {stdout}"));
    assert!(dup["flags"]
        .as_array()
        .expect("flags")
        .contains(&"dadfailed".into()));
}

/// `ip -ts monitor OBJECTS` in the namespace, `address` among them, proven live: it has
/// printed one of the sentinel addresses added to `lo` after it started (each wait bounded).
fn ip_monitor(ns: &Netns, objects: &[&str]) -> crate::harness::Proc {
    let mut command = Command::new("ip");
    command
        .args(["-n", &ns.name, "-ts", "monitor"])
        .args(objects);
    let monitor = crate::harness::Proc::spawn(command);
    for n in 1..=100 {
        let sentinel = format!("198.18.253.{n}");
        ns.ip(&["addr", "add", &format!("{sentinel}/32"), "dev", "lo"]);
        let until = std::time::Instant::now() + std::time::Duration::from_millis(100);
        while std::time::Instant::now() < until {
            if monitor.stdout.all().iter().any(|l| l.contains(&sentinel)) {
                return monitor;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    panic!("ip monitor printed none of its sentinels");
}

/// The lifetimes `ip monitor` printed under its `Deleted` line for `addr`: `valid_lft 297sec
/// preferred_lft 197sec` (`forever` as none).
fn deleted_lifetimes(lines: &[String], addr: &str) -> (Option<u64>, Option<u64>) {
    let at = lines
        .iter()
        .position(|l| l.contains("Deleted") && l.contains(&format!(" {addr}/")))
        .unwrap_or_else(|| panic!("no Deleted {addr}: {lines:#?}"));
    let words: Vec<&str> = lines[at + 1].split_whitespace().collect();
    let after = |key: &str| {
        let at = words.iter().position(|w| *w == key).expect(key);
        words[at + 1]
            .strip_suffix("sec")
            .and_then(|n| n.parse().ok())
    };
    (after("valid_lft"), after("preferred_lft"))
}

/// An address removed while `iface watch` ran was reported with the lifetimes of the last
/// message about it (when it was added, here), not those of the removal message, which
/// `ip monitor` prints under `Deleted`: seconds after the address was added, the record
/// still said it had all of them left.
#[test]
fn a_removed_address_was_reported_with_stale_lifetimes() {
    if !privileged("iface watch deleted lifetimes") {
        return;
    }
    let ns = Netns::with_loopback("wti-dellft");
    ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    ns.ip(&["link", "set", "v0", "up"]);
    let mut watch = ns.netkit();
    watch.args(["--json", "iface", "watch", "v0"]);
    let watch = crate::harness::Proc::spawn(watch);
    watch.stderr.wait_for(|l| l.starts_with("watching"), 1);
    let monitor = ip_monitor(&ns, &["address"]);
    let addrs = [("198.18.3.1", "24"), ("2001:db8::5", "64")];
    for (addr, prefix) in addrs {
        let with_prefix = format!("{addr}/{prefix}");
        let lifetimes = ["valid_lft", "300", "preferred_lft", "200"];
        let mut add = vec!["addr", "add", &with_prefix, "dev", "v0"];
        add.extend(lifetimes);
        if addr.contains(':') {
            add.push("nodad");
        }
        ns.ip(&add);
        watch.stdout.wait_line(&format!("\"addr\":\"{addr}\""));
    }
    // Long enough for the lifetimes to count down by whole seconds.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    for (addr, prefix) in addrs {
        ns.ip(&["addr", "del", &format!("{addr}/{prefix}"), "dev", "v0"]);
    }
    let removed = watch
        .stdout
        .wait_for(|l| l.contains("\"event\":\"removed\""), addrs.len());
    monitor
        .stdout
        .wait_for(|l| l.contains("Deleted"), addrs.len());
    let theirs = monitor.stdout.all();
    for (addr, _) in addrs {
        let ours = removed
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).expect("json"))
            .find(|e| e["addr"] == addr)
            .unwrap_or_else(|| panic!("no removed {addr}: {removed:#?}"));
        let (valid, preferred) = deleted_lifetimes(&theirs, addr);
        assert!(valid.is_some_and(|v| v < 300), "{addr}: {theirs:#?}");
        assert_eq!(
            (
                ours["valid_lft_s"].as_u64(),
                ours["preferred_lft_s"].as_u64()
            ),
            (valid, preferred),
            "{addr}: ours {ours}\nip monitor: {theirs:#?}"
        );
    }
}

/// What watches a veth pair `v0`/`v1` (both up) in a namespace: `iface watch` as JSON (every
/// interface) and as text (`v0`), each proven started, and a live `ip monitor link address`.
struct Watched {
    json: crate::harness::Proc,
    text: crate::harness::Proc,
    monitor: crate::harness::Proc,
}

fn watched_veth(ns: &Netns) -> Watched {
    ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    ns.ip(&["link", "set", "v1", "up"]);
    ns.ip(&["link", "set", "v0", "up"]);
    let watch = |args: &[&str]| {
        let mut cmd = ns.netkit();
        cmd.args(args);
        let proc = crate::harness::Proc::spawn(cmd);
        proc.stderr.wait_for(|l| l.starts_with("watching"), 1);
        proc
    };
    Watched {
        json: watch(&["--json", "iface", "watch"]),
        text: watch(&["iface", "watch", "v0"]),
        monitor: ip_monitor(ns, &["link", "address"]),
    }
}

/// `iface watch` said nothing when a link's flags changed other than by up/down and carrier
/// (`promisc on`, `multicast off`, `arp off`), nor when its alias or altnames changed, though
/// the kernel announces each (`ip monitor link` prints them). Each is now a link event that
/// says what changed, and every link record lists in `changed` all that changed with it.
#[test]
fn flag_alias_and_altname_changes_went_unreported() {
    if !privileged("iface watch flags alias altnames") {
        return;
    }
    let ns = Netns::with_loopback("wti-linkchg");
    let Watched {
        json,
        text: text_watch,
        monitor,
    } = watched_veth(&ns);
    for step in [
        &["link", "set", "v0", "promisc", "on"][..],
        &["link", "set", "v0", "multicast", "off"],
        &["link", "set", "v0", "arp", "off"],
        &["link", "set", "v0", "alias", "uplink"],
        &["link", "property", "add", "dev", "v0", "altname", "zero"],
        &["link", "set", "v0", "mtu", "1400"],
        &["link", "set", "v0", "down"],
    ] {
        ns.ip(step);
    }
    // A change after them all: once its event is out, theirs are too.
    ns.ip(&["addr", "add", "198.18.62.1/32", "dev", "lo"]);
    json.stdout.wait_line("198.18.62.1");
    let v0: Vec<Value> = json_lines(&json.stdout.all().join("\n"))
        .into_iter()
        .filter(|e| e["type"] == "link" && e["name"] == "v0")
        .collect();
    let field = |e: &Value, key: &str| e[key].as_array().cloned().unwrap_or_default();
    let has = |list: Vec<Value>, what: &str| list.contains(&what.into());
    let flags: Vec<&Value> = v0.iter().filter(|e| e["event"] == "flags").collect();
    assert_eq!(flags.len(), 3, "{v0:#?}");
    for (event, flag, set) in [
        (0, "PROMISC", true),
        (1, "MULTICAST", false),
        (2, "NOARP", true),
    ] {
        let e = flags[event];
        assert_eq!(has(field(e, "flags"), flag), set, "{e}");
        assert_eq!(has(field(e, "old_flags"), flag), !set, "{e}");
        assert!(has(field(e, "changed"), "flags"), "{e}");
    }
    let find = |event: &str| {
        let found = v0.iter().find(|e| e["event"] == event);
        found
            .unwrap_or_else(|| panic!("no {event}: {v0:#?}"))
            .clone()
    };
    let alias = find("alias");
    assert_eq!(
        (&alias["alias"], field(&alias, "changed")),
        (&"uplink".into(), vec!["alias".into()])
    );
    let altnames = find("altnames");
    assert_eq!(field(&altnames, "altnames"), vec![Value::from("zero")]);
    assert_eq!(field(&altnames, "changed"), vec![Value::from("altnames")]);
    assert!(has(field(&find("mtu"), "changed"), "mtu"));
    let down = field(&find("down"), "changed");
    assert!(has(down.clone(), "up") && has(down, "flags"), "{v0:#?}");
    // The text form says what changed.
    let lines = text_watch.stdout.wait_for(|l| l == "v0: link down", 1);
    let all = text_watch.stdout.all();
    for want in [
        "v0: link flags +PROMISC",
        "v0: link flags -MULTICAST",
        "v0: link flags +NOARP",
        "v0: link alias uplink",
        "v0: link altnames zero",
    ] {
        assert!(all.iter().any(|l| l == want), "{want}: {all:#?}{lines:?}");
    }
    // ip monitor saw the kernel announce each of the seven (it prints no alias).
    monitor.stdout.wait_line("198.18.62.1");
    let theirs = monitor.stdout.all();
    let announced = theirs.iter().filter(|l| l.contains(" v0@v1: <")).count();
    assert_eq!(announced, 7, "ip monitor: {theirs:#?}");
    let theirs = theirs.join("\n");
    for said in ["PROMISC", "NOARP", "altname zero"] {
        assert!(theirs.contains(said), "ip monitor: {said}: {theirs}");
    }
}

/// `ip link set X txqlen N` is announced by the kernel (`ip monitor link` prints a line for
/// it) but `iface watch` said nothing: the record's `changed` would have named `txqlen`, yet
/// no event carried it. It is now a link event, `txqlen`, with the new length.
#[test]
fn a_transmit_queue_length_change_went_unreported() {
    if !privileged("iface watch txqlen") {
        return;
    }
    let ns = Netns::with_loopback("wti-txqlen");
    let Watched {
        json,
        text: text_watch,
        monitor,
    } = watched_veth(&ns);
    ns.ip(&["link", "set", "v0", "txqlen", "500"]);
    // A change after it: once its event is out, the txqlen one is too.
    ns.ip(&["addr", "add", "198.18.62.2/32", "dev", "lo"]);
    json.stdout.wait_line("198.18.62.2");
    monitor.stdout.wait_line("198.18.62.2");
    let theirs = monitor.stdout.all();
    let announced = theirs.iter().filter(|l| l.contains(" v0@v1: <")).count();
    assert_eq!(announced, 1, "ip monitor: {theirs:#?}");
    let ours: Vec<Value> = json_lines(&json.stdout.all().join("\n"))
        .into_iter()
        .filter(|e| e["type"] == "link" && e["name"] == "v0")
        .collect();
    assert_eq!(ours.len(), 1, "{ours:#?}");
    assert_eq!(ours[0]["event"], "txqlen", "{ours:#?}");
    assert_eq!(ours[0]["txqlen"], 500, "{ours:#?}");
    assert_eq!(
        ours[0]["changed"],
        serde_json::json!(["txqlen"]),
        "{ours:#?}"
    );
    text_watch.stdout.wait_line("v0: link txqlen 500");
}
