//! Phantom open ports on this host, and how the scan avoids them.
//!
//! A connect to an address of this host can complete without any listener: when the kernel
//! picks the destination port itself as the ephemeral source port, the SYN meets its own
//! socket in SYN_SENT and TCP's simultaneous open connects the socket to itself (a
//! *self-connect*). Two probes can also meet each other: probe A from port P to Q while probe B
//! goes from Q to P. Scanners that trust "connected" then report ports in the ephemeral range as
//! open that nothing listens on.
//!
//! The guard makes such connections recognisable. Every probe to a local target binds its
//! source address *before* it sends the SYN and registers it here, so by the time any probe
//! connects, the probe it may have met is already known. A connection is a phantom when its
//! peer is itself or another registered probe; the first of two crossed probes to notice
//! marks the other one, so both see it whichever checks first.
//!
//! Only destination ports inside the ephemeral range (`ip_local_port_range`, read by
//! [`crate::sys::proc::ephemeral_ports`]) can meet a probe: every probe's source port comes
//! from that range. Ports outside it skip the guard.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use socket2::{SockAddr, Socket};

/// The source addresses of the probes in flight to targets on this host.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    /// How many live reservations hold each source address: a probe's socket closes before
    /// its reservation is released, and another probe may bind the freed port in between,
    /// so one address can be held twice for a moment (a set lost the second probe's
    /// registration when the first one's was released, and its crossed partner then took
    /// their connection for an open port).
    bound: HashMap<SocketAddr, u32>,
    tainted: HashSet<SocketAddr>,
}

/// One probe's registered source address; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    state: Arc<Mutex<State>>,
    local: SocketAddr,
}

impl Guard {
    /// A guard with no probe registered.
    pub fn new() -> Self {
        Guard::default()
    }

    /// Binds `socket` to an ephemeral port of the address it will connect from (the target's
    /// own address, for a local target) and registers it before any SYN is sent.
    pub fn reserve(&self, socket: &Socket, dst: SocketAddr) -> io::Result<Reservation> {
        socket.bind(&SockAddr::from(with_port(dst, 0)))?;
        let local = socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("probe socket has no IP address"))?;
        Ok(self.register(local))
    }

    /// Registers a probe's source address `local` (bound already).
    fn register(&self, local: SocketAddr) -> Reservation {
        *lock(&self.state).bound.entry(local).or_insert(0) += 1;
        Reservation {
            state: Arc::clone(&self.state),
            local,
        }
    }
}

impl Reservation {
    /// Whether a connection from `local` to `peer` joined two sockets of this scan.
    pub fn is_phantom(&self, local: SocketAddr, peer: SocketAddr) -> bool {
        if local == peer {
            return true;
        }
        let mut state = lock(&self.state);
        if state.tainted.remove(&self.local) {
            return true;
        }
        if state.bound.contains_key(&peer) {
            state.tainted.insert(peer);
            return true;
        }
        false
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        let Some(count) = state.bound.get_mut(&self.local) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            state.bound.remove(&self.local);
            state.tainted.remove(&self.local);
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether `dst` (its address, in its zone) is an address of this host (loopback, or bindable
/// here), where probes could meet each other.
pub fn is_local(dst: SocketAddr) -> bool {
    let ip = dst.ip();
    ip.is_loopback() || ip.is_unspecified() || UdpSocket::bind(with_port(dst, 0)).is_ok()
}

/// `addr` with port `port`, its zone kept.
fn with_port(mut addr: SocketAddr, port: u16) -> SocketAddr {
    addr.set_port(port);
    addr
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Type};

    fn socket() -> Socket {
        Socket::new(Domain::IPV4, Type::STREAM, None).unwrap()
    }

    #[test]
    fn crossed_probes_both_see_the_phantom_whoever_checks_first() {
        let guard = Guard::new();
        let dst = "127.0.0.1:9".parse().unwrap();
        let (sa, sb) = (socket(), socket());
        let a = guard.reserve(&sa, dst).unwrap();
        let b = guard.reserve(&sb, dst).unwrap();
        assert!(a.is_phantom(a.local, b.local));
        drop(a);
        assert!(b.is_phantom(b.local, "127.0.0.1:1".parse().unwrap()));
        assert!(lock(&guard.state).tainted.is_empty());
    }

    /// A probe's socket closed, another probe bound the freed port before the first one's
    /// reservation was released: the release took the second probe's registration with it,
    /// and a probe crossing the second one saw a stranger and reported an open port.
    #[test]
    fn a_port_bound_again_before_its_release_stays_registered() {
        let guard = Guard::new();
        let port: SocketAddr = "[::1]:40007".parse().unwrap();
        let first = guard.register(port);
        let second = guard.register(port);
        drop(first);
        let crossing = guard.register("[::1]:40003".parse().unwrap());
        assert!(crossing.is_phantom(crossing.local, port));
        drop((second, crossing));
        let state = lock(&guard.state);
        assert!(state.bound.is_empty() && state.tainted.is_empty());
    }

    #[test]
    fn a_real_peer_is_no_phantom_and_self_is() {
        let guard = Guard::new();
        let sa = socket();
        let a = guard.reserve(&sa, "127.0.0.1:9".parse().unwrap()).unwrap();
        assert!(!a.is_phantom(a.local, "127.0.0.1:9".parse().unwrap()));
        assert!(a.is_phantom(a.local, a.local));
        drop(a);
        assert!(lock(&guard.state).bound.is_empty());
    }

    #[test]
    fn local_addresses() {
        assert!(is_local("127.0.0.1:0".parse().unwrap()));
        assert!(is_local("[::1]:0".parse().unwrap()));
        assert!(!is_local("198.51.100.7:0".parse().unwrap()));
    }
}
