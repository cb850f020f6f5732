//! Connecting to a Unix stream socket the way a blocking `connect(2)` does (socat, `nc -U`):
//! a live server whose accept queue is full answers a non-blocking connect with `EAGAIN`. It
//! is there, only busy, so the connect is tried again, a little later each time, until the
//! server makes room or the time is up; only then does it fail, with a timeout that says why
//! ([`AcceptQueueFull`]), so that `wait --invert` never takes a busy server for a gone one.

use std::fmt;
use std::io;
use std::time::Duration;

use rustix::net::SocketAddrUnix;
use tokio::net::UnixStream;
use tokio::time::{sleep_until, Instant};

use super::unix_addr;

/// The pause after the first `EAGAIN`; each next one is twice as long, up to
/// [`LONGEST_PAUSE`]. A blocking connect wakes when the server accepts; this is at most that
/// much later.
const FIRST_PAUSE: Duration = Duration::from_millis(1);

/// The longest pause between two tries.
const LONGEST_PAUSE: Duration = Duration::from_millis(20);

/// Why a connect to a Unix socket timed out: its server's accept queue stayed full the whole
/// time (a live server, too busy to accept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("accept queue full: the server is there but not accepting")]
pub(crate) struct AcceptQueueFull;

impl AcceptQueueFull {
    /// Whether `err` is the timeout of a connect that found the queue full to the end.
    pub(crate) fn is(err: &io::Error) -> bool {
        err.get_ref()
            .is_some_and(|inner| inner.is::<AcceptQueueFull>())
    }
}

/// Connects to `addr` (a path or an abstract name), waiting up to `timeout` for room in a full
/// accept queue; `shown` names the endpoint in the debug log.
pub(super) async fn connect(
    addr: &SocketAddrUnix,
    timeout: Duration,
    shown: &impl fmt::Display,
) -> io::Result<UnixStream> {
    let deadline = Instant::now() + timeout;
    let mut pause = FIRST_PAUSE;
    loop {
        match unix_addr::connect(addr) {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            done => return done,
        }
        if pause == FIRST_PAUSE {
            tracing::debug!("{shown}: accept queue full; trying again until there is room");
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, AcceptQueueFull));
        }
        sleep_until((now + pause).min(deadline)).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}
