//! The JSON records of `netkit ping` (docs/json.md): one `reply` per echo reply (duplicates
//! flagged), one `timeout` per request left unanswered, one `summary` per host.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::stats::{Rtt, Stats};

/// `{"type":"reply",...}`: one echo reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PingReply {
    /// The host as given (name or address).
    pub host: String,
    /// Who answered (the address pinged, unless it was a broadcast address).
    pub addr: IpAddr,
    /// Sequence number, from 1.
    pub seq: u64,
    /// TTL or hop limit of the reply.
    pub ttl: Option<u8>,
    /// ICMP message bytes (header and data).
    pub bytes: usize,
    /// Round-trip time in milliseconds; null when the payload (`-s` below 16) was too small
    /// to carry the send time.
    pub rtt_ms: Option<f64>,
    /// A second (or later) reply to the same request, which iputils marks `(DUP!)`.
    pub dup: bool,
}

/// `{"type":"timeout",...}`: a request without a reply after `-W`, or still without one when
/// its host finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingTimeout {
    /// The host as given.
    pub host: String,
    /// The address pinged.
    pub addr: IpAddr,
    /// Sequence number, from 1.
    pub seq: u64,
}

/// `{"type":"summary",...}`: a host's statistics; the rtt fields are null without (timed)
/// replies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PingSummary {
    /// The host as given.
    pub host: String,
    /// The address pinged.
    pub addr: IpAddr,
    /// Requests sent.
    pub transmitted: u64,
    /// Replies received (each request once).
    pub received: u64,
    /// Further replies to requests already answered.
    pub duplicates: u64,
    /// ICMP errors (unreachable, time exceeded) received about the requests, and local
    /// errors (a request too big for the path MTU).
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
    /// Moving average of the round trips (iputils' `ewma`), ms.
    pub ewma_ms: Option<f64>,
    /// Most requests that were in flight at once (iputils' `pipe`); 0 when none was answered.
    pub pipe: u64,
    /// Time from the start to the last request sent, ms (iputils' `time`).
    pub time_ms: u64,
    /// The same time, unrounded (not in the JSON record).
    #[serde(skip)]
    pub elapsed: Duration,
    /// Each request's round trip in ms, null for the unanswered ones, in order (fping's
    /// `-C`); only with `--fping-summary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtts_ms: Option<Vec<Option<f64>>>,
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

impl PingSummary {
    /// The summary of `stats` for `host` at `addr`.
    pub fn new(host: &str, addr: IpAddr, stats: &Stats, parts: SummaryParts) -> PingSummary {
        let rtt = stats.rtt();
        let ms = |pick: fn(&Rtt) -> i64| rtt.as_ref().map(|r| pick(r) as f64 / 1000.0);
        PingSummary {
            host: host.to_string(),
            addr,
            transmitted: stats.transmitted,
            received: stats.received,
            duplicates: stats.duplicates,
            errors: stats.errors,
            loss_pct: stats.loss_pct(),
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
