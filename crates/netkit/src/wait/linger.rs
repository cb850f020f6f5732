//! TCP connects that outlive their bound. An attempt's connect is bounded so that a new SYN
//! goes out soon, but the handshake it started may still complete: the server sends its
//! SYN-ACK again (after 1 s, 3 s, ...) and answers the kernel's own SYN retries. Abandoning
//! the connect at its bound would close its socket and lose that answer, and each new attempt,
//! from a new port, would start over. So a connect that reaches its bound goes on in the
//! background, up to [`LONGEST_CONNECT`] (within the deadline), beside the next attempts; the
//! first to connect makes the target ready, as the one connect of `nc -z -w` or wait-for-it
//! would.

use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{sleep, Instant};

use super::backoff::LONGEST_CONNECT;
use super::finding::Finding;
use crate::endpoint::Endpoint;

/// The connects of one target that went past their bound and are still going.
#[derive(Debug, Default)]
pub(super) struct Lingering {
    /// Each ends with whether it connected.
    running: JoinSet<bool>,
}

impl Lingering {
    /// One connect to `endpoint`: what it found within `bound` (and `left`, the time before
    /// the deadline), or [`Finding::ConnectTimedOut`] while it goes on in the background.
    /// An earlier connect that connects meanwhile makes this [`Finding::Accepts`].
    pub(super) async fn attempt(
        &mut self,
        endpoint: &Endpoint,
        bound: Duration,
        left: Option<Duration>,
    ) -> Finding {
        let cap = |d: Duration| left.map_or(d, |left| d.min(left));
        let endpoint = endpoint.clone();
        let life = cap(LONGEST_CONNECT.max(bound));
        let mut connect = Box::pin(async move { endpoint.connect(life).await.map(drop) });
        let timer = sleep(cap(bound));
        tokio::pin!(timer);
        loop {
            tokio::select! {
                biased;
                result = &mut connect => {
                    return match result {
                        Ok(()) => Finding::Accepts,
                        Err(err) => Finding::of_connect_error(&err),
                    };
                }
                Some(joined) = self.running.join_next() => {
                    if joined.unwrap_or(false) {
                        return Finding::Accepts;
                    }
                }
                () = &mut timer => {
                    self.running.spawn(async move { connect.await.is_ok() });
                    return Finding::ConnectTimedOut;
                }
            }
        }
    }

    /// Sleeps until `until`; true, and sooner, when an earlier connect connects.
    pub(super) async fn sleep_until(&mut self, until: Instant) -> bool {
        let timer = tokio::time::sleep_until(until);
        tokio::pin!(timer);
        loop {
            tokio::select! {
                biased;
                Some(joined) = self.running.join_next() => {
                    if joined.unwrap_or(false) {
                        return true;
                    }
                }
                () = &mut timer => return false,
            }
        }
    }
}
