//! Forwarding tests that need a network namespace of their own (root): a name whose first
//! address drops SYNs (Happy Eyeballs gets past it in 250 ms, not the connect timeout), a port
//! range on fixed ports, TCP and UDP (free in a fresh namespace, never guessed on the host),
//! and a target that speaks first (the namespace's own TCP counters show no held-back ACK).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};

use super::forward_util::{connect, echo_in, round_trip, Forwarder};
use super::harness::{privileged, Netns, Proc};
use super::wait_util::NetnsEtc;

/// Sends `message` to `addr` from inside `ns` and returns the reply.
fn exchange_in(ns: &Netns, addr: SocketAddr, message: &'static [u8]) -> Vec<u8> {
    ns.run_in(move || round_trip(connect(addr), message))
        .unwrap()
}

/// A namespace where `dual.test` names `silent` (an IPv6 address whose TCP packets matching
/// `drop` are dropped, e.g. `--syn`) first and 127.0.0.1 second, an echo server on 127.0.0.1
/// and `netkit forward 127.0.0.1:0 dual.test:PORT` with a connect timeout well past a test's
/// patience: only Happy Eyeballs gets through in time.
/// Fields drop in order: the forwarder and the echo server before their namespace.
pub(crate) struct SilentFirst {
    /// The forwarder.
    pub fw: Forwarder,
    /// The echo server's address (`live:` prefixed replies).
    pub live: SocketAddr,
    _echo: Proc,
    _etc: NetnsEtc,
    /// The namespace.
    pub ns: Netns,
}

impl SilentFirst {
    /// Sets it up in a namespace tagged `tag`.
    pub fn new(tag: &str, silent: &str, drop: &str) -> SilentFirst {
        let ns = Netns::with_loopback(tag);
        ns.ip(&["-6", "addr", "add", &format!("{silent}/128"), "dev", "lo"]);
        let rule = format!("*filter\n-A INPUT -d {silent}/128 -p tcp {drop} -j DROP\nCOMMIT\n");
        ns.restore(true, &rule).unwrap();
        let etc = NetnsEtc::new(&ns, "nameserver 127.0.0.1\n");
        let hosts = format!("/etc/netns/{}/hosts", ns.name);
        std::fs::write(&hosts, format!("{silent} dual.test\n127.0.0.1 dual.test\n")).unwrap();
        let all = ns.exec(&["getent", "ahosts", "dual.test"]).unwrap();
        assert!(
            all.starts_with(&format!("{silent} ")),
            "the silent address must come first for this test: {all}"
        );
        let (echo, live) = echo_in(&ns, "127.0.0.1:0", &["--prefix", "live:"]);
        let target = format!("dual.test:{}", live.port());
        let mut cmd = ns.netkit();
        cmd.args([
            "forward",
            "127.0.0.1:0",
            &target,
            "--connect-timeout",
            "120s",
        ]);
        let fw = Forwarder::spawn(cmd, 1);
        SilentFirst {
            fw,
            live,
            _echo: echo,
            _etc: etc,
            ns,
        }
    }
}

#[test]
fn forward_happy_eyeballs_gets_past_a_first_address_that_drops_syns() {
    if !privileged("forward_happy_eyeballs_gets_past_a_first_address_that_drops_syns") {
        return;
    }
    let setup = SilentFirst::new("fwhe", "2001:db8::99", "");
    let (ns, fw, live) = (&setup.ns, &setup.fw, setup.live);
    for _ in 0..3 {
        assert_eq!(exchange_in(ns, fw.addr(), b"hello"), b"live:hello");
    }
    let records = fw.wait_for(|l| l.contains(" done"), 3);
    assert!(
        records.iter().all(|l| l.contains(&format!("-> {live}:"))),
        "{records:?}"
    );
}

#[test]
fn forward_port_range_listens_on_each_port_and_keeps_the_offset() {
    if !privileged("forward_port_range_listens_on_each_port_and_keeps_the_offset") {
        return;
    }
    let ns = Netns::with_loopback("fwrange");
    let _echoes: Vec<(Proc, SocketAddr)> = (9000..9003)
        .map(|port| {
            let prefix = format!("{port}:");
            echo_in(&ns, &format!("127.0.0.1:{port}"), &["--prefix", &prefix])
        })
        .collect();
    let mut cmd = ns.netkit();
    cmd.args(["forward", "8000-8002", "127.0.0.1:9000-9002"]);
    let fw = Forwarder::spawn(cmd, 3);
    assert_eq!(
        fw.listens,
        ["127.0.0.1:8000", "127.0.0.1:8001", "127.0.0.1:8002"]
    );
    for (offset, listen) in fw.listens.iter().enumerate() {
        let reply = exchange_in(&ns, listen.parse().unwrap(), b"x");
        assert_eq!(reply, format!("{}:x", 9000 + offset).as_bytes());
    }
}

/// How many ACKs the kernel of `ns` held back and then sent when its delayed-ACK timer fired
/// (`TcpExtDelayedACKs` of the namespace's `/proc/net/netstat`).
fn delayed_acks(ns: &Netns) -> u64 {
    let netstat = ns.exec(&["cat", "/proc/net/netstat"]).unwrap();
    let mut tcp_ext = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (tcp_ext.next().unwrap(), tcp_ext.next().unwrap());
    let (_, count) = names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "DelayedACKs")
        .unwrap();
    count.parse().unwrap()
}

/// The target leg's handshake ends without its last ACK, which rides with the first bytes
/// written (HAProxy's `tcp-smart-connect`). A client that sends nothing must not leave it to
/// the kernel's delayed-ACK timer (200 ms): a target that speaks first (SMTP, SSH, a database)
/// accepts the connection only once that ACK arrives. Held back, the ACK is in every try; up
/// to three tries (each in a namespace of its own), so a forwarder stalled 200 ms by a busy
/// machine is not taken for one that holds it.
#[test]
fn forward_a_target_that_speaks_first_gets_the_handshake_ack_at_once() {
    if !privileged("forward_a_target_that_speaks_first_gets_the_handshake_ack_at_once") {
        return;
    }
    let held: Vec<u64> = (0..3)
        .map(|attempt| held_acks_before_a_banner(&format!("fwfirst{attempt}")))
        .take_while(|&held| held > 0)
        .collect();
    assert!(
        held.len() < 3,
        "an ACK waited for the delayed-ACK timer before the target's banner came, in every try: \
         {held:?}"
    );
}

/// Through a forwarder in a new namespace, a client that sends nothing reads the banner of a
/// target that speaks first; how many ACKs waited for the delayed-ACK timer meanwhile.
fn held_acks_before_a_banner(tag: &str) -> u64 {
    let ns = Netns::with_loopback(tag);
    let listener = ns
        .run_in(|| TcpListener::bind("127.0.0.1:0").unwrap())
        .unwrap();
    let target = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.write_all(b"220 ready\r\n").unwrap();
        let _ = conn.read_to_end(&mut Vec::new());
    });
    let mut cmd = ns.netkit();
    cmd.args(["forward", "127.0.0.1:0", &target.to_string()]);
    let fw = Forwarder::spawn(cmd, 1);
    let before = delayed_acks(&ns);
    let addr = fw.addr();
    let (client, banner) = ns
        .run_in(move || {
            let mut client = connect(addr);
            let mut banner = [0u8; 11];
            client.read_exact(&mut banner).unwrap();
            (client, banner)
        })
        .unwrap();
    assert_eq!(&banner, b"220 ready\r\n");
    // Read while the client is still open: closing has ACKs of its own to hold back.
    let held = delayed_acks(&ns) - before;
    drop(client);
    held
}

/// A UDP server on `port` of 127.0.0.1 in `ns`, answering `PORT:` and the datagram.
fn udp_echo_in(ns: &Netns, port: u16) {
    let socket = ns
        .run_in(move || std::net::UdpSocket::bind(("127.0.0.1", port)).unwrap())
        .unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((len, from)) = socket.recv_from(&mut buf) {
            let reply = [format!("{port}:").as_bytes(), &buf[..len]].concat();
            let _ = socket.send_to(&reply, from);
        }
    });
}

#[test]
fn forward_udp_port_range_listens_on_each_port_and_keeps_the_offset() {
    if !privileged("forward_udp_port_range_listens_on_each_port_and_keeps_the_offset") {
        return;
    }
    let ns = Netns::with_loopback("fwurange");
    for port in 9000..9003 {
        udp_echo_in(&ns, port);
    }
    let mut cmd = ns.netkit();
    cmd.args(["forward", "udp:8000-8002", "udp:127.0.0.1:9000-9002"]);
    let fw = Forwarder::spawn(cmd, 3);
    assert_eq!(
        fw.listens,
        [
            "udp:127.0.0.1:8000",
            "udp:127.0.0.1:8001",
            "udp:127.0.0.1:8002"
        ]
    );
    for offset in 0..3u16 {
        let to = SocketAddr::from(([127, 0, 0, 1], 8000 + offset));
        let reply = ns
            .run_in(move || {
                let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                client
                    .set_read_timeout(Some(super::harness::PATIENCE))
                    .unwrap();
                client.send_to(b"x", to).unwrap();
                let mut buf = [0u8; 64];
                let (len, _) = client.recv_from(&mut buf).unwrap();
                buf[..len].to_vec()
            })
            .unwrap();
        assert_eq!(reply, format!("{}:x", 9000 + offset).as_bytes());
    }
}
