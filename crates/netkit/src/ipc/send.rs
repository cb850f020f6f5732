//! The client half of `netkit send`: write the input, half-close, copy the reply out until the
//! peer's end of file. Reading and writing run at the same time, so a peer that answers while
//! it reads (`exec:cat`, an echo server) never deadlocks on full buffers.
//!
//! The optional idle timeout never counts the time spent reading the input (a slow `tar c`
//! upstream of `send` is fine) nor the time the output takes to take the reply (`send | less`
//! left on screen): it runs from the end of the input and restarts with every byte of reply,
//! and it bounds each write the peer does not take.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Bytes moved per system call.
const CHUNK: usize = 256 * 1024;

/// What one exchange moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Exchange {
    /// Bytes of input written to the peer.
    pub sent: u64,
    /// Bytes of reply copied to the output.
    pub received: u64,
    /// The idle timeout struck: the reply had not ended (or the peer took no input).
    pub timed_out: bool,
    /// The timeout struck while input was still to be sent: the peer took none for that long.
    pub input_stalled: bool,
    /// The peer reset the connection (`ECONNRESET`, met by the read or, before the reply
    /// ended, by a write) rather than ending its reply with an end of file: it closed with
    /// input unread, or aborted.
    pub reset: bool,
}

/// When the exchange last moved, and whether it now waits on the output: the idle timeout
/// counts the peer's silence, not the time a slow reader of the reply takes.
struct Clock {
    /// The latest byte moved either way (or the end of the input).
    last: Cell<Instant>,
    /// A reply chunk is being written to the output.
    held: Cell<bool>,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            last: Cell::new(Instant::now()),
            held: Cell::new(false),
        }
    }

    fn moved(&self) {
        self.last.set(Instant::now());
    }

    /// Runs `writing` (a write to the output) with the clock held.
    async fn held_while<T>(&self, writing: impl Future<Output = T>) -> T {
        self.held.set(true);
        let result = writing.await;
        self.held.set(false);
        self.moved();
        result
    }

    /// Completes once `idle` has passed since the latest move, the output not holding the
    /// clock meanwhile; never without `idle`.
    async fn quiet_for(&self, idle: Option<Duration>) {
        let Some(idle) = idle else {
            return std::future::pending().await;
        };
        loop {
            let deadline = self.last.get() + idle;
            if self.held.get() {
                tokio::time::sleep(idle).await;
            } else if Instant::now() >= deadline {
                return;
            } else {
                tokio::time::sleep_until(deadline).await;
            }
        }
    }
}

/// Sends `input` on `stream`, shuts down its write side, and copies the reply to `output` until
/// the peer's end of file, or until `idle` passes without a byte of reply after the input
/// ended (or without the peer taking any input): then the result says `timed_out`.
///
/// When the reply ends first (the peer shut down its write side only), the rest of the input
/// is still sent, to its end, as `nc -U` does, unless `hung_up` completes (the peer closed
/// for good: [`hung_up`](super::hung_up); `std::future::pending()` never does). A peer that
/// stops reading early (`EPIPE`, `ECONNRESET` while sending, `ECONNRESET` after its reply) is
/// not an error; any other error is.
pub async fn exchange<S, R, W, H>(
    stream: &mut S,
    mut input: R,
    mut output: W,
    idle: Option<Duration>,
    hung_up: H,
) -> io::Result<Exchange>
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    H: Future<Output = ()>,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (sent, received) = (Cell::new(0u64), Cell::new(0u64));
    let clock = Clock::new();
    let reset = Cell::new(false);
    let sending = async {
        copy(&mut input, &mut writer, &sent, idle, &clock).await?;
        writer.shutdown().await
    };
    let receiving = async {
        if copy_reply(&mut reader, &mut output, &received, &clock).await? == End::Reset {
            reset.set(true);
        }
        clock.held_while(output.flush()).await
    };
    tokio::pin!(sending, receiving);
    let mut sending_done = false;
    let done = |timed_out, input_stalled| Exchange {
        sent: sent.get(),
        received: received.get(),
        timed_out,
        input_stalled,
        reset: reset.get(),
    };
    loop {
        tokio::select! {
            result = &mut sending, if !sending_done => {
                match result {
                    Err(err) if err.kind() == io::ErrorKind::TimedOut => {
                        return Ok(done(true, true))
                    }
                    // The reply has not ended: a write that drew the peer's reset took the
                    // error the read would have seen (the kernel reports it once), and the
                    // read now meets a plain end of file. The reply may still be cut short.
                    Err(err) if err.kind() == io::ErrorKind::ConnectionReset => {
                        reset.set(true);
                        peer_gone_is_fine(Err(err))?
                    }
                    other => peer_gone_is_fine(other)?,
                }
                sending_done = true;
                clock.moved();
            }
            result = &mut receiving => {
                result?;
                if sending_done {
                    return Ok(done(false, false));
                }
                // The peer half-closed first (`nc -lU PATH > file`): its reply is over, not
                // its reading. Send the rest of the input, as `nc -U` does; a peer that is
                // gone fails the writes (EPIPE, ECONNRESET), one that stops reading times out.
                // One that closed for good (`hung_up`) reads no more: stop there.
                return tokio::select! {
                    result = &mut sending => match result {
                        Err(err) if err.kind() == io::ErrorKind::TimedOut => Ok(done(true, true)),
                        other => peer_gone_is_fine(other).map(|()| done(false, false)),
                    },
                    () = hung_up => Ok(done(false, false)),
                };
            }
            () = clock.quiet_for(idle), if sending_done && idle.is_some() => {
                return Ok(done(true, false));
            }
        }
    }
}

/// Copies the input to the peer in large chunks (system calls are the cost, not copies).
/// `sent` counts the bytes written so far; a write the peer takes nothing of for `idle` (while
/// no reply moves either, and the output does not hold the clock) fails with `TimedOut`.
async fn copy<R, W>(
    reader: &mut R,
    writer: &mut W,
    sent: &Cell<u64>,
    idle: Option<Duration>,
    clock: &Clock,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            clock.moved();
            let wrote = tokio::select! {
                wrote = writer.write(rest) => wrote?,
                () = clock.quiet_for(idle) => return Err(io::ErrorKind::TimedOut.into()),
            };
            if wrote == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            rest = &rest[wrote..];
            sent.set(sent.get() + wrote as u64);
        }
    }
}

/// How a reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The peer's end of file.
    Eof,
    /// The peer's reset.
    Reset,
}

/// Copies the reply to `output` until the peer's end of file. Each chunk is handed to the
/// output as it arrives (tokio's stdout writes it out without waiting for a flush), the
/// `clock` held while the output takes it; `received` counts the bytes.
///
/// A reset ends the reply too (said in the result): a peer that closes without reading all our
/// input (`exec:head -c 4`) makes the kernel report `ECONNRESET` once its reply has been read.
async fn copy_reply<R, W>(
    reader: &mut R,
    writer: &mut W,
    received: &Cell<u64>,
    clock: &Clock,
) -> io::Result<End>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match reader.read(&mut buf).await {
            Err(err) if err.kind() == io::ErrorKind::ConnectionReset => {
                tracing::debug!("peer reset the connection: {err}");
                return Ok(End::Reset);
            }
            other => other?,
        };
        if n == 0 {
            return Ok(End::Eof);
        }
        clock.moved();
        clock.held_while(writer.write_all(&buf[..n])).await?;
        received.set(received.get() + n as u64);
    }
}

/// A peer that closed before taking all the input: log it and keep reading its reply.
fn peer_gone_is_fine(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ) =>
        {
            tracing::debug!("peer stopped reading: {err}");
            Ok(())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sends_half_closes_and_collects_the_reply() {
        let (mut ours, mut theirs) = tokio::net::UnixStream::pair().unwrap();
        let peer = tokio::spawn(async move {
            let mut got = Vec::new();
            theirs.read_to_end(&mut got).await.unwrap();
            got.reverse();
            theirs.write_all(&got).await.unwrap();
        });
        let mut reply = Vec::new();
        let done = exchange(
            &mut ours,
            &b"abc"[..],
            &mut reply,
            None,
            std::future::pending(),
        )
        .await
        .unwrap();
        peer.await.unwrap();
        assert_eq!(reply, b"cba");
        assert_eq!(
            done,
            Exchange {
                sent: 3,
                received: 3,
                timed_out: false,
                input_stalled: false,
                reset: false,
            }
        );
    }

    #[tokio::test]
    async fn a_peer_that_closes_early_still_gives_its_reply() {
        let (mut ours, mut theirs) = tokio::net::UnixStream::pair().unwrap();
        let peer = tokio::spawn(async move {
            let mut head = [0u8; 4];
            theirs.read_exact(&mut head).await.unwrap();
            theirs.write_all(&head).await.unwrap();
        });
        let input = vec![1u8; 8 << 20];
        let mut reply = Vec::new();
        let done = exchange(
            &mut ours,
            &input[..],
            &mut reply,
            None,
            std::future::pending(),
        )
        .await
        .unwrap();
        peer.await.unwrap();
        assert_eq!(reply, [1, 1, 1, 1]);
        assert_eq!(done.received, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn the_idle_timeout_starts_when_the_input_ends_and_restarts_with_each_reply_byte() {
        let (mut ours, mut theirs) = tokio::net::UnixStream::pair().unwrap();
        let peer = tokio::spawn(async move {
            let mut got = Vec::new();
            theirs.read_to_end(&mut got).await.unwrap();
            for byte in got {
                tokio::time::sleep(Duration::from_millis(900)).await;
                theirs.write_all(&[byte]).await.unwrap();
            }
            std::future::pending::<()>().await;
        });
        // Input arrives over 5 s (longer than the timeout): that time does not count.
        let (mut feed, input) = tokio::io::duplex(64);
        tokio::spawn(async move {
            for byte in b"abc" {
                tokio::time::sleep(Duration::from_secs(2)).await;
                feed.write_all(&[*byte]).await.unwrap();
            }
        });
        let mut reply = Vec::new();
        let idle = Some(Duration::from_secs(1));
        let done = exchange(&mut ours, input, &mut reply, idle, std::future::pending())
            .await
            .unwrap();
        assert_eq!(reply, b"abc", "each reply byte came 0.9 s after the last");
        assert_eq!(
            done,
            Exchange {
                sent: 3,
                received: 3,
                timed_out: true,
                input_stalled: false,
                reset: false,
            }
        );
        peer.abort();
    }
}
