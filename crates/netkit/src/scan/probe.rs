//! One TCP connect attempt: a non-blocking `connect(2)` whose answer is read straight away when
//! the kernel already has it (loopback answers inside the system call), and otherwise awaited
//! on the reactor until the probe expires. ICMP errors are read from the socket's error queue
//! ([`super::errqueue`]) and classified ([`super::answer`]). The attempt says what the network
//! answered; it never turns a local shortage (file descriptors, buffers, source ports) into a
//! port state.
//!
//! It is the one TCP connect probe of the library: `sweep --method tcp:PORT` runs [`attempt`]
//! too, and reads a refusal's [`Failure`] (errno and queued ICMP error) as alive or
//! unreachable where the scanner reads its [`Answer`] as a port state.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};
use tokio::net::TcpStream;

use super::answer::{self, Answer, IcmpReport};
use super::errqueue;
use super::guard::{Guard, Reservation};

/// What one attempt found.
#[derive(Debug)]
pub enum Outcome {
    /// The handshake completed with a real peer; the socket is returned for a banner read.
    Open {
        /// Time from `connect` to the completed handshake.
        rtt: Duration,
        /// The connected socket; it closes with a reset when dropped.
        socket: Connected,
    },
    /// The network refused or could not route the probe.
    Refused {
        /// What the refusal means for the port.
        answer: Answer,
        /// Time from `connect` to the refusal.
        rtt: Duration,
        /// What the kernel reported.
        failure: Failure,
    },
    /// No answer before the probe expired.
    Silent,
    /// The socket connected to another socket of this scan (TCP self-connect or simultaneous
    /// open on this host): no listener took part, so this is no answer about the port.
    Phantom,
    /// This machine ran short of a resource (fds, buffers, ports): try again later.
    Busy(io::Error),
}

/// What a refused connect reported, before it is read as a port state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// The connect's error.
    pub errno: Errno,
    /// The ICMP error queued on the socket with it, if one came.
    pub icmp: Option<IcmpReport>,
}

/// A connected probe socket that closes with RST (SO_LINGER 0), leaving no TIME_WAIT behind.
#[derive(Debug)]
pub struct Connected {
    socket: Socket,
    _reservation: Option<Reservation>,
}

impl Connected {
    /// The socket, for reading a banner.
    pub fn into_socket(self) -> Socket {
        self.socket
    }
}

/// Attempts one connect to `dst`, waiting for its answer until `expires`. `guard` is given
/// for targets on this host, where the kernel could pair the probe with itself or with
/// another probe (see [`super::guard`]).
pub async fn attempt(
    dst: SocketAddr,
    guard: Option<&Guard>,
    expires: tokio::time::Instant,
) -> io::Result<Outcome> {
    match start(dst, guard) {
        Started::Done(outcome) => outcome,
        Started::Pending(pending) => pending.wait(expires).await,
    }
}

/// A connect just made: answered already, or still waiting for the network.
#[derive(Debug)]
pub enum Started {
    /// The kernel had the answer at once (always, on loopback).
    Done(io::Result<Outcome>),
    /// The SYN is out; the answer is to be awaited.
    Pending(Pending),
}

/// A connect in progress.
#[derive(Debug)]
pub struct Pending {
    socket: Socket,
    dst: SocketAddr,
    reservation: Option<Reservation>,
    started: Instant,
}

/// Opens a socket and connects it to `dst`, without waiting: what the kernel knows at once.
pub fn start(dst: SocketAddr, guard: Option<&Guard>) -> Started {
    let socket = match open_socket(dst) {
        Ok(socket) => socket,
        Err(err) => return Started::Done(shortage(err)),
    };
    match guard.map(|g| g.reserve(&socket, dst)).transpose() {
        Ok(reservation) => connect(socket, dst, reservation),
        Err(err) => Started::Done(shortage(err)),
    }
}

/// Connects a fresh socket (bound and registered already when `reservation` is given).
fn connect(socket: Socket, dst: SocketAddr, reservation: Option<Reservation>) -> Started {
    let started = Instant::now();
    let state = match socket.connect(&SockAddr::from(dst)) {
        Ok(()) => Ok(()),
        Err(err) if err.raw_os_error() == Some(Errno::EINPROGRESS as i32) => {
            match poll_now(&SockRef::from(&socket)) {
                Some(state) => state,
                None => {
                    return Started::Pending(Pending {
                        socket,
                        dst,
                        reservation,
                        started,
                    })
                }
            }
        }
        Err(err) => Err(err),
    };
    Started::Done(finish(socket, dst, state, started, reservation))
}

impl Pending {
    /// Waits for the answer until `expires`.
    pub async fn wait(self, expires: tokio::time::Instant) -> io::Result<Outcome> {
        let Pending {
            socket,
            dst,
            reservation,
            started,
        } = self;
        match wait(socket, expires).await? {
            Waited::Done(socket, state) => finish(socket, dst, state, started, reservation),
            Waited::TimedOut => Ok(Outcome::Silent),
        }
    }
}

/// A non-blocking TCP socket for `dst` that queues ICMP errors.
fn open_socket(dst: SocketAddr) -> io::Result<Socket> {
    let kind = Type::STREAM.nonblocking().cloexec();
    let socket = Socket::new(Domain::for_address(dst), kind, Some(Protocol::TCP))?;
    errqueue::enable(&socket, dst.is_ipv6())?;
    Ok(socket)
}

/// The state of a connect in progress, if the kernel already knows it.
fn poll_now(socket: &SockRef<'_>) -> Option<io::Result<()>> {
    if let Some(err) = socket.take_error().ok().flatten() {
        return Some(Err(err));
    }
    match socket.peer_addr() {
        Ok(_) => Some(Ok(())),
        Err(err) if err.raw_os_error() == Some(Errno::ENOTCONN as i32) => None,
        Err(err) => Some(Err(err)),
    }
}

enum Waited {
    Done(Socket, io::Result<()>),
    TimedOut,
}

/// Waits on the reactor until the connect completes or the probe expires.
async fn wait(socket: Socket, expires: tokio::time::Instant) -> io::Result<Waited> {
    let stream = TcpStream::from_std(std::net::TcpStream::from(socket))?;
    loop {
        match tokio::time::timeout_at(expires, stream.writable()).await {
            Ok(ready) => ready?,
            Err(_) => return Ok(Waited::TimedOut),
        };
        if let Some(state) = poll_now(&SockRef::from(&stream)) {
            let socket = Socket::from(stream.into_std()?);
            return Ok(Waited::Done(socket, state));
        }
    }
}

/// Turns a finished connect into an outcome; a connection is checked for being a phantom.
fn finish(
    socket: Socket,
    dst: SocketAddr,
    state: io::Result<()>,
    started: Instant,
    reservation: Option<Reservation>,
) -> io::Result<Outcome> {
    let rtt = started.elapsed();
    if let Err(err) = state {
        return refused(&socket, dst, err, rtt);
    }
    // Close with RST: no TIME_WAIT, so full-range scans never run out of source ports.
    let _ = socket.set_linger(Some(Duration::ZERO));
    if let Some(reservation) = &reservation {
        let peer = match socket.peer_addr() {
            Ok(peer) => peer,
            // Reset as soon as it was made: the other end may have been another probe of
            // this scan, which closed. It tells nothing about the port, which is tried again.
            Err(err) if err.raw_os_error() == Some(Errno::ENOTCONN as i32) => {
                return Ok(Outcome::Phantom);
            }
            Err(err) => return Err(err),
        };
        let local = socket.local_addr()?;
        if let (Some(local), Some(peer)) = (local.as_socket(), peer.as_socket()) {
            if reservation.is_phantom(local, peer) {
                return Ok(Outcome::Phantom);
            }
        }
    }
    let socket = Connected {
        socket,
        _reservation: reservation,
    };
    Ok(Outcome::Open { rtt, socket })
}

/// What a failed connect says: the ICMP error queued on the socket if one came, else the
/// errno; a shortage; or the error itself when it says nothing about the port and waiting
/// cannot help (e.g. no IPv6 on this machine).
fn refused(socket: &Socket, dst: SocketAddr, err: io::Error, rtt: Duration) -> io::Result<Outcome> {
    let Some(errno) = err.raw_os_error().map(Errno::from_raw) else {
        return Err(err);
    };
    if errno == Errno::ETIMEDOUT {
        return Ok(Outcome::Silent);
    }
    let icmp = errqueue::read(socket);
    let from_icmp = icmp.map(|icmp| icmp.classify(dst.ip()));
    let failure = Failure { errno, icmp };
    match from_icmp.or_else(|| answer::from_errno(errno)) {
        Some(answer) => Ok(Outcome::Refused {
            answer,
            rtt,
            failure,
        }),
        None => shortage(err),
    }
}

/// A shortage of this machine's resources ([`crate::sys::shortage`]), or else the error
/// itself.
fn shortage(err: io::Error) -> io::Result<Outcome> {
    match crate::sys::shortage(&err) {
        Some(_) => Ok(Outcome::Busy(err)),
        None => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soon() -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_secs(5)
    }

    async fn finished(started: Started) -> io::Result<Outcome> {
        match started {
            Started::Done(outcome) => outcome,
            Started::Pending(pending) => pending.wait(soon()).await,
        }
    }

    /// The bug behind phantom open ports: a socket whose source is its own destination
    /// connects to itself by simultaneous open, although nothing listens there.
    #[tokio::test]
    async fn tcp_self_connect_is_no_open_port() {
        let guard = Guard::new();
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let socket = open_socket(any).unwrap();
        let reservation = guard.reserve(&socket, any).unwrap();
        let own = socket.local_addr().unwrap().as_socket().unwrap();
        let outcome = finished(connect(socket, own, Some(reservation))).await;
        assert!(matches!(outcome, Ok(Outcome::Phantom)), "{outcome:?}");
    }

    #[tokio::test]
    async fn without_the_guard_the_kernel_does_connect_a_socket_to_itself() {
        let socket = open_socket("127.0.0.1:0".parse().unwrap()).unwrap();
        socket
            .bind(&SockAddr::from(
                "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
            ))
            .unwrap();
        let own = socket.local_addr().unwrap().as_socket().unwrap();
        let outcome = finished(connect(socket, own, None)).await;
        assert!(matches!(outcome, Ok(Outcome::Open { .. })), "{outcome:?}");
    }

    #[tokio::test]
    async fn a_reset_is_closed_whatever_the_error_queue() {
        let (_refusing, dst) = crate::testing::refused_addr();
        let outcome = attempt(dst, None, soon()).await;
        assert!(
            matches!(
                outcome,
                Ok(Outcome::Refused {
                    answer: Answer::Closed,
                    ..
                })
            ),
            "{outcome:?}"
        );
    }

    #[test]
    fn shortages_are_never_port_states() {
        for errno in [
            Errno::EMFILE,
            Errno::ENFILE,
            Errno::ENOBUFS,
            Errno::EADDRNOTAVAIL,
        ] {
            let outcome = shortage(io::Error::from_raw_os_error(errno as i32));
            assert!(
                matches!(outcome, Ok(Outcome::Busy(_))),
                "{errno}: {outcome:?}"
            );
        }
    }

    #[test]
    fn answers_of_the_network() {
        let dst: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let socket = open_socket(dst).unwrap();
        let state = |errno: Errno| {
            let err = io::Error::from_raw_os_error(errno as i32);
            refused(&socket, dst, err, Duration::ZERO)
        };
        assert!(matches!(
            state(Errno::ECONNREFUSED),
            Ok(Outcome::Refused {
                answer: Answer::Closed,
                ..
            })
        ));
        assert!(matches!(
            state(Errno::EHOSTUNREACH),
            Ok(Outcome::Refused {
                answer: Answer::Unreachable(_),
                ..
            })
        ));
        assert!(matches!(state(Errno::ETIMEDOUT), Ok(Outcome::Silent)));
        assert!(matches!(state(Errno::EMFILE), Ok(Outcome::Busy(_))));
        assert!(state(Errno::EAFNOSUPPORT).is_err());
    }
}
