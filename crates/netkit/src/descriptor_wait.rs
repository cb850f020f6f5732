//! Connections that wait for file descriptors. A server short of descriptors (`EMFILE`,
//! `ENFILE`) may still accept a client (one descriptor) and then fail to open the other side
//! of it (a target's socket, an `exec:` child's socketpair). Such a client is kept, not
//! dropped: it waits, backing off, for connections that end to give descriptors back, at most
//! for its connect timeout ([`DescriptorWait`]). While any client waits so, the accept loops
//! take no new client ([`until_nobody_waits`]): new ones wait in the kernel's backlog, which
//! costs no descriptor, instead of taking the descriptors the waiting ones need.
//!
//! Waiting helps only while connections that will end hold descriptors. An accept loop that
//! took a burst of clients before their connects failed can leave every descriptor with a
//! waiting client and none relaying: nothing would give one back before the waits ran out
//! (the connect timeout). Then the newest waiting client gives up (its client is closed, as
//! nginx closes one whose upstream socket cannot be made), which frees a descriptor for the
//! oldest; the others go on waiting.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Clients of this process waiting for descriptors now.
static WAITING: AtomicUsize = AtomicUsize::new(0);
/// The numbers of the clients waiting now (the newest is the largest).
static WAITERS: Mutex<BTreeSet<u64>> = Mutex::new(BTreeSet::new());
/// The number the next waiting client gets.
static NEXT_WAITER: AtomicU64 = AtomicU64::new(0);
/// Connections of this process that hold both their sides now ([`Relaying`]).
static RELAYING: AtomicUsize = AtomicUsize::new(0);
/// Connections of this process that have ended so far (each gave descriptors back).
static ENDED: AtomicU64 = AtomicU64::new(0);

/// The first pause of a waiting client; doubled after each failure, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(5);
/// The longest pause of a waiting client.
const MAX_PAUSE: Duration = Duration::from_millis(200);
/// How often an accept loop looks again whether every waiting client has been served.
const ACCEPT_RECHECK: Duration = Duration::from_millis(5);

/// One client waiting for descriptors: counted in [`WAITING`] until dropped.
#[derive(Debug)]
pub(crate) struct DescriptorWait {
    deadline: Instant,
    pause: Duration,
    /// Its number among the waiting clients.
    number: u64,
    /// [`ENDED`] when it last paused.
    ended_seen: u64,
    /// [`RELAYING`] when it last paused (`None` before its first pause).
    relaying_seen: Option<usize>,
}

impl DescriptorWait {
    /// A client that may wait up to `budget` from now.
    pub(crate) fn new(budget: Duration) -> DescriptorWait {
        WAITING.fetch_add(1, Ordering::Relaxed);
        let number = NEXT_WAITER.fetch_add(1, Ordering::Relaxed);
        waiters().insert(number);
        DescriptorWait {
            deadline: Instant::now() + budget,
            pause: FIRST_PAUSE,
            number,
            ended_seen: ENDED.load(Ordering::Relaxed),
            relaying_seen: None,
        }
    }

    /// Waits before the next try: false once the budget is spent, or when nothing can give a
    /// descriptor back and this is the newest waiting client (then give up).
    pub(crate) async fn pause(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.deadline || self.stalled() {
            return false;
        }
        self.ended_seen = ENDED.load(Ordering::Relaxed);
        self.relaying_seen = Some(RELAYING.load(Ordering::Relaxed));
        tokio::time::sleep(self.pause.min(self.deadline - now)).await;
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        true
    }

    /// Whether waiting is futile and this client should make room: through its whole last
    /// pause no connection held both sides (none whose end would give descriptors back) and
    /// none ended, and it is the newest waiting. Never before its first pause: the clients
    /// accepted with it have not all tried yet.
    fn stalled(&self) -> bool {
        let relaying = RELAYING.load(Ordering::Relaxed);
        stalled(
            self.relaying_seen.map(|before| before.max(relaying)),
            ENDED.load(Ordering::Relaxed) - self.ended_seen,
            waiters().last() == Some(&self.number),
        )
    }
}

impl Drop for DescriptorWait {
    fn drop(&mut self) {
        waiters().remove(&self.number);
        WAITING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// [`DescriptorWait::stalled`] from its facts: the most connections relaying at the start and
/// the end of the last pause (`None`: no pause yet), connections ended during it, and whether
/// the client is the newest waiting.
fn stalled(relaying: Option<usize>, ended: u64, newest: bool) -> bool {
    relaying == Some(0) && ended == 0 && newest
}

fn waiters() -> std::sync::MutexGuard<'static, BTreeSet<u64>> {
    WAITERS.lock().unwrap_or_else(|p| p.into_inner())
}

/// A connection that holds both its sides (a client and its target), from when its target
/// was reached until it is dropped: its end gives descriptors back.
#[derive(Debug)]
pub(crate) struct Relaying(());

impl Relaying {
    /// Counts a connection that just reached its target.
    pub(crate) fn new() -> Relaying {
        RELAYING.fetch_add(1, Ordering::Relaxed);
        Relaying(())
    }
}

impl Drop for Relaying {
    fn drop(&mut self) {
        RELAYING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Notes that a connection ended and closed its descriptors.
pub(crate) fn ended() {
    ENDED.fetch_add(1, Ordering::Relaxed);
}

/// Returns once no client of this process waits for descriptors (at once, mostly). Bounded:
/// every wait ends by its budget.
pub(crate) async fn until_nobody_waits() {
    while WAITING.load(Ordering::Relaxed) > 0 {
        tokio::time::sleep(ACCEPT_RECHECK).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_newest_gives_up_after_a_whole_pause_without_relays_or_ends() {
        assert!(stalled(Some(0), 0, true));
        assert!(!stalled(None, 0, true), "before its first pause");
        assert!(
            !stalled(Some(1), 0, true),
            "a connection relays: it will give back"
        );
        assert!(!stalled(Some(0), 1, true), "one ended meanwhile: try again");
        assert!(!stalled(Some(0), 0, false), "an older one waits");
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_backs_off_within_its_budget_and_holds_the_accepts_meanwhile() {
        // A connection relays (it will give descriptors back): the wait runs its budget.
        let _relaying = Relaying::new();
        let mut wait = DescriptorWait::new(Duration::from_millis(100));
        let accepts = tokio::spawn(async {
            until_nobody_waits().await;
            Instant::now()
        });
        let start = Instant::now();
        let mut pauses = 0;
        while wait.pause().await {
            pauses += 1;
        }
        // 5, 10, 20, 40, then the 25 ms left.
        assert_eq!(
            (pauses, Instant::now() - start),
            (5, Duration::from_millis(100))
        );
        drop(wait);
        let accepted_at = accepts.await.unwrap();
        assert!(accepted_at >= start + Duration::from_millis(100));
    }
}
