//! Connections that wait for file descriptors. A server short of descriptors (`EMFILE`,
//! `ENFILE`) may still accept a client (one descriptor) and then fail to open the other side
//! of it (a target's socket, an `exec:` child's socketpair). Such a client is kept, not
//! dropped: it waits, backing off, for connections that end to give descriptors back, at most
//! for its connect timeout ([`DescriptorWait`]). While any client waits so, the accept loops
//! take no new client ([`until_nobody_waits`]): new ones wait in the kernel's backlog, which
//! costs no descriptor, instead of taking the descriptors the waiting ones need.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Clients of this process waiting for descriptors now.
static WAITING: AtomicUsize = AtomicUsize::new(0);

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
}

impl DescriptorWait {
    /// A client that may wait up to `budget` from now.
    pub(crate) fn new(budget: Duration) -> DescriptorWait {
        WAITING.fetch_add(1, Ordering::Relaxed);
        DescriptorWait {
            deadline: Instant::now() + budget,
            pause: FIRST_PAUSE,
        }
    }

    /// Waits before the next try: false once the budget is spent (then give up).
    pub(crate) async fn pause(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        tokio::time::sleep(self.pause.min(self.deadline - now)).await;
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        true
    }
}

impl Drop for DescriptorWait {
    fn drop(&mut self) {
        WAITING.fetch_sub(1, Ordering::Relaxed);
    }
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

    #[tokio::test(start_paused = true)]
    async fn a_wait_backs_off_within_its_budget_and_holds_the_accepts_meanwhile() {
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
