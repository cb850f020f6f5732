//! The user-space impairment relay: a thread inside the router namespace that takes the
//! packets of each impaired link direction from NFQUEUE (one queue each), decides each one's fate with a
//! seeded [`Path`], holds the packet's verdict until its release time (verdicts may be issued
//! out of order) and re-injects duplicates through a raw socket. It sleeps in `ppoll` until a
//! packet arrives or the next one is due. Bounded: at most `max_held` packets are held; beyond
//! that packets are dropped and counted, never passed unimpaired.

use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::BinaryHeap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::poll::{ppoll, PollFd, PollFlags};
use nix::sys::time::TimeSpec;
use socket2::{Domain, Protocol, Socket, Type};

use crate::error::{LabError, Result};
use crate::firewall::RELAY_MARK;
use crate::netns;
use crate::nfqueue::{NfQueue, Packet, Verdict};
use crate::schedule::{Fate, Path};

/// Queues: one per link and direction.
const QUEUES: usize = 4;
/// Longest the relay sleeps in one wait: how fast it notices a stop request.
const TICK: Duration = Duration::from_millis(20);
/// Datagrams read per loop turn before releasing due ones.
const BATCH: usize = 256;
/// The queue socket's receive buffer: packets waiting for the relay to read them.
const RCVBUF: usize = 64 << 20;
/// Packets due this soon are released together with the one that woke the relay: fewer
/// wake-ups when packets are close, at most this much early.
const RELEASE_EARLY: Duration = Duration::from_micros(25);
/// Timer slack of the relay thread (the default 50 µs would add to every release).
const TIMER_SLACK_NS: u64 = 1_000;
/// `IPPROTO_RAW`: a raw socket that sends whole IP packets, header included.
const IPPROTO_RAW: i32 = 255;
/// Bytes of each packet copied to user space when duplicates are made (MTU 1500 fits).
const COPY_RANGE: u16 = 2048;

/// Counters of what the relay did, for tests and the `netkit-lab` binary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Packets taken from the queues.
    pub queued: u64,
    /// Packets dropped by the loss probability.
    pub lost: u64,
    /// Duplicates sent.
    pub duplicated: u64,
    /// Packets that skipped the delay of at least one link (reordering).
    pub reordered: u64,
    /// Packets dropped because `max_held` packets were already held.
    pub overflowed: u64,
    /// Times the kernel reported dropping queued packets before the relay read them
    /// (receive buffer overflow; each report may stand for several packets).
    pub kernel_drops: u64,
    /// Failed verdicts, receives or duplicate sends.
    pub errors: u64,
}

#[derive(Debug, Default)]
struct Counters {
    queued: AtomicU64,
    lost: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
    overflowed: AtomicU64,
    kernel_drops: AtomicU64,
    errors: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> RelayStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RelayStats {
            queued: get(&self.queued),
            lost: get(&self.lost),
            duplicated: get(&self.duplicated),
            reordered: get(&self.reordered),
            overflowed: get(&self.overflowed),
            kernel_drops: get(&self.kernel_drops),
            errors: get(&self.errors),
        }
    }
}

/// A running relay; dropping it stops the thread (held packets are then dropped).
#[derive(Debug)]
pub(crate) struct Relay {
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    /// Starts the relay inside namespace `router` for the given directions; returns once the
    /// queues are bound (or failed to bind).
    pub fn start(
        router: &str,
        paths: Vec<(u16, Path)>,
        max_held: usize,
        realtime: bool,
    ) -> Result<Relay> {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let (name, flag, count) = (router.to_string(), stop.clone(), counters.clone());
        let thread = thread::Builder::new()
            .name("lab-relay".into())
            .spawn(
                move || match Engine::open(&name, paths, max_held, realtime, count) {
                    Ok(mut engine) => {
                        let _ = ready_tx.send(Ok(()));
                        engine.run(&flag);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                },
            )
            .map_err(|e| LabError::io("spawn the relay thread", e))?;
        let mut relay = Relay {
            stop,
            counters,
            thread: Some(thread),
        };
        match ready_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(())) => Ok(relay),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                relay.stop();
                Err(LabError::io(
                    "start the relay",
                    io::ErrorKind::TimedOut.into(),
                ))
            }
        }
    }

    /// What the relay did so far.
    pub fn stats(&self) -> RelayStats {
        self.counters.snapshot()
    }

    /// Stops the thread and waits for it.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A packet (or a duplicate's bytes) waiting for its release time.
struct Held {
    at: Instant,
    seq: u64,
    what: Release,
}

enum Release {
    Verdict {
        queue: u16,
        id: u32,
    },
    /// A duplicate's bytes, and the queue it was made by.
    Copy(u16, Vec<u8>),
}

impl PartialEq for Held {
    fn eq(&self, other: &Held) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Held {}

impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Held) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Held {
    fn cmp(&self, other: &Held) -> CmpOrdering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The relay's state inside its thread.
struct Engine {
    queue: NfQueue,
    paths: [Option<Path>; QUEUES],
    held: BinaryHeap<Reverse<Held>>,
    seq: u64,
    raw4: Socket,
    raw6: Socket,
    max_held: usize,
    counters: Arc<Counters>,
}

impl Engine {
    /// Enters the router namespace, binds the queues and opens the raw sockets.
    fn open(
        router: &str,
        paths: Vec<(u16, Path)>,
        max_held: usize,
        realtime: bool,
        counters: Arc<Counters>,
    ) -> Result<Engine> {
        netns::enter(router)?;
        let _ = nix::sys::prctl::set_timerslack(TIMER_SLACK_NS);
        if realtime {
            raise_priority();
        }
        let nfq_err = |e: io::Error| LabError::io("set up NFQUEUE in the router", e);
        let mut queue = NfQueue::open(RCVBUF).map_err(nfq_err)?;
        let wants_copies = paths.iter().any(|(_, p)| p.wants_copies());
        let range = if wants_copies { COPY_RANGE } else { 0 };
        let kernel_max = u32::try_from(max_held + 65_536).unwrap_or(u32::MAX);
        let mut slots: [Option<Path>; QUEUES] = Default::default();
        for (num, path) in paths {
            queue
                .bind(num, u32::from(range), kernel_max)
                .map_err(nfq_err)?;
            if let Some(slot) = slots.get_mut(usize::from(num)) {
                *slot = Some(path);
            }
        }
        let raw = |domain| {
            Socket::new(domain, Type::RAW, Some(Protocol::from(IPPROTO_RAW)))
                .map_err(|e| LabError::io("open a raw socket in the router", e))
        };
        Ok(Engine {
            queue,
            paths: slots,
            held: BinaryHeap::new(),
            seq: 0,
            raw4: raw(Domain::IPV4)?,
            raw6: raw(Domain::IPV6)?,
            max_held,
            counters,
        })
    }

    /// Receives, schedules and releases until `stop` is set.
    fn run(&mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            self.wait();
            self.receive();
            self.release_due(Instant::now() + RELEASE_EARLY);
        }
    }

    /// Sleeps until a packet arrives, the next held one is due, or a tick passes.
    fn wait(&self) {
        let next = self.held.peek().map(|h| h.0.at);
        let now = Instant::now() + RELEASE_EARLY;
        let until = next.map_or(TICK, |at| at.saturating_duration_since(now));
        if until.is_zero() {
            return;
        }
        let mut fds = [PollFd::new(self.queue.as_fd(), PollFlags::POLLIN)];
        let _ = ppoll(
            &mut fds,
            Some(TimeSpec::from_duration(until.min(TICK))),
            None,
        );
    }

    /// Reads up to `BATCH` datagrams of queued packets and schedules each packet.
    fn receive(&mut self) {
        for _ in 0..BATCH {
            let mut arrived = Vec::new();
            let got = self.queue.receive(|p| arrived.push(Arrival::from(p)));
            for packet in arrived {
                self.schedule(packet);
            }
            match got {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOBUFS) => {
                    Counters::add(&self.counters.kernel_drops);
                }
                Err(_) => {
                    Counters::add(&self.counters.errors);
                    return;
                }
            }
        }
    }

    /// Decides one packet's fate: verdict now, or hold it (and maybe a copy) until later.
    fn schedule(&mut self, packet: Arrival) {
        Counters::add(&self.counters.queued);
        let fate = match self
            .paths
            .get_mut(usize::from(packet.queue))
            .and_then(Option::as_mut)
        {
            Some(path) => path.fate(),
            None => Fate::Deliver {
                hold: Duration::ZERO,
                reordered: false,
                copy: None,
            },
        };
        let Fate::Deliver {
            hold,
            reordered,
            copy,
        } = fate
        else {
            Counters::add(&self.counters.lost);
            return self.verdict(packet.queue, packet.id, Verdict::Drop);
        };
        if self.held.len() >= self.max_held {
            Counters::add(&self.counters.overflowed);
            return self.verdict(packet.queue, packet.id, Verdict::Drop);
        }
        if reordered {
            Counters::add(&self.counters.reordered);
        }
        let now = Instant::now();
        if let (Some(after), Some(bytes)) = (copy, packet.copy) {
            self.hold(now + after, Release::Copy(packet.queue, bytes));
        }
        if hold.is_zero() {
            self.verdict(packet.queue, packet.id, Verdict::Accept);
        } else {
            let release = Release::Verdict {
                queue: packet.queue,
                id: packet.id,
            };
            self.hold(now + hold, release);
        }
    }

    fn hold(&mut self, at: Instant, what: Release) {
        self.seq += 1;
        self.held.push(Reverse(Held {
            at,
            seq: self.seq,
            what,
        }));
    }

    /// Releases every held packet whose time has come.
    fn release_due(&mut self, now: Instant) {
        while self.held.peek().is_some_and(|h| h.0.at <= now) {
            let Some(Reverse(held)) = self.held.pop() else {
                break;
            };
            match held.what {
                Release::Verdict { queue, id } => self.verdict(queue, id, Verdict::Accept),
                Release::Copy(queue, bytes) => self.send_copy(queue, &bytes),
            }
        }
    }

    fn verdict(&self, queue: u16, id: u32, verdict: Verdict) {
        if self.queue.verdict(queue, id, verdict).is_err() {
            Counters::add(&self.counters.errors);
        }
    }

    /// Sends a duplicate through the router's raw socket of its family, marked so that the
    /// queue that made it lets it pass (the other links' queues still take it).
    fn send_copy(&mut self, queue: u16, packet: &[u8]) {
        let mark = RELAY_MARK | u32::from(queue);
        let _ = self.raw4.set_mark(mark).and(self.raw6.set_mark(mark));
        let sent = match destination(packet) {
            Some(dst @ IpAddr::V4(_)) => self.raw4.send_to(packet, &SocketAddr::new(dst, 0).into()),
            Some(dst @ IpAddr::V6(_)) => self.raw6.send_to(packet, &SocketAddr::new(dst, 0).into()),
            None => Err(io::ErrorKind::InvalidData.into()),
        };
        let counter = match sent {
            Ok(_) => &self.counters.duplicated,
            Err(_) => &self.counters.errors,
        };
        Counters::add(counter);
    }
}

/// What the relay keeps of a queued packet: its queue and id, and its bytes when complete
/// (only copied when duplicates are configured).
struct Arrival {
    queue: u16,
    id: u32,
    copy: Option<Vec<u8>>,
}

impl From<Packet<'_>> for Arrival {
    fn from(p: Packet<'_>) -> Arrival {
        let whole = p.complete && !p.payload.is_empty();
        Arrival {
            queue: p.queue,
            id: p.id,
            copy: whole.then(|| p.payload.to_vec()),
        }
    }
}

/// Runs the calling thread (the relay) under SCHED_FIFO priority 1, so releases stay on time
/// on a busy machine (measured at load 10 on 2 cores, 10 ms each way: RTT excess avg 0.7 ms,
/// max 5.9 ms without; avg 0.15 ms, max 1.1 ms with), at about twice the CPU per packet (the
/// forwarding work of each verdict then runs in the relay's context). Best effort: without
/// the privilege the relay runs at normal priority. The relay sleeps whenever nothing is due,
/// and the kernel's real-time throttling keeps CPU time for others even under a flood.
fn raise_priority() -> bool {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: `pthread_self()` names the calling, live thread and `param` is a valid
    // `sched_param` for the duration of the call.
    unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) == 0 }
}

/// The destination address of an IPv4 or IPv6 packet.
fn destination(packet: &[u8]) -> Option<IpAddr> {
    match packet.first()? >> 4 {
        4 => {
            let b: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(b)))
        }
        6 => {
            let b: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_of_both_families() {
        let mut v4 = [0u8; 20];
        v4[0] = 0x45;
        v4[16..20].copy_from_slice(&[198, 18, 1, 5]);
        assert_eq!(destination(&v4), Some("198.18.1.5".parse().unwrap()));
        let mut v6 = [0u8; 40];
        v6[0] = 0x60;
        v6[24..40].copy_from_slice(&"2001:db8::5".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(destination(&v6), Some("2001:db8::5".parse().unwrap()));
        assert_eq!(destination(&[0x45, 0]), None);
        assert_eq!(destination(&[]), None);
    }
}
