//! Answering a UDP datagram from the address it was sent to, on a socket bound to a wildcard
//! address (`0.0.0.0`, `[::]`): the kernel says where each datagram arrived (`IP_PKTINFO`,
//! `IPV6_RECVPKTINFO`) and a reply names its source the same way. Without it the reply leaves
//! from whatever address the route back chooses, and a client that sent to another address of
//! the host (a second address, a VIP) drops it. nginx's UDP listeners and unbound do the same.
//!
//! A `[::]` socket gets `IPV6_PKTINFO` for its IPv4 clients too (their address v4-mapped), and
//! Linux takes a v4-mapped source in `IPV6_PKTINFO` for a v4-mapped destination.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd};

use nix::libc;
use nix::sys::socket::{
    recvmsg, sendmsg, setsockopt, sockopt, ControlMessage, ControlMessageOwned, MsgFlags,
    SockaddrIn, SockaddrIn6, SockaddrStorage,
};

/// Where a datagram arrived: the local address it was sent to, and the interface (needed
/// only to answer from a link-local address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// The destination address of the datagram (v4-mapped for an IPv4 client of `[::]`).
    pub addr: IpAddr,
    /// The index of the interface it came in on.
    pub ifindex: u32,
}

/// Asks the kernel to say where each datagram arrives, on a socket of family `v6` or not.
pub fn enable<F: AsFd>(socket: &F, v6: bool) -> io::Result<()> {
    match v6 {
        true => setsockopt(socket, sockopt::Ipv6RecvPacketInfo, &true)?,
        false => setsockopt(socket, sockopt::Ipv4PacketInfo, &true)?,
    }
    Ok(())
}

/// Room for one packet-info control message, aligned as `struct cmsghdr` wants.
#[repr(C, align(8))]
struct ControlBuffer([u8; 64]);

/// Receives one datagram into `buf` without blocking (`EAGAIN` when there is none): its
/// length, its sender, and where it arrived when the kernel said.
pub fn recv_from<F: AsFd>(
    socket: &F,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr, Option<Arrival>)> {
    let mut space = ControlBuffer([0; 64]);
    let mut iov = [IoSliceMut::new(buf)];
    let fd = socket.as_fd().as_raw_fd();
    let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut space.0), MsgFlags::MSG_DONTWAIT)?;
    let mut arrival = None;
    for cmsg in msg.cmsgs()? {
        arrival = arrival.or(arrival_of(cmsg));
    }
    let from =
        msg.address.as_ref().and_then(socket_addr).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "datagram without a sender")
        })?;
    Ok((msg.bytes, from, arrival))
}

fn arrival_of(cmsg: ControlMessageOwned) -> Option<Arrival> {
    match cmsg {
        ControlMessageOwned::Ipv4PacketInfo(info) => Some(Arrival {
            addr: IpAddr::V4(Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr))),
            ifindex: u32::try_from(info.ipi_ifindex).unwrap_or(0),
        }),
        ControlMessageOwned::Ipv6PacketInfo(info) => Some(Arrival {
            addr: IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)),
            ifindex: info.ipi6_ifindex,
        }),
        _ => None,
    }
}

fn socket_addr(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(sin) = addr.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*sin)));
    }
    addr.as_sockaddr_in6()
        .map(|sin6| SocketAddr::V6(SocketAddrV6::from(*sin6)))
}

/// Sends `data` to `to` from `from` (where the client's datagram arrived), without blocking.
pub fn send_to<F: AsFd>(
    socket: &F,
    data: &[u8],
    to: SocketAddr,
    from: Arrival,
) -> io::Result<usize> {
    let fd = socket.as_fd().as_raw_fd();
    let iov = [IoSlice::new(data)];
    let flags = MsgFlags::MSG_DONTWAIT;
    let sent = match (to, from.addr) {
        (SocketAddr::V4(to), IpAddr::V4(src)) => {
            let info = libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: libc::in_addr {
                    s_addr: u32::from(src).to_be(),
                },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            let cmsg = [ControlMessage::Ipv4PacketInfo(&info)];
            sendmsg(fd, &iov, &cmsg, flags, Some(&SockaddrIn::from(to)))
        }
        (SocketAddr::V6(to), IpAddr::V6(src)) => {
            // The interface matters only for a link-local source; else the route chooses.
            let ifindex = match src.is_unicast_link_local() {
                true => from.ifindex,
                false => 0,
            };
            let info = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr {
                    s6_addr: src.octets(),
                },
                ipi6_ifindex: ifindex,
            };
            let cmsg = [ControlMessage::Ipv6PacketInfo(&info)];
            sendmsg(fd, &iov, &cmsg, flags, Some(&SockaddrIn6::from(to)))
        }
        // Families that do not match (never on one socket): let the kernel choose.
        _ => return plain_send_to(fd, data, to),
    };
    Ok(sent?)
}

fn plain_send_to(fd: std::os::fd::RawFd, data: &[u8], to: SocketAddr) -> io::Result<usize> {
    let addr = SockaddrStorage::from(to);
    Ok(nix::sys::socket::sendto(
        fd,
        data,
        &addr,
        MsgFlags::MSG_DONTWAIT,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_leaves_from_the_address_the_datagram_was_sent_to() {
        let server = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        enable(&server, false).unwrap();
        let port = server.local_addr().unwrap().port();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let asked = SocketAddr::from(([127, 0, 0, 2], port));
        client.send_to(b"q", asked).unwrap();
        let mut buf = [0u8; 16];
        let (len, from, arrival) = loop {
            match recv_from(&server, &mut buf) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                other => break other.unwrap(),
            }
        };
        assert_eq!((len, from), (1, client.local_addr().unwrap()));
        let arrival = arrival.unwrap();
        assert_eq!(arrival.addr, asked.ip());
        send_to(&server, b"a", from, arrival).unwrap();
        let (_, source) = client.recv_from(&mut buf).unwrap();
        assert_eq!(source, asked);
    }
}
