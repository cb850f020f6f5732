//! Several sweep methods at once and host discovery before a scan (issue 16 item 5), in the
//! impaired-link lab: hosts that drop ICMP echo and answer only some TCP ports are found by the
//! methods they answer and missed by the others, and the set found alive matches nmap's
//! (`nmap -sn -PE -PS80,443`, and nmap's default discovery before a port scan) in the same lab.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::harness::{privileged, text};
use crate::lab::{ms, Lab};
use crate::sweep_lab::netkit_sweep;

/// A lab whose 198.18.1.0/28 holds: .1-.4 answer echo; .5 drops echo and listens on 443; .6
/// drops echo and refuses 443 (a reset: alive all the same); .7 drops echo and 443 but refuses
/// 80; .8 drops echo, 80 and 443 (alive, but no discovery probe of ours finds it); the rest is
/// no host (silent).
fn mixed_lab(tag: &str) -> Lab {
    let echo = (1..=4).fold(Lab::builder(tag).delay(ms(2)), |b, n| {
        b.host(&format!("198.18.1.{n}"))
    });
    let b = (5..=8).fold(echo, |b, n| b.no_echo(&format!("198.18.1.{n}")));
    b.open("198.18.1.5", &[443])
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

/// The hosts `nmap -n ARGS` lists as up in its grepable output, run in the lab's scanner.
fn nmap_up(lab: &Lab, args: &[&str]) -> BTreeSet<IpAddr> {
    let out = lab
        .scanner_cmd("nmap")
        .args(["-n", "-oG", "-"])
        .args(args)
        .output()
        .expect("run nmap");
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 0, "nmap {args:?}: {stderr}");
    stdout
        .lines()
        .filter(|l| l.starts_with("Host: ") && l.ends_with("Status: Up"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
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
    for host in two.hosts().iter().filter(|h| h.alive) {
        let want = match host.addr.to_string().as_str() {
            "198.18.1.5" | "198.18.1.6" => "tcp:443",
            _ => "icmp",
        };
        assert_eq!(host.by.as_deref(), Some(want), "{host:?}");
    }
    // Every target got a probe of each method, each round: the summary counts them.
    assert!(two.summaries()[0].probes >= 2 * 16, "{:?}", two.summaries());
    let three = netkit_sweep(&lab, &["--method", "icmp,tcp:80,tcp:443", range]);
    let nmap = nmap_up(&lab, &["-sn", "-PE", "-PS80,443", range]);
    assert_eq!(nmap, addrs(&[1, 2, 3, 4, 5, 6, 7]), "nmap's own answer");
    assert_eq!(three.alive(1), nmap, "{}", three.stderr);
    assert_eq!(three.code, 1, "silent targets");
}
