//! The raw sockets of a SYN scan: one raw TCP socket per address family sends the SYNs and
//! receives a copy of every TCP segment that arrives (the kernel still hands each to its own
//! TCP, which answers a SYN-ACK to a port with no socket with the reset that closes the
//! half-open connection), and one raw ICMP socket per family receives the errors. A TCP socket
//! bound to the scan's source port (never listening) keeps the kernel from giving that port to
//! a connection of its own while the scan runs.
//!
//! Why raw sockets rather than `AF_PACKET`: they see loopback and every interface alike with
//! the IP layer already parsed, need no link-layer framing, and the kernel routes and resolves
//! neighbours for the SYNs as for any packet. A classic BPF program ([`crate::sys::bpf`]) on
//! each keeps only what can answer a SYN.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};

use nix::libc;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::packet;
use crate::error::Error;
use crate::sys::bpf;

/// The receive buffer asked for on each raw socket: a loopback scan answers at once.
const RCVBUF: usize = 8 << 20;

/// Source ports per family: a retransmission leaves from the next one, as nmap's do. From the
/// same port it would meet the half-open connection an earlier try left on the target when
/// only the SYN-ACK was lost, and Linux drops a SYN with a new sequence number there: the port
/// would stay silent until the target's own SYN-ACK retransmission a second later. So every
/// try of the default budget (`--max-retries 10`: 11 tries) has a port of its own; with four,
/// tries five to eight met the half-open connections of the first four when their SYN-ACKs
/// were all lost, and were lost too.
pub const SOURCE_PORTS: usize = 16;

/// The raw sockets of one address family, and its reserved source ports.
#[derive(Debug)]
pub struct Family {
    /// The raw TCP socket: sends SYNs, receives every TCP segment.
    pub tcp: Socket,
    /// The raw ICMP (or ICMPv6) socket: receives the errors.
    pub icmp: Socket,
    /// The source ports of this family's SYNs: try `n` leaves from `ports[n % SOURCE_PORTS]`.
    pub ports: [u16; SOURCE_PORTS],
    _reservations: Vec<Socket>,
}

/// The raw sockets of a SYN scan.
#[derive(Debug)]
pub struct RawSockets {
    /// IPv4's.
    pub v4: Family,
    /// IPv6's, when this machine has IPv6.
    pub v6: Option<Family>,
}

impl RawSockets {
    /// Opens the sockets; an error with `EPERM` when not privileged (no `CAP_NET_RAW`).
    pub fn open() -> Result<Self, Error> {
        let v4 = Family::open(false)?;
        let v6 = match Family::open(true) {
            Ok(family) => Some(family),
            Err(Error::Io { source, .. }) if is_unsupported(&source) => None,
            Err(err) => return Err(err),
        };
        Ok(RawSockets { v4, v6 })
    }

    /// The family of `addr`, if this machine has it.
    pub fn family(&self, addr: IpAddr) -> Option<&Family> {
        match addr {
            IpAddr::V4(_) => Some(&self.v4),
            IpAddr::V6(_) => self.v6.as_ref(),
        }
    }

    /// Every family's sockets, for the receiver: (family, is IPv6).
    pub fn families(&self) -> impl Iterator<Item = (&Family, bool)> {
        std::iter::once((&self.v4, false)).chain(self.v6.iter().map(|f| (f, true)))
    }
}

impl Family {
    fn open(v6: bool) -> Result<Self, Error> {
        let (domain, icmp) = match v6 {
            false => (Domain::IPV4, Protocol::ICMPV4),
            true => (Domain::IPV6, Protocol::ICMPV6),
        };
        let tcp = raw(domain, Protocol::TCP, "open a raw TCP socket")?;
        let icmp = raw(domain, icmp, "open a raw ICMP socket")?;
        if v6 {
            // Best effort: the answers' hop limits (nmap's reason_ttl), which IPv6 raw sockets
            // give only as control messages; without them the scan is the same.
            for socket in [&tcp, &icmp] {
                let _ =
                    crate::sys::sockopt::set(socket, crate::sys::sockopt::Ipv6RecvHopLimit, &true);
            }
        }
        let mut reservations = Vec::with_capacity(SOURCE_PORTS);
        let mut ports = [0; SOURCE_PORTS];
        for port in &mut ports {
            let (reservation, reserved) = reserve(domain, v6)
                .map_err(|e| Error::io("reserve a source port for the SYN scan", e))?;
            *port = reserved;
            reservations.push(reservation);
        }
        // Only segments to our ports with ACK set (SYN-ACKs, resets): the raw socket otherwise
        // gets every TCP segment of the namespace, on loopback this scan's own SYNs too. And
        // only the ICMP errors the receiver reads (module `packet`).
        tcp.attach_filter(&bpf::tcp_to(&ports, packet::ACK, v6))
            .map_err(|e| Error::io("filter the raw TCP socket", e))?;
        icmp.attach_filter(&bpf::icmp_of(packet::error_types(v6), v6))
            .map_err(|e| Error::io("filter the raw ICMP socket", e))?;
        Ok(Family {
            tcp,
            icmp,
            ports,
            _reservations: reservations,
        })
    }

    /// The source port of try `tryno` (0 for the first).
    pub fn port_for(&self, tryno: u32) -> u16 {
        self.ports[tryno as usize % SOURCE_PORTS]
    }

    /// Whether `port` is one of this family's source ports.
    pub fn owns(&self, port: u16) -> bool {
        self.ports.contains(&port)
    }

    /// Sends `segment` to `dst`'s address, in its zone (a raw socket's port must be 0).
    pub fn send(&self, segment: &[u8], mut dst: SocketAddr) -> io::Result<()> {
        dst.set_port(0);
        self.tcp.send_to(segment, &SockAddr::from(dst))?;
        Ok(())
    }
}

fn raw(domain: Domain, protocol: Protocol, what: &str) -> Result<Socket, Error> {
    let socket = Socket::new(domain, Type::RAW, Some(protocol)).map_err(|e| Error::io(what, e))?;
    let fd = socket.as_fd();
    if nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::RcvBufForce, &RCVBUF).is_err() {
        let _ = socket.set_recv_buffer_size(RCVBUF);
    }
    Ok(socket)
}

/// Binds a TCP socket (never listening) to a port the kernel picks, on every address.
pub(crate) fn reserve(domain: Domain, v6: bool) -> io::Result<(Socket, u16)> {
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    let any = match v6 {
        false => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        true => {
            socket.set_only_v6(true)?;
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        }
    };
    socket.bind(&SockAddr::from(SocketAddr::new(any, 0)))?;
    let port = socket
        .local_addr()?
        .as_socket()
        .map_or(0, |addr| addr.port());
    Ok((socket, port))
}

fn is_unsupported(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EAFNOSUPPORT | libc::EPROTONOSUPPORT)
    )
}

/// Whether this process may open raw sockets (root, or `CAP_NET_RAW`): whether nmap, in its
/// place, would probe with raw packets (its words for a discovery probe's answer depend on it:
/// `reset` for a raw SYN's, `conn-refused` for a connect's).
pub fn raw_allowed() -> bool {
    Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::TCP)).is_ok()
}

/// Whether `err` says this process may not open raw sockets.
pub fn is_denied(err: &Error) -> bool {
    match err {
        Error::Io { source, .. } => {
            matches!(source.raw_os_error(), Some(libc::EPERM | libc::EACCES))
        }
        _ => false,
    }
}

/// The borrowed descriptors the receiver polls.
pub fn fds(sockets: &RawSockets) -> Vec<BorrowedFd<'_>> {
    sockets
        .families()
        .flat_map(|(f, _)| [f.tcp.as_fd(), f.icmp.as_fd()])
        .collect()
}

/// The source addresses this machine routes from, per destination and zone: what a connected
/// UDP socket is given (a route lookup; nothing is sent). The SYN's checksum covers it.
#[derive(Debug, Default)]
pub struct Sources(HashMap<(IpAddr, u32), IpAddr>);

impl Sources {
    /// The source address of packets to `dst`'s address in its zone (a link-local address
    /// is routed through its zone's interface only).
    pub fn of(&mut self, dst: SocketAddr) -> io::Result<IpAddr> {
        let (any, zone): (IpAddr, u32) = match dst {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED.into(), 0),
            SocketAddr::V6(v6) => (Ipv6Addr::UNSPECIFIED.into(), v6.scope_id()),
        };
        let key = (dst.ip(), zone);
        if let Some(src) = self.0.get(&key) {
            return Ok(*src);
        }
        let udp = UdpSocket::bind((any, 0))?;
        let mut to = dst;
        to.set_port(9);
        udp.connect(to)?;
        let src = udp.local_addr()?.ip();
        self.0.insert(key, src);
        Ok(src)
    }
}
