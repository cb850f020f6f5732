//! `netkit iface watch` in a namespace: start it, change links and addresses with `ip`, read
//! the events (every wait bounded), and compare the address events with what
//! `ip monitor link address` printed for the same changes.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::detail::add_in_batch;
use crate::harness::{privileged, run, text, Netns, Proc};

/// A running process whose stdout is read in order, from where the last read stopped.
struct Running {
    proc: Proc,
    read: Cell<usize>,
}

impl Running {
    fn spawn(command: Command) -> Running {
        Running {
            proc: Proc::spawn(command),
            read: Cell::new(0),
        }
    }

    /// `netkit ARGS` in the namespace, once it says on stderr that it is watching.
    fn watch(ns: &Netns, args: &[&str]) -> Running {
        let mut command = ns.netkit();
        command.args(args);
        let running = Running::spawn(command);
        let said = running.proc.stderr.next(&mut 0);
        let said = said.unwrap_or_else(|| panic!("{args:?} never said it was watching"));
        assert!(
            said.starts_with("watching link and address events"),
            "{said}"
        );
        running
    }

    /// Stdout lines until `enough` holds for what was read (each line waited for with the
    /// harness's patience).
    fn read_until(&self, mut enough: impl FnMut(&[String]) -> bool) -> Vec<String> {
        let mut at = self.read.get();
        let mut seen = Vec::new();
        while !enough(&seen) {
            match self.proc.stdout.next(&mut at) {
                Some(line) => seen.push(line),
                None => panic!("output ended; read so far:\n{}", seen.join("\n")),
            }
        }
        self.read.set(at);
        seen
    }
}

fn json(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// `ip monitor link address` in the namespace, proven live: it has printed a sentinel
/// address added to `lo` after it started.
fn ip_monitor(ns: &Netns) -> Running {
    let mut command = Command::new("ip");
    command.args(["-n", &ns.name, "monitor", "link", "address"]);
    let monitor = Running::spawn(command);
    for n in 1..=200 {
        let sentinel = format!("198.18.254.{n}");
        ns.ip(&["addr", "add", &format!("{sentinel}/32"), "dev", "lo"]);
        let until = Instant::now() + Duration::from_millis(100);
        while Instant::now() < until {
            if monitor
                .proc
                .stdout
                .all()
                .iter()
                .any(|l| l.contains(&sentinel))
            {
                monitor
                    .read
                    .set(monitor.proc.stdout.position(&sentinel) + 1);
                return monitor;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    panic!("ip monitor printed none of its sentinels");
}

/// An address event as `(added|removed, local)`, from one `ip monitor` line; other lines
/// (links, lifetimes) give none.
fn ip_monitor_address(line: &str) -> Option<(String, String)> {
    let (verb, rest) = match line.strip_prefix("Deleted ") {
        Some(rest) => ("removed", rest),
        None => ("added", line),
    };
    let mut words = rest.split_whitespace();
    let family = words.nth(2)?;
    if family != "inet" && family != "inet6" {
        return None;
    }
    let local = words.next()?.split('/').next()?.to_string();
    Some((verb.to_string(), local))
}

fn event_names(events: &[Value], name: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["name"] == name || e["iface"] == name)
        .map(|e| {
            let event = e["event"].as_str().expect("event");
            match e["addr"].as_str() {
                Some(addr) => format!("{event} {addr}"),
                None => event.to_string(),
            }
        })
        .collect()
}

/// Whether `want` occurs in `got` in this order (other events may come between).
fn in_order(got: &[String], want: &[&str]) -> bool {
    let mut got = got.iter();
    want.iter()
        .all(|w| got.any(|g| g.trim_matches('"') == *w || g == w))
}

#[test]
fn watch_reports_link_and_address_changes_like_ip_monitor() {
    if !privileged("iface watch") {
        return;
    }
    let ns = Netns::with_loopback("iface-watch");
    ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    let watch = Running::watch(&ns, &["--json", "iface", "watch"]);
    let monitor = ip_monitor(&ns);
    for step in CHANGES {
        ns.ip(step);
    }
    let removed = |name: &'static str| {
        move |e: &Value| e["type"] == "link" && e["event"] == "removed" && e["name"] == name
    };
    let lines = watch.read_until(|seen| {
        let events = json(seen);
        events.iter().any(removed("v9")) && events.iter().any(removed("v1"))
    });
    let events = json(&lines);
    let v0: Vec<String> = event_names(&events, "v0")
        .into_iter()
        .chain(event_names(&events, "v9"))
        .collect();
    let want_v0 = [
        "up",
        "carrier",
        "added 198.18.0.1",
        "added 198.18.0.2",
        "added 198.18.5.1",
        "added 2001:db8::1",
        "mtu",
        "removed 198.18.0.2",
        "renamed",
        "down",
        "no-carrier",
        "removed",
    ];
    assert!(in_order(&v0, &want_v0), "v0: {v0:#?}");
    let v1 = event_names(&events, "v1");
    assert!(
        in_order(&v1, &["up", "carrier", "master", "removed"]),
        "v1: {v1:#?}"
    );
    check_details(&events);

    // ip monitor saw the same address changes, up to the same last message.
    let ip_lines = monitor.read_until(|seen| {
        seen.iter()
            .any(|l| l.starts_with("Deleted ") && l.contains(": v1@"))
    });
    let theirs: BTreeSet<(String, String)> = ip_lines
        .iter()
        .filter_map(|l| ip_monitor_address(l))
        .filter(|(_, local)| !local.starts_with("198.18.254."))
        .collect();
    let ours: BTreeSet<(String, String)> = events
        .iter()
        .filter(|e| e["type"] == "addr" && e["iface"] != "lo")
        .map(|e| {
            let verb = match e["event"].as_str() {
                Some("removed") => "removed",
                _ => "added",
            };
            (
                verb.to_string(),
                e["addr"].as_str().expect("addr").to_string(),
            )
        })
        .collect();
    assert_eq!(ours, theirs, "ip monitor:\n{}", ip_lines.join("\n"));
}

const CHANGES: &[&[&str]] = &[
    &["link", "set", "v0", "up"],
    &["link", "set", "v1", "up"],
    &["addr", "add", "198.18.0.1/24", "dev", "v0", "label", "v0:1"],
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
        "nodad",
        "preferred_lft",
        "0",
        "valid_lft",
        "300",
    ],
    &["link", "set", "v0", "mtu", "1400"],
    &["link", "add", "br0", "type", "bridge"],
    &["link", "set", "v1", "master", "br0"],
    &["addr", "del", "198.18.0.2/24", "dev", "v0"],
    &["link", "set", "v0", "name", "v9"],
    &["link", "set", "v9", "down"],
    &["link", "del", "v9"],
];

/// The records carry the interface and address as they are after each change.
fn check_details(events: &[Value]) {
    let find = |kind: &str, event: &str, key: &str, value: &str| {
        events
            .iter()
            .find(|e| e["type"] == kind && e["event"] == event && e[key] == value)
            .unwrap_or_else(|| panic!("no {kind} {event} with {key} {value}: {events:#?}"))
    };
    let labelled = find("addr", "added", "addr", "198.18.0.1");
    assert_eq!(
        (labelled["label"].as_str(), labelled["prefix"].as_u64()),
        (Some("v0:1"), Some(24))
    );
    let secondary = find("addr", "added", "addr", "198.18.0.2");
    assert!(secondary["flags"]
        .as_array()
        .expect("flags")
        .contains(&"secondary".into()));
    assert_eq!(
        find("addr", "added", "addr", "198.18.5.1")["peer"],
        "198.18.5.2"
    );
    let deprecated = find("addr", "added", "addr", "2001:db8::1");
    assert!(deprecated["flags"]
        .as_array()
        .expect("flags")
        .contains(&"deprecated".into()));
    assert_eq!(deprecated["preferred_lft_s"], 0);
    assert_eq!(find("link", "mtu", "name", "v0")["mtu"], 1400);
    assert_eq!(find("link", "master", "name", "v1")["master"], "br0");
    assert_eq!(find("link", "renamed", "name", "v9")["old_name"], "v0");
    assert_eq!(find("link", "added", "name", "br0")["kind"], "bridge");
    let down = find("link", "down", "name", "v9");
    assert_eq!(
        (down["up"].as_bool(), down["running"].as_bool()),
        (Some(false), Some(false))
    );
}

#[test]
fn watch_one_interface_by_altname_in_text_until_it_is_removed() {
    if !privileged("iface watch one") {
        return;
    }
    let ns = Netns::new("iface-watchone");
    ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    ns.ip(&["link", "property", "add", "dev", "v0", "altname", "zero"]);
    let mut watch = Running::watch(&ns, &["iface", "watch", "zero"]);
    for step in [
        &["link", "set", "v1", "up"][..],
        &["addr", "add", "198.18.1.1/24", "dev", "v1"],
        &["link", "set", "v0", "up"],
        &["addr", "add", "198.18.0.1/24", "brd", "+", "dev", "v0"],
        &["link", "del", "v0"],
    ] {
        ns.ip(step);
    }
    let lines = watch.read_until(|seen| seen.iter().any(|l| l == "v0: link removed"));
    let want = [
        "v0: link up",
        "v0: link carrier",
        "v0: addr added inet 198.18.0.1/24 brd 198.18.0.255 scope global",
        "v0: link removed",
    ];
    let got: Vec<String> = lines.clone();
    assert!(in_order(&got, &want), "{got:#?}");
    assert!(lines.iter().all(|l| l.starts_with("v0: ")), "{lines:#?}");
    // Nothing more can happen to v0: the watch ends by itself, successfully.
    assert_eq!(watch.proc.wait(), 0, "watch did not end after v0 went away");
}

/// Addresses added, flushed and added again: more messages than the socket buffer holds.
const BURST: usize = 5000;

#[test]
fn watch_catches_up_after_the_kernel_dropped_a_burst() {
    if !privileged("iface watch burst") {
        return;
    }
    let ns = Netns::new("iface-watchburst");
    ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    let watch = Running::watch(&ns, &["-v", "--json", "iface", "watch", "v0"]);
    // Stopped while the burst comes, the watcher falls behind the kernel by all of it.
    watch.proc.signal("STOP");
    add_in_batch(&ns, "198.18", BURST);
    ns.ip(&["addr", "flush", "dev", "v0"]);
    add_in_batch(&ns, "198.19", BURST);
    watch.proc.signal("CONT");
    let ip: Vec<Value> =
        serde_json::from_str(&ns.ip(&["-j", "addr", "show", "dev", "v0"])).expect("ip -j addr");
    let theirs: BTreeSet<String> = ip[0]["addr_info"]
        .as_array()
        .expect("addr_info")
        .iter()
        .map(|a| a["local"].as_str().expect("local").to_string())
        .collect();
    assert_eq!(theirs.len(), BURST);
    // Replaying the events gives the kernel's final set of addresses.
    let mut replayed = BTreeSet::new();
    let mut done = 0;
    watch.read_until(|seen| {
        for event in json(&seen[done..]) {
            let addr = event["addr"].as_str().map(String::from);
            match (event["type"].as_str(), event["event"].as_str(), addr) {
                (Some("addr"), Some("added"), Some(addr)) => replayed.insert(addr),
                (Some("addr"), Some("removed"), Some(addr)) => replayed.remove(&addr),
                _ => false,
            };
        }
        done = seen.len();
        replayed == theirs
    });
    // 15000 messages overflow a receive buffer of rmem_max (4 MiB on these machines): the
    // replay above then went through the watcher's resynchronisation.
    let said: Vec<String> = watch.proc.stderr.all();
    let resynced = said
        .iter()
        .any(|l| l.contains("reading every interface again"));
    let rmem_max = std::fs::read_to_string("/proc/sys/net/core/rmem_max").unwrap_or_default();
    match rmem_max.trim().parse::<usize>() {
        Ok(max) if max <= 4 << 20 => assert!(resynced, "no resync after {done} lines: {said:?}"),
        _ => eprintln!("watch burst: rmem_max {rmem_max}: resync provoked: {resynced}"),
    }
}

#[test]
fn watch_of_an_unknown_interface_is_an_input_error() {
    let (code, stdout, stderr) = text(&run(&["iface", "watch", "nosuchif0"]));
    assert_eq!(code, 2, "{stdout}");
    assert_eq!(stderr, "netkit: nosuchif0: no such interface\n");
}
