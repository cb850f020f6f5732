//! Host discovery: which targets of a list answer, once or every N seconds.
//!
//! A [`Sweep`] walks its [`Targets`] lazily; its per-target state is a few bits per target
//! ([`bitset`]), so a million addresses cost kilobytes. Probes go out paced by the rate
//! (the engines' one [`crate::pace::Pacer`]) through a [`Prober`] per method ([`probe`]: ICMP
//! echo, [`icmp`], TCP connect, [`tcp`], or, on a directly connected network ([`onlink`]),
//! ARP, [`arp`], and neighbour discovery, [`ndp`], which report MAC addresses
//! ([`neighbour`]), and, with raw sockets ([`raw`]), ICMP timestamp requests, [`timestamp`],
//! and bare TCP ACKs, [`ack`] (nmap's `-PP` and `-PA`); several at once, [`multi`]: a host is alive when any method answers);
//! answers come back tagged with the target's position and the probe's attempt, and are
//! reported as [`Event`]s as they arrive ([`event`], carrying the records of
//! [`crate::report::sweep`]).
//!
//! A round (module `round`) adapts to the network: the waits follow the round-trip times
//! ([`rtt`]), silent targets are re-probed until the loss measured on the way ([`loss`], from
//! re-probes of hosts already found) says a live host would have answered (module
//! `schedule`), the rate drops when the answers collapse (a policer) and says so, and
//! targets with no route are reported as such ([`unreach`]). It ends as soon as every target
//! is settled, or after the last re-probes and one wait for late answers. In periodic mode
//! each round is compared with the one before, a host is reported gone only after enough
//! re-probes, and [`metrics`] keeps Prometheus metrics that [`http`] serves.

pub mod ack;
pub mod arp;
pub mod bitset;
pub mod event;
pub mod http;
pub mod icmp;
pub mod loss;
pub mod metrics;
pub mod multi;
pub mod ndp;
pub mod neighbour;
pub mod onlink;
pub mod own;
pub mod probe;
pub mod raw;
mod reject;
pub mod reply;
mod round;
pub mod rtt;
mod schedule;
#[cfg(test)]
mod scripted;
pub mod tcp;
pub mod timestamp;
pub mod unreach;
mod witness;
pub mod zone;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, ParseError};
use crate::report::sweep::SummaryRecord;
use crate::target::Targets;

pub use bitset::Bitset;
pub use event::Event;
pub use metrics::Metrics;
pub use multi::{Methods, Probers};
pub use neighbour::Mac;
pub use probe::{Method, Prober};
pub use reply::{Answer, Reply, Tag};
pub use unreach::Unreach;

/// Probes per second when no rate is given (a ceiling: the sweep slows down when throttled).
pub const DEFAULT_RATE: u64 = 10_000;
/// The most re-probes of a silent target when no number is given; how many it gets is
/// decided by the loss measured on the way.
pub const DEFAULT_RETRIES: u32 = 10;
/// The most targets one sweep takes (its bitsets then use 32 MiB each).
pub const MAX_TARGETS: u64 = 1 << 28;

/// Where a sweep sends its events; an error (such as a closed stdout) ends the sweep.
pub type Sink<'a> = dyn FnMut(Event) -> std::io::Result<()> + 'a;

/// How to sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// ICMP echo, TCP connect, or several: a target is alive when any of them answers.
    pub methods: Methods,
    /// The longest wait for an answer to a probe; the waits used are derived from the
    /// round-trip times seen, up to this.
    pub timeout: Duration,
    /// The most probes sent again to a target still silent (fewer when the network loses
    /// little; at least one when this is not 0).
    pub retries: u32,
    /// Probes per second at most.
    pub rate: u64,
    /// Start a round every this long (periodic mode).
    pub every: Option<Duration>,
    /// In periodic mode, stop after this many rounds.
    pub rounds: Option<u64>,
    /// TCP connects in flight at most (each holds a file descriptor; see [`in_flight`]).
    pub max_in_flight: usize,
    /// The interface ARP and neighbour discovery probe through; none: the one whose
    /// connected prefix holds the targets.
    pub interface: Option<String>,
    /// The least time a round waits for late answers after its last probe (at most
    /// `timeout`): [`rtt::INITIAL_TIMEOUT`] for a sweep, longer where a missed host costs
    /// more (a scan's host discovery: a host found down is not scanned).
    pub patience: Duration,
}

/// Descriptors kept free for everything else the process does.
const SPARE_FDS: u64 = 64;
/// The most TCP connects in flight at once, whatever the open-files limit.
pub const MAX_IN_FLIGHT: usize = 16_384;

/// How many TCP connects may be in flight under an open-files limit of `nofile` (as
/// [`crate::sys::raise_nofile`] returns it): the limit less some spare descriptors, at most
/// [`MAX_IN_FLIGHT`].
pub fn in_flight(nofile: u64) -> usize {
    let room = usize::try_from(nofile.saturating_sub(SPARE_FDS)).unwrap_or(usize::MAX);
    room.clamp(1, MAX_IN_FLIGHT)
}

/// A sweep of a target list, ready to run.
#[derive(Debug)]
pub struct Sweep {
    targets: Targets,
    total: u64,
    config: Config,
    probers: Probers,
    previous: Option<Bitset>,
    round: u64,
    learned: round::Learned,
    metrics: Option<Arc<Metrics>>,
    zones: zone::Zones,
}

impl Sweep {
    /// Prepares a sweep: checks the size of the target list and opens the prober's sockets
    /// (an environment error when refused).
    pub fn new(targets: Targets, config: Config) -> Result<Self, Error> {
        let total = count(&targets)?;
        let probers = Probers::open(&config, &targets)?;
        Ok(Sweep::assemble(targets, total, config, probers))
    }

    fn assemble(targets: Targets, total: u64, config: Config, probers: Probers) -> Self {
        let learned = round::Learned {
            rtt: rtt::Rtt::new(config.timeout).with_patience(config.patience),
            meter: loss::Meter::new(config.rate).eager(config.retries == 0),
        };
        let zones = zone::Zones::of(&targets);
        Sweep {
            targets,
            total,
            config,
            probers,
            previous: None,
            round: 0,
            learned,
            metrics: None,
            zones,
        }
    }

    /// How many targets each round probes.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The sweep's metrics, kept up to date from now on.
    pub fn metrics(&mut self) -> Arc<Metrics> {
        let targets = &self.targets;
        let metrics = self
            .metrics
            .get_or_insert_with(|| Arc::new(Metrics::new(targets.clone())));
        Arc::clone(metrics)
    }

    /// Runs every round (one, or `rounds` spaced `every` apart, or forever) and returns the
    /// summary of the last one.
    pub async fn run(&mut self, sink: &mut Sink<'_>) -> Result<SummaryRecord, Error> {
        self.run_until(sink, std::future::pending()).await
    }

    /// [`Sweep::run`] until `stop` completes (Ctrl-C): then the round under way ends at once
    /// with what it settled, and its summary says it was interrupted (`interrupted`, and the
    /// targets left `unsettled`, neither called alive nor inactive); between rounds, the last
    /// summary is returned as it was.
    pub async fn run_until(
        &mut self,
        sink: &mut Sink<'_>,
        stop: impl Future<Output = ()>,
    ) -> Result<SummaryRecord, Error> {
        let mut stop = std::pin::pin!(stop);
        let mut next = Instant::now();
        loop {
            let summary = self.round_until(sink, &mut stop).await?;
            let Some(every) = self.config.every else {
                return Ok(summary);
            };
            if summary.interrupted || self.config.rounds.is_some_and(|n| self.round >= n) {
                return Ok(summary);
            }
            next = (next + every).max(Instant::now());
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                () = &mut stop => return Ok(SummaryRecord { interrupted: true, ..summary }),
            }
        }
    }

    /// Runs one round and returns its summary.
    pub async fn round(&mut self, sink: &mut Sink<'_>) -> Result<SummaryRecord, Error> {
        self.round_until(sink, &mut std::pin::pin!(std::future::pending()))
            .await
    }

    /// Runs one round, ended early when `stop` completes; returns its summary.
    async fn round_until(
        &mut self,
        sink: &mut Sink<'_>,
        stop: &mut Pin<&mut impl Future<Output = ()>>,
    ) -> Result<SummaryRecord, Error> {
        self.round += 1;
        let spec = round::Round {
            number: self.round,
            targets: &self.targets,
            total: self.total,
            config: &self.config,
            previous: self.previous.as_ref(),
            keep_rtts: self.metrics.as_ref().is_some_and(|m| m.per_host()),
            zones: &self.zones,
        };
        let outcome = round::run(&spec, &mut self.learned, &mut self.probers, sink, stop).await?;
        if let Some(metrics) = &self.metrics {
            metrics.record(metrics::RoundFacts {
                summary: &outcome.summary,
                alive: &outcome.alive,
                rtts: outcome.rtts,
                changes: outcome.changes,
            });
        }
        self.previous = Some(outcome.alive);
        Ok(outcome.summary)
    }
}

fn count(targets: &Targets) -> Result<u64, Error> {
    let len = targets.len();
    match u64::try_from(len) {
        Ok(total) if total <= MAX_TARGETS => Ok(total),
        _ => Err(ParseError::new(
            format!("{len} targets"),
            "too many for one sweep; at most 2^28 addresses",
        )
        .into()),
    }
}

#[cfg(test)]
mod tests;
