//! The full connect a SYN scan makes to a port it found open, when a banner is wanted: the
//! SYN never completed a handshake, so the service has not spoken yet. It is the library's
//! one TCP connect ([`crate::scan::probe::attempt`]), guarded as the connect scan's probes
//! are for ports on this host.

use std::net::SocketAddr;
use std::time::Duration;

use socket2::Socket;

use crate::scan::guard::Guard;
use crate::scan::probe::{self, Outcome};

/// Connects to `dst` (in its zone) within `wait`; the connected socket, or `None` when the
/// port no longer accepts.
pub async fn connect(dst: SocketAddr, guard: Option<Guard>, wait: Duration) -> Option<Socket> {
    let expires = tokio::time::Instant::now() + wait;
    match probe::attempt(dst, guard.as_ref(), expires).await {
        Ok(Outcome::Open { socket, .. }) => Some(socket.into_socket()),
        _ => None,
    }
}
