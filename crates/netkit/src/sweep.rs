//! Host discovery: which targets of a list answer, once or every N seconds.
//!
//! A [`Sweep`] walks its [`Targets`] lazily; its per-target state is a bit per target
//! ([`bitset`]), so a million addresses cost kilobytes. Probes go out paced by the rate
//! ([`pace`]) through a [`Prober`] ([`probe`]: ICMP echo or TCP connect, [`tcp`]); answers come
//! back tagged with the target's position and are reported as [`Event`]s as they arrive
//! ([`record`]). A round (module `round`) ends as soon as every target answered, or one timeout
//! after the last probe. In periodic mode each round is compared with the one before and the
//! changes are reported; [`metrics`] keeps Prometheus metrics that [`http`] serves.

pub mod bitset;
pub mod http;
pub mod icmp;
pub mod metrics;
pub mod pace;
pub mod probe;
pub mod record;
mod round;
#[cfg(test)]
mod scripted;
pub mod tcp;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio::time::Instant;

use crate::error::{Error, ParseError};
use crate::target::Targets;

pub use bitset::Bitset;
pub use metrics::Metrics;
pub use probe::{Method, Prober, Reply};
pub use record::{ChangeRecord, Event, HostRecord, Progress, SummaryRecord};

/// Probes per second when no rate is given.
pub const DEFAULT_RATE: u64 = 10_000;
/// The most targets one sweep takes (its bitsets then use 32 MiB each).
pub const MAX_TARGETS: u64 = 1 << 28;

/// Where a sweep sends its events; an error (such as a closed stdout) ends the sweep.
pub type Sink<'a> = dyn FnMut(Event) -> std::io::Result<()> + 'a;

/// How to sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// ICMP echo or TCP connect.
    pub method: Method,
    /// How long to wait for answers after the last probe.
    pub timeout: Duration,
    /// Probes sent again to targets still silent.
    pub retries: u32,
    /// Probes per second at most.
    pub rate: u64,
    /// Start a round every this long (periodic mode).
    pub every: Option<Duration>,
    /// In periodic mode, stop after this many rounds.
    pub rounds: Option<u64>,
}

/// A sweep of a target list, ready to run.
#[derive(Debug)]
pub struct Sweep {
    targets: Targets,
    total: u64,
    config: Config,
    prober: Prober,
    replies: UnboundedReceiver<Reply>,
    previous: Option<Bitset>,
    round: u64,
    metrics: Option<Arc<Metrics>>,
}

impl Sweep {
    /// Prepares a sweep: checks the size of the target list and opens the prober's sockets
    /// (an environment error when refused).
    pub fn new(targets: Targets, config: Config) -> Result<Self, Error> {
        let total = count(&targets)?;
        let (tx, replies) = mpsc::unbounded_channel();
        let prober = Prober::open(config.method, config.timeout, &targets, tx)?;
        Ok(Sweep::assemble(targets, total, config, prober, replies))
    }

    fn assemble(
        targets: Targets,
        total: u64,
        config: Config,
        prober: Prober,
        replies: UnboundedReceiver<Reply>,
    ) -> Self {
        Sweep {
            targets,
            total,
            config,
            prober,
            replies,
            previous: None,
            round: 0,
            metrics: None,
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
        let mut next = Instant::now();
        loop {
            let summary = self.round(sink).await?;
            let Some(every) = self.config.every else {
                return Ok(summary);
            };
            if self.config.rounds.is_some_and(|n| self.round >= n) {
                return Ok(summary);
            }
            next = (next + every).max(Instant::now());
            tokio::time::sleep_until(next).await;
        }
    }

    /// Runs one round and returns its summary.
    pub async fn round(&mut self, sink: &mut Sink<'_>) -> Result<SummaryRecord, Error> {
        self.round += 1;
        let spec = round::Round {
            number: self.round,
            targets: &self.targets,
            total: self.total,
            config: &self.config,
            previous: self.previous.as_ref(),
            keep_rtts: self.metrics.as_ref().is_some_and(|m| m.per_host()),
        };
        let outcome = round::run(&spec, &mut self.prober, &mut self.replies, sink).await?;
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
