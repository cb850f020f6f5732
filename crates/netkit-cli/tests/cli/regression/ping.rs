//! Regressions of `netkit ping`. Each test runs netkit beside iputils' `ping` (20221126) or
//! fping on the same test network in the same run, and requires netkit's answer to be
//! iputils' (issue 13).

use std::process::Command;
use std::time::Duration;

use crate::harness::{privileged, text, Netns, Proc};
use crate::ping_net::{
    both_counted, both_in, counts, iptables, iputils_counts, iputils_in, json_lines, line_starting,
    link_local_pair, ping_in, routed_narrow, same_counts, stats_line, sysctl, two_hosts,
};
use crate::responder::Responder;

/// The `time Nms` of a summary, in milliseconds.
fn time_ms(out: &str) -> u64 {
    let line = stats_line(out);
    let time = line.rsplit(", time ").next().unwrap_or_default();
    time.trim_end_matches("ms")
        .parse()
        .unwrap_or_else(|_| panic!("no time in {line}"))
}

#[test]
fn replies_slower_than_the_timeout_count_and_the_pipe_is_printed() {
    if !privileged("ping late replies") {
        return;
    }
    let (near, far) = two_hosts("pinglate");
    let _far_answers = Responder::start(&far, Duration::from_millis(1500), 1);
    // -W bounds the wait only while no reply came: every reply counts, two were in flight.
    let ((code, out, err), (i_code, i_out, i_err)) = both_in(&near, &["-c", "3", "198.18.0.2"]);
    iputils_counts(
        i_code,
        &i_out,
        &i_err,
        0,
        "3 packets transmitted, 3 received, 0% packet loss",
    );
    assert!(
        line_starting(&i_out, "rtt ").ends_with(" ms, pipe 2"),
        "{i_out}"
    );
    same_counts(code, &out, &err, i_code, &i_out);
    assert!(
        line_starting(&out, "rtt ").ends_with(" ms, pipe 2"),
        "{out}"
    );
    // No reply at all by the last request: then -W ends the wait.
    let args = ["-c", "2", "-W", "1", "198.18.0.2"];
    both_counted(
        &near,
        &args,
        0,
        "2 packets transmitted, 1 received, 50% packet loss",
    );
}

#[test]
fn icmp_errors_arriving_after_the_timeout_are_counted() {
    if !privileged("ping late errors") {
        return;
    }
    // Nobody owns .3: neighbour resolution fails after about 3 s, and the kernel then answers
    // every queued request with Destination Host Unreachable, later than -W's old 1 s.
    let (near, _far) = two_hosts("pingerr");
    let args = ["-c", "3", "-i", "0.5", "198.18.0.3"];
    let ((code, out, err), (i_code, i_out, i_err)) = both_in(&near, &args);
    assert_eq!(i_code, 1, "iputils: {i_out}{i_err}");
    assert!(counts(&i_out).contains(" received, +3 errors, "), "{i_out}");
    same_counts(code, &out, &err, i_code, &i_out);
    let unreachable = |out: &str| out.matches(" Destination Host Unreachable").count();
    assert_eq!(unreachable(&out), unreachable(&i_out), "{out}");
    assert_eq!(line_starting(&out, "pipe "), line_starting(&i_out, "pipe "));
}

#[test]
fn duplicate_replies_are_reported() {
    if !privileged("ping duplicates") {
        return;
    }
    let (near, far) = two_hosts("pingdup");
    let _twice = Responder::start(&far, Duration::ZERO, 2);
    let args = ["-c", "3", "-i", "0.2", "198.18.0.2"];
    let ((code, out, err), (i_code, i_out, i_err)) = both_in(&near, &args);
    assert_eq!(i_code, 0, "iputils: {i_out}{i_err}");
    // iputils ends as the third reply arrives, before its copy: two duplicates.
    assert_eq!(
        counts(&i_out),
        "3 packets transmitted, 3 received, +2 duplicates, 0% packet loss"
    );
    assert_eq!(i_out.matches(" ms (DUP!)").count(), 2, "{i_out}");
    same_counts(code, &out, &err, i_code, &i_out);
    assert_eq!(out.matches(" ms (DUP!)").count(), 2, "{out}");
    let json = near
        .netkit()
        .args(["--json", "ping"])
        .args(args)
        .output()
        .expect("run");
    let (code, stdout, stderr) = text(&json);
    assert_eq!(code, 0, "{stderr}");
    let lines = json_lines(&stdout);
    let dups = lines
        .iter()
        .filter(|v| v["type"] == "reply" && v["dup"] == true);
    assert_eq!(dups.count(), 2, "{stdout}");
    let firsts = lines
        .iter()
        .filter(|v| v["type"] == "reply" && v["dup"] == false);
    assert_eq!(firsts.count(), 3, "{stdout}");
    let summary = lines.iter().find(|v| v["type"] == "summary");
    assert_eq!(
        summary.map(|s| &s["duplicates"]),
        Some(&2.into()),
        "{stdout}"
    );
}

#[test]
fn count_with_deadline_waits_for_count_replies() {
    if !privileged("ping -c -w") {
        return;
    }
    // The far host drops requests with an odd sequence number.
    let (near, far) = two_hosts("pingcw");
    let odd = "0>>22&0x3C@4&0x1=0x1";
    iptables(
        &far,
        &[
            "-A", "INPUT", "-p", "icmp", "-m", "u32", "--u32", odd, "-j", "DROP",
        ],
    );
    let args = ["-c", "3", "-w", "5", "-i", "0.2", "198.18.0.2"];
    both_counted(
        &near,
        &args,
        0,
        "6 packets transmitted, 3 received, 50% packet loss",
    );
    // Fewer replies than -c by the deadline: exit 1, although some came.
    let args = ["-c", "10", "-w", "1", "-i", "0.2", "198.18.0.2"];
    let ((code, out, err), (i_code, i_out, i_err)) = both_in(&near, &args);
    assert_eq!(i_code, 1, "iputils: {i_out}{i_err}");
    assert_eq!(code, 1, "netkit: {out}{err}");
    assert!(!counts(&out).contains(" 0 received"), "{out}");
}

/// A ping child whose stdout and stderr lines are read in order.
struct Watched {
    proc: Proc,
    out: usize,
    err: usize,
}

fn watch(cmd: Command) -> Watched {
    Watched {
        proc: Proc::spawn(cmd),
        out: 0,
        err: 0,
    }
}

impl Watched {
    fn next_out(&mut self, what: &str) -> String {
        let line = self.proc.stdout.next(&mut self.out);
        line.unwrap_or_else(|| panic!("no {what} on stdout"))
    }

    fn next_reply(&mut self) -> String {
        loop {
            let line = self.next_out("reply");
            if line.contains(" bytes from ") {
                return line;
            }
        }
    }

    fn next_err(&mut self) -> String {
        self.proc
            .stderr
            .next(&mut self.err)
            .expect("a line on stderr")
    }

    /// The exit code and the stdout lines not read yet, once it has ended.
    fn rest(mut self) -> (i32, Vec<String>) {
        let code = self.proc.wait();
        self.proc.stdout.to_end();
        (code, self.proc.stdout.since(self.out))
    }
}

/// Whether `line` is iputils' status line: `\rR/T packets, L% loss, min/avg/ewma/max = a/b/c/d ms`.
fn is_status_line(line: &str) -> bool {
    let line = line.trim_start_matches('\r');
    let Some((packets, rest)) = line.split_once(" packets, ") else {
        return false;
    };
    let Some((loss, rtt)) = rest.split_once("% loss, min/avg/ewma/max = ") else {
        return false;
    };
    let ms = |text: &str| {
        text.split_once('.').is_some_and(|(a, b)| {
            a.parse::<u64>().is_ok() && b.len() == 3 && b.parse::<u64>().is_ok()
        })
    };
    let figures: Vec<&str> = rtt.trim_end_matches(" ms").split('/').collect();
    let counts: Vec<&str> = packets.split('/').collect();
    counts.len() == 2
        && counts.iter().all(|c| c.parse::<u64>().is_ok())
        && loss.parse::<u64>().is_ok()
        && rtt.ends_with(" ms")
        && figures.len() == 4
        && figures.iter().all(|f| ms(f))
}

#[test]
fn sigquit_prints_the_status_line_and_ping_goes_on() {
    if !privileged("ping SIGQUIT") {
        return;
    }
    let ns = Netns::with_loopback("pingquit");
    let args = ["-i", "0.1", "-w", "30", "127.0.0.1"];
    let mut iputils = Command::new("ip");
    iputils.args(["netns", "exec", &ns.name, "ping"]).args(args);
    let mut netkit = ns.netkit();
    netkit.arg("ping").args(args);
    for (tool, cmd) in [("iputils", iputils), ("netkit", netkit)] {
        let mut ping = watch(cmd);
        ping.next_reply();
        ping.next_reply();
        ping.proc.signal("QUIT");
        let status = ping.next_err();
        assert!(is_status_line(&status), "{tool}: {status:?}");
        let after = ping.next_reply();
        assert!(after.contains("icmp_seq="), "{tool} goes on: {after}");
        ping.proc.signal("INT");
        let (code, rest) = ping.rest();
        assert_eq!(code, 0, "{tool}: {rest:?}");
        assert!(
            rest.iter().any(|l| l.contains(" packets transmitted, ")),
            "{tool}: {rest:?}"
        );
    }
}

#[test]
fn sigterm_prints_the_summary() {
    if !privileged("ping SIGTERM") {
        return;
    }
    let ns = Netns::with_loopback("pingterm");
    let mut cmd = ns.netkit();
    cmd.args(["ping", "-i", "0.1", "-w", "30", "127.0.0.1"]);
    let mut ping = watch(cmd);
    ping.next_reply();
    ping.proc.signal("TERM");
    let (code, rest) = ping.rest();
    assert_eq!(code, 0, "{rest:?}");
    assert!(
        rest.contains(&"--- 127.0.0.1 ping statistics ---".to_string()),
        "{rest:?}"
    );
    assert!(
        rest.iter()
            .any(|l| l.starts_with("rtt min/avg/max/mdev = ")),
        "{rest:?}"
    );
}

#[test]
fn no_route_is_an_input_error_before_anything_is_sent() {
    if !privileged("ping no route") {
        return;
    }
    // Only loopback: 198.18.0.9 has no route, nothing can leave.
    let ns = Netns::with_loopback("pingnort");
    let mut iputils = Command::new("ip");
    iputils.args(["netns", "exec", &ns.name, "ping", "-c", "1", "198.18.0.9"]);
    let (i_code, i_out, i_err) = text(&iputils.output().expect("iputils"));
    assert_eq!(i_code, 2, "iputils: {i_out}{i_err}");
    assert_eq!(i_err.trim(), "ping: connect: Network is unreachable");
    let (code, out, err) = ping_in(&ns, &["-c", "1", "198.18.0.9"]);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(out, "", "nothing is printed before the error");
    assert_eq!(
        err.trim(),
        "netkit: 198.18.0.9: connect: network is unreachable"
    );
}

#[test]
fn time_runs_to_the_last_request_as_in_iputils() {
    if !privileged("ping time") {
        return;
    }
    // iputils' `time` ends at the last request sent, not at the last reply: with replies 1.5 s
    // late and requests 0.2 s apart it stays far below the delay.
    let (near, far) = two_hosts("pingtime");
    let _slow = Responder::start(&far, Duration::from_millis(1500), 1);
    let args = ["-c", "2", "-i", "0.2", "198.18.0.2"];
    let ((code, out, err), (i_code, i_out, i_err)) = both_in(&near, &args);
    assert_eq!(i_code, 0, "iputils: {i_out}{i_err}");
    assert!(time_ms(&i_out) < 1000, "{i_out}");
    assert_eq!(code, 0, "netkit: {out}{err}");
    assert!(time_ms(&out) < 1000, "{out}");
}

#[test]
fn an_unknown_name_among_hosts_does_not_stop_the_others() {
    if !privileged("ping unknown name among others") {
        return;
    }
    // In a namespace with only loopback the resolver reaches no server: nothing leaves.
    let ns = Netns::with_loopback("pingnames");
    let mut fping = Command::new("ip");
    fping.args(["netns", "exec", &ns.name, "fping", "-c", "1"]);
    fping.args(["127.0.0.1", "no-such-host.invalid"]);
    let (f_code, f_out, f_err) = text(&fping.output().expect("fping"));
    assert_eq!(f_code, 2, "fping: {f_out}{f_err}");
    let args = ["-c", "1", "127.0.0.1", "no-such-host.invalid", "::1"];
    let (code, out, err) = ping_in(&ns, &args);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.starts_with("netkit: no-such-host.invalid: "), "{err}");
    for host in ["127.0.0.1", "::1"] {
        let summary = format!("--- {host} ping statistics ---\n1 packets transmitted, 1 received");
        assert!(out.contains(&summary), "{out}");
    }
}

/// Issue 18: with several hosts, iputils' lines did not say which target a reply, a
/// `no answer yet` or an error belonged to (iputils pings one host, so its lines never had to).
/// Every per-probe line now starts with the target as the user named it, as the SIGQUIT
/// status lines already did; one host keeps iputils' lines exactly.
#[test]
fn ping_several_hosts_lines_did_not_say_which_target() {
    if !privileged("ping several hosts name their target") {
        return;
    }
    let ns = Netns::with_loopback("pingwho");
    iptables(
        &ns,
        &["-A", "INPUT", "-d", "127.0.0.2", "-p", "icmp", "-j", "DROP"],
    );
    let args = [
        "-O",
        "-c",
        "2",
        "-i",
        "0.2",
        "-W",
        "0.3",
        "127.0.0.1",
        "127.0.0.2",
    ];
    let (_, out, err) = ping_in(&ns, &args);
    let per_probe: Vec<&str> = out.lines().filter(|l| l.contains("icmp_seq=")).collect();
    assert!(per_probe.len() >= 3, "{out}{err}");
    for line in &per_probe {
        let named = if line.contains("bytes from 127.0.0.1:") {
            "127.0.0.1: "
        } else {
            "127.0.0.2: "
        };
        assert!(
            line.starts_with(named),
            "{line:?} names its target in\n{out}"
        );
    }
    assert!(
        per_probe
            .iter()
            .any(|l| l.starts_with("127.0.0.2: no answer yet for icmp_seq=")),
        "{out}"
    );
    // One host: iputils' lines, unchanged.
    let (_, out, _) = ping_in(&ns, &["-c", "1", "127.0.0.1"]);
    assert!(
        line_starting(&out, "64 bytes from 127.0.0.1: icmp_seq=1").contains("ttl="),
        "{out}"
    );
}

/// An IPv6 link-local target with its zone, `fe80::…%nk0`: netkit refused it with
/// `connect: invalid argument` (the zone was lost before the route lookup) where iputils
/// pings it.
#[test]
fn link_local_target_with_a_zone_refused() {
    if !privileged("ping link-local with a zone") {
        return;
    }
    let (near, _far, target) = link_local_pair("pingzone");
    let (out, i_out) = both_counted(
        &near,
        &["-c", "2", &target],
        0,
        "2 packets transmitted, 2 received, 0% packet loss",
    );
    // Then it was shown without its zone. iputils shows the address with its zone wherever it names the target: the first line,
    // each reply's sender and the statistics' title.
    let first = |text: &str| text.lines().next().unwrap_or_default().to_string();
    assert_eq!(first(&out), first(&i_out), "netkit: {out}");
    let from = |text: &str| {
        let line = line_starting(text, "64 bytes from ");
        line.split(": ").next().unwrap_or_default().to_string()
    };
    assert_eq!(from(&out), from(&i_out), "netkit: {out}");
    let title = |text: &str| line_starting(text, "--- ").to_string();
    assert_eq!(title(&out), title(&i_out), "netkit: {out}");
    assert!(title(&i_out).contains(&target), "iputils: {i_out}");
}

/// `-w 1` at the default interval: the second request fell due at the deadline itself and was
/// sent (`2 packets transmitted, 1 received, 50% packet loss` on loopback); iputils stops at
/// the deadline first and sends one.
#[test]
fn a_request_due_at_the_deadline_was_sent() {
    if !privileged("ping deadline tie") {
        return;
    }
    let ns = Netns::with_loopback("pingtie");
    for target in ["127.0.0.1", "::1"] {
        both_counted(
            &ns,
            &["-w", "1", target],
            0,
            "1 packets transmitted, 1 received, 0% packet loss",
        );
    }
}

/// The `time=`-style figures of the lines of `out` that `keep` accepts.
fn times_ms(out: &str, keep: impl Fn(&str) -> bool, field: &str) -> Vec<f64> {
    out.lines()
        .filter(|l| keep(l))
        .filter_map(|l| {
            let rest = &l[l.find(field)? + field.len()..];
            rest.split(" ms").next()?.trim().parse::<f64>().ok()
        })
        .collect()
}

/// The min, avg and max of a `min/avg/max = a/b/c` fping summary line for `host`.
fn fping_summary(out: &str, host: &str) -> [f64; 3] {
    let line = out
        .lines()
        .find(|l| l.starts_with(host) && l.contains("xmt/rcv/%loss"))
        .unwrap_or_else(|| panic!("no summary of {host} in\n{out}"));
    let figures: Vec<f64> = line
        .rsplit(" = ")
        .next()
        .unwrap_or_default()
        .split('/')
        .map(|f| f.parse().expect(line))
        .collect();
    [figures[0], figures[1], figures[2]]
}

/// Min, avg and max of `times`.
fn min_avg_max(times: &[f64]) -> [f64; 3] {
    let min = times.iter().copied().fold(f64::MAX, f64::min);
    let max = times.iter().copied().fold(f64::MIN, f64::max);
    [min, times.iter().sum::<f64>() / times.len() as f64, max]
}

/// Whether two min/avg/max triples agree to the rounding of the printed figures.
fn same_figures(a: [f64; 3], b: [f64; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() < 0.15)
}

/// `--fping-summary` took its min/avg/max from iputils' figures, which count duplicate
/// replies; fping's count only the first reply to each request. Here half the packets each way
/// are duplicated, each copy delayed on its own, so the duplicates' times differ from the
/// first replies' and the average over both is not the first replies' (fping's figures are
/// those of its per-reply lines, which show first replies only).
#[test]
fn fping_summary_counted_duplicates_in_its_round_trips() {
    use crate::lab::{ms, Lab, LabExt};
    if !privileged("ping fping summary dups") {
        return;
    }
    let lab = Lab::builder("pingdupsum")
        .delay(ms(15))
        .jitter(ms(12))
        .dup(0.5)
        .seed(3)
        .host("198.18.1.1")
        .host("198.18.1.2")
        .build()
        .expect("lab");
    let mut fping = lab.scanner_cmd("fping");
    fping.args(["-c", "20", "-p", "50", "-t", "1000", "198.18.1.1"]);
    let mut ours = lab.netkit();
    ours.args([
        "ping",
        "-c",
        "20",
        "-i",
        "50ms",
        "--fping-summary",
        "198.18.1.2",
    ]);
    let ((code, out, err), (f_code, f_out, f_err)) = crate::ping_net::side_by_side(ours, fping);
    let f_all = format!("{f_out}{f_err}");
    assert_eq!(f_code, 0, "fping: {f_all}");
    let f_firsts = times_ms(&f_all, |l| l.contains("bytes, "), "bytes, ");
    assert!(
        same_figures(fping_summary(&f_all, "198.18.1.1"), min_avg_max(&f_firsts)),
        "fping's figures are not its replies': {f_all}"
    );
    assert_eq!(code, 0, "netkit: {out}{err}");
    let firsts = times_ms(
        &out,
        |l| l.contains("time=") && !l.contains("DUP!"),
        "time=",
    );
    let all = times_ms(&out, |l| l.contains("time="), "time=");
    assert!(
        !same_figures(min_avg_max(&all), min_avg_max(&firsts)),
        "the duplicates changed nothing here: {out}"
    );
    assert!(
        same_figures(fping_summary(&out, "198.18.1.2"), min_avg_max(&firsts)),
        "netkit's figures are not those of its first replies: {out}"
    );
}

/// An interval below 10 ms while replies are outstanding: iputils then waits for a reply or
/// 10 ms (its `MININTERVAL`), so `-i 0.002` across a 30 ms round trip sends one request per
/// 10 ms (`time` about 140 ms for 15 requests, pipe 4), and a reply that comes less than 10 ms
/// before the next request is due pushes that request to 10 ms after the reply. netkit sent
/// every 2 ms regardless (`time` about 30 ms, pipe 15): five times the rate iputils offers the
/// network, and other counts under `-w`.
#[test]
fn short_interval_with_replies_outstanding_went_faster_than_iputils() {
    if !privileged("ping -i 0.002 behind 30 ms") {
        return;
    }
    let (near, far) = two_hosts("pingmin");
    let _slow = Responder::start(&far, Duration::from_millis(30), 1);
    let args = ["-c", "15", "-i", "0.002", "198.18.0.2"];
    let ((code, out, err), (i_code, i_out, i_err)) = both_in(&near, &args);
    assert_eq!(i_code, 0, "iputils: {i_out}{i_err}");
    same_counts(code, &out, &err, i_code, &i_out);
    // 14 gaps of at least 10 ms each, less a margin for replies that came together (a load
    // can only make both slower).
    assert!(time_ms(&i_out) >= 100, "iputils: {i_out}");
    assert!(time_ms(&out) >= 100, "netkit: {out}\niputils: {i_out}");
}

/// An IPv6 request larger than the near link's MTU leaves in fragments, and a router whose
/// next link is narrower answers the first fragment with Packet Too Big. Its quote starts
/// with a Fragment extension header, which netkit's parser did not skip: `-s 2000` across a
/// 1280-byte link lost its first request silently (`2 packets transmitted, 1 received, 50%
/// packet loss`) where iputils prints `From 2001:db8::2 icmp_seq=1 Packet too big: mtu=1280`
/// and counts `+1 errors`.
#[test]
fn v6_packet_too_big_about_a_fragment_went_unseen() {
    if !privileged("ping -6 -s 2000 across 1280") {
        return;
    }
    let [near, _router, _far] = routed_narrow("pingptb");
    let args = ["-c", "2", "-i", "0.2", "-s", "2000", "2001:db8:1::2"];
    // One after the other, the learnt path MTU forgotten in between.
    let (i_code, i_out, i_err) = iputils_in(&near, &args);
    near.ip(&["-6", "route", "flush", "cache"]);
    let (code, out, err) = ping_in(&near, &args);
    let want = "2 packets transmitted, 1 received, +1 errors, 50% packet loss";
    iputils_counts(i_code, &i_out, &i_err, 0, want);
    same_counts(code, &out, &err, i_code, &i_out);
    let too_big = "From 2001:db8::2 icmp_seq=1 Packet too big: mtu=1280";
    assert!(i_out.contains(too_big), "{i_out}");
    assert!(out.contains(too_big), "{out}");
}

/// Flood mode prints a dot per request that leaves and an `E` per request the kernel refuses:
/// iputils writes the dot only once the send succeeded, so three requests too big for a path
/// MTU it already knows print `EEE`. netkit wrote the dot before sending, `.E.E.E`.
#[test]
fn flood_printed_a_dot_for_a_request_refused_locally() {
    if !privileged("ping -f -M do refused") {
        return;
    }
    let [near, _router, _far] = routed_narrow("pingfloode");
    // Learn the path MTU first: every request after that is refused before it leaves.
    let learn = ["-c", "1", "-M", "do", "-s", "1400", "198.18.1.2"];
    let (code, out, err) = iputils_in(&near, &learn);
    assert!(
        out.contains("Frag needed and DF set (mtu = 1280)"),
        "{code} {out}{err}"
    );
    let args = ["-f", "-c", "3", "-M", "do", "-s", "1400", "198.18.1.2"];
    let (i_code, i_out, i_err) = iputils_in(&near, &args);
    let (code, out, err) = ping_in(&near, &args);
    let marks = |out: &str| out.lines().nth(1).unwrap_or_default().to_string();
    assert_eq!(
        (i_code, marks(&i_out).as_str()),
        (1, "EEE"),
        "{i_out}{i_err}"
    );
    assert_eq!((code, marks(&out)), (1, marks(&i_out)), "{out}{err}");
    assert_eq!(counts(&out), counts(&i_out), "{out}");
}

/// One segment, a bridge in the sweeper's namespace `s` (198.18.0.1/24, and .11 and .12 as
/// sources): a router `r` (.254) routes 198.18.7.0/24 back onto the segment to host `h`
/// (.2, which owns 198.18.7.1), so it forwards `s`'s requests there and sends `s` an ICMP
/// redirect each time (`s` ignores redirects). Returns [s, r, h].
fn redirecting_segment(tag: &str) -> [crate::harness::Netns; 3] {
    let s = Netns::with_loopback(tag);
    let r = Netns::with_loopback(&format!("{tag}r"));
    let h = Netns::with_loopback(&format!("{tag}h"));
    s.ip(&["link", "add", "br0", "type", "bridge"]);
    s.ip(&["link", "set", "br0", "up"]);
    for addr in ["198.18.0.1/24", "198.18.0.11/24", "198.18.0.12/24"] {
        s.ip(&["addr", "add", addr, "dev", "br0"]);
    }
    for (ns, addr) in [(&r, "198.18.0.254/24"), (&h, "198.18.0.2/24")] {
        let port = format!("p{}", &ns.name[ns.name.len() - 4..]);
        s.ip(&["link", "add", &port, "type", "veth", "peer", "name", "eth0"]);
        s.ip(&["link", "set", "eth0", "netns", &ns.name]);
        s.ip(&["link", "set", &port, "master", "br0", "up"]);
        ns.ip(&["addr", "add", addr, "dev", "eth0"]);
        ns.ip(&["link", "set", "eth0", "up"]);
    }
    h.ip(&["addr", "add", "198.18.7.1/32", "dev", "eth0"]);
    r.ip(&["route", "add", "198.18.7.0/24", "via", "198.18.0.2"]);
    sysctl(&r, "net.ipv4.ip_forward=1");
    s.ip(&["route", "add", "198.18.7.0/24", "via", "198.18.0.254"]);
    for key in ["all", "default", "br0"] {
        sysctl(&s, &format!("net.ipv4.conf.{key}.accept_redirects=0"));
    }
    [s, r, h]
}

/// An ICMP redirect about a request: iputils prints `From 198.18.0.254: icmp_seq=1 Redirect
/// Host(New nexthop: 198.18.0.2)` (a colon after the sender, unlike its error lines) and
/// counts nothing; netkit printed nothing. Each tool pings from its own source address: the
/// router limits redirects per source.
#[test]
fn redirects_were_not_shown() {
    if !privileged("ping redirect") {
        return;
    }
    let [s, _r, _h] = redirecting_segment("pingredir");
    let args = |source| ["-c", "2", "-i", "0.3", "-I", source, "198.18.7.1"];
    let (i_code, i_out, i_err) = iputils_in(&s, &args("198.18.0.11"));
    let (code, out, err) = ping_in(&s, &args("198.18.0.12"));
    let want = "From 198.18.0.254: icmp_seq=1 Redirect Host(New nexthop: 198.18.0.2)";
    assert!(i_out.lines().any(|l| l == want), "iputils: {i_out}{i_err}");
    assert!(out.lines().any(|l| l == want), "netkit: {out}{err}");
    let redirects = |out: &str| out.matches(" Redirect Host(").count();
    assert_eq!(redirects(&out), redirects(&i_out), "{out}\n{i_out}");
    iputils_counts(
        i_code,
        &i_out,
        &i_err,
        0,
        "2 packets transmitted, 2 received, 0% packet loss",
    );
    same_counts(code, &out, &err, i_code, &i_out);
}

/// The addresses of a ping's reply lines (`64 bytes from ADDR: ...`), sorted, each once.
fn repliers(out: &str) -> Vec<String> {
    let mut from: Vec<String> = out
        .lines()
        .filter_map(|l| l.split(" bytes from ").nth(1)?.split(": ").next())
        .map(str::to_string)
        .collect();
    from.sort();
    from.dedup();
    from
}

/// Pinging the link's all-nodes group (`ff02::1%nk0`): every host on the link answers from
/// its link-local address, which iputils prints with the interface it came in on
/// (`fe80::1%nk0`, an address one can paste back into ping); netkit printed it bare, as
/// an address of no link.
#[test]
fn link_local_repliers_to_a_multicast_ping_were_shown_without_their_zone() {
    if !privileged("ping all-nodes multicast") {
        return;
    }
    let (near, _far, _target) = link_local_pair("pingmcast");
    let ((code, out, err), (i_code, i_out, i_err)) = both_in(&near, &["-w", "1", "ff02::1%nk0"]);
    let want = repliers(&i_out);
    assert_eq!((i_code, want.len()), (0, 2), "iputils: {i_out}{i_err}");
    assert!(want.iter().all(|a| a.ends_with("%nk0")), "{i_out}");
    assert_eq!((code, repliers(&out)), (i_code, want), "netkit: {out}{err}");
}

/// `-s` was capped at 65507 for every target, the most an IPv4 datagram carries; an IPv6
/// packet's payload length does not count its own header, so iputils sends up to 65527 data
/// bytes to an IPv6 host (65535 bytes of ICMPv6) and gets the reply. IPv4 keeps its limit.
#[test]
fn ipv6_sizes_above_the_ipv4_limit_were_refused() {
    if !privileged("ping -6 -s 65527") {
        return;
    }
    let ns = Netns::with_loopback("pingv6max");
    let args = ["-c", "1", "-W", "2", "-s", "65527", "::1"];
    let ((code, out, err), (i_code, i_out, i_err)) = both_in(&ns, &args);
    assert_eq!(i_code, 0, "{i_out}{i_err}");
    assert!(i_out.contains("65535 bytes from ::1"), "{i_out}");
    same_counts(code, &out, &err, i_code, &i_out);
    assert!(out.contains("65535 bytes from ::1"), "{out}");
    for (args, limit) in [
        (["-s", "65528", "::1"], "65527"),
        (["-s", "65508", "127.0.0.1"], "65507"),
    ] {
        let (code, _, err) = ping_in(&ns, &args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.starts_with("netkit: ") && err.contains(limit), "{err}");
    }
}

/// A host that got the first fragment of a request but never the rest answers, once its
/// reassembly time is up, with an ICMP time exceeded (fragment reassembly). The Linux kernel
/// drops that message before any socket's error queue, and iputils counts none (its raw
/// socket only takes it as a sign of life for the `pipe` figure); netkit read it on its raw
/// socket and counted `+N errors` — and under `-w` stopped at the first, where iputils runs
/// to the deadline. IPv6's is delivered and counted by both.
#[test]
fn ipv4_fragment_reassembly_time_exceeded_was_counted_as_an_error() {
    if !privileged("ping -s 3000 with the later fragments lost") {
        return;
    }
    let (near, far) = two_hosts("pingfrag");
    // The far host keeps a partial datagram for one second, and never gets a later fragment.
    sysctl(&far, "net.ipv4.ipfrag_time=1");
    iptables(&far, &["-t", "raw", "-A", "PREROUTING", "-f", "-j", "DROP"]);
    let args = [
        "-c",
        "3",
        "-i",
        "0.5",
        "-W",
        "2",
        "-s",
        "3000",
        "198.18.0.2",
    ];
    let want = "3 packets transmitted, 0 received, 100% packet loss";
    both_counted(&near, &args, 1, want);
}

/// iputils takes `-w 0` for no deadline and `-W 0` for waiting without limit (scripts pass
/// 0 to mean "none"); netkit refused both as bad input (exit 2). Against a host whose replies
/// are dropped, both now behave as iputils does: `-c 2 -w 0` waits the usual 10 s after the
/// last request (no deadline), `-W 0` waits on until stopped (here by SIGINT, summary
/// printed).
#[test]
fn zero_deadline_and_zero_timeout_were_refused() {
    if !privileged("ping -w 0 / -W 0") {
        return;
    }
    let ns = Netns::with_loopback("pingzero");
    iptables(
        &ns,
        &[
            "-A",
            "OUTPUT",
            "-p",
            "icmp",
            "--icmp-type",
            "echo-reply",
            "-j",
            "DROP",
        ],
    );
    let args = ["-c", "1", "-w", "0", "-W", "1", "127.0.0.1"];
    both_counted(
        &ns,
        &args,
        1,
        "1 packets transmitted, 0 received, 100% packet loss",
    );
    // -W 0: it still waits after 2.5 s (with -W 1 it ends after 1 s); SIGINT ends it.
    let mut iputils = Command::new("ip");
    iputils.args([
        "netns",
        "exec",
        &ns.name,
        "ping",
        "-c",
        "1",
        "-W",
        "0",
        "127.0.0.1",
    ]);
    let mut netkit = ns.netkit();
    netkit.args(["ping", "-c", "1", "-W", "0", "127.0.0.1"]);
    for (tool, cmd) in [("iputils", iputils), ("netkit", netkit)] {
        let mut ping = watch(cmd);
        std::thread::sleep(Duration::from_millis(2500));
        let waiting = ping.proc.alive();
        ping.proc.signal("INT");
        let (code, rest) = ping.rest();
        let rest = rest.join("\n");
        assert!(waiting, "{tool} ended before SIGINT: {rest}");
        assert_eq!(code, 1, "{tool}: {rest}");
        assert!(
            rest.contains("1 packets transmitted, 0 received"),
            "{tool}: {rest}"
        );
    }
}

/// iputils takes an IPv4 error for an answer to its request (the `pipe` figure, the flood
/// pacing), not an IPv6 one: three address-unreachable errors print `pipe 3` on IPv4 and no
/// `pipe` on IPv6. netkit printed `pipe 3` for both.
#[test]
fn ipv6_errors_made_a_pipe_figure() {
    if !privileged("ping errors and the pipe figure") {
        return;
    }
    let (near, _far) = two_hosts("pingpipe");
    for target in ["198.18.0.3", "2001:db8::3"] {
        let args = ["-c", "3", "-i", "0.3", target];
        let ((code, out, err), (i_code, i_out, i_err)) = both_in(&near, &args);
        assert_eq!(
            counts(&i_out),
            "3 packets transmitted, 0 received, +3 errors, 100% packet loss",
            "{i_out}{i_err}"
        );
        same_counts(code, &out, &err, i_code, &i_out);
        let pipe = |out: &str| {
            out.lines()
                .find(|l| l.starts_with("pipe "))
                .map(String::from)
        };
        assert_eq!(pipe(&out), pipe(&i_out), "{target}: {out}\n{i_out}");
    }
}

/// `-W 0` (no limit on the wait) waited forever when a reply was lost and none had come by the
/// last request: the wait after it was decided once, without limit, there. iputils ends twice
/// the longest round trip after the first reply (its `__schedule_exit` recomputes a wait of 0
/// until a reply came); an audit over a 1 s link saw netkit hang in 4 of 8 runs of `-c 5 -i
/// 0.2 -W 0`, iputils never. Here replies come 1 s late (the last request goes at 0.8 s) and
/// the third request is dropped; iputils and netkit run one after the other, each with the
/// drop rule new, so that each loses its own third request.
#[test]
fn wait_without_limit_hung_after_a_lost_reply_when_none_had_come_by_the_last_request() {
    if !privileged("ping -W 0 with a lost reply") {
        return;
    }
    let (near, far) = two_hosts("pingw0");
    let _slow = Responder::start(&far, Duration::from_millis(1000), 1);
    let drop_third = "-A INPUT -p icmp --icmp-type echo-request \
                      -m statistic --mode nth --every 5 --packet 2 -j DROP";
    let drop_third: Vec<&str> = drop_third.split_whitespace().collect();
    let args = ["-c", "5", "-i", "0.2", "-W", "0", "198.18.0.2"];
    let mut iputils = Command::new("ip");
    iputils
        .args(["netns", "exec", &near.name, "ping"])
        .args(args);
    let mut netkit = near.netkit();
    netkit.arg("ping").args(args);
    let mut runs = Vec::new();
    for cmd in [iputils, netkit] {
        iptables(&far, &["-F", "INPUT"]);
        iptables(&far, &drop_third);
        runs.push(Proc::spawn(cmd).finish_within(Duration::from_secs(30)));
    }
    let [(i_code, i_out, i_err), (code, out, err)] = <[_; 2]>::try_from(runs).unwrap();
    assert_eq!(
        counts(&i_out),
        "5 packets transmitted, 4 received, 20% packet loss",
        "iputils: {i_out}{i_err}"
    );
    same_counts(code, &out, &err, i_code, &i_out);
}

/// Link-local targets and `-I`: a target without a zone failed with `connect: invalid
/// argument` and exit 3 (the environment's fault, where it is the input's); with `-I nk0` the
/// replies were shown bare where iputils shows `fe80::…%nk0`; a zone naming another link than
/// `-I` failed the same way; and with several hosts, each line was prefixed with the bare
/// address, the same for two zones of one address.
#[test]
fn link_local_targets_and_interfaces_were_named_without_their_zone() {
    if !privileged("ping link-local and -I") {
        return;
    }
    let (near, _far, target) = link_local_pair("pingllif");
    let bare = target.trim_end_matches("%nk0").to_string();
    let (code, _, err) = ping_in(&near, &["-c", "1", &bare]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with(&format!(
            "netkit: {bare}: a link-local address needs its interface"
        )),
        "{err}"
    );
    let ((code, out, err), (i_code, i_out, i_err)) =
        both_in(&near, &["-c", "1", "-I", "nk0", &bare]);
    assert_eq!(
        (i_code, code),
        (0, 0),
        "iputils: {i_out}{i_err}\nnetkit: {out}{err}"
    );
    let from = |text: &str| {
        let line = line_starting(text, "64 bytes from ");
        line.split(": ").next().unwrap_or_default().to_string()
    };
    assert_eq!(from(&out), from(&i_out), "netkit: {out}");
    assert_eq!(
        from(&out),
        format!("64 bytes from {target}"),
        "netkit: {out}"
    );
    let title = |text: &str| line_starting(text, "--- ").to_string();
    assert_eq!(title(&out), title(&i_out), "netkit: {out}");
    let (code, _, err) = ping_in(&near, &["-c", "1", "-I", "nk8", &target]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the zone is not -I nk8's interface"), "{err}");
    // Two zones of one address: the decoy link nk8 leads nowhere.
    let decoy = format!("{bare}%nk8");
    let (_, out, err) = ping_in(
        &near,
        &["-c", "2", "-i", "0.3", "-W", "1", "-O", &target, &decoy],
    );
    assert!(
        out.contains(&format!("{target}: 64 bytes from {target}")),
        "{out}{err}"
    );
    assert!(
        out.contains(&format!("{decoy}: no answer yet")),
        "{out}{err}"
    );
}

/// `ping` had no `--force` (SPEC: blocks of more than 2^24 addresses are refused unless
/// `--force` is given, for ping, sweep and scan targets): the refusal told the user to "pass
/// --force to sweep it", and `--force` was an unknown option. Nothing is sent for a refused
/// block; `--force` is tried on the loopback address only (and on a big block inside an empty
/// namespace, where ping's own cap of 4096 hosts still refuses it before anything is sent).
#[test]
fn ping_had_no_force_for_big_blocks() {
    let (code, _, stderr) = text(&crate::harness::run(&["ping", "-c", "1", "10.0.0.0/7"]));
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        stderr,
        "netkit: 10.0.0.0/7: 33554432 addresses is more than 2^24; pass --force to take it\n"
    );
    let args = ["ping", "--force", "-c", "1", "-W", "5", "127.0.0.1"];
    let (code, stdout, stderr) = text(&crate::harness::run(&args));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("1 packets transmitted, 1 received"),
        "{stdout}"
    );
    if !privileged("ping --force on a big block") {
        return;
    }
    let empty = Netns::with_loopback("pingforce");
    let (code, _, stderr) = ping_in(&empty, &["--force", "-c", "1", "10.0.0.0/7"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("ping takes at most 4096 hosts"), "{stderr}");
}

/// `ping --help` did not say that a CIDR block includes every address in it (SPEC: say so in
/// `--help`), as sweep's and scan's do: it only pointed at "the target forms of sweep".
#[test]
fn ping_help_did_not_state_the_cidr_rule() {
    for command in ["ping", "sweep", "scan"] {
        let (code, stdout, stderr) = text(&crate::harness::run(&[command, "--help"]));
        assert_eq!(code, 0, "{command}: {stderr}");
        let flat = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains("CIDR block"), "{command}: {stdout}");
        assert!(flat.contains("every address"), "{command}: {stdout}");
    }
}

/// `ping -b` to a broadcast address left out iputils' `WARNING: pinging broadcast address`
/// on stderr. iputils prints it when its route check (a UDP socket connected to the host) is
/// refused as a broadcast and `-b` allows it; not when a source address is given (`-I ADDR`:
/// no route check). iputils beside netkit in the same namespaces is the oracle.
#[test]
fn ping_b_dropped_the_broadcast_warning() {
    if !privileged("ping -b warning") {
        return;
    }
    let (near, far) = two_hosts("pingbw");
    sysctl(&far, "net.ipv4.icmp_echo_ignore_broadcasts=0");
    let warning = "WARNING: pinging broadcast address\n";
    let args = ["-b", "-c", "1", "198.18.0.255"];
    let ((code, out, err), (i_code, i_out, i_err)) = both_in(&near, &args);
    assert_eq!(
        (code, i_code),
        (0, 0),
        "{out}{err}\niputils: {i_out}{i_err}"
    );
    assert_eq!(i_err, warning, "iputils");
    assert_eq!(err, warning, "netkit");
    // A unicast address with -b, and a broadcast one from a given source: no warning.
    for args in [
        &["-b", "-c", "1", "198.18.0.2"][..],
        &["-b", "-c", "1", "-I", "198.18.0.1", "198.18.0.255"],
    ] {
        let ((code, out, err), (i_code, i_out, i_err)) = both_in(&near, args);
        assert_eq!(
            (code, i_code),
            (0, 0),
            "{args:?}: {out}{err}\n{i_out}{i_err}"
        );
        assert_eq!(i_err, "", "iputils {args:?}");
        assert_eq!(err, "", "netkit {args:?}");
    }
}

/// An unprivileged `ping -f` (unprivileged ICMP sockets open) was refused naming `-i 0ms`,
/// an option the user never typed; it names `-f` now. `-i 0.001` still names `-i 1ms`.
#[test]
fn unprivileged_flood_named_an_interval_not_given() {
    if !privileged("ping -f unprivileged") {
        return;
    }
    let ns = Netns::with_loopback("pingfnamed");
    let open = "0 2147483647";
    let nobody = crate::ping::ping_as_nobody;
    let (code, out, err) = nobody(&ns, open, &["-f", "127.0.0.1"]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(err.starts_with("netkit: -f (flooding"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let (code, out, err) = nobody(&ns, open, &["-i", "0.001", "127.0.0.1"]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        err.starts_with("netkit: -i 1ms (intervals below 2ms"),
        "{err}"
    );
}

/// Unprivileged refusals of what only a raw socket may do (`-i` below 2 ms, `-l` above 3,
/// a broadcast more often than once a second) told the user to grant CAP_NET_BIND_SERVICE
/// "for ports below 1024" (ping has no port), or gave no hint at all (`-l`). Each says now
/// what lets it through: root or CAP_NET_RAW.
#[test]
fn unprivileged_raw_only_refusals_named_the_wrong_capability_or_none() {
    if !privileged("ping raw-only refusals unprivileged") {
        return;
    }
    let ns = Netns::with_loopback("pingrawcap");
    let open = "0 2147483647";
    for args in [
        &["-c", "1", "-i", "0.001", "127.0.0.1"][..],
        &["-c", "1", "-l", "5", "127.0.0.1"][..],
    ] {
        let (code, out, err) = crate::ping::ping_as_nobody(&ns, open, args);
        assert_eq!(code, 3, "{args:?}: {out}{err}");
        assert!(!err.contains("CAP_NET_BIND_SERVICE"), "{args:?}: {err}");
        assert!(err.contains("CAP_NET_RAW"), "{args:?}: {err}");
    }
}

/// iputils prints the loss with `%g` of a `float`, not of a double: 41 requests with 2 replies
/// are `95.1219% packet loss` (the float nearest 95.12195 is below it), and netkit printed the
/// double's `95.122%` (25 of the 5150 pairs of counts up to 100 requests print differently).
/// The far host drops every request numbered 3 or more, for both tools at once.
#[test]
fn loss_was_printed_from_a_double_where_iputils_prints_a_float() {
    if !privileged("ping loss as float") {
        return;
    }
    let (near, far) = two_hosts("pinglossf");
    let third_on = "0>>22&0x3C@4&0xFFFF=0x3:0xFFFF";
    iptables(
        &far,
        &[
            "-A", "INPUT", "-p", "icmp", "-m", "u32", "--u32", third_on, "-j", "DROP",
        ],
    );
    let args = ["-c", "41", "-i", "0.01", "-W", "1", "198.18.0.2"];
    let want = "41 packets transmitted, 2 received, 95.1219% packet loss";
    both_counted(&near, &args, 0, want);
}

/// iputils keeps `-i` in whole milliseconds (`(int)(seconds * 1000)`): `-i 0.0005` is an
/// interval of 0, flood pacing (the next request as soon as the reply is in), and its summary
/// ends with `ipg/ewma`, as it does for `-i 0`. netkit kept the half millisecond: a request
/// every 0.5 ms and no `ipg/ewma`.
#[test]
fn sub_millisecond_intervals_were_not_truncated_as_iputils_truncates_them() {
    if !privileged("ping -i below 1ms") {
        return;
    }
    let ns = Netns::with_loopback("pingsubms");
    let args = ["-c", "5", "-i", "0.0005", "127.0.0.1"];
    let ((code, out, err), (i_code, i_out, i_err)) = both_in(&ns, &args);
    assert_eq!(i_code, 0, "iputils: {i_out}{i_err}");
    assert!(
        line_starting(&i_out, "rtt ").contains(", ipg/ewma "),
        "iputils: {i_out}"
    );
    same_counts(code, &out, &err, i_code, &i_out);
    assert!(
        line_starting(&out, "rtt ").contains(", ipg/ewma "),
        "netkit: {out}"
    );
}

/// iputils keeps `-W` in whole milliseconds too: `-W 0.0005` is `-W 0`, a wait without limit
/// until a reply comes (then twice the longest round trip). netkit waited half a millisecond
/// after its only request and reported a reply 100 ms away as lost (`1 packets transmitted,
/// 0 received`, exit 1), where iputils waits for it and counts it.
#[test]
fn sub_millisecond_timeouts_were_not_truncated_as_iputils_truncates_them() {
    if !privileged("ping -W below 1ms") {
        return;
    }
    let (near, far) = two_hosts("pingsubw");
    let _far_answers = Responder::start(&far, Duration::from_millis(100), 1);
    let args = ["-c", "1", "-W", "0.0005", "198.18.0.2"];
    both_counted(
        &near,
        &args,
        0,
        "1 packets transmitted, 1 received, 0% packet loss",
    );
}

/// A reply that came just after the wait after the last request had ended was counted: the
/// timer that ends the wait fired up to a millisecond late, and a reply in by then was taken
/// in as if in time. iputils' alarm is exact. Untimed requests (`-s 8`) make the wait one
/// interval, and replies one interval away (the responder sleeps a little longer than asked)
/// come just after it: iputils counts 2 of 3, netkit counted all 3 (in 1 run of 4 here, how
/// late the timer fires varies; 3 of 3 over the lab's relay). Each tool runs alone, so
/// neither's replies wait behind the other's; netkit runs five times.
#[test]
fn a_reply_just_after_the_wait_was_counted_when_the_timer_fired_late() {
    if !privileged("ping reply after the wait") {
        return;
    }
    let (near, far) = two_hosts("pingwaitend");
    let _far_answers = Responder::start(&far, Duration::from_millis(300), 1);
    let args = ["-c", "3", "-i", "0.3", "-s", "8", "198.18.0.2"];
    let want = "3 packets transmitted, 2 received, 33.3333% packet loss";
    runs_counted(&near, &args, want, 5);
}

/// An echo reply with a wrong ICMP checksum (a raw socket gets it as it came) was dropped
/// without a word: the request read as lost. iputils prints the reply with `(BAD CHECKSUM!)`,
/// counts it `+N corrupted` and not as received (`gather_statistics`; 20221126 passes a
/// checksum failure of 0 for every echo reply and counts it as a good one, a bug fixed in
/// iputils' bacf1b7, "fix IPv4 checksum check always succeeding once again", 20240905). The
/// far side answers the odd requests with a wrong checksum: iputils 20221126 here takes all
/// four replies (the responder answered each), netkit now says what iputils since 20240905
/// says.
#[test]
fn replies_with_a_bad_checksum_were_dropped_silently() {
    if !privileged("ping bad checksum") {
        return;
    }
    let (near, far) = two_hosts("pingbadsum");
    let _far_answers = Responder::bad_checksums(&far, |seq| seq % 2 == 1);
    let args = ["-c", "4", "-i", "0.2", "198.18.0.2"];
    let ((code, out, err), (i_code, i_out, i_err)) = both_in(&near, &args);
    iputils_counts(
        i_code,
        &i_out,
        &i_err,
        0,
        "4 packets transmitted, 4 received, 0% packet loss",
    );
    assert_eq!(
        (code, counts(&out).as_str()),
        (
            0,
            "4 packets transmitted, 2 received, +2 corrupted, 50% packet loss"
        ),
        "netkit: {out}{err}"
    );
    let seqs = |out: &str, bad: bool| -> Vec<String> {
        let lines = out
            .lines()
            .filter(|l| l.starts_with("64 bytes from 198.18.0.2: "));
        let picked = lines.filter(|l| l.ends_with(" ms (BAD CHECKSUM!)") == bad);
        let seq = |l: &str| l.split_whitespace().nth(4).unwrap_or_default().to_string();
        picked.map(seq).collect()
    };
    assert_eq!(seqs(&out, true), ["icmp_seq=1", "icmp_seq=3"], "{out}");
    assert_eq!(seqs(&out, false), ["icmp_seq=2", "icmp_seq=4"], "{out}");
    assert_eq!(seqs(&i_out, false).len(), 4, "{i_out}");
    // The corrupted reply alone: nothing received, as iputils (since 20240905) exits 1.
    let (code, out, err) = ping_in(&near, &["-c", "1", "-W", "1", "198.18.0.2"]);
    assert_eq!(
        (code, counts(&out).as_str()),
        (
            1,
            "1 packets transmitted, 0 received, +1 corrupted, 100% packet loss"
        ),
        "netkit: {out}{err}"
    );
    let (code, stdout, stderr) = ping_in(&near, &["--json", "-c", "2", "-i", "0.2", "198.18.0.2"]);
    assert_eq!(code, 0, "{stderr}");
    let lines = json_lines(&stdout);
    let replies: Vec<_> = lines.iter().filter(|v| v["type"] == "reply").collect();
    let flags: Vec<_> = replies
        .iter()
        .map(|v| (&v["seq"], &v["corrupted"]))
        .collect();
    assert_eq!(
        flags,
        [(&1.into(), &true.into()), (&2.into(), &false.into())],
        "{stdout}"
    );
    let summary = lines
        .iter()
        .find(|v| v["type"] == "summary")
        .expect("summary");
    assert_eq!(
        (&summary["received"], &summary["corrupted"]),
        (&1.into(), &1.into()),
        "{stdout}"
    );
}

/// A host that answers with less data than the request carried (here 40 bytes of 56) went
/// unheard: netkit took only replies of the request's length, `3 packets transmitted, 0
/// received, 100% packet loss`, exit 1. iputils counts such a reply, its round trip too, and
/// prints it `48 bytes from ADDR: icmp_seq=1 ttl=64 (truncated)`; a longer reply it takes
/// as any other. Now netkit does both.
#[test]
fn replies_shorter_or_longer_than_the_request_went_unheard() {
    if !privileged("ping truncated replies") {
        return;
    }
    let (near, far) = two_hosts("pingtrunc");
    let args = ["-c", "3", "-i", "0.2", "-W", "1", "198.18.0.2"];
    let short = Responder::data_len(&far, 40);
    let want = "3 packets transmitted, 3 received, 0% packet loss";
    let (out, i_out) = both_counted(&near, &args, 0, want);
    drop(short);
    let truncated = lines(&i_out, "48 bytes from ");
    assert_eq!(truncated.len(), 3, "{i_out}");
    assert!(
        truncated[0].ends_with(": icmp_seq=1 ttl=64 (truncated)"),
        "{i_out}"
    );
    assert_eq!(lines(&out, "48 bytes from "), truncated, "{out}");
    assert!(
        line_starting(&out, "rtt ").starts_with("rtt min/avg/max/mdev = "),
        "{out}"
    );
    let _long = Responder::data_len(&far, 64);
    let (out, i_out) = both_counted(
        &near,
        &args,
        0,
        "3 packets transmitted, 3 received, 0% packet loss",
    );
    assert_eq!(lines(&i_out, "72 bytes from ").len(), 3, "{i_out}");
    assert_eq!(lines(&out, "72 bytes from ").len(), 3, "{out}");
}

/// The lines of `out` that start with `start`.
fn lines(out: &str, start: &str) -> Vec<String> {
    let lines = out.lines().filter(|l| l.starts_with(start));
    lines.map(str::to_string).collect()
}

/// A reply cut short of the request's send time (fewer than 16 data bytes; here 8 of 56), or
/// shorter than an untimed request (`-s 12`, answered with 4), went unheard: netkit took it
/// for someone else's, `3 packets transmitted, 0 received, 100% packet loss`, exit 1. iputils
/// takes every reply with its identifier: it counts them, prints `16 bytes from ADDR:
/// icmp_seq=1 ttl=64 (truncated)`, without a time, and exits 0. (With no round trip measured,
/// iputils 20221126 still prints `rtt min/avg/max/mdev` for a timed run, its minimum never set:
/// `9223372036854775.807/0.000/0.000/0.000 ms`; netkit prints no figures it did not measure.)
#[test]
fn replies_cut_short_of_the_send_time_went_unheard() {
    if !privileged("ping replies cut short of the send time") {
        return;
    }
    let (near, far) = two_hosts("pingcut");
    for (size, data_len) in [("56", 8), ("12", 4)] {
        let args = ["-c", "3", "-i", "0.2", "-W", "1", "-s", size, "198.18.0.2"];
        let short = Responder::data_len(&far, data_len);
        let want = "3 packets transmitted, 3 received, 0% packet loss";
        let (out, i_out) = both_counted(&near, &args, 0, want);
        drop(short);
        let start = format!("{} bytes from ", 8 + data_len);
        let truncated = lines(&i_out, &start);
        assert_eq!(truncated.len(), 3, "-s {size}: {i_out}");
        assert!(
            truncated[2].ends_with(": icmp_seq=3 ttl=64 (truncated)"),
            "-s {size}: {i_out}"
        );
        assert_eq!(lines(&out, &start), truncated, "-s {size}: {out}");
    }
}

/// fping's `xmt/rcv/%loss` figures of `host` in `out` (`2/0/100%`).
fn xmt_rcv_loss(out: &str, host: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{host} ")) && l.contains("xmt/rcv/%loss = "))
        .unwrap_or_else(|| panic!("no summary of {host} in\n{out}"));
    let figures = line.split("xmt/rcv/%loss = ").nth(1).unwrap_or_default();
    figures.split(',').next().unwrap_or_default().to_string()
}

/// An unprivileged ping (datagram sockets, which receive ICMP errors through `IP_RECVERR`) of
/// several hosts lost every request to a host that answers when the request before it, to
/// another host, drew an ICMP error: the kernel keeps the error as the socket's pending error
/// too and returns it from the next send, which then does not happen. Here a router rejects
/// 198.18.7.1 (admin prohibited): netkit printed `netkit: 198.18.1.2: sendmsg:
/// no route to host` at every round and `2/0/100%` for a host that fping, on the same network,
/// finds answering every request (IPv6: `permission denied`, from the admin-prohibited error).
/// iputils pings one host; with a preload (`-l 3`) it loses its own second request the same
/// way, which netkit's raw sockets (root) never did.
#[test]
fn unprivileged_requests_after_an_icmp_error_were_refused() {
    if !privileged("ping unprivileged after an ICMP error") {
        return;
    }
    let [near, _router, _far] = crate::ping_net::routed_rejecting("pingsoerr");
    let hosts = ["198.18.7.1", "198.18.1.2", "2001:db8:7::1", "2001:db8:1::2"];
    let mut fping = near.command("fping");
    fping.args(["-c", "2", "-p", "300", "-q"]).args(hosts);
    let (f_code, f_out, f_err) = text(&fping.output().expect("run fping"));
    let f_all = format!("{f_out}{f_err}");
    assert_eq!(xmt_rcv_loss(&f_all, "198.18.1.2"), "2/2/0%", "{f_all}");
    assert_eq!(xmt_rcv_loss(&f_all, "2001:db8:1::2"), "2/2/0%", "{f_all}");
    let mut args = vec!["-i", "0.3", "--fping-summary"];
    args.extend(hosts);
    let (code, out, err) = crate::ping::ping_as_nobody(&near, "0 2147483647", &args);
    for host in hosts {
        let figures = xmt_rcv_loss(&out, host);
        assert_eq!(
            figures,
            xmt_rcv_loss(&f_all, host),
            "{out}{err}\nfping: {f_all}"
        );
    }
    for host in ["198.18.7.1", "2001:db8:7::1"] {
        let from = format!("{host}: From ");
        let errors = out.lines().filter(|l| l.starts_with(&from)).count();
        assert_eq!(errors, 2, "{out}{err}");
    }
    assert!(!err.contains("sendmsg"), "{err}");
    assert_eq!((code, f_code), (1, 1), "{out}{err}\nfping: {f_all}");
}

/// iputils reads its options with getopt: one given twice takes its last value (`ping -6 -6`,
/// from a `ping6`-style wrapper that already passes `-6`; `-c 3 ... -c 1` from a script that
/// appends its own count). netkit refused both as `-6: cannot be used with -6` (exit 2).
/// Beside iputils, on the IPv6 loopback of a fresh namespace: the same counts, the last value
/// winning.
#[test]
fn an_option_given_twice_was_refused() {
    if !privileged("ping with an option given twice") {
        return;
    }
    let ns = Netns::with_loopback("pingtwice");
    for (args, want) in [
        (
            &["-6", "-6", "-c", "2", "-i", "0.2", "::1"][..],
            "2 packets transmitted, 2 received, 0% packet loss",
        ),
        (
            &[
                "-c", "3", "-i", "0.5", "-6", "-c", "1", "-i", "0.2", "-n", "-n", "::1",
            ][..],
            "1 packets transmitted, 1 received, 0% packet loss",
        ),
        (
            &[
                "-q", "-q", "-s", "8", "-s", "100", "-c", "1", "-W", "5", "-W", "1", "::1",
            ][..],
            "1 packets transmitted, 1 received, 0% packet loss",
        ),
    ] {
        let (out, i_out) = both_counted(&ns, args, 0, want);
        if args.contains(&"100") {
            assert!(
                out.contains("PING ::1(::1) 100 data bytes"),
                "{out}\n{i_out}"
            );
        }
    }
    // -4 and -6 still exclude each other (iputils: "only one -4 or -6 option may be specified").
    let (code, _, err) = ping_in(&ns, &["-4", "-6", "-c", "1", "::1"]);
    let (i_code, _, _) = iputils_in(&ns, &["-4", "-6", "-c", "1", "::1"]);
    assert_eq!((code, i_code), (2, 2), "{err}");
}

/// IPv6 takes a hop limit of 0 (RFC 8200 only forbids forwarding such a packet): a request
/// sent with it reaches the on-link neighbours and no further, and iputils sends it
/// (`ping -6 -t 0 fe80::1%eth0` answers). netkit refused `-t 0` as out of range for every
/// target (exit 2). IPv4 has no such TTL: iputils refuses it there, and so does netkit.
#[test]
fn an_ipv6_hop_limit_of_zero_was_refused() {
    if !privileged("ping -6 -t 0") {
        return;
    }
    let (near, _far, target) = link_local_pair("pinghl0");
    let args = ["-c", "2", "-i", "0.3", "-W", "2", "-t", "0", &target];
    both_counted(
        &near,
        &args,
        0,
        "2 packets transmitted, 2 received, 0% packet loss",
    );
    let v4 = ["-c", "1", "-t", "0", "127.0.0.1"];
    let ((code, _, err), (i_code, _, i_err)) = both_in(&near, &v4);
    assert_eq!((code, i_code), (2, 2), "netkit: {err}\niputils: {i_err}");
    assert!(err.starts_with("netkit: 0: "), "{err}");
}

/// `-t` set only the unicast hop limit: a request to a multicast group (`ff02::1%nk0`) still
/// left with the kernel's multicast default of 1, where iputils sends it with the hop limit
/// asked for (it sets `IPV6_MULTICAST_HOPS` too, and `IP_MULTICAST_TTL` for IPv4). Here the
/// far host drops echo requests that arrive with a hop limit below 2: with `-t 5` iputils
/// hears it answer the group, netkit only heard itself.
#[test]
fn ttl_was_not_applied_to_multicast_requests() {
    if !privileged("ping -t to a multicast group") {
        return;
    }
    let (near, far, _target) = link_local_pair("pingmhl");
    crate::harness::sh(&[
        "ip",
        "netns",
        "exec",
        &far.name,
        "ip6tables",
        "-A",
        "INPUT",
        "-p",
        "ipv6-icmp",
        "--icmpv6-type",
        "echo-request",
        "-m",
        "hl",
        "--hl-lt",
        "2",
        "-j",
        "DROP",
    ]);
    let args = ["-c", "2", "-i", "0.3", "-W", "2", "-t", "5", "ff02::1%nk0"];
    let ((code, out, err), (i_code, i_out, i_err)) = both_in(&near, &args);
    let want = repliers(&i_out);
    assert_eq!((i_code, want.len()), (0, 2), "iputils: {i_out}{i_err}");
    assert_eq!((code, repliers(&out)), (i_code, want), "netkit: {out}{err}");
}

/// Untimed requests (`-s` below 16: no round trip measured) at an interval of 0: once a
/// reply has come, iputils' wait after the last request is twice the longest round trip, at
/// least one interval, here 0, and its alarm set to 0 is no alarm: it waits for every answer
/// (or the deadline, or a signal). netkit took the wait of 0 for the end at once: over a 30 ms
/// round trip, with requests 10 ms apart, the replies still in flight at the last request
/// were counted lost (`10 packets transmitted, 6 received, 40% packet loss`, an audit saw
/// `20 packets transmitted, 8 received` with `-f -s 0` where all 20 came back within 0.1 s).
#[test]
fn untimed_requests_at_interval_zero_ended_with_replies_in_flight() {
    if !privileged("ping untimed interval 0") {
        return;
    }
    let (near, far) = two_hosts("pinguntimed");
    let _far_answers = Responder::start(&far, Duration::from_millis(30), 1);
    let args = ["-c", "10", "-i", "0", "-s", "8", "198.18.0.2"];
    both_counted(
        &near,
        &args,
        0,
        "10 packets transmitted, 10 received, 0% packet loss",
    );
}

/// Whether `line` is the figures line of an untimed ping at an interval of 0: iputils'
/// `ipg/ewma G/0.000 ms` (the moving average of no round trip is 0), after `pipe N` if any.
fn untimed_ipg_line(line: &str) -> bool {
    let ipg = line.rsplit(", ").next().unwrap_or_default();
    let Some(figures) = ipg
        .strip_prefix("ipg/ewma ")
        .and_then(|f| f.strip_suffix("/0.000 ms"))
    else {
        return false;
    };
    let (whole, frac) = figures.split_once('.').unwrap_or_default();
    !whole.is_empty() && whole.bytes().all(|b| b.is_ascii_digit()) && frac.len() == 3
}

/// With no round trip measured (`-s` below 16), iputils still ends an interval-0 or flood
/// ping's summary with `ipg/ewma G/0.000 ms` (the gap between requests is measured; its
/// moving average of round trips stays 0); netkit left the figure out, the last line empty.
#[test]
fn untimed_ping_left_out_the_ipg_figure() {
    if !privileged("ping untimed ipg") {
        return;
    }
    let (near, _far) = two_hosts("pingipg");
    for args in [
        &["-c", "3", "-i", "0", "-s", "8", "198.18.0.2"][..],
        &["-c", "3", "-f", "-s", "0", "198.18.0.2"][..],
    ] {
        let ((code, out, err), (i_code, i_out, i_err)) = both_in(&near, args);
        assert_eq!(i_code, 0, "iputils {args:?}: {i_out}{i_err}");
        let last = |out: &str| out.lines().last().unwrap_or_default().to_string();
        assert!(untimed_ipg_line(&last(&i_out)), "iputils {args:?}: {i_out}");
        assert!(untimed_ipg_line(&last(&out)), "netkit {args:?}: {out}{err}");
        same_counts(code, &out, &err, i_code, &i_out);
    }
}

/// iputils reads every answer already queued (without blocking, while requests are in
/// flight) before it checks whether it has its count: `-c 2 -w 2 -l 3` sends three requests
/// at once and counts the three replies that come back together, `3 packets transmitted, 3
/// received, 0% packet loss`. netkit stopped at the second reply and called the third, which
/// had arrived, lost: `3 received` became `2 received, 33.3333% packet loss` (every run, IPv4
/// and IPv6; the audit saw it with `-w` and losses too, a reply in with the one that made the
/// count left out).
#[test]
fn replies_queued_with_the_one_that_made_the_count_were_called_lost() {
    if !privileged("ping queued replies at the count") {
        return;
    }
    let (near, _far) = two_hosts("pingqueued");
    for host in ["198.18.0.2", "2001:db8::2"] {
        let args = ["-c", "2", "-w", "2", "-l", "3", host];
        let want = "3 packets transmitted, 3 received, 0% packet loss";
        runs_counted(&near, &args, want, 3);
    }
}

/// iputils' `ping ARGS` once inside `ns`, which must end with exit 0 and the counts `want`
/// ([`iputils_counts`]), then netkit's `runs` times, each of which must end as iputils did (a
/// timing-dependent fault shows in some runs only).
fn runs_counted(ns: &Netns, args: &[&str], want: &str, runs: usize) {
    let (i_code, i_out, i_err) = iputils_in(ns, args);
    iputils_counts(i_code, &i_out, &i_err, 0, want);
    for run in 1..=runs {
        let (code, out, err) = ping_in(ns, args);
        assert_eq!(
            (code, counts(&out)),
            (i_code, counts(&i_out)),
            "netkit run {run} of {args:?}: {out}{err}"
        );
    }
}

/// The lines iputils prints for ICMP errors, `From X icmp_seq=N TEXT`, as (from, seq, text).
fn error_lines(out: &str) -> Vec<(String, u64, String)> {
    out.lines()
        .filter_map(|l| l.strip_prefix("From "))
        .map(|rest| {
            let (from, rest) = rest.split_once(" icmp_seq=").expect("icmp_seq=");
            let (seq, text) = rest.split_once(' ').expect("a text after the number");
            (
                from.to_string(),
                seq.parse().expect("a number"),
                text.to_string(),
            )
        })
        .collect()
}

/// With `--json`, a request answered by an ICMP error (iputils' `From 198.18.0.1 icmp_seq=1
/// Destination Host Unreachable`) was reported as a `timeout` record: neither the error nor
/// who sent it was said, and it read as silence. It is now an `error` record with the text
/// iputils prints, its sender, and the ICMP type and code; the text output has iputils'
/// lines and its `+N errors`.
#[test]
fn icmp_errors_were_timeout_records_in_json() {
    if !privileged("ping --json errors") {
        return;
    }
    let (near, _far) = two_hosts("pingjerr");
    for (target, kind) in [("198.18.0.3", (3, 1)), ("2001:db8::3", (1, 3))] {
        let args = ["-c", "3", "-i", "0.3", target];
        let ((code, out, err), (i_code, i_out, i_err)) = both_in(&near, &args);
        assert_eq!(
            counts(&i_out),
            "3 packets transmitted, 0 received, +3 errors, 100% packet loss",
            "{i_out}{i_err}"
        );
        same_counts(code, &out, &err, i_code, &i_out);
        let want = error_lines(&i_out);
        assert_eq!(error_lines(&out), want, "{out}\niputils: {i_out}");
        let (code, stdout, stderr) = ping_in(&near, &[&["--json"][..], &args].concat());
        assert_eq!(code, 1, "{stderr}");
        let lines = json_lines(&stdout);
        let kinds: Vec<&str> = lines.iter().filter_map(|v| v["type"].as_str()).collect();
        assert_eq!(kinds, ["error", "error", "error", "summary"], "{stdout}");
        let got: Vec<(String, u64, String)> = lines
            .iter()
            .filter(|v| v["type"] == "error")
            .map(|v| {
                assert_eq!((&v["host"], &v["addr"]), (&v["addr"], &v["addr"]), "{v}");
                assert_eq!(v["addr"], target, "{v}");
                assert_eq!(
                    (&v["icmp_type"], &v["icmp_code"]),
                    (&kind.0.into(), &kind.1.into())
                );
                let field = |name: &str| v[name].as_str().expect(name).to_string();
                (
                    field("from"),
                    v["seq"].as_u64().expect("seq"),
                    field("error"),
                )
            })
            .collect();
        assert_eq!(got, want, "{stdout}\niputils: {i_out}");
        assert_eq!(lines[3]["errors"], 3, "{stdout}");
    }
}

/// `-U` (iputils: the round trip ends when ping reads the reply, not at the kernel's receive
/// timestamp) was refused as an unsupported flag (exit 2) where iputils pings.
#[test]
fn user_to_user_latency_flag_was_refused() {
    if !privileged("ping -U") {
        return;
    }
    let ns = Netns::with_loopback("pinguser");
    let args = ["-U", "-c", "2", "-i", "0.2", "127.0.0.1"];
    let want = "2 packets transmitted, 2 received, 0% packet loss";
    let (out, _) = both_counted(&ns, &args, 0, want);
    assert_eq!(
        out.matches(" ms").count(),
        3,
        "two timed replies and rtt: {out}"
    );
}

/// The short IPv4 forms that iputils (inet_aton), curl and ncat take — `127.1`, `0x7f.1`,
/// `2130706433`, `0177.0.0.1` — were refused as "invalid IPv4 address" (exit 2).
#[test]
fn short_ipv4_forms_were_refused() {
    if !privileged("ping 127.1") {
        return;
    }
    let ns = Netns::with_loopback("pingshort");
    for host in ["127.1", "0x7f.1", "2130706433", "0177.0.0.1"] {
        let args = ["-c", "1", host];
        let want = "1 packets transmitted, 1 received, 0% packet loss";
        let (out, i_out) = both_counted(&ns, &args, 0, want);
        assert_eq!(line_starting(&out, "PING "), line_starting(&i_out, "PING "));
        assert!(
            line_starting(&out, "64 bytes from ").starts_with("64 bytes from 127.0.0.1: "),
            "{host}: {out}"
        );
    }
}

/// The flow label of the echo requests `ping ARGS` sends to ::1 in `ns`, as tcpdump sees them
/// on the wire (`flowlabel 0x1b2c3`), and ping's PING line.
fn flow_labels_sent(ns: &Netns, ping: Command) -> (Vec<String>, String) {
    let mut dump = Command::new("ip");
    dump.args([
        "netns", "exec", &ns.name, "tcpdump", "-l", "-n", "-v", "-i", "lo",
    ]);
    dump.args(["-c", "2", "icmp6 and ip6[40] == 128"]);
    let dump = Proc::spawn(dump);
    dump.stderr.wait_for(|l| l.contains("listening on"), 1);
    let (code, out, err) = text(&{ ping }.output().expect("run ping"));
    assert_eq!(code, 0, "{out}{err}");
    let lines = dump.stdout.wait_for(|l| l.contains("flowlabel "), 2);
    let labels = lines
        .iter()
        .map(|l| l.split("flowlabel ").nth(1).unwrap_or_default())
        .map(|rest| rest.split(',').next().unwrap_or_default().to_string())
        .collect();
    (labels, line_starting(&out, "PING ").to_string())
}

/// `-F FLOWLABEL` was refused as an unsupported flag (exit 2); iputils leases the label
/// (`IPV6_FLOWLABEL_MGR`) and its requests carry it. Both now do, as tcpdump sees it, and say
/// so alike in the PING line (`, flow 0x1b2c3,`).
#[test]
fn ipv6_flow_label_was_refused() {
    if !privileged("ping -F") {
        return;
    }
    let ns = Netns::with_loopback("pingflow");
    // Each tool its own label: a label stays held for seconds after its socket closed.
    for (label, netkit) in [("0x1b2c3", true), ("0x1b2c4", false)] {
        let args = ["-c", "2", "-i", "0.2", "-F", label, "::1"];
        let cmd = match netkit {
            true => {
                let mut cmd = ns.netkit();
                cmd.arg("ping").args(args);
                cmd
            }
            false => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", &ns.name, "ping"]).args(args);
                cmd
            }
        };
        let (labels, header) = flow_labels_sent(&ns, cmd);
        assert_eq!(labels, [label, label], "netkit: {netkit}");
        let want = format!(
            "PING ::1(::1) , flow 0x{:05x}, 56 data bytes",
            0x1b2c3 + u32::from(!netkit)
        );
        assert_eq!(header, want, "netkit: {netkit}");
    }
}

/// `ping -F LABEL ARGS` in `ns`, by netkit or by iputils: its exit status and stderr.
fn flow_ping(ns: &Netns, netkit: bool, args: &[&str]) -> (i32, String) {
    let mut cmd = match netkit {
        true => ns.netkit(),
        false => {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", &ns.name]);
            cmd
        }
    };
    cmd.arg("ping").args(args);
    let (code, _, err) = text(&cmd.output().expect("run ping"));
    (code, err)
}

/// `-F LABEL` with the label held by another socket (here a ping still running with it) ended
/// with exit 3 and a hint to run as root or grant CAP_NET_BIND_SERVICE; iputils says `can't set
/// flowlabel: Operation not permitted` and exits 2, as for any value it cannot use. The label
/// is the input at fault (`-F 0` lets the kernel choose a free one): exit 2, `netkit: 0x1b2d1:
/// ...`, and no word of privileges.
#[test]
fn a_flow_label_held_elsewhere_was_an_environment_refusal() {
    if !privileged("ping -F held") {
        return;
    }
    let ns = Netns::with_loopback("pingflowheld");
    for (label, netkit) in [("0x1b2d1", true), ("0x1b2d2", false)] {
        let mut holder = Command::new("ip");
        holder.args(["netns", "exec", &ns.name, "ping", "-i", "0.2", "-c", "600"]);
        holder.args(["-F", label, "::1"]);
        let holder = Proc::spawn(holder);
        holder.stdout.wait_line("bytes from ::1");
        let (code, err) = flow_ping(&ns, netkit, &["-c", "1", "-F", label, "::1"]);
        drop(holder);
        assert_eq!(code, 2, "netkit: {netkit}: {err}");
        if netkit {
            let want = format!("netkit: {label}: IPv6 flow label held by another socket");
            assert!(err.starts_with(&want), "{err}");
            assert!(!err.contains("root"), "{err}");
        } else {
            assert!(err.contains("can't set flowlabel"), "{err}");
        }
    }
}

/// Requests the kernel refuses (a local firewall drops them: `sendmsg` fails with EPERM).
/// iputils counts each as sent, prints nothing for it (its error queue is empty) and drops
/// the credit of its `-l` burst after the first (`tokens = 0`): the next request waits an
/// interval, so `-c 3 -l 3 -i 1.5 -w 2` sends two. netkit sent the whole burst at once (three)
/// and printed `netkit: 198.18.0.2: sendmsg: operation not permitted` for each; it now prints
/// that line once, until a request leaves again or the reason changes.
#[test]
fn a_refused_request_kept_the_preload_burst_and_printed_a_line_each() {
    if !privileged("ping refused by a local firewall") {
        return;
    }
    let (near, _far) = two_hosts("pingrefuse");
    iptables(
        &near,
        &[
            "-A",
            "OUTPUT",
            "-p",
            "icmp",
            "--icmp-type",
            "echo-request",
            "-j",
            "DROP",
        ],
    );
    let args = ["-c", "3", "-l", "3", "-i", "1.5", "-w", "2", "198.18.0.2"];
    let (i_code, i_out, i_err) = iputils_in(&near, &args);
    let want = "2 packets transmitted, 0 received, 100% packet loss";
    iputils_counts(i_code, &i_out, &i_err, 1, want);
    assert_eq!(i_err, "", "iputils is silent");
    let (code, out, err) = ping_in(&near, &args);
    same_counts(code, &out, &err, i_code, &i_out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        ["netkit: 198.18.0.2: sendmsg: operation not permitted"],
        "{out}{err}"
    );
}

#[test]
fn the_unspecified_ipv4_address_was_pinged_as_itself() {
    if !privileged("ping 0.0.0.0") {
        return;
    }
    // A request to 0.0.0.0 goes to this host, from the source address the kernel picks, and
    // the reply comes from that address. iputils pings that address (the PING line names it,
    // the replies are not from a `DIFFERENT ADDRESS!`); netkit named 0.0.0.0 and flagged
    // every reply. The same with `-I ADDR`: its address is pinged.
    let ns = Netns::with_loopback("pingzero");
    ns.ip(&["addr", "add", "127.0.0.5/8", "dev", "lo"]);
    for args in [
        &["-c", "1", "0.0.0.0"][..],
        &["-c", "1", "0"],
        &["-c", "1", "-I", "127.0.0.5", "0"],
    ] {
        let ((code, out, err), (i_code, i_out, i_err)) = both_in(&ns, args);
        assert_eq!(i_code, 0, "iputils {args:?}: {i_out}{i_err}");
        assert!(!i_out.contains("DIFFERENT ADDRESS"), "{i_out}");
        assert_eq!(code, 0, "netkit {args:?}: {out}{err}");
        let ping = |o: &str| line_starting(o, "PING ").replace("56(84) bytes of data.", "");
        assert_eq!(ping(&out), ping(&i_out), "{args:?}: {out}");
        let reply = |o: &str| {
            line_starting(o, "64 bytes from ")
                .split(" time=")
                .next()
                .map(str::to_string)
        };
        assert_eq!(reply(&out), reply(&i_out), "{args:?}: {out}");
        assert!(!out.contains("DIFFERENT ADDRESS"), "{args:?}: {out}");
        assert_eq!(
            stats_line(&out).split(", time").next(),
            stats_line(&i_out).split(", time").next()
        );
        let json = ns
            .netkit()
            .args(["--json", "ping"])
            .args(args)
            .output()
            .expect("run");
        let (_, jout, _) = text(&json);
        let lines = json_lines(&jout);
        let want = line_starting(&i_out, "PING ")
            .split(['(', ')'])
            .nth(1)
            .unwrap_or_default()
            .to_string();
        for line in &lines {
            assert_eq!(line["addr"], want.as_str(), "{jout}");
        }
    }
}

#[test]
fn an_ipv4_mapped_address_was_pinged_over_icmpv6() {
    if !privileged("ping ::ffff:127.0.0.1") {
        return;
    }
    // `::ffff:127.0.0.1` is 127.0.0.1 to any connect, and never an address on the wire.
    // netkit (like iputils) sent ICMPv6 requests to it: in a namespace with only a loopback
    // the send failed and every request was lost; on a host they leave through the default
    // route. Now the IPv4 address it maps is pinged, and `-6` refuses it as bad input.
    let ns = Netns::with_loopback("pingmapped");
    let args = ["-c", "1", "-W", "1", "::ffff:127.0.0.1"];
    let ((code, out, err), (i_code, i_out, _)) = both_in(&ns, &args);
    assert_ne!(i_code, 0, "iputils now reaches it: {i_out}");
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        line_starting(&out, "PING "),
        "PING ::ffff:127.0.0.1 (127.0.0.1) 56(84) bytes of data.",
        "{out}"
    );
    assert!(
        line_starting(&out, "64 bytes from ").starts_with("64 bytes from 127.0.0.1: icmp_seq=1 "),
        "{out}"
    );
    assert!(
        stats_line(&out).contains(" 1 received, 0% packet loss"),
        "{out}"
    );
    assert!(err.is_empty(), "{err}");
    let (code, out, err) = ping_in(&ns, &["-6", "-c", "1", "::ffff:127.0.0.1"]);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(
        err.trim_end(),
        "netkit: ::ffff:127.0.0.1: an IPv4-mapped address is IPv4 on the wire, never IPv6; \
         ping 127.0.0.1 (without -6)",
    );
}

#[test]
fn an_ipv4_mapped_address_was_refused_by_dash_4_and_took_a_source_of_the_other_family() {
    if !privileged("ping -4 ::ffff:127.0.0.1") {
        return;
    }
    // `ping ::ffff:127.0.0.1` pings 127.0.0.1, yet `-4` (IPv4 only) refused it as "not an
    // IPv4 address", `-I 127.0.0.1` as "a source address of the other family", and `-I ::1`
    // was taken: the header said `from ::1` over an IPv4 ping. iputils 20221126 refuses
    // `-4` (its resolver's "Address family for hostname not supported") and pings the mapped
    // address over ICMPv6 otherwise; a mapped `-I` address it takes as the IPv4 one it maps.
    let ns = Netns::with_loopback("pingmapped4");
    let args = ["-4", "-c", "1", "-W", "1", "::ffff:127.0.0.1"];
    let ((code, out, err), (i_code, _, i_err)) = both_in(&ns, &args);
    assert_eq!(
        i_code, 2,
        "iputils now takes -4 with a mapped address: {i_err}"
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        line_starting(&out, "PING "),
        "PING ::ffff:127.0.0.1 (127.0.0.1) 56(84) bytes of data.",
    );
    assert!(
        stats_line(&out).contains(" 1 received, 0% packet loss"),
        "{out}"
    );
    // The source given as IPv4 for a mapped target: the same ping, from 127.0.0.1.
    let (code, out, err) = ping_in(&ns, &["-c", "1", "-I", "127.0.0.1", "::ffff:127.0.0.1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        line_starting(&out, "PING "),
        "PING ::ffff:127.0.0.1 (127.0.0.1) from 127.0.0.1 : 56(84) bytes of data.",
    );
    // A mapped source for an IPv4 target: iputils' line, word for word.
    let args = ["-c", "1", "-W", "1", "-I", "::ffff:127.0.0.1", "127.0.0.1"];
    let ((code, out, err), (i_code, i_out, _)) = both_in(&ns, &args);
    assert_eq!((code, i_code), (0, 0), "{out}{err}\niputils: {i_out}");
    assert_eq!(line_starting(&out, "PING "), line_starting(&i_out, "PING "));
    same_counts(code, &out, &err, i_code, &i_out);
    // An IPv6 source cannot send to the IPv4 address a mapped target is pinged at.
    let (code, out, err) = ping_in(&ns, &["-c", "1", "-I", "::1", "::ffff:127.0.0.1"]);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(
        err.trim_end(),
        "netkit: -I ::1: a source address of the other family than ::ffff:127.0.0.1 \
         (pinged as 127.0.0.1)",
    );
}
