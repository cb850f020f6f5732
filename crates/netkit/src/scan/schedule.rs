//! The scan's scheduler, without I/O: it decides which probe leaves when, reads each answer
//! or timeout, and settles ports. The engine ([`super::engine`]) feeds it the clock and the
//! answers and carries out what it asks: open a connect, close a socket.
//!
//! - Hosts are scanned a group at a time ([`Settings::group`]), ports going round the hosts.
//! - A probe may leave when the scan's window and its host's window have room, its host's
//!   pace and the scan's pace allow ([`super::pace::RateControl`]: one for a policer in front
//!   of one host, one for a bottleneck all hosts share, such as a firewall limiting SYNs per
//!   source) and the `--rate` ceiling allows; `--min-rate` sends even when the windows are
//!   full or the paces say wait.
//! - A try times out after its host's adaptive timeout ([`super::rtt`]), longer for each
//!   retransmission (×[`BACKOFF`]) and doubled for the last try a port gets. Its socket stays
//!   open a while longer ([`LINGER`]): a late answer still settles the port and, having been
//!   measured on its own socket, corrects the round-trip estimate. This is why queueing on a
//!   slow link is not taken for loss. (`nmap -sT` closes the socket at the timeout.)
//! - A port's last try waits [`SYN_ACK_RETRANSMIT`] longer for an answer, and the port is
//!   filtered only once that wait ends: a target that got no ACK sends its SYN-ACK again by
//!   then, so a port whose SYN-ACKs were lost on the way back is still found (nmap -sS, still
//!   running, finds it). A connect's socket stays open for it (its kernel sends the SYN once
//!   more meanwhile). Only last tries wait, out of the windows, so the wait adds about a
//!   second to a host with silent ports and nothing to one without. The wait counts from the
//!   longest round trip seen, past `--timeout`, and grows when a longer one comes meanwhile;
//!   before a host's first round trip, a filtered port's tries stay open for the late answers
//!   that teach it.
//! - An answer that only a retransmission got is a drop: the windows shrink and the host may
//!   be paced. A port silent through its retry budget ([`super::host`]) is filtered.
//! - An ICMP "no route" settles the whole host as unreachable.
//! - A host silent a while gets a timing probe to a port that answered before
//!   ([`super::timing`]): its answer grows the windows, so that mostly filtered ports do not
//!   hold the scan at its initial window.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::answer::{Answer, NoRoute, Refusal};
use super::host::{Budget, HostInfo, HostScan, Loss, Retries, StateCounts, PROOF_PORTS};
use super::pace::{spacing, Floor, Pacer, RateControl};
use super::rtt::{Rtt, Timeouts};
use super::timing::MAGNIFIER;
use super::window::{Delay, Scope, Window};
use crate::report::scan::{PortState, Reason};

/// Each retransmission waits this much longer than the try before it.
pub const BACKOFF: f64 = 1.25;
/// How long a probe's socket stays open at least, for a late answer, once its host answered:
/// just under the kernel's first SYN retransmission (1 s), so the kernel sends no SYN the
/// scan did not ask for, but for a port's last try ([`SYN_ACK_RETRANSMIT`]). Before its host
/// answered anything, a probe waits for a late answer up to the timeout's ceiling
/// (`--timeout`), [`UNANSWERED_LINGER`] at least: the round trip may be longer than a second.
/// Where the host's round trips
/// (`srtt + 4 × rttvar`) are longer than that ceiling, a probe stays open that long: its
/// answer always comes late, and nmap, whose `--max-rtt-timeout` caps its timeout too, takes
/// late answers.
pub const LINGER: Duration = Duration::from_millis(900);
/// How long a probe stays open for a late answer before its host answered anything, however
/// low `--timeout` is (its default): `--timeout` says when a try is retransmitted, not when its
/// answer stops counting. Audit (nmap -sS as the oracle): behind a 1.2 s round trip with 10%
/// loss each way, `--timeout 1s` called 3-14 of 19 closed ports filtered in 2.5 s (nmap -sS
/// --max-rtt-timeout 1s: 0-2, in 8 s): every answer came after its try was closed, but the last
/// tries' (which wait a second more), and those, a second late, taught no round trip.
pub const UNANSWERED_LINGER: Duration = Duration::from_secs(10);
/// How long after its SYN-ACK a target sends it again when no ACK came (Linux's, and RFC
/// 6298's initial retransmission timeout): a port's last try waits that long more
/// ([`Settings::answer_retransmit`]).
pub const SYN_ACK_RETRANSMIT: Duration = Duration::from_secs(1);
/// When a connect's kernel sends its SYN again, after the connect, while the socket stays open
/// unanswered (Linux: a SYN's retransmission timeout starts at 1 s and doubles): a port's last
/// try may wait for the answers to these ([`Settings::kernel_resends`]).
pub const KERNEL_SYN_RESENDS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(3),
    Duration::from_secs(7),
];
/// How much longer than the longest round trip seen a port's last try waits, past
/// [`SYN_ACK_RETRANSMIT`], for its answer: a resent SYN's or SYN-ACK's answer comes a second
/// and a round trip after the try, and round trips vary.
pub const LONGEST_MARGIN: f64 = 1.5;
/// The packets a connect sends after an open port's answer ([`Settings::follow_ups`]): the
/// handshake's ACK, the close's reset, and the reset that answers the server's own close when
/// it crossed ours (a server that closes at once: half the open ports in the lab).
pub const CONNECT_FOLLOW_UPS: usize = 3;
/// The largest window of one host.
const HOST_MAX_WINDOW: usize = 1000;
/// Rate cuts because answers needed more tries than this (nmap's `-T4` value), unless the loss
/// measured asks for that many tries and the retry cap allows them
/// ([`HostScan::loss_tries`]): random loss is no reason to slow down, and the cut, to the
/// answers' recent rate, is never raised again once only silent ports are left.
const SLOW_TRIES: u32 = 4;
/// With a fixed retry budget (`--retries`), once a drop showed, try `k` of a port leaves no
/// sooner than `(2^k - 1)` times this after its first (`Scheduler::spread`).
pub const SPREAD: Duration = Duration::from_millis(250);
/// Connections in a row that join two probes of the scan before the port is called closed.
const MAX_PHANTOMS: u8 = 3;
/// How long the machine may stay short of descriptors, buffers or ports before the scan gives
/// up.
const GIVE_UP: Duration = Duration::from_secs(30);
/// The longest pause while short of resources.
const MAX_PAUSE: Duration = Duration::from_millis(100);

/// A round-trip estimate for a scan of `settings` ([`Settings::tries_matched`]).
fn new_rtt(settings: &Settings) -> Rtt {
    match settings.tries_matched {
        true => Rtt::matched(),
        false => Rtt::default(),
    }
}

/// Identifies one probe (one try of one port: one socket).
pub type ProbeId = u64;

/// How the scheduler paces and retries.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The bounds of the adaptive timeout.
    pub timeouts: Timeouts,
    /// How many tries a silent port gets.
    pub retries: Retries,
    /// The most probes in flight at once (`--concurrency`, nmap's `--max-parallelism`): a try
    /// that timed out leaves them, though its socket may stay open for a late answer.
    pub max_in_flight: usize,
    /// The most sockets open at once, those kept open for a late answer included (the
    /// descriptors the scan may use; at least [`Settings::max_in_flight`]). Audit: with
    /// `--concurrency 1` as their ceiling, each try closed the one before it, timed out but
    /// still awaiting its answer, and behind a 1.2 s round trip every answer was lost.
    pub max_sockets: usize,
    /// The most probes per second (`--rate`).
    pub rate: Option<f64>,
    /// The fewest probes per second (`--min-rate`).
    pub min_rate: Option<f64>,
    /// Hosts scanned at once.
    pub group: usize,
    /// The reason a reset gives: `conn-refused` for connects, `reset` for raw SYNs (nmap's
    /// words for -sT and -sS).
    pub reset: Reason,
    /// Whether the windows are bound by the queue ([`Window::bound_by_queue`]), probes that
    /// later ones overtook leave them early (`Scheduler::presume_lost`), and a local queue
    /// found full pauses sending once per batch rather than once per refused probe: the SYN
    /// scan's, whose bare SYNs fill a slow link's queue fast.
    pub queue_bound: bool,
    /// How long after a try the target's own retransmission of its answer may come
    /// ([`SYN_ACK_RETRANSMIT`]; a target that got no ACK sends its SYN-ACK again). A port's
    /// last try waits that long more, and the port is filtered only when that wait ends
    /// unanswered. `None`: no wait (the scheduler's tests, to see what it changes).
    pub answer_retransmit: Option<Duration>,
    /// Whether the kernel sends a try's SYN again while its socket is open
    /// ([`KERNEL_SYN_RESENDS`]; connects do, raw SYNs do not). With a fixed budget, once its
    /// host showed drops (an answer only a retransmission got), a port's last try waits for
    /// the answers to those resends too before the port is filtered: behind a SYN policer the
    /// kernel's resends are tries the budget does not count, as nmap -sT gets them.
    pub kernel_resends: bool,
    /// Whether every answer is matched to the try it answers (raw SYNs), so that its round
    /// trip counts however long ([`Rtt::matched`]); a connect's answer that may be to the SYN
    /// the kernel resent does not ([`super::rtt::KARN_LIMIT`]).
    pub tries_matched: bool,
    /// Packets a connect sends after an open port's answer (the handshake's ACK, the close's
    /// reset, a reset to the server's own close), held in the windows while they may still be
    /// queued on the path
    /// ([`super::host::FollowUps`]): [`CONNECT_FOLLOW_UPS`] for the connect scan, 0 for raw
    /// SYNs (whose kernel's one reset to a SYN-ACK is left out).
    pub follow_ups: usize,
}

/// A probe to send.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Its identity, to report its answer with.
    pub id: ProbeId,
    /// The host.
    pub host: Arc<HostInfo>,
    /// The port.
    pub port: u16,
    /// 0 for the first try, 1 for the first retransmission, ...
    pub tryno: u32,
    /// When the socket should give up waiting by itself (the engine may be told to close it
    /// earlier).
    pub expires: Instant,
    /// Whether it is a timing probe ([`super::timing`]), whose place in its burst matters.
    pub timing: bool,
}

/// What became of a probe, as the engine saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// The network answered after `rtt`.
    Answered(Answer, Duration),
    /// The socket reached its expiry without an answer.
    Silent,
    /// The connection joined two probes of this scan: no answer about the port.
    Phantom,
    /// This machine was short of a resource; the probe never left.
    Busy,
}

/// A port's state and what decided it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// The state.
    pub state: PortState,
    /// Why, in nmap's `--reason` words.
    pub reason: Reason,
    /// The round trip of the answer that decided it (`None`: no answer came).
    pub rtt: Option<Duration>,
    /// Probes sent to the port.
    pub tries: u32,
    /// The router whose ICMP error decided it (nmap's `reason_ip`); `None` when the target
    /// itself answered, or nothing did.
    pub from: Option<IpAddr>,
    /// The TTL (IPv6: hop limit) of the answer that decided it, where the engine reads it
    /// (raw SYNs; nmap's `reason_ttl`).
    pub ttl: Option<u8>,
}

/// What an answer decided.
#[derive(Debug, Clone)]
pub enum Settled {
    /// Nothing (a late or duplicate answer, or a port still undecided).
    Nothing,
    /// The port got its state.
    Port(Arc<HostInfo>, u16, Verdict),
    /// There is no route to the host; its remaining ports are skipped.
    Unreachable(Arc<HostInfo>, NoRoute),
    /// The machine has been short of resources for too long.
    GaveUp,
}

impl Settled {
    /// The same, a port's verdict naming `from` as the router whose ICMP error decided it.
    fn from(mut self, from: IpAddr) -> Self {
        if let Settled::Port(_, _, verdict) = &mut self {
            verdict.from = Some(from);
        }
        self
    }
}

/// The totals so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Open ports.
    pub open: u64,
    /// Closed ports.
    pub closed: u64,
    /// Filtered ports.
    pub filtered: u64,
    /// Hosts found unreachable.
    pub unreachable: u64,
    /// Ports done: settled, or skipped on an unreachable host.
    pub done: u64,
    /// Probes sent, retransmissions included.
    pub sent: u64,
    /// Retransmissions sent.
    pub retransmitted: u64,
    /// Answers that came to a try after it had timed out.
    pub late: u64,
    /// Answers that only a retransmission got.
    pub drops: u64,
    /// Probes taken out of the windows before their timeouts ([`Settings::queue_bound`]).
    pub presumed: u64,
    /// Timing probes sent ([`super::timing`]; not in `sent`).
    pub timing: u64,
}

#[derive(Debug, Clone, Copy)]
struct Sent {
    host: usize,
    port: usize,
    tryno: u32,
    at: Instant,
    /// When the try before this one left (its own time for a first try): an answer to this
    /// try means that one was lost, at that time.
    lost_at: Instant,
    timed_out: bool,
    /// Whether it counts in the windows: until it is answered or times out, or is presumed
    /// lost ([`Scheduler::presume_lost`]).
    in_window: bool,
    /// Whether it is a timing probe ([`super::timing`]): its answer settles nothing.
    timing: bool,
    /// A port's last try: until when it waits for the target's own retransmission of an
    /// answer ([`Settings::answer_retransmit`]).
    retransmit_until: Option<Instant>,
    /// The latest its wait may be stretched to, but for its kernel's resends
    /// ([`Scheduler::wait_extended`]): when its socket would close without them.
    wait_ends: Instant,
    /// Whether its port was filtered while it stayed open for a late answer, which then
    /// teaches only the round trip ([`Scheduler::settle`]).
    kept: bool,
}

/// Growing pauses while the machine is short of descriptors, buffers or source ports.
#[derive(Debug, Default)]
struct Shortage {
    pause: Duration,
    since: Option<Instant>,
    until: Option<Instant>,
}

impl Shortage {
    /// Pauses sending; false once the shortage has lasted [`GIVE_UP`].
    fn hit(&mut self, now: Instant) -> bool {
        self.pause = (self.pause * 2).clamp(Duration::from_millis(1), MAX_PAUSE);
        self.until = Some(now + self.pause);
        now.duration_since(*self.since.get_or_insert(now)) < GIVE_UP
    }

    fn clear(&mut self) {
        self.pause = Duration::ZERO;
        self.since = None;
    }

    fn blocks(&self, now: Instant) -> bool {
        self.until.is_some_and(|until| now < until)
    }
}

/// The scheduler of one scan.
#[derive(Debug)]
pub struct Scheduler<I> {
    settings: Settings,
    ports: Arc<[u16]>,
    targets: I,
    exhausted: bool,
    hosts: Vec<Option<HostScan>>,
    active: usize,
    cursor: usize,
    probes: HashMap<ProbeId, Sent>,
    timers: BinaryHeap<Reverse<(Instant, ProbeId)>>,
    /// When retransmissions leave the windows ([`Settings::queue_bound`]): after a first
    /// try's timeout, though they wait longer for an answer.
    window_timers: BinaryHeap<Reverse<(Instant, ProbeId)>>,
    lingering: VecDeque<ProbeId>,
    /// The tries kept open after their ports were filtered, by host slot
    /// ([`Scheduler::settle`]): closed when their host is done.
    kept: HashMap<usize, Vec<ProbeId>>,
    /// When ports' last tries stop waiting for the target's own retransmission of an answer
    /// ([`Scheduler::await_retransmit`]).
    retransmit_timers: BinaryHeap<Reverse<(Instant, ProbeId)>>,
    to_close: Vec<ProbeId>,
    /// Retransmissions held back until then, by host slot and port index
    /// ([`Scheduler::spread`]).
    spread_timers: BinaryHeap<Reverse<(Instant, usize, usize)>>,
    finished: Vec<(Arc<HostInfo>, StateCounts)>,
    silenced: Vec<(Arc<HostInfo>, u16, Verdict)>,
    /// Hosts found unreachable outside of a reply (see [`HostScan::no_route`]).
    unreached: Vec<(Arc<HostInfo>, NoRoute)>,
    next_id: ProbeId,
    in_flight: usize,
    open_sockets: usize,
    /// Handshake packets on the path, over every host ([`super::host::FollowUps`]).
    follow_ups: usize,
    window: Window,
    rtt: Rtt,
    ceiling: Option<Pacer>,
    floor: Option<Floor>,
    rate: RateControl,
    shortage: Shortage,
    loss: Loss,
    probes_total: f64,
    counts: Counts,
    /// Hosts with nothing in flight and nothing to send whose benched ports wait for the
    /// scan's pooled budget to grow (reviewed after every reply and expiry).
    waiting: Vec<usize>,
    /// The pooled budget when they were last reviewed.
    waiting_for: u32,
    /// The time of the last call in: when a port's last try, launched while more tries were
    /// allowed, may still be waiting for its answer ([`Scheduler::belated_wait`]).
    now: Instant,
}

impl<I: Iterator<Item = Arc<HostInfo>>> Scheduler<I> {
    /// A scan of every port of `ports` on every host of `targets`, starting at `now`.
    pub fn new(targets: I, ports: Arc<[u16]>, settings: Settings, now: Instant) -> Self {
        let max = settings.max_in_flight.max(1);
        let probes_total = targets.size_hint().0.max(1) as f64 * ports.len() as f64;
        let mut window = Window::new(Scope::Group, max);
        if settings.queue_bound {
            window.bound_by_queue();
        }
        let rtt = new_rtt(&settings);
        Scheduler {
            ceiling: settings.rate.map(spacing),
            rate: RateControl::default(),
            floor: settings.min_rate.map(|rate| Floor::per_second(rate, now)),
            window,
            exhausted: ports.is_empty(),
            settings,
            ports,
            targets,
            hosts: Vec::new(),
            active: 0,
            cursor: 0,
            probes: HashMap::new(),
            timers: BinaryHeap::new(),
            window_timers: BinaryHeap::new(),
            lingering: VecDeque::new(),
            retransmit_timers: BinaryHeap::new(),
            kept: HashMap::new(),
            to_close: Vec::new(),
            spread_timers: BinaryHeap::new(),
            finished: Vec::new(),
            silenced: Vec::new(),
            unreached: Vec::new(),
            next_id: 0,
            in_flight: 0,
            open_sockets: 0,
            follow_ups: 0,
            rtt,
            shortage: Shortage::default(),
            loss: Loss::default(),
            probes_total,
            counts: Counts::default(),
            waiting: Vec::new(),
            waiting_for: 0,
            now,
        }
    }

    /// The totals so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Whether every host is done.
    pub fn is_done(&mut self) -> bool {
        self.admit();
        self.exhausted && self.active == 0
    }

    /// What the retry budgets depend on beyond each host.
    fn budget(&self) -> Budget {
        Budget {
            retries: self.settings.retries,
            probes: self.probes_total,
            pooled: self.loss.tries_needed(self.probes_total, false),
        }
    }

    /// Probes whose sockets the engine should close now.
    pub fn take_closes(&mut self) -> Vec<ProbeId> {
        std::mem::take(&mut self.to_close)
    }

    /// Ports filtered for silence since the last call: they get their state inside the
    /// scheduler (a timeout, a budget that cannot grow), not from a [`Scheduler::reply`].
    pub fn take_silenced(&mut self) -> Vec<(Arc<HostInfo>, u16, Verdict)> {
        std::mem::take(&mut self.silenced)
    }

    /// The hosts found unreachable since the last call other than by a reply's
    /// [`Settled::Unreachable`]: a router said "no route" for some of their ports, and nothing
    /// else was heard of them by the time their tries in flight ended.
    pub fn take_unreached(&mut self) -> Vec<(Arc<HostInfo>, NoRoute)> {
        std::mem::take(&mut self.unreached)
    }

    /// Admits hosts into the group up to its size.
    fn admit(&mut self) {
        let max_window = self.settings.max_in_flight.clamp(1, HOST_MAX_WINDOW);
        while !self.exhausted && self.active < self.settings.group.max(1) {
            let Some(info) = self.targets.next() else {
                self.exhausted = true;
                return;
            };
            let mut host = HostScan::new(info, max_window);
            host.rtt = new_rtt(&self.settings);
            if self.settings.queue_bound {
                host.window.bound_by_queue();
            }
            let host = Some(host);
            match self.hosts.iter().position(Option::is_none) {
                Some(free) => self.hosts[free] = host,
                None => self.hosts.push(host),
            }
            self.active += 1;
        }
    }

    /// The next probe to send at `now`, if one may leave.
    pub fn poll(&mut self, now: Instant) -> Option<Probe> {
        self.now = now;
        self.admit();
        if self.shortage.blocks(now) || !self.ceiling.as_ref().is_none_or(|c| c.ready(now)) {
            return None;
        }
        let forced = self.floor.as_ref().is_some_and(|f| f.is_due(now));
        let open = self.window.has_room(self.occupied()) && self.rate.ready(now);
        if !(open || forced) {
            return None;
        }
        let slots = self.hosts.len();
        for step in 0..slots {
            let slot = (self.cursor + step) % slots;
            if let Some(port) = self.timing_port(slot, now) {
                self.cursor = slot + 1;
                return self.launch_timing(slot, port, now);
            }
            if let Some(port) = self.port_to_send(slot, forced, now) {
                self.cursor = slot + 1;
                return self.launch(slot, port, now);
            }
        }
        None
    }

    /// The port the host in `slot` sends to next, if it may send.
    fn port_to_send(&mut self, slot: usize, forced: bool, now: Instant) -> Option<usize> {
        let ports = self.ports.len();
        let host = self.hosts.get_mut(slot)?.as_mut()?;
        let ready = host.window.has_room(host.occupied()) && host.rate.ready(now);
        if !(ready || forced) || host.no_route.is_some() {
            return None;
        }
        match self.settings.queue_bound {
            true => host.take_port_alternating(ports),
            false => host.take_port(ports),
        }
    }

    /// The port index of a timing probe the host in `slot` should send at `now`, if one is
    /// due and may leave: the host still has ports to try, and room in its window.
    fn timing_port(&self, slot: usize, now: Instant) -> Option<usize> {
        let host = self.hosts.get(slot)?.as_ref()?;
        let ready = host.window.has_room(host.occupied()) && host.rate.ready(now);
        if !ready || !host.has_work(self.ports.len()) || host.no_route.is_some() {
            return None;
        }
        host.timing.due(now, || self.timeout_of(slot, now))
    }

    /// Records a timing probe to port index `port` of the host in `slot`, sent at `now`.
    fn launch_timing(&mut self, slot: usize, port: usize, now: Instant) -> Option<Probe> {
        self.make_room();
        let id = self.next_id;
        self.next_id += 1;
        let bounds = self.settings.timeouts;
        let deadline = now + try_timeout(self.timeout_of(slot, now), 0, false, &bounds);
        let host = self.hosts[slot].as_mut()?;
        host.timing.launched(id, now);
        host.burst.sent(now);
        host.in_flight += 1;
        host.rate.sent(now);
        if self.settings.queue_bound {
            host.sent_order.push_back((now, id));
        }
        let info = Arc::clone(&host.info);
        let rec = Sent {
            host: slot,
            port,
            tryno: 0,
            at: now,
            lost_at: now,
            timed_out: false,
            in_window: true,
            timing: true,
            retransmit_until: None,
            wait_ends: now,
            kept: false,
        };
        self.probes.insert(id, rec);
        self.timers.push(Reverse((deadline, id)));
        self.in_flight += 1;
        self.open_sockets += 1;
        self.counts.timing += 1;
        self.account_send(now);
        Some(Probe {
            id,
            host: info,
            port: self.ports[port],
            tryno: 0,
            expires: deadline,
            timing: true,
        })
    }

    /// Records the next try of port index `port` on the host in `slot`, sent at `now`.
    fn launch(&mut self, slot: usize, port: usize, now: Instant) -> Option<Probe> {
        self.make_room();
        let id = self.next_id;
        self.next_id += 1;
        let (budget, bounds) = (self.budget(), self.settings.timeouts);
        let base = self.timeout_of(slot, now);
        let wait = self.answer_wait(slot, base);
        let host = self.hosts[slot].as_mut()?;
        let progress = host.pending.entry(port).or_default();
        let tryno = progress.sent;
        let lost_at = progress.last_at.replace(now).unwrap_or(now);
        progress.first_at.get_or_insert(now);
        progress.sent += 1;
        progress.live.push(id);
        let last = progress.sent >= host.allowed_tries(&budget);
        let mut linger = match host.rtt.unbounded_timeout() {
            // The round trips are longer than `--timeout` lets a try wait: the try is
            // retransmitted on time, and still open when its answer comes.
            Some(full) if full > bounds.max => LINGER.max(full),
            Some(_) => LINGER,
            None => LINGER.max(bounds.max).max(UNANSWERED_LINGER),
        };
        let again = wait.filter(|_| last);
        linger = linger.max(again.unwrap_or_default());
        let wait_ends = now + linger;
        let resends = self.settings.kernel_resends && self.settings.retries.is_fixed();
        if let (Some(again), true) = (again, resends) {
            // Open until the last resend's answer may come ([`Self::resend_wait`]), with room
            // for a longer round trip: the scheduler closes it when its port settles, at
            // `wait_ends` unless drops showed on the host meanwhile.
            linger = linger.max(again + KERNEL_SYN_RESENDS[KERNEL_SYN_RESENDS.len() - 1]);
        }
        host.in_flight += 1;
        host.rate.sent(now);
        host.timing.sent(now);
        host.burst.sent(now);
        if self.settings.queue_bound {
            host.sent_order.push_back((now, id));
        }
        let info = Arc::clone(&host.info);
        let deadline = now + try_timeout(base, tryno, last, &bounds);
        let wait_ends = deadline.max(wait_ends);
        let rec = Sent {
            host: slot,
            port,
            tryno,
            at: now,
            lost_at,
            timed_out: false,
            in_window: true,
            timing: false,
            retransmit_until: again.map(|again| now + again),
            wait_ends,
            kept: false,
        };
        self.probes.insert(id, rec);
        self.timers.push(Reverse((deadline, id)));
        if self.settings.queue_bound && tryno > 0 {
            let leaves = now + base.clamp(bounds.min, bounds.max);
            self.window_timers.push(Reverse((leaves.min(deadline), id)));
        }
        self.in_flight += 1;
        self.open_sockets += 1;
        self.counts.sent += 1;
        self.counts.retransmitted += u64::from(tryno > 0);
        self.account_send(now);
        Some(Probe {
            id,
            host: info,
            port: self.ports[port],
            tryno,
            expires: deadline.max(now + linger),
            timing: false,
        })
    }

    /// Closes the oldest lingering sockets while the socket budget is spent.
    fn make_room(&mut self) {
        let most = self
            .settings
            .max_sockets
            .max(self.settings.max_in_flight)
            .max(1);
        while self.open_sockets >= most {
            let Some(id) = self.lingering.pop_front() else {
                return;
            };
            self.close_lingering(id);
        }
    }

    fn account_send(&mut self, now: Instant) {
        if let Some(ceiling) = &mut self.ceiling {
            ceiling.take(now);
        }
        self.rate.sent(now);
        if let Some(floor) = &mut self.floor {
            floor.sent(now);
        }
    }

    /// How long a port's last try to the host in `slot` waits for its answer, when a first try
    /// gets `base` ([`Settings::answer_retransmit`]): the target's own retransmission of it
    /// comes [`SYN_ACK_RETRANSMIT`] and a round trip after the try. The round trip is the
    /// longest seen (× [`LONGEST_MARGIN`]) when it is longer than the timeout: answers that
    /// skipped a long path's delay (reordered) may have lowered the timeout below that path,
    /// and `--timeout` caps the timeout, not how long an answer counts (nmap -sS takes the
    /// answers that come past its `--max-rtt-timeout`). `None`: no wait.
    fn answer_wait(&self, slot: usize, base: Duration) -> Option<Duration> {
        let again = self.settings.answer_retransmit?;
        let bounds = &self.settings.timeouts;
        let host = self.hosts.get(slot)?.as_ref()?;
        let longest = host.rtt.max().max(self.rtt.max()).unwrap_or_default();
        let longest = longest.mul_f64(LONGEST_MARGIN);
        Some(again + base.clamp(bounds.min, bounds.max).max(longest))
    }

    /// When the wait of `rec`, a port's last try, for its answer ends under what is known at
    /// `now`, if that is later than it was: round trips longer than any seen when it left
    /// may have come meanwhile, and its socket is still open.
    fn wait_extended(&self, rec: &Sent, now: Instant) -> Option<Instant> {
        let until = rec.retransmit_until?;
        let base = self.timeout_of(rec.host, now);
        let wait = self.answer_wait(rec.host, base)?;
        let host = self.hosts[rec.host].as_ref()?;
        if self.resends_awaited(host) {
            let later = Some(rec.at + wait).filter(|later| *later > until.max(now));
            return later.or_else(|| self.resend_wait(rec, base, until.max(now)));
        }
        let later = (rec.at + wait).min(rec.wait_ends);
        Some(later).filter(|later| *later > until.max(now))
    }

    /// When the wait of `rec`, a port's last try, for the answer to its kernel's next resend
    /// of the SYN after `after` ends ([`Settings::kernel_resends`]): the resend's time and
    /// the round trip [`Self::answer_wait`] allows past [`SYN_ACK_RETRANSMIT`]. Only with a
    /// fixed budget and once the host showed drops: there a silent port is as likely a lost
    /// try as a filtered port, and the budget cannot grow to tell them apart. Audit (one host
    /// behind a policer passing 10 SYNs a second, `--retries 1`): 2-23 of 58 closed ports came
    /// out filtered per run, nmap -sT `--max-retries 1` 0-10, its sockets open for seconds.
    fn resend_wait(&self, rec: &Sent, base: Duration, after: Instant) -> Option<Instant> {
        if !self.resends_awaited(self.hosts[rec.host].as_ref()?) {
            return None;
        }
        let trip = self
            .answer_wait(rec.host, base)?
            .checked_sub(SYN_ACK_RETRANSMIT)?;
        let ends = KERNEL_SYN_RESENDS
            .iter()
            .map(|resend| rec.at + *resend + trip);
        ends.into_iter().find(|end| *end > after)
    }

    /// The timeout at `now` of a first try to the host in `slot`: its own estimate, else the
    /// scan's, above the floor its late answers set.
    fn timeout_of(&self, slot: usize, now: Instant) -> Duration {
        let bounds = &self.settings.timeouts;
        match self.hosts[slot].as_ref() {
            Some(host) if host.rtt.is_measured() => {
                host.late.apply(host.rtt.timeout(bounds), bounds, now)
            }
            Some(host) => host.late.apply(self.rtt.timeout(bounds), bounds, now),
            None => self.rtt.timeout(bounds),
        }
    }

    /// Handles the end of probe `id` at `now`.
    pub fn reply(&mut self, id: ProbeId, reply: Reply, now: Instant) -> Settled {
        self.now = now;
        let Some(rec) = self.probes.remove(&id) else {
            return Settled::Nothing;
        };
        self.open_sockets -= 1;
        self.forget_live(&rec, id);
        if rec.timing {
            self.timing_ended(rec, reply, now);
            self.review_waiting();
            return Settled::Nothing;
        }
        let settled = match reply {
            Reply::Busy => self.unsend(rec, now),
            Reply::Phantom => self.phantom(rec),
            Reply::Silent | Reply::Answered(Answer::Nothing, _) => {
                match rec.timed_out {
                    false => self.after_timeout(rec, now),
                    true => self.wait_ended(&rec),
                }
                Settled::Nothing
            }
            Reply::Answered(answer, rtt) => {
                let settled = self.answered(rec, answer, rtt, now);
                self.review(rec.host);
                settled
            }
        };
        self.resolve_hold(rec.host);
        self.review_waiting();
        settled
    }

    /// A timing probe ended: a handshake or a reset feeds the estimates and grows the
    /// windows [`MAGNIFIER`] times; anything else only takes it out of the windows.
    fn timing_ended(&mut self, rec: Sent, reply: Reply, now: Instant) {
        if let Some(host) = self.hosts[rec.host].as_mut() {
            host.timing.take_live();
        }
        match reply {
            Reply::Answered(answer @ (Answer::Open | Answer::Closed), rtt) => {
                if answer == Answer::Open {
                    self.handshake(rec.host, now);
                }
                self.shortage.clear();
                self.measure(&rec, rtt, now, MAGNIFIER);
                self.control(&rec, true, now);
            }
            Reply::Silent | Reply::Answered(Answer::Nothing, _) => {
                self.leave_flight(&rec);
                self.control(&rec, false, now);
            }
            _ => self.leave_flight(&rec),
        }
    }

    /// Feeds the paces of the host and of the scan with a timing probe's fate: a port that
    /// answered before answers again unless the probe or its answer was lost.
    fn control(&mut self, rec: &Sent, answered: bool, now: Instant) {
        self.loss.control(answered);
        if let Some(host) = self.hosts[rec.host].as_mut() {
            host.control(answered);
            let scarce = host.few_answers();
            host.rate.answers_lost(host.retried_share());
            if let Some(rate) = host.rate.control(rec.at, answered, scarce, now) {
                let addr = &host.info.target.addr;
                tracing::debug!("scan {addr}: timing probes lost, pacing at {rate:.0}/s");
            }
        }
        let scarce = self.loss.few_answers();
        self.rate.answers_lost(self.loss.retried_share());
        if let Some(rate) = self.rate.control(rec.at, answered, scarce, now) {
            tracing::debug!("scan: timing probes lost, pacing the scan at {rate:.0}/s");
        }
        // The budget may have grown: benched ports go back to the retry queue.
        self.review(rec.host);
    }

    /// Closes the timing probe of the host in `slot`, if one is in flight.
    fn close_timing(&mut self, slot: usize) {
        let live = self.hosts[slot].as_mut().and_then(|h| h.timing.take_live());
        if let Some(id) = live {
            self.close(id);
        }
    }

    /// Takes probe `id` off its port's list of open sockets.
    fn forget_live(&mut self, rec: &Sent, id: ProbeId) {
        let host = self.hosts[rec.host].as_mut();
        if let Some(progress) = host.and_then(|h| h.pending.get_mut(&rec.port)) {
            progress.live.retain(|live| *live != id);
        }
    }

    /// A probe that never left: the same try goes again after a pause, and lingering sockets
    /// are closed to free descriptors.
    fn unsend(&mut self, rec: Sent, now: Instant) -> Settled {
        self.requeue(rec);
        for id in std::mem::take(&mut self.lingering) {
            self.close_lingering(id);
        }
        if self.settings.queue_bound && self.shortage.blocks(now) {
            return Settled::Nothing;
        }
        if self.shortage.hit(now) {
            Settled::Nothing
        } else {
            Settled::GaveUp
        }
    }

    /// Puts the try of `rec` back at the front of its host's queue, as if never sent.
    fn requeue(&mut self, rec: Sent) {
        self.leave_flight(&rec);
        let Some(host) = self.hosts[rec.host].as_mut() else {
            return;
        };
        if let Some(progress) = host.pending.get_mut(&rec.port) {
            progress.sent = progress.sent.min(rec.tryno);
            host.queue_retry(rec.port, true);
        }
    }

    /// Takes `rec` out of the in-flight counts, unless it left them already (timed out, or
    /// presumed lost).
    fn leave_flight(&mut self, rec: &Sent) {
        if !rec.in_window {
            return;
        }
        self.in_flight -= 1;
        if let Some(host) = self.hosts[rec.host].as_mut() {
            host.in_flight -= 1;
        }
    }

    fn phantom(&mut self, rec: Sent) -> Settled {
        let host = self.hosts[rec.host].as_mut();
        let progress = host.and_then(|h| h.pending.get_mut(&rec.port));
        let phantoms = progress.map_or(0, |p| {
            p.phantoms += 1;
            p.phantoms
        });
        self.requeue(rec);
        if phantoms >= MAX_PHANTOMS {
            // Nothing listens: every connect joined another probe of this scan.
            return self.settle(
                rec.host,
                rec.port,
                PortState::Closed,
                Reason::ConnRefused,
                None,
            );
        }
        Settled::Nothing
    }

    /// An answer from the network.
    fn answered(&mut self, rec: Sent, answer: Answer, rtt: Duration, now: Instant) -> Settled {
        self.shortage.clear();
        let resent = self.resent_answer(&rec, answer, rtt);
        if rec.kept {
            // Its port is filtered already: the answer teaches the round trip only.
            if !resent && !answer.is_local() {
                self.measure(&rec, rtt, now, 1.0);
            }
            return Settled::Nothing;
        }
        match (resent, answer.is_local()) {
            (true, _) => self.counts.late += 1,
            // This machine's own refusal: no round trip, nothing about the path.
            (false, true) => self.leave_flight(&rec),
            (false, false) => self.measure(&rec, rtt, now, 1.0),
        }
        if answer == Answer::Open {
            self.handshake(rec.host, now);
        }
        if let (Some(host), Answer::Open | Answer::Closed) = (self.hosts[rec.host].as_mut(), answer)
        {
            host.timing
                .answered_port(rec.port, answer == Answer::Closed);
        }
        let alive = matches!(
            answer,
            Answer::Open | Answer::Closed | Answer::Filtered(Refusal::HostUnreach)
        );
        if let (true, Some(host)) = (alive, self.hosts[rec.host].as_mut()) {
            host.answered = true;
            self.release_held(rec.host);
        }
        let (state, reason) = match answer {
            Answer::Open => (PortState::Open, Reason::SynAck),
            Answer::Closed => (PortState::Closed, self.settings.reset),
            Answer::Filtered(refusal) => (PortState::Filtered, refusal.reason()),
            Answer::RouterRefused(refusal, from) => {
                let reason = refusal.reason();
                let settled =
                    self.settle(rec.host, rec.port, PortState::Filtered, reason, Some(rtt));
                return settled.from(from);
            }
            Answer::Nothing => (PortState::Filtered, Reason::NoResponse),
            Answer::Unreachable(no_route) if no_route.from.is_some() => {
                return self.router_no_route(&rec, no_route, rtt)
            }
            Answer::Unreachable(no_route) => return self.unreachable(rec.host, no_route),
        };
        if matches!(answer, Answer::Open | Answer::Closed) && !resent {
            self.tcp_answer(&rec, rtt, now);
        }
        self.settle(rec.host, rec.port, state, reason, Some(rtt))
    }

    /// Whether an answer after `rtt` to `rec` may be the target's own retransmission of it
    /// ([`Settings::answer_retransmit`]): it settles the port but tells nothing of the round
    /// trip or of loss (Karn's rule).
    /// The target's retransmission comes `again` after its first answer, so a round trip
    /// later than the try: an answer sooner than `again` and half the least round trip seen
    /// answers the try itself (behind a 1.2 s round trip, every answer came a second late, and
    /// none taught a round trip or a loss). Only a handshake is sent again: a reset is never
    /// retransmitted (RFC 9293 §3.10.7.1), so it answers the try itself (or, for a connect, the
    /// SYN its kernel resent, which [`Rtt::sample`] leaves out). Audit: behind 1.4 s with
    /// `--timeout 300ms --retries 0`, every reset was taken for a retransmission, no round trip
    /// was learned, and the later tries' waits never grew past the path.
    fn resent_answer(&self, rec: &Sent, answer: Answer, rtt: Duration) -> bool {
        let Some(again) = self.settings.answer_retransmit else {
            return false;
        };
        let min = (self.hosts[rec.host].as_ref()).and_then(|h| h.rtt.min());
        if self.resend_answer(rec, rtt, min) {
            return true;
        }
        if answer != Answer::Open {
            return false;
        }
        let again = again + min.unwrap_or_default() / 2;
        rec.retransmit_until.is_some() && rec.timed_out && rtt >= again
    }

    /// Whether the last tries to `host` wait for their kernel's resends of the SYN
    /// ([`Self::resend_wait`]): connects, a fixed budget, and drops seen on the host. Else a
    /// last try's wait ends when its socket would have closed without them
    /// ([`Sent::wait_ends`]): left open longer, the sockets' resends took a far kernel's
    /// rate-limited ICMP errors from the ports' own tries, and the late answers stretched
    /// every wait (one host, 1000 ports rejected behind the ICMP rate limit, `--retries 0`:
    /// 2.1 → 5.1 s).
    fn resends_awaited(&self, host: &HostScan) -> bool {
        let settings = &self.settings;
        settings.kernel_resends && settings.retries.is_fixed() && host.max_answered_try() > 0
    }

    /// Whether an answer after `rtt` to `rec`, a connect, may answer its kernel's second or
    /// later resend of the SYN ([`Settings::kernel_resends`]): seconds late, it would raise
    /// the host's timeout to seconds ([`super::rtt::LateFloor`]) for no round trip of the path.
    /// Only once a round trip was seen (`min`): a path's first answers may take that long.
    fn resend_answer(&self, rec: &Sent, rtt: Duration, min: Option<Duration>) -> bool {
        let Some(min) = min else {
            return false;
        };
        let second = KERNEL_SYN_RESENDS[1] + min / 2;
        self.settings.kernel_resends && rec.timed_out && rtt >= second
    }

    /// What holds room in the scan's window: tries in flight and handshake packets on the
    /// path.
    fn occupied(&self) -> usize {
        self.in_flight + self.follow_ups
    }

    /// An open port of the host in `slot` answered a connect at `now`: the handshake's ACK
    /// and the close's reset go out ([`Settings::follow_ups`]), and are held in the windows
    /// while the round trips show a queue on the path, where they wait with the probes.
    /// Without a queue they are through at once; held there, they only slowed the windows and
    /// changed how a SYN policer's drops were met (closed ports behind one called filtered in
    /// the scheduler's simulation).
    fn handshake(&mut self, slot: usize, now: Instant) {
        let packets = self.settings.follow_ups;
        let Some(host) = self.hosts[slot].as_mut() else {
            return;
        };
        if packets == 0 || host.rtt.delay() == Delay::Clear {
            return;
        }
        // The reset to the server's own close leaves when that close arrives, about a round
        // trip later: only answers to probes sent after that show all of them through.
        let srtt = host.rtt.srtt().unwrap_or_default();
        host.follow_ups.add(packets, now + srtt);
        self.follow_ups += packets;
    }

    /// Feeds the round-trip estimates and the windows with an answer, growing the windows
    /// `gain` times as much as one answer does.
    fn measure(&mut self, rec: &Sent, rtt: Duration, now: Instant, gain: f64) {
        self.counts.late += u64::from(rec.timed_out);
        self.leave_flight(rec);
        if self.settings.queue_bound {
            self.presume_lost(rec.host, rec.at);
        }
        if !rec.timed_out {
            self.window.expect();
        }
        self.rtt.sample(rtt);
        self.window.ack_magnified(self.rtt.delay(), gain);
        let Some(host) = self.hosts[rec.host].as_mut() else {
            return;
        };
        if !rec.timed_out {
            host.window.expect();
        }
        self.follow_ups -= host.follow_ups.release(rec.at);
        host.rtt.sample(rtt);
        if rec.timed_out {
            host.late.late(rtt, now);
        }
        host.timing.heard(now);
        host.window.ack_magnified(host.rtt.delay(), gain);
        let interval = host.rtt.srtt().unwrap_or_default();
        host.rate.tick(interval, now);
    }

    /// Takes out of the windows the probes of the host in `slot` still in flight that left
    /// well before `answered_at` (a quarter of the least round trip, at least [`REORDER`]),
    /// when a probe sent at `answered_at` got its answer: the path delivers in order, so they
    /// were lost or will never be answered (a port that drops), and no longer hold the
    /// bottleneck's queue (RACK's rule, RFC 8985). They still wait for an answer until their
    /// timeouts, which alone decide retransmissions and states.
    fn presume_lost(&mut self, slot: usize, answered_at: Instant) {
        let Some(host) = self.hosts[slot].as_mut() else {
            return;
        };
        let reorder = host.rtt.min().map_or(REORDER, |min| (min / 4).max(REORDER));
        let Some(cutoff) = answered_at.checked_sub(reorder) else {
            return;
        };
        while let Some(&(at, id)) = host.sent_order.front() {
            if at >= cutoff {
                return;
            }
            host.sent_order.pop_front();
            let Some(rec) = self.probes.get_mut(&id) else {
                continue;
            };
            if rec.in_window {
                rec.in_window = false;
                self.in_flight -= 1;
                host.in_flight -= 1;
                self.counts.presumed += 1;
            }
        }
    }

    /// Takes probe `id` out of the windows, if it is still in them; it still waits for its
    /// answer.
    fn out_of_window(&mut self, id: ProbeId) {
        let Some(rec) = self.probes.get_mut(&id) else {
            return;
        };
        if !rec.in_window {
            return;
        }
        rec.in_window = false;
        self.in_flight -= 1;
        if let Some(host) = self.hosts[rec.host].as_mut() {
            host.in_flight -= 1;
        }
        self.counts.presumed += 1;
    }

    /// The try an answer after `rtt` to `rec` counts as in the loss: its own, or, for a
    /// connect answered after its kernel's first resend of the SYN ([`KERNEL_SYN_RESENDS`],
    /// [`Rtt::may_answer_resend`]), the next: the try itself was lost, its resend answered.
    /// Counted as a first try's answer, such an answer hid the loss: behind a 10 SYN/s
    /// policer at 20% loss each way, five ports answered only the resend a second later, no
    /// loss showed, and the silent ports were filtered after their two or three tries (6-9
    /// of 18 closed ports in the lab). Not the port's other tries sent until the resend,
    /// though they were lost too: at 20% random loss and a short timeout those are many, and
    /// the loss they showed paced a scan down to 8/s now and then (`regression::scan::
    /// an_answer_to_a_seventh_try_at_random_loss_paced_the_scan_down`, 2 runs of 4).
    fn answered_try(&self, rec: &Sent, rtt: Duration) -> u32 {
        let Some(host) = self.hosts[rec.host].as_ref() else {
            return rec.tryno;
        };
        if !self.settings.kernel_resends || !host.rtt.may_answer_resend(rtt) {
            return rec.tryno;
        }
        rec.tryno + 1
    }

    /// A reset or a handshake after `rtt`: evidence of loss when only a retransmission got
    /// it (for the budget, also a kernel's resend: [`Self::answered_try`]).
    fn tcp_answer(&mut self, rec: &Sent, rtt: Duration, now: Instant) {
        // The pace follows the try answered, as before: the try a kernel's resend stands for
        // counts in the budget only.
        let tryno = self.answered_try(rec, rtt);
        let dropped = rec.tryno > 0;
        let budget = self.budget();
        let ports = self.ports.len();
        let Some(host) = self.hosts[rec.host].as_mut() else {
            return;
        };
        // An answer to a later try than the loss explains, or loss beyond what the retry cap
        // can cover (a SYN policer: there the slower pace keeps ports exact).
        let loss_tries = host.loss_tries(&budget);
        let beyond_cap = loss_tries > budget.retries.cap() && !host.random_loss();
        let unexplained = rec.tryno >= loss_tries || beyond_cap;
        let slower = rec.tryno > host.max_answered_try() && rec.tryno > SLOW_TRIES && unexplained;
        host.tcp_answer(tryno);
        host.burst.answer(rec.at, now);
        self.loss.record(tryno);
        host.rate.answers_lost(host.retried_share());
        self.rate.answers_lost(self.loss.retried_share());
        let mut cut = host.rate.answer(rec.lost_at, dropped, now);
        if slower && cut.is_none() {
            cut = Some(host.rate.cut(now));
        }
        if host.first_tries.ended(rec.at, rec.tryno, true) {
            host.rate.undo_budget_cut(now);
        }
        if dropped && cut.is_none() && host.policed(budget.retries.is_fixed(), ports) {
            cut = host.rate.budget_cut(now);
            if cut.is_some() {
                host.first_tries.cut(now);
            }
        }
        if let Some(rate) = cut {
            tracing::debug!(
                "scan {}: drops, pacing at {rate:.0}/s",
                host.info.target.addr
            );
        }
        if let Some(rate) = self.rate.answer(rec.lost_at, dropped, now) {
            tracing::debug!("scan: drops on every host, pacing the scan at {rate:.0}/s");
        }
        if dropped {
            self.counts.drops += 1;
        }
        if dropped && host.rtt.is_queueing() {
            host.window.drop(host.in_flight, rec.lost_at, now);
            self.window.drop(self.in_flight, rec.lost_at, now);
        }
    }

    /// Gives port index `port` of the host in `slot` its state, for `reason` (an answer after
    /// `rtt`, or none), and closes its sockets; but a port filtered for silence before its
    /// host's round trip was measured keeps them open until they expire or the host is done:
    /// their late answers teach the round trip that the other ports' last tries wait for
    /// ([`Self::wait_extended`]). Audit: behind 1.4 s with `--timeout 300ms --retries 0`,
    /// each port was filtered 0.1 s before its answer came, which was thrown away, so no
    /// round trip was ever learned and every port came out filtered.
    fn settle(
        &mut self,
        slot: usize,
        port: usize,
        state: PortState,
        reason: Reason,
        rtt: Option<Duration>,
    ) -> Settled {
        let host = self.hosts[slot].as_mut();
        let Some((info, progress)) =
            host.and_then(|h| Some((Arc::clone(&h.info), h.remove(port)?)))
        else {
            return Settled::Nothing;
        };
        let unmeasured = self.hosts[slot]
            .as_ref()
            .is_some_and(|h| !h.rtt.is_measured());
        let keep = unmeasured && reason == Reason::NoResponse;
        for id in progress.live {
            match (keep, self.probes.get_mut(&id)) {
                (true, Some(rec)) => {
                    rec.kept = true;
                    self.kept.entry(slot).or_default().push(id);
                }
                _ => {
                    self.close(id);
                }
            }
        }
        if let Some(host) = self.hosts[slot].as_mut() {
            host.states.add(state, reason);
        }
        self.count(state);
        self.finish_host(slot);
        let verdict = Verdict {
            state,
            reason,
            rtt,
            tries: progress.sent,
            from: None,
            ttl: None,
        };
        Settled::Port(info, self.ports[port], verdict)
    }

    fn count(&mut self, state: PortState) {
        let counter = match state {
            PortState::Open => &mut self.counts.open,
            PortState::Closed => &mut self.counts.closed,
            PortState::Filtered => &mut self.counts.filtered,
        };
        *counter += 1;
        self.counts.done += 1;
    }

    /// Forgets probe `id` and asks the engine to close its socket.
    fn close(&mut self, id: ProbeId) -> Option<Sent> {
        let rec = self.probes.remove(&id)?;
        self.open_sockets -= 1;
        self.leave_flight(&rec);
        self.forget_live(&rec, id);
        self.to_close.push(id);
        Some(rec)
    }

    /// Closes lingering probe `id` before its time (the socket budget is spent): its port no
    /// longer waits for a late answer.
    fn close_lingering(&mut self, id: ProbeId) {
        if let Some(rec) = self.close(id) {
            self.wait_ended(&rec);
        }
    }

    /// A router said there is no route to the host of `rec` (ICMP network or host unreachable,
    /// time exceeded): a router's firewall may refuse some ports so (`REJECT --reject-with
    /// icmp-host-unreachable`), as nmap -sS reads it (the port filtered, `host-unreach`).
    /// Once the host answered anything, the port is filtered; before, the port is held and
    /// the host sends nothing more until its tries in flight end ([`Self::resolve_hold`]).
    fn router_no_route(&mut self, rec: &Sent, no_route: NoRoute, rtt: Duration) -> Settled {
        let Some(host) = self.hosts[rec.host].as_mut() else {
            return Settled::Nothing;
        };
        let reason = no_route.reason(host.info.target.addr.is_ipv6());
        if host.answered {
            let filtered = PortState::Filtered;
            let settled = self.settle(rec.host, rec.port, filtered, reason, Some(rtt));
            return match no_route.from {
                Some(from) => settled.from(from),
                None => settled,
            };
        }
        let Some(progress) = host.remove(rec.port) else {
            return Settled::Nothing;
        };
        host.no_route.get_or_insert(no_route);
        let verdict = Verdict {
            state: PortState::Filtered,
            reason,
            rtt: Some(rtt),
            tries: progress.sent,
            from: no_route.from,
            ttl: None,
        };
        host.held.push((rec.port, verdict));
        for id in progress.live {
            self.close(id);
        }
        match self.unreachable_if_silent(rec.host) {
            Some((info, no_route)) => Settled::Unreachable(info, no_route),
            None => Settled::Nothing,
        }
    }

    /// Decides a host held by a router's "no route" ([`HostScan::no_route`]) when it can:
    /// alive if it answered meanwhile, unreachable when none of its tries awaits an answer
    /// any more (reported by [`Self::take_unreached`]).
    fn resolve_hold(&mut self, slot: usize) {
        if let Some(found) = self.unreachable_if_silent(slot) {
            self.unreached.push(found);
        }
    }

    /// [`Self::resolve_hold`], giving the host found unreachable back.
    fn unreachable_if_silent(&mut self, slot: usize) -> Option<(Arc<HostInfo>, NoRoute)> {
        let host = self.hosts.get(slot)?.as_ref()?;
        let no_route = host.no_route?;
        if host.answered {
            self.release_held(slot);
            return None;
        }
        let awaited = host.pending.values().flat_map(|p| &p.live).any(|id| {
            self.probes
                .get(id)
                .is_some_and(|rec| !rec.timed_out && !rec.timing)
        });
        if awaited {
            return None;
        }
        match self.unreachable(slot, no_route) {
            Settled::Unreachable(info, no_route) => Some((info, no_route)),
            _ => None,
        }
    }

    /// Gives the ports of the host in `slot` held by a router's "no route" their verdicts:
    /// the host answered, so that router refused only those ports.
    fn release_held(&mut self, slot: usize) {
        let Some(host) = self.hosts[slot].as_mut() else {
            return;
        };
        host.no_route = None;
        let held = std::mem::take(&mut host.held);
        if held.is_empty() {
            return;
        }
        let info = Arc::clone(&host.info);
        for (_, verdict) in &held {
            host.states.add(verdict.state, verdict.reason);
        }
        for (port, verdict) in held {
            self.count(verdict.state);
            self.silenced
                .push((Arc::clone(&info), self.ports[port], verdict));
        }
        self.finish_host(slot);
    }

    /// Gives up the host in `slot`: there is no route to it.
    fn unreachable(&mut self, slot: usize, no_route: NoRoute) -> Settled {
        let Some(host) = self.hosts[slot].as_mut() else {
            return Settled::Nothing;
        };
        let info = Arc::clone(&host.info);
        let untried = self.ports.len() - host.next_port + host.held.len();
        let live: Vec<ProbeId> = host.pending.values().flat_map(|p| p.live.clone()).collect();
        let pending = host.pending.len();
        for id in live {
            self.close(id);
        }
        self.close_timing(slot);
        self.close_kept(slot);
        self.spread_timers
            .retain(|Reverse((_, held, _))| *held != slot);
        if let Some(host) = self.hosts[slot].take() {
            self.follow_ups -= host.follow_ups.count();
        }
        self.active -= 1;
        self.counts.done += (untried + pending) as u64;
        self.counts.unreachable += 1;
        Settled::Unreachable(info, no_route)
    }

    /// Frees the slot of a host whose every port is settled, keeping it for
    /// [`Scheduler::take_finished`].
    fn finish_host(&mut self, slot: usize) {
        let ports = self.ports.len();
        if self.hosts[slot].as_ref().is_some_and(|h| h.is_done(ports)) {
            self.close_timing(slot);
            self.close_kept(slot);
            // Its slot may go to another host: no held retransmission may follow it there.
            self.spread_timers
                .retain(|Reverse((_, held, _))| *held != slot);
            if let Some(host) = self.hosts[slot].take() {
                self.follow_ups -= host.follow_ups.count();
                self.finished.push((host.info, host.states));
            }
            self.active -= 1;
        }
    }

    /// Closes the tries of the host in `slot` kept open after their ports were filtered: the
    /// host is done, and its slot may go to another.
    fn close_kept(&mut self, slot: usize) {
        for id in self.kept.remove(&slot).unwrap_or_default() {
            self.close(id);
        }
    }

    /// The hosts whose every port got its state since the last call, with their counts.
    pub fn take_finished(&mut self) -> Vec<(Arc<HostInfo>, StateCounts)> {
        std::mem::take(&mut self.finished)
    }

    /// Times out every try whose deadline passed by `now`, and raises paced hosts' rates.
    pub fn expire(&mut self, now: Instant) {
        self.now = now;
        self.release_spread(now);
        while let Some(Reverse((at, id))) = self.window_timers.peek().copied() {
            if at > now {
                break;
            }
            self.window_timers.pop();
            self.out_of_window(id);
        }
        while let Some(Reverse((at, id))) = self.retransmit_timers.peek().copied() {
            if at > now {
                break;
            }
            self.retransmit_timers.pop();
            let Some(rec) = self.probes.get(&id).copied() else {
                continue;
            };
            if let Some(later) = self.wait_extended(&rec, now) {
                if let Some(rec) = self.probes.get_mut(&id) {
                    rec.retransmit_until = Some(later);
                }
                self.retransmit_timers.push(Reverse((later, id)));
                continue;
            }
            if let Some(rec) = self.probes.get_mut(&id) {
                // The wait is over; the probe may still linger for a late answer.
                rec.retransmit_until = None;
                let rec = *rec;
                self.wait_ended(&rec);
            }
        }
        while let Some(Reverse((deadline, id))) = self.timers.peek().copied() {
            if deadline > now {
                break;
            }
            self.timers.pop();
            let Some(rec) = self.probes.get_mut(&id) else {
                continue;
            };
            if rec.timed_out {
                continue;
            }
            let rec = *rec;
            match self.current_deadline(&rec, now) {
                Some(later) if later > now => self.timers.push(Reverse((later, id))),
                _ if rec.timing => {
                    self.close_timing(rec.host);
                    self.close(id);
                    self.control(&rec, false, now);
                }
                _ => self.time_out(id, rec, now),
            }
        }
        for slot in 0..self.hosts.len() {
            self.resolve_hold(slot);
            let timeout = self.timeout_of(slot, now);
            if let (Some(host), Some(before)) =
                (self.hosts[slot].as_mut(), now.checked_sub(timeout))
            {
                // `before` is excluded: a batch queued exactly a timeout ago goes too.
                let before = before + Duration::from_nanos(1);
                self.follow_ups -= host.follow_ups.release(before);
            }
        }
        self.review_waiting();
        self.tick_rates(now);
    }

    /// The deadline of `rec` under its host's current timeout (it may have grown).
    fn current_deadline(&self, rec: &Sent, now: Instant) -> Option<Instant> {
        let host = self.hosts[rec.host].as_ref()?;
        let last = rec.tryno + 1 >= host.allowed_tries(&self.budget());
        let base = self.timeout_of(rec.host, now);
        Some(rec.at + try_timeout(base, rec.tryno, last, &self.settings.timeouts))
    }

    /// Marks probe `id` timed out; its socket lingers for a late answer.
    fn time_out(&mut self, id: ProbeId, rec: Sent, now: Instant) {
        if let Some(rec) = self.probes.get_mut(&id) {
            rec.timed_out = true;
            rec.in_window = false;
        }
        while let Some(front) = self.lingering.front() {
            if self.probes.contains_key(front) {
                break;
            }
            self.lingering.pop_front();
        }
        self.lingering.push_back(id);
        self.after_timeout(rec, now);
    }

    /// A try went unanswered: retransmit its port, bench it or filter it.
    fn after_timeout(&mut self, rec: Sent, now: Instant) {
        self.leave_flight(&rec);
        self.window.lapse();
        let budget = self.budget();
        let held = self.spread(&budget, &rec);
        let Some(host) = self.hosts[rec.host].as_mut() else {
            return;
        };
        host.window.lapse();
        if host.first_tries.ended(rec.at, rec.tryno, false) {
            host.rate.undo_budget_cut(now);
        }
        let sent = host.pending.get(&rec.port).map_or(0, |p| p.sent);
        if sent == rec.tryno + 1 {
            if sent < host.allowed_tries(&budget) {
                match held {
                    Some(at) => self.spread_timers.push(Reverse((at, rec.host, rec.port))),
                    None => host.queue_retry(rec.port, false),
                }
            } else {
                host.bench.push(rec.port);
            }
        }
        self.review(rec.host);
    }

    /// When the next try of the port of `rec`, which timed out, may leave, if it is held back:
    /// with a fixed budget (`--retries`, which cannot grow to cover loss) once a drop showed
    /// (an answer that only a retransmission got), try `k` leaves no sooner than `(2^k - 1)`
    /// × [`SPREAD`] after the port's first, as TCP backs its retransmissions off. Audit: 8
    /// hosts × 19 ports behind a policer passing 50 SYNs a second, `--retries 2`: a port's
    /// three tries left within 150 ms, while the scan's first burst was going through the
    /// policer and before the drops had paced the scan (a cut needs ten), and 12-33 closed
    /// ports came out filtered (nmap -sT `--max-retries 2` in the same lab: 8-17). Spread out,
    /// the later tries leave at the pace the drops set meanwhile. Without drops (a clean path,
    /// ports that drop probes) nothing is held; the adaptive budget grows its tries instead.
    fn spread(&self, budget: &Budget, rec: &Sent) -> Option<Instant> {
        if !matches!(budget.retries, Retries::Fixed(_)) || self.counts.drops == 0 {
            return None;
        }
        let host = self.hosts[rec.host].as_ref()?;
        let first = host.pending.get(&rec.port)?.first_at?;
        let rounds = 2u32.saturating_pow(rec.tryno + 1) - 1;
        Some(first + SPREAD.saturating_mul(rounds))
    }

    /// Queues for their retransmission the ports whose spread ([`Self::spread`]) ended by
    /// `now`.
    fn release_spread(&mut self, now: Instant) {
        while let Some(Reverse((at, slot, port))) = self.spread_timers.peek().copied() {
            if at > now {
                break;
            }
            self.spread_timers.pop();
            if let Some(host) = self.hosts[slot].as_mut() {
                host.burst.release();
                host.queue_retry(port, false);
            }
        }
    }

    /// The lingering probe `rec` ended without an answer (its wait for the target's own
    /// retransmission ended, it expired, or it was closed): if its port waited for it before
    /// being filtered ([`Self::await_retransmit`]), the port goes back on the bench, to be
    /// retried (the budget may have grown meanwhile) or filtered.
    fn wait_ended(&mut self, rec: &Sent) {
        let Some(host) = self.hosts[rec.host].as_mut() else {
            return;
        };
        let Some(progress) = host.pending.get_mut(&rec.port) else {
            return;
        };
        if !progress.awaiting || progress.sent != rec.tryno + 1 {
            return;
        }
        progress.awaiting = false;
        host.bench.push(rec.port);
        self.review(rec.host);
    }

    /// Sends benched ports back to the retry queue when the budget grew, or filters them when
    /// it cannot grow any more: neither from the host's own answers nor from the scan's
    /// pooled loss (a host behind a firewall that limits SYNs per source gets too few answers
    /// to measure the loss itself; other hosts behind it do).
    fn review(&mut self, slot: usize) {
        let (budget, ports) = (self.budget(), self.ports.len());
        let Some(host) = self.hosts[slot].as_mut() else {
            return;
        };
        if host.bench.is_empty() {
            return;
        }
        let allowed = host.allowed_tries(&budget);
        for port in std::mem::take(&mut host.bench) {
            match host.pending.get(&port) {
                Some(progress) if progress.sent < allowed => host.queue_retry(port, false),
                Some(_) => host.bench.push(port),
                None => {}
            }
        }
        if host.bench.is_empty() || host.budget_may_grow(&budget, ports) || host.burst.holds() {
            return;
        }
        if self.pool_may_grow(&budget) {
            if !self.waiting.contains(&slot) {
                self.waiting.push(slot);
            }
            return;
        }
        if self.prove_policer(slot, &budget) {
            return;
        }
        let benched = self.hosts[slot]
            .as_mut()
            .map(|h| std::mem::take(&mut h.bench));
        for port in benched.unwrap_or_default() {
            if self.await_retransmit(slot, port) {
                continue;
            }
            let silent = (PortState::Filtered, Reason::NoResponse);
            if let Settled::Port(info, port, verdict) =
                self.settle(slot, port, silent.0, silent.1, None)
            {
                self.silenced.push((info, port, verdict));
            }
        }
    }

    /// Whether the benched ports of the host in `slot`, about to be filtered, wait instead for
    /// a round of proof tries ([`super::host::Burst`]): [`PROOF_PORTS`] of them get one more try each
    /// (an adaptive budget only, `--retries` is kept exactly; and no fewer silent ports: a
    /// policer's burst covers a scan of a few ports, and `-p 22,80,443` of a host that drops
    /// one of them is not slowed by a second), held back with the
    /// retransmissions a fixed budget spreads ([`Self::spread`], which an adaptive budget does
    /// not use) until [`super::host::PROOF_PAUSE`] after the host's latest probe. The bench is
    /// looked at again when those tries end.
    ///
    /// Fewer than [`PROOF_PORTS`] benched ports while other silent ports still wait for their
    /// last tries to end wait with them ([`Self::silent_ports_linger`]): each port joins the
    /// bench when its own last try ends, so the bench, reviewed at each, held one port at a
    /// time and every port was filtered alone (the lab, v6, 10/s policer at 30% loss, seed
    /// 8542: 13 of 19 ports filtered one by one at +1.41 s, no proof try).
    fn prove_policer(&mut self, slot: usize, budget: &Budget) -> bool {
        let ports = self.ports.len();
        let Some(host) = self.hosts[slot].as_mut() else {
            return false;
        };
        let answered = host.states.open + host.states.closed;
        let Some(at) = host.burst.proof_at() else {
            return false;
        };
        if budget.retries.is_fixed()
            || host.pending.len() < PROOF_PORTS
            || host.in_flight > 0
            || host.allowed_tries(budget) >= budget.retries.cap()
            || !host.burst.proof_due(answered, ports)
        {
            return false;
        }
        if Self::silent_ports_linger(host) {
            return true;
        }
        host.burst.start_round();
        let take = host.bench.len().min(PROOF_PORTS);
        let proof: Vec<usize> = host.bench.drain(..take).collect();
        host.burst.hold(take);
        for port in proof {
            self.spread_timers.push(Reverse((at, slot, port)));
        }
        tracing::debug!(
            "scan {}: only the first burst answered, {take} proof tries",
            host.info.target.addr
        );
        true
    }

    /// Whether `host`, whose benched ports are fewer than a round of proof tries, has other
    /// silent ports still waiting for their last tries to end: they join the bench then, and
    /// each end reviews it again (as an answer does, or the end of a wait for a retransmitted
    /// answer), so the bench waits for them. Only ports whose tries are all sent are pending
    /// outside the bench here: ports with work make the budget "may grow" first.
    fn silent_ports_linger(host: &HostScan) -> bool {
        host.bench.len() < PROOF_PORTS && host.pending.len() > host.bench.len()
    }

    /// Whether port index `port` of the host in `slot`, about to be filtered, waits instead:
    /// its last try still lingers for the target's own retransmission of an answer
    /// ([`Settings::answer_retransmit`]). The port is looked at again when that try ends
    /// ([`Self::wait_ended`]).
    fn await_retransmit(&mut self, slot: usize, port: usize) -> bool {
        let Some(progress) = self.hosts[slot]
            .as_mut()
            .and_then(|h| h.pending.get_mut(&port))
        else {
            return false;
        };
        let probes = &self.probes;
        let last = progress.live.iter().find_map(|id| {
            let rec = probes
                .get(id)
                .filter(|rec| rec.tryno + 1 == progress.sent)?;
            Some((*rec, *id))
        });
        let Some((rec, id)) = last else {
            return false;
        };
        let Some(until) = rec.retransmit_until.or_else(|| self.belated_wait(&rec)) else {
            return false;
        };
        if let Some(rec) = self.probes.get_mut(&id) {
            rec.retransmit_until = Some(until);
        }
        let host = self.hosts[slot].as_mut();
        if let Some(progress) = host.and_then(|h| h.pending.get_mut(&port)) {
            progress.awaiting = true;
        }
        self.retransmit_timers.push(Reverse((until, id)));
        true
    }

    /// The wait for its answer of `rec`, a port's last try that left while the port was
    /// allowed more tries (the budget shrank since, as answers showed less loss), so it was
    /// given none: the wait of a last try ([`Self::answer_wait`]), up to when its socket
    /// closes, if that is still to come. Audit (the lab, 400 ms ± 100 ms each way, no loss,
    /// `--timeout 300ms`): 2-5 of 40 closed ports whose third try left as a retransmission
    /// were filtered at its timeout, with every try's answer still on its way.
    fn belated_wait(&self, rec: &Sent) -> Option<Instant> {
        let base = self.timeout_of(rec.host, self.now);
        let until = (rec.at + self.answer_wait(rec.host, base)?).min(rec.wait_ends);
        (until > self.now).then_some(until)
    }

    /// Whether the scan's pooled retry budget may still grow: it is adaptive and below its cap,
    /// and some host has tries in flight or ports to send, whose answers may raise it.
    fn pool_may_grow(&self, budget: &Budget) -> bool {
        let ports = self.ports.len();
        matches!(budget.retries, Retries::Adaptive { .. })
            && budget.pooled < budget.retries.cap()
            && (self.hosts.iter().flatten()).any(|h| h.in_flight > 0 || h.has_work(ports))
    }

    /// Reviews the hosts whose benched ports wait for the pooled budget: back to the retry
    /// queue if it grew, filtered once it cannot grow any more (nothing else changes for a
    /// host with nothing in flight, so they are left alone otherwise).
    fn review_waiting(&mut self) {
        if self.waiting.is_empty() {
            return;
        }
        let budget = self.budget();
        if budget.pooled == self.waiting_for && self.pool_may_grow(&budget) {
            return;
        }
        self.waiting_for = budget.pooled;
        for slot in std::mem::take(&mut self.waiting) {
            self.review(slot);
        }
    }

    /// Raises the pace of paced hosts, and of the scan, after drop-free intervals.
    fn tick_rates(&mut self, now: Instant) {
        let interval = self.rtt.srtt().unwrap_or_default();
        self.rate.tick(interval, now);
        for host in self.hosts.iter_mut().flatten() {
            if host.rate.rate().is_some() {
                let interval = host.rtt.srtt().unwrap_or_default();
                host.rate.tick(interval, now);
            }
        }
    }

    /// When something may next happen without an answer arriving: a timeout, or a send that
    /// a pause, the `--rate` ceiling or a host's pace holds back now, or a send `--min-rate`
    /// forces. `None`: only an answer can move the scan on. Never before `now`.
    pub fn wakeup(&self, now: Instant) -> Option<Instant> {
        let ports = self.ports.len();
        let hosts = || self.hosts.iter().flatten();
        let mut times = vec![
            self.timers.peek().map(|Reverse((at, _))| *at),
            self.window_timers.peek().map(|Reverse((at, _))| *at),
            self.retransmit_timers.peek().map(|Reverse((at, _))| *at),
            self.spread_timers.peek().map(|Reverse((at, _, _))| *at),
        ];
        if hosts().any(|h| h.has_work(ports)) {
            // The scan-wide gates: nothing leaves before both open.
            let ceiling = self.ceiling.as_ref().and_then(Pacer::next);
            let paced = [self.shortage.until, ceiling, self.rate.next()];
            let gate = paced.into_iter().flatten().max();
            let after_gate = |at: Instant| gate.map_or(at, |gate| gate.max(at));
            times.push(self.floor.as_ref().map(|f| after_gate(f.due())));
            if self.window.has_room(self.occupied()) {
                times.push(gate.filter(|gate| *gate > now));
                let ready = hosts().filter(|h| h.has_work(ports));
                let ready = ready.filter(|h| h.window.has_room(h.occupied()));
                let paced = ready.filter_map(|h| h.rate.next().map(after_gate));
                times.extend(paced.filter(|at| *at > now).map(Some));
            }
        }
        for (slot, host) in self.hosts.iter().enumerate() {
            let Some(host) = host.as_ref().filter(|h| h.has_work(ports)) else {
                continue;
            };
            let oldest = host.follow_ups.oldest();
            times.push(oldest.map(|at| at + self.timeout_of(slot, now)));
        }
        if self.rate.rate().is_some() || hosts().any(|h| h.rate.rate().is_some()) {
            times.push(Some(now + RAISE_CHECK));
        }
        let next = times.into_iter().flatten().min()?;
        Some(next.max(now))
    }
}

/// The least reordering [`Scheduler::presume_lost`] allows for.
const REORDER: Duration = Duration::from_millis(2);

/// How often paced hosts are looked at for a raise when nothing else happens.
const RAISE_CHECK: Duration = Duration::from_millis(50);

/// The timeout of try `tryno` when a first try gets `base`: [`BACKOFF`] longer per
/// retransmission, twice as long for a port's last try, within the bounds.
fn try_timeout(base: Duration, tryno: u32, last: bool, bounds: &Timeouts) -> Duration {
    let backoff = BACKOFF.powi(tryno.min(32) as i32);
    let last = if last { 2.0 } else { 1.0 };
    base.mul_f64(backoff * last).clamp(bounds.min, bounds.max)
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
