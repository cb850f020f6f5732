//! ICMP errors on a probe's socket. With `IP_RECVERR` (`IPV6_RECVERR`) set, the kernel queues
//! the ICMP error that aborted a connect on the socket's error queue, with its type, code and
//! sender; `recvmsg(MSG_ERRQUEUE)` reads it. `connect` alone reports an ICMP port unreachable
//! as `ECONNREFUSED`, exactly like a reset, and admin-prohibited as `EHOSTUNREACH`, exactly
//! like a router's host unreachable; the queued error tells them apart
//! ([`super::answer::IcmpReport::classify`]).

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use nix::libc;
use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags};
use socket2::Socket;

use super::answer::IcmpReport;

/// Asks the kernel to queue ICMP errors on `socket` (IPv6 when `v6`).
pub fn enable(socket: &Socket, v6: bool) -> io::Result<()> {
    let result = if v6 {
        setsockopt(socket, sockopt::Ipv6RecvErr, &true)
    } else {
        setsockopt(socket, sockopt::Ipv4RecvErr, &true)
    };
    result.map_err(io::Error::from)
}

/// The ICMP error queued on `socket`, if there is one.
pub fn read(socket: &Socket) -> Option<IcmpReport> {
    let mut data = [0u8; 64];
    let mut iov = [IoSliceMut::new(&mut data)];
    let mut control = nix::cmsg_space!(libc::sock_extended_err, libc::sockaddr_in6);
    let flags = MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT;
    let msg = recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(&mut control), flags).ok()?;
    let mut cmsgs = msg.cmsgs().ok()?;
    cmsgs.find_map(|cmsg| match cmsg {
        ControlMessageOwned::Ipv4RecvErr(err, from) => {
            let from =
                from.map(|sin| IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))));
            report(&err, libc::SO_EE_ORIGIN_ICMP, false, from)
        }
        ControlMessageOwned::Ipv6RecvErr(err, from) => {
            let from = from.map(|sin6| IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
            report(&err, libc::SO_EE_ORIGIN_ICMP6, true, from)
        }
        _ => None,
    })
}

/// The report of an extended error whose origin is the ICMP of the right version.
fn report(
    err: &libc::sock_extended_err,
    origin: u8,
    v6: bool,
    from: Option<IpAddr>,
) -> Option<IcmpReport> {
    (err.ee_origin == origin).then_some(IcmpReport {
        v6,
        kind: err.ee_type,
        code: err.ee_code,
        from: from.map(unmap),
    })
}

/// An IPv4-mapped IPv6 sender as the IPv4 address it is.
fn unmap(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}
