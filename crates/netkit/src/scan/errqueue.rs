//! ICMP errors on a probe's socket. With `IP_RECVERR` (`IPV6_RECVERR`) set, the kernel queues
//! the ICMP error that aborted a connect on the socket's error queue, with its type, code and
//! sender; [`crate::sys::cmsg::recv`] reads it. `connect` alone reports an ICMP port
//! unreachable as `ECONNREFUSED`, exactly like a reset, and admin-prohibited as
//! `EHOSTUNREACH`, exactly like a router's host unreachable; the queued error tells them apart
//! ([`super::answer::IcmpReport::classify`]).

use std::io;
use std::net::IpAddr;

use nix::libc;
use socket2::Socket;

use super::answer::IcmpReport;
use crate::sys::{cmsg, sockopt};

/// Asks the kernel to queue ICMP errors on `socket` (IPv6 when `v6`).
pub fn enable(socket: &Socket, v6: bool) -> io::Result<()> {
    if v6 {
        sockopt::set(socket, sockopt::Ipv6RecvErr, &true)
    } else {
        sockopt::set(socket, sockopt::Ipv4RecvErr, &true)
    }
}

/// The ICMP error queued on `socket`, if there is one.
pub fn read(socket: &Socket) -> Option<IcmpReport> {
    let mut data = [0u8; 64];
    let queued = cmsg::recv(socket, &mut data, true)
        .ok()?
        .control
        .queued_error?;
    let v6 = match queued.origin {
        libc::SO_EE_ORIGIN_ICMP => false,
        libc::SO_EE_ORIGIN_ICMP6 => true,
        _ => return None,
    };
    Some(IcmpReport {
        v6,
        kind: queued.msg_type,
        code: queued.code,
        from: queued.offender.map(unmap),
    })
}

/// An IPv4-mapped IPv6 sender as the IPv4 address it is.
fn unmap(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}
