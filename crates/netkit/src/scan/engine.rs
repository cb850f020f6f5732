//! The scan engine: its settings, the events it reports and the totals it returns. The
//! [`Scheduler`](super::schedule::Scheduler) decides which probe leaves when; the workers
//! ([`super::worker`]) carry that out with the clock and real connects. A port gets its state
//! from the network only; local shortages (EMFILE, ENOBUFS, EADDRNOTAVAIL, ...) make the scan
//! pause and send the same try again, so they cost time, never a wrong answer.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use std::thread::JoinHandle;

use tokio::sync::mpsc::{self, UnboundedReceiver};

use super::host::{Retries, StateCounts};
use super::rtt::Timeouts;
use super::schedule::{Counts, Settings, CONNECT_FOLLOW_UPS, SYN_ACK_RETRANSMIT};
use super::syn;
use super::worker::{self, Hosts, Msg, Shared};
use crate::error::Error;
use crate::ports::PortSet;
use crate::report::scan::{PortReport, Reason, ScanSummary, ScanType, Unreachable};
use crate::target::Targets;

/// Hosts scanned at once; ports go round them.
pub const GROUP: usize = 256;

/// How many of netkit's most often open ports ([`crate::ports::top::top_ports`]) a host is
/// probed on first, whatever their place in the list: one of them answering early gives the
/// host a round-trip estimate before a run of dropped ports waits out the initial timeout
/// (1 s) try after try. nmap moves its 20 most common ports to the front the same way
/// (`random_port_cheat`).
pub const COMMON_FIRST: usize = 20;

/// What to scan and how hard.
#[derive(Debug, Clone)]
pub struct Config {
    /// Ports to probe on every target, in order.
    pub ports: PortSet,
    /// Probes in flight at once at most (at least 1).
    pub concurrency: usize,
    /// Sockets open at once at most, those of tries that timed out but still await a late
    /// answer included ([`super::limits::sockets`]; at least `concurrency`).
    pub sockets: usize,
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
    /// Report closed and filtered ports one by one too ([`Event::Port`]); otherwise they are
    /// only counted, which spares an event per port of a host where almost all are closed.
    pub every_port: bool,
    /// Send raw SYNs ([`super::syn`]) instead of connecting; needs `CAP_NET_RAW`.
    pub syn: bool,
}

/// What a scan reports as it goes.
#[derive(Debug)]
pub enum Event {
    /// A port that got its state: every open one, closed and filtered ones with
    /// [`Config::every_port`].
    Port(PortReport),
    /// A host the scan cannot reach.
    Unreachable(Unreachable),
    /// A host whose every port got its state (an open port's banner may still follow).
    HostDone(HostDone),
}

/// A host whose every port got its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDone {
    /// The target as given: a host name, or the address.
    pub host: String,
    /// The address scanned.
    pub addr: std::net::IpAddr,
    /// Its zone (`fe80::1%eth0`: the interface's index; 0 for none).
    pub zone: u32,
    /// How many of its ports got each state.
    pub ports: StateCounts,
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

    /// Records how many probes are finished.
    pub(super) fn store(&self, done: u64) {
        self.done.store(done, Relaxed);
    }
}

/// The number of probes a scan makes: targets × ports.
pub fn total(targets: &Targets, ports: &PortSet) -> u128 {
    targets.len().saturating_mul(ports.len() as u128)
}

/// Scans every port of `config.ports` on every target, reporting ports (open ones, or every
/// one with [`Config::every_port`]) and unreachable hosts through `on_event` as they are found, until done or until `shutdown` completes (the
/// summary then says it was interrupted). Returns the totals. `on_event` is the engines' sink
/// (docs/ARCHITECTURE.md, "The event convention"): an error from it ends the scan, which
/// returns it.
pub async fn run(
    targets: &Targets,
    config: Config,
    progress: Arc<Progress>,
    shutdown: impl Future<Output = ()>,
    mut on_event: impl FnMut(Event) -> io::Result<()>,
) -> Result<ScanSummary, Error> {
    let started = tokio::time::Instant::now();
    let ports = common_first(config.ports.as_slice());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let hosts = Hosts(targets.iter());
    let settings = settings(&config);
    let prober = config.syn.then(syn::Prober::open).transpose()?;
    let shared = Shared::new(
        hosts,
        ports,
        settings,
        config.banner_wait,
        config.every_port,
        progress,
        tx,
    );
    let senders = worker_count();
    let workers = match prober {
        Some(prober) => syn::start(&shared, prober, senders)?,
        None => start_workers(&shared, senders)?,
    };
    let outcome = drive(&mut rx, senders, shutdown, &mut on_event).await;
    shared.stop();
    join_workers(workers).await;
    let counts = shared.counts();
    log_counts(&counts);
    let interrupted = outcome?;
    let elapsed = started.elapsed();
    Ok(summary(targets, &config, &counts, elapsed, interrupted))
}

/// How many threads send probes: one per CPU, at least two.
fn worker_count() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8))
}

/// Starts the connect scan's `count` worker threads.
fn start_workers(shared: &Arc<Shared>, count: usize) -> Result<Vec<JoinHandle<()>>, Error> {
    (0..count)
        .map(|i| {
            let shared = Arc::clone(shared);
            std::thread::Builder::new()
                .name(format!("scan-{i}"))
                .spawn(move || worker::work(&shared))
                .map_err(|e| Error::io("start a scan thread", e))
        })
        .collect()
}

/// Waits for the worker threads (stopped already) without blocking the runtime.
async fn join_workers(workers: Vec<JoinHandle<()>>) {
    let join = move || {
        for worker in workers {
            let _ = worker.join();
        }
    };
    let _ = tokio::task::spawn_blocking(join).await;
}

/// Hands the workers' messages to `on_event` until every worker and banner read is done
/// (`Ok(false)`) or `shutdown` completes (`Ok(true)`).
async fn drive(
    rx: &mut UnboundedReceiver<Msg>,
    mut workers: usize,
    shutdown: impl Future<Output = ()>,
    on_event: &mut impl FnMut(Event) -> io::Result<()>,
) -> Result<bool, Error> {
    tokio::pin!(shutdown);
    let mut banners = 0usize;
    while workers > 0 || banners > 0 {
        let msg = tokio::select! {
            biased;
            () = &mut shutdown => return Ok(true),
            msg = rx.recv() => msg,
        };
        match msg {
            Some(Msg::Event(event)) => on_event(event).map_err(output_error)?,
            Some(Msg::Ports(ports)) => {
                for port in ports {
                    on_event(Event::Port(port)).map_err(output_error)?;
                }
            }
            Some(Msg::BannerPending) => banners += 1,
            Some(Msg::Banner(open)) => {
                banners = banners.saturating_sub(1);
                on_event(Event::Port(open)).map_err(output_error)?;
            }
            Some(Msg::Failed(err)) => return Err(err),
            Some(Msg::Finished) => workers -= 1,
            None => break,
        }
    }
    Ok(false)
}

/// The error of a sink that could not take an event.
fn output_error(err: io::Error) -> Error {
    Error::io("write the results", err)
}

fn log_counts(c: &Counts) {
    tracing::info!(
        "scan: {} probes sent, {} retransmissions, {} late answers, {} drops, {} out of the windows early, {} timing probes",
        c.sent,
        c.retransmitted,
        c.late,
        c.drops,
        c.presumed,
        c.timing
    );
}

/// `ports` in the order a host is probed on them: those among the [`COMMON_FIRST`] most often
/// open first, then the others, each in the order given. Audit (nmap as the oracle): with
/// `--concurrency 1`, `-p 1000-1049,22,80` of a host dropping 1000-1049 took 88 s (nmap -sT
/// 11 s): with no answer yet, every dropped port waited out the initial timeout, twice, before
/// 22 and 80 gave a round trip; in the order `22,80,1000-1049`, 10 s.
fn common_first(ports: &[u16]) -> Arc<[u16]> {
    let common = &crate::ports::top::top_ports()[..COMMON_FIRST];
    let (first, rest): (Vec<u16>, Vec<u16>) = ports.iter().partition(|p| common.contains(p));
    first.into_iter().chain(rest).collect()
}

/// The scheduler's settings for `config`.
fn settings(config: &Config) -> Settings {
    Settings {
        timeouts: Timeouts::capped(config.timeout),
        retries: config.retries,
        max_in_flight: config.concurrency.max(1),
        max_sockets: config.sockets.max(config.concurrency).max(1),
        rate: config.rate.map(|r| r as f64),
        min_rate: config.min_rate.map(|r| r as f64),
        group: GROUP,
        reset: match config.syn {
            true => Reason::Reset,
            false => Reason::ConnRefused,
        },
        queue_bound: config.syn,
        answer_retransmit: Some(SYN_ACK_RETRANSMIT),
        tries_matched: config.syn,
        kernel_resends: !config.syn,
        follow_ups: match config.syn {
            true => 0,
            false => CONNECT_FOLLOW_UPS,
        },
    }
}

fn summary(
    targets: &Targets,
    config: &Config,
    counts: &Counts,
    elapsed: Duration,
    interrupted: bool,
) -> ScanSummary {
    ScanSummary {
        hosts: u64::try_from(targets.len()).unwrap_or(u64::MAX),
        down: 0,
        silent: 0,
        scanned: config.ports.len() as u64,
        open: counts.open,
        closed: counts.closed,
        filtered: counts.filtered,
        unreachable: counts.unreachable,
        interrupted,
        elapsed_s: elapsed.as_secs_f64(),
        scan_type: match config.syn {
            true => ScanType::Syn,
            false => ScanType::Connect,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_ports_go_first_the_rest_keeps_its_order() {
        let ports = common_first(&[1000, 1001, 22, 1002, 80, 7]);
        assert_eq!(&ports[..], &[22, 80, 1000, 1001, 1002, 7]);
        let none = common_first(&[5, 4, 3]);
        assert_eq!(&none[..], &[5, 4, 3]);
    }
}
