//! Relaying both directions of a connection at once ([`super::flow`] moves each one), with TCP
//! keepalive on both legs ([`super::keepalive`]). An error in either direction, no traffic for
//! the idle timeout, or the drain timeout ends both. With `--http-host` the bytes go through
//! [`super::http_relay`] instead.
//!
//! A cut is a reset too: a connection still open when the drain timeout ends it is closed
//! with `SO_LINGER` 0 on both sides ([`cut`]), so neither end takes it for a whole stream (a
//! Unix side reads an end of file, unless bytes it sent are left unread).
//!
//! A reset is passed on as a reset: when one side resets the connection (or a write to it
//! fails because it is gone, or it stopped answering keepalive probes), the other side is
//! closed with `SO_LINGER` 0, so its peer sees `ECONNRESET` rather than a clean end of file
//! that would pass a truncated stream for a whole one. Not before that peer has acknowledged
//! every byte relayed to it ([`acks::watch`]): a side that sent its last bytes and then reset
//! is seen through the forwarder as directly, all of its bytes and then the reset; and when a
//! write meets the reset of a side that closed, what that side sent before is still read and
//! delivered first ([`super::flow::both_ends`]). A Unix stream has no reset but a close with
//! bytes unread (its peer reads `ECONNRESET` after what it was sent): a Unix side owed one
//! gets it when bytes it sent are left unread, as the bytes thrown away after a reset keep
//! their last one, and else reads an end of file. (HAProxy
//! 2.6 passes a client's reset on to the server at once, losing what it still had to send,
//! and turns a server's reset into a clean close.)
//!
//! The state of a relay lives in its connection's task for as long as the connection is open,
//! so what only some connections need (the HTTP session, the idle clock) is boxed: an idle
//! plain connection costs its task a few hundred bytes.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::acks::{self, Until};
use super::flow::{both_ends, direction, Dir, Fault, Leg, Stats};
use super::io::Head;
use super::keepalive_later::Pending;
use super::Rule;
use crate::endpoint::{Endpoint, Stream};
use crate::report::forward::Close;
use crate::server::Cancel;

/// What a relay did.
#[derive(Debug)]
pub(super) struct Outcome {
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub path: &'static str,
    pub close: Close,
    pub error: Option<String>,
}

/// Relays between `client` and `upstream` (connected to `target`, one of the rule's) until both
/// directions end, one fails, the connection idles out or `abort` completes (the drain
/// timeout); an `--http-host` relay also ends between two requests once `drain` says the
/// server is draining. `head`: the client's first bytes, already read and passed on as far as
/// the target took them ([`super::conn`]; plain relays only), the first step of the upward
/// direction.
///
/// The relay's state is boxed: it is what an open connection holds for as long as it lives,
/// and a boxed future takes its own size, while an inline one would also reserve room in the
/// connection's task for the connect that came before it (and async state machines keep an
/// awaited future's room twice, rust-lang/rust#62958). One box for each kind of relay: a
/// plain connection keeps no room for the `--http-host` relay, nor one of those for the plain
/// relay's two directions.
pub(super) fn run<'a>(
    client: &'a Stream,
    upstream: &'a Stream,
    rule: &'a Rule,
    target: &'a Endpoint,
    abort: impl Future<Output = ()> + 'a,
    drain: Option<Cancel>,
    head: Head,
) -> Kind<impl Future<Output = Outcome> + 'a, impl Future<Output = Outcome> + 'a> {
    let stats = Stats::new(rule.options.idle_timeout.is_some());
    match &rule.options.http_host {
        Some(host) => {
            let host = host.value_for(target);
            Kind::Http(Box::pin(async move {
                // Pinned here and lent, as the directions below.
                let both = std::pin::pin!(super::http_relay::run(
                    client, upstream, host, &stats, drain
                ));
                relay(client, upstream, rule, &stats, abort, both).await
            }))
        }
        None => Kind::Plain(Box::pin(async move {
            let both = std::pin::pin!(plain(client, upstream, &stats, head));
            relay(client, upstream, rule, &stats, abort, both).await
        })),
    }
}

/// The box of a plain relay or of an `--http-host` one.
pub(super) enum Kind<P, H> {
    Plain(Pin<Box<P>>),
    Http(Pin<Box<H>>),
}

impl<P: Future, H: Future<Output = P::Output>> Future for Kind<P, H> {
    type Output = P::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<P::Output> {
        match self.get_mut() {
            Kind::Plain(relay) => relay.as_mut().poll(cx),
            Kind::Http(relay) => relay.as_mut().poll(cx),
        }
    }
}

/// Both directions of a plain relay.
async fn plain(
    client: &Stream,
    upstream: &Stream,
    stats: &Stats,
    head: Head,
) -> Result<(Close, Option<String>), Fault> {
    // Pinned here and lent: moved into `both_ends`, each would take its room twice there
    // (rust-lang/rust#62958), for as long as the connection lives.
    let up = std::pin::pin!(direction(client, upstream, Dir::Up, stats, head));
    let down = std::pin::pin!(direction(upstream, client, Dir::Down, stats, Head::None));
    both_ends(up, down, client, upstream, Some(stats))
        .await
        .map(|_| (Close::Done, None))
}

/// Runs `both` (the relay's directions, plain or `--http-host`) until they end, one fails,
/// the connection idles out or `abort` completes.
async fn relay(
    client: &Stream,
    upstream: &Stream,
    rule: &Rule,
    stats: &Stats,
    abort: impl Future<Output = ()>,
    both: Pin<&mut impl Future<Output = Result<(Close, Option<String>), Fault>>>,
) -> Outcome {
    // The client leg has it from its listener (`Keepalive::apply_to_listener`); the target
    // leg gets it if it lives past the worker's next tick, held until the relay ends.
    let _keepalive = Pending::set(rule.options.keepalive, upstream);
    let idle = async {
        match rule.options.idle_timeout {
            Some(idle) => Box::pin(stats.idle(idle)).await,
            None => std::future::pending().await,
        }
    };
    let mut abort = std::pin::pin!(abort);
    let ended = tokio::select! {
        result = both => result,
        () = idle => Ok((Close::IdleTimeout, None)),
        () = &mut abort => {
            cut(client, upstream, stats);
            Ok((Close::DrainTimeout, None))
        }
    };
    // Boxed: a failure is rare, and `both`, pinned by the caller, outlives the select, so
    // the reset's state would otherwise take room beside it for the connection's life.
    let (close, error) = match ended {
        Ok(done) => done,
        Err(fault) => Box::pin(pass_on(client, upstream, &fault, abort)).await,
    };
    let path = stats.path();
    tracing::debug!("relay path: {path}");
    Outcome {
        bytes_up: stats.up(),
        bytes_down: stats.down(),
        path,
        close,
        error,
    }
}

/// The drain timeout cut the connection: both sides are closed with `SO_LINGER` 0, so that
/// neither end takes the cut for the end of what it was sent (a body without a length, a TCP
/// stream), unless the close was already decided and is under way (`--http-host`'s answer or
/// lingering close, [`Stats::closing`]): the client has, or is getting, all it is owed, which
/// a reset would throw away. HAProxy's `hard-stop-after` and nginx's
/// `worker_shutdown_timeout` close with a FIN.
fn cut(client: &Stream, upstream: &Stream, stats: &Stats) {
    if !stats.is_closing() {
        client.set_abortive_close();
        upstream.set_abortive_close();
    }
}

/// Classifies a failed direction; a reset, or a side that stopped answering, is passed on to
/// the other side as a reset once that side's peer has what was relayed to it (or `abort`,
/// the drain timeout, completes).
async fn pass_on(
    client: &Stream,
    upstream: &Stream,
    fault: &Fault,
    abort: impl Future<Output = ()>,
) -> (Close, Option<String>) {
    let why = crate::error::describe_io(&fault.err);
    let (close, text) = if fault.is_reset() {
        (Close::Reset, why)
    } else if fault.err.kind() == std::io::ErrorKind::TimedOut {
        let leg = match fault.leg {
            Leg::Client => "client",
            Leg::Target => "target",
        };
        (
            Close::DeadPeer,
            format!("the {leg} stopped answering: {why}"),
        )
    } else {
        return (Close::Error, Some(why));
    };
    let other = match fault.leg {
        Leg::Client => upstream,
        Leg::Target => client,
    };
    if !fault.other_stalled {
        tokio::select! {
            () = acks::watch(other, Until::Delivered, DELIVERY_POLL) => {}
            () = abort => {}
        }
    }
    other.set_abortive_close();
    (close, Some(text))
}

/// The longest pause between two looks at what a stream's peer has yet to acknowledge.
const DELIVERY_POLL: Duration = Duration::from_millis(50);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::HttpHost;

    /// Two ends of a loopback TCP connection, and the listening address it was made to.
    async fn connected_pair() -> (Stream, Stream, std::net::SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (ours, theirs) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        (
            Stream::Tcp(ours.unwrap()),
            Stream::Tcp(theirs.unwrap().0),
            addr,
        )
    }

    /// The size of the box [`run`] makes for a connection of `rule`: what it holds while open.
    fn boxed_relay(client: &Stream, upstream: &Stream, rule: &Rule, target: &Endpoint) -> usize {
        let relay = run(
            client,
            upstream,
            rule,
            target,
            std::future::pending(),
            None,
            Head::None,
        );
        match relay {
            Kind::Plain(relay) => std::mem::size_of_val(&*relay),
            Kind::Http(relay) => std::mem::size_of_val(&*relay),
        }
    }

    /// Regression: an open connection's relay kept each direction's future twice — once
    /// moved into `both_ends`, whose arguments an async fn keeps room for beside its own
    /// locals (rust-lang/rust#62958) — and the `--http-host` relay its two sides likewise:
    /// 2528 and 3752 bytes, an idle connection 4.7 kB of RSS against HAProxy's 3.4 kB
    /// (`bench/forward_idle.sh`). Sizes are the compiler's layout, not a measurement.
    #[tokio::test]
    async fn an_open_connections_relay_keeps_each_direction_once() {
        let (client, upstream, addr) = connected_pair().await;
        let rule = Rule::new(Endpoint::tcp(addr), Endpoint::tcp(addr));
        let target = Endpoint::tcp(addr);
        let plain = boxed_relay(&client, &upstream, &rule, &target);
        let stats = Stats::new(false);
        let http = super::super::http_relay::run(&client, &upstream, String::new(), &stats, None);
        let direction = direction(&client, &upstream, Dir::Up, &stats, Head::None);
        let (plain, http, one) = (
            plain,
            std::mem::size_of_val(&http),
            std::mem::size_of_val(&direction),
        );
        // Two directions and the rest (the watches, the timers), each direction once: 1352
        // and 2392 B now, 1704 and 2488 B at stop 54 (its watches), 2528 and 3752 B when
        // each direction was kept twice.
        assert!(plain < 2048, "plain relay {plain} B, a direction {one} B");
        assert!(
            http < 3072,
            "--http-host relay {http} B, a direction {one} B"
        );
    }

    /// Regression: an idle connection's relay kept, for as long as it was open, two watches
    /// of a source gone abortively behind a stalled destination (`flow::gone_behind`, needed
    /// only while a direction waits to write; now made by that wait, `io::writable`, and
    /// boxed), and each direction kept its arguments twice (`flow::direction` and
    /// `splice::pump` were async fns, rust-lang/rust#62958) and room for a blocked write of
    /// the rest of a read beside its wait for the next one (now boxed): a direction 400 B, the
    /// plain relay 1704 B (a debug build's layout; 280 and 1352 B now).
    #[tokio::test]
    async fn an_idle_relay_keeps_no_write_wait_and_no_watch_behind_its_directions() {
        let (client, upstream, addr) = connected_pair().await;
        let rule = Rule::new(Endpoint::tcp(addr), Endpoint::tcp(addr));
        let target = Endpoint::tcp(addr);
        let plain = boxed_relay(&client, &upstream, &rule, &target);
        let stats = Stats::new(false);
        let direction = direction(&client, &upstream, Dir::Up, &stats, Head::None);
        let one = std::mem::size_of_val(&direction);
        assert!(one < 320, "a direction {one} B");
        assert!(plain < 1536, "plain relay {plain} B, a direction {one} B");
    }

    /// Regression: an open connection's relay kept room, for as long as it lived, for what
    /// only a failure or the connection's end needs: the run to the end after a direction
    /// failed (`flow::read_to_the_end`, its watches), and in the `--http-host` relay the
    /// answer and linger after both sides (the sides' room was not reused), a blocked write
    /// of a request or response (`http_relay::send`), a splice of a response body, the wait
    /// of requests held for a response and the wait after the drain began beside the wait
    /// for it; and an `--http-host` connection held the plain relay's box (room for its two
    /// directions) beside its own: 1352 B plain, 1352 + 2392 B `--http-host` (a debug
    /// build's layout; 1192 and 2024 B with the first fixes, seen failing on main's at
    /// 1352 B). Now these are boxed when they come, or take the sides' room, and each kind
    /// of relay has one box: 1200 and 2296 B.
    #[tokio::test]
    async fn an_open_relay_keeps_no_room_for_a_failure_or_a_blocked_write() {
        let (client, upstream, addr) = connected_pair().await;
        let rule = Rule::new(Endpoint::tcp(addr), Endpoint::tcp(addr));
        let target = Endpoint::tcp(addr);
        let plain = boxed_relay(&client, &upstream, &rule, &target);
        let mut rule = rule;
        rule.options.http_host = Some(HttpHost::Fixed(String::new()));
        let http = boxed_relay(&client, &upstream, &rule, &target);
        assert!(plain < 1280, "plain relay {plain} B");
        assert!(http < 2400, "--http-host relay {http} B");
    }
}
