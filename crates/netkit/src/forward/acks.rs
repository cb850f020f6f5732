//! What a stream's peer does with the bytes sent to it: takes them all, or stops taking
//! any. No event says so; the kernel is asked how many it has yet to acknowledge
//! (`TIOCOUTQ`, [`Stream::unacked`]).

use std::time::Duration;

use tokio::time::Instant;

use crate::endpoint::Stream;

/// A peer that acknowledges none of the bytes it has been sent for this long no longer reads.
pub(super) const STALL: Duration = Duration::from_secs(10);

/// What [`watch`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Until {
    /// Every byte acknowledged, or none for [`STALL`]; at once for a stream that cannot tell
    /// (a Unix socket).
    Delivered,
    /// Bytes waiting and none of them acknowledged for [`STALL`]; never for a stream that
    /// cannot tell.
    Stalled,
}

/// Completes when `stream`'s peer has done what `until` says. The kernel is asked at once,
/// then after 1 ms and at doubling pauses up to `poll`. Progress is a rise of the bytes
/// acknowledged (`TCP_INFO`), not a fall of those still unacknowledged: a relay run to its
/// end refills the queue as fast as the peer empties it.
pub(super) async fn watch(stream: &Stream, until: Until, poll: Duration) {
    let mut acked = stream.acked();
    let mut progress = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match (stream.unacked(), until) {
            (None | Some(0), Until::Delivered) => return,
            (None, Until::Stalled) => return std::future::pending().await,
            (Some(0), Until::Stalled) => progress = Instant::now(),
            (Some(_), _) => {
                let now = stream.acked();
                if now != acked {
                    (acked, progress) = (now, Instant::now());
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
