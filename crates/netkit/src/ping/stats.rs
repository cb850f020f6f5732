//! One host's statistics computed exactly as iputils computes them: round-trip times in whole
//! microseconds; duplicates count in the times (sum, minimum, maximum, moving average) but not
//! in `received`; the average and the mean deviation divide by replies plus duplicates with
//! iputils' arithmetic and evaluation order (its sums are doubles, each result truncated to an
//! integer: `mdev = isqrt(sum(t²)/n − (sum(t)/n)²)`, iputils' integer square root); the moving
//! average is iputils' `ewma` (kept times 8, weight 1/8).

use std::net::IpAddr;
use std::time::Duration;

use crate::report::ping::PingSummary;

/// Running statistics of one host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Echo requests sent (also those the kernel refused: iputils counts them).
    pub transmitted: u64,
    /// Echo replies received, each sequence number once.
    pub received: u64,
    /// Replies to a sequence number that had already been answered.
    pub duplicates: u64,
    /// Replies with a wrong ICMP checksum (iputils' `corrupted`), in no other count.
    pub corrupted: u64,
    /// ICMP errors (unreachable, time exceeded, ...) about the requests, and local errors
    /// such as a request too big for the path MTU.
    pub errors: u64,
    timed: u64,
    tmin: i64,
    tmax: i64,
    tsum: i64,
    tsum2: i64,
    ewma8: i64,
}

/// Min/avg/max/mdev and the moving average, in microseconds, as iputils computes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rtt {
    /// Shortest round trip.
    pub min_us: i64,
    /// Average (truncated, as iputils).
    pub avg_us: i64,
    /// Longest round trip.
    pub max_us: i64,
    /// Mean deviation (integer square root of the variance).
    pub mdev_us: i64,
    /// Exponentially weighted moving average (iputils' `ewma`).
    pub ewma_us: i64,
}

impl Stats {
    /// Counts one request sent.
    pub fn sent(&mut self) {
        self.transmitted += 1;
    }

    /// Counts one reply, a duplicate or not, with its round-trip time when the payload was
    /// large enough to carry the send time.
    pub fn replied(&mut self, rtt: Option<Duration>, duplicate: bool) {
        if duplicate {
            self.duplicates += 1;
        } else {
            self.received += 1;
        }
        let Some(rtt) = rtt else {
            return;
        };
        let us = micros(rtt);
        if self.timed == 0 || us < self.tmin {
            self.tmin = us;
        }
        self.tmax = self.tmax.max(us);
        self.tsum = self.tsum.saturating_add(us);
        self.tsum2 = self.tsum2.saturating_add(us.saturating_mul(us));
        self.ewma8 = match self.ewma8 {
            0 => us.saturating_mul(8),
            ewma => ewma + us - ewma / 8,
        };
        self.timed += 1;
    }

    /// Percentage of requests without a reply (0 when nothing was sent).
    pub fn loss_pct(&self) -> f64 {
        if self.transmitted == 0 {
            return 0.0;
        }
        let lost = self.transmitted.saturating_sub(self.received) as f64;
        lost * 100.0 / self.transmitted as f64
    }

    /// The loss as a whole percentage rounded down, as iputils' status line prints it.
    pub fn loss_whole_pct(&self) -> u64 {
        match self.transmitted {
            0 => 0,
            sent => sent.saturating_sub(self.received) * 100 / sent,
        }
    }

    /// The longest round trip so far (zero before the first timed reply).
    pub fn max_rtt(&self) -> Duration {
        Duration::from_micros(u64::try_from(self.tmax).unwrap_or(0))
    }

    /// The moving average so far, when a timed reply came.
    pub fn ewma(&self) -> Option<Duration> {
        let us = u64::try_from(self.ewma8 / 8).ok()?;
        (self.timed > 0).then(|| Duration::from_micros(us))
    }

    /// Round-trip figures, when at least one reply arrived and replies were timed.
    pub fn rtt(&self) -> Option<Rtt> {
        if self.received == 0 || self.timed == 0 {
            return None;
        }
        // iputils keeps tsum and tsum2 in doubles: the sums are exact integers below 2^53, the
        // divisions are not, and each result is truncated only when it becomes a C integer.
        let total = (self.received + self.duplicates) as f64;
        let (tsum, tsum2) = (self.tsum as f64, self.tsum2 as f64);
        let avg = (tsum / total) as i64;
        let var = if tsum < f64::from(i32::MAX) {
            (tsum2 - (tsum * tsum) / total) / total
        } else {
            tsum2 / total - avg.saturating_mul(avg) as f64
        };
        Some(Rtt {
            min_us: self.tmin,
            avg_us: avg,
            max_us: self.tmax,
            mdev_us: llsqrt(var as i64),
            ewma_us: self.ewma8 / 8,
        })
    }
}

/// What a summary is made of besides the host and its statistics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SummaryParts {
    /// iputils' `pipe`.
    pub pipe: u64,
    /// From the start to the last request.
    pub elapsed: Duration,
    /// Per-request round trips, when kept.
    pub rtts_ms: Option<Vec<Option<f64>>>,
}

impl Stats {
    /// The summary record of these statistics for `host` at `addr`.
    pub fn summary(&self, host: &str, addr: IpAddr, parts: SummaryParts) -> PingSummary {
        let rtt = self.rtt();
        let ms = |pick: fn(&Rtt) -> i64| rtt.as_ref().map(|r| pick(r) as f64 / 1000.0);
        PingSummary {
            host: host.to_string(),
            addr,
            transmitted: self.transmitted,
            received: self.received,
            duplicates: self.duplicates,
            corrupted: self.corrupted,
            errors: self.errors,
            loss_pct: self.loss_pct(),
            min_ms: ms(|r| r.min_us),
            avg_ms: ms(|r| r.avg_us),
            max_ms: ms(|r| r.max_us),
            mdev_ms: ms(|r| r.mdev_us),
            ewma_ms: ms(|r| r.ewma_us),
            pipe: parts.pipe,
            time_ms: whole_ms(parts.elapsed),
            elapsed: parts.elapsed,
            rtts_ms: parts.rtts_ms,
        }
    }
}

/// Milliseconds rounded to the nearest, as iputils prints `time`.
fn whole_ms(elapsed: Duration) -> u64 {
    u64::try_from((elapsed.as_micros() + 500) / 1000).unwrap_or(u64::MAX)
}

/// Whole microseconds, truncated, as iputils measures.
fn micros(rtt: Duration) -> i64 {
    i64::try_from(rtt.as_micros()).unwrap_or(i64::MAX)
}

/// iputils' integer square root (Newton's method); 0 for non-positive input.
fn llsqrt(a: i64) -> i64 {
    let mut prev = i64::MAX;
    let mut x = a;
    if x > 0 {
        while x < prev {
            prev = x;
            x = (x + a / x) / 2;
        }
    }
    x.max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(rtts_us: &[u64], transmitted: u64) -> Stats {
        let mut stats = Stats::default();
        for _ in 0..transmitted {
            stats.sent();
        }
        for us in rtts_us {
            stats.replied(Some(Duration::from_micros(*us)), false);
        }
        stats
    }

    #[test]
    fn matches_iputils_arithmetic() {
        // Worked by hand with iputils' formulas: tsum 141, tsum2 6665, n 3.
        // avg 141/3 = 47; var (6665 - 19881/3)/3 = (6665 - 6627)/3 = 12; llsqrt(12) walks
        // 12, 6, 4, 3 and stops at 3. ewma×8: 360, then 360 + 52 - 45 = 367, then
        // 367 + 44 - 45 = 366; printed as 366/8 = 45.
        let rtt = stats(&[45, 52, 44], 3).rtt().unwrap();
        assert_eq!(
            rtt,
            Rtt {
                min_us: 44,
                avg_us: 47,
                max_us: 52,
                mdev_us: 3,
                ewma_us: 45,
            }
        );
    }

    #[test]
    fn the_variance_is_taken_in_doubles_as_iputils_keeps_its_sums() {
        // iputils 20221126 keeps tsum and tsum2 in doubles: 40, 40 and 42 us give
        // (4964 - 14884/3)/3 = 0.89, truncated to 0, so mdev 0; integer steps round 14884/3
        // down first, (4964 - 4961)/3 = 1, and printed mdev 0.001.
        assert_eq!(stats(&[40, 40, 42], 3).rtt().unwrap().mdev_us, 0);
        // 40, 41, 44: 2.67 truncated to 2, whose iputils square root is 1 (integer steps: 3,
        // whose square root is 2).
        let rtt = stats(&[40, 41, 44], 3).rtt().unwrap();
        assert_eq!((rtt.avg_us, rtt.mdev_us), (41, 1));
    }

    #[test]
    fn duplicates_count_in_the_times_but_not_in_received() {
        // iputils: tsum includes the duplicate, avg = tsum / (received + duplicates).
        let mut s = stats(&[100, 200], 2);
        s.replied(Some(Duration::from_micros(600)), true);
        assert_eq!((s.received, s.duplicates), (2, 1));
        assert_eq!(s.loss_pct(), 0.0);
        let rtt = s.rtt().unwrap();
        assert_eq!((rtt.min_us, rtt.avg_us, rtt.max_us), (100, 300, 600));
    }

    #[test]
    fn untimed_replies_have_no_figures() {
        let mut s = stats(&[], 2);
        s.replied(None, false);
        assert_eq!(s.received, 1);
        assert_eq!(s.rtt(), None);
        assert_eq!(s.ewma(), None);
        assert_eq!(s.max_rtt(), Duration::ZERO);
    }

    #[test]
    fn integer_sqrt_stops_where_iputils_stops() {
        // Newton from above overshoots on 24: 24, 12, 7, 5, 4, then 5 >= 4 ends the loop.
        assert_eq!(llsqrt(24), 5);
        assert_eq!(llsqrt(25), 5);
        assert_eq!(llsqrt(0), 0);
        assert_eq!(llsqrt(-3), 0);
    }

    #[test]
    fn mdev_of_large_sums_uses_the_other_order() {
        // tsum >= INT_MAX: var = tsum2/n - avg².
        let rtt = stats(&[2_000_000_000, 2_000_000_100], 2).rtt().unwrap();
        assert_eq!(rtt.avg_us, 2_000_000_050);
        assert_eq!(rtt.mdev_us, 50);
    }

    #[test]
    fn no_replies_no_rtt() {
        let s = stats(&[], 4);
        assert_eq!(s.rtt(), None);
        assert_eq!(s.loss_pct(), 100.0);
        assert_eq!(s.loss_whole_pct(), 100);
        assert_eq!(Stats::default().loss_pct(), 0.0);
        assert_eq!(stats(&[1], 3).loss_whole_pct(), 66);
    }
}
