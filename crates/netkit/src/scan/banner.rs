//! Service banners: the first bytes an open service sends on its own within a short wait, made
//! safe for a terminal by [`crate::text::sanitize`].

use std::io;
use std::time::Duration;

use socket2::Socket;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::text::sanitize;

/// The most bytes read from a banner.
pub const MAX_BANNER: usize = 256;

/// Reads what the peer sends within `wait`, up to [`MAX_BANNER`] bytes or end of stream, and
/// returns it sanitised; `None` when the peer sent nothing.
pub async fn read(socket: Socket, wait: Duration) -> Option<String> {
    let bytes = collect(socket, wait).await.unwrap_or_default();
    let text = sanitize(&bytes);
    (!text.is_empty()).then_some(text)
}

async fn collect(socket: Socket, wait: Duration) -> io::Result<Vec<u8>> {
    let stream = TcpStream::from_std(std::net::TcpStream::from(socket))?;
    let deadline = Instant::now() + wait;
    let mut buf = vec![0u8; MAX_BANNER];
    let mut len = 0;
    while len < MAX_BANNER {
        if tokio::time::timeout_at(deadline, stream.readable())
            .await
            .is_err()
        {
            break;
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
