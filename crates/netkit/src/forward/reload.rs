//! Serving a set of rules that a reload (SIGHUP) can replace: the [`Supervisor`].
//!
//! A reload is all or nothing: the new rules' new listeners are bound first, and if one
//! cannot be, nothing changes. Then every rule is served by a new generation: a rule whose
//! listen address was already served keeps its listening socket (never closed, so no client
//! is refused meanwhile) and its targets' health and counters; the old generation stops
//! accepting and its connections go on untouched until they end. A rule no longer in the file
//! stops accepting (its socket is closed) and its connections go on too. When the forwarder
//! stops, every connection of every generation gets its rule's drain timeout.
//!
//! A `udp:` rule has one session loop on its socket (two loops on one socket would split a
//! client's datagrams between them): a rule that stays the same keeps its loop and sessions
//! untouched; one that changes (same listen address, new target or options) hands the socket
//! over: its loop stops reading it at once and drains its sessions (they still relay their
//! targets' replies, and end once answered, quiet or at the drain timeout), while the new
//! rule's loop serves the same socket, kept open by a duplicate descriptor, from the next
//! datagram on (a client of an old session gets a new one); one that is removed is drained as
//! at shutdown and its socket closed when its last session ends.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::activation::Activation;
use super::backend::Backend;
use super::event::Events;
use super::metrics::Registry;
use super::server::{limit_of, serve_backend};
use super::spread::Spread;
use super::workers::Workers;
use super::{udp, Event, Rule};
use crate::endpoint::{Endpoint, Peer, Stream};
use crate::error::Error;
use crate::report::forward::ReloadRecord;
use crate::server::{Accept, Ends, Stop};

/// A listening socket shared by the generations that serve it, with its lanes (a descriptor
/// per worker thread, [`Spread`]).
#[derive(Debug, Clone)]
struct Shared(Arc<Spread>);

/// An accept loop's lane of a [`Shared`] socket; it holds the socket, so that a reload knows
/// when every loop has let go of a removed rule's socket.
#[derive(Debug)]
struct Local {
    shared: Shared,
    lane: usize,
}

impl Accept for Local {
    type Conn = (Stream, Peer);

    fn accept(&self) -> impl std::future::Future<Output = io::Result<(Stream, Peer)>> + Send {
        self.shared.0.accept(self.lane)
    }

    fn local_addr(&self) -> String {
        self.shared.0.local_addr().to_string()
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

/// A `udp:` rule being served by its session loop.
#[derive(Debug)]
struct UdpSlot {
    key: (Endpoint, usize),
    rule: Arc<Rule>,
    /// A duplicate of the listening socket, for the loop of the rule that replaces this one.
    socket: std::net::UdpSocket,
    addr: String,
    /// Completes when this loop no longer reads the listening socket (handed over, or
    /// ended).
    released: watch::Receiver<()>,
    /// Dropping it starts this loop's drain; `true` sent first makes it a hand-over
    /// ([`udp::Ending::HandOver`]).
    stop: watch::Sender<bool>,
}

/// How a `udp:` rule of a reload is served.
#[derive(Debug)]
enum UdpPlan {
    /// The same rule as before: its loop goes on.
    Keep,
    /// A new listen address: bound now.
    Fresh(udp::Bound),
    /// The same listen address with a new target or options: the socket of the loop it
    /// replaces, served as soon as that loop has let go of it (its sessions drain meanwhile,
    /// still relaying their replies).
    After {
        socket: std::net::UdpSocket,
        targets: Vec<std::net::SocketAddr>,
    },
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
    udp_slots: Vec<UdpSlot>,
    events: Events,
    registry: Arc<Registry>,
    activation: Activation,
    stopping: watch::Sender<bool>,
    /// Turns true when the drain is to end at once ([`Cutter`]).
    cut: Arc<watch::Sender<bool>>,
    tasks: JoinSet<()>,
    /// The threads stream connections are served on (none if they could not be started: then
    /// on the supervisor's runtime). Last, so that it outlives the sockets registered with them.
    workers: Option<Workers>,
}

/// The drain deadline of a generation's accept loop: none (its connections end on their own,
/// or by the forwarder's drain deadline once it stops, [`drain_after`]).
const NO_DEADLINE: Duration = Duration::MAX;

impl Supervisor {
    /// A supervisor reporting to `events`, counting into `registry`, taking `systemd:`
    /// listeners from `activation`.
    pub fn new(events: Events, registry: Arc<Registry>, activation: Activation) -> Supervisor {
        Supervisor {
            slots: Vec::new(),
            udp_slots: Vec::new(),
            events,
            registry,
            activation,
            stopping: watch::channel(false).0,
            cut: Arc::new(watch::channel(false).0),
            tasks: JoinSet::new(),
            workers: start_workers(),
        }
    }

    /// Replaces the rules in force by `rules` (at start: none are). Nothing changes when a
    /// new listener cannot be bound; the error says which.
    pub async fn apply(&mut self, rules: Vec<Rule>) -> Result<Reloaded, Error> {
        // Every rule's listen, in file order: `systemd:` rules of both kinds take the passed
        // sockets in that order.
        let listens: Vec<Endpoint> = rules.iter().map(|r| r.listen.clone()).collect();
        let (datagram_at, stream_at): (Vec<usize>, Vec<usize>) =
            (0..rules.len()).partition(|&i| rules[i].is_datagram());
        let (datagram, rules): (Vec<Rule>, Vec<Rule>) =
            rules.into_iter().partition(Rule::is_datagram);
        let keys = keys(&rules);
        let mut bound = Vec::with_capacity(rules.len());
        let slots: HashMap<&(Endpoint, usize), &Slot> =
            self.slots.iter().map(|s| (&s.key, s)).collect();
        for (key, &at) in keys.iter().zip(&stream_at) {
            let kept = slots.get(key);
            let listeners = match kept {
                Some(slot) => slot.listeners.clone(),
                None => self.bind(&listens, at).await?,
            };
            bound.push(listeners);
        }
        let udp_keys = self::keys(&datagram);
        let mut plans = Vec::with_capacity(datagram.len());
        for ((rule, key), &at) in datagram.iter().zip(&udp_keys).zip(&datagram_at) {
            plans.push(self.plan_udp(rule, key, &listens, at).await?);
        }
        let (mut reloaded, gone) = self.swap(rules, keys, bound);
        self.swap_udp(datagram, udp_keys, plans, &mut reloaded)?;
        closed(gone).await;
        Ok(reloaded)
    }

    /// How the `udp:` rule `rule` (matched by `key`; rule `at` of `listens`) is to be served;
    /// binds or resolves what it needs, so that nothing has changed yet when this fails.
    async fn plan_udp(
        &self,
        rule: &Rule,
        key: &(Endpoint, usize),
        listens: &[Endpoint],
        at: usize,
    ) -> Result<UdpPlan, Error> {
        let Some(slot) = self.udp_slots.iter().find(|s| s.key == *key) else {
            let bound = match rule.listen {
                Endpoint::Systemd(_) => {
                    let socket = self.activation.datagram(listens, at)?;
                    let what = |e| Error::io(format!("listen on {}", rule.listen), e);
                    udp::Bound::on(socket, udp::targets_of(rule).await?).map_err(what)?
                }
                _ => udp::bind(rule).await?,
            };
            return Ok(UdpPlan::Fresh(bound));
        };
        if *slot.rule == *rule {
            return Ok(UdpPlan::Keep);
        }
        let what = |e| Error::io(format!("listen on {}", rule.listen), e);
        Ok(UdpPlan::After {
            socket: slot.socket.try_clone().map_err(what)?,
            targets: udp::targets_of(rule).await?,
        })
    }

    /// Starts the `udp:` rules' loops as planned and drains the loops of rules that changed
    /// or went.
    fn swap_udp(
        &mut self,
        rules: Vec<Rule>,
        keys: Vec<(Endpoint, usize)>,
        plans: Vec<UdpPlan>,
        reloaded: &mut Reloaded,
    ) -> Result<(), Error> {
        let mut old = std::mem::take(&mut self.udp_slots);
        reloaded.rules += rules.len();
        for ((rule, key), plan) in rules.into_iter().zip(keys).zip(plans) {
            let before = old
                .iter()
                .position(|s| s.key == key)
                .map(|i| old.swap_remove(i));
            let slot = match (plan, before) {
                (UdpPlan::Keep, Some(kept)) => kept,
                (UdpPlan::Fresh(bound), _) => {
                    let rule = Arc::new(rule);
                    let slot = self.start_udp(key, Arc::clone(&rule), bound, None)?;
                    reloaded.added.push(Served {
                        addr: slot.addr.clone(),
                        rule,
                    });
                    slot
                }
                (UdpPlan::After { socket, targets }, Some(before)) => {
                    let bound = udp::Bound::on(socket, targets)
                        .map_err(|e| Error::io(format!("listen on {}", rule.listen), e))?;
                    let released = before.released.clone();
                    before.stop.send_replace(true);
                    drop(before);
                    self.start_udp(key, Arc::new(rule), bound, Some(released))?
                }
                (UdpPlan::Keep | UdpPlan::After { .. }, None) => continue,
            };
            self.udp_slots.push(slot);
        }
        for gone in old {
            reloaded.removed.push(gone.addr.clone());
        }
        let labels: Vec<String> = self.udp_slots.iter().map(|s| s.addr.clone()).collect();
        self.registry.retain_udp(&labels);
        Ok(())
    }

    /// Serves a `udp:` rule on `bound` (once the loop whose release is `after` has let go of
    /// the socket) until
    /// the slot is dropped or the forwarder stops.
    fn start_udp(
        &mut self,
        key: (Endpoint, usize),
        rule: Arc<Rule>,
        bound: udp::Bound,
        after: Option<watch::Receiver<()>>,
    ) -> Result<UdpSlot, Error> {
        let addr = bound.local_endpoint();
        let socket = bound
            .duplicate()
            .map_err(|e| Error::io(format!("listen on {addr}"), e))?;
        let (stop, stopped) = watch::channel(false);
        let (released_tx, released) = watch::channel(());
        let mut stopping = self.stopping.subscribe();
        let shutdown = async move {
            tokio::select! {
                ending = udp_stop_asked(stopped) => ending,
                _ = stopping.wait_for(|stop| *stop) => udp::Ending::Drain,
            }
        };
        let events = self.events.clone();
        let on_event = move |event| {
            events.send(Event::Udp(event));
            Ok(())
        };
        let serve_rule = Arc::clone(&rule);
        let counters = self.registry.udp_rule(&addr, &rule.targets_text());
        self.tasks.spawn(async move {
            if let Some(previous) = after {
                stopped_when_dropped(previous).await;
            }
            let _ = udp::serve(bound, serve_rule, counters, shutdown, released_tx, on_event).await;
        });
        Ok(UdpSlot {
            key,
            rule,
            socket,
            addr,
            released,
            stop,
        })
    }

    /// Binds rule `index` of `listens`.
    async fn bind(&self, listens: &[Endpoint], index: usize) -> Result<Vec<Shared>, Error> {
        let listeners = match &listens[index] {
            Endpoint::Systemd(_) => self.activation.listeners(listens, index)?,
            other => vec![other.listen().await?],
        };
        let workers = self.workers.as_ref().map_or(&[][..], Workers::all);
        let spread = |l| Shared(Arc::new(Spread::new(l, workers)));
        Ok(listeners.into_iter().map(spread).collect())
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
            // A kept listener too: its new connections inherit the rule in force's keepalive.
            let options = &backend.rule.options;
            options.keepalive.apply_to_listener(listener.0.any());
            listener
                .0
                .set_exclusive(super::server::max_conns(&backend.rule).is_none());
            let limit = limit_of(&backend.rule);
            for (lane, on) in listener.0.lanes().iter().enumerate() {
                let local = Local {
                    shared: listener.clone(),
                    lane,
                };
                let ends = Ends {
                    stop: Stop::Drain(NO_DEADLINE),
                    cut: drain_after(
                        self.stopping.subscribe(),
                        self.cut.subscribe(),
                        options.drain_timeout,
                    ),
                    // A reload leaves open connections alone (even idle ones).
                    drain: began_to_stop(self.stopping.subscribe()),
                };
                let serve = serve_backend(
                    local,
                    Arc::clone(&backend),
                    stopped_when_dropped(stopped.clone()),
                    ends,
                    self.events.clone(),
                    limit.clone(),
                );
                self.tasks.spawn_on(serve, &on.handle);
            }
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
            rules: self.slots.len() + self.udp_slots.len(),
            added: Vec::new(),
            removed: Vec::new(),
            error: Some(error),
        }
    }

    /// What ends the drain of [`Supervisor::stop`] at once, taken before it.
    pub fn cutter(&self) -> Cutter {
        Cutter(Arc::clone(&self.cut))
    }

    /// Stops accepting everywhere and waits for every connection of every generation to end,
    /// each closed after its rule's drain timeout (or at once, once [`Cutter::cut`]).
    ///
    /// The connections hear of the drain only once every listening socket is closed (at most
    /// 2 s later; a socket stays open until the accept loops of all its workers let go of
    /// it): a client that a drained connection closed (after a response marked `Connection:
    /// close`) and that connects again is refused, as by HAProxy's soft stop and nginx's
    /// graceful quit, instead of being queued where nobody accepts any more and reset under
    /// its request.
    pub async fn stop(mut self) {
        let slots = std::mem::take(&mut self.slots);
        for slot in &slots {
            slot.backend.stop_checks();
        }
        closed(slots).await;
        let _ = self.stopping.send(true);
        self.udp_slots.clear();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// How long a reload waits for the accept loops of removed rules to let go of their sockets.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Stops the generations of `gone` rules and waits (at most [`CLOSE_WAIT`]) until their
/// accept loops have let go of the listening sockets, which close as these go: a rule removed
/// by a reload no longer accepts once the reload is reported, and a stopping forwarder accepts
/// nowhere before its connections drain. Their connections go on.
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

/// What each rule is matched by across reloads: its listen endpoint, and how many rules
/// before it have the same (counted in one pass: a port range makes tens of thousands).
fn keys(rules: &[Rule]) -> Vec<(Endpoint, usize)> {
    let mut seen: HashMap<&Endpoint, usize> = HashMap::with_capacity(rules.len());
    rules
        .iter()
        .map(|rule| {
            let before = seen.entry(&rule.listen).or_insert(0);
            *before += 1;
            (rule.listen.clone(), *before - 1)
        })
        .collect()
}

fn addr_of(listeners: &[Shared]) -> String {
    let addrs: Vec<&str> = listeners.iter().map(|l| l.0.local_addr()).collect();
    addrs.join(",")
}

/// The worker threads, or none (with a warning) when they cannot be started.
fn start_workers() -> Option<Workers> {
    match Workers::per_core() {
        Ok(workers) => Some(workers),
        Err(err) => {
            let why = crate::error::describe_io(&err);
            tracing::warn!("no worker threads ({why}): serving connections from one runtime");
            None
        }
    }
}

/// Completes once the forwarder began to stop (`stopping` turned true); never when it is gone.
async fn began_to_stop(mut stopping: watch::Receiver<bool>) {
    if stopping.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Completes `drain` after the forwarder began to stop (`stopping` turned true), or when
/// `cut` turns true after that: then every connection still open is closed, whichever
/// generation it belongs to. An accept loop awaits it once it stops accepting ([`Ends::cut`]),
/// so its connections wait on the loop's own cancel alone.
async fn drain_after(
    mut stopping: watch::Receiver<bool>,
    mut cut: watch::Receiver<bool>,
    drain: Duration,
) {
    if stopping.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
    tokio::select! {
        () = tokio::time::sleep(drain) => {}
        Ok(_) = cut.wait_for(|cut| *cut) => {}
    }
}

/// Ends a forwarder's drain at once (a second signal): every connection still open is closed
/// as at its drain timeout, and logged so.
#[derive(Debug, Clone)]
pub struct Cutter(Arc<watch::Sender<bool>>);

impl Cutter {
    /// Closes the connections still open now.
    pub fn cut(&self) {
        let _ = self.0.send(true);
    }
}

/// Completes when the sender of `stop` is dropped (the slot is gone).
async fn stopped_when_dropped(mut stop: watch::Receiver<()>) {
    while stop.changed().await.is_ok() {}
}

/// Completes when a `udp:` slot's `stop` is dropped: a hand-over if `true` was sent first.
async fn udp_stop_asked(mut stop: watch::Receiver<bool>) -> udp::Ending {
    match stop.wait_for(|hand_over| *hand_over).await {
        Ok(_) => udp::Ending::HandOver,
        Err(_) => udp::Ending::Drain,
    }
}

#[cfg(test)]
#[path = "reload_tests.rs"]
mod tests;
