//! What Happy Eyeballs learned of the addresses of names, process-wide (RFC 8305 §4 lets a
//! client sort by such history, as browsers and curl do): which address answered last, and
//! which failed or stayed silent while another answered. The next connect to a name with
//! several addresses tries the last winner first and the addresses that failed lately after
//! the others, so a dead first address no longer costs every connection the attempt delay.
//! Nothing is left out: an address remembered dead is still tried, after the others (so its
//! recovery is found), and when every address is remembered dead the plain order stands.
//!
//! Bounded: [`CAPACITY`] addresses at most (the oldest verdicts go first), each verdict kept
//! for [`REMEMBERED_FOR`]. One short lock per connect to arrange the order, and one more to
//! write the verdicts down when they change anything (not for a winner remembered lately that
//! answered first again).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a verdict is remembered.
pub const REMEMBERED_FOR: Duration = Duration::from_secs(300);

/// How many addresses are remembered at most.
pub const CAPACITY: usize = 512;

/// How an address did in a connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Its connection was the one made.
    Answered,
    /// Its attempt failed, or had not answered when a later one did.
    Failed,
}

/// A verdict and when it was given.
#[derive(Debug, Clone, Copy)]
struct Entry {
    verdict: Verdict,
    at: Instant,
}

/// The verdicts of addresses, as the process keeps them in one place.
#[derive(Debug, Default)]
pub struct Memory {
    entries: BTreeMap<SocketAddr, Entry>,
}

static MEMORY: Mutex<Memory> = Mutex::new(Memory::new());

/// The process's memory (a panic elsewhere while it was held leaves verdicts, not harm).
fn shared() -> MutexGuard<'static, Memory> {
    MEMORY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// [`Memory::arrange`] with the process's memory, now.
pub fn arrange(order: &mut [SocketAddr]) -> bool {
    shared().arrange(order, Instant::now())
}

/// [`Memory::record`] into the process's memory, now.
pub fn record(verdicts: &[(SocketAddr, Verdict)]) {
    shared().record(verdicts, Instant::now());
}

impl Memory {
    /// An empty memory.
    pub const fn new() -> Memory {
        Memory {
            entries: BTreeMap::new(),
        }
    }

    /// Reorders `order` (the resolver's, interleaved by family): the address that answered
    /// most lately first, then those with no failure remembered, then those that failed, each
    /// group in its given order. True when the first address answered less than half of
    /// [`REMEMBERED_FOR`] ago: its answering again need not be written down.
    pub fn arrange(&self, order: &mut [SocketAddr], now: Instant) -> bool {
        let fresh = |addr: &SocketAddr| {
            self.entries
                .get(addr)
                .filter(|e| now.saturating_duration_since(e.at) < REMEMBERED_FOR)
        };
        let winner = order
            .iter()
            .filter_map(|a| {
                fresh(a)
                    .filter(|e| e.verdict == Verdict::Answered)
                    .map(|e| (a, e.at))
            })
            .max_by_key(|&(_, at)| at)
            .map(|(a, _)| *a);
        order.sort_by_key(|a| match fresh(a) {
            _ if Some(*a) == winner => 0,
            Some(e) if e.verdict == Verdict::Failed => 2,
            _ => 1,
        });
        order.first().and_then(fresh).is_some_and(|e| {
            e.verdict == Verdict::Answered
                && now.saturating_duration_since(e.at) < REMEMBERED_FOR / 2
        })
    }

    /// Writes `verdicts` down (the later of two for one address stands), then forgets the
    /// expired ones and the oldest beyond [`CAPACITY`].
    pub fn record(&mut self, verdicts: &[(SocketAddr, Verdict)], now: Instant) {
        for &(addr, verdict) in verdicts {
            self.entries.insert(addr, Entry { verdict, at: now });
        }
        if self.entries.len() <= CAPACITY {
            return;
        }
        self.entries
            .retain(|_, e| now.saturating_duration_since(e.at) < REMEMBERED_FOR);
        while self.entries.len() > CAPACITY {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.at)
                .map(|(a, _)| *a);
            match oldest {
                Some(addr) => self.entries.remove(&addr),
                None => break,
            };
        }
    }

    /// How many addresses are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
#[path = "eyeballs_memory_tests.rs"]
mod tests;
