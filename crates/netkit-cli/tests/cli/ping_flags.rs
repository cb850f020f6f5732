//! iputils' everyday flags (`-n -D -O -a -I -p -Q -M -A -f -l -b -s`) and fping's summary:
//! each test runs netkit beside iputils' `ping` (or fping) on the same network in the same run
//! and compares their output line by line, with only the measured times blanked out.

use std::process::Command;

use crate::harness::{privileged, run, text, Netns};
use crate::ping_net::{
    both_in, counts, iptables, iputils_in, json_lines, ping_in, routed_narrow, sysctl, two_hosts,
};

/// `text` with what differs from run to run blanked: round-trip times, `time Nms`, the
/// statistics figures and `-D` timestamps.
fn normalize(text: &str) -> String {
    text.lines()
        .map(normalize_line)
        .collect::<Vec<_>>()
        .join("\n")
}

fn normalize_line(line: &str) -> String {
    let mut line = line.to_string();
    if line.starts_with('[') {
        if let Some(end) = line.find("] ") {
            line.replace_range(1..end, "T");
        }
    }
    for (start, end) in [
        ("time=", " ms"),
        (", time ", "ms"),
        ("rtt min/avg/max/mdev = ", " ms"),
        ("ipg/ewma ", " ms"),
    ] {
        line = blank_between(&line, start, end);
    }
    line
}

/// Replaces what lies between `start` and the next `end` with `N`.
fn blank_between(line: &str, start: &str, end: &str) -> String {
    let Some(at) = line.find(start) else {
        return line.to_string();
    };
    let from = at + start.len();
    match line[from..].find(end) {
        Some(len) => format!("{}N{}", &line[..from], &line[from + len..]),
        None => line.to_string(),
    }
}

/// Runs both with `args` in `ns` and requires the same exit status and the same output.
fn same_as_iputils(ns: &Netns, args: &[&str]) -> (String, String) {
    let ((code, out, err), (i_code, i_out, i_err)) = both_in(ns, args);
    assert_eq!(
        code, i_code,
        "{args:?}\nnetkit: {out}{err}\niputils: {i_out}{i_err}"
    );
    assert_eq!(normalize(&out), normalize(&i_out), "{args:?}\n{err}");
    (out, err)
}

#[test]
fn small_sizes_are_untimed_as_in_iputils() {
    if !privileged("ping -s 0") {
        return;
    }
    let ns = Netns::with_loopback("pingsmall");
    let (out, _) = same_as_iputils(&ns, &["-c", "2", "-i", "0.2", "-s", "0", "127.0.0.1"]);
    assert!(
        out.contains("8 bytes from 127.0.0.1: icmp_seq=2 ttl=64\n"),
        "{out}"
    );
    same_as_iputils(&ns, &["-c", "1", "-s", "8", "::1"]);
    same_as_iputils(&ns, &["-c", "1", "-s", "15", "127.0.0.1"]);
    let out = ns
        .netkit()
        .args(["--json", "ping", "-c", "1", "-s", "4", "127.0.0.1"])
        .output()
        .expect("run");
    let lines = json_lines(&text(&out).1);
    let reply = lines
        .iter()
        .find(|v| v["type"] == "reply")
        .expect("a reply");
    assert!(reply["rtt_ms"].is_null(), "{reply}");
    assert_eq!(reply["bytes"], 12);
}

#[test]
fn pattern_timestamps_and_bell_as_in_iputils() {
    if !privileged("ping -p -D -a") {
        return;
    }
    let ns = Netns::with_loopback("pingpat");
    let (out, _) = same_as_iputils(
        &ns,
        &["-c", "2", "-i", "0.2", "-p", "abc", "-D", "-a", "127.0.0.1"],
    );
    assert!(out.starts_with("PATTERN: 0xab0c\nPING "), "{out}");
    assert!(out.contains(" ms\x07\n"), "{out}");
    let (_, _, err) = ping_in(&ns, &["-p", "xyz", "127.0.0.1"]);
    assert_eq!(
        err.trim(),
        "netkit: xyz: patterns must be specified as hex digits"
    );
}

#[test]
fn outstanding_requests_are_reported_as_in_iputils() {
    if !privileged("ping -O") {
        return;
    }
    let (near, _far) = two_hosts("pingout");
    let (out, _) = same_as_iputils(
        &near,
        &["-c", "3", "-i", "0.2", "-W", "0.5", "-O", "198.18.0.3"],
    );
    assert!(out.contains("no answer yet for icmp_seq=2\n"), "{out}");
}

#[test]
fn names_are_shown_unless_numeric_as_in_iputils() {
    if !privileged("ping -n") {
        return;
    }
    let ns = Netns::with_loopback("pingname");
    let (out, _) = same_as_iputils(&ns, &["-c", "1", "localhost"]);
    assert!(out.contains(" bytes from localhost ("), "{out}");
    let (out, _) = same_as_iputils(&ns, &["-c", "1", "-n", "localhost"]);
    assert!(
        out.contains(" bytes from 127.0.0.1: ") || out.contains(" bytes from ::1: "),
        "{out}"
    );
}

#[test]
fn interface_and_source_address_as_in_iputils() {
    if !privileged("ping -I") {
        return;
    }
    let ns = Netns::with_loopback("pingsrc");
    for args in [
        &["-c", "1", "-I", "lo", "127.0.0.1"][..],
        &["-c", "1", "-I", "127.0.0.1", "127.0.0.1"],
        &["-c", "1", "-I", "::1", "::1"],
    ] {
        same_as_iputils(&ns, args);
    }
    let (code, _, err) = ping_in(&ns, &["-c", "1", "-I", "nk-nosuch0", "127.0.0.1"]);
    let (i_code, _, _) = iputils_in(&ns, &["-c", "1", "-I", "nk-nosuch0", "127.0.0.1"]);
    assert_eq!((code, i_code), (2, 2), "{err}");
    assert_eq!(err.trim(), "netkit: nk-nosuch0: no such interface");
    let (code, _, err) = ping_in(&ns, &["-c", "1", "-I", "198.18.0.77", "127.0.0.1"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        err.trim(),
        "netkit: 198.18.0.77: not an address of this host"
    );
    // Bound to the veth, the far host is reached; bound to lo, there is no route to it.
    let (near, _far) = two_hosts("pingdev");
    same_as_iputils(&near, &["-c", "1", "-I", "nk0", "198.18.0.2"]);
    let args = ["-c", "1", "-W", "0.5", "-I", "lo", "198.18.0.2"];
    let ((code, out, err), (i_code, _, i_err)) = both_in(&near, &args);
    assert_eq!((code, i_code), (1, 1), "{out}{err}{i_err}");
}

#[test]
fn tos_marks_the_requests_as_in_iputils() {
    if !privileged("ping -Q") {
        return;
    }
    let (near, far) = two_hosts("pingtos");
    let rule = [
        "INPUT", "-p", "icmp", "-m", "tos", "--tos", "0x10", "-j", "ACCEPT",
    ];
    iptables(&far, &[&["-A"][..], &rule].concat());
    let marked = || {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns", "exec", &far.name, "iptables", "-L", "INPUT", "-v", "-n", "-x",
        ]);
        let listing = text(&cmd.output().expect("iptables -L")).1;
        let rule = listing
            .lines()
            .find(|l| !l.starts_with("Chain") && l.contains("ACCEPT"));
        let line = rule.unwrap_or_default().to_string();
        line.split_whitespace()
            .next()
            .unwrap_or_default()
            .parse::<u64>()
            .unwrap_or(0)
    };
    let (i_code, _, _) = iputils_in(&near, &["-c", "2", "-i", "0.2", "-Q", "0x10", "198.18.0.2"]);
    assert_eq!((i_code, marked()), (0, 2), "iputils marks both requests");
    let (code, out, err) = ping_in(&near, &["-c", "2", "-i", "0.2", "-Q", "16", "198.18.0.2"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(marked(), 4, "netkit marks both requests too");
    let (code, _, err) = ping_in(&near, &["-Q", "300", "198.18.0.2"]);
    assert_eq!(code, 2);
    assert!(err.contains("must be in range 0-255"), "{err}");
}

#[test]
fn path_mtu_discovery_reports_frag_needed_as_in_iputils() {
    if !privileged("ping -M") {
        return;
    }
    // The router's far link carries at most 1280 bytes.
    let [near, _router, _far] = routed_narrow("pingmtu");
    let args = [
        "-c",
        "3",
        "-i",
        "0.2",
        "-M",
        "do",
        "-s",
        "1400",
        "198.18.1.2",
    ];
    // One after the other, the learnt path MTU forgotten in between: the first request of
    // each draws the router's error, the others are refused locally.
    let (i_code, i_out, i_err) = iputils_in(&near, &args);
    near.ip(&["route", "flush", "cache"]);
    let (code, out, err) = ping_in(&near, &args);
    assert_eq!(
        (i_code, counts(&i_out).as_str()),
        (
            1,
            "3 packets transmitted, 0 received, +3 errors, 100% packet loss"
        ),
        "{i_out}{i_err}"
    );
    assert_eq!((code, counts(&out)), (i_code, counts(&i_out)), "{out}{err}");
    let frag = "From 198.18.0.2 icmp_seq=1 Frag needed and DF set (mtu = 1280)";
    assert!(i_out.contains(frag) && out.contains(frag), "{out}");
    let local = "local error: message too long, mtu=1280";
    assert_eq!(i_err.matches(local).count(), 2, "{i_err}");
    assert_eq!(err.matches(local).count(), 2, "{err}");
    // Allowed to fragment, the requests get through.
    let args = [
        "-c",
        "2",
        "-i",
        "0.2",
        "-M",
        "want",
        "-s",
        "1400",
        "198.18.1.2",
    ];
    same_as_iputils(&near, &args);
}

#[test]
fn flood_prints_dots_and_backspaces_as_in_iputils() {
    if !privileged("ping -f") {
        return;
    }
    let ns = Netns::with_loopback("pingfld");
    let ((code, out, err), (i_code, i_out, _)) = both_in(&ns, &["-f", "-c", "50", "127.0.0.1"]);
    assert_eq!((code, i_code), (0, 0), "{err}");
    for output in [&out, &i_out] {
        // Between the header and the statistics: a dot per request, a backspace per reply.
        let body = output.split_once('\n').map_or("", |(_, rest)| rest);
        let body = body.split("\n---").next().unwrap_or_default();
        assert_eq!(body.matches('.').count(), 50, "{output:?}");
        assert_eq!(body.matches("\x08 \x08").count(), 50, "{output:?}");
        assert!(output.contains(", ipg/ewma "), "{output}");
    }
    assert_eq!(counts(&out), counts(&i_out));
}

#[test]
fn preload_and_adaptive_as_in_iputils() {
    if !privileged("ping -l -A") {
        return;
    }
    let ns = Netns::with_loopback("pingpre");
    let (out, _) = same_as_iputils(&ns, &["-c", "3", "-l", "3", "127.0.0.1"]);
    assert!(out.contains(" ms, pipe 3\n"), "{out}");
    // Adaptive on loopback comes down to a zero interval: the next request goes with the
    // reply. Only the counts are compared: a stall of 10 ms would let one more go early.
    let ((code, out, err), (i_code, i_out, _)) = both_in(&ns, &["-c", "5", "-A", "127.0.0.1"]);
    assert_eq!((code, i_code), (0, 0), "{out}{err}");
    assert_eq!(counts(&out), counts(&i_out));
    for output in [&out, &i_out] {
        assert!(output.contains(" ms, ipg/ewma "), "{output}");
    }
}

#[test]
fn broadcast_needs_b_as_in_iputils() {
    if !privileged("ping -b") {
        return;
    }
    let (near, far) = two_hosts("pingbc");
    sysctl(&far, "net.ipv4.icmp_echo_ignore_broadcasts=0");
    let ((code, out, err), (i_code, _, i_err)) = both_in(&near, &["-c", "1", "198.18.0.255"]);
    assert_eq!((code, i_code), (2, 2), "{out}{err}{i_err}");
    assert!(
        i_err.contains("Do you want to ping broadcast? Then -b"),
        "{i_err}"
    );
    assert!(
        err.starts_with("netkit: 198.18.0.255: a broadcast address: ping it with -b"),
        "{err}"
    );
    let args = ["-b", "-c", "2", "-i", "0.3", "198.18.0.255"];
    let ((code, out, err), (i_code, i_out, _)) = both_in(&near, &args);
    assert_eq!((code, i_code), (0, 0), "{out}{err}");
    assert_eq!(counts(&out), counts(&i_out), "{out}");
    assert!(
        out.contains("64 bytes from 198.18.0.2: icmp_seq=2 "),
        "{out}"
    );
    assert!(!out.contains("DIFFERENT ADDRESS"), "{out}");
}

#[test]
fn fping_summary_lines_as_in_fping() {
    if !privileged("ping --fping-summary") {
        return;
    }
    let ns = Netns::with_loopback("pingfp");
    let hosts = ["127.0.0.1", "::1"];
    let mut fping = Command::new("ip");
    fping.args(["netns", "exec", &ns.name, "fping", "-c", "3", "-p", "100"]);
    let (f_code, _, f_err) = text(&fping.args(hosts).output().expect("fping"));
    assert_eq!(f_code, 0, "{f_err}");
    let args = [&["--fping-summary", "-c", "3", "-i", "0.1"][..], &hosts].concat();
    let (code, out, err) = ping_in(&ns, &args);
    assert_eq!(code, 0, "{err}");
    let head = |line: &str| {
        line.split(", min/avg/max = ")
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let mine: Vec<String> = out
        .lines()
        .filter(|l| l.contains(" : xmt/rcv/%loss"))
        .map(head)
        .collect();
    let theirs: Vec<String> = f_err
        .lines()
        .filter(|l| l.contains(" : xmt/rcv/%loss"))
        .map(head)
        .collect();
    assert_eq!(mine, theirs, "{out}");
    let json = ns
        .netkit()
        .args([
            "--json",
            "ping",
            "--fping-summary",
            "-c",
            "3",
            "-i",
            "0.1",
            "127.0.0.1",
        ])
        .output()
        .expect("run");
    let lines = json_lines(&text(&json).1);
    let summary = lines
        .iter()
        .find(|v| v["type"] == "summary")
        .expect("summary");
    let rtts = summary["rtts_ms"].as_array().expect("rtts_ms");
    assert_eq!(rtts.len(), 3);
    assert!(
        rtts.iter().all(|r| r.as_f64().is_some_and(|ms| ms > 0.0)),
        "{summary}"
    );
}

/// `-F`'s value as iputils reads it (`strtoul` of base 0, 20 bits), refused as iputils refuses
/// it.
#[test]
fn bad_flow_labels_are_refused_as_iputils_refuses_them() {
    for (label, why) in [
        ("1048576", "flow value is greater than 20 bits"),
        ("-1", "flow value is greater than 20 bits"),
        ("zz", "bad value for flowinfo"),
    ] {
        let (code, out, err) = text(&run(&["ping", "-c", "1", "-F", label, "::1"]));
        assert_eq!(code, 2, "{label}: {out}{err}");
        assert!(err.starts_with(&format!("netkit: {label}: {why}")), "{err}");
    }
}

#[test]
fn iputils_flags_netkit_does_not_take_are_refused_by_name() {
    for (flag, meaning) in [
        (&["-R"][..], "record route"),
        (&["-e", "7"], "echo identifier"),
        (&["-T", "tsonly"], "IP timestamp option"),
        (&["-m", "7"], "SO_MARK"),
    ] {
        let args = [&["ping"][..], flag, &["-c", "1", "127.0.0.1"]].concat();
        let (code, out, err) = text(&run(&args));
        assert_eq!(code, 2, "{flag:?}: {out}{err}");
        assert!(
            err.starts_with(&format!("netkit: {}: iputils' {meaning}", flag[0])),
            "{err}"
        );
        assert_eq!(out, "");
    }
}
