//! Prometheus metrics of a periodic sweep, in the text exposition format: round counters,
//! alive/dead gauges, and per-host `up` and round-trip gauges. Per-host series exist only for
//! sweeps of at most [`PER_HOST_LIMIT`] targets, so a large range cannot flood a scraper;
//! `netkit_sweep_per_host_series` says whether they are there.

use std::fmt::Write;
use std::sync::{Mutex, MutexGuard};

use super::bitset::Bitset;
use crate::report::sweep::SummaryRecord;
use crate::target::Targets;

/// The most targets that get per-host series.
pub const PER_HOST_LIMIT: u64 = 4096;

/// The metrics of one sweep, updated at the end of every round.
#[derive(Debug)]
pub struct Metrics {
    targets: Targets,
    total: u64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    rounds: u64,
    came_up: u64,
    went_down: u64,
    last: Option<Last>,
}

#[derive(Debug)]
struct Last {
    summary: SummaryRecord,
    alive: Option<Bitset>,
    rtts: Option<Vec<f32>>,
}

/// A completed round as the metrics see it.
#[derive(Debug)]
pub(super) struct RoundFacts<'a> {
    pub summary: &'a SummaryRecord,
    pub alive: &'a Bitset,
    pub rtts: Option<Vec<f32>>,
    pub changes: (u64, u64),
}

impl Metrics {
    /// Metrics for a sweep of `targets`.
    pub fn new(targets: Targets) -> Self {
        let total = u64::try_from(targets.len()).unwrap_or(u64::MAX);
        Metrics {
            targets,
            total,
            state: Mutex::new(State::default()),
        }
    }

    /// Whether the targets are few enough for per-host series.
    pub fn per_host(&self) -> bool {
        self.total <= PER_HOST_LIMIT
    }

    /// Takes in a completed round.
    pub(super) fn record(&self, facts: RoundFacts<'_>) {
        let per_host = self.per_host();
        let mut state = self.lock();
        state.rounds += 1;
        state.came_up += facts.changes.0;
        state.went_down += facts.changes.1;
        state.last = Some(Last {
            summary: facts.summary.clone(),
            alive: per_host.then(|| facts.alive.clone()),
            rtts: facts.rtts.filter(|_| per_host),
        });
    }

    /// The metrics in Prometheus text format.
    pub fn render(&self) -> String {
        let state = self.lock();
        let mut out = String::new();
        let last = state.last.as_ref();
        let summary = last.map(|l| &l.summary);
        counter(
            &mut out,
            "rounds_total",
            "Sweep rounds completed.",
            state.rounds,
        );
        gauge(&mut out, "targets", "Targets in every round.", self.total);
        let alive = summary.map_or(0, |s| s.alive);
        let dead = summary.map_or(0, |s| s.dead);
        gauge(
            &mut out,
            "alive",
            "Targets that answered in the last round.",
            alive,
        );
        gauge(&mut out, "dead", "Targets silent in the last round.", dead);
        let secs = summary.map_or(0.0, |s| s.elapsed_s);
        gauge(
            &mut out,
            "round_duration_seconds",
            "Duration of the last round.",
            secs,
        );
        changes(&mut out, state.came_up, state.went_down);
        let per_host = u8::from(self.per_host());
        let help = "1 when per-host series are exported (at most 4096 targets), else 0.";
        gauge(&mut out, "per_host_series", help, per_host);
        if let Some(last) = last {
            self.hosts(&mut out, last);
        }
        out
    }

    fn hosts(&self, out: &mut String, last: &Last) {
        let Some(alive) = &last.alive else { return };
        header(
            out,
            "up",
            "gauge",
            "1 when the host answered in the last round, else 0.",
        );
        for (index, target) in (0u64..).zip(self.targets.iter()) {
            let up = u8::from(alive.get(index));
            let _ = writeln!(out, "netkit_sweep_up{{addr=\"{}\"}} {up}", target.addr);
        }
        let Some(rtts) = &last.rtts else { return };
        let help = "Round-trip time of the host's first answer in the last round.";
        header(out, "rtt_seconds", "gauge", help);
        for (rtt, target) in rtts.iter().zip(self.targets.iter()) {
            if !rtt.is_nan() {
                let addr = target.addr;
                let _ = writeln!(out, "netkit_sweep_rtt_seconds{{addr=\"{addr}\"}} {rtt}");
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP netkit_sweep_{name} {help}");
    let _ = writeln!(out, "# TYPE netkit_sweep_{name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    header(out, name, "gauge", help);
    let _ = writeln!(out, "netkit_sweep_{name} {value}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, "counter", help);
    let _ = writeln!(out, "netkit_sweep_{name} {value}");
}

fn changes(out: &mut String, up: u64, down: u64) {
    let help = "Hosts seen coming up or going down between rounds.";
    header(out, "changes_total", "counter", help);
    let _ = writeln!(out, "netkit_sweep_changes_total{{direction=\"up\"}} {up}");
    let _ = writeln!(
        out,
        "netkit_sweep_changes_total{{direction=\"down\"}} {down}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{Family, TargetList};

    fn metrics(targets: &str) -> Metrics {
        let list = TargetList::parse(&[targets], true).expect("targets");
        Metrics::new(list.resolve(Family::Any).expect("resolve"))
    }

    fn round(metrics: &Metrics, alive: &[u64], rtts: Option<Vec<f32>>, changes: (u64, u64)) {
        let mut bits = Bitset::new(metrics.total);
        for i in alive {
            bits.set(*i);
        }
        let summary = SummaryRecord {
            round: 1,
            alive: bits.count(),
            dead: metrics.total - bits.count(),
            elapsed_s: 0.5,
            ..SummaryRecord::default()
        };
        let facts = RoundFacts {
            summary: &summary,
            alive: &bits,
            rtts,
            changes,
        };
        metrics.record(facts);
    }

    #[test]
    fn before_the_first_round_only_zeroes() {
        let text = metrics("198.18.0.0/30").render();
        assert!(text.contains("netkit_sweep_rounds_total 0\n"), "{text}");
        assert!(text.contains("netkit_sweep_targets 4\n"), "{text}");
        assert!(!text.contains("netkit_sweep_up{"), "{text}");
    }

    #[test]
    fn per_host_series_for_small_sweeps() {
        let m = metrics("198.18.0.0/30");
        round(
            &m,
            &[1, 3],
            Some(vec![f32::NAN, 0.25, f32::NAN, 0.5]),
            (2, 1),
        );
        let text = m.render();
        for line in [
            "netkit_sweep_rounds_total 1",
            "netkit_sweep_alive 2",
            "netkit_sweep_dead 2",
            "netkit_sweep_up{addr=\"198.18.0.0\"} 0",
            "netkit_sweep_up{addr=\"198.18.0.1\"} 1",
            "netkit_sweep_rtt_seconds{addr=\"198.18.0.3\"} 0.5",
            "netkit_sweep_changes_total{direction=\"up\"} 2",
            "netkit_sweep_changes_total{direction=\"down\"} 1",
            "netkit_sweep_per_host_series 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
        assert!(!text.contains("rtt_seconds{addr=\"198.18.0.0\"}"), "{text}");
    }

    #[test]
    fn no_per_host_series_for_large_sweeps() {
        let m = metrics("198.18.0.0/16");
        round(&m, &[1, 3], None, (0, 0));
        let text = m.render();
        assert!(text.contains("netkit_sweep_alive 2\n"), "{text}");
        assert!(text.contains("netkit_sweep_per_host_series 0\n"), "{text}");
        assert!(!text.contains("netkit_sweep_up{"), "{text}");
        assert!(text.len() < 4096, "{} bytes", text.len());
    }
}
