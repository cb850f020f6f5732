//! TCP connects that outlive their bound. An attempt's connect is bounded so that a new SYN
//! goes out soon, but the handshake it started may still complete: the server sends its
//! SYN-ACK again (after 1 s, 3 s, ...) and answers the kernel's own SYN retries. Abandoning
//! the connect at its bound would close its socket and lose that answer, and each new attempt,
//! from a new port, would start over. So a connect that reaches its bound goes on in the
//! background, up to [`LONGEST_CONNECT`] (within the deadline), beside the next attempts; the
//! first to connect is used (a TCP target is ready; an HTTP target's request goes over it), as
//! the one connect of `nc -z -w`, wait-for-it or curl would be. A connection made while an
//! HTTP attempt was busy with another is not kept for later: a server may close a connection
//! that brings no request for a while (and `--invert` would take that close for gone). A
//! background connect that the server answers with a refusal (a reset, an ICMP error) is that
//! attempt's answer too, as `nc -z` hears it: behind a round trip longer than the connect's
//! bound, every connect is past its bound when the refusal comes.
//!
//! Within one bound, too, a connect is not left to the kernel's SYN back-off alone (the SYN
//! again at 1, 3, 7 s: a wait whose first SYNs were lost would wait those gaps): every
//! [`RESTART`] (or `--interval`, if longer) without an answer, a new connect starts from a
//! new port beside it, as a `nc -z -w 1` loop starts one every second, at most [`MOST`] under
//! way at once. And a connect that loses the race to another is not closed but goes on beside
//! the next ones too: an HTTP exchange started beside a stuck one takes its connection at once
//! (made up to [`FRESH_BESIDE`] before) instead of a handshake of its own.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};

use super::backoff::LONGEST_CONNECT;
use super::finding::Finding;
use crate::endpoint::{Endpoint, Stream};

/// How long a connection made in the background may wait to be used.
pub(super) const FRESH: Duration = Duration::from_secs(1);

/// How long a connection made in the background may wait for an HTTP exchange started beside
/// a stuck one: it was made about when the stuck one's request went out, a second or so
/// before (and `--invert`, which would take a server's close of it for gone, starts none).
pub(super) const FRESH_BESIDE: Duration = Duration::from_secs(2);

/// The pace of one connect: how long it goes unanswered before a new one starts beside it,
/// and how long a connection made in the background may have waited to be taken.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pace {
    /// A new connect beside the one unanswered this long.
    pub every: Duration,
    /// The oldest connection taken: [`FRESH`], [`FRESH_BESIDE`].
    pub fresh: Duration,
}

/// How long a connect goes unanswered before a new one starts beside it (`--interval`, if
/// longer): the kernel's first SYN retransmission comes as late.
pub(super) const RESTART: Duration = Duration::from_secs(1);

/// The most connects of one target under way at once (the new one and those lingering).
const MOST: usize = 4;

/// What a connect heard while [`Lingering::listen`] waited.
enum Heard {
    /// The connect's own answer: its connection, or why it failed.
    Own(Result<Stream, Finding>),
    /// An earlier connect's: its connection, or the refusal it met.
    Earlier(Result<Stream, Finding>),
    /// Nothing yet.
    Nothing,
}

/// How a background connect ended, and when: its connection, or the refusal it met.
type Ended = (Result<Stream, Finding>, Instant);

/// The connects of one target that went past their bound and are still going.
#[derive(Debug, Default)]
pub(super) struct Lingering {
    /// Each ends with its connection or its failure, and when.
    running: JoinSet<Ended>,
}

/// What a finished background connect found, if within `fresh`: the connection it made, or the
/// server's refusal (a connect that went on unanswered to its end says nothing).
fn fresh(
    joined: Result<Ended, tokio::task::JoinError>,
    fresh: Duration,
) -> Option<Result<Stream, Finding>> {
    let (outcome, when) = joined.ok()?;
    if when.elapsed() > fresh {
        return None;
    }
    match outcome {
        Ok(stream) => Some(Ok(stream)),
        Err(refused @ Finding::ConnectFailed(_)) => Some(Err(refused)),
        Err(_) => None,
    }
}

impl Lingering {
    /// One connect to `endpoint` at `addrs` (its name looked up already): its connection,
    /// or what it found within `bound` (and `left`, the time before the deadline):
    /// [`Finding::ConnectTimedOut`] while it goes on in the background. An earlier connect
    /// that connects (within `pace.fresh` before) or is refused meanwhile is taken instead.
    /// Every `pace.every` without an answer, a new connect starts beside (fewer than [`MOST`]
    /// under way), the one before going on in the background.
    pub(super) async fn connect(
        &mut self,
        endpoint: &Endpoint,
        addrs: Vec<SocketAddr>,
        bound: Duration,
        left: Option<Duration>,
        pace: Pace,
    ) -> Result<Stream, Finding> {
        let Pace {
            every,
            fresh: within,
        } = pace;
        let start = Instant::now();
        let end = start + left.map_or(bound, |left| bound.min(left));
        let deadline = left.map(|left| start + left);
        while let Some(joined) = self.running.try_join_next() {
            if let Some(outcome) = fresh(joined, within) {
                return outcome;
            }
        }
        loop {
            let now = Instant::now();
            let life = LONGEST_CONNECT.max(bound);
            let life = deadline.map_or(life, |d| life.min(d.saturating_duration_since(now)));
            let mut connect = start_connect(endpoint.clone(), addrs.clone(), life);
            let mut tick = now;
            loop {
                tick = (tick + every).min(end);
                match self.listen(&mut connect, tick, within).await {
                    Heard::Own(result) => return result,
                    Heard::Earlier(outcome) => {
                        self.keep(connect);
                        return outcome;
                    }
                    Heard::Nothing if tick >= end => {
                        self.keep(connect);
                        return Err(Finding::ConnectTimedOut);
                    }
                    // With room for one more, a new one beside it; else this one goes on.
                    Heard::Nothing if self.running.len() + 1 < MOST => break,
                    Heard::Nothing => {}
                }
            }
            self.keep(connect);
        }
    }

    /// Waits until `until` for `connect`, or for an earlier connect that connects (within
    /// `within` before) or is refused.
    async fn listen(
        &mut self,
        connect: &mut (impl Future<Output = crate::Result<Stream>> + Unpin),
        until: Instant,
        within: Duration,
    ) -> Heard {
        let timer = sleep_until(until);
        tokio::pin!(timer);
        loop {
            tokio::select! {
                biased;
                result = &mut *connect => {
                    return Heard::Own(result.map_err(|err| Finding::of_connect_error(&err)));
                }
                Some(joined) = self.running.join_next() => {
                    if let Some(outcome) = fresh(joined, within) {
                        return Heard::Earlier(outcome);
                    }
                }
                () = &mut timer => return Heard::Nothing,
            }
        }
    }

    /// Lets `connect` go on in the background.
    fn keep(&mut self, connect: impl Future<Output = crate::Result<Stream>> + Send + 'static) {
        self.running.spawn(async move {
            let outcome = connect.await.map_err(|err| Finding::of_connect_error(&err));
            (outcome, Instant::now())
        });
    }

    /// Sleeps until `until`, or until an earlier connect connects or is refused: its
    /// connection or the refusal then.
    pub(super) async fn sleep_until(&mut self, until: Instant) -> Option<Result<Stream, Finding>> {
        let timer = tokio::time::sleep_until(until);
        tokio::pin!(timer);
        loop {
            tokio::select! {
                biased;
                Some(joined) = self.running.join_next() => {
                    if let Some(outcome) = fresh(joined, FRESH) {
                        return Some(outcome);
                    }
                }
                () = &mut timer => return None,
            }
        }
    }
}

/// A connect to `endpoint` at `addrs`, bounded by `life`.
fn start_connect(
    endpoint: Endpoint,
    addrs: Vec<SocketAddr>,
    life: Duration,
) -> Pin<Box<impl Future<Output = crate::Result<Stream>> + Send + 'static>> {
    Box::pin(async move { endpoint.connect_resolved(&addrs, life).await })
}
