//! One target of a rule as the forwarder runs it: the endpoint, its [`Health`], its counters,
//! and the reporting of its state changes as `target` records. Kept across reloads while the
//! rule (same listen address) keeps the target (same endpoint), so its health and counters go
//! on.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::event::{self, Event, Events};
use super::health::{Change, Health};
use super::metrics::TargetMetrics;
use crate::endpoint::Endpoint;
use crate::report::forward::{TargetRecord, TargetState};

/// A target and what the forwarder knows of it.
#[derive(Debug)]
pub(super) struct Target {
    /// Where to connect.
    pub endpoint: Endpoint,
    /// Its text: the key of `hash`, the label of its counters and records.
    pub key: String,
    /// Up or down.
    pub health: Health,
    /// Its counters.
    pub metrics: Arc<TargetMetrics>,
    /// The label of its rule.
    rule: String,
    events: Events,
}

impl Target {
    /// A target of the rule labelled `rule`, up, counting into `metrics`.
    pub fn new(
        endpoint: Endpoint,
        rule: &str,
        metrics: Arc<TargetMetrics>,
        events: Events,
        rise: u32,
    ) -> Target {
        metrics.up.store(true, Ordering::Relaxed);
        Target {
            key: endpoint.to_string(),
            endpoint,
            health: Health::new(rise),
            metrics,
            rule: rule.to_string(),
            events,
        }
    }

    /// Reports a change of state, if there was one: the `target_up` gauge and a record.
    pub fn report(&self, change: Option<Change>) {
        let Some(change) = change else {
            return;
        };
        self.metrics.up.store(change.up, Ordering::Relaxed);
        let state = match change.up {
            true => TargetState::Up,
            false => TargetState::Down,
        };
        self.events.send(Event::Target(TargetRecord {
            time: event::now(),
            rule: self.rule.clone(),
            target: self.key.clone(),
            state,
            reason: change.reason,
        }));
    }
}
