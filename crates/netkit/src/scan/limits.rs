//! How many probes may be in flight: each holds one file descriptor, so the open-files limit
//! sets the ceiling. The caller raises the soft limit first ([`crate::sys::raise_nofile`], the
//! one policy of every command) and sizes the scan from what it got.

/// The default ceiling on probes in flight, however many descriptors are allowed: beyond it
/// loopback gets no faster and remote networks see bursts.
pub const DEFAULT_MAX: usize = 4096;

/// Descriptors kept back for everything but probes: stdio, the runtime, output files.
fn reserve(nofile: u64) -> u64 {
    32 + nofile / 16
}

/// Probes in flight for an open-files limit of `nofile`: `asked` (`--concurrency`) when given,
/// else [`DEFAULT_MAX`] but never more than the descriptors left after the reserve. The second
/// value is true when `asked` goes beyond those descriptors: the scan stays exact (shortages
/// are retried), it only spends time backing off.
pub fn concurrency(nofile: u64, asked: Option<usize>) -> (usize, bool) {
    let room = usize::try_from(nofile.saturating_sub(reserve(nofile)))
        .unwrap_or(usize::MAX)
        .max(1);
    match asked {
        Some(n) => (n, n > room),
        None => (DEFAULT_MAX.min(room), false),
    }
}

/// Probes in flight for a SYN scan: `asked` when given, else [`DEFAULT_MAX`]. Raw SYNs hold
/// no descriptor each (two raw sockets serve them all), so the open-files limit does not bound
/// them; the congestion windows decide how many of these are used.
pub fn raw_concurrency(asked: Option<usize>) -> usize {
    asked.unwrap_or(DEFAULT_MAX).max(1)
}

/// Sockets a scan of `in_flight` probes in flight may keep open, for an open-files limit of
/// `nofile`: those of tries that timed out stay open a while for a late answer, outside the
/// probes in flight (nmap's `--max-parallelism` counts only probes not yet timed out), up to
/// the descriptors left after the reserve (raw SYNs hold none: [`DEFAULT_MAX`]), never fewer
/// than `in_flight`. A shortage of descriptors meanwhile closes them first.
pub fn sockets(nofile: u64, in_flight: usize, syn: bool) -> usize {
    let room = match syn {
        true => DEFAULT_MAX,
        false => concurrency(nofile, None).0,
    };
    room.max(in_flight).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sized_from_the_limit() {
        assert_eq!(concurrency(128, None), (88, false));
        assert_eq!(concurrency(1_048_576, None), (DEFAULT_MAX, false));
        assert_eq!(concurrency(1024, Some(10_000)), (10_000, true));
        assert_eq!(concurrency(1024, Some(10)), (10, false));
        assert_eq!(concurrency(3, None), (1, false));
    }

    #[test]
    fn late_answers_keep_sockets_beyond_the_concurrency() {
        assert_eq!(sockets(1024, 1, false), 1024 - 32 - 64);
        assert_eq!(sockets(1024, 5000, false), 5000);
        assert_eq!(sockets(3, 1, false), 1);
        assert_eq!(sockets(3, 1, true), DEFAULT_MAX);
    }

    #[test]
    fn raw_syns_ignore_the_limit() {
        assert_eq!(raw_concurrency(None), DEFAULT_MAX);
        assert_eq!(raw_concurrency(Some(100_000)), 100_000);
    }
}
