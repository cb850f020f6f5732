//! Zero-copy relay for bulk transfers: `splice(2)` from the source socket into a pipe, then
//! from the pipe into the destination socket, so payload bytes never enter user space. Small
//! exchanges (requests and replies) are cheaper copied: no pipe, and a short read proves the
//! socket drained, which saves a system call per message.
//!
//! Pipes come from the process's [`PIPES`] pool: one is taken when bytes are there to splice
//! and given back as soon as everything in it went out, so a connection between two bursts
//! holds none.

use std::future::Future;
use std::io;

use super::io::{self as relay_io, Copied, End, Head, Then, COPY_BUF};
use super::pipe_pool::PIPES;
use crate::endpoint::Stream;

/// How a burst of splicing ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Burst {
    /// The source reached its end of file.
    Eof,
    /// A splice brought less than a copy buffer's worth (or no pipe could be had).
    Short,
    /// The source has nothing now; the next burst is to wait for it.
    Drained,
}

fn on_src(err: io::Error) -> (End, io::Error) {
    (End::Src, err)
}

/// Moves `src` to `dst` until `src` reaches EOF: small reads are copied through the thread's
/// buffer; once a read fills it (a bulk transfer), bytes go through a pipe with `splice(2)`
/// until a splice brings less than a buffer's worth again. `moved` is told about every chunk
/// delivered, and `spliced` each time a pipe carries one. An error says which end failed.
/// `head` is a first copy step already made (the client's first bytes, taken as soon as its
/// target was connected: [`super::conn`]), whose outcome is taken as the first of the loop's.
///
/// A direction waits for its source here, never inside a burst: a burst's state is boxed and
/// freed as soon as the source has nothing, so a connection left idle after a bulk transfer
/// holds no more than one that never had one (it held two boxed bursts, about 220 bytes each,
/// for as long as it stayed open).
///
/// An async block, not an async fn, which would keep room for its arguments twice
/// (rust-lang/rust#62958): this is what an open connection holds for each direction.
#[allow(clippy::manual_async_fn)] // an async fn keeps its arguments twice (rust-lang/rust#62958)
pub(super) fn pump<'a>(
    src: &'a Stream,
    dst: &'a Stream,
    moved: impl Fn(usize) + 'a,
    spliced: impl Fn() + 'a,
    mut head: Head,
) -> impl Future<Output = Result<(), (End, io::Error)>> + 'a {
    async move {
        let mut splicing = false;
        loop {
            if splicing {
                src.read_ready().await.map_err(on_src)?;
                // Boxed: between bursts, and while it waits, a direction keeps only the copy step's
                // state. One box per wake-up of a bulk transfer, beside two splices at least.
                match Box::pin(burst(src, dst, &moved, &spliced)).await? {
                    Burst::Eof => return Ok(()),
                    Burst::Short => splicing = false,
                    Burst::Drained => {}
                }
                continue;
            }
            let copied = match head.take() {
                Some(step) => step?,
                None => relay_io::copy_some(src, dst).await?,
            };
            let (n, rest, then) = match copied {
                Copied::Eof => return Ok(()),
                Copied::Read { n, rest, then } => (n, rest, then),
            };
            moved(n - rest.len());
            if !rest.is_empty() {
                // Boxed: only a destination that did not take a read at once gets here, and a
                // direction keeps room for its largest wait while idle.
                let write = relay_io::write_all_counted(dst, &rest, &moved, Some(src));
                Box::pin(write).await?;
            }
            drop(rest);
            match then {
                // Nothing may wait between these bytes and the FIN of the caller's half-close.
                Then::Eof => return Ok(()),
                Then::Failed(err) => return Err(on_src(err)),
                Then::Open => {}
            }
            splicing = n == COPY_BUF;
        }
    }
}

/// Splices `src` to `dst` while each splice brings at least a copy buffer's worth and `src`
/// has more; never waits for `src` (the caller does, with nothing boxed). The pipe goes back
/// to the pool whenever it is empty.
async fn burst(
    src: &Stream,
    dst: &Stream,
    moved: &impl Fn(usize),
    spliced: &impl Fn(),
) -> Result<Burst, (End, io::Error)> {
    #[cfg(test)]
    let _live = tests::LiveBurst::new();
    loop {
        let Some(pipe) = PIPES.lease() else {
            return Ok(Burst::Short);
        };
        let filled = src.try_io(tokio::io::Interest::READABLE, || {
            pipe.fill_from(src.fd(), pipe.capacity())
        });
        let filled = match filled {
            Ok(0) => {
                pipe.release();
                return Ok(Burst::Eof);
            }
            Ok(filled) => filled,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                pipe.release();
                return Ok(Burst::Drained);
            }
            Err(err) => {
                pipe.release();
                return Err(on_src(err));
            }
        };
        spliced();
        relay_io::drain(dst, &pipe, filled, moved, src).await?;
        pipe.release();
        if filled < COPY_BUF {
            return Ok(Burst::Short);
        }
    }
}

/// Moves at most `limit` bytes (fewer when fewer are there; 0 at EOF) from `src` to `dst`
/// through a pipe of the pool, telling `moved` about every chunk delivered; `None` when no
/// pipe can be had (nothing was moved).
pub(super) async fn splice_some(
    src: &Stream,
    dst: &Stream,
    limit: usize,
    moved: &impl Fn(usize),
) -> Result<Option<usize>, (End, io::Error)> {
    loop {
        src.read_ready().await.map_err(on_src)?;
        let Some(pipe) = PIPES.lease() else {
            return Ok(None);
        };
        let len = limit.min(pipe.capacity());
        let filled = src.try_io(tokio::io::Interest::READABLE, || {
            pipe.fill_from(src.fd(), len)
        });
        match filled {
            Ok(filled) => {
                relay_io::drain(dst, &pipe, filled, moved, src).await?;
                pipe.release();
                return Ok(Some(filled));
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => pipe.release(),
            Err(err) => {
                pipe.release();
                return Err(on_src(err));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::future::Future;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    thread_local! {
        /// Bursts started and not yet dropped on this thread (a test's runtime is its own).
        static LIVE_BURSTS: Cell<usize> = const { Cell::new(0) };
    }

    /// Counts a burst's state as live until it is dropped.
    pub(super) struct LiveBurst;

    impl LiveBurst {
        pub(super) fn new() -> LiveBurst {
            LIVE_BURSTS.with(|live| live.set(live.get() + 1));
            LiveBurst
        }
    }

    impl Drop for LiveBurst {
        fn drop(&mut self) {
            LIVE_BURSTS.with(|live| live.set(live.get() - 1));
        }
    }

    async fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let near = TcpStream::connect(listener.local_addr().unwrap());
        let (near, far) = tokio::join!(near, listener.accept());
        (near.unwrap(), far.unwrap().0)
    }

    #[tokio::test]
    async fn a_direction_idle_after_a_bulk_transfer_keeps_no_burst_state() {
        let (mut writer, src) = tcp_pair().await;
        let (dst, mut reader) = tcp_pair().await;
        let (src, dst) = (Stream::from(src), Stream::from(dst));
        let delivered = AtomicUsize::new(0);
        let spliced = AtomicBool::new(false);
        let pump = pump(
            &src,
            &dst,
            |n| {
                delivered.fetch_add(n, Ordering::Relaxed);
            },
            || spliced.store(true, Ordering::Relaxed),
            Head::None,
        );
        tokio::pin!(pump);
        // Bulk, in chunks of two copy buffers, each read back before the next is sent.
        let chunk = vec![7u8; 2 * COPY_BUF];
        let mut back = vec![0u8; chunk.len()];
        for _ in 0..8 {
            let echoed = async {
                writer.write_all(&chunk).await.unwrap();
                reader.read_exact(&mut back).await.unwrap();
            };
            tokio::select! {
                ended = &mut pump => panic!("the pump ended: {ended:?}"),
                () = echoed => {}
            }
            assert_eq!(back, chunk);
        }
        assert!(
            spliced.load(Ordering::Relaxed),
            "the bulk went through a pipe"
        );
        // Idle now: the pump waits for its source.
        let polled = std::future::poll_fn(|cx| std::task::Poll::Ready(pump.as_mut().poll(cx)));
        assert!(polled.await.is_pending());
        assert_eq!(delivered.load(Ordering::Relaxed), 8 * chunk.len());
        assert_eq!(
            LIVE_BURSTS.with(Cell::get),
            0,
            "a burst's state is kept while idle"
        );
    }
}
