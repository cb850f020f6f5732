//! One direction of a forwarded connection and what both directions share: the sides
//! ([`Leg`]), the directions ([`Dir`]), errors tagged with their side ([`Fault`]) and the byte
//! counters and idle clock ([`Stats`]). A direction ends when its source reaches EOF and
//! everything read was delivered; then the destination is half-closed (`shutdown(Write)`).

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::acks::{self, Until};
use super::io::{End, Head};
use crate::endpoint::Stream;

/// One side of a forwarded connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Leg {
    /// The accepted client.
    Client,
    /// The target connected to.
    Target,
}

/// An I/O error and the side of the connection it came from.
#[derive(Debug)]
pub(super) struct Fault {
    pub leg: Leg,
    pub err: io::Error,
    /// The other side has taken none of the bytes waiting for it for [`acks::STALL`]: it is
    /// not waited for again before the fault is passed on.
    pub other_stalled: bool,
}

impl Fault {
    /// The fault `err` of side `leg`.
    pub(super) fn new(leg: Leg, err: io::Error) -> Fault {
        Fault {
            leg,
            err,
            other_stalled: false,
        }
    }

    /// Tags errors with the side they came from.
    pub(super) fn on(leg: Leg) -> impl Fn(io::Error) -> Fault {
        move |err| Fault::new(leg, err)
    }

    /// The fault of a transfer in direction `dir` that failed at `end`.
    pub(super) fn of(dir: Dir, (end, err): (End, io::Error)) -> Fault {
        let (src, dst) = dir.legs();
        match end {
            End::Src => Fault::new(src, err),
            End::Dst => Fault::new(dst, err),
            End::Behind => Fault {
                other_stalled: true,
                ..Fault::new(src, err)
            },
        }
    }

    /// Whether the side is gone abortively (reset, or a write it could not take).
    pub(super) fn is_reset(&self) -> bool {
        matches!(
            self.err.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::ConnectionAborted
        )
    }
}

/// A direction of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dir {
    /// Client to target.
    Up,
    /// Target to client.
    Down,
}

impl Dir {
    /// The sides bytes come from and go to.
    pub(super) fn legs(self) -> (Leg, Leg) {
        match self {
            Dir::Up => (Leg::Client, Leg::Target),
            Dir::Down => (Leg::Target, Leg::Client),
        }
    }
}

/// Byte counters and the time of the last transfer, shared by both directions.
#[derive(Debug)]
pub(super) struct Stats {
    idle_clock: bool,
    start: Instant,
    last_ms: AtomicU64,
    up: AtomicU64,
    down: AtomicU64,
    spliced_up: AtomicBool,
    spliced_down: AtomicBool,
    one_ended: AtomicBool,
    /// A write to the client, to the target, met its reset ([`Stats::reset_met`]).
    reset_client: AtomicBool,
    reset_target: AtomicBool,
    /// The connection is in a close the forwarder decided ([`Stats::closing`]).
    closing: AtomicBool,
}

impl Stats {
    /// Counters; `idle_clock` says whether [`Stats::idle`] is to be asked (an idle timeout is
    /// set), else the time of each transfer is not taken.
    pub(super) fn new(idle_clock: bool) -> Stats {
        Stats {
            idle_clock,
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
            spliced_up: AtomicBool::new(false),
            spliced_down: AtomicBool::new(false),
            one_ended: AtomicBool::new(false),
            reset_client: AtomicBool::new(false),
            reset_target: AtomicBool::new(false),
            closing: AtomicBool::new(false),
        }
    }

    /// Counts `n` bytes delivered in direction `dir` (and that the connection is not idle).
    pub(super) fn moved(&self, dir: Dir, n: usize) {
        let counter = match dir {
            Dir::Up => &self.up,
            Dir::Down => &self.down,
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
        // A clock read per message, needed only to end idle connections.
        if self.idle_clock {
            let now = self.start.elapsed().as_millis() as u64;
            self.last_ms.store(now, Ordering::Relaxed);
        }
    }

    /// Bytes delivered from the client to the target.
    pub(super) fn up(&self) -> u64 {
        self.up.load(Ordering::Relaxed)
    }

    /// Bytes delivered from the target to the client.
    pub(super) fn down(&self) -> u64 {
        self.down.load(Ordering::Relaxed)
    }

    /// Notes that direction `dir` moved bytes with `splice(2)`.
    pub(super) fn spliced(&self, dir: Dir) {
        let flag = match dir {
            Dir::Up => &self.spliced_up,
            Dir::Down => &self.spliced_down,
        };
        flag.store(true, Ordering::Relaxed);
    }

    /// Which relay path the directions took: `splice`, `copy` or `copy+splice`.
    pub(super) fn path(&self) -> &'static str {
        match (
            self.spliced_up.load(Ordering::Relaxed),
            self.spliced_down.load(Ordering::Relaxed),
        ) {
            (true, true) => "splice",
            (false, false) => "copy",
            _ => "copy+splice",
        }
    }

    /// Notes that a direction reached its end; whether the other one had already.
    fn ended(&self) -> bool {
        self.one_ended.swap(true, Ordering::Relaxed)
    }

    /// Notes that a write to `leg` met its reset, which the write took from the socket: the
    /// reads of that side end in an end of file from then on, FIN or not.
    fn reset_met(&self, leg: Leg) {
        self.reset_flag(leg).store(true, Ordering::Relaxed);
    }

    fn reset_flag(&self, leg: Leg) -> &AtomicBool {
        match leg {
            Leg::Client => &self.reset_client,
            Leg::Target => &self.reset_target,
        }
    }

    /// Notes that the connection is in a close the forwarder decided (`--http-host`'s answer
    /// and lingering close, bounded on their own): [`Stats::idle`] no longer ends it.
    pub(super) fn closing(&self) {
        self.closing.store(true, Ordering::Relaxed);
    }

    /// Whether the connection is in a close the forwarder decided ([`Stats::closing`]).
    pub(super) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    /// Completes once nothing moved for `idle`, unless the connection is [`Stats::closing`].
    pub(super) async fn idle(&self, idle: Duration) {
        loop {
            if self.closing.load(Ordering::Relaxed) {
                return std::future::pending().await;
            }
            let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let quiet_since = self.start + last;
            if quiet_since.elapsed() >= idle {
                return;
            }
            tokio::time::sleep_until((quiet_since + idle).into()).await;
        }
    }
}

/// Moves `src` to `dst` until EOF, then half-closes `dst`: copied for small exchanges, through
/// `splice(2)` for bulk transfers ([`super::splice::pump`]). The second direction to end
/// leaves `dst` as it is: both sockets are closed next, and closing one whose peer has
/// finished sending (its end of file was read) sends the same FIN as the half-close would,
/// one system call fewer per connection. `head`: a first copy step already made
/// ([`super::splice::pump`]). An async block, not an async fn: its arguments are kept once
/// (rust-lang/rust#62958), for as long as the connection is open.
#[allow(clippy::manual_async_fn)] // an async fn keeps its arguments twice (rust-lang/rust#62958)
pub(super) fn direction<'a>(
    src: &'a Stream,
    dst: &'a Stream,
    dir: Dir,
    stats: &'a Stats,
    head: Head,
) -> impl Future<Output = Result<(), Fault>> + 'a {
    async move {
        let moved = |n: usize| stats.moved(dir, n);
        super::splice::pump(src, dst, moved, || stats.spliced(dir), head)
            .await
            .map_err(|failed| Fault::of(dir, failed))?;
        let (src_leg, dst_leg) = dir.legs();
        if stats.reset_flag(src_leg).load(Ordering::Relaxed) {
            // The end of file of a side whose reset a write took: passed on as a FIN only if that
            // side sent one, else as the reset it is (a cut stream is not passed for a whole one).
            let read = match dir {
                Dir::Up => stats.up(),
                Dir::Down => stats.down(),
            };
            if src.fin_received(read) == Some(false) {
                let err = io::Error::from(io::ErrorKind::ConnectionReset);
                return Err(Fault::new(src_leg, err));
            }
        }
        if stats.ended() {
            return Ok(());
        }
        dst.shutdown_write().map_err(Fault::on(dst_leg))
    }
}

/// Both sides of a relay to their ends, as `try_join!` (the first error ends both), with one
/// more duty. Once one side has ended, its source is read no more, so an error that comes to
/// it later (its peer reset it, or keepalive gave the peer up) would go unseen while the other
/// side waits: a client that half-closed and then vanished beside a silent target kept the
/// connection for good. That source is watched for an error meanwhile ([`Stream::failure`]).
/// (A direction that waits to write to a peer that reads nothing does not read its source
/// either: that wait watches the source itself, `io::writable`, so an open connection holds
/// no watch of its own for it.)
pub(super) async fn both_ends<A, B, E: Failure>(
    up: impl Future<Output = Result<A, E>>,
    down: impl Future<Output = Result<B, E>>,
    client: &Stream,
    upstream: &Stream,
    stats: Option<&Stats>,
) -> Result<(A, B), E> {
    let mut up = std::pin::pin!(up);
    let mut down = std::pin::pin!(down);
    // The run to the end after a failure is awaited once the select is over: its watches are
    // gone by then, and an open connection's task keeps room for the larger of the two
    // rather than for both.
    let first = tokio::select! {
        ended = &mut up => First::Up(ended),
        ended = &mut down => First::Down(ended),
    };
    let first = match first {
        First::Up(Ok(a)) => First::Up(a),
        First::Down(Ok(b)) => First::Down(b),
        // Boxed: a failure is rare, and an open connection keeps no room for its watches.
        First::Up(Err(err)) => {
            return Err(Box::pin(read_to_the_end(err, Leg::Target, down, client, stats)).await)
        }
        First::Down(Err(err)) => {
            return Err(Box::pin(read_to_the_end(err, Leg::Client, up, upstream, stats)).await)
        }
    };
    match first {
        First::Up(a) => tokio::select! {
            ended = down => ended.map(|b| (a, b)),
            err = client.failure() => Err(Fault::new(Leg::Client, err).into()),
        },
        First::Down(b) => tokio::select! {
            ended = up => ended.map(|a| (a, b)),
            err = upstream.failure() => Err(Fault::new(Leg::Target, err).into()),
        },
    }
}

/// A direction failed with `err`. When that is the reset of the side it writes to (`dst`: a
/// side that closed, then got more bytes, answers them with a reset), the other direction,
/// which reads that side, is run to its end first: what that side sent before it closed is
/// still in the forwarder (unread on its leg, or in a splice pipe), and its peer is owed
/// every byte of it, as a direct peer would read it, before the reset is passed on. Reading
/// a reset side gives what it sent, then its end of file or the reset: it does not wait.
/// The failed write took the reset from the socket, so that end of file comes whether the
/// side sent a FIN or not; with `stats` (the plain relay, which counts the bytes it reads)
/// the other direction passes it on as a FIN only if one came ([`direction`]).
///
/// Meanwhile `peer`, the side still there (what the failed direction read, where the other
/// one writes), is read and what it sends is thrown away: nobody is left to take it, and a
/// peer that reads only between its own writes would otherwise wait for room to write and
/// never read what it is owed. A peer that takes none of it for [`acks::STALL`] gets the reset
/// without the rest, as it would directly.
async fn read_to_the_end<T, E: Failure>(
    err: E,
    dst: Leg,
    other: impl Future<Output = Result<T, E>>,
    peer: &Stream,
    stats: Option<&Stats>,
) -> E {
    if err.fault().is_some_and(|f| f.leg == dst && f.is_reset()) {
        if let Some(stats) = stats {
            stats.reset_met(dst);
        }
        tokio::select! {
            _ = other => {}
            () = discard(peer) => {}
            () = acks::watch(peer, Until::Stalled, STALL_POLL) => {}
        }
    }
    err
}

/// How often, at most, a relay run to its end asks whether its peer stopped reading.
const STALL_POLL: Duration = Duration::from_secs(1);

/// Reads `stream` and throws the bytes away until its end of file or an error, then waits
/// for good. A Unix stream keeps its last byte unread ([`super::io::discard_but_one`]): it is
/// owed a reset, and a Unix stream has no other than a close with bytes unread (its peer then
/// reads `ECONNRESET` after what it was sent, as from a Unix server that closed so, where an
/// end of file would pass a cut stream for a whole one).
async fn discard(stream: &Stream) {
    if stream.unread_here().is_some() {
        let _ = super::io::discard_but_one(stream).await;
        return std::future::pending().await;
    }
    while let Ok(n) = super::io::read_with(stream, <[u8]>::len).await {
        if n == 0 {
            break;
        }
    }
    std::future::pending().await
}

/// What a direction given to [`both_ends`] fails with: a [`Fault`], or an error of its own
/// that may carry one.
pub(super) trait Failure: From<Fault> {
    /// The I/O fault, when the failure is one that the other direction may outlive.
    fn fault(&self) -> Option<&Fault>;
}

impl Failure for Fault {
    fn fault(&self) -> Option<&Fault> {
        Some(self)
    }
}

/// Which side of [`both_ends`] ended first, with what it returned.
enum First<A, B> {
    Up(A),
    Down(B),
}
