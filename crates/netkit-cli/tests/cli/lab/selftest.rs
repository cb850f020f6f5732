//! Self-tests of the lab: each impairment and far-side behaviour is checked with a real peer
//! (iputils ping, nmap) or real sockets inside the namespaces, against what the lab was told
//! to do. Lower bounds on delay are functional checks, not timing assertions; rates are
//! checked with wide bounds over enough packets (the relay is seeded).

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::Output;
use std::time::Duration;

use super::{ms, Lab, LabExt, Reject};
use crate::harness::{privileged, text};

/// Runs `ping ARGS` (iputils) in the lab's scanner namespace.
fn ping(lab: &Lab, args: &[&str]) -> Output {
    lab.scanner_cmd("ping")
        .args(args)
        .output()
        .expect("run ping")
}

/// The `rtt min` of an iputils ping summary, in milliseconds.
fn min_rtt(stdout: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("rtt min/avg/max/mdev"))
        .unwrap_or_else(|| panic!("no rtt line in {stdout}"));
    let values = line.split('=').nth(1).expect("rtt values").trim();
    values
        .split('/')
        .next()
        .expect("min")
        .parse()
        .expect("min rtt")
}

/// (transmitted, received) from an iputils ping summary.
fn counts(stdout: &str) -> (u32, u32) {
    let line = stdout
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("no summary in {stdout}"));
    let number = |word: &str| -> u32 {
        let before = line.split(word).next().expect("word");
        let n = before.trim_end().rsplit([' ', ',']).next().expect("number");
        n.parse().unwrap_or_else(|_| panic!("{word} in {line}"))
    };
    (number("packets transmitted"), number("received"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

#[test]
fn lab_delay_is_a_lower_bound_of_ping_rtt() {
    if !privileged("lab_delay_is_a_lower_bound_of_ping_rtt") {
        return;
    }
    let lab = Lab::builder("delay")
        .delay(ms(20))
        .jitter(ms(5))
        .hosts("198.18.1.0/24")
        .hosts("2001:db8:1::/64")
        .build()
        .expect("lab");
    for target in ["198.18.1.9", "2001:db8:1::9"] {
        let out = ping(&lab, &["-c", "5", "-i", "0.2", "-W", "2", target]);
        let (code, stdout, stderr) = text(&out);
        assert_eq!(code, 0, "{stdout}{stderr}");
        // 20 ms ± 5 each way: every round trip takes at least 30 ms.
        let min = min_rtt(&stdout);
        assert!(
            min >= 30.0,
            "{target}: min RTT {min} ms below 2 × (20 - 5) ms\n{stdout}"
        );
    }
    let stats = lab
        .relay_stats()
        .expect("the relay runs here (no sch_netem)");
    assert!(stats.queued >= 20, "{stats:?}");
}

#[test]
fn lab_loss_is_near_the_configured_rate() {
    if !privileged("lab_loss_is_near_the_configured_rate") {
        return;
    }
    let lab = Lab::builder("loss")
        .loss(0.1)
        .seed(11)
        .hosts("198.18.1.0/24")
        .build()
        .expect("lab");
    let out = ping(
        &lab,
        &["-q", "-c", "400", "-i", "0.005", "-W", "1", "198.18.1.7"],
    );
    let (_, stdout, stderr) = text(&out);
    let (sent, received) = counts(&stdout);
    assert_eq!(sent, 400, "{stdout}{stderr}");
    // 10% each way: 19% of round trips expected; 400 trials put 8-32% far beyond 4 sigma.
    let lost = f64::from(sent - received) / f64::from(sent);
    assert!(
        (0.08..=0.32).contains(&lost),
        "lost {lost:.3} of round trips\n{stdout}"
    );
    let stats = lab.relay_stats().expect("relay");
    assert!(
        stats.lost > 0 && stats.overflowed == 0 && stats.errors == 0,
        "{stats:?}"
    );
}

#[test]
fn lab_duplicates_show_as_dup_in_ping() {
    if !privileged("lab_duplicates_show_as_dup_in_ping") {
        return;
    }
    let lab = Lab::builder("dup")
        .delay(ms(1))
        .dup(0.2)
        .seed(3)
        .hosts("198.18.1.0/24")
        .hosts("2001:db8:1::/64")
        .build()
        .expect("lab");
    for target in ["198.18.1.3", "2001:db8:1::3"] {
        let out = ping(&lab, &["-c", "40", "-i", "0.01", "-W", "1", target]);
        let (_, stdout, stderr) = text(&out);
        let dups = stdout.matches("DUP!").count();
        // 20% each way: about 44% of echoes come back twice or more.
        assert!(dups >= 5, "{target}: {dups} DUP! lines\n{stdout}{stderr}");
    }
    assert!(lab.relay_stats().expect("relay").duplicated >= 10);
}

/// Connects from the scanner namespace to each address; returns the outcome per address.
fn connect_all(lab: &Lab, targets: Vec<SocketAddr>) -> Vec<Result<(), ErrorKind>> {
    lab.in_scanner(move || {
        targets
            .iter()
            .map(|t| {
                TcpStream::connect_timeout(t, Duration::from_secs(2))
                    .map(drop)
                    .map_err(|e| e.kind())
            })
            .collect()
    })
    .expect("thread in scanner")
}

#[test]
fn lab_reject_kinds_give_their_errors() {
    if !privileged("lab_reject_kinds_give_their_errors") {
        return;
    }
    let lab = Lab::builder("reject")
        .hosts("198.18.1.0/24")
        .hosts("2001:db8:1::/64")
        .open("198.18.1.5", &[22])
        .open("2001:db8:1::5", &[22])
        .reject("198.18.1.5", &[81], Reject::PortUnreachable)
        .reject("198.18.1.5", &[82], Reject::AdminProhibited)
        .reject("198.18.1.5", &[83], Reject::HostUnreachable)
        .drop_ports("198.18.1.5", &[84])
        .reject("2001:db8:1::5", &[81], Reject::PortUnreachable)
        .reject("2001:db8:1::5", &[82], Reject::AdminProhibited)
        .drop_ports("2001:db8:1::5", &[84])
        .icmp_limits(super::IcmpLimits::Off)
        .build()
        .expect("lab");
    let at = |addr: &str, port| SocketAddr::new(ip(addr), port);
    let ports = [22, 23, 81, 82, 83, 84];
    let v4 = connect_all(&lab, ports.iter().map(|&p| at("198.18.1.5", p)).collect());
    use ErrorKind::*;
    let expected_v4 = [
        Ok(()),
        Err(ConnectionRefused),
        Err(ConnectionRefused),
        Err(HostUnreachable),
        Err(HostUnreachable),
        Err(TimedOut),
    ];
    assert_eq!(v4, expected_v4, "v4 ports {ports:?}");
    let v6 = connect_all(
        &lab,
        [22, 23, 81, 82, 84]
            .iter()
            .map(|&p| at("2001:db8:1::5", p))
            .collect(),
    );
    let expected_v6 = [
        Ok(()),
        Err(ConnectionRefused),
        Err(ConnectionRefused),
        Err(PermissionDenied),
        Err(TimedOut),
    ];
    assert_eq!(v6, expected_v6, "v6 ports 22, 23, 81, 82, 84");
}

#[test]
fn lab_teardown_leaves_no_namespace() {
    if !privileged("lab_teardown_leaves_no_namespace") {
        return;
    }
    let lab = Lab::builder("teardown")
        .delay(ms(5))
        .hosts("198.18.1.0/24")
        .open("198.18.1.5", &[22])
        .build()
        .expect("lab");
    let names = [lab.scanner(), lab.router(), lab.far()].map(String::from);
    let listed = || {
        let out = std::process::Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("ip");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The wrapper runs the netkit under test inside the scanner namespace.
    let out = lab
        .netkit()
        .args(["wait", "198.18.1.5:22", "--timeout", "10s"])
        .output()
        .expect("netkit");
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let before = listed();
    assert!(
        names.iter().all(|n| before.contains(n.as_str())),
        "{before}"
    );
    lab.down();
    let after = listed();
    assert!(names.iter().all(|n| !after.contains(n.as_str())), "{after}");
}

#[test]
fn two_labs_at_once_do_not_interfere() {
    if !privileged("two_labs_at_once_do_not_interfere") {
        return;
    }
    // Same addresses, opposite behaviour: lab A loses everything and has port 22 open.
    let build = |tag: &str, loss: f64| {
        let builder = Lab::builder(tag).loss(loss).hosts("198.18.1.0/24");
        let builder = if loss > 0.0 {
            builder.open("198.18.1.5", &[22])
        } else {
            builder
        };
        builder.build().expect("lab")
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| build("twoa", 1.0));
        let b = s.spawn(|| build("twob", 0.0));
        (a.join().expect("a"), b.join().expect("b"))
    });
    let out_a = ping(&a, &["-c", "3", "-i", "0.2", "-W", "1", "198.18.1.5"]);
    let out_b = ping(&b, &["-c", "3", "-i", "0.2", "-W", "1", "198.18.1.5"]);
    assert_eq!(
        counts(&text(&out_a).1),
        (3, 0),
        "lab A must lose every echo"
    );
    assert_eq!(
        counts(&text(&out_b).1),
        (3, 3),
        "lab B must answer every echo"
    );
    let to22 = vec![SocketAddr::new(ip("198.18.1.5"), 22)];
    assert_eq!(connect_all(&b, to22), [Err(ErrorKind::ConnectionRefused)]);
    assert_ne!(a.scanner(), b.scanner());
}
