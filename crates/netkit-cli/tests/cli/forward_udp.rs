//! `netkit forward udp:… udp:…`: datagram relaying with real UDP peers: a DNS server
//! (dnsmasq, queried with dig and with many concurrent clients of the test's own), echo
//! upstreams, hundreds of clients, the session bound, idle expiry, IPv6, PROXY v2 headers
//! read by a parser of the test's own, ICMP port unreachable, draining, bad inputs.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::forward_util::{pattern, Forwarder, PATIENCE};
use super::harness::{self, text};

/// Starts `netkit forward LISTEN TARGET ARGS...` with `--json`.
pub(super) fn forwarder(listen: &str, target: &str, args: &[&str]) -> Forwarder {
    let mut all = vec!["--json", "forward", listen, target];
    all.extend_from_slice(args);
    Forwarder::start(&all)
}

/// The forwarder's first UDP listening address.
pub(super) fn udp_addr(fw: &Forwarder) -> SocketAddr {
    let listen = fw.listens[0].strip_prefix("udp:").expect("a udp: listener");
    listen.parse().unwrap()
}

/// A UDP echo upstream on `addr` (port 0): every datagram goes back to its sender. Its
/// receive buffer takes bursts of hundreds of clients at once.
pub(super) fn udp_echo(addr: &str) -> SocketAddr {
    let socket = UdpSocket::bind(addr).unwrap();
    big_receive_buffer(&socket);
    let bound = socket.local_addr().unwrap();
    thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while let Ok((len, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..len], from);
        }
    });
    bound
}

/// Asks for a 4 MiB receive buffer (the kernel caps it at `net.core.rmem_max`).
fn big_receive_buffer(socket: &UdpSocket) {
    let size = 4usize << 20;
    nix::sys::socket::setsockopt(socket, nix::sys::socket::sockopt::RcvBuf, &size).unwrap();
}

/// Waits (bounded by [`PATIENCE`]) until the forwarder has `want` descriptors open.
fn wait_fds(fw: &Forwarder, want: usize) {
    let deadline = Instant::now() + PATIENCE;
    while fw.fd_count() != want {
        assert!(
            Instant::now() < deadline,
            "{} fds open, not {want}",
            fw.fd_count()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// A client socket on `ip` (port 0) with reads bounded by [`PATIENCE`].
pub(super) fn client(ip: &str) -> UdpSocket {
    let socket = UdpSocket::bind((ip, 0)).unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    socket
}

/// Sends `data` to `to` and returns the one reply.
pub(super) fn exchange(socket: &UdpSocket, to: SocketAddr, data: &[u8]) -> Vec<u8> {
    socket.send_to(data, to).unwrap();
    let mut buf = vec![0u8; 65_536];
    let (len, from) = socket.recv_from(&mut buf).expect("a reply");
    assert_eq!(from, to, "the reply comes from the forwarder's address");
    buf.truncate(len);
    buf
}

/// The JSON records of `kind` the forwarder printed, waiting until there are `count`.
pub(super) fn records(fw: &Forwarder, kind: &str, count: usize) -> Vec<Value> {
    let tag = format!("\"type\":\"{kind}\"");
    fw.stdout
        .wait_for(|l| l.contains(&tag), count)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every JSON record of `kind` in a finished forwarder's stdout.
pub(super) fn all_records(stdout: &str, kind: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["type"] == kind)
        .collect()
}

#[test]
fn forward_udp_echo_round_trips_and_logs_the_session_when_idle() {
    let upstream = udp_echo("127.0.0.1:0");
    let target = format!("udp:{upstream}");
    let fw = forwarder("udp:0", &target, &["--idle-timeout", "300ms"]);
    let baseline = fw.fd_count();
    let socket = client("127.0.0.1");
    for i in 0..5u8 {
        let data = vec![i; 100 + usize::from(i)];
        assert_eq!(exchange(&socket, udp_addr(&fw), &data), data);
    }
    let record = &records(&fw, "session", 1)[0];
    assert_eq!(record["client"], socket.local_addr().unwrap().to_string());
    assert_eq!(record["target"], upstream.to_string());
    assert_eq!(
        (
            record["datagrams_up"].as_u64(),
            record["datagrams_down"].as_u64()
        ),
        (Some(5), Some(5))
    );
    assert_eq!(record["bytes_up"], 510);
    assert_eq!(record["bytes_down"], 510);
    assert_eq!(record["close"], "idle-timeout");
    assert_eq!(
        (record["refused"].as_u64(), record["dropped"].as_u64()),
        (Some(0), Some(0))
    );
    wait_fds(&fw, baseline);
    // The same client after expiry: a new session.
    assert_eq!(exchange(&socket, udp_addr(&fw), b"again"), b"again");
    assert_eq!(records(&fw, "session", 2)[1]["datagrams_up"], 1);
}

#[test]
fn forward_udp_500_clients_each_get_only_their_own_replies() {
    let upstream = udp_echo("127.0.0.1:0");
    let fw = forwarder("udp:0", &format!("udp:{upstream}"), &[]);
    let to = udp_addr(&fw);
    let clients: Vec<UdpSocket> = (0..500).map(|_| client("127.0.0.1")).collect();
    for round in 0..3u32 {
        for (i, socket) in clients.iter().enumerate() {
            socket
                .send_to(format!("client {i} round {round}").as_bytes(), to)
                .unwrap();
        }
        for (i, socket) in clients.iter().enumerate() {
            let mut buf = [0u8; 64];
            let (len, _) = socket
                .recv_from(&mut buf)
                .expect("every client gets a reply");
            let got = String::from_utf8_lossy(&buf[..len]);
            assert_eq!(got, format!("client {i} round {round}"));
        }
    }
    let (code, stdout, _) = fw.into_proc().stop("TERM");
    assert_eq!(code, 0);
    let sessions = all_records(&stdout, "session");
    assert_eq!(sessions.len(), 500, "one session per client");
    let vias: HashSet<&str> = sessions
        .iter()
        .map(|s| s["via"].as_str().unwrap())
        .collect();
    assert_eq!(vias.len(), 500, "the target saw 500 different sources");
    assert!(sessions.iter().all(|s| s["datagrams_down"] == 3));
}

#[test]
fn forward_udp_session_bound_drops_new_clients_and_counts_them() {
    let upstream = udp_echo("127.0.0.1:0");
    let fw = forwarder(
        "udp:0",
        &format!("udp:{upstream}"),
        &["--max-conns", "50", "--drain-timeout", "0"],
    );
    let to = udp_addr(&fw);
    let clients: Vec<UdpSocket> = (0..500).map(|_| client("127.0.0.1")).collect();
    for (i, socket) in clients.iter().enumerate() {
        socket.send_to(&(i as u32).to_be_bytes(), to).unwrap();
    }
    // The drop records add up to the 450 clients that found no room.
    let deadline = Instant::now() + PATIENCE;
    let dropped = loop {
        let drops: u64 = fw
            .stdout
            .all()
            .iter()
            .filter(|l| l.contains("\"type\":\"drop\""))
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["datagrams"]
                    .as_u64()
                    .unwrap()
            })
            .sum();
        if drops >= 450 || Instant::now() > deadline {
            break drops;
        }
        thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(dropped, 450);
    // 50 clients have their own reply (the others never will: their datagrams were dropped).
    let mut answered = HashSet::new();
    let deadline = Instant::now() + PATIENCE;
    while answered.len() < 50 && Instant::now() < deadline {
        for (i, socket) in clients.iter().enumerate() {
            socket.set_nonblocking(true).unwrap();
            let mut buf = [0u8; 8];
            if let Ok((len, _)) = socket.recv_from(&mut buf) {
                assert_eq!(&buf[..len], &(i as u32).to_be_bytes());
                answered.insert(socket.local_addr().unwrap().to_string());
            }
        }
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(answered.len(), 50);
    let (code, stdout, _) = fw.into_proc().stop("TERM");
    assert_eq!(code, 0);
    let sessions = all_records(&stdout, "session");
    assert!(
        sessions.iter().all(|s| s["close"] == "done"),
        "answered, so done at SIGTERM: {sessions:?}"
    );
    let drops = all_records(&stdout, "drop");
    assert!(
        drops.iter().all(|d| d["reason"] == "session-limit"),
        "{drops:?}"
    );
    assert_eq!(drops.last().unwrap()["total"], 450);
    let served: HashSet<String> = sessions
        .iter()
        .map(|s| s["client"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        served, answered,
        "exactly the clients with a session had their reply"
    );
}

/// Datagrams of many sizes, the largest IPv4 allows among them, each checked by its SHA-256,
/// with at most `window` bytes unanswered (so no socket buffer on the way can overflow).
fn bulk(socket: &UdpSocket, to: SocketAddr, sizes: &[usize], window: usize) -> (usize, usize) {
    let mut sent: HashMap<u32, [u8; 32]> = HashMap::new();
    let mut in_flight = 0;
    let mut lost = 0;
    let mut received = 0;
    let mut buf = vec![0u8; 65_536];
    let mut next = 0usize;
    while next < sizes.len() || !sent.is_empty() {
        if next < sizes.len() && (in_flight + sizes[next] <= window || sent.is_empty()) {
            let mut data = pattern(next as u64, sizes[next]);
            data[..4].copy_from_slice(&(next as u32).to_be_bytes());
            sent.insert(next as u32, Sha256::digest(&data).into());
            socket.send_to(&data, to).unwrap();
            in_flight += sizes[next];
            next += 1;
            continue;
        }
        match socket.recv_from(&mut buf) {
            Ok((len, _)) => {
                let seq = u32::from_be_bytes(buf[..4].try_into().unwrap());
                let want = sent
                    .remove(&seq)
                    .expect("a datagram sent once comes back once");
                assert_eq!(
                    <[u8; 32]>::from(Sha256::digest(&buf[..len])),
                    want,
                    "datagram {seq}"
                );
                in_flight -= len;
                received += len;
            }
            Err(_) => {
                lost += sent.len();
                break;
            }
        }
    }
    (received, lost)
}

#[test]
fn forward_udp_bulk_datagrams_up_to_64k_arrive_intact_without_loss() {
    let upstream = udp_echo("127.0.0.1:0");
    let fw = forwarder("udp:0", &format!("udp:{upstream}"), &[]);
    let socket = client("127.0.0.1");
    big_receive_buffer(&socket);
    let sizes: Vec<usize> = (0..3000)
        .map(|i| match i % 10 {
            0 => 65_507,
            1 => 8192,
            2 => 4,
            3..=6 => 1400,
            _ => 64 + i % 900,
        })
        .collect();
    let (received, lost) = bulk(&socket, udp_addr(&fw), &sizes, 128 * 1024);
    assert_eq!(
        lost, 0,
        "datagrams lost on loopback with at most 128 KiB in flight"
    );
    assert_eq!(received, sizes.iter().sum::<usize>());
    let (_, stdout, _) = fw.into_proc().stop("TERM");
    let session = &all_records(&stdout, "session")[0];
    assert_eq!(session["datagrams_up"], 3000);
    assert_eq!(session["bytes_down"], received);
}

#[test]
fn forward_udp_ipv6_listen_and_target_and_v4_clients_of_a_dual_stack_listener() {
    let upstream = udp_echo("[::1]:0");
    let fw = forwarder(
        "udp:[::1]:0",
        &format!("udp:{upstream}"),
        &["--idle-timeout", "200ms"],
    );
    let socket = client("::1");
    let big = pattern(6, 65_527 - 8);
    assert_eq!(
        exchange(&socket, udp_addr(&fw), &big),
        big,
        "a large IPv6 datagram"
    );
    let record = &records(&fw, "session", 1)[0];
    assert_eq!(record["client"], socket.local_addr().unwrap().to_string());
    assert!(record["target"].as_str().unwrap().starts_with("[::1]:"));
    drop(fw);
    // [::] takes IPv4 clients too; records show them in IPv4 form, the v4 target works.
    let v4 = udp_echo("127.0.0.1:0");
    let fw = forwarder(
        "udp:[::]:0",
        &format!("udp:{v4}"),
        &["--idle-timeout", "200ms"],
    );
    let port = udp_addr(&fw).port();
    let socket = client("127.0.0.1");
    let to: SocketAddr = ([127, 0, 0, 1], port).into();
    assert_eq!(exchange(&socket, to, b"v4 via [::]"), b"v4 via [::]");
    let record = &records(&fw, "session", 1)[0];
    assert_eq!(record["client"], socket.local_addr().unwrap().to_string());
}

/// A PROXY protocol v2 header as the spec (proxy-protocol.txt, section 2.2) defines it, read
/// independently of netkit's writer: (command, family+transport, source, destination, payload).
pub(crate) fn parse_proxy_v2(datagram: &[u8]) -> (u8, u8, SocketAddr, SocketAddr, &[u8]) {
    const SIG: &[u8; 12] = b"\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A";
    assert_eq!(&datagram[..12], SIG, "signature");
    let (ver_cmd, fam) = (datagram[12], datagram[13]);
    assert_eq!(ver_cmd >> 4, 2, "version 2");
    let len = usize::from(u16::from_be_bytes([datagram[14], datagram[15]]));
    let addrs = &datagram[16..16 + len];
    let port = |at: usize| u16::from_be_bytes([addrs[at], addrs[at + 1]]);
    let (src, dst) = match fam >> 4 {
        1 => {
            let ip = |at: usize| {
                std::net::Ipv4Addr::from(<[u8; 4]>::try_from(&addrs[at..at + 4]).unwrap())
            };
            (
                SocketAddr::from((ip(0), port(8))),
                SocketAddr::from((ip(4), port(10))),
            )
        }
        2 => {
            let ip = |at: usize| {
                std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&addrs[at..at + 16]).unwrap())
            };
            (
                SocketAddr::from((ip(0), port(32))),
                SocketAddr::from((ip(16), port(34))),
            )
        }
        other => panic!("address family {other}"),
    };
    (ver_cmd & 0xF, fam, src, dst, &datagram[16 + len..])
}

/// An upstream that answers each datagram with what followed its PROXY v2 header, after
/// checking the header names `client` (the test's socket) and `listen` (the forwarder's).
fn proxy_v2_round_trip(ip: &str, family: u8) {
    let upstream = UdpSocket::bind((ip, 0)).unwrap();
    upstream.set_read_timeout(Some(PATIENCE)).unwrap();
    let target = format!("udp:{}", upstream.local_addr().unwrap());
    let listen = if ip.contains(':') {
        "udp:[::1]:0"
    } else {
        "udp:0"
    };
    let fw = forwarder(listen, &target, &["--proxy-protocol", "v2"]);
    let socket = client(ip);
    for i in 0..3u8 {
        socket.send_to(&[i; 10], udp_addr(&fw)).unwrap();
        let mut buf = vec![0u8; 65_536];
        let (len, from) = upstream.recv_from(&mut buf).unwrap();
        let (command, fam, src, dst, payload) = parse_proxy_v2(&buf[..len]);
        assert_eq!(
            (command, fam),
            (1, family),
            "PROXY command, DGRAM transport"
        );
        assert_eq!(src, socket.local_addr().unwrap());
        assert_eq!(dst, udp_addr(&fw));
        assert_eq!(payload, &[i; 10]);
        upstream.send_to(payload, from).unwrap();
        let mut reply = [0u8; 64];
        let (n, _) = socket.recv_from(&mut reply).unwrap();
        assert_eq!(&reply[..n], &[i; 10], "replies come back without a header");
    }
    let (_, stdout, _) = fw.into_proc().stop("TERM");
    assert_eq!(
        all_records(&stdout, "session")[0]["bytes_up"],
        30,
        "payload bytes only"
    );
}

#[test]
fn forward_udp_proxy_v2_header_before_every_datagram_v4_and_v6() {
    proxy_v2_round_trip("127.0.0.1", 0x12);
    proxy_v2_round_trip("::1", 0x22);
}

#[test]
fn forward_udp_allow_is_applied_to_each_source() {
    let upstream = udp_echo("127.0.0.1:0");
    let fw = forwarder(
        "udp:0",
        &format!("udp:{upstream}"),
        &["--allow", "127.0.0.2/32"],
    );
    let allowed = client("127.0.0.2");
    assert_eq!(exchange(&allowed, udp_addr(&fw), b"in"), b"in");
    let denied = client("127.0.0.1");
    for _ in 0..3 {
        denied.send_to(b"out", udp_addr(&fw)).unwrap();
    }
    let drop = &records(&fw, "drop", 1)[0];
    assert_eq!(drop["reason"], "denied");
    assert_eq!(
        drop["last_client"],
        denied.local_addr().unwrap().to_string()
    );
    let (_, stdout, _) = fw.into_proc().stop("TERM");
    let sessions = all_records(&stdout, "session");
    assert_eq!(sessions.len(), 1, "no session for the denied client");
    let total: u64 = all_records(&stdout, "drop")
        .iter()
        .map(|d| d["datagrams"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 3);
}

/// A UDP port where datagrams from anyone get ICMP port unreachable (a socket bound there
/// with `SO_REUSEADDR` and connected elsewhere takes nothing else), until [`Refusing::open`]
/// binds a second socket on it that answers: no other socket can take the port meanwhile.
pub(super) struct Refusing {
    _blocker: UdpSocket,
    pub(super) addr: SocketAddr,
}

impl Refusing {
    pub(super) fn new() -> Refusing {
        let blocker = reuse_socket("127.0.0.1:0".parse().unwrap());
        blocker.connect("127.0.0.1:9").unwrap();
        let addr = blocker.local_addr().unwrap();
        Refusing {
            _blocker: blocker,
            addr,
        }
    }

    /// Starts echoing on the port.
    fn open(&self) {
        let socket = reuse_socket(self.addr);
        thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while let Ok((len, from)) = socket.recv_from(&mut buf) {
                let _ = socket.send_to(&buf[..len], from);
            }
        });
    }
}

pub(super) fn reuse_socket(addr: SocketAddr) -> UdpSocket {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    socket.set_reuse_address(true).unwrap();
    socket.bind(&addr.into()).unwrap();
    socket.into()
}

#[test]
fn forward_udp_icmp_port_unreachable_is_counted_and_the_session_lives_on() {
    let target = Refusing::new();
    let fw = forwarder("udp:0", &format!("udp:{}", target.addr), &[]);
    let socket = client("127.0.0.1");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    for _ in 0..3 {
        socket.send_to(b"anyone?", udp_addr(&fw)).unwrap();
        assert!(
            socket.recv_from(&mut [0u8; 16]).is_err(),
            "nothing answers yet"
        );
    }
    target.open();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    assert_eq!(exchange(&socket, udp_addr(&fw), b"now?"), b"now?");
    let (code, stdout, _) = fw.into_proc().stop("TERM");
    assert_eq!(code, 0);
    let sessions = all_records(&stdout, "session");
    assert_eq!(sessions.len(), 1, "one session throughout: {sessions:?}");
    assert!(
        sessions[0]["refused"].as_u64().unwrap() >= 2,
        "{sessions:?}"
    );
    assert_eq!(sessions[0]["datagrams_up"], 4);
    assert_eq!(sessions[0]["datagrams_down"], 1);
}

#[test]
fn forward_udp_sigterm_waits_for_outstanding_replies_and_refuses_new_clients() {
    let upstream = UdpSocket::bind("127.0.0.1:0").unwrap();
    upstream.set_read_timeout(Some(PATIENCE)).unwrap();
    let target = format!("udp:{}", upstream.local_addr().unwrap());
    let args = ["--idle-timeout", "1m", "--drain-timeout", "1m"];
    let fw = forwarder("udp:0", &target, &args);
    let to = udp_addr(&fw);
    let mut buf = [0u8; 64];
    // One client answered, one waiting for its answer when SIGTERM comes.
    let answered = client("127.0.0.1");
    answered.send_to(b"first", to).unwrap();
    let (_, first) = upstream.recv_from(&mut buf).unwrap();
    upstream.send_to(b"first answer", first).unwrap();
    answered.recv_from(&mut buf).unwrap();
    let asking = client("127.0.0.1");
    asking.send_to(b"question", to).unwrap();
    let (_, second) = upstream.recv_from(&mut buf).unwrap();
    fw.signal("TERM");
    // The answered session ends at once: the forwarder is draining now.
    let done = &records(&fw, "session", 1)[0];
    assert_eq!(done["client"], answered.local_addr().unwrap().to_string());
    assert_eq!(done["close"], "done");
    let newcomer = client("127.0.0.1");
    newcomer.send_to(b"late", to).unwrap();
    // The reply outstanding at SIGTERM reaches its client; then the forwarder exits.
    upstream.send_to(b"answer", second).unwrap();
    let (len, _) = asking.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..len], b"answer");
    let (code, stdout, _) = fw.into_proc().finish();
    assert_eq!(code, 0);
    let sessions = all_records(&stdout, "session");
    assert_eq!(
        sessions.len(),
        2,
        "no session for the newcomer: {sessions:?}"
    );
    assert_eq!(
        sessions[1]["client"],
        asking.local_addr().unwrap().to_string()
    );
    assert_eq!(sessions[1]["close"], "done");
    assert_eq!(sessions[1]["datagrams_down"], 1);
    let drops = all_records(&stdout, "drop");
    assert_eq!(drops.len(), 1, "{drops:?}");
    assert_eq!(drops[0]["reason"], "draining");
    assert_eq!(drops[0]["datagrams"], 1);
    assert_eq!(
        drops[0]["last_client"],
        newcomer.local_addr().unwrap().to_string()
    );
}

#[test]
fn forward_udp_bad_inputs_exit_2_naming_the_input() {
    for (args, want) in [
        (
            vec!["udp:0", "127.0.0.1:53"],
            "netkit: 127.0.0.1:53: a udp: listen needs a udp: target",
        ),
        (
            vec!["0", "udp:127.0.0.1:53"],
            "netkit: 127.0.0.1:0: a udp: target needs a udp: listen",
        ),
        (
            vec!["udp:0", "exec:cat"],
            "netkit: exec:cat: a udp: listen needs a udp: target",
        ),
        (
            vec!["unix:@x", "udp:127.0.0.1:53"],
            "netkit: unix:@x: a udp: target needs a udp: listen",
        ),
        (
            vec!["udp:0", "udp:127.0.0.1:0"],
            "netkit: udp:127.0.0.1:0: port must be between 1 and 65535",
        ),
        (
            vec!["udp:", "udp:127.0.0.1:53"],
            "netkit: udp:: empty endpoint",
        ),
        (
            vec!["udp:::1:53", "udp:127.0.0.1:53"],
            "netkit: udp:::1:53: IPv6 addresses need brackets",
        ),
        (
            vec!["udp:0", "udp:127.0.0.1:53", "--proxy-protocol", "v1"],
            "netkit: v1: PROXY protocol v1 has no form for UDP",
        ),
        (
            vec!["udp:0", "udp:127.0.0.1:53", "--http-host", "auto"],
            "netkit: auto: the Host rewrite is for HTTP over TCP",
        ),
    ] {
        let mut all = vec!["forward"];
        all.extend_from_slice(&args);
        let (code, stdout, stderr) = text(&harness::run(&all));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.starts_with(want), "{args:?}: {stderr}");
        assert!(stdout.is_empty());
    }
    for args in [
        vec!["echo", "udp:0"],
        vec!["send", "udp:127.0.0.1:53", "x"],
        vec!["wait", "udp:127.0.0.1:53", "--timeout", "1s"],
    ] {
        let (code, _, stderr) = text(&harness::run(&args));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains("udp:127.0.0.1:53") || stderr.contains("udp:0"),
            "{stderr}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rules.toml");
    std::fs::write(
        &config,
        "[[rule]]\nlisten = \"udp:0\"\ntarget = \"127.0.0.1:53\"\n",
    )
    .unwrap();
    let (code, _, stderr) = text(&harness::run(&[
        "forward",
        "--config",
        config.to_str().unwrap(),
    ]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("rule 1: 127.0.0.1:53: a udp: listen needs a udp: target"),
        "{stderr}"
    );
}

/// A DNS query for `name`, type A, with the given id.
fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// The id and the IPv4 address of a DNS answer with one A record (its last four bytes).
fn dns_answer(reply: &[u8]) -> (u16, std::net::Ipv4Addr) {
    let ancount = u16::from_be_bytes([reply[6], reply[7]]);
    assert_eq!(ancount, 1, "one answer");
    let ip: [u8; 4] = reply[reply.len() - 4..].try_into().unwrap();
    (u16::from_be_bytes([reply[0], reply[1]]), ip.into())
}

#[test]
fn forward_udp_dns_through_dnsmasq_many_concurrent_clients_get_their_own_answers() {
    if !harness::privileged("forward_udp_dns_through_dnsmasq") {
        return;
    }
    let lab = super::wait_util::DnsLab::start();
    for i in 0..200u32 {
        lab.add(
            &format!("h{i}.test"),
            &format!("198.18.{}.{}", i / 250, i % 250 + 1),
        );
    }
    let mut cmd = lab.ns.netkit();
    cmd.args(["--json", "forward", "udp:0", "udp:127.0.0.1:53"]);
    let fw = Forwarder::spawn(cmd, 1);
    let to = udp_addr(&fw);
    // dig, the everyday peer: the same answer through netkit as straight from dnsmasq.
    let dig = |port: u16| {
        let port = port.to_string();
        let out = lab
            .ns
            .command("dig")
            .args([
                "+short",
                "+time=5",
                "+tries=1",
                "-p",
                &port,
                "@127.0.0.1",
                "h7.test",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(dig(53), "198.18.0.8");
    assert_eq!(dig(to.port()), dig(53));
    // 200 clients at once, each asking three times for its own name with its own ids.
    let answers = lab
        .ns
        .run_in(move || {
            let clients: Vec<UdpSocket> = (0..200).map(|_| client("127.0.0.1")).collect();
            let addrs: Vec<String> = clients
                .iter()
                .map(|c| c.local_addr().unwrap().to_string())
                .collect();
            let mut wrong = Vec::new();
            for round in 0..3u16 {
                for (i, socket) in clients.iter().enumerate() {
                    let id = (i as u16) << 2 | round;
                    socket
                        .send_to(&dns_query(id, &format!("h{i}.test")), to)
                        .unwrap();
                }
                for (i, socket) in clients.iter().enumerate() {
                    let mut buf = [0u8; 512];
                    let (len, _) = socket.recv_from(&mut buf).unwrap();
                    let (id, ip) = dns_answer(&buf[..len]);
                    let want: std::net::Ipv4Addr =
                        [198, 18, (i / 250) as u8, (i % 250 + 1) as u8].into();
                    if id != ((i as u16) << 2 | round) || ip != want {
                        wrong.push((i, id, ip));
                    }
                }
            }
            (wrong, addrs)
        })
        .unwrap();
    let (answers, addrs) = answers;
    assert!(answers.is_empty(), "answers for someone else: {answers:?}");
    let (code, stdout, _) = fw.into_proc().stop("TERM");
    assert_eq!(code, 0);
    // A session per client address: the 200 clients' and dig's, unless one client got the
    // port dig had used (the kernel reuses a freed ephemeral port), whose session it joined.
    let sessions: Vec<String> = all_records(&stdout, "session")
        .iter()
        .map(|s| s["client"].as_str().unwrap().to_string())
        .collect();
    let unique: std::collections::BTreeSet<&String> = sessions.iter().collect();
    assert_eq!(
        unique.len(),
        sessions.len(),
        "one session per client: {sessions:?}"
    );
    let missing: Vec<&String> = addrs.iter().filter(|a| !unique.contains(a)).collect();
    assert!(missing.is_empty(), "clients without a session: {missing:?}");
    assert!(
        (200..=201).contains(&sessions.len()),
        "200 clients and dig: {} sessions",
        sessions.len()
    );
}
