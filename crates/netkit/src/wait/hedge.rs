//! A second HTTP exchange beside one that is stuck. On a lossy path one exchange can sit in TCP's
//! retransmission back-off (a lost request or answer segment is re-sent after 0.2 s, then 0.4, 0.8,
//! 1.6 s, ...) until the answer bound ends it, while a fresh exchange, over a new connection, would
//! likely get through at once: a curl loop with `--max-time` gets its `200` that way. So when an
//! answer has not come [`HEDGE_AFTER`] into an exchange, a second one starts beside it (as Happy
//! Eyeballs starts a second connect after a stagger), and the first that finds the target up ends
//! the attempt, as does one beside that hears more than silence (with `--invert`, a connect beside
//! a stuck exchange refused: the server gone); a second exchange whose connect heard nothing (a
//! lost SYN) is followed by another, and one that has gone [`REPLACE_AFTER`] without ending is
//! replaced by a fresh one: a server that hung while it started (it took both exchanges'
//! connections and never answered on them) is asked again once it answers, as a curl loop's next
//! `--max-time` try asks it. At most two exchanges run at once per target: a slow server, whose
//! answer only takes long, sees one more request every [`REPLACE_AFTER`], not a flood. The
//! exchanges beside connect through the attempt's lingering connects ([`super::linger`]): a
//! connection that a connect of the first one made but did not need carries the second request at
//! once, without a handshake of its own (a round trip saved: with one, the second exchange is
//! seldom over before the first one's own retransmission). Each keeps its steps on its own track
//! ([`super::stage::Track::beside`]).

use std::future::Future;
use std::time::Duration;

use tokio::time::{sleep, sleep_until, Instant};

use super::finding::Finding;

/// How long an HTTP exchange goes without its answer before a second one starts beside it:
/// several times a healthy exchange on any path a wait is used on, and past the first
/// retransmission of a lost segment (at 0.2 s and more).
pub const HEDGE_AFTER: Duration = Duration::from_secs(1);

/// How long an exchange beside the stuck one may go without ending before a fresh one
/// replaces it: a curl loop's usual `--max-time` (5 s) less the stagger before the first one
/// beside.
pub const REPLACE_AFTER: Duration = Duration::from_secs(4);

/// Runs `first`; when it has not ended after `stagger`, also `next()`, and again `next()` each
/// time the one beside it heard nothing (its connect timed out), at most one every `stagger`,
/// or went [`REPLACE_AFTER`] without ending (it is dropped), while `first` goes on. The finding
/// of the first to find the target up, or else of the first to end unless that was silence
/// (nothing heard: the other may still hear something, and is waited for).
///
/// `reading` says whether `first` has its answer, an accepted status, and is reading the body
/// for the `--body` text: it is not stuck, its answer has come. Then no exchange starts beside
/// it, and one already beside it ends the attempt only by finding the target up: a `503` it
/// got since (the server's state changed while the body trickled in) does not drop the `200`
/// being read, which a curl loop reads to its end.
pub(super) async fn race<A, B>(
    first: A,
    reading: impl Fn() -> bool,
    stagger: Duration,
    mut next: impl FnMut() -> B,
) -> Finding
where
    A: Future<Output = Finding>,
    B: Future<Output = Finding>,
{
    tokio::pin!(first);
    tokio::select! {
        finding = &mut first => return finding,
        () = sleep(stagger) => {}
    }
    loop {
        if reading() {
            return first.await;
        }
        let started = Instant::now();
        let beside = next();
        tokio::pin!(beside);
        tokio::select! {
            finding = &mut first => return settle(finding, beside, started + REPLACE_AFTER).await,
            finding = &mut beside => {
                if finding.is_up() || (!finding.is_silence() && !reading()) {
                    return finding;
                }
            }
            () = sleep_until(started + REPLACE_AFTER) => continue,
        }
        tokio::select! {
            finding = &mut first => return finding,
            () = sleep_until(started + stagger) => {}
        }
    }
}

/// `ended`, the finding of the exchange that ended first, unless it heard nothing while the
/// other may yet (until `until`, when it would have been replaced): then the other's, when it
/// says more.
async fn settle(ended: Finding, other: impl Future<Output = Finding>, until: Instant) -> Finding {
    if !ended.is_silence() {
        return ended;
    }
    tokio::select! {
        later = other => match later.is_silence() {
            true => ended,
            false => later,
        },
        () = sleep_until(until) => ended,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn after(ms: u64, finding: Finding) -> Finding {
        sleep(Duration::from_millis(ms)).await;
        finding
    }

    const STAGGER: Duration = Duration::from_millis(1000);

    /// A first exchange that never gets as far as reading a body.
    fn never() -> bool {
        false
    }

    #[tokio::test(start_paused = true)]
    async fn a_quick_answer_starts_no_second_exchange() {
        let start = tokio::time::Instant::now();
        let found = race(
            after(300, Finding::Answers(200)),
            never,
            STAGGER,
            || -> std::future::Ready<Finding> { panic!("no second exchange") },
        )
        .await;
        assert_eq!(found, Finding::Answers(200));
        assert_eq!(start.elapsed(), Duration::from_millis(300));
    }

    /// The stuck exchange would answer at 10 s; the second, started at 1 s, at 1.2 s.
    #[tokio::test(start_paused = true)]
    async fn a_stuck_exchange_is_overtaken() {
        let start = tokio::time::Instant::now();
        let stuck = after(10_000, Finding::Answers(200));
        let found = race(stuck, never, STAGGER, || after(200, Finding::Answers(200))).await;
        assert_eq!(found, Finding::Answers(200));
        assert_eq!(start.elapsed(), Duration::from_millis(1200));
    }

    /// Silence from the first to end waits for the other, which may say more.
    #[tokio::test(start_paused = true)]
    async fn silence_waits_for_the_other_exchange() {
        let stuck = after(2_000, Finding::NoResponse);
        let found = race(stuck, never, STAGGER, || after(3_000, Finding::Status(503))).await;
        assert_eq!(found, Finding::Status(503));
        let both = race(after(2_000, Finding::NoResponse), never, STAGGER, || {
            after(1_500, Finding::NoResponse)
        });
        assert_eq!(both.await, Finding::NoResponse);
    }

    /// A second exchange that heard nothing (its connect timed out) is followed by another,
    /// one per stagger, while the stuck one goes on.
    #[tokio::test(start_paused = true)]
    async fn a_silent_second_exchange_is_followed_by_another() {
        let start = tokio::time::Instant::now();
        let mut tries = 0;
        let next = || {
            tries += 1;
            match tries {
                1 => after(400, Finding::ConnectTimedOut),
                _ => after(300, Finding::Answers(200)),
            }
        };
        let found = race(after(10_000, Finding::NoResponse), never, STAGGER, next).await;
        assert_eq!(found, Finding::Answers(200));
        // The first beside it at 1 s heard nothing at 1.4 s; the next one at 2 s answered.
        assert_eq!(start.elapsed(), Duration::from_millis(2300));
    }

    /// A hung server (it takes connections and never answers, stalled while it starts) held
    /// the stuck exchange and the one beside it until their answer bound, and nothing asked
    /// it again once it answered (seed 9404 of `bench/wait_diff.py`). The one beside is
    /// replaced by a fresh exchange once it has gone 4 s without ending.
    #[tokio::test(start_paused = true)]
    async fn a_hung_exchange_beside_the_stuck_one_is_replaced() {
        let start = tokio::time::Instant::now();
        let mut tries = 0;
        let next = || {
            tries += 1;
            match tries {
                1 => after(20_000, Finding::NoResponse),
                _ => after(100, Finding::Answers(200)),
            }
        };
        let found = race(after(10_000, Finding::NoResponse), never, STAGGER, next).await;
        assert_eq!(found, Finding::Answers(200));
        // Beside from 1 s, replaced at 5 s; the fresh one answered at 5.1 s.
        assert_eq!(start.elapsed(), Duration::from_millis(5100));
    }

    /// A server slower than the answer bound: the stuck exchange ends silent at 10 s, and the
    /// one beside it (the third, from 9 s) is waited for only until it would be replaced, so
    /// the next attempt, with a longer bound, starts at 13 s.
    #[tokio::test(start_paused = true)]
    async fn the_one_beside_is_waited_for_only_until_it_would_be_replaced() {
        let start = tokio::time::Instant::now();
        let slow = || after(10_500, Finding::Answers(200));
        let found = race(after(10_000, Finding::NoResponse), never, STAGGER, slow).await;
        assert_eq!(found, Finding::NoResponse);
        assert_eq!(start.elapsed(), Duration::from_millis(13_000));
    }

    /// An answer that says the target is not ready ends the attempt at once.
    #[tokio::test(start_paused = true)]
    async fn a_telling_answer_ends_the_attempt() {
        let start = tokio::time::Instant::now();
        let found = race(after(1_500, Finding::Status(503)), never, STAGGER, || {
            after(5_000, Finding::Answers(200))
        })
        .await;
        assert_eq!(found, Finding::Status(503));
        assert_eq!(start.elapsed(), Duration::from_millis(1500));
    }

    /// A first exchange reading a trickled body (its head came at once, the text at 3.2 s)
    /// was dropped for a `503` the one beside it got at 1.1 s (seed 9501 of
    /// `bench/wait_diff.py`). No exchange starts beside one reading its body.
    #[tokio::test(start_paused = true)]
    async fn an_exchange_reading_its_body_is_not_raced() {
        let start = tokio::time::Instant::now();
        let found = race(
            after(3_200, Finding::Answers(200)),
            || true,
            STAGGER,
            || after(100, Finding::Status(503)),
        )
        .await;
        assert_eq!(found, Finding::Answers(200));
        assert_eq!(start.elapsed(), Duration::from_millis(3_200));
    }

    /// The body began after the exchange beside had started: its `503` no longer ends the
    /// attempt, its `200` still does.
    #[tokio::test(start_paused = true)]
    async fn an_answer_beside_a_body_being_read_ends_it_only_when_up() {
        // The first exchange reads its body from 1.05 s, once the one beside has started.
        let reading_from = |start: Instant| move || start.elapsed() >= Duration::from_millis(1_050);
        let slow = || after(3_200, Finding::Answers(200));
        let start = Instant::now();
        let unavailable = || after(100, Finding::Status(503));
        let found = race(slow(), reading_from(start), STAGGER, unavailable).await;
        assert_eq!(found, Finding::Answers(200));
        assert_eq!(start.elapsed(), Duration::from_millis(3_200));
        let start = Instant::now();
        let up = || after(100, Finding::Answers(204));
        let found = race(slow(), reading_from(start), STAGGER, up).await;
        assert_eq!(found, Finding::Answers(204));
        assert_eq!(start.elapsed(), Duration::from_millis(1_100));
    }
}
