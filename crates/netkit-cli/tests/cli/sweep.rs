//! `netkit sweep` against test networks the tests build: a namespace `a` where netkit runs,
//! joined by a veth pair to a namespace `b` that owns a known set of live addresses; every
//! other address of the swept ranges is silent (nothing answers its ARP or neighbour
//! solicitation). Loopback targets answer from inside a namespace of their own.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use netkit::report::sweep::{ChangeRecord, HostRecord, SummaryRecord};
use serde_json::Value;

use crate::harness::{privileged, run, text, Netns, Proc};

/// The sweeper's own addresses (they answer too).
const OWN: [&str; 2] = ["198.18.0.1", "2001:db8::1"];
/// The addresses of namespace `b`.
const LIVE: [&str; 8] = [
    "198.18.0.5",
    "198.18.0.9",
    "198.18.0.10",
    "198.18.0.14",
    "2001:db8::5",
    "2001:db8::9",
    "2001:db8::a",
    "2001:db8::e",
];
/// 16 IPv4 and 16 IPv6 targets.
const RANGES: [&str; 2] = ["198.18.0.0/28", "2001:db8::/124"];

/// Namespace `a` (netkit's side) and `b` (the live hosts), removed on drop.
struct Lab {
    a: Netns,
    b: Netns,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let (a, b) = (Netns::new(tag), Netns::new(tag));
        // The veth pair is made in `a` and its end moved (not made in `b` at once, as
        // `Netns::veth` does): made that way, the first neighbour solicitation after the links
        // come up is lost, and the v6 hosts answer a second late, past `--timeout 1s`.
        a.ip(&["link", "add", "nk0", "type", "veth", "peer", "name", "nk1"]);
        a.ip(&["link", "set", "nk1", "netns", &b.name]);
        a.ip(&["addr", "add", "198.18.0.1/24", "dev", "nk0"]);
        a.ip(&["addr", "add", "2001:db8::1/120", "dev", "nk0", "nodad"]);
        a.ip(&["link", "set", "nk0", "up"]);
        a.ip(&["link", "set", "lo", "up"]);
        // A primary address outside the swept ranges, so that deleting a live one does not
        // take the other (secondary) addresses of its subnet with it.
        b.ip(&["addr", "add", "198.18.0.200/24", "dev", "nk1"]);
        for addr in LIVE {
            b.ip(&["addr", "add", &with_prefix(addr), "dev", "nk1", "nodad"]);
        }
        b.ip(&["link", "set", "nk1", "up"]);
        Lab { a, b }
    }

    /// Runs `netkit ARGS` in namespace `a`.
    fn netkit(&self, args: &[&str]) -> (i32, String, String) {
        text(&self.a.netkit().args(args).output().expect("run netkit"))
    }
}

fn with_prefix(addr: &str) -> String {
    let prefix = if addr.contains(':') { 120 } else { 24 };
    format!("{addr}/{prefix}")
}

fn expected_alive() -> BTreeSet<String> {
    OWN.iter()
        .chain(LIVE.iter())
        .map(|s| s.to_string())
        .collect()
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

fn alive_set(hosts: &[HostRecord]) -> BTreeSet<String> {
    hosts
        .iter()
        .filter(|h| h.alive)
        .map(|h| h.addr.to_string())
        .collect()
}

#[test]
fn icmp_finds_exactly_the_live_hosts_of_v4_and_v6_ranges() {
    if privileged("sweep icmp ranges") {
        finds_exactly_the_live_hosts("icmp");
    }
}

#[test]
fn tcp_finds_exactly_the_live_hosts_of_v4_and_v6_ranges() {
    if privileged("sweep tcp ranges") {
        finds_exactly_the_live_hosts("tcp:9");
    }
}

fn finds_exactly_the_live_hosts(method: &str) {
    let lab = Lab::new("swr");
    let mut args = vec!["--json", "sweep", "--method", method, "--timeout", "1s"];
    args.extend(RANGES);
    let (code, stdout, stderr) = lab.netkit(&args);
    assert_eq!(code, 1, "some hosts are silent: {stderr}");
    let records = records(&stdout);
    let hosts: Vec<HostRecord> = of_type(&records, "host");
    assert_eq!(hosts.len(), 32, "one host record per target: {stdout}");
    assert_eq!(alive_set(&hosts), expected_alive());
    let dead: BTreeSet<String> = hosts
        .iter()
        .filter(|h| !h.alive)
        .map(|h| h.addr.to_string())
        .collect();
    assert_eq!(dead.len(), 22, "{dead:?}");
    assert!(hosts
        .iter()
        .all(|h| h.alive == h.rtt_ms.is_some() && h.round == 1));
    let summaries: Vec<SummaryRecord> = of_type(&records, "summary");
    assert_eq!(summaries.len(), 1);
    assert_eq!((summaries[0].alive, summaries[0].dead), (10, 22));
}

#[test]
fn human_output_and_its_filters() {
    if !privileged("sweep human output") {
        return;
    }
    let lab = Lab::new("swh");
    let sweep = |filter: &[&str]| {
        let mut args = vec!["sweep", "--timeout", "1s"];
        args.extend(RANGES);
        args.extend(filter);
        lab.netkit(&args)
    };
    let (code, stdout, stderr) = sweep(&[]);
    assert_eq!(code, 1, "{stderr}");
    let alive: BTreeSet<String> = stdout
        .lines()
        .filter_map(|l| l.strip_suffix(" is alive"))
        .map(String::from)
        .collect();
    assert_eq!(alive, expected_alive(), "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some("Total 22 hosts are inactive"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 11, "{stdout}");

    let (code, stdout, _) = sweep(&["--dead"]);
    assert_eq!(code, 1);
    let inactive = stdout
        .lines()
        .filter(|l| l.ends_with(" is inactive"))
        .count();
    assert_eq!(inactive, 22, "{stdout}");
    assert!(stdout.contains("198.18.0.7 is inactive\n"), "{stdout}");
    assert!(!stdout.contains("is alive"), "{stdout}");
    assert_eq!(stdout.lines().last(), Some("Total 22 hosts are inactive"));

    let (code, stdout, _) = sweep(&["--alive"]);
    assert_eq!(code, 1);
    assert_eq!(stdout.lines().count(), 10, "alive lines only: {stdout}");
    assert!(stdout.lines().all(|l| l.ends_with(" is alive")), "{stdout}");
}

#[test]
fn tcp_listener_and_closed_port_are_alive_a_silent_address_is_not() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let open = listener.local_addr().expect("addr").port().to_string();
    let closed = {
        let gone = TcpListener::bind("127.0.0.1:0").expect("bind");
        gone.local_addr().expect("addr").port().to_string()
    };
    for port in [&open, &closed] {
        let method = format!("tcp:{port}");
        let (code, stdout, stderr) = text(&run(&["sweep", "127.0.0.1", "--method", &method]));
        assert_eq!(code, 0, "port {port}: {stderr}");
        assert_eq!(stdout, "127.0.0.1 is alive\nTotal 0 hosts are inactive\n");
    }
    if !privileged("sweep tcp silent") {
        return;
    }
    let lab = Lab::new("swt");
    let (code, stdout, stderr) = lab.netkit(&[
        "sweep",
        "198.18.0.7",
        "--method",
        "tcp:9",
        "--timeout",
        "300ms",
        "--dead",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        stdout,
        "198.18.0.7 is inactive\nTotal 1 hosts are inactive\n"
    );
}

#[test]
fn all_of_127_0_0_0_slash_16_answers_icmp_inside_a_namespace() {
    if privileged("sweep loopback /16 icmp") {
        all_of_127_0_0_0_slash_16_answers("icmp");
    }
}

#[test]
fn all_of_127_0_0_0_slash_16_answers_tcp_inside_a_namespace() {
    if privileged("sweep loopback /16 tcp") {
        all_of_127_0_0_0_slash_16_answers("tcp:9");
    }
}

fn all_of_127_0_0_0_slash_16_answers(method: &str) {
    let ns = Netns::with_loopback("swl");
    let out = ns
        .netkit()
        .args(["--json", "sweep", "127.0.0.0/16", "--rate", "50000"])
        .args(["--method", method])
        .output()
        .expect("run");
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 0, "{stderr}");
    let records = records(&stdout);
    let hosts: Vec<HostRecord> = of_type(&records, "host");
    assert_eq!(alive_set(&hosts).len(), 65536);
    assert_eq!(hosts.len(), 65536);
    let summary: Vec<SummaryRecord> = of_type(&records, "summary");
    assert_eq!((summary[0].alive, summary[0].dead), (65536, 0));
}

#[test]
fn periodic_icmp_rounds_report_hosts_going_down_and_coming_up() {
    if privileged("sweep periodic icmp") {
        periodic_rounds_report_changes("icmp");
    }
}

#[test]
fn periodic_tcp_rounds_report_hosts_going_down_and_coming_up() {
    if privileged("sweep periodic tcp") {
        periodic_rounds_report_changes("tcp:9");
    }
}

fn periodic_rounds_report_changes(method: &str) {
    let lab = Lab::new("swp");
    let mut cmd = lab.a.netkit();
    cmd.args(["--json", "sweep", "198.18.0.0/28", "--method", method])
        .args(["--timeout", "600ms", "--every", "1500ms", "--rounds", "4"]);
    let mut sweep = Proc::spawn(cmd);
    let (mut records, mut cursor) = (Vec::new(), 0);
    while let Some(line) = sweep.stdout.next(&mut cursor) {
        let record: Value = serde_json::from_str(&line).expect("json");
        if record["type"] == "summary" && record["round"] == 1 {
            lab.b.ip(&["addr", "del", "198.18.0.5/24", "dev", "nk1"]);
            lab.b.ip(&["addr", "add", "198.18.0.7/24", "dev", "nk1"]);
        }
        if record["type"] == "summary" && record["round"] == 2 {
            lab.b.ip(&["addr", "add", "198.18.0.5/24", "dev", "nk1"]);
        }
        records.push(record);
    }
    let code = sweep.wait();
    assert_eq!(code, 1, "silent hosts in the last round: {records:?}");
    check_changes(&records);
}

/// The change records are exactly the differences between consecutive rounds, and the three
/// changes made to namespace `b` all show up.
fn check_changes(records: &[Value]) {
    let hosts: Vec<HostRecord> = of_type(records, "host");
    let changes: Vec<ChangeRecord> = of_type(records, "change");
    let mut rounds: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for host in hosts.iter().filter(|h| h.alive) {
        rounds
            .entry(host.round)
            .or_default()
            .insert(host.addr.to_string());
    }
    assert_eq!(rounds.len(), 4, "{records:?}");
    assert_eq!(hosts.len(), 4 * 16, "one host record per target per round");
    for round in 2..=4 {
        let (before, now) = (&rounds[&(round - 1)], &rounds[&round]);
        let mut expected: BTreeSet<(String, bool)> = BTreeSet::new();
        expected.extend(now.difference(before).map(|a| (a.clone(), true)));
        expected.extend(before.difference(now).map(|a| (a.clone(), false)));
        let got: BTreeSet<(String, bool)> = changes
            .iter()
            .filter(|c| c.round == round)
            .map(|c| (c.addr.to_string(), c.alive))
            .collect();
        assert_eq!(got, expected, "round {round}: {records:?}");
    }
    assert!(changes.iter().all(|c| c.round >= 2));
    let when = |addr: &str, alive: bool| {
        changes
            .iter()
            .find(|c| c.addr.to_string() == addr && c.alive == alive)
            .map(|c| c.round)
    };
    let down = when("198.18.0.5", false).expect("198.18.0.5 went down");
    let up = when("198.18.0.5", true).expect("198.18.0.5 came back");
    assert!(down < up, "{changes:?}");
    assert!(
        when("198.18.0.7", true).is_some(),
        "198.18.0.7 came up: {changes:?}"
    );
    assert_eq!(rounds[&4].len(), 6, "{:?}", rounds[&4]);
}

/// One HTTP/1.1 request; the whole response (the server closes the connection).
fn http_get(addr: &str, method: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to metrics");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let request = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    response
}

#[test]
fn metrics_are_served_in_prometheus_text_format() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let method = format!("tcp:{}", listener.local_addr().expect("addr").port());
    let mut cmd = crate::harness::netkit();
    cmd.args(["--json", "sweep", "127.0.0.1-4", "--method", &method])
        .args([
            "--every",
            "100ms",
            "--rounds",
            "600",
            "--metrics",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::null());
    // Killed when dropped, at the end of the test.
    let sweep = Proc::spawn_quiet(cmd);
    let notice = sweep.stderr.wait_line("metrics on");
    let addr = notice
        .trim()
        .strip_prefix("netkit: metrics on http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("unexpected notice {notice:?}"))
        .to_string();
    let mut body = String::new();
    for _ in 0..300 {
        body = http_get(&addr, "GET", "/metrics");
        if body.lines().any(|l| l == "netkit_sweep_rounds_total 2") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(body.starts_with("HTTP/1.1 200 OK\r\n"), "{body}");
    assert!(
        body.contains("Content-Type: text/plain; version=0.0.4"),
        "{body}"
    );
    for line in [
        "# TYPE netkit_sweep_up gauge",
        "netkit_sweep_up{addr=\"127.0.0.1\"} 1",
        "netkit_sweep_up{addr=\"127.0.0.4\"} 1",
        "netkit_sweep_alive 4",
        "netkit_sweep_dead 0",
        "netkit_sweep_targets 4",
    ] {
        assert!(body.lines().any(|l| l == line), "missing {line}:\n{body}");
    }
    assert!(
        body.contains("netkit_sweep_rtt_seconds{addr=\"127.0.0.3\"} "),
        "{body}"
    );
    let missing = http_get(&addr, "GET", "/");
    assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
    let head = http_get(&addr, "HEAD", "/metrics");
    assert!(
        head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"),
        "{head}"
    );
    drop(sweep);
}

#[test]
fn bad_input_exits_2_naming_it() {
    for (args, input) in [
        (vec!["sweep", "198.18.0.300"], "198.18.0.300"),
        (vec!["sweep", "198.18.0.9-3"], "198.18.0.9-3"),
        (vec!["sweep", "127.0.0.1", "--method", "udp:53"], "udp:53"),
        (vec!["sweep", "127.0.0.1", "--method", "tcp:0"], "tcp:0"),
        (vec!["sweep", "127.0.0.1", "--rate", "0"], "0"),
        (vec!["sweep", "2001:db8::/64", "--force"], "targets"),
    ] {
        let (code, stdout, stderr) = text(&run(&args));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert!(
            stderr.starts_with("netkit: ") && stderr.contains(input),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
}

#[test]
fn icmp_refused_by_the_system_exits_3_saying_what_to_do() {
    if !privileged("sweep icmp denied") {
        return;
    }
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").expect("sysctl");
    let bounds: Vec<u32> = range
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    let nobody_may_ping = bounds.len() == 2 && (bounds[0]..=bounds[1]).contains(&65534);
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args([env!("CARGO_BIN_EXE_netkit"), "sweep", "127.0.0.1"])
        .output()
        .expect("setpriv");
    let (code, stdout, stderr) = text(&out);
    if nobody_may_ping {
        assert_eq!(
            (code, stdout.as_str()),
            (0, "127.0.0.1 is alive\nTotal 0 hosts are inactive\n")
        );
    } else {
        assert_eq!(code, 3, "{stderr}");
        assert!(
            stderr.starts_with("netkit: open an ICMP socket: "),
            "{stderr}"
        );
        assert!(
            stderr.contains("ping_group_range") && stderr.contains("CAP_NET_RAW"),
            "{stderr}"
        );
    }
}

#[test]
fn an_unprivileged_user_sweeps_with_datagram_icmp_sockets() {
    if !privileged("sweep datagram icmp") {
        return;
    }
    // ping_group_range is per network namespace: widen it in a namespace of our own only.
    let ns = Netns::with_loopback("swd");
    let script = format!(
        "sysctl -qw net.ipv4.ping_group_range='0 2147483647' && exec setpriv --reuid=65534 \
         --regid=65534 --clear-groups {} --json sweep 127.0.0.0/24 ::1",
        env!("CARGO_BIN_EXE_netkit")
    );
    let out = ns
        .command("sh")
        .args(["-c", &script])
        .output()
        .expect("run");
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 0, "{stderr}");
    let records = records(&stdout);
    let hosts: Vec<HostRecord> = of_type(&records, "host");
    assert_eq!(alive_set(&hosts).len(), 257, "{stdout}");
    assert!(alive_set(&hosts).contains("::1"));
}
