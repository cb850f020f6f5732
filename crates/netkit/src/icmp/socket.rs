//! ICMP sockets: a raw socket when the process may open one (root or CAP_NET_RAW), else the
//! unprivileged datagram ICMP socket (`SOCK_DGRAM` + `IPPROTO_ICMP`/`IPPROTO_ICMPV6`, allowed
//! when the group is inside `net.ipv4.ping_group_range`; the kernel then owns the echo
//! identifier and the checksum). Where neither is allowed, [`Error::IcmpDenied`] says what to
//! change. The socket is non-blocking, registered with tokio, has a large receive buffer, and
//! reports the TTL or hop limit and the kernel's receive time of every message. A datagram
//! socket also reads its error queue (`IP_RECVERR`), where the kernel puts the ICMP errors
//! about its requests that a raw socket receives as packets. The
//! [`SocketOptions`] are ping's socket flags: TTL, TOS / traffic class, path MTU discovery,
//! the interface or source address to send from, broadcast.

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, MaybeUninitSlice, MsgHdrMut, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::{Interest, Ready};

use super::control::{Control, QueuedError};
use super::packet::Version;
use crate::error::{Error, ParseError};

/// Receive buffer asked for; the kernel caps it at `net.core.rmem_max`.
pub const RECV_BUFFER: usize = 4 << 20;

/// Path MTU discovery (`ping -M`), as `IP_MTU_DISCOVER` / `IPV6_MTU_DISCOVER` set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pmtu {
    /// `do`: never fragment; a request too big for the path is refused locally.
    Do,
    /// `dont`: never set DF; fragment as needed.
    Dont,
    /// `want`: discover the path MTU, fragment locally when a request is too big for it.
    Want,
}

/// How the sockets are set up (ping's flags); the default is the system's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SocketOptions {
    /// TTL (IPv4) or hop limit (IPv6) of outgoing requests.
    pub ttl: Option<u8>,
    /// IPv4 type of service byte, IPv6 traffic class (`-Q`).
    pub tos: Option<u8>,
    /// Path MTU discovery (`-M`).
    pub pmtu: Option<Pmtu>,
    /// Send through this interface only (`SO_BINDTODEVICE`, `-I IFACE`).
    pub device: Option<String>,
    /// Send from this address (`-I ADDR`); applies to the socket of its family.
    pub source: Option<IpAddr>,
    /// May send to broadcast addresses (`SO_BROADCAST`, `-b`; IPv4 only).
    pub broadcast: bool,
}

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
    /// Read from the error queue: the error, `from` being where the request went and the
    /// data the request's ICMP message as far as it was quoted.
    pub queued_error: Option<QueuedError>,
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
    /// the receive buffer, hop-limit reporting and `options`. Needs a tokio runtime.
    pub fn open(version: Version, options: &SocketOptions) -> Result<IcmpSocket, Error> {
        let (socket, kind) = open_socket(version)?;
        configure(&socket, version, kind, options)
            .map_err(|e| Error::io(format!("configure {} socket", name(version)), e))?;
        bind(&socket, version, options)?;
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

    /// Receives one message into `buf`, waiting until one arrives; on a datagram socket
    /// also an error from the error queue.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        let interest = match self.kind {
            Kind::Raw => Interest::READABLE,
            Kind::Datagram => Interest::READABLE | Interest::ERROR,
        };
        loop {
            let mut guard = self.fd.ready(interest).await?;
            if guard.ready().is_error() {
                match recv_with_control(guard.get_inner(), buf, true) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        guard.clear_ready_matching(Ready::ERROR);
                    }
                    result => return result,
                }
            }
            if !guard.ready().is_readable() {
                continue;
            }
            match guard.try_io(|fd| recv_with_control(fd.get_ref(), buf, false)) {
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

/// Binds `socket` to `-I`'s interface and to its source address of this family.
fn bind(socket: &Socket, version: Version, options: &SocketOptions) -> Result<(), Error> {
    if let Some(device) = &options.device {
        socket
            .bind_device(Some(device.as_bytes()))
            .map_err(|e| match e.raw_os_error() {
                Some(nix::libc::ENODEV) => Error::NoSuchInterface(device.clone()),
                _ => Error::io(format!("bind to interface {device}"), e),
            })?;
    }
    let Some(source) = options.source.filter(|s| Version::of(s) == version) else {
        return Ok(());
    };
    socket
        .bind(&SockAddr::from(SocketAddr::new(source, 0)))
        .map_err(|e| match e.raw_os_error() {
            Some(nix::libc::EADDRNOTAVAIL) => Error::from(ParseError::new(
                source.to_string(),
                "not an address of this host",
            )),
            _ => Error::io(format!("bind to {source}"), e),
        })
}

fn configure(
    socket: &Socket,
    version: Version,
    kind: Kind,
    options: &SocketOptions,
) -> io::Result<()> {
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
        Version::V4 => configure_v4(socket, kind, options),
        Version::V6 => configure_v6(socket, kind, options),
    }
}

fn configure_v4(socket: &Socket, kind: Kind, options: &SocketOptions) -> io::Result<()> {
    use nix::libc::{IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO, IP_PMTUDISC_DONT};
    if let Some(ttl) = options.ttl {
        socket.set_ttl(u32::from(ttl))?;
    }
    if kind == Kind::Datagram {
        set_int_option(socket, IPPROTO_IP, nix::libc::IP_RECVTTL, 1)?;
        set_int_option(socket, IPPROTO_IP, nix::libc::IP_RECVERR, 1)?;
    }
    if let Some(tos) = options.tos {
        socket.set_tos(u32::from(tos))?;
    }
    if let Some(pmtu) = options.pmtu {
        let value = match pmtu {
            Pmtu::Do => IP_PMTUDISC_DO,
            Pmtu::Dont => IP_PMTUDISC_DONT,
            Pmtu::Want => nix::libc::IP_PMTUDISC_WANT,
        };
        set_int_option(socket, IPPROTO_IP, IP_MTU_DISCOVER, value)?;
    }
    if options.broadcast {
        socket.set_broadcast(true)?;
    }
    Ok(())
}

fn configure_v6(socket: &Socket, kind: Kind, options: &SocketOptions) -> io::Result<()> {
    use nix::libc::{IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO, IPV6_PMTUDISC_DONT};
    if let Some(ttl) = options.ttl {
        socket.set_unicast_hops_v6(u32::from(ttl))?;
    }
    set_int_option(socket, IPPROTO_IPV6, nix::libc::IPV6_RECVHOPLIMIT, 1)?;
    if kind == Kind::Datagram {
        set_int_option(socket, IPPROTO_IPV6, nix::libc::IPV6_RECVERR, 1)?;
    }
    if let Some(tclass) = options.tos {
        socket.set_tclass_v6(u32::from(tclass))?;
    }
    if let Some(pmtu) = options.pmtu {
        let value = match pmtu {
            Pmtu::Do => IPV6_PMTUDISC_DO,
            Pmtu::Dont => IPV6_PMTUDISC_DONT,
            Pmtu::Want => nix::libc::IPV6_PMTUDISC_WANT,
        };
        set_int_option(socket, IPPROTO_IPV6, IPV6_MTU_DISCOVER, value)?;
    }
    Ok(())
}

/// `getsockopt` for an integer option that neither socket2 nor nix wraps.
pub(crate) fn get_int_option(socket: &Socket, level: i32, option: i32) -> io::Result<i32> {
    use std::os::fd::AsRawFd;
    let mut value: i32 = 0;
    let mut len = std::mem::size_of::<i32>() as nix::libc::socklen_t;
    // SAFETY: the fd is open for the lifetime of `socket`; the pointers describe `value`, a
    // live c_int, and `len`, its size, which the kernel may lower.
    let rc = unsafe {
        nix::libc::getsockopt(
            socket.as_raw_fd(),
            level,
            option,
            std::ptr::addr_of_mut!(value).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `setsockopt` for an integer option that neither socket2 nor nix wraps.
pub(crate) fn set_int_option(
    socket: &Socket,
    level: i32,
    option: i32,
    value: i32,
) -> io::Result<()> {
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

/// One message, from the error queue when `queued`.
fn recv_with_control(socket: &Socket, buf: &mut [u8], queued: bool) -> io::Result<Received> {
    let mut control = [0u8; 256];
    let flags = if queued { nix::libc::MSG_ERRQUEUE } else { 0 };
    // Room for either family: the kernel writes a sockaddr_in or a sockaddr_in6.
    let mut from = SockAddr::from(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)));
    let (len, control_len) = {
        let mut bufs = [MaybeUninitSlice::new(as_uninit(buf))];
        let mut msg = MsgHdrMut::new()
            .with_addr(&mut from)
            .with_buffers(&mut bufs)
            .with_control(as_uninit(&mut control));
        let len = socket.recvmsg(&mut msg, flags)?;
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
        queued_error: control.queued_error.filter(|_| queued),
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
        let options = SocketOptions {
            ttl: Some(9),
            ..SocketOptions::default()
        };
        match IcmpSocket::open(Version::V4, &options) {
            Ok(socket) => assert_eq!(socket.version(), Version::V4),
            Err(Error::IcmpDenied(what)) => assert_eq!(what, "ICMP"),
            Err(other) => panic!("unexpected: {other}"),
        }
    }
}
