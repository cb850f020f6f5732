//! Receiving client datagrams on the listening socket in batches: one wake-up of the session
//! loop takes up to [`BATCH`] datagrams.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;

use super::MAX_DATAGRAM;

/// Datagrams taken per wake-up.
pub(super) const BATCH: usize = 32;

/// The listening socket's receiver and its buffers (untouched pages cost no memory: only what
/// datagrams fill becomes resident).
#[derive(Debug)]
pub(super) struct Receiver {
    socket: Arc<UdpSocket>,
    buf: Vec<u8>,
    got: Vec<(SocketAddr, usize)>,
}

impl Receiver {
    pub(super) fn new(socket: Arc<UdpSocket>) -> Receiver {
        Receiver {
            socket,
            buf: vec![0; BATCH * MAX_DATAGRAM],
            got: Vec::with_capacity(BATCH),
        }
    }

    /// Waits for datagrams and takes up to [`BATCH`] of them; how many.
    pub(super) async fn recv(&mut self) -> io::Result<usize> {
        loop {
            self.socket.readable().await?;
            let count = self.take()?;
            if count > 0 {
                return Ok(count);
            }
        }
    }

    /// Takes up to [`BATCH`] datagrams without waiting; how many (0: none queued).
    pub(super) fn take(&mut self) -> io::Result<usize> {
        self.got.clear();
        for slot in self.buf.chunks_mut(MAX_DATAGRAM) {
            match self.socket.try_recv_from(slot) {
                Ok((len, from)) => self.got.push((from, len)),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if self.got.is_empty() => return Err(err),
                Err(_) => break,
            }
        }
        Ok(self.got.len())
    }

    /// Datagram `i` of the last batch: its source and payload.
    pub(super) fn datagram(&self, i: usize) -> (SocketAddr, &[u8]) {
        let (from, len) = self.got[i];
        let start = i * MAX_DATAGRAM;
        (from, &self.buf[start..start + len])
    }
}
