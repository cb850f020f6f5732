//! A ping session: every host gets one echo request per interval over the shared [`Engine`],
//! replies are matched to the host and sequence they answer, requests unanswered after the
//! timeout are reported once, and the session ends when the count is reached and every
//! request is answered or timed out, at the deadline, or when `shutdown` completes (Ctrl-C).
//! Results go to the caller's event handler as they happen; the summaries come back at the end.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::time::{sleep_until, Instant};

use super::{PingReply, PingSummary, PingTimeout, Stats};
use crate::icmp::{Answer, Engine, ErrorReply, Reply};
use crate::target::Target;

/// What a session does, validated before any I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingConfig {
    /// Requests per host; `None` runs until the deadline or shutdown.
    pub count: Option<u64>,
    /// Time between two requests to one host.
    pub interval: Duration,
    /// How long a request waits for its reply.
    pub timeout: Duration,
    /// The whole session stops after this long.
    pub deadline: Option<Duration>,
}

/// Something that happened during a session, in the order it happened.
#[derive(Debug)]
pub enum Event<'a> {
    /// An echo reply, with its exact round-trip time.
    Reply {
        /// The JSON record.
        record: &'a PingReply,
        /// The round-trip time, unrounded.
        rtt: Duration,
    },
    /// A request that stayed unanswered for the timeout.
    Timeout(&'a PingTimeout),
    /// An ICMP error about a request (unreachable, time exceeded); the request stays
    /// unanswered and times out.
    Error {
        /// The host the request went to.
        target: &'a Target,
        /// Its sequence number, from 1.
        seq: u64,
        /// The error, with who sent it.
        error: &'a ErrorReply,
    },
    /// The kernel refused to send a request (it still counts as transmitted).
    SendError {
        /// The host as given.
        target: &'a Target,
        /// The kernel's reason.
        error: io::Error,
    },
}

/// One host's progress.
#[derive(Debug)]
struct HostState {
    target: Target,
    host: String,
    stats: Stats,
    /// Requests awaiting a reply: sequence number (from 1) and send time, oldest first.
    waiting: VecDeque<(u64, Instant)>,
    first_sent: Option<Instant>,
    last_activity: Instant,
}

/// Pings `targets` (target `i` is engine index `i`) until the session ends, reporting events
/// to `on_event`; returns one summary per target, in order.
pub async fn run<F, E>(
    engine: &Engine,
    targets: &[Target],
    config: &PingConfig,
    shutdown: F,
    mut on_event: E,
) -> io::Result<Vec<PingSummary>>
where
    F: Future<Output = ()>,
    E: FnMut(Event<'_>) -> io::Result<()>,
{
    let start = Instant::now();
    let mut hosts: Vec<HostState> = targets.iter().map(|t| HostState::new(t, start)).collect();
    let end = config.deadline.map(|d| start + d);
    let mut rounds_sent = 0u64;
    let mut next_round = start;
    tokio::pin!(shutdown);
    loop {
        let rounds_left = config.count.map_or(true, |count| rounds_sent < count);
        if !rounds_left && hosts.iter().all(|h| h.waiting.is_empty()) {
            break;
        }
        let wake = next_wake(
            &hosts,
            rounds_left.then_some(next_round),
            end,
            config.timeout,
        );
        tokio::select! {
            () = &mut shutdown => break,
            answer = engine.recv_answer() => match answer? {
                Answer::Reply(reply) => on_reply(&mut hosts, reply, &mut on_event)?,
                Answer::Error(error) => on_error(&mut hosts, &error, &mut on_event)?,
            },
            () = sleep_until(wake) => {
                let now = Instant::now();
                if end.is_some_and(|end| now >= end) {
                    break;
                }
                expire(&mut hosts, now, config.timeout, &mut on_event)?;
                if rounds_left && now >= next_round {
                    rounds_sent += 1;
                    send_round(engine, &mut hosts, rounds_sent, &mut on_event).await?;
                    next_round += config.interval;
                }
            }
        }
    }
    Ok(hosts.iter().map(HostState::summary).collect())
}

impl HostState {
    fn new(target: &Target, start: Instant) -> HostState {
        HostState {
            target: target.clone(),
            host: target.host(),
            stats: Stats::default(),
            waiting: VecDeque::new(),
            first_sent: None,
            last_activity: start,
        }
    }

    fn summary(&self) -> PingSummary {
        let elapsed = self.first_sent.map_or(Duration::ZERO, |first| {
            self.last_activity.duration_since(first)
        });
        PingSummary::new(&self.host, self.target.addr, &self.stats, elapsed)
    }
}

/// When the loop must act next: the next round, the oldest request's timeout, the deadline.
fn next_wake(
    hosts: &[HostState],
    next_round: Option<Instant>,
    end: Option<Instant>,
    timeout: Duration,
) -> Instant {
    let oldest = hosts
        .iter()
        .filter_map(|h| h.waiting.front().map(|(_, sent)| *sent + timeout))
        .min();
    [next_round, oldest, end]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
}

async fn send_round<E>(
    engine: &Engine,
    hosts: &mut [HostState],
    seq: u64,
    on_event: &mut E,
) -> io::Result<()>
where
    E: FnMut(Event<'_>) -> io::Result<()>,
{
    for (index, host) in hosts.iter_mut().enumerate() {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let sent = send_one(engine, index, host.target.addr, seq as u16).await;
        let now = Instant::now();
        host.stats.sent();
        host.first_sent.get_or_insert(now);
        host.last_activity = now;
        host.waiting.push_back((seq, now));
        if let Err(error) = sent {
            on_event(Event::SendError {
                target: &host.target,
                error,
            })?;
        }
    }
    Ok(())
}

/// Sends one request, pausing briefly while the kernel's transmit queue is full (ENOBUFS).
async fn send_one(engine: &Engine, index: u32, addr: std::net::IpAddr, seq: u16) -> io::Result<()> {
    let mut tries = 0;
    loop {
        match engine.send(index, addr, seq).await {
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOBUFS) && tries < 50 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            result => return result,
        }
    }
}

fn on_reply<E>(hosts: &mut [HostState], reply: Reply, on_event: &mut E) -> io::Result<()>
where
    E: FnMut(Event<'_>) -> io::Result<()>,
{
    let Some(host) = hosts.get_mut(reply.index as usize) else {
        return Ok(());
    };
    // Late replies (after their timeout) and duplicates find no waiting request.
    let Some(at) = host
        .waiting
        .iter()
        .position(|(seq, _)| *seq as u16 == reply.seq)
    else {
        return Ok(());
    };
    let Some((seq, _)) = host.waiting.remove(at) else {
        return Ok(());
    };
    host.stats.replied(reply.rtt);
    host.last_activity = Instant::now();
    let record = PingReply {
        host: host.host.clone(),
        addr: reply.addr,
        seq,
        ttl: reply.ttl,
        bytes: reply.bytes,
        rtt_ms: reply.rtt.as_nanos() as f64 / 1e6,
    };
    on_event(Event::Reply {
        record: &record,
        rtt: reply.rtt,
    })
}

fn on_error<E>(hosts: &mut [HostState], error: &ErrorReply, on_event: &mut E) -> io::Result<()>
where
    E: FnMut(Event<'_>) -> io::Result<()>,
{
    // A short quote carries no index: then the first host with that address is meant.
    let host = match error.index {
        Some(index) => hosts.get_mut(index as usize),
        None => hosts.iter_mut().find(|h| h.target.addr == error.target),
    };
    let Some(host) = host.filter(|h| h.target.addr == error.target) else {
        return Ok(());
    };
    let Some(&(seq, _)) = host
        .waiting
        .iter()
        .find(|(seq, _)| *seq as u16 == error.seq)
    else {
        return Ok(());
    };
    host.stats.errors += 1;
    on_event(Event::Error {
        target: &host.target,
        seq,
        error,
    })
}

fn expire<E>(
    hosts: &mut [HostState],
    now: Instant,
    timeout: Duration,
    on_event: &mut E,
) -> io::Result<()>
where
    E: FnMut(Event<'_>) -> io::Result<()>,
{
    for host in hosts {
        while let Some(&(seq, sent)) = host.waiting.front() {
            if sent + timeout > now {
                break;
            }
            host.waiting.pop_front();
            on_event(Event::Timeout(&PingTimeout {
                host: host.host.clone(),
                addr: host.target.addr,
                seq,
            }))?;
        }
    }
    Ok(())
}
