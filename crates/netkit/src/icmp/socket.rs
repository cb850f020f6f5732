//! ICMP sockets: a raw socket when the process may open one (root or CAP_NET_RAW), else the
//! unprivileged datagram ICMP socket (`SOCK_DGRAM` + `IPPROTO_ICMP`/`IPPROTO_ICMPV6`, allowed
//! when the group is inside `net.ipv4.ping_group_range`; the kernel then owns the echo
//! identifier and the checksum). Where neither is allowed, [`Error::IcmpDenied`] says what to
//! change. The socket is non-blocking, registered with tokio, has a large receive buffer, and
//! reports the TTL or hop limit and the kernel's receive time of every message.

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, MaybeUninitSlice, MsgHdrMut, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::control::Control;
use super::packet::Version;
use crate::error::Error;

/// Receive buffer asked for; the kernel caps it at `net.core.rmem_max`.
pub const RECV_BUFFER: usize = 4 << 20;

/// Which kind of socket was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `SOCK_RAW`: we choose the identifier and see every ICMP message of the host (IPv4
    /// messages arrive with their IP header).
    Raw,
    /// `SOCK_DGRAM`: the kernel sets the identifier and delivers only our own replies.
    Datagram,
}

/// One message read from the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Bytes written into the buffer.
    pub len: usize,
    /// Who sent it.
    pub from: IpAddr,
    /// TTL or hop limit of the datagram, when the kernel reported it.
    pub hop_limit: Option<u8>,
    /// When the kernel received it (`SO_TIMESTAMPNS`, since the Unix epoch).
    pub kernel_time: Option<Duration>,
}

/// A non-blocking ICMP socket of one address family, registered with the tokio reactor.
#[derive(Debug)]
pub struct IcmpSocket {
    fd: AsyncFd<Socket>,
    version: Version,
    kind: Kind,
}

impl IcmpSocket {
    /// Opens a raw socket, or the datagram socket when raw ones are not permitted, and sets
    /// the receive buffer, the outgoing TTL/hop limit and hop-limit reporting. Needs a tokio
    /// runtime.
    pub fn open(version: Version, ttl: Option<u8>) -> Result<IcmpSocket, Error> {
        let (socket, kind) = open_socket(version)?;
        configure(&socket, version, kind, ttl)
            .map_err(|e| Error::io(format!("configure {} socket", name(version)), e))?;
        let interest = Interest::READABLE | Interest::WRITABLE;
        // SAFETY: the Socket owns its descriptor, which stays open and the same until the
        // AsyncFd (its only owner) is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(socket, interest) }
            .map_err(|e| Error::io(format!("register {} socket", name(version)), e.into()))?;
        Ok(IcmpSocket { fd, version, kind })
    }

    /// The kind of socket that was opened.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The ICMP version of the socket.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Sends one ICMP message to `addr`, waiting while the send buffer is full.
    pub async fn send_to(&self, message: &[u8], addr: IpAddr) -> io::Result<()> {
        let to = SockAddr::from(SocketAddr::new(addr, 0));
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| fd.get_ref().send_to(message, &to)) {
                Ok(result) => return result.map(drop),
                Err(_would_block) => continue,
            }
        }
    }

    /// Receives one message into `buf`, waiting until one arrives.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| recv_with_control(fd.get_ref(), buf)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}

fn name(version: Version) -> &'static str {
    match version {
        Version::V4 => "ICMP",
        Version::V6 => "ICMPv6",
    }
}

fn open_socket(version: Version) -> Result<(Socket, Kind), Error> {
    let (domain, protocol) = match version {
        Version::V4 => (Domain::IPV4, Protocol::ICMPV4),
        Version::V6 => (Domain::IPV6, Protocol::ICMPV6),
    };
    let denied = |e: &io::Error| matches!(e.raw_os_error(), Some(code) if is_denial(code));
    match Socket::new(domain, Type::RAW, Some(protocol)) {
        Ok(socket) => return Ok((socket, Kind::Raw)),
        Err(e) if denied(&e) => {}
        Err(e) => return Err(Error::io(format!("open a raw {} socket", name(version)), e)),
    }
    match Socket::new(domain, Type::DGRAM, Some(protocol)) {
        Ok(socket) => Ok((socket, Kind::Datagram)),
        Err(e) if denied(&e) => Err(Error::IcmpDenied(name(version))),
        Err(e) => Err(Error::io(format!("open a {} socket", name(version)), e)),
    }
}

fn is_denial(code: i32) -> bool {
    code == nix::libc::EPERM || code == nix::libc::EACCES
}

fn configure(socket: &Socket, version: Version, kind: Kind, ttl: Option<u8>) -> io::Result<()> {
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    // Kernel receive times take the process's wake-up latency out of the round trip.
    set_int_option(socket, nix::libc::SOL_SOCKET, nix::libc::SO_TIMESTAMPNS, 1)?;
    // Best effort: past net.core.rmem_max only with CAP_NET_ADMIN (SO_RCVBUFFORCE); a smaller
    // buffer only costs replies under very high load.
    let size = i32::try_from(RECV_BUFFER).unwrap_or(i32::MAX);
    if set_int_option(
        socket,
        nix::libc::SOL_SOCKET,
        nix::libc::SO_RCVBUFFORCE,
        size,
    )
    .is_err()
    {
        let _ = socket.set_recv_buffer_size(RECV_BUFFER);
    }
    match version {
        Version::V4 => {
            if let Some(ttl) = ttl {
                socket.set_ttl(u32::from(ttl))?;
            }
            if kind == Kind::Datagram {
                set_int_option(socket, nix::libc::IPPROTO_IP, nix::libc::IP_RECVTTL, 1)?;
            }
        }
        Version::V6 => {
            if let Some(ttl) = ttl {
                socket.set_unicast_hops_v6(u32::from(ttl))?;
            }
            let (level, option) = (nix::libc::IPPROTO_IPV6, nix::libc::IPV6_RECVHOPLIMIT);
            set_int_option(socket, level, option, 1)?;
        }
    }
    Ok(())
}

/// `setsockopt` for an integer option that neither socket2 nor nix wraps.
fn set_int_option(socket: &Socket, level: i32, option: i32, value: i32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = std::mem::size_of::<i32>() as nix::libc::socklen_t;
    // SAFETY: the fd is open for the lifetime of `socket`, and the pointer and length
    // describe `value`, a live c_int.
    let rc = unsafe {
        nix::libc::setsockopt(
            socket.as_raw_fd(),
            level,
            option,
            std::ptr::addr_of!(value).cast(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn recv_with_control(socket: &Socket, buf: &mut [u8]) -> io::Result<Received> {
    let mut control = [0u8; 128];
    // Room for either family: the kernel writes a sockaddr_in or a sockaddr_in6.
    let mut from = SockAddr::from(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)));
    let (len, control_len) = {
        let mut bufs = [MaybeUninitSlice::new(as_uninit(buf))];
        let mut msg = MsgHdrMut::new()
            .with_addr(&mut from)
            .with_buffers(&mut bufs)
            .with_control(as_uninit(&mut control));
        let len = socket.recvmsg(&mut msg, 0)?;
        (len, msg.control_len())
    };
    let from = from
        .as_socket()
        .map(|sa| sa.ip())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "sender is not an IP address"))?;
    let control = Control::parse(&control[..control_len.min(control.len())]);
    Ok(Received {
        len: len.min(buf.len()),
        from,
        hop_limit: control.hop_limit,
        kernel_time: control.kernel_time,
    })
}

/// Views initialised bytes as possibly-uninitialised ones, for socket2's receive calls.
fn as_uninit(buf: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: MaybeUninit<u8> has the layout of u8, and the kernel only ever writes
    // initialised bytes into the buffer, so it stays initialised.
    unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_a_socket_or_says_why_not() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        match IcmpSocket::open(Version::V4, Some(9)) {
            Ok(socket) => assert_eq!(socket.version(), Version::V4),
            Err(Error::IcmpDenied(what)) => assert_eq!(what, "ICMP"),
            Err(other) => panic!("unexpected: {other}"),
        }
    }
}
