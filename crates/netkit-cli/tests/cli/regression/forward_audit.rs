//! Regressions of `netkit forward` found by the differential audits (bench/forward_diff/),
//! apart from `forward.rs` so that audits and fixes of the relay do not touch the same file.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::forward_util::*;

/// A keep-alive HTTP target that answers every request head `200` with a 2-byte body and,
/// once the forwarder's side ends (its FIN), keeps its own side open: the socket is handed
/// to the test, which holds it until it returns.
fn target_that_stays_open() -> (SocketAddr, mpsc::Receiver<std::net::TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (held, on_held) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let held = held.clone();
            thread::spawn(move || {
                let mut stream = stream;
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if stream.write_all(ok).is_err() {
                            return;
                        }
                    }
                }
                // The forwarder's side ended: this side stays open.
                let _ = held.send(stream);
            });
        }
    });
    (addr, on_held)
}

/// Audit (stop 53, fwdaudit): a keep-alive `--http-host` connection idle between requests
/// when the forwarder began a graceful stop was held until the drain timeout (30 s) when its
/// target did not close its side after the forwarder's FIN: the idle connection ends by
/// shutting the target's write side and then waits, as for any response direction, for the
/// target's end of file before the client gets its own. HAProxy's soft stop (SIGUSR1) and
/// nginx's graceful quit (SIGQUIT) close such a client at once (0.00 s beside the same
/// target, `bench/forward_diff/http_drain.py`'s client); netkit, main's binary, 30.00 s. Here
/// the drain timeout is an hour: the client's read meets the harness's patience instead.
#[test]
fn forward_http_host_drain_held_an_idle_client_while_the_target_kept_its_side_open() {
    let (target, held) = target_that_stays_open();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rules.toml");
    let rule = format!(
        "[[rule]]\nlisten = \"127.0.0.1:0\"\ntarget = \"{target}\"\n\
         http_host = \"audit.example\"\ndrain_timeout = \"1h\"\n"
    );
    std::fs::write(&config, rule).unwrap();
    let mut fw = Forwarder::start(&["-v", "forward", "--config", config.to_str().unwrap()]);
    let mut idle = connect(fw.addr());
    idle.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let mut reply = [0u8; 40];
    idle.read_exact(&mut reply).unwrap();
    assert!(
        reply.ends_with(b"ok"),
        "{:?}",
        String::from_utf8_lossy(&reply)
    );
    // Idle past the grace a last response gets (50 ms and a few round trips).
    thread::sleep(Duration::from_millis(300));
    let stopped = Instant::now();
    fw.signal("TERM");
    fw.wait_for(|l| l.contains("draining"), 1);
    let mut rest = Vec::new();
    let end = idle.read_to_end(&mut rest).map_err(|e| e.kind());
    let waited = stopped.elapsed();
    assert_eq!(
        end,
        Ok(0),
        "the idle client was held through the drain ({waited:?})"
    );
    // The target's side: the forwarder's FIN reached it.
    let _kept = held.recv_timeout(PATIENCE).unwrap();
    assert_eq!(fw.wait(), 0);
}

/// A target that answers its first read (or at once, with `head` empty) with `head` and
/// `part`, then reads on: how its read ended (its bytes, or the error's kind) is sent back.
fn target_that_sends_part_and_reads(
    head: &'static [u8],
    part: &'static [u8],
) -> (
    SocketAddr,
    mpsc::Receiver<Result<usize, std::io::ErrorKind>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (ended, on_end) = mpsc::channel();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut buf = [0u8; 4096];
        if !head.is_empty() {
            let _ = stream.read(&mut buf);
            stream.write_all(head).unwrap();
        }
        stream.write_all(part).unwrap();
        let end = stream.read(&mut buf).map_err(|e| e.kind());
        let _ = ended.send(end);
    });
    (addr, on_end)
}

/// A graceful stop's drain timeout cutting a connection still relaying, through a forwarder
/// with `extra` arguments to a target that sent `head` and `part` of a stream without an end:
/// the client reads `part`, the forwarder is stopped, and both ends must read a reset.
fn drain_timeout_cut(extra: &[&str], request: &[u8], head: &'static [u8]) {
    let part = b"part of a stream without an end";
    let (target, on_end) = target_that_sends_part_and_reads(head, part);
    let target = target.to_string();
    let mut args = vec!["forward", "0", &target, "--drain-timeout", "1s"];
    args.extend_from_slice(extra);
    let mut fw = Forwarder::start(&args);
    let mut client = connect(fw.addr());
    client.write_all(request).unwrap();
    let mut got = vec![0u8; head.len() + part.len()];
    client.read_exact(&mut got).unwrap();
    assert!(got.ends_with(part), "{:?}", String::from_utf8_lossy(&got));
    fw.signal("TERM");
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut rest = Vec::new();
    let end = client.read_to_end(&mut rest).map_err(|e| e.kind());
    assert_eq!(
        end,
        Err(std::io::ErrorKind::ConnectionReset),
        "the client took the cut for the stream's end ({} more bytes)",
        rest.len()
    );
    let target_end = on_end.recv_timeout(PATIENCE).unwrap();
    assert_eq!(
        target_end,
        Err(std::io::ErrorKind::ConnectionReset),
        "the target took the cut for the client's end"
    );
    assert_eq!(fw.wait(), 0);
}

/// Audit (stop 53, fwdaudit): the graceful stop's drain timeout closed a connection still
/// relaying with a FIN to both ends, so a client reading a stream without a length took the
/// cut for its end, and the target took it for the client's. HAProxy 2.6's `hard-stop-after`
/// (SIGUSR1) and nginx's `worker_shutdown_timeout` (SIGQUIT) do the same (tcpdump on lo: a
/// FIN to the client; the target's FIN followed by the kernel's reset when it writes on).
/// Netkit passes resets on as resets: the cut is one, to both ends.
#[test]
fn forward_drain_timeout_cut_ended_a_relaying_connection_with_a_clean_end_of_file() {
    drain_timeout_cut(&[], b"", b"");
}

/// [`forward_drain_timeout_cut_ended_a_relaying_connection_with_a_clean_end_of_file`] through
/// `--http-host`: a response whose body runs until the target closes, cut by the drain
/// timeout, reached the client as a whole one.
#[test]
fn forward_http_host_drain_timeout_cut_a_close_delimited_body_with_a_clean_end_of_file() {
    drain_timeout_cut(
        &["--http-host", "audit.example"],
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
    );
}

/// [`forward_drain_timeout_cut_ended_a_relaying_connection_with_a_clean_end_of_file`] while
/// the forwarder was still connecting to the target (its accept queue full): a client waiting
/// for the target to speak first read a clean end of file at the cut, as if the target had
/// closed without a word.
#[test]
fn forward_drain_timeout_cut_a_connection_still_connecting_with_a_clean_end_of_file() {
    let (listener, _filler) = full_listener();
    let target = listener.local_addr().unwrap();
    let target_text = target.to_string();
    let args = [
        "forward",
        "0",
        &target_text,
        "--drain-timeout",
        "1s",
        "--connect-timeout",
        "1m",
    ];
    let mut fw = Forwarder::start(&args);
    let mut client = connect(fw.addr());
    crate::forward::wait_for_syn_sent(target.port());
    fw.signal("TERM");
    let mut rest = Vec::new();
    let end = client.read_to_end(&mut rest).map_err(|e| e.kind());
    assert_eq!(end, Err(std::io::ErrorKind::ConnectionReset));
    assert_eq!(fw.wait(), 0);
}

/// A UDP target that takes datagrams and never answers (a black hole: no ICMP either).
fn udp_black_hole() -> (std::net::UdpSocket, SocketAddr) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

/// A UDP target answering `live:` and the datagram.
fn udp_live() -> SocketAddr {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((len, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&[b"live:", &buf[..len]].concat(), from);
        }
    });
    addr
}

/// Audit (stop 55, `bench/forward_diff/reload_busy.py` and by hand): a `udp:` rule whose
/// target had gone silent, reloaded to a live one. The changed rule's old loop kept reading
/// the listening socket until its sessions drained, and a session whose client kept sending
/// never went quiet, so it drained only at the drain timeout: until then the client's
/// datagrams went on to the dead target, and every new client's were dropped (`draining`).
/// By hand, with the default drain timeout: 30.0 s without an answer for either. Now the old
/// loop lets go of the socket at once (its sessions still relay their replies), and the new
/// rule serves every datagram that comes after the reload.
#[test]
fn forward_udp_reload_away_from_a_silent_target_kept_sending_to_it_until_the_drain_timeout() {
    let (_hole, silent) = udp_black_hole();
    let live = udp_live();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.toml");
    let rules = |target: SocketAddr| {
        format!(
            "[[rule]]\nlisten = \"udp:127.0.0.1:0\"\ntarget = \"udp:{target}\"\n\
             drain_timeout = \"1h\"\n"
        )
    };
    std::fs::write(&file, rules(silent)).unwrap();
    let mut cmd = crate::harness::netkit();
    cmd.args(["forward", "--config"]).arg(&file);
    let fw = Forwarder::spawn(cmd, 1);
    let addr: SocketAddr = fw.listens[0].strip_prefix("udp:").unwrap().parse().unwrap();
    let old = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    old.send_to(b"lost", addr).unwrap();
    // The client keeps sending (a session to the silent target), the target is moved.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let (old, stop) = (old.try_clone().unwrap(), stop.clone());
        thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = old.send_to(b"again", addr);
                thread::sleep(Duration::from_millis(20));
            }
        })
    };
    thread::sleep(Duration::from_millis(200));
    std::fs::write(&file, rules(live)).unwrap();
    fw.signal("HUP");
    fw.wait_for(|l| l.contains(" reload"), 1);
    let newcomer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let answer = udp_answer(&newcomer, addr, b"new");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sender.join().unwrap();
    assert_eq!(answer.as_deref(), Some("live:new"), "{:?}", fw.stderr.all());
    // The old client's next datagrams reach the live target too (a reply to an earlier
    // `again` may come first).
    let reply = udp_answer(&old, addr, b"old").unwrap_or_default();
    assert!(
        reply.starts_with("live:"),
        "{reply:?} {:?}",
        fw.stderr.all()
    );
}

/// Audit (stop 55, `bench/forward_diff/reload_busy.py`: sessions ended `done` with up 19
/// down 15 while their echo target lagged behind the TCP load): a draining session was taken
/// as answered once a reply came after its client's last datagram, though that reply could
/// answer an earlier one. A client with three questions in flight, the first answered, then
/// SIGTERM: the session ended `done` at once, and the two answers still to come were lost
/// (the session's socket closed). Now a draining session also waits for as many replies as
/// its client sent (or a second of quiet, or the drain timeout).
#[test]
fn forward_udp_drain_ended_a_session_with_replies_outstanding_once_one_came() {
    let upstream = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    upstream.set_read_timeout(Some(PATIENCE)).unwrap();
    let target = format!("udp:{}", upstream.local_addr().unwrap());
    let fw = Forwarder::start(&[
        "forward",
        "--json",
        "udp:127.0.0.1:0",
        &target,
        "--drain-timeout",
        "1h",
    ]);
    let addr: SocketAddr = fw.listens[0].strip_prefix("udp:").unwrap().parse().unwrap();
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = [0u8; 64];
    let mut from = Vec::new();
    for question in [b"q1", b"q2", b"q3"] {
        client.send_to(question, addr).unwrap();
        let (len, session) = upstream.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..len], question);
        from.push(session);
    }
    upstream.send_to(b"a1", from[0]).unwrap();
    let (len, _) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..len], b"a1");
    fw.signal("TERM");
    // The draining forwarder goes on while two answers are owed; give it time to get it
    // wrong (it looks every 20 ms), then answer.
    thread::sleep(Duration::from_millis(300));
    upstream.send_to(b"a2", from[1]).unwrap();
    upstream.send_to(b"a3", from[2]).unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        match client.recv_from(&mut buf) {
            Ok((len, _)) => got.push(String::from_utf8_lossy(&buf[..len]).into_owned()),
            Err(_) => break,
        }
    }
    let (code, stdout, stderr) = fw.into_proc().finish();
    assert_eq!(got, ["a2", "a3"], "{stdout}\n{stderr}");
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("\"close\":\"done\""), "{stdout}");
}

/// The packets the namespace's one ip6tables DROP rule has dropped so far.
fn dropped_syns(ns: &crate::harness::Netns) -> u64 {
    let table = ns
        .exec(&["ip6tables", "-L", "INPUT", "-v", "-x", "-n"])
        .unwrap();
    let line = table.lines().find(|l| l.contains("DROP")).unwrap();
    line.split_whitespace().next().unwrap().parse().unwrap()
}

/// Audit (stop 56, fwd17, `bench/forward_diff/happy_eyeballs.py`): a name whose first
/// address black-holes SYNs cost every connection through `netkit forward` the Happy Eyeballs
/// attempt delay (250 ms), nothing remembering that the first address stayed silent while the
/// second answered (HAProxy fails outright there). Connects remember the winner now: after the
/// first connection, the next ones start with the address that answered and send no SYN to
/// the silent one, as the namespace's DROP rule's counter shows (main's binary: one more
/// dropped SYN per connection).
#[test]
fn forward_happy_eyeballs_paid_the_attempt_delay_on_every_connection_to_a_silent_first_address() {
    let test = "forward_happy_eyeballs_paid_the_attempt_delay_on_every_connection_to_a_silent_first_address";
    if !crate::harness::privileged(test) {
        return;
    }
    let setup = crate::forward_netns::SilentFirst::new("fwhem", "2001:db8::98", "--syn");
    let (ns, fw, live) = (&setup.ns, &setup.fw, setup.live);
    let exchange = |n: u8| {
        let addr = fw.addr();
        let got = ns
            .run_in(move || round_trip(connect(addr), &[n; 4]))
            .unwrap();
        assert_eq!(got, [&b"live:"[..], &[n; 4]].concat());
    };
    exchange(0);
    let first = dropped_syns(ns);
    assert!(
        first >= 1,
        "the first connection tries the silent address first"
    );
    for n in 1..4 {
        exchange(n);
    }
    let records = fw.wait_for(|l| l.contains(" done"), 4);
    assert!(
        records.iter().all(|l| l.contains(&format!("-> {live}:"))),
        "{records:?}"
    );
    assert_eq!(
        dropped_syns(ns),
        first,
        "later connections sent SYNs to the silent address"
    );
}
