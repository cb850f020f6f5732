//! Self-tests of the far side's behaviours: REJECT kinds seen by connect and by nmap, the ICMP
//! rate-limit setting, unroutable prefixes, hosts that ignore echo, ICMP policing, SYN
//! limiting, and hosts that exist only where the lab says — each against the ground truth.

use std::io::ErrorKind::{self, *};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::peers::{connect_all, counts, nmap_states, ping};
use super::{EchoTruth, IcmpLimits, Lab, PortTruth, Reject, Unroutable};
use crate::harness::{privileged, text};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn at(addr: &str, ports: &[u16]) -> Vec<SocketAddr> {
    ports
        .iter()
        .map(|&p| SocketAddr::new(ip(addr), p))
        .collect()
}

const SECS2: Duration = Duration::from_secs(2);

/// Open 22, closed 23, REJECT 81-83 (port unreachable, admin prohibited, host unreachable),
/// DROP 84, on one v4 and one v6 host, ICMP rate limits off. The 2 ms delay matters: on a
/// zero-delay lab under CPU load an ICMP error can reach the socket while the connecting
/// thread still holds its lock; Linux then keeps only a soft error and the connect fails a
/// second later, on the SYN's retransmission (nmap -sT then says filtered: no response).
fn reject_lab(tag: &str) -> Lab {
    let mut b = Lab::builder(tag)
        .delay(super::ms(2))
        .icmp_limits(IcmpLimits::Off);
    for host in ["198.18.1.5", "2001:db8:1::5"] {
        b = b
            .open(host, &[22])
            .reject(host, &[81], Reject::PortUnreachable)
            .reject(host, &[82], Reject::AdminProhibited)
            .reject(host, &[83], Reject::HostUnreachable)
            .drop_ports(host, &[84]);
    }
    b.build().expect("lab")
}

#[test]
fn lab_reject_kinds_give_their_connect_errors() {
    if !privileged("lab_reject_kinds_give_their_connect_errors") {
        return;
    }
    let lab = reject_lab("reject");
    let ports = [22, 23, 81, 82, 83, 84];
    let v4 = connect_all(&lab, at("198.18.1.5", &ports), SECS2);
    let expected_v4 = [
        Ok(()),
        Err(ConnectionRefused),
        Err(ConnectionRefused),
        Err(HostUnreachable),
        Err(HostUnreachable),
        Err(TimedOut),
    ];
    assert_eq!(v4, expected_v4, "v4 ports {ports:?}");
    let v6 = connect_all(&lab, at("2001:db8:1::5", &ports), SECS2);
    let expected_v6 = [
        Ok(()),
        Err(ConnectionRefused),
        Err(ConnectionRefused),
        Err(PermissionDenied),
        Err(HostUnreachable),
        Err(TimedOut),
    ];
    assert_eq!(v6, expected_v6, "v6 ports {ports:?}");
    let truth = lab.truth();
    assert_eq!(truth.port(ip("198.18.1.5"), 22), PortTruth::Open);
    assert_eq!(truth.port(ip("198.18.1.5"), 23), PortTruth::Closed);
    assert_eq!(
        truth.port(ip("2001:db8:1::5"), 82),
        PortTruth::Rejected(Reject::AdminProhibited)
    );
    assert_eq!(truth.port(ip("2001:db8:1::5"), 84), PortTruth::Dropped);
}

#[test]
fn lab_reject_kinds_as_nmap_sees_them() {
    if !privileged("lab_reject_kinds_as_nmap_sees_them") {
        return;
    }
    let lab = reject_lab("nmap");
    // nmap -sT: a refused connect (RST or port unreachable) is closed; other ICMP errors and
    // silence are filtered. nmap -sS: only an RST is closed.
    let expect_st = [
        (22, "open"),
        (23, "closed"),
        (81, "closed"),
        (82, "filtered"),
    ];
    let expect_ss = [
        (22, "open"),
        (23, "closed"),
        (81, "filtered"),
        (82, "filtered"),
    ];
    for (scan, expected) in [("-sT", expect_st), ("-sS", expect_ss)] {
        for (host, v6) in [("198.18.1.5", false), ("2001:db8:1::5", true)] {
            let mut cmd = lab.scanner_cmd("nmap");
            cmd.args([scan, "-n", "-Pn", "-T4", "--max-retries", "3", "-oG", "-"]);
            cmd.args(["-p", "22,23,81,82,83,84", host]);
            if v6 {
                cmd.arg("-6");
            }
            let (code, stdout, stderr) = text(&cmd.output().expect("nmap"));
            assert_eq!(code, 0, "{stderr}");
            let states = nmap_states(&stdout);
            for (port, state) in expected {
                assert_eq!(
                    states.get(&port).map(String::as_str),
                    Some(state),
                    "{scan} {host}:{port}\n{stdout}"
                );
            }
            for port in [83, 84] {
                assert_eq!(states[&port], "filtered", "{scan} {host}:{port}\n{stdout}");
            }
        }
    }
}

/// How many of 40 connects at once to a host rejecting every port are refused.
fn refused_of_40(limits: IcmpLimits, tag: &str) -> usize {
    let lab = Lab::builder(tag)
        .hosts("198.18.1.0/24")
        .reject("198.18.1.6", super::Ports::all(), Reject::PortUnreachable)
        .icmp_limits(limits)
        .build()
        .expect("lab");
    let ports: Vec<u16> = (1000..1040).collect();
    let outcomes = connect_all(&lab, at("198.18.1.6", &ports), Duration::from_millis(1500));
    outcomes
        .iter()
        .filter(|o| **o == Err(ConnectionRefused))
        .count()
}

#[test]
fn lab_icmp_rate_limit_setting_matters() {
    if !privileged("lab_icmp_rate_limit_setting_matters") {
        return;
    }
    // Kernel defaults: one error per second per peer, burst 6; the rest go unanswered.
    let limited = refused_of_40(IcmpLimits::Default, "icmpdef");
    assert!(
        (1..=20).contains(&limited),
        "{limited} of 40 refused with default limits"
    );
    let unlimited = refused_of_40(IcmpLimits::Off, "icmpoff");
    assert_eq!(unlimited, 40, "every reject answered with limits off");
}

/// A lab with one unroutable prefix of each kind (v4 and v6), ICMP rate limits off.
fn unroutable_lab(tag: &str) -> Lab {
    // The near link's delay applies to the router's own answers too (see reject_lab for why
    // errors should not come back within microseconds).
    let near = super::Impairment::none().delay(super::ms(2));
    Lab::builder(tag)
        .impair(super::Link::Near, super::Direction::ToScanner, near)
        .unroutable("198.18.200.0/24", Unroutable::Local)
        .unroutable("198.18.201.0/24", Unroutable::Net)
        .unroutable("198.18.202.0/24", Unroutable::Host)
        .unroutable("198.18.203.0/24", Unroutable::Prohibited)
        .unroutable("2001:db8:200::/48", Unroutable::Local)
        .unroutable("2001:db8:201::/48", Unroutable::Net)
        .unroutable("2001:db8:203::/48", Unroutable::Prohibited)
        .icmp_limits(IcmpLimits::Off)
        .build()
        .expect("lab")
}

#[test]
fn lab_unroutable_prefixes_fail_connects_as_told() {
    if !privileged("lab_unroutable_prefixes_fail_connects_as_told") {
        return;
    }
    let lab = unroutable_lab("noroute");
    let targets: Vec<SocketAddr> = [
        "198.18.200.1",
        "198.18.201.1",
        "198.18.202.1",
        "198.18.203.1",
        "2001:db8:200::1",
        "2001:db8:201::1",
        "2001:db8:203::1",
    ]
    .iter()
    .map(|a| SocketAddr::new(ip(a), 80))
    .collect();
    let got = connect_all(&lab, targets, SECS2);
    let expected: [Result<(), ErrorKind>; 7] = [
        Err(NetworkUnreachable),
        Err(NetworkUnreachable),
        Err(HostUnreachable),
        Err(HostUnreachable),
        Err(NetworkUnreachable),
        Err(NetworkUnreachable),
        Err(PermissionDenied),
    ];
    assert_eq!(got, expected);
    assert_eq!(
        lab.truth().port(ip("198.18.202.1"), 80),
        PortTruth::Unroutable(Unroutable::Host)
    );
}

#[test]
fn lab_unroutable_prefixes_as_ping_names_them() {
    if !privileged("lab_unroutable_prefixes_as_ping_names_them") {
        return;
    }
    // A fresh lab: the router's IPv4 "no route" errors are limited by the host-wide
    // net.ipv4.route.error_cost/error_burst (5 at once, then 1/s per source), whatever the
    // lab's ICMP limits.
    let lab = unroutable_lab("noroutep");
    for (target, says) in [
        ("198.18.201.1", "Destination Net Unreachable"),
        ("198.18.202.1", "Destination Host Unreachable"),
        ("198.18.203.1", "Packet filtered"),
    ] {
        let (_, stdout, stderr) = text(&ping(&lab, &["-c", "1", "-W", "1", target]));
        assert!(stdout.contains(says), "{target}: {stdout}{stderr}");
    }
    let (code, _, stderr) = text(&ping(&lab, &["-c", "1", "-W", "1", "198.18.200.1"]));
    assert!(code != 0 && stderr.contains("unreachable"), "{stderr}");
}

#[test]
fn lab_host_without_echo_still_has_open_ports() {
    if !privileged("lab_host_without_echo_still_has_open_ports") {
        return;
    }
    let lab = Lab::builder("noecho")
        .hosts("198.18.1.0/24")
        .hosts("2001:db8:1::/64")
        .open("198.18.1.7", &[22])
        .open("2001:db8:1::7", &[22])
        .no_echo("198.18.1.7")
        .no_echo("2001:db8:1::7")
        .build()
        .expect("lab");
    for (quiet, pingable) in [
        ("198.18.1.7", "198.18.1.8"),
        ("2001:db8:1::7", "2001:db8:1::8"),
    ] {
        let (_, stdout, _) = text(&ping(&lab, &["-c", "2", "-i", "0.2", "-W", "1", quiet]));
        assert_eq!(counts(&stdout), (2, 0), "{quiet} ignores echo\n{stdout}");
        let (_, stdout, _) = text(&ping(&lab, &["-c", "2", "-i", "0.2", "-W", "1", pingable]));
        assert_eq!(counts(&stdout), (2, 2), "{pingable} answers\n{stdout}");
        assert_eq!(connect_all(&lab, at(quiet, &[22]), SECS2), [Ok(())]);
        assert_eq!(lab.truth().echo(ip(quiet)), EchoTruth::Ignores);
    }
}

#[test]
fn lab_icmp_policing_drops_echo_over_the_rate() {
    if !privileged("lab_icmp_policing_drops_echo_over_the_rate") {
        return;
    }
    let lab = Lab::builder("police")
        .hosts("198.18.1.0/24")
        .hosts("2001:db8:1::/64")
        .icmp_police(50)
        .build()
        .expect("lab");
    // 300 echoes at 500/s for 0.6 s: about 5 (burst) + 30 pass a 50/s policer; the bound
    // holds unless sending the 300 takes over 3.9 s.
    for target in ["198.18.1.9", "2001:db8:1::9"] {
        let out = ping(&lab, &["-q", "-c", "300", "-i", "0.002", "-W", "1", target]);
        let (_, stdout, stderr) = text(&out);
        let (sent, received) = counts(&stdout);
        assert_eq!(sent, 300, "{stderr}");
        assert!(
            (5..=200).contains(&received),
            "{target}: {received} of 300 passed\n{stdout}"
        );
        assert_eq!(lab.truth().echo(ip(target)), EchoTruth::Answers);
    }
}

#[test]
fn lab_syn_limit_drops_syns_over_the_rate() {
    if !privileged("lab_syn_limit_drops_syns_over_the_rate") {
        return;
    }
    let lab = Lab::builder("synlimit")
        .open("198.18.1.5", &[80])
        .syn_limit(20)
        .build()
        .expect("lab");
    // 100 connects at once, 0.7 s each (before any SYN retransmission): about 5 pass.
    let targets = vec![SocketAddr::new(ip("198.18.1.5"), 80); 100];
    let outcomes = connect_all(&lab, targets, Duration::from_millis(700));
    let ok = outcomes.iter().filter(|o| o.is_ok()).count();
    let timed_out = outcomes.iter().filter(|o| **o == Err(TimedOut)).count();
    assert!(
        (1..=60).contains(&ok),
        "{ok} of 100 connects passed a 20/s SYN limit"
    );
    assert_eq!(ok + timed_out, 100, "{outcomes:?}");
}

#[test]
fn lab_only_named_hosts_exist() {
    if !privileged("lab_only_named_hosts_exist") {
        return;
    }
    let mut lab = Lab::builder("sparse")
        .host("198.18.4.5")
        .host("2001:db8:4::5")
        .build()
        .expect("lab");
    let answered = |lab: &Lab, target: &str| {
        let (_, stdout, _) = text(&ping(lab, &["-c", "1", "-W", "1", target]));
        counts(&stdout).1 == 1 && !stdout.contains("Unreachable")
    };
    assert!(answered(&lab, "198.18.4.5") && answered(&lab, "2001:db8:4::5"));
    // Other addresses of the range are silent: no answer, no error.
    let (_, stdout, _) = text(&ping(&lab, &["-c", "1", "-W", "1", "198.18.4.6"]));
    assert!(
        counts(&stdout) == (1, 0) && !stdout.contains("Unreachable"),
        "{stdout}"
    );
    assert_eq!(lab.truth().echo(ip("198.18.4.6")), EchoTruth::NoHost);
    // Hosts come and go while the lab runs.
    lab.remove_host(ip("198.18.4.5")).expect("remove");
    lab.add_host(ip("198.18.4.6")).expect("add");
    assert!(!answered(&lab, "198.18.4.5") && answered(&lab, "198.18.4.6"));
    assert_eq!(lab.truth().echo(ip("198.18.4.5")), EchoTruth::NoHost);
}

#[test]
fn lab_open_all_opens_the_port_on_every_host() {
    if !privileged("lab_open_all_opens_the_port_on_every_host") {
        return;
    }
    let lab = Lab::builder("openall")
        .hosts("198.18.8.0/22")
        .hosts("2001:db8:8::/64")
        .open_all(&[80])
        .build()
        .expect("lab");
    let mut targets = at("198.18.8.1", &[80, 81]);
    targets.extend(at("198.18.11.254", &[80]));
    targets.extend(at("2001:db8:8::beef", &[80, 81]));
    let got = connect_all(&lab, targets, SECS2);
    let expected = [
        Ok(()),
        Err(ConnectionRefused),
        Ok(()),
        Ok(()),
        Err(ConnectionRefused),
    ];
    assert_eq!(got, expected);
    assert_eq!(lab.truth().open_ports(ip("198.18.11.254")), [80]);
}
