//! Regressions of `netkit forward`.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use crate::forward_util::*;
use crate::harness::{netkit, privileged, run, text, Netns};

#[test]
fn forward_unknown_endpoint_schemes_said_ipv6_addresses_need_brackets() {
    for target in ["tls:example.test:443", "foo://example.test:80"] {
        let (code, _, stderr) = text(&run(&["forward", "0", target]));
        assert_eq!(code, 2, "{target}: {stderr}");
        assert!(
            stderr.starts_with(&format!("netkit: {target}: unknown endpoint scheme")),
            "{target}: {stderr}"
        );
        assert!(
            stderr.contains("unix:PATH") && stderr.contains("HOST:PORT"),
            "{target}: the accepted forms are named: {stderr}"
        );
    }
    let (code, _, stderr) = text(&run(&["forward", "0", "fe80::1:80"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("need brackets"), "{stderr}");
    // udp: is a scheme now (issue 15); facing a TCP listen it is still exit 2, saying why.
    let (code, _, stderr) = text(&run(&["forward", "0", "udp:127.0.0.1:53"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("needs a udp: listen"), "{stderr}");
}

#[test]
fn forward_sighup_killed_the_forwarder_and_its_connections() {
    let upstream = tcp_echo("127.0.0.1:0");
    let mut fw = Forwarder::start(&["forward", "0", &upstream.to_string()]);
    let mut open = connect(fw.addr());
    open.write_all(b"before").unwrap();
    let mut buf = [0u8; 6];
    open.read_exact(&mut buf).unwrap();
    fw.signal("HUP");
    fw.wait_for(|l| l.contains("SIGHUP"), 1);
    assert!(fw.alive(), "SIGHUP ended the forwarder");
    open.write_all(b"after!").unwrap();
    open.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"after!");
    assert_eq!(round_trip(connect(fw.addr()), b"new"), b"new");
}

#[test]
fn forward_drain_after_sigterm_waited_forever_for_an_idle_connection() {
    let upstream = tcp_echo("127.0.0.1:0");
    let mut fw = Forwarder::start(&[
        "forward",
        "0",
        &upstream.to_string(),
        "--drain-timeout",
        "1s",
    ]);
    let mut idle = connect(fw.addr());
    idle.write_all(b"x").unwrap();
    let mut buf = [0u8; 1];
    idle.read_exact(&mut buf).unwrap();
    fw.signal("TERM");
    assert_eq!(fw.wait(), 0, "still draining after {PATIENCE:?}");
    let closed = fw.wait_for(|l| l.contains("drain-timeout"), 1);
    assert!(closed[0].contains("up 1 B, down 1 B"), "{closed:?}");
    let mut rest = Vec::new();
    let _ = idle.read_to_end(&mut rest);
    assert!(rest.is_empty());
}

#[test]
fn forward_drain_timeout_defaults_to_30s_in_help() {
    let (code, stdout, _) = text(&run(&["forward", "--help"]));
    assert_eq!(code, 0);
    assert!(stdout.contains("--drain-timeout"), "{stdout}");
    assert!(stdout.contains("30s"), "{stdout}");
}

/// Sets SO_LINGER to zero, so that closing the socket sends RST.
fn abort(stream: TcpStream) {
    use nix::sys::socket::{setsockopt, sockopt::Linger};
    let linger = nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    setsockopt(&stream, Linger, &linger).unwrap();
    drop(stream);
}

/// What the next read on `stream` gives: `Ok(bytes)` or the error kind.
fn next_read(stream: &mut TcpStream) -> Result<Vec<u8>, ErrorKind> {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(n) => Ok(buf[..n].to_vec()),
        Err(err) => Err(err.kind()),
    }
}

/// A target that accepts one connection and hands it over.
fn one_shot_target() -> (SocketAddr, std::sync::mpsc::Receiver<TcpStream>) {
    hand_over(TcpListener::bind("127.0.0.1:0").unwrap())
}

/// `listener`'s address, and the first connection it accepts once it comes.
fn hand_over(listener: TcpListener) -> (SocketAddr, std::sync::mpsc::Receiver<TcpStream>) {
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            let _ = tx.send(stream);
        }
    });
    (addr, rx)
}

/// Client → proxy → target: the client aborts; returns what the target's next read sees.
fn client_reset_seen_by_target(
    proxy: impl FnOnce(SocketAddr) -> SocketAddr,
) -> Result<Vec<u8>, ErrorKind> {
    let (target, accepted) = one_shot_target();
    let listen = proxy(target);
    let mut client = connect(listen);
    client.write_all(b"hello").unwrap();
    let mut server = accepted.recv_timeout(PATIENCE).unwrap();
    assert_eq!(next_read(&mut server), Ok(b"hello".to_vec()));
    abort(client);
    next_read(&mut server)
}

/// Client → proxy → target: the target aborts; returns what the client's next read sees.
fn target_reset_seen_by_client(
    proxy: impl FnOnce(SocketAddr) -> SocketAddr,
) -> Result<Vec<u8>, ErrorKind> {
    let (target, accepted) = one_shot_target();
    let listen = proxy(target);
    let mut client = connect(listen);
    client.write_all(b"hello").unwrap();
    let mut server = accepted.recv_timeout(PATIENCE).unwrap();
    assert_eq!(next_read(&mut server), Ok(b"hello".to_vec()));
    abort(server);
    next_read(&mut client)
}

#[test]
fn forward_client_reset_reached_the_target_as_a_clean_fin() {
    let mut forwarders = Vec::new();
    let seen = client_reset_seen_by_target(|target| {
        let fw = Forwarder::start(&["forward", "0", &target.to_string()]);
        let addr = fw.addr();
        forwarders.push(fw);
        addr
    });
    assert_eq!(seen, Err(ErrorKind::ConnectionReset), "netkit");
    forwarders[0].wait_for(|l| l.contains(" reset"), 1);
    if let Some(haproxy) = Haproxy::available() {
        let mut proxies = Vec::new();
        let seen = client_reset_seen_by_target(|target| {
            let proxy = haproxy.tcp(target);
            let addr = proxy.addr;
            proxies.push(proxy);
            addr
        });
        assert_eq!(
            seen,
            Err(ErrorKind::ConnectionReset),
            "HAProxy, the reference"
        );
    }
}

#[test]
fn forward_target_reset_reached_the_client_as_a_clean_fin() {
    let mut forwarders = Vec::new();
    let seen = target_reset_seen_by_client(|target| {
        let fw = Forwarder::start(&["forward", "0", &target.to_string()]);
        let addr = fw.addr();
        forwarders.push(fw);
        addr
    });
    assert_eq!(seen, Err(ErrorKind::ConnectionReset), "netkit");
    // HAProxy 2.6 in TCP mode (without `option nolinger`) turns a target's reset into a clean
    // end of file for the client: a truncated download then looks complete. netkit passes
    // the reset on, as HAProxy itself does in the other direction.
    if let Some(haproxy) = Haproxy::available() {
        let mut proxies = Vec::new();
        let seen = target_reset_seen_by_client(|target| {
            let proxy = haproxy.tcp(target);
            let addr = proxy.addr;
            proxies.push(proxy);
            addr
        });
        eprintln!("HAProxy passes a target reset to the client as: {seen:?}");
    }
}

/// Bytes `stream` sent that its peer's kernel has not acknowledged yet (`TIOCOUTQ`).
fn unacked(stream: &TcpStream) -> usize {
    use std::os::fd::AsRawFd;
    let mut queued: nix::libc::c_int = 0;
    // SAFETY: TIOCOUTQ writes one int into `queued`, which lives across the call.
    let rc = unsafe { nix::libc::ioctl(stream.as_raw_fd(), nix::libc::TIOCOUTQ, &mut queued) };
    assert_eq!(rc, 0, "TIOCOUTQ: {}", std::io::Error::last_os_error());
    usize::try_from(queued).unwrap()
}

/// Sends `len` bytes on `sender`, waits until its peer's kernel acknowledged every one, then
/// resets the connection; `receiver` starts reading 300 ms after the send began. Returns how
/// many bytes it read and how its stream ended (the error kind, or `None` for a clean end
/// of file).
fn delivered_then_reset(
    mut sender: TcpStream,
    mut receiver: TcpStream,
    len: usize,
) -> (usize, Option<ErrorKind>) {
    let reader = thread::spawn(move || {
        thread::sleep(std::time::Duration::from_millis(300));
        read_to_the_end(&mut receiver)
    });
    sender.write_all(&vec![7u8; len]).unwrap();
    let start = std::time::Instant::now();
    while unacked(&sender) > 0 && start.elapsed() < PATIENCE {
        thread::sleep(std::time::Duration::from_millis(5));
    }
    abort(sender);
    reader.join().unwrap()
}

/// Client → `listen` → target, one connection: returns (client, target).
fn pair_through(
    listen: SocketAddr,
    accepted: &std::sync::mpsc::Receiver<TcpStream>,
) -> (TcpStream, TcpStream) {
    let mut client = connect(listen);
    client.write_all(b"hello").unwrap();
    let mut server = accepted.recv_timeout(PATIENCE).unwrap();
    assert_eq!(next_read(&mut server), Ok(b"hello".to_vec()));
    (client, server)
}

/// A side that sent 1 MB, saw every byte acknowledged, then reset the connection: a direct
/// peer reads the whole megabyte, then `ECONNRESET`. Through netkit the reset was passed on
/// at once (`SO_LINGER` 0 on the other leg), which threw away what that leg still had to
/// send: the reader got 120-780 kB of the megabyte, then the reset (HAProxy and socat
/// deliver it all, then a clean end of file, for a target's reset; HAProxy loses the bytes
/// too for a client's). Now the other leg is reset once its peer has acknowledged everything.
#[test]
fn forward_reset_after_a_delivered_reply_threw_away_what_the_other_leg_still_had_to_send() {
    const LEN: usize = 1_000_000;
    let (target, accepted) = one_shot_target();
    let (client, server) = pair_through(target, &accepted);
    let direct = delivered_then_reset(server, client, LEN);
    assert_eq!(direct, (LEN, Some(ErrorKind::ConnectionReset)), "direct");
    for dir in ["down", "up"] {
        let (target, accepted) = one_shot_target();
        let fw = Forwarder::start(&["forward", "0", &target.to_string()]);
        let (client, server) = pair_through(fw.addr(), &accepted);
        let seen = match dir {
            "down" => delivered_then_reset(server, client, LEN),
            _ => delivered_then_reset(client, server, LEN),
        };
        assert_eq!(seen, direct, "netkit, {dir}");
    }
}

/// Sends `reply` on `sender`, waits until its peer's kernel acknowledged every byte, then
/// closes it (a clean end of file, nothing left unread). Then `receiver`, which has read
/// nothing yet, writes `more` twice, 50 ms apart: the first write reaches the closed side,
/// whose kernel answers with a reset, the second meets that reset. Only then does `receiver`
/// read. Returns how many bytes it read and how its stream ended (the error kind, or `None`
/// for a clean end of file).
fn closed_then_written_to(
    mut sender: TcpStream,
    mut receiver: TcpStream,
    reply: &[u8],
    more: &[u8],
) -> (usize, Option<ErrorKind>) {
    sender.write_all(reply).unwrap();
    let start = std::time::Instant::now();
    while unacked(&sender) > 0 && start.elapsed() < PATIENCE {
        thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(unacked(&sender), 0, "the reply was never acknowledged");
    drop(sender);
    for _ in 0..2 {
        thread::sleep(std::time::Duration::from_millis(50));
        let _ = receiver.write_all(more);
    }
    thread::sleep(std::time::Duration::from_millis(50));
    read_to_the_end(&mut receiver)
}

/// A namespace whose TCP buffers keep part of a reply that its receiver does not read in the
/// forwarder (small send buffers, large receive buffers), whatever the host's settings.
fn small_buffers_ns(tag: &str) -> Netns {
    let ns = Netns::with_loopback(tag);
    ns.sysctl(&[
        "net.ipv4.tcp_wmem=4096 16384 65536".to_string(),
        "net.ipv4.tcp_rmem=4096 262144 262144".to_string(),
    ])
    .unwrap();
    ns
}

/// A socket whose receive buffer is the smallest, so that a reply it does not read stays in
/// the forwarder (whose receive buffers are larger).
fn small_receiver() -> socket2::Socket {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket
}

/// A target in `ns` ([`small_receiver`]) that accepts one connection and hands it over.
fn small_target_in(ns: &Netns) -> (SocketAddr, std::sync::mpsc::Receiver<TcpStream>) {
    ns.run_in(|| {
        let listener = small_receiver();
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        listener.bind(&any.into()).unwrap();
        listener.listen(1).unwrap();
        hand_over(listener.into())
    })
    .unwrap()
}

/// In `ns`: a [`small_receiver`] client connects to `listen`, sends `first`, and the target
/// reads it (as many bytes, the same lines); then `exchange(client, target)`.
fn exchange_in<T: Send + 'static>(
    ns: &Netns,
    listen: SocketAddr,
    accepted: std::sync::mpsc::Receiver<TcpStream>,
    first: &'static [u8],
    exchange: impl FnOnce(TcpStream, TcpStream) -> T + Send + 'static,
) -> T {
    ns.run_in(move || {
        let socket = small_receiver();
        socket.connect(&listen.into()).unwrap();
        let mut client: TcpStream = socket.into();
        client.write_all(first).unwrap();
        let mut server = accepted.recv_timeout(PATIENCE).unwrap();
        server.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut head = vec![0u8; first.len()];
        server.read_exact(&mut head).unwrap();
        // Its lines, in any order and case (HAProxy lower-cases and moves the Host).
        let lines = |bytes: &[u8]| {
            let mut lines: Vec<_> = bytes
                .to_ascii_lowercase()
                .split(|b| *b == b'\n')
                .map(<[u8]>::to_vec)
                .collect();
            lines.sort();
            lines
        };
        assert_eq!(lines(&head), lines(first));
        exchange(client, server)
    })
    .unwrap()
}

/// Audit on impaired links: a side that sent its reply and closed while its peer was still
/// writing (a server closing after its answer, a client that sent its request and hung up):
/// the peer's next bytes draw a reset from the closed side's kernel, and the forwarder's
/// write to that side failed. The forwarder then dropped the other direction at once, with
/// the end of the reply still in its buffers (unread on the closed side's leg, or in a splice
/// pipe), and reset the peer: it got part of the reply, then `ECONNRESET` (here 51200 of
/// 131072 bytes, every run; a direct peer reads it all, then its end of file). Now the
/// direction from the closed side runs to its end (its end of file, or its reset) before the
/// failure is passed on. Small TCP buffers (a namespace of its own) keep part of the reply in
/// the forwarder whatever the host's settings. (HAProxy 2.6 with the host's buffers, 256 KB:
/// all of it when the target closed; 114688 bytes, then a reset, when the client closed.)
#[test]
fn forward_write_to_a_side_that_closed_threw_away_the_end_of_its_reply() {
    if !privileged("forward_write_to_a_side_that_closed_threw_away_the_end_of_its_reply") {
        return;
    }
    const LEN: usize = 128 * 1024;
    let ns = small_buffers_ns("fwclose");
    for dir in ["down", "up"] {
        let (target, accepted) = small_target_in(&ns);
        let mut cmd = ns.netkit();
        cmd.args(["forward", "0", &target.to_string()]);
        let fw = Forwarder::spawn(cmd, 1);
        let seen = exchange_in(&ns, fw.addr(), accepted, b"hello", move |client, server| {
            let reply = vec![7u8; LEN];
            match dir {
                "down" => closed_then_written_to(server, client, &reply, b"more"),
                _ => closed_then_written_to(client, server, &reply, b"more"),
            }
        });
        assert_eq!(seen, (LEN, None), "netkit, {dir}");
    }
}

/// The same with `--http-host`, whose relay did not read the closed side to its end: a
/// target that answered a request with 128 KiB and closed before the rest of its body came
/// (a server answering early: 413, a redirect) reset the connection when that rest came, and
/// the client got 51200 of the 131115 bytes of the answer, then `ECONNRESET` (HAProxy in
/// `mode http`: all of it, then its end of file); a client that sent a 128 KiB body and hung
/// up as its answer began (`100 Continue`) cost the target all but 55296 bytes of it. (A
/// direct peer reads it all: the closed side's kernel had it acknowledged.) The request is
/// written as the relay rewrites it (Host first), so the target gets the client's bytes.
#[test]
fn forward_http_write_to_a_side_that_closed_threw_away_the_end_of_its_reply() {
    if !privileged("forward_http_write_to_a_side_that_closed_threw_away_the_end_of_its_reply") {
        return;
    }
    const LEN: usize = 128 * 1024;
    const HEAD: &[u8] =
        b"POST / HTTP/1.1\r\nHost: rewritten.test\r\nContent-Length: 131072\r\n\r\n";
    let ns = small_buffers_ns("fwhclose");
    let haproxy = Haproxy::available().is_some();
    // HAProxy loses the body when the client hung up (59328 bytes, then a reset): not compared.
    for (proxy, dir) in [("netkit", "down"), ("netkit", "up"), ("haproxy", "down")] {
        if proxy == "haproxy" && !haproxy {
            continue;
        }
        let (target, accepted) = small_target_in(&ns);
        let dir_ = tempfile::tempdir().unwrap();
        let (_proc, listen) = match proxy {
            "netkit" => {
                let mut cmd = ns.netkit();
                cmd.args(["forward", "0", &target.to_string(), "--http-host", HOST]);
                let fw = Forwarder::spawn(cmd, 1);
                let listen = fw.addr();
                (fw.into_proc(), listen)
            }
            _ => {
                let config = format!(
                    "defaults\n  mode http\n  timeout connect 5s\n  timeout client 5s\n  \
                     timeout server 5s\nfrontend f\n  bind 127.0.0.1:7002\n  \
                     http-request set-header Host {HOST}\n  default_backend b\n\
                     backend b\n  server s {target}\n"
                );
                let proc = haproxy_in(&ns, dir_.path(), &config, "127.0.0.1:7002");
                (proc, "127.0.0.1:7002".parse().unwrap())
            }
        };
        let (seen, whole) = exchange_in(&ns, listen, accepted, HEAD, move |client, server| {
            let mut reply = match dir {
                "down" => b"HTTP/1.1 200 OK\r\nContent-Length: 131072\r\n\r\n".to_vec(),
                _ => Vec::new(),
            };
            reply.resize(reply.len() + LEN, 7);
            let seen = match dir {
                "down" => closed_then_written_to(server, client, &reply, b"more"),
                _ => {
                    closed_then_written_to(client, server, &reply, b"HTTP/1.1 100 Continue\r\n\r\n")
                }
            };
            (seen, reply.len())
        });
        assert_eq!(seen, (whole, None), "{proxy}, {dir}");
    }
}

/// The target has sent bytes the client does not read, and the client has sent more than the
/// target reads (both held in the forwarder); then the client resets. Returns how many of the
/// client's bytes the target reads after that, and how its stream ends (the error kind, or
/// `None` for a clean end of file).
fn reset_with_bytes_held_both_ways(
    mut client: TcpStream,
    mut server: TcpStream,
) -> (usize, Option<ErrorKind>) {
    // As much as the buffers take, up to 256 KiB each way, without blocking.
    let fill = |stream: &mut TcpStream| {
        stream.set_nonblocking(true).unwrap();
        for _ in 0..16 {
            match stream.write(&[9u8; 16384]) {
                Ok(_) => thread::sleep(std::time::Duration::from_millis(10)),
                Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                Err(err) => panic!("write: {err}"),
            }
        }
        stream.set_nonblocking(false).unwrap();
    };
    fill(&mut server);
    fill(&mut client);
    thread::sleep(std::time::Duration::from_millis(200));
    abort(client);
    thread::sleep(std::time::Duration::from_millis(200));
    read_to_the_end(&mut server)
}

/// Audit on impaired labs (a client beside the forwarder resetting while the target's reply
/// was still on its way): the forwarder's write of the reply to the client met the reset and
/// took the kernel's error, so reading the rest of what the client had sent then ended in a
/// plain end of file, and the forwarder passed it on to the target as a FIN before resetting
/// that leg: the target read 113152 of the 159829 bytes the client sent, then a clean end of
/// file, a cut stream passed for a whole one (direct: 57920 bytes, then `ECONNRESET`; HAProxy
/// also a clean end of file). The end of file of a side that reset is now passed on only if
/// that side's FIN came (`TCP_INFO` counts it in the bytes received), else the reset is.
#[test]
fn forward_client_reset_met_by_a_write_reached_the_target_as_a_clean_fin() {
    if !privileged("forward_client_reset_met_by_a_write_reached_the_target_as_a_clean_fin") {
        return;
    }
    let ns = small_buffers_ns("fwrstw");
    let (target, accepted) = small_target_in(&ns);
    let direct = exchange_in(
        &ns,
        target,
        accepted,
        b"hello",
        reset_with_bytes_held_both_ways,
    );
    assert_eq!(
        direct.1,
        Some(ErrorKind::ConnectionReset),
        "direct: {direct:?}"
    );
    let (target, accepted) = small_target_in(&ns);
    let mut cmd = ns.netkit();
    cmd.args(["forward", "0", &target.to_string()]);
    let fw = Forwarder::spawn(cmd, 1);
    let seen = exchange_in(
        &ns,
        fw.addr(),
        accepted,
        b"hello",
        reset_with_bytes_held_both_ways,
    );
    assert_eq!(seen.1, direct.1, "netkit: {seen:?}, direct: {direct:?}");
}

/// A target that talks without end and reads only between its writes (one thread, blocking
/// writes, as simple servers are written): while a write waits for room it reads nothing.
/// Returns its address, and a channel that says what it saw: the bytes it read and how its
/// stream ended (`None`: a clean end of file).
fn talking_target() -> (
    SocketAddr,
    std::sync::mpsc::Receiver<(usize, Option<ErrorKind>)>,
) {
    let listener = small_receiver();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    listener.bind(&any.into()).unwrap();
    listener.listen(1).unwrap();
    let (addr, accepted) = hand_over(listener.into());
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let Ok(mut stream) = accepted.recv() else {
            return;
        };
        let mut buf = vec![0u8; 65536];
        let mut got = 0;
        let end = loop {
            stream.set_nonblocking(false).unwrap();
            if let Err(err) = stream.write_all(&[7u8; 65536]) {
                break Some(err.kind());
            }
            stream.set_nonblocking(true).unwrap();
            match stream.read(&mut buf) {
                Ok(0) => break None,
                Ok(n) => got += n,
                Err(err) if err.kind() == ErrorKind::WouldBlock => {}
                Err(err) => break Some(err.kind()),
            }
        };
        let _ = tx.send((got, end));
    });
    (addr, rx)
}

/// A client that sends as fast as `listen` takes its bytes (8 MiB at most) while it reads the
/// first 200 kB of the reply, goes on sending for 300 ms, then resets the connection.
fn send_read_then_reset(listen: SocketAddr) {
    let mut client = connect(listen);
    client.set_nonblocking(true).unwrap();
    let chunk = [3u8; 65536];
    let mut buf = vec![0u8; 65536];
    let (mut sent, mut read) = (0, 0);
    let start = std::time::Instant::now();
    while read < 200_000 && start.elapsed() < PATIENCE {
        if sent < 8 << 20 {
            sent += client.write(&chunk).unwrap_or(0);
        }
        match client.read(&mut buf) {
            Ok(n) => read += n,
            Err(err) if err.kind() == ErrorKind::WouldBlock => {
                thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(err) => panic!("client read: {err}"),
        }
    }
    let more = std::time::Instant::now();
    while more.elapsed() < std::time::Duration::from_millis(300) {
        if client.write(&chunk).is_err() {
            thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    abort(client);
}

/// Audit on impaired labs (a client resetting while it still had megabytes on their way to a
/// target that talks without end and reads only between its writes): the forwarder's write
/// of the reply met the client's reset, so it read the client's last bytes on to pass them
/// to the target first, and read the target no more; the target, blocked writing, never read
/// them: the connection stayed open for good, no `conn` line, and a SIGTERM waited out the
/// whole drain. Directly (and through socat) the target's write fails with `ECONNRESET` at
/// once; HAProxy holds it until its `timeout server`. The target's output is now read and
/// thrown away while the client's last bytes go to it (and a target that takes nothing for
/// 10 s is given the reset without them).
#[test]
fn forward_client_reset_left_a_target_that_writes_before_it_reads_hanging_for_good() {
    let (target, seen) = talking_target();
    send_read_then_reset(target);
    let direct = seen
        .recv_timeout(PATIENCE)
        .expect("direct: the target's stream ended");
    assert_eq!(
        direct.1,
        Some(ErrorKind::ConnectionReset),
        "direct: {direct:?}"
    );
    let (target, seen) = talking_target();
    let fw = Forwarder::start(&["forward", "0", &target.to_string()]);
    send_read_then_reset(fw.addr());
    let through = seen
        .recv_timeout(PATIENCE)
        .expect("netkit: the target's stream ended");
    assert_eq!(
        through.1, direct.1,
        "netkit: {through:?}, direct: {direct:?}"
    );
    fw.wait_for(|l| l.contains(" reset"), 1);
}

/// Fills a connection to `listen` until it takes no more (a target that reads nothing at the
/// far end), then resets it. Returns what the client wrote.
fn fill_then_reset(listen: SocketAddr) -> usize {
    let client = connect(listen);
    client.set_nonblocking(true).unwrap();
    let sent = fill(&client);
    abort(client);
    sent
}

/// Writes to non-blocking `client` until it takes no more (50 writes in a row, 10 ms apart,
/// took nothing). Returns what it wrote.
fn fill<S>(client: &S) -> usize
where
    for<'a> &'a S: Write,
{
    let chunk = [5u8; 65536];
    let (mut sent, mut refused) = (0, 0);
    let start = std::time::Instant::now();
    let mut writer = client;
    while refused < 50 && sent < 64 << 20 && start.elapsed() < PATIENCE {
        match writer.write(&chunk) {
            Ok(n) => (sent, refused) = (sent + n, 0),
            Err(err) if err.kind() == ErrorKind::WouldBlock => {
                refused += 1;
                thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(err) => panic!("client write: {err}"),
        }
    }
    sent
}

/// [`fill_then_reset`] through `fw`, while the target's end of the connection is accepted:
/// that end.
fn fill_then_reset_through<S>(fw: &Forwarder, accepted: &std::sync::mpsc::Receiver<S>) -> S {
    let listen = fw.addr();
    let filler = thread::spawn(move || fill_then_reset(listen));
    let server = accepted.recv_timeout(PATIENCE).unwrap();
    filler.join().unwrap();
    server
}

/// Whether `stream` reports a reset (`POLLERR` or `POLLHUP`; an end of file alone is neither)
/// within `patience`, without reading it.
fn reset_pending(stream: &impl std::os::fd::AsFd, patience: std::time::Duration) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(stream.as_fd(), PollFlags::empty())];
    let timeout = PollTimeout::try_from(patience).unwrap();
    poll(&mut fds, timeout).unwrap();
    let revents = fds[0].revents().unwrap_or(PollFlags::empty());
    revents.intersects(PollFlags::POLLERR | PollFlags::POLLHUP)
}

/// A client that filled the connection to a target reading nothing, and writing nothing,
/// then reset it: both directions of the forwarder waited on the target (one to write, one
/// to read) and nothing read the client leg, so its reset went unseen for good (the target
/// kept the connection, no `conn` line). Directly the target gets the reset at once;
/// HAProxy sees the error on the client's descriptor. Now a side whose error shows while
/// its reads wait behind a stalled peer is given up once that peer has taken nothing for
/// 10 s, and the reset is passed on.
#[test]
fn forward_client_reset_went_unseen_while_both_directions_waited_on_the_target() {
    let (target, accepted) = one_shot_target();
    fill_then_reset(target);
    let direct = accepted.recv_timeout(PATIENCE).unwrap();
    assert!(reset_pending(&direct, PATIENCE), "direct: no reset");
    let (target, accepted) = one_shot_target();
    let fw = Forwarder::start(&["forward", "0", &target.to_string()]);
    let server = fill_then_reset_through(&fw, &accepted);
    assert!(reset_pending(&server, PATIENCE), "netkit: no reset");
    fw.wait_for(|l| l.contains(" reset"), 1);
}

/// The same behind a Unix socket target (TCP client, `unix:` target reading nothing and
/// writing nothing): whether the target's peer stopped taking bytes was asked of `TCP_INFO`
/// alone, which a Unix socket has not, so the client's reset went unseen for good there (the
/// `conn` line came only when the test ended). Now a Unix peer whose unread bytes do not
/// move for 10 s has stalled too, and the target's connection is closed (it reads what it
/// was sent, then its end: a Unix socket carries no reset).
#[test]
fn forward_client_reset_went_unseen_while_both_directions_waited_on_a_unix_target() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let (tx, accepted) = std::sync::mpsc::channel();
    thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            let _ = tx.send(stream);
        }
    });
    let fw = Forwarder::start(&["forward", "0", &format!("unix:{}", path.display())]);
    let server = fill_then_reset_through(&fw, &accepted);
    assert!(
        reset_pending(&server, PATIENCE),
        "netkit: the target's connection stayed"
    );
    fw.wait_for(|l| l.contains(" reset"), 1);
}

/// A target's first bytes, which the client of [`fill_then_close_unix`] never reads.
const GREETING: &[u8] = b"hello from the target\n";

/// Sends [`GREETING`] on the first connection `accept` gives, then hands that connection
/// over; the target reads nothing and writes nothing more.
fn greeting_target<S: Write + Send + 'static>(
    accept: impl FnOnce() -> std::io::Result<S> + Send + 'static,
) -> std::sync::mpsc::Receiver<S> {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        if let Ok(mut stream) = accept() {
            stream.write_all(GREETING).unwrap();
            let _ = tx.send(stream);
        }
    });
    rx
}

/// A Unix-socket client of `path`: waits until the target's greeting is in its receive
/// queue, fills the connection without reading it, then closes. A Unix stream closed with
/// bytes unread gives its peer `ECONNRESET` (the kernel's reset of a Unix stream), as a TCP
/// socket closed so sends a reset.
fn fill_then_close_unix(path: &std::path::Path) {
    let client = std::os::unix::net::UnixStream::connect(path).unwrap();
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(
        std::os::fd::AsFd::as_fd(&client),
        PollFlags::POLLIN,
    )];
    let greeted = poll(&mut fds, PollTimeout::try_from(PATIENCE).unwrap()).unwrap();
    assert_eq!(greeted, 1, "the greeting never came");
    client.set_nonblocking(true).unwrap();
    fill(&client);
}

/// A Unix-socket client (listen `unix:PATH`) that filled the connection to a target reading
/// nothing, and closed without reading the target's greeting: the forwarder's client leg got
/// `ECONNRESET`, the Unix stream's reset, but both directions waited on the target (one to
/// write to it, one to read it) and the watch for a source gone abortively knew TCP alone
/// (`TCP_INFO`'s closed state), so the target kept the connection for good (no `conn` line
/// until it closed). Directly (a Unix server) the target sees the reset at once; socat and
/// HAProxy hold the connection as netkit did. Now a Unix source with its error pending is
/// gone abortively too, given up once the target has taken nothing for 10 s, and the target
/// gets the reset.
#[test]
fn forward_unix_client_closing_with_unread_data_went_unseen_while_both_directions_waited() {
    let dir = tempfile::tempdir().unwrap();
    let direct = dir.path().join("direct.sock");
    let listener = std::os::unix::net::UnixListener::bind(&direct).unwrap();
    let accepted = greeting_target(move || listener.accept().map(|(s, _)| s));
    fill_then_close_unix(&direct);
    let server = accepted.recv_timeout(PATIENCE).unwrap();
    assert!(reset_pending(&server, PATIENCE), "direct: no reset");

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap();
    let accepted = greeting_target(move || listener.accept().map(|(s, _)| s));
    let listen = dir.path().join("l.sock");
    let fw = Forwarder::start(&[
        "forward",
        &format!("unix:{}", listen.display()),
        &target.to_string(),
    ]);
    fill_then_close_unix(&listen);
    let mut server = accepted.recv_timeout(PATIENCE).unwrap();
    assert!(
        reset_pending(&server, PATIENCE),
        "netkit: the target's connection stayed"
    );
    fw.wait_for(|l| l.contains(" reset"), 1);
    let mut sink = Vec::new();
    server.set_read_timeout(Some(PATIENCE)).unwrap();
    let end = server.read_to_end(&mut sink);
    assert_eq!(
        end.map_err(|e| e.kind()).err(),
        Some(ErrorKind::ConnectionReset),
        "netkit: the target's stream ended cleanly after {} B",
        sink.len()
    );
}

/// A target that writes until the connection takes no more (its reply, which its client
/// does not read yet), reads 416 bytes of what comes, then resets (on a Unix socket, closes
/// with the rest unread: the Unix stream's reset).
fn fill_then_reset_after_416<S>(
    accept: impl FnOnce() -> std::io::Result<S> + Send + 'static,
    nonblocking: fn(&S, bool),
    reset: fn(S),
) where
    S: Read + Send + 'static,
    for<'a> &'a S: Write,
{
    thread::spawn(move || {
        if let Ok(mut stream) = accept() {
            nonblocking(&stream, true);
            fill(&stream);
            nonblocking(&stream, false);
            let _ = stream.read_exact(&mut [0u8; 416]);
            reset(stream);
        }
    });
}

/// A Unix-socket client of `path` that sends 16 MB before it reads (or what the connection
/// takes before it breaks), half-closes, then reads to its end: whether the reset of its
/// peer reached it, as the error of a write or of its last read.
fn send_then_read_unix(path: &std::path::Path) -> (Option<ErrorKind>, Result<usize, ErrorKind>) {
    let mut client = std::os::unix::net::UnixStream::connect(path).unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    let sent = client.write_all(&vec![7u8; 16 << 20]).map_err(|e| e.kind());
    let _ = client.shutdown(std::net::Shutdown::Write);
    let mut got = Vec::new();
    let end = client.read_to_end(&mut got).map_err(|e| e.kind());
    (sent.err(), end)
}

/// A target that reset while a client on a `unix:` listen was still sending reached that
/// client as a clean end of file after the target's bytes, its writes all taken: the reset
/// met a write to the target, and the client's bytes the target would never take were read
/// and thrown away while the target's last bytes went to the client; the forwarder then
/// closed a Unix stream with nothing left unread, which is an end of file (a Unix stream's
/// reset is a close with bytes unread). Directly, a Unix server that closes with the
/// client's bytes unread fails the client's next write (`EPIPE`) or gives its read
/// `ECONNRESET`. Now the forwarder keeps the last of the thrown-away bytes unread, and the
/// client reads the target's bytes, then `ECONNRESET`.
#[test]
fn forward_target_reset_reached_a_unix_client_as_a_clean_end_of_file() {
    use std::os::unix::net::UnixStream;
    let dir = tempfile::tempdir().unwrap();
    let direct = dir.path().join("direct.sock");
    let listener = std::os::unix::net::UnixListener::bind(&direct).unwrap();
    fill_then_reset_after_416(
        move || listener.accept().map(|(s, _)| s),
        |s: &UnixStream, on| s.set_nonblocking(on).unwrap(),
        drop,
    );
    let (write_err, end) = send_then_read_unix(&direct);
    assert!(
        write_err.is_some() || end == Err(ErrorKind::ConnectionReset),
        "direct: the client saw no reset: {write_err:?}, {end:?}"
    );

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap();
    fill_then_reset_after_416(
        move || listener.accept().map(|(s, _)| s),
        |s: &TcpStream, on| s.set_nonblocking(on).unwrap(),
        abort,
    );
    let listen = dir.path().join("l.sock");
    let fw = Forwarder::start(&[
        "forward",
        &format!("unix:{}", listen.display()),
        &target.to_string(),
    ]);
    let (write_err, end) = send_then_read_unix(&listen);
    assert!(
        write_err.is_some() || end == Err(ErrorKind::ConnectionReset),
        "netkit: the client saw no reset: {write_err:?}, {end:?}"
    );
    fw.wait_for(|l| l.contains(" reset"), 1);
}

/// Client → `listen` → target: the client sends `request`, the target reads its head and
/// answers nothing, then the client resets. Whether the target sees the reset (without
/// reading), within the patience.
fn reset_after_unanswered_request(
    listen: SocketAddr,
    accepted: std::sync::mpsc::Receiver<TcpStream>,
    request: &[u8],
) -> bool {
    let mut client = connect(listen);
    client.write_all(request).unwrap();
    let mut server = accepted.recv_timeout(PATIENCE).unwrap();
    server.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = server.read(&mut buf).unwrap();
        assert!(n > 0, "the target's stream ended early: {head:?}");
        head.extend_from_slice(&buf[..n]);
    }
    abort(client);
    reset_pending(&server, PATIENCE)
}

/// A client that reset while its request waited for a response deciding what comes next (an
/// Upgrade, which may start a tunnel) from a target that never answers: the `--http-host`
/// relay waited for that response and read the client no more, and the target kept the
/// connection for good. Directly it gets the reset at once; now the wait ends when the
/// client is gone abortively.
#[test]
fn forward_http_client_reset_while_a_request_waited_for_its_response_went_unseen() {
    let request = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    let (target, accepted) = one_shot_target();
    assert!(
        reset_after_unanswered_request(target, accepted, request),
        "direct: no reset"
    );
    let (target, accepted) = one_shot_target();
    let fw = Forwarder::start(&["forward", "0", &target.to_string(), "--http-host", HOST]);
    assert!(
        reset_after_unanswered_request(fw.addr(), accepted, request),
        "netkit: no reset"
    );
    fw.wait_for(|l| l.contains(" reset"), 1);
}

/// Whether `text` is an RFC 3339 UTC time with milliseconds (`2026-11-24T17:22:39.123Z`)
/// within an hour of now.
fn is_recent_rfc3339_utc(text: &str) -> bool {
    let shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    let shaped = text.len() == shape.len()
        && text.bytes().zip(shape.bytes()).all(|(t, s)| match s {
            b'd' => t.is_ascii_digit(),
            other => t == other,
        });
    if !shaped {
        return false;
    }
    let date = std::process::Command::new("date")
        .args(["-u", "-d", text, "+%s"])
        .output()
        .unwrap();
    let then: u64 = String::from_utf8_lossy(&date.stdout)
        .trim()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    then.abs_diff(now) < 3600
}

#[test]
fn forward_conn_records_had_no_timestamp() {
    let upstream = tcp_echo("127.0.0.1:0");
    let fw = Forwarder::start(&["forward", "0", &upstream.to_string()]);
    assert_eq!(round_trip(connect(fw.addr()), b"t"), b"t");
    let line = fw.wait_for(|l| l.contains(" done"), 1).remove(0);
    let stamp = line.split(' ').next().unwrap();
    assert!(is_recent_rfc3339_utc(stamp), "{line}");

    let mut cmd = netkit();
    cmd.args(["--json", "forward", "0", &upstream.to_string()]);
    cmd.stdout(std::process::Stdio::piped());
    let fw = Forwarder::spawn(cmd, 1);
    assert_eq!(round_trip(connect(fw.addr()), b"j"), b"j");
    fw.signal("TERM");
    let out = fw.stdout.to_end().join("\n");
    let conn: serde_json::Value = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["type"] == "conn")
        .expect(&out);
    let time = conn["time"].as_str().expect(&out).to_string();
    assert!(is_recent_rfc3339_utc(&time), "{out}");
    let record: netkit::report::forward::ConnRecord = serde_json::from_value(conn).unwrap();
    assert_eq!(record.time, time);
}

#[test]
fn forward_took_a_live_unix_socket_with_a_full_accept_queue_for_stale() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.sock");
    let (server, _queued) = super::echo::full_unix_server(&path);
    let upstream = tcp_echo("127.0.0.1:0");
    let listen = format!("unix:{}", path.display());
    let (code, _, stderr) = super::echo::run_bounded(&["forward", &listen, &upstream.to_string()]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("live socket"), "{stderr}");
    assert!(path.exists(), "the live server's socket file was removed");
    super::echo::still_reaches(&server, &path);
}

/// The Host every request must reach the upstream with.
/// Sends a request for `/sentinel` through `fw` and asserts that it alone, of all the
/// connection's requests so far, reached `upstream`.
fn only_the_sentinel_reached(fw: &Forwarder, upstream: &HttpUpstream) {
    let sentinel = round_trip(connect(fw.addr()), b"GET /sentinel HTTP/1.1\r\n\r\n");
    assert!(sentinel.starts_with(b"HTTP/1.1 200"));
    let requests = upstream.wait_requests(1);
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0]["target"], "/sentinel");
}

/// Asserts that the first bytes each stream reads (its read timeout set) are a 400 answer:
/// `(proxy, the bytes sent, stream)`, all open, none half-closed.
fn each_answered_400<S: Read>(streams: Vec<(&str, &[u8], S)>) {
    for (name, sent, mut stream) in streams {
        let mut buf = [0u8; 64];
        let reply = match stream.read(&mut buf) {
            Ok(n) => Ok(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(err) => Err(err.kind()),
        };
        assert!(
            reply.as_ref().is_ok_and(|t| t.starts_with("HTTP/1.1 400 ")),
            "{name}, {:?}: {reply:?}",
            String::from_utf8_lossy(sent)
        );
    }
}

const HOST: &str = "rewritten.test";

fn rewriting_forwarder(upstream: &HttpUpstream) -> Forwarder {
    Forwarder::start(&[
        "forward",
        "0",
        &upstream.addr.to_string(),
        "--http-host",
        HOST,
    ])
}

/// Whether the upstream saw this request with the Host (and authority) rewritten.
fn rewritten(request: &serde_json::Value) -> bool {
    let hosts_ok = request["hosts"] == serde_json::json!([HOST]);
    let target = request["target"].as_str().unwrap_or_default();
    let authority = match target.split_once("://") {
        Some((_, rest)) => rest.split('/').next().unwrap_or_default(),
        None if request["method"] == "CONNECT" => target.rsplit_once(':').unwrap().0,
        None => HOST,
    };
    hosts_ok && authority == HOST
}

fn assert_all_rewritten(requests: &[serde_json::Value]) {
    for request in requests {
        assert!(
            rewritten(request),
            "not rewritten: {request}; all: {requests:?}"
        );
    }
}

#[test]
fn forward_http_upgrade_header_without_101_opened_a_blind_tunnel() {
    let upstream = HttpUpstream::start("");
    let fw = rewriting_forwarder(&upstream);
    for upgrade in [
        "Upgrade: websocket\r\n",
        "Upgrade: h2c\r\nConnection: Upgrade\r\n",
    ] {
        let request = format!(
            "GET /a HTTP/1.1\r\nHost: c\r\n{upgrade}\r\nGET /b HTTP/1.1\r\nHost: evil.test\r\n\r\n"
        );
        let reply = round_trip(connect(fw.addr()), request.as_bytes());
        assert!(
            reply.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&reply)
        );
    }
    let requests = upstream.wait_requests(4);
    assert_eq!(requests.len(), 4, "{requests:?}");
    assert_all_rewritten(&requests);
}

/// Audit: `Upgrade: h2c` went on to the target, and a target that switches to HTTP/2 on it
/// (Go's h2c, hypercorn, Apache's `H2Upgrade`) answered 101, after which the client's
/// HTTP/2 streams, each with any `:authority`, passed through the tunnel unrewritten (h2c
/// smuggling; HAProxy 2.6 `mode http` the same; nginx passes no Upgrade unless told to).
/// Protocols whose tunnel carries HTTP (h2c, h2, HTTP/*, TLS/*, SPDY/*) are now taken out of
/// Upgrade; here the target (which switches to whatever is asked on `/ws`) answers 200 and
/// the next request is read and rewritten.
#[test]
fn forward_http_h2c_upgrade_opened_a_tunnel_for_unrewritten_requests() {
    let upstream = HttpUpstream::start("");
    let fw = rewriting_forwarder(&upstream);
    let request = b"GET /ws HTTP/1.1\r\nHost: c\r\nConnection: Upgrade, HTTP2-Settings\r\n\
        Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n\
        GET /b HTTP/1.1\r\nHost: evil.test\r\n\r\n";
    let reply = round_trip(connect(fw.addr()), request);
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let requests = upstream.wait_requests(2);
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_all_rewritten(&requests);
}

#[test]
fn forward_http_refused_connect_opened_a_blind_tunnel() {
    let upstream = HttpUpstream::start("allowed.test");
    let fw = rewriting_forwarder(&upstream);
    let request = b"CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n\
        GET /b HTTP/1.1\r\nHost: evil.test\r\n\r\n";
    let reply = round_trip(connect(fw.addr()), request);
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 405"), "{text}");
    assert!(text.contains("host=rewritten.test"), "{text}");
    let requests = upstream.wait_requests(2);
    assert_eq!(requests[0]["method"], "CONNECT");
    assert_all_rewritten(&requests);
}

#[test]
fn forward_http_absolute_form_kept_the_clients_authority() {
    let upstream = HttpUpstream::start("");
    let fw = rewriting_forwarder(&upstream);
    let request = b"GET http://evil.test/x?y=1 HTTP/1.1\r\nHost: evil.test\r\n\r\n\
        GET HTTP://user@evil.test:8080 HTTP/1.1\r\n\r\n";
    let reply = round_trip(connect(fw.addr()), request);
    assert!(
        reply.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    let requests = upstream.wait_requests(2);
    assert_eq!(requests[0]["target"], "http://rewritten.test/x?y=1");
    assert_eq!(requests[1]["target"], "HTTP://rewritten.test/");
    assert_all_rewritten(&requests);
}

#[test]
fn forward_http_bare_cr_nul_and_controls_in_header_fields_were_passed_on() {
    let upstream = HttpUpstream::start("");
    let fw = rewriting_forwarder(&upstream);
    let cases: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\rGET /smuggled HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\r\n\rHost: evil.test\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX\x01Y: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHo\rst: evil.test\r\n\r\n",
    ];
    for case in cases {
        let reply = round_trip(connect(fw.addr()), case);
        let text = String::from_utf8_lossy(&reply);
        assert!(
            text.starts_with("HTTP/1.1 400 Bad Request\r\n") && !text.contains("BaseHTTP"),
            "{:?}: {text}",
            String::from_utf8_lossy(case)
        );
    }
    only_the_sentinel_reached(&fw, &upstream);
}

#[test]
fn forward_http_malformed_request_cut_the_response_to_the_one_before() {
    let upstream = HttpUpstream::start("");
    let fw = rewriting_forwarder(&upstream);
    let size = 20_000_000;
    let request = format!("GET /big?n={size} HTTP/1.1\r\nHost: a\r\n\r\nNOT HTTP AT ALL\r\n\r\n");
    let reply = round_trip(connect(fw.addr()), request.as_bytes());
    let head_end = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&reply[..head_end]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains(&format!("Content-Length: {size}")), "{head}");
    let rest = &reply[head_end..];
    assert!(
        rest.len() >= size,
        "the response stopped at {} of {size} bytes",
        rest.len()
    );
    assert!(rest[..size].iter().all(|b| *b == b'x'));
    let after = String::from_utf8_lossy(&rest[size..]);
    assert!(
        after.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "then: {after:?}"
    );
    fw.wait_for(|l| l.contains("http-rejected"), 1);
}

/// A response whose body runs until the target closes, pipelined before an Upgrade request:
/// the client got the body and its end, but the forwarder kept the connection for good (the
/// request side waited for the Upgrade's answer, which could no longer come), and with
/// `--max-conns` every such client took a slot until shutdown (an audit, HAProxy closes both).
#[test]
fn forward_http_body_until_close_before_an_upgrade_held_the_connection_forever() {
    let upstream = HttpUpstream::start("");
    let target = upstream.addr.to_string();
    let args = [
        "forward",
        "0",
        &target,
        "--http-host",
        HOST,
        "--max-conns",
        "1",
    ];
    let fw = Forwarder::start(&args);
    let pair = b"GET /close HTTP/1.1\r\nHost: evil.test\r\n\r\n\
        GET /ws HTTP/1.1\r\nHost: evil.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    let reply = round_trip(connect(fw.addr()), pair);
    let text = String::from_utf8_lossy(&reply);
    assert!(text.ends_with("until the connection closes\n"), "{text}");
    // The one slot is free again: the next client is served.
    let next = b"GET /next HTTP/1.1\r\nHost: evil.test\r\n\r\n";
    let reply = round_trip(connect(fw.addr()), next);
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    fw.wait_for(|l| l.contains(" done"), 2);
    // (The Upgrade request came after the end of the body: the upstream dropped it unread.)
    assert_all_rewritten(&upstream.wait_requests(2));
}

/// A target that answers CONNECT like any request (200 with a Content-Length) and goes on
/// reading requests: the forwarder took the 200 for a tunnel and passed the next request on
/// untouched, its Host unrewritten (HAProxy too; nginx refuses CONNECT).
#[test]
fn forward_http_connect_answered_as_any_request_opened_a_blind_tunnel() {
    let upstream = HttpUpstream::start("");
    let fw = rewriting_forwarder(&upstream);
    let request = b"CONNECT plain.test:8443 HTTP/1.1\r\nHost: plain.test:8443\r\n\r\n\
        GET /after HTTP/1.1\r\nHost: evil.test\r\n\r\n";
    let reply = round_trip(connect(fw.addr()), request);
    let text = String::from_utf8_lossy(&reply);
    assert!(text.contains("host=rewritten.test"), "{text}");
    let requests = upstream.wait_requests(2);
    assert_eq!(requests[1]["target"], "/after", "{requests:?}");
    assert_all_rewritten(&requests);
}

/// Audit (bench/forward_diff/host_audit.py): bytes that can never begin an HTTP/1.x request
/// head (a TLS ClientHello, an SSH banner, NULs, a control character in the request line, a
/// malformed header line) got no answer until the head ended or reached 64 KiB: a TLS or SSH
/// client sent to the port waited forever (no idle timeout by default), holding a
/// `--max-conns` slot. HAProxy and nginx answer 400 at once; netkit now refuses as soon as
/// the bytes it has cannot start a valid head.
#[test]
fn forward_http_bytes_that_cannot_start_a_request_got_no_answer_until_64_kib() {
    let upstream = HttpUpstream::start("");
    let fw = rewriting_forwarder(&upstream);
    let haproxy = Haproxy::available().map(|h| h.http_host(&upstream.addr.to_string(), HOST));
    let cases: &[&[u8]] = &[
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
        b"SSH-2.0-OpenSSH_9.2\r\n",
        b"\0\0\0\0",
        b"G\x01ET / HTTP/1.1\r\n",
        b"GET /\0 HTTP/1.1",
        b"GET / HTTP/1.1\r\nHo st: evil.test\r\n",
    ];
    let mut proxies = vec![("netkit", fw.addr())];
    proxies.extend(haproxy.as_ref().map(|h| ("haproxy", h.addr)));
    // Every case at once, none half-closed: the answer must come while the client waits.
    let streams: Vec<_> = proxies
        .iter()
        .flat_map(|(name, addr)| cases.iter().map(move |case| (*name, *addr, *case)))
        .map(|(name, addr, case)| {
            let mut stream = connect(addr);
            stream.write_all(case).unwrap();
            (name, case, stream)
        })
        .collect();
    each_answered_400(streams);
    only_the_sentinel_reached(&fw, &upstream);
}

/// Audit (bench/forward_diff/host_audit.py): a forbidden byte in the header line still
/// coming (a NUL in a field value or name, a bare CR) and a second Host field were refused
/// only once the head ended: each complete line was checked as it came, but not the line
/// still coming, and Host fields were counted only in the whole head. A client that sent
/// them and waited got no answer (with no idle timeout, for good). nginx answers 400 at once
/// to each, HAProxy to the bare CR and the NUL in a name (it passes a NUL in a value, and
/// refuses the second Host when the head ends). netkit now answers 400 as soon as the bytes
/// it has show that the head can never be valid, and nothing reaches the target.
#[test]
fn forward_http_nul_in_the_line_still_coming_or_a_second_host_waited_for_the_head_to_end() {
    let upstream = HttpUpstream::start("");
    let fw = rewriting_forwarder(&upstream);
    let nginx = Nginx::start();
    let haproxy = Haproxy::available().map(|h| h.http_host(&upstream.addr.to_string(), HOST));
    // (the start of a head, whether HAProxy answers it at once too)
    let cases: &[(&[u8], bool)] = &[
        (b"GET / HTTP/1.1\r\nHost: a\0b", false),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\0", false),
        (b"GET / HTTP/1.1\r\nX-A: a\rb", true),
        (b"GET / HTTP/1.1\r\nHo\0st", true),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n", false),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: y\r\nhost: b\r\n", false),
    ];
    // Every case at once, none half-closed: the answer must come while the client waits.
    let mut streams: Vec<(&str, &[u8], Box<dyn Read>)> = Vec::new();
    for (case, haproxy_too) in cases {
        let mut stream = connect(fw.addr());
        stream.write_all(case).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        streams.push(("netkit", case, Box::new(stream)));
        let mut stream = std::os::unix::net::UnixStream::connect(nginx.socket()).unwrap();
        stream.write_all(case).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        streams.push(("nginx", case, Box::new(stream)));
        if let (Some(haproxy), true) = (&haproxy, haproxy_too) {
            let mut stream = connect(haproxy.addr);
            stream.write_all(case).unwrap();
            stream.set_read_timeout(Some(PATIENCE)).unwrap();
            streams.push(("haproxy", case, Box::new(stream)));
        }
    }
    each_answered_400(streams);
    only_the_sentinel_reached(&fw, &upstream);
}

/// Audit on an impaired link (bench/forward_diff/host_audit.py, bodies in 1-byte segments):
/// a chunk-size line that can never be valid (`zz`, a NUL in an extension) or bytes where
/// the CRLF after chunk data must come were refused only when the line ended (or reached 8
/// KiB): the request head had gone on, the target waited for the body and the client for an
/// answer, for good. HAProxy and nginx answer 400 at once to a size that is not hex; netkit
/// now refuses as soon as the bytes of the line show it can never be valid.
#[test]
fn forward_http_chunk_line_that_cannot_be_valid_waited_for_its_end() {
    let upstream = HttpUpstream::start("");
    let fw = rewriting_forwarder(&upstream);
    let haproxy = Haproxy::available().map(|h| h.http_host(&upstream.addr.to_string(), HOST));
    let head = b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    // (the start of a body, whether HAProxy answers it at once too)
    let cases: &[(&[u8], bool)] = &[
        (b"zz", true),
        (b"5\r\nhello\r\n-1", true),
        (b"5;a\0", false),
        (b"5\r\nhelloXX", false),
    ];
    let mut proxies = vec![("netkit", fw.addr(), true)];
    proxies.extend(haproxy.as_ref().map(|h| ("haproxy", h.addr, false)));
    // Every case at once, none half-closed: the answer must come while the client waits.
    let mut streams = Vec::new();
    for (body, haproxy_too) in cases {
        for (name, addr, always) in &proxies {
            if *always || *haproxy_too {
                let mut stream = connect(*addr);
                stream.write_all(&[&head[..], body].concat()).unwrap();
                streams.push((*name, *body, stream));
            }
        }
    }
    each_answered_400(streams);
    assert_all_rewritten(&upstream.settle());
}

/// Transfer codings before `chunked` (`gzip, chunked`) were passed on, and `Content-Length:
/// 5, 5` went on as written: HAProxy answers 422 and nginx 501 to the first, and both send
/// or want one number for the second (Python's parser, the upstream here, refuses the list).
#[test]
fn forward_http_other_codings_and_a_content_length_list_were_passed_on() {
    let upstream = HttpUpstream::start("");
    let fw = rewriting_forwarder(&upstream);
    for coding in ["gzip, chunked", "identity, chunked"] {
        let request = format!(
            "POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {coding}\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        );
        let reply = round_trip(connect(fw.addr()), request.as_bytes());
        let text = String::from_utf8_lossy(&reply);
        assert!(
            text.starts_with("HTTP/1.1 501 Not Implemented"),
            "{coding}: {text}"
        );
    }
    let request = b"POST /c HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello";
    let reply = round_trip(connect(fw.addr()), request);
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let requests = upstream.wait_requests(1);
    assert_eq!(
        requests.len(),
        1,
        "only the last request reached it: {requests:?}"
    );
    assert_eq!(
        (&requests[0]["target"], &requests[0]["body"]),
        (&"/c".into(), &5.into())
    );
    assert_all_rewritten(&requests);
}

#[test]
fn forward_http_obs_text_and_raw_non_ascii_targets_were_refused() {
    let upstream = HttpUpstream::start("");
    let fw = rewriting_forwarder(&upstream);
    let request = b"GET /caf\xe9 HTTP/1.1\r\nHost: a\r\nX-Name: Jos\xe9 \xff\r\n\r\n";
    let reply = round_trip(connect(fw.addr()), request);
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let requests = upstream.wait_requests(1);
    assert_eq!(requests[0]["target"], "/caf\u{e9}");
    assert_all_rewritten(&requests);
}

#[test]
fn forward_exec_missing_program_started_and_closed_every_client() {
    let plain = tempfile::NamedTempFile::new().unwrap();
    let plain = plain.path().display().to_string();
    for (target, why) in [
        (
            "exec:/missing/program".to_string(),
            "/missing/program: no such file or directory".to_string(),
        ),
        (
            "exec:netkit-no-such-program --flag".into(),
            "netkit-no-such-program: not found in PATH".into(),
        ),
        (format!("exec:{plain}"), format!("{plain}: not executable")),
    ] {
        let (code, stdout, stderr) = text(&run(&["forward", "0", &target]));
        assert_eq!(code, 2, "{target}: {stderr}");
        assert!(stdout.is_empty(), "{target}: {stdout}");
        assert!(
            stderr.starts_with(&format!("netkit: {target}: {why}")),
            "{target}: {stderr}"
        );
        assert!(!stderr.contains("listening on"), "{target}: {stderr}");
    }
    // A program found in PATH still starts.
    let fw = Forwarder::start(&["forward", "0", "exec:cat"]);
    assert_eq!(round_trip(connect(fw.addr()), b"still runs"), b"still runs");
}

#[test]
fn forward_denied_client_was_logged_twice() {
    let upstream = tcp_echo("127.0.0.1:0");
    let fw = Forwarder::start(&[
        "forward",
        "0",
        &upstream.to_string(),
        "--allow",
        "198.18.0.0/15",
    ]);
    let refused = connect(fw.addr());
    let client = refused.local_addr().unwrap().to_string();
    let mut got = Vec::new();
    (&refused).read_to_end(&mut got).unwrap();
    fw.wait_for(|l| l.contains("denied"), 1);
    let (_, _, stderr) = fw.stop("TERM");
    let about: Vec<&str> = stderr.lines().filter(|l| l.contains(&client)).collect();
    assert_eq!(about.len(), 1, "{stderr}");
    assert!(about[0].ends_with(", denied"), "{stderr}");
}

#[test]
fn forward_conn_client_had_brackets_and_ffff_forms() {
    let upstream = tcp_echo("127.0.0.1:0");
    let mut cmd = netkit();
    cmd.args(["--json", "forward", "[::]:0", &upstream.to_string()]);
    let fw = Forwarder::spawn(cmd, 1);
    let port = fw.addr().port();
    let v4 = connect(SocketAddr::from(([127, 0, 0, 1], port)));
    let v4_client = v4.local_addr().unwrap();
    round_trip(v4, b"v4");
    let v6 = connect(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)));
    let v6_client = v6.local_addr().unwrap();
    round_trip(v6, b"v6");
    let records = fw.stdout.wait_for(|l| l.contains("\"type\":\"conn\""), 2);
    let clients: Vec<String> = records
        .iter()
        .map(|l| {
            let record: serde_json::Value = serde_json::from_str(l).unwrap();
            record["client"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(
        clients.contains(&format!("127.0.0.1:{}", v4_client.port())),
        "an IPv4 client of [::] is shown as IPv4: {clients:?}"
    );
    assert!(
        clients.contains(&format!("[::1]:{}", v6_client.port())),
        "{clients:?}"
    );
    assert!(clients.iter().all(|c| !c.contains("ffff")), "{clients:?}");
}

/// Issue 15: a connection kept its two splice pipes (four descriptors) after its first bulk
/// transfer for as long as it stayed open, so idle connections cost 6 descriptors instead of
/// 2. Now a pipe is held only while bytes are in it: past a constant (the pool's empty pipes),
/// idle connections cost their two sockets, and every byte still arrives.
#[test]
fn forward_idle_connections_kept_their_splice_pipes_after_a_bulk_transfer() {
    const CONNS: u64 = 40;
    /// The pool keeps at most 16 empty pipes (2 descriptors each), and a few spare.
    const CONSTANT: usize = 2 * 16 + 4;
    let upstream = tcp_echo("127.0.0.1:0");
    let fw = Forwarder::start(&["forward", "0", &upstream.to_string()]);
    let addr = fw.addr();
    assert_eq!(round_trip(connect(addr), b"warm"), b"warm");
    fw.wait_for(|l| l.contains(" done"), 1);
    let baseline = fw.fd_count();
    let bulk: Vec<_> = (0..CONNS)
        .map(|i| {
            thread::spawn(move || {
                let stream = connect(addr);
                let data = pattern(i, 1024 * 1024 + i as usize * 4099);
                let mut writer = stream.try_clone().unwrap();
                let sent = data.clone();
                let sender = thread::spawn(move || writer.write_all(&sent).unwrap());
                let mut got = vec![0u8; data.len()];
                (&stream).read_exact(&mut got).unwrap();
                sender.join().unwrap();
                assert!(got == data, "connection {i}: the bulk echo differs");
                stream
            })
        })
        .collect();
    let idle: Vec<TcpStream> = bulk.into_iter().map(|t| t.join().unwrap()).collect();
    let bound = baseline + 2 * idle.len() + CONSTANT;
    let start = std::time::Instant::now();
    while fw.fd_count() > bound && start.elapsed() < PATIENCE {
        thread::sleep(std::time::Duration::from_millis(50));
    }
    let fds = fw.fd_count();
    assert!(
        fds <= bound,
        "{fds} descriptors for {} idle connections (baseline {baseline}, bound {bound})",
        idle.len()
    );
    let checks: Vec<_> = idle
        .into_iter()
        .zip(CONNS..)
        .map(|(stream, seed)| {
            thread::spawn(move || {
                let data = pattern(seed, 300 * 1024);
                let len = data.len();
                let (sent, got, got_len) = hashed_echo(stream, data, |s| s.try_clone().unwrap());
                assert_eq!((got_len, sent), (len, got), "after idling: sha256 differs");
            })
        })
        .collect();
    for check in checks {
        check.join().unwrap();
    }
    fw.wait_for(|l| l.contains(" done"), 1 + CONNS as usize);
}

/// A UDP server on `addr` (port 0) in `ns` that answers every datagram with itself; its port.
fn udp_echo_in(ns: &Netns, addr: &'static str) -> u16 {
    let socket = ns
        .run_in(move || std::net::UdpSocket::bind(addr).unwrap())
        .unwrap();
    let port = socket.local_addr().unwrap().port();
    thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((len, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..len], from);
        }
    });
    port
}

/// From `from` in `ns`, sends a datagram to `to` and returns the address the reply came from.
fn reply_source(ns: &Netns, from: &'static str, to: SocketAddr) -> SocketAddr {
    ns.run_in(move || {
        let client = std::net::UdpSocket::bind(from).unwrap();
        client.set_read_timeout(Some(PATIENCE)).unwrap();
        client.send_to(b"where from?", to).unwrap();
        let mut buf = [0u8; 64];
        let (len, source) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"where from?");
        source
    })
    .unwrap()
}

/// A udp: rule on a wildcard address (`udp:0.0.0.0:P`, `udp:[::]:P`) answered from whatever
/// address the route back to the client chose, not from the one the client sent to: a client
/// that sent to a second address of the host (a VIP, a loopback alias) got its reply from the
/// first, and a connected client socket (the glibc resolver's, `dig`'s) dropped it: every
/// query timed out. socat 1.7.4's `UDP-LISTEN` does the same (seen in the lab by hand); nginx
/// stream answers from the address asked (`IP_PKTINFO`), and so does netkit now.
#[test]
fn forward_udp_wildcard_listener_answered_from_another_address_than_the_one_asked() {
    if !privileged("forward_udp_wildcard_listener_answered_from_another_address_than_the_one_asked")
    {
        return;
    }
    let ns = Netns::with_loopback("fwusrc");
    ns.ip(&["-6", "addr", "add", "2001:db8::7/128", "dev", "lo", "nodad"]);
    let echo4 = udp_echo_in(&ns, "127.0.0.1:0");
    let echo6 = udp_echo_in(&ns, "[::1]:0");
    let mut cmd = ns.netkit();
    let target4 = format!("udp:127.0.0.1:{echo4}");
    cmd.args(["forward", "udp:0.0.0.0:0", &target4]);
    let fw4 = Forwarder::spawn(cmd, 1);
    let mut cmd = ns.netkit();
    let target6 = format!("udp:[::1]:{echo6}");
    cmd.args(["forward", "udp:[::]:0", &target6]);
    let fw6 = Forwarder::spawn(cmd, 1);
    let port = |fw: &Forwarder| {
        fw.listens[0]
            .rsplit(':')
            .next()
            .unwrap()
            .parse::<u16>()
            .unwrap()
    };
    let (p4, p6) = (port(&fw4), port(&fw6));
    // From 127.0.0.1 to 127.0.0.2: the route back to 127.0.0.1 would pick 127.0.0.1.
    for (from, to) in [
        ("127.0.0.1:0", SocketAddr::from(([127, 0, 0, 2], p4))),
        ("[::1]:0", format!("[2001:db8::7]:{p6}").parse().unwrap()),
        // An IPv4 client of the dual-stack listener.
        ("127.0.0.1:0", SocketAddr::from(([127, 0, 0, 3], p6))),
    ] {
        let source = reply_source(&ns, from, to);
        assert_eq!(
            source, to,
            "a datagram to {to} from {from} was answered from {source}"
        );
    }
}

/// The far host of [`forward_idle_timeout_cut_a_bulk_transfer_to_a_slow_client`].
const SLOW_CLIENT_FAR: &str = "198.18.9.1";

/// A server on `SLOW_CLIENT_FAR:port` in the lab's far namespace that sends `len` bytes to
/// each client, then closes.
fn bulk_sender_in_far(lab: &crate::lab::Lab, port: u16, len: usize) {
    let listener = lab
        .in_far(move || TcpListener::bind((SLOW_CLIENT_FAR, port)).unwrap())
        .unwrap();
    thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            thread::spawn(move || {
                let _ = client.write_all(&pattern(7, len));
            });
        }
    });
}

/// From the scanner namespace, downloads what `SLOW_CLIENT_FAR:port` sends; the byte count.
fn download_in_scanner(lab: &crate::lab::Lab, port: u16) -> usize {
    lab.in_scanner(move || {
        let mut stream = TcpStream::connect((SLOW_CLIENT_FAR, port)).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut got = Vec::new();
        let _ = stream.read_to_end(&mut got);
        got.len()
    })
    .unwrap()
}

/// Audit on impaired links: with `--idle-timeout`, a bulk transfer from a fast target to a slow client was
/// cut as idle while bytes were still flowing: a direction counted a pipe's worth of spliced
/// bytes (256 KiB) as moved only once all of it had gone out, so a client slower than
/// 256 KiB per idle timeout looked idle, and got a clean FIN after part of the stream.
/// HAProxy (`timeout client/server`) and socat (`-T`) count every write; now so does netkit.
#[test]
fn forward_idle_timeout_cut_a_bulk_transfer_to_a_slow_client() {
    if !privileged("forward_idle_timeout_cut_a_bulk_transfer_to_a_slow_client") {
        return;
    }
    const LEN: usize = 400_000;
    // 400 kbit/s: 400 kB take 8 s, a 256 KiB pipe 5 s, well past the 3 s idle timeout.
    let lab = crate::lab::Lab::builder("fwslowidle")
        .rate("400kbit")
        .host(SLOW_CLIENT_FAR)
        .build()
        .expect("lab");
    // Fixed ports: free in the lab's fresh far namespace.
    bulk_sender_in_far(&lab, 9000, LEN);
    let mut cmd = lab.far_cmd(env!("CARGO_BIN_EXE_netkit"));
    cmd.args([
        "forward",
        "198.18.9.1:7000",
        "198.18.9.1:9000",
        "--idle-timeout",
        "3s",
    ]);
    let fw = Forwarder::spawn(cmd, 1);
    let haproxy = Haproxy::available().map(|_| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("haproxy.cfg");
        std::fs::write(
            &file,
            "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 3s\n  \
             timeout server 3s\nlisten l\n  bind 198.18.9.1:7001\n  \
             server s 198.18.9.1:9000\n",
        )
        .unwrap();
        let mut cmd = lab.far_cmd("haproxy");
        cmd.args(["-db", "-q", "-f"]).arg(&file);
        (crate::harness::Proc::spawn_quiet(cmd), dir)
    });
    if haproxy.is_some() {
        // HAProxy binds as it starts; its client waits for the listener (bounded).
        let ready = lab.in_far(|| {
            let start = std::time::Instant::now();
            while TcpStream::connect((SLOW_CLIENT_FAR, 7001)).is_err() {
                assert!(start.elapsed() < PATIENCE, "HAProxy did not listen");
                thread::sleep(std::time::Duration::from_millis(50));
            }
        });
        ready.unwrap();
        assert_eq!(download_in_scanner(&lab, 7001), LEN, "HAProxy");
    }
    let got = download_in_scanner(&lab, 7000);
    let records = fw.wait_for(|l| l.contains(" B, "), 1);
    assert_eq!(got, LEN, "netkit delivered {got} of {LEN} B: {records:?}");
    assert!(records[0].contains(" done"), "{records:?}");
}

/// Holds connections through `fw` (each echoing one byte) until one fails or `most` are open;
/// then closes them all. Whether one failed.
fn fill_until_refused(fw: &Forwarder, most: usize) -> bool {
    let mut held = Vec::new();
    for _ in 0..most {
        let Ok(mut stream) = TcpStream::connect(fw.addr()) else {
            return true;
        };
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let mut byte = [0u8; 1];
        let echoed = stream.write_all(b"x").is_ok() && stream.read_exact(&mut byte).is_ok();
        if !echoed {
            return true;
        }
        held.push(stream);
    }
    false
}

/// Audit on impaired links: a connect that failed for want of a file descriptor in the
/// forwarder itself (`EMFILE`) took the target down ("target ... is down: connect failed: too
/// many open files"), so the metrics and the `target` records said a healthy target was dead,
/// and with several targets each was held off with a doubling backoff. A shortage of this
/// machine is not the target's failure: the connection fails and is logged, the target stays
/// up. Two open-files limits, one apart, so that one of them runs out on the connect (a
/// client accepted into the last descriptor) whatever the forwarder's baseline.
#[test]
fn forward_descriptor_shortage_took_a_healthy_target_down() {
    let upstream = tcp_echo("127.0.0.1:0");
    let mut connect_failed = false;
    for limit in ["40", "41"] {
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", "ulimit -n \"$0\" && exec \"$@\"", limit])
            .arg(env!("CARGO_BIN_EXE_netkit"))
            .args(["forward", "127.0.0.1:0", &upstream.to_string()])
            // More than the limit carries (else the forwarder bounds itself to what it does);
            // a client short of descriptors waits for them up to the connect timeout.
            .args(["--max-conns", "200", "--connect-timeout", "1s"]);
        let fw = Forwarder::spawn(cmd, 1);
        assert!(fill_until_refused(&fw, 200), "limit {limit}: no shortage");
        // The failed connection is logged once its client is closed or failed.
        let (_, _, stderr) = fw.stop("TERM");
        connect_failed |= stderr.contains("connect-failed");
        assert!(
            !stderr.contains(" is down"),
            "limit {limit}: a shortage of the forwarder took the target down:\n{stderr}"
        );
    }
    assert!(connect_failed, "no connect ran out of descriptors");
}

/// Audit on impaired links: the PROXY v2 header a udp: rule on a wildcard address sends named
/// the wildcard (`0.0.0.0:P`) as the destination, not the address the client sent to; and on
/// `[::]` an IPv4 client's header had no addresses at all (an IPv4 source and an IPv6
/// destination make no pair, so the header said `UNSPEC`). The header now names where the
/// datagram arrived, in the client's family.
/// A port range of thousands of rules took quadratic time to start: each listener's
/// exclusive wake-up read the whole epoll fdinfo, and the rules' reload keys were counted
/// pair by pair (4000 rules: 24 s before the first accept; `1-65535`: over a minute, deaf to
/// SIGTERM meanwhile). Now the forwarder of 5000 rules announces them all within the harness's
/// patience, and answers on the last one.
#[test]
fn forward_of_a_port_range_of_thousands_took_quadratic_time_to_start() {
    let upstream = tcp_echo("127.0.0.1:0");
    let listen = "127.0.0.1:21000-25999";
    let target = format!("{}:{}-{}", upstream.ip(), 31000, 35999);
    let mut fw = Forwarder::spawn(
        {
            let mut cmd = netkit();
            cmd.args(["forward", listen, &target]);
            cmd
        },
        5000,
    );
    assert_eq!(fw.listens.len(), 5000);
    // The last rule is served (its target refuses: no upstream there; the client sees EOF).
    let mut client = connect("127.0.0.1:25999".parse().unwrap());
    let mut got = Vec::new();
    let _ = client.read_to_end(&mut got);
    assert!(fw.alive(), "the forwarder died");
}

/// Under a low descriptor limit (`ulimit -n 64`) 200 clients at once: each was accepted (one
/// descriptor), its target side (an `exec:` child's socketpair, a TCP socket) then failed with
/// "too many open files" and the client was closed with nothing: 18 of 200 answered (socat
/// with `fork`: 200). Now a client short of descriptors waits for connections to end, and the
/// accept loop takes no new client meanwhile: every one is answered.
#[test]
fn forward_dropped_waiting_clients_when_short_of_descriptors() {
    let upstream = tcp_echo("127.0.0.1:0");
    for target in ["exec:cat".to_string(), upstream.to_string()] {
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", "ulimit -n 64 && exec \"$@\"", "sh"])
            .arg(env!("CARGO_BIN_EXE_netkit"))
            .args(["forward", "127.0.0.1:0", &target]);
        let fw = Forwarder::spawn(cmd, 1);
        let addr = fw.addr();
        let clients: Vec<_> = (0..200)
            .map(|n| {
                thread::spawn(move || {
                    let message = format!("m{n}\n");
                    let Ok(stream) = TcpStream::connect(addr) else {
                        return false;
                    };
                    stream.set_read_timeout(Some(PATIENCE)).unwrap();
                    let mut stream = stream;
                    let sent = stream.write_all(message.as_bytes()).is_ok()
                        && stream.shutdown(std::net::Shutdown::Write).is_ok();
                    let mut reply = Vec::new();
                    sent && stream.read_to_end(&mut reply).is_ok() && reply == message.as_bytes()
                })
            })
            .collect();
        let answered = clients
            .into_iter()
            .filter_map(|c| c.join().unwrap().then_some(()))
            .count();
        assert_eq!(answered, 200, "{target}");
    }
}

#[test]
fn forward_udp_proxy_v2_on_a_wildcard_listener_named_the_wildcard() {
    if !privileged("forward_udp_proxy_v2_on_a_wildcard_listener_named_the_wildcard") {
        return;
    }
    let ns = Netns::with_loopback("fwuppw");
    let upstream = ns
        .run_in(|| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .unwrap();
    upstream.set_read_timeout(Some(PATIENCE)).unwrap();
    let target = format!("udp:{}", upstream.local_addr().unwrap());
    for (listen, asked) in [
        ("udp:0.0.0.0:0", [127, 0, 0, 2]),
        ("udp:[::]:0", [127, 0, 0, 3]),
    ] {
        let mut cmd = ns.netkit();
        cmd.args(["forward", listen, &target, "--proxy-protocol", "v2"]);
        let fw = Forwarder::spawn(cmd, 1);
        let port = fw.listens[0]
            .rsplit(':')
            .next()
            .unwrap()
            .parse::<u16>()
            .unwrap();
        let to = SocketAddr::from((asked, port));
        let from = ns
            .run_in(move || {
                let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                client.send_to(b"payload", to).unwrap();
                client.local_addr().unwrap()
            })
            .unwrap();
        let mut buf = [0u8; 512];
        let (len, _) = upstream.recv_from(&mut buf).unwrap();
        let (command, fam, src, dst, payload) = crate::forward_udp::parse_proxy_v2(&buf[..len]);
        assert_eq!(
            (command, fam, payload),
            (1, 0x12, &b"payload"[..]),
            "{listen}"
        );
        assert_eq!((src, dst), (from, to), "{listen}: the header's addresses");
    }
}

/// The echo target of [`forward_a_lost_syn_dropped_the_client_of_a_healthy_target`].
const LOSSY_TARGET: &str = "127.0.0.1:9000";

/// Each client through `at` (in `ns`, one after the other) sends a line and reads it back;
/// how many of `clients` got their line back.
fn echoed_through(ns: &Netns, at: &'static str, clients: usize) -> usize {
    ns.run_in(move || {
        (0..clients)
            .filter(|i| {
                let line = format!("client {i}\n");
                let Ok(mut stream) = TcpStream::connect(at) else {
                    return false;
                };
                stream.set_read_timeout(Some(PATIENCE)).unwrap();
                let _ = stream.write_all(line.as_bytes());
                let _ = stream.shutdown(std::net::Shutdown::Write);
                let mut got = Vec::new();
                let _ = stream.read_to_end(&mut got);
                got == line.as_bytes()
            })
            .count()
    })
    .unwrap()
}

/// HAProxy run in `ns` with `config` (written in `dir`), once it listens on `listen`
/// (waited for with connects to the listener itself, which send no SYN to a target).
fn haproxy_in(
    ns: &Netns,
    dir: &std::path::Path,
    config: &str,
    listen: &str,
) -> crate::harness::Proc {
    let file = dir.join("haproxy.cfg");
    std::fs::write(&file, config).unwrap();
    let mut cmd = ns.command("haproxy");
    cmd.args(["-db", "-q", "-f"]).arg(&file);
    let proc = crate::harness::Proc::spawn_quiet(cmd);
    let listen = listen.to_string();
    ns.run_in(move || {
        let start = std::time::Instant::now();
        while TcpStream::connect(&listen).is_err() {
            assert!(start.elapsed() < PATIENCE, "HAProxy did not listen");
            thread::sleep(std::time::Duration::from_millis(50));
        }
    })
    .unwrap();
    proc
}

/// Audit on impaired links: netkit tried each target once per client, so a connect to a
/// healthy target whose SYN was lost failed the client (12 of 15 served at 25 % loss, where
/// HAProxy with `retries 3` served 15). Here every other SYN to the target is dropped (the
/// first of each pair, `statistic --mode nth`), and the 500 ms connect timeout is shorter
/// than the kernel's 1 s SYN retransmission: each client's first connect fails, a second one
/// succeeds. HAProxy (`retries 3`, `option redispatch`) serves every client; now so does
/// netkit (`--retries`, 3 by default).
#[test]
fn forward_a_lost_syn_dropped_the_client_of_a_healthy_target() {
    if !privileged("forward_a_lost_syn_dropped_the_client_of_a_healthy_target") {
        return;
    }
    const CLIENTS: usize = 4;
    let ns = Netns::with_loopback("fwretry");
    counting_listener(&ns, LOSSY_TARGET);
    drop_every_other_syn(&ns, "9000", "1");
    if Haproxy::available().is_some() {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "defaults\n  mode tcp\n  timeout connect 500ms\n  timeout client 10s\n  \
             timeout server 10s\n  retries 3\n  option redispatch\nlisten l\n  \
             bind 127.0.0.1:7001\n  server s {LOSSY_TARGET}\n"
        );
        // A connect to the listener itself: no SYN to the target, the pairs stay paired.
        let _haproxy = haproxy_in(&ns, dir.path(), &config, "127.0.0.1:7001");
        assert_eq!(
            echoed_through(&ns, "127.0.0.1:7001", CLIENTS),
            CLIENTS,
            "HAProxy"
        );
    }
    let mut cmd = ns.netkit();
    cmd.args([
        "forward",
        "127.0.0.1:7000",
        LOSSY_TARGET,
        "--connect-timeout",
        "500ms",
    ]);
    let fw = Forwarder::spawn(cmd, 1);
    let served = echoed_through(&ns, "127.0.0.1:7000", CLIENTS);
    let records = fw.wait_for(|l| l.contains(" B, "), CLIENTS);
    assert_eq!(
        served, CLIENTS,
        "netkit served {served} of {CLIENTS}: {records:?}"
    );
}

/// Audit of the active checks: an HTTP check passed on the status line alone, so a target
/// whose answer stops after `HTTP/1.1 200` and a field (a head that never ends: a hung
/// application behind a live socket) was held up for ever; HAProxy's `option httpchk` judges
/// the whole head and takes it down (`Layer7 timeout`). Now the check waits for the head's
/// empty line within the interval, as HAProxy does.
#[test]
fn forward_http_check_passed_a_target_whose_response_head_never_ended() {
    use crate::forward_pool::{http_tag, HaproxyPool, Upstream};
    let good = Upstream::http("good", 200);
    let stalled = Upstream::http_stalled("stal", 200);
    let targets = format!("{},{}", good.target(), stalled.target());
    let fw = Forwarder::start(&[
        "forward",
        "0",
        &targets,
        "--check",
        "http:/health",
        "--check-interval",
        "300ms",
        "--rise",
        "2",
        "--fall",
        "1",
    ]);
    let about = format!("target {} of ", stalled.target());
    let down = fw.wait_for(|l| l.contains(&about), 1).remove(0);
    assert!(down.contains("is down: 1 check(s) failed"), "{down}");
    assert!(
        (0..4).all(|_| http_tag(fw.addr()) == "good"),
        "the stalled target still serves"
    );
    let Some(haproxy) = Haproxy::available() else {
        return;
    };
    let peer = HaproxyPool::start(
        &haproxy,
        &[&good, &stalled],
        "  balance roundrobin\n  option httpchk GET /health\n",
        "check inter 300 rise 2 fall 1",
    );
    peer.wait_states(&["UP", "DOWN"]);
}

/// In `ns`: a listener on `addr` that counts what it accepted and echoes each connection
/// (what it reads until EOF, then closes).
fn counting_listener(ns: &Netns, addr: &'static str) -> std::sync::Arc<AtomicUsize> {
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&accepted);
    ns.run_in(move || {
        let listener = TcpListener::bind(addr).unwrap();
        thread::spawn(move || {
            for mut stream in listener.incoming().map_while(Result::ok) {
                count.fetch_add(1, Ordering::SeqCst);
                thread::spawn(move || {
                    stream.set_read_timeout(Some(PATIENCE)).unwrap();
                    let mut got = Vec::new();
                    let _ = stream.read_to_end(&mut got);
                    let _ = stream.write_all(&got);
                });
            }
        });
    })
    .unwrap();
    accepted
}

/// In `ns`, drops every other TCP SYN to 127.0.0.1:`port`: the first of each pair when
/// `packet` is "1", the second when it is "0" (the initial counter of iptables' `statistic
/// --mode nth --every 2`, which matches when the counter wraps to 0).
fn drop_every_other_syn(ns: &Netns, port: &str, packet: &str) {
    let rule = [
        "-A",
        "OUTPUT",
        "-p",
        "tcp",
        "--syn",
        "-d",
        "127.0.0.1",
        "--dport",
        port,
        "-m",
        "statistic",
        "--mode",
        "nth",
        "--every",
        "2",
        "--packet",
        packet,
        "-j",
        "DROP",
    ];
    let status = ns.command("iptables").args(rule).status().unwrap();
    assert!(status.success(), "iptables in the lab");
}

/// HAProxy's `show stat` line of server `s` of proxy `l`, as (column name, value) pairs.
fn haproxy_server_stat(socket: &std::path::Path) -> Vec<(String, String)> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    stream.write_all(b"show stat\n").unwrap();
    let mut csv = String::new();
    stream.read_to_string(&mut csv).unwrap();
    let mut lines = csv.lines();
    let header = lines.next().unwrap().trim_start_matches("# ").to_string();
    let row = lines.find(|l| l.starts_with("l,s,")).unwrap().to_string();
    header
        .split(',')
        .map(String::from)
        .zip(row.split(',').map(String::from))
        .collect()
}

/// Audit of the active checks on a lossy link: a check's connect was bounded by
/// `--connect-timeout` too, so with a client connect timeout shorter than the kernel's 1 s
/// SYN retransmission one lost SYN failed the check and took a healthy target down (at once
/// with `--fall 1`). HAProxy without `timeout check` gives a check's connect the whole `inter`
/// (`timeout connect` bounds a check only beside `timeout check`): the retransmitted SYN
/// gets through and the server stays UP. Here every other SYN to each target is dropped;
/// netkit and HAProxy have the same settings (connect timeout 500 ms, checks every 1.5 s,
/// fall 1), each its own target.
#[test]
fn forward_check_failed_on_one_lost_syn_when_the_connect_timeout_was_short() {
    if !privileged("forward_check_failed_on_one_lost_syn_when_the_connect_timeout_was_short") {
        return;
    }
    const CHECKS: usize = 3;
    let ns = Netns::with_loopback("fwcheck");
    let ours = counting_listener(&ns, "127.0.0.1:9001");
    let _theirs = counting_listener(&ns, "127.0.0.1:9002");
    drop_every_other_syn(&ns, "9001", "0");
    drop_every_other_syn(&ns, "9002", "0");
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats.sock");
    let haproxy = Haproxy::available().map(|_| {
        let file = dir.path().join("haproxy.cfg");
        let config = format!(
            "global\n  stats socket {}\ndefaults\n  mode tcp\n  timeout connect 500ms\n  \
             timeout client 10s\n  timeout server 10s\nlisten l\n  bind 127.0.0.1:7001\n  \
             server s 127.0.0.1:9002 check inter 1500 rise 2 fall 1\n",
            stats.display()
        );
        std::fs::write(&file, config).unwrap();
        let mut cmd = ns.command("haproxy");
        cmd.args(["-db", "-q", "-f"]).arg(&file);
        crate::harness::Proc::spawn_quiet(cmd)
    });
    let mut cmd = ns.netkit();
    cmd.args([
        "forward",
        "127.0.0.1:7000",
        "127.0.0.1:9001",
        "--connect-timeout",
        "500ms",
        "--check",
        "tcp",
        "--check-interval",
        "1500ms",
        "--fall",
        "1",
    ]);
    let fw = Forwarder::spawn(cmd, 1);
    let start = std::time::Instant::now();
    while ours.load(Ordering::SeqCst) < CHECKS {
        assert!(start.elapsed() < 3 * PATIENCE, "netkit made no checks");
        thread::sleep(std::time::Duration::from_millis(50));
    }
    if haproxy.is_some() {
        // HAProxy resets its check connections (they may never be accepted): its own stats
        // say when a check passed through a retransmitted SYN (a check of 1 s or more).
        loop {
            let stat = haproxy_server_stat(&stats);
            let field = |name: &str| stat.iter().find(|(k, _)| k == name).unwrap().1.clone();
            let duration: u64 = field("check_duration").parse().unwrap_or(0);
            if field("check_status").contains("L4OK") && duration >= 1000 {
                assert_eq!(field("status"), "UP", "HAProxy: {stat:?}");
                assert_eq!(field("chkfail"), "0", "HAProxy: {stat:?}");
                break;
            }
            assert!(start.elapsed() < 3 * PATIENCE, "HAProxy: {stat:?}");
            thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    let down: Vec<String> = fw
        .stderr
        .all()
        .into_iter()
        .filter(|l| l.contains(" is down"))
        .collect();
    assert!(
        down.is_empty(),
        "netkit took a healthy target down: {down:?}"
    );
}

/// In `ns`, drops the next TCP SYN to 127.0.0.1:`port` only (an iptables quota of one
/// 60-byte SYN).
fn drop_next_syn(ns: &Netns, port: &str) {
    let rule = [
        "-I",
        "OUTPUT",
        "-p",
        "tcp",
        "--syn",
        "-d",
        "127.0.0.1",
        "--dport",
        port,
        "-m",
        "quota",
        "--quota",
        "60",
        "-j",
        "DROP",
    ];
    let status = ns.command("iptables").args(rule).status().unwrap();
    assert!(status.success(), "iptables in the lab");
}

/// Waits until `count` reaches `want`.
fn wait_count(count: &AtomicUsize, want: usize) {
    let start = std::time::Instant::now();
    while count.load(Ordering::SeqCst) < want {
        assert!(start.elapsed() < PATIENCE, "{count:?} of {want}");
        thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Audit of passive health beside active checks on a lossy link: with `--check`, one client
/// connect that timed out (its SYN lost, the connect timeout shorter than the retransmission)
/// took a healthy target down until `rise` checks passed: a `down` record, its traffic
/// moved, where HAProxy (checks, `retries`, `redispatch`, no `observe`) keeps the server UP
/// and only its checks decide. Now, with checks on, a connect that timed out leaves the
/// verdict to the checks (a refusal, an answer, still takes the target down at once). Here the
/// one SYN dropped is a client's, after the target's first check passed; checks are 10 s
/// apart, so the next one comes long after the client was served by the other target.
#[test]
fn forward_checked_target_went_down_on_one_clients_lost_syn() {
    if !privileged("forward_checked_target_went_down_on_one_clients_lost_syn") {
        return;
    }
    let ns = Netns::with_loopback("fwpassive");
    // netkit's pair and HAProxy's: the first of each loses one SYN.
    let (ours, _ours_b) = (
        counting_listener(&ns, "127.0.0.1:9101"),
        counting_listener(&ns, "127.0.0.1:9102"),
    );
    let _theirs = (
        counting_listener(&ns, "127.0.0.1:9201"),
        counting_listener(&ns, "127.0.0.1:9202"),
    );
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats.sock");
    let haproxy = Haproxy::available().map(|_| {
        let file = dir.path().join("haproxy.cfg");
        let config = format!(
            "global\n  stats socket {}\ndefaults\n  mode tcp\n  timeout connect 500ms\n  \
             timeout client 10s\n  timeout server 10s\n  retries 3\n  option redispatch\n\
             listen l\n  bind 127.0.0.1:7001\n  balance roundrobin\n  \
             server s 127.0.0.1:9201 check inter 10s rise 2 fall 1\n  \
             server t 127.0.0.1:9202 check inter 10s rise 2 fall 1\n",
            stats.display()
        );
        std::fs::write(&file, config).unwrap();
        let mut cmd = ns.command("haproxy");
        cmd.args(["-db", "-q", "-f"]).arg(&file);
        crate::harness::Proc::spawn_quiet(cmd)
    });
    let mut cmd = ns.netkit();
    cmd.args([
        "forward",
        "127.0.0.1:7000",
        "127.0.0.1:9101,127.0.0.1:9102",
        "--connect-timeout",
        "500ms",
        "--check",
        "tcp",
        "--check-interval",
        "10s",
        "--fall",
        "1",
    ]);
    let fw = Forwarder::spawn(cmd, 1);
    // The first target's first check has passed (netkit checks it at once).
    wait_count(&ours, 1);
    drop_next_syn(&ns, "9101");
    // Round-robin: the first client goes to the first target, loses its SYN, and is served
    // by the second.
    assert_eq!(echoed_through(&ns, "127.0.0.1:7000", 1), 1);
    let lines = fw.wait_for(|l| l.contains(" B, "), 1);
    let all = fw.stderr.all();
    let down: Vec<&String> = all.iter().filter(|l| l.contains(" is down")).collect();
    assert!(
        down.is_empty(),
        "netkit took a healthy target down: {down:?} ({lines:?})"
    );
    if haproxy.is_some() {
        // HAProxy spreads its first checks over the interval: wait for its first target's
        // (its own stats say: it resets check connections, which may never be accepted).
        let start = std::time::Instant::now();
        while !haproxy_server_stat(&stats)
            .iter()
            .any(|(k, v)| k == "check_status" && v.contains("L4OK"))
        {
            assert!(start.elapsed() < PATIENCE, "HAProxy made no check");
            thread::sleep(std::time::Duration::from_millis(20));
        }
        drop_next_syn(&ns, "9201");
        assert_eq!(echoed_through(&ns, "127.0.0.1:7001", 1), 1, "HAProxy");
        let stat = haproxy_server_stat(&stats);
        let field = |name: &str| stat.iter().find(|(k, _)| k == name).unwrap().1.clone();
        assert_eq!(field("status"), "UP", "HAProxy: {stat:?}");
        assert_eq!(field("chkdown"), "0", "HAProxy: {stat:?}");
    }
}

/// Audit (the oracle: the target's firewall itself, which rejects every second datagram with
/// an ICMP administratively prohibited): a udp: session lost the datagram after each
/// rejected one. The kernel reports an ICMP error on a connected UDP socket at its next
/// `send` instead of sending, and the session counted that datagram as dropped ("no route to
/// host"); an IPv6 rejection (`EACCES`) read by the reply pump ended the session. 10
/// datagrams one at a time came back 4 times, not 5. socat 1.7.4 (`UDP6:`) answered 3 and
/// logged "Permission denied" for each rejection.
#[test]
fn forward_udp_lost_the_datagram_after_an_icmp_error() {
    if !privileged("forward_udp_lost_the_datagram_after_an_icmp_error") {
        return;
    }
    let ns = Netns::with_loopback("fwuicmp");
    for (family, addr, reject) in [
        ("iptables", "127.0.0.1:0", "icmp-admin-prohibited"),
        ("ip6tables", "[::1]:0", "adm-prohibited"),
    ] {
        let echo = udp_echo_in(&ns, addr);
        let port = echo.to_string();
        let rule = [
            "-A",
            "INPUT",
            "-p",
            "udp",
            "--dport",
            &port,
            "-m",
            "statistic",
            "--mode",
            "nth",
            "--every",
            "2",
            "--packet",
            "1",
            "-j",
            "REJECT",
            "--reject-with",
            reject,
        ];
        let out = ns.command(family).args(rule).output().expect("iptables");
        assert!(out.status.success(), "{family}: {out:?}");
        let target = format!("udp:{}", addr.replace(":0", &format!(":{echo}")));
        let mut cmd = ns.netkit();
        cmd.args(["forward", "udp:127.0.0.1:0", &target]);
        let fw = Forwarder::spawn(cmd, 1);
        let listen: SocketAddr = fw.listens[0].trim_start_matches("udp:").parse().unwrap();
        let replies = ns
            .run_in(move || {
                let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                client.connect(listen).unwrap();
                client
                    .set_read_timeout(Some(std::time::Duration::from_secs(1)))
                    .unwrap();
                let mut buf = [0u8; 16];
                let mut one_by_one = 0;
                for i in 0..10u8 {
                    client.send(&[i]).unwrap();
                    let echoed = client.recv(&mut buf).is_ok_and(|n| buf[..n] == [i]);
                    one_by_one += usize::from(echoed);
                }
                // Then all at once: errors come back while replies to later datagrams are on
                // their way, and the pump reads them first.
                for i in 10..20u8 {
                    client.send(&[i]).unwrap();
                }
                let mut at_once = 0;
                while client.recv(&mut buf).is_ok() {
                    at_once += 1;
                }
                (one_by_one, at_once)
            })
            .unwrap();
        let (_, _, stderr) = fw.stop("TERM");
        assert_eq!(
            replies,
            (5, 5),
            "{target}: replies to 10 + 10 datagrams\n{stderr}"
        );
        let sessions: Vec<&str> = stderr.lines().filter(|l| l.contains(" udp ")).collect();
        assert_eq!(sessions.len(), 1, "{target}: one session\n{stderr}");
        assert!(sessions[0].contains("up 20 dgrams"), "{stderr}");
    }
}

/// A client that sent from one socket to two addresses of a wildcard `udp:` listener got every
/// reply from the first address it had sent to: its one session (per client address) kept
/// where the first datagram arrived. A resolver that sends to two addresses of the host drops
/// the replies that do not come from the address asked (nginx stream answers each from the
/// address it was sent to; socat from a third). Each (client, local address) is now a session.
#[test]
fn forward_udp_wildcard_listener_answered_a_second_address_from_the_first() {
    if !privileged("forward_udp_wildcard_listener_answered_a_second_address_from_the_first") {
        return;
    }
    let ns = Netns::with_loopback("fwusrc2");
    for addr in ["2001:db8::7/128", "2001:db8::8/128"] {
        ns.ip(&["-6", "addr", "add", addr, "dev", "lo", "nodad"]);
    }
    let echo4 = udp_echo_in(&ns, "127.0.0.1:0");
    let echo6 = udp_echo_in(&ns, "[::1]:0");
    let mut rules = Vec::new();
    for (listen, target) in [
        ("udp:0.0.0.0:0", format!("udp:127.0.0.1:{echo4}")),
        ("udp:[::]:0", format!("udp:[::1]:{echo6}")),
    ] {
        let mut cmd = ns.netkit();
        cmd.args(["forward", listen, &target]);
        let fw = Forwarder::spawn(cmd, 1);
        let port: u16 = fw.listens[0].rsplit(':').next().unwrap().parse().unwrap();
        rules.push((fw, port));
    }
    let (p4, p6) = (rules[0].1, rules[1].1);
    let asked: [(&str, Vec<SocketAddr>); 2] = [
        (
            "127.0.0.1:0",
            ["127.0.0.2", "127.0.0.3", "127.0.0.1"]
                .map(|ip| SocketAddr::new(ip.parse().unwrap(), p4))
                .to_vec(),
        ),
        (
            "[::1]:0",
            ["2001:db8::7", "2001:db8::8", "::1"]
                .map(|ip| SocketAddr::new(ip.parse().unwrap(), p6))
                .to_vec(),
        ),
    ];
    for (from, addrs) in asked {
        let wrong = ns
            .run_in(move || {
                let client = std::net::UdpSocket::bind(from).unwrap();
                client.set_read_timeout(Some(PATIENCE)).unwrap();
                let mut wrong = Vec::new();
                for round in 0..2 {
                    for &to in &addrs {
                        let asked = format!("{round} to {to}");
                        client.send_to(asked.as_bytes(), to).unwrap();
                        let mut buf = [0u8; 128];
                        let (len, source) = client.recv_from(&mut buf).unwrap();
                        assert_eq!(&buf[..len], asked.as_bytes());
                        if source != to {
                            wrong.push(format!("{asked}: answered from {source}"));
                        }
                    }
                }
                wrong
            })
            .unwrap();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }
}

/// Two namespaces joined by a veth pair: `vA` 198.18.7.1/24 in the first, `vB` 198.18.7.2/24 in
/// the second, each a static neighbour of the other. Unlike loopback, the kernel rate-limits
/// the ICMP errors it sends over it (`icmp_ratelimit`: a burst of 6, then one a second).
fn veth_pair(tag: &str) -> (Netns, Netns) {
    let a = Netns::with_loopback(tag);
    let b = Netns::with_loopback(&format!("{tag}b"));
    a.veth("vA", &b, "vB").unwrap_or_else(|e| panic!("{e}"));
    for (ns, dev, addr) in [(&a, "vA", "198.18.7.1/24"), (&b, "vB", "198.18.7.2/24")] {
        ns.ip(&["addr", "add", addr, "dev", dev]);
        ns.ip(&["link", "set", dev, "up"]);
    }
    for (ns, dev, addr, peer, peer_dev) in [
        (&a, "vA", "198.18.7.2", &b, "vB"),
        (&b, "vB", "198.18.7.1", &a, "vA"),
    ] {
        let mac = crate::ping_net::mac(peer, peer_dev);
        ns.ip(&["neigh", "replace", addr, "lladdr", &mac, "dev", dev]);
    }
    (a, b)
}

/// UDP with several targets: once one session found a target refusing (ICMP port unreachable)
/// and the target was marked down, the other sessions on it stayed there, each until it met a
/// refusal of its own — and the kernel sends about one ICMP error a second: an audit lost
/// 12-15 of 300 requests (3 in a row for one client), where with the ICMP rate limit off none
/// were lost. Sessions on a target that went down now move to one that is up.
#[test]
fn forward_udp_sessions_stayed_on_a_target_found_down() {
    if !privileged("forward_udp_sessions_stayed_on_a_target_found_down") {
        return;
    }
    const CLIENTS: usize = 40;
    let (near, far) = veth_pair("fwudown");
    let echo = udp_echo_in(&far, "198.18.7.2:0");
    let closed = far
        .run_in(|| {
            std::net::UdpSocket::bind("198.18.7.2:0")
                .unwrap()
                .local_addr()
                .unwrap()
        })
        .unwrap()
        .port();
    let targets = format!("udp:198.18.7.2:{closed},udp:198.18.7.2:{echo}");
    let mut cmd = near.netkit();
    cmd.args(["forward", "udp:127.0.0.1:0", &targets]);
    let fw = Forwarder::spawn(cmd, 1);
    let port: u16 = fw.listens[0].rsplit(':').next().unwrap().parse().unwrap();
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    let unanswered = near
        .run_in(move || {
            let clients: Vec<std::net::UdpSocket> = (0..CLIENTS)
                .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
                .collect();
            // Round robin: half the sessions go to the closed port; a few of those hear of it.
            for (i, client) in clients.iter().enumerate() {
                client
                    .send_to(format!("first {i}").as_bytes(), listen)
                    .unwrap();
            }
            thread::sleep(std::time::Duration::from_millis(500));
            for client in &clients {
                client.set_nonblocking(true).unwrap();
                while client.recv_from(&mut [0u8; 64]).is_ok() {}
                client.set_nonblocking(false).unwrap();
                client
                    .set_read_timeout(Some(std::time::Duration::from_secs(2)))
                    .unwrap();
            }
            for (i, client) in clients.iter().enumerate() {
                client
                    .send_to(format!("second {i}").as_bytes(), listen)
                    .unwrap();
            }
            let mut unanswered = Vec::new();
            for (i, client) in clients.iter().enumerate() {
                let mut buf = [0u8; 64];
                match client.recv_from(&mut buf) {
                    Ok((len, _)) => assert_eq!(&buf[..len], format!("second {i}").as_bytes()),
                    Err(_) => unanswered.push(i),
                }
            }
            unanswered
        })
        .unwrap();
    let down = fw.wait_for(|l| l.contains(" is down: refused"), 1);
    assert!(
        unanswered.is_empty(),
        "clients {unanswered:?} of {CLIENTS} had their second datagram lost after {down:?}"
    );
}

/// An HTTP server in `ns` on 127.0.0.1 answering every request with `status` and `tag` as the
/// body; its port.
fn http_status_in(ns: &Netns, status: u16, tag: &'static str) -> u16 {
    let listener = ns
        .run_in(|| TcpListener::bind("127.0.0.1:0").unwrap())
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let reply = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{tag}",
                tag.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    port
}

/// With `--check http:`, a client whose connect to the healthy target timed out (a lost SYN)
/// was handed in the same round to the target the checks had found down, and got its 503: an
/// audit over a lossy link saw 12 of 200 requests answered 503 where HAProxy (`option
/// httpchk`, `retries 3`, `option redispatch`) answered 200 to all — HAProxy never sends a
/// client to a server that is down while one is up. Here every second SYN to the healthy
/// target is dropped, from the first (the checks spread over the interval: the down target,
/// listed first, is checked at once, the healthy one not within the test): each client's
/// first connect times out.
#[test]
fn forward_client_went_to_a_target_its_checks_found_down_after_a_lost_syn() {
    if !privileged("forward_client_went_to_a_target_its_checks_found_down_after_a_lost_syn") {
        return;
    }
    let ns = Netns::with_loopback("fwchkdn");
    let good = http_status_in(&ns, 200, "good");
    let bad = http_status_in(&ns, 503, "bad");
    let every_second_syn = format!(
        "-A OUTPUT -p tcp -d 127.0.0.1 --dport {good} --syn \
         -m statistic --mode nth --every 2 --packet 0 -j DROP"
    );
    crate::ping_net::iptables(&ns, &every_second_syn.split(' ').collect::<Vec<_>>());
    let targets = format!("127.0.0.1:{bad},127.0.0.1:{good}");
    let mut cmd = ns.netkit();
    cmd.args([
        "forward",
        "127.0.0.1:0",
        &targets,
        "--check",
        "http:/health",
    ]);
    cmd.args(["--check-interval", "10m", "--rise", "1", "--fall", "1"]);
    cmd.args(["--connect-timeout", "300ms"]);
    let fw = Forwarder::spawn(cmd, 1);
    let about = format!("target 127.0.0.1:{bad} of ");
    fw.wait_for(|l| l.contains(&about) && l.contains("is down"), 1);
    let listen: SocketAddr = fw.listens[0].parse().unwrap();
    let served: Vec<String> = ns
        .run_in(move || {
            (0..4)
                .map(|_| {
                    let mut stream = TcpStream::connect(listen).unwrap();
                    stream.set_read_timeout(Some(PATIENCE)).unwrap();
                    stream
                        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                        .unwrap();
                    let mut reply = String::new();
                    let _ = stream.read_to_string(&mut reply);
                    reply
                        .rsplit("\r\n\r\n")
                        .next()
                        .unwrap_or_default()
                        .to_string()
                })
                .collect()
        })
        .unwrap();
    assert_eq!(served, ["good"; 4], "{:#?}", fw.stderr.all());
}

/// Out of descriptors, the accept loop could take a burst of clients (the backlog of clients
/// that had already closed) before their connects failed: every descriptor then belonged to a
/// client waiting for one, none to a connection whose end would give one back, and nothing
/// was served until the waits ran out — the connect timeout (10 s by default; `forward`'s
/// EMFILE test failed now and then when they ran out twice). Now the newest waiting client
/// gives up when nothing relays and nothing ended through a whole pause: the oldest gets its
/// descriptor. A connect timeout of a minute makes the old deadlock outlast the test.
#[test]
fn forward_clients_waiting_for_descriptors_held_them_all_until_their_connect_timeout() {
    crate::forward::serves_again_after_running_out_of_descriptors(&["--connect-timeout", "60s"]);
}

/// An audit beside HAProxy and nginx: an absolute-form target with a query and no path
/// (`http://evil.test?y=1`) reached the target as `http://rewritten.test?y=1`, where the
/// documentation (and RFC 9112's origin form) give an empty path as `/`; and a chunk size
/// with leading zeros (`0000000000000003`, 16 digits for the value 3) was refused with 400,
/// which HAProxy and nginx take (a size is refused for its value, 2^60 and over, not for
/// its zeros).
#[test]
fn forward_http_query_without_a_path_and_zero_padded_chunk_sizes() {
    let upstream = HttpUpstream::start("");
    let fw = rewriting_forwarder(&upstream);
    let request = b"GET http://evil.test?y=1 HTTP/1.1\r\nHost: evil.test\r\n\r\n\
        POST /chunked HTTP/1.1\r\nHost: evil.test\r\nTransfer-Encoding: chunked\r\n\r\n\
        0000000000000003\r\nabc\r\n00000000000000000000\r\n\r\n";
    let reply = round_trip(connect(fw.addr()), request);
    let text = String::from_utf8_lossy(&reply);
    assert_eq!(text.matches("HTTP/1.1 200").count(), 2, "{text}");
    let requests = upstream.wait_requests(2);
    assert_eq!(requests[0]["target"], "http://rewritten.test/?y=1");
    assert_eq!(requests[1]["target"], "/chunked");
    assert_all_rewritten(&requests);
}

/// A client that half-closed and then vanished (its kernel reset the connection: here a
/// close with `SO_LINGER` 0; across a network, keepalive probes after the client's host let
/// its socket go) while the target stayed silent: the forwarder no longer read the client's
/// side once its end of file was in, so the reset went unseen and the connection stayed for
/// good, both descriptors (and an `exec:` child) held and never logged (an audit: 20 of 20
/// still open after 3 minutes; socat ends such a connection 0.5 s after the first end of
/// file). Now the side whose direction has ended is watched for an error: the reset reaches
/// the target and the connection is logged.
#[test]
fn forward_client_gone_after_its_end_of_file_was_never_noticed() {
    // The plain relay, and `--http-host`'s (a request first, then the end of file).
    for (extra, request) in [
        (&[][..], &b""[..]),
        (
            &["--http-host", HOST][..],
            &b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        ),
    ] {
        let (target_addr, rx) = target_that_reports_its_end();
        let target = target_addr.to_string();
        let fw = Forwarder::start(&[&["forward", "0", &target][..], extra].concat());
        let mut client = connect(fw.addr());
        client.write_all(request).unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let patience = std::time::Duration::from_secs(20);
        assert_eq!(
            rx.recv_timeout(patience).unwrap(),
            "eof Ok(true)",
            "{extra:?}"
        );
        socket2::SockRef::from(&client)
            .set_linger(Some(std::time::Duration::ZERO))
            .unwrap();
        drop(client);
        let then = rx.recv_timeout(patience).unwrap();
        // A reset to a socket whose peer had closed (CLOSE_WAIT) is EPIPE, else ECONNRESET.
        let reset = ["then BrokenPipe", "then ConnectionReset"];
        assert!(reset.contains(&then.as_str()), "{extra:?}: {then}");
        fw.wait_for(|l| l.contains(" reset"), 1);
    }
}

/// A target that reads one connection to its end of file, says so (`eof Ok(true)`), then
/// stays silent and says what ended the connection (`then KIND`, from the socket's pending
/// error; reads say end of file from then on), or `then nothing in 15 s`.
fn target_that_reports_its_end() -> (SocketAddr, std::sync::mpsc::Receiver<String>) {
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = target.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let (mut stream, _) = target.accept().unwrap();
        let mut got = Vec::new();
        let eof = stream.read_to_end(&mut got).map(|_| true);
        tx.send(format!("eof {eof:?}")).unwrap();
        let mut then = "nothing in 15 s".to_string();
        for _ in 0..750 {
            if let Ok(Some(err)) = stream.take_error() {
                then = format!("{:?}", err.kind());
                break;
            }
            thread::sleep(std::time::Duration::from_millis(20));
        }
        tx.send(format!("then {then}")).unwrap();
    });
    (addr, rx)
}

/// The processes whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let children = crate::forward_exec::children(pid);
    children.into_iter().map(|(child, _)| child).collect()
}

/// Whether `pid` still runs (a zombie, or a process gone, does not).
fn runs(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat.rfind(')').and_then(|at| stat[at + 2..].chars().next());
    !matches!(state, Some('Z') | Some('X') | None)
}

/// `exec:` children still running when the forwarder ended were left behind, orphans of init
/// (an audit: `exec:sleep 1234` after the drain timeout, and a child ignoring SIGTERM, ran on
/// after netkit exited 0; socat stops its EXEC child). Now they are sent SIGTERM, with what
/// they started (their process group), and SIGKILL after a grace.
#[test]
fn forward_exec_children_outlived_the_forwarder() {
    let deaf = "exec:sh -c 'trap \"\" TERM; echo up; sleep 1234; echo never'";
    for (target, name) in [
        ("exec:sh -c 'echo up; exec sleep 1234'", "plain"),
        (deaf, "deaf"),
    ] {
        let args = ["forward", "0", target, "--drain-timeout", "1s"];
        let fw = Forwarder::start(&args);
        let mut clients = Vec::new();
        for _ in 0..2 {
            let mut client = connect(fw.addr());
            let mut up = [0u8; 3];
            client.read_exact(&mut up).unwrap();
            clients.push(client);
        }
        let children = children_of(fw.pid());
        let mut family = children.clone();
        for &child in &children {
            family.extend(children_of(child));
        }
        assert!(family.len() >= 2, "{name}: {family:?}");
        let (code, _, err) = fw.stop("TERM");
        assert_eq!(code, 0, "{name}: {err}");
        let start = std::time::Instant::now();
        while family.iter().any(|&p| runs(p)) && start.elapsed() < PATIENCE {
            thread::sleep(std::time::Duration::from_millis(20));
        }
        let left: Vec<u32> = family.into_iter().filter(|&p| runs(p)).collect();
        for &pid in &left {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        assert!(
            left.is_empty(),
            "{name}: still running after netkit ended: {left:?}\n{err}"
        );
    }
}

/// A connection's `exec:` child that ran on after its connection ended was never stopped:
/// one more process for each such connection, for as long as the forwarder ran (an audit:
/// `exec:sleep 1237` still running after its client's reset; socat stops its EXEC child when
/// the connection closes). Now one still running a moment after its connection ended gets
/// SIGTERM, and SIGKILL if it ignores that: a child reading no input after a client's reset,
/// one deaf to SIGTERM, and one that closed its socket, then ran on.
#[test]
fn forward_exec_child_ran_on_after_its_connection_ended() {
    let cases = [
        ("exec:sh -c 'echo up; exec sleep 1234'", "reset"),
        (
            "exec:sh -c 'trap \"\" TERM; echo up; exec sleep 1234'",
            "deaf, reset",
        ),
        ("exec:sh -c 'echo up; exec sleep 1234 <&- >&-'", "closed"),
    ];
    for (target, name) in cases {
        let fw = Forwarder::start(&["forward", "0", target]);
        let mut client = connect(fw.addr());
        let mut up = [0u8; 3];
        client.read_exact(&mut up).unwrap();
        let children = children_of(fw.pid());
        assert_eq!(children.len(), 1, "{name}: {children:?}");
        if name == "closed" {
            client.shutdown(std::net::Shutdown::Write).unwrap();
            assert_eq!(next_read(&mut client), Ok(Vec::new()), "{name}");
            drop(client);
        } else {
            abort(client);
        }
        let start = std::time::Instant::now();
        while children.iter().any(|&p| runs(p)) && start.elapsed() < PATIENCE {
            thread::sleep(std::time::Duration::from_millis(20));
        }
        let left: Vec<u32> = children.into_iter().filter(|&p| runs(p)).collect();
        let (code, _, err) = fw.stop("TERM");
        assert_eq!(code, 0, "{name}: {err}");
        assert!(left.is_empty(), "{name}: ran on: {left:?}\n{err}");
    }
}

/// A second signal while draining closed the open connections without a record of any of
/// them (an audit: 3 open connections, SIGTERM twice, stderr had only the warning), where the
/// drain timeout logs each. Now the second signal ends the drain at once and each
/// connection is logged as the drain timeout logs it.
#[test]
fn forward_second_signal_closed_connections_without_their_records() {
    let upstream = tcp_echo("127.0.0.1:0");
    // `-v`: the drain's start is logged, so the second signal is known to come after it.
    let target = upstream.to_string();
    let args = ["-v", "forward", "0", &target, "--drain-timeout", "1m"];
    let fw = Forwarder::start(&args);
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut client = connect(fw.addr());
        client.write_all(b"ping").unwrap();
        let mut echo = [0u8; 4];
        client.read_exact(&mut echo).unwrap();
        clients.push(client);
    }
    fw.signal("TERM");
    fw.wait_for(|l| l.contains("draining"), 1);
    let (code, _, err) = fw.stop("TERM");
    assert_eq!(code, 0, "{err}");
    let logged = err.lines().filter(|l| l.contains("drain-timeout")).count();
    assert_eq!(logged, 3, "{err}");
}

/// Under a low open-files limit (`ulimit -n 64`) a rule without `--max-conns` serves only the
/// connections the limit carries (8 at once): right, but nothing said so, and 200 clients
/// seemed to hang. Now the forwarder says once per rule, at startup, that the limit caps it
/// and how to raise the limit; a rule with `--max-conns` is not capped and says nothing.
#[test]
fn forward_capped_by_the_open_files_limit_said_nothing() {
    let upstream = tcp_echo("127.0.0.1:0");
    for (extra, capped) in [(&[][..], true), (&["--max-conns", "100"][..], false)] {
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", "ulimit -n 64 && exec \"$@\"", "sh"])
            .arg(env!("CARGO_BIN_EXE_netkit"))
            .args(["forward", "127.0.0.1:0", &upstream.to_string()])
            .args(extra);
        let fw = Forwarder::spawn(cmd, 1);
        let (_, _, stderr) = fw.stop("TERM");
        let notices: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("open-files limit"))
            .collect();
        if !capped {
            assert!(notices.is_empty(), "{extra:?}: {stderr}");
            continue;
        }
        assert_eq!(notices.len(), 1, "{stderr}");
        let notice = notices[0];
        for part in ["WARN", "8 connections at once", "ulimit -n", "LimitNOFILE="] {
            assert!(notice.contains(part), "{part}: {notice}");
        }
    }
}

/// A target name that does not exist (`no.such.invalid:80`) started a forwarder anyway, which
/// failed every client with `cannot resolve host name` (an audit; SPEC: exit 2 for an unknown
/// host name; HAProxy and nginx refuse to start). Now the forwarder refuses (exit 2, naming the
/// host), also at a reload (the old rules stay); a name that resolves starts it, and so does a
/// name the resolver cannot answer for now (a warning: it is resolved per connection).
#[test]
fn forward_started_with_a_target_name_that_does_not_exist() {
    use crate::wait_util::{DnsLab, NetnsEtc};
    if !privileged("forward with a target name that does not exist") {
        return;
    }
    let lab = DnsLab::start();
    let mut cmd = lab.ns.netkit();
    cmd.args(["forward", "0", "none.test:80"]);
    // A forwarder that starts never ends by itself: bounded, it fails the test.
    let (code, _, stderr) = crate::harness::run_within(cmd, PATIENCE);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.starts_with("netkit: none.test: "), "{stderr}");
    lab.add("svc.test", "127.0.0.1");
    let mut cmd = lab.ns.netkit();
    cmd.args(["forward", "0", "svc.test:80"]);
    let fw = Forwarder::spawn(cmd, 1);
    let (code, _, err) = fw.stop("TERM");
    assert_eq!(code, 0, "{err}");
    // A reload naming a target that does not exist is refused; the old rule stays.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("forward.toml");
    std::fs::write(
        &config,
        "[[rule]]\nlisten = \"0\"\ntarget = \"svc.test:80\"\n",
    )
    .unwrap();
    let mut cmd = lab.ns.netkit();
    cmd.args(["forward", "--config"]).arg(&config);
    let fw = Forwarder::spawn(cmd, 1);
    std::fs::write(
        &config,
        "[[rule]]\nlisten = \"0\"\ntarget = \"gone.test:80\"\n",
    )
    .unwrap();
    fw.signal("HUP");
    let lines = fw.wait_for(|l| l.contains("reload"), 1);
    assert!(lines[0].contains("gone.test"), "{lines:?}");
    let (_, _, err) = fw.stop("TERM");
    assert!(!err.contains("gone.test:80 ->"), "{err}");
    // A resolver that cannot answer: a warning, and the forwarder starts.
    let ns = Netns::with_loopback("fw-noresolver");
    let _etc = NetnsEtc::new(&ns, "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n");
    let mut cmd = ns.netkit();
    cmd.args(["forward", "0", "db.test:80"]);
    let fw = Forwarder::spawn(cmd, 1);
    let (code, _, err) = fw.stop("TERM");
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("cannot resolve db.test now"), "{err}");
}

/// An HTTP check target that answers its `n`th check (a connection, from 0) with
/// `statuses[n]`, the last one for every check after them; and how many it answered.
fn scripted_check_target(statuses: &'static [u16]) -> (SocketAddr, std::sync::Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let answered = std::sync::Arc::new(AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&answered);
    thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let status = statuses[n.min(statuses.len() - 1)];
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => head.extend_from_slice(&buf[..k]),
                }
            }
            let reply =
                format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = stream.write_all(reply.as_bytes());
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    (addr, answered)
}

/// Waits (bounded) until `count` reaches `want`.
fn wait_at_least(count: &AtomicUsize, want: usize) {
    let start = std::time::Instant::now();
    while count.load(Ordering::SeqCst) < want {
        assert!(start.elapsed() < PATIENCE * 4, "only {count:?} of {want}");
        thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// On a lossy link (30 % loss, the lab beside HAProxy) a checked target whose checks went
/// pass, fail, fail was taken down by netkit (`2 check(s) failed`) while HAProxy (rise 2,
/// fall 3) kept it UP: in HAProxy a passed check that brings the health counter to `rise`
/// sets it to the top (`rise + fall - 1`, "OK now"), so an up target in transition ("UP 1/3",
/// as every server starts) is back to full health after one pass and again needs `fall`
/// failures in a row; netkit only counted one back, so two failures after a pass sufficed.
#[test]
fn forward_check_pass_did_not_restore_full_health_and_two_failures_took_a_target_down() {
    const SCRIPT: &[u16] = &[200, 500, 500, 200];
    let (target, answered) = scripted_check_target(SCRIPT);
    let fw = Forwarder::start(&[
        "forward",
        "0",
        &target.to_string(),
        "--check",
        "http:/health",
        "--check-interval",
        "100ms",
        "--rise",
        "2",
        "--fall",
        "3",
    ]);
    // Pass, fail, fail, then passes: never three failures in a row.
    wait_at_least(&answered, 6);
    let (_, _, stderr) = fw.stop("TERM");
    assert!(
        !stderr.contains("is down"),
        "two failures after a pass took the target down:\n{stderr}"
    );
    let Some(haproxy) = Haproxy::available() else {
        return;
    };
    let (peer_target, peer_answered) = scripted_check_target(SCRIPT);
    let peer = crate::forward_pool::HaproxyPool::start_at(
        &haproxy,
        &[peer_target],
        "  option httpchk GET /health\n",
        "check inter 100 rise 2 fall 3",
    );
    wait_at_least(&peer_answered, 6);
    assert_eq!(peer.column("chkdown"), ["0"], "HAProxy took it down too");
    assert_eq!(peer.states(), ["UP"]);
}

/// Keepalive gave a quiet target up after 4 unanswered probes: a live connection whose path
/// lost every probe (or its answer) for a while — a lossy link, a route flap — was closed as
/// `dead-peer`, where the kernel's default and Go's (realm, gost) wait for 9. With
/// `--keepalive 1s` (probes 1 s apart) a 6 s outage of the target's answers killed it.
#[test]
fn forward_keepalive_gave_a_live_target_up_after_a_short_outage() {
    if !privileged("forward_keepalive_gave_a_live_target_up") {
        return;
    }
    let ns = Netns::with_loopback("fwdkaout");
    let (_upstream, target) = echo_in(&ns, "127.0.0.1:0", &[]);
    let mut forward = ns.netkit();
    let args = [
        "forward",
        "127.0.0.1:0",
        &target.to_string(),
        "--keepalive",
        "1s",
    ];
    forward.args(args);
    let fw = Forwarder::spawn(forward, 1);
    let addr = fw.addr();
    let mut client = ns
        .run_in(move || TcpStream::connect(addr))
        .unwrap()
        .unwrap();
    let mut buf = [0u8; 5];
    client.write_all(b"hello").unwrap();
    client.read_exact(&mut buf).unwrap();
    // The target's answers to the probes are lost for 6 s, then get through again.
    let drop = |verb: &str| {
        let sport = target.port().to_string();
        let rule = [
            "iptables", "-w", verb, "OUTPUT", "-p", "tcp", "--sport", &sport,
        ];
        ns.exec(&[&rule[..], &["-j", "DROP"]].concat()).unwrap();
    };
    drop("-A");
    thread::sleep(std::time::Duration::from_secs(6));
    drop("-D");
    client
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let sent = client.write_all(b"again");
    let got = sent
        .and_then(|()| client.read_exact(&mut buf))
        .map(|()| buf);
    assert_eq!(got.ok().as_ref(), Some(b"again"), "{:?}", fw.stderr.all());
}

/// Audit on impaired links: a udp: target that answered a session's last datagram with ICMP
/// port unreachable went unnoticed until the client sent again. The session's record said
/// `refused: 0`, and with several targets the refusing one never went down: every other
/// one-shot client (a query from a fresh port, as resolvers send them) lost its datagram
/// there, 20 of 40 in each of three rounds in the lab. The reply pump waited for readable
/// data only, and tokio wakes no such waiter for the error the socket reports. A client of
/// the target itself sees the refusal (`ECONNREFUSED` at its next receive).
#[test]
fn forward_udp_refusal_of_a_sessions_last_datagram_went_unnoticed() {
    use crate::forward_udp::{client, exchange, forwarder, records, udp_addr, udp_echo};
    let refusing = crate::forward_udp::Refusing::new();
    let direct = client("127.0.0.1");
    direct.connect(refusing.addr).unwrap();
    direct.send(b"anyone?").unwrap();
    let seen = direct.recv(&mut [0u8; 16]).map_err(|e| e.kind());
    assert_eq!(seen, Err(ErrorKind::ConnectionRefused), "directly");
    // One target: the refusal is counted in the session's record.
    let target = format!("udp:{}", refusing.addr);
    let fw = forwarder("udp:0", &target, &["--idle-timeout", "300ms"]);
    let one_shot = client("127.0.0.1");
    one_shot.send_to(b"anyone?", udp_addr(&fw)).unwrap();
    let session = &records(&fw, "session", 1)[0];
    assert_eq!(session["refused"], 1, "{session}");
    // Two targets: the refusing one goes down, the next one-shot client is answered.
    let targets = format!("udp:{},udp:{}", refusing.addr, udp_echo("127.0.0.1:0"));
    let fw = forwarder("udp:0", &targets, &[]);
    one_shot.send_to(b"anyone?", udp_addr(&fw)).unwrap();
    let down = &records(&fw, "target", 1)[0];
    assert_eq!(
        (&down["target"], &down["state"]),
        (&serde_json::json!(target), &serde_json::json!("down")),
        "{down}"
    );
    let fresh = client("127.0.0.1");
    assert_eq!(exchange(&fresh, udp_addr(&fw), b"you?"), b"you?");
}

/// A Unix socket path with a newline or a terminal escape in it was printed as it was in the
/// stderr lines: `listening on ADDR -> TARGET` and each connection's line broke in two, and
/// the escape restyled the terminal (an audit; error lines escape them already). socat's
/// client reaches the target through it; both lines now show the paths escaped, each on one
/// line.
#[test]
fn forward_lines_printed_control_characters_of_unix_paths_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("t\x1b[2J.sock");
    unix_echo(std::os::unix::net::UnixListener::bind(&target).unwrap());
    let listen = dir.path().join("l\nz.sock");
    let fw = Forwarder::start(&[
        "forward",
        &format!("unix:{}", listen.display()),
        &format!("unix:{}", target.display()),
    ]);
    let d = dir.path().display();
    assert_eq!(
        fw.listens,
        [format!("unix:{d}/l\\nz.sock")],
        "{:?}",
        fw.stderr.all()
    );
    assert_eq!(through_socat(&listen), b"via socat");
    let conn = fw.wait_for(|l| l.contains(": up "), 1);
    assert!(
        conn[0].contains(&format!("-> unix:{d}/t\\x1b[2J.sock: up 9 B, down 9 B")),
        "{conn:?}"
    );
    let (code, _, stderr) = fw.stop("TERM");
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr}");
}

/// Reads `stream` to its end (waiting `PATIENCE` at most for each read): the bytes read, and how
/// the reading ended (`None`: a clean end of file).
fn read_to_the_end(stream: &mut TcpStream) -> (usize, Option<ErrorKind>) {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = vec![0u8; 65536];
    let mut got = 0;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (got, None),
            Ok(n) => got += n,
            Err(err) => return (got, Some(err.kind())),
        }
    }
}

/// What socat's client reads back after sending "via socat" to the Unix socket at `listen`
/// and its end of file.
fn through_socat(listen: &std::path::Path) -> Vec<u8> {
    let out = std::process::Command::new("socat")
        .args(["-", &format!("UNIX-CONNECT:{}", listen.display())])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(b"via socat")?;
            child.wait_with_output()
        })
        .expect("socat");
    out.stdout
}

/// A Unix socket path of 108 bytes (all of `sun_path`, no terminating NUL: the kernel, socat
/// and `ncat -U` take it) was refused on both sides of `forward` as "longer than 107 bytes".
/// A forwarder now listens on one and relays to another: socat's client reaches the echo
/// server behind it, and the `-> TARGET` of its line names the path whole.
#[test]
fn forward_refused_108_byte_unix_paths_on_either_side() {
    use crate::regression::echo::long_path;
    let dir = tempfile::tempdir().unwrap();
    let (target, alias) = long_path(&dir.path().join("t"), 108);
    let listen = long_path(&dir.path().join("l"), 108).0;
    unix_echo(std::os::unix::net::UnixListener::bind(&alias).unwrap());
    let fw = Forwarder::start(&[
        "forward",
        &format!("unix:{}", listen.display()),
        &format!("unix:{}", target.display()),
    ]);
    assert_eq!(fw.listens, [format!("unix:{}", listen.display())]);
    assert_eq!(through_socat(&listen), b"via socat");
    let conn = fw.wait_for(|l| l.contains(": up "), 1);
    assert!(
        conn[0].contains(&format!("-> unix:{}: up 9 B", target.display())),
        "{conn:?}"
    );
    let (code, _, stderr) = fw.stop("TERM");
    assert_eq!(code, 0, "{stderr}");
    assert!(!listen.exists(), "socket file left behind");
}

/// Audit on an impaired lab (the target 300 ms away): a client that reset before sending a
/// byte, while the forwarder was still connecting to the target, reached the target as a
/// clean end of file and was logged `close: done` (40 of 40 such clients; a direct target
/// reads the reset, HAProxy never opens the target's connection). The one-byte `MSG_PEEK`
/// that decides whether the handshake's last ACK waits for the client's bytes took the
/// client's pending reset, and the relay then read a plain end of file. Here the target's
/// accept queue is full, so the forwarder's connect completes only after the client's reset.
/// Now the target leg is reset; as its handshake's last ACK waits for the client's bytes, the
/// target's kernel drops the half-open connection and its server is handed none (as HAProxy).
#[test]
fn forward_client_reset_before_the_target_answered_reached_it_as_a_clean_fin() {
    let (listener, filler) = full_listener();
    let target = listener.local_addr().unwrap().to_string();
    let fw = Forwarder::start(&["forward", "0", &target]);
    abort(connect(fw.addr()));
    // Room in the queue: the forwarder's SYN, tried again, now completes its connect.
    drop(listener.accept().unwrap());
    drop(filler);
    fw.wait_for(|l| l.contains(" reset"), 1);
    listener.set_nonblocking(true).unwrap();
    if let Ok((mut server, _)) = listener.accept() {
        server.set_nonblocking(false).unwrap();
        assert_eq!(next_read(&mut server), Err(ErrorKind::ConnectionReset));
    }
}

/// A keep-alive target for [`forward_http_host_drain_held_idle_keepalive_connections`]:
/// answers every request `hello` (Content-Length) on the same connection, but a request for
/// `/slow` only once `release` gives the word (after saying on `arrived` that it came); closes
/// when its client does.
fn keepalive_target() -> (
    SocketAddr,
    std::sync::mpsc::Receiver<()>,
    std::sync::mpsc::Sender<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (arrived, on_arrival) = std::sync::mpsc::channel();
    let (release, on_release) = std::sync::mpsc::channel::<()>();
    let on_release = std::sync::Arc::new(std::sync::Mutex::new(on_release));
    thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let (arrived, on_release) = (arrived.clone(), on_release.clone());
            thread::spawn(move || {
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                loop {
                    let mut head = String::new();
                    let mut line = String::new();
                    while line != "\r\n" {
                        line.clear();
                        match std::io::BufRead::read_line(&mut reader, &mut line) {
                            Ok(1..) => head.push_str(&line),
                            _ => return,
                        }
                    }
                    if head.starts_with("GET /slow ") {
                        let _ = arrived.send(());
                        let _ = on_release.lock().unwrap().recv();
                    }
                    let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
                    if stream.write_all(reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, on_arrival, release)
}

/// A forwarder (with `verbosity`) of one `--http-host` rule to `target` whose drain timeout is
/// an hour, from a config file in the directory returned with it (kept while it runs).
fn draining_an_hour(target: SocketAddr, verbosity: &str) -> (Forwarder, tempfile::TempDir) {
    draining_an_hour_with(target, verbosity, "")
}

/// [`draining_an_hour`] with `extra` lines in its rule.
fn draining_an_hour_with(
    target: SocketAddr,
    verbosity: &str,
    extra: &str,
) -> (Forwarder, tempfile::TempDir) {
    draining_for(
        target,
        verbosity,
        &format!("drain_timeout = \"1h\"\n{extra}"),
    )
}

/// A forwarder (with `verbosity`) of one `--http-host` rule to `target` with `extra` lines
/// (its drain timeout among them) in its rule; the directory of its config file is returned
/// with it (kept while it runs).
fn draining_for(
    target: SocketAddr,
    verbosity: &str,
    extra: &str,
) -> (Forwarder, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rules.toml");
    let rule = format!(
        "[[rule]]\nlisten = \"127.0.0.1:0\"\ntarget = \"{target}\"\n\
         http_host = \"{HOST}\"\n{extra}"
    );
    std::fs::write(&config, rule).unwrap();
    let config = config.to_str().unwrap();
    (
        Forwarder::start(&[verbosity, "forward", "--config", config]),
        dir,
    )
}

/// Reads one answer of [`keepalive_target`] (its 43 bytes).
fn read_hello(client: &mut TcpStream) -> String {
    let mut reply = [0u8; 43];
    client.read_exact(&mut reply).unwrap();
    String::from_utf8_lossy(&reply).into_owned()
}

/// Audit (stop 49): after SIGTERM an `--http-host` forwarder held a keep-alive connection
/// idle between requests until the drain timeout (30 s by default; the client read nothing,
/// then the end of file at 30.0 s), where HAProxy's soft stop (SIGUSR1) closed it at 0.02 s
/// and nginx's graceful quit (SIGQUIT) at 0.04 s, both exiting then. Now a connection idle
/// between exchanges ends once the drain begins, and one busy then ends when its exchange is
/// through: its response comes whole, then the end of file. The drain timeout here is an
/// hour: before, the idle client's read gave up after the harness's patience. A reload
/// (SIGHUP) still leaves open connections alone, idle ones too.
#[test]
fn forward_http_host_drain_held_idle_keepalive_connections() {
    let (target, arrived, release) = keepalive_target();
    // `-v`: the drain's start is logged, so the signal is known to have been taken.
    let (mut fw, _dir) = draining_an_hour(target, "-v");
    let mut idle = connect(fw.addr());
    idle.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    assert!(read_hello(&mut idle).ends_with("hello"));
    fw.signal("HUP");
    fw.wait_for(|l| l.contains(" reloaded"), 1);
    idle.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    assert!(read_hello(&mut idle).ends_with("hello"), "after the reload");
    let mut busy = connect(fw.addr());
    busy.write_all(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    arrived.recv_timeout(PATIENCE).unwrap();
    fw.signal("TERM");
    fw.wait_for(|l| l.contains("draining"), 1);
    let mut rest = Vec::new();
    let end = idle.read_to_end(&mut rest).map_err(|e| e.kind());
    assert_eq!(end, Ok(0), "the idle connection was held through the drain");
    release.send(()).unwrap();
    let end = busy.read_to_end(&mut rest).map_err(|e| e.kind());
    assert_eq!(end, Ok(rest.len()), "held after its exchange");
    assert!(rest.ends_with(b"hello"), "the busy one's answer");
    assert_eq!(fw.wait(), 0, "still draining");
    let done = fw.wait_for(|l| l.contains(" done"), 2);
    assert_eq!(done.len(), 2, "{done:?}");
}

/// Reads what a connection busy with `GET /slow` on [`keepalive_target`] gets when the proxy
/// begins to drain (`stop`) during the request: the response, then the end of file.
fn last_response_while_draining(
    proxy: SocketAddr,
    arrived: &std::sync::mpsc::Receiver<()>,
    release: &std::sync::mpsc::Sender<()>,
    stop: impl FnOnce(),
) -> String {
    let mut busy = connect(proxy);
    busy.write_all(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    arrived.recv_timeout(PATIENCE).unwrap();
    stop();
    release.send(()).unwrap();
    let mut got = Vec::new();
    busy.read_to_end(&mut got).unwrap();
    String::from_utf8_lossy(&got).to_ascii_lowercase()
}

/// Audit (stop 49): a keep-alive connection busy when an `--http-host` forwarder began to
/// drain got its last response untouched, then the close: a client sending its next request
/// at once met the close instead of an answer (wrk stopped mid-run: 10 read errors through
/// netkit, 3 through HAProxy). HAProxy's soft stop (beside it here) and nginx's graceful quit
/// mark that response `Connection: close`, so the client sends nothing more on it. Now netkit
/// does too, and the connection ends once that response is through.
#[test]
fn forward_http_host_drain_marks_the_last_response_connection_close() {
    let (target, arrived, release) = keepalive_target();
    // `-vv`: the connection logs when the drain reached it; the target answers after that.
    let (mut fw, _dir) = draining_an_hour(target, "-vv");
    let got = last_response_while_draining(fw.addr(), &arrived, &release, || {
        fw.signal("TERM");
        fw.wait_for(|l| l.contains("marked Connection: close"), 1);
    });
    assert!(got.ends_with("hello"), "{got:?}");
    let head = got.split("\r\n\r\n").next().unwrap();
    assert!(
        head.lines().any(|l| l == "connection: close"),
        "the last response is not marked: {got:?}"
    );
    assert_eq!(fw.wait(), 0);
    if let Some(haproxy) = Haproxy::available() {
        let peer = haproxy.http_host(&target.to_string(), HOST);
        let got = last_response_while_draining(peer.addr, &arrived, &release, || {
            peer.signal("USR1");
        });
        eprintln!("HAProxy's last response: {got:?}");
        assert!(got.contains("connection: close"), "HAProxy: {got:?}");
    }
}

/// The body of [`big_once_target`]'s answer: more than the client's receive buffer takes
/// unread, less than the forwarder's send buffer holds.
const BIG_BODY: usize = 1024 * 1024;

/// A target for one connection: on its request it says so (`arrived`), waits for `release`,
/// answers `200` with [`BIG_BODY`] bytes (keep-alive), then reads to the end of file and says
/// so (`ended`) before closing.
fn big_once_target() -> (
    SocketAddr,
    std::sync::mpsc::Receiver<()>,
    std::sync::mpsc::Sender<()>,
    std::sync::mpsc::Receiver<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (arrived, on_arrival) = std::sync::mpsc::channel();
    let (release, on_release) = std::sync::mpsc::channel::<()>();
    let (ended, on_end) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        arrived.send(()).unwrap();
        on_release.recv_timeout(PATIENCE).unwrap();
        let mut reply =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {BIG_BODY}\r\n\r\n").into_bytes();
        reply.resize(reply.len() + BIG_BODY, b'b');
        stream.write_all(&reply).unwrap();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        ended.send(()).unwrap();
    });
    (addr, on_arrival, release, on_end)
}

/// Audit (stop 50): the drain's last response (marked `Connection: close`) went to the client
/// whole, and the forwarder closed the connection as soon as it had written it and the target
/// had closed, no longer reading the client: a client that sent its next request before
/// reading that response (a pipelining client, or one on a slow link where the response
/// takes seconds to arrive) made the kernel answer with a reset, which threw away what the
/// forwarder had not sent yet. In netkit-lab (50 ms, 1 mbit; `bench/forward_diff/http_linger.py`)
/// a client pipelining every 0.25 s got 81 KB of a 300 KB last response then the reset
/// through netkit and through HAProxy's soft stop, all of it and the end of file through
/// nginx's graceful quit (its lingering close). Here the client has not read the response
/// when it sends: the tail waits in the forwarder's send buffer. Now the forwarder lingers:
/// it reads and drops the client's bytes until the client has everything, then closes.
#[test]
fn forward_http_host_drain_close_reset_the_unread_last_response() {
    let (mut fw, _dir, mut client) = last_response_left_unread("");
    client
        .write_all(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let body = body_to_the_end(&mut client);
    assert_eq!(body, Ok(BIG_BODY), "the last response cut by a reset");
    assert_eq!(fw.wait(), 0);
}

/// A forwarder ([`draining_an_hour_with`] `extra`) to a [`big_once_target`], and its client,
/// which asked for the big response and has read none of it: the drain began before the
/// answer, which went out marked `Connection: close`; the target has the forwarder's end of
/// file, so the whole response was written to the client's socket (mostly waiting in the
/// forwarder's send buffer: the client's receive buffer is small) and the forwarder has
/// begun its lingering close.
fn last_response_left_unread(extra: &str) -> (Forwarder, tempfile::TempDir, TcpStream) {
    let (target, arrived, release, ended) = big_once_target();
    let (fw, dir) = draining_an_hour_with(target, "-vv", extra);
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4 * 1024).unwrap();
    socket.connect(&fw.addr().into()).unwrap();
    let mut client = TcpStream::from(socket);
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    client
        .write_all(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    arrived.recv_timeout(PATIENCE).unwrap();
    fw.signal("TERM");
    fw.wait_for(|l| l.contains("marked Connection: close"), 1);
    release.send(()).unwrap();
    // The target got the forwarder's end of file: the whole response was read and written
    // to the client's socket, and the forwarder reads the client no more (before: it closed).
    ended.recv_timeout(PATIENCE).unwrap();
    (fw, dir, client)
}

/// Reads `client` to its end: the length of the body after the first head, or how the read
/// failed.
fn body_to_the_end(client: &mut TcpStream) -> Result<usize, ErrorKind> {
    let mut got = Vec::new();
    client.read_to_end(&mut got).map_err(|e| e.kind())?;
    Ok(got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |at| got.len() - at - 4))
}

/// Audit (stop 51): with `--idle-timeout` shorter than the lingering close that follows a
/// close the forwarder decided (here the drain's last response, marked `Connection: close`),
/// the idle timeout cut the linger: a second after the response's last byte went into the
/// client's socket the connection was closed, recorded `idle-timeout`, and a client that had
/// not read it all by then and sent its next request got a reset that threw away the rest.
/// The linger is the forwarder's own close, bounded on its own (nginx's `lingering_time` and
/// `lingering_timeout` are apart from its `keepalive_timeout` and proxy timeouts); now the
/// idle timeout no longer cuts it, and the connection is recorded as it was decided, `done`.
#[test]
fn forward_http_host_idle_timeout_cut_the_lingering_close() {
    let (mut fw, _dir, mut client) = last_response_left_unread("idle_timeout = \"1s\"\n");
    // Well past the idle timeout, with nothing moving meanwhile.
    thread::sleep(std::time::Duration::from_millis(2500));
    let _ = client.write_all(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n");
    let body = body_to_the_end(&mut client);
    let records = fw.wait_for(|l| l.contains(" B, "), 1);
    assert_eq!(body, Ok(BIG_BODY), "the last response cut: {records:?}");
    assert!(records[0].contains(" done"), "{records:?}");
    assert_eq!(fw.wait(), 0);
}

/// Audit (stop 50): on a dual-stack listener (`[::]`), `--allow ::ffff:127.0.0.0/104` denied
/// the IPv4 clients it names: they arrive as `::ffff:127.0.0.1`, which the forwarder checks in
/// its IPv4 form (`127.0.0.0/8` let them in), and an IPv6 block never holds an IPv4 address.
/// HAProxy (`bind :::PORT v4v6`, `tcp-request connection reject unless { src
/// ::ffff:127.0.0.0/104 }`) lets them in, as with `src 127.0.0.0/8`: it compares an IPv4
/// source with an IPv6 pattern in its mapped form. Now netkit does, TCP and UDP alike; `::1`
/// stays outside.
#[test]
fn forward_allow_v4_mapped_block_denied_its_ipv4_clients() {
    let upstream = tcp_echo("127.0.0.1:0");
    let fw = Forwarder::start(&[
        "forward",
        "[::]:0",
        &upstream.to_string(),
        "--allow",
        "::ffff:127.0.0.0/104",
    ]);
    let port = fw.addr().port();
    let v4 = connect(SocketAddr::from(([127, 0, 0, 1], port)));
    assert_eq!(round_trip(v4, b"mapped"), b"mapped", "the IPv4 client");
    let v6 = connect(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)));
    let mut got = Vec::new();
    (&v6).read_to_end(&mut got).expect("closed, not reset");
    assert!(got.is_empty(), "::1 is outside the block");
    fw.wait_for(|l| l.contains("denied"), 1);
}

/// Audit (stop 50): a keep-alive connection idle when the drain began was closed at once,
/// even when its response had just gone out: a client sending its next request then met the
/// close (`bench/forward_diff/http_drain.py ... busy`, 8 clients sending back to back, per
/// stop: 2-5 requests met it through netkit, 0-6 through HAProxy's soft stop, 0-8 through
/// nginx's graceful quit). Now such a connection waits until its last response reached the
/// client a few round trips ago (50 ms and four round trips; stop 50 waited a second, which
/// kept a client idle for less than that from its end of file: stop 52's test above): the
/// request is answered, marked `Connection: close`, then the connection ends.
#[test]
fn forward_http_host_drain_closed_under_the_next_request() {
    let (target, _arrived, _release) = keepalive_target();
    let (mut fw, _dir) = draining_an_hour(target, "-vv");
    let mut client = connect(fw.addr());
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    assert!(read_hello(&mut client).ends_with("hello"));
    let answered = std::time::Instant::now();
    fw.signal("TERM");
    // The connection itself saw the drain begin (the "stopping" line comes before: a request
    // sent then may be served before the drain, unmarked).
    fw.wait_for(|l| l.contains("marked Connection: close"), 1);
    // Sent at once (within the grace since the answer above): it crosses the close.
    let _ = client.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let sent_after = answered.elapsed();
    let mut got = Vec::new();
    let end = client.read_to_end(&mut got).map_err(|e| e.kind());
    let got = String::from_utf8_lossy(&got).to_ascii_lowercase();
    if sent_after >= std::time::Duration::from_millis(30) && got.is_empty() {
        // A machine so loaded that the request left near the end of the grace: the close
        // it met says nothing (the old code closed within milliseconds of the signal).
        eprintln!("inconclusive: the request left {sent_after:?} after the answer");
        return;
    }
    assert_eq!(end, Ok(got.len()), "{got:?}");
    assert!(
        got.contains("connection: close") && got.ends_with("hello"),
        "the next request met the close: {got:?}"
    );
    assert_eq!(fw.wait(), 0);
}

/// Audit (stop 51): a keep-alive `--http-host` connection idle between requests when the
/// forwarder began a graceful stop heard its end of file only once its last response had gone
/// out a second before (`http_drain.py ... idle`, a client idle 0.5 s: its end of file 0.50 s
/// after the stop), where HAProxy's soft stop and nginx's graceful quit close it at once
/// (0.00-0.01 s). Here the stop comes right after the answer and the drain timeout (800 ms)
/// is shorter than that second: before, the drain timeout cut the idle connection
/// (`drain-timeout`), and the busy one with it before its response came; now the idle one
/// ends at once (past a grace of a few round trips, well under 100 ms here) and is recorded
/// `done`, and the busy one gets its response whole, released only after the idle one's end.
#[test]
fn forward_http_host_drain_held_an_idle_connection_a_second_after_its_response() {
    let (target, arrived, release) = keepalive_target();
    let (mut fw, _dir) = draining_for(target, "-v", "drain_timeout = \"800ms\"\n");
    let mut busy = connect(fw.addr());
    busy.write_all(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    arrived.recv_timeout(PATIENCE).unwrap();
    let mut idle = connect(fw.addr());
    idle.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    assert!(read_hello(&mut idle).ends_with("hello"));
    fw.signal("TERM");
    let mut rest = Vec::new();
    let end = idle.read_to_end(&mut rest).map_err(|e| e.kind());
    assert_eq!(end, Ok(0), "the idle connection's end");
    // Only now does the busy connection's response come: the idle one did not wait for it.
    release.send(()).unwrap();
    let end = busy.read_to_end(&mut rest).map_err(|e| e.kind());
    assert_eq!(end, Ok(rest.len()), "the busy one's end");
    let records = fw.wait_for(|l| l.contains(" B, "), 2);
    assert!(
        rest.ends_with(b"hello"),
        "the busy one's answer: {records:?}"
    );
    assert!(records.iter().all(|r| r.contains(" done")), "{records:?}");
    assert_eq!(fw.wait(), 0);
}
