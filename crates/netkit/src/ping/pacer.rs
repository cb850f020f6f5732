//! When a host's next request may go, by iputils' rules: a token bucket that lets `-l
//! PRELOAD` requests go at once and then one per interval (catching up on a late wake-up, never
//! by more than the preload); with a zero interval (`-f`, `-i 0`, `-A` on a fast link) the next
//! request goes as soon as fewer than PRELOAD are in flight, and at least every 10 ms.
//!
//! And iputils' floor while replies are outstanding: when the next request is due in 10 ms or
//! less (an interval below 10 ms right after a request, or any interval once an answer came
//! late in it), iputils waits for an answer or 10 ms (`MININTERVAL`) rather than until the
//! request is due. So `-i 0.002` across a 30 ms round trip sends every 10 ms, and an answer
//! that comes just before a request is due pushes that request to 10 ms after the answer.
//! With nothing in flight it waits the interval exactly.

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
    /// No request before this while answers are outstanding (the 10 ms floor).
    hold: Option<Instant>,
}

impl Pacer {
    /// A schedule of one request per `interval`, `preload` (at least 1) at the start.
    pub fn new(interval: Duration, preload: u64) -> Pacer {
        Pacer {
            interval,
            preload: preload.max(1),
            last: None,
            tokens: Duration::ZERO,
            hold: None,
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
        let due = self.schedule(in_flight)?;
        Some(match (self.hold, in_flight) {
            (Some(hold), 1..) => due.max(hold),
            _ => due,
        })
    }

    /// When the next request may go by the interval (and preload) alone.
    fn schedule(&self, in_flight: u64) -> Option<Instant> {
        let last = self.last?;
        if self.interval.is_zero() {
            return Some(match in_flight < self.preload {
                true => last,
                false => last + FLOOD_WAIT,
            });
        }
        Some(last + self.interval.saturating_sub(self.tokens))
    }

    /// Notes an answer (reply or error) taken in at `now`, with `in_flight` requests still
    /// unanswered: a request due within [`FLOOD_WAIT`] waits until `now` + [`FLOOD_WAIT`].
    pub fn heard(&mut self, now: Instant, in_flight: u64) {
        self.hold = self.floor(now, in_flight);
    }

    /// The 10 ms floor at `now`, if the next request is due within it but not yet.
    fn floor(&self, now: Instant, in_flight: u64) -> Option<Instant> {
        let due = self.schedule(in_flight)?;
        let soon = due > now && due <= now + FLOOD_WAIT;
        (soon && in_flight > 0).then_some(now + FLOOD_WAIT)
    }

    /// Takes the token of a request sent at `now` (`in_flight` counting it).
    pub fn take(&mut self, now: Instant, in_flight: u64) {
        self.take_token(now);
        self.hold = self.floor(now, in_flight);
    }

    /// The request just taken was refused by the kernel: the credit saved up (the rest of a
    /// `-l` burst, a late wake-up's catch-up) is dropped, so the next request waits a whole
    /// interval, as iputils' `tokens = 0` after a failed send.
    pub fn refused(&mut self) {
        self.tokens = Duration::ZERO;
    }

    fn take_token(&mut self, now: Instant) {
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
        pacer.take(t0, 1);
        assert_eq!(pacer.due(1), Some(t0));
        pacer.take(t0, 1);
        assert_eq!(pacer.due(2), Some(t0));
        pacer.take(t0, 1);
        assert_eq!(pacer.due(3), Some(t0 + 1000 * MS));
        pacer.take(t0 + 1000 * MS, 1);
        assert_eq!(pacer.due(4), Some(t0 + 2000 * MS));
    }

    #[test]
    fn a_late_wake_up_is_caught_up_on_within_the_preload() {
        let t0 = Instant::now();
        // Preload 1 (the default): no credit, the schedule slips as iputils' does.
        let mut pacer = Pacer::new(100 * MS, 1);
        pacer.take(t0, 1);
        pacer.take(t0 + 130 * MS, 1);
        assert_eq!(pacer.due(1), Some(t0 + 230 * MS));
        // Preload 2: one interval of credit, so a stall is made up once.
        let mut pacer = Pacer::new(100 * MS, 2);
        pacer.take(t0, 1);
        pacer.take(t0, 1);
        pacer.take(t0 + 900 * MS, 1);
        assert_eq!(pacer.due(1), Some(t0 + 900 * MS));
        pacer.take(t0 + 900 * MS, 1);
        assert_eq!(pacer.due(1), Some(t0 + 1000 * MS));
    }

    #[test]
    fn flood_waits_for_a_reply_or_ten_milliseconds() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(Duration::ZERO, 1);
        pacer.take(t0, 1);
        assert_eq!(pacer.due(1), Some(t0 + FLOOD_WAIT));
        assert_eq!(pacer.due(0), Some(t0));
    }

    #[test]
    fn an_interval_below_ten_milliseconds_waits_ten_while_answers_are_outstanding() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(2 * MS, 1);
        pacer.take(t0, 1);
        assert_eq!(pacer.due(1), Some(t0 + 10 * MS));
        // Nothing in flight: the interval, exactly.
        assert_eq!(pacer.due(0), Some(t0 + 2 * MS));
        // An answer before the request is due, others outstanding: 10 ms from the answer.
        pacer.heard(t0 + MS, 1);
        assert_eq!(pacer.due(1), Some(t0 + 11 * MS));
        // An answer once it is due: at once.
        pacer.heard(t0 + 3 * MS, 1);
        assert_eq!(pacer.due(1), Some(t0 + 2 * MS));
    }

    #[test]
    fn an_answer_just_before_a_request_is_due_pushes_it_ten_milliseconds_past_the_answer() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(200 * MS, 1);
        pacer.take(t0, 1);
        assert_eq!(pacer.due(1), Some(t0 + 200 * MS));
        // Earlier than 10 ms before it is due: no change.
        pacer.heard(t0 + 150 * MS, 2);
        assert_eq!(pacer.due(2), Some(t0 + 200 * MS));
        // 5 ms before, with requests still outstanding: 5 ms late.
        pacer.heard(t0 + 195 * MS, 1);
        assert_eq!(pacer.due(1), Some(t0 + 205 * MS));
        // The last answer: nothing in flight, no floor.
        pacer.heard(t0 + 196 * MS, 0);
        assert_eq!(pacer.due(0), Some(t0 + 200 * MS));
        // A request sent clears it.
        pacer.heard(t0 + 195 * MS, 1);
        pacer.take(t0 + 205 * MS, 1);
        assert_eq!(pacer.due(1), Some(t0 + 405 * MS));
    }
}
