//! Datagrams dropped before any session took them (`--max-conns` reached, `--allow`, draining,
//! no socket for a new session): counted as they happen, reported as one `drop` record per
//! reason at most once a second, so a flood costs a line a second, not a line a datagram.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::Counters;
use crate::report::forward::{DropReason, DropRecord};

/// The shortest time between two reports.
pub(super) const REPORT_EVERY: Duration = Duration::from_secs(1);

const REASONS: [DropReason; 4] = [
    DropReason::SessionLimit,
    DropReason::Denied,
    DropReason::Draining,
    DropReason::SocketError,
];

/// What is counted for one reason.
#[derive(Debug, Default)]
struct Tally {
    since_report: u64,
    total: u64,
    last_client: Option<SocketAddr>,
    error: Option<String>,
}

/// The drops of one rule.
#[derive(Debug)]
pub(super) struct Drops {
    listen: String,
    tallies: [Tally; 4],
    reported: Option<Instant>,
}

impl Drops {
    /// No drops yet, for the rule listening on `listen` (`udp:127.0.0.1:5353`).
    pub(super) fn new(listen: String) -> Drops {
        Drops {
            listen,
            tallies: Default::default(),
            reported: None,
        }
    }

    /// Counts one datagram from `client` dropped for `reason` (with the error behind it).
    pub(super) fn count(
        &mut self,
        reason: DropReason,
        client: SocketAddr,
        error: Option<&io::Error>,
        counters: &Counters,
    ) {
        Counters::bump(counters.dropped(reason));
        let tally = &mut self.tallies[index(reason)];
        tally.since_report += 1;
        tally.total += 1;
        tally.last_client = Some(client);
        if let Some(err) = error {
            tally.error = Some(crate::error::describe_io(err));
        }
    }

    /// The records due at `now`: one per reason with drops since the last report, when the
    /// last report is at least [`REPORT_EVERY`] old (or `now` is the end: `force`).
    pub(super) fn due(&mut self, now: Instant, force: bool) -> Vec<DropRecord> {
        let waited = self.reported.is_none_or(|at| now - at >= REPORT_EVERY);
        let pending = self.tallies.iter().any(|t| t.since_report > 0);
        if !pending || !(waited || force) {
            return Vec::new();
        }
        self.reported = Some(now);
        let time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let listen = &self.listen;
        REASONS
            .iter()
            .zip(&mut self.tallies)
            .filter(|(_, tally)| tally.since_report > 0)
            .map(|(reason, tally)| record(listen, &time, *reason, tally))
            .collect()
    }
}

fn record(listen: &str, time: &str, reason: DropReason, tally: &mut Tally) -> DropRecord {
    let datagrams = std::mem::take(&mut tally.since_report);
    DropRecord {
        time: time.to_string(),
        listen: listen.to_string(),
        reason,
        datagrams,
        total: tally.total,
        last_client: tally
            .last_client
            .map(super::session::shown)
            .unwrap_or_default(),
        error: tally.error.take(),
    }
}

fn index(reason: DropReason) -> usize {
    REASONS.iter().position(|r| *r == reason).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn reports_come_at_most_once_a_second_and_count_since_the_last() {
        let counters = Counters::default();
        let mut drops = Drops::new("udp:127.0.0.1:1".into());
        let client: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let start = Instant::now();
        assert!(drops.due(start, false).is_empty(), "nothing dropped yet");
        for _ in 0..3 {
            drops.count(DropReason::SessionLimit, client, None, &counters);
        }
        let first = drops.due(start, false);
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].datagrams, first[0].total), (3, 3));
        assert_eq!(first[0].last_client, "127.0.0.1:9");
        drops.count(DropReason::SessionLimit, client, None, &counters);
        let refused = io::Error::from_raw_os_error(nix::libc::EMFILE);
        drops.count(DropReason::SocketError, client, Some(&refused), &counters);
        assert!(drops
            .due(start + Duration::from_millis(500), false)
            .is_empty());
        let second = drops.due(start + REPORT_EVERY, false);
        let reasons: Vec<_> = second
            .iter()
            .map(|r| (r.reason, r.datagrams, r.total))
            .collect();
        assert_eq!(
            reasons,
            [
                (DropReason::SessionLimit, 1, 4),
                (DropReason::SocketError, 1, 1)
            ]
        );
        assert_eq!(second[1].error.as_deref(), Some("too many open files"));
        drops.count(DropReason::Denied, client, None, &counters);
        assert_eq!(
            drops.due(start + REPORT_EVERY, true).len(),
            1,
            "forced at the end"
        );
        assert_eq!(counters.dropped_session_limit.into_inner(), 4);
    }
}
