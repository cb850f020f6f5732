//! The I/O helpers every relay path shares, on `&Stream` (both directions of a connection run
//! at once on one stream, without split halves or locks): a read that clears readiness after a
//! short read, a copy step through the worker thread's buffer, a full write, and the two halves
//! of a `splice(2)` through a [`Pipe`] (source into the pipe, pipe into the destination), each
//! waiting for readiness.
//!
//! Reads land in one buffer per worker thread ([`read_with`], [`copy_some`]), used only between
//! two awaits: a connection owns a buffer only while its destination is slower than its source
//! (the bytes it did not take yet), so an idle connection holds none.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::task::Poll;
use std::time::Duration;

use tokio::io::Interest;

use super::acks::{self, Until};
use crate::endpoint::Stream;
use crate::sys::splice::Pipe;

/// Size of the buffer of a copying direction.
pub(super) const COPY_BUF: usize = 16 * 1024;

/// Which end of a transfer failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    /// Reading the source.
    Src,
    /// Writing the destination.
    Dst,
    /// The source, gone abortively while the transfer waited to write to a destination that
    /// took nothing for [`acks::STALL`] ([`behind`]): that destination is not waited for again.
    Behind,
}

thread_local! {
    /// The copy buffer of this thread, allocated on its first use.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's copy buffer ([`COPY_BUF`] bytes). `f` must not await: the buffer
/// is every connection's on this thread.
fn with_scratch<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() != COPY_BUF {
                buf.resize(COPY_BUF, 0);
            }
            f(&mut buf)
        }
        // Only a reentrant use could find it taken; it gets a buffer of its own.
        Err(_) => f(&mut vec![0u8; COPY_BUF]),
    })
}

/// Reads what `src` has now into `buf`, without waiting: `WouldBlock` when nothing is there.
/// A read that does not fill `buf` drained the socket, so its readiness is cleared at once (as
/// tokio's own `poll_read` does): the next read waits for new data instead of costing a system
/// call that says "nothing yet".
fn read_now(src: &Stream, buf: &mut [u8]) -> io::Result<usize> {
    let mut short = 0;
    let result = src.try_io(Interest::READABLE, || {
        let n = nix::unistd::read(src.fd(), buf).map_err(io::Error::from)?;
        if n > 0 && n < buf.len() {
            short = n;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match result {
        Err(err) if err.kind() == io::ErrorKind::WouldBlock && short > 0 => Ok(short),
        other => other,
    }
}

fn would_block(result: &io::Result<usize>) -> bool {
    matches!(result, Err(err) if err.kind() == io::ErrorKind::WouldBlock)
}

/// Waits until `src` has something, reads it into this thread's buffer and hands it to `f`
/// (empty at end of file), which must not await.
pub(super) async fn read_with<R>(src: &Stream, f: impl FnOnce(&[u8]) -> R) -> io::Result<R> {
    let mut f = Some(f);
    loop {
        src.read_ready().await?;
        let done = with_scratch(|buf| {
            let read = read_now(src, buf);
            if would_block(&read) {
                return None;
            }
            let f = f.take()?;
            Some(read.map(|n| f(&buf[..n])))
        });
        if let Some(done) = done {
            return done;
        }
    }
}

/// Reads and throws away what Unix stream `src` has waiting but its last byte, until its
/// peer sends nothing more (or the stream fails). Closing a Unix stream with bytes unread is
/// its reset: the byte kept makes the forwarder's close pass one on.
pub(super) async fn discard_but_one(src: &Stream) -> io::Result<()> {
    loop {
        src.read_ready().await?;
        // Asked inside `try_io`, so bytes that come after the count keep the readiness set.
        let step = with_scratch(|buf| {
            src.try_io(Interest::READABLE, || {
                let waiting = src.unread_here().unwrap_or(0);
                if waiting > 1 {
                    let n = (waiting - 1).min(buf.len());
                    return nix::unistd::read(src.fd(), &mut buf[..n]).map_err(io::Error::from);
                }
                if src.peer_done_sending() {
                    return Ok(0);
                }
                Err(io::ErrorKind::WouldBlock.into())
            })
        });
        match step {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
        }
    }
}

/// What one [`copy_some`] did.
#[derive(Debug)]
pub(super) enum Copied {
    /// The source is at its end of file.
    Eof,
    /// `n` bytes were read; those the destination did not take at once are in `rest`
    /// (empty, and unallocated, when it took them all); `then` is what the source did next,
    /// when that is already known.
    Read { n: usize, rest: Vec<u8>, then: Then },
}

/// What a source did after the bytes of a [`Copied::Read`].
#[derive(Debug)]
pub(super) enum Then {
    /// Not known yet: more may come.
    Open,
    /// Its end of file came right after them; the bytes wait in the destination for the
    /// half-close or close that is to follow at once, and leave in one segment with its FIN.
    Eof,
    /// Reading on failed; the bytes were passed on first, the error is the caller's next.
    Failed(io::Error),
}

/// What a copy step did: bytes copied, or the end that failed.
pub(super) type Step = Result<Copied, (End, io::Error)>;

/// A first copy step made before a relay began (the client's first bytes, taken as soon as
/// its target was connected: [`super::conn`]), for the relay's upward direction to go on from.
/// Kept small: a connection's state keeps room for it for as long as the connection lives.
#[derive(Debug)]
pub(super) enum Head {
    /// No step made: the direction starts with a read of its own.
    None,
    /// `n` bytes read and all taken by the destination, the source still open (the usual
    /// outcome, kept out of a box).
    Passed(usize),
    /// Any other outcome, as it came.
    Step(Box<Step>),
}

impl Head {
    /// The head of a step made.
    pub(super) fn of(step: Step) -> Head {
        match step {
            Ok(Copied::Read {
                n,
                rest,
                then: Then::Open,
            }) if rest.is_empty() => Head::Passed(n),
            step => Head::Step(Box::new(step)),
        }
    }

    /// The step it stands for, `None` when there is none.
    pub(super) fn take(&mut self) -> Option<Step> {
        match std::mem::replace(self, Head::None) {
            Head::None => None,
            Head::Passed(n) => Some(Ok(Copied::Read {
                n,
                rest: Vec::new(),
                then: Then::Open,
            })),
            Head::Step(step) => Some(*step),
        }
    }
}

/// Waits until `src` has something, reads it and writes it to `dst` as far as `dst` takes it
/// now, through this thread's buffer. An error says which end failed.
pub(super) async fn copy_some(src: &Stream, dst: &Stream) -> Step {
    loop {
        src.read_ready().await.map_err(|e| (End::Src, e))?;
        if let Some(done) = copy_now(src, dst) {
            return done;
        }
    }
}

/// [`copy_some`] without the wait: `None` when `src` has nothing now (its readiness is then
/// cleared, so a read that finds nothing costs no system call the next time either).
pub(super) fn copy_now(src: &Stream, dst: &Stream) -> Option<Step> {
    with_scratch(|buf| {
        let read = read_now(src, buf);
        if would_block(&read) {
            return None;
        }
        Some(match read {
            Ok(0) => Ok(Copied::Eof),
            Ok(n) => {
                let (n, then) = read_on(src, buf, n);
                let last = matches!(then, Then::Eof);
                pass_on(dst, &buf[..n], last).map(|rest| Copied::Read { n, rest, then })
            }
            Err(err) => Err((End::Src, err)),
        })
    })
}

/// After a read of `n` bytes into `buf`: when they did not fill it and the peer's FIN has
/// already arrived (`EPOLLRDHUP`, known without a system call), reads on at once, to learn
/// whether the end of file came right after them (the read it costs is the one that would
/// have found the end of file next). Else nothing is read.
fn read_on(src: &Stream, buf: &mut [u8], n: usize) -> (usize, Then) {
    if n == buf.len() || !src.read_closed() {
        return (n, Then::Open);
    }
    match read_now(src, &mut buf[n..]) {
        Ok(0) => (n, Then::Eof),
        Ok(more) => (n + more, Then::Open),
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => (n, Then::Open),
        Err(err) => (n, Then::Failed(err)),
    }
}

/// Writes what `dst` takes of `bytes` now; returns the rest. `last`: the source is at its end,
/// so the bytes may wait for the FIN that follows at once ([`Stream::try_write_more`]).
fn pass_on(dst: &Stream, bytes: &[u8], last: bool) -> Result<Vec<u8>, (End, io::Error)> {
    let written = match last {
        true => dst.try_write_more(bytes),
        false => dst.try_write(bytes),
    };
    let sent = match written {
        Ok(sent) => sent,
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => 0,
        Err(err) => return Err((End::Dst, err)),
    };
    Ok(bytes[sent..].to_vec())
}

/// Writes all of `buf`, waiting for readiness.
pub(super) async fn write_all(dst: &Stream, buf: &[u8]) -> io::Result<()> {
    let written = write_all_counted(dst, buf, &|_| {}, None).await;
    written.map_err(|(_, err)| err)
}

/// Writes all of `buf`, waiting for readiness; `progress` is told about every write (so that
/// a slow destination taking bytes is never taken for an idle one). `src`: where the bytes
/// came from, watched while the write waits ([`writable`]). An error says which end failed.
pub(super) async fn write_all_counted(
    dst: &Stream,
    mut buf: &[u8],
    progress: &impl Fn(usize),
    src: Option<&Stream>,
) -> Result<(), (End, io::Error)> {
    while !buf.is_empty() {
        writable(dst, src).await?;
        match dst.try_write(buf) {
            Ok(0) => return Err((End::Dst, io::ErrorKind::WriteZero.into())),
            Ok(n) => {
                buf = &buf[n..];
                progress(n);
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            Err(err) => return Err((End::Dst, err)),
        }
    }
    Ok(())
}

/// Splices `len` bytes from `pipe` into the socket; `progress` is told about every splice
/// (a pipe holds up to 256 KiB: a slow destination takes seconds to empty it). `src`: where
/// the bytes came from, watched while the splice waits ([`writable`]).
pub(super) async fn drain(
    dst: &Stream,
    pipe: &Pipe,
    mut len: usize,
    progress: &impl Fn(usize),
    src: &Stream,
) -> Result<(), (End, io::Error)> {
    while len > 0 {
        writable(dst, Some(src)).await?;
        match dst.try_io(Interest::WRITABLE, || pipe.drain_to(dst.fd(), len)) {
            Ok(0) => return Err((End::Dst, io::ErrorKind::WriteZero.into())),
            Ok(n) => {
                len -= n;
                progress(n);
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            Err(err) => return Err((End::Dst, err)),
        }
    }
    Ok(())
}

/// Waits until `dst` is writable. A direction that waits to write does not read its source
/// `src`, so an error that comes to it meanwhile would be seen only once `dst` moves, maybe
/// never: that wait also ends once `src` is gone abortively and `dst` has stalled
/// ([`behind`], `End::Behind`). The watch is made (and boxed) only when the write must wait:
/// an idle connection, which waits to read, keeps none.
async fn writable(dst: &Stream, src: Option<&Stream>) -> Result<(), (End, io::Error)> {
    let mut ready = std::pin::pin!(dst.write_ready());
    let mut gone = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(ready) = ready.as_mut().poll(cx) {
            return Poll::Ready(ready.map_err(|err| (End::Dst, err)));
        }
        let Some(src) = src else {
            return Poll::Pending;
        };
        let gone = gone.get_or_insert_with(|| Box::pin(behind(src, dst)));
        gone.as_mut().poll(cx).map(|err| Err((End::Behind, err)))
    })
    .await
}

/// Completes with `src`'s error when `src`, the source of a transfer waiting to write to
/// `dst`, is gone abortively ([`Stream::aborted`]) while `dst` has taken none of the bytes
/// waiting for it for [`acks::STALL`]. A client that reset (or, on a Unix socket, closed with
/// bytes it had not read) while the forwarder waited on the target both ways (to write to
/// it, and to read it) kept the connection for good. Directly, `dst`'s peer would get the
/// reset at once; here it gets it once it has stalled, as a peer that stops reading a side
/// run to its end does ([`super::flow`]'s `read_to_the_end`). Until then the error is left
/// in `src`, which the direction reads after the bytes before it, and passes on after
/// delivering them.
async fn behind(src: &Stream, dst: &Stream) -> io::Error {
    src.aborted().await;
    acks::watch(dst, Until::Stalled, STALL_POLL).await;
    src.take_failure()
}

/// How often, at most, a transfer waiting behind a source gone abortively asks whether its
/// destination stopped reading.
const STALL_POLL: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// What a Unix peer sends is thrown away but its last byte, which stays until the peer
    /// has half-closed; closing then is the Unix stream's reset: the peer reads `ECONNRESET`.
    #[test]
    fn a_unix_stream_is_discarded_but_its_last_byte() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (ours, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
            ours.set_nonblocking(true).unwrap();
            let stream = Stream::Unix(tokio::net::UnixStream::from_std(ours).unwrap());
            let sender = std::thread::spawn(move || {
                theirs.write_all(&[1u8; 300_000]).unwrap();
                theirs.shutdown(std::net::Shutdown::Write).unwrap();
                theirs
            });
            discard_but_one(&stream).await.unwrap();
            let mut theirs = sender.join().unwrap();
            assert_eq!(stream.unread_here(), Some(1));
            drop(stream);
            let end = theirs.read(&mut [0u8; 8]).map_err(|e| e.kind());
            assert_eq!(end, Err(io::ErrorKind::ConnectionReset));
        });
    }
}
