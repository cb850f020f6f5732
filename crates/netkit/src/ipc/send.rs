//! The client half of `netkit send`: write the input, half-close, copy the reply out until the
//! peer's end of file. Reading and writing run at the same time, so a peer that answers while
//! it reads (`exec:cat`, an echo server) never deadlocks on full buffers.

use std::cell::Cell;
use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes moved per system call.
const CHUNK: usize = 256 * 1024;

/// What one exchange moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Exchange {
    /// Bytes of input written to the peer.
    pub sent: u64,
    /// Bytes of reply copied to the output.
    pub received: u64,
}

/// Sends `input` on `stream`, shuts down its write side, and copies the reply to `output` until
/// the peer's end of file.
///
/// The exchange is over when the reply ends: input not yet sent by then is dropped (the peer
/// has said all it will say). A peer that stops reading early (`EPIPE`, `ECONNRESET` while
/// sending, `ECONNRESET` after its reply) is not an error; any other error is.
pub async fn exchange<S, R, W>(stream: &mut S, mut input: R, mut output: W) -> io::Result<Exchange>
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let sent = Cell::new(0u64);
    let sending = async {
        copy(&mut input, &mut writer, &sent).await?;
        writer.shutdown().await
    };
    let receiving = async {
        let received = copy_reply(&mut reader, &mut output).await?;
        output.flush().await?;
        Ok::<u64, io::Error>(received)
    };
    tokio::pin!(sending, receiving);
    let mut sending_done = false;
    loop {
        tokio::select! {
            result = &mut sending, if !sending_done => {
                peer_gone_is_fine(result)?;
                sending_done = true;
            }
            result = &mut receiving => {
                return Ok(Exchange { sent: sent.get(), received: result? });
            }
        }
    }
}

/// Copies the input to the peer in large chunks (system calls are the cost, not copies).
/// `sent` counts the bytes written so far.
async fn copy<R, W>(reader: &mut R, writer: &mut W, sent: &Cell<u64>) -> io::Result<()>
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
        writer.write_all(&buf[..n]).await?;
        sent.set(sent.get() + n as u64);
    }
}

/// Copies the reply to `output` until the peer's end of file. Each chunk is handed to the
/// output as it arrives (tokio's stdout writes it out without waiting for a flush).
///
/// A reset ends the reply like an end of file: a peer that closes without reading all our input
/// (`exec:head -c 4`) makes the kernel report `ECONNRESET` once its reply has been read.
async fn copy_reply<R, W>(reader: &mut R, writer: &mut W) -> io::Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf).await {
            Err(err) if err.kind() == io::ErrorKind::ConnectionReset => {
                tracing::debug!("peer reset the connection after its reply: {err}");
                0
            }
            other => other?,
        };
        if n == 0 {
            return Ok(total);
        }
        writer.write_all(&buf[..n]).await?;
        total += n as u64;
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
        let done = exchange(&mut ours, &b"abc"[..], &mut reply).await.unwrap();
        peer.await.unwrap();
        assert_eq!(reply, b"cba");
        assert_eq!(
            done,
            Exchange {
                sent: 3,
                received: 3
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
        let done = exchange(&mut ours, &input[..], &mut reply).await.unwrap();
        peer.await.unwrap();
        assert_eq!(reply, [1, 1, 1, 1]);
        assert_eq!(done.received, 4);
    }
}
