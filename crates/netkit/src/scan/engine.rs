//! The scan engine: drives the [`Scheduler`] with the clock and carries out what it decides.
//! The probes that may leave are handed to tasks a few at a time; each task makes their
//! non-blocking connects ([`probe::start`]) one after another and sends back at once, in one
//! message, what the kernel already knew (loopback answers inside the system call), and leaves
//! each connect still in progress to a task of its own that awaits the answer or a cancel.
//! The scheduler's verdicts come out as [`Event`]s and totals. A port gets its state from the
//! network only; local shortages (EMFILE, ENOBUFS, EADDRNOTAVAIL, ...) make the scan pause and
//! send the same try again, so they cost time, never a wrong answer.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::answer::{Answer, NoRoute};
use super::guard::{self, is_local, Guard};
use super::host::{HostInfo, Retries};
use super::probe::{self, Outcome, Pending, Started};
use super::record::{OpenPort, PortState, ScanSummary, Unreachable};
use super::rtt::Timeouts;
use super::schedule::{Probe, ProbeId, Reply, Scheduler, Settings, Settled};
use super::{banner, services};
use crate::error::Error;
use crate::ports::PortSet;
use crate::target::Targets;

/// Hosts scanned at once; ports go round them.
pub const GROUP: usize = 256;
/// Answers taken from the channel at a time.
const BATCH: usize = 512;
/// Probes handed to one task at a time.
const CHUNK: usize = 16;

/// What to scan and how hard.
#[derive(Debug, Clone)]
pub struct Config {
    /// Ports to probe on every target, in order.
    pub ports: PortSet,
    /// Probes in flight at once at most (at least 1).
    pub concurrency: usize,
    /// The longest a probe waits for its answer (the adaptive timeout's ceiling).
    pub timeout: Duration,
    /// How many tries a silent port gets.
    pub retries: Retries,
    /// Connection attempts per second at most.
    pub rate: Option<u64>,
    /// Connection attempts per second at least.
    pub min_rate: Option<u64>,
    /// Read a banner from open ports for this long (`None`: no banners).
    pub banner_wait: Option<Duration>,
}

/// What a scan reports as it goes.
#[derive(Debug)]
pub enum Event {
    /// An open port.
    Open(OpenPort),
    /// A host the scan cannot reach.
    Unreachable(Unreachable),
}

/// How far a scan has got, for a progress bar.
#[derive(Debug, Default)]
pub struct Progress {
    done: AtomicU64,
}

impl Progress {
    /// Probes finished so far (each target × port once, whatever its retries).
    pub fn done(&self) -> u64 {
        self.done.load(Relaxed)
    }
}

/// The number of probes a scan makes: targets × ports.
pub fn total(targets: &Targets, ports: &PortSet) -> u128 {
    targets.len().saturating_mul(ports.len() as u128)
}

/// The outcome of one probe task.
#[derive(Debug)]
struct Report {
    id: ProbeId,
    dst: SocketAddr,
    outcome: io::Result<Outcome>,
}

/// One connect for a probe task to make.
struct Job {
    id: ProbeId,
    dst: SocketAddr,
    guard: Option<Guard>,
    expires: tokio::time::Instant,
    cancel: Arc<Notify>,
}

/// The engine's side of one scan: the probe tasks, their answers, the banner reads.
struct Engine {
    config: Config,
    guard: Guard,
    ephemeral: RangeInclusive<u16>,
    tx: UnboundedSender<Vec<Report>>,
    cancels: HashMap<ProbeId, Arc<Notify>>,
    banners: JoinSet<OpenPort>,
    events: Vec<Event>,
    last_shortage: Option<io::Error>,
}

/// Scans every port of `config.ports` on every target, reporting open ports and unreachable
/// hosts through `on_event` as they are found, until done or until `shutdown` completes (the
/// summary then says it was interrupted). Returns the totals.
pub async fn run<E: From<Error>>(
    targets: &Targets,
    config: Config,
    progress: Arc<Progress>,
    shutdown: impl Future<Output = ()>,
    mut on_event: impl FnMut(Event) -> Result<(), E>,
) -> Result<ScanSummary, E> {
    let started = tokio::time::Instant::now();
    let hosts = targets.iter().map(|target| {
        let local = is_local(target.addr);
        Arc::new(HostInfo { target, local })
    });
    let ports: Arc<[u16]> = config.ports.as_slice().into();
    let mut sched = Scheduler::new(hosts, ports, settings(&config), now());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut engine = Engine::new(config, tx);
    tokio::pin!(shutdown);
    let interrupted = loop {
        engine.step(&mut sched, &progress);
        for event in engine.events.drain(..) {
            on_event(event)?;
        }
        if sched.is_done() && engine.banners.is_empty() {
            break false;
        }
        let wake = sched.wakeup(now()).map(tokio::time::Instant::from_std);
        tokio::select! {
            biased;
            () = &mut shutdown => break true,
            result = engine.next(&mut rx, &mut sched, wake) => result?,
        }
    };
    engine.abort_all();
    let elapsed = started.elapsed();
    let c = sched.counts();
    tracing::info!(
        "scan: {} probes sent, {} retransmissions, {} late answers, {} drops",
        c.sent,
        c.retransmitted,
        c.late,
        c.drops
    );
    Ok(summary(
        targets,
        &engine.config,
        &sched,
        elapsed,
        interrupted,
    ))
}

/// The scheduler's settings for `config`.
fn settings(config: &Config) -> Settings {
    Settings {
        timeouts: Timeouts::capped(config.timeout),
        retries: config.retries,
        max_in_flight: config.concurrency.max(1),
        rate: config.rate.map(|r| r as f64),
        min_rate: config.min_rate.map(|r| r as f64),
        group: GROUP,
    }
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

fn summary<I: Iterator<Item = Arc<HostInfo>>>(
    targets: &Targets,
    config: &Config,
    sched: &Scheduler<I>,
    elapsed: Duration,
    interrupted: bool,
) -> ScanSummary {
    let counts = sched.counts();
    ScanSummary {
        hosts: u64::try_from(targets.len()).unwrap_or(u64::MAX),
        scanned: config.ports.len() as u64,
        open: counts.open,
        closed: counts.closed,
        filtered: counts.filtered,
        unreachable: counts.unreachable,
        interrupted,
        elapsed_s: elapsed.as_secs_f64(),
    }
}

impl Engine {
    fn new(config: Config, tx: UnboundedSender<Vec<Report>>) -> Self {
        Engine {
            config,
            guard: Guard::new(),
            ephemeral: guard::ephemeral_ports(),
            tx,
            cancels: HashMap::new(),
            banners: JoinSet::new(),
            events: Vec::new(),
            last_shortage: None,
        }
    }

    /// Times out what is due, closes what the scheduler gave up and sends what may leave.
    fn step<I: Iterator<Item = Arc<HostInfo>>>(
        &mut self,
        sched: &mut Scheduler<I>,
        progress: &Progress,
    ) {
        let now = now();
        sched.expire(now);
        let mut jobs = Vec::new();
        while let Some(probe) = sched.poll(now) {
            jobs.push(self.job(probe));
        }
        while !jobs.is_empty() {
            let rest = jobs.split_off(jobs.len().saturating_sub(CHUNK));
            tokio::spawn(run_jobs(rest, self.tx.clone()));
        }
        for id in sched.take_closes() {
            if let Some(cancel) = self.cancels.remove(&id) {
                cancel.notify_one();
            }
        }
        progress.done.store(sched.counts().done, Relaxed);
    }

    /// The job of one probe.
    fn job(&mut self, probe: Probe) -> Job {
        let dst = SocketAddr::new(probe.host.target.addr, probe.port);
        let exposed = probe.host.local && self.ephemeral.contains(&probe.port);
        let cancel = Arc::new(Notify::new());
        self.cancels.insert(probe.id, Arc::clone(&cancel));
        Job {
            id: probe.id,
            dst,
            guard: exposed.then(|| self.guard.clone()),
            expires: tokio::time::Instant::from_std(probe.expires),
            cancel,
        }
    }

    /// Waits for the next answers, banner or wake-up, and hands answers to the scheduler.
    async fn next<I: Iterator<Item = Arc<HostInfo>>>(
        &mut self,
        rx: &mut UnboundedReceiver<Vec<Report>>,
        sched: &mut Scheduler<I>,
        wake: Option<tokio::time::Instant>,
    ) -> Result<(), Error> {
        let mut reports = Vec::with_capacity(BATCH);
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = rx.recv_many(&mut reports, BATCH) => {}
            Some(joined) = self.banners.join_next(), if !self.banners.is_empty() => {
                let open = joined.map_err(|e| Error::io("scan", io::Error::other(e)))?;
                self.events.push(Event::Open(open));
            }
            () = sleep => {}
        }
        for report in reports.into_iter().flatten() {
            self.answer(report, sched)?;
        }
        Ok(())
    }

    /// Hands one probe's outcome to the scheduler and turns its verdict into an event.
    fn answer<I: Iterator<Item = Arc<HostInfo>>>(
        &mut self,
        report: Report,
        sched: &mut Scheduler<I>,
    ) -> Result<(), Error> {
        self.cancels.remove(&report.id);
        let dst = report.dst;
        let (reply, socket) = match report.outcome {
            Err(err) => return Err(Error::io(format!("scan {dst}"), err)),
            Ok(outcome) => self.reply(outcome, dst),
        };
        match sched.reply(report.id, reply, now()) {
            Settled::Port(host, port, PortState::Open) => {
                let rtt = match reply {
                    Reply::Answered(_, rtt) => rtt,
                    _ => Duration::ZERO,
                };
                self.open(&host, port, rtt, socket.map(probe::Connected::into_socket));
            }
            Settled::Unreachable(host, no_route) => {
                let host = unreachable(&host, no_route);
                self.events.push(Event::Unreachable(host));
            }
            Settled::GaveUp => return Err(self.gave_up(dst)),
            Settled::Port(..) | Settled::Nothing => {}
        }
        Ok(())
    }

    /// What the scheduler is told of an outcome (and the socket of an open port).
    fn reply(&mut self, outcome: Outcome, dst: SocketAddr) -> (Reply, Option<probe::Connected>) {
        match outcome {
            Outcome::Open { rtt, socket } => (Reply::Answered(Answer::Open, rtt), Some(socket)),
            Outcome::Refused(answer, rtt) => (Reply::Answered(answer, rtt), None),
            Outcome::Silent => (Reply::Silent, None),
            Outcome::Phantom => (Reply::Phantom, None),
            Outcome::Busy(err) => {
                tracing::debug!("scan {dst}: {err}; backing off");
                self.last_shortage = Some(err);
                (Reply::Busy, None)
            }
        }
    }

    fn gave_up(&mut self, dst: SocketAddr) -> Error {
        let err = self
            .last_shortage
            .take()
            .unwrap_or_else(|| io::Error::other("out of resources"));
        Error::io(format!("scan {dst}"), err)
    }

    /// Reports an open port, at once or once its banner was read.
    fn open(&mut self, host: &HostInfo, port: u16, rtt: Duration, socket: Option<socket2::Socket>) {
        let open = OpenPort {
            host: host.target.host(),
            addr: host.target.addr,
            port,
            state: PortState::Open,
            service: services::service_name(port).map(str::to_string),
            rtt_ms: rtt.as_secs_f64() * 1e3,
            banner: None,
        };
        match (self.config.banner_wait, socket) {
            (Some(wait), Some(socket)) => {
                self.banners.spawn(async move {
                    let banner = banner::read(socket, wait).await;
                    OpenPort { banner, ..open }
                });
            }
            _ => self.events.push(Event::Open(open)),
        }
    }

    fn abort_all(&mut self) {
        for (_, cancel) in self.cancels.drain() {
            cancel.notify_one();
        }
        self.banners.abort_all();
    }
}

/// Makes the connects of `jobs` one after another; sends back what is answered at once and
/// leaves the rest to a task each.
async fn run_jobs(jobs: Vec<Job>, tx: UnboundedSender<Vec<Report>>) {
    let mut done = Vec::with_capacity(jobs.len());
    for job in jobs {
        match probe::start(job.dst, job.guard.as_ref()) {
            Started::Done(outcome) => done.push(Report {
                id: job.id,
                dst: job.dst,
                outcome,
            }),
            Started::Pending(pending) => {
                tokio::spawn(await_answer(job, pending, tx.clone()));
            }
        }
    }
    if !done.is_empty() {
        let _ = tx.send(done);
    }
}

/// Waits for the answer to one connect, unless the scan cancels it first (closing the socket).
async fn await_answer(job: Job, pending: Pending, tx: UnboundedSender<Vec<Report>>) {
    tokio::select! {
        () = job.cancel.notified() => {}
        outcome = pending.wait(job.expires) => {
            let _ = tx.send(vec![Report { id: job.id, dst: job.dst, outcome }]);
        }
    }
}

fn unreachable(host: &HostInfo, no_route: NoRoute) -> Unreachable {
    Unreachable {
        host: host.target.host(),
        addr: host.target.addr,
        error: no_route.to_string(),
        from: no_route.from,
    }
}
