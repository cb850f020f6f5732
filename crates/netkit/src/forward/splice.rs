//! Zero-copy relay on Linux for bulk transfers: `splice(2)` from the source socket into a
//! pipe, then from the pipe into the destination socket, so payload bytes never enter user
//! space. Small exchanges (requests and replies) are cheaper copied: no pipe, and a short read
//! proves the socket drained, which saves a system call per message.
//!
//! The pipe is only filled when it is empty: a non-blocking splice into a full pipe would
//! report `EAGAIN` just like an empty socket, and clearing the socket's readiness on that
//! would stall the direction.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
use tokio::io::Interest;

use super::relay::End;
use crate::endpoint::Stream;

/// The pipe size asked for with `F_SETPIPE_SZ`: 128 KiB to 1 MiB measured alike on loopback;
/// 256 KiB keeps well inside the per-user pipe budget of unprivileged users.
const PIPE_SIZE: i32 = 256 * 1024;

/// A pipe that carries one direction of a connection.
#[derive(Debug)]
pub(super) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    /// A non-blocking pipe, enlarged for throughput when the system allows.
    pub(super) fn new() -> io::Result<Pipe> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
        let _ = fcntl(write.as_raw_fd(), FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
        let capacity = fcntl(write.as_raw_fd(), FcntlArg::F_GETPIPE_SZ)?;
        Ok(Pipe {
            read,
            write,
            capacity: usize::try_from(capacity).unwrap_or(65536),
        })
    }
}

fn flags() -> SpliceFFlags {
    SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK
}

/// Moves `src` to `dst` until `src` reaches EOF: small reads are copied through `buf`; once a
/// read fills `buf` (a bulk transfer), bytes go through a pipe with `splice(2)` until a splice
/// brings less than a buffer's worth again. `moved` is told about every chunk delivered, and
/// `spliced` the first time the pipe is used. An error says which end failed.
pub(super) async fn pump(
    src: &Stream,
    dst: &Stream,
    buf: &mut [u8],
    moved: impl Fn(usize),
    spliced: impl Fn(),
) -> Result<(), (End, io::Error)> {
    let mut pipe: Option<Pipe> = None;
    let mut bulk = false;
    let on_src = |e| (End::Src, e);
    let on_dst = |e| (End::Dst, e);
    loop {
        if bulk {
            if let Some(pipe) = pipe.as_ref() {
                let filled = fill(src, pipe, pipe.capacity).await.map_err(on_src)?;
                if filled == 0 {
                    return Ok(());
                }
                drain(dst, pipe, filled).await.map_err(on_dst)?;
                moved(filled);
                bulk = filled >= buf.len();
                continue;
            }
        }
        let n = super::relay::read(src, buf).await.map_err(on_src)?;
        if n == 0 {
            return Ok(());
        }
        super::relay::write_all(dst, &buf[..n])
            .await
            .map_err(on_dst)?;
        moved(n);
        if n == buf.len() {
            bulk = open_pipe(&mut pipe, &spliced);
        }
    }
}

/// Makes sure there is a pipe; false when none can be had (then copying goes on).
fn open_pipe(pipe: &mut Option<Pipe>, spliced: &impl Fn()) -> bool {
    if pipe.is_none() {
        match Pipe::new() {
            Ok(new) => {
                tracing::debug!("bulk transfer: relaying with splice");
                spliced();
                *pipe = Some(new);
            }
            Err(err) => tracing::debug!("no pipe for splice ({err}); copying"),
        }
    }
    pipe.is_some()
}

/// Moves at most `limit` bytes (fewer when fewer are there; 0 at EOF) from `src` to `dst`
/// through the empty `pipe`.
pub(super) async fn splice_some(
    src: &Stream,
    dst: &Stream,
    pipe: &Pipe,
    limit: usize,
) -> Result<usize, (End, io::Error)> {
    let filled = fill(src, pipe, limit.min(pipe.capacity))
        .await
        .map_err(|e| (End::Src, e))?;
    drain(dst, pipe, filled).await.map_err(|e| (End::Dst, e))?;
    Ok(filled)
}

/// Splices what the socket has (up to `len`) into the empty pipe.
async fn fill(src: &Stream, pipe: &Pipe, len: usize) -> io::Result<usize> {
    loop {
        src.read_ready().await?;
        let spliced = src.try_io(Interest::READABLE, || {
            splice(src.fd(), None, pipe.write.as_fd(), None, len, flags()).map_err(io::Error::from)
        });
        match spliced {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

/// Splices `len` bytes from the pipe into the socket.
async fn drain(dst: &Stream, pipe: &Pipe, mut len: usize) -> io::Result<()> {
    while len > 0 {
        dst.write_ready().await?;
        let spliced = dst.try_io(Interest::WRITABLE, || {
            splice(pipe.read.as_fd(), None, dst.fd(), None, len, flags()).map_err(io::Error::from)
        });
        match spliced {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => len -= n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
