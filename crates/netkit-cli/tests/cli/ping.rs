//! `netkit ping` against loopback and a two-namespace test network: a near namespace where
//! netkit runs, a veth pair to a far namespace owning 198.18.0.2 and 2001:db8::2, and
//! 198.18.0.3 / 2001:db8::3 that nobody owns (silent hosts). Unprivileged runs drop to uid
//! 65534 inside a namespace whose `net.ipv4.ping_group_range` the test opens or closes.

use std::process::Command;

use netkit::report::ping::{PingReply, PingSummary, PingTimeout};

use crate::harness::{privileged, run, sh, text, Netns, Proc};
use crate::ping_net::{counts, json_lines, of_type, ping_in, routed, two_hosts};

#[test]
fn loopback_v4_and_v6_print_iputils_lines_and_summaries() {
    if !privileged("ping loopback") {
        return;
    }
    let ns = Netns::with_loopback("pinglo");
    let (code, out, err) = ping_in(&ns, &["-c", "3", "-i", "0.1", "127.0.0.1", "::1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data."),
        "{out}"
    );
    assert!(out.contains("PING ::1(::1) 56 data bytes"), "{out}");
    for addr in ["127.0.0.1", "::1"] {
        for seq in 1..=3 {
            // Several hosts: each line starts with its target (iputils' line after it).
            let start = format!("{addr}: 64 bytes from {addr}: icmp_seq={seq} ttl=64 time=");
            let line = out.lines().find(|l| l.starts_with(&start));
            let line = line.unwrap_or_else(|| panic!("no {start} in\n{out}"));
            assert!(line.ends_with(" ms"), "{line}");
        }
        let summary = format!(
            "--- {addr} ping statistics ---\n3 packets transmitted, 3 received, 0% packet loss, time "
        );
        assert!(out.contains(&summary), "{out}");
    }
    assert_eq!(out.matches("rtt min/avg/max/mdev = ").count(), 2, "{out}");
}

#[test]
fn json_records_carry_the_documented_fields() {
    if !privileged("ping json") {
        return;
    }
    let ns = Netns::with_loopback("pingjson");
    let out = ns
        .netkit()
        .args([
            "--json", "ping", "-c", "2", "-i", "0.1", "-s", "100", "-t", "1",
        ])
        .arg("::1")
        .output()
        .expect("run");
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 0, "{stderr}");
    let lines = json_lines(&stdout);
    let replies: Vec<PingReply> = of_type(&lines, "reply");
    assert_eq!(replies.len(), 2, "{stdout}");
    for (i, reply) in replies.iter().enumerate() {
        assert_eq!(reply.seq, i as u64 + 1);
        assert_eq!(reply.bytes, 108);
        assert_eq!(reply.addr.to_string(), "::1");
        assert!(reply.rtt_ms > Some(0.0) && reply.ttl.is_some(), "{reply:?}");
        assert!(!reply.dup, "{reply:?}");
    }
    let summaries: Vec<PingSummary> = of_type(&lines, "summary");
    assert_eq!(summaries.len(), 1);
    let s = &summaries[0];
    assert_eq!((s.transmitted, s.received, s.loss_pct), (2, 2, 0.0));
    let (min, avg, max) = (s.min_ms.unwrap(), s.avg_ms.unwrap(), s.max_ms.unwrap());
    assert!(min <= avg && avg <= max, "{s:?}");
    assert!(s.mdev_ms.is_some());
}

#[test]
fn a_silent_host_times_out_and_exits_1_beside_a_live_one() {
    if !privileged("ping silent host") {
        return;
    }
    let (near, _far) = two_hosts("pingsil");
    let args = ["-c", "2", "-i", "0.2", "-W", "0.5"];
    for (live, silent) in [("198.18.0.2", "198.18.0.3"), ("2001:db8::2", "2001:db8::3")] {
        let (code, out, err) = ping_in(&near, &[&args[..], &[live, silent]].concat());
        assert_eq!(code, 1, "{out}{err}");
        let live_summary = format!(
            "--- {live} ping statistics ---\n2 packets transmitted, 2 received, 0% packet loss"
        );
        let silent_summary = format!(
            "--- {silent} ping statistics ---\n2 packets transmitted, 0 received, 100% packet loss"
        );
        assert!(out.contains(&live_summary), "{out}");
        assert!(out.contains(&silent_summary), "{out}");
        assert!(!out.contains(&format!("from {silent}")), "{out}");
    }
}

#[test]
fn ttl_limits_how_far_probes_go_and_routers_say_so() {
    if !privileged("ping ttl") {
        return;
    }
    let [near, _router, _far] = routed("pingttl");
    let cases = [
        (
            "198.18.1.2",
            "From 198.18.0.2 icmp_seq=1 Time to live exceeded",
        ),
        (
            "2001:db8:1::2",
            "From 2001:db8::2 icmp_seq=1 Time exceeded: Hop limit",
        ),
    ];
    for (far, error_line) in cases {
        let (code, out, err) = ping_in(&near, &["-c", "1", "-W", "0.5", "-t", "1", far]);
        assert_eq!(code, 1, "TTL 1 dies at the router: {out}{err}");
        assert!(out.contains(error_line), "{out}");
        assert!(
            out.contains("1 packets transmitted, 0 received, +1 errors, 100% packet loss"),
            "{out}"
        );
        let (code, out, err) = ping_in(&near, &["-c", "1", "-W", "2", "-t", "2", far]);
        assert_eq!(code, 0, "TTL 2 reaches {far}: {out}{err}");
        assert!(
            out.contains(&format!("from {far}: icmp_seq=1 ttl=63 ")),
            "{out}"
        );
    }
}

#[test]
fn json_reports_every_unanswered_request() {
    if !privileged("ping timeout records") {
        return;
    }
    let (near, _far) = two_hosts("pingto");
    let out = near
        .netkit()
        .args(["--json", "ping", "-c", "3", "-i", "0.1", "-W", "0.3"])
        .arg("2001:db8::3")
        .output()
        .expect("run");
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 1, "{stderr}");
    let lines = json_lines(&stdout);
    let timeouts: Vec<PingTimeout> = of_type(&lines, "timeout");
    let seqs: Vec<u64> = timeouts.iter().map(|t| t.seq).collect();
    assert_eq!(seqs, [1, 2, 3], "{stdout}");
    let summary: Vec<PingSummary> = of_type(&lines, "summary");
    assert_eq!(summary[0].received, 0);
    assert_eq!(summary[0].loss_pct, 100.0);
    assert_eq!(summary[0].avg_ms, None);
}

#[test]
fn deadline_stops_an_endless_ping() {
    if !privileged("ping deadline") {
        return;
    }
    let ns = Netns::with_loopback("pingdl");
    let (code, out, err) = ping_in(&ns, &["-4", "-i", "0.1", "-w", "0.55", "127.0.0.1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("packets transmitted"), "{out}");
    assert!(!out.contains("icmp_seq=9"), "{out}");
}

#[test]
fn ctrl_c_prints_the_summary() {
    if !privileged("ping ctrl-c") {
        return;
    }
    let ns = Netns::with_loopback("pingint");
    let mut cmd = ns.netkit();
    cmd.args(["ping", "-i", "0.1", "-w", "30", "127.0.0.1"]);
    let ping = Proc::spawn(cmd);
    let first_reply = ping.stdout.position("bytes from 127.0.0.1");
    ping.signal("INT");
    let (code, out, _) = ping.finish();
    let rest: Vec<&str> = out.lines().skip(first_reply + 1).collect();
    let rest = rest.join("\n");
    assert_eq!(code, 0, "{rest}");
    assert!(rest.contains("--- 127.0.0.1 ping statistics ---"), "{rest}");
    assert!(rest.contains("rtt min/avg/max/mdev"), "{rest}");
}

/// Runs netkit as uid/gid 65534 inside `ns` with its ping_group_range set to `range`.
pub(crate) fn ping_as_nobody(ns: &Netns, range: &str, args: &[&str]) -> (i32, String, String) {
    let sysctl = format!("net.ipv4.ping_group_range={range}");
    sh(&["ip", "netns", "exec", &ns.name, "sysctl", "-qw", &sysctl]);
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name, "setpriv"])
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args([env!("CARGO_BIN_EXE_netkit"), "ping", "-c", "2"])
        .args(args)
        .output()
        .expect("run setpriv");
    text(&out)
}

#[test]
fn unprivileged_ping_uses_the_datagram_socket() {
    if !privileged("ping unprivileged") {
        return;
    }
    let ns = Netns::with_loopback("pingdgram");
    let open = "0 2147483647";
    let (code, out, err) = ping_as_nobody(&ns, open, &["-i", "0.1", "127.0.0.1", "::1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("64 bytes from 127.0.0.1: icmp_seq=2 ttl=64"),
        "{out}"
    );
    assert!(
        out.contains("64 bytes from ::1: icmp_seq=2 ttl=64"),
        "{out}"
    );
}

#[test]
fn unprivileged_ping_sees_icmp_errors_as_iputils_does() {
    if !privileged("ping unprivileged errors") {
        return;
    }
    // Nobody owns .3: after about 3 s the near kernel answers Destination Host Unreachable,
    // which a datagram socket gets through its error queue. iputils (as root) beside it.
    let (near, _far) = two_hosts("pingdgerr");
    let args = ["-c", "2", "-i", "0.5", "198.18.0.3"];
    let mut cmd = near.command("ping");
    cmd.args(args);
    let iputils = Proc::spawn(cmd);
    let open = "0 2147483647";
    let (code, out, err) = ping_as_nobody(&near, open, &["-i", "0.5", "198.18.0.3"]);
    let (_, i_out, _) = iputils.finish();
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("From 198.18.0.1 icmp_seq=1 Destination Host Unreachable"),
        "{out}"
    );
    assert_eq!(counts(&out), counts(&i_out), "{out}");
    assert!(counts(&out).contains(" +2 errors, "), "{out}");
}

#[test]
fn users_may_not_flood() {
    if !privileged("ping flood") {
        return;
    }
    let ns = Netns::with_loopback("pingflood");
    let open = "0 2147483647";
    let (code, out, err) = ping_as_nobody(&ns, open, &["-i", "0.001", "127.0.0.1"]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        err.starts_with("netkit: -i 1ms (intervals below 2ms"),
        "{err}"
    );
    // Root (a raw socket) may.
    let (code, out, err) = ping_in(&ns, &["-c", "2", "-i", "0.001", "127.0.0.1"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn without_any_icmp_socket_exit_3_with_the_hint() {
    if !privileged("ping denied") {
        return;
    }
    let ns = Netns::with_loopback("pingdeny");
    for host in ["127.0.0.1", "::1"] {
        let (code, out, err) = ping_as_nobody(&ns, "1 0", &["-i", "0.1", host]);
        assert_eq!(code, 3, "{out}{err}");
        assert!(err.starts_with("netkit: open an ICMP"), "{err}");
        assert!(err.contains("CAP_NET_RAW"), "{err}");
        assert!(err.contains("net.ipv4.ping_group_range"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn unknown_hosts_and_bad_sizes_are_input_errors() {
    for args in [
        &["ping", "-s", "65508", "127.0.0.1"][..],
        &["ping", "-c", "0", "127.0.0.1"],
        &["ping", "-t", "256", "127.0.0.1"],
        &["ping", "300.1.2.3"],
        &["ping", "-4", "::1"],
        &["ping", "::1", "-6", "127.0.0.1"],
        &["ping", "-4", "-6", "::1"],
        // Loopback only, and bounded, in case the limit ever stops working.
        &["ping", "-c", "1", "-W", "0.1", "127.0.0.0/19"],
    ] {
        let (code, _, err) = text(&run(args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.starts_with("netkit: "), "{err}");
    }
    let (_, _, err) = text(&run(&["ping", "-6", "127.0.0.1"]));
    assert!(
        err.contains("not an IPv6 address"),
        "-6 is a flag, not a host: {err}"
    );
    if !privileged("ping unknown host") {
        return;
    }
    // In an empty namespace the resolver cannot reach any server: nothing leaves the machine.
    let ns = Netns::new("pingname");
    let (code, _, err) = ping_in(&ns, &["-c", "1", "no-such-host.invalid"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.starts_with("netkit: no-such-host.invalid: "), "{err}");
}
