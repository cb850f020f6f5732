//! `netkit scan` against listeners the tests open themselves on random ports, inside network
//! namespaces (so nothing else listens there): full-range scans over IPv4 and IPv6 must find
//! exactly those listeners, on loopback and on a second namespace behind a veth pair; a silent
//! host is reported filtered within the timeout; `ulimit -n 128` changes nothing; phantom open
//! ports from TCP self-connect never appear.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::process::Command;

use netkit::report::scan::{
    HostReport, HostStatus, PortReport, PortState, ScanSummary, Unreachable,
};
use serde_json::Value;

use crate::harness::{privileged, run, text, Netns};

/// Runs `f` on a thread that has entered the namespace: sockets it creates live there.
pub fn inside<T: Send + 'static>(ns: &Netns, f: impl FnOnce() -> T + Send + 'static) -> T {
    ns.run_in(f).expect("a thread in the namespace")
}

/// `n` listeners on random ports of each `addr` (port 0, read back).
pub fn listeners(wanted: &[(&str, usize)]) -> Vec<TcpListener> {
    let bind = |addr: &str| TcpListener::bind((addr, 0)).expect("bind");
    wanted
        .iter()
        .flat_map(|&(addr, n)| (0..n).map(move |_| bind(addr)))
        .collect()
}

pub fn addrs(listeners: &[TcpListener]) -> BTreeSet<SocketAddr> {
    listeners
        .iter()
        .map(|l| l.local_addr().expect("addr"))
        .collect()
}

/// The open ports, unreachable targets and the summary of a `--json scan`, each line
/// deserialised.
pub struct Scan {
    pub open: Vec<PortReport>,
    pub unreachable: Vec<Unreachable>,
    /// The host records (one per target: up when scanned, down when discovery found it so).
    pub hosts: Vec<HostReport>,
    pub summary: ScanSummary,
}

impl Scan {
    /// The open ports found.
    pub fn found(&self) -> BTreeSet<SocketAddr> {
        self.open
            .iter()
            .map(|p| SocketAddr::new(p.addr, p.port))
            .collect()
    }
}

/// Deserialises every line of a `--json scan`'s output.
pub fn parse_scan(stdout: &str) -> Scan {
    let (mut open, mut unreachable, mut summary) = (Vec::new(), Vec::new(), None);
    let mut hosts = Vec::new();
    for line in stdout.lines() {
        let value: Value = serde_json::from_str(line).expect("json line");
        match value["type"].as_str() {
            Some("port") => open.push(serde_json::from_value(value).expect("port record")),
            Some("unreachable") => {
                unreachable.push(serde_json::from_value(value).expect("unreachable record"))
            }
            Some("host") => hosts.push(serde_json::from_value(value).expect("host record")),
            Some("summary") => summary = Some(serde_json::from_value(value).expect("summary")),
            other => panic!("unexpected record {other:?}: {line}"),
        }
    }
    let summary = summary.expect("a summary record");
    Scan {
        open,
        unreachable,
        hosts,
        summary,
    }
}

pub fn scan_json(mut cmd: Command, args: &[&str]) -> Scan {
    let out = cmd
        .arg("--json")
        .arg("scan")
        .args(args)
        .output()
        .expect("run netkit");
    let (code, stdout, stderr) = text(&out);
    assert!(
        code == 0 || code == 1,
        "scan {args:?}: exit {code}\nstdout {stdout}\nstderr {stderr}"
    );
    let scan = parse_scan(&stdout);
    // SPEC: 0 when every target answered, 1 when one was silent, down or unreachable.
    let s = &scan.summary;
    let negative = s.silent + s.down + s.unreachable > 0;
    assert_eq!(
        code,
        i32::from(negative),
        "scan {args:?}\nstdout {stdout}\nstderr {stderr}"
    );
    scan
}

pub fn assert_exact(scan: &Scan, expected: &BTreeSet<SocketAddr>, hosts: u64, ports: u64) {
    assert_eq!(&scan.found(), expected, "open ports: expected vs got");
    let s = &scan.summary;
    assert_eq!((s.hosts, s.scanned), (hosts, ports), "{s:?}");
    assert_eq!(s.open, expected.len() as u64, "{s:?}");
    assert_eq!(s.filtered, 0, "{s:?}");
    assert_eq!(s.open + s.closed, hosts * ports, "{s:?}");
    assert!(scan.open.iter().all(|p| p.state == PortState::Open));
}

#[test]
fn full_range_v4_and_v6_find_exactly_the_listeners() {
    if !privileged("scan full range") {
        return;
    }
    let ns = Netns::with_loopback("scanall");
    let held = inside(&ns, || listeners(&[("127.0.0.1", 3), ("::1", 3)]));
    let scan = scan_json(ns.netkit(), &["127.0.0.1", "::1", "-p", "all"]);
    assert_exact(&scan, &addrs(&held), 2, 65535);
}

/// The bug: scanners trust "connected", but a socket whose ephemeral source port equals its
/// destination port connects to itself (TCP simultaneous open), and two probes can connect to
/// each other; ports in the ephemeral range then show as open with nothing listening. Here the
/// ephemeral range is shrunk to the ten ports scanned, fifty times over, so that without the
/// guard phantoms are all but certain; the scan must still find every port closed.
#[test]
fn phantom_open_ports_from_tcp_self_connect() {
    if !privileged("scan self-connect") {
        return;
    }
    let ns = Netns::with_loopback("phantom");
    ns.sysctl(&["net.ipv4.ip_local_port_range=40000 40009".to_string()])
        .expect("sysctl");
    let targets = ["127.0.0.1,::1"; 50].join(",");
    let scan = scan_json(ns.netkit(), &[&targets, "-p", "40000-40009"]);
    assert_exact(&scan, &BTreeSet::new(), 100, 10);
}

fn lab() -> (Netns, Netns) {
    let scanner = Netns::new("scanner");
    let remote = Netns::new("remote");
    scanner.veth("nk0", &remote, "nk1").expect("veth pair");
    scanner.ip(&["addr", "add", "198.18.0.1/24", "dev", "nk0"]);
    scanner.ip(&["addr", "add", "2001:db8::1/64", "dev", "nk0", "nodad"]);
    remote.ip(&["addr", "add", "198.18.0.2/24", "dev", "nk1"]);
    remote.ip(&["addr", "add", "2001:db8::2/64", "dev", "nk1", "nodad"]);
    for (ns, dev) in [(&scanner, "nk0"), (&remote, "nk1")] {
        ns.ip(&["link", "set", dev, "up"]);
        ns.ip(&["link", "set", "lo", "up"]);
    }
    // Silent networks: routed to the remote namespace, which forwards nothing and says nothing.
    scanner.ip(&["route", "add", "198.19.0.0/24", "via", "198.18.0.2"]);
    scanner.ip(&[
        "-6",
        "route",
        "add",
        "2001:db8:5::/64",
        "via",
        "2001:db8::2",
    ]);
    // IPv4 drops what it may not forward without a word, but IPv6 answers a packet it has no
    // route for with ICMPv6 "no route" even when not forwarding (which made this network
    // silent only while the remote side was still resolving the scanner's address): a
    // blackhole route drops it silently.
    remote.ip(&["-6", "route", "add", "blackhole", "2001:db8:5::/64"]);
    (scanner, remote)
}

#[test]
fn remote_host_full_range_over_a_veth_pair() {
    if !privileged("scan remote host") {
        return;
    }
    let (scanner, remote) = lab();
    let held = inside(&remote, || {
        listeners(&[("198.18.0.2", 2), ("2001:db8::2", 2)])
    });
    // -Pn: every port of both hosts, whatever a discovery round in a namespace this fresh
    // says (the first TCP connect to the new IPv6 neighbour takes about a second).
    let args = ["-Pn", "198.18.0.2,2001:db8::2", "-p", "all"];
    let scan = scan_json(scanner.netkit(), &args);
    assert_exact(&scan, &addrs(&held), 2, 65535);
    // A host record for each, once finished: up because the user said so, ports counted.
    assert_eq!(scan.hosts.len(), 2, "{:?}", scan.hosts);
    for host in &scan.hosts {
        assert_eq!(
            (host.status, host.reason.as_str()),
            (HostStatus::Up, "user-set")
        );
        assert_eq!(
            (host.open, host.closed, host.filtered),
            (Some(2), Some(65533), Some(0))
        );
    }
}

#[test]
fn silent_hosts_are_filtered_within_the_timeout() {
    if !privileged("scan silent host") {
        return;
    }
    let (scanner, _remote) = lab();
    // -Pn: scanned although no discovery probe gets an answer.
    let args = [
        "-Pn",
        "198.19.0.7",
        "2001:db8:5::7",
        "-p",
        "20-29",
        "--timeout",
        "300ms",
        "--retries",
        "1",
    ];
    let scan = scan_json(scanner.netkit(), &args);
    let s = &scan.summary;
    assert!(scan.open.is_empty(), "{:?}", scan.open);
    assert_eq!((s.filtered, s.closed, s.open), (20, 0, 0), "{s:?}");
    assert_eq!(s.silent, 2, "{s:?}");
    // 2 attempts of 300 ms, all ports in parallel: generously bounded, not timed.
    assert!(s.elapsed_s < 20.0, "{s:?}");
}

/// `-vv` traces each try of a silent port on stderr: both tries sent, each unanswered (its
/// socket closed or expired), then the verdict with the tries it took; `-v` traces none.
#[test]
fn vv_traces_each_try_of_a_silent_port() {
    if !privileged("scan -vv trace of a silent port") {
        return;
    }
    let (scanner, _remote) = lab();
    let args = [
        "-Pn",
        "198.19.0.7",
        "-p",
        "20",
        "--timeout",
        "300ms",
        "--retries",
        "1",
    ];
    let out = scanner.netkit().arg("-vv").arg("scan").args(args).output();
    let (_, stdout, stderr) = text(&out.expect("run netkit"));
    let port = "scan 198.19.0.7:20: ";
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(port)).collect();
    let has = |what: &str| lines.iter().filter(|l| l.contains(what)).count();
    assert_eq!(has("try 1 sent at +"), 1, "{stderr}");
    assert_eq!(has("try 2 sent at +"), 1, "{stderr}");
    assert_eq!(has(" unanswered, "), 2, "{stderr}");
    assert_eq!(has("filtered (no-response) at +"), 1, "{stderr}");
    assert!(
        lines.last().is_some_and(|l| l.ends_with("after 2 tries")),
        "{stderr}"
    );
    assert!(stdout.contains("filtered"), "{stdout}");
    let out = scanner.netkit().arg("-v").arg("scan").args(args).output();
    let (_, _, stderr) = text(&out.expect("run netkit"));
    assert!(!stderr.contains(port), "{stderr}");
}

/// `-vv` names what answered each try, in nmap's `--reason` words, with its round trip.
#[test]
fn vv_traces_what_answered_each_try() {
    if !privileged("scan -vv trace of answers") {
        return;
    }
    let ns = Netns::with_loopback("trace");
    let (open, closed) = inside(&ns, || {
        let held = listeners(&[("127.0.0.1", 2)]);
        let closed = held[1].local_addr().expect("addr").port();
        (held.into_iter().next().expect("a listener"), closed)
    });
    let port = open.local_addr().expect("addr").port();
    let ports = format!("{port},{closed}");
    let out = ns
        .netkit()
        .args(["-vv", "scan", "127.0.0.1", "-p", &ports])
        .output();
    let (code, _, stderr) = text(&out.expect("run netkit"));
    assert_eq!(code, 0, "{stderr}");
    let open_try = format!("scan 127.0.0.1:{port}: try 1 answered at +");
    let closed_try = format!("scan 127.0.0.1:{closed}: try 1 answered at +");
    let line = |start: &str| {
        stderr
            .lines()
            .find(|l| l.contains(start))
            .map(str::to_owned)
    };
    let answered = line(&open_try).expect(&stderr);
    assert!(answered.contains(": syn-ack after "), "{answered}");
    let refused = line(&closed_try).expect(&stderr);
    assert!(refused.contains(": reset after "), "{refused}");
    let verdict = format!("scan 127.0.0.1:{closed}: closed (conn-refused) at +");
    let verdict = line(&verdict).expect(&stderr);
    assert!(verdict.ends_with("after 1 try"), "{verdict}");
    drop(open);
}

fn limited(ns: &Netns, nofile: u64) -> Command {
    let mut cmd = ns.netkit();
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::resource::setrlimit(
                nix::sys::resource::Resource::RLIMIT_NOFILE,
                nofile,
                nofile,
            )
            .map_err(std::io::Error::from)
        });
    }
    cmd
}

#[test]
fn ulimit_128_stays_exact_even_when_asked_for_more() {
    if !privileged("scan ulimit") {
        return;
    }
    let ns = Netns::with_loopback("ulimit");
    let held = inside(&ns, || listeners(&[("127.0.0.1", 2), ("::1", 2)]));
    for extra in [&[][..], &["--concurrency", "1000"][..]] {
        let mut args = vec!["127.0.0.1", "::1", "-p", "all"];
        args.extend_from_slice(extra);
        let scan = scan_json(limited(&ns, 128), &args);
        assert_exact(&scan, &addrs(&held), 2, 65535);
    }
}

#[test]
fn default_ports_are_the_top_thousand() {
    if !privileged("scan default ports") {
        return;
    }
    let ns = Netns::with_loopback("top");
    let scan = scan_json(ns.netkit(), &["127.0.0.1"]);
    assert_eq!((scan.summary.scanned, scan.summary.closed), (1000, 1000));
}

/// A listener on loopback that greets every client with `greeting`.
fn greeter(greeting: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(4).flatten() {
            let _ = (&conn).write_all(greeting);
        }
    });
    port
}

#[test]
fn banners_are_read_and_sanitised() {
    let port = greeter(b"220 hi \x1b[31mred\x1b]0;title\x07\r\nmore\x9b\r\n").to_string();
    let out = run(&[
        "scan",
        "127.0.0.1",
        "-p",
        &port,
        "--banner",
        "--timeout",
        "5s",
    ]);
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !out.stdout.iter().any(|b| *b == 0x1b || *b == 0x07),
        "{stdout:?}"
    );
    let want = r#""220 hi \x1b[31mred\x1b]0;title\x07\r\nmore\x9b""#;
    assert!(stdout.contains(want), "expected {want}\ngot {stdout}");
    let out = run(&[
        "--json",
        "scan",
        "127.0.0.1",
        "-p",
        &port,
        "--banner",
        "--timeout",
        "5s",
    ]);
    let scan = parse_scan(&text(&out).1);
    let banner = scan.open[0].banner.as_deref().expect("a banner");
    assert_eq!(format!("\"{banner}\""), want);
}

#[test]
fn output_file_gets_the_same_lines_and_records() {
    let port = greeter(b"").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    for json in [false, true] {
        let file = dir.path().join(format!("out-{json}"));
        let mut args = vec![
            "scan",
            "127.0.0.1",
            "-p",
            &port,
            "-o",
            file.to_str().expect("path"),
        ];
        if json {
            args.insert(0, "--json");
        }
        let (code, stdout, stderr) = text(&run(&args));
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(
            std::fs::read_to_string(&file).expect("read -o file"),
            stdout
        );
        let first = stdout.lines().next().expect("a line");
        assert!(first.contains(&port) && first.contains("open"), "{first}");
        if json {
            assert_eq!(parse_scan(&stdout).summary.open, 1);
        } else {
            assert!(stdout.contains("1 open, 0 closed, 0 filtered"), "{stdout}");
        }
    }
}

#[test]
fn bad_input_exits_2_and_an_unwritable_file_exits_3() {
    for (args, code, needle) in [
        (&["scan", "127.0.0.1", "-p", "0"][..], 2, "0"),
        (&["scan", "127.0.0.1", "-p", "10-5"][..], 2, "10-5"),
        (&["scan", "300.1.1.1"][..], 2, "300.1.1.1"),
        (&["scan", "127.0.0.1", "--top", "0"][..], 2, "0"),
        (
            &["scan", "127.0.0.1", "--rate", "100", "--min-rate", "500"][..],
            2,
            "--min-rate 500",
        ),
        (
            &["scan", "127.0.0.1", "--retries", "2", "--max-retries", "3"][..],
            2,
            "--retries",
        ),
        (&["scan", "127.0.0.1", "--max-retries", "101"][..], 2, "101"),
        (
            &["scan", "127.0.0.1", "-p", "1", "-o", "/nonexistent/dir/out"][..],
            3,
            "/nonexistent/dir/out",
        ),
    ] {
        let (got, _, stderr) = text(&run(args));
        assert_eq!(got, code, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("netkit: ") && stderr.contains(needle),
            "{args:?}: {stderr}"
        );
    }
}

/// Connects to a silent host stay in flight, so 400 of them under `ulimit -n 128` run out of
/// descriptors (EMFILE): the scan must back off and retry, and still call every port filtered.
/// (`--min-rate` sends them whatever the congestion window says: a silent host never opens it.)
#[test]
fn running_out_of_descriptors_is_no_answer() {
    if !privileged("scan emfile") {
        return;
    }
    let (scanner, _remote) = lab();
    let args = [
        "198.19.0.9",
        "-p",
        "1-400",
        "--concurrency",
        "1000",
        "--min-rate",
        "20000",
        "--timeout",
        "300ms",
        "--retries",
        "0",
    ];
    let mut cmd = limited(&scanner, 128);
    let out = cmd
        .arg("-vv")
        .arg("--json")
        .arg("scan")
        .args(args)
        .output()
        .expect("run");
    let (code, stdout, stderr) = text(&out);
    // A silent host: exit 1.
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("backing off"),
        "no shortage happened: {stderr}"
    );
    let s = parse_scan(&stdout).summary;
    assert_eq!((s.filtered, s.closed, s.open), (400, 0, 0), "{s:?}");
    assert_eq!(s.silent, 1, "{s:?}");
}
