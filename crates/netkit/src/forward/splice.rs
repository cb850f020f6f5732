//! Zero-copy relay for bulk transfers: `splice(2)` from the source socket into a pipe, then
//! from the pipe into the destination socket, so payload bytes never enter user space. Small
//! exchanges (requests and replies) are cheaper copied: no pipe, and a short read proves the
//! socket drained, which saves a system call per message.
//!
//! Pipes come from the process's [`PIPES`] pool: one is taken when bytes are there to splice
//! and given back as soon as everything in it went out, so a connection between two bursts
//! holds none.

use std::io;

use super::io::{self as relay_io, Copied, End, Then, COPY_BUF};
use super::pipe_pool::PIPES;
use crate::endpoint::Stream;

/// How a burst of splicing ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Burst {
    /// The source reached its end of file.
    Eof,
    /// A splice brought less than a copy buffer's worth (or no pipe could be had).
    Short,
}

fn on_src(err: io::Error) -> (End, io::Error) {
    (End::Src, err)
}

fn on_dst(err: io::Error) -> (End, io::Error) {
    (End::Dst, err)
}

/// Moves `src` to `dst` until `src` reaches EOF: small reads are copied through the thread's
/// buffer; once a read fills it (a bulk transfer), bytes go through a pipe with `splice(2)`
/// until a splice brings less than a buffer's worth again. `moved` is told about every chunk
/// delivered, and `spliced` each time a pipe carries one. An error says which end failed.
pub(super) async fn pump(
    src: &Stream,
    dst: &Stream,
    moved: impl Fn(usize),
    spliced: impl Fn(),
) -> Result<(), (End, io::Error)> {
    loop {
        let (n, rest, then) = match relay_io::copy_some(src, dst).await? {
            Copied::Eof => return Ok(()),
            Copied::Read { n, rest, then } => (n, rest, then),
        };
        moved(n - rest.len());
        if !rest.is_empty() {
            let written = relay_io::write_all_counted(dst, &rest, &moved).await;
            written.map_err(on_dst)?;
        }
        drop(rest);
        match then {
            // Nothing may wait between these bytes and the FIN of the caller's half-close.
            Then::Eof => return Ok(()),
            Then::Failed(err) => return Err(on_src(err)),
            Then::Open => {}
        }
        // Boxed, as bursts are rare: between them a direction keeps only the copy step's state.
        if n == COPY_BUF && Box::pin(burst(src, dst, &moved, &spliced)).await? == Burst::Eof {
            return Ok(());
        }
    }
}

/// Splices `src` to `dst` while each splice brings at least a copy buffer's worth. The pipe
/// goes back to the pool whenever it is empty and `src` has nothing.
async fn burst(
    src: &Stream,
    dst: &Stream,
    moved: &impl Fn(usize),
    spliced: &impl Fn(),
) -> Result<Burst, (End, io::Error)> {
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
                src.read_ready().await.map_err(on_src)?;
                continue;
            }
            Err(err) => {
                pipe.release();
                return Err(on_src(err));
            }
        };
        spliced();
        relay_io::drain(dst, &pipe, filled, moved)
            .await
            .map_err(on_dst)?;
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
                relay_io::drain(dst, &pipe, filled, moved)
                    .await
                    .map_err(on_dst)?;
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
