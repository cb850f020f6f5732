//! The user-space impairment relay: a thread inside the router namespace that takes the
//! forwarded packets from NFQUEUE (one queue per direction), decides each one's fate with a
//! seeded [`Path`], holds the packet's verdict until its release time (verdicts may be issued
//! out of order) and re-injects duplicates through a raw socket. Bounded: at most `max_held`
//! packets are held; beyond that packets are dropped and counted, never passed unimpaired.

use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::BinaryHeap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nfq::{Message, Queue, Verdict};
use socket2::{Domain, Protocol, Socket, Type};

use crate::error::{LabError, Result};
use crate::firewall::queue_num;
use crate::impairment::Direction;
use crate::netns;
use crate::schedule::{Fate, Path};

/// Longest the relay sleeps when idle; bounds the extra delay a packet can get and how fast
/// the relay notices a stop request.
const IDLE_SLEEP: Duration = Duration::from_micros(250);
/// Packets read per loop turn before releasing due ones.
const BATCH: usize = 512;
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
    pub fn start(router: &str, paths: Vec<(Direction, Path)>, max_held: usize) -> Result<Relay> {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let (name, flag, count) = (router.to_string(), stop.clone(), counters.clone());
        let thread = thread::Builder::new()
            .name("lab-relay".into())
            .spawn(move || match Engine::open(&name, paths, max_held, count) {
                Ok(mut engine) => {
                    let _ = ready_tx.send(Ok(()));
                    engine.run(&flag);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
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
    Verdict(Message),
    Copy(Vec<u8>),
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
    queue: Queue,
    paths: [Option<Path>; 2],
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
        paths: Vec<(Direction, Path)>,
        max_held: usize,
        counters: Arc<Counters>,
    ) -> Result<Engine> {
        netns::enter(router)?;
        let nfq_err = |e: io::Error| LabError::io("set up NFQUEUE in the router", e);
        let mut queue = Queue::open().map_err(nfq_err)?;
        let wants_copies = paths.iter().any(|(_, p)| p.wants_copies());
        let mut slots: [Option<Path>; 2] = [None, None];
        for (dir, path) in paths {
            let num = queue_num(dir);
            queue.bind(num).map_err(nfq_err)?;
            queue.set_fail_open(num, false).map_err(nfq_err)?;
            let kernel_max = u32::try_from(max_held + 65_536).unwrap_or(u32::MAX);
            queue.set_queue_max_len(num, kernel_max).map_err(nfq_err)?;
            let range = if wants_copies { COPY_RANGE } else { 0 };
            queue.set_copy_range(num, range).map_err(nfq_err)?;
            slots[dir.index()] = Some(path);
        }
        queue.set_nonblocking(true);
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
            let received = self.receive();
            self.release_due(Instant::now());
            if received == 0 {
                thread::sleep(self.idle_sleep());
            }
        }
    }

    /// Takes up to `BATCH` packets from the queues; returns how many.
    fn receive(&mut self) -> usize {
        for n in 0..BATCH {
            match self.queue.recv() {
                Ok(msg) => self.schedule(msg),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return n,
                Err(_) => {
                    Counters::add(&self.counters.errors);
                    return n;
                }
            }
        }
        BATCH
    }

    /// Decides one packet's fate: verdict now, or hold it (and maybe a copy) until later.
    fn schedule(&mut self, msg: Message) {
        Counters::add(&self.counters.queued);
        let dir = usize::from(msg.get_queue_num() != 0);
        let fate = match self.paths[dir].as_mut() {
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
            return self.verdict(msg, Verdict::Drop);
        };
        if self.held.len() >= self.max_held {
            Counters::add(&self.counters.overflowed);
            return self.verdict(msg, Verdict::Drop);
        }
        if reordered {
            Counters::add(&self.counters.reordered);
        }
        let now = Instant::now();
        if let Some(after) = copy {
            let payload = msg.get_payload();
            if msg.get_original_len() == payload.len() {
                let bytes = payload.to_vec();
                self.hold(now + after, Release::Copy(bytes));
            }
        }
        if hold.is_zero() {
            self.verdict(msg, Verdict::Accept);
        } else {
            self.hold(now + hold, Release::Verdict(msg));
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
                Release::Verdict(msg) => self.verdict(msg, Verdict::Accept),
                Release::Copy(bytes) => self.send_copy(&bytes),
            }
        }
    }

    fn verdict(&mut self, mut msg: Message, verdict: Verdict) {
        msg.set_verdict(verdict);
        if self.queue.verdict(msg).is_err() {
            Counters::add(&self.counters.errors);
        }
    }

    /// Sends a duplicate through the router's raw socket of its family.
    fn send_copy(&mut self, packet: &[u8]) {
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

    /// How long to sleep when nothing arrived: until the next release, at most `IDLE_SLEEP`.
    fn idle_sleep(&self) -> Duration {
        let next = self.held.peek().map(|h| h.0.at);
        let until = next.map_or(IDLE_SLEEP, |at| {
            at.saturating_duration_since(Instant::now())
        });
        until.min(IDLE_SLEEP)
    }
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
