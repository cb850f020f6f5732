//! `netkit forward udp:… udp:A,udp:B`: UDP rules with several targets: sessions spread by
//! `--balance`, a target that refuses (ICMP port unreachable) taken out of the rotation with
//! its sessions moved to the next one, `hash` keeping a client address on its target, and the
//! options a UDP rule cannot take refused.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::forward_metrics::scrape;
use super::forward_udp::{
    all_records, client, exchange, forwarder, records, reuse_socket, udp_addr,
};
use super::harness::{self, text};

/// A UDP target on 127.0.0.1 that answers `TAG:` + the datagram until stopped; then its port
/// refuses (a socket connected elsewhere holds it, so nothing else can take it).
struct Tagged {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _holder: UdpSocket,
}

impl Tagged {
    fn start(tag: &'static str) -> Tagged {
        let holder = reuse_socket("127.0.0.1:0".parse().unwrap());
        holder.connect("127.0.0.1:9").unwrap();
        let addr = holder.local_addr().unwrap();
        let socket = reuse_socket(addr);
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut buf = vec![0u8; 2048];
            while !stopped.load(Ordering::Relaxed) {
                if let Ok((len, from)) = socket.recv_from(&mut buf) {
                    let reply = [tag.as_bytes(), b":", &buf[..len]].concat();
                    let _ = socket.send_to(&reply, from);
                }
            }
        });
        Tagged {
            addr,
            stop,
            thread: Some(thread),
            _holder: holder,
        }
    }

    /// Stops answering: from now on its port refuses.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for Tagged {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The forwarder's Prometheus text (its `--metrics` address read from stderr).
fn metric_lines(fw: &super::forward_util::Forwarder) -> String {
    let line = fw.wait_for(|l| l.starts_with("metrics on http://"), 1)[0].clone();
    let addr = line
        .trim_start_matches("metrics on http://")
        .trim_end_matches("/metrics")
        .parse()
        .unwrap();
    scrape(addr)
}

/// The tag of a reply (`a:hello` → `a`).
fn tag(reply: &[u8]) -> String {
    let text = String::from_utf8_lossy(reply);
    text.split(':').next().unwrap().to_string()
}

/// Sends `data` until a reply comes (at most 5 tries, 300 ms each); the reply's tag.
fn ask(socket: &UdpSocket, to: SocketAddr, data: &[u8]) -> String {
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 2048];
    for _ in 0..5 {
        socket.send_to(data, to).unwrap();
        if let Ok((len, _)) = socket.recv_from(&mut buf) {
            return tag(&buf[..len]);
        }
    }
    panic!("no reply to {:?} in 5 tries", String::from_utf8_lossy(data));
}

#[test]
fn forward_udp_round_robin_spreads_sessions_and_moves_them_off_a_refusing_target() {
    let mut a = Tagged::start("a");
    let b = Tagged::start("b");
    let targets = format!("udp:{},udp:{}", a.addr, b.addr);
    let args = ["--balance", "round-robin", "--metrics", "127.0.0.1:0"];
    let fw = forwarder("udp:0", &targets, &args);
    let to = udp_addr(&fw);
    let clients: Vec<UdpSocket> = (0..4).map(|_| client("127.0.0.1")).collect();
    let first: Vec<String> = clients
        .iter()
        .map(|c| tag(&exchange(c, to, b"hello")))
        .collect();
    let on_a = first.iter().filter(|t| *t == "a").count();
    assert_eq!(on_a, 2, "round-robin over two targets: {first:?}");
    a.stop();
    for (c, was) in clients.iter().zip(&first) {
        assert_eq!(ask(c, to, b"again"), "b", "a session that was on {was}");
    }
    assert_eq!(ask(&client("127.0.0.1"), to, b"new"), "b", "a new session");
    let down = records(&fw, "target", 1);
    assert_eq!(down[0]["state"], "down", "{down:?}");
    assert_eq!(down[0]["target"], format!("udp:{}", a.addr), "{down:?}");
    let metrics = metric_lines(&fw);
    let sample = |name: &str, target: SocketAddr| -> u64 {
        let labels = format!("target=\"udp:{target}\"}}");
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with(&format!("netkit_forward_udp_target_{name}{{")) && l.contains(&labels)
            })
            .unwrap_or_else(|| panic!("no {name} for {target} in\n{metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!((sample("up", a.addr), sample("up", b.addr)), (0, 1));
    assert_eq!(sample("sessions_active", a.addr), 0, "moved away");
    assert_eq!(sample("sessions_active", b.addr), 5);
    assert_eq!(
        sample("sessions_total", b.addr),
        5,
        "2 opened, 2 moved, 1 new"
    );
    assert!(sample("refused_total", a.addr) >= 1);
    let (code, stdout, _) = fw.into_proc().stop("TERM");
    assert_eq!(code, 0);
    let sessions = all_records(&stdout, "session");
    assert_eq!(sessions.len(), 5, "{sessions:?}");
    // The first of a's sessions to send met its refusal; the second moved before sending
    // there, a being down by then.
    let refused: Vec<_> = sessions.iter().filter(|s| s["refused"] != 0).collect();
    assert_eq!(
        refused.len(),
        1,
        "one of the two sessions that were on a: {sessions:?}"
    );
    for session in sessions {
        assert_eq!(session["target"], b.addr.to_string(), "{session:?}");
    }
}

#[test]
fn forward_udp_hash_keeps_each_client_address_on_one_target() {
    let a = Tagged::start("a");
    let b = Tagged::start("b");
    let targets = format!("udp:{},udp:{}", a.addr, b.addr);
    let fw = forwarder("udp:0", &targets, &["--balance", "hash"]);
    let to = udp_addr(&fw);
    for n in 2..8 {
        let ip = format!("127.0.0.{n}");
        // Three sessions from the address (each socket a new source port).
        let tags: Vec<String> = (0..3)
            .map(|_| tag(&exchange(&client(&ip), to, b"hash me")))
            .collect();
        assert!(tags.iter().all(|t| *t == tags[0]), "{ip}: {tags:?}");
    }
}

#[test]
fn forward_udp_rule_refuses_active_checks_naming_the_option() {
    let (code, stdout, stderr) = text(&harness::run(&[
        "forward",
        "udp:0",
        "udp:127.0.0.1:53,udp:127.0.0.1:54",
        "--check",
        "tcp",
    ]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with("netkit: tcp: active checks are for TCP targets"),
        "{stderr}"
    );
    assert!(stdout.is_empty());
}
