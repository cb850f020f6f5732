//! Receiving client datagrams on the listening socket in batches: one wake-up of the session
//! loop takes up to [`BATCH`] datagrams. On a wildcard listener (`0.0.0.0`, `[::]`) each
//! datagram comes with the address it was sent to ([`Arrival`]), which its replies leave from.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;

use super::MAX_DATAGRAM;
use crate::sys::pktinfo::{self, Arrival};

/// Datagrams taken per wake-up.
pub(super) const BATCH: usize = 32;

/// The listening socket's receiver and its buffers (untouched pages cost no memory: only what
/// datagrams fill becomes resident).
#[derive(Debug)]
pub(super) struct Receiver {
    socket: Arc<UdpSocket>,
    buf: Vec<u8>,
    got: Vec<(SocketAddr, usize, Option<Arrival>)>,
    /// Whether the kernel says where each datagram arrived (a wildcard listener).
    arrivals: bool,
}

impl Receiver {
    /// The receiver of `socket`; on a wildcard address the kernel is asked to say where each
    /// datagram arrives (without it, where it cannot, replies leave as the route chooses).
    pub(super) fn new(socket: Arc<UdpSocket>) -> Receiver {
        let arrivals = match socket.local_addr() {
            Ok(local) if local.ip().is_unspecified() => {
                let enabled = pktinfo::enable(&*socket, local.is_ipv6());
                if let Err(err) = &enabled {
                    let why = crate::error::describe_io(err);
                    tracing::warn!("udp {local}: replies leave as the route chooses: {why}");
                }
                enabled.is_ok()
            }
            _ => false,
        };
        Receiver {
            socket,
            buf: vec![0; BATCH * MAX_DATAGRAM],
            got: Vec::with_capacity(BATCH),
            arrivals,
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
            match recv_one(&self.socket, self.arrivals, slot) {
                Ok((len, from, arrival)) => self.got.push((from, len, arrival)),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if self.got.is_empty() => return Err(err),
                Err(_) => break,
            }
        }
        Ok(self.got.len())
    }

    /// Datagram `i` of the last batch: its source, payload, and where it arrived (on a
    /// wildcard listener).
    pub(super) fn datagram(&self, i: usize) -> (SocketAddr, &[u8], Option<Arrival>) {
        let (from, len, arrival) = self.got[i];
        let start = i * MAX_DATAGRAM;
        (from, &self.buf[start..start + len], arrival)
    }
}

/// Takes one datagram from `socket` without waiting, with where it arrived when `arrivals`.
fn recv_one(
    socket: &UdpSocket,
    arrivals: bool,
    slot: &mut [u8],
) -> io::Result<(usize, SocketAddr, Option<Arrival>)> {
    if !arrivals {
        return socket
            .try_recv_from(slot)
            .map(|(len, from)| (len, from, None));
    }
    socket.try_io(tokio::io::Interest::READABLE, || {
        pktinfo::recv_from(socket, slot)
    })
}
