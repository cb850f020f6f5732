//! The I/O helpers every relay path shares, on `&Stream` (both directions of a connection run
//! at once on one stream, without split halves or locks): a read that clears readiness after a
//! short read, a full write, and the two halves of a `splice(2)` through a [`Pipe`] (source
//! into the pipe, pipe into the destination), each waiting for readiness.

use std::io;

use tokio::io::Interest;

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
}

/// Reads what is there, waiting for readiness. A read that does not fill `buf` drained the
/// socket, so its readiness is cleared at once (as tokio's own `poll_read` does): the next
/// read waits for new data instead of costing a system call that says "nothing yet".
pub(super) async fn read(src: &Stream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        src.read_ready().await?;
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
            Err(err) if err.kind() == io::ErrorKind::WouldBlock && short > 0 => return Ok(short),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

/// Writes all of `buf`, waiting for readiness.
pub(super) async fn write_all(dst: &Stream, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        dst.write_ready().await?;
        match dst.try_write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Splices what the socket has (up to `len`) into the empty `pipe`; 0 at end of file.
///
/// The pipe must be empty: a non-blocking splice into a full pipe reports `EAGAIN` just like
/// an empty socket, and clearing the socket's readiness on that would stall the direction.
pub(super) async fn fill(src: &Stream, pipe: &Pipe, len: usize) -> io::Result<usize> {
    loop {
        src.read_ready().await?;
        match src.try_io(Interest::READABLE, || pipe.fill_from(src.fd(), len)) {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

/// Splices `len` bytes from `pipe` into the socket.
pub(super) async fn drain(dst: &Stream, pipe: &Pipe, mut len: usize) -> io::Result<()> {
    while len > 0 {
        dst.write_ready().await?;
        match dst.try_io(Interest::WRITABLE, || pipe.drain_to(dst.fd(), len)) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => len -= n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
