//! Probe pacing: a token bucket that lets through at most `rate` probes per second on average,
//! in bursts no longer than [`BURST`] so that a coarse timer does not lower the rate. The rate
//! can change at any time (the sweep slows down when the far side throttles it).

use std::time::Duration;

use tokio::time::Instant;

/// The longest stretch of missed sending time that is made up for at once.
pub const BURST: Duration = Duration::from_millis(5);

/// Spaces probes `1/rate` seconds apart on average.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    next: Instant,
}

impl Pacer {
    /// A pacer for `rate` probes per second (at least 1).
    pub fn new(rate: u64) -> Self {
        Pacer {
            interval: interval(rate),
            next: Instant::now(),
        }
    }

    /// Changes the rate from the next probe on.
    pub fn set_rate(&mut self, rate: u64) {
        self.interval = interval(rate);
    }

    /// When the next probe may go.
    pub fn next(&self) -> Instant {
        self.next
    }

    /// Takes the right to send one probe if it may go at `now`.
    pub fn take(&mut self, now: Instant) -> bool {
        if self.next > now {
            return false;
        }
        let floor = now.checked_sub(BURST).unwrap_or(self.next);
        self.next = self.next.max(floor) + self.interval;
        true
    }
}

fn interval(rate: u64) -> Duration {
    Duration::from_nanos(1_000_000_000 / rate.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `n` probes as fast as the pacer allows, on tokio's paused clock.
    async fn send(pacer: &mut Pacer, n: usize) {
        for _ in 0..n {
            while !pacer.take(Instant::now()) {
                tokio::time::sleep_until(pacer.next()).await;
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn holds_the_rate_on_average() {
        let start = Instant::now();
        let mut pacer = Pacer::new(1000);
        send(&mut pacer, 1001).await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn makes_up_for_a_short_stall_only() {
        let mut pacer = Pacer::new(1000);
        send(&mut pacer, 1).await;
        tokio::time::advance(Duration::from_secs(1)).await;
        let start = Instant::now();
        send(&mut pacer, 100).await;
        // 5 ms of catch-up at most, then one probe per millisecond again.
        assert!(
            start.elapsed() >= Duration::from_millis(94),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_rate_applies_at_once() {
        let mut pacer = Pacer::new(1000);
        send(&mut pacer, 1).await;
        pacer.set_rate(100);
        let start = Instant::now();
        send(&mut pacer, 11).await;
        // The probe already scheduled 1 ms out, then ten 10 ms apart.
        assert_eq!(start.elapsed(), Duration::from_millis(101));
    }
}
