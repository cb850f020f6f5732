//! ICMP sockets: a raw socket when the process may open one (root or CAP_NET_RAW), else the
//! unprivileged datagram ICMP socket (`SOCK_DGRAM` + `IPPROTO_ICMP`/`IPPROTO_ICMPV6`, allowed
//! when the group is inside `net.ipv4.ping_group_range`; the kernel then owns the echo
//! identifier and the checksum). Where neither is allowed, [`Error::IcmpDenied`] says what to
//! change. The socket is non-blocking, registered with tokio, has a large receive buffer, and
//! reports the TTL or hop limit and the kernel's receive time of every message. A datagram
//! socket also reads its error queue (`IP_RECVERR`), where the kernel puts the ICMP errors
//! about its requests that a raw socket receives as packets, and clears the pending error each
//! of them also leaves before it sends (the kernel would refuse the next request with it). The
//! [`SocketOptions`] are ping's socket flags: TTL, TOS / traffic class, path MTU discovery,
//! the interface or source address to send from, broadcast, the IPv6 flow label, and whether
//! round trips end at the kernel's receive time or when the reply is read (`-U`).

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use nix::libc;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::{Interest, Ready};

use super::packet::Version;
use crate::error::{Error, ParseError};
use crate::sys::cmsg::{self, QueuedError};
use crate::sys::sockopt::{self, IpMtuDiscover, Ipv6MtuDiscover};

/// Receive buffer asked for; the kernel caps it at `net.core.rmem_max`.
pub const RECV_BUFFER: usize = 4 << 20;
/// Send buffer asked for, the same way. Requests to on-link addresses wait in the kernel until
/// their neighbour answers (or for 3 s, when none does) and count against it meanwhile: a sweep
/// of a LAN that re-probes silent addresses would stall on the default (208 KiB).
pub const SEND_BUFFER: usize = 4 << 20;

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
    /// TTL (IPv4) or hop limit (IPv6) of outgoing requests, unicast and multicast.
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
    /// The flow label of IPv6 requests (`-F`), leased for the socket as iputils leases it;
    /// IPv4 sockets ignore it, as iputils does.
    pub flow_label: Option<FlowLabel>,
    /// A round trip ends when the reply is read, not at the kernel's receive time (`-U`,
    /// iputils' user-to-user latency: no `SO_TIMESTAMPNS`).
    pub user_latency: bool,
}

/// An IPv6 flow label to lease (`ping -F`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowLabel {
    /// The label, 20 bits; 0 lets the kernel choose one.
    pub label: u32,
    /// A destination the requests go to: the kernel leases a label for one (any destination
    /// may then be sent to with it).
    pub dst: Ipv6Addr,
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
    /// The flow label leased for IPv6 requests (`-F`), 0 for none.
    flow_label: u32,
}

impl IcmpSocket {
    /// Opens a raw socket, or the datagram socket when raw ones are not permitted, and sets
    /// the receive buffer, hop-limit reporting and `options`. Needs a tokio runtime.
    pub fn open(version: Version, options: &SocketOptions) -> Result<IcmpSocket, Error> {
        let (socket, kind) = open_socket(version)?;
        configure(&socket, version, kind, options)
            .map_err(|e| Error::io(format!("configure {} socket", name(version)), e))?;
        bind(&socket, version, options)?;
        let flow_label = match (version, options.flow_label) {
            (Version::V6, Some(flow)) => lease_flow_label(&socket, flow)?,
            _ => 0,
        };
        let interest = Interest::READABLE | Interest::WRITABLE;
        // SAFETY: the Socket owns its descriptor, which stays open and the same until the
        // AsyncFd (its only owner) is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(socket, interest) }
            .map_err(|e| Error::io(format!("register {} socket", name(version)), e.into()))?;
        Ok(IcmpSocket {
            fd,
            version,
            kind,
            flow_label,
        })
    }

    /// The flow label its IPv6 requests carry (`-F`; the kernel's choice for `-F 0`).
    pub fn flow_label(&self) -> Option<u32> {
        Some(self.flow_label).filter(|label| *label != 0)
    }

    /// The kind of socket that was opened.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The ICMP version of the socket.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Sends one ICMP message to `dst`'s address, in its zone, waiting while the send buffer
    /// is full. A datagram socket keeps an ICMP error about an earlier message as its pending
    /// error too (beside the copy in its error queue, which [`IcmpSocket::recv`] reads), and
    /// the kernel would refuse this send with it, sending nothing: that error is not this
    /// message's, so it is cleared first (and the send is tried once more if one came in
    /// between).
    pub async fn send_to(&self, message: &[u8], mut dst: SocketAddr) -> io::Result<()> {
        dst.set_port(0);
        if let SocketAddr::V6(v6) = &mut dst {
            // `sin6_flowinfo` is in network byte order; std and socket2 copy it as it is.
            v6.set_flowinfo(self.flow_label.to_be());
        }
        let to = SockAddr::from(dst);
        let datagram = self.kind == Kind::Datagram;
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| send_fresh(fd.get_ref(), message, &to, datagram)) {
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

/// Sends `message` to `to`; on a datagram socket without the pending error an ICMP error about
/// an earlier message left (`SO_ERROR`, which reading clears; the error queue keeps its copy).
/// A send refused with an errno that an ICMP error gives is tried once more: the error may
/// have come between the two calls, and the refusal was then not this message's (a real one,
/// no route to the host, refuses the second send too, and neither sent anything).
/// A too-big refusal is not tried again: each one queues a local error, counted once per send.
fn send_fresh(socket: &Socket, message: &[u8], to: &SockAddr, datagram: bool) -> io::Result<usize> {
    if !datagram {
        return socket.send_to(message, to);
    }
    let _pending = socket.take_error();
    match socket.send_to(message, to) {
        Err(e) if is_icmp_errno(&e) && e.raw_os_error() != Some(libc::EMSGSIZE) => {
            socket.send_to(message, to)
        }
        sent => sent,
    }
}

/// Whether `err` is an errno the kernel makes of an ICMP error about a request (its
/// `icmp_err_convert` and `icmpv6_err_convert` tables: unreachable of every kind, time
/// exceeded, parameter problem, too big), which a datagram socket also returns from its next
/// send or receive.
pub(crate) fn is_icmp_errno(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(
            libc::ENETUNREACH
                | libc::EHOSTUNREACH
                | libc::ENOPROTOOPT
                | libc::ECONNREFUSED
                | libc::EMSGSIZE
                | libc::EOPNOTSUPP
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EACCES
                | libc::EPROTO
        )
    )
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
    code == libc::EPERM || code == libc::EACCES
}

/// Binds `socket` to `-I`'s interface and to its source address of this family.
fn bind(socket: &Socket, version: Version, options: &SocketOptions) -> Result<(), Error> {
    if let Some(device) = &options.device {
        socket
            .bind_device(Some(device.as_bytes()))
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENODEV) => Error::NoSuchInterface(device.clone()),
                _ => Error::io(format!("bind to interface {device}"), e),
            })?;
    }
    let Some(source) = options.source.filter(|s| Version::of(s) == version) else {
        return Ok(());
    };
    socket
        .bind(&SockAddr::from(SocketAddr::new(source, 0)))
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EADDRNOTAVAIL) => Error::from(ParseError::new(
                source.to_string(),
                "not an address of this host",
            )),
            _ => Error::io(format!("bind to {source}"), e),
        })
}

/// Leases `flow`'s label for `socket` and has its requests carry it; the label leased.
///
/// A label the kernel refuses with `EPERM` is held by another socket, or was released less than
/// 6 s ago: that label is the input at fault, not a privilege (iputils: `can't set flowlabel:
/// Operation not permitted`, exit 2, as for any label it cannot use).
fn lease_flow_label(socket: &Socket, flow: FlowLabel) -> Result<u32, Error> {
    let label = flow.label;
    let leased =
        sockopt::lease_flow_label(socket, label, flow.dst).map_err(|e| match e.raw_os_error() {
            Some(libc::EPERM) => Error::from(ParseError::new(
                format!("{label:#07x}"),
                "IPv6 flow label held by another socket, or released by one less than 6 s ago \
                 (-F 0 lets the kernel choose a free one)",
            )),
            _ => Error::io(format!("lease IPv6 flow label {label:#07x}"), e),
        })?;
    sockopt::set(socket, sockopt::Ipv6FlowinfoSend, &1)
        .map_err(|e| Error::io("send the IPv6 flow label", e))?;
    Ok(leased)
}

fn configure(
    socket: &Socket,
    version: Version,
    kind: Kind,
    options: &SocketOptions,
) -> io::Result<()> {
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    // Kernel receive times take the process's wake-up latency out of the round trip; `-U`
    // keeps it in, as iputils, which then asks for none.
    if !options.user_latency {
        sockopt::set(socket, sockopt::ReceiveTimestampns, &true)?;
    }
    // Best effort: past net.core.rmem_max only with CAP_NET_ADMIN (SO_RCVBUFFORCE); a smaller
    // buffer only costs replies under very high load. The same for the send buffer.
    if sockopt::set(socket, sockopt::RcvBufForce, &RECV_BUFFER).is_err() {
        let _ = socket.set_recv_buffer_size(RECV_BUFFER);
    }
    if sockopt::set(socket, sockopt::SndBufForce, &SEND_BUFFER).is_err() {
        let _ = socket.set_send_buffer_size(SEND_BUFFER);
    }
    match version {
        Version::V4 => configure_v4(socket, kind, options),
        Version::V6 => configure_v6(socket, kind, options),
    }
}

fn configure_v4(socket: &Socket, kind: Kind, options: &SocketOptions) -> io::Result<()> {
    if let Some(ttl) = options.ttl {
        socket.set_ttl(u32::from(ttl))?;
        // As iputils: the TTL of requests to a multicast group too (the kernel's default is 1).
        socket.set_multicast_ttl_v4(u32::from(ttl))?;
    }
    if kind == Kind::Datagram {
        sockopt::set(socket, sockopt::Ipv4RecvTtl, &true)?;
        sockopt::set(socket, sockopt::Ipv4RecvErr, &true)?;
    }
    if let Some(tos) = options.tos {
        socket.set_tos(u32::from(tos))?;
    }
    if let Some(pmtu) = options.pmtu {
        let value = match pmtu {
            Pmtu::Do => libc::IP_PMTUDISC_DO,
            Pmtu::Dont => libc::IP_PMTUDISC_DONT,
            Pmtu::Want => libc::IP_PMTUDISC_WANT,
        };
        sockopt::set(socket, IpMtuDiscover, &value)?;
    }
    if options.broadcast {
        socket.set_broadcast(true)?;
    }
    Ok(())
}

fn configure_v6(socket: &Socket, kind: Kind, options: &SocketOptions) -> io::Result<()> {
    if let Some(ttl) = options.ttl {
        socket.set_unicast_hops_v6(u32::from(ttl))?;
        // As iputils: the hop limit of requests to a multicast group too (the kernel's default
        // is 1).
        socket.set_multicast_hops_v6(u32::from(ttl))?;
    }
    sockopt::set(socket, sockopt::Ipv6RecvHopLimit, &true)?;
    if kind == Kind::Datagram {
        sockopt::set(socket, sockopt::Ipv6RecvErr, &true)?;
    }
    if let Some(tclass) = options.tos {
        socket.set_tclass_v6(u32::from(tclass))?;
    }
    if let Some(pmtu) = options.pmtu {
        let value = match pmtu {
            Pmtu::Do => libc::IPV6_PMTUDISC_DO,
            Pmtu::Dont => libc::IPV6_PMTUDISC_DONT,
            Pmtu::Want => libc::IPV6_PMTUDISC_WANT,
        };
        sockopt::set(socket, Ipv6MtuDiscover, &value)?;
    }
    Ok(())
}

/// One message, from the error queue when `queued`.
fn recv_with_control(socket: &Socket, buf: &mut [u8], queued: bool) -> io::Result<Received> {
    let message = cmsg::recv(socket, buf, queued)?;
    let from = message
        .from
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "sender is not an IP address"))?;
    let control = message.control;
    Ok(Received {
        len: message.len.min(buf.len()),
        from,
        hop_limit: control.hop_limit,
        kernel_time: control.kernel_time,
        queued_error: control.queued_error.filter(|_| queued),
    })
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
            Err(Error::IcmpDenied(what)) => {
                assert_eq!(what, "ICMP");
                crate::testing::skip("opens_a_socket_or_says_why_not", "no ICMP socket allowed");
            }
            Err(other) => panic!("unexpected: {other}"),
        }
    }
}
