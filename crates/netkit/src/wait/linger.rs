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

use std::net::SocketAddr;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{sleep, Instant};

use super::backoff::LONGEST_CONNECT;
use super::finding::Finding;
use crate::endpoint::{Endpoint, Stream};

/// How long a connection made in the background may wait to be used.
const FRESH: Duration = Duration::from_secs(1);

/// How a background connect ended, and when: its connection, or the refusal it met.
type Ended = (Result<Stream, Finding>, Instant);

/// The connects of one target that went past their bound and are still going.
#[derive(Debug, Default)]
pub(super) struct Lingering {
    /// Each ends with its connection or its failure, and when.
    running: JoinSet<Ended>,
}

/// What a finished background connect found, if lately: the connection it made, or the
/// server's refusal (a connect that went on unanswered to its end says nothing).
fn fresh(joined: Result<Ended, tokio::task::JoinError>) -> Option<Result<Stream, Finding>> {
    let (outcome, when) = joined.ok()?;
    if when.elapsed() > FRESH {
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
    /// that connects or is refused meanwhile is taken instead.
    pub(super) async fn connect(
        &mut self,
        endpoint: &Endpoint,
        addrs: Vec<SocketAddr>,
        bound: Duration,
        left: Option<Duration>,
    ) -> Result<Stream, Finding> {
        let cap = |d: Duration| left.map_or(d, |left| d.min(left));
        let endpoint = endpoint.clone();
        let life = cap(LONGEST_CONNECT.max(bound));
        let mut connect = Box::pin(async move { endpoint.connect_resolved(&addrs, life).await });
        let timer = sleep(cap(bound));
        tokio::pin!(timer);
        loop {
            tokio::select! {
                biased;
                result = &mut connect => {
                    return result.map_err(|err| Finding::of_connect_error(&err));
                }
                Some(joined) = self.running.join_next() => {
                    if let Some(outcome) = fresh(joined) {
                        return outcome;
                    }
                }
                () = &mut timer => {
                    self.running.spawn(async move {
                        let outcome = connect.await.map_err(|err| Finding::of_connect_error(&err));
                        (outcome, Instant::now())
                    });
                    return Err(Finding::ConnectTimedOut);
                }
            }
        }
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
                    if let Some(outcome) = fresh(joined) {
                        return Some(outcome);
                    }
                }
                () = &mut timer => return None,
            }
        }
    }
}
