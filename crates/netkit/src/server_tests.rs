//! The accept loop in-process on paused time (as mini-redis's `tests/server.rs`): real TCP
//! listeners on port 0 for the cap and the three ways of stopping, a scripted listener for the
//! accept errors a test cannot provoke without lowering the process's limits.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::*;

/// A listener on 127.0.0.1 port 0 and its address.
async fn loopback() -> (Listener, std::net::SocketAddr) {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    (Listener::from(tcp), addr)
}

/// Counts the handlers that started, ended and saw their [`Cancel`].
#[derive(Debug, Default)]
struct Seen {
    started: AtomicUsize,
    ended: AtomicUsize,
    cancelled: AtomicUsize,
}

impl Seen {
    fn get(&self) -> (usize, usize, usize) {
        (
            self.started.load(Ordering::SeqCst),
            self.ended.load(Ordering::SeqCst),
            self.cancelled.load(Ordering::SeqCst),
        )
    }
}

/// A handler that reads its client to the end (or until cancelled, when `honour_cancel`).
fn reader(
    seen: &Arc<Seen>,
    honour_cancel: bool,
) -> impl FnMut((Stream, Peer), Cancel) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
    let seen = seen.clone();
    move |(mut stream, _peer), cancel| {
        let seen = seen.clone();
        Box::pin(async move {
            seen.started.fetch_add(1, Ordering::SeqCst);
            let mut sink = Vec::new();
            let read = stream.read_to_end(&mut sink);
            if honour_cancel {
                tokio::select! {
                    _ = read => {}
                    () = cancel.cancelled() => {
                        seen.cancelled.fetch_add(1, Ordering::SeqCst);
                    }
                }
            } else {
                let _ = read.await;
            }
            seen.ended.fetch_add(1, Ordering::SeqCst);
        })
    }
}

/// Starts `serve` on a task; the sender begins shutdown.
fn spawn_server<H, F>(
    listener: Listener,
    max_conns: usize,
    handler: H,
    stop: Stop,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>)
where
    H: FnMut((Stream, Peer), Cancel) -> F + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let (shutdown, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, stopped, max_conns, handler, stop));
    (shutdown, server)
}

/// Lets the server and its connections run for a while of paused time.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// A handler that waits for the drain to begin, then ends (counted as cancelled).
fn drain_watcher(
    seen: &Arc<Seen>,
) -> impl FnMut((Stream, Peer), Cancel) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
    let seen = seen.clone();
    move |(_stream, _peer), mut cancel| {
        let seen = seen.clone();
        Box::pin(async move {
            seen.started.fetch_add(1, Ordering::SeqCst);
            cancel.draining().await;
            seen.cancelled.fetch_add(1, Ordering::SeqCst);
            seen.ended.fetch_add(1, Ordering::SeqCst);
        })
    }
}

#[tokio::test(start_paused = true)]
async fn connections_are_told_when_the_drain_begins() {
    let (listener, addr) = loopback().await;
    let seen = Arc::new(Seen::default());
    let stop = Stop::Drain(Duration::from_secs(3600));
    let (shutdown, server) = spawn_server(listener, 8, drain_watcher(&seen), stop);
    let _client = TcpStream::connect(addr).await.unwrap();
    settle().await;
    assert_eq!(seen.get(), (1, 0, 0), "serving: not draining");
    let began = tokio::time::Instant::now();
    shutdown.send(()).unwrap();
    server.await.unwrap();
    assert_eq!(seen.get(), (1, 1, 1), "ended on the drain");
    // Paused time: the deadline (which fires `draining` too) would have been jumped to.
    assert!(
        began.elapsed() < Duration::from_secs(3600),
        "{:?}",
        began.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn the_cap_holds_connections_back_until_one_ends() {
    let (listener, addr) = loopback().await;
    let seen = Arc::new(Seen::default());
    let (_shutdown, _server) = spawn_server(listener, 2, reader(&seen, true), Stop::Abort);
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(TcpStream::connect(addr).await.unwrap());
    }
    settle().await;
    assert_eq!(
        seen.get(),
        (2, 0, 0),
        "third connection waits in the backlog"
    );
    drop(clients.remove(0));
    settle().await;
    assert_eq!(
        seen.get(),
        (3, 1, 0),
        "a freed slot takes the waiting connection"
    );
}

#[tokio::test(start_paused = true)]
async fn drain_lets_open_connections_finish_and_closes_the_listener_at_once() {
    let (listener, addr) = loopback().await;
    let seen = Arc::new(Seen::default());
    let stop = Stop::Drain(Duration::from_secs(30));
    let (shutdown, server) = spawn_server(listener, 8, reader(&seen, true), stop);
    let client = TcpStream::connect(addr).await.unwrap();
    settle().await;
    shutdown.send(()).unwrap();
    settle().await;
    assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
    assert!(!server.is_finished(), "waits for the open connection");
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(client);
    server.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(seen.get(), (1, 1, 0), "ended by its client, not cancelled");
}

#[tokio::test(start_paused = true)]
async fn drain_cancels_what_is_still_open_at_the_deadline() {
    let (listener, addr) = loopback().await;
    let seen = Arc::new(Seen::default());
    let stop = Stop::Drain(Duration::from_secs(5));
    let (shutdown, server) = spawn_server(listener, 8, reader(&seen, true), stop);
    let _idle = [
        TcpStream::connect(addr).await.unwrap(),
        TcpStream::connect(addr).await.unwrap(),
    ];
    settle().await;
    let started = Instant::now();
    shutdown.send(()).unwrap();
    server.await.unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(6),
        "{took:?}"
    );
    assert_eq!(
        seen.get(),
        (2, 2, 2),
        "both cancelled, both handlers returned"
    );
}

#[tokio::test(start_paused = true)]
async fn a_cut_cancels_the_open_connections_only_once_accepting_stopped() {
    let (listener, addr) = loopback().await;
    let seen = Arc::new(Seen::default());
    let (cut, cut_now) = oneshot::channel::<()>();
    let ends = Ends {
        stop: Stop::Drain(Duration::MAX),
        cut: cut_now,
        drain: std::future::ready(()),
    };
    let (shutdown, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve_limited(
        listener,
        stopped,
        None,
        reader(&seen, true),
        ends,
    ));
    let _idle = [
        TcpStream::connect(addr).await.unwrap(),
        TcpStream::connect(addr).await.unwrap(),
    ];
    settle().await;
    cut.send(()).unwrap();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(!server.is_finished());
    assert_eq!(seen.get(), (2, 0, 0), "cancelled while still accepting");
    shutdown.send(()).unwrap();
    server.await.unwrap();
    assert_eq!(seen.get(), (2, 2, 2), "both cancelled by the cut");
}

#[tokio::test(start_paused = true)]
async fn abort_ends_connections_at_once() {
    let (listener, addr) = loopback().await;
    let seen = Arc::new(Seen::default());
    let (shutdown, server) = spawn_server(listener, 8, reader(&seen, false), Stop::Abort);
    let _idle = TcpStream::connect(addr).await.unwrap();
    settle().await;
    let started = Instant::now();
    shutdown.send(()).unwrap();
    server.await.unwrap();
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(
        seen.get(),
        (1, 0, 0),
        "the handler was dropped where it stood"
    );
}

/// A listener that plays a script of accept results, then waits forever.
struct Scripted {
    script: Mutex<VecDeque<io::Result<u32>>>,
    accepted_at: Mutex<Vec<Instant>>,
}

impl Scripted {
    fn new(script: Vec<io::Result<u32>>) -> Scripted {
        Scripted {
            script: Mutex::new(script.into()),
            accepted_at: Mutex::new(Vec::new()),
        }
    }
}

impl Accept for Arc<Scripted> {
    type Conn = u32;

    fn accept(&self) -> impl Future<Output = io::Result<u32>> + Send {
        let next = self.script.lock().unwrap().pop_front();
        let this = self.clone();
        async move {
            match next {
                Some(result) => {
                    this.accepted_at.lock().unwrap().push(Instant::now());
                    result
                }
                None => std::future::pending().await,
            }
        }
    }

    fn local_addr(&self) -> String {
        "scripted".into()
    }
}

fn errno(code: i32) -> io::Result<u32> {
    Err(io::Error::from_raw_os_error(code))
}

/// Serves `script` until it is played out; returns the connections handed to the handler and
/// when each accept was answered, from the start.
async fn play(script: Vec<io::Result<u32>>) -> (Vec<u32>, Vec<Duration>) {
    let calls = script.len();
    let listener = Arc::new(Scripted::new(script));
    let handled = Arc::new(Mutex::new(Vec::new()));
    let (shutdown, stopped) = oneshot::channel::<()>();
    let start = Instant::now();
    let server = tokio::spawn(serve(
        listener.clone(),
        stopped,
        4,
        {
            let handled = handled.clone();
            move |conn, _cancel| {
                handled.lock().unwrap().push(conn);
                async {}
            }
        },
        Stop::Abort,
    ));
    while listener.accepted_at.lock().unwrap().len() < calls {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    shutdown.send(()).unwrap();
    server.await.unwrap();
    let at = listener.accepted_at.lock().unwrap();
    let handled = handled.lock().unwrap().clone();
    (handled, at.iter().map(|t| *t - start).collect())
}

#[tokio::test(start_paused = true)]
async fn out_of_descriptors_backs_off_exponentially_and_a_success_resets_it() {
    let emfile = nix::libc::EMFILE;
    let mut script: Vec<io::Result<u32>> = (0..9).map(|_| errno(emfile)).collect();
    script.push(Ok(1));
    script.push(errno(nix::libc::ENOBUFS));
    script.push(Ok(2));
    let (handled, at) = play(script).await;
    assert_eq!(handled, [1, 2]);
    let ms = |d: &Duration| d.as_millis();
    let gaps: Vec<u128> = at.windows(2).map(|w| ms(&w[1]) - ms(&w[0])).collect();
    // 5, 10, ... doubling up to 500 ms; after the success the next failure starts at 5 again.
    assert_eq!(gaps, [5, 10, 20, 40, 80, 160, 320, 500, 500, 0, 5]);
}

#[tokio::test(start_paused = true)]
async fn errors_of_the_one_connection_are_skipped_without_pausing() {
    let script = vec![
        errno(nix::libc::ECONNABORTED),
        errno(nix::libc::EPROTO),
        Ok(7),
    ];
    let (handled, at) = play(script).await;
    assert_eq!(handled, [7]);
    assert!(at.iter().all(|t| t.is_zero()), "{at:?}");
}

#[test]
fn warnings_come_at_most_once_a_second_and_count_the_rest() {
    let mut backoff = Backoff::default();
    let t0 = Instant::now();
    assert!(backoff.should_warn(t0));
    assert!(!backoff.should_warn(t0 + Duration::from_millis(300)));
    assert!(!backoff.should_warn(t0 + Duration::from_millis(999)));
    assert_eq!(backoff.unreported, 2);
    assert!(backoff.should_warn(t0 + WARN_EVERY));
}

#[tokio::test(start_paused = true)]
async fn a_unix_listener_is_served_and_its_socket_file_removed_on_shutdown() {
    let dir = std::env::temp_dir().join(format!("netkit-server-{}", std::process::id()));
    let _ = std::fs::remove_file(&dir);
    let endpoint = crate::Endpoint::Unix(dir.clone());
    let listener = endpoint.listen().await.unwrap();
    let seen = Arc::new(Seen::default());
    let (shutdown, server) = spawn_server(listener, 8, reader(&seen, true), Stop::Abort);
    let client = tokio::net::UnixStream::connect(&dir).await.unwrap();
    drop(client);
    settle().await;
    assert_eq!(seen.get(), (1, 1, 0));
    shutdown.send(()).unwrap();
    server.await.unwrap();
    assert!(!dir.exists(), "socket file removed with the listener");
}

#[tokio::test(start_paused = true)]
async fn reported_events_reach_the_sink_in_order_and_a_failing_sink_stops_the_server() {
    let listener = Arc::new(Scripted::new(vec![Ok(0)]));
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let got = got.clone();
        move |event: u32| {
            got.lock().unwrap().push(event);
            match event {
                3 => Err(io::Error::other("sink full")),
                _ => Ok(()),
            }
        }
    };
    let handler = |_conn: u32, _cancel: Cancel, events: Reporter<u32>| async move {
        for event in 1..=4 {
            events.report(event);
        }
    };
    let never = std::future::pending::<()>();
    let result = serve_reporting(listener, never, 4, handler, Stop::Abort, sink).await;
    assert_eq!(result.unwrap_err().to_string(), "sink full");
    assert_eq!(*got.lock().unwrap(), [1, 2, 3], "nothing after the failure");
}
