//! Zero-copy relay for bulk transfers: `splice(2)` from the source socket into a pipe, then
//! from the pipe into the destination socket, so payload bytes never enter user space. Small
//! exchanges (requests and replies) are cheaper copied: no pipe, and a short read proves the
//! socket drained, which saves a system call per message.

use std::io;

use super::io::{self as relay_io, End};
use crate::endpoint::Stream;
use crate::sys::splice::Pipe;

/// The pipe size asked for with `F_SETPIPE_SZ`: 128 KiB to 1 MiB measured alike on loopback;
/// 256 KiB keeps well inside the per-user pipe budget of unprivileged users.
pub(super) const PIPE_SIZE: usize = 256 * 1024;

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
                let filled = relay_io::fill(src, pipe, pipe.capacity())
                    .await
                    .map_err(on_src)?;
                if filled == 0 {
                    return Ok(());
                }
                relay_io::drain(dst, pipe, filled).await.map_err(on_dst)?;
                moved(filled);
                bulk = filled >= buf.len();
                continue;
            }
        }
        let n = relay_io::read(src, buf).await.map_err(on_src)?;
        if n == 0 {
            return Ok(());
        }
        relay_io::write_all(dst, &buf[..n]).await.map_err(on_dst)?;
        moved(n);
        if n == buf.len() {
            bulk = open_pipe(&mut pipe, &spliced);
        }
    }
}

/// Makes sure there is a pipe; false when none can be had (then copying goes on).
fn open_pipe(pipe: &mut Option<Pipe>, spliced: &impl Fn()) -> bool {
    if pipe.is_none() {
        match Pipe::new(PIPE_SIZE) {
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
    let filled = relay_io::fill(src, pipe, limit.min(pipe.capacity()))
        .await
        .map_err(|e| (End::Src, e))?;
    relay_io::drain(dst, pipe, filled)
        .await
        .map_err(|e| (End::Dst, e))?;
    Ok(filled)
}
