//! A rule as the forwarder runs it: its targets (with their health and counters), its turn
//! counter for round-robin, its active checks, and the connect of each client: targets tried in
//! the balance's order, the next one when a connect fails, then `--retries` more attempts
//! (`attempts`; nothing has been relayed yet, so the client sees nothing of it), each failure
//! and recovery counted into the target's health (but for a failure of this machine: short of
//! descriptors or memory, when the client waits for some to be freed instead).

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::task::JoinSet;

use super::attempts::Attempts;
use super::balance::{self, View};
use super::event::Events;
use super::metrics::{Registry, RuleMetrics};
use super::target::Target;
use super::{check, Rule};
use crate::descriptor_wait::DescriptorWait;
use crate::endpoint::happy_eyeballs::HandshakeAck;
use crate::endpoint::Stream;
use crate::error::Error;
use crate::sys::Shortage;

/// A rule being served.
#[derive(Debug)]
pub(super) struct Backend {
    /// The rule.
    pub rule: Arc<Rule>,
    /// Its label in counters and records: the bound listen address.
    pub label: String,
    /// Its counters.
    pub metrics: Arc<RuleMetrics>,
    /// Its targets, in the rule's order.
    pub targets: Vec<Arc<Target>>,
    turn: AtomicUsize,
    checks: Mutex<Option<JoinSet<()>>>,
}

/// Why no target could be reached: each failure, in the order tried.
#[derive(Debug)]
pub(super) struct Unreachable(pub Vec<Error>);

impl Backend {
    /// The rule labelled `label`, counting into `registry`, reporting to `events`. The targets
    /// of `before` (the same listen address before a reload) that the rule still has are
    /// taken over with their health.
    pub fn new(
        rule: Arc<Rule>,
        label: &str,
        registry: &Registry,
        events: &Events,
        before: Option<&Backend>,
    ) -> Backend {
        let metrics = registry.rule(label);
        let targets: Vec<Arc<Target>> = rule
            .targets
            .iter()
            .map(|endpoint| {
                let key = endpoint.to_string();
                let kept = before.and_then(|b| b.targets.iter().find(|t| t.key == key));
                match kept {
                    Some(target) => Arc::clone(target),
                    None => Arc::new(Target::new(
                        endpoint.clone(),
                        label,
                        metrics.target(&key),
                        events.clone(),
                        rule.options.rise,
                    )),
                }
            })
            .collect();
        let keys: Vec<String> = targets.iter().map(|t| t.key.clone()).collect();
        metrics.retain_targets(&keys);
        Backend {
            rule,
            label: label.to_string(),
            metrics,
            targets,
            turn: AtomicUsize::new(0),
            checks: Mutex::new(None),
        }
    }

    /// Starts the rule's active checks, if it has any (within a runtime).
    pub fn start_checks(&self) {
        let tasks = check::start(&self.targets, &self.rule.options);
        *self.checks.lock().unwrap_or_else(|p| p.into_inner()) = Some(tasks);
    }

    /// Stops the active checks (the rule was replaced or removed, or the forwarder stops).
    pub fn stop_checks(&self) {
        self.checks.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// Connects a client (`client`: its address, for `hash`) to the first target that
    /// answers: every target once in the balance's order, then up to `--retries` more
    /// attempts ([`Attempts`]); the target and the stream.
    pub async fn connect(
        &self,
        client: Option<IpAddr>,
    ) -> Result<(Stream, &Arc<Target>), Unreachable> {
        let options = &self.rule.options;
        let checked = options.check.is_some();
        let mut failures = Vec::new();
        // A rule of one target has one order, and no list to allocate for it.
        let mut attempts = match self.targets.len() {
            1 => Attempts::single(options.retries),
            _ => Attempts::new(self.order(client, checked), options.retries),
        };
        let eligible = |i: usize| self.targets[i].health.eligible(Instant::now(), checked);
        while let Some(i) = attempts.next(eligible) {
            let target = &self.targets[i];
            target.health.attempting(Instant::now());
            match self.connect_to(target).await {
                Ok(stream) => {
                    target.report(target.health.connected(checked));
                    return Ok((stream, target));
                }
                Err(err) => {
                    target
                        .metrics
                        .connect_failures
                        .fetch_add(1, Ordering::Relaxed);
                    if !health_untouched(&err, checked) {
                        let why = reason(&err);
                        target.report(target.health.connect_failed(Instant::now(), &why));
                    }
                    attempts.failed(!timed_out(&err));
                    failures.push(err);
                }
            }
        }
        Err(Unreachable(failures))
    }

    /// Connects to `target`; when this machine is short of descriptors or memory, the client
    /// is kept and the connect tried again as connections end, for up to the connect timeout
    /// ([`DescriptorWait`]), as the accept loop backs off rather than dropping anyone.
    async fn connect_to(&self, target: &Target) -> Result<Stream, Error> {
        let timeout = self.rule.options.connect_timeout;
        let mut wait: Option<DescriptorWait> = None;
        loop {
            let result = target
                .endpoint
                .connect_with(timeout, HandshakeAck::WithData)
                .await;
            match result {
                Err(err) if short_here(&err) => {
                    let wait = wait.get_or_insert_with(|| DescriptorWait::new(timeout));
                    if !wait.pause().await {
                        return Err(err);
                    }
                }
                result => return result,
            }
        }
    }

    /// The order in which this connection tries the targets.
    fn order(&self, client: Option<IpAddr>, checked: bool) -> Vec<usize> {
        let now = Instant::now();
        let views: Vec<View<'_>> = self
            .targets
            .iter()
            .map(|t| View {
                key: &t.key,
                eligible: t.health.eligible(now, checked),
                active: t.metrics.active.load(Ordering::Relaxed),
            })
            .collect();
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        balance::order(self.rule.options.balance, &views, turn, client)
    }
}

impl Unreachable {
    /// Every failure, `; `-separated.
    pub fn text(&self) -> String {
        let texts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        texts.join("; ")
    }
}

/// Whether a failed connect leaves the target's health as it is: this machine was short of
/// descriptors or memory (not the target's failure), or, with active checks on, it timed out
/// (maybe one lost SYN: the checks judge it, as HAProxy without `observe` leaves it to them;
/// a refusal is an answer).
fn health_untouched(err: &Error, checked: bool) -> bool {
    short_here(err) || (checked && timed_out(err))
}

/// Whether a connect failed because this machine is short of file descriptors or memory
/// (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`): the target's health is left as it is.
fn short_here(err: &Error) -> bool {
    let Error::Io { source, .. } = err else {
        return false;
    };
    matches!(
        crate::sys::shortage(source),
        Some(Shortage::Descriptors | Shortage::Memory)
    )
}

/// Whether a connect failed by its timeout (a SYN or its answer may have been lost), the one
/// failure a retry may overcome.
fn timed_out(err: &Error) -> bool {
    matches!(err, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::TimedOut)
}

/// Why a connect failed, without the target's name (the record names it).
fn reason(err: &Error) -> String {
    match err {
        Error::Io { source, .. } => crate::error::describe_io(source),
        other => other.to_string(),
    }
}
