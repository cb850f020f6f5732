//! The one pacer of the probing engines: sends spaced one interval apart on average, with a
//! bounded catch-up. After a stall (a coarse timer, a busy task) a pacer makes up for at most
//! its `burst` of missed sending time at once, then spaces sends again; a burst of zero never
//! catches up (a slow patch never turns into a burst). The interval can change at any time,
//! from the next send on. Time is an input (`std::time::Instant`; tokio's converts both
//! ways), so the pacer is tested without a clock.
//!
//! Users: `sweep` (its probe rate, 5 ms of catch-up so that a 1 ms timer does not lower the
//! rate) and `scan` (the `--rate` ceiling and a host's adaptive pace, no catch-up). ping keeps
//! iputils' own schedule (`ping::pacer`), which is a different job.

use std::time::{Duration, Instant};

/// Spaces sends `interval` apart on average, making up for at most `burst` of a stall.
#[derive(Debug, Clone)]
pub struct Pacer {
    interval: Duration,
    burst: Duration,
    next: Option<Instant>,
}

impl Pacer {
    /// A pacer whose first send may leave at once.
    pub fn new(interval: Duration, burst: Duration) -> Self {
        Pacer {
            interval,
            burst,
            next: None,
        }
    }

    /// The interval between sends.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Changes the interval from the next send on (the slot already taken stays).
    pub fn set_interval(&mut self, interval: Duration) {
        self.interval = interval;
    }

    /// When the next send may leave (`None`: now).
    pub fn next(&self) -> Option<Instant> {
        self.next
    }

    /// Whether a send may leave at `now`.
    pub fn ready(&self, now: Instant) -> bool {
        self.next.is_none_or(|next| next <= now)
    }

    /// Takes the slot for a send at `now` (the caller checked [`Pacer::ready`]): the next
    /// one is an interval after this slot, which lies at most `burst` before `now`.
    pub fn take(&mut self, now: Instant) {
        let slot = match (self.next, now.checked_sub(self.burst)) {
            (None, _) => now,
            (Some(next), Some(floor)) => next.max(floor),
            (Some(next), None) => next,
        };
        self.next = Some(slot + self.interval);
    }
}

/// The interval of `rate` sends per second (at least one a second).
pub fn interval_of(rate: u64) -> Duration {
    Duration::from_nanos(1_000_000_000 / rate.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Sends `n` as fast as the pacer allows from `start`; returns when the last one left.
    fn send(pacer: &mut Pacer, start: Instant, n: usize) -> Instant {
        let mut now = start;
        for _ in 0..n {
            if !pacer.ready(now) {
                now = pacer.next().unwrap_or(now);
            }
            pacer.take(now);
        }
        now
    }

    #[test]
    fn holds_the_rate_on_average() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(interval_of(1000), ms(5));
        assert_eq!(send(&mut pacer, t0, 1001), t0 + Duration::from_secs(1));
    }

    #[test]
    fn makes_up_for_a_short_stall_only() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(interval_of(1000), ms(5));
        send(&mut pacer, t0, 1);
        let start = t0 + Duration::from_secs(1);
        // 5 ms of catch-up at most, then one send per millisecond again.
        assert_eq!(send(&mut pacer, start, 100), start + ms(94));
    }

    #[test]
    fn a_new_interval_applies_from_the_next_send() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(interval_of(1000), ms(5));
        send(&mut pacer, t0, 1);
        pacer.set_interval(interval_of(100));
        // The send already scheduled 1 ms out, then ten 10 ms apart.
        assert_eq!(send(&mut pacer, t0, 11), t0 + ms(101));
    }

    #[test]
    fn without_burst_a_pause_never_turns_into_a_burst() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(ms(100), Duration::ZERO);
        assert!(pacer.ready(t0));
        pacer.take(t0);
        assert!(!pacer.ready(t0 + ms(99)) && pacer.ready(t0 + ms(100)));
        pacer.take(t0 + ms(500));
        assert_eq!(pacer.next(), Some(t0 + ms(600)));
    }
}
