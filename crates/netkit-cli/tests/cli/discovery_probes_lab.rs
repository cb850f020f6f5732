//! nmap's two other privileged discovery probes (issue 16 item 5): ICMP timestamp requests
//! (`--method timestamp`, nmap -PP) and bare TCP ACKs (`--method ack:PORT`, nmap -PA), in the
//! lab: a host that drops echo and SYNs but answers timestamp requests, and one behind a
//! stateless SYN-dropping rule that answers an ACK with a reset, are found by the probe they
//! answer, as nmap finds them in the same lab, and the default discovery finds every host
//! nmap's default discovery finds.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::discovery_lab::{netkit_scan, nmap_in, nmap_up, of_type, with_status};
use crate::harness::{privileged, text};
use crate::lab::{ms, Lab, LabExt};
use crate::scan_output::assert_dtd_valid;
use crate::sweep_lab::netkit_sweep;

/// Runs `iptables ARGS` in the lab's far namespace (where every lab host lives).
fn far_rule(lab: &Lab, args: &[&str]) {
    let out = lab
        .far_cmd("iptables")
        .args(args)
        .output()
        .expect("iptables");
    let (code, _, stderr) = text(&out);
    assert_eq!(code, 0, "iptables {args:?}: {stderr}");
}

/// A lab whose 198.18.1.0/28 holds: .1 an ordinary host (answers echo, resets SYNs and ACKs,
/// answers timestamp requests); .2 drops echo, SYNs (a stateless rule: `--syn` only) and
/// timestamp requests, but answers an ACK with a reset; .3 drops echo and all TCP but answers
/// timestamp requests; .4 drops echo, TCP and timestamp requests (up, but no probe finds it);
/// the rest is no host. The scanner has no route to 198.18.5.0/24, the router none to
/// 198.18.6.0/24 (its ICMP errors not rate-limited).
fn probes_lab(tag: &str) -> Lab {
    let lab = (1..=4)
        .fold(Lab::builder(tag).delay(ms(2)), |b, n| {
            b.host(&format!("198.18.1.{n}"))
        })
        .no_echo("198.18.1.2")
        .no_echo("198.18.1.3")
        .no_echo("198.18.1.4")
        .drop_ports("198.18.1.3", netkit_lab::Ports::all())
        .drop_ports("198.18.1.4", netkit_lab::Ports::all())
        .unroutable("198.18.5.0/24", netkit_lab::Unroutable::Local)
        .unroutable("198.18.6.0/24", netkit_lab::Unroutable::Net)
        .icmp_limits(netkit_lab::IcmpLimits::Off)
        .build()
        .expect("lab");
    far_rule(
        &lab,
        &[
            "-A",
            "INPUT",
            "-d",
            "198.18.1.2",
            "-p",
            "tcp",
            "--syn",
            "-j",
            "DROP",
        ],
    );
    for host in ["198.18.1.2", "198.18.1.4"] {
        let timestamp = ["--icmp-type", "timestamp-request", "-j", "DROP"];
        far_rule(
            &lab,
            &[&["-A", "INPUT", "-d", host, "-p", "icmp"][..], &timestamp].concat(),
        );
    }
    lab
}

fn addrs(last: &[u8]) -> BTreeSet<IpAddr> {
    last.iter()
        .map(|n| format!("198.18.1.{n}").parse().expect("address"))
        .collect()
}

const RANGE: &str = "198.18.1.0/28";

#[test]
fn timestamp_and_ack_find_what_nmap_pp_and_pa_find() {
    if !privileged("timestamp_and_ack_find_what_nmap_pp_and_pa_find") {
        return;
    }
    let lab = probes_lab("dscprobe");
    // Echo and SYNs miss .2 and .3, in netkit and nmap alike.
    let echo_syn = netkit_sweep(&lab, &["--method", "icmp,tcp:80,tcp:443", RANGE]);
    assert_eq!(echo_syn.alive(1), addrs(&[1]), "{}", echo_syn.stderr);
    let timestamp = netkit_sweep(&lab, &["--method", "timestamp", RANGE]);
    let nmap_pp = nmap_up(&lab, &["-sn", "-PP", RANGE]);
    assert_eq!(nmap_pp, addrs(&[1, 3]), "nmap's own answer");
    assert_eq!(timestamp.alive(1), nmap_pp, "{}", timestamp.stderr);
    assert_eq!(timestamp.code, 1, "silent targets");
    let ack = netkit_sweep(&lab, &["--method", "ack:80", RANGE]);
    let nmap_pa = nmap_up(&lab, &["-sn", "-PA80", RANGE]);
    assert_eq!(nmap_pa, addrs(&[1, 2]), "nmap's own answer");
    assert_eq!(ack.alive(1), nmap_pa, "{}", ack.stderr);
    // nmap's privileged default set, spelled out, and nmap's default -sn: the same hosts.
    let all = netkit_sweep(&lab, &["--method", "icmp,tcp:443,ack:80,timestamp", RANGE]);
    let nmap_sn = nmap_up(&lab, &["-sn", RANGE]);
    assert_eq!(nmap_sn, addrs(&[1, 2, 3]), "nmap's own answer");
    assert_eq!(all.alive(1), nmap_sn, "{}", all.stderr);
    let by = |run: &crate::sweep_lab::Run, n: u8| {
        let addr: IpAddr = format!("198.18.1.{n}").parse().expect("address");
        let hosts = run.hosts();
        hosts
            .iter()
            .find(|h| h.addr == addr)
            .and_then(|h| h.by.clone())
    };
    assert_eq!(by(&all, 2).as_deref(), Some("ack:80"));
    assert_eq!(by(&all, 3).as_deref(), Some("timestamp"));
    // No route: unreachable, said as the echo method says it, by each method alone.
    for method in ["timestamp", "ack:80"] {
        let run = netkit_sweep(&lab, &["--method", method, "198.18.5.1"]);
        let hosts = run.hosts();
        let error = hosts.first().and_then(|h| h.error.clone());
        assert_eq!(error.as_deref(), Some("Network is unreachable"), "{method}");
        assert_eq!(run.summaries()[0].unreachable, 1, "{method}");
    }
    // The router's error quoting a timestamp request, named as the echo method names it.
    let run = netkit_sweep(&lab, &["--method", "timestamp", "198.18.6.1"]);
    let error = run.hosts().first().and_then(|h| h.error.clone());
    let want = "Destination Net Unreachable from 198.19.254.1";
    assert_eq!(error.as_deref(), Some(want), "{}", run.stderr);
}

#[test]
fn ack_finds_an_ipv6_host_behind_a_syn_dropping_rule_as_nmap_pa_does() {
    if !privileged("ack_finds_an_ipv6_host_behind_a_syn_dropping_rule_as_nmap_pa_does") {
        return;
    }
    // ::1 answers everything; ::2 drops echo and SYNs (stateless) but resets an ACK; ::3 drops
    // echo and all TCP; ::4 is no host.
    let lab = Lab::builder("dscprv6")
        .delay(ms(2))
        .host("2001:db8:1::1")
        .host("2001:db8:1::2")
        .host("2001:db8:1::3")
        .no_echo("2001:db8:1::2")
        .no_echo("2001:db8:1::3")
        .drop_ports("2001:db8:1::3", netkit_lab::Ports::all())
        .build()
        .expect("lab");
    let rule = [
        "-A",
        "INPUT",
        "-d",
        "2001:db8:1::2",
        "-p",
        "tcp",
        "--syn",
        "-j",
        "DROP",
    ];
    let out = lab
        .far_cmd("ip6tables")
        .args(rule)
        .output()
        .expect("ip6tables");
    assert!(out.status.success(), "{}", text(&out).2);
    let targets = [
        "2001:db8:1::1",
        "2001:db8:1::2",
        "2001:db8:1::3",
        "2001:db8:1::4",
    ];
    let ack = netkit_sweep(&lab, &[&["--method", "ack:80"][..], &targets].concat());
    let nmap = nmap_up(&lab, &[&["-6", "-sn", "-PA80"][..], &targets].concat());
    let want: BTreeSet<IpAddr> = targets[..2]
        .iter()
        .map(|t| t.parse().expect("addr"))
        .collect();
    assert_eq!(nmap, want, "nmap's own answer");
    assert_eq!(ack.alive(1), nmap, "{}", ack.stderr);
    // Echo and SYNs miss ::2; with timestamp in the list, the IPv6 targets are left to the
    // others (no refusal).
    let list = ["--method", "icmp,tcp:80,timestamp"];
    let others = netkit_sweep(&lab, &[&list[..], &targets].concat());
    assert_eq!(
        others.alive(1),
        want.iter().take(1).copied().collect(),
        "{}",
        others.stderr
    );
}

#[test]
fn the_sweeps_xml_gives_nmaps_reason_words_for_timestamp_and_ack() {
    let test = "the_sweeps_xml_gives_nmaps_reason_words_for_timestamp_and_ack";
    if !privileged(test) {
        return;
    }
    let lab = probes_lab("dscprxml");
    let dir = tempfile::tempdir().expect("tempdir");
    let xml = dir.path().join("sweep.xml");
    let xml_arg = xml.to_str().expect("path");
    let methods = "icmp,ack:80,timestamp";
    let out = lab
        .netkit()
        .args([
            "sweep",
            "--method",
            methods,
            "198.18.1.2",
            "198.18.1.3",
            "-oX",
        ])
        .arg(xml_arg)
        .output()
        .expect("run netkit");
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let doc = std::fs::read_to_string(&xml).expect("the document");
    // nmap's own words for the same answers, from its XML in the same lab.
    for (probe, addr) in [("-PA80", "198.18.1.2"), ("-PP", "198.18.1.3")] {
        let reason = status_reason(&nmap_xml(&lab, &["-sn", probe, addr]), addr);
        assert_eq!(status_reason(&doc, addr), reason, "{probe}: {doc}");
    }
    assert_eq!(status_reason(&doc, "198.18.1.2").as_deref(), Some("reset"));
    let timestamp = status_reason(&doc, "198.18.1.3");
    assert_eq!(timestamp.as_deref(), Some("timestamp-reply"));
    assert_dtd_valid(test, &xml);
}

/// `nmap -n -oX - ARGS`'s document, run in the lab's scanner.
fn nmap_xml(lab: &Lab, args: &[&str]) -> String {
    nmap_in(lab, &[&["-oX", "-"], args].concat())
}

/// The `reason` of the `<status>` of `addr`'s `<host>` in an nmap XML document.
pub fn status_reason(doc: &str, addr: &str) -> Option<String> {
    let at = doc.find(&format!(r#"<address addr="{addr}""#))?;
    let host = doc[..at].rfind("<host")?;
    let reason = doc[host..at].split(r#"reason=""#).nth(1)?;
    Some(reason.split('"').next()?.to_string())
}

#[test]
fn the_default_discovery_finds_every_host_nmaps_default_finds() {
    if !privileged("the_default_discovery_finds_every_host_nmaps_default_finds") {
        return;
    }
    let lab = probes_lab("dscprdef");
    let found = netkit_scan(&lab, &[RANGE, "-p", "22"]);
    let nmap = nmap_up(&lab, &["-p", "22", RANGE]);
    assert_eq!(nmap, addrs(&[1, 2, 3]), "nmap's own answer");
    assert_eq!(with_status(&found, "up"), nmap);
    let reason = |n: u8| {
        let addr = format!("198.18.1.{n}");
        let hosts = of_type(&found, "host");
        let host = hosts.iter().find(|h| h["addr"] == addr.as_str()).copied();
        host.map(|h| (h["reason"].to_string(), h["by"].to_string()))
    };
    assert_eq!(reason(2), Some((r#""reset""#.into(), r#""ack:80""#.into())));
    assert_eq!(
        reason(3),
        Some((r#""timestamp-reply""#.into(), r#""timestamp""#.into()))
    );
    let summary = of_type(&found, "summary")[0];
    assert_eq!(summary["down"].as_u64(), Some(13));
}

#[test]
fn timestamp_refuses_ipv6_alone_and_raw_probes_refuse_without_cap_net_raw() {
    // IPv6 alone: an input error before anything is sent.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netkit"))
        .args(["sweep", "--method", "timestamp", "::1"])
        .output()
        .expect("run netkit");
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.starts_with("netkit: ::1: ICMP timestamp requests are IPv4 only"),
        "{stderr}"
    );
    if !privileged("timestamp_refuses_ipv6_alone_and_raw_probes_refuse_without_cap_net_raw") {
        return;
    }
    // Without CAP_NET_RAW: an environment refusal that says what to do (nothing is sent).
    for method in ["timestamp", "ack:80", "icmp,ack:80"] {
        let out = std::process::Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .args([env!("CARGO_BIN_EXE_netkit"), "sweep", "127.0.0.1"])
            .args(["--method", method])
            .output()
            .expect("run setpriv");
        let (code, _, stderr) = text(&out);
        assert_eq!(code, 3, "{method}: {stderr}");
        assert!(stderr.contains("CAP_NET_RAW"), "{method}: {stderr}");
    }
}
