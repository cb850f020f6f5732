//! Why each port has its state (`--reason`, `--all-ports`), against nmap in the lab, port by
//! port: a clean link, the far side's ICMP rate limits off (every REJECT answers), two hosts
//! (IPv4 and IPv6) with listeners, closed ports, DROP and REJECT with port unreachable,
//! administratively prohibited and host unreachable. netkit must give each port the lab's
//! truth and the same state and reason as `nmap -sS --reason` (a reset is `conn-refused` to a
//! connect scan, `reset` to a SYN scan) and as `nmap -sT --reason` where a connect can tell
//! (nmap -sT calls a port-unreachable port closed, and an admin-prohibited one on IPv4
//! host-unreach: the errno it reads says no more). Its default XML and grepable lines must list
//! and count what nmap's do: DTD-valid, and `ndiff` finds no difference.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::harness::{privileged, run_within, text, LAB_PATIENCE};
use crate::lab::{peers, IcmpLimits, Lab, LabExt, PortTruth, Reject};
use crate::scan_output::{assert_dtd_valid, available};

const V4: &str = "198.18.1.1";
const V6: &str = "2001:db8:1::1";
const PORTS: &str = "1-120";
const LAST_PORT: u16 = 120;

/// (state, reason) of every port of every host, keyed by address then port.
type States = BTreeMap<(IpAddr, u16), (String, String)>;

/// Every `<port>` of an nmap XML file with its state and reason, as python-libnmap reads it.
const LIBNMAP_PORTS: &str = r#"
import json, sys
from libnmap.parser import NmapParser
r = NmapParser.parse_fromfile(sys.argv[1])
print(json.dumps([[h.address, s.port, s.state, s.reason] for h in r.hosts for s in h.services]))
"#;

/// Open, closed, dropped and rejected ports on an IPv4 and an IPv6 host: per host about 95
/// closed ports (more than nmap lists) and 15-20 filtered ones (few enough to list).
fn lab(tag: &str) -> Lab {
    Lab::builder(tag)
        .host(V4)
        .host(V6)
        .open(V4, &[22, 80])
        .open(V6, &[22])
        .drop_ports(V4, 100..=104)
        .reject(V4, 105..=109, Reject::PortUnreachable)
        .reject(V4, 110..=114, Reject::AdminProhibited)
        .reject(V4, 115..=119, Reject::HostUnreachable)
        .drop_ports(V6, 100..=104)
        .reject(V6, 105..=109, Reject::PortUnreachable)
        .reject(V6, 110..=114, Reject::AdminProhibited)
        .icmp_limits(IcmpLimits::Off)
        .build()
        .expect("lab")
}

/// What the lab's truth says a connect scan must report for `port`.
fn truth(lab: &Lab, addr: IpAddr, port: u16) -> (&'static str, &'static str) {
    match lab.truth().port(addr, port) {
        PortTruth::Open => ("open", "syn-ack"),
        PortTruth::Closed | PortTruth::Rejected(Reject::TcpReset) => ("closed", "conn-refused"),
        PortTruth::Dropped | PortTruth::NoHost => ("filtered", "no-response"),
        PortTruth::Rejected(Reject::PortUnreachable) => ("filtered", "port-unreach"),
        PortTruth::Rejected(Reject::AdminProhibited) => ("filtered", "admin-prohibited"),
        PortTruth::Rejected(Reject::HostUnreachable) => ("filtered", "host-unreach"),
        PortTruth::Unroutable(how) => panic!("{addr} is unroutable ({how:?})"),
    }
}

/// netkit's `port` records of `--json scan V4,V6 --all-ports`.
fn netkit_states(lab: &Lab) -> States {
    let mut cmd = lab.netkit();
    cmd.args(["--json", "scan", &format!("{V4},{V6}"), "-p", PORTS])
        .args(["--all-ports"]);
    let (code, stdout, stderr) = run_within(cmd, LAB_PATIENCE);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let records = stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap());
    let ports = records.filter(|r| r["type"] == "port");
    ports
        .map(|r| {
            let addr = r["addr"].as_str().unwrap().parse().unwrap();
            let port = r["port"].as_u64().unwrap() as u16;
            let state = r["state"].as_str().unwrap().to_string();
            (
                (addr, port),
                (state, r["reason"].as_str().unwrap().to_string()),
            )
        })
        .collect()
}

/// Every port's state and reason by `nmap -n -Pn SCAN --reason -ddd` (-ddd: every port
/// listed, none counted) of both hosts; `None` without python-libnmap outside CI.
fn nmap_states(test: &str, lab: &Lab, scan: &str, dir: &Path) -> Option<States> {
    let mut states = States::new();
    for (target, family) in [(V4, None), (V6, Some("-6"))] {
        let xml = dir.join(format!("nmap{scan}{}.xml", family.unwrap_or("")));
        let out = lab
            .scanner_cmd("nmap")
            .args(["-n", "-Pn", scan, "--reason", "-ddd", "-p", PORTS])
            .args(family)
            .arg("-oX")
            .arg(&xml)
            .arg(target)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nmap {scan} {target}: {:?}",
            text(&out).2
        );
        states.extend(read_ports(test, &xml)?);
    }
    Some(states)
}

/// The `<port>`s of an nmap XML file, as python-libnmap reads them.
fn read_ports(test: &str, xml: &Path) -> Option<States> {
    let mut probe = Command::new("python3");
    probe.args(["-c", "import libnmap"]);
    if !available(test, "python-libnmap", &mut probe) {
        return None;
    }
    let out = Command::new("python3")
        .args(["-c", LIBNMAP_PORTS])
        .arg(xml)
        .output()
        .unwrap();
    let (code, stdout, stderr) = text(&out);
    assert_eq!(
        code,
        0,
        "libnmap could not read {}: {stderr}",
        xml.display()
    );
    let rows: Vec<(String, u16, String, String)> = serde_json::from_str(&stdout).unwrap();
    let states = rows
        .into_iter()
        .map(|(addr, port, state, reason)| ((addr.parse().unwrap(), port), (state, reason)));
    Some(states.collect())
}

/// The ports where `ours` and `theirs` disagree once `same` has had its say.
fn differences(
    ours: &States,
    theirs: &States,
    same: impl Fn(&(String, String), &(String, String)) -> bool,
) -> Vec<String> {
    let mut wrong = Vec::new();
    for (key, want) in theirs {
        match ours.get(key) {
            Some(got) if same(got, want) => {}
            got => wrong.push(format!("{key:?}: netkit {got:?}, nmap {want:?}")),
        }
    }
    wrong
}

#[test]
fn every_port_has_the_reason_nmap_gives() {
    let test = "every_port_has_the_reason_nmap_gives";
    if !privileged(test) {
        return;
    }
    let lab = lab("scanwhy");
    let ours = netkit_states(&lab);
    let mut wrong = Vec::new();
    for host in [V4, V6] {
        let addr: IpAddr = host.parse().unwrap();
        for port in 1..=LAST_PORT {
            let want = truth(&lab, addr, port);
            let got = ours.get(&(addr, port));
            let got = got.map(|(s, r)| (s.as_str(), r.as_str()));
            if got != Some(want) {
                wrong.push(format!("{host} {port}: {got:?}, truth {want:?}"));
            }
        }
    }
    assert!(wrong.is_empty(), "against the lab's truth: {wrong:#?}");
    assert_eq!(
        ours.len(),
        2 * usize::from(LAST_PORT),
        "one record per port"
    );
    let dir = tempfile::tempdir().unwrap();
    // nmap -sS: the same state and reason everywhere, a reset being a refused connect.
    let Some(syn) = nmap_states(test, &lab, "-sS", dir.path()) else {
        return;
    };
    let wrong = differences(&ours, &syn, |got, want| {
        let reason = if want.1 == "reset" {
            "conn-refused"
        } else {
            &want.1
        };
        got.0 == want.0 && got.1 == reason
    });
    assert!(wrong.is_empty(), "against nmap -sS: {wrong:#?}");
    assert_eq!(syn.len(), ours.len(), "nmap -sS listed every port");
    // nmap -sT: the same where the errno of a connect tells (not the ICMP rejects).
    let connect = nmap_states(test, &lab, "-sT", dir.path()).unwrap();
    let icmp =
        |key: &(IpAddr, u16)| matches!(lab.truth().port(key.0, key.1), PortTruth::Rejected(_));
    let connect: States = connect.into_iter().filter(|(k, _)| !icmp(k)).collect();
    let wrong = differences(&ours, &connect, |got, want| got == want);
    assert!(wrong.is_empty(), "against nmap -sT: {wrong:#?}");
}

#[test]
fn default_xml_and_grepable_list_and_count_as_nmap() {
    let test = "default_xml_and_grepable_list_and_count_as_nmap";
    if !privileged(test) {
        return;
    }
    let lab = lab("scanxmlw");
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let (ours, ours_g) = (path("netkit.xml"), path("netkit.gnmap"));
    let out = lab
        .netkit()
        .args(["scan", V4, "-p", PORTS, "--reason", "-oX"])
        .arg(&ours)
        .arg("-oG")
        .arg(&ours_g)
        .output()
        .unwrap();
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 0, "{stdout}{stderr}");
    // The text lists the 20 filtered ports with their reasons, not the ~95 closed ones.
    let line = |port: &str| {
        stdout
            .lines()
            .find(|l| l.contains(port))
            .unwrap_or_default()
    };
    assert!(
        line(" 105/tcp  filtered  ").ends_with(" port-unreach"),
        "{stdout}"
    );
    assert!(
        line(" 110/tcp  filtered  ").ends_with(" admin-prohibited"),
        "{stdout}"
    );
    assert!(!stdout.contains("closed  "), "{stdout}");
    assert_dtd_valid(test, &ours);
    let (theirs, theirs_g) = (path("nmap.xml"), path("nmap.gnmap"));
    let nmap = lab
        .scanner_cmd("nmap")
        .args(["-n", "-Pn", "-sS", "--reason", "-p", PORTS, "-oX"])
        .arg(&theirs)
        .arg("-oG")
        .arg(&theirs_g)
        .arg(V4)
        .output()
        .unwrap();
    assert!(nmap.status.success(), "{:?}", text(&nmap));
    let doc = std::fs::read_to_string(&ours).unwrap();
    let closed = (1..=LAST_PORT)
        .filter(|&p| truth(&lab, V4.parse().unwrap(), p).0 == "closed")
        .count();
    let extra = format!(
        "<extraports state=\"closed\" count=\"{closed}\">\n\
         <extrareasons reason=\"conn-refused\" count=\"{closed}\" proto=\"tcp\"/>"
    );
    assert!(doc.contains(&extra), "{doc}");
    let nmap_doc = std::fs::read_to_string(&theirs).unwrap();
    assert!(
        nmap_doc.contains(&format!("<extraports state=\"closed\" count=\"{closed}\">")),
        "{nmap_doc}"
    );
    // The grepable lines: the same ports in the same states, the same ignored state.
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    let (g_ours, g_theirs) = (read(&ours_g), read(&theirs_g));
    assert_eq!(
        peers::nmap_states(&g_ours),
        peers::nmap_states(&g_theirs),
        "{g_ours}{g_theirs}"
    );
    let ignored = format!("\tIgnored State: closed ({closed})");
    assert!(
        g_ours.contains(&ignored) && g_theirs.contains(&ignored),
        "{g_ours}{g_theirs}"
    );
    ndiff_same(test, &theirs, &ours);
    // python-libnmap reads the same listed ports, states and reasons from both documents
    // (the open ones and the few filtered ones: their reasons are the same words).
    if let (Some(read_ours), Some(read_theirs)) =
        (read_ports(test, &ours), read_ports(test, &theirs))
    {
        assert_eq!(
            read_ours, read_theirs,
            "libnmap: netkit's <port>s (left) vs nmap's"
        );
        assert_eq!(
            read_ours.len(),
            22,
            "2 open and 20 filtered listed: {read_ours:?}"
        );
    }
}

/// `ndiff THEIRS OURS` finds the same ports in the same states, and the same counted ones:
/// a port may show on both sides when the two services tables name it differently, in the
/// same state.
fn ndiff_same(test: &str, theirs: &Path, ours: &Path) {
    let mut probe = Command::new("ndiff");
    probe.arg("--help");
    if !available(test, "ndiff", &mut probe) {
        return;
    }
    let diff = Command::new("ndiff")
        .arg(theirs)
        .arg(ours)
        .output()
        .unwrap();
    let (code, stdout, stderr) = text(&diff);
    assert!(code < 2, "ndiff could not read the files: {stderr}");
    let changed = stdout
        .lines()
        .filter(|l| l.starts_with('-') || l.starts_with('+'));
    let changed: Vec<&str> = changed
        .filter(|l| !l.contains(" scan initiated "))
        .collect();
    let states_on = |side: char| -> BTreeSet<(&str, &str)> {
        let lines = changed.iter().filter(|l| l.starts_with(side));
        let ports = lines.filter_map(|l| {
            let mut words = l[1..].split_whitespace();
            Some((words.next()?, words.next()?))
        });
        ports.filter(|(port, _)| port.ends_with("/tcp")).collect()
    };
    assert_eq!(states_on('-'), states_on('+'), "states differ:\n{stdout}");
    let ports = states_on('-').len() + states_on('+').len();
    let lines_about_ports = changed.len();
    assert_eq!(
        lines_about_ports, ports,
        "more than service names differ:\n{stdout}"
    );
}

/// nmap's listing rule on the same loopback (a namespace of the test's own, nothing
/// listening): 25 closed ports are listed one by one, 26 are counted, `-v` lists up to 50 —
/// in netkit's text and XML as in nmap -sT's XML of the same ports.
#[test]
fn closed_ports_are_listed_up_to_nmaps_limit() {
    let test = "closed_ports_are_listed_up_to_nmaps_limit";
    if !privileged(test) {
        return;
    }
    let ns = crate::harness::Netns::with_loopback("whylim");
    let dir = tempfile::tempdir().unwrap();
    for (ports, verbose, listed) in [("1-25", false, 25), ("1-26", false, 0), ("1-26", true, 26)] {
        let (ours, theirs) = (dir.path().join("netkit.xml"), dir.path().join("nmap.xml"));
        let mut cmd = ns.netkit();
        cmd.args(verbose.then_some("-v"));
        cmd.args(["scan", "127.0.0.1", "-p", ports, "--reason", "-oX"]);
        let out = cmd.arg(&ours).output().unwrap();
        let (code, stdout, stderr) = text(&out);
        assert_eq!(code, 0, "{stdout}{stderr}");
        let lines = stdout.lines().filter(|l| l.contains("/tcp  closed  "));
        let lines: Vec<&str> = lines.collect();
        assert_eq!(lines.len(), listed, "-p {ports} -v {verbose}: {stdout}");
        assert!(
            lines.iter().all(|l| l.ends_with(" conn-refused")),
            "{stdout}"
        );
        let mut nmap = ns.command("nmap");
        nmap.args(["-n", "-Pn", "-sT", "--reason", "-p", ports]);
        nmap.args(verbose.then_some("-v"));
        let out = nmap
            .arg("-oX")
            .arg(&theirs)
            .arg("127.0.0.1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{:?}", text(&out));
        let count =
            |path: &Path, what: &str| std::fs::read_to_string(path).unwrap().matches(what).count();
        for what in [
            "<port protocol=\"tcp\"",
            "<extraports state=\"closed\" count=\"26\">",
        ] {
            assert_eq!(
                count(&ours, what),
                count(&theirs, what),
                "-p {ports} -v {verbose}: {what}"
            );
        }
        assert_eq!(count(&ours, "<port protocol=\"tcp\""), listed);
        assert_dtd_valid(test, &ours);
    }
}
