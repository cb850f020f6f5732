//! The forwarder's counters, by rule and by target, and their Prometheus text (`--metrics`;
//! the names are listed in docs/forward-metrics.md). A rule is labelled by its bound listen
//! address (`rule="127.0.0.1:8080"`), a target by its endpoint as configured
//! (`target="app.internal:80"`).
//!
//! The [`Registry`] outlives reloads: a rule or target that stays keeps its counters, one that
//! is removed is no longer shown (its connections still count into their own handles until they
//! end). Counters are plain atomics that any relay can bump: a datagram rule registers itself
//! with [`Registry::rule`] and [`RuleMetrics::target`] like a stream rule, and counts a
//! session as a connection.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

mod udp;

use udp::UdpRule;

/// Every rule's counters, and the reloads.
#[derive(Debug, Default)]
pub struct Registry {
    rules: Mutex<Vec<Arc<RuleMetrics>>>,
    udp: Mutex<Vec<Arc<UdpRule>>>,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
}

/// The counters of one rule.
#[derive(Debug)]
pub struct RuleMetrics {
    /// The rule's label: its bound listen address.
    pub rule: String,
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Connections open now.
    pub active: AtomicU64,
    closed: Tally,
    targets: Mutex<Vec<Arc<TargetMetrics>>>,
}

/// The counters of one target of a rule.
#[derive(Debug)]
pub struct TargetMetrics {
    /// The target's label: its endpoint as configured.
    pub target: String,
    /// Connections relayed to it (connected).
    pub connections: AtomicU64,
    /// Connections to it open now.
    pub active: AtomicU64,
    /// Bytes delivered to it, counted as each connection ends.
    pub bytes_up: AtomicU64,
    /// Bytes delivered from it to clients, counted as each connection ends.
    pub bytes_down: AtomicU64,
    /// Connects to it that failed.
    pub connect_failures: AtomicU64,
    /// Whether it is up (taking connections).
    pub up: AtomicBool,
    /// Active checks passed.
    pub checks_passed: AtomicU64,
    /// Active checks failed.
    pub checks_failed: AtomicU64,
    relay: Tally,
}

/// Counts by name (relay paths, ways of closing): few names, bumped once per connection.
#[derive(Debug, Default)]
struct Tally(Mutex<Vec<(String, u64)>>);

impl Tally {
    fn add(&self, name: &str) {
        let mut counts = lock(&self.0);
        match counts.iter_mut().find(|(n, _)| n == name) {
            Some((_, count)) => *count += 1,
            None => counts.push((name.to_string(), 1)),
        }
    }

    fn get(&self) -> Vec<(String, u64)> {
        lock(&self.0).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Keeps a gauge of open connections raised while it lives.
#[derive(Debug)]
pub struct Open<'a>(&'a AtomicU64);

impl<'a> Open<'a> {
    /// Counts one more open connection on `gauge` until dropped.
    pub fn on(gauge: &'a AtomicU64) -> Open<'a> {
        gauge.fetch_add(1, Ordering::Relaxed);
        Open(gauge)
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Registry {
    /// The counters of the rule labelled `rule`, created on first use.
    pub fn rule(&self, rule: &str) -> Arc<RuleMetrics> {
        let mut rules = lock(&self.rules);
        if let Some(found) = rules.iter().find(|r| r.rule == rule) {
            return Arc::clone(found);
        }
        let made = Arc::new(RuleMetrics {
            rule: rule.to_string(),
            accepted: AtomicU64::new(0),
            active: AtomicU64::new(0),
            closed: Tally::default(),
            targets: Mutex::new(Vec::new()),
        });
        rules.push(Arc::clone(&made));
        made
    }

    /// Forgets the rules not labelled in `keep` (removed by a reload).
    pub fn retain(&self, keep: &[String]) {
        lock(&self.rules).retain(|r| keep.contains(&r.rule));
    }

    /// The counters of the `udp:` rule labelled `rule`, relaying to `target` (kept while the
    /// label stays, the target label following the rule in force), created on first use.
    pub fn udp_rule(&self, rule: &str, target: &str) -> Arc<crate::forward::udp::Counters> {
        let mut rules = lock(&self.udp);
        let counters = match rules.iter().position(|r| r.rule == rule) {
            Some(i) => Arc::clone(&rules.swap_remove(i).counters),
            None => Arc::default(),
        };
        rules.push(Arc::new(UdpRule {
            rule: rule.to_string(),
            target: target.to_string(),
            counters: Arc::clone(&counters),
        }));
        counters
    }

    /// Forgets the `udp:` rules not labelled in `keep` (removed by a reload).
    pub fn retain_udp(&self, keep: &[String]) {
        lock(&self.udp).retain(|r| keep.contains(&r.rule));
    }

    /// Counts a reload of the rules file, applied or refused.
    pub fn reloaded(&self, ok: bool) {
        let counter = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Everything, as Prometheus text (exposition format 0.0.4).
    pub fn render(&self) -> String {
        let rules = lock(&self.rules).clone();
        let mut out = String::new();
        render_rules(&mut out, &rules);
        let targets: Vec<(String, Arc<TargetMetrics>)> = rules
            .iter()
            .flat_map(|r| {
                let rule = r.rule.clone();
                r.targets().into_iter().map(move |t| (rule.clone(), t))
            })
            .collect();
        render_targets(&mut out, &targets);
        let mut udp_rules = lock(&self.udp).clone();
        udp_rules.sort_by(|a, b| a.rule.cmp(&b.rule));
        udp::render(&mut out, &udp_rules);
        family(
            &mut out,
            "reloads_total",
            "counter",
            "Reloads of --config (SIGHUP), by result.",
        );
        for (result, count) in [("ok", &self.reloads_ok), ("failed", &self.reloads_failed)] {
            let value = count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "netkit_forward_reloads_total{{result=\"{result}\"}} {value}"
            );
        }
        out
    }
}

impl crate::prometheus::Render for Registry {
    fn render(&self) -> String {
        Registry::render(self)
    }
}

impl RuleMetrics {
    /// The counters of the target labelled `target`, created on first use.
    pub fn target(&self, target: &str) -> Arc<TargetMetrics> {
        let mut targets = lock(&self.targets);
        if let Some(found) = targets.iter().find(|t| t.target == target) {
            return Arc::clone(found);
        }
        let made = Arc::new(TargetMetrics::new(target));
        targets.push(Arc::clone(&made));
        made
    }

    /// Forgets the targets not labelled in `keep`.
    pub fn retain_targets(&self, keep: &[String]) {
        lock(&self.targets).retain(|t| keep.contains(&t.target));
    }

    /// Counts a connection that ended, by how (`done`, `denied`, `connect-failed`, ...).
    pub fn closed(&self, how: &str) {
        self.closed.add(how);
    }

    fn targets(&self) -> Vec<Arc<TargetMetrics>> {
        lock(&self.targets).clone()
    }
}

impl TargetMetrics {
    fn new(target: &str) -> TargetMetrics {
        TargetMetrics {
            target: target.to_string(),
            connections: AtomicU64::new(0),
            active: AtomicU64::new(0),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            up: AtomicBool::new(true),
            checks_passed: AtomicU64::new(0),
            checks_failed: AtomicU64::new(0),
            relay: Tally::default(),
        }
    }

    /// Counts a finished connection's bytes and relay path (`splice`, `copy`, ...; empty when
    /// nothing was relayed).
    pub fn finished(&self, bytes_up: u64, bytes_down: u64, path: &str) {
        self.bytes_up.fetch_add(bytes_up, Ordering::Relaxed);
        self.bytes_down.fetch_add(bytes_down, Ordering::Relaxed);
        if !path.is_empty() {
            self.relay.add(path);
        }
    }
}

/// `# HELP` and `# TYPE` of `netkit_forward_NAME`.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP netkit_forward_{name} {help}");
    let _ = writeln!(out, "# TYPE netkit_forward_{name} {kind}");
}

fn render_rules(out: &mut String, rules: &[Arc<RuleMetrics>]) {
    type RuleValue = fn(&RuleMetrics) -> u64;
    let gauges: [(&str, &str, &str, RuleValue); 2] = [
        (
            "rule_connections_total",
            "counter",
            "Connections accepted.",
            |r| r.accepted.load(Ordering::Relaxed),
        ),
        (
            "rule_connections_active",
            "gauge",
            "Connections open now.",
            |r| r.active.load(Ordering::Relaxed),
        ),
    ];
    for (name, kind, help, value) in gauges {
        family(out, name, kind, help);
        for rule in rules {
            let labels = format!("rule=\"{}\"", escape(&rule.rule));
            let _ = writeln!(out, "netkit_forward_{name}{{{labels}}} {}", value(rule));
        }
    }
    family(
        out,
        "rule_closed_total",
        "counter",
        "Connections ended, by how (the close field of the conn record).",
    );
    for rule in rules {
        for (close, count) in rule.closed.get() {
            let (rule, close) = (escape(&rule.rule), escape(&close));
            let _ = writeln!(
                out,
                "netkit_forward_rule_closed_total{{rule=\"{rule}\",close=\"{close}\"}} {count}"
            );
        }
    }
}

type TargetValue = fn(&TargetMetrics) -> u64;

/// The per-target families: name, type, help, value.
const TARGET_FAMILIES: [(&str, &str, &str, TargetValue); 6] = [
    (
        "connections_total",
        "counter",
        "Connections relayed to the target.",
        |t| t.connections.load(Ordering::Relaxed),
    ),
    (
        "connections_active",
        "gauge",
        "Connections to the target open now.",
        |t| t.active.load(Ordering::Relaxed),
    ),
    (
        "connect_failures_total",
        "counter",
        "Connects to the target that failed.",
        |t| t.connect_failures.load(Ordering::Relaxed),
    ),
    (
        "target_up",
        "gauge",
        "1 when the target takes connections, 0 when it is down.",
        |t| u64::from(t.up.load(Ordering::Relaxed)),
    ),
    (
        "checks_passed_total",
        "counter",
        "Active health checks passed.",
        |t| t.checks_passed.load(Ordering::Relaxed),
    ),
    (
        "checks_failed_total",
        "counter",
        "Active health checks failed.",
        |t| t.checks_failed.load(Ordering::Relaxed),
    ),
];

fn render_targets(out: &mut String, targets: &[(String, Arc<TargetMetrics>)]) {
    let labels = |rule: &str, t: &TargetMetrics| {
        format!("rule=\"{}\",target=\"{}\"", escape(rule), escape(&t.target))
    };
    for (name, kind, help, value) in TARGET_FAMILIES {
        family(out, name, kind, help);
        for (rule, t) in targets {
            let _ = writeln!(
                out,
                "netkit_forward_{name}{{{}}} {}",
                labels(rule, t),
                value(t)
            );
        }
    }
    family(
        out,
        "bytes_total",
        "counter",
        "Bytes relayed, up (client to target) and down, counted as connections end.",
    );
    for (rule, t) in targets {
        for (direction, count) in [("up", &t.bytes_up), ("down", &t.bytes_down)] {
            let value = count.load(Ordering::Relaxed);
            let labels = labels(rule, t);
            let _ = writeln!(
                out,
                "netkit_forward_bytes_total{{{labels},direction=\"{direction}\"}} {value}"
            );
        }
    }
    family(
        out,
        "relay_total",
        "counter",
        "Connections by relay path: splice (zero-copy), copy, copy+splice.",
    );
    for (rule, t) in targets {
        for (path, count) in t.relay.get() {
            let (labels, path) = (labels(rule, t), escape(&path));
            let _ = writeln!(
                out,
                "netkit_forward_relay_total{{{labels},path=\"{path}\"}} {count}"
            );
        }
    }
}

/// A label value as the exposition format wants it: `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rules_targets_and_escapes_labels() {
        let registry = Registry::default();
        let rule = registry.rule("127.0.0.1:8080");
        assert!(Arc::ptr_eq(&rule, &registry.rule("127.0.0.1:8080")));
        rule.accepted.fetch_add(3, Ordering::Relaxed);
        rule.closed("done");
        rule.closed("done");
        rule.closed("connect-failed");
        let target = rule.target("unix:/run/a\"b.sock");
        target.connections.fetch_add(2, Ordering::Relaxed);
        target.finished(10, 20, "splice");
        target.finished(1, 2, "splice");
        {
            let _open = Open::on(&target.active);
            let text = registry.render();
            assert!(text.contains(
                "netkit_forward_connections_active{rule=\"127.0.0.1:8080\",target=\"unix:/run/a\\\"b.sock\"} 1\n"
            ), "{text}");
        }
        let text = registry.render();
        for line in [
            "# TYPE netkit_forward_rule_connections_total counter",
            "netkit_forward_rule_connections_total{rule=\"127.0.0.1:8080\"} 3",
            "netkit_forward_rule_closed_total{rule=\"127.0.0.1:8080\",close=\"done\"} 2",
            "netkit_forward_rule_closed_total{rule=\"127.0.0.1:8080\",close=\"connect-failed\"} 1",
            "netkit_forward_connections_active{rule=\"127.0.0.1:8080\",target=\"unix:/run/a\\\"b.sock\"} 0",
            "netkit_forward_bytes_total{rule=\"127.0.0.1:8080\",target=\"unix:/run/a\\\"b.sock\",direction=\"down\"} 22",
            "netkit_forward_relay_total{rule=\"127.0.0.1:8080\",target=\"unix:/run/a\\\"b.sock\",path=\"splice\"} 2",
            "netkit_forward_target_up{rule=\"127.0.0.1:8080\",target=\"unix:/run/a\\\"b.sock\"} 1",
            "netkit_forward_reloads_total{result=\"ok\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
    }

    #[test]
    fn removed_rules_and_targets_are_no_longer_shown() {
        let registry = Registry::default();
        let kept = registry.rule("a");
        kept.target("t1");
        kept.target("t2");
        registry.rule("b");
        registry.retain(&["a".to_string()]);
        kept.retain_targets(&["t2".to_string()]);
        let text = registry.render();
        assert!(!text.contains("rule=\"b\""), "{text}");
        assert!(!text.contains("target=\"t1\""), "{text}");
        assert!(text.contains("target=\"t2\""), "{text}");
    }
}
