//! The order probes leave in across the scan's worker threads. Each worker takes a batch of
//! probes from the scheduler and sends them one after another, beside the other workers: two
//! batches taken one after the other leave interleaved, the second's first probe as the
//! first's second. That is harmless for ordinary probes, but a timing probe's place in its
//! burst is what makes it a control ([`super::timing`]: it goes after the first few probes of
//! a burst, which a firewall's refilled token bucket passes whatever it does to the rest).
//! Audit (stop 50, behind a 20/s SYN policer with a burst of 5): one worker took the first 8
//! retries of a burst, another the next batch, which began with the timing probe the
//! scheduler had put 9th; it left 2nd, was answered, and the scan saw no loss and missed 2 of
//! 3 open ports (the CI run that failed). So a batch is numbered when it is taken, and one
//! holding a timing probe waits until every batch taken before it has been sent.

use std::collections::BTreeSet;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The longest a timing probe waits for the batches taken before its own (a worker that
/// took one and was held up for longer is not waited for: a late control beats none).
const MAX_WAIT: Duration = Duration::from_millis(50);

/// The batches taken and not yet sent, by number.
#[derive(Debug, Default)]
pub struct Turns {
    sending: Mutex<(u64, BTreeSet<u64>)>,
    sent: Condvar,
}

impl Turns {
    fn lock(&self) -> MutexGuard<'_, (u64, BTreeSet<u64>)> {
        self.sending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Numbers a batch being taken (call it while holding whatever orders the takes, so that
    /// numbers follow the scheduler's order).
    pub fn take(&self) -> u64 {
        let mut guard = self.lock();
        let (next, sending) = &mut *guard;
        let number = *next;
        *next += 1;
        sending.insert(number);
        number
    }

    /// Waits until every batch numbered below `number` was sent, for 50 ms at most (a worker
    /// held up longer is not waited for).
    pub fn wait_for_earlier(&self, number: u64) {
        self.wait_for_earlier_within(number, MAX_WAIT);
    }

    fn wait_for_earlier_within(&self, number: u64, limit: Duration) {
        let until = Instant::now() + limit;
        let mut guard = self.lock();
        while guard.1.first().is_some_and(|first| *first < number) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            guard = match self.sent.wait_timeout(guard, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Batch `number` was sent (or dropped).
    pub fn sent(&self, number: u64) {
        self.lock().1.remove(&number);
        self.sent.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_batch_waits_for_the_batches_taken_before_it_and_no_others() {
        let turns = Arc::new(Turns::default());
        let first = turns.take();
        let second = turns.take();
        let third = turns.take();
        let first_sent = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (turns, first_sent) = (Arc::clone(&turns), Arc::clone(&first_sent));
            std::thread::spawn(move || {
                turns.wait_for_earlier_within(second, Duration::from_secs(60));
                first_sent.load(Ordering::SeqCst)
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        first_sent.store(true, Ordering::SeqCst);
        turns.sent(first);
        assert!(
            waiter.join().unwrap(),
            "the second batch went before the first was sent"
        );
        // The third (taken later, still sending) does not hold the second; the first batch
        // waits for nothing.
        turns.wait_for_earlier_within(first, Duration::from_secs(60));
        turns.sent(second);
        turns.wait_for_earlier_within(third, Duration::from_secs(60));
    }

    #[test]
    fn a_worker_held_up_is_waited_for_a_bounded_time() {
        let turns = Turns::default();
        let _stuck = turns.take();
        let mine = turns.take();
        turns.wait_for_earlier_within(mine, Duration::from_millis(1));
    }
}
