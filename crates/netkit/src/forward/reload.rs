//! Serving a set of rules that a reload (SIGHUP) can replace: the [`Supervisor`].
//!
//! A reload is all or nothing: the new rules' new listeners are bound first, and if one
//! cannot be, nothing changes. Then every rule is served by a new generation: a rule whose
//! listen address was already served keeps its listening socket (never closed, so no client
//! is refused meanwhile) and its targets' health and counters; the old generation stops
//! accepting and its connections go on untouched until they end. A rule no longer in the file
//! stops accepting (its socket is closed) and its connections go on too. When the forwarder
//! stops, every connection of every generation gets its rule's drain timeout.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::activation::Activation;
use super::backend::Backend;
use super::event::Events;
use super::metrics::Registry;
use super::server::{serve_backend, Closing};
use super::Rule;
use crate::endpoint::{Endpoint, Listener, Stream};
use crate::error::Error;
use crate::report::forward::ReloadRecord;
use crate::server::{Accept, Stop};

/// A listening socket shared by the generations that serve it.
#[derive(Debug, Clone)]
struct Shared(Arc<Listener>);

impl Accept for Shared {
    type Conn = (Stream, String);

    fn accept(&self) -> impl std::future::Future<Output = io::Result<(Stream, String)>> + Send {
        self.0.accept()
    }

    fn local_addr(&self) -> String {
        self.0.local_addr()
    }
}

/// A rule being served: its sockets, its backend, and the stop of its generation.
#[derive(Debug)]
struct Slot {
    /// Its listen endpoint and how many rules before it listen on the same one (only bare
    /// `systemd:` rules may): what a reload matches rules by.
    key: (Endpoint, usize),
    listeners: Vec<Shared>,
    backend: Arc<Backend>,
    /// Dropping it stops this generation from accepting.
    _stop: watch::Sender<()>,
}

/// A rule bound and served, as the log announces it.
#[derive(Debug, Clone)]
pub struct Served {
    /// The bound address (`127.0.0.1:8080`, `unix:/run/a.sock`; for several sockets of one
    /// `systemd:NAME`, each comma-separated).
    pub addr: String,
    /// The rule.
    pub rule: Arc<Rule>,
}

/// What a reload changed.
#[derive(Debug, Clone, Default)]
pub struct Reloaded {
    /// Rules with a listen address not served before (now listening).
    pub added: Vec<Served>,
    /// Listen addresses no longer served (their connections go on).
    pub removed: Vec<String>,
    /// Rules in force.
    pub rules: usize,
}

impl Reloaded {
    /// The `reload` record of this reload of `file`.
    pub fn record(&self, file: &str) -> ReloadRecord {
        ReloadRecord {
            time: super::event::now(),
            file: file.to_string(),
            ok: true,
            rules: self.rules,
            added: self.added.iter().map(|s| s.addr.clone()).collect(),
            removed: self.removed.clone(),
            error: None,
        }
    }
}

/// Serves rules, replaces them on reload, and stops them.
#[derive(Debug)]
pub struct Supervisor {
    slots: Vec<Slot>,
    events: Events,
    registry: Arc<Registry>,
    activation: Activation,
    stopping: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

/// The drain deadline of a generation's accept loop: none (its connections end on their own,
/// or by the forwarder's drain deadline once it stops, [`Closing`]).
const NO_DEADLINE: Duration = Duration::MAX;

impl Supervisor {
    /// A supervisor reporting to `events`, counting into `registry`, taking `systemd:`
    /// listeners from `activation`.
    pub fn new(events: Events, registry: Arc<Registry>, activation: Activation) -> Supervisor {
        Supervisor {
            slots: Vec::new(),
            events,
            registry,
            activation,
            stopping: watch::channel(false).0,
            tasks: JoinSet::new(),
        }
    }

    /// Replaces the rules in force by `rules` (at start: none are). Nothing changes when a
    /// new listener cannot be bound; the error says which.
    pub async fn apply(&mut self, rules: Vec<Rule>) -> Result<Reloaded, Error> {
        let keys = keys(&rules);
        let listens: Vec<Endpoint> = rules.iter().map(|r| r.listen.clone()).collect();
        let mut bound = Vec::with_capacity(rules.len());
        for (i, key) in keys.iter().enumerate() {
            let kept = self.slots.iter().find(|s| s.key == *key);
            let listeners = match kept {
                Some(slot) => slot.listeners.clone(),
                None => self.bind(&listens, i).await?,
            };
            bound.push(listeners);
        }
        let (reloaded, gone) = self.swap(rules, keys, bound);
        closed(gone).await;
        Ok(reloaded)
    }

    /// Binds rule `index` of `listens`.
    async fn bind(&self, listens: &[Endpoint], index: usize) -> Result<Vec<Shared>, Error> {
        let listeners = match &listens[index] {
            Endpoint::Systemd(_) => self.activation.listeners(listens, index)?,
            other => vec![other.listen().await?],
        };
        Ok(listeners.into_iter().map(|l| Shared(Arc::new(l))).collect())
    }

    /// Starts a generation for each rule and retires the old ones.
    fn swap(
        &mut self,
        rules: Vec<Rule>,
        keys: Vec<(Endpoint, usize)>,
        bound: Vec<Vec<Shared>>,
    ) -> (Reloaded, Vec<Slot>) {
        let mut old = std::mem::take(&mut self.slots);
        let mut reloaded = Reloaded {
            rules: rules.len(),
            ..Reloaded::default()
        };
        for ((rule, key), listeners) in rules.into_iter().zip(keys).zip(bound) {
            let before = old
                .iter()
                .position(|s| s.key == key)
                .map(|i| old.swap_remove(i));
            let addr = addr_of(&listeners);
            let rule = Arc::new(rule);
            if let Some(before) = &before {
                before.backend.stop_checks();
            } else {
                reloaded.added.push(Served {
                    addr: addr.clone(),
                    rule: Arc::clone(&rule),
                });
            }
            let backend = Backend::new(
                rule,
                &addr,
                &self.registry,
                &self.events,
                before.as_ref().map(|b| b.backend.as_ref()),
            );
            drop(before);
            let slot = self.start(key, listeners, backend);
            self.slots.push(slot);
        }
        for gone in &old {
            gone.backend.stop_checks();
            reloaded.removed.push(addr_of(&gone.listeners));
        }
        let labels: Vec<String> = self.slots.iter().map(|s| s.backend.label.clone()).collect();
        self.registry.retain(&labels);
        (reloaded, old)
    }

    /// Serves `backend` on `listeners` until the slot is dropped.
    fn start(&mut self, key: (Endpoint, usize), listeners: Vec<Shared>, backend: Backend) -> Slot {
        let backend = Arc::new(backend);
        backend.start_checks();
        let (stop, stopped) = watch::channel(());
        for listener in &listeners {
            let closing = Closing::after(self.stopping.subscribe());
            let serve = serve_backend(
                listener.clone(),
                Arc::clone(&backend),
                stopped_when_dropped(stopped.clone()),
                Stop::Drain(NO_DEADLINE),
                self.events.clone(),
                closing,
            );
            self.tasks.spawn(serve);
        }
        Slot {
            key,
            listeners,
            backend,
            _stop: stop,
        }
    }

    /// The `reload` record of a reload of `file` that failed (`error`): the rules in force
    /// stay.
    pub fn refused(&self, file: &str, error: String) -> ReloadRecord {
        ReloadRecord {
            time: super::event::now(),
            file: file.to_string(),
            ok: false,
            rules: self.slots.len(),
            added: Vec::new(),
            removed: Vec::new(),
            error: Some(error),
        }
    }

    /// Stops accepting everywhere and waits for every connection of every generation to end,
    /// each closed after its rule's drain timeout.
    pub async fn stop(mut self) {
        let _ = self.stopping.send(true);
        for slot in self.slots.drain(..) {
            slot.backend.stop_checks();
        }
        while self.tasks.join_next().await.is_some() {}
    }
}

/// How long a reload waits for the accept loops of removed rules to let go of their sockets.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Stops the generations of removed rules and waits (at most [`CLOSE_WAIT`]) until their
/// accept loops have let go of the listening sockets, which close as these go: a removed rule
/// no longer accepts once the reload is reported. Their connections go on.
async fn closed(gone: Vec<Slot>) {
    let mut listeners = Vec::new();
    for slot in gone {
        listeners.extend(slot.listeners);
    }
    let deadline = tokio::time::Instant::now() + CLOSE_WAIT;
    while listeners.iter().any(|l| Arc::strong_count(&l.0) > 1)
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// What each rule is matched by across reloads.
fn keys(rules: &[Rule]) -> Vec<(Endpoint, usize)> {
    rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let before = rules[..i]
                .iter()
                .filter(|r| r.listen == rule.listen)
                .count();
            (rule.listen.clone(), before)
        })
        .collect()
}

fn addr_of(listeners: &[Shared]) -> String {
    let addrs: Vec<String> = listeners.iter().map(Accept::local_addr).collect();
    addrs.join(",")
}

/// Completes when the sender of `stop` is dropped (the slot is gone).
async fn stopped_when_dropped(mut stop: watch::Receiver<()>) {
    while stop.changed().await.is_ok() {}
}
