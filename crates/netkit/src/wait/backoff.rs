//! When to try again: every `interval` for the first ten seconds (fast detection of a service
//! that is about to start), then doubling each attempt up to `max_interval` (light polling of
//! a service that is down for long), start to start; an attempt that takes longer than half the
//! delay is followed by a pause as long as itself, up to the delay ([`next_start`]). Each
//! attempt's connect is bounded on its own, so a lost SYN is re-sent soon.

use std::time::Duration;

use tokio::time::Instant;

use super::finding::Finding;
use crate::error::ParseError;

/// How long attempts keep to `interval` before backing off.
pub const FAST_PHASE: Duration = Duration::from_secs(10);

/// The longest one connect may take: a connect that timed out gets twice as long the next
/// time, up to this, so a round trip longer than the first bound is still seen. Within it the
/// kernel sends the SYN four times (at 0, 1, 3 and 7 s). `--invert` takes silence for a
/// server gone only when every connect for this long went unanswered, a new one started at
/// each attempt (a lost SYN is not gone, nor one socket whose SYNs are all lost).
pub const LONGEST_CONNECT: Duration = Duration::from_secs(8);

/// The shortest bound of one connect (at the default interval and below): the kernel sends
/// the SYN again after a second, so a connect unanswered for this long has lost one. A
/// deadline that cuts a connect unanswered this long says `connect timed out`, whatever the
/// bound (`stage::Stage::cut`).
pub const SHORTEST_CONNECT: Duration = Duration::from_secs(1);

/// The longest an HTTP answer may take: an answer that timed out gets twice as long the next
/// time, up to this, so a server slower than the first bound (an application warming up, a
/// health check waiting on its database) is still seen ready, as curl without `--max-time`
/// sees it.
pub const LONGEST_ANSWER: Duration = Duration::from_secs(160);

/// How long the next attempt's connect and HTTP answer may take (the time left before the
/// deadline bounds both as well).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The connect's bound.
    pub connect: Duration,
    /// The bound of an HTTP answer, from connected to judged.
    pub answer: Duration,
}

impl Bounds {
    /// The bounds of the attempt after one that found `finding`: a connect or an answer (a
    /// TLS handshake, an HTTP head or body) that timed out gets twice as long (up to
    /// [`LONGEST_CONNECT`], [`LONGEST_ANSWER`]).
    pub fn after(self, finding: &Finding) -> Bounds {
        match finding {
            Finding::ConnectTimedOut => Bounds {
                connect: self.connect.saturating_mul(2).min(LONGEST_CONNECT),
                ..self
            },
            slow if slow.is_slow_answer() => Bounds {
                answer: self.answer.saturating_mul(2).min(LONGEST_ANSWER),
                ..self
            },
            _ => self,
        }
    }
}

/// The retry schedule of one wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay between the first attempts.
    pub interval: Duration,
    /// The longest delay backing off may reach.
    pub max_interval: Duration,
}

impl Backoff {
    /// A schedule starting at `interval`; `max_interval` defaults to the larger of `interval`
    /// and two seconds, and may not be shorter than `interval`.
    pub fn new(interval: Duration, max_interval: Option<Duration>) -> Result<Self, ParseError> {
        let max_interval = max_interval.unwrap_or(interval.max(Duration::from_secs(2)));
        if max_interval < interval {
            return Err(ParseError::new(
                format!(
                    "--max-interval {}",
                    humantime::format_duration(max_interval)
                ),
                format!(
                    "must not be shorter than --interval ({})",
                    humantime::format_duration(interval)
                ),
            ));
        }
        Ok(Backoff {
            interval,
            max_interval,
        })
    }

    /// The delay after an attempt, given the last delay and the time waited so far.
    pub fn next(&self, current: Duration, waited: Duration) -> Duration {
        if waited < FAST_PHASE {
            return self.interval;
        }
        current
            .saturating_mul(2)
            .clamp(self.interval, self.max_interval)
    }

    /// How long one connect may take before it counts as timed out: long enough for a slow
    /// handshake, short enough that a SYN lost to a host still booting is re-sent soon.
    pub fn connect_bound(&self) -> Duration {
        (self.interval * 4).clamp(SHORTEST_CONNECT, Duration::from_secs(5))
    }
}

/// When the next attempt starts after one that ran from `started` to `ended`, `delay` after
/// it by the schedule ([`Backoff::next`]): `delay` after its start while attempts take at most
/// half of it, as before; a longer attempt (a long round trip, a connect to its bound) is
/// followed by a pause as long as itself, up to `delay`, the pause a shell loop or wait4x
/// sleeps after each try. A far server is then asked at most half the time (not one attempt
/// back to back after another), and never paused for longer than the peers pause.
pub fn next_start(started: Instant, ended: Instant, delay: Duration) -> Instant {
    let took = ended.saturating_duration_since(started);
    (started + delay).max(ended + took.min(delay))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_connect_or_an_answer_that_timed_out_gets_twice_as_long_up_to_the_longest() {
        let b = Backoff::new(ms(250), None).expect("valid");
        let first = Bounds {
            connect: b.connect_bound(),
            answer: Duration::from_secs(10),
        };
        let after = |finding: Finding| {
            std::iter::successors(Some(first), move |d| Some(d.after(&finding)))
                .take(6)
                .collect::<Vec<_>>()
        };
        let connects: Vec<Duration> = after(Finding::ConnectTimedOut)
            .iter()
            .map(|b| b.connect)
            .collect();
        assert_eq!(connects, [1000, 2000, 4000, 8000, 8000, 8000].map(ms));
        let answers = after(Finding::NoResponse);
        let answers: Vec<Duration> = answers.iter().map(|b| b.answer).collect();
        assert_eq!(answers, [10, 20, 40, 80, 160, 160].map(Duration::from_secs));
        for slow in [
            Finding::HandshakeUnfinished,
            Finding::BodyUnfinished {
                status: 200,
                text: "ok".into(),
            },
        ] {
            assert_eq!(first.after(&slow).answer, Duration::from_secs(20), "{slow}");
        }
        assert_eq!(first.after(&Finding::Status(503)), first);
    }

    #[test]
    fn fast_first_then_doubling_up_to_the_cap() {
        let b = Backoff::new(ms(250), None).expect("valid");
        assert_eq!(b.max_interval, Duration::from_secs(2));
        assert_eq!(b.next(ms(250), Duration::from_secs(3)), ms(250));
        let waited = Duration::from_secs(11);
        let steps: Vec<Duration> =
            std::iter::successors(Some(ms(250)), |d| Some(b.next(*d, waited)))
                .take(6)
                .collect();
        assert_eq!(
            steps,
            [ms(250), ms(500), ms(1000), ms(2000), ms(2000), ms(2000)]
        );
    }

    #[test]
    fn a_long_interval_is_kept_and_the_cap_is_checked() {
        let b = Backoff::new(Duration::from_secs(5), None).expect("valid");
        assert_eq!(b.next(b.interval, Duration::from_secs(60)), b.interval);
        let fixed = Backoff::new(ms(100), Some(ms(100))).expect("valid");
        assert_eq!(fixed.next(ms(100), Duration::from_secs(60)), ms(100));
        let err = Backoff::new(ms(500), Some(ms(100))).expect_err("cap below interval");
        assert!(err.why.contains("--interval"), "{err}");
    }

    #[test]
    fn a_long_attempt_is_followed_by_a_pause_as_long_up_to_the_delay() {
        let start = Instant::now();
        let next = |took, delay| next_start(start, start + ms(took), ms(delay)) - start;
        // Quick attempts keep to the delay, start to start.
        assert_eq!(next(10, 250), ms(250));
        assert_eq!(next(125, 250), ms(250));
        // Longer ones pause as long as they took, up to the delay.
        assert_eq!(next(200, 250), ms(400));
        assert_eq!(next(300, 100), ms(400));
        assert_eq!(next(1000, 250), ms(1250));
    }

    #[test]
    fn connects_are_bounded() {
        let bound = |i| Backoff::new(i, None).expect("valid").connect_bound();
        assert_eq!(bound(ms(50)), Duration::from_secs(1));
        assert_eq!(bound(Duration::from_secs(10)), Duration::from_secs(5));
    }
}
