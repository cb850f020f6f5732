//! Engine tests on real loopback sockets and files, with virtual time where the schedule
//! matters.

use std::time::Duration;

use super::*;
use crate::endpoint::Endpoint;

fn options(timeout: u64, interval: u64) -> WaitOptions {
    WaitOptions {
        timeout: Some(Duration::from_millis(timeout)),
        backoff: Backoff::new(Duration::from_millis(interval), None).expect("backoff"),
        any: false,
        invert: false,
        http: HttpCheck::default(),
    }
}

/// A loopback port bound without listening: connects are refused while it lives.
fn refused(ip: &str) -> (socket2::Socket, Target) {
    let addr: std::net::SocketAddr = format!("{ip}:0").parse().expect("addr");
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .expect("socket");
    socket.bind(&addr.into()).expect("bind");
    let bound = socket
        .local_addr()
        .expect("addr")
        .as_socket()
        .expect("inet");
    (socket, Target::Connect(Endpoint::tcp(bound)))
}

#[tokio::test(start_paused = true)]
async fn the_deadline_is_hard_and_the_reason_reported_once() {
    let (_held, target) = refused("127.0.0.1");
    let mut events = Vec::new();
    let ok = wait_for(&[target], &options(3000, 250), |e| {
        events.push(e);
        Ok(())
    })
    .await
    .unwrap();
    assert!(!ok);
    let refused = Finding::ConnectFailed("connection refused".into());
    match &events[..] {
        [WaitEvent::NotReady {
            index: 0,
            finding: a,
            ..
        }, WaitEvent::TimedOut {
            index: 0,
            finding: b,
            elapsed,
            attempts,
            earlier: None,
        }] => {
            assert_eq!((a, b), (&refused, &refused));
            assert_eq!(*elapsed, Duration::from_secs(3));
            // Every 250 ms from 0 to 2.75 s.
            assert_eq!(*attempts, 12);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn ready_is_reported_once_per_target() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let (_held, down) = refused("[::1]");
    let targets = [
        Target::Connect(Endpoint::tcp(listener.local_addr().expect("addr"))),
        down,
    ];
    let mut opts = options(30_000, 50);
    opts.any = true;
    let mut events = Vec::new();
    assert!(wait_for(&targets, &opts, |e| {
        events.push(e);
        Ok(())
    })
    .await
    .unwrap());
    let ready: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, WaitEvent::Ready { .. }))
        .collect();
    assert!(
        matches!(ready[..], [WaitEvent::Ready { index: 0, .. }]),
        "{events:?}"
    );
}

#[tokio::test]
async fn invert_is_ready_when_the_file_is_gone() {
    let dir = std::env::temp_dir().join(format!("netkit-wait-invert-{}", std::process::id()));
    std::fs::write(&dir, b"x").expect("write");
    let target = Target::File(dir.clone());
    let mut opts = options(10_000, 20);
    opts.invert = true;
    let remover = tokio::spawn({
        let dir = dir.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            std::fs::remove_file(dir).expect("remove");
        }
    });
    let mut events = Vec::new();
    assert!(wait_for(&[target], &opts, |e| {
        events.push(e);
        Ok(())
    })
    .await
    .unwrap());
    remover.await.expect("remover");
    match &events[..] {
        [WaitEvent::NotReady { finding, .. }, WaitEvent::Ready { .. }] => {
            assert_eq!(finding.reason(), "still exists");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn no_timeout_waits_until_ready() {
    let dir = std::env::temp_dir().join(format!("netkit-wait-forever-{}", std::process::id()));
    let _ = std::fs::remove_file(&dir);
    let target = Target::File(dir.clone());
    let mut opts = options(0, 250);
    opts.timeout = None;
    let creator = tokio::spawn({
        let dir = dir.clone();
        async move {
            // Far beyond any default timeout, in virtual time.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            std::fs::write(dir, b"x").expect("write");
        }
    });
    let mut events = Vec::new();
    assert!(wait_for(&[target], &opts, |e| {
        events.push(e);
        Ok(())
    })
    .await
    .unwrap());
    creator.await.expect("creator");
    let _ = std::fs::remove_file(&dir);
    assert!(
        matches!(events.last(), Some(WaitEvent::Ready { elapsed, .. }) if *elapsed >= Duration::from_secs(3600))
    );
}

#[tokio::test(start_paused = true)]
async fn attempts_keep_to_the_interval_then_back_off_to_the_cap() {
    // A Unix path that does not exist fails at once, so virtual time is the only clock.
    let target = Target::Connect(Endpoint::Unix(
        format!("/nonexistent/netkit-wait-{}.sock", std::process::id()).into(),
    ));
    let (attempts, finding) = timed_out(target, 20_000, 250).await;
    // 0 to 10 s every 250 ms (41 attempts), then after 0.5, 1, 2, 2, 2, 2 s: 10.5, 11.5, 13.5,
    // 15.5, 17.5 and 19.5 s.
    assert_eq!(attempts, 47);
    assert_eq!(finding.reason(), "no such file or directory");
}

/// Waits for `target` (`timeout_ms`, `interval_ms`), which must time out: its attempts and
/// what the last one found.
async fn timed_out(target: Target, timeout_ms: u64, interval_ms: u64) -> (u32, Finding) {
    let mut events = Vec::new();
    let ready = wait_for(&[target], &options(timeout_ms, interval_ms), |e| {
        events.push(e);
        Ok(())
    })
    .await
    .unwrap();
    assert!(!ready);
    match events.pop() {
        Some(WaitEvent::TimedOut {
            attempts, finding, ..
        }) => (attempts, finding),
        other => panic!("{other:?}"),
    }
}

/// A Unix server whose accept queue is full: every connect to it finds no room until its
/// bound (a second here, in virtual time), as a connect over a long round trip takes long.
fn full_unix_server(path: &std::path::Path) -> (socket2::Socket, Vec<socket2::Socket>) {
    let addr = socket2::SockAddr::unix(path).expect("address");
    let server =
        socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).expect("socket");
    server.bind(&addr).expect("bind");
    server.listen(1).expect("listen");
    let mut queued = Vec::new();
    for _ in 0..16 {
        let client = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)
            .expect("socket");
        client.set_nonblocking(true).expect("non-blocking");
        match client.connect(&addr) {
            Ok(()) => queued.push(client),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => return (server, queued),
            Err(err) => panic!("fill the queue: {err}"),
        }
    }
    panic!("the accept queue never filled");
}

/// Attempts longer than `--interval` ran back to back (the next one started at once: the
/// schedule is start to start), where a shell loop or wait4x sleeps `interval` after each: a
/// far server (a 300 ms round trip at `--interval 100ms`) was asked without a pause, and with
/// `--invert` a far kernel's ICMP errors were spent faster than by the loop (stop 49). Here
/// each attempt takes its 1 s connect bound: 14 or 15 attempts in 15.8 s before. An attempt
/// longer than half the interval is now followed by a pause as long as itself, up to the
/// interval: 0, 1.1, 2.2, ... 9.9 s, then backing off, 11.1, 12.5 and 14.3 s, 13 in all.
#[tokio::test(start_paused = true)]
async fn attempts_longer_than_the_interval_ran_back_to_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("busy.sock");
    let (_server, _queued) = full_unix_server(&path);
    let target = Target::Connect(Endpoint::Unix(path));
    let (attempts, finding) = timed_out(target, 15_800, 100).await;
    assert_eq!(finding, Finding::QueueFull);
    assert_eq!(attempts, 13);
}

/// The connections a loopback server took (never answered), as `(exchanges, knocks)`: those
/// that sent a request, and those closed without a byte.
fn exchanges_and_knocks(server: &std::net::TcpListener) -> (usize, usize) {
    use std::io::Read;
    server.set_nonblocking(true).expect("non-blocking");
    let (mut exchanges, mut knocks) = (0, 0);
    while let Ok((mut conn, _)) = server.accept() {
        conn.set_nonblocking(false).expect("blocking");
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        match conn.read(&mut [0; 16]).expect("read") {
            0 => knocks += 1,
            _ => exchanges += 1,
        }
    }
    (exchanges, knocks)
}

/// With `--invert`, a server that takes connections and never answers (the first HTTP
/// exchange stuck, then the one beside it from 1 s) was asked by a bare connect (a knock,
/// [`knock`]) only from 2 s into the exchange (stop 50), though the exchange beside it
/// often takes a connection already made and asks nothing new: a server gone in the first
/// seconds was heard a second later than by an `ncat -z` loop. The knocks now start with the
/// exchange beside, at 1 s. Over 2.5 s: exchanges at 0 and 1 s, knocks at 1 and 2 s (one
/// knock before).
#[tokio::test(start_paused = true)]
async fn invert_knocks_from_the_first_second_of_a_stuck_exchange() {
    let server = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/", server.local_addr().expect("addr"));
    let target: Target = url.parse().expect("target");
    let mut opts = options(2500, 250);
    opts.invert = true;
    assert!(!wait_for(&[target], &opts, |_| Ok(())).await.unwrap());
    assert_eq!(exchanges_and_knocks(&server), (2, 2));
}
