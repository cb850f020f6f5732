//! The pipes of `splice(2)`, shared by every connection of the process: a direction takes a
//! pipe when bytes are about to go through it and gives it back as soon as the pipe is empty
//! again, so an idle connection holds no pipe (two descriptors, its sockets, instead of six).
//! At most [`IDLE_CAP`] empty pipes wait for the next taker; at most a quarter of the
//! open-files limit goes to pipes at all (past that a direction copies instead), so that bulk
//! transfers can never starve `accept(2)` of descriptors. HAProxy does the same (`maxpipes`).
//!
//! Nothing is lost: a [`Lease`] goes back to the pool only through [`Lease::release`], which
//! the relay calls when everything spliced into the pipe went out of it. A lease dropped any
//! other way (a failed write, a cancelled relay) closes its pipe with whatever was in it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};

use crate::sys::splice::Pipe;

/// The pipe size asked for with `F_SETPIPE_SZ`: 128 KiB to 1 MiB measured alike on loopback;
/// 256 KiB keeps well inside the per-user pipe budget of unprivileged users.
pub(super) const PIPE_SIZE: usize = 256 * 1024;

/// At most this many empty pipes are kept for reuse; more are closed when given back.
pub const IDLE_CAP: usize = 16;

/// The share of the open-files limit pipes may take (two descriptors each): one quarter.
const FD_SHARE: u64 = 4;

/// The process's pipes.
pub(super) static PIPES: LazyLock<PipePool> = LazyLock::new(|| {
    let fds = crate::sys::rlimit::nofile() / FD_SHARE;
    PipePool::new(
        IDLE_CAP,
        usize::try_from(fds / 2).unwrap_or(usize::MAX).max(1),
    )
});

/// How many pipes there are: the counters `--metrics` can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipeCounts {
    /// Pipes open, in use or waiting in the pool.
    pub open: usize,
    /// Empty pipes waiting in the pool.
    pub pooled: usize,
    /// The most pipes that may be open at once.
    pub limit: usize,
}

/// The pipes of the process now.
pub fn pipe_counts() -> PipeCounts {
    PIPES.counts()
}

/// Empty pipes for reuse, and the count of every pipe open.
#[derive(Debug)]
pub(super) struct PipePool {
    idle: Mutex<Vec<Pipe>>,
    idle_cap: usize,
    open: AtomicUsize,
    open_cap: usize,
}

impl PipePool {
    /// A pool keeping at most `idle_cap` empty pipes, with at most `open_cap` pipes open.
    pub(super) fn new(idle_cap: usize, open_cap: usize) -> PipePool {
        PipePool {
            idle: Mutex::new(Vec::with_capacity(idle_cap)),
            idle_cap,
            open: AtomicUsize::new(0),
            open_cap,
        }
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Pipe>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An empty pipe: a pooled one, else a new one; `None` when the cap is reached or no pipe
    /// can be had (the caller copies instead).
    pub(super) fn lease(&self) -> Option<Lease<'_>> {
        if let Some(pipe) = self.idle().pop() {
            return Some(Lease {
                pipe: Some(pipe),
                pool: self,
            });
        }
        let claimed = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.open_cap).then_some(open + 1)
            });
        if claimed.is_err() {
            tracing::debug!("{} pipes open: copying instead", self.open_cap);
            return None;
        }
        match Pipe::new(PIPE_SIZE) {
            Ok(pipe) => Some(Lease {
                pipe: Some(pipe),
                pool: self,
            }),
            Err(err) => {
                self.open.fetch_sub(1, Ordering::AcqRel);
                tracing::debug!("no pipe for splice ({err}); copying");
                None
            }
        }
    }

    /// Takes back an empty pipe: kept for the next lease, or closed when enough wait.
    fn give_back(&self, pipe: Pipe) {
        let mut idle = self.idle();
        if idle.len() < self.idle_cap {
            idle.push(pipe);
            return;
        }
        drop(idle);
        self.closed(pipe);
    }

    fn closed(&self, pipe: Pipe) {
        drop(pipe);
        self.open.fetch_sub(1, Ordering::AcqRel);
    }

    /// The counters now.
    pub(super) fn counts(&self) -> PipeCounts {
        PipeCounts {
            open: self.open.load(Ordering::Acquire),
            pooled: self.idle().len(),
            limit: self.open_cap,
        }
    }
}

/// A pipe taken from the pool. Dropped, it is closed; [`Lease::release`] gives it back.
#[derive(Debug)]
pub(super) struct Lease<'a> {
    pipe: Option<Pipe>,
    pool: &'a PipePool,
}

impl Lease<'_> {
    /// Gives the pipe back to the pool. Only for an empty pipe: everything spliced into it
    /// was spliced out.
    pub(super) fn release(mut self) {
        if let Some(pipe) = self.pipe.take() {
            self.pool.give_back(pipe);
        }
    }
}

impl std::ops::Deref for Lease<'_> {
    type Target = Pipe;

    fn deref(&self) -> &Pipe {
        match &self.pipe {
            Some(pipe) => pipe,
            None => unreachable!("a lease holds its pipe until it is released or dropped"),
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(pipe) = self.pipe.take() {
            self.pool.closed(pipe);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    use super::*;

    #[test]
    fn at_most_the_cap_of_pipes_is_open_and_at_most_the_idle_cap_pooled() {
        let pool = PipePool::new(2, 3);
        let leases: Vec<_> = (0..3).map(|_| pool.lease().unwrap()).collect();
        assert!(pool.lease().is_none(), "a fourth pipe past the cap");
        assert_eq!(pool.counts().open, 3);
        for lease in leases {
            lease.release();
        }
        let counts = pool.counts();
        assert_eq!((counts.open, counts.pooled), (2, 2), "one closed, two kept");
        let again = pool.lease().unwrap();
        assert_eq!(pool.counts().pooled, 1, "reused, not opened");
        again.release();
    }

    #[test]
    fn a_pipe_dropped_with_bytes_in_it_is_closed_never_pooled() {
        let pool = PipePool::new(4, 4);
        let lease = pool.lease().unwrap();
        let (mut writer, src) = UnixStream::pair().unwrap();
        writer.write_all(b"in flight").unwrap();
        assert_eq!(lease.fill_from(src.as_fd(), 64).unwrap(), 9);
        drop(lease);
        let counts = pool.counts();
        assert_eq!((counts.open, counts.pooled), (0, 0));
    }
}
