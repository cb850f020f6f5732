//! Errors that say "this machine is short of something right now", never "the peer said no":
//! one list for every engine. A shortage is worth waiting for (a descriptor or a buffer frees
//! up, a source port leaves `TIME_WAIT`); it is never an answer about a host or a port.
//!
//! And the one retry of a send that the kernel refused because the interface's transmit queue
//! was full (`ENOBUFS`): a short pause lets the queue drain.

use std::future::Future;
use std::io;
use std::time::Duration;

use nix::errno::Errno;

/// What the machine is short of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortage {
    /// File descriptors: the process's limit (`EMFILE`) or the system's (`ENFILE`).
    Descriptors,
    /// Kernel memory or socket buffers (`ENOMEM`, `ENOBUFS`).
    Memory,
    /// Local addresses: every ephemeral source port is taken (`EADDRNOTAVAIL`,
    /// `EADDRINUSE` from `connect(2)`).
    LocalPorts,
    /// A resource the kernel says to try again for (`EAGAIN` from `connect(2)`: no free
    /// local port for a Unix socket, a full routing cache).
    Again,
}

/// The shortage `err` reports, if it reports one. Meant for errors of `socket(2)`,
/// `connect(2)`, `accept(2)` and sends; `EADDRINUSE` from `bind(2)` is no shortage but a
/// taken address (see [`crate::error::hint`]).
pub fn shortage(err: &io::Error) -> Option<Shortage> {
    let errno = Errno::from_raw(err.raw_os_error()?);
    match errno {
        Errno::EMFILE | Errno::ENFILE => Some(Shortage::Descriptors),
        Errno::ENOBUFS | Errno::ENOMEM => Some(Shortage::Memory),
        Errno::EADDRNOTAVAIL | Errno::EADDRINUSE => Some(Shortage::LocalPorts),
        Errno::EAGAIN => Some(Shortage::Again),
        _ => None,
    }
}

/// Whether `err`, returned by `accept(2)`, is about the one connection being accepted (reset
/// or aborted while it waited, or a network error Linux passes on from it) rather than about
/// the listener: the next `accept` may go ahead at once (accept(2), "Error handling").
pub fn aborted_connection(err: &io::Error) -> bool {
    let Some(code) = err.raw_os_error() else {
        return false;
    };
    matches!(
        Errno::from_raw(code),
        Errno::ECONNABORTED
            | Errno::ECONNRESET
            | Errno::EPROTO
            | Errno::EPERM
            | Errno::ENETDOWN
            | Errno::ENOPROTOOPT
            | Errno::EHOSTDOWN
            | Errno::ENONET
            | Errno::EHOSTUNREACH
            | Errno::EOPNOTSUPP
            | Errno::ENETUNREACH
    )
}

/// Pause between two tries of a send refused with `ENOBUFS`.
pub const ENOBUFS_PAUSE: Duration = Duration::from_millis(1);
/// Tries of a send refused with `ENOBUFS`, the first included.
pub const ENOBUFS_TRIES: u32 = 50;

/// Runs `send` until it does not fail with `ENOBUFS`, at most [`ENOBUFS_TRIES`] times,
/// pausing [`ENOBUFS_PAUSE`] in between; returns the last result.
pub async fn retry_enobufs<T, F, Fut>(mut send: F) -> io::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    let mut tries = 1;
    loop {
        match send().await {
            Err(err) if is_enobufs(&err) && tries < ENOBUFS_TRIES => {
                tries += 1;
                tokio::time::sleep(ENOBUFS_PAUSE).await;
            }
            result => return result,
        }
    }
}

fn is_enobufs(err: &io::Error) -> bool {
    err.raw_os_error() == Some(Errno::ENOBUFS as i32)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn os(errno: Errno) -> io::Error {
        io::Error::from_raw_os_error(errno as i32)
    }

    #[test]
    fn shortages_are_classified_and_answers_are_not_shortages() {
        assert_eq!(shortage(&os(Errno::EMFILE)), Some(Shortage::Descriptors));
        assert_eq!(shortage(&os(Errno::ENFILE)), Some(Shortage::Descriptors));
        assert_eq!(shortage(&os(Errno::ENOBUFS)), Some(Shortage::Memory));
        assert_eq!(shortage(&os(Errno::ENOMEM)), Some(Shortage::Memory));
        assert_eq!(
            shortage(&os(Errno::EADDRNOTAVAIL)),
            Some(Shortage::LocalPorts)
        );
        assert_eq!(shortage(&os(Errno::EADDRINUSE)), Some(Shortage::LocalPorts));
        assert_eq!(shortage(&os(Errno::EAGAIN)), Some(Shortage::Again));
        for answer in [
            Errno::ECONNREFUSED,
            Errno::ECONNRESET,
            Errno::ETIMEDOUT,
            Errno::EHOSTUNREACH,
            Errno::ENETUNREACH,
            Errno::EACCES,
            Errno::EPERM,
        ] {
            assert_eq!(shortage(&os(answer)), None, "{answer}");
        }
        assert_eq!(shortage(&io::ErrorKind::TimedOut.into()), None);
    }

    #[test]
    fn accept_errors_about_one_connection_are_not_about_the_listener() {
        assert!(aborted_connection(&os(Errno::ECONNABORTED)));
        assert!(aborted_connection(&os(Errno::EPROTO)));
        assert!(!aborted_connection(&os(Errno::EMFILE)));
        assert!(!aborted_connection(&os(Errno::EBADF)));
        assert!(!aborted_connection(&io::ErrorKind::Other.into()));
    }

    #[tokio::test(start_paused = true)]
    async fn enobufs_is_retried_until_the_queue_takes_the_send() {
        let calls = Cell::new(0);
        let result = retry_enobufs(|| {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                match n {
                    1..=3 => Err(os(Errno::ENOBUFS)),
                    _ => Ok(n),
                }
            }
        })
        .await;
        assert_eq!(result.unwrap(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn enobufs_gives_up_after_the_last_try_and_other_errors_at_once() {
        let calls = Cell::new(0);
        let result: io::Result<()> = retry_enobufs(|| {
            calls.set(calls.get() + 1);
            async { Err(os(Errno::ENOBUFS)) }
        })
        .await;
        assert_eq!(
            result.unwrap_err().raw_os_error(),
            Some(Errno::ENOBUFS as i32)
        );
        assert_eq!(calls.get(), ENOBUFS_TRIES);
        calls.set(0);
        let result: io::Result<()> = retry_enobufs(|| {
            calls.set(calls.get() + 1);
            async { Err(os(Errno::EHOSTUNREACH)) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.get(), 1);
    }
}
