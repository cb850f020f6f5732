//! Ping statistics computed exactly as iputils does: round-trip times in whole microseconds,
//! average and mean deviation by integer arithmetic (`mdev = sqrt(sum(t²)/n − (sum(t)/n)²)`
//! with iputils' evaluation order and integer square root), loss as a percentage printed
//! with `%g`, and reply times printed with the precision iputils uses for their size.
//! [`PingSummary`] and [`PingReply`] are the JSON records of `netkit ping`.

mod session;

pub use session::{run, Event, PingConfig};

use std::net::IpAddr;
use std::time::Duration;

use crate::error::Error;
use crate::icmp::{Engine, Kind, Version};

use serde::{Deserialize, Serialize};

/// The shortest interval an unprivileged user may ask for, as iputils allows.
pub const MIN_USER_INTERVAL: Duration = Duration::from_millis(2);

/// Refuses intervals below [`MIN_USER_INTERVAL`] unless every socket of `engine` is raw
/// (root or CAP_NET_RAW), as iputils refuses to let users flood.
pub fn check_interval(engine: &Engine, interval: Duration) -> Result<(), Error> {
    let unprivileged = [Version::V4, Version::V6]
        .into_iter()
        .any(|v| engine.kind(v) == Some(Kind::Datagram));
    if !unprivileged || interval >= MIN_USER_INTERVAL {
        return Ok(());
    }
    let what = format!(
        "-i {}ms (intervals below 2ms need a raw socket, as with iputils)",
        interval.as_secs_f64() * 1000.0
    );
    let denied = std::io::Error::from_raw_os_error(nix::libc::EPERM);
    Err(Error::io(what, denied))
}

/// Running statistics of one host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Echo requests sent.
    pub transmitted: u64,
    /// Echo replies received.
    pub received: u64,
    /// ICMP errors (unreachable, time exceeded) about our requests.
    pub errors: u64,
    tmin: i64,
    tmax: i64,
    tsum: i64,
    tsum2: i64,
}

/// Min/avg/max/mdev in microseconds, as iputils computes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rtt {
    /// Shortest round trip.
    pub min_us: i64,
    /// Average (integer division, as iputils).
    pub avg_us: i64,
    /// Longest round trip.
    pub max_us: i64,
    /// Mean deviation (integer square root of the variance).
    pub mdev_us: i64,
}

impl Stats {
    /// Counts one request sent.
    pub fn sent(&mut self) {
        self.transmitted += 1;
    }

    /// Counts one reply with its round-trip time.
    pub fn replied(&mut self, rtt: Duration) {
        let us = micros(rtt);
        if self.received == 0 || us < self.tmin {
            self.tmin = us;
        }
        self.tmax = self.tmax.max(us);
        self.tsum = self.tsum.saturating_add(us);
        self.tsum2 = self.tsum2.saturating_add(us.saturating_mul(us));
        self.received += 1;
    }

    /// Percentage of requests without a reply (0 when nothing was sent).
    pub fn loss_pct(&self) -> f64 {
        if self.transmitted == 0 {
            return 0.0;
        }
        let lost = self.transmitted.saturating_sub(self.received) as f64;
        lost * 100.0 / self.transmitted as f64
    }

    /// Round-trip figures, when at least one reply arrived.
    pub fn rtt(&self) -> Option<Rtt> {
        let total = i64::try_from(self.received).ok().filter(|n| *n > 0)?;
        let avg = self.tsum / total;
        let var = if self.tsum < i64::from(i32::MAX) {
            (self.tsum2 - (self.tsum * self.tsum) / total) / total
        } else {
            self.tsum2 / total - avg * avg
        };
        Some(Rtt {
            min_us: self.tmin,
            avg_us: avg,
            max_us: self.tmax,
            mdev_us: llsqrt(var),
        })
    }
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

/// `a.bbb` milliseconds from microseconds, as iputils prints its statistics.
pub fn format_ms(us: i64) -> String {
    format!("{}.{:03}", us / 1000, us % 1000)
}

/// A reply's time as iputils prints it: 3 decimals below 1 ms, 2 below 10 ms, 1 below
/// 100 ms, none above (rounded where iputils rounds).
pub fn format_reply_time(rtt: Duration) -> String {
    let t = micros(rtt);
    if t >= 100_000 - 50 {
        format!("{}", (t + 500) / 1000)
    } else if t >= 10_000 - 5 {
        format!("{}.{:01}", (t + 50) / 1000, ((t + 50) % 1000) / 100)
    } else if t >= 1000 {
        format!("{}.{:02}", (t + 5) / 1000, ((t + 5) % 1000) / 10)
    } else {
        format!("{}.{:03}", t / 1000, t % 1000)
    }
}

/// A number as C's `%g` prints it (6 significant digits, no trailing zeros), for the loss.
pub fn format_g(value: f64) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    let digits = 6 - 1 - value.abs().log10().floor() as i32;
    let text = format!("{:.*}", digits.max(0) as usize, value);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// `{"type":"reply",...}`: one echo reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PingReply {
    /// The host as given (name or address).
    pub host: String,
    /// The address pinged.
    pub addr: IpAddr,
    /// Sequence number, from 1.
    pub seq: u64,
    /// TTL or hop limit of the reply.
    pub ttl: Option<u8>,
    /// ICMP message bytes (header and data).
    pub bytes: usize,
    /// Round-trip time in milliseconds.
    pub rtt_ms: f64,
}

/// `{"type":"timeout",...}`: no reply within the timeout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingTimeout {
    /// The host as given.
    pub host: String,
    /// The address pinged.
    pub addr: IpAddr,
    /// Sequence number, from 1.
    pub seq: u64,
}

/// `{"type":"summary",...}`: a host's statistics; the rtt fields are null without replies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PingSummary {
    /// The host as given.
    pub host: String,
    /// The address pinged.
    pub addr: IpAddr,
    /// Requests sent.
    pub transmitted: u64,
    /// Replies received.
    pub received: u64,
    /// ICMP errors (unreachable, time exceeded) received about the requests.
    pub errors: u64,
    /// Percentage of requests without reply.
    pub loss_pct: f64,
    /// Shortest round trip, ms.
    pub min_ms: Option<f64>,
    /// Average round trip, ms.
    pub avg_ms: Option<f64>,
    /// Longest round trip, ms.
    pub max_ms: Option<f64>,
    /// Mean deviation, ms.
    pub mdev_ms: Option<f64>,
    /// Time from the first request to the end, ms.
    pub time_ms: u64,
}

impl PingSummary {
    /// The summary of `stats` for `host` at `addr`, `elapsed` after the first request.
    pub fn new(host: &str, addr: IpAddr, stats: &Stats, elapsed: Duration) -> PingSummary {
        let rtt = stats.rtt();
        let ms = |pick: fn(&Rtt) -> i64| rtt.as_ref().map(|r| pick(r) as f64 / 1000.0);
        PingSummary {
            host: host.to_string(),
            addr,
            transmitted: stats.transmitted,
            received: stats.received,
            errors: stats.errors,
            loss_pct: stats.loss_pct(),
            min_ms: ms(|r| r.min_us),
            avg_ms: ms(|r| r.avg_us),
            max_ms: ms(|r| r.max_us),
            mdev_ms: ms(|r| r.mdev_us),
            time_ms: u64::try_from((elapsed.as_micros() + 500) / 1000).unwrap_or(u64::MAX),
        }
    }
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
            stats.replied(Duration::from_micros(*us));
        }
        stats
    }

    #[test]
    fn matches_iputils_arithmetic() {
        // Worked by hand with iputils' formulas: tsum 141, tsum2 6665, n 3.
        // avg 141/3 = 47; var (6665 - 19881/3)/3 = (6665 - 6627)/3 = 12; llsqrt(12) walks
        // 12, 6, 4, 3 and stops at 3.
        let rtt = stats(&[45, 52, 44], 3).rtt().unwrap();
        assert_eq!(
            rtt,
            Rtt {
                min_us: 44,
                avg_us: 47,
                max_us: 52,
                mdev_us: 3
            }
        );
        assert_eq!(format_ms(rtt.avg_us), "0.047");
        assert_eq!(format_ms(1_234_567), "1234.567");
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
        assert_eq!(Stats::default().loss_pct(), 0.0);
    }

    #[test]
    fn loss_prints_like_percent_g() {
        assert_eq!(format_g(stats(&[1], 3).loss_pct()), "66.6667");
        assert_eq!(format_g(stats(&[1, 1], 3).loss_pct()), "33.3333");
        assert_eq!(format_g(stats(&[1], 2).loss_pct()), "50");
        assert_eq!(format_g(stats(&[1, 1], 2).loss_pct()), "0");
        assert_eq!(format_g(stats(&[], 2).loss_pct()), "100");
        assert_eq!(format_g(stats(&[1; 6], 7).loss_pct()), "14.2857");
    }

    #[test]
    fn reply_times_like_iputils() {
        let t = |us| format_reply_time(Duration::from_micros(us));
        assert_eq!(t(45), "0.045");
        assert_eq!(t(999), "0.999");
        assert_eq!(t(1_234), "1.23");
        assert_eq!(t(9_994), "9.99");
        assert_eq!(t(9_995), "10.0");
        assert_eq!(t(12_345), "12.3");
        assert_eq!(t(99_950), "100");
        assert_eq!(t(123_456), "123");
    }
}
