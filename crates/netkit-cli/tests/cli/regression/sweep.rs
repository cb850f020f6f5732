//! Regressions of `netkit sweep`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::discovery_lab::{nmap_up, status_ttls};
use crate::discovery_probes_lab::status_reason;
use crate::harness::{privileged, text, Netns};
use crate::lab::{ms, Lab, LabExt};
use crate::ping_net::link_local_pair;
use crate::scan::{inside, listeners};
use crate::sweep_lab::{assert_exact, fping_alive, lossy, netkit_sweep, pick, pingable};
use crate::sweep_onlink::{mac_of, no_dad};

/// Issue 12: behind 30±10 ms with 10% loss each way, netkit's defaults (one retry, a fixed
/// timeout) missed 2-5 of 270 live hosts per run where fping's defaults missed none.
#[test]
fn sweep_misses_live_hosts_at_10_percent_loss() {
    if !privileged("sweep_misses_live_hosts_at_10_percent_loss") {
        return;
    }
    let hosts = pick("198.18.1", 150, 7);
    let lab = lossy("swrloss", 0.10, 11, &hosts).build().expect("lab");
    let range = "198.18.1.0/24";
    let fping = fping_alive(&lab, &["-g", range]);
    let run = netkit_sweep(&lab, &[range]);
    assert_eq!(run.code, 1, "silent targets: {}", run.stderr);
    assert_exact("10% loss", &run.alive(1), &pingable(&lab, range), &fping);
}

/// Issue 12: `--every` at 10% loss reported hosts going down and coming back up (24 false
/// changes on 270 hosts) while nothing changed: a host was declared down after one round
/// without an answer, with no re-probes to confirm it.
#[test]
fn sweep_every_reports_false_changes_at_10_percent_loss() {
    if !privileged("sweep_every_reports_false_changes_at_10_percent_loss") {
        return;
    }
    let hosts = pick("198.18.1", 150, 13);
    let lab = lossy("swrevery", 0.10, 17, &hosts).build().expect("lab");
    let range = "198.18.1.0/24";
    let run = netkit_sweep(&lab, &[range, "--every", "1s", "--rounds", "4"]);
    let truth = pingable(&lab, range);
    for round in 1..=4 {
        assert_exact(
            &format!("round {round}"),
            &run.alive(round),
            &truth,
            &BTreeSet::new(),
        );
    }
    let changes = run.changes();
    assert!(changes.is_empty(), "nothing changed: {changes:?}");
}

/// The range of [`policed_lab`]'s hosts.
const POLICED_RANGE: &str = "198.18.1.0-198.18.2.63";

/// 298 live hosts behind a far side that polices ICMP echo to 200/s, 5 ms each way:
/// 198.18.1.0/24 (256 hosts) and two of every three addresses of 198.18.2.0/26.
fn policed_lab(tag: &str) -> Lab {
    let extra = (0..64)
        .filter(|n| n % 3 != 0)
        .map(|n| format!("198.18.2.{n}"));
    extra
        .fold(
            Lab::builder(tag)
                .delay(crate::lab::ms(5))
                .hosts("198.18.1.0/24")
                .icmp_police(200),
            |b, h| b.host(&h),
        )
        .build()
        .expect("lab")
}

/// Issue 12: against a far side that polices ICMP echo to 1000/s, netkit at its default 10000
/// probes/s missed 75-92% of 2000 live hosts and said nothing about it; fping found them all.
/// Here at a smaller scale: 300 live hosts behind a 200/s policer.
#[test]
fn sweep_misses_hosts_under_icmp_policing() {
    if !privileged("sweep_misses_hosts_under_icmp_policing") {
        return;
    }
    let lab = policed_lab("swrpolice");
    let range = POLICED_RANGE;
    let fping = fping_alive(&lab, &["-g", "198.18.1.0", "198.18.2.63"]);
    let run = netkit_sweep(&lab, &[range]);
    let truth: BTreeSet<IpAddr> = pingable(&lab, range);
    assert_exact("policed to 200/s", &run.alive(1), &truth, &fping);
    // It says so: a throttle record, and the summary.
    let throttles = run.throttles();
    assert!(!throttles.is_empty(), "{}", run.stdout);
    assert_eq!(throttles[0].from_rate, 10_000, "{throttles:?}");
    assert!(throttles[0].answered_pct < 50.0, "{throttles:?}");
    let summary = &run.summaries()[0];
    assert!(summary.throttled && summary.rate < 1000, "{summary:?}");
}

/// The policing test above failed once on a loaded machine (291 of 298 found, fping 298):
/// probes lost to the policer before the sweep slowed down, which are not to count against
/// the retries, made a batch of targets overflow the schedule's queues (one per attempt up to
/// `--retries` + 1), and such a batch was dropped unreported: no more probes, no wait for the
/// answers to its last one. And until the meter had judged a window of control probes — a
/// policer starves them of answers — no probe counted as wasted at all. With two retries the
/// same lab showed it every time: 49 to 106 of 298 hosts found; fping -r 2 found them all.
#[test]
fn sweep_misses_hosts_under_icmp_policing_with_few_retries() {
    if !privileged("sweep_misses_hosts_under_icmp_policing_with_few_retries") {
        return;
    }
    let lab = policed_lab("swrpolic2");
    let range = POLICED_RANGE;
    let fping = fping_alive(&lab, &["-r", "2", "-g", "198.18.1.0", "198.18.2.63"]);
    let run = netkit_sweep(&lab, &[range, "--retries", "2"]);
    let truth: BTreeSet<IpAddr> = pingable(&lab, range);
    assert_exact("policed to 200/s, 2 retries", &run.alive(1), &truth, &fping);
    assert!(run.summaries()[0].throttled, "{}", run.stdout);
}

/// Issue 14/16: Ctrl-C (or SIGTERM) killed a periodic sweep with the default action, so its
/// `-oX` document, promised "when the sweep ends", was never written. Now the document holds
/// the hosts of the rounds that finished, marked interrupted (as nmap marks an interrupted
/// run), and the exit status is 130.
#[test]
fn an_interrupted_periodic_sweep_wrote_no_document() {
    if !privileged("an_interrupted_periodic_sweep_wrote_no_document") {
        return;
    }
    let ns = crate::harness::Netns::with_loopback("swint");
    let dir = tempfile::tempdir().expect("tempdir");
    let xml = dir.path().join("sweep.xml");
    let mut cmd = ns.netkit();
    cmd.args([
        "sweep",
        "127.0.0.1-4",
        "--every",
        "200ms",
        "--rounds",
        "1000",
        "-oX",
    ])
    .arg(&xml);
    let mut sweep = crate::harness::Proc::spawn(cmd);
    // The first round's lines (later rounds print only changes), a few more rounds, then
    // Ctrl-C in the middle of the run.
    sweep.stdout.wait_for(|l| l.starts_with("Total "), 1);
    std::thread::sleep(std::time::Duration::from_millis(500));
    sweep.signal("INT");
    assert_eq!(sweep.wait(), 130);
    let doc = std::fs::read_to_string(&xml).expect("the document was written");
    assert!(
        doc.contains(r#"exit="error" errormsg="interrupted""#),
        "{doc}"
    );
    assert!(
        doc.contains(r#"<hosts up="4" down="0" total="4"/>"#),
        "{doc}"
    );
    let valid = std::process::Command::new("xmllint")
        .args(["--noout", "--dtdvalid", "/usr/share/nmap/nmap.dtd"])
        .arg(&xml)
        .output()
        .expect("xmllint");
    assert!(
        valid.status.success(),
        "{}",
        String::from_utf8_lossy(&valid.stderr)
    );
}

/// `--method tcp:PORT` gave each connect `--timeout` (1 s) and dropped it then, so behind a
/// round trip longer than that (800 ms each way here) no SYN-ACK was ever seen and every host
/// was reported inactive, where `nmap -sn -PS22` (and netkit's own echo sweep, which counts
/// late replies) found them all. A re-probe's connect now lasts twice as long as the one
/// before it (up to 8 times `--timeout`), so a late answer is still heard.
#[test]
fn tcp_sweep_missed_every_host_behind_a_long_round_trip() {
    if !privileged("tcp_sweep_missed_every_host_behind_a_long_round_trip") {
        return;
    }
    sweep_beside_nmap_behind_a_long_round_trip("swrtt", 800, "-PS22", &["--method", "tcp:22"]);
}

/// Audit (randomized, beside nmap -PP): `--method timestamp` kept only an answer to the last
/// probe sent to a target, so behind a round trip longer than the wait before a re-probe
/// (1.2 s here, the default `--timeout` 1 s) every answer came after the next probe and was
/// dropped: all hosts inactive, where `nmap -sn -PP` found them all and `--method icmp` (which
/// counts late replies) too. An answer now counts for the probe it answers, as an echo reply
/// does.
#[test]
fn timestamp_sweep_dropped_every_answer_behind_a_long_round_trip() {
    if !privileged("timestamp_sweep_dropped_every_answer_behind_a_long_round_trip") {
        return;
    }
    let method = ["--method", "timestamp"];
    sweep_beside_nmap_behind_a_long_round_trip("swrtsrtt", 600, "-PP", &method);
}

/// Audit (randomized, beside fping and nmap -sn): an echo sweep with `--retries 0` behind a
/// 700 ms round trip waited 500 ms (fping's first timeout) for late answers after its only
/// probes, though nothing had been heard yet and `--timeout` (1 s) allows more: every host came
/// out inactive, where `nmap -sn -PE` found them all. Before any answer, the round now waits
/// for late answers as long as `--timeout` allows.
#[test]
fn echo_sweep_without_retries_gave_up_before_a_long_round_trip() {
    if !privileged("echo_sweep_without_retries_gave_up_before_a_long_round_trip") {
        return;
    }
    let args = ["--method", "icmp", "--retries", "0"];
    sweep_beside_nmap_behind_a_long_round_trip("swrtnore", 350, "-PE", &args);
}

/// Sweeps a /29 of hosts (port 22 open on each) `delay_ms` away each way with `netkit sweep
/// ARGS` and `nmap -sn PROBE` in a lab tagged `tag`: nmap finds all eight, and netkit the same.
fn sweep_beside_nmap_behind_a_long_round_trip(
    tag: &str,
    delay_ms: u64,
    probe: &str,
    args: &[&str],
) {
    let block = "198.18.1.0/29";
    let lab = Lab::builder(tag)
        .delay(crate::lab::ms(delay_ms))
        .hosts(block)
        .open_all(22)
        .build()
        .expect("lab");
    let up = nmap_up(&lab, &["-sn", probe, block]);
    assert_eq!(up.len(), 8, "nmap: {up:?}");
    let run = netkit_sweep(&lab, &[args, &[block]].concat());
    assert_eq!(run.alive(1), up, "{}", run.stderr);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// An IPv6 link-local target with its zone, `fe80::…%nk0`, swept by echo, connect and bare
/// ACK: the zone was lost on the way to the sockets, so the probes left by the decoy link the
/// test network adds (or were refused) and the host came out down. `nmap -6 -sn` with the same
/// probe (`-PE`, `-PS PORT`, `-PA PORT`; no neighbour discovery) finds it up, in the same run.
#[test]
fn link_local_target_with_a_zone_found_down() {
    if !privileged("link_local_target_with_a_zone_found_down") {
        return;
    }
    let (near, far, target) = link_local_pair("regswzone");
    let held = inside(&far, || listeners(&[("::", 1)]));
    let port = held[0].local_addr().expect("addr").port().to_string();
    for (method, nmap_probe) in [
        ("icmp".to_string(), "-PE".to_string()),
        (format!("tcp:{port}"), format!("-PS{port}")),
        (format!("ack:{port}"), format!("-PA{port}")),
    ] {
        let out = near
            .command("nmap")
            .args([
                "-6",
                "-sn",
                "-n",
                "--disable-arp-ping",
                &nmap_probe,
                "-oG",
                "-",
            ])
            .arg(&target)
            .output()
            .expect("run nmap");
        let (_, nmap_out, _) = text(&out);
        assert!(
            nmap_out.contains("Status: Up"),
            "nmap {nmap_probe}: {nmap_out}"
        );
        let out = near
            .netkit()
            .args(["--json", "sweep", "--method", &method, &target])
            .output()
            .expect("run netkit");
        let (code, stdout, stderr) = text(&out);
        let alive = stdout
            .lines()
            .filter_map(json_record)
            .any(|r| r["type"] == "host" && r["alive"] == true);
        assert_eq!((code, alive), (0, true), "{method}: {stdout}{stderr}");
    }
}

/// A link-local target given with its zone was shown without it (`fe80::…  is alive`) where
/// fping prints what was given (`fe80::…%nk0 is alive`); live and inactive alike.
#[test]
fn link_local_target_shown_without_its_zone() {
    if !privileged("link_local_target_shown_without_its_zone") {
        return;
    }
    let (near, _far, target) = link_local_pair("regswzshow");
    let absent = "fe80::1:2%nk0";
    let run = |cmd: &mut std::process::Command| text(&cmd.output().expect("run"));
    let (_, fping_out, fping_err) = run(near.command("fping").args(["-6", "-a", &target]));
    assert_eq!(fping_out.trim(), target, "fping -a: {fping_out}{fping_err}");
    let (code, out, err) = run(near.netkit().args(["sweep", &target]));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.lines().next(),
        Some(format!("{target} is alive").as_str()),
        "{out}"
    );
    let (_, fping_out, _) = run(near
        .command("fping")
        .args(["-6", "-u", "-t", "200", absent]));
    assert_eq!(fping_out.trim(), absent, "fping -u: {fping_out}");
    let (_, out, err) = run(near.netkit().args(["sweep", "--dead", absent]));
    assert_eq!(
        out.lines().next(),
        Some(format!("{absent} is inactive").as_str()),
        "{out}{err}"
    );
}

/// `--method ack:PORT` read no ICMP error: a target behind a router with no route to it (net
/// unreachable, host unreachable, administratively prohibited; IPv4 and IPv6) came out down
/// with no reason. nmap -PA80 reads those errors (`nmap -d`: `Got destination unreachable for
/// ADDR`, in the same lab); the words are nmap's reasons, as `--method icmp` gives them (an
/// IPv6 router's `unreachable` route answers "no route to destination").
#[test]
fn ack_sweep_read_no_routers_unreachable_errors() {
    if !privileged("ack_sweep_read_no_routers_unreachable_errors") {
        return;
    }
    use netkit_lab::Unroutable::{Host, Net, Prohibited};
    let lab = Lab::builder("regswackun")
        .unroutable("198.18.201.0/24", Net)
        .unroutable("198.18.202.0/24", Host)
        .unroutable("198.18.203.0/24", Prohibited)
        .unroutable("2001:db8:202::/48", Host)
        .unroutable("2001:db8:203::/48", Prohibited)
        .icmp_limits(netkit_lab::IcmpLimits::Off)
        .build()
        .expect("lab");
    let want = [
        ("198.18.201.7", "net-unreach"),
        ("198.18.202.7", "host-unreach"),
        ("198.18.203.7", "admin-prohibited"),
        ("2001:db8:202::7", "no-route"),
        ("2001:db8:203::7", "admin-prohibited"),
    ];
    let targets: Vec<&str> = want.iter().map(|(addr, _)| *addr).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let (ack, said) = sweep_xml(&lab, dir.path(), "ack:80", &targets);
    let (icmp, _) = sweep_xml(&lab, dir.path(), "icmp", &targets);
    for (addr, word) in want {
        assert_nmap_heard_unreachable(&lab, "-PA80", addr);
        assert_eq!(status_reason(&icmp, addr).as_deref(), Some(word), "{icmp}");
        assert_eq!(
            status_reason(&ack, addr).as_deref(),
            Some(word),
            "{ack}\n{said}"
        );
    }
}

/// Audit (nmap -PS80 as the oracle, `nmap -d`: `Got destination unreachable for ADDR`):
/// `--method tcp:80` took an ICMPv6 administratively prohibited, the target's own or a
/// router's, for silence: its connect fails with `EACCES` there (`EHOSTUNREACH` on IPv4), which
/// the prober did not read, so the IPv6 host came out inactive with no reason where the IPv4
/// one was unreachable, "admin-prohibited", as `--method ack:80` says for both.
#[test]
fn tcp_sweep_took_an_ipv6_admin_prohibited_for_silence() {
    if !privileged("tcp_sweep_took_an_ipv6_admin_prohibited_for_silence") {
        return;
    }
    use netkit_lab::Reject::AdminProhibited;
    use netkit_lab::Unroutable::Prohibited;
    let lab = Lab::builder("regswtcpadm")
        .host("198.18.1.5")
        .host("2001:db8:1::5")
        .reject("198.18.1.5", 80..=80, AdminProhibited)
        .reject("2001:db8:1::5", 80..=80, AdminProhibited)
        .unroutable("198.18.203.0/24", Prohibited)
        .unroutable("2001:db8:203::/48", Prohibited)
        .icmp_limits(netkit_lab::IcmpLimits::Off)
        .build()
        .expect("lab");
    let targets = [
        "198.18.1.5",
        "2001:db8:1::5",
        "198.18.203.7",
        "2001:db8:203::7",
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let (tcp, said) = sweep_xml(&lab, dir.path(), "tcp:80", &targets);
    let (ack, _) = sweep_xml(&lab, dir.path(), "ack:80", &targets);
    for addr in targets {
        assert_nmap_heard_unreachable(&lab, "-PS80", addr);
        assert_eq!(
            status_reason(&ack, addr).as_deref(),
            Some("admin-prohibited"),
            "{ack}"
        );
        assert_eq!(
            status_reason(&tcp, addr).as_deref(),
            Some("admin-prohibited"),
            "{tcp}\n{said}"
        );
    }
}

/// The hosts of [`port_unreachable_lab`]: their firewalls reject TCP port 80 with ICMP port
/// unreachable.
const REJECTING: [&str; 2] = ["198.18.1.3", "2001:db8:1::3"];

/// A lab (`tag`) whose hosts [`REJECTING`] (IPv4 and IPv6) reject TCP port 80 with their own
/// ICMP port unreachable, with no ICMP rate limits.
fn port_unreachable_lab(tag: &str) -> Lab {
    use netkit_lab::Reject::PortUnreachable;
    let mut builder = Lab::builder(tag);
    for addr in REJECTING {
        builder = builder.host(addr).reject(addr, 80..=80, PortUnreachable);
    }
    let builder = builder.icmp_limits(netkit_lab::IcmpLimits::Off);
    builder.build().expect("lab")
}

/// Audit (nmap -PA80 as the oracle, same lab): `--method ack:80` took the target's own ICMP
/// port unreachable (its firewall rejects port 80 with it; IPv4 and IPv6) for silence, so the
/// live host came out inactive where nmap says `Host is up, received port-unreach` and
/// `--method tcp:80` says alive (a refused connection). A router's port unreachable still
/// says nothing of the target.
#[test]
fn ack_sweep_took_the_targets_own_port_unreachable_for_silence() {
    if !privileged("ack_sweep_took_the_targets_own_port_unreachable_for_silence") {
        return;
    }
    let lab = port_unreachable_lab("regswackpu");
    let targets = REJECTING;
    for addr in targets {
        let family = if addr.contains(':') { "-6" } else { "-4" };
        let out = lab
            .scanner_cmd("nmap")
            .args(["-n", "-sn", "-PA80", "--reason", family, addr])
            .output()
            .expect("run nmap");
        let (_, nmap, _) = text(&out);
        assert!(
            nmap.contains("received port-unreach"),
            "nmap -PA80 {addr}: {nmap}"
        );
    }
    for method in ["ack:80", "tcp:80"] {
        let out = lab
            .netkit()
            .args(["sweep", "--json", "--retries", "2", "--method", method])
            .args(targets)
            .output()
            .expect("run netkit");
        let (_, stdout, stderr) = text(&out);
        let alive: BTreeSet<String> = stdout
            .lines()
            .filter_map(json_record)
            .filter(|r| r["type"] == "host" && r["alive"] == true && r["by"] == method)
            .filter_map(|r| r["addr"].as_str().map(str::to_string))
            .collect();
        let want: BTreeSet<String> = targets.iter().map(|a| a.to_string()).collect();
        assert_eq!(alive, want, "--method {method}: {stdout}{stderr}");
    }
}

/// Audit (nmap -PS80 as the oracle, same lab): `--method tcp:80` took any refused connect for
/// a live host, a router's ICMP port unreachable too (a forwarding firewall's REJECT, iptables'
/// default kind): addresses where no host is, behind such a router, came out alive (IPv4 and
/// IPv6), where nmap says down (`nmap -d`: `Got destination unreachable`, then `no-response`). A port
/// unreachable from the target itself still means alive, as a reset does.
#[test]
fn tcp_sweep_took_a_routers_port_unreachable_for_a_live_host() {
    if !privileged("tcp_sweep_took_a_routers_port_unreachable_for_a_live_host") {
        return;
    }
    let lab = port_unreachable_lab("regswtcprpu");
    for (tool, absent) in [
        ("iptables", "198.18.1.100"),
        ("ip6tables", "2001:db8:1::100"),
    ] {
        let reject = [
            "-I", "FORWARD", "-d", absent, "-p", "tcp", "--dport", "80", "-j",
        ];
        let status = lab.router_cmd(tool).args(reject).arg("REJECT").status();
        assert!(status.expect("run the firewall tool").success(), "{tool}");
        assert_nmap_heard_unreachable(&lab, "-PS80", absent);
        let family = if absent.contains(':') { "-6" } else { "-4" };
        let out = lab
            .scanner_cmd("nmap")
            .args(["-n", "-sn", "-PS80", "--reason", family, absent])
            .output()
            .expect("run nmap");
        let (_, nmap, _) = text(&out);
        assert!(nmap.contains("(0 hosts up)"), "nmap -PS80 {absent}: {nmap}");
    }
    let targets = [
        "198.18.1.3",
        "2001:db8:1::3",
        "198.18.1.100",
        "2001:db8:1::100",
    ];
    let out = lab
        .netkit()
        .args(["sweep", "--json", "--retries", "2", "--method", "tcp:80"])
        .args(targets)
        .output()
        .expect("run netkit");
    let (_, stdout, stderr) = text(&out);
    let alive: BTreeSet<String> = stdout
        .lines()
        .filter_map(json_record)
        .filter(|r| r["type"] == "host" && r["alive"] == true)
        .filter_map(|r| r["addr"].as_str().map(str::to_string))
        .collect();
    let want: BTreeSet<String> = targets[..2].iter().map(|a| a.to_string()).collect();
    assert_eq!(alive, want, "{stdout}{stderr}");
}

/// Runs `netkit sweep --method METHOD -oX` over `targets` in the lab's scanner namespace;
/// the XML document it wrote (into `dir`) and what it printed.
fn sweep_xml(lab: &Lab, dir: &std::path::Path, method: &str, targets: &[&str]) -> (String, String) {
    let xml = dir.join(format!("{method}.xml"));
    let out = lab
        .netkit()
        .args(["sweep", "--method", method, "-oX"])
        .arg(&xml)
        .args(targets)
        .output()
        .expect("run netkit");
    let (_, stdout, stderr) = text(&out);
    let doc = std::fs::read_to_string(&xml).expect("the document");
    (doc, format!("{stdout}{stderr}"))
}

/// Asserts that `nmap -d -sn PROBE ADDR` heard an ICMP destination unreachable for `addr`.
fn assert_nmap_heard_unreachable(lab: &Lab, probe: &str, addr: &str) {
    let family = if addr.contains(':') { "-6" } else { "-4" };
    let out = lab
        .scanner_cmd("nmap")
        .args(["-n", "-d", "-sn", probe, family, addr])
        .output()
        .expect("run nmap");
    let (_, nmap, _) = text(&out);
    let heard = format!("Got destination unreachable for {addr}");
    assert!(nmap.contains(&heard), "nmap {probe} {addr}: {nmap}");
}

/// A link-local target with its zone that no neighbour answers for, `fe80::99%nk0`: this host's
/// own "address unreachable" (neighbour discovery failed) was taken for a router's error and
/// the target reported unreachable from this host's link-local address, where an absent
/// on-link host is silence (a global address was already: the link-local source could not be
/// bound without its zone, so it was not recognised as this host's own). `nmap -6 -sn` says
/// `no-response`, in the same run.
#[test]
fn absent_link_local_neighbour_reported_unreachable_from_this_host() {
    if !privileged("absent_link_local_neighbour_reported_unreachable_from_this_host") {
        return;
    }
    let (near, _far, _) = link_local_pair("regswabsent");
    let target = "fe80::99%nk0";
    let out = near
        .command("nmap")
        .args([
            "-6",
            "-n",
            "-v",
            "-sn",
            "-PE",
            "--disable-arp-ping",
            "-oX",
            "-",
            target,
        ])
        .output()
        .expect("run nmap");
    let (_, nmap, _) = text(&out);
    let reason = status_reason(&nmap, "fe80::99");
    assert_eq!(reason.as_deref(), Some("no-response"), "{nmap}");
    for method in ["icmp", "ack:80"] {
        let out = near
            .netkit()
            .args(["--json", "sweep", "--method", method, target])
            .output()
            .expect("run netkit");
        let (_, stdout, stderr) = text(&out);
        let host = stdout
            .lines()
            .filter_map(json_record)
            .find(|r| r["type"] == "host")
            .unwrap_or_else(|| panic!("{method}: no host record: {stdout}{stderr}"));
        let seen = (&host["alive"], &host["error"]);
        let silent = (&serde_json::Value::Bool(false), &serde_json::Value::Null);
        assert_eq!(seen, silent, "{method}: {stdout}{stderr}");
    }
}

/// The sweeper's own address on the link: `--method arp` and `--method ndp` reported it
/// inactive — a free address to the user looking for one — because a host never answers its
/// own ARP request or neighbour solicitation. nmap (`-sn`, ARP or neighbour discovery on a
/// local link) reports it up, and so does every ICMP sweep (netkit's, fping's).
#[test]
fn sweep_on_link_reported_its_own_address_inactive() {
    if !privileged("sweep_on_link_reported_its_own_address_inactive") {
        return;
    }
    let (near, _far) = crate::ping_net::two_hosts("swrown");
    let nmap_up = |targets: &[&str]| {
        let mut nmap = near.command("nmap");
        nmap.args(["-sn", "-n"]).args(targets);
        let (_, out, err) = text(&nmap.output().expect("run nmap"));
        let up = out
            .lines()
            .filter_map(|l| l.strip_prefix("Nmap scan report for "));
        let up: BTreeSet<String> = up.map(str::to_string).collect();
        (up, err)
    };
    for (method, range, own, far) in [
        ("arp", "198.18.0.1-3", "198.18.0.1", "198.18.0.2"),
        ("ndp", "2001:db8::1-3", "2001:db8::1", "2001:db8::2"),
    ] {
        let (want, err) = match method {
            "arp" => nmap_up(&[range]),
            _ => nmap_up(&["-6", own, far, "2001:db8::3"]),
        };
        assert_eq!(want, BTreeSet::from([own, far].map(String::from)), "{err}");
        let dir = tempfile::tempdir().expect("temporary directory");
        let xml = dir.path().join("hosts.xml");
        let out = near
            .netkit()
            .args(["sweep", range, "--method", method, "--alive", "-oX"])
            .arg(&xml)
            .output()
            .expect("run netkit");
        let (code, stdout, stderr) = text(&out);
        assert_eq!(code, 1, "{method}: .3 is silent; {stderr}");
        let alive: BTreeSet<String> = stdout
            .lines()
            .filter_map(|l| l.split_once(" is alive"))
            .map(|(addr, _)| addr.to_string())
            .collect();
        assert_eq!(alive, want, "{method}: {stdout}{stderr}");
        // nmap's XML: up by localhost-response, no MAC address.
        let doc = std::fs::read_to_string(&xml).expect("the XML document");
        let host = doc
            .split("<host")
            .find(|h| h.contains(&format!("<address addr=\"{own}\"")))
            .unwrap_or_else(|| panic!("{own} in {doc}"));
        assert!(host.contains("reason=\"localhost-response\""), "{host}");
        assert!(!host.contains("addrtype=\"mac\""), "{host}");
    }
}

/// Hosts whose firewall rejects some echo requests with ICMP host prohibited, sent by each
/// host itself — a rejecting rate limiter (`limit` then `REJECT`) does that; here, to be
/// exact, every request with an odd sequence number. netkit took the first rejection for the
/// verdict (unreachable, no second probe): here the hosts whose first rejection got past the
/// far kernel's ICMP rate limit (2 of 16), behind a real 50/s limiter 6 of 16; fping, which
/// keeps probing after an ICMP error, found them. An error from the
/// target's own address now settles nothing: the target is probed again like a silent one,
/// and reported unreachable only if no probe got an answer. A router's error about the path
/// still settles at once.
#[test]
fn sweep_took_a_rejecting_firewall_for_unreachable_hosts() {
    if !privileged("sweep_took_a_rejecting_firewall_for_unreachable_hosts") {
        return;
    }
    let lab = Lab::builder("swrreject")
        .delay(crate::lab::ms(5))
        .hosts("198.18.1.0/28")
        .build()
        .expect("lab");
    let odd = "0>>22&0x3C@4&0x1=0x1";
    let mut iptables = lab.far_cmd("iptables");
    iptables.args(["-A", "INPUT", "-p", "icmp", "--icmp-type", "echo-request"]);
    iptables.args(["-m", "u32", "--u32", odd]);
    iptables.args(["-j", "REJECT", "--reject-with", "icmp-host-prohibited"]);
    let (code, _, err) = text(&iptables.output().expect("run iptables"));
    assert_eq!(code, 0, "{err}");
    let range = "198.18.1.0/28";
    let fping = fping_alive(&lab, &["-g", "198.18.1.0", "198.18.1.15"]);
    let run = netkit_sweep(&lab, &[range]);
    let truth = pingable(&lab, range);
    assert_exact("odd requests rejected", &run.alive(1), &truth, &fping);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// The audit of the test above: behind a real rate limiter that REJECTs what it does not let
/// through (`-m limit --limit 50/s --limit-burst 5` ACCEPT, then REJECT with host
/// prohibited), netkit still reported hosts unreachable: the rejections settle nothing but
/// counted against the retries, and the re-probes came so fast they landed where the limiter
/// had no room left; fping's spaced retries got through. Here a /26 of live hosts, two
/// retries each: netkit found 9 of 64 every time, fping -r 2 all 64. Now a target's own
/// rejections do not count against the retries once a limiter is seen (a host rejected a
/// probe and answered another), and rejected control probes slow the sweep down.
#[test]
fn sweep_reports_hosts_unreachable_behind_a_rejecting_rate_limiter() {
    if !privileged("sweep_reports_hosts_unreachable_behind_a_rejecting_rate_limiter") {
        return;
    }
    let reject = ["REJECT", "--reject-with", "icmp-host-prohibited"];
    let lab = limited_lab("swrlimrej", "198.18.1.0/26", "50/s", &reject);
    // Each real host has its own kernel and its own ICMP rate limit; these share one far
    // kernel, whose limit per destination would silence most of their rejections.
    let mut sysctl = lab.far_cmd("sysctl");
    sysctl.args(["-qw", "net.ipv4.icmp_ratemask=0"]);
    let (code, _, err) = text(&sysctl.output().expect("run sysctl"));
    assert_eq!(code, 0, "{err}");
    let range = "198.18.1.0/26";
    let fping = fping_alive(&lab, &["-r", "2", "-g", "198.18.1.0", "198.18.1.63"]);
    let run = netkit_sweep(&lab, &[range, "--retries", "2"]);
    let truth = pingable(&lab, range);
    assert_exact(
        "limited to 50/s, then rejected",
        &run.alive(1),
        &truth,
        &fping,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// `hosts` (a block of live hosts), 5 ms away, behind a far side that lets ICMP echo
/// requests through at `limit` (`50/s`; burst 5) and sends the rest to `verdict` (`-j` and its
/// options).
fn limited_lab(tag: &str, hosts: &str, limit: &str, verdict: &[&str]) -> Lab {
    let lab = Lab::builder(tag)
        .delay(crate::lab::ms(5))
        .hosts(hosts)
        .build()
        .expect("lab");
    let echo = ["-A", "INPUT", "-p", "icmp", "--icmp-type", "echo-request"];
    let limit = ["-m", "limit", "--limit", limit, "--limit-burst", "5"];
    for rule in [
        &[&limit[..], &["-j", "ACCEPT"]].concat(),
        &[&["-j"], verdict].concat(),
    ] {
        let mut iptables = lab.far_cmd("iptables");
        iptables.args(echo).args(rule);
        let (code, _, err) = text(&iptables.output().expect("run iptables"));
        assert_eq!(code, 0, "{err}");
    }
    lab
}

/// The DROP twin of the test above: behind `-m limit --limit 50/s --limit-burst 5` ACCEPT then
/// DROP, a /26 of live hosts, two retries each: netkit found 9 of 64, fping -r 2 all 64. Too
/// few control probes go out on a range this small for the loss meter to judge a window, so
/// the sweep never slowed down, and the re-probes of all the silent targets went out together
/// while the limiter had no room left.
#[test]
fn sweep_misses_hosts_behind_a_dropping_rate_limiter() {
    if !privileged("sweep_misses_hosts_behind_a_dropping_rate_limiter") {
        return;
    }
    let lab = limited_lab("swrlimdrop", "198.18.1.0/26", "50/s", &["DROP"]);
    let range = "198.18.1.0/26";
    let fping = fping_alive(&lab, &["-r", "2", "-g", "198.18.1.0", "198.18.1.63"]);
    let run = netkit_sweep(&lab, &[range, "--retries", "2"]);
    let truth = pingable(&lab, range);
    assert_exact(
        "limited to 50/s, then dropped",
        &run.alive(1),
        &truth,
        &fping,
    );
}

/// The REJECT test above at a real rate: a /28 behind `-m limit --limit 10/s --limit-burst 5`
/// ACCEPT then REJECT with host prohibited, the far kernel's own ICMP rate limit left as it
/// is (it silences most rejections, as a host's kernel does). Two retries each: netkit found
/// 5 to 7 of 16 every time, fping -r 2 all 16: the silenced rejections left too few control
/// probes for the meter to see the loss, and every re-probe landed while the limiter was
/// still empty.
#[test]
fn sweep_misses_hosts_behind_a_rejecting_limiter_at_a_real_rate() {
    if !privileged("sweep_misses_hosts_behind_a_rejecting_limiter_at_a_real_rate") {
        return;
    }
    let reject = ["REJECT", "--reject-with", "icmp-host-prohibited"];
    let lab = limited_lab("swrlimreal", "198.18.1.0/28", "10/s", &reject);
    let range = "198.18.1.0/28";
    let fping = fping_alive(&lab, &["-r", "2", "-g", "198.18.1.0", "198.18.1.15"]);
    let run = netkit_sweep(&lab, &[range, "--retries", "2"]);
    let truth = pingable(&lab, range);
    assert_exact(
        "limited to 10/s, then rejected",
        &run.alive(1),
        &truth,
        &fping,
    );
}

/// The test above as CI caught it: when the limiter's bucket is empty as the sweep starts
/// (fping, run just before, used it up), the first probe found one host and the far kernel's
/// ICMP rate limit silenced every rejection. netkit found 1 of 16 in 0.6 s every time: its
/// three probes per target came within 0.15 s, and the eight control probes, all lost, were
/// too few to count the re-probes as wasted. fping -r 2, run the same way, finds 13 of 16;
/// netkit now re-probes at fping's gaps once the controls show most probes lost, and does not
/// count the re-probes they were lost with.
#[test]
fn sweep_found_one_host_behind_a_rejecting_limiter_it_found_empty() {
    if !privileged("sweep_found_one_host_behind_a_rejecting_limiter_it_found_empty") {
        return;
    }
    let reject = ["REJECT", "--reject-with", "icmp-host-prohibited"];
    let lab = limited_lab("swrlimempty", "198.18.1.0/28", "10/s", &reject);
    let range = "198.18.1.0/28";
    let truth = pingable(&lab, range);
    // Empties both the limiter's bucket and the far kernel's ICMP error budget.
    let empty = || {
        let mut ping = lab.scanner_cmd("ping");
        ping.args(["-q", "-c", "30", "-i", "0.002", "198.18.1.0"]);
        let (code, _, err) = text(&ping.output().expect("run ping"));
        assert!(code == 0 || code == 1, "ping: {err}");
    };
    empty();
    let run = netkit_sweep(&lab, &[range, "--retries", "2"]);
    empty();
    let fping = fping_alive(&lab, &["-r", "2", "-g", "198.18.1.0", "198.18.1.15"]);
    assert_exact(
        "limited to 10/s, found empty",
        &run.alive(1),
        &truth,
        &fping,
    );
}

/// Behind round trips of 800±780 ms (jitter beyond the default 1 s timeout: answers come out
/// of order, some late) and 10% loss each way, nothing throttled the sweep, yet it said
/// `round 1 was throttled` (a `throttle` record, `throttled: true`) in every run and slowed
/// down to 1250-2250 probes/s. An answer to a control probe went to the latest control to its
/// host, so the earliest controls — the first window judged — looked lost (1 of 16 answered)
/// while the later ones looked answered: a collapse, then a cure after the slow-down. fping
/// says nothing of the kind; netkit must still find what fping finds.
#[test]
fn sweep_took_late_out_of_order_answers_for_throttling() {
    if !privileged("sweep_took_late_out_of_order_answers_for_throttling") {
        return;
    }
    let hosts = pick("198.18.4", 10, 5);
    let lab = hosts
        .iter()
        .fold(Lab::builder("swrjitter"), |b, h| b.host(h))
        .delay(ms(400))
        .jitter(ms(390))
        .loss(0.10)
        .seed(11)
        .build()
        .expect("lab");
    let range = "198.18.4.0/24";
    let run = netkit_sweep(&lab, &[range]);
    let fping = fping_alive(&lab, &["-g", range]);
    let throttled: Vec<_> = run.summaries().iter().map(|s| s.throttled).collect();
    assert!(
        run.throttles().is_empty() && throttled == [false],
        "no throttling here: {} {}",
        run.stdout
            .lines()
            .filter(|l| !l.contains("\"host\""))
            .collect::<Vec<_>>()
            .join("\n"),
        run.stderr
    );
    assert_exact("jitter", &run.alive(1), &pingable(&lab, range), &fping);
}

/// Behind round trips of 1.2±0.2 s, all longer than the default 1 s `--timeout`, a sweep of
/// 32 targets with 3 live hosts said `round 1 was throttled` (6.3% of its control probes
/// answered) and took 31 s, where fping (500 ms timeout, late replies counted) took 4 s: a
/// control probe counted as lost after at most `--timeout`, though the round trips measured
/// said every answer comes later, and answers that late still find hosts.
#[test]
fn sweep_took_round_trips_beyond_the_timeout_for_throttling() {
    if !privileged("sweep_took_round_trips_beyond_the_timeout_for_throttling") {
        return;
    }
    let hosts = ["198.18.10.5", "198.18.10.9", "2001:db8:10::5"];
    let lab = hosts
        .iter()
        .fold(Lab::builder("swrslow"), |b, h| b.host(h))
        .delay(ms(600))
        .jitter(ms(100))
        .seed(3)
        .build()
        .expect("lab");
    let run = netkit_sweep(&lab, &["198.18.10.0/28", "2001:db8:10::/124"]);
    let fping = fping_alive(&lab, &["-g", "198.18.10.0/28"]);
    let throttled: Vec<_> = run.summaries().iter().map(|s| s.throttled).collect();
    assert!(
        run.throttles().is_empty() && throttled == [false],
        "no throttling here: {}",
        run.stdout
    );
    let truth = pingable(&lab, "198.18.10.0/28");
    let v4 = run.alive(1).into_iter().filter(IpAddr::is_ipv4).collect();
    assert_exact("slow v4", &v4, &truth, &fping);
    assert!(run.alive(1).contains(&"2001:db8:10::5".parse().unwrap()));
}

/// A sweeper `s` with three bridges: br0 (198.18.0.1/16, added first, and 198.19.0.1/24;
/// 2001:db8::1/32), br1 (198.18.5.1/24, 2001:db8:5::1/64: prefixes inside br0's) and br2
/// (198.19.9.1/24), left down. Hosts, one namespace each: h5 on br1 (198.18.5.5/24,
/// 2001:db8:5::5 and ::6/64), h8 on br0 (198.18.0.8/16) and h7 on br0 (198.19.0.7/24); h7 and
/// h8 answer only ARP requests from their own subnet (`arp_ignore=2`, as `rp_filter` hosts
/// also do). Returns [s, h5, h7, h8].
fn overlapping_links(tag: &str) -> [Netns; 4] {
    let s = Netns::with_loopback(tag);
    no_dad(&s);
    for (bridge, addrs) in [
        (
            "br0",
            &["198.18.0.1/16", "198.19.0.1/24", "2001:db8::1/32"][..],
        ),
        ("br1", &["198.18.5.1/24", "2001:db8:5::1/64"]),
        ("br2", &["198.19.9.1/24"]),
    ] {
        s.ip(&["link", "add", bridge, "type", "bridge"]);
        for addr in addrs {
            s.ip(&["addr", "add", addr, "dev", bridge]);
        }
        if bridge != "br2" {
            s.ip(&["link", "set", bridge, "up"]);
        }
    }
    let host = |bridge: &str, addrs: &[&str]| {
        let h = Netns::with_loopback(tag);
        no_dad(&h);
        let port = format!("p{}", &h.name[h.name.len() - 3..]);
        s.ip(&["link", "add", &port, "type", "veth", "peer", "name", "eth0"]);
        s.ip(&["link", "set", "eth0", "netns", &h.name]);
        s.ip(&["link", "set", &port, "master", bridge, "up"]);
        for addr in addrs {
            h.ip(&["addr", "add", addr, "dev", "eth0"]);
        }
        h.ip(&["link", "set", "eth0", "up"]);
        h
    };
    let h5 = host(
        "br1",
        &["198.18.5.5/24", "2001:db8:5::5/64", "2001:db8:5::6/64"],
    );
    let h7 = host("br0", &["198.19.0.7/24"]);
    let h8 = host("br0", &["198.18.0.8/16"]);
    for h in [&h7, &h8] {
        let keys = ["all", "eth0"].map(|k| format!("net.ipv4.conf.{k}.arp_ignore=2"));
        h.sysctl(&keys).unwrap_or_else(|e| panic!("{e}"));
    }
    [s, h5, h7, h8]
}

/// One line of `--json` output as a record (`None` for a line that is none).
fn json_record(line: &str) -> Option<serde_json::Value> {
    serde_json::from_str(line).ok()
}

/// The MAC address of `ns`'s `eth0` as a JSON `host` record's `mac` field prints it.
fn mac_json(ns: &Netns) -> String {
    format!("\"{}\"", mac_of(ns, "eth0"))
}

/// `netkit --json sweep ARGS` in `ns`: the (address, MAC) of each live host, and stderr.
fn on_link_alive(ns: &Netns, args: &[&str]) -> (BTreeSet<(String, String)>, String) {
    let out = ns.netkit().args(["--json", "sweep"]).args(args).output();
    let (_, stdout, stderr) = text(&out.expect("run netkit"));
    let alive = stdout
        .lines()
        .filter_map(json_record)
        .filter(|r| r["type"] == "host" && r["alive"] == true)
        .map(|r| {
            (
                r["addr"].as_str().unwrap_or("").to_string(),
                r["mac"].to_string(),
            )
        })
        .collect();
    (alive, stderr)
}

/// nmap's `-sn -n ARGS` in `ns`: the hosts up, with their MAC addresses in lower case.
fn nmap_macs(ns: &Netns, args: &[&str]) -> BTreeSet<(String, String)> {
    let out = ns.command("nmap").args(["-sn", "-n"]).args(args).output();
    let (_, stdout, _) = text(&out.expect("run nmap"));
    let mut up = BTreeSet::new();
    let mut host = None;
    for line in stdout.lines() {
        if let Some(addr) = line.strip_prefix("Nmap scan report for ") {
            host = Some(addr.to_string());
        } else if let (Some(mac), Some(addr)) = (line.strip_prefix("MAC Address: "), &host) {
            let mac = mac.split_whitespace().next().unwrap_or("").to_lowercase();
            up.insert((addr.clone(), format!("\"{mac}\"")));
        }
    }
    up
}

/// A target on br1 (198.18.5.0/24), whose prefix lies inside br0's (198.18.0.0/16): the
/// kernel routes it through br1, the longer prefix, and nmap and arp-scan find its host
/// there; `--method arp` asked on br0, the first interface whose prefix held it, and found
/// nothing (`--method ndp` likewise, for 2001:db8:5::/64 inside br0's 2001:db8::/32).
#[test]
fn on_link_sweep_took_the_first_link_holding_a_target_not_the_longest_prefix() {
    if !privileged("on-link sweep with overlapping prefixes") {
        return;
    }
    let [s, h5, _h7, _h8] = overlapping_links("swrlpm");
    let mac = mac_json(&h5);
    for (method, range, nmap_args, host) in [
        (
            "arp",
            "198.18.5.4-6",
            &["-PR", "198.18.5.4-6"][..],
            "198.18.5.5",
        ),
        (
            "ndp",
            "2001:db8:5::4-5",
            &["-6", "2001:db8:5::4", "2001:db8:5::5"][..],
            "2001:db8:5::5",
        ),
    ] {
        let want = BTreeSet::from([(host.to_string(), mac.clone())]);
        let nmap: BTreeSet<_> = nmap_macs(&s, nmap_args);
        assert_eq!(nmap, want, "nmap, {method}");
        let (alive, stderr) = on_link_alive(&s, &[range, "--method", method]);
        assert_eq!(alive, want, "netkit, {method}: {stderr}");
    }
}

/// Two subnets on one link (br0: 198.18.0.0/16 and 198.19.0.0/24), hosts that answer only
/// ARP requests from their own subnet: every request went from the address in the first
/// target's prefix, so which host was found depended on the order of the targets. The
/// kernel, and nmap, ask each target from the address in its own prefix.
#[test]
fn arp_sweep_asked_every_subnet_from_the_first_targets_address() {
    if !privileged("arp sweep of two subnets on one link") {
        return;
    }
    let [s, _h5, h7, h8] = overlapping_links("swrsrc");
    let want = BTreeSet::from([
        ("198.18.0.8".to_string(), mac_json(&h8)),
        ("198.19.0.7".to_string(), mac_json(&h7)),
    ]);
    let nmap = nmap_macs(&s, &["-PR", "198.18.0.8", "198.19.0.7"]);
    assert_eq!(nmap, want, "nmap");
    for targets in [["198.18.0.8", "198.19.0.7"], ["198.19.0.7", "198.18.0.8"]] {
        let (alive, stderr) = on_link_alive(&s, &[targets[0], targets[1], "--method", "arp"]);
        assert_eq!(alive, want, "netkit, {targets:?}: {stderr}");
    }
}

/// The sweeper's copy of 2001:db8:5::6 failed duplicate address detection (h5 holds it):
/// `--method ndp` answered for it itself, alive with the sweeper's MAC, where nmap reports
/// h5's. A tentative or DAD-failed address is not this host's: it is probed like another.
#[test]
fn ndp_sweep_answered_for_its_own_dad_failed_address() {
    if !privileged("ndp sweep of a DAD-failed address") {
        return;
    }
    let [s, h5, _h7, _h8] = overlapping_links("swrdad");
    for key in ["all", "br1"] {
        s.sysctl(&[format!("net.ipv6.conf.{key}.accept_dad=1")])
            .unwrap_or_else(|e| panic!("{e}"));
    }
    s.ip(&["addr", "add", "2001:db8:5::6/64", "dev", "br1"]);
    let failed = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        s.ip(&["-6", "addr", "show", "dev", "br1"])
            .contains("dadfailed")
    });
    assert!(failed, "{}", s.ip(&["-6", "addr", "show", "dev", "br1"]));
    let want = BTreeSet::from([("2001:db8:5::6".to_string(), mac_json(&h5))]);
    assert_eq!(nmap_macs(&s, &["-6", "2001:db8:5::6"]), want, "nmap");
    let (alive, stderr) = on_link_alive(&s, &["2001:db8:5::6", "--method", "ndp"]);
    assert_eq!(alive, want, "netkit: {stderr}");
}

/// An ARP sweep on a link that is administratively down (br2) said its targets were simply
/// inactive, while the echo method (and fping) report them unreachable: the packet socket's
/// send failed (`ENETDOWN`) and was taken for silence.
#[test]
fn arp_sweep_on_a_link_that_is_down_took_it_for_silence() {
    if !privileged("arp sweep on a link that is down") {
        return;
    }
    let [s, _h5, _h7, _h8] = overlapping_links("swrdown");
    for method in ["icmp", "arp"] {
        let mut sweep = s.netkit();
        sweep.args([
            "--json",
            "sweep",
            "198.19.9.2",
            "--method",
            method,
            "--retries",
            "1",
        ]);
        let out = sweep.output();
        let (code, stdout, stderr) = text(&out.expect("run netkit"));
        let host = stdout
            .lines()
            .filter_map(json_record)
            .find(|r| r["type"] == "host")
            .unwrap_or_else(|| panic!("{method}: no host record: {stdout}{stderr}"));
        assert_eq!(host["alive"], false, "{method}: {stdout}");
        assert!(
            host["error"].is_string(),
            "{method}: unreachable: {stdout}{stderr}"
        );
        assert_eq!(code, 1, "{method}: {stderr}");
    }
}

/// `--dead` is fping's `-u`: the targets that did not answer. A target with no route was
/// left out of it (said only on stderr), where `fping -u` lists it: a script collecting the
/// dead hosts missed it. It is now listed, as `ADDR is unreachable`, beside the stderr line.
#[test]
fn dead_list_left_out_a_target_with_no_route() {
    if !privileged("sweep --dead with a target that has no route") {
        return;
    }
    // Only loopback: 198.18.9.9 has no route, nothing leaves the namespace.
    let ns = Netns::with_loopback("swrdead");
    let targets = ["127.0.0.1", "198.18.9.9"];
    let out = ns.command("fping").arg("-u").args(targets).output();
    let (_, fping, _) = text(&out.expect("run fping"));
    assert_eq!(
        fping.lines().collect::<Vec<_>>(),
        ["198.18.9.9"],
        "fping -u"
    );
    let out = ns.netkit().args(["sweep", "--dead"]).args(targets).output();
    let (code, stdout, stderr) = text(&out.expect("run netkit"));
    assert_eq!(code, 1, "{stderr}");
    let hosts = stdout.lines().filter(|l| !l.starts_with("Total "));
    let listed: Vec<&str> = hosts.filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(listed, ["198.18.9.9"], "{stdout}{stderr}");
    assert!(stdout.contains("198.18.9.9 is unreachable"), "{stdout}");
    assert!(
        stderr.contains("198.18.9.9: Network is unreachable"),
        "{stderr}"
    );
}

/// A zone on a block (`fe80::/120%eth0`) was refused for its prefix length ("prefix length
/// must be 0-128"), a range with one for an invalid address: neither said that zones go on
/// single addresses only.
#[test]
fn a_zone_on_a_block_was_refused_for_its_prefix_length() {
    for target in ["fe80::/120%lo", "fe80::%lo/120", "fe80::1-5%lo"] {
        let out = crate::harness::netkit().args(["sweep", target]).output();
        let (code, _, stderr) = text(&out.expect("run netkit"));
        assert_eq!(code, 2, "{target}: {stderr}");
        let want = format!(
            "netkit: {target}: a zone (%INTERFACE) follows a single IPv6 address, not a block \
             or range"
        );
        assert_eq!(stderr.trim(), want, "{target}");
    }
}

/// `--method icmp,arp` with a target off every link (here one with no route) was refused
/// (exit 2: "not on-link"), though ICMP probes it: `nmap -sn -PE -PR` applies ARP to its
/// on-link targets and leaves the others to its other probes. `--method arp,ndp` with only
/// IPv4 targets was refused too ("ndp: no IPv6 target"). An on-link method in a list now
/// takes the targets on its link and leaves the rest to the others.
#[test]
fn an_on_link_method_in_a_list_refused_the_targets_off_its_link() {
    if !privileged("on-link methods beside others") {
        return;
    }
    let [s, _h5, _h7, _h8] = overlapping_links("swrlist");
    let targets = ["198.18.5.5", "198.19.200.7"];
    let out = s
        .command("nmap")
        .args(["-sn", "-n", "-PE", "-PR"])
        .args(targets)
        .output();
    let (_, nmap, _) = text(&out.expect("run nmap"));
    assert!(nmap.contains("(1 host up)"), "{nmap}");
    let records = |args: &[&str]| {
        let out = s.netkit().args(["--json", "sweep"]).args(args).output();
        let (code, stdout, stderr) = text(&out.expect("run netkit"));
        let hosts: Vec<(String, bool, bool)> = stdout
            .lines()
            .filter_map(json_record)
            .filter(|r| r["type"] == "host")
            .map(|r| {
                let addr = r["addr"].as_str().unwrap_or("").to_string();
                (addr, r["alive"] == true, r["error"].is_string())
            })
            .collect();
        (code, hosts, stderr)
    };
    let (code, hosts, stderr) = records(&[targets[0], targets[1], "--method", "icmp,arp"]);
    let want = [
        ("198.18.5.5".to_string(), true, false),
        ("198.19.200.7".to_string(), false, true),
    ];
    assert_eq!((code, hosts.as_slice()), (1, &want[..]), "{stderr}");
    let (code, hosts, stderr) = records(&["198.18.5.5", "--method", "arp,ndp"]);
    assert_eq!((code, hosts.as_slice()), (0, &want[..1]), "{stderr}");
}

/// The hosts of [`every_other_reply_lost`]'s range that lose every other echo reply (the
/// first of each pair), and the one that answers only every sixth probe.
const HALF_LOST: [&str; 4] = ["198.18.1.1", "198.18.1.2", "198.18.1.3", "198.18.1.4"];
const SIXTH_ONLY: &str = "198.18.1.5";

/// In the far namespace, fresh counters for the replies of [`every_other_reply_lost`]: the
/// hosts of [`HALF_LOST`] drop the first of each pair of echo replies, [`SIXTH_ONLY`] lets
/// one in six through (the sixth, the twelfth, ...). iptables' `statistic --mode nth
/// --packet P` matches packet P + 1 (counted from 1) and every `--every` after it; it is
/// deterministic, so every run sees the same losses.
fn lose_replies(lab: &Lab) {
    let iptables = |args: &[&str]| {
        let out = lab
            .far_cmd("iptables")
            .args(args)
            .output()
            .expect("run iptables");
        assert!(out.status.success(), "iptables {args:?}: {}", text(&out).2);
    };
    let nth = |every: &'static str, packet: &'static str| {
        [
            "-m",
            "statistic",
            "--mode",
            "nth",
            "--every",
            every,
            "--packet",
            packet,
        ]
    };
    let chain = "nkreplies";
    if lab
        .far_cmd("iptables")
        .args(["-F", chain])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        iptables(&["-F", chain]);
    } else {
        iptables(&["-N", chain]);
        let reply = ["-p", "icmp", "--icmp-type", "echo-reply", "-j", chain];
        iptables(&[&["-I", "OUTPUT"], &reply[..]].concat());
    }
    for host in HALF_LOST {
        let rule = [
            &["-A", chain, "-s", host],
            &nth("2", "0")[..],
            &["-j", "DROP"],
        ];
        iptables(&rule.concat());
    }
    let sixth = [
        &["-A", chain, "-s", SIXTH_ONLY],
        &nth("6", "5")[..],
        &["-j", "RETURN"],
    ];
    iptables(&sixth.concat());
    iptables(&["-A", chain, "-s", SIXTH_ONLY, "-j", "DROP"]);
}

/// A small range on a link that loses half the echo replies: every live host but one lost
/// its first reply and answered its second, the controls showed every other answer lost, and
/// yet a host still silent got four probes — the loss the sweep assumes before its controls
/// fill a window (5%) — and was reported inactive. `fping -r 10` finds it at its sixth probe.
/// What the found hosts' late first answers and the first controls say is now trusted on a
/// range too small for a window of controls: a silent target gets as many probes as that loss
/// calls for, up to `--retries`.
#[test]
fn a_small_range_on_a_lossy_link_gave_a_silent_host_the_probes_of_a_clean_one() {
    if !privileged("a small range on a lossy link") {
        return;
    }
    let hosts = [&HALF_LOST[..], &[SIXTH_ONLY]].concat();
    let lab = hosts
        .iter()
        .fold(Lab::builder("swrsmall"), |b, h| b.host(h))
        .build()
        .expect("lab");
    let range = "198.18.1.0/29";
    lose_replies(&lab);
    let fping = fping_alive(&lab, &["-r", "10", "-B", "1", "-t", "200", "-g", range]);
    lose_replies(&lab);
    let run = netkit_sweep(&lab, &[range]);
    assert_eq!(run.code, 1, "silent targets: {}", run.stderr);
    let truth = pingable(&lab, range);
    assert_eq!(truth.len(), 5, "{truth:?}");
    assert_exact("every other reply lost", &run.alive(1), &truth, &fping);
    assert_eq!(fping, truth, "fping -r 10");
}

/// With several methods, a target is settled unreachable once every method said so; a
/// method that leaves the target to the others (`arp` with no link holding it, `timestamp`
/// for an IPv6 one) never said anything, so the target was probed again up to its retries
/// (3.3 s, where `--method icmp` alone settles it at once), and the summary counted a probe
/// of every method per wave, sent or not (8 for one ICMP echo per wave). Only the methods
/// that probe a target vote now, and only the probes sent are counted.
#[test]
fn a_method_that_leaves_a_target_to_the_others_kept_it_from_being_settled() {
    if !privileged("sweep: the votes of the methods that probe a target") {
        return;
    }
    // Only loopback: neither target has a route, nothing leaves the namespace.
    let ns = Netns::with_loopback("swrvote");
    let probes = |target: &str, methods: &str| {
        let out = ns
            .netkit()
            .args(["--json", "sweep", target, "--method", methods])
            .output();
        let (code, stdout, stderr) = text(&out.expect("run netkit"));
        assert_eq!(code, 1, "{methods} {target}: {stderr}");
        let summary = stdout
            .lines()
            .filter_map(json_record)
            .find(|r| r["type"] == "summary");
        let summary = summary.unwrap_or_else(|| panic!("no summary: {stdout}"));
        assert_eq!(summary["unreachable"], 1, "{stdout}");
        summary["probes"].as_u64().expect("probes")
    };
    for (target, methods) in [
        ("198.19.200.7", "icmp,arp"),
        ("2001:db8::7", "icmp,timestamp"),
    ] {
        let alone = probes(target, "icmp");
        assert_eq!(probes(target, methods), alone, "{methods} {target}");
    }
}

/// `--method ndp` took no notice of a target's zone: `fe80::3%vC`, on the second link, was
/// solicited on the first (the first interface whose `fe80::/64` holds it) and came out
/// inactive, though `--method icmp` found it alive. And two targets with one address in two
/// zones gave two JSON records with the same `addr` and nothing to tell them apart (the text
/// named both with the same zone); each record now says its `zone`.
#[test]
fn ndp_sweep_solicited_a_zoned_target_on_another_link() {
    if !privileged("ndp_sweep_solicited_a_zoned_target_on_another_link") {
        return;
    }
    let (near, _b, _d) = crate::endpoint_zones::two_links("regndpzone");
    let run = |args: &[&str]| text(&near.netkit().args(args).output().expect("run netkit"));
    for method in ["icmp", "ndp"] {
        let (code, out, err) = run(&["sweep", "--method", method, "fe80::3%vC"]);
        assert_eq!(code, 0, "{method}: {out}{err}");
        assert!(out.starts_with("fe80::3%vC is alive"), "{method}: {out}");
    }
    let (_, out, err) = run(&["--json", "sweep", "fe80::3%vA", "fe80::3%vC"]);
    let hosts = zones_alive(&out);
    assert_eq!(
        hosts,
        [("vA".to_string(), false), ("vC".to_string(), true)],
        "{out}{err}"
    );
    let (_, out, _) = run(&["sweep", "--dead", "fe80::3%vA", "fe80::3%vC"]);
    assert_eq!(out.lines().next(), Some("fe80::3%vA is inactive"), "{out}");
    // With -I naming the other link, the target's zone is refused, not silently overridden.
    let (code, _, err) = run(&["sweep", "--method", "ndp", "-I", "vA", "fe80::3%vC"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("on the link of vC, not of vA"), "{err}");
}

/// `--method tcp:PORT` took this host's own "host unreachable" (no neighbour answered for an
/// on-link address: an absent host) for a routing error: `198.18.0.3 is unreachable`,
/// `Destination Host Unreachable from 198.18.0.1` — depending on the kernel's neighbour timers
/// and ICMP rate limit, some absent hosts of a LAN one way and some the other. The echo method
/// and `nmap -sn -PS` call it down, without an error.
#[test]
fn tcp_sweep_took_its_own_host_unreachable_for_a_routing_error() {
    if !privileged("tcp_sweep_took_its_own_host_unreachable_for_a_routing_error") {
        return;
    }
    let (near, _far) = crate::ping_net::two_hosts("regtcpown");
    for (absent, nmap_family) in [("198.18.0.3", "-4"), ("2001:db8::3", "-6")] {
        let out = near
            .command("nmap")
            .args([
                nmap_family,
                "-sn",
                "-n",
                "--disable-arp-ping",
                "-PS80",
                "-oG",
                "-",
                absent,
            ])
            .output()
            .expect("run nmap");
        let (_, nmap_out, _) = text(&out);
        assert!(nmap_out.contains("(0 hosts up)"), "nmap: {nmap_out}");
        let out = near
            .netkit()
            .args([
                "--json",
                "sweep",
                "--method",
                "tcp:80",
                "--timeout",
                "6s",
                absent,
            ])
            .output()
            .expect("run netkit");
        let (code, stdout, stderr) = text(&out);
        let host = stdout
            .lines()
            .filter_map(json_record)
            .find(|r| r["type"] == "host")
            .unwrap_or_else(|| panic!("no host record: {stdout}{stderr}"));
        assert_eq!(
            (code, &host["alive"], &host["error"]),
            (1, &serde_json::Value::Bool(false), &serde_json::Value::Null),
            "{absent}: {stdout}{stderr}"
        );
    }
}

/// With other methods beside it (the default discovery), the neighbour-discovery prober
/// probes the link of the first zoned target and took every link-local target for its own:
/// `fe80::3%vA` was solicited on vC's link, where `fe80::3` lives, and called alive, though
/// nothing answers at `fe80::3` on vA's link (`ping -I vA fe80::3` loses everything).
#[test]
fn ndp_beside_other_methods_solicited_a_zoned_target_on_the_first_targets_link() {
    if !privileged("ndp_beside_other_methods_solicited_a_zoned_target_on_the_first_targets_link") {
        return;
    }
    let (near, _b, _d) = crate::endpoint_zones::two_links("regndpfirst");
    let run = |args: &[&str]| text(&near.netkit().args(args).output().expect("run netkit"));
    for methods in ["ndp,icmp", "icmp,ndp"] {
        let args = ["--json", "sweep", "--method", methods, "--timeout", "500ms"];
        let (_, out, err) = run(&[&args[..], &["fe80::3%vC", "fe80::3%vA"]].concat());
        let hosts = zones_alive(&out);
        let want = [("vA".to_string(), false), ("vC".to_string(), true)];
        assert_eq!(hosts, want, "{methods}: {out}{err}");
    }
    // `scan`'s host discovery is a sweep of the default methods: vA's target is down.
    let (_, out, err) = run(&["scan", "-p", "9", "fe80::3%vC", "fe80::3%vA"]);
    assert!(out.contains("Scanned 1 host (1 down"), "{out}{err}");
}

/// Ctrl-C (or SIGTERM) ended a sweep without its summary: no `Total N hosts are inactive`, no
/// `summary` record, the output just stopped (an audit; fping prints its results when
/// interrupted, and `scan` says what it did not finish). Now the round under way ends with
/// what it settled and a summary that says it was interrupted, the targets not probed to the
/// end counted apart (neither alive nor inactive); exit 130.
#[test]
fn an_interrupted_sweep_printed_no_summary() {
    use crate::harness::Proc;
    for json in [true, false] {
        let mut cmd = crate::harness::netkit();
        if json {
            cmd.arg("--json");
        }
        cmd.args(["sweep", "--rate", "2000", "127.0.0.0/16"]);
        let proc = Proc::spawn(cmd);
        proc.stdout.wait_for(|_| true, 1);
        let (code, out, err) = proc.stop("INT");
        assert_eq!(code, 130, "{err}");
        let last = out.lines().last().unwrap_or_default();
        if !json {
            assert!(
                last.starts_with("Total 0 hosts are inactive (interrupted: "),
                "{last}"
            );
            continue;
        }
        let summary = json_record(last).unwrap_or_else(|| panic!("{last}"));
        assert_eq!(summary["type"], "summary", "{last}");
        assert_eq!(summary["interrupted"], true, "{last}");
        let counts: u64 = ["alive", "dead", "unreachable", "unsettled"]
            .iter()
            .map(|k| summary[k].as_u64().unwrap())
            .sum();
        assert_eq!(counts, 65536, "{last}");
        assert!(summary["unsettled"].as_u64().unwrap() > 0, "{last}");
        let hosts = out
            .lines()
            .filter(|l| l.contains(r#""type":"host""#))
            .count();
        assert_eq!(hosts as u64, summary["alive"].as_u64().unwrap(), "{last}");
    }
}

/// The `host` records of a JSON sweep as (zone, alive), sorted.
fn zones_alive(out: &str) -> Vec<(String, bool)> {
    let mut hosts: Vec<(String, bool)> = out
        .lines()
        .filter_map(json_record)
        .filter(|r| r["type"] == "host")
        .map(|r| {
            let zone = r["zone"].as_str().unwrap_or("").to_string();
            (zone, r["alive"] == true)
        })
        .collect();
    hosts.sort();
    hosts
}

/// One inactive host was summed up as `Total 1 host is inactive`, where SPEC's line (which
/// scripts grep) is `Total N hosts are inactive` whatever N; the interrupted form too.
#[test]
fn one_inactive_host_was_not_total_n_hosts_are_inactive() {
    if !privileged("sweep one inactive host") {
        return;
    }
    let ns = Netns::with_loopback("swone");
    crate::ping_net::iptables(&ns, &["-A", "INPUT", "-p", "icmp", "-j", "DROP"]);
    let args = ["sweep", "127.0.0.1", "--timeout", "300ms", "--dead"];
    let (code, stdout, stderr) = text(&ns.netkit().args(args).output().expect("run netkit"));
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        stdout,
        "127.0.0.1 is inactive\nTotal 1 hosts are inactive\n"
    );
}

/// Audit 2026-12-04: a /26 of live hosts behind random loss (no policing, no ICMP limit)
/// swept right, but the summary said `"throttled": true` — 9 runs in 25 at 50% loss each way
/// (a throttle record from 10000 to 156-1250 probes/s), 1 in 25 at 30%. The first window of
/// control probes answered a quarter, under half of the ratio assumed before any window was
/// judged (all of them), the sweep slowed down, and the round ended before the controls sent
/// slower filled a window: that collapse was reported as it stood, with no sign that slowing
/// down helped. Behind a policer the controls sent slower do answer more: still throttled.
#[test]
fn sweep_took_random_loss_for_throttling() {
    if !privileged("sweep_took_random_loss_for_throttling") {
        return;
    }
    let range = "198.18.1.0/26";
    let lab = Lab::builder("swrrandom")
        .hosts(range)
        .delay(ms(15))
        .jitter(ms(5))
        .loss(0.50)
        .seed(5)
        .build()
        .expect("lab");
    let truth = pingable(&lab, range);
    let mut throttled = Vec::new();
    for run in 1..=8 {
        let sweep = netkit_sweep(&lab, &[range]);
        let fping = fping_alive(&lab, &["-g", range]);
        let alive = sweep.alive(1);
        assert!(alive.is_subset(&truth), "run {run}: {}", sweep.stdout);
        assert!(alive.len() >= fping.len(), "run {run}: fping {fping:?}");
        if sweep.summaries()[0].throttled || !sweep.throttles().is_empty() {
            throttled.push(run);
        }
    }
    // The claim is a judgement at 97.7-99% confidence: on this link about one sweep in a
    // hundred still claims it by chance (one of 6 in a CI run), where the bug did in 9 of 25.
    // At most one of 8: the bug passes that about one time in seven, chance about one in 300.
    assert!(
        throttled.len() <= 1,
        "random loss is no throttling: runs {throttled:?}"
    );
    drop(lab);
    let policed = Lab::builder("swrrandpol")
        .hosts(range)
        .delay(ms(5))
        .icmp_police(50)
        .build()
        .expect("lab");
    // Behind the policer the claim was made in most sweeps, not all (41 of 50: the round
    // ended before the slower controls filled a window, and the few there were told
    // nothing). The round now sends the controls that judge its slow-down: 40 of 40. Two of
    // three: at one sweep in fifty missing it, this fails about one time in 800.
    let mut missed = Vec::new();
    for _ in 0..3 {
        let run = netkit_sweep(&policed, &[range]);
        assert_exact("policed to 50/s", &run.alive(1), &truth, &BTreeSet::new());
        if !run.summaries()[0].throttled {
            missed.push(run.stdout);
        }
    }
    assert!(
        missed.len() <= 1,
        "policed to 50/s, not throttled: {}",
        missed.join("\n")
    );
}

/// The summary's `loss_pct` on a small range behind 10% loss each way (19% of the round trips)
/// read 0.0 (or null) in every run: it counted only the control probes, a handful on a /26,
/// and those still in flight at the round's end were never judged. Now it counts every probe
/// to the live hosts up to the one each answered, as fping's `-c` per-host figures do.
#[test]
fn sweep_said_no_loss_on_a_lossy_small_range() {
    if !privileged("sweep_said_no_loss_on_a_lossy_small_range") {
        return;
    }
    let range = "198.18.1.0/26";
    let lab = Lab::builder("swrlosspct")
        .hosts(range)
        .delay(ms(5))
        .loss(0.10)
        .seed(9)
        .build()
        .expect("lab");
    let fping = fping_loss_pct(&lab, &["-c", "10", "-p", "50", "-g", range]);
    assert!((8.0..35.0).contains(&fping), "fping: {fping}%");
    for run in 1..=3 {
        let sweep = netkit_sweep(&lab, &[range]);
        let summary = &sweep.summaries()[0];
        let netkit = summary.loss_pct.unwrap_or(-1.0);
        assert!(summary.loss_probes >= 64, "run {run}: {}", sweep.stdout);
        assert!(
            (netkit - fping).abs() < 15.0,
            "run {run}: netkit {netkit}%, fping {fping}%\n{}",
            sweep.stdout
        );
    }
}

/// The round-trip loss `fping -q ARGS` measures (`-c N` and the targets), in percent: its
/// per-host `xmt/rcv/%loss` lines summed.
fn fping_loss_pct<S: AsRef<std::ffi::OsStr>>(lab: &Lab, args: &[S]) -> f64 {
    let out = lab
        .scanner_cmd("fping")
        .arg("-q")
        .args(args)
        .output()
        .expect("run fping");
    let (_, _, stderr) = text(&out);
    let (mut sent, mut received) = (0u32, 0u32);
    for line in stderr.lines().filter(|l| l.contains("xmt/rcv/%loss")) {
        let counts = line.split("= ").nth(1).expect("fping counts");
        let mut parts = counts.split('/');
        sent += parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        received += parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    }
    assert!(sent > 0, "fping: {stderr}");
    f64::from(sent - received) * 100.0 / f64::from(sent)
}

/// Probes of one sweep lost beyond the kernel's and the relay's drops that a loaded machine
/// alone explains: with the machine busy beside it (audits or labs at real-time priority,
/// load 5-12 on 2 cores) the test failed three times in stops 50-52 with 1, 1 and 2 lost and
/// none dropped; on a quiet machine it lost none (12 sweeps of 12, stop 52). The bug it
/// guards against lost 0.4-2.1 % of some 900 probes: 4 or more.
const LOADED_STRAY: u64 = 2;

/// Behind a link that reorders and loses nothing (50±45 ms each way, 30% of the packets
/// skipping the delay), the summary's `loss_pct` read 0.4-2.1% on a /24 of live hosts (IPv6
/// in 7 sweeps of 7, IPv4 in 2 of 6; both families swept every second: 10 rounds of 15)
/// where fping `-c` lost nothing. A host re-probed before its first answer came (the first
/// waits follow the quickest round trips) whose re-probe's answer overtook the first one's
/// counted as found at its second probe, the first lost; the first answer, arriving next,
/// was ignored. It now takes that probe back from the lost.
///
/// A probe or an answer the kernel itself dropped during a sweep is lost for real, and that
/// many may count: the test failed once with `loss_pct` 0.1 (one probe of 907) while two
/// audits ran beside it (load 12 on 2 cores, their relays at real-time priority), and this
/// machine's backlog had dropped 878 570 packets since boot (`/proc/net/softnet_stat`, from
/// sweeps at 10000/s and more); 30 runs of this sweep under 6-10 busy loops and a flood in
/// another lab (release binary) dropped none and lost none.
#[test]
fn sweep_counted_answers_overtaken_by_a_re_probes_as_lost() {
    if !privileged("sweep_counted_answers_overtaken_by_a_re_probes_as_lost") {
        return;
    }
    let lab = Lab::builder("swrreorder")
        .hosts("198.18.1.0/24")
        .hosts("2001:db8:1::/120")
        .delay(ms(50))
        .jitter(ms(45))
        .reorder(0.30)
        .seed(5)
        .build()
        .expect("lab");
    // fping's default period (1 s) and timeout (500 ms): a period shorter than the round
    // trips would shorten its timeout and count late answers lost.
    let v4 = ["-g", "198.18.1.0/24"].map(String::from).to_vec();
    let v6 = (0..256).map(|i| format!("2001:db8:1::{i:x}")).collect();
    for targets in [v4, v6] {
        let args = [vec!["-c".to_string(), "3".to_string()], targets].concat();
        let fping = fping_loss_pct(&lab, &args);
        assert_eq!(fping, 0.0, "fping lost some: {}", args[2]);
    }
    for run in 1..=4 {
        let before = dropped(&lab);
        let sweep = netkit_sweep(&lab, &["198.18.0.0/23", "2001:db8:1::/119"]);
        let dropped = dropped(&lab) - before;
        let summary = &sweep.summaries()[0];
        let records: Vec<_> = sweep
            .stdout
            .lines()
            .filter(|l| !l.contains("\"host\""))
            .collect();
        assert_eq!(summary.alive, 512, "run {run}: {}", records.join("\n"));
        let pct = summary.loss_pct.expect("loss_pct");
        let lost = (pct * summary.loss_probes as f64 / 100.0).round();
        // One probe more than the drops: its answer overtaken by a loaded machine's stall
        // (the bug counted 4-19 of some 900 lost).
        assert!(
            lost <= (dropped + LOADED_STRAY) as f64,
            "run {run}: {lost} lost, {dropped} dropped by the kernel or the relay; fping lost \
             none\n{}",
            records.join("\n")
        );
    }
}

/// Packets dropped so far on this machine before anything read them: the kernel's input
/// backlogs (`/proc/net/softnet_stat`, every CPU and namespace: a busy machine's drops count
/// too) and the lab relay's queue.
fn dropped(lab: &Lab) -> u64 {
    let softnet = std::fs::read_to_string("/proc/net/softnet_stat").unwrap_or_default();
    let backlog: u64 = softnet
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter_map(|n| u64::from_str_radix(n, 16).ok())
        .sum();
    let relay = lab
        .relay_stats()
        .map_or(0, |s| s.kernel_drops + s.overflowed + s.errors);
    backlog + relay
}

/// Audit (nmap -PA80 as the oracle, same lab): a host found up by `--method ack:80` through
/// its own ICMP port unreachable was written up by `reset` in -oX, where nmap -sn -PA80 says
/// `port-unreach` (v4 and v6); the JSON record did not tell the two apart. Now -oX says
/// `port-unreach` and the record `"tcp":"port-unreach"`; a reset stays `reset`.
#[test]
fn ack_sweep_called_the_targets_own_port_unreachable_a_reset() {
    if !privileged("ack_sweep_called_the_targets_own_port_unreachable_a_reset") {
        return;
    }
    use netkit_lab::Reject::PortUnreachable;
    let lab = Lab::builder("regswackwhy")
        .host("198.18.1.3")
        .host("2001:db8:1::3")
        .host("198.18.1.4")
        .reject("198.18.1.3", 80..=80, PortUnreachable)
        .reject("2001:db8:1::3", 80..=80, PortUnreachable)
        .icmp_limits(netkit_lab::IcmpLimits::Off)
        .build()
        .expect("lab");
    let reason = super::scan::status_reasons;
    for addr in ["198.18.1.3", "2001:db8:1::3", "198.18.1.4"] {
        let family = if addr.contains(':') { "-6" } else { "-4" };
        let out = lab
            .scanner_cmd("nmap")
            .args(["-n", "-sn", "-PA80", "--reason", "-oX", "-", family, addr])
            .output()
            .expect("run nmap");
        let (_, nmap, _) = text(&out);
        let want = reason(&nmap);
        assert_eq!(want.len(), 1, "nmap -PA80 {addr}: {nmap}");
        let out = lab
            .netkit()
            .args([
                "sweep",
                "--retries",
                "2",
                "--method",
                "ack:80",
                "-oX",
                "-",
                addr,
            ])
            .output()
            .expect("run netkit");
        let (_, xml, stderr) = text(&out);
        assert_eq!(reason(&xml), want, "{addr}: {xml}{stderr}\nnmap: {nmap}");
    }
}

/// An unprivileged sweep (datagram sockets, which receive ICMP errors through `IP_RECVERR`)
/// reported a live host unreachable when its probe followed one that drew an ICMP error: the
/// kernel keeps the error as the socket's pending error too and refuses the next send with it.
/// Behind a router that rejects 198.18.7.0/24 (admin prohibited), `netkit sweep 198.18.7.1
/// 198.18.1.2 ...` said `netkit: 198.18.1.2: No route to host` (IPv6: `Permission denied`)
/// where fping, on the same network, finds 198.18.1.2 alive.
#[test]
fn unprivileged_probes_after_an_icmp_error_were_refused() {
    if !privileged("sweep unprivileged after an ICMP error") {
        return;
    }
    let [near, _router, _far] = crate::ping_net::routed_rejecting("swsoerr");
    let targets = ["198.18.7.1", "198.18.1.2", "2001:db8:7::1", "2001:db8:1::2"];
    let alive = |out: &str| -> BTreeSet<String> {
        let alive = out.lines().filter_map(|l| l.strip_suffix(" is alive"));
        alive.map(str::to_string).collect()
    };
    let mut fping = near.command("fping");
    fping.args(targets);
    let (_, f_out, f_err) = text(&fping.output().expect("run fping"));
    let want: BTreeSet<String> = ["198.18.1.2", "2001:db8:1::2"].map(String::from).into();
    assert_eq!(alive(&f_out), want, "fping: {f_out}{f_err}");
    let range = "net.ipv4.ping_group_range=0 2147483647";
    crate::harness::sh(&["ip", "netns", "exec", &near.name, "sysctl", "-qw", range]);
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &near.name, "setpriv"])
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args([env!("CARGO_BIN_EXE_netkit"), "sweep"])
        .args(targets)
        .output()
        .expect("run setpriv");
    let (code, out, err) = text(&out);
    assert_eq!(
        alive(&out),
        alive(&f_out),
        "{out}{err}\nfping: {f_out}{f_err}"
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("198.18.7.1: Packet filtered from "), "{err}");
    assert!(
        !err.contains("198.18.1.2") && !err.contains("2001:db8:1::2:"),
        "{err}"
    );
}

/// Audit (beside fping and nmap -sn -PE, same lab): `--retries 0` behind a far side that
/// polices ICMP echo to 100/s (a burst of 10) found 6 to 10 of a /26's 64 hosts, those of the
/// policer's burst, where `nmap -sn -PE --max-retries 0` found 20 and `fping -r 0` (one
/// request every 10 ms) all it sweeps (62). Then (stop 45) 42, 42 or 64 run to run: the first
/// batch was judged on six control probes, four of them lost, too few to call the far side
/// throttling, and its 22 silent hosts were given up on their one probe; and the slow-downs,
/// their rates taken at the pacer's word while the sweep sent its re-probes in bursts a second
/// apart, never came near what the policer passes. With 5 ms each way (round trips longer than
/// the first wave) no control went out with the first probes and 10 were found every run. Now
/// each of several sweeps finds at least as many as fping sweeps (62 of 64), and no host that
/// is not there.
#[test]
fn sweep_without_retries_missed_hosts_behind_an_echo_policer() {
    if !privileged("sweep_without_retries_missed_hosts_behind_an_echo_policer") {
        return;
    }
    let range = "198.18.0.0/26";
    // Without delay one run in three or four went wrong, with 5 ms each way every run:
    // bounded, each run ends by its timeout and a few waits.
    for (tag, delay, runs) in [("regswf0", 0, 8), ("regswf5", 5, 3)] {
        let lab = Lab::builder(tag)
            .delay(ms(delay))
            .hosts(range)
            .icmp_police(100)
            .build()
            .expect("lab");
        let truth = pingable(&lab, range);
        let fping = fping_alive(&lab, &["-r", "0", "-g", range]);
        let mut found = Vec::new();
        for _ in 0..runs {
            std::thread::sleep(std::time::Duration::from_millis(300));
            let run = netkit_sweep(&lab, &[range, "--retries", "0"]);
            let alive = run.alive(1);
            assert!(alive.is_subset(&truth), "false alive: {}", run.stdout);
            found.push(alive.len());
        }
        assert!(
            found.iter().all(|n| *n >= 62),
            "{delay} ms: netkit --retries 0 found {found:?} of {}, fping -r 0 {}",
            truth.len(),
            fping.len()
        );
    }
}

/// Audit: the path died 0.1 s into a sweep of a /22 (the router dropping everything) and the
/// round went on for 31 s with 30336 probes, 31 to every silent target where `--retries 3`
/// allows 4: the lost control probes were read as a far side throttling the sweep, whose
/// probes do not count against the retries, and the slow-downs never brought an answer back
/// (fping -r 3 sends at most 4 requests to a target, whatever happens to the path). Now a
/// round whose controls all go unanswered for long gives its silent targets up, so it sends
/// at most fping's budget: 4 per target, and a control per probe of the hosts it found.
#[test]
fn sweep_kept_re_probing_after_the_path_died() {
    if !privileged("sweep_kept_re_probing_after_the_path_died") {
        return;
    }
    let lab = Lab::builder("regswfcut")
        .delay(ms(15))
        .hosts("198.18.0.0/26")
        .build()
        .expect("lab");
    let cut = lab.router_cmd("iptables");
    let cutter = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let mut cut = cut;
        let status = cut.args(["-I", "FORWARD", "-j", "DROP"]).status();
        assert!(status.is_ok_and(|s| s.success()), "iptables in the router");
    });
    let run = netkit_sweep(&lab, &["198.18.0.0/22", "--retries", "3"]);
    cutter.join().expect("cut the path");
    let summary = &run.summaries()[0];
    let budget = 1024 * 4 + 8 * summary.alive;
    assert!(
        summary.probes <= budget,
        "{} probes, at most {budget}: {summary:?}",
        summary.probes
    );
}

/// Audit (nmap -sn -oX as the oracle, same lab): sweep's `-oX` wrote `reason_ttl="0"` for
/// every host, where nmap writes the TTL of the answer that found it (`echo-reply` with
/// `reason_ttl="63"` for a host one router away). Now the TTL (IPv6: the hop limit) of the
/// answer is kept where it is read: ICMP echo replies, and the raw sockets of `timestamp`
/// and `ack` (IPv4); a silent host stays at 0, as nmap writes it.
#[test]
fn sweep_xml_wrote_reason_ttl_0_where_nmap_writes_the_answers_ttl() {
    if !privileged("sweep_xml_wrote_reason_ttl_0_where_nmap_writes_the_answers_ttl") {
        return;
    }
    let lab = Lab::builder("regswfttl")
        .delay(ms(2))
        .host("198.18.1.3")
        .host("2001:db8:1::3")
        .build()
        .expect("lab");
    let cases = [
        ("icmp", "-PE", "198.18.1.3"),
        ("icmp", "-PE", "2001:db8:1::3"),
        ("icmp", "-PE", "198.18.1.9"),
        ("timestamp", "-PP", "198.18.1.3"),
        ("ack:80", "-PA80", "198.18.1.3"),
    ];
    for (method, probe, addr) in cases {
        let family = if addr.contains(':') { "-6" } else { "-4" };
        let out = lab
            .scanner_cmd("nmap")
            .args(["-n", "-v", "-sn", probe, "--send-ip", "--max-retries", "1"])
            .args(["-oX", "-", family, addr])
            .output()
            .expect("run nmap");
        let (_, nmap, _) = text(&out);
        let want = status_ttls(&nmap);
        assert_eq!(want.len(), 1, "nmap {probe} {addr}: {nmap}");
        let out = lab
            .netkit()
            .args(["sweep", "--method", method, "-oX", "-", addr])
            .output()
            .expect("run netkit");
        let (_, xml, stderr) = text(&out);
        assert_eq!(
            status_ttls(&xml),
            want,
            "{method} {addr}: {xml}{stderr}\nnmap: {nmap}"
        );
    }
}

/// A host going down in the middle of a round (`--every`), made to happen at one moment: the
/// far side takes 198.18.0.5 away as soon as the sweep reports it alive. Its control probes
/// all went out before the first was seen lost — it was no control host any more by then —,
/// so they were counted as loss on the way to the others: on a clean link the round said 30%
/// loss and probed each of its 253 silent targets 17 times (4328 probes in 5.1 s, every
/// run), where the next round, nothing going down, sent 1542 in 1.1 s. fping -l reports
/// timeouts for that host alone. Now its lost controls leave the counts: no loss, and about
/// the probes of a round where nothing went down; the host is reported gone in round 2.
#[test]
fn a_host_going_down_mid_round_was_counted_as_loss_on_the_way_to_the_others() {
    if !privileged("a_host_going_down_mid_round_was_counted_as_loss_on_the_way_to_the_others") {
        return;
    }
    let gone: IpAddr = "198.18.0.5".parse().expect("address");
    let mut lab = ["198.18.0.5", "198.18.0.77", "198.18.0.200"]
        .iter()
        .fold(Lab::builder("regswfdown").delay(ms(15)), |b, h| b.host(h))
        .build()
        .expect("lab");
    let mut cmd = lab.netkit();
    cmd.args([
        "--json",
        "sweep",
        "198.18.0.0/24",
        "--every",
        "1s",
        "--rounds",
        "2",
    ]);
    let mut sweep = crate::harness::Proc::spawn(cmd);
    sweep
        .stdout
        .wait_for(|l| l.contains(r#""addr":"198.18.0.5","alive":true"#), 1);
    lab.remove_host(gone).expect("take the host away");
    assert_eq!(sweep.wait(), 1, "{:?}", sweep.stderr.all());
    let records: Vec<serde_json::Value> = sweep
        .stdout
        .to_end()
        .iter()
        .filter_map(|l| json_record(l))
        .collect();
    let of = |kind: &'static str| records.iter().filter(move |r| r["type"] == kind);
    let summaries: Vec<_> = of("summary").collect();
    assert_eq!(summaries.len(), 2, "{records:?}");
    let (first, second) = (summaries[0], summaries[1]);
    assert_eq!(first["alive"], 3, "it answered before it went: {first}");
    assert_eq!(second["alive"], 2, "{second}");
    let changes: Vec<_> = of("change").collect();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["addr"], "198.18.0.5");
    assert_eq!(
        (&changes[0]["alive"], &changes[0]["round"]),
        (&false.into(), &2.into())
    );
    // Nothing is lost on this link: the host that left is no loss on the way to the others.
    assert_eq!(first["loss_pct"], 0.0, "round 1: {first}");
    let (probes, next) = (first["probes"].as_u64(), second["probes"].as_u64());
    let (probes, next) = (probes.expect("probes"), next.expect("probes"));
    assert!(
        probes <= next * 3 / 2,
        "round 1: {probes} probes, round 2: {next}"
    );
}

/// `netkit sweep ::ffff:198.18.0.0/120` (in a lab namespace) sent ICMPv6 requests to the
/// mapped addresses, which never go on the wire: every host came out unreachable (`Network is
/// unreachable` with no IPv6 route; on a host they leave through the default route). A mapped
/// address or block is now swept as the IPv4 addresses it maps, and reported as those (as
/// `netkit ping` pings it); a range only partly mapped is bad input.
#[test]
fn an_ipv4_mapped_range_was_swept_over_icmpv6() {
    if !privileged("sweep ::ffff:127.0.0.4/126") {
        return;
    }
    let ns = Netns::with_loopback("swmapped");
    let output = ns
        .netkit()
        .args([
            "sweep",
            "::ffff:127.0.0.4/126,::ffff:127.0.0.9",
            "--timeout",
            "300ms",
        ])
        .output()
        .expect("run");
    let (code, out, err) = text(&output);
    assert_eq!(code, 0, "{out}{err}");
    let alive: Vec<&str> = out.lines().filter(|l| l.ends_with(" is alive")).collect();
    assert_eq!(
        alive,
        [
            "127.0.0.4 is alive",
            "127.0.0.5 is alive",
            "127.0.0.6 is alive",
            "127.0.0.7 is alive",
            "127.0.0.9 is alive"
        ],
        "{out}{err}"
    );
    assert!(err.is_empty(), "{err}");
    let straddle = "::fffe:ffff:ffff-::ffff:0.0.0.1";
    let (code, out, err) = text(&ns.netkit().args(["sweep", straddle]).output().expect("run"));
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.starts_with(&format!("netkit: {straddle}: ")) && err.contains("IPv4-mapped"),
        "{err}"
    );
}
