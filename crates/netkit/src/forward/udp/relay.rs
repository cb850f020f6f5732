//! The session loop of a UDP rule: client datagrams in, a session per client address (opened
//! on its first datagram if `--allow`, `--max-conns` and the draining state let it), sessions
//! closed after `--idle-timeout` without traffic either way, drops counted. On shutdown no new
//! sessions open; a session ends once nothing it sent waits for a reply (`done`: a reply came
//! after its last datagram, and as many as it sent; UDP has no other end to wait for), or
//! after a second without traffic, or at the drain timeout. Handed
//! over to a reload's new loop, it stops reading the listening socket at once and drains.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use super::batch::Receiver;
use super::drops::{Drops, REPORT_EVERY};
use super::session::{FromPump, Peer, Session, SessionId};
use super::targets::Targets;
use super::{Bound, Counters, Event, Shared};
use crate::error::describe_io;
use crate::forward::{proxy, ProxyProtocol, Rule};
use crate::report::forward::{Close, DropReason};
use crate::sys::pktinfo::Arrival;

/// How a session loop is asked to stop ([`serve`]'s `shutdown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// No new sessions; the listening socket is still read, so that open sessions' clients
    /// are relayed until they drain (the forwarder stops, or a reload removed the rule).
    Drain,
    /// A reload's new loop takes the listening socket over: it is no longer read here (every
    /// datagram after the reload goes to the new rule), and the open sessions drain, still
    /// relaying their targets' replies.
    HandOver,
}

/// Serves a bound UDP rule until `shutdown` completes and its sessions have drained (gone
/// idle, or the drain timeout passed). Every [`Event`] goes to `on_event`, in order, from
/// this task; when it fails, the rule stops at once and returns its error. `counters` are
/// the rule's live totals, for whoever wants to read them while it serves. `released` is
/// dropped once the loop no longer reads the listening socket: at an [`Ending::HandOver`],
/// else when it returns.
pub async fn serve<E>(
    bound: Bound,
    rule: Arc<Rule>,
    counters: Arc<Counters>,
    shutdown: impl Future<Output = Ending>,
    released: tokio::sync::watch::Sender<()>,
    mut on_event: E,
) -> io::Result<()>
where
    E: FnMut(Event) -> io::Result<()>,
{
    let mut released = Some(released);
    let (ended_tx, mut ended_rx) = mpsc::unbounded_channel();
    let mut table = Table::new(bound, &rule, counters, ended_tx);
    let mut receiver = Receiver::new(table.shared.listen.clone());
    let mut tick = tokio::time::interval(tick_for(table.idle));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut drain_tick = tokio::time::interval(DRAIN_TICK);
    drain_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    let mut deadline: Option<Instant> = None;
    loop {
        // Biased: timers and endings before datagrams, so a flood never holds expiry up.
        tokio::select! {
            biased;
            ending = &mut shutdown, if deadline.is_none() => {
                deadline = Some(Instant::now() + rule.options.drain_timeout);
                table.draining = true;
                if ending == Ending::HandOver {
                    released = None;
                }
                table.expire(Instant::now(), &mut on_event)?;
            }
            () = sleep_until(deadline) => {
                table.close_all(&mut on_event)?;
                break;
            }
            Some(heard) = ended_rx.recv() => table.heard(heard, &mut on_event)?,
            _ = tick.tick() => table.expire(Instant::now(), &mut on_event)?,
            _ = drain_tick.tick(), if deadline.is_some() => {
                table.expire(Instant::now(), &mut on_event)?;
            }
            got = receiver.recv(), if released.is_some() => match got {
                Ok(count) => table.forward(&receiver, count, &mut on_event).await?,
                Err(err) => receive_failed(&err).await,
            },
        }
        if deadline.is_some() && table.sessions.is_empty() {
            break;
        }
    }
    if released.is_some() {
        table.count_leftovers(&mut receiver);
    }
    table.report_drops(Instant::now(), true, &mut on_event)
}

/// While draining, a session quiet this long (or the idle timeout, if shorter) is over.
const DRAIN_QUIET: Duration = Duration::from_secs(1);

/// While draining, how often sessions are looked at (an answered one ends within this).
const DRAIN_TICK: Duration = Duration::from_millis(20);

/// At most this many batches of datagrams still queued at the end are counted.
const LEFTOVER_BATCHES: usize = 32;

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// How often idle sessions are looked for: an eighth of the idle timeout (so one expires at
/// most 12.5% late), between 10 ms and the drop-report period.
fn tick_for(idle: Duration) -> Duration {
    (idle / 8).clamp(Duration::from_millis(10), REPORT_EVERY)
}

/// An error receiving on the listening socket (the kernel short of memory, say): logged, and
/// the loop goes on after a pause rather than spinning.
async fn receive_failed(err: &io::Error) {
    tracing::warn!("udp receive: {}", crate::error::describe_io(err));
    tokio::time::sleep(Duration::from_millis(5)).await;
}

/// The open sessions of a rule and what deciding about new ones takes.
struct Table {
    shared: Shared,
    sessions: HashMap<Peer, Session>,
    next_id: u64,
    ended: mpsc::UnboundedSender<FromPump>,
    drops: Drops,
    local: SocketAddr,
    targets: Targets,
    proxy: bool,
    allow: Vec<ipnet::IpNet>,
    max: usize,
    idle: Duration,
    draining: bool,
}

impl Table {
    fn new(
        bound: Bound,
        rule: &Rule,
        counters: Arc<Counters>,
        ended: mpsc::UnboundedSender<FromPump>,
    ) -> Table {
        let (max, idle) = super::limits(rule);
        let listen = bound.local_endpoint();
        let balance = rule.options.balance;
        let targets = Targets::new(&bound.targets, balance, listen.clone(), &counters);
        Table {
            shared: Shared {
                listen: Arc::new(bound.socket),
                counters,
            },
            sessions: HashMap::new(),
            next_id: 0,
            ended,
            targets,
            drops: Drops::new(listen),
            local: bound.local,
            proxy: rule.options.proxy_protocol == Some(ProxyProtocol::V2),
            allow: rule.options.allow.clone(),
            max,
            idle,
            draining: false,
        }
    }

    /// Relays the `count` datagrams the receiver holds, each to its client's session.
    async fn forward(
        &mut self,
        receiver: &Receiver,
        count: usize,
        on_event: &mut impl EventSink,
    ) -> io::Result<()> {
        for i in 0..count {
            let (client, data, arrival) = receiver.datagram(i);
            let peer = Peer {
                client,
                local: arrival.map(|at| at.addr),
            };
            if !self.sessions.contains_key(&peer) {
                if let Err((reason, err)) = self.admit(peer, arrival) {
                    let counters = &self.shared.counters;
                    self.drops.count(reason, client, err.as_ref(), counters);
                    continue;
                }
            }
            let Some(session) = self.sessions.get_mut(&peer) else {
                continue;
            };
            let counters = &self.shared.counters;
            let refusals = session.take_refusals();
            if refusals > 0 {
                fail_over(&mut self.targets, session, refusals, counters, on_event)?;
            } else {
                move_off_down(&mut self.targets, session, counters);
            }
            if session.send(data, counters).await.is_err() {
                let refusals = session.take_refusals();
                fail_over(&mut self.targets, session, refusals, counters, on_event)?;
                if session.send(data, counters).await.is_err() {
                    let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
                    session.drop_datagram(&refused, counters);
                }
            }
        }
        Ok(())
    }

    /// Opens a session for a new peer whose first datagram arrived at `arrival` (on a
    /// wildcard listener: where its replies leave from), or says why not.
    fn admit(
        &mut self,
        peer: Peer,
        arrival: Option<Arrival>,
    ) -> Result<(), (DropReason, Option<io::Error>)> {
        let client = peer.client;
        if self.draining {
            return Err((DropReason::Draining, None));
        }
        if !self.allowed(client) {
            return Err((DropReason::Denied, None));
        }
        if self.sessions.len() >= self.max {
            return Err((DropReason::SessionLimit, None));
        }
        self.next_id += 1;
        let id = (peer, self.next_id);
        // On a wildcard listener the header names where the datagram arrived.
        let local = arrival.map_or(self.local, |at| SocketAddr::new(at.addr, self.local.port()));
        let header = self.proxy.then(|| proxy::dgram_header(client, local));
        let ended = self.ended.clone();
        let target = self
            .targets
            .pick(client.ip().to_canonical(), std::time::Instant::now());
        let opened = Session::open(id, target, header, arrival, &self.shared, ended);
        let session = opened.map_err(|err| {
            self.targets.released(target.0);
            (DropReason::SocketError, Some(err))
        })?;
        self.shared.counters.session(true);
        self.sessions.insert(peer, session);
        Ok(())
    }

    /// Whether `--allow` lets `client` in (an IPv4 client of a `[::]` listener is checked
    /// in its IPv4 form and in its mapped one).
    fn allowed(&self, client: SocketAddr) -> bool {
        super::super::allow::allows(&self.allow, client.ip())
    }

    /// Acts on a pump's news (unless its session already ended): a refusal is taken as a
    /// send meeting it would be (with several targets the refusing one goes down and the
    /// session moves), a pump that stopped on an error closes its session.
    fn heard(&mut self, news: FromPump, on_event: &mut impl EventSink) -> io::Result<()> {
        let id = match &news {
            FromPump::Refused(id) | FromPump::Ended(id, _) => *id,
        };
        let Some(session) = self.sessions.get_mut(&id.0).filter(|s| s.id() == id) else {
            return Ok(());
        };
        match news {
            FromPump::Refused(_) => {
                let refusals = session.take_refusals();
                if refusals == 0 {
                    return Ok(());
                }
                let counters = &self.shared.counters;
                fail_over(&mut self.targets, session, refusals, counters, on_event)
            }
            FromPump::Ended(_, err) => self.close(id.0, Close::Error, Some(&err), on_event),
        }
    }

    /// Closes the sessions idle for the idle timeout (while draining, those with no reply
    /// outstanding, `done` ([`Session::owes_nothing`]), and those quiet for [`DRAIN_QUIET`]),
    /// and reports the drops that are due.
    fn expire(&mut self, now: Instant, on_event: &mut impl EventSink) -> io::Result<()> {
        let draining = self.draining;
        let idle = match draining {
            true => self.idle.min(DRAIN_QUIET),
            false => self.idle,
        };
        self.note_answers(on_event)?;
        let ending: Vec<(SessionId, Close)> = self
            .sessions
            .values()
            .filter_map(|s| {
                let close = if draining && s.owes_nothing() {
                    Close::Done
                } else if now.saturating_duration_since(s.last_active()) >= idle {
                    Close::IdleTimeout
                } else {
                    return None;
                };
                Some((s.id(), close))
            })
            .collect();
        for ((peer, _), close) in ending {
            self.close(peer, close, None, on_event)?;
        }
        self.report_drops(now, false, on_event)
    }

    /// Brings up the targets that are down and answered one of their sessions.
    fn note_answers(&mut self, on_event: &mut impl EventSink) -> io::Result<()> {
        if !self.targets.several() {
            return Ok(());
        }
        for session in self.sessions.values().filter(|s| s.answered()) {
            if let Some(record) = self.targets.answered(session.target_index()) {
                on_event(Event::Target(record))?;
            }
        }
        Ok(())
    }

    /// Counts the datagrams still queued when the rule stops (a bounded look: a flood does
    /// not hold the exit up) as dropped while draining.
    fn count_leftovers(&mut self, receiver: &mut Receiver) {
        for _ in 0..LEFTOVER_BATCHES {
            let count = receiver.take().unwrap_or(0);
            for i in 0..count {
                let (client, _, _) = receiver.datagram(i);
                let counters = &self.shared.counters;
                self.drops
                    .count(DropReason::Draining, client, None, counters);
            }
            if count == 0 {
                return;
            }
        }
    }

    /// Closes every session: the drain timeout ran out.
    fn close_all(&mut self, on_event: &mut impl EventSink) -> io::Result<()> {
        let peers: Vec<Peer> = self.sessions.keys().copied().collect();
        for peer in peers {
            self.close(peer, Close::DrainTimeout, None, on_event)?;
        }
        Ok(())
    }

    fn close(
        &mut self,
        peer: Peer,
        close: Close,
        err: Option<&io::Error>,
        on_event: &mut impl EventSink,
    ) -> io::Result<()> {
        let Some(mut session) = self.sessions.remove(&peer) else {
            return Ok(());
        };
        let index = session.target_index();
        // Refusals after its last datagram: counted, nothing to move.
        self.targets.count_refusals(index, session.take_refusals());
        self.targets.released(index);
        self.shared.counters.session(false);
        on_event(Event::Session(session.close(close, err)))
    }

    fn report_drops(
        &mut self,
        now: Instant,
        force: bool,
        on_event: &mut impl EventSink,
    ) -> io::Result<()> {
        for record in self.drops.due(now, force) {
            on_event(Event::Drop(record))?;
        }
        Ok(())
    }
}

/// Notes that a session's target refused; with several targets, takes the refusing one out of
/// the rotation for a while and moves the session to the next (with one there is nowhere to
/// go: the session stays, so a target that restarts is reached again).
fn fail_over(
    targets: &mut Targets,
    session: &mut Session,
    refusals: u64,
    counters: &Counters,
    on_event: &mut impl EventSink,
) -> io::Result<()> {
    let now = std::time::Instant::now();
    let from = session.target_index();
    if let Some(record) = targets.refused(from, refusals, now) {
        on_event(Event::Target(record))?;
    }
    if !targets.several() {
        return Ok(());
    }
    let client = session.id().0.client.ip().to_canonical();
    let next = targets.next(from, client, now);
    move_to(targets, session, next, counters);
    Ok(())
}

/// Moves a session whose target another session found down to one that is up, if any.
fn move_off_down(targets: &mut Targets, session: &mut Session, counters: &Counters) {
    if !targets.went_down_since(session.target_index(), session.assigned()) {
        return;
    }
    let client = session.id().0.client.ip().to_canonical();
    let now = std::time::Instant::now();
    let assigned = (session.target_index(), session.assigned());
    let next = targets.away_from_down(assigned, client, now);
    move_to(targets, session, next, counters);
}

/// Moves `session` to `next` (when there is one); the old target's refusals still pending are
/// counted as its own.
fn move_to(
    targets: &mut Targets,
    session: &mut Session,
    next: Option<(usize, SocketAddr)>,
    counters: &Counters,
) {
    let Some(next) = next else {
        return;
    };
    let from = session.target_index();
    match session.retarget(next, counters) {
        Ok(stale) => targets.count_refusals(from, stale),
        Err(err) => tracing::debug!("udp session to another target: {}", describe_io(&err)),
    }
}

/// The event sink of the convention (`FnMut(Event) -> io::Result<()>`).
trait EventSink: FnMut(Event) -> io::Result<()> {}

impl<F: FnMut(Event) -> io::Result<()>> EventSink for F {}
