//! Several sweep methods at once and host discovery before a scan (issue 16 item 5), in the
//! impaired-link lab: hosts that drop ICMP echo and answer only some TCP ports are found by the
//! methods they answer and missed by the others, and the set found alive matches nmap's
//! (`nmap -sn -PE -PS80,443`, and nmap's default discovery before a port scan) in the same lab.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde_json::Value;

use crate::harness::{privileged, run_within, text, LAB_PATIENCE};
use crate::lab::{ms, Lab, LabExt};
use crate::scan_output::{assert_dtd_valid, libnmap};
use crate::sweep_lab::netkit_sweep;

/// A lab whose 198.18.1.0/28 holds: .1-.4 answer echo (.1 listens on 22); .5 drops echo and listens on 443; .6
/// drops echo and refuses 443 (a reset: alive all the same); .7 drops echo and 443 but refuses
/// 80; .8 drops echo, 80 and 443 (alive, found only by an ICMP timestamp request, which nmap's
/// and netkit's privileged default discovery send); the rest is no host (silent).
fn mixed_lab(tag: &str) -> Lab {
    let echo = (1..=4).fold(Lab::builder(tag).delay(ms(2)), |b, n| {
        b.host(&format!("198.18.1.{n}"))
    });
    let b = (5..=8).fold(echo, |b, n| b.no_echo(&format!("198.18.1.{n}")));
    b.open("198.18.1.1", &[22])
        .open("198.18.1.5", &[443])
        .host("198.18.1.6")
        .host("198.18.1.7")
        .drop_ports("198.18.1.7", 443)
        .host("198.18.1.8")
        .drop_ports("198.18.1.8", &[80, 443])
        .build()
        .expect("lab")
}

fn addrs(last: &[u8]) -> BTreeSet<IpAddr> {
    last.iter()
        .map(|n| format!("198.18.1.{n}").parse().expect("address"))
        .collect()
}

/// What `nmap -n ARGS` prints, run in the lab's scanner (it must succeed).
pub fn nmap_in(lab: &Lab, args: &[&str]) -> String {
    let out = lab
        .scanner_cmd("nmap")
        .arg("-n")
        .args(args)
        .output()
        .expect("run nmap");
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 0, "nmap {args:?}: {stderr}");
    stdout
}

/// The hosts `nmap -n ARGS` lists as up in its grepable output, run in the lab's scanner.
pub fn nmap_up(lab: &Lab, args: &[&str]) -> BTreeSet<IpAddr> {
    let args = [&["-oG", "-"], args].concat();
    nmap_in(lab, &args)
        .lines()
        .filter(|l| l.starts_with("Host: ") && l.ends_with("Status: Up"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect()
}

/// The `reason` and `reason_ttl` of each host's `<status>` in an nmap XML document, in order
/// (not those of nmap's `<hosthint>`s, written before a port scan).
pub fn status_ttls(xml: &str) -> Vec<(String, String)> {
    let attr = |s: &str, name: &str| {
        let value = s.split(&format!("{name}=\"")).nth(1)?;
        Some(value.split('"').next()?.to_string())
    };
    xml.lines()
        .filter(|l| !l.contains("<hosthint>"))
        .filter_map(|l| l.split("<status ").nth(1))
        .filter_map(|s| Some((attr(s, "reason")?, attr(s, "reason_ttl")?)))
        .collect()
}

#[test]
fn several_methods_find_what_each_finds_and_match_nmap_sn_pe_ps() {
    if !privileged("several_methods_find_what_each_finds_and_match_nmap_sn_pe_ps") {
        return;
    }
    let lab = mixed_lab("dscsweep");
    let range = "198.18.1.0/28";
    let icmp = netkit_sweep(&lab, &[range]);
    assert_eq!(icmp.alive(1), addrs(&[1, 2, 3, 4]), "{}", icmp.stderr);
    let two = netkit_sweep(&lab, &["--method", "icmp,tcp:443", range]);
    assert_eq!(two.alive(1), addrs(&[1, 2, 3, 4, 5, 6]), "{}", two.stderr);
    // .5 and .6 answer only TCP; .1-.4 answer echo and reset 443 alike, either first.
    for host in two.hosts().iter().filter(|h| h.alive) {
        let want: &[&str] = match host.addr.to_string().as_str() {
            "198.18.1.5" | "198.18.1.6" => &["tcp:443"],
            _ => &["icmp", "tcp:443"],
        };
        let by = host.by.as_deref().unwrap_or_default();
        assert!(want.contains(&by), "{host:?}");
    }
    // Every target got a probe of each method, each round: the summary counts them.
    assert!(two.summaries()[0].probes >= 2 * 16, "{:?}", two.summaries());
    let three = netkit_sweep(&lab, &["--method", "icmp,tcp:80,tcp:443", range]);
    let nmap = nmap_up(&lab, &["-sn", "-PE", "-PS80,443", range]);
    assert_eq!(nmap, addrs(&[1, 2, 3, 4, 5, 6, 7]), "nmap's own answer");
    assert_eq!(three.alive(1), nmap, "{}", three.stderr);
    assert_eq!(three.code, 1, "silent targets");
}

/// What `netkit --json scan ARGS` said: its records, by type.
pub fn netkit_scan(lab: &Lab, args: &[&str]) -> Vec<Value> {
    let mut cmd = lab.netkit();
    cmd.args(["--json", "scan"]).args(args);
    let (code, stdout, stderr) = run_within(cmd, LAB_PATIENCE);
    let records: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    // SPEC: exit 1 when a target was silent (found down included) or unreachable, else 0.
    let summary = of_type(&records, "summary");
    let negative = ["silent", "down", "unreachable"]
        .iter()
        .any(|k| summary.iter().any(|s| s[*k].as_u64().unwrap_or(0) > 0));
    let want = i32::from(negative);
    assert_eq!(code, want, "scan {args:?}: {stdout}{stderr}");
    records
}

pub fn of_type<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["type"] == kind).collect()
}

/// The addresses of the host records with `status`.
pub fn with_status(records: &[Value], status: &str) -> BTreeSet<IpAddr> {
    of_type(records, "host")
        .iter()
        .filter(|h| h["status"] == status)
        .map(|h| h["addr"].as_str().expect("addr").parse().expect("address"))
        .collect()
}

/// The open ports found, as `ADDR:PORT`.
fn open_ports(records: &[Value]) -> BTreeSet<String> {
    of_type(records, "port")
        .iter()
        .map(|p| format!("{}:{}", p["addr"].as_str().unwrap_or(""), p["port"]))
        .collect()
}

#[test]
fn a_scan_of_a_range_scans_only_the_hosts_discovery_finds_up() {
    let test = "a_scan_of_a_range_scans_only_the_hosts_discovery_finds_up";
    if !privileged(test) {
        return;
    }
    let lab = mixed_lab("dscscan");
    let (range, ports) = ("198.18.1.0/28", "22,80,443");
    let dir = tempfile::tempdir().expect("tempdir");
    let xml = dir.path().join("scan.xml");
    let xml_arg = xml.to_str().expect("path");
    let found = netkit_scan(&lab, &[range, "-p", ports, "-oX", xml_arg]);
    let up = addrs(&[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(with_status(&found, "up"), up);
    assert_eq!(with_status(&found, "down").len(), 8);
    let summary = of_type(&found, "summary")[0];
    assert_eq!(
        (summary["hosts"].as_u64(), summary["down"].as_u64()),
        (Some(8), Some(8))
    );
    // Each up host's record counts its ports by state, and says which probe answered.
    let record = |addr: &str| {
        let hosts = of_type(&found, "host");
        let host = hosts.iter().find(|h| h["addr"] == addr).expect("a record");
        let counts = [&host["open"], &host["closed"], &host["filtered"]].map(|v| v.as_u64());
        (host["reason"].as_str().map(str::to_string), counts)
    };
    // .1, .5 and .7 answer several probes (echo or a TCP port, the ACK to 80 with a reset, the
    // timestamp request): whichever answer came first names the reason.
    let up_words = ["echo-reply", "syn-ack", "reset", "timestamp-reply"];
    for (host, counts) in [
        ("198.18.1.1", [1, 2, 0]),
        ("198.18.1.5", [1, 2, 0]),
        ("198.18.1.7", [0, 2, 1]),
    ] {
        let (reason, got) = record(host);
        assert_eq!(got, counts.map(Some), "{host}");
        let reason = reason.unwrap_or_default();
        assert!(up_words.contains(&reason.as_str()), "{host}: {reason}");
        assert!(
            host.ends_with(".1") || reason != "echo-reply",
            "{host} drops echo"
        );
    }
    assert_eq!(
        record("198.18.1.8"),
        (Some("timestamp-reply".into()), [0, 1, 2].map(Some))
    );
    // -Pn scans all 16, and finds the same open ports.
    let all = netkit_scan(&lab, &["-Pn", range, "-p", ports]);
    let summary_all = of_type(&all, "summary")[0];
    assert_eq!(
        (summary_all["hosts"].as_u64(), summary_all["down"].as_u64()),
        (Some(16), Some(0))
    );
    assert_eq!(open_ports(&all), open_ports(&found));
    assert_eq!(open_ports(&found).len(), 2);
    assert!(with_status(&all, "up").len() == 16 && with_status(&all, "down").is_empty());
    // nmap's default discovery (root: echo, SYN 443, ACK 80, timestamp) finds the same hosts,
    // .8 by its timestamp reply as netkit's.
    let nmap = nmap_up(&lab, &["-p", ports, range]);
    assert_eq!(nmap, up);
    // The document: DTD-valid, down hosts counted but not listed (as nmap without -v).
    assert_dtd_valid(test, &xml);
    if let Some(read) = libnmap(test, &xml) {
        assert_eq!(
            (read["total"].as_u64(), read["up"].as_u64()),
            (Some(16), Some(8)),
            "{read}"
        );
        assert_eq!(read["hosts"].as_array().map(Vec::len), Some(8), "{read}");
    }
}
