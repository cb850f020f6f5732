//! Service banners: the first bytes an open service sends on its own within a short wait, made
//! safe for a terminal by [`crate::text::sanitize`]. Where the way loses packets the wait grows
//! by [`LOSS_ALLOWANCE`] once it ran out with nothing read.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use socket2::Socket;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::text::sanitize;

/// The most bytes read from a banner.
pub const MAX_BANNER: usize = 256;

/// How much longer a banner is waited for, once the wait ran out with nothing read, where
/// the way shows loss: a peer that lost the handshake's last ACK repeats its SYN-ACK after
/// TCP's initial timeout (1 s) and again 2 s later, and speaks only once it has the ACK; the
/// first segment of a banner, lost, goes again as late (the peer has no round trip measured).
/// At 30% loss each way a third of the banners came after the wait (nmap's NULL probe waits 6 s).
pub const LOSS_ALLOWANCE: Duration = Duration::from_secs(3);

/// Reads what the peer sends within `wait`, up to [`MAX_BANNER`] bytes or end of stream, and
/// returns it sanitised; `None` when the peer sent nothing. When nothing came within `wait`
/// and the way shows loss — `lossy` (the scan saw answers only to retransmissions), or this
/// connection's own handshake needed repair (its SYN or the SYN-ACK sent again) — it waits
/// [`LOSS_ALLOWANCE`] more.
pub async fn read(socket: Socket, wait: Duration, lossy: &AtomicBool) -> Option<String> {
    let bytes = collect(socket, wait, lossy).await.unwrap_or_default();
    let text = sanitize(&bytes);
    (!text.is_empty()).then_some(text)
}

async fn collect(socket: Socket, wait: Duration, lossy: &AtomicBool) -> io::Result<Vec<u8>> {
    let stream = TcpStream::from_std(std::net::TcpStream::from(socket))?;
    let mut deadline = Instant::now() + wait;
    let mut extended = false;
    let mut buf = vec![0u8; MAX_BANNER];
    let mut len = 0;
    while len < MAX_BANNER {
        if tokio::time::timeout_at(deadline, stream.readable())
            .await
            .is_err()
        {
            if len > 0 || extended || !(lossy.load(Relaxed) || repaired(&stream)) {
                break;
            }
            extended = true;
            deadline += LOSS_ALLOWANCE;
            continue;
        }
        match stream.try_read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => break,
        }
    }
    buf.truncate(len);
    Ok(buf)
}

/// Whether the connection's handshake was repaired: its SYN went again, or the peer sent a
/// segment that carried nothing (before a banner, a repeated SYN-ACK: our ACK was lost, and
/// the peer's service has not been handed the connection yet).
fn repaired(stream: &TcpStream) -> bool {
    crate::sys::sockopt::tcp_info(stream)
        .is_ok_and(|info| info.tcpi_total_retrans > 0 || info.tcpi_segs_in > 1)
}
