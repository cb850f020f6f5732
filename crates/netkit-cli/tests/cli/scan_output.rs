//! `netkit scan` in nmap's output formats, read back by nmap's own consumers: `-oX` validated
//! against nmap's DTD (`xmllint --dtdvalid`), parsed by python-libnmap, and compared with nmap's
//! XML of the same loopback scan by `ndiff`; `-oG`, `-oN`, `-oJ`, `-oA`, `-` for stdout, IPv6,
//! several hosts, and the options refused by name. Loopback only, on ports the tests hold; the
//! sweep's document and unreachable hosts in namespaces of the tests' own.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::harness::{run, skip, text, Reserved};

const DTD: &str = "/usr/share/nmap/nmap.dtd";

/// Reads an nmap XML file with python-libnmap and prints what it understood, as JSON.
const LIBNMAP: &str = r#"
import json, sys
from libnmap.parser import NmapParser
r = NmapParser.parse_fromfile(sys.argv[1])
hosts = []
for h in r.hosts:
    hosts.append({
        "addr": h.address, "up": h.is_up(), "hostnames": h.hostnames,
        "open": sorted([s.port, s.service, s.reason] for s in h.services if s.state == "open"),
        "others": sorted([s.port, s.state, s.reason] for s in h.services if s.state != "open"),
        "extraports": h.extraports_reasons,
    })
print(json.dumps({"scan_type": r.scan_type, "total": r.hosts_total, "up": r.hosts_up,
                  "down": r.hosts_down, "hosts": hosts}))
"#;

/// Whether a peer tool is there; CI must have it (installed by .ci/run), elsewhere the check
/// is skipped with a note.
pub fn available(test: &str, what: &str, probe: &mut Command) -> bool {
    let found = probe.output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: CI must have {what}"
        );
        skip(test, &format!("{what} not installed"));
    }
    found
}

/// `xmllint --dtdvalid nmap.dtd FILE` must accept the file.
pub fn assert_dtd_valid(test: &str, file: &Path) {
    let mut probe = Command::new("xmllint");
    probe.arg("--version");
    if !available(test, "xmllint", &mut probe) || !Path::new(DTD).exists() {
        return;
    }
    let out = Command::new("xmllint")
        .args(["--noout", "--dtdvalid", DTD])
        .arg(file)
        .output()
        .expect("xmllint");
    let (code, _, stderr) = text(&out);
    assert_eq!(
        code,
        0,
        "{} is not valid nmap XML: {stderr}",
        file.display()
    );
}

/// What python-libnmap reads from `file`; `None` without python-libnmap (outside CI).
pub fn libnmap(test: &str, file: &Path) -> Option<Value> {
    let mut probe = Command::new("python3");
    probe.args(["-c", "import libnmap"]);
    if !available(test, "python-libnmap", &mut probe) {
        return None;
    }
    let out = Command::new("python3")
        .args(["-c", LIBNMAP])
        .arg(file)
        .output()
        .expect("python3");
    let (code, stdout, stderr) = text(&out);
    assert_eq!(
        code,
        0,
        "libnmap could not read {}: {stderr}",
        file.display()
    );
    Some(serde_json::from_str(&stdout).expect("libnmap's JSON"))
}

/// Two listeners and one closed (reserved, not listening) port on `ip`.
fn ports_on(ip: &str) -> (Vec<TcpListener>, Reserved, String) {
    let open: Vec<TcpListener> = (0..2)
        .map(|_| TcpListener::bind((ip, 0)).expect("bind"))
        .collect();
    let closed = Reserved::on(ip);
    let mut list: Vec<u16> = open
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    list.push(closed.addr.port());
    let list: Vec<String> = list.iter().map(u16::to_string).collect();
    (open, closed, list.join(","))
}

fn open_ports(open: &[TcpListener]) -> BTreeSet<u64> {
    open.iter()
        .map(|l| u64::from(l.local_addr().unwrap().port()))
        .collect()
}

fn scan_ok(args: &[&str]) -> (String, String) {
    let (code, stdout, stderr) = text(&run(args));
    assert_eq!(code, 0, "scan {args:?}\nstdout {stdout}\nstderr {stderr}");
    (stdout, stderr)
}

#[test]
fn xml_is_nmaps_document_and_libnmap_reads_the_open_ports_back() {
    let test = "xml_is_nmaps_document_and_libnmap_reads_the_open_ports_back";
    let (open, closed, ports) = ports_on("127.0.0.1");
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("scan.xml");
    let xml_arg = xml.to_str().unwrap();
    let (stdout, _) = scan_ok(&["scan", "127.0.0.1", "-p", &ports, "-oX", xml_arg]);
    // stdout is unchanged: the human lines and the summary.
    assert!(stdout.contains("2 open, 1 closed, 0 filtered"), "{stdout}");
    let doc = std::fs::read_to_string(&xml).unwrap();
    assert!(doc.contains("<scaninfo type=\"connect\" protocol=\"tcp\" numservices=\"3\""));
    assert_dtd_valid(test, &xml);
    let Some(read) = libnmap(test, &xml) else {
        return;
    };
    assert_eq!(read["scan_type"], "connect", "{read}");
    assert_eq!(
        (&read["total"], &read["up"]),
        (&1.into(), &1.into()),
        "{read}"
    );
    let host = &read["hosts"][0];
    assert_eq!(host["addr"], "127.0.0.1", "{read}");
    assert_eq!(host["up"], true, "{read}");
    let found: BTreeSet<u64> = host["open"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_u64().unwrap())
        .collect();
    assert_eq!(found, open_ports(&open), "{read}");
    assert!(host["open"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p[2] == "syn-ack"));
    // One closed port: few enough to be listed, as nmap lists it.
    let closed = serde_json::json!([[closed.addr.port(), "closed", "conn-refused"]]);
    assert_eq!(host["others"], closed, "{read}");
    assert!(host["extraports"].is_null(), "no <extraports>: {read}");
}

/// The same loopback scan by nmap -sT and by netkit: ndiff finds the same ports in the same
/// states, the closed one listed by both.
#[test]
fn ndiff_finds_no_difference_from_nmap_connect_scan() {
    let test = "ndiff_finds_no_difference_from_nmap_connect_scan";
    let mut probe = Command::new("ndiff");
    probe.arg("--help");
    if !available(test, "ndiff", &mut probe) {
        return;
    }
    let (_open, _closed, ports) = ports_on("127.0.0.1");
    let dir = tempfile::tempdir().unwrap();
    let (ours, theirs) = (dir.path().join("netkit.xml"), dir.path().join("nmap.xml"));
    scan_ok(&[
        "scan",
        "127.0.0.1",
        "-p",
        &ports,
        "-oX",
        ours.to_str().unwrap(),
    ]);
    let nmap = Command::new("nmap")
        .args(["-n", "-sT", "-p", &ports, "127.0.0.1", "-oX"])
        .arg(&theirs)
        .output()
        .expect("nmap");
    assert!(nmap.status.success(), "{:?}", text(&nmap));
    let diff = Command::new("ndiff")
        .arg(&theirs)
        .arg(&ours)
        .output()
        .unwrap();
    let (code, stdout, stderr) = text(&diff);
    // 0: no differences but the header lines; 1: differences (below: only service names may
    // differ, as nmap's table names many ephemeral ports `unknown` and netkit's does not);
    // 2: an error reading a file.
    assert!(code == 0 || code == 1, "{code}: {stdout}\n{stderr}");
    let changed: Vec<&str> = stdout
        .lines()
        .filter(|l| (l.starts_with('-') || l.starts_with('+')) && !l.contains(" scan initiated "))
        .collect();
    // A port may show twice, - and +, when the two services tables name it differently
    // (ephemeral ports are in nmap's); it must have the same state on both sides.
    let states_on = |side: char| -> BTreeSet<(&str, &str)> {
        let lines = changed.iter().filter(|l| l.starts_with(side));
        let ports = lines.filter_map(|l| {
            let mut words = l[1..].split_whitespace();
            Some((words.next()?.split('/').next()?, words.next()?))
        });
        ports
            .filter(|(port, _)| port.parse::<u16>().is_ok())
            .collect()
    };
    assert_eq!(states_on('-'), states_on('+'), "states differ:\n{stdout}");
    assert!(!changed.iter().any(|l| l.contains("Not shown")), "{stdout}");
}

/// IPv6 with the document on stdout (nothing else there) and the grepable lines in a file.
#[test]
fn ipv6_xml_on_stdout_and_grepable_lines() {
    let test = "ipv6_xml_on_stdout_and_grepable_lines";
    let (open, closed, ports) = ports_on("::1");
    let dir = tempfile::tempdir().unwrap();
    let gnmap = dir.path().join("scan.gnmap");
    let (stdout, _) = scan_ok(&[
        "scan",
        "::1",
        "-p",
        &ports,
        "-oX",
        "-",
        "-oG",
        gnmap.to_str().unwrap(),
    ]);
    assert!(stdout.starts_with("<?xml version=\"1.0\""), "{stdout}");
    assert!(stdout.trim_end().ends_with("</nmaprun>"), "{stdout}");
    assert!(
        stdout.contains("<address addr=\"::1\" addrtype=\"ipv6\"/>"),
        "{stdout}"
    );
    let xml = dir.path().join("stdout.xml");
    std::fs::write(&xml, &stdout).unwrap();
    assert_dtd_valid(test, &xml);
    let grep = std::fs::read_to_string(&gnmap).unwrap();
    let lines: Vec<&str> = grep.lines().collect();
    assert_eq!(lines.len(), 4, "{grep}");
    assert!(lines[0].starts_with("# netkit "), "{grep}");
    assert_eq!(lines[1], "Host: ::1 ()\tStatus: Up");
    // Ascending, the closed port listed among the open ones; the service field comes from
    // netkit's table (empty for most of these high ports, not all).
    let mut expected: Vec<(u64, &str)> = open_ports(&open).iter().map(|p| (*p, "open")).collect();
    expected.push((u64::from(closed.addr.port()), "closed"));
    expected.sort();
    let expected: Vec<String> = expected
        .iter()
        .map(|(p, state)| {
            let port = u16::try_from(*p).unwrap();
            let service = netkit::scan::services::service_name(port).unwrap_or_default();
            format!("{p}/{state}/tcp//{service}///")
        })
        .collect();
    let want = format!("Host: ::1 ()\tPorts: {}", expected.join(", "));
    assert_eq!(lines[2], want, "{grep}");
    assert!(
        lines[3].contains("1 IP address (1 host up) scanned in"),
        "{grep}"
    );
}

/// Several hosts, one of them by name: every host listed with its own ports.
#[test]
fn every_host_listed_with_its_own_counts() {
    let test = "every_host_listed_with_its_own_counts";
    let (open, _closed, ports) = ports_on("127.0.0.1");
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("scan.xml");
    // 127.0.0.2 reaches this machine's loopback too, where nothing listens on it: all closed.
    // localhost: a name given, which the document carries as nmap's user-given host name.
    let targets = "127.0.0.1,127.0.0.2,localhost";
    scan_ok(&["scan", targets, "-p", &ports, "-oX", xml.to_str().unwrap()]);
    assert_dtd_valid(test, &xml);
    let Some(read) = libnmap(test, &xml) else {
        return;
    };
    let (total, up) = (&read["total"], &read["up"]);
    assert_eq!((total, up), (&3.into(), &3.into()), "{read}");
    assert_eq!(
        read["hosts"][0]["hostnames"],
        serde_json::json!([]),
        "{read}"
    );
    let named = &read["hosts"][2]["hostnames"];
    assert_eq!(named, &serde_json::json!(["localhost"]), "{read}");
    let first = &read["hosts"][0];
    assert_eq!(
        first["open"].as_array().unwrap().len(),
        open.len(),
        "{read}"
    );
    assert_eq!(first["others"].as_array().unwrap().len(), 1, "{read}");
    let second = &read["hosts"][1];
    assert_eq!(second["addr"], "127.0.0.2", "{read}");
    assert!(second["open"].as_array().unwrap().is_empty(), "{read}");
    assert_eq!(second["others"].as_array().unwrap().len(), 3, "{read}");
}

/// -oN is the terminal's text whatever --json says, -oJ JSON Lines whatever it says, -oA the
/// three files of nmap's names, and -o FILE stays what stdout shows.
#[test]
fn normal_json_and_all_outputs() {
    let (_open, _closed, ports) = ports_on("127.0.0.1");
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (normal, json, base, plain) = (path("n.txt"), path("j.jsonl"), path("all"), path("o"));
    let args = [
        "--json",
        "scan",
        "127.0.0.1",
        "-p",
        &ports,
        "-oN",
        &normal,
        "-oJ",
        &json,
        "-oA",
        &base,
        "-o",
        &plain,
    ];
    let (stdout, _) = scan_ok(&args);
    let read = |p: &str| std::fs::read_to_string(p).unwrap();
    assert_eq!(read(&json), stdout, "-oJ is what --json prints");
    assert_eq!(read(&plain), stdout, "-o FILE is what stdout shows");
    let text = read(&normal);
    assert!(text.lines().all(|l| !l.starts_with('{')), "{text}");
    assert!(text.contains("2 open, 1 closed, 0 filtered"), "{text}");
    assert_eq!(read(&format!("{base}.nmap")), text);
    assert!(read(&format!("{base}.xml")).contains("</nmaprun>"));
    assert!(read(&format!("{base}.gnmap")).contains("\tPorts: "));
    // -oN - puts the text on stdout in place of the JSON Lines.
    let (stdout, _) = scan_ok(&["--json", "scan", "127.0.0.1", "-p", &ports, "-oN", "-"]);
    assert!(
        stdout.contains("2 open, 1 closed") && !stdout.contains('{'),
        "{stdout}"
    );
}

#[test]
fn output_options_clap_would_misread_are_refused_by_name() {
    let cases: [(&[&str], &str); 7] = [
        (
            &["scan", "127.0.0.1", "-p", "1", "-oZ", "f"],
            "netkit: -oZ: unknown output format",
        ),
        (
            &["scan", "127.0.0.1", "-p", "1", "-oXf.xml"],
            "netkit: -oXf.xml: put a space",
        ),
        (
            &["scan", "127.0.0.1", "-p", "1", "-oX", "-", "-oG", "-"],
            "netkit: -: only one",
        ),
        (
            &["scan", "127.0.0.1", "-p", "1", "-oA", "-"],
            "netkit: -oA -: ",
        ),
        (
            &["sweep", "127.0.0.1", "-oN", "f"],
            "netkit: -oN: unknown output format",
        ),
        (
            &["scan", "127.0.0.1", "-p", "1", "-oX"],
            "netkit: -oX: needs a file name",
        ),
        (
            &["sweep", "127.0.0.1", "--every", "1s", "-oX", "f"],
            "netkit: -oX/-oG: needs --rounds with --every",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (args, message) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_netkit"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let (code, stdout, stderr) = text(&out);
        assert_eq!(code, 2, "{args:?}: {stdout}{stderr}");
        assert!(stderr.starts_with(message), "{args:?}: {stderr}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "{args:?} wrote a file"
        );
    }
}

/// A namespace with loopback up, its own address 198.18.0.1, and 198.18.0.5 a neighbour
/// that never answers: its frames leave through a veth to a MAC nobody has (silence, not an
/// ARP failure).
pub fn silent_neighbour(tag: &str) -> crate::harness::Netns {
    let ns = crate::harness::Netns::with_loopback(tag);
    ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    ns.ip(&["addr", "add", "198.18.0.1/24", "dev", "v0"]);
    ns.ip(&["link", "set", "v0", "up"]);
    ns.ip(&["link", "set", "v1", "up"]);
    let neigh = ["neigh", "add", "198.18.0.5", "lladdr", "02:00:00:00:00:05"];
    ns.ip(&[&neigh[..], &["dev", "v0", "nud", "permanent"]].concat());
    ns
}

/// `sweep -oX`: a live host up (`echo-reply`), a silent one down (`no-response`) and one
/// without a route down (`net-unreach`), as nmap -sn -v lists them; DTD-valid, and libnmap
/// reads the same up and down hosts. In a namespace of the test's own: 198.18.0.1 is its own
/// address, 198.18.0.5 a neighbour that never answers, 198.19.0.1 has no route.
#[test]
fn sweep_xml_lists_hosts_up_and_down_with_the_reason() {
    let test = "sweep_xml_lists_hosts_up_and_down_with_the_reason";
    if !crate::harness::privileged(test) {
        return;
    }
    let ns = silent_neighbour("sxml");
    let dir = tempfile::tempdir().unwrap();
    let (xml, gnmap) = (dir.path().join("sweep.xml"), dir.path().join("sweep.gnmap"));
    let out = ns
        .netkit()
        .args([
            "sweep",
            "198.18.0.1",
            "198.18.0.5",
            "198.19.0.1",
            "--timeout",
            "300ms",
        ])
        .args(["--retries", "1", "-oX"])
        .arg(&xml)
        .arg("-oG")
        .arg(&gnmap)
        .output()
        .unwrap();
    let (code, stdout, stderr) = text(&out);
    assert_eq!(
        code, 1,
        "one host silent, one unreachable: {stdout}{stderr}"
    );
    assert_dtd_valid(test, &xml);
    let doc = std::fs::read_to_string(&xml).unwrap();
    // The TTL of the echo reply from a neighbour (64), as nmap writes it; 0 without a reply.
    for (addr, state, reason, ttl) in [
        ("198.18.0.1", "up", "echo-reply", 64),
        ("198.18.0.5", "down", "no-response", 0),
        ("198.19.0.1", "down", "net-unreach", 0),
    ] {
        let host = format!(
            "<host><status state=\"{state}\" reason=\"{reason}\" reason_ttl=\"{ttl}\"/>\n\
             <address addr=\"{addr}\" addrtype=\"ipv4\"/>"
        );
        assert!(doc.contains(&host), "{host}\n{doc}");
    }
    assert!(
        doc.contains("<hosts up=\"1\" down=\"2\" total=\"3\"/>"),
        "{doc}"
    );
    let grep = std::fs::read_to_string(&gnmap).unwrap();
    assert!(
        grep.contains("Host: 198.18.0.5 ()\tStatus: Down\n"),
        "{grep}"
    );
    ndiff_against_nmap_sn(test, &ns, &xml);
    let Some(read) = libnmap(test, &xml) else {
        return;
    };
    let (up, down) = (&read["up"], &read["down"]);
    assert_eq!((up, down), (&1.into(), &2.into()), "{read}");
    assert_eq!(read["hosts"][0]["up"], true, "{read}");
}

/// nmap -sn -v on the same targets agrees host by host, but for the target without a route,
/// which nmap skips (`<target status="skipped">`) and netkit lists down with the reason.
fn ndiff_against_nmap_sn(test: &str, ns: &crate::harness::Netns, ours: &Path) {
    let mut probe = Command::new("ndiff");
    probe.arg("--help");
    if !available(test, "ndiff", &mut probe) {
        return;
    }
    let theirs = ours.with_extension("nmap.xml");
    let targets = ["198.18.0.1", "198.18.0.5", "198.19.0.1"];
    let nmap = ns
        .command("nmap")
        .args(["-n", "-sn", "-v", "-oX"])
        .arg(&theirs)
        .args(targets)
        .output()
        .unwrap();
    assert!(nmap.status.success(), "{:?}", text(&nmap));
    let diff = Command::new("ndiff")
        .arg(&theirs)
        .arg(ours)
        .output()
        .unwrap();
    let (_, stdout, stderr) = text(&diff);
    let changed: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with('-') || l.starts_with('+'))
        .filter(|l| !l.contains(" scan initiated "))
        .collect();
    assert_eq!(
        changed,
        ["+198.19.0.1:", "+Host is down."],
        "{stdout}{stderr}"
    );
}

/// A scan target without a route is a `<host>` down (`net-unreach`), with no ports, beside a
/// reachable one up (-Pn: the scan finds it unreachable; after discovery it would be down and
/// not listed, as nmap without -v).
#[test]
fn scan_xml_lists_an_unreachable_host_down() {
    let test = "scan_xml_lists_an_unreachable_host_down";
    if !crate::harness::privileged(test) {
        return;
    }
    let ns = crate::harness::Netns::with_loopback("sxu");
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("scan.xml");
    let out = ns
        .netkit()
        .args([
            "scan",
            "-Pn",
            "127.0.0.1",
            "198.19.0.1",
            "-p",
            "1-30",
            "-oX",
        ])
        .arg(&xml)
        .output()
        .unwrap();
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert_dtd_valid(test, &xml);
    let doc = std::fs::read_to_string(&xml).unwrap();
    let down = "<host><status state=\"down\" reason=\"net-unreach\" reason_ttl=\"0\"/>\n\
                <address addr=\"198.19.0.1\" addrtype=\"ipv4\"/>\n<hostnames>\n</hostnames>\n\
                </host>";
    assert!(doc.contains(down), "{doc}");
    // 30 closed ports: more than nmap lists, counted with their reason.
    let extra = "<extraports state=\"closed\" count=\"30\">\n\
                 <extrareasons reason=\"conn-refused\" count=\"30\" proto=\"tcp\"/>";
    assert!(doc.contains(extra), "{doc}");
    assert!(
        doc.contains("<hosts up=\"1\" down=\"1\" total=\"2\"/>"),
        "{doc}"
    );
}

/// Ctrl-C during a scan still writes a whole document (DTD-valid), its end saying the scan
/// was interrupted, as the summary line does.
#[test]
fn an_interrupted_scan_writes_a_whole_document() {
    let test = "an_interrupted_scan_writes_a_whole_document";
    if !crate::harness::privileged(test) {
        return;
    }
    let ns = silent_neighbour("sxi");
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("scan.xml");
    let mut cmd = ns.netkit();
    cmd.args(["scan", "198.18.0.5", "-p", "all", "-oX"])
        .arg(&xml);
    let scan = crate::harness::Proc::spawn(cmd);
    // Every port of the silent neighbour takes its timeouts: the scan is still running.
    std::thread::sleep(std::time::Duration::from_millis(800));
    let (code, stdout, stderr) = scan.stop("INT");
    assert_eq!(code, 130, "{stdout}{stderr}");
    assert!(stdout.contains("(interrupted)"), "{stdout}");
    assert_dtd_valid(test, &xml);
    let doc = std::fs::read_to_string(&xml).unwrap();
    assert!(
        doc.contains("exit=\"error\" errormsg=\"interrupted\""),
        "{doc}"
    );
    assert!(doc.trim_end().ends_with("</nmaprun>"), "{doc}");
}

/// `sweep -oX -` over IPv6: the document alone on stdout, `::1` up with nmap's `ipv6` type.
#[test]
fn sweep_xml_on_stdout_over_ipv6() {
    let test = "sweep_xml_on_stdout_over_ipv6";
    if !crate::harness::privileged(test) {
        return;
    }
    let (code, stdout, stderr) = text(&run(&["sweep", "::1", "-oX", "-"]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("<?xml"), "{stdout}");
    let up = "<host><status state=\"up\" reason=\"echo-reply\" reason_ttl=\"64\"/>\n\
              <address addr=\"::1\" addrtype=\"ipv6\"/>";
    assert!(stdout.contains(up), "{stdout}");
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("sweep.xml");
    std::fs::write(&xml, &stdout).unwrap();
    assert_dtd_valid(test, &xml);
}
