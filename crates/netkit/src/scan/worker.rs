//! The scan's workers: a few threads (one per CPU) share the [`Scheduler`] under a lock. Each
//! takes the probes that may leave, makes their non-blocking connects one after another
//! ([`probe::start`]) and hands back under one lock what the kernel already knew — loopback
//! answers inside the system call, so there the workers keep every CPU busy with connects
//! and never wake each other. A connect still in progress gets a task of its own on the async
//! runtime that awaits the answer, or a cancel when its port got its state from another try,
//! and reports the same way. An idle worker sleeps on a condition variable until an answer
//! comes back or the scheduler's next wake-up. Verdicts leave as [`Msg`]s on a channel.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Notify;

use super::answer::{Answer, NoRoute};
use super::engine::{Event, HostDone, Progress};
use super::guard::{is_local, Guard};
use super::host::HostInfo;
use super::probe::{self, Outcome, Pending, Started};
use super::schedule::{Counts, Probe, ProbeId, Reply, Scheduler, Settings, Settled, Verdict};
use super::trace::Trace;
use super::turns::Turns;
use super::{banner, services, syn};
use crate::error::Error;
use crate::report::scan::{PortReport, PortState, Unreachable};
use crate::target::TargetIter;

/// Probes a worker takes at a time.
const CHUNK: usize = 16;
/// The longest a worker sleeps when the scheduler says only an answer can move the scan on:
/// it then looks again (expiries, hosts waiting for the pooled budget), so a wake-up that
/// never comes cannot hold the scan for ever.
const RECHECK: Duration = Duration::from_secs(1);

/// What workers tell the scan's caller.
#[derive(Debug)]
pub enum Msg {
    /// A port that got its state, or an unreachable host.
    Event(Event),
    /// Closed and filtered ports, a batch at a time: one message per worker round rather
    /// than one per port keeps a scan of 65535 closed ports from waking the receiver 65535
    /// times.
    Ports(Vec<PortReport>),
    /// An open port's banner is being read; a [`Msg::Banner`] follows.
    BannerPending,
    /// An open port with its banner.
    Banner(PortReport),
    /// The scan cannot go on.
    Failed(Error),
    /// A worker finished.
    Finished,
}

/// The targets as the scheduler takes them: whether each address is this host's is known.
#[derive(Debug)]
pub struct Hosts(pub TargetIter);

impl Iterator for Hosts {
    type Item = Arc<HostInfo>;

    fn next(&mut self) -> Option<Arc<HostInfo>> {
        let target = self.0.next()?;
        let local = is_local(target.socket_addr(0));
        Some(Arc::new(HostInfo { target, local }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

/// One probe for a worker to send.
#[derive(Debug)]
pub(super) struct Job {
    pub(super) id: ProbeId,
    pub(super) dst: SocketAddr,
    /// 0 for the first try of the port, 1 for the first retransmission, ...
    pub(super) tryno: u32,
    guard: Option<Guard>,
    pub(super) expires: tokio::time::Instant,
    cancel: Arc<Notify>,
    /// A timing probe: its batch leaves only once the batches taken before it were sent
    /// ([`Batch::jobs`]).
    timing: bool,
}

/// The probes a worker took at once, to send one after another; numbered in the order batches
/// were taken ([`super::turns`]).
#[derive(Debug)]
pub(super) struct Batch {
    number: u64,
    jobs: Vec<Job>,
    shared: Arc<Shared>,
}

impl Batch {
    /// The probes, in the order to send them, once they may leave: a batch holding a timing
    /// probe first waits until the batches taken before it were sent, so that the probe
    /// leaves after every probe the scheduler put before it.
    pub(super) fn jobs(&mut self) -> Vec<Job> {
        if self.jobs.iter().any(|job| job.timing) {
            self.shared.turns.wait_for_earlier(self.number);
        }
        std::mem::take(&mut self.jobs)
    }
}

impl Drop for Batch {
    /// The batch was sent (or given up): the timing probes of later ones wait no more for it.
    fn drop(&mut self) {
        self.shared.turns.sent(self.number);
    }
}

/// The outcome of one probe.
#[derive(Debug)]
pub(super) struct Report {
    pub(super) id: ProbeId,
    pub(super) dst: SocketAddr,
    pub(super) found: Found,
}

/// What a probe found: a connect's outcome, or a raw probe's reply ([`super::syn`]).
#[derive(Debug)]
pub(super) enum Found {
    /// What a connect found.
    Connect(io::Result<Outcome>),
    /// What a SYN found, with the TTL (IPv6: hop limit) of the answer where it was read.
    Raw(Reply, Option<u8>),
}

/// What the lock guards: the scheduler, the cancels of the connects in progress, and how
/// many workers sleep.
#[derive(Debug)]
struct Core {
    sched: Scheduler<Hosts>,
    cancels: HashMap<ProbeId, Arc<Notify>>,
    last_shortage: Option<io::Error>,
    idle: usize,
    /// Closed and filtered ports settled under the lock, sent as one [`Msg::Ports`].
    settled: Vec<PortReport>,
    /// The per-try trace of `-vv`.
    trace: Trace,
}

/// Everything the workers share.
#[derive(Debug)]
pub struct Shared {
    core: Mutex<Core>,
    wake: Condvar,
    stopped: AtomicBool,
    runtime: tokio::runtime::Handle,
    msgs: UnboundedSender<Msg>,
    guard: Guard,
    ephemeral: RangeInclusive<u16>,
    banner_wait: Option<Duration>,
    /// Whether an answer came only to a retransmission: the way loses packets, and banners
    /// are waited for longer ([`banner::LOSS_ALLOWANCE`]).
    lossy: Arc<AtomicBool>,
    every_port: bool,
    progress: Arc<Progress>,
    /// The batches taken and not yet sent.
    turns: Turns,
}

impl Shared {
    /// The shared state of a scan of `hosts` × `ports`; waits for answers run on the current
    /// async runtime. Closed and filtered ports are reported one by one with `every_port`,
    /// else only counted.
    pub fn new(
        hosts: Hosts,
        ports: Arc<[u16]>,
        settings: Settings,
        banner_wait: Option<Duration>,
        every_port: bool,
        progress: Arc<Progress>,
        msgs: UnboundedSender<Msg>,
    ) -> Arc<Self> {
        let started = now();
        let trace = Trace::new(started, settings.kernel_resends);
        let sched = Scheduler::new(hosts, ports, settings, started);
        Arc::new(Shared {
            core: Mutex::new(Core {
                sched,
                cancels: HashMap::new(),
                last_shortage: None,
                idle: 0,
                settled: Vec::new(),
                trace,
            }),
            wake: Condvar::new(),
            stopped: AtomicBool::new(false),
            runtime: tokio::runtime::Handle::current(),
            msgs,
            guard: Guard::new(),
            ephemeral: crate::sys::proc::ephemeral_ports(),
            banner_wait,
            lossy: Arc::default(),
            every_port,
            progress,
            turns: Turns::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The totals so far.
    pub fn counts(&self) -> Counts {
        self.lock().sched.counts()
    }

    /// Stops the workers and closes every socket still open.
    pub fn stop(&self) {
        self.stopped.store(true, Relaxed);
        for (_, cancel) in self.lock().cancels.drain() {
            cancel.notify_one();
        }
        self.wake.notify_all();
    }

    /// Whether the scan was stopped.
    pub(super) fn is_stopped(&self) -> bool {
        self.stopped.load(Relaxed)
    }

    /// Reports that the scan cannot go on, and stops it.
    pub(super) fn fail(&self, err: Error) {
        let _ = self.msgs.send(Msg::Failed(err));
        self.stop();
    }

    /// Tells the engine a sending worker finished.
    pub(super) fn finished(&self) {
        let _ = self.msgs.send(Msg::Finished);
    }

    /// The next probes to send, once some may leave; `None` when the scan is done or
    /// stopped. Sleeps while nothing may leave, until an answer or the next wake-up.
    pub(super) fn take(self: &Arc<Self>) -> Option<Batch> {
        let mut core = self.lock();
        loop {
            if self.stopped.load(Relaxed) {
                return None;
            }
            let now = now();
            core.sched.expire(now);
            let mut jobs = Vec::new();
            while jobs.len() < CHUNK {
                let Some(probe) = core.sched.poll(now) else {
                    break;
                };
                jobs.push(self.job(&mut core, probe, now));
            }
            self.close(&mut core);
            if !jobs.is_empty() {
                // Numbered under the scheduler's lock: numbers follow the scheduler's order.
                let number = self.turns.take();
                let shared = Arc::clone(self);
                return Some(Batch {
                    number,
                    jobs,
                    shared,
                });
            }
            if core.sched.is_done() {
                self.wake.notify_all();
                return None;
            }
            core = self.sleep(core, now);
        }
    }

    /// Sleeps until an answer comes back or the scheduler's next wake-up.
    fn sleep<'a>(&self, mut core: MutexGuard<'a, Core>, now: Instant) -> MutexGuard<'a, Core> {
        let wait = match core.sched.wakeup(now) {
            Some(at) => at.saturating_duration_since(now).min(RECHECK),
            None => RECHECK,
        };
        core.idle += 1;
        let slept = self.wake.wait_timeout(core, wait);
        let mut core = slept.unwrap_or_else(PoisonError::into_inner).0;
        core.idle -= 1;
        core
    }

    /// The job of one probe, leaving at `now`.
    fn job(&self, core: &mut Core, probe: Probe, now: Instant) -> Job {
        let dst = probe.host.target.socket_addr(probe.port);
        core.trace.sent(&probe, dst, now);
        let cancel = Arc::new(Notify::new());
        core.cancels.insert(probe.id, Arc::clone(&cancel));
        Job {
            id: probe.id,
            dst,
            tryno: probe.tryno,
            guard: self.guard_for(&probe.host, probe.port),
            expires: tokio::time::Instant::from_std(probe.expires),
            cancel,
            timing: probe.timing,
        }
    }

    /// The guard a connect to `port` of `host` needs: where the kernel could pair it with
    /// another socket of this scan (see [`super::guard`]).
    fn guard_for(&self, host: &HostInfo, port: u16) -> Option<Guard> {
        let exposed = host.local && self.ephemeral.contains(&port);
        exposed.then(|| self.guard.clone())
    }

    /// Cancels the connects whose sockets the scheduler closed, sends the closed and
    /// filtered ports settled since the last call (those filtered for silence included) as
    /// one batch, then reports the hosts it finished.
    fn close(&self, core: &mut Core) {
        let now = now();
        for id in core.sched.take_closes() {
            core.trace.closed(id, now);
            if let Some(cancel) = core.cancels.remove(&id) {
                cancel.notify_one();
            }
        }
        for (host, port, verdict) in core.sched.take_silenced() {
            core.trace
                .settled(host.target.socket_addr(port), &verdict, now);
            self.settled(core, &host, port, verdict);
        }
        if !core.settled.is_empty() {
            let batch = std::mem::take(&mut core.settled);
            let _ = self.msgs.send(Msg::Ports(batch));
        }
        for (host, no_route) in core.sched.take_unreached() {
            let _ = self
                .msgs
                .send(Msg::Event(Event::Unreachable(unreachable(&host, no_route))));
        }
        for (host, ports) in core.sched.take_finished() {
            let done = HostDone {
                host: host.target.shown(),
                addr: host.target.addr,
                zone: host.target.zone,
                ports,
            };
            let _ = self.msgs.send(Msg::Event(Event::HostDone(done)));
        }
    }

    /// Hands outcomes to the scheduler; wakes idle workers, since windows may have opened.
    pub(super) fn report(&self, reports: Vec<Report>) -> Result<(), Error> {
        let mut core = self.lock();
        for report in reports {
            core.cancels.remove(&report.id);
            self.answer(&mut core, report)?;
        }
        self.close(&mut core);
        self.progress.store(core.sched.counts().done);
        if core.idle > 0 {
            self.wake.notify_all();
        }
        Ok(())
    }

    /// Hands one outcome to the scheduler and sends what it decided.
    fn answer(&self, core: &mut Core, report: Report) -> Result<(), Error> {
        let dst = report.dst;
        let (reply, socket, ttl) = match report.found {
            Found::Connect(Err(err)) => return Err(Error::io(format!("scan {dst}"), err)),
            Found::Connect(Ok(outcome)) => {
                let (reply, socket) = reply(core, outcome, dst);
                (reply, socket, None)
            }
            Found::Raw(reply, ttl) => (reply, None, ttl),
        };
        let now = now();
        core.trace.ended(report.id, &reply, now);
        let mut settled = core.sched.reply(report.id, reply, now);
        if let Settled::Port(host, port, verdict) = &settled {
            let dst = host.target.socket_addr(*port);
            core.trace.settled(dst, verdict, now);
        }
        if let Settled::Port(_, _, verdict) = &mut settled {
            // This answer decided the port (a verdict with a round trip): its TTL is the port's.
            verdict.ttl = ttl.filter(|_| verdict.rtt.is_some());
        }
        if let Settled::Port(_, _, verdict) = &settled {
            if verdict.rtt.is_some() && verdict.tries > 1 {
                self.lossy.store(true, Relaxed);
            }
        }
        match settled {
            Settled::Port(host, port, verdict) if verdict.state == PortState::Open => {
                self.open(
                    &host,
                    port,
                    verdict,
                    socket.map(probe::Connected::into_socket),
                );
            }
            Settled::Port(host, port, verdict) => self.settled(core, &host, port, verdict),
            Settled::Unreachable(host, no_route) => {
                let _ = self
                    .msgs
                    .send(Msg::Event(Event::Unreachable(unreachable(&host, no_route))));
            }
            Settled::GaveUp => {
                let err = core.last_shortage.take();
                let err = err.unwrap_or_else(|| io::Error::other("out of resources"));
                return Err(Error::io(format!("scan {dst}"), err));
            }
            Settled::Nothing => {}
        }
        Ok(())
    }

    /// Keeps a closed or filtered port for the next batch, when every port is to be
    /// reported.
    fn settled(&self, core: &mut Core, host: &HostInfo, port: u16, verdict: Verdict) {
        if self.every_port {
            core.settled.push(port_report(host, port, verdict));
        }
    }

    /// Reports an open port, at once or once its banner was read (a SYN scan connects for
    /// it first).
    fn open(&self, host: &HostInfo, port: u16, verdict: Verdict, socket: Option<socket2::Socket>) {
        let rtt = verdict.rtt;
        let open = port_report(host, port, verdict);
        let Some(wait) = self.banner_wait else {
            let _ = self.msgs.send(Msg::Event(Event::Port(open)));
            return;
        };
        let wait = banner_wait(wait, rtt);
        let _ = self.msgs.send(Msg::BannerPending);
        let msgs = self.msgs.clone();
        let guard = self.guard_for(host, port);
        let dst = host.target.socket_addr(port);
        let lossy = Arc::clone(&self.lossy);
        self.runtime.spawn(async move {
            let socket = match socket {
                Some(socket) => Some(socket),
                None => {
                    let allowance = lossy.load(Relaxed).then_some(banner::LOSS_ALLOWANCE);
                    let wait = wait + allowance.unwrap_or_default();
                    syn::follow::connect(dst, guard, wait).await
                }
            };
            let banner = match socket {
                Some(socket) => banner::read(socket, wait, &lossy).await,
                None => None,
            };
            let _ = msgs.send(Msg::Banner(PortReport { banner, ..open }));
        });
    }
}

/// How long to wait for a banner (and, after a SYN scan, for the connect that reads it): the
/// service's `wait` plus the network's part, two round trips of the port's answer — a service
/// that speaks first sends once it has the handshake's last ACK, so its banner comes a round
/// trip after the connect completes.
fn banner_wait(wait: Duration, rtt: Option<Duration>) -> Duration {
    wait.saturating_add(rtt.unwrap_or_default().saturating_mul(2))
}

/// What the scheduler is told of an outcome (and the socket of an open port).
fn reply(core: &mut Core, outcome: Outcome, dst: SocketAddr) -> (Reply, Option<probe::Connected>) {
    match outcome {
        Outcome::Open { rtt, socket } => (Reply::Answered(Answer::Open, rtt), Some(socket)),
        Outcome::Refused { answer, rtt, .. } => (Reply::Answered(answer, rtt), None),
        Outcome::Silent => (Reply::Silent, None),
        Outcome::Phantom => (Reply::Phantom, None),
        Outcome::Busy(err) => {
            tracing::debug!("scan {dst}: {err}; backing off");
            core.last_shortage = Some(err);
            (Reply::Busy, None)
        }
    }
}

/// The record of `port` on `host`.
fn port_report(host: &HostInfo, port: u16, verdict: Verdict) -> PortReport {
    PortReport {
        host: host.target.shown(),
        addr: host.target.addr,
        port,
        state: verdict.state,
        reason: verdict.reason,
        service: services::service_name(port).map(str::to_string),
        rtt_ms: verdict.rtt.map(|rtt| rtt.as_nanos() as f64 / 1e6),
        tries: verdict.tries,
        banner: None,
        reason_ip: verdict.from,
        ttl: verdict.ttl,
    }
}

fn unreachable(host: &HostInfo, no_route: NoRoute) -> Unreachable {
    Unreachable {
        host: host.target.shown(),
        addr: host.target.addr,
        error: no_route.to_string(),
        from: no_route.from,
    }
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// One worker thread: takes probes, connects, reports, until the scan is done or stopped.
pub fn work(shared: &Arc<Shared>) {
    while let Some(mut batch) = shared.take() {
        let reports = connect_all(shared, &mut batch);
        drop(batch);
        if let Err(err) = shared.report(reports) {
            shared.fail(err);
        }
    }
    shared.finished();
}

/// Makes the connects of `batch` one after another: what the kernel answers at once is
/// returned, the rest is left to a task each.
fn connect_all(shared: &Arc<Shared>, batch: &mut Batch) -> Vec<Report> {
    let jobs = batch.jobs();
    let mut done = Vec::with_capacity(jobs.len());
    for job in jobs {
        match probe::start(job.dst, job.guard.as_ref()) {
            Started::Done(outcome) => done.push(Report {
                id: job.id,
                dst: job.dst,
                found: Found::Connect(outcome),
            }),
            Started::Pending(pending) => {
                let waiter = await_answer(Arc::clone(shared), job, pending);
                shared.runtime.spawn(waiter);
            }
        }
    }
    done
}

/// Waits for the answer to one connect, unless the scan cancels it first (closing the socket).
async fn await_answer(shared: Arc<Shared>, job: Job, pending: Pending) {
    tokio::select! {
        () = job.cancel.notified() => {}
        outcome = pending.wait(job.expires) => {
            let found = Found::Connect(outcome);
            let report = Report { id: job.id, dst: job.dst, found };
            if let Err(err) = shared.report(vec![report]) {
                shared.fail(err);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_wait_grows_by_two_round_trips() {
        let second = Duration::from_secs(1);
        assert_eq!(banner_wait(second, None), second);
        let rtt = Duration::from_millis(1200);
        assert_eq!(banner_wait(second, Some(rtt)), Duration::from_millis(3400));
        assert_eq!(banner_wait(Duration::MAX, Some(rtt)), Duration::MAX);
    }
}
