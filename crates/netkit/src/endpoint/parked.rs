//! A listening socket taken off its runtime ([`Parked`]), and duplicates of it to register
//! elsewhere ([`Detached`]): how a socket bound once is accepted on from several threads, each
//! registering a descriptor of its own with its own runtime, while the socket itself wakes
//! none.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener as StdUnixListener;

use socket2::SockRef;
use tokio::net::{TcpListener, UnixListener};

use super::io::Listener;
use super::unix_path::Guard;

/// A duplicate descriptor of a listening socket, registered with no runtime yet: made on one
/// thread ([`Listener::duplicate`]) and registered with the runtime that is to accept on it
/// ([`Detached::register`]). The socket is the same one: options set through either apply to
/// both.
#[derive(Debug)]
pub enum Detached {
    /// TCP.
    Tcp(std::net::TcpListener),
    /// Unix (the socket file stays the original listener's to remove).
    Unix(StdUnixListener),
}

impl Detached {
    /// Registers the socket with the runtime of the calling thread, or the one entered
    /// (`Handle::enter`); panics outside any.
    pub fn register(self) -> io::Result<Listener> {
        Ok(match self {
            Detached::Tcp(listener) => Listener::from(TcpListener::from_std(listener)?),
            Detached::Unix(listener) => Listener::Unix(UnixListener::from_std(listener)?, None),
        })
    }
}

/// A bound, listening socket registered with no runtime: it stays open (a path-bound Unix
/// socket's file too, removed when this is dropped) and its readiness wakes no thread.
#[derive(Debug)]
pub struct Parked {
    _socket: Detached,
    _guard: Option<Guard>,
}

impl Listener {
    /// Takes the socket off its runtime ([`Parked`]): keeps a duplicate of its descriptor and
    /// closes this one (deregistered). Should no duplicate be made, the listener comes back
    /// as it was.
    pub fn park(self) -> Result<Parked, (Listener, io::Error)> {
        let socket = match self.duplicate() {
            Ok(socket) => socket,
            Err(err) => return Err((self, err)),
        };
        let guard = match self {
            Listener::Tcp(_) => None,
            Listener::Unix(_, guard) => guard,
        };
        Ok(Parked {
            _socket: socket,
            _guard: guard,
        })
    }

    /// A duplicate of the socket's descriptor (`dup(2)`, close-on-exec), still non-blocking.
    pub fn duplicate(&self) -> io::Result<Detached> {
        Ok(match self {
            Listener::Tcp(listener) => Detached::Tcp(SockRef::from(listener).try_clone()?.into()),
            Listener::Unix(listener, _) => {
                Detached::Unix(SockRef::from(listener).try_clone()?.into())
            }
        })
    }
}

/// The socket's descriptor.
impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Listener::Tcp(listener) => listener.as_raw_fd(),
            Listener::Unix(listener, _) => listener.as_raw_fd(),
        }
    }
}
