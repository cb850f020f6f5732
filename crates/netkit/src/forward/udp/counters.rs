//! A UDP rule's live totals, as plain atomics that a metrics endpoint can read while the rule
//! serves (the session and drop records carry the same figures per session and per second).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::report::forward::DropReason;

/// The totals of one UDP rule since it started. Every field only grows, except
/// `sessions_active`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Sessions open now.
    pub sessions_active: AtomicU64,
    /// Sessions opened.
    pub sessions_total: AtomicU64,
    /// Datagrams relayed from clients to the target.
    pub datagrams_up: AtomicU64,
    /// Datagrams relayed from the target to clients.
    pub datagrams_down: AtomicU64,
    /// Payload bytes relayed from clients to the target.
    pub bytes_up: AtomicU64,
    /// Payload bytes relayed from the target to clients.
    pub bytes_down: AtomicU64,
    /// ICMP port unreachable answers from the target.
    pub refused: AtomicU64,
    /// Datagrams of open sessions that could not be sent on.
    pub send_failed: AtomicU64,
    /// Datagrams dropped because `--max-conns` sessions were open.
    pub dropped_session_limit: AtomicU64,
    /// Datagrams dropped because their source is not in `--allow`.
    pub dropped_denied: AtomicU64,
    /// Datagrams of new clients dropped while draining.
    pub dropped_draining: AtomicU64,
    /// Datagrams of new clients dropped because no session socket could be opened.
    pub dropped_socket_error: AtomicU64,
    targets: Mutex<Vec<Arc<TargetCounters>>>,
}

/// One target's share of a UDP rule's sessions, and whether it is up.
#[derive(Debug)]
pub struct TargetCounters {
    /// The target's label (`udp:127.0.0.1:53`).
    pub target: String,
    /// Whether new sessions may go to it (down for a while after it refused).
    pub up: AtomicBool,
    /// Sessions sent to it (opened there, or moved there from a refusing target).
    pub sessions_total: AtomicU64,
    /// Sessions sending to it now.
    pub sessions_active: AtomicU64,
    /// ICMP port unreachable answers from it.
    pub refused: AtomicU64,
}

impl Counters {
    /// Adds one datagram of `bytes` relayed up (`down: false`) or down.
    pub(super) fn relayed(&self, down: bool, bytes: usize) {
        let (datagrams, total) = match down {
            false => (&self.datagrams_up, &self.bytes_up),
            true => (&self.datagrams_down, &self.bytes_down),
        };
        datagrams.fetch_add(1, Ordering::Relaxed);
        total.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Adds one to `counter`.
    pub(super) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counter of datagrams dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> &AtomicU64 {
        match reason {
            DropReason::SessionLimit => &self.dropped_session_limit,
            DropReason::Denied => &self.dropped_denied,
            DropReason::Draining => &self.dropped_draining,
            DropReason::SocketError => &self.dropped_socket_error,
        }
    }

    /// The counters of the target labelled `target` (kept across reloads while the rule keeps
    /// it), created on first use.
    pub(crate) fn target(&self, target: &str) -> Arc<TargetCounters> {
        let mut targets = lock(&self.targets);
        if let Some(found) = targets.iter().find(|t| t.target == target) {
            return Arc::clone(found);
        }
        let made = Arc::new(TargetCounters {
            target: target.to_string(),
            up: AtomicBool::new(true),
            sessions_total: AtomicU64::new(0),
            sessions_active: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        });
        targets.push(Arc::clone(&made));
        made
    }

    /// Forgets the targets not labelled in `keep` (gone from the rule with a reload).
    pub(crate) fn retain_targets(&self, keep: &[String]) {
        lock(&self.targets).retain(|t| keep.contains(&t.target));
    }

    /// Every target's counters, in rule order.
    pub fn targets(&self) -> Vec<Arc<TargetCounters>> {
        lock(&self.targets).clone()
    }

    /// One session opened (`true`) or closed.
    pub(super) fn session(&self, opened: bool) {
        if opened {
            Counters::bump(&self.sessions_total);
            Counters::bump(&self.sessions_active);
        } else {
            self.sessions_active.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
