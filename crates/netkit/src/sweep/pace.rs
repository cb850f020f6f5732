//! Probe pacing: a token bucket that lets through at most `rate` probes per second on average,
//! in bursts no longer than [`BURST`] so that a coarse timer does not lower the rate.

use std::time::Duration;

use tokio::time::Instant;

/// The longest stretch of missed sending time that is made up for at once.
pub const BURST: Duration = Duration::from_millis(5);

/// Spaces probes `1/rate` seconds apart on average.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    next: Instant,
    sent: u64,
}

impl Pacer {
    /// A pacer for `rate` probes per second (at least 1).
    pub fn new(rate: u64) -> Self {
        Pacer {
            interval: Duration::from_nanos(1_000_000_000 / rate.max(1)),
            next: Instant::now(),
            sent: 0,
        }
    }

    /// Waits until the next probe may go. Every 64th call yields to the runtime, so replies
    /// are read even while a burst is being sent.
    pub async fn tick(&mut self) {
        let now = Instant::now();
        if self.next > now {
            tokio::time::sleep_until(self.next).await;
        } else if self.sent % 64 == 63 {
            tokio::task::yield_now().await;
        }
        let floor = Instant::now().checked_sub(BURST).unwrap_or(self.next);
        self.next = self.next.max(floor) + self.interval;
        self.sent += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn holds_the_rate_on_average() {
        let start = Instant::now();
        let mut pacer = Pacer::new(1000);
        for _ in 0..1001 {
            pacer.tick().await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn makes_up_for_a_short_stall_only() {
        let mut pacer = Pacer::new(1000);
        pacer.tick().await;
        tokio::time::advance(Duration::from_secs(1)).await;
        let start = Instant::now();
        for _ in 0..100 {
            pacer.tick().await;
        }
        // 5 ms of catch-up at most, then one probe per millisecond again.
        assert!(
            start.elapsed() >= Duration::from_millis(94),
            "{:?}",
            start.elapsed()
        );
    }
}
