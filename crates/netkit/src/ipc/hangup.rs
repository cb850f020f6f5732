//! Whether the peer of a Unix stream socket (an `exec:` child's socketpair included) has closed
//! its end for good, not just shut down its side: `send` stops sending then, even when its
//! input has not ended. A TCP peer's close looks like a shutdown of its side until a write
//! draws its reset, so there the writes tell.

use std::future::Future;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::endpoint::Stream;

/// How often a hang-up is looked for.
const EVERY: Duration = Duration::from_millis(50);

/// Completes when the peer of `stream` has closed its end (`POLLHUP` on a Unix socket);
/// never for TCP, or when the socket cannot be watched.
pub fn hung_up(stream: &Stream) -> impl Future<Output = ()> + Send + 'static {
    let watched = match stream {
        Stream::Unix(unix) | Stream::Child(unix, _) => unix.as_fd().try_clone_to_owned().ok(),
        Stream::Tcp(_) => None,
    };
    async move {
        let Some(fd) = watched else {
            return std::future::pending().await;
        };
        while !is_hung_up(&fd) {
            tokio::time::sleep(EVERY).await;
        }
    }
}

fn is_hung_up(fd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::empty())];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(1))
        && fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_peer_is_seen_a_shut_down_one_is_not() {
        let (ours, theirs) = tokio::net::UnixStream::pair().unwrap();
        let ours = Stream::Unix(ours);
        let theirs = theirs.into_std().unwrap();
        theirs.shutdown(std::net::Shutdown::Write).unwrap();
        let watch = hung_up(&ours);
        tokio::pin!(watch);
        let early = tokio::time::timeout(Duration::from_millis(200), &mut watch).await;
        assert!(early.is_err(), "a shutdown is no hang-up");
        drop(theirs);
        tokio::time::timeout(Duration::from_secs(5), watch)
            .await
            .expect("the close is seen");
    }
}
