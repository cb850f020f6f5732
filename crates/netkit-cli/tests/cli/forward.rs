//! `netkit forward` through the real binary, against real upstreams started on port 0.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixListener, UnixStream};
use std::thread;
use std::time::{Duration, Instant};

use super::forward_util::*;
use super::harness::{netkit, run, text};

fn tcp_clone(s: &TcpStream) -> TcpStream {
    s.try_clone().unwrap()
}

fn unix_clone(s: &UnixStream) -> UnixStream {
    s.try_clone().unwrap()
}

#[test]
fn forward_large_transfers_arrive_intact_both_ways_under_concurrency() {
    let upstream = tcp_echo("127.0.0.1:0");
    let fw = Forwarder::start(&["forward", "127.0.0.1:0", &upstream.to_string()]);
    let addr = fw.addr();
    let clients: Vec<_> = (0..16)
        .map(|i| {
            thread::spawn(move || {
                let data = pattern(i, 3 * 1024 * 1024 + i as usize * 7919);
                let len = data.len();
                let (sent, got, got_len) = hashed_echo(connect(addr), data, tcp_clone);
                assert_eq!(got_len, len, "client {i}: byte count");
                assert_eq!(sent, got, "client {i}: sha256 differs");
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let logs = fw.wait_for(|l| l.contains(" done"), 16);
    assert!(
        logs.iter().any(|l| l.contains("splice]")),
        "bulk never spliced: {logs:?}"
    );
}

#[test]
fn forward_half_close_keeps_a_late_reply() {
    let upstream = late_reply_server();
    let fw = Forwarder::start(&["forward", "0", &upstream.to_string()]);
    let got = round_trip(connect(fw.addr()), b"question");
    assert_eq!(got, b"late reply to question");
}

#[test]
fn forward_ipv6_listen_and_target() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("forward_ipv6: skipped: no ::1 on this machine");
        return;
    }
    let upstream = tcp_echo("[::1]:0");
    let fw = Forwarder::start(&["forward", "[::1]:0", &format!("[::1]:{}", upstream.port())]);
    assert!(fw.addr().is_ipv6());
    let data = pattern(7, 2 * 1024 * 1024);
    let (sent, got, _) = hashed_echo(connect(fw.addr()), data, tcp_clone);
    assert_eq!(sent, got);
}

#[test]
fn forward_unix_path_listener_to_abstract_target() {
    let name = format!("nk-fw-test-{}", std::process::id());
    let upstream = UnixListener::bind_addr(&UnixAddr::from_abstract_name(&name).unwrap()).unwrap();
    unix_echo(upstream);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fw.sock");
    let listen = format!("unix:{}", path.display());
    let fw = Forwarder::start(&["forward", &listen, &format!("unix:@{name}")]);
    assert_eq!(fw.listens[0], listen);
    let stream = UnixStream::connect(&path).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let (sent, got, len) = hashed_echo(stream, pattern(3, 1 << 20), unix_clone);
    assert_eq!((sent, len), (got, 1 << 20));
    fw.signal("TERM");
    let mut fw = fw;
    assert_eq!(fw.wait(), 0);
    assert!(!path.exists(), "socket file left behind");
}

#[test]
fn forward_tcp_listener_to_unix_target() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("up.sock");
    unix_echo(UnixListener::bind(&path).unwrap());
    let fw = Forwarder::start(&["forward", "0", &format!("unix:{}", path.display())]);
    assert_eq!(round_trip(connect(fw.addr()), b"over unix"), b"over unix");
}

#[test]
fn forward_fd_count_returns_to_baseline_after_thousands_of_connections() {
    let upstream = tcp_echo("127.0.0.1:0");
    let fw = Forwarder::start(&["forward", "0", &upstream.to_string()]);
    let addr = fw.addr();
    assert_eq!(round_trip(connect(addr), b"warm"), b"warm");
    fw.wait_for(|l| l.contains(" done"), 1);
    let baseline = fw.fd_count();
    let workers: Vec<_> = (0..8)
        .map(|_| {
            thread::spawn(move || {
                for _ in 0..300 {
                    assert_eq!(round_trip(connect(addr), b"x"), b"x");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    fw.wait_for(|l| l.contains(" done"), 2401);
    let start = Instant::now();
    while fw.fd_count() > baseline && start.elapsed() < PATIENCE {
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(fw.fd_count(), baseline, "fds leaked");
}

#[test]
fn forward_upstream_down_closes_client_and_lives_on() {
    let dead = closed_port();
    let mut fw = Forwarder::start(&["forward", "0", &dead.endpoint()]);
    for _ in 0..3 {
        let mut client = connect(fw.addr());
        let mut buf = [0u8; 16];
        let n = client.read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0, "client should see the connection closed");
    }
    assert!(fw.alive(), "forwarder died");
    let lines = fw.wait_for(|l| l.contains("connect-failed"), 3);
    assert!(lines[0].contains("refused"), "{lines:?}");
}

#[test]
fn forward_emfile_backs_off_and_serves_again_when_load_drops() {
    serves_again_after_running_out_of_descriptors(&[]);
}

/// A forwarder limited to 40 descriptors (`extra` arguments added) with `--max-conns` beyond
/// what that carries (without it the forwarder bounds itself and never runs out): 60 clients
/// held make accepting run out of descriptors and back off; once they are dropped, a new
/// client must be served within [`PATIENCE`].
pub fn serves_again_after_running_out_of_descriptors(extra: &[&str]) {
    let upstream = tcp_echo("127.0.0.1:0");
    let mut cmd = std::process::Command::new("prlimit");
    cmd.args(["--nofile=40:40", env!("CARGO_BIN_EXE_netkit")]);
    cmd.args(["forward", "0", &upstream.to_string(), "--max-conns", "1000"]);
    cmd.args(extra);
    let mut fw = Forwarder::spawn(cmd, 1);
    let addr = fw.addr();
    let held: Vec<TcpStream> = (0..60)
        .map(|_| {
            let mut s = connect(addr);
            let _ = s.write_all(b"hold");
            s
        })
        .collect();
    fw.wait_for(|l| l.contains("too many open files"), 1);
    drop(held);
    let start = Instant::now();
    loop {
        let mut client = connect(addr);
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let _ = client.write_all(b"again");
        let _ = client.shutdown(Shutdown::Write);
        let mut got = Vec::new();
        if client.read_to_end(&mut got).is_ok() && got == b"again" {
            break;
        }
        assert!(start.elapsed() < PATIENCE, "never served again");
    }
    assert!(fw.alive(), "forwarder died");
}

#[test]
fn forward_rewrites_host_on_keep_alive_with_split_heads_and_chunked_bodies() {
    let (upstream, received) = recording_server();
    let fw = Forwarder::start(&[
        "forward",
        "0",
        &upstream.to_string(),
        "--http-host",
        "rewritten.test",
    ]);
    let requests: &[&[u8]] = &[
        b"GET /one HTTP/1.1\r\nHo",
        b"st: original\r\nAccept: */*\r",
        b"\n\r\nPOST /two HTTP/1.1\r\nHost: original\r\nContent-Length: 12\r\n\r\nHost: body\r\n",
        b"PUT /three HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: x\r\n\r\n6\r\nHost: \r\n",
        b"0\r\n\r\nGET /four HTTP/1.1\r\n\r\n",
    ];
    let mut client = connect(fw.addr());
    for piece in requests {
        client.write_all(piece).unwrap();
        thread::sleep(Duration::from_millis(30));
    }
    let reply = round_trip(client, b"");
    assert!(reply.is_empty(), "{}", String::from_utf8_lossy(&reply));
    let got = received.recv_timeout(PATIENCE).unwrap();
    let want = "GET /one HTTP/1.1\r\nHost: rewritten.test\r\nAccept: */*\r\n\r\n\
        POST /two HTTP/1.1\r\nHost: rewritten.test\r\nContent-Length: 12\r\n\r\nHost: body\r\n\
        PUT /three HTTP/1.1\r\nHost: rewritten.test\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nHost: \r\n\
        0\r\n\r\nGET /four HTTP/1.1\r\nHost: rewritten.test\r\n\r\n";
    assert_eq!(String::from_utf8_lossy(&got), want);
    let logs = fw.wait_for(|l| l.contains(" done"), 1);
    assert!(logs[0].contains("[copy]"), "{logs:?}");
}

#[test]
fn forward_http_101_and_2xx_to_connect_start_tunnels_whose_bytes_pass_untouched() {
    let upstream = HttpUpstream::start("rewritten.test");
    let fw = Forwarder::start(&[
        "forward",
        "0",
        &upstream.addr.to_string(),
        "--http-host",
        "rewritten.test",
    ]);
    // Inside a tunnel, bytes that look like a request are data: they pass as they are.
    let inside = b"GET /inside HTTP/1.1\r\nHost: tunnel-data\r\n\r\n";
    let openings = [
        (
            "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            "HTTP/1.1 101 ",
        ),
        (
            "CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n",
            "HTTP/1.1 200 ",
        ),
    ];
    for (opening, status) in openings {
        let mut request = opening.as_bytes().to_vec();
        request.extend_from_slice(inside);
        let reply = round_trip(connect(fw.addr()), &request);
        let text = String::from_utf8_lossy(&reply);
        assert!(text.starts_with(status), "{text}");
        assert!(reply.ends_with(inside), "{text}");
    }
    let requests = upstream.wait_requests(2);
    assert_eq!(
        requests.len(),
        2,
        "tunnel bytes parsed as requests: {requests:?}"
    );
    assert_eq!(requests[1]["target"], "rewritten.test:443");
    for request in &requests {
        assert_eq!(
            request["hosts"],
            serde_json::json!(["rewritten.test"]),
            "{request}"
        );
    }
}

#[test]
fn forward_http_malformed_or_huge_heads_get_a_clean_close() {
    let upstream = tcp_echo("127.0.0.1:0");
    let fw = Forwarder::start(&["forward", "0", &upstream.to_string(), "--http-host", "auto"]);
    let got = round_trip(connect(fw.addr()), b"NOT HTTP AT ALL\r\n\r\n");
    assert!(
        got.starts_with(b"HTTP/1.1 400 "),
        "{}",
        String::from_utf8_lossy(&got)
    );
    let mut client = connect(fw.addr());
    let mut head = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    head.resize(70 * 1024, b'a');
    let _ = client.write_all(&head);
    let mut got = Vec::new();
    let _ = client.read_to_end(&mut got);
    fw.wait_for(|l| l.contains("http-rejected"), 2);
}

#[test]
fn forward_allow_refuses_other_clients_and_logs_them() {
    let upstream = tcp_echo("127.0.0.1:0");
    let target = upstream.to_string();
    let fw = Forwarder::start(&["forward", "0", &target, "--allow", "198.18.0.0/15"]);
    let mut refused = connect(fw.addr());
    let mut got = Vec::new();
    refused.read_to_end(&mut got).expect("closed, not reset");
    assert!(got.is_empty());
    fw.wait_for(|l| l.contains("denied"), 1);
    let fw = Forwarder::start(&["forward", "0", &target, "--allow", "127.0.0.0/8"]);
    assert_eq!(round_trip(connect(fw.addr()), b"ok"), b"ok");
}

#[test]
fn forward_max_conns_holds_extra_clients_until_one_ends() {
    let upstream = tcp_echo("127.0.0.1:0");
    let fw = Forwarder::start(&["forward", "0", &upstream.to_string(), "--max-conns", "1"]);
    let mut first = connect(fw.addr());
    first.write_all(b"a").unwrap();
    let mut buf = [0u8; 1];
    first.read_exact(&mut buf).unwrap();
    let mut second = connect(fw.addr());
    second.write_all(b"b").unwrap();
    second
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(second.read(&mut buf).is_err(), "second client served early");
    drop(first);
    second.set_read_timeout(Some(PATIENCE)).unwrap();
    second.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"b");
}

#[test]
fn forward_idle_timeout_closes_quiet_connections() {
    let upstream = tcp_echo("127.0.0.1:0");
    let fw = Forwarder::start(&[
        "forward",
        "0",
        &upstream.to_string(),
        "--idle-timeout",
        "300ms",
    ]);
    let mut client = connect(fw.addr());
    let mut got = Vec::new();
    client
        .read_to_end(&mut got)
        .expect("closed by the forwarder");
    fw.wait_for(|l| l.contains("idle-timeout"), 1);
}

#[test]
fn forward_proxy_protocol_v1_header_reaches_the_target() {
    let upstream = tcp_echo("127.0.0.1:0");
    let fw = Forwarder::start(&[
        "forward",
        "0",
        &upstream.to_string(),
        "--proxy-protocol",
        "v1",
    ]);
    let client = connect(fw.addr());
    let me = client.local_addr().unwrap();
    let got = round_trip(client, b"payload");
    let want = format!(
        "PROXY TCP4 127.0.0.1 127.0.0.1 {} {}\r\npayload",
        me.port(),
        fw.addr().port()
    );
    assert_eq!(String::from_utf8_lossy(&got), want);
}

#[test]
fn forward_json_conn_records_on_stdout() {
    let upstream = tcp_echo("127.0.0.1:0");
    let mut cmd = netkit();
    cmd.args(["--json", "forward", "0", &upstream.to_string()]);
    let fw = Forwarder::spawn(cmd, 1);
    assert_eq!(round_trip(connect(fw.addr()), b"12345"), b"12345");
    fw.signal("TERM");
    let out = fw.stdout.to_end();
    let records: Vec<serde_json::Value> = out
        .iter()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(records[0]["type"], "listening");
    let conn = &records[1];
    assert_eq!(conn["type"], "conn");
    assert_eq!(conn["bytes_up"], 5);
    assert_eq!(conn["bytes_down"], 5);
    assert_eq!(conn["close"], "done");
    assert_eq!(conn["target"], upstream.to_string());
    assert!(conn["duration_s"].as_f64().is_some());
    assert!(conn["client"].as_str().unwrap().starts_with("127.0.0.1:"));
}

#[test]
fn forward_sigterm_stops_accepting_and_drains_open_connections() {
    let upstream = tcp_echo("127.0.0.1:0");
    let mut fw = Forwarder::start(&["forward", "0", &upstream.to_string()]);
    let addr = fw.addr();
    let mut open = connect(addr);
    open.write_all(b"1").unwrap();
    let mut buf = [0u8; 1];
    open.read_exact(&mut buf).unwrap();
    fw.signal("TERM");
    let start = Instant::now();
    while TcpStream::connect(addr).is_ok() {
        assert!(start.elapsed() < PATIENCE, "still accepting");
        thread::sleep(Duration::from_millis(20));
    }
    assert!(fw.alive(), "exited before draining");
    assert_eq!(round_trip(open, b"2"), b"2");
    assert_eq!(fw.wait(), 0);
}

#[test]
fn forward_config_with_two_rules_serves_both() {
    let upstream = tcp_echo("127.0.0.1:0");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.toml");
    let rules = format!(
        "[[rule]]\nlisten = \"0\"\ntarget = \"{upstream}\"\n\n\
         [[rule]]\nlisten = \"127.0.0.1:0\"\ntarget = \"{upstream}\"\nproxy_protocol = \"v1\"\n"
    );
    std::fs::write(&file, rules).unwrap();
    let mut cmd = netkit();
    cmd.args(["forward", "--config", file.to_str().unwrap()]);
    let fw = Forwarder::spawn(cmd, 2);
    let first: std::net::SocketAddr = fw.listens[0].parse().unwrap();
    let second: std::net::SocketAddr = fw.listens[1].parse().unwrap();
    assert_eq!(round_trip(connect(first), b"one"), b"one");
    assert!(round_trip(connect(second), b"two").starts_with(b"PROXY TCP4 "));
}

#[test]
fn forward_flags_override_config_options() {
    let upstream = tcp_echo("127.0.0.1:0");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.toml");
    let rules =
        format!("[[rule]]\nlisten = \"0\"\ntarget = \"{upstream}\"\nproxy_protocol = \"v1\"\n");
    std::fs::write(&file, rules).unwrap();
    let mut cmd = netkit();
    cmd.args(["forward", "--config", file.to_str().unwrap()]);
    cmd.args(["--proxy-protocol", "v2"]);
    let fw = Forwarder::spawn(cmd, 1);
    let got = round_trip(connect(fw.addr()), b"x");
    assert_eq!(&got[..12], b"\r\n\r\n\0\r\nQUIT\n", "v2 signature expected");
    assert_eq!(&got[12..14], &[0x21, 0x11]);
    assert_eq!(got.len(), 16 + 12 + 1);
    assert_eq!(got.last(), Some(&b'x'));
}

#[test]
fn forward_config_unknown_key_is_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.toml");
    std::fs::write(
        &file,
        "[[rule]]\nlisten = \"0\"\ntarget = \"127.0.0.1:9\"\nspeed = 1\n",
    )
    .unwrap();
    let (code, _, err) = text(&run(&["forward", "--config", file.to_str().unwrap()]));
    assert_eq!(code, 2, "{err}");
    assert!(err.starts_with("netkit: "), "{err}");
    assert!(err.contains("unknown field `speed`"), "{err}");
}

#[test]
fn forward_config_retries_out_of_range_is_refused_with_exit_2_naming_file_and_rule() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.toml");
    std::fs::write(
        &file,
        "[[rule]]\nlisten = \"0\"\ntarget = \"127.0.0.1:9\"\nretries = 101\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let (code, _, err) = text(&run(&["forward", "--config", path]));
    assert_eq!(code, 2, "{err}");
    let want = format!(
        "netkit: {path}: rule 1: retries = 101: retries must be a whole number from 0 to 100"
    );
    assert!(err.starts_with(&want), "{err}");
}

/// The JSON conn records of a forwarder stopped with SIGTERM.
fn conn_records(fw: Forwarder) -> Vec<serde_json::Value> {
    fw.signal("TERM");
    let out = fw.stdout.to_end();
    out.iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON line"))
        .filter(|r| r["type"] == "conn")
        .collect()
}

/// Waits (10 s at most) until a socket of this network namespace is connecting to `port` of
/// 127.0.0.1 (`SYN_SENT` in `/proc/net/tcp`): the forwarder's, whose SYN a full queue dropped.
pub(crate) fn wait_for_syn_sent(port: u16) {
    let remote = format!("0100007F:{port:04X}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let connecting = table.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(2) == Some(&remote.as_str()) && fields.get(3) == Some(&"02")
        });
        if connecting {
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
    panic!("nothing connected to port {port}");
}

/// Accepts, once the forwarder's SYN was dropped by the full queue of `listener` (from
/// [`full_listener`]) and the queue has room again, the forwarder's connection (its SYN tried
/// again a second later).
fn accept_after_full(listener: &std::net::TcpListener, filler: TcpStream) -> TcpStream {
    wait_for_syn_sent(listener.local_addr().unwrap().port());
    drop(listener.accept().unwrap());
    drop(filler);
    let (server, _) = listener.accept().unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    server
}

/// `netkit --json forward` from an ephemeral port to `listener`.
fn json_forwarder_to(listener: &std::net::TcpListener) -> Forwarder {
    let target = listener.local_addr().unwrap().to_string();
    let mut cmd = netkit();
    cmd.args(["--json", "forward", "0", &target]);
    Forwarder::spawn(cmd, 1)
}

/// The client's first bytes are read as soon as the target's connection is made and written
/// to it at once, the relay going on from there (`conn::first_bytes`). Bytes and an end of file
/// that came while the forwarder was still connecting (the target's accept queue full) reach
/// the target whole, the end of file after them, and are counted.
#[test]
fn forward_bytes_and_end_of_file_sent_while_connecting_reach_the_target_whole() {
    let (listener, filler) = full_listener();
    let fw = json_forwarder_to(&listener);
    let mut client = connect(fw.addr());
    client
        .write_all(b"sent before the target answered")
        .unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let mut server = accept_after_full(&listener, filler);
    let mut got = Vec::new();
    server.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"sent before the target answered");
    server.write_all(b"reply").unwrap();
    drop(server);
    let mut back = Vec::new();
    client.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"reply");
    let records = conn_records(fw);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["bytes_up"], 31);
    assert_eq!(records[0]["bytes_down"], 5);
    assert_eq!(records[0]["close"], "done");
}

/// Bytes, then a reset, sent while the forwarder was still connecting: the target reads the
/// bytes, then the reset (not a clean end of file), and the record says `reset`.
#[test]
fn forward_bytes_then_a_reset_sent_while_connecting_reach_the_target_in_that_order() {
    let (listener, filler) = full_listener();
    let fw = json_forwarder_to(&listener);
    let mut client = connect(fw.addr());
    client.write_all(b"early").unwrap();
    socket2::SockRef::from(&client)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(client);
    let mut server = accept_after_full(&listener, filler);
    let mut got = Vec::new();
    let end = loop {
        let mut buf = [0u8; 64];
        match server.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(err) => break Some(err.kind()),
        }
    };
    assert_eq!(got, b"early");
    assert_eq!(end, Some(std::io::ErrorKind::ConnectionReset));
    let records = conn_records(fw);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["bytes_up"], 5);
    assert_eq!(records[0]["close"], "reset");
}
