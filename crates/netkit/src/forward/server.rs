//! The forwarder on the [`crate::server`] accept loop: one task per connection ([`super::conn`]),
//! at most `max_conns` at once, drained for the rule's drain timeout after shutdown (those
//! still open then are closed and recorded `close: drain-timeout`). Each finished connection
//! becomes an [`Event`], reported in order from the serving task.

use std::future::Future;
use std::io;
use std::sync::Arc;

use super::{conn, Rule};
use crate::endpoint::{Listener, Stream};
use crate::report::forward::ConnRecord;
use crate::server::{self, Cancel, Reporter, Stop};

/// What the forwarder reports while it serves.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A connection ended (`{"type":"conn",...}`).
    Conn(ConnRecord),
}

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
    let max_conns = rule.options.max_conns.unwrap_or(usize::MAX);
    let drain = Stop::Drain(rule.options.drain_timeout);
    rule.options.keepalive.apply_to_listener(&listener);
    let handler = move |(client, peer): (Stream, String), cancel: Cancel, events: Reporter<_>| {
        let rule = rule.clone();
        // The connection's state in one box, taken once: an async block awaiting an async fn
        // called with its captures would keep them twice (rust-lang/rust#62958), and an open
        // connection keeps its state for as long as it lives.
        let abort = Box::pin(cancel.cancelled());
        let conn = Box::pin(async move { conn::handle(client, peer, &rule, abort).await });
        async move { events.report(Event::Conn(conn.await)) }
    };
    server::serve_reporting(listener, shutdown, max_conns, handler, drain, on_event).await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::{mpsc, oneshot};

    use super::*;
    use crate::endpoint::Endpoint;
    use crate::forward::Options;
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
        let rule = Rule {
            listen: Endpoint::tcp(addr),
            target: Endpoint::tcp(echo_target().await),
            options: Options::default(),
        };
        (Listener::from(tcp), addr, Arc::new(rule))
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
