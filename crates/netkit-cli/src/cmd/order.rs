//! `--shard K/N`, `--seed N` and `--randomize`, shared by `scan` and `sweep` (issue 16): which
//! share of the targets this run probes and in which order (`netkit::shard`).

use std::time::{SystemTime, UNIX_EPOCH};

use netkit::ports::PortSet;
use netkit::shard::{self, Arrangement};
use netkit::{ParseError, Targets};

/// The ordering flags.
#[derive(Debug, Clone, clap::Args)]
pub struct OrderArgs {
    /// Probe only shard K of N (1 <= K <= N): N runs with the same targets, the same N and
    /// the same --seed (if any) probe disjoint shares whose union is every target, each share
    /// spread over the whole range. scan splits the targets, or its ports when there are
    /// fewer targets than shards. `job/N`: K is
    /// $JOB_COMPLETION_INDEX + 1 (a Kubernetes Indexed Job's pod index, counted from 0).
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<(u64, u64)>,
    /// Shuffle the targets with this seed (implies --randomize); the same seed gives the same
    /// order everywhere, as the shards of one scan need.
    #[arg(long, value_name = "N", value_parser = parse_seed)]
    pub seed: Option<u64>,
    /// Probe the targets in a pseudo-random order (as nmap does) instead of as given.
    #[arg(long)]
    pub randomize: bool,
}

impl OrderArgs {
    /// The arrangement these flags ask for; shuffled shards without a seed would each pick
    /// their own order and overlap, so that is refused.
    pub fn arrangement(&self) -> Result<Arrangement, ParseError> {
        let shuffle = self.randomize || self.seed.is_some();
        if let (Some((k, n)), true, None) = (self.shard, shuffle, self.seed) {
            let why = "shuffled shards need the same --seed in every shard (else they overlap)";
            return Err(ParseError::new(format!("--shard {k}/{n} --randomize"), why));
        }
        Ok(Arrangement {
            shard: self.shard,
            seed: self.seed.unwrap_or_else(clock_seed),
            shuffle,
        })
    }

    /// `targets` arranged as asked.
    pub fn apply(&self, targets: Targets) -> Result<Targets, ParseError> {
        Ok(targets.arranged(&self.arrangement()?))
    }

    /// A scan's `targets` and `ports` arranged as asked: the shards split the targets, or,
    /// when there are fewer targets than shards, the ports (every shard scans every target
    /// on its share of the ports, so that no shard is left without work). Either way the
    /// shards' (target, port) pairs are disjoint and together the whole scan.
    pub fn apply_scan(
        &self,
        targets: Targets,
        ports: PortSet,
    ) -> Result<(Targets, PortSet), ParseError> {
        let arrangement = self.arrangement()?;
        match arrangement.shard {
            Some((_, n)) if targets.len() < u128::from(n) => {
                let whole = Arrangement {
                    shard: None,
                    ..arrangement
                };
                Ok((targets.arranged(&whole), ports.arranged(&arrangement)))
            }
            _ => Ok((targets.arranged(&arrangement), ports)),
        }
    }
}

/// The environment variable a Kubernetes Indexed Job sets to the pod's index (0-based).
const JOB_INDEX: &str = "JOB_COMPLETION_INDEX";

/// `--shard K/N`, or `job/N` with K taken from [`JOB_INDEX`] (+1).
fn parse_shard(text: &str) -> Result<(u64, u64), ParseError> {
    let Some(n) = text.strip_prefix("job/") else {
        return shard::parse_shard(text);
    };
    let index = std::env::var(JOB_INDEX).unwrap_or_default();
    match index.trim().parse::<u64>() {
        Ok(index) => shard::parse_shard(&format!("{}/{n}", index.saturating_add(1)))
            .map_err(|e| ParseError::new(text, format!("{JOB_INDEX}={index}: {e}"))),
        Err(_) => {
            let why = format!("job/N takes K from {JOB_INDEX} (a Kubernetes Indexed Job sets it), which is {index:?}");
            Err(ParseError::new(text, why))
        }
    }
}

/// `--seed N`: any whole number a u64 holds.
fn parse_seed(text: &str) -> Result<u64, netkit::ParseError> {
    crate::parse::number_in(text, 0, u64::MAX, "seed")
}

/// A seed for `--randomize` alone: the clock's nanoseconds (a fresh order each run).
fn clock_seed() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    now.as_secs() ^ u64::from(now.subsec_nanos()).rotate_left(32)
}
