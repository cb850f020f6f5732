//! The `udp:` rules in the Prometheus text: each rule's session-loop totals
//! ([`Counters`](crate::forward::udp::Counters), plain atomics the loop bumps), by rule and its
//! targets, then each target's state and share of the sessions (`udp_target_*`). A rule keeps its counters across reloads while its listen address stays (a
//! changed rule's draining loop and its successor count into the same ones).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{escape, family};
use crate::forward::udp::{Counters, TargetCounters};
use crate::report::forward::DropReason;

/// One `udp:` rule's counters and labels.
#[derive(Debug)]
pub(super) struct UdpRule {
    /// Its bound listen address (`udp:127.0.0.1:5353`).
    pub rule: String,
    /// Its target as configured.
    pub target: String,
    /// The session loop's totals.
    pub counters: Arc<Counters>,
}

type Value = fn(&Counters) -> &AtomicU64;

/// The families with `rule` and `target` labels: name, type, help, value.
const FAMILIES: [(&str, &str, &str, Value); 4] = [
    (
        "udp_sessions_total",
        "counter",
        "UDP sessions opened (one per client address).",
        |c| &c.sessions_total,
    ),
    (
        "udp_sessions_active",
        "gauge",
        "UDP sessions open now.",
        |c| &c.sessions_active,
    ),
    (
        "udp_refused_total",
        "counter",
        "ICMP port unreachable answers from the target.",
        |c| &c.refused,
    ),
    (
        "udp_send_failures_total",
        "counter",
        "Datagrams of open sessions that could not be sent on.",
        |c| &c.send_failed,
    ),
];

/// The families of every `udp:` rule.
pub(super) fn render(out: &mut String, rules: &[Arc<UdpRule>]) {
    let labels = |r: &UdpRule| {
        format!(
            "rule=\"{}\",target=\"{}\"",
            escape(&r.rule),
            escape(&r.target)
        )
    };
    for (name, kind, help, value) in FAMILIES {
        family(out, name, kind, help);
        for r in rules {
            let count = value(&r.counters).load(Ordering::Relaxed);
            let _ = writeln!(out, "netkit_forward_{name}{{{}}} {count}", labels(r));
        }
    }
    type Pair = fn(&Counters) -> (&AtomicU64, &AtomicU64);
    let directed: [(&str, &str, Pair); 2] = [
        (
            "udp_datagrams_total",
            "Datagrams relayed, up (client to target) and down.",
            |c| (&c.datagrams_up, &c.datagrams_down),
        ),
        (
            "udp_bytes_total",
            "Payload bytes relayed, up and down.",
            |c| (&c.bytes_up, &c.bytes_down),
        ),
    ];
    for (name, help, pair) in directed {
        family(out, name, "counter", help);
        for r in rules {
            let (up, down) = pair(&r.counters);
            for (direction, count) in [("up", up), ("down", down)] {
                let (labels, count) = (labels(r), count.load(Ordering::Relaxed));
                let _ = writeln!(
                    out,
                    "netkit_forward_{name}{{{labels},direction=\"{direction}\"}} {count}"
                );
            }
        }
    }
    render_drops(out, rules);
    render_targets(out, rules);
}

type TargetValue = fn(&TargetCounters) -> u64;

/// The per-target families: name, type, help, value.
const TARGET_FAMILIES: [(&str, &str, &str, TargetValue); 4] = [
    (
        "udp_target_up",
        "gauge",
        "Whether new sessions may go to the target (0 for a while after it refused).",
        |t| u64::from(t.up.load(Ordering::Relaxed)),
    ),
    (
        "udp_target_sessions_total",
        "counter",
        "Sessions sent to the target (opened there or moved there from a refusing one).",
        |t| t.sessions_total.load(Ordering::Relaxed),
    ),
    (
        "udp_target_sessions_active",
        "gauge",
        "Sessions sending to the target now.",
        |t| t.sessions_active.load(Ordering::Relaxed),
    ),
    (
        "udp_target_refused_total",
        "counter",
        "ICMP port unreachable answers from the target.",
        |t| t.refused.load(Ordering::Relaxed),
    ),
];

fn render_targets(out: &mut String, rules: &[Arc<UdpRule>]) {
    let targets: Vec<(String, Arc<TargetCounters>)> = rules
        .iter()
        .flat_map(|r| {
            let rule = escape(&r.rule);
            r.counters
                .targets()
                .into_iter()
                .map(move |t| (rule.clone(), t))
        })
        .collect();
    for (name, kind, help, value) in TARGET_FAMILIES {
        family(out, name, kind, help);
        for (rule, target) in &targets {
            let (label, count) = (escape(&target.target), value(target));
            let _ = writeln!(
                out,
                "netkit_forward_{name}{{rule=\"{rule}\",target=\"{label}\"}} {count}"
            );
        }
    }
}

fn render_drops(out: &mut String, rules: &[Arc<UdpRule>]) {
    family(
        out,
        "udp_dropped_total",
        "counter",
        "Datagrams no session took, by reason (the reason field of the drop record).",
    );
    let reasons = [
        ("session-limit", DropReason::SessionLimit),
        ("denied", DropReason::Denied),
        ("draining", DropReason::Draining),
        ("socket-error", DropReason::SocketError),
    ];
    for r in rules {
        for (name, reason) in reasons {
            let count = r.counters.dropped(reason).load(Ordering::Relaxed);
            let rule = escape(&r.rule);
            let _ = writeln!(
                out,
                "netkit_forward_udp_dropped_total{{rule=\"{rule}\",reason=\"{name}\"}} {count}"
            );
        }
    }
}
