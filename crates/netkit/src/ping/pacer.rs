//! When a host's next request may go, by iputils' rules: a token bucket that lets `-l
//! PRELOAD` requests go at once and then one per interval (catching up on a late wake-up, never
//! by more than the preload); with a zero interval (`-f`, `-i 0`, `-A` on a fast link) the next
//! request goes as soon as fewer than PRELOAD are in flight, and at least every 10 ms.

use std::time::Duration;

use tokio::time::Instant;

/// Within a zero interval, how long to wait for a reply before sending anyway (iputils'
/// `MININTERVAL`).
pub const FLOOD_WAIT: Duration = Duration::from_millis(10);

/// One host's send schedule.
#[derive(Debug, Clone)]
pub struct Pacer {
    interval: Duration,
    preload: u64,
    last: Option<Instant>,
    tokens: Duration,
}

impl Pacer {
    /// A schedule of one request per `interval`, `preload` (at least 1) at the start.
    pub fn new(interval: Duration, preload: u64) -> Pacer {
        Pacer {
            interval,
            preload: preload.max(1),
            last: None,
            tokens: Duration::ZERO,
        }
    }

    /// The interval in force.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Changes the interval (adaptive ping).
    pub fn set_interval(&mut self, interval: Duration) {
        self.interval = interval;
    }

    /// When the next request may go, with `in_flight` requests unanswered; `None` for the
    /// first, which goes at once.
    pub fn due(&self, in_flight: u64) -> Option<Instant> {
        let last = self.last?;
        if self.interval.is_zero() {
            return Some(match in_flight < self.preload {
                true => last,
                false => last + FLOOD_WAIT,
            });
        }
        Some(last + self.interval.saturating_sub(self.tokens))
    }

    /// Takes the token of a request sent at `now`.
    pub fn take(&mut self, now: Instant) {
        let Some(last) = self.last else {
            self.last = Some(now);
            self.tokens = self.interval * u32::try_from(self.preload - 1).unwrap_or(u32::MAX);
            return;
        };
        let cap = self
            .interval
            .saturating_mul(u32::try_from(self.preload).unwrap_or(u32::MAX));
        let earned = (now.saturating_duration_since(last) + self.tokens).min(cap);
        self.tokens = earned.saturating_sub(self.interval);
        self.last = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn preload_goes_at_once_then_one_per_interval() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(1000 * MS, 3);
        assert_eq!(pacer.due(0), None);
        pacer.take(t0);
        assert_eq!(pacer.due(1), Some(t0));
        pacer.take(t0);
        assert_eq!(pacer.due(2), Some(t0));
        pacer.take(t0);
        assert_eq!(pacer.due(3), Some(t0 + 1000 * MS));
        pacer.take(t0 + 1000 * MS);
        assert_eq!(pacer.due(4), Some(t0 + 2000 * MS));
    }

    #[test]
    fn a_late_wake_up_is_caught_up_on_within_the_preload() {
        let t0 = Instant::now();
        // Preload 1 (the default): no credit, the schedule slips as iputils' does.
        let mut pacer = Pacer::new(100 * MS, 1);
        pacer.take(t0);
        pacer.take(t0 + 130 * MS);
        assert_eq!(pacer.due(1), Some(t0 + 230 * MS));
        // Preload 2: one interval of credit, so a stall is made up once.
        let mut pacer = Pacer::new(100 * MS, 2);
        pacer.take(t0);
        pacer.take(t0);
        pacer.take(t0 + 900 * MS);
        assert_eq!(pacer.due(1), Some(t0 + 900 * MS));
        pacer.take(t0 + 900 * MS);
        assert_eq!(pacer.due(1), Some(t0 + 1000 * MS));
    }

    #[test]
    fn flood_waits_for_a_reply_or_ten_milliseconds() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(Duration::ZERO, 1);
        pacer.take(t0);
        assert_eq!(pacer.due(1), Some(t0 + FLOOD_WAIT));
        assert_eq!(pacer.due(0), Some(t0));
    }
}
