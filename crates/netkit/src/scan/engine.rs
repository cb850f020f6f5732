//! The scan engine: a fixed number of workers (the concurrency) take probes from one
//! interleaved stream ([`super::jobs`]) and each keeps one connect in flight. A port gets its
//! state from the network only: refused is closed, connected (to a real peer) is open, silence
//! after the retries is filtered. Local shortages (EMFILE, ENOBUFS, EADDRNOTAVAIL, ...) make the
//! worker back off and try the same port again, so they cost time, never a wrong answer.

use std::io;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::guard::{self, Guard};
use super::jobs::{Job, Jobs};
use super::probe::{self, Outcome};
use super::record::{OpenPort, PortState, ScanSummary};
use super::{banner, services};
use crate::error::Error;
use crate::ports::PortSet;
use crate::target::Targets;

/// How a port stays after this many phantom connections in a row: no listener can be there,
/// since the kernel handed its very address to one of our probes.
const MAX_PHANTOMS: u32 = 3;
/// How long a worker keeps backing off on a shortage before the scan gives up.
const GIVE_UP: Duration = Duration::from_secs(30);
/// The longest pause between attempts while short of resources.
const MAX_PAUSE: Duration = Duration::from_millis(100);
/// Probes a worker completes before it lets the others run (loopback answers never block).
const YIELD_EVERY: u32 = 64;

/// What to scan and how hard.
#[derive(Debug, Clone)]
pub struct Config {
    /// Ports to probe on every target, in order.
    pub ports: PortSet,
    /// Probes in flight at once (at least 1).
    pub concurrency: usize,
    /// How long one connect may take.
    pub timeout: Duration,
    /// Further attempts for a port that did not answer.
    pub retries: u32,
    /// Connection attempts per second at most.
    pub rate: Option<u64>,
    /// Read a banner from open ports for this long (`None`: no banners).
    pub banner_wait: Option<Duration>,
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

#[derive(Debug, Default)]
struct Counts {
    open: AtomicU64,
    closed: AtomicU64,
    filtered: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    jobs: Mutex<Jobs>,
    config: Config,
    guard: Guard,
    ephemeral: RangeInclusive<u16>,
    pacer: Option<Pacer>,
    counts: Counts,
    progress: Arc<Progress>,
}

/// Scans every port of `config.ports` on every target, calling `on_open` for each open port as
/// it is found, and returns the totals.
pub async fn run<E: From<Error>>(
    targets: &Targets,
    config: Config,
    progress: Arc<Progress>,
    mut on_open: impl FnMut(OpenPort) -> Result<(), E>,
) -> Result<ScanSummary, E> {
    let started = Instant::now();
    let workers = total(targets, &config.ports).min(config.concurrency.max(1) as u128);
    let shared = Arc::new(Shared {
        jobs: Mutex::new(Jobs::new(targets.iter(), config.ports.as_slice().into())),
        pacer: config.rate.map(Pacer::new),
        config,
        guard: Guard::new(),
        ephemeral: guard::ephemeral_ports(),
        counts: Counts::default(),
        progress,
    });
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut set = JoinSet::new();
    for _ in 0..workers {
        set.spawn(worker(Arc::clone(&shared), tx.clone()));
    }
    drop(tx);
    loop {
        tokio::select! {
            Some(open) = rx.recv() => on_open(open)?,
            joined = set.join_next() => match joined {
                None => break,
                Some(joined) => joined.map_err(|e| Error::io("scan", io::Error::other(e)))??,
            },
        }
    }
    while let Ok(open) = rx.try_recv() {
        on_open(open)?;
    }
    Ok(shared.summary(targets, started.elapsed()))
}

async fn worker(shared: Arc<Shared>, tx: UnboundedSender<OpenPort>) -> Result<(), Error> {
    let mut since_yield = 0;
    while let Some(job) = shared.next_job() {
        let (state, open) = probe_port(&shared, &job).await?;
        shared.count(state);
        if let Some(open) = open {
            if tx.send(open).is_err() {
                return Ok(());
            }
        }
        since_yield += 1;
        if since_yield == YIELD_EVERY {
            since_yield = 0;
            tokio::task::yield_now().await;
        }
    }
    Ok(())
}

/// Probes one port until the network gives an answer or the retries are spent.
async fn probe_port(shared: &Shared, job: &Job) -> Result<(PortState, Option<OpenPort>), Error> {
    let dst = job.addr();
    let exposed = job.host.local && shared.ephemeral.contains(&job.port);
    let guard = exposed.then_some(&shared.guard);
    let (mut unanswered, mut phantoms) = (0, 0);
    let mut backoff = Backoff::default();
    loop {
        if let Some(pacer) = &shared.pacer {
            pacer.wait().await;
        }
        let outcome = probe::attempt(dst, guard, shared.config.timeout)
            .await
            .map_err(|e| Error::io(format!("scan {dst}"), e))?;
        match outcome {
            Outcome::Open { rtt, socket } => {
                let open = shared.describe(job, rtt, socket.into_socket()).await;
                return Ok((PortState::Open, Some(open)));
            }
            Outcome::Closed => return Ok((PortState::Closed, None)),
            Outcome::Unreachable => return Ok((PortState::Filtered, None)),
            Outcome::Unanswered => {
                unanswered += 1;
                if unanswered > shared.config.retries {
                    return Ok((PortState::Filtered, None));
                }
            }
            Outcome::Phantom => {
                phantoms += 1;
                if phantoms == MAX_PHANTOMS {
                    return Ok((PortState::Closed, None));
                }
            }
            Outcome::Busy(err) => backoff.pause(err, &dst.to_string()).await?,
        }
    }
}

impl Shared {
    fn next_job(&self) -> Option<Job> {
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next()
    }

    fn count(&self, state: PortState) {
        let counter = match state {
            PortState::Open => &self.counts.open,
            PortState::Closed => &self.counts.closed,
            PortState::Filtered => &self.counts.filtered,
        };
        counter.fetch_add(1, Relaxed);
        self.progress.done.fetch_add(1, Relaxed);
    }

    async fn describe(&self, job: &Job, rtt: Duration, socket: socket2::Socket) -> OpenPort {
        let banner = match self.config.banner_wait {
            Some(wait) => banner::read(socket, wait).await,
            None => None,
        };
        OpenPort {
            host: job.host.target.host(),
            addr: job.host.target.addr,
            port: job.port,
            state: PortState::Open,
            service: services::service_name(job.port).map(str::to_string),
            rtt_ms: rtt.as_secs_f64() * 1e3,
            banner,
        }
    }

    fn summary(&self, targets: &Targets, elapsed: Duration) -> ScanSummary {
        ScanSummary {
            hosts: u64::try_from(targets.len()).unwrap_or(u64::MAX),
            scanned: self.config.ports.len() as u64,
            open: self.counts.open.load(Relaxed),
            closed: self.counts.closed.load(Relaxed),
            filtered: self.counts.filtered.load(Relaxed),
            elapsed_s: elapsed.as_secs_f64(),
        }
    }
}

/// Growing pauses while the machine is short of descriptors, buffers or source ports.
#[derive(Debug, Default)]
struct Backoff {
    pause: Duration,
    waited: Duration,
}

impl Backoff {
    async fn pause(&mut self, err: io::Error, what: &str) -> Result<(), Error> {
        if self.waited >= GIVE_UP {
            return Err(Error::io(format!("scan {what}"), err));
        }
        tracing::debug!("scan {what}: {err}; backing off {:?}", self.pause);
        self.pause = (self.pause * 2).clamp(Duration::from_millis(1), MAX_PAUSE);
        tokio::time::sleep(self.pause).await;
        self.waited += self.pause;
        Ok(())
    }
}

/// Spaces connection attempts evenly for `--rate`, shared by every worker.
#[derive(Debug)]
struct Pacer {
    start: Instant,
    interval_ns: u64,
    next_ns: AtomicU64,
}

impl Pacer {
    fn new(rate: u64) -> Self {
        Pacer {
            start: Instant::now(),
            interval_ns: 1_000_000_000 / rate.max(1),
            next_ns: AtomicU64::new(0),
        }
    }

    /// Takes the next free slot (never one in the past, so a slow patch brings no burst) and
    /// sleeps until it comes.
    async fn wait(&self) {
        let now = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let mut current = self.next_ns.load(Relaxed);
        let slot = loop {
            let slot = current.max(now);
            match self.next_ns.compare_exchange_weak(
                current,
                slot + self.interval_ns,
                Relaxed,
                Relaxed,
            ) {
                Ok(_) => break slot,
                Err(seen) => current = seen,
            }
        };
        if slot > now {
            tokio::time::sleep_until(self.start + Duration::from_nanos(slot)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_pacer_spaces_attempts() {
        let pacer = Pacer::new(10);
        let start = Instant::now();
        for _ in 0..5 {
            pacer.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(400));
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_gives_up_after_a_bound() {
        let mut backoff = Backoff::default();
        let mut pauses = 0;
        while backoff
            .pause(io::Error::from_raw_os_error(24), "x")
            .await
            .is_ok()
        {
            pauses += 1;
            assert!(pauses < 1000);
        }
        assert!(backoff.waited >= GIVE_UP);
    }
}
