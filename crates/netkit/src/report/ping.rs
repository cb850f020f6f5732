//! The records of `netkit ping` (docs/json.md): one `reply` per echo reply (duplicates and
//! bad checksums flagged), one `error` per ICMP error about a request, one `timeout` per
//! request left unanswered, one `summary` per host.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

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
    /// A reply with a wrong ICMP checksum, which iputils marks `(BAD CHECKSUM!)`: it does not
    /// answer its request (a `timeout` may follow for it).
    pub corrupted: bool,
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

/// `{"type":"error",...}`: an ICMP error about a request (iputils' `From 198.18.0.1
/// icmp_seq=1 Destination Host Unreachable`); the request is answered by it, no `timeout`
/// follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingError {
    /// The host as given.
    pub host: String,
    /// The address pinged.
    pub addr: IpAddr,
    /// Sequence number of the request, from 1.
    pub seq: u64,
    /// Who sent the error: a router on the way, or this host (no neighbour answered).
    pub from: IpAddr,
    /// The error in iputils' words, e.g. `Destination Host Unreachable`.
    pub error: String,
    /// Its ICMP type (ICMPv6's for an IPv6 host).
    pub icmp_type: u8,
    /// Its ICMP code.
    pub icmp_code: u8,
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
    /// Replies with a wrong ICMP checksum (iputils' `+N corrupted`), counted nowhere else.
    pub corrupted: u64,
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
    /// Most requests that were in flight at once (iputils' `pipe`); 0 when none was answered
    /// (an IPv4 ICMP error answers its request, as in iputils).
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
