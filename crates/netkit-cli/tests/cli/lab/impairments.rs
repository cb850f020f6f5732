//! Self-tests of the lab's impairments, checked with real peers (iputils ping) and sockets
//! inside the namespaces. Lower bounds on delay are functional checks, not timing
//! assertions; rates are checked with wide bounds over enough packets (the relay is seeded).

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use super::peers::{counts, min_rtt, ping};
use super::{ms, Backend, Direction, Impairment, Lab, Link};
use crate::harness::{privileged, text};

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
    // Whichever back end this kernel gets (the relay here: no sch_netem), the relay's
    // counters show it saw the echoes when it is the one used.
    if let Some(stats) = lab.relay_stats() {
        assert!(stats.queued >= 20, "{stats:?}");
    }
}

#[test]
fn lab_delays_each_link_and_direction_on_its_own() {
    if !privileged("lab_delays_each_link_and_direction_on_its_own") {
        return;
    }
    // 10 ms scanner → router, 30 ms far → router: one round trip crosses each once.
    let lab = Lab::builder("links")
        .impair(
            Link::Near,
            Direction::ToFar,
            Impairment::none().delay(ms(10)),
        )
        .impair(
            Link::Far,
            Direction::ToScanner,
            Impairment::none().delay(ms(30)),
        )
        .hosts("198.18.1.0/24")
        .build()
        .expect("lab");
    let out = ping(&lab, &["-c", "3", "-i", "0.2", "-W", "2", "198.18.1.9"]);
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let min = min_rtt(&stdout);
    assert!(min >= 40.0, "min RTT {min} ms below 10 + 30 ms\n{stdout}");
}

#[test]
fn lab_near_link_delays_the_routers_own_traffic() {
    if !privileged("lab_near_link_delays_the_routers_own_traffic") {
        return;
    }
    let lab = Lab::builder("nearown")
        .impair(
            Link::Near,
            Direction::ToFar,
            Impairment::none().delay(ms(10)),
        )
        .impair(
            Link::Near,
            Direction::ToScanner,
            Impairment::none().delay(ms(15)),
        )
        .build()
        .expect("lab");
    // The router's own address is only the near link away, both ways.
    for router in ["198.19.254.1", "2001:db8:ffff::1"] {
        let out = ping(&lab, &["-c", "3", "-i", "0.2", "-W", "2", router]);
        let (code, stdout, stderr) = text(&out);
        assert_eq!(code, 0, "{stdout}{stderr}");
        let min = min_rtt(&stdout);
        assert!(
            min >= 25.0,
            "{router}: min RTT {min} ms below 10 + 15 ms\n{stdout}"
        );
    }
}

#[test]
fn lab_loss_is_near_the_configured_rate() {
    if !privileged("lab_loss_is_near_the_configured_rate") {
        return;
    }
    let lab = Lab::builder("loss")
        .backend(Backend::Relay)
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
        .backend(Backend::Relay)
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
        // 20% each way: about 36% of echoes come back twice or more.
        assert!(dups >= 5, "{target}: {dups} DUP! lines\n{stdout}{stderr}");
    }
    assert!(lab.relay_stats().expect("relay").duplicated >= 10);
}

/// Sends `n` numbered datagrams from the scanner to a far socket, 200 µs apart; returns the
/// order in which the numbers arrived (waiting at most 3 s).
fn udp_arrival_order(lab: &Lab, n: u32) -> Vec<u32> {
    let far = "198.18.1.5:9000";
    let receiver = lab
        .in_far(move || UdpSocket::bind(far))
        .expect("far thread")
        .expect("bind in far");
    let sender = lab
        .in_scanner(|| UdpSocket::bind("0.0.0.0:0"))
        .expect("scanner thread")
        .expect("bind in scanner");
    // Read while sending: a socket buffer holds only a few hundred small datagrams.
    let reading = std::thread::spawn(move || {
        receiver
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut order = Vec::new();
        let mut buf = [0u8; 4];
        while order.len() < n as usize && Instant::now() < deadline {
            if let Ok(4) = receiver.recv(&mut buf) {
                order.push(u32::from_be_bytes(buf));
            }
        }
        order
    });
    for i in 0..n {
        sender.send_to(&i.to_be_bytes(), far).expect("send");
        std::thread::sleep(Duration::from_micros(200));
    }
    reading.join().expect("reader")
}

#[test]
fn lab_reorders_packets() {
    if !privileged("lab_reorders_packets") {
        return;
    }
    let lab = Lab::builder("reorder")
        .backend(Backend::Relay)
        .delay(ms(10))
        .reorder(0.25)
        .seed(5)
        .hosts("198.18.1.0/24")
        .build()
        .expect("lab");
    let order = udp_arrival_order(&lab, 300);
    assert_eq!(
        order.len(),
        300,
        "no loss configured: every datagram arrives"
    );
    // A datagram that skipped the 10 ms delay overtakes those sent up to 10 ms before it.
    let overtaking = order.windows(2).filter(|w| w[1] < w[0]).count();
    assert!(overtaking >= 10, "{overtaking} inversions in {order:?}");
    assert!(lab.relay_stats().expect("relay").reordered >= 30);
}

#[test]
fn lab_without_reordering_keeps_the_order() {
    if !privileged("lab_without_reordering_keeps_the_order") {
        return;
    }
    let lab = Lab::builder("inorder")
        .delay(ms(10))
        .hosts("198.18.1.0/24")
        .build()
        .expect("lab");
    let order = udp_arrival_order(&lab, 300);
    assert_eq!(order, (0..300).collect::<Vec<_>>());
}

#[test]
fn lab_rate_limit_shapes_a_transfer() {
    if !privileged("lab_rate_limit_shapes_a_transfer") {
        return;
    }
    let lab = Lab::builder("rate")
        .rate("1mbit")
        .open_echo("198.18.1.5", &[7])
        .build()
        .expect("lab");
    let shown = lab
        .router_cmd("tc")
        .args(["qdisc", "show", "dev", "far0"])
        .output();
    let shown = String::from_utf8_lossy(&shown.expect("tc").stdout).into_owned();
    assert!(
        shown.contains("tbf") && shown.contains("rate 1Mbit"),
        "{shown}"
    );
    // 100 kB each way at 1 Mbit/s (125 kB/s) takes at least 0.8 s; 0.5 s is a safe floor.
    let elapsed = lab
        .in_scanner(|| {
            use std::io::{Read, Write};
            let start = Instant::now();
            let mut s = std::net::TcpStream::connect("198.18.1.5:7").expect("connect");
            let data = vec![7u8; 100_000];
            let mut back = vec![0u8; data.len()];
            let mut reader = s.try_clone().expect("clone");
            let echo = std::thread::spawn(move || reader.read_exact(&mut back).map(|()| back));
            s.write_all(&data).expect("write");
            let back = echo.join().expect("reader").expect("read back");
            assert_eq!(back, data);
            start.elapsed()
        })
        .expect("scanner thread");
    assert!(
        elapsed >= Duration::from_millis(500),
        "100 kB through 1 Mbit/s in {elapsed:?}"
    );
}
