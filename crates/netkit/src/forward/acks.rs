//! What a stream's peer does with the bytes sent to it: takes them all, or stops taking
//! any. No event says so; the kernel is asked how many it has yet to acknowledge
//! (`TIOCOUTQ`, [`Stream::unacked`]: data only, not the FIN of a write side shut down, which
//! a peer may acknowledge late or never once it has every byte), or for a Unix stream how
//! many its peer has yet to read ([`Stream::unread`]).

use std::time::Duration;

use tokio::time::Instant;

use crate::endpoint::Stream;

/// A peer that acknowledges none of the bytes it has been sent for this long no longer reads.
pub(super) const STALL: Duration = Duration::from_secs(10);

/// What [`watch`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Until {
    /// Every byte of data acknowledged (whether the FIN after it is or not), or none for
    /// [`STALL`]; at once for a Unix stream (what it
    /// was sent is in its peer's queue already: closing this end loses none of it) or a
    /// stream that cannot tell.
    Delivered,
    /// Bytes waiting and none of them taken for [`STALL`]; never for a stream that cannot
    /// tell.
    Stalled,
}

/// Bytes a stream's peer has yet to take, and a mark that moves when it takes some.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Queue {
    waiting: usize,
    mark: u64,
}

/// What `until` needs to know of `stream` now; `None` when it cannot tell. TCP: the bytes of
/// data unacknowledged, marked by the bytes acknowledged (`TCP_INFO`): a relay run to its end
/// refills the queue as fast as the peer empties it, so only that count shows progress.
/// Unix (for [`Until::Stalled`] only): the bytes its peer has not read, marked by that count
/// itself (a Unix socket keeps no total); a peer reading nothing leaves it still.
fn queue(stream: &Stream, until: Until) -> Option<Queue> {
    if let Some(waiting) = stream.unacked() {
        let mark = stream.acked().unwrap_or(0);
        return Some(Queue { waiting, mark });
    }
    let waiting = stream.unread().filter(|_| until == Until::Stalled)?;
    let mark = u64::try_from(waiting).unwrap_or(u64::MAX);
    Some(Queue { waiting, mark })
}

/// Completes when `stream`'s peer has done what `until` says. The kernel is asked at once,
/// then after 1 ms and at doubling pauses up to `poll`.
pub(super) async fn watch(stream: &Stream, until: Until, poll: Duration) {
    let mut mark = None;
    let mut progress = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match (queue(stream, until), until) {
            (None, Until::Delivered) => return,
            (Some(q), Until::Delivered) if q.waiting == 0 => return,
            (None, Until::Stalled) => return std::future::pending().await,
            (Some(q), Until::Stalled) if q.waiting == 0 => progress = Instant::now(),
            (Some(q), _) => {
                if mark != Some(q.mark) {
                    (mark, progress) = (Some(q.mark), Instant::now());
                }
                if progress.elapsed() >= STALL {
                    return;
                }
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(poll);
    }
}
