//! The forwarder on the [`crate::server`] accept loop: one task per connection ([`super::conn`]),
//! at most `max_conns` at once, drained after shutdown (those still open when the drain timeout
//! runs out are closed and recorded `close: drain-timeout`). Each finished connection, and
//! each change of a target's state, becomes an [`Event`].
//!
//! [`serve`] serves one rule on its own; the supervisor of reloads ([`super::reload`]) serves
//! every rule through [`serve_backend`], so that the connections of a rule replaced by a
//! reload go on while the new rule takes the new ones.

use std::future::Future;
use std::io;
use std::sync::Arc;

use tokio::sync::{oneshot, Semaphore};

use super::backend::Backend;
use super::event::{Event, Events};
use super::metrics::Registry;
use super::{conn, Rule};
use crate::endpoint::{Endpoint, Listener, Peer, Stream};
use crate::server::{self, Accept, Cancel, Ends, Stop};

/// Serves `rule` on `listener` until `shutdown` completes, then waits for every connection to
/// end, closing those still open after the drain timeout. Every [`Event`] goes to `on_event`;
/// when it fails, the forwarder stops as on shutdown and returns its error.
pub async fn serve<E>(
    listener: Listener,
    rule: Arc<Rule>,
    shutdown: impl Future,
    on_event: E,
) -> io::Result<()>
where
    E: FnMut(Event) -> io::Result<()>,
{
    rule.options.keepalive.apply_to_listener(&listener);
    let (events, incoming) = Events::channel();
    let (failed, sink_failed) = oneshot::channel::<()>();
    let label = listener.local_addr();
    let backend = Arc::new(Backend::new(
        rule,
        &label,
        &Registry::default(),
        &events,
        None,
    ));
    let serving = async move {
        backend.start_checks();
        let stopping = async {
            tokio::select! {
                _ = shutdown => {}
                _ = sink_failed => {}
            }
        };
        let ends = Ends::as_stop_says(Stop::Drain(backend.rule.options.drain_timeout));
        let limit = limit_of(&backend.rule);
        serve_backend(
            listener,
            Arc::clone(&backend),
            stopping,
            ends,
            events,
            limit,
        )
        .await;
        backend.stop_checks();
    };
    tokio::join!(serving, server::deliver(incoming, failed, on_event)).1
}

/// The bound on the connections of `rule` served at once ([`max_conns`]), shared by the accept
/// loops of one listening socket; none when there is none (then no loop counts its
/// connections against a semaphore the loops of the other threads share).
pub(super) fn limit_of(rule: &Rule) -> Option<Arc<Semaphore>> {
    max_conns(rule).map(server::limit)
}

/// Below this open-files limit a rule without `--max-conns` gets the bound the limit leaves
/// room for ([`implicit_max_conns`]); above it descriptors are not what runs out first, and
/// the accept loops stay free of a shared count.
const LOW_NOFILE: u64 = 4096;
/// Descriptors kept aside from connections: listeners, the runtime, checks, logs.
const RESERVE: u64 = 32;

/// The connections of `rule` served at once: `--max-conns`, else, under a low open-files
/// limit, as many as the descriptors allow — clients beyond wait in the kernel's backlog,
/// which costs none, instead of being accepted and then dropped when their target's socket
/// cannot be opened (HAProxy derives its `maxconn` from the limit alike).
pub(super) fn max_conns(rule: &Rule) -> Option<usize> {
    rule.options
        .max_conns
        .or_else(|| implicit_max_conns(rule, nofile()))
}

/// The bound the open-files limit alone puts on `rule` (below 4096: two descriptors per
/// connection, four with `exec:`, after a quarter for pipes and 32 aside), for the notice
/// that says so: none when the rule has `--max-conns`, relays datagrams (sessions are not
/// counted against it), or the limit is high enough.
pub fn descriptor_cap(rule: &Rule) -> Option<usize> {
    if rule.options.max_conns.is_some() || rule.is_datagram() {
        return None;
    }
    implicit_max_conns(rule, nofile())
}

/// The soft open-files limit, read once (the CLI raised it before any rule is served).
fn nofile() -> u64 {
    static NOFILE: std::sync::LazyLock<u64> = std::sync::LazyLock::new(crate::sys::rlimit::nofile);
    *NOFILE
}

/// The connections `nofile` descriptors carry: a quarter goes to splice pipes at most
/// ([`super::pipe_pool`]), [`RESERVE`] aside, then two per connection (the client's and the
/// target's sockets), four with an `exec:` target (its socketpair, and the child's spawn).
fn implicit_max_conns(rule: &Rule, nofile: u64) -> Option<usize> {
    if nofile >= LOW_NOFILE {
        return None;
    }
    let exec = rule.targets.iter().any(|t| matches!(t, Endpoint::Exec(_)));
    let per_conn = if exec { 4 } else { 2 };
    let room = (nofile - nofile / 4).saturating_sub(RESERVE);
    Some(usize::try_from(room / per_conn).unwrap_or(1).max(1))
}

/// Serves `backend` on `listener` until `shutdown` completes, then ends the open connections
/// as `ends` says; the records go to `events`; at most `limit` connections at once
/// ([`limit_of`], shared with the other loops of the socket).
pub(super) async fn serve_backend<L, C, D>(
    listener: L,
    backend: Arc<Backend>,
    shutdown: impl Future,
    ends: Ends<C, D>,
    events: Events,
    limit: Option<Arc<Semaphore>>,
) where
    L: Accept<Conn = (Stream, Peer)>,
    C: Future,
    D: Future,
{
    let records = events.wants_conn_records();
    let lane = Arc::new(Lane {
        backend,
        events: records.then_some(events),
    });
    let handler = move |(client, peer): (Stream, Peer), cancel: Cancel| {
        let lane = Arc::clone(&lane);
        // The connection's state in boxes, taken once: an async block awaiting an async fn
        // called with its captures would keep them twice (rust-lang/rust#62958), and an open
        // connection keeps its state for as long as it lives.
        // `--http-host` connections close when idle once the drain begins: only they know
        // when they are (the plain relay keeps no second watch of the server).
        let drain = lane
            .backend
            .rule
            .options
            .http_host
            .is_some()
            .then(|| cancel.clone());
        let abort = Box::pin(cancel.cancelled());
        Box::pin(async move {
            let record = conn::handle(client, peer, &lane.backend, abort, drain, records).await;
            if let (Some(events), Some(record)) = (&lane.events, record) {
                events.send(Event::Conn(record));
            }
        })
    };
    server::serve_limited(listener, shutdown, limit, handler, ends).await;
}

/// What the connections of one accept loop share, behind a count of the loop's own: cloning
/// the backend's or the event channel's for each connection would move their counts, which
/// the loops of every thread share, between cores twice per connection.
struct Lane {
    backend: Arc<Backend>,
    /// Where the connections' records go (none when nobody wants them).
    events: Option<Events>,
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::{mpsc, oneshot};

    use super::*;
    use crate::report::forward::Close;

    /// A target that echoes one message per connection, then closes.
    async fn echo_target() -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut got = Vec::new();
                let _ = stream.read_to_end(&mut got).await;
                let _ = stream.write_all(&got).await;
            }
        });
        addr
    }

    async fn forwarder() -> (Listener, std::net::SocketAddr, Arc<Rule>) {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let rule = Rule::new(Endpoint::tcp(addr), Endpoint::tcp(echo_target().await));
        (Listener::from(tcp), addr, Arc::new(rule))
    }

    #[test]
    fn a_low_open_files_limit_bounds_the_connections_it_cannot_carry() {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
        let tcp = Rule::new(Endpoint::tcp(addr), Endpoint::tcp(addr));
        let exec = Rule::new(Endpoint::tcp(addr), Endpoint::Exec(vec!["cat".into()]));
        assert_eq!(implicit_max_conns(&tcp, 64), Some(8));
        assert_eq!(implicit_max_conns(&exec, 64), Some(4));
        assert_eq!(implicit_max_conns(&tcp, 1024), Some(368));
        assert_eq!(implicit_max_conns(&tcp, 16), Some(1));
        assert_eq!(implicit_max_conns(&tcp, 20_000), None);
        let mut asked = tcp.clone();
        asked.options.max_conns = Some(3);
        assert_eq!(max_conns(&asked), Some(3));
    }

    async fn round_trip(addr: std::net::SocketAddr) -> Vec<u8> {
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(b"ping").await.unwrap();
        client.shutdown().await.unwrap();
        let mut reply = Vec::new();
        client.read_to_end(&mut reply).await.unwrap();
        reply
    }

    #[tokio::test]
    async fn each_connection_is_reported_once_it_ends() {
        let (listener, addr, rule) = forwarder().await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, rule, stopped, move |event| {
            tx.send(event).map_err(|_| io::Error::other("test gone"))
        }));
        assert_eq!(round_trip(addr).await, b"ping");
        let Some(Event::Conn(record)) = rx.recv().await else {
            panic!("no record");
        };
        assert_eq!((record.bytes_up, record.bytes_down), (4, 4));
        assert_eq!(record.close, Close::Done);
        stop.send(()).unwrap();
        let done = tokio::time::timeout(Duration::from_secs(10), server).await;
        assert!(done.unwrap().unwrap().is_ok());
    }

    #[tokio::test]
    async fn without_conn_records_no_record_is_sent_and_the_metrics_count_all() {
        let (listener, addr, rule) = forwarder().await;
        let (events, mut incoming) = Events::channel();
        let events = events.without_conn_records();
        let registry = Registry::default();
        let label = listener.local_addr();
        let backend = Arc::new(Backend::new(rule, &label, &registry, &events, None));
        let (stop, stopped) = oneshot::channel::<()>();
        let ends = Ends::as_stop_says(Stop::Drain(Duration::from_secs(10)));
        let limit = limit_of(&backend.rule);
        let serving = serve_backend(listener, Arc::clone(&backend), stopped, ends, events, limit);
        let server = tokio::spawn(serving);
        for _ in 0..3 {
            assert_eq!(round_trip(addr).await, b"ping");
        }
        stop.send(()).unwrap();
        let done = tokio::time::timeout(Duration::from_secs(10), server).await;
        done.expect("drained").unwrap();
        // Every connection ended before the server returned; the targets keep a sender.
        while let Ok(event) = incoming.try_recv() {
            assert!(!matches!(event, Event::Conn(_)), "{event:?}");
        }
        assert_eq!(backend.metrics.accepted.load(Ordering::Relaxed), 3);
        let text = registry.render();
        let done = text
            .lines()
            .find(|l| l.starts_with("netkit_forward_rule_closed_total") && l.contains("done"));
        assert!(done.is_some_and(|l| l.ends_with(" 3")), "{text}");
    }

    #[tokio::test]
    async fn a_failing_sink_stops_the_forwarder_with_its_error() {
        let (listener, addr, rule) = forwarder().await;
        let sink = |_event| Err(io::Error::other("sink gone"));
        let server = tokio::spawn(serve(listener, rule, std::future::pending::<()>(), sink));
        assert_eq!(round_trip(addr).await, b"ping");
        let done = tokio::time::timeout(Duration::from_secs(10), server).await;
        let err = done.expect("stopped").unwrap().unwrap_err();
        assert_eq!(err.to_string(), "sink gone");
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "no longer listening"
        );
    }
}
