//! `netkit scan` in the impaired-link lab: on a clean link, at 30±10 ms with 2% loss, at 5%
//! loss, on 2 Mbit/s with 30 ms, behind a SYN-limiting firewall, and against REJECT rules with
//! the far side's ICMP rate limits on and off, every run must find the lab's ground truth, with
//! connects and with raw SYNs (`--syn`) alike:
//! the same open ports, the same number of closed and filtered ones. (Loss and timeouts can
//! only turn an answering port silent, never the reverse, so equal counts with equal open
//! sets mean equal closed and filtered sets.)
//!
//! What the far side's answers mean (as `nmap -sS`): a listener is open; a reset, also a
//! firewall's `REJECT --reject-with tcp-reset`, is closed; DROP, and REJECT with an ICMP error
//! (port unreachable, admin prohibited, host unreachable sent by the target itself), are
//! filtered. Small port spaces keep each test to seconds; the full ranges are in bench/scan.sh.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use netkit::report::scan::ScanType;

use crate::harness::{privileged, run_within, Proc, LAB_PATIENCE};
use crate::lab::{ms, IcmpLimits, Lab, LabBuilder, LabExt, PortTruth, Reject};
use crate::scan::{parse_scan, Scan};

/// The far side every scenario scans: three hosts, ports 1-1000 each.
const TARGETS: [&str; 3] = ["198.18.1.1", "198.18.1.2", "2001:db8:1::1"];
const PORTS: std::ops::RangeInclusive<u16> = 1..=1000;

/// Listeners, DROP and every kind of REJECT on the hosts of [`TARGETS`].
fn far_side(builder: LabBuilder) -> LabBuilder {
    builder
        .host("198.18.1.1")
        .host("198.18.1.2")
        .host("2001:db8:1::1")
        .open("198.18.1.1", &[22, 80, 443, 999])
        .open("198.18.1.2", &[25, 587])
        .open("2001:db8:1::1", &[22, 8])
        .drop_ports("198.18.1.1", 100..=149)
        .reject("198.18.1.1", 200..=209, Reject::PortUnreachable)
        .reject("198.18.1.1", 210..=219, Reject::AdminProhibited)
        .reject("198.18.1.1", 220..=229, Reject::HostUnreachable)
        .reject("198.18.1.1", 230..=239, Reject::TcpReset)
        .drop_ports("198.18.1.2", 1..=20)
        .reject("2001:db8:1::1", 300..=309, Reject::PortUnreachable)
        .reject("2001:db8:1::1", 310..=319, Reject::AdminProhibited)
        .drop_ports("2001:db8:1::1", 400..=449)
}

/// What an exact scan of [`TARGETS`] × [`PORTS`] finds in `lab`.
#[derive(Debug, PartialEq, Eq)]
struct Expected {
    open: BTreeSet<SocketAddr>,
    closed: u64,
    filtered: u64,
}

fn expected(lab: &Lab) -> Expected {
    let truth = lab.truth();
    let mut want = Expected {
        open: BTreeSet::new(),
        closed: 0,
        filtered: 0,
    };
    for target in TARGETS {
        let addr: IpAddr = target.parse().expect("address");
        for port in PORTS {
            match truth.port(addr, port) {
                PortTruth::Open => {
                    want.open.insert(SocketAddr::new(addr, port));
                }
                PortTruth::Closed | PortTruth::Rejected(Reject::TcpReset) => want.closed += 1,
                PortTruth::Dropped | PortTruth::Rejected(_) | PortTruth::NoHost => {
                    want.filtered += 1
                }
                PortTruth::Unroutable(how) => panic!("{addr} is unroutable ({how:?})"),
            }
        }
    }
    want
}

/// Runs `netkit --json scan TARGETS -p 1-1000 EXTRA...` in the lab; exit 0 required.
fn scan(lab: &Lab, extra: &[&str]) -> Scan {
    let ports = format!("{}-{}", PORTS.start(), PORTS.end());
    let mut cmd = lab.netkit();
    // -vv: a failed run shows the scheduler's pacing decisions with its output.
    cmd.args(["-vv", "--json", "scan", &TARGETS.join(","), "-p", &ports])
        .args(extra);
    let (code, stdout, stderr) = run_within(cmd, LAB_PATIENCE);
    assert_eq!(code, 0, "stdout {stdout}\nstderr {stderr}");
    parse_scan(&stdout)
}

/// Asserts the scan found the lab's ground truth.
fn assert_truth(lab: &Lab, scan: &Scan, scenario: &str) {
    let want = expected(lab);
    let s = &scan.summary;
    let got = Expected {
        open: scan.found(),
        closed: s.closed,
        filtered: s.filtered,
    };
    assert_eq!(
        got, want,
        "{scenario}: got (left) vs the lab's truth (right)"
    );
    assert_eq!((s.hosts, s.scanned, s.unreachable), (3, 1000, 0), "{s:?}");
}

/// Scans `scenario`'s lab with connects, then with raw SYNs (`--syn`, nmap -sS's way): both
/// must find the truth.
fn run_scenario(tag: &str, scenario: &str, impair: impl FnOnce(LabBuilder) -> LabBuilder) {
    let lab = impair(far_side(Lab::builder(tag))).build().expect("lab");
    for (extra, kind) in [
        (&[][..], ScanType::Connect),
        (&["--syn"][..], ScanType::Syn),
    ] {
        let scan = scan(&lab, extra);
        assert_truth(&lab, &scan, &format!("{scenario}, {kind:?} scan"));
        assert_eq!(scan.summary.scan_type, kind);
    }
}

#[test]
fn exact_on_a_clean_link() {
    if !privileged("scan exact_on_a_clean_link") {
        return;
    }
    run_scenario("scanclean", "clean link", |b| b);
}

#[test]
fn exact_at_30ms_with_2pct_loss() {
    if !privileged("scan exact_at_30ms_with_2pct_loss") {
        return;
    }
    run_scenario("scan30", "30±10 ms, 2% loss", |b| {
        b.delay(ms(15)).jitter(ms(5)).loss(0.02).seed(30)
    });
}

#[test]
fn exact_at_5pct_loss() {
    if !privileged("scan exact_at_5pct_loss") {
        return;
    }
    run_scenario("scan5pc", "5% loss", |b| b.delay(ms(1)).loss(0.05).seed(5));
}

#[test]
fn exact_on_2mbit_with_30ms() {
    if !privileged("scan exact_on_2mbit_with_30ms") {
        return;
    }
    run_scenario("scan2mb", "2 Mbit/s, 30 ms", |b| {
        b.delay(ms(15)).rate("2mbit")
    });
}

#[test]
fn exact_behind_a_syn_limiting_firewall() {
    if !privileged("scan exact_behind_a_syn_limiting_firewall") {
        return;
    }
    run_scenario("scansyn", "SYNs over 1000/s dropped", |b| b.syn_limit(1000));
}

/// The far kernel sends one ICMP error per second per peer (burst 6) by default: most
/// REJECTed probes then get no answer at all. The states must not change with that.
#[test]
fn rejects_are_filtered_whatever_the_icmp_rate_limit() {
    if !privileged("scan rejects_are_filtered_whatever_the_icmp_rate_limit") {
        return;
    }
    for (tag, limits) in [
        ("scanicmpon", IcmpLimits::Default),
        ("scanicmpoff", IcmpLimits::Off),
    ] {
        run_scenario(tag, &format!("ICMP limits {limits:?}"), |b| {
            b.delay(ms(2)).icmp_limits(limits)
        });
    }
}

/// Ctrl-C during a scan prints the summary so far, marked interrupted, and exits 130, as a
/// shell reports a command stopped by SIGINT (ping prints its summary the same way).
#[test]
fn sigint_prints_the_partial_summary() {
    if !privileged("scan sigint_prints_the_partial_summary") {
        return;
    }
    let lab = Lab::builder("scanint")
        .host("198.18.1.9")
        .drop_ports("198.18.1.9", crate::lab::Ports::all())
        .build()
        .expect("lab");
    for json in [true, false] {
        let mut cmd = lab.netkit();
        if json {
            cmd.arg("--json");
        }
        cmd.args(["scan", "198.18.1.9", "-p", "all"]);
        let scan = Proc::spawn(cmd);
        std::thread::sleep(ms(800));
        let (code, stdout, stderr) = scan.stop("INT");
        assert_eq!(code, 130, "stdout {stdout}\nstderr {stderr}");
        if json {
            let s = parse_scan(&stdout).summary;
            assert!(s.interrupted, "{s:?}");
            assert!(s.filtered < 65535 && s.open + s.closed == 0, "{s:?}");
        } else {
            let last = stdout.lines().last().unwrap_or_default();
            assert!(
                last.starts_with("Scanned 1 host, 65535 ports each, in ")
                    && last.contains("(interrupted)"),
                "{stdout}"
            );
        }
    }
}
