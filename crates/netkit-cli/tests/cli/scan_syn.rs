//! `netkit scan --syn`, the raw SYN scan: exact on loopback (IPv4, IPv6) and on this host's own
//! addresses, with banners read over a connect made afterwards; the same open set as
//! `nmap -sS` in the lab; targets without a route reported as the connect scan reports them;
//! and, without CAP_NET_RAW, a connect scan with a note that says so.
//! The lab's impairments (loss, delay, REJECT, DROP, a SYN-limiting firewall) run --syn in
//! `scan_lab.rs`, beside the connect scan.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::process::Command;

use netkit::report::scan::{PortState, Reason, ScanType};

use crate::harness::{privileged, text, Netns};
use crate::lab::{peers, Lab, LabExt, Reject, Unroutable};
use crate::scan::{addrs, assert_exact, inside, listeners, parse_scan, scan_json};

/// This host's own address in the test's namespace (not 127/8; the namespace has no other
/// link, so nothing leaves it).
const OWN: &str = "198.18.77.1";
const BANNER: &str = "SSH-2.0-netkit-test";

/// A listener on `addr` that greets every connection with [`BANNER`].
fn greeter(addr: &str) -> SocketAddr {
    let listener = TcpListener::bind((addr, 0)).expect("bind");
    let local = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten().take(8) {
            let _ = conn.write_all(format!("{BANNER}\r\n").as_bytes());
        }
    });
    local
}

#[test]
fn syn_scan_is_exact_on_loopback_and_own_addresses_with_banners() {
    if !privileged("scan --syn loopback") {
        return;
    }
    let ns = Netns::with_loopback("synlo");
    ns.ip(&["addr", "add", &format!("{OWN}/32"), "dev", "lo"]);
    let (held, greeter) = inside(&ns, || {
        let held = listeners(&[("127.0.0.1", 3), ("::1", 3), (OWN, 1)]);
        (held, greeter("127.0.0.1"))
    });
    let mut want = addrs(&held);
    want.insert(greeter);
    let dir = tempfile::tempdir().expect("temp dir");
    let xml = dir.path().join("synlo.xml").to_string_lossy().into_owned();
    let args = ["127.0.0.1,::1", OWN, "-p", "all", "--syn", "--banner"];
    let scan = scan_json(ns.netkit(), &[&args[..], &["-oX", &xml]].concat());
    assert_exact(&scan, &want, 3, 65535);
    assert_eq!(scan.summary.scan_type, ScanType::Syn);
    let greeted = scan
        .open
        .iter()
        .find(|p| p.port == greeter.port() && p.addr == greeter.ip());
    let banner = greeted.and_then(|p| p.banner.clone());
    assert_eq!(banner.as_deref(), Some(BANNER), "{:?}", scan.open);
    let doc = std::fs::read_to_string(&xml).expect("the XML");
    assert!(doc.contains("<scaninfo type=\"syn\""), "{doc}");
}

/// `nmap -sS` and `netkit scan --syn` in the same lab namespace find the same open ports, on a
/// host with listeners, closed ports, DROP and REJECT rules, and on an IPv6 host.
#[test]
fn syn_scan_finds_what_nmap_syn_scan_finds() {
    if !privileged("scan --syn vs nmap -sS") {
        return;
    }
    let (v4, v6) = ("198.18.1.1", "2001:db8:1::1");
    let lab = Lab::builder("synnmap")
        .host(v4)
        .host(v6)
        .open(v4, &[22, 80, 443])
        .open(v6, &[22, 8080])
        .drop_ports(v4, 100..=119)
        .reject(v4, 200..=209, Reject::PortUnreachable)
        .reject(v4, 210..=219, Reject::AdminProhibited)
        .reject(v6, 300..=309, Reject::PortUnreachable)
        .build()
        .expect("lab");
    for target in [v4, v6] {
        let out = lab
            .netkit()
            .args(["--json", "scan", target, "-p", "1-1000,8080", "--syn"])
            .output()
            .expect("run netkit");
        let (code, stdout, stderr) = text(&out);
        assert_eq!(code, 0, "stdout {stdout}\nstderr {stderr}");
        let scan = parse_scan(&stdout);
        let ours: BTreeSet<u16> = scan.open.iter().map(|p| p.port).collect();
        let mut nmap = lab.scanner_cmd("nmap");
        nmap.args(["-sS", "-n", "-Pn", "-T4", "-p", "1-1000,8080", "-oG", "-"]);
        if target.contains(':') {
            nmap.arg("-6");
        }
        let out = nmap.arg(target).output().expect("run nmap");
        let (_, nmap_out, _) = text(&out);
        let theirs: BTreeSet<u16> = peers::nmap_states(&nmap_out)
            .into_iter()
            .filter(|(_, state)| state == "open")
            .map(|(port, _)| port)
            .collect();
        assert_eq!(
            ours, theirs,
            "{target}: netkit --syn (left) vs nmap -sS\n{nmap_out}"
        );
        let addr: IpAddr = target.parse().expect("addr");
        assert_eq!(ours, lab.truth().open_ports(addr).into_iter().collect());
        let filtered = if target == v4 { 40 } else { 10 };
        assert_eq!(scan.summary.filtered, filtered, "{:?}", scan.summary);
    }
    // nmap -sS's reasons: a SYN-ACK is syn-ack, a reset is reset (not conn-refused).
    let out = lab
        .netkit()
        .args(["--json", "scan", v4, "-p", "1-1000", "--syn", "--all-ports"])
        .output()
        .expect("run netkit");
    let every = parse_scan(&text(&out).1).open;
    let reasons: BTreeSet<(String, Reason)> = every
        .iter()
        .filter(|p| p.state != PortState::Filtered)
        .map(|p| (format!("{:?}", p.state), p.reason))
        .collect();
    let want = [
        ("Closed".to_string(), Reason::Reset),
        ("Open".to_string(), Reason::SynAck),
    ];
    assert_eq!(reasons, want.into(), "{every:?}");
}

/// Without CAP_NET_RAW (user nobody, no capabilities), `--syn` says so on stderr and runs a
/// connect scan, which still finds the listeners; the summary and the XML say `connect`.
#[test]
fn syn_scan_unprivileged_falls_back_to_connect() {
    if !privileged("scan --syn unprivileged") {
        return;
    }
    let held = listeners(&[("127.0.0.1", 2)]);
    let ports: Vec<String> = held
        .iter()
        .map(|l| l.local_addr().expect("addr").port().to_string())
        .collect();
    let ports = ports.join(",");
    let unprivileged = |global: &[&str], output: &[&str]| {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"]);
        cmd.args(["--inh-caps=-all", "--bounding-set=-all"]);
        cmd.arg(env!("CARGO_BIN_EXE_netkit")).args(global);
        cmd.args(["scan", "127.0.0.1", "-p", &ports, "--syn"])
            .args(output);
        let out = cmd.output().expect("run setpriv");
        let (code, stdout, stderr) = text(&out);
        assert_eq!(code, 0, "stdout {stdout}\nstderr {stderr}");
        assert_eq!(
            stderr.trim(),
            "netkit: --syn needs CAP_NET_RAW (run as root); doing a connect scan"
        );
        stdout
    };
    let scan = parse_scan(&unprivileged(&["--json"], &[]));
    assert_eq!(scan.summary.scan_type, ScanType::Connect);
    assert_eq!(scan.found(), addrs(&held));
    let xml = unprivileged(&[], &["-oX", "-"]);
    assert!(xml.contains("<scaninfo type=\"connect\""), "{xml}");
}

/// No route, as the connect scan reports it: this machine's table (the send fails with
/// ENETUNREACH) and a router's ICMP net or host unreachable make the target unreachable
/// (exit 1, a record naming who said it), not a host of filtered ports.
#[test]
fn syn_scan_reports_targets_without_a_route() {
    if !privileged("scan --syn no route") {
        return;
    }
    let lab = Lab::builder("synnoroute")
        .delay(crate::lab::ms(2))
        .host("198.18.1.1")
        .open("198.18.1.1", &[22])
        .unroutable("198.18.5.0/24", Unroutable::Local)
        .unroutable("198.18.6.0/24", Unroutable::Net)
        .unroutable("198.18.7.0/24", Unroutable::Host)
        .build()
        .expect("lab");
    let targets = "198.18.1.1,198.18.5.1,198.18.6.1,198.18.7.1";
    let out = lab
        .netkit()
        // -Pn: the SYN scan itself meets the no-route errors (a discovery round can end before
        // the router's rate-limited ICMP errors reach every target).
        .args(["--json", "scan", "-Pn", targets, "-p", "22", "--syn"])
        .output()
        .expect("run netkit");
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 1, "stdout {stdout}\nstderr {stderr}");
    let scan = parse_scan(&stdout);
    let want: BTreeSet<SocketAddr> = ["198.18.1.1:22".parse().expect("addr")].into();
    assert_eq!(scan.found(), want);
    let mut said: Vec<(String, bool)> = scan
        .unreachable
        .iter()
        .map(|u| (u.addr.to_string(), u.from.is_some()))
        .collect();
    said.sort();
    let expected = [
        ("198.18.5.1", false),
        ("198.18.6.1", true),
        ("198.18.7.1", true),
    ];
    let expected: Vec<(String, bool)> = expected.iter().map(|(a, f)| (a.to_string(), *f)).collect();
    assert_eq!(said, expected, "{:?}", scan.unreachable);
    assert_eq!(scan.summary.unreachable, 3, "{:?}", scan.summary);
}
