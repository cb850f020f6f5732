//! The target leg's keepalive, set once the connection has lived past its worker's next tick
//! (half a second to a second after the connect) instead of at once: most forwarded
//! connections are short (a request, its answer, the close) and never live to need a probe,
//! and turning keepalive on costs four `setsockopt` calls (`SO_KEEPALIVE`, `TCP_KEEPIDLE`,
//! `TCP_KEEPINTVL`, `TCP_KEEPCNT`) — a sixth of a short connection's system calls, which
//! HAProxy (keepalive off by default) does not make. The client leg needs none of this: it has
//! keepalive from its listener ([`Keepalive::apply_to_listener`]).
//!
//! Each worker thread keeps the target legs waiting for their keepalive in two generations,
//! keyed by descriptor: the young ones, connected since the last tick, and the old ones, which
//! the next tick sets and forgets. A connection that ends first takes its leg out (its
//! [`Pending`] is dropped before the socket is closed), so a tick never touches a descriptor
//! that was closed and reused. An open connection holds nothing for it after the tick (no
//! timer per connection: a tokio `Sleep` made an idle relay 232 bytes bigger when this was
//! first tried). A thread without the tick (no [`Ticking`] guard) sets keepalive at once. A
//! worker that ends drops what waits: its connections end with it.
//!
//! The first probe goes the idle time after keepalive is set rather than after the connect:
//! at most a second later, for an idle time of at least a second.

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use socket2::SockRef;

use super::keepalive::Keepalive;
use crate::endpoint::Stream;

/// A worker thread's target legs waiting for their keepalive.
#[derive(Default)]
struct Waiting {
    /// Connected since the last tick.
    young: HashMap<RawFd, Keepalive>,
    /// Connected before the last tick: set at the next one.
    old: HashMap<RawFd, Keepalive>,
}

thread_local! {
    /// `None` on a thread that does not tick: keepalive is set at once there.
    static WAITING: RefCell<Option<Waiting>> = const { RefCell::new(None) };
}

/// Marks the current thread as ticking ([`tick`] is called on it, twice a second or so) for
/// as long as it is held; a target leg connected on it then waits for its keepalive.
pub(super) struct Ticking(());

impl Ticking {
    /// Starts deferring the keepalive of target legs connected on this thread.
    pub(super) fn start() -> Ticking {
        WAITING.with(|waiting| *waiting.borrow_mut() = Some(Waiting::default()));
        Ticking(())
    }
}

impl Drop for Ticking {
    fn drop(&mut self) {
        let _ = WAITING.try_with(|waiting| waiting.borrow_mut().take());
    }
}

/// Sets the keepalive of the legs that waited since before the last tick, and ages the young.
pub(super) fn tick() {
    let old = WAITING.with(|waiting| {
        let mut waiting = waiting.borrow_mut();
        let waiting = waiting.as_mut()?;
        let young = std::mem::take(&mut waiting.young);
        Some(std::mem::replace(&mut waiting.old, young))
    });
    for (fd, keepalive) in old.into_iter().flatten() {
        // SAFETY: `fd` is a target leg whose `Pending` is still held: its connection is open
        // and owns the descriptor until the `Pending` is dropped, which takes it out of the
        // waiting legs first (on this thread, so not between the take above and this call).
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        report(keepalive.set(SockRef::from(&fd)));
    }
}

/// A target leg waiting for its keepalive; dropped (before the leg is closed) when its
/// connection ends, which takes it out of the waiting legs if it is still there.
#[must_use = "the leg waits for its keepalive only while this is held"]
pub(super) struct Pending {
    fd: Option<RawFd>,
}

impl Pending {
    /// The keepalive of `upstream`, a target leg held open for at least as long as the
    /// returned guard: set at the next tick but one, or at once on a thread that does not
    /// tick. Off (or a leg that is not TCP) needs nothing.
    pub(super) fn set(keepalive: Keepalive, upstream: &Stream) -> Pending {
        let Stream::Tcp(tcp) = upstream else {
            return Pending { fd: None };
        };
        if keepalive == Keepalive::Off {
            return Pending { fd: None };
        }
        let fd = tcp.as_raw_fd();
        let deferred = WAITING.with(|waiting| match waiting.borrow_mut().as_mut() {
            Some(waiting) => waiting.young.insert(fd, keepalive).is_none(),
            None => false,
        });
        if !deferred {
            report(keepalive.apply(upstream));
            return Pending { fd: None };
        }
        Pending { fd: Some(fd) }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let Some(fd) = self.fd else {
            return;
        };
        // `try_with`: a runtime dropped with the thread's locals drops its connections late.
        let _ = WAITING.try_with(|waiting| {
            if let Some(waiting) = waiting.borrow_mut().as_mut() {
                if waiting.young.remove(&fd).is_none() {
                    waiting.old.remove(&fd);
                }
            }
        });
    }
}

fn report(set: std::io::Result<()>) {
    if let Err(err) = set {
        let why = crate::error::describe_io(&err);
        tracing::debug!("keepalive on the target leg: {why}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connected target leg (and its peer, to keep it open).
    async fn leg() -> (Stream, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (ours, theirs) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        (Stream::Tcp(ours.unwrap()), theirs.unwrap().0)
    }

    fn fd(stream: &Stream) -> RawFd {
        let Stream::Tcp(tcp) = stream else {
            unreachable!("a TCP leg")
        };
        tcp.as_raw_fd()
    }

    fn keepalive_on(stream: &Stream) -> bool {
        let fd = unsafe { BorrowedFd::borrow_raw(fd(stream)) };
        SockRef::from(&fd).keepalive().unwrap()
    }

    #[tokio::test]
    async fn a_leg_gets_its_keepalive_at_the_tick_after_next_and_at_once_without_ticks() {
        let (stream, _peer) = leg().await;
        let at_once = Pending::set(Keepalive::default(), &stream);
        assert!(keepalive_on(&stream), "no tick on this thread: at once");
        drop(at_once);

        let (stream, _peer) = leg().await;
        let ticking = Ticking::start();
        let pending = Pending::set(Keepalive::default(), &stream);
        assert!(!keepalive_on(&stream));
        tick();
        assert!(!keepalive_on(&stream), "still young at the first tick");
        tick();
        assert!(keepalive_on(&stream));
        drop(pending);
        drop(ticking);
    }

    /// How many legs wait on this thread.
    fn waiting() -> usize {
        WAITING.with(|w| {
            w.borrow()
                .as_ref()
                .map_or(0, |w| w.young.len() + w.old.len())
        })
    }

    #[tokio::test]
    async fn a_leg_whose_connection_ends_first_no_longer_waits() {
        let _ticking = Ticking::start();
        let (young, _peer) = leg().await;
        let (old, _peer) = leg().await;
        let old_pending = Pending::set(Keepalive::default(), &old);
        tick();
        let young_pending = Pending::set(Keepalive::default(), &young);
        assert_eq!(waiting(), 2);
        // Its descriptor, closed next, may be another socket's by the next tick.
        drop(old_pending);
        drop(young_pending);
        assert_eq!(waiting(), 0);
        let off = Pending::set(Keepalive::Off, &young);
        assert_eq!(waiting(), 0, "off sets nothing");
        drop(off);
        tick();
        tick();
        assert!(!keepalive_on(&old) && !keepalive_on(&young));
    }
}
