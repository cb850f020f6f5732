//! The open-files limit (`RLIMIT_NOFILE`): one policy for every command that holds many
//! sockets at once (the forwarder two sockets and two pipes per connection, the scanner one
//! socket per probe in flight). The soft limit is raised to the hard one, as servers and
//! scanners do; what the command then does with the room is its own business.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// The soft limit assumed when it cannot even be read: Linux's usual default.
pub const FALLBACK_NOFILE: u64 = 1024;

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
}
