//! Receiving a datagram with its control messages (`recvmsg(2)`): the TTL (`IP_TTL`) or hop
//! limit (`IPV6_HOPLIMIT`), the kernel's receive time (`SCM_TIMESTAMPNS`) and, on a message
//! read from the error queue (`MSG_ERRQUEUE`), the queued error (`IP_RECVERR` /
//! `IPV6_RECVERR`) with who reported it. nix walks and decodes the control messages; this
//! module keeps the ones the engines use, checked ([`Control`]).

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use nix::libc;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrLike, SockaddrStorage};

/// What the control messages of one message said.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Control {
    /// TTL or hop limit.
    pub hop_limit: Option<u8>,
    /// Kernel receive time since the Unix epoch.
    pub kernel_time: Option<Duration>,
    /// The error a message from the error queue stands for.
    pub queued_error: Option<QueuedError>,
}

/// An error the kernel queued on a socket (`struct sock_extended_err` and the address of who
/// reported it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuedError {
    /// `SO_EE_ORIGIN_*`: local, ICMP or ICMPv6.
    pub origin: u8,
    /// ICMP type of the error.
    pub msg_type: u8,
    /// ICMP code of the error.
    pub code: u8,
    /// The error's datum (an MTU, a pointer).
    pub info: u32,
    /// Who sent the error.
    pub offender: Option<IpAddr>,
}

/// One message received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    /// Bytes written into the buffer.
    pub len: usize,
    /// The sender (for a message from the error queue: where the failed datagram went).
    pub from: Option<IpAddr>,
    /// The control messages.
    pub control: Control,
}

/// Room for every control message kept here at once, aligned as `struct cmsghdr` wants.
#[repr(C, align(8))]
struct ControlBuffer([u8; 256]);

/// Receives one message into `buf` without blocking (`EAGAIN` when there is none), from the
/// error queue when `queued`.
pub fn recv<F: AsFd>(socket: &F, buf: &mut [u8], queued: bool) -> io::Result<Message> {
    let mut space = ControlBuffer([0; 256]);
    let mut flags = MsgFlags::MSG_DONTWAIT;
    if queued {
        flags |= MsgFlags::MSG_ERRQUEUE;
    }
    let mut iov = [IoSliceMut::new(buf)];
    let fd = socket.as_fd().as_raw_fd();
    let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut space.0), flags)?;
    let mut control = Control::default();
    for cmsg in msg.cmsgs()? {
        control.apply(cmsg);
    }
    let from = msg.address.as_ref().and_then(ip_of);
    Ok(Message {
        len: msg.bytes,
        from,
        control,
    })
}

impl Control {
    /// Keeps what `cmsg` says, if it is one of the messages kept here.
    pub fn apply(&mut self, cmsg: ControlMessageOwned) {
        match cmsg {
            ControlMessageOwned::Ipv4Ttl(ttl) | ControlMessageOwned::Ipv6HopLimit(ttl) => {
                self.hop_limit = u8::try_from(ttl).ok();
            }
            ControlMessageOwned::ScmTimestampns(time) => {
                self.kernel_time = since_epoch(time.tv_sec(), time.tv_nsec());
            }
            ControlMessageOwned::Ipv4RecvErr(err, from) => {
                let from = from.and_then(|sin| v4_offender(&sin));
                self.queued_error = Some(QueuedError::new(&err, from));
            }
            ControlMessageOwned::Ipv6RecvErr(err, from) => {
                let from = from.and_then(|sin6| v6_offender(&sin6));
                self.queued_error = Some(QueuedError::new(&err, from));
            }
            _ => {}
        }
    }
}

impl QueuedError {
    fn new(err: &libc::sock_extended_err, offender: Option<IpAddr>) -> QueuedError {
        QueuedError {
            origin: err.ee_origin,
            msg_type: err.ee_type,
            code: err.ee_code,
            info: err.ee_info,
            offender,
        }
    }
}

/// The offender of an IPv4 error; a local error has none (its family is left `AF_UNSPEC`).
fn v4_offender(sin: &libc::sockaddr_in) -> Option<IpAddr> {
    (i32::from(sin.sin_family) == libc::AF_INET)
        .then(|| IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))))
}

/// The offender of an IPv6 error (IPv4-mapped for an IPv4 error on a dual-stack socket).
fn v6_offender(sin6: &libc::sockaddr_in6) -> Option<IpAddr> {
    (i32::from(sin6.sin6_family) == libc::AF_INET6)
        .then(|| IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
}

/// A `struct timespec` as a time since the epoch, when it is one.
fn since_epoch(secs: i64, nanos: i64) -> Option<Duration> {
    let secs = u64::try_from(secs).ok()?;
    let nanos = u32::try_from(nanos).ok().filter(|n| *n < 1_000_000_000)?;
    Some(Duration::new(secs, nanos))
}

fn ip_of(addr: &SockaddrStorage) -> Option<IpAddr> {
    match addr.family()? {
        nix::sys::socket::AddressFamily::Inet => Some(IpAddr::V4(addr.as_sockaddr_in()?.ip())),
        nix::sys::socket::AddressFamily::Inet6 => Some(IpAddr::V6(addr.as_sockaddr_in6()?.ip())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;

    use nix::sys::time::TimeSpec;

    use super::*;

    fn extended_err(origin: u8, kind: u8, code: u8, info: u32) -> libc::sock_extended_err {
        libc::sock_extended_err {
            ee_errno: 113,
            ee_origin: origin,
            ee_type: kind,
            ee_code: code,
            ee_pad: 0,
            ee_info: info,
            ee_data: 0,
        }
    }

    #[test]
    fn keeps_ttl_hop_limit_and_timestamp() {
        let mut control = Control::default();
        control.apply(ControlMessageOwned::Ipv4Ttl(64));
        assert_eq!(control.hop_limit, Some(64));
        control.apply(ControlMessageOwned::Ipv4Tos(7));
        control.apply(ControlMessageOwned::Ipv6HopLimit(255));
        let time = libc::timespec {
            tv_sec: 1_700_000_000,
            tv_nsec: 123_456_789,
        };
        control.apply(ControlMessageOwned::ScmTimestampns(TimeSpec::from(time)));
        assert_eq!(
            control,
            Control {
                hop_limit: Some(255),
                kernel_time: Some(Duration::new(1_700_000_000, 123_456_789)),
                queued_error: None,
            }
        );
    }

    #[test]
    fn keeps_a_queued_icmp_error_and_its_offender() {
        let mut control = Control::default();
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from(Ipv4Addr::new(198, 18, 0, 1)).to_be(),
            },
            sin_zero: [0; 8],
        };
        let err = extended_err(libc::SO_EE_ORIGIN_ICMP, 3, 1, 0);
        control.apply(ControlMessageOwned::Ipv4RecvErr(err, Some(sin)));
        assert_eq!(
            control.queued_error,
            Some(QueuedError {
                origin: libc::SO_EE_ORIGIN_ICMP,
                msg_type: 3,
                code: 1,
                info: 0,
                offender: Some("198.18.0.1".parse().unwrap()),
            })
        );
        let err = extended_err(libc::SO_EE_ORIGIN_ICMP6, 2, 0, 1280);
        control.apply(ControlMessageOwned::Ipv6RecvErr(err, None));
        let queued = control.queued_error.unwrap();
        assert_eq!(
            (queued.msg_type, queued.info, queued.offender),
            (2, 1280, None)
        );
        let local = libc::sockaddr_in {
            sin_family: libc::AF_UNSPEC as libc::sa_family_t,
            ..sin
        };
        let err = extended_err(libc::SO_EE_ORIGIN_LOCAL, 0, 0, 1400);
        control.apply(ControlMessageOwned::Ipv4RecvErr(err, Some(local)));
        assert_eq!(control.queued_error.unwrap().offender, None);
    }

    #[test]
    fn refuses_impossible_values() {
        let mut control = Control::default();
        control.apply(ControlMessageOwned::Ipv4Ttl(300));
        assert_eq!(control.hop_limit, None);
        assert_eq!(since_epoch(-1, 0), None);
        assert_eq!(since_epoch(1, 2_000_000_000), None);
        assert_eq!(since_epoch(1, 2), Some(Duration::new(1, 2)));
    }

    #[test]
    fn receives_a_datagram_with_its_hop_limit_and_time() {
        let receiver = UdpSocket::bind("[::1]:0").unwrap();
        crate::sys::sockopt::set(&receiver, crate::sys::sockopt::Ipv6RecvHopLimit, &true).unwrap();
        crate::sys::sockopt::set(&receiver, crate::sys::sockopt::ReceiveTimestampns, &true)
            .unwrap();
        let sender = UdpSocket::bind("[::1]:0").unwrap();
        sender
            .send_to(b"hello", receiver.local_addr().unwrap())
            .unwrap();
        let mut buf = [0u8; 16];
        let mut tries = 0;
        let message = loop {
            match recv(&receiver, &mut buf, false) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && tries < 5000 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(1));
                }
                other => break other.unwrap(),
            }
        };
        assert_eq!(&buf[..message.len], b"hello");
        assert_eq!(message.from, Some("::1".parse().unwrap()));
        assert!(message.control.hop_limit.is_some());
        assert!(message.control.kernel_time.is_some());
    }
}
