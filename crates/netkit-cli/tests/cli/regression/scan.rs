//! Regressions of `netkit scan`.
//!
//! Issue 12: the scanner fired connects at a fixed rate with a fixed timeout and learnt nothing
//! from the network. Through a 2 Mbit/s link it flooded the shaper's queue, so SYNs were
//! dropped wholesale: open ports went missing and closed ports came out filtered. A REJECT with
//! ICMP port unreachable came out closed when the ICMP error got through and filtered when the
//! far kernel's ICMP rate limit ate it. And a target without a route was "filtered", exit 0.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::process::Command;

use crate::discovery_lab::{nmap_in, status_ttls};
use crate::harness::{privileged, run_within, text, Proc, LAB_PATIENCE};
use crate::lab::{ms, peers, Backend, Lab, LabExt, PortTruth, Reject, Unroutable};
use crate::ping_net::link_local_pair;
use crate::scan::{addrs, inside, listeners, parse_scan, scan_json, Scan};

/// A lab's hosts given together.
trait Hosts {
    /// Each of `hosts` (a scenario's IPv4 and IPv6 address), listening on `ports`.
    fn hosts_listening(self, hosts: &[&str], ports: &[u16]) -> Self;
}

impl Hosts for crate::lab::LabBuilder {
    fn hosts_listening(self, hosts: &[&str], ports: &[u16]) -> Self {
        hosts.iter().fold(self, |b, h| b.host(h).open(h, ports))
    }
}

const SLOW_HOST: &str = "198.18.1.5";
const SLOW_PORTS: &str = "1-4000";

/// 2 Mbit/s each way and 30 ms of round trip, one host with listeners spread over the ports
/// scanned and a hundred dropped ports.
fn slow_link(tag: &str) -> Lab {
    Lab::builder(tag)
        .delay(ms(15))
        .rate("2mbit")
        .host(SLOW_HOST)
        .open(SLOW_HOST, &[22, 80, 443, 1521, 2049, 3306, 3389, 3999])
        .drop_ports(SLOW_HOST, 3001..=3100)
        .build()
        .expect("lab")
}

/// `netkit --json scan ARGS` in `lab` with its defaults; exit 0 required.
fn scan(lab: &Lab, args: &[&str]) -> Scan {
    let mut cmd = lab.netkit();
    cmd.arg("--json").arg("scan").args(args);
    let (code, stdout, stderr) = run_within(cmd, LAB_PATIENCE);
    assert_eq!(code, 0, "scan {args:?}\nstdout {stdout}\nstderr {stderr}");
    parse_scan(&stdout)
}

#[test]
fn missed_open_ports_on_a_rate_limited_link() {
    if !privileged("missed_open_ports_on_a_rate_limited_link") {
        return;
    }
    let lab = slow_link("regslowopen");
    let addr: IpAddr = SLOW_HOST.parse().expect("address");
    let want: BTreeSet<SocketAddr> = lab
        .truth()
        .open_ports(addr)
        .into_iter()
        .map(|port| SocketAddr::new(addr, port))
        .collect();
    let got = scan(&lab, &[SLOW_HOST, "-p", SLOW_PORTS]).found();
    assert_eq!(got, want, "open ports: got vs the lab's listeners");
}

#[test]
fn closed_ports_reported_filtered_on_a_rate_limited_link() {
    if !privileged("closed_ports_reported_filtered_on_a_rate_limited_link") {
        return;
    }
    let lab = slow_link("regslowclosed");
    let s = scan(&lab, &[SLOW_HOST, "-p", SLOW_PORTS]).summary;
    assert_eq!((s.closed, s.filtered), (4000 - 8 - 100, 100), "{s:?}");
}

/// A REJECT with ICMP port unreachable behind the far kernel's default ICMP rate limit (one
/// error per second per peer, burst 6): the few errors that get through used to make their
/// ports closed, the silence the rest filtered.
#[test]
fn port_unreachable_closed_or_filtered_by_the_icmp_rate_limit() {
    if !privileged("port_unreachable_closed_or_filtered_by_the_icmp_rate_limit") {
        return;
    }
    let lab = Lab::builder("regicmplimit")
        .delay(ms(2))
        .host(SLOW_HOST)
        .reject(SLOW_HOST, 1..=60, Reject::PortUnreachable)
        .build()
        .expect("lab");
    let addr: IpAddr = SLOW_HOST.parse().expect("address");
    assert_eq!(
        lab.truth().port(addr, 7),
        PortTruth::Rejected(Reject::PortUnreachable)
    );
    let s = scan(&lab, &[SLOW_HOST, "-p", "1-100"]).summary;
    assert_eq!((s.filtered, s.closed, s.open), (60, 40, 0), "{s:?}");
}

/// No route to a target — this machine's (ENETUNREACH) or a router's ICMP net or host
/// unreachable — used to be reported as 100 filtered ports and exit 0. It is an error naming
/// the target: exit 1, a line on stderr, an `unreachable` record, and no port states.
#[test]
fn no_route_reported_as_filtered() {
    if !privileged("no_route_reported_as_filtered") {
        return;
    }
    let lab = Lab::builder("regnoroute")
        .host(SLOW_HOST)
        .unroutable("198.18.200.0/24", Unroutable::Local)
        .unroutable("198.18.201.0/24", Unroutable::Net)
        .unroutable("198.18.202.0/24", Unroutable::Host)
        .unroutable("2001:db8:200::/48", Unroutable::Local)
        .unroutable("2001:db8:201::/48", Unroutable::Net)
        .build()
        .expect("lab");
    let targets = [
        "198.18.200.7",
        "198.18.201.7",
        "198.18.202.7",
        "2001:db8:200::7",
        "2001:db8:201::7",
    ];
    let out = lab
        .netkit()
        // -Pn: the scan itself meets the no-route errors (a discovery round is over before
        // the router's rate-limited ICMP errors — 5 at once, then 1/s — reach every target).
        .args([
            "--json",
            "scan",
            "-Pn",
            &targets.join(","),
            SLOW_HOST,
            "-p",
            "1-100",
        ])
        .output()
        .expect("run netkit");
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 1, "stdout {stdout}\nstderr {stderr}");
    for target in targets {
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&format!("netkit: {target}: ")));
        assert!(line.is_some(), "no error naming {target}:\n{stderr}");
    }
    let scan = parse_scan(&stdout);
    let named: BTreeSet<String> = scan
        .unreachable
        .iter()
        .map(|u| u.addr.to_string())
        .collect();
    assert_eq!(named, targets.iter().map(|t| t.to_string()).collect());
    let s = &scan.summary;
    assert_eq!((s.unreachable, s.filtered, s.closed), (5, 0, 100), "{s:?}");
}

/// The text summary of a one-port scan said "1 ports each".
#[test]
fn one_port_summary_says_1_ports() {
    let listener = crate::harness::Reserved::v4().listen();
    let port = listener.local_addr().expect("address").port().to_string();
    let out = crate::harness::run(&["scan", "127.0.0.1", "-p", &port]);
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 0, "stdout {stdout}\nstderr {stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("Scanned 1 host, 1 port each, in ") && last.contains(": 1 open,"),
        "{stdout}"
    );
}

/// Issue 16: `-oX FILE` was `-o X` to clap: the human text went into a file named `X` and
/// FILE was scanned as one more target. It writes nmap's XML into FILE now.
#[test]
fn o_x_wrote_text_into_a_file_named_x() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = crate::harness::netkit()
        .args(["scan", "127.0.0.1", "-p", &port, "-oX", "scan.xml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        !dir.path().join("X").exists(),
        "text went into a file named X"
    );
    let xml = std::fs::read_to_string(dir.path().join("scan.xml")).unwrap();
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(
        xml.contains(&format!("portid=\"{port}\"><state state=\"open\"")),
        "{xml}"
    );
}

/// Issue 16 (`--syn`): a SYN scan missed an open port at 5% loss. When only the SYN-ACK of a
/// first try was lost, the retransmission left from the same source port with a new sequence
/// number; the target, holding the half-open connection of the first try, drops such a SYN
/// (Linux answers it with a bare ACK), so the port stayed silent until the target's own
/// SYN-ACK retransmission a second later, by which time the scan had given the try up:
/// filtered. Here the far side drops the first SYN-ACK of each open port; nmap's
/// retransmissions leave from another source port, and now netkit's do too.
#[test]
fn syn_scan_missed_open_ports_whose_first_syn_ack_was_lost() {
    if !privileged("syn_scan_missed_open_ports_whose_first_syn_ack_was_lost") {
        return;
    }
    let open = [22, 80, 443, 3306, 8080];
    let lab = Lab::builder("regsynack")
        .delay(ms(5))
        .host(SLOW_HOST)
        .open(SLOW_HOST, &open)
        .build()
        .expect("lab");
    // The first SYN-ACK from each open port is lost; every later one goes through.
    for port in open {
        drop_first_syn_acks(&lab, "iptables", port, 1);
    }
    let addr: IpAddr = SLOW_HOST.parse().expect("address");
    let want: BTreeSet<SocketAddr> = open.iter().map(|&p| SocketAddr::new(addr, p)).collect();
    let got = scan(&lab, &[SLOW_HOST, "--syn", "-p", "1-9000"]);
    assert_eq!(got.found(), want, "open ports: {:?}", got.summary);
}

/// Fidelity audit: behind a round trip of a second or more every port came out filtered
/// (81 of 81 at 1.1 s, with connects and with raw SYNs; at 1.6 s even with `--timeout 10s`)
/// where `nmap -sS` finds 2 open and 79 closed (`nmap -sT`, which closes a connect at its
/// timeout, found all 81 filtered at 1.1 s too). The timeout's ceiling was 1 s, a probe's
/// socket was kept 0.9 s for a late answer, and round trips over a second were never
/// measured (a connect's SYN is retransmitted at 1 s, so such a sample was taken for
/// ambiguous even on a path where every round trip is that long).
#[test]
fn every_port_filtered_behind_a_round_trip_over_a_second() {
    if !privileged("every_port_filtered_behind_a_round_trip_over_a_second") {
        return;
    }
    const FAR: &str = "198.18.0.2";
    for (tag, one_way) in [("reglong11", 550), ("reglong16", 800)] {
        let lab = Lab::builder(tag)
            .delay(ms(one_way))
            .host(FAR)
            .open(FAR, &[22, 80])
            .no_echo(FAR)
            .build()
            .expect("lab");
        let nmap = lab
            .scanner_cmd("nmap")
            .args(["-n", "-Pn", "-sS", "-p", "20-100", FAR, "-oG", "-"])
            .output()
            .expect("nmap");
        let grepable = String::from_utf8_lossy(&nmap.stdout);
        let states = crate::lab::peers::nmap_states(&grepable);
        let nmap_open = states.values().filter(|s| *s == "open").count();
        assert_eq!(nmap_open, 2, "nmap: {grepable}");
        assert!(
            grepable.contains("Ignored State: closed (79)"),
            "{grepable}"
        );
        for extra in [&[][..], &["--syn"][..]] {
            let mut args = vec![FAR, "-p", "20-100"];
            args.extend_from_slice(extra);
            let got = scan(&lab, &args);
            let s = &got.summary;
            assert_eq!(
                (s.open, s.closed, s.filtered),
                (2, 79, 0),
                "{one_way} ms each way, {extra:?}: {s:?}"
            );
        }
    }
}

/// A host found down by discovery because a router said it cannot be reached: its record's
/// reason named ICMP net unreachable (`Destination Net Unreachable from ROUTER`, the sweep's
/// words) and administratively prohibited (`Packet filtered from ROUTER`) `no-route`, not
/// nmap's `net-unreach` and `admin-prohibited` (only "host unreachable" was read).
#[test]
fn discovery_named_net_unreachable_and_prohibited_no_route() {
    if !privileged("discovery_named_net_unreachable_and_prohibited_no_route") {
        return;
    }
    let lab = Lab::builder("regdscwhy")
        .host(SLOW_HOST)
        .unroutable("198.18.201.0/24", Unroutable::Net)
        .unroutable("198.18.202.0/24", Unroutable::Host)
        .unroutable("198.18.203.0/24", Unroutable::Prohibited)
        .icmp_limits(netkit_lab::IcmpLimits::Off)
        .build()
        .expect("lab");
    // Three targets, one probe each at first: within the router's burst of ICMP errors.
    let targets = "198.18.201.7,198.18.202.7,198.18.203.7";
    let out = lab
        .netkit()
        .args(["--json", "scan", "--discovery", "icmp", targets, "-p", "22"])
        .output()
        .expect("run netkit");
    let (_, stdout, stderr) = text(&out);
    let reason = |addr: &str| {
        stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|r| r["type"] == "host" && r["addr"] == addr)
            .and_then(|r| r["reason"].as_str().map(str::to_string))
    };
    let want = [
        ("198.18.201.7", "net-unreach"),
        ("198.18.202.7", "host-unreach"),
        ("198.18.203.7", "admin-prohibited"),
    ];
    for (addr, word) in want {
        assert_eq!(reason(addr).as_deref(), Some(word), "{stdout}{stderr}");
    }
}

/// An IPv6 link-local target with its zone, `fe80::…%nk0`: refused as an invalid address by
/// the connect scan and the SYN scan alike, and the SYN scan, once past that, lost the zone
/// where it looks up its source address and where it sends. `nmap -6 -sS` on the same
/// target, in the same run, is the oracle: the listeners open, the other ports closed.
#[test]
fn link_local_target_with_a_zone() {
    if !privileged("link_local_target_with_a_zone") {
        return;
    }
    let (near, far, target) = link_local_pair("regzone");
    let held = inside(&far, || listeners(&[("::", 2)]));
    let open: BTreeSet<u16> = addrs(&held).iter().map(SocketAddr::port).collect();
    let listed: Vec<String> = open.iter().map(u16::to_string).collect();
    let ports = format!("1-10,{}", listed.join(","));
    let out = near
        .command("nmap")
        .args(["-6", "-sS", "-n", "-Pn", "-p", &ports, "-oG", "-", &target])
        .output()
        .expect("run nmap");
    let (_, nmap_out, _) = text(&out);
    let nmap = peers::nmap_states(&nmap_out);
    let nmap_open: BTreeSet<u16> = nmap
        .iter()
        .filter(|(_, state)| *state == "open")
        .map(|(port, _)| *port)
        .collect();
    let nmap_closed = nmap.values().filter(|state| *state == "closed").count();
    assert_eq!((&nmap_open, nmap_closed), (&open, 10), "nmap: {nmap_out}");
    for extra in [&[][..], &["--syn"][..]] {
        let args = [&["-Pn", target.as_str(), "-p", ports.as_str()][..], extra].concat();
        let scan = scan_json(near.netkit(), &args);
        let ours: BTreeSet<u16> = scan.open.iter().map(|p| p.port).collect();
        let s = &scan.summary;
        assert_eq!(
            (&ours, s.closed as usize, s.filtered),
            (&nmap_open, nmap_closed, 0),
            "{extra:?} (left) vs nmap -sS {nmap_out}"
        );
    }
}

/// A service that speaks first, serving `BANNER` on `[::]:port` (IPv4 too) in `lab`'s far
/// namespace for at most 60 s, to at most 16 clients.
fn serve_banner(lab: &Lab, port: u16) {
    let listener = lab
        .in_far(move || std::net::TcpListener::bind(("::", port)))
        .expect("enter the far namespace")
        .expect("bind the banner port");
    listener.set_nonblocking(true).expect("non-blocking");
    std::thread::spawn(move || {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut served = 0;
        while served < 16 && std::time::Instant::now() < end {
            match listener.accept() {
                Ok((mut client, _)) => {
                    use std::io::Write;
                    let _ = client.set_nonblocking(false);
                    let _ = client.write_all(BANNER.as_bytes());
                    served += 1;
                    // Kept open until the scanner closes it (or the namespace goes).
                    std::thread::spawn(move || {
                        let _ = client.set_read_timeout(Some(std::time::Duration::from_secs(20)));
                        let _ = std::io::Read::read(&mut client, &mut [0u8; 64]);
                    });
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    });
}

/// What [`serve_banner`] sends.
const BANNER: &str = "SSH-2.0-OpenSSH_9.2p1 netkit-lab\r\n";

/// `--banner` waited a fixed second for a service to speak, counted from the connect: behind
/// a 1.2 s round trip the banner, sent when the server has the handshake's last ACK, arrives a
/// round trip after the connect completes, so every banner was missed (the port reported open
/// without one) where nmap -sV reads it (its NULL probe waits 6 s) and names the service ssh.
#[test]
fn banners_were_missed_behind_a_long_round_trip() {
    if !privileged("banners_were_missed_behind_a_long_round_trip") {
        return;
    }
    let lab = Lab::builder("regbanner")
        .delay(ms(600))
        .host(SLOW_HOST)
        .build()
        .expect("lab");
    serve_banner(&lab, 2222);
    nmap_reads_the_banner(&lab, SLOW_HOST);
    netkit_reads_the_banner(&lab, SLOW_HOST, &[]);
}

/// `--banner` gave up on a service whose handshake needed repair: where the handshake's last
/// ACK is lost (the far side drops each connection's second and third packets here), the
/// server repeats its SYN-ACK after 1 s and 3 s and speaks only once an ACK gets through, at
/// about 3 s; netkit waited 1 s and two round trips, and reported the port without its banner
/// (connect scan and `--syn` alike) where nmap -sV reads it (its NULL probe waits 6 s). At 30%
/// loss each way that was a third of the banners.
#[test]
fn banners_were_missed_when_the_handshake_s_last_ack_was_lost() {
    if !privileged("banners_were_missed_when_the_handshake_s_last_ack_was_lost") {
        return;
    }
    let v6 = "2001:db8:1::5";
    let lab = Lab::builder("regbanack")
        .delay(ms(50))
        .host(SLOW_HOST)
        .host(v6)
        .build()
        .expect("lab");
    serve_banner(&lab, 2222);
    let drop_acks = "-A INPUT -p tcp --dport 2222 -m connbytes --connbytes 2:3 \
                     --connbytes-dir original --connbytes-mode packets -j DROP";
    for tables in ["iptables", "ip6tables"] {
        let mut rule = lab.far_cmd(tables);
        rule.args(drop_acks.split_whitespace());
        let (code, _, err) = text(&rule.output().expect("iptables"));
        assert_eq!(code, 0, "{tables}: {err}");
    }
    for host in [SLOW_HOST, v6] {
        nmap_reads_the_banner(&lab, host);
        netkit_reads_the_banner(&lab, host, &[]);
        netkit_reads_the_banner(&lab, host, &["--syn"]);
    }
}

/// Asserts that nmap -sV (its NULL probe) reads [`serve_banner`]'s port 2222 on `host`.
fn nmap_reads_the_banner(lab: &Lab, host: &str) {
    let mut nmap = lab.scanner_cmd("nmap");
    nmap.args(["-sV", "--version-intensity", "0", "-n", "-Pn", "-p", "2222"]);
    if host.contains(':') {
        nmap.arg("-6");
    }
    let (_, out, err) = text(&nmap.arg(host).output().expect("run nmap"));
    assert!(
        out.contains("2222/tcp open  ssh "),
        "nmap {host}: {out}{err}"
    );
}

/// Asserts that `netkit scan --banner` (with `extra`) reads [`serve_banner`]'s port 2222 on
/// `host`.
fn netkit_reads_the_banner(lab: &Lab, host: &str, extra: &[&str]) {
    let mut args = vec![host, "-p", "2222", "--banner"];
    args.extend_from_slice(extra);
    let scan = scan(lab, &args);
    assert_eq!(scan.open.len(), 1, "{host} {extra:?}: {:?}", scan.open);
    let banner = scan.open[0].banner.as_deref();
    assert_eq!(
        banner,
        Some(BANNER.trim_end()),
        "{host} {extra:?}: {:?}",
        scan.open
    );
}

/// Behind a firewall that drops SYNs above 10 a second (5 ms each way, 200 ports, 5 open),
/// nmap -sT found the 5 open ports and 195 closed in 34-36 s; netkit found 2-4 open and called
/// 27-33 ports filtered in 17-19 s. Its pace was cut to 20/s (the least), then raised by a
/// tenth after every 100 ms without a drop: at 10 answers a second such an interval comes
/// every few answers, and the ten drops a cut needs never came between two raises, so it sent
/// 330 probes a second and ran out of tries.
#[test]
fn open_ports_missed_behind_a_firewall_passing_10_syns_a_second() {
    if !privileged("open_ports_missed_behind_a_firewall_passing_10_syns_a_second") {
        return;
    }
    let lab = syn_limited_host("regsyn10");
    let (nmap_open, grepable) = nmap_open_ports(&lab, &["-sT"]);
    assert_eq!(nmap_open, BTreeSet::from(LIMITED_OPEN), "nmap: {grepable}");
    limited_host_scan(&lab, &[], 1);
}

/// The same firewall and host with raw SYNs (`--syn`), right after nmap -sS -T4 (as the bench
/// runs them): nmap found the 5 open ports; netkit was wrong in 3 of 4 scans in two fresh labs
/// (none of the 5 open ports, 182-193 filtered, in 0.8-2.2 s). The firewall passed about 1 of
/// its 400 SYNs in each tenth of a second, and nothing told: the answers were mostly to first
/// tries (too few drops to cut the pace), and the timing probes it sent when the host fell
/// silent were the first probe of a burst, which the firewall's token bucket passes (4 of 6
/// answered). Timing probes now also go after every 50-100 probes, counted, not timed.
#[test]
fn open_ports_missed_by_a_syn_scan_behind_a_firewall_passing_10_syns_a_second() {
    let name = "open_ports_missed_by_a_syn_scan_behind_a_firewall_passing_10_syns_a_second";
    if !privileged(name) {
        return;
    }
    let lab = syn_limited_host("regsynraw10");
    let (nmap_open, grepable) = nmap_open_ports(&lab, &["-sS", "-T4"]);
    assert!(
        nmap_open.is_subset(&BTreeSet::from(LIMITED_OPEN)),
        "nmap: {grepable}"
    );
    limited_host_scan(&lab, &["--syn"], 2);
}

/// Audit (2026-12-05, nmap -sS as the reference): ports 1001-1036 of one host behind a
/// firewall passing 20 SYNs a second (burst 5), 33 of them dropping probes and 3 open (1008,
/// 1021, 1036). `--syn` found 1 of the 3 on every scan (71 probes, 2.6 s), as nmap -sS finds 1
/// or 2: nothing but the open ports ever answers, so no loss showed and a silent port got two
/// tries; each round of tries left in one burst, in the same order, of which the firewall
/// passed the first five; and the one timing probe (to the open port found) led a burst and
/// was answered. Timing probes now go amid bursts, their loss raises the retry budget of a
/// host whose answers are too few to show loss and paces it, and retries leave in a random
/// order. The connect scan is checked too.
#[test]
fn open_ports_among_dropped_ones_missed_behind_a_firewall_passing_20_syns_a_second() {
    let name = "open_ports_among_dropped_ones_missed_behind_a_firewall_passing_20_syns_a_second";
    if !privileged(name) {
        return;
    }
    let open: BTreeSet<u16> = BTreeSet::from(POLICED_OPEN);
    let lab = Lab::builder("regsynlim")
        .host(SLOW_HOST)
        .open(SLOW_HOST, &POLICED_OPEN)
        .drop_ports(SLOW_HOST, 1001..=1007)
        .drop_ports(SLOW_HOST, 1009..=1020)
        .drop_ports(SLOW_HOST, 1022..=1035)
        .syn_limit(20)
        .build()
        .expect("lab");
    let nmap = lab
        .scanner_cmd("nmap")
        .args([
            "-n",
            "-Pn",
            "-sS",
            "-T4",
            "-p",
            "1001-1036",
            SLOW_HOST,
            "-oG",
            "-",
        ])
        .output()
        .expect("nmap");
    let grepable = String::from_utf8_lossy(&nmap.stdout).into_owned();
    let states = crate::lab::peers::nmap_states(&grepable);
    let nmap_open: BTreeSet<u16> = (states.iter().filter(|(_, s)| *s == "open"))
        .map(|(p, _)| *p)
        .collect();
    // nmap -sS finds some of them (1 or 2 in the audit), never another port.
    assert!(nmap_open.is_subset(&open), "nmap: {grepable}");
    eprintln!("nmap -sS -T4 found {nmap_open:?} of {open:?}");
    for extra in [&["--syn"][..], &["--syn"], &[]] {
        let mut args = vec![SLOW_HOST, "-p", "1001-1036"];
        args.extend_from_slice(extra);
        let got = scan(&lab, &args);
        let ports: BTreeSet<u16> = got.found().iter().map(|a| a.port()).collect();
        let s = &got.summary;
        assert_eq!(
            ports, open,
            "{extra:?}: {s:?} (nmap -sS found {nmap_open:?})"
        );
        assert_eq!((s.closed, s.filtered), (0, 33), "{extra:?}: {s:?}");
    }
}

/// The open ports of the host behind the 20 SYNs a second firewall, at positions 7, 20 and 35
/// of ports 1001-1036.
const POLICED_OPEN: [u16; 3] = [1008, 1021, 1036];

/// The open ports of [`syn_limited_host`].
const LIMITED_OPEN: [u16; 5] = [22, 80, 111, 143, 199];

/// One host behind a firewall that drops SYNs above 10 a second, 5 ms each way, with
/// [`LIMITED_OPEN`] listening among ports 1-200.
fn syn_limited_host(tag: &str) -> Lab {
    Lab::builder(tag)
        .delay(ms(5))
        .host(SLOW_HOST)
        .open(SLOW_HOST, &LIMITED_OPEN)
        .syn_limit(10)
        .build()
        .expect("lab")
}

/// The open ports `nmap FLAGS` finds among ports 1-200 of the host, and its output.
fn nmap_open_ports(lab: &Lab, flags: &[&str]) -> (BTreeSet<u16>, String) {
    let nmap = lab
        .scanner_cmd("nmap")
        .args(["-n", "-Pn"])
        .args(flags)
        .args(["-p", "1-200", SLOW_HOST, "-oG", "-"])
        .output()
        .expect("nmap");
    let grepable = String::from_utf8_lossy(&nmap.stdout).into_owned();
    let states = crate::lab::peers::nmap_states(&grepable);
    let open = states.iter().filter(|(_, s)| *s == "open").map(|(p, _)| *p);
    (open.collect(), grepable)
}

/// Scans ports 1-200 of [`syn_limited_host`] `rounds` times in a row (`extra` arguments): each
/// exact.
fn limited_host_scan(lab: &Lab, extra: &[&str], rounds: u32) {
    let mut args = vec![SLOW_HOST, "-p", "1-200"];
    args.extend_from_slice(extra);
    for round in 1..=rounds {
        let got = scan(lab, &args);
        let ports: BTreeSet<u16> = got.found().iter().map(|a| a.port()).collect();
        let s = &got.summary;
        assert_eq!(ports, BTreeSet::from(LIMITED_OPEN), "round {round}: {s:?}");
        assert_eq!((s.closed, s.filtered), (195, 0), "round {round}: {s:?}");
    }
}

/// Eight hosts behind one firewall that drops SYNs above 10 a second per source (ports 20-50,
/// 4 open over three hosts, 5 ms each way): nmap -sT found the 4 open ports in 25 s (but not
/// always under load: netkit must find all it finds, and the lab's truth); netkit
/// found 0-2 and called 177-229 ports filtered in 2-8 s. Each host got two or three answers,
/// too few to measure the loss itself, so its silent ports had two tries, and were filtered
/// as soon as the host had nothing in flight, before the loss pooled over the scan (which
/// asked for 21 tries) could give them more.
#[test]
fn ports_filtered_on_hosts_sharing_a_firewall_passing_10_syns_a_second() {
    if !privileged("ports_filtered_on_hosts_sharing_a_firewall_passing_10_syns_a_second") {
        return;
    }
    shared_syn_limit_scan("regsyn10x8", "-sT", &[]);
}

/// The same with raw SYNs (`--syn`) against nmap -sS (-T4 found 3 of the 4 open ports in
/// 17-19 s): netkit found none and called 211-236 ports filtered in 1-4 s. Its SYNs all left
/// in the first second, faster than the firewall's 10 a second; the few ports that answered
/// showed too few drops (retransmissions answered) to slow the scan down, and every port's
/// tries were spent before twenty had answered. The probes that tell are the timing probes, to
/// ports that answered before: behind the firewall nearly all of them are lost.
#[test]
fn open_ports_missed_by_a_syn_scan_of_hosts_sharing_a_firewall_passing_10_syns_a_second() {
    let name =
        "open_ports_missed_by_a_syn_scan_of_hosts_sharing_a_firewall_passing_10_syns_a_second";
    if !privileged(name) {
        return;
    }
    shared_syn_limit_scan("regsynraw10x8", "-sS", &["--syn"]);
}

/// Scans ports 20-50 of 198.18.1.0/29 behind one 10 SYNs a second limit, with nmap (`nmap_scan`:
/// -sT or -sS) and netkit (`extra` arguments): netkit finds the lab's truth, every open port
/// nmap finds, and no filtered port.
fn shared_syn_limit_scan(tag: &str, nmap_scan: &str, extra: &[&str]) {
    let lab = Lab::builder(tag)
        .delay(ms(5))
        .hosts("198.18.1.0/29")
        .open("198.18.1.1", &[22])
        .open("198.18.1.3", &[22, 25])
        .open("198.18.1.6", &[50])
        .syn_limit(10)
        .build()
        .expect("lab");
    let want: BTreeSet<SocketAddr> = ["198.18.1.1:22", "198.18.1.3:22", "198.18.1.3:25"]
        .into_iter()
        .chain(["198.18.1.6:50"])
        .map(|a| a.parse().expect("address"))
        .collect();
    let nmap = lab
        .scanner_cmd("nmap")
        .args([
            "-n",
            "-Pn",
            nmap_scan,
            "-T4",
            "-p",
            "20-50",
            "198.18.1.0/29",
            "-oG",
            "-",
        ])
        .output()
        .expect("nmap");
    let grepable = String::from_utf8_lossy(&nmap.stdout);
    let nmap_open: BTreeSet<SocketAddr> = grepable
        .lines()
        .filter_map(|l| Some((l.split_whitespace().nth(1)?, l.split("Ports: ").nth(1)?)))
        .flat_map(|(host, ports)| {
            let open = crate::lab::peers::nmap_states(&format!("Ports: {ports}"));
            open.into_iter()
                .filter(|(_, state)| state == "open")
                .map(move |(port, _)| SocketAddr::new(host.parse().expect("host"), port))
        })
        .collect();
    let mut args = vec!["198.18.1.0/29", "-Pn", "-p", "20-50"];
    args.extend_from_slice(extra);
    let got = scan(&lab, &args);
    let s = &got.summary;
    let found = got.found();
    assert_eq!(found, want, "open ports: {s:?}");
    let nmap_only: Vec<_> = nmap_open.difference(&found).collect();
    assert!(nmap_only.is_empty(), "found by nmap only: {nmap_only:?}");
    assert_eq!((s.closed, s.filtered), (8 * 31 - 4, 0), "{s:?}");
}

/// Audit (SYN-ACKs lost several times over): a SYN scan sent its tries from four source ports
/// in turn, so a port's fifth try left from the port of its first. When the SYN-ACKs of the
/// first four tries were lost, the target still held their half-open connections, and it drops
/// a SYN with a new sequence number on one of them (Linux answers with a bare ACK): tries five
/// to eight were lost whatever the network did, until the target's own SYN-ACK sent again a
/// second later. Here port 100 + n loses the first n SYN-ACKs it sends (n = 1 to 5, and 4
/// twice); netkit found 101-103 open and 104-106 filtered, v4 and v6 alike, where nmap -sS
/// (which sends each try from a port of its own) found all six. Each try now has its own port.
#[test]
fn syn_scan_missed_open_ports_whose_syn_acks_were_lost_four_times() {
    if !privileged("syn_scan_missed_open_ports_whose_syn_acks_were_lost_four_times") {
        return;
    }
    let open = [101, 102, 103, 104, 105, 106];
    let lost = [1, 2, 3, 4, 4, 5];
    let hosts = ["198.18.1.5", "2001:db8:1::5"];
    let lab = Lab::builder("regsynack4")
        .delay(ms(5))
        .hosts_listening(&hosts, &open)
        .build()
        .expect("lab");
    for iptables in ["iptables", "ip6tables"] {
        for (port, lost) in open.iter().zip(lost) {
            drop_first_syn_acks(&lab, iptables, *port, lost);
        }
    }
    for host in hosts {
        let addr: IpAddr = host.parse().expect("address");
        let want: BTreeSet<SocketAddr> = open.iter().map(|&p| SocketAddr::new(addr, p)).collect();
        let got = scan(&lab, &[host, "--syn", "-p", "1-200"]);
        assert_eq!(got.found(), want, "open ports of {host}: {:?}", got.summary);
    }
}

/// Audit (nmap -sS as the oracle): a port whose first three SYN-ACKs are lost, on a host whose
/// closed ports all answer at once, so that no loss shows and a silent port gets two tries.
/// netkit --syn called it filtered within 0.2 s; nmap -sS, still running a second later, took
/// the target's own retransmission of a SYN-ACK and found it open. A SYN scan now waits for
/// that retransmission before calling a port filtered.
#[test]
fn syn_scan_called_a_port_filtered_before_the_targets_syn_ack_retransmission() {
    if !privileged("syn_scan_called_a_port_filtered_before_the_targets_syn_ack_retransmission") {
        return;
    }
    open_after_the_targets_syn_ack_retransmission("regsynrtx", &["--syn"]);
}

/// The connect scan in the same scenario (nmap -sT as the oracle): its sockets closed at
/// 900 ms, before the target's own retransmission of the SYN-ACK, so the port that answered
/// only then was called filtered. A port's last connect now stays open for it too.
#[test]
fn connect_scan_called_a_port_filtered_before_the_targets_syn_ack_retransmission() {
    if !privileged("connect_scan_called_a_port_filtered_before_the_targets_syn_ack_retransmission")
    {
        return;
    }
    open_after_the_targets_syn_ack_retransmission("regconrtx", &[]);
}

/// Scans ports 1-200 of a v4 and a v6 host (`args` added) whose port 101 is open but loses its
/// first three SYN-ACKs, and asserts that it is found open on both.
fn open_after_the_targets_syn_ack_retransmission(tag: &str, args: &[&str]) {
    let hosts = ["198.18.1.5", "2001:db8:1::5"];
    let lab = Lab::builder(tag)
        .delay(ms(5))
        .hosts_listening(&hosts, &[101])
        .build()
        .expect("lab");
    for iptables in ["iptables", "ip6tables"] {
        drop_first_syn_acks(&lab, iptables, 101, 3);
    }
    for host in hosts {
        let addr: IpAddr = host.parse().expect("address");
        let want = BTreeSet::from([SocketAddr::new(addr, 101)]);
        let mut scan_args = vec![host, "-p", "1-200"];
        scan_args.extend_from_slice(args);
        let got = scan(&lab, &scan_args);
        assert_eq!(got.found(), want, "open ports of {host}: {:?}", got.summary);
    }
}

/// Makes the far host drop the first `lost` SYN-ACKs that `port` sends (whatever the
/// connection: a hashlimit bucket of `lost` tokens that never refills).
fn drop_first_syn_acks(lab: &Lab, iptables: &str, port: u16, lost: u32) {
    drop_first_replies(lab, iptables, port, "SYN,ACK", lost);
}

/// Makes the far host drop the first `lost` packets `port` sends with these TCP `flags` set
/// (`SYN,ACK`, `RST`), whatever the connection: a hashlimit bucket of `lost` tokens that never
/// refills.
fn drop_first_replies(lab: &Lab, iptables: &str, port: u16, flags: &str, lost: u32) {
    let (sport, burst) = (port.to_string(), lost.to_string());
    let name = format!("{}{port}", flags.replace(',', "").to_lowercase());
    let rule = [
        "-A",
        "OUTPUT",
        "-p",
        "tcp",
        "--sport",
        &sport,
        "--tcp-flags",
        flags,
        flags,
        "-m",
        "hashlimit",
        "--hashlimit-mode",
        "srcport",
        "--hashlimit-upto",
        "1/hour",
        "--hashlimit-burst",
        &burst,
        "--hashlimit-name",
        &name,
        "-j",
        "DROP",
    ];
    let added = lab
        .far_cmd(iptables)
        .args(rule)
        .output()
        .expect("run iptables");
    assert!(added.status.success(), "{iptables}: {added:?}");
}

/// A host that answered nothing — no probe of any port, no discovery probe — exited 0 ("every
/// port got its state"), where SPEC's exit table says 1 for a silent host (as `sweep` and
/// `ping` do). nmap, in the same run, is the oracle for which host is silent: its ICMP echo and
/// SYN discovery calls that one down and the others up. A host whose ports a firewall rejects
/// with ICMP errors answered (exit 0), and so did one that answered discovery.
#[test]
fn a_silent_host_exited_0() {
    if !privileged("a_silent_host_exited_0") {
        return;
    }
    const LIVE: &str = "198.18.1.5";
    const SILENT: &str = "198.18.1.6";
    const REJECTING: &str = "198.18.1.7";
    let lab = Lab::builder("regsilent")
        .host(LIVE)
        .open(LIVE, &[22])
        .host(SILENT)
        .drop_ports(SILENT, 1..=65535)
        .no_echo(SILENT)
        .host(REJECTING)
        .reject(REJECTING, 1..=65535, Reject::AdminProhibited)
        .no_echo(REJECTING)
        .build()
        .expect("lab");
    let nmap = lab
        .scanner_cmd("nmap")
        .args(["-n", "-sn", "-PE", "-PS22", LIVE, SILENT, "-oG", "-"])
        .output()
        .expect("nmap");
    let grepable = String::from_utf8_lossy(&nmap.stdout);
    assert!(
        grepable.contains(&format!("Host: {LIVE} ()\tStatus: Up")),
        "{grepable}"
    );
    assert!(
        !grepable.contains(&format!("Host: {SILENT} ()")),
        "{grepable}"
    );
    let quick = ["-p", "20-29", "--timeout", "300ms", "--retries", "1"];
    // (targets, extra flags, exit status, silent hosts, hosts found down)
    let cases: [(&str, &[&str], i32, u64, u64); 5] = [
        (SILENT, &[], 1, 1, 0),
        (REJECTING, &[], 0, 0, 0),
        ("198.18.1.5-7", &["-Pn"], 1, 1, 0),
        ("198.18.1.5,198.18.1.7", &["-Pn"], 0, 0, 0),
        ("198.18.1.5-6", &["--discovery", "icmp"], 1, 0, 1),
    ];
    for (targets, extra, want, silent, down) in cases {
        let mut cmd = lab.netkit();
        cmd.args(["--json", "scan", targets])
            .args(quick)
            .args(extra);
        let (code, stdout, stderr) = run_within(cmd, LAB_PATIENCE);
        assert_eq!(code, want, "{targets} {extra:?}\n{stdout}{stderr}");
        let s = parse_scan(&stdout).summary;
        assert_eq!(
            (s.silent, s.down),
            (silent, down),
            "{targets} {extra:?}: {s:?}"
        );
    }
    let mut cmd = lab.netkit();
    cmd.args(["scan", SILENT]).args(quick);
    let (code, stdout, stderr) = run_within(cmd, LAB_PATIENCE);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("10 filtered, 1 host silent"), "{stdout}");
}

/// `--seed x` said Rust's own `invalid digit found in string`, naming neither the flag nor
/// what it takes; and an argument clap refuses for a conflict was cut at its first line
/// (`... cannot be used with:`, and nothing after).
#[test]
fn seed_and_conflict_errors_said_rusts_words_or_were_cut_short() {
    let run = |args: &[&str]| text(&crate::harness::netkit().args(args).output().expect("run"));
    let (code, _, stderr) = run(&["scan", "127.0.0.1", "-p", "9", "--seed", "x"]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        stderr,
        "netkit: x: seed must be a whole number from 0 to 18446744073709551615\n"
    );
    let (code, _, stderr) = run(&[
        "forward",
        "--config",
        "/nonexistent.toml",
        "0",
        "127.0.0.1:9",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        stderr,
        "netkit: --config: cannot be used with LISTEN, TARGET\n"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// Ctrl-C during a scan of two hosts, one done (every port closed) and one still waiting on
/// silence: the XML and grepable files left the finished host out ("0 hosts up": a host was
/// written only if it had an open port), while the text and JSON summaries counted its 2000
/// closed ports; and the summary line did not say how many ports the interruption left
/// without a state. Each document now has every host with the ports that got one.
#[test]
fn an_interrupted_scan_left_a_finished_host_out_of_the_files() {
    if !privileged("an_interrupted_scan_left_a_finished_host_out_of_the_files") {
        return;
    }
    let ns = crate::scan_output::silent_neighbour("sxint");
    let dir = tempfile::tempdir().unwrap();
    let (xml, grepable) = (dir.path().join("scan.xml"), dir.path().join("scan.gnmap"));
    let mut cmd = ns.netkit();
    cmd.args(["scan", "127.0.0.1,198.18.0.5", "-Pn", "-p", "1-2000", "-oX"])
        .arg(&xml)
        .arg("-oG")
        .arg(&grepable);
    let scan = crate::harness::Proc::spawn(cmd);
    // Loopback's 2000 ports are refused at once; the silent neighbour's take their timeouts.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let (code, stdout, stderr) = scan.stop("INT");
    assert_eq!(code, 130, "{stdout}{stderr}");
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        summary.contains("(interrupted): 0 open, 2000 closed, 0 filtered, 2000 not probed"),
        "{stdout}"
    );
    let doc = std::fs::read_to_string(&xml).unwrap();
    assert!(doc.contains("<address addr=\"127.0.0.1\""), "{doc}");
    assert!(
        doc.contains("<extraports state=\"closed\" count=\"2000\">"),
        "{doc}"
    );
    assert!(
        doc.contains("<hosts up=\"1\" down=\"0\" total=\"1\"/>"),
        "{doc}"
    );
    let lines = std::fs::read_to_string(&grepable).unwrap();
    assert!(lines.contains("Host: 127.0.0.1 ()\tStatus: Up"), "{lines}");
}

/// Host discovery kept its answers by address alone: `fe80::3%vC` (on the second link) and
/// `fe80::3%vA` (nobody) came out both up, the second with its port filtered and the scan's
/// exit 0 — `nmap -6 -sn -PE` finds one of the two up in the same run. Its JSON `host` named
/// neither zone.
#[test]
fn discovery_took_one_zones_answer_for_another() {
    if !privileged("discovery_took_one_zones_answer_for_another") {
        return;
    }
    let (near, _b, _d) = crate::endpoint_zones::two_links("regscanzone");
    let targets = ["fe80::3%vC", "fe80::3%vA"];
    let out = near
        .command("nmap")
        .args(["-6", "-sn", "-n", "-PE", "-oG", "-"])
        .args(targets)
        .output()
        .expect("run nmap");
    let (_, nmap_out, _) = text(&out);
    assert!(
        nmap_out.contains("2 IP addresses (1 host up)"),
        "nmap: {nmap_out}"
    );
    let out = near
        .netkit()
        .args(["--json", "scan", "--discovery", "icmp", "-p", "22"])
        .args(targets)
        .output()
        .expect("run netkit");
    let (code, stdout, stderr) = text(&out);
    let hosts: BTreeSet<(String, String)> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|r| r["type"] == "host")
        .map(|r| (r["host"].to_string(), r["status"].to_string()))
        .collect();
    let expected = BTreeSet::from([
        ("\"fe80::3%vA\"".to_string(), "\"down\"".to_string()),
        ("\"fe80::3%vC\"".to_string(), "\"up\"".to_string()),
    ]);
    assert_eq!(hosts, expected, "{stdout}{stderr}");
    assert_eq!(code, 1, "a host down: {stderr}");
}

/// A link-local target without its zone failed with `netkit: scan [fe80::2]:22: invalid
/// argument` and exit 3 (the environment's fault); it is bad input, named, exit 2, as `wait`,
/// `send` and `forward` say it.
#[test]
fn a_link_local_target_without_a_zone_was_called_the_environments_fault() {
    for args in [
        &["scan", "-p", "22", "fe80::2"][..],
        &["scan", "--syn", "-p", "22", "fe80::2"],
    ] {
        let (code, _, stderr) = text(&crate::harness::run(args));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("netkit: fe80::2: a link-local address needs its interface"),
            "{stderr}"
        );
    }
}

/// An output file the user may not create (`-oX` into a directory of root's, as nobody) was
/// blamed on capabilities: `run as root or grant the needed capability (CAP_NET_BIND_SERVICE
/// ..., CAP_NET_RAW ...)`, none of which has anything to do with a file.
#[test]
fn a_file_it_may_not_write_was_blamed_on_capabilities() {
    if !privileged("a_file_it_may_not_write_was_blamed_on_capabilities") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("nk-rofile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("scan.xml");
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_netkit"))
        .args(["scan", "127.0.0.1", "-p", "9", "-oX"])
        .arg(&file)
        .output()
        .expect("run setpriv");
    let (code, _, stderr) = text(&out);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("permission denied; this user may not write that file"),
        "{stderr}"
    );
    assert!(!stderr.contains("CAP_"), "{stderr}");
}

/// On a directly connected link, a host that drops every IP packet was reported down and not
/// scanned: the default discovery sent only IP probes. nmap finds it up by ARP (`-PR`, its
/// choice for on-link targets whatever else is asked) and scans its ports (filtered); so
/// does netkit now, in the same run.
#[test]
fn discovery_missed_an_on_link_host_that_drops_ip() {
    if !privileged("discovery_missed_an_on_link_host_that_drops_ip") {
        return;
    }
    let (near, far) = crate::ping_net::two_hosts("regscanarp");
    crate::ping_net::iptables(&far, &["-P", "INPUT", "DROP"]);
    let targets = ["198.18.0.2", "198.18.0.3"];
    let out = near
        .command("nmap")
        .args(["-sS", "-n", "-p", "22", "-oG", "-"])
        .args(targets)
        .output()
        .expect("run nmap");
    let (_, nmap_out, _) = text(&out);
    assert!(
        nmap_out.contains("Host: 198.18.0.2 ()\tPorts: 22/filtered/tcp"),
        "nmap: {nmap_out}"
    );
    assert!(nmap_out.contains("(1 host up)"), "nmap: {nmap_out}");
    let out = near
        .netkit()
        .args(["--json", "scan", "--syn", "-p", "22"])
        .args(targets)
        .output()
        .expect("run netkit");
    let (_, stdout, stderr) = text(&out);
    let hosts: BTreeSet<(String, String, String)> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|r| r["type"] == "host")
        .map(|r| {
            (
                r["host"].to_string(),
                r["status"].to_string(),
                r["by"].to_string(),
            )
        })
        .collect();
    let expected = BTreeSet::from([
        (
            "\"198.18.0.2\"".to_string(),
            "\"up\"".to_string(),
            "\"arp\"".to_string(),
        ),
        (
            "\"198.18.0.3\"".to_string(),
            "\"down\"".to_string(),
            "null".to_string(),
        ),
    ]);
    assert_eq!(hosts, expected, "{stdout}{stderr}");
    // -oX: each host's reason and MAC address as nmap gives them, this host's own address
    // (answered by itself: `localhost-response`, no MAC) too.
    let targets = ["198.18.0.1", "198.18.0.2"];
    let xml_lines = |xml: &str| -> Vec<String> {
        let body = xml.split("</hosthint>").last().unwrap_or_default();
        body.lines()
            .filter(|l| l.contains("<status") || l.contains("<address"))
            .map(|l| l.split("<status").last().unwrap_or_default().to_string())
            .collect()
    };
    let nmap = near
        .command("nmap")
        .args(["-sS", "-n", "-p", "22", "-oX", "-"])
        .args(targets)
        .output()
        .expect("run nmap");
    let netkit = near
        .netkit()
        .args(["scan", "--syn", "-p", "22", "-oX", "-"])
        .args(targets)
        .output()
        .expect("run netkit");
    let (nmap_xml, netkit_xml) = (text(&nmap).1, text(&netkit).1);
    assert!(
        xml_lines(&nmap_xml)
            .iter()
            .any(|l| l.contains("localhost-response")),
        "nmap: {nmap_xml}"
    );
    assert_eq!(
        xml_lines(&netkit_xml),
        xml_lines(&nmap_xml),
        "{netkit_xml}\n{nmap_xml}"
    );
}

/// Router firewall rules, one per `(iptables, host, port, kind)`: TCP to that port of that
/// host is rejected with that ICMP kind (`--reject-with`).
fn router_rejects(lab: &Lab, rules: &[(&str, &str, &str, &str)]) {
    for (iptables, host, port, kind) in rules {
        let rule = ["-A", "FORWARD", "-p", "tcp", "-d", host, "--dport", port];
        let added = lab
            .router_cmd(iptables)
            .args(rule)
            .args(["-j", "REJECT", "--reject-with", kind])
            .output()
            .expect("run iptables");
        assert!(added.status.success(), "{iptables}: {added:?}");
    }
}

/// `nmap -n -Pn -sS --reason -p PORTS -oX -` of `host` from the lab's scanner: the document.
fn nmap_syn_xml(lab: &Lab, host: &str, ports: &str) -> String {
    let nmap = lab
        .scanner_cmd("nmap")
        .args(["-n", "-Pn", "-sS", "--reason", "-p", ports, "-oX", "-"])
        .args(host.contains(':').then_some("-6"))
        .arg(host)
        .output()
        .expect("nmap");
    String::from_utf8_lossy(&nmap.stdout).into_owned()
}

/// Audit (per-port rejects): a router whose firewall rejects one port of a host with ICMP
/// host unreachable (and another with network unreachable) made the whole host
/// "unreachable": an error, exit 1, and the ports not yet answered (an open one among them)
/// never reported — the connect scan and `--syn`, v4 and v6 alike. nmap -sS, in the same
/// lab, calls those two ports filtered (`host-unreach`, `net-unreach`; v6 `no-route`) and
/// the others as they answer. An ICMP no-route from a router now decides only its port once
/// the host has answered anything; a host that answers nothing else is still unreachable.
#[test]
fn a_routers_host_unreachable_for_one_port_made_the_host_unreachable() {
    if !privileged("a_routers_host_unreachable_for_one_port_made_the_host_unreachable") {
        return;
    }
    let hosts = ["198.18.1.5", "2001:db8:1::5"];
    let lab = Lab::builder("regrtrnr")
        .hosts_listening(&hosts, &[22, 8080])
        .build()
        .expect("lab");
    router_rejects(
        &lab,
        &[
            ("iptables", hosts[0], "445", "icmp-host-unreachable"),
            ("iptables", hosts[0], "446", "icmp-net-unreachable"),
            ("ip6tables", hosts[1], "445", "icmp6-addr-unreachable"),
            ("ip6tables", hosts[1], "446", "icmp6-no-route"),
        ],
    );
    let ports = "20-23,440-450,8080";
    for host in hosts {
        let v6 = host.contains(':');
        let nmap_xml = nmap_syn_xml(&lab, host, ports);
        let (host_unreach, net_unreach) = match v6 {
            false => ("host-unreach", "net-unreach"),
            true => ("host-unreach", "no-route"),
        };
        for (port, reason) in [(445, host_unreach), (446, net_unreach)] {
            let want = format!("portid=\"{port}\"><state state=\"filtered\" reason=\"{reason}\"");
            assert!(nmap_xml.contains(&want), "nmap: {want}\n{nmap_xml}");
        }
        for extra in [&[][..], &["--syn"]] {
            let mut cmd = lab.netkit();
            cmd.args(["--json", "scan", host, "-p", ports, "--all-ports"])
                .args(extra);
            let (code, stdout, stderr) = run_within(cmd, LAB_PATIENCE);
            assert_eq!(code, 0, "{host} {extra:?}\n{stdout}{stderr}");
            let states: BTreeSet<(u16, String, String)> = stdout
                .lines()
                .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                .filter(|r| r["type"] == "port" && r["state"] != "closed")
                .map(|r| {
                    let port = r["port"].as_u64().expect("port") as u16;
                    (port, r["state"].to_string(), r["reason"].to_string())
                })
                .collect();
            let quoted = |s: &str| format!("\"{s}\"");
            let want = BTreeSet::from([
                (22, quoted("open"), quoted("syn-ack")),
                (445, quoted("filtered"), quoted(host_unreach)),
                (446, quoted("filtered"), quoted(net_unreach)),
                (8080, quoted("open"), quoted("syn-ack")),
            ]);
            assert_eq!(states, want, "{host} {extra:?}\n{stdout}{stderr}");
            let summary = parse_scan(&stdout).summary;
            assert_eq!(
                (
                    summary.open,
                    summary.closed,
                    summary.filtered,
                    summary.unreachable
                ),
                (2, 12, 2, 0),
                "{host} {extra:?}: {summary:?}"
            );
        }
    }
}

/// The `reason="..."` of each `<status>` of an nmap XML document, in order.
pub(super) fn status_reasons(xml: &str) -> Vec<String> {
    xml.lines()
        .filter_map(|l| l.split("<status ").nth(1))
        .filter_map(|s| s.split("reason=\"").nth(1))
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect()
}

/// Audit (host reasons): a host found up by a discovery connect (`--discovery tcp:PORT`, and
/// the default set's connects) was up by `tcp-response` in -oX and JSON, whether the connect
/// was accepted or refused. nmap -sn -PS, in the same lab, says how it was answered:
/// `syn-ack`; with raw sockets (its raw SYN) `reset`, or `port-unreach` for the target's own
/// ICMP; without (its connect) `conn-refused` for both. netkit, whose probe is a connect
/// either way, now says what nmap says in its place (privileged or not), v4 and v6, in -oX,
/// JSON and the text's `--reason` line.
#[test]
fn discovery_by_a_connect_said_tcp_response_where_nmap_says_how_it_was_answered() {
    if !privileged("discovery_by_a_connect_said_tcp_response_where_nmap_says_how_it_was_answered") {
        return;
    }
    let hosts = ["198.18.1.5", "2001:db8:1::5"];
    let lab = Lab::builder("regscanwhy")
        .hosts_listening(&hosts, &[80])
        .reject(hosts[0], 444, Reject::PortUnreachable)
        .reject(hosts[1], 444, Reject::PortUnreachable)
        .build()
        .expect("lab");
    // Without CAP_NET_RAW: nmap --unprivileged connects, netkit runs without the capability.
    let unprivileged = |program: &str| {
        let mut cmd = lab.scanner_cmd("setpriv");
        cmd.args(["--bounding-set", "-net_raw", "--inh-caps", "-net_raw", "--"])
            .arg(program);
        cmd
    };
    for raw in [true, false] {
        for host in hosts {
            let v6 = host.contains(':');
            for port in ["80", "443", "444"] {
                // nmap --unprivileged, IPv6: its connect ping takes the target's ICMPv6 port
                // unreachable for silence (host down); netkit's reads it (up, conn-refused).
                if !raw && v6 && port == "444" {
                    continue;
                }
                let mut nmap = lab.scanner_cmd("nmap");
                nmap.args(["-n", "-sn", &format!("-PS{port}"), "--reason", "-oX", "-"])
                    .args((!raw).then_some("--unprivileged"))
                    .args(v6.then_some("-6"))
                    .arg(host);
                let nmap = nmap.output().expect("nmap");
                let nmap_xml = String::from_utf8_lossy(&nmap.stdout).into_owned();
                let want = status_reasons(&nmap_xml);
                assert_eq!(want.len(), 1, "nmap {raw} {host} {port}: {nmap_xml}");
                let netkit = |global: &[&str], args: &[&str]| {
                    let mut cmd = match raw {
                        true => lab.netkit(),
                        false => unprivileged(env!("CARGO_BIN_EXE_netkit")),
                    };
                    cmd.args(global)
                        .args(["scan", host, "-p", "22", "--reason"]);
                    cmd.args(args);
                    cmd.args(["--discovery", &format!("tcp:{port}")]);
                    let (code, stdout, stderr) = run_within(cmd, LAB_PATIENCE);
                    assert_eq!(code, 0, "{raw} {host} {port}\n{stdout}{stderr}");
                    stdout
                };
                let json = netkit(&["--json"], &[]);
                let reasons: Vec<String> = json
                    .lines()
                    .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                    .filter(|r| r["type"] == "host")
                    .map(|r| r["reason"].as_str().unwrap_or_default().to_string())
                    .collect();
                assert_eq!(reasons, want, "JSON {raw} {host} {port}\n{json}");
                let xml = netkit(&[], &["-oX", "-"]);
                assert_eq!(status_reasons(&xml), want, "-oX {raw} {host} {port}\n{xml}");
                let human = netkit(&[], &[]);
                let line = format!("{host} is up, received {}", want[0]);
                assert!(
                    human.lines().any(|l| l == line),
                    "text {raw} {host} {port}: {line}\n{human}"
                );
            }
        }
    }
}

/// The value of attribute `name` in an XML element's text.
fn xml_attr(element: &str, name: &str) -> Option<String> {
    let rest = element.split(&format!(" {name}=\"")).nth(1)?;
    rest.split('"').next().map(str::to_string)
}

/// Each `<port>` of an nmap XML document: its number, its state, its reason and the value of
/// the `<state>` element's attribute `extra` (`reason_ip`, `reason_ttl`).
fn xml_ports(xml: &str, extra: &str) -> BTreeSet<(u16, String, String, Option<String>)> {
    xml.split("<port ")
        .skip(1)
        .filter_map(|port| {
            let id = xml_attr(port, "portid")?.parse().ok()?;
            let state = port.split("<state").nth(1)?.split("/>").next()?;
            let (st, why) = (xml_attr(state, "state")?, xml_attr(state, "reason")?);
            Some((id, st, why, xml_attr(state, extra)))
        })
        .collect()
}

/// Each `<port>` of an nmap XML document: port, state, reason and `reason_ip`.
fn xml_port_states(xml: &str) -> BTreeSet<(u16, String, String, Option<String>)> {
    xml_ports(xml, "reason_ip")
}

/// `--syn`'s `-oX` wrote `reason_ttl="0"` for every port, where nmap -sS writes the TTL (IPv6:
/// hop limit) of the answer that gave the port its state: a SYN-ACK or reset one router away
/// `63`, a router's ICMP error `64`. The raw SYN engine reads it now (from the IPv4 header,
/// IPv6's `IPV6_HOPLIMIT` control message) and writes it as nmap does, beside nmap -sS in the
/// same lab, v4 and v6; JSON `ttl`. A silent port stays 0, as nmap's.
#[test]
fn syn_scan_xml_wrote_reason_ttl_0_where_nmap_names_the_answers_ttl() {
    if !privileged("syn_scan_xml_wrote_reason_ttl_0_where_nmap_names_the_answers_ttl") {
        return;
    }
    let hosts = ["198.18.1.5", "2001:db8:1::5"];
    let lab = Lab::builder("regscanpttl")
        .icmp_limits(crate::lab::IcmpLimits::Off)
        .hosts_listening(&hosts, &[22])
        .drop_ports(hosts[0], 24)
        .drop_ports(hosts[1], 24)
        .build()
        .expect("lab");
    router_rejects(
        &lab,
        &[
            ("iptables", hosts[0], "446", "icmp-host-unreachable"),
            ("ip6tables", hosts[1], "446", "icmp6-addr-unreachable"),
        ],
    );
    let ports = "22,23,24,446";
    for host in hosts {
        let nmap_xml = nmap_syn_xml(&lab, host, ports);
        let want = xml_ports(&nmap_xml, "reason_ttl");
        assert_eq!(want.len(), 4, "{nmap_xml}");
        let mut cmd = lab.netkit();
        cmd.args([
            "scan",
            host,
            "-p",
            ports,
            "--syn",
            "--all-ports",
            "-oX",
            "-",
        ]);
        let (code, xml, stderr) = run_within(cmd, LAB_PATIENCE);
        assert_eq!(code, 0, "{host}\n{xml}{stderr}");
        assert_eq!(
            xml_ports(&xml, "reason_ttl"),
            want,
            "{host}\n{xml}\nnmap: {nmap_xml}"
        );
    }
}

/// nmap's XML of a scan whose targets discovery found up names the TTL of the answer that
/// found each (`<status state="up" reason="echo-reply" reason_ttl="63"/>` one router away);
/// scan's `-oX` wrote `reason_ttl="0"` there (sweep's was fixed before). Now the discovery
/// answer's TTL (IPv6: hop limit), beside nmap -sS with the same probe in the same lab; a
/// scan without discovery stays `user-set` with 0, as nmap -Pn writes it.
#[test]
fn scan_xml_wrote_reason_ttl_0_for_a_host_discovery_found_up() {
    if !privileged("scan_xml_wrote_reason_ttl_0_for_a_host_discovery_found_up") {
        return;
    }
    let hosts = ["198.18.1.3", "2001:db8:1::3"];
    let lab = Lab::builder("regscanttl")
        .delay(ms(2))
        .hosts_listening(&hosts, &[22])
        .build()
        .expect("lab");
    for (host, discovery) in hosts.iter().flat_map(|h| [(h, true), (h, false)]) {
        let family = if host.contains(':') { "-6" } else { "-4" };
        let ping = if discovery { "-PE" } else { "-Pn" };
        let nmap = nmap_in(
            &lab,
            &[
                "-sS",
                ping,
                "--send-ip",
                "-p",
                "22",
                "-oX",
                "-",
                family,
                host,
            ],
        );
        let want = status_ttls(&nmap);
        assert_eq!(want.len(), 1, "nmap {ping} {host}: {nmap}");
        let mut cmd = lab.netkit();
        cmd.args(["scan", host, "-p", "22", "--syn", "-oX", "-"]);
        match discovery {
            true => cmd.args(["--discovery", "icmp"]),
            false => cmd.arg("--no-ping"),
        };
        let (code, xml, stderr) = run_within(cmd, LAB_PATIENCE);
        assert_eq!(code, 0, "{host} {ping}\n{xml}{stderr}");
        assert_eq!(
            status_ttls(&xml),
            want,
            "{host} {ping}\n{xml}\nnmap: {nmap}"
        );
    }
}

/// Audit (router refusals): a port a router's firewall refused (ICMP host unreachable,
/// administratively prohibited) was written `<state state="filtered" reason="host-unreach"
/// reason_ttl="0"/>`: nmap -sS, in the same lab, names the router that said it
/// (`reason_ip="198.19.254.1"`, and `host-unreach from 198.19.254.1` in its text). netkit now
/// writes it too (and `reason_ip` in JSON, `from ROUTER` in the text's reason), v4 and v6,
/// connect and `--syn`.
#[test]
fn a_port_refused_by_a_router_lacked_reason_ip() {
    if !privileged("a_port_refused_by_a_router_lacked_reason_ip") {
        return;
    }
    let hosts = ["198.18.1.5", "2001:db8:1::5"];
    // No ICMP rate limit on the router: each of the runs below gets its errors.
    let lab = Lab::builder("regscanrip")
        .icmp_limits(crate::lab::IcmpLimits::Off)
        .hosts_listening(&hosts, &[22])
        .build()
        .expect("lab");
    router_rejects(
        &lab,
        &[
            ("iptables", hosts[0], "446", "icmp-host-unreachable"),
            ("iptables", hosts[0], "447", "icmp-admin-prohibited"),
            ("ip6tables", hosts[1], "446", "icmp6-addr-unreachable"),
            ("ip6tables", hosts[1], "447", "icmp6-adm-prohibited"),
        ],
    );
    let ports = "22,80,446,447";
    for host in hosts {
        let nmap_xml = nmap_syn_xml(&lab, host, ports);
        let want = xml_port_states(&nmap_xml);
        let routers = want.iter().filter(|p| p.3.is_some()).count();
        assert!(routers >= 1, "nmap names the router: {nmap_xml}");
        for extra in [&[][..], &["--syn"]] {
            let mut cmd = lab.netkit();
            cmd.args(["scan", host, "-p", ports, "--reason", "-oX", "-"])
                .args(extra);
            let (code, xml, stderr) = run_within(cmd, LAB_PATIENCE);
            assert_eq!(code, 0, "{host} {extra:?}\n{xml}{stderr}");
            let got = xml_port_states(&xml);
            // A reset is a refused connect to the connect scan.
            let want: BTreeSet<_> = want
                .iter()
                .cloned()
                .map(
                    |(port, state, reason, from)| match (extra.is_empty(), reason.as_str()) {
                        (true, "reset") => (port, state, "conn-refused".to_string(), from),
                        _ => (port, state, reason, from),
                    },
                )
                .collect();
            assert_eq!(got, want, "{host} {extra:?}\n{xml}\n{nmap_xml}");
            let mut cmd = lab.netkit();
            cmd.args(["scan", host, "-p", ports, "--reason"])
                .args(extra);
            let (code, text, stderr) = run_within(cmd, LAB_PATIENCE);
            assert_eq!(code, 0, "{host} {extra:?}\n{text}{stderr}");
            for (port, _, reason, from) in &want {
                let Some(from) = from else { continue };
                let said = format!("{reason} from {from}");
                let line = text.lines().find(|l| l.contains(&format!(" {port}/tcp")));
                assert!(
                    line.is_some_and(|l| l.contains(&said)),
                    "{host} {extra:?} {port}: {said}\n{text}"
                );
            }
        }
    }
}

/// Audit (connect scan, lossless path whose round trips are 0.8-1.6 s): a connect still
/// pending after a second has had its SYN resent by the kernel, so every answer past a second
/// was left out of the round-trip estimate once a shorter one came (Karn's rule). Here one
/// round trip in eight is under a second: the estimate learnt only those, the timeout stayed
/// near 1.1 s, under most round trips, and more than half the ports (534 of 1000, one host,
/// 100 open, 900 closed) were tried again although nothing was lost; the retransmissions
/// answered counted as loss, which gave silent ports more tries (one host with 201 dropped
/// ports took 287 s, `nmap -sT` 92 s). An answer sooner after the resend than half the least
/// round trip seen cannot answer the resent SYN: it is counted now (22 ports tried again).
/// The states are nmap -sT's.
#[test]
fn connect_scan_retried_most_ports_behind_round_trips_over_a_second() {
    if !privileged("connect_scan_retried_most_ports_behind_round_trips_over_a_second") {
        return;
    }
    const HOST: &str = "198.18.1.7";
    let lab = Lab::builder("regkarn")
        .delay(ms(600))
        .jitter(ms(200))
        .host(HOST)
        .open(HOST, 1..=100)
        .build()
        .expect("lab");
    let nmap = lab
        .scanner_cmd("nmap")
        .args(["-n", "-Pn", "-sT", "-p", "1-1000", HOST, "-oG", "-"])
        .output()
        .expect("nmap");
    let grepable = String::from_utf8_lossy(&nmap.stdout);
    let states = peers::nmap_states(&grepable);
    let nmap_open: BTreeSet<u16> = states
        .iter()
        .filter(|(_, state)| *state == "open")
        .map(|(port, _)| *port)
        .collect();
    assert_eq!(nmap_open, (1..=100).collect(), "nmap -sT: {grepable}");
    assert!(
        grepable.contains("Ignored State: closed (900)"),
        "{grepable}"
    );
    let got = scan(&lab, &[HOST, "-p", "1-1000", "--all-ports"]);
    let s = &got.summary;
    assert_eq!((s.open, s.closed, s.filtered), (100, 900, 0), "{s:?}");
    let open: BTreeSet<u16> = got
        .open
        .iter()
        .filter(|p| p.state == netkit::report::scan::PortState::Open)
        .map(|p| p.port)
        .collect();
    assert_eq!(open, nmap_open);
    // The first probes go out before any round trip is known, with a timeout of 0.5 s: they
    // are tried again. Past them, a lossless path needs one try per port.
    let retried = got.open.iter().filter(|p| p.tries > 1).count();
    assert!(retried <= 100, "{retried} of 1000 ports tried again");
}

/// Audit (2026-12-05): at 20% loss each way a connect scan of ports 1-300 (100 open, 100
/// closed, 100 dropped) took 4 to 92 s for the same ~1400 probes. When an answer needed more
/// tries than any before and more than four retransmissions, the host's pace was cut to 0.8
/// times the answers' recent rate, which late in a scan, with mostly silent ports left, is a few
/// dozen a second, and nothing raised it again (a raise needs ten answers in a row). Random loss
/// that the retry budget already covers is no reason to slow down. Here the far side drops the
/// first six resets of port 200, so that it answers a seventh try at the earliest: main cut the
/// host's pace to 56, 8 and 8 probes a second in three runs of three (15-69 s), where nmap -sT
/// in the same lab took 152 s and was exact, nmap -sS 62 s with 4 closed ports filtered (too
/// slow to run here). No pace is timed: the test reads the paces the scan chose.
#[test]
fn an_answer_to_a_seventh_try_at_random_loss_paced_the_scan_down() {
    if !privileged("an_answer_to_a_seventh_try_at_random_loss_paced_the_scan_down") {
        return;
    }
    let lab = Lab::builder("regslowtries")
        .loss(0.2)
        .host(SLOW_HOST)
        .open(SLOW_HOST, 1..=100)
        .drop_ports(SLOW_HOST, 201..=300)
        .build()
        .expect("lab");
    drop_first_replies(&lab, "iptables", 200, "RST", 6);
    let mut cmd = lab.netkit();
    cmd.env("RUST_LOG", "debug")
        .args(["--json", "scan", SLOW_HOST, "-Pn", "-p", "1-300"]);
    let (code, stdout, stderr) = run_within(cmd, LAB_PATIENCE);
    assert_eq!(code, 0, "stdout {stdout}\nstderr {stderr}");
    let s = parse_scan(&stdout).summary;
    // The retry budget keeps the chance of a miss over the scan near 1 % at the loss measured,
    // and port 200 answers a seventh try at the earliest (its first six resets dropped, then
    // 36 % of each try lost): one closed port called filtered is within that design (seen
    // once in a CI run: 100/99/101 in 4.5 s); the paces are what this test is about.
    assert_eq!(s.open, 100, "{s:?}");
    assert!(s.closed >= 99 && s.closed + s.filtered == 200, "{s:?}");
    // "scan ADDR: drops, pacing at N/s": the host's paces cut for drops, the slow tries' cut
    // among them (drop-ratio cuts at this loss stay in the hundreds or thousands a second).
    // Cuts for lost timing probes ("timing probes lost, pacing at") are another matter.
    let paces: Vec<f64> = stderr
        .lines()
        .filter_map(|l| {
            l.split("drops, pacing at ")
                .nth(1)?
                .split('/')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert!(paces.iter().all(|rate| *rate >= 100.0), "paces {paces:?}");
}

/// Audit (2026-12-05, nmap -sT as the oracle): behind a 500 kbit/s link (a tbf: 50 ms of queue,
/// a 6000-byte burst), a connect scan of ports 1-300 (1-100 open, 101-200 closed, 201-300
/// dropped) was exact but took 5-6.5 s and 640-740 probes where nmap -sT took 1.6 s and 400,
/// without a drop. Ports went out in order, and the windows counted only the SYNs in flight,
/// not what each open port's connect puts on the link after its answer (the handshake's ACK,
/// the close's reset, a reset to the server's own close): three packets more per open port, so
/// the first 100 ms carried some 350 packets where the tbf passes about 170, and 25-40 closed
/// ports' first SYNs were dropped. Those drops then shrank the host's window to one probe and
/// raised the retry budget of the dropped ports to 4-5 tries. The windows now hold room for
/// those packets until a probe sent after them is answered. No time is asserted: the test
/// counts the tries (main: 4-5 per dropped port, 33-44 answered ports tried again).
#[test]
fn connect_scan_overflowed_a_500_kbit_link_with_its_own_handshakes() {
    if !privileged("connect_scan_overflowed_a_500_kbit_link_with_its_own_handshakes") {
        return;
    }
    const HOST: &str = "198.18.1.8";
    let lab = Lab::builder("regtbfsyn")
        .rate("500kbit")
        .host(HOST)
        .open(HOST, 1..=100)
        .drop_ports(HOST, 201..=300)
        .build()
        .expect("lab");
    // nmap lists every port in its grepable output with -vvv (100 of a state and more).
    let nmap = lab
        .scanner_cmd("nmap")
        .args(["-n", "-Pn", "-sT", "-vvv", "-p", "1-300", HOST, "-oG", "-"])
        .output()
        .expect("nmap");
    let grepable = String::from_utf8_lossy(&nmap.stdout);
    let nmap_states = peers::nmap_states(&grepable);
    let want = |port: u16| match port {
        1..=100 => "open",
        101..=200 => "closed",
        _ => "filtered",
    };
    let expected: std::collections::BTreeMap<u16, String> =
        (1..=300).map(|p| (p, want(p).to_string())).collect();
    assert_eq!(nmap_states, expected, "nmap -sT: {grepable}");
    let got = scan(&lab, &[HOST, "-Pn", "-p", "1-300", "--all-ports"]);
    let states: std::collections::BTreeMap<u16, String> = got
        .open
        .iter()
        .map(|p| (p.port, p.state.as_str().to_string()))
        .collect();
    assert_eq!(states, nmap_states, "netkit vs nmap -sT");
    let retried: Vec<(u16, u32)> = (got.open.iter())
        .filter(|p| p.port <= 200 && p.tries > 1)
        .map(|p| (p.port, p.tries))
        .collect();
    let most = (got.open.iter()).map(|p| p.tries).max().unwrap_or(0);
    assert!(
        retried.len() <= 10 && most <= 3,
        "answered ports tried again: {retried:?}; most tries of a port: {most}"
    );
}

/// Audit (randomized differential, stop 43): a target given twice (`ADDR ADDR`, or a block and
/// an address inside it) is scanned twice, as nmap scans it, and JSON Lines got two host records
/// of the right counts — but `-oG`/`-oX` pooled both scans' ports into one tally and wrote it
/// for each: `Ignored State: closed (76)` twice for 40 ports where nmap -sT, in the same lab,
/// writes `closed (38)` twice (the text listed the few closed and filtered ports of the two
/// scans under one host as well). Each scan of the address now has its own tally.
#[test]
fn a_target_given_twice_pooled_both_scans_ports_in_the_nmap_formats() {
    if !privileged("a_target_given_twice_pooled_both_scans_ports_in_the_nmap_formats") {
        return;
    }
    let host = "198.18.1.9";
    let lab = Lab::builder("twice")
        .delay(ms(2))
        .host(host)
        .open(host, &[22])
        .drop_ports(host, 25..=25)
        .build()
        .expect("lab");
    // The grepable lines of each host, the header and footer (dates, command line) left out.
    let hosts = |gnmap: &str| -> Vec<String> {
        gnmap
            .lines()
            .filter(|l| l.starts_with("Host: "))
            .map(str::to_string)
            .collect()
    };
    let nmap = lab
        .scanner_cmd("nmap")
        .args(["-n", "-Pn", "-sT", "-p", "1-40", "-oG", "-", host, host])
        .output()
        .expect("nmap");
    let nmap = hosts(&String::from_utf8_lossy(&nmap.stdout));
    let mut cmd = lab.netkit();
    cmd.args(["scan", "-Pn", "-p", "1-40", "-oG", "-", host, host]);
    let (code, stdout, stderr) = run_within(cmd, LAB_PATIENCE);
    assert_eq!(code, 0, "stdout {stdout}\nstderr {stderr}");
    let ports = format!(
        "Host: {host} ()\tPorts: 22/open/tcp//ssh///, 25/filtered/tcp//smtp///\t\
         Ignored State: closed (38)"
    );
    let status = format!("Host: {host} ()\tStatus: Up");
    let twice = [status.clone(), ports.clone(), status, ports];
    assert_eq!(nmap, twice, "nmap -sT -oG, the peer");
    assert_eq!(hosts(&stdout), twice, "netkit -oG; nmap -sT: {nmap:#?}");
    // The XML: one host element for each scan, each with its own 38 closed ports.
    let mut cmd = lab.netkit();
    cmd.args([
        "scan",
        "-Pn",
        "-p",
        "1-40",
        "-oX",
        "-",
        host,
        &format!("{host}/32"),
    ]);
    let (code, xml, stderr) = run_within(cmd, LAB_PATIENCE);
    assert_eq!(code, 0, "stdout {xml}\nstderr {stderr}");
    assert_eq!(xml.matches("<host>").count(), 2, "{xml}");
    assert_eq!(
        xml.matches("<extraports state=\"closed\" count=\"38\">")
            .count(),
        2,
        "{xml}"
    );
}

/// Audit (bench/scan_diff.py, nmap as the oracle): `--concurrency 1 -p 1000-1049,22,80` of a
/// host that drops 1000-1049 took 88 s, nmap -sT --max-parallelism 1 11 s. netkit probed the
/// ports in the order given: with no answer yet, each dropped port waited out the initial
/// timeout (1 s), twice, before 22 and 80 gave the host a round trip. nmap probes its most
/// common ports first (`random_port_cheat`); netkit now does so with its own 20 most often open
/// ports. Watched on the wire (tcpdump in the scanner's namespace): the first SYN of each goes
/// to 22, listed last.
#[test]
fn concurrency_one_waited_out_dropped_ports_before_probing_a_common_open_one() {
    let name = "concurrency_one_waited_out_dropped_ports_before_probing_a_common_open_one";
    if !privileged(name) {
        return;
    }
    let lab = Lab::builder("regcommon")
        .host(SLOW_HOST)
        .open(SLOW_HOST, &[22])
        .drop_ports(SLOW_HOST, 1000..=1019)
        .build()
        .expect("lab");
    let ports = "1000-1019,22";
    let first_syn = |scanner: Command| -> String {
        let filter = format!("dst host {SLOW_HOST} and tcp[tcpflags] == tcp-syn");
        let mut dump = lab.scanner_cmd("tcpdump");
        dump.args(["-l", "-nn", "-i", "any", "-c", "1", &filter]);
        let dump = Proc::spawn(dump);
        dump.stderr.wait_for(|l| l.contains("listening on"), 1);
        let (code, stdout, stderr) = run_within(scanner, LAB_PATIENCE);
        assert_eq!(code, 0, "stdout {stdout}\nstderr {stderr}");
        let syn = dump.stdout.wait_for(|l| l.contains("Flags [S]"), 1);
        let to = syn[0].split(" > ").nth(1).unwrap_or_default();
        to.split(':').next().unwrap_or_default().to_string()
    };
    let mut nmap = lab.scanner_cmd("nmap");
    nmap.args([
        "-n",
        "-Pn",
        "-sT",
        "--max-parallelism",
        "1",
        "-p",
        ports,
        SLOW_HOST,
    ]);
    let want = format!("{SLOW_HOST}.22");
    assert_eq!(first_syn(nmap), want, "nmap's first SYN, the peer");
    let mut netkit = lab.netkit();
    netkit.args([
        "--json",
        "scan",
        SLOW_HOST,
        "-p",
        ports,
        "--concurrency",
        "1",
    ]);
    assert_eq!(first_syn(netkit), want, "netkit's first SYN");
    let got = scan(&lab, &[SLOW_HOST, "-p", ports, "--concurrency", "1"]);
    let s = &got.summary;
    assert_eq!((s.open, s.closed, s.filtered), (1, 0, 20), "{s:?}");
}

/// Audit (bench/scan_diff.py --seed 8101, scenario 68; nmap -sS as the oracle): `--syn
/// --timeout 300ms` of 20 closed ports behind a 1.2 s round trip, beside a target this
/// machine has no route to: 5 closed and 15 filtered in 1.4 s, connect and `--syn`, IPv4 and
/// IPv6 (nmap -sS `--max-rtt-timeout 300ms`: 10 and 10). The unroutable target's refusal,
/// given at once by this machine's routing table, taught the scan a round trip of
/// microseconds, which the host's first tries took for theirs.
#[test]
fn closed_ports_filtered_behind_a_long_round_trip_beside_an_unroutable_target() {
    if !privileged("closed_ports_filtered_behind_a_long_round_trip_beside_an_unroutable_target") {
        return;
    }
    let lab = Lab::builder("regunr")
        .delay(ms(600))
        .host("198.18.1.5")
        .host("2001:db8::5")
        .unroutable("198.18.200.0/24", Unroutable::Local)
        .unroutable("2001:db8:7::/64", Unroutable::Local)
        .build()
        .expect("lab");
    for (far, unroutable) in [
        ("198.18.1.5", "198.18.200.9"),
        ("2001:db8::5", "2001:db8:7::9"),
    ] {
        for extra in [&[][..], &["--syn"][..]] {
            let mut cmd = lab.netkit();
            cmd.args([
                "--json",
                "scan",
                "-Pn",
                "--timeout",
                "300ms",
                "-p",
                "171-190",
            ])
            .args([far, unroutable])
            .args(extra);
            let (code, stdout, stderr) = run_within(cmd, LAB_PATIENCE);
            assert_eq!(code, 1, "{far} {extra:?}\nstdout {stdout}\nstderr {stderr}");
            let s = parse_scan(&stdout).summary;
            assert_eq!(
                (s.unreachable, s.closed, s.filtered),
                (1, 20, 0),
                "{far} {extra:?}: {s:?}"
            );
        }
    }
}

/// Audit (scanpace seed 501, scenario 7, "sp7"): one host behind a firewall passing 10 SYNs a
/// second (burst 5), 20 ms each way, 2 Mbit/s, 59 ports of which 53 is open and the rest
/// closed, beside a target the router answers host unreachable for, `--retries 1`. A port's
/// last try waited a second and a round trip and closed its socket, while its kernel would have
/// sent the SYN again at 3 and 7 s, past the firewall's empty moments: 2-26 ports wrong per run
/// (8-15 in 17 of 20; the open one missed in 16 of 20), in 4-6 s; nmap -sT `--max-retries 1`,
/// whose connects stay open for seconds, 0-5 wrong in 25-33 s. With a fixed budget, once the
/// host showed drops, a last try now waits for the kernel's 3 s and 7 s resends
/// (`Scheduler::resend_wait`): 0-5 wrong per run (25 runs, the open port found in each), 0-13
/// in three, in 6-8 s (the ports whose last try left before the first drop showed).
#[test]
fn ports_filtered_when_a_last_try_closed_before_the_kernels_resends_behind_a_syn_policer() {
    let name =
        "ports_filtered_when_a_last_try_closed_before_the_kernels_resends_behind_a_syn_policer";
    if !privileged(name) {
        return;
    }
    const HOST: &str = "198.18.1.6";
    const PORTS: &str = "21,22,23,25,53,80,110,111,240-290";
    // Three runs in one lab: the open port found in each (before, missed in 16 runs of 20),
    // and few closed ports filtered, in any one and in all (9 and 20: well above the 5 and 13
    // seen since, on a loaded machine too; before, 8-15 per run in 17 runs of 20).
    const ROUNDS: u32 = 3;
    const WRONG_PER_ROUND: u64 = 9;
    const WRONG_IN_ALL: u64 = 20;
    let lab = Lab::builder("regresend")
        .delay(ms(20))
        .rate("2mbit")
        .host(HOST)
        .open(HOST, &[53])
        .unroutable("198.18.200.0/24", Unroutable::Host)
        .icmp_limits(crate::lab::IcmpLimits::Off)
        .syn_limit(10)
        .build()
        .expect("lab");
    let mut wrong = Vec::new();
    for round in 1..=ROUNDS {
        let mut cmd = lab.netkit();
        cmd.args(["--json", "scan", "-Pn", "--retries", "1", "-p", PORTS])
            .args([HOST, "198.18.200.9"]);
        let (code, stdout, stderr) = run_within(cmd, LAB_PATIENCE);
        assert_eq!(code, 1, "round {round}\nstdout {stdout}\nstderr {stderr}");
        let got = parse_scan(&stdout);
        let s = &got.summary;
        let want: SocketAddr = "198.18.1.6:53".parse().expect("address");
        assert_eq!(got.found(), BTreeSet::from([want]), "round {round}: {s:?}");
        assert_eq!(
            (s.unreachable, s.open + s.closed + s.filtered),
            (1, 59),
            "{s:?}"
        );
        assert!(
            s.filtered <= WRONG_PER_ROUND,
            "round {round}: {s:?} (before: {wrong:?})"
        );
        wrong.push(s.filtered);
    }
    eprintln!("closed ports filtered per round: {wrong:?}");
    let all: u64 = wrong.iter().sum();
    assert!(
        all <= WRONG_IN_ALL,
        "closed ports filtered per round: {wrong:?}"
    );
}

/// scan11's "cause 2", audited since stop 53 (v6 only, 4 of 8 runs wrong at one time, 0 of 8
/// at another; the simulation never): `--syn` behind a 10 SYN/s policer (burst 5) at 30% loss
/// each way, 20 ms each way, port 80 open among 19. The first ten SYNs left at once and the
/// bucket passed five; every silent port got its three tries within 0.4 s, so the 13 left
/// were about to be filtered, a round of proof tries due (only the first burst answered).
/// But each port joins the bench when its own last try ends (a second later, one by one), the
/// bench was reviewed at each, held one port, fewer than a round's three, and the port was
/// filtered alone: 12 filtered in 1.5 s, in every run of this lab (the relay's seeded losses;
/// 12-14 filtered, port 80 missed in some, in others). Benched ports now wait for the host's other silent
/// ports' last tries (`Scheduler::silent_ports_linger`), and the proof round finds the bucket.
#[test]
fn closed_ports_filtered_one_by_one_before_a_proof_round_behind_a_v6_syn_policer() {
    let name = "closed_ports_filtered_one_by_one_before_a_proof_round_behind_a_v6_syn_policer";
    if !privileged(name) {
        return;
    }
    const HOST: &str = "2001:db8:1::10";
    // Three fresh labs of the one seed: before, 12 filtered in 4 of 6 such runs (every run
    // of it by hand, with a pause before the scan), exact in the others.
    for round in 1..=3 {
        let lab = Lab::builder("regproofv6")
            .seed(8552)
            .backend(Backend::Relay)
            .delay(ms(20))
            .loss(0.30)
            .host(HOST)
            .open(HOST, &[80])
            .syn_limit(10)
            .build()
            .expect("lab");
        // The relay's seeded draws also take the new links' own first packets (multicast
        // listener reports, router solicitations: the first half second); the losses are
        // this seed's scan's only after them.
        std::thread::sleep(ms(1000));
        let ports = "21,22,23,25,53,80,110,111,547-557";
        let got = scan(
            &lab,
            &[HOST, "--syn", "-Pn", "--timeout", "300ms", "-p", ports],
        );
        let s = &got.summary;
        let want: SocketAddr = "[2001:db8:1::10]:80".parse().expect("address");
        assert_eq!(got.found(), BTreeSet::from([want]), "round {round}: {s:?}");
        assert_eq!(
            (s.open, s.closed, s.filtered),
            (1, 18, 0),
            "round {round}: {s:?}"
        );
    }
}

/// `netkit scan ::ffff:127.0.0.1 --syn` sent raw IPv6 SYNs to the IPv4-mapped address, which
/// never goes on the wire: "1 host unreachable", where a connect scan of the same address
/// (the kernel connects it as IPv4) found the port open. nmap refuses a mapped address without
/// `-6` and finds no route to it with. A mapped address or block is now scanned as the IPv4
/// addresses it maps, and shown as those, in both modes (as `sweep` and `ping` take it).
#[test]
fn an_ipv4_mapped_address_was_unreachable_to_a_syn_scan() {
    if !privileged("scan ::ffff:127.0.0.1 --syn") {
        return;
    }
    let ns = crate::harness::Netns::with_loopback("scmapped");
    let (_echo, open) = crate::forward_util::echo_in(&ns, "127.0.0.1:0", &[]);
    let ports = format!("{},{}", open.port(), open.port() + 1);
    for mode in [None, Some("--syn")] {
        let mut cmd = ns.netkit();
        cmd.args(["scan", "::ffff:127.0.0.1", "-p", &ports, "-Pn"]);
        cmd.args(mode);
        let (code, out, err) = text(&cmd.output().expect("run"));
        assert_eq!(code, 0, "{mode:?}: {out}{err}");
        assert!(
            out.lines().any(|l| l.starts_with("127.0.0.1 ")
                && l.contains(&format!(" {}/tcp  open", open.port())))
                && !out.contains("::ffff:")
                && out.contains("1 open, 1 closed, 0 filtered"),
            "{mode:?}: {out}{err}"
        );
    }
}
