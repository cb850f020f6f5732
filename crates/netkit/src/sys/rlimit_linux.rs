//! The open-files limit (`RLIMIT_NOFILE`): one policy for every command that holds many
//! sockets at once (the forwarder two sockets and two pipes per connection, the scanner one
//! socket per probe in flight). The soft limit is raised to the hard one, as servers and
//! scanners do; what the command then does with the room is its own business.
//!
//! Every command also needs a few descriptors just to start (the runtime's epoll and wakers,
//! the signal driver's socketpair, a socket or two): [`ensure_min_nofile`] checks that floor
//! once, before any of them is opened, so that a tiny limit is refused by name rather than
//! failing somewhere inside (tokio's signal driver panics when it cannot make its socketpair).

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// The soft limit assumed when it cannot even be read: Linux's usual default.
pub const FALLBACK_NOFILE: u64 = 1024;

/// The fewest descriptors any command may start with: each needs about 10 (the runtime, the
/// signal driver, a socket per family, the standard streams), the rest is room to work.
pub const MIN_NOFILE: u64 = 16;

/// Makes sure [`MIN_NOFILE`] descriptors may be open: a soft limit below it is raised to the
/// hard one; a hard limit below it too is the environment's refusal
/// ([`crate::Error::OpenFilesLimit`]). A limit at or above it is left as it is (a `wait`'s
/// command, say, inherits it unchanged). A limit that cannot be read is taken as enough.
pub fn ensure_min_nofile() -> crate::Result<()> {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return Ok(());
    };
    match floor(soft, hard, MIN_NOFILE) {
        Floor::Enough => Ok(()),
        Floor::Raise(raised) => match setrlimit(Resource::RLIMIT_NOFILE, raised, hard) {
            Ok(()) => Ok(()),
            Err(_) => Err(too_low(soft)),
        },
        Floor::TooLow(limit) => {
            // As much as there is: the refusal names the limit that could not be raised.
            let _ = setrlimit(Resource::RLIMIT_NOFILE, limit, hard);
            Err(too_low(limit))
        }
    }
}

fn too_low(limit: u64) -> crate::Error {
    crate::Error::OpenFilesLimit {
        limit,
        needed: MIN_NOFILE,
    }
}

/// What [`ensure_min_nofile`] does with a soft and hard limit, for a floor of `min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Floor {
    /// The soft limit reaches the floor.
    Enough,
    /// The soft limit is to be raised to this (the hard limit), which reaches the floor.
    Raise(u64),
    /// Even the hard limit, this, is below the floor.
    TooLow(u64),
}

fn floor(soft: u64, hard: u64, min: u64) -> Floor {
    match (soft >= min, hard >= min) {
        (true, _) => Floor::Enough,
        (false, true) => Floor::Raise(hard),
        (false, false) => Floor::TooLow(soft.max(hard)),
    }
}

/// Raises the soft open-files limit to the hard limit, best effort, and returns the soft limit
/// in force afterwards. A failure is logged (at debug level) and leaves the limit as it was.
pub fn raise_nofile() -> u64 {
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(err) => {
            tracing::debug!("cannot read the open-files limit: {err}");
            return FALLBACK_NOFILE;
        }
    };
    let Some(raised) = wanted(soft, hard) else {
        return soft;
    };
    match setrlimit(Resource::RLIMIT_NOFILE, raised, hard) {
        Ok(()) => raised,
        Err(err) => {
            tracing::debug!("cannot raise the open-files limit from {soft} to {raised}: {err}");
            soft
        }
    }
}

/// The soft open-files limit in force ([`FALLBACK_NOFILE`] when it cannot be read).
pub fn nofile() -> u64 {
    getrlimit(Resource::RLIMIT_NOFILE).map_or(FALLBACK_NOFILE, |(soft, _)| soft)
}

/// The policy: the soft limit to ask for, when it is to change at all.
fn wanted(soft: u64, hard: u64) -> Option<u64> {
    (soft < hard).then_some(hard)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The policy only: unit tests never change the limits of the test process.
    #[test]
    fn the_soft_limit_goes_up_to_the_hard_one_never_down() {
        assert_eq!(wanted(1024, 524_288), Some(524_288));
        assert_eq!(wanted(4096, 4096), None);
        assert_eq!(wanted(8192, 4096), None);
    }

    #[test]
    fn a_soft_limit_below_the_floor_goes_up_to_the_hard_one_if_that_reaches_it() {
        assert_eq!(floor(1024, 1024, 16), Floor::Enough);
        assert_eq!(floor(16, 16, 16), Floor::Enough);
        assert_eq!(floor(8, 4096, 16), Floor::Raise(4096));
        assert_eq!(floor(8, 16, 16), Floor::Raise(16));
        assert_eq!(floor(6, 9, 16), Floor::TooLow(9));
        assert_eq!(floor(9, 9, 16), Floor::TooLow(9));
    }

    #[test]
    fn a_limit_too_low_is_named_with_the_way_out() {
        let err = too_low(9);
        assert_eq!(err.class(), crate::ErrorClass::Environment);
        let text = err.to_string();
        assert!(text.starts_with("open files limit 9: "), "{text}");
        assert!(text.contains("ulimit -n"), "{text}");
    }
}
