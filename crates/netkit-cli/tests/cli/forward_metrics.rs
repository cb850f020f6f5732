//! `forward --metrics ADDR`: the Prometheus text, read by the Prometheus Python client's own
//! parser (the format's reference reader), agrees with what the test sent, for TCP and `udp:`
//! rules.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;

use super::forward_pool::Upstream;
use super::forward_util::{closed_port, connect, Forwarder, PATIENCE};
use super::harness::netkit;

/// A sample: its name and its labels in text (`k="v",...`, sorted).
type Samples = BTreeMap<(String, String), f64>;

pub(super) fn scrape(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    body.to_string()
}

/// The samples as the Prometheus Python client parses them, when it is installed (CI
/// installs python3-prometheus-client); `None` with a note otherwise.
fn parsed_by_prometheus_client(text: &str) -> Option<Samples> {
    const PARSE: &str = "import sys, json\n\
        from prometheus_client.parser import text_string_to_metric_families as parse\n\
        out = []\n\
        for family in parse(sys.stdin.read()):\n\
        \x20   for s in family.samples:\n\
        \x20       labels = ','.join('%s=\"%s\"' % kv for kv in sorted(s.labels.items()))\n\
        \x20       out.append([s.name, labels, s.value])\n\
        print(json.dumps(out))\n";
    let available = Command::new("/usr/bin/python3")
        .args(["-c", "import prometheus_client"])
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must have python3-prometheus-client"
        );
        eprintln!("python3-prometheus-client not installed: format check skipped");
        return None;
    }
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", PARSE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused the text:\n{text}"
    );
    let rows: Vec<(String, String, f64)> = serde_json::from_slice(&out.stdout).unwrap();
    Some(rows.into_iter().map(|(n, l, v)| ((n, l), v)).collect())
}

#[test]
fn forward_metrics_count_connections_bytes_failures_and_target_state() {
    let dead = closed_port();
    let live = Upstream::tagged("aaaa");
    let targets = format!("{},{}", dead.endpoint(), live.target());
    let mut cmd = netkit();
    cmd.args(["forward", "0", &targets, "--metrics", "0"]);
    let fw = Forwarder::spawn(cmd, 1);
    let metrics: SocketAddr = fw.wait_for(|l| l.starts_with("metrics on http://"), 1)[0]
        .trim_start_matches("metrics on http://")
        .trim_end_matches("/metrics")
        .parse()
        .unwrap();
    let message = b"twelve bytes";
    for _ in 0..5 {
        let mut client = connect(fw.addr());
        client.write_all(message).unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert_eq!(got, [b"aaaa".as_slice(), message].concat());
    }
    fw.wait_for(|l| l.contains(" done"), 5);
    let text = scrape(metrics);
    let Some(samples) = parsed_by_prometheus_client(&text) else {
        return;
    };
    let rule = format!("rule=\"{}\"", fw.addr());
    let of = |target: &str| format!("{rule},target=\"{target}\"");
    let (dead, live) = (of(&dead.endpoint()), of(&live.target()));
    let get = |name: &str, labels: &str| -> f64 {
        *samples
            .get(&(name.to_string(), labels.to_string()))
            .unwrap_or_else(|| panic!("no {name}{{{labels}}} in\n{text}"))
    };
    assert_eq!(get("netkit_forward_rule_connections_total", &rule), 5.0);
    assert_eq!(get("netkit_forward_rule_connections_active", &rule), 0.0);
    assert_eq!(
        get(
            "netkit_forward_rule_closed_total",
            &format!("close=\"done\",{rule}")
        ),
        5.0
    );
    assert_eq!(get("netkit_forward_connections_total", &live), 5.0);
    assert_eq!(get("netkit_forward_connections_total", &dead), 0.0);
    assert_eq!(get("netkit_forward_connections_active", &live), 0.0);
    let bytes = |direction: &str| {
        get(
            "netkit_forward_bytes_total",
            &format!("direction=\"{direction}\",{live}"),
        )
    };
    assert_eq!(bytes("up"), 5.0 * 12.0);
    assert_eq!(bytes("down"), 5.0 * 16.0);
    assert!(get("netkit_forward_connect_failures_total", &dead) >= 1.0);
    assert_eq!(get("netkit_forward_connect_failures_total", &live), 0.0);
    assert_eq!(get("netkit_forward_target_up", &dead), 0.0);
    assert_eq!(get("netkit_forward_target_up", &live), 1.0);
    let relayed: f64 = samples
        .iter()
        .filter(|((name, labels), _)| {
            name == "netkit_forward_relay_total" && labels.ends_with(&live)
        })
        .map(|(_, v)| v)
        .sum();
    assert_eq!(relayed, 5.0, "{text}");
    assert_eq!(get("netkit_forward_reloads_total", "result=\"ok\""), 0.0);
}

#[test]
fn forward_metrics_count_udp_sessions_datagrams_and_drops() {
    let upstream = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = upstream.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((len, from)) = upstream.recv_from(&mut buf) {
            let _ = upstream.send_to(&buf[..len], from);
        }
    });
    let mut cmd = netkit();
    cmd.args(["forward", "udp:127.0.0.1:0", &format!("udp:{target}")])
        .args(["--max-conns", "1", "--metrics", "0"]);
    let fw = Forwarder::spawn(cmd, 1);
    let metrics: SocketAddr = fw.wait_for(|l| l.starts_with("metrics on http://"), 1)[0]
        .trim_start_matches("metrics on http://")
        .trim_end_matches("/metrics")
        .parse()
        .unwrap();
    let listen = fw.listens[0].clone();
    let addr: SocketAddr = listen.strip_prefix("udp:").unwrap().parse().unwrap();
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = [0u8; 64];
    for message in [b"one".as_slice(), b"three", b"seven"] {
        client.send_to(message, addr).unwrap();
        let (len, _) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..len], message);
    }
    // A second client finds the one session taken: its datagram is dropped and counted.
    let other = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    other.send_to(b"x", addr).unwrap();
    fw.wait_for(|l| l.contains("dropped") && l.contains("session-limit"), 1);
    let text = scrape(metrics);
    let Some(samples) = parsed_by_prometheus_client(&text) else {
        return;
    };
    let labels = format!("rule=\"{listen}\",target=\"udp:{target}\"");
    let get = |name: &str, labels: &str| -> f64 {
        *samples
            .get(&(name.to_string(), labels.to_string()))
            .unwrap_or_else(|| panic!("no {name}{{{labels}}} in\n{text}"))
    };
    assert_eq!(get("netkit_forward_udp_sessions_total", &labels), 1.0);
    assert_eq!(get("netkit_forward_udp_sessions_active", &labels), 1.0);
    let directed =
        |name: &str, direction: &str| get(name, &format!("direction=\"{direction}\",{labels}"));
    for direction in ["up", "down"] {
        assert_eq!(
            directed("netkit_forward_udp_datagrams_total", direction),
            3.0
        );
        assert_eq!(directed("netkit_forward_udp_bytes_total", direction), 13.0);
    }
    let dropped = |reason: &str| {
        get(
            "netkit_forward_udp_dropped_total",
            &format!("reason=\"{reason}\",rule=\"{listen}\""),
        )
    };
    assert_eq!(dropped("session-limit"), 1.0);
    assert_eq!(dropped("denied"), 0.0);
    assert_eq!(get("netkit_forward_udp_refused_total", &labels), 0.0);
    for (name, want) in [
        ("up", 1.0),
        ("sessions_total", 1.0),
        ("sessions_active", 1.0),
        ("refused_total", 0.0),
    ] {
        let name = format!("netkit_forward_udp_target_{name}");
        assert_eq!(get(&name, &labels), want, "{name}");
    }
}
