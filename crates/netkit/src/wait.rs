//! Waiting for services to accept connections (seed recipe 3), without the seed's flaws: every
//! attempt is bounded by the time left, attempts repeat every `interval` (with a capped backoff
//! once the wait grows long), and the overall timeout is a hard deadline, also against silent
//! hosts whose connects would otherwise hang for minutes.

use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};

use crate::endpoint::Endpoint;

/// How to wait.
#[derive(Debug, Clone)]
pub struct WaitOptions {
    /// The hard deadline for the whole wait.
    pub timeout: Duration,
    /// Time between attempts to one endpoint.
    pub interval: Duration,
    /// Done when any endpoint is up (default: when all are).
    pub any: bool,
}

/// What happened to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitEvent {
    /// The endpoint accepted a connection after `elapsed`.
    Ready {
        /// Index of the endpoint in the list given.
        index: usize,
        /// Time from the start of the wait.
        elapsed: Duration,
    },
    /// The deadline passed before the endpoint accepted.
    TimedOut {
        /// Index of the endpoint in the list given.
        index: usize,
        /// Time from the start of the wait.
        elapsed: Duration,
    },
}

/// Waits for `endpoints`, reporting each [`WaitEvent`] as it happens; returns whether the wait
/// succeeded (all ready, or any with `any`).
pub async fn wait_for(
    endpoints: &[Endpoint],
    options: &WaitOptions,
    mut report: impl FnMut(WaitEvent),
) -> bool {
    let start = Instant::now();
    let deadline = start + options.timeout;
    let mut pending: JoinSet<usize> = JoinSet::new();
    for (index, endpoint) in endpoints.iter().enumerate() {
        let endpoint = endpoint.clone();
        let interval = options.interval;
        pending.spawn(async move {
            until_ready(&endpoint, interval, deadline).await;
            index
        });
    }
    let mut ready = vec![false; endpoints.len()];
    let done = |ready: &[bool]| {
        if options.any {
            ready.iter().any(|r| *r)
        } else {
            ready.iter().all(|r| *r)
        }
    };
    while !done(&ready) {
        let joined = tokio::select! {
            joined = pending.join_next() => joined,
            () = sleep_until(deadline) => None,
        };
        let Some(Ok(index)) = joined else { break };
        ready[index] = true;
        report(WaitEvent::Ready {
            index,
            elapsed: start.elapsed(),
        });
    }
    pending.abort_all();
    let success = done(&ready);
    if !success {
        for index in (0..ready.len()).filter(|i| !ready[*i]) {
            report(WaitEvent::TimedOut {
                index,
                elapsed: start.elapsed(),
            });
        }
    }
    success
}

/// Tries `endpoint` until it accepts; returns only on success (the caller enforces the
/// deadline by dropping this future).
async fn until_ready(endpoint: &Endpoint, interval: Duration, deadline: Instant) {
    let mut delay = interval;
    let started = Instant::now();
    loop {
        let attempt_started = Instant::now();
        let left = deadline.saturating_duration_since(attempt_started);
        if endpoint
            .connect(attempt_bound(interval).min(left))
            .await
            .is_ok()
        {
            return;
        }
        tracing::debug!(%endpoint, "not ready yet");
        delay = next_delay(delay, interval, started.elapsed());
        sleep_until(attempt_started + delay).await;
    }
}

/// How long one connect may take before it is retried: long enough for a slow handshake,
/// short enough that a SYN lost to a host still booting is re-sent soon.
fn attempt_bound(interval: Duration) -> Duration {
    (interval * 4).clamp(Duration::from_secs(1), Duration::from_secs(5))
}

/// The delay before the next attempt: `interval` for the first ten seconds, then growing by a
/// quarter each attempt up to the larger of `interval` and two seconds.
pub fn next_delay(current: Duration, interval: Duration, waited: Duration) -> Duration {
    if waited < Duration::from_secs(10) {
        return interval;
    }
    let cap = interval.max(Duration::from_secs(2));
    current.mul_f64(1.25).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_after_ten_seconds_and_is_capped() {
        let i = Duration::from_millis(250);
        assert_eq!(next_delay(i, i, Duration::from_secs(3)), i);
        let grown = next_delay(i, i, Duration::from_secs(11));
        assert!(grown > i);
        let mut d = i;
        for _ in 0..100 {
            d = next_delay(d, i, Duration::from_secs(60));
        }
        assert_eq!(d, Duration::from_secs(2));
        let slow = Duration::from_secs(5);
        assert_eq!(next_delay(slow, slow, Duration::from_secs(60)), slow);
    }

    #[test]
    fn attempts_are_bounded() {
        assert_eq!(
            attempt_bound(Duration::from_millis(50)),
            Duration::from_secs(1)
        );
        assert_eq!(
            attempt_bound(Duration::from_secs(10)),
            Duration::from_secs(5)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_is_hard_with_virtual_time() {
        // A port just freed on loopback is refused at once; with paused time the wait must end
        // at the deadline, having retried every interval.
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let endpoints = [Endpoint::tcp(free)];
        let options = WaitOptions {
            timeout: Duration::from_secs(3),
            interval: Duration::from_millis(250),
            any: false,
        };
        let mut events = Vec::new();
        let ok = wait_for(&endpoints, &options, |e| events.push(e)).await;
        assert!(!ok);
        assert!(matches!(events[..], [WaitEvent::TimedOut { index: 0, .. }]));
    }

    #[tokio::test]
    async fn ready_is_reported_once_per_endpoint() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let free = std::net::TcpListener::bind("[::1]:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let endpoints = [
            Endpoint::tcp(listener.local_addr().unwrap()),
            Endpoint::tcp(free),
        ];
        let options = WaitOptions {
            timeout: Duration::from_secs(30),
            interval: Duration::from_millis(50),
            any: true,
        };
        let mut events = Vec::new();
        assert!(wait_for(&endpoints, &options, |e| events.push(e)).await);
        assert!(matches!(events[..], [WaitEvent::Ready { index: 0, .. }]));
    }
}
