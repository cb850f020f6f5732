//! Control messages (`cmsg`) that come with a received ICMP message: the TTL (`IP_TTL`) or hop
//! limit (`IPV6_HOPLIMIT`), the kernel's receive time (`SCM_TIMESTAMPNS`), and, on a message
//! read from the error queue, the queued error (`IP_RECVERR` / `IPV6_RECVERR`). Parsed from the
//! bytes as Linux lays them out — `cmsghdr { size_t len; int level; int type; }`, then the
//! data, each message aligned to `size_t` — so no unsafe pointer walking is needed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use nix::libc;

const WORD: usize = std::mem::size_of::<usize>();
const HEADER: usize = align(WORD + 8);

/// What the control messages said.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Control {
    /// TTL or hop limit.
    pub hop_limit: Option<u8>,
    /// Kernel receive time since the Unix epoch.
    pub kernel_time: Option<Duration>,
    /// The error a message from the error queue stands for.
    pub queued_error: Option<QueuedError>,
}

/// An error the kernel queued for a datagram ICMP socket (`struct sock_extended_err` and the
/// address of who reported it).
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

impl QueuedError {
    /// Reads `sock_extended_err` (errno u32, origin, type, code, pad, info u32, data u32) and
    /// the offender's `sockaddr` after it.
    fn parse(data: &[u8]) -> Option<QueuedError> {
        let word = |at: usize| Some(u32::from_ne_bytes(data.get(at..at + 4)?.try_into().ok()?));
        Some(QueuedError {
            origin: *data.get(4)?,
            msg_type: *data.get(5)?,
            code: *data.get(6)?,
            info: word(8)?,
            offender: offender(data.get(16..)?),
        })
    }
}

/// The address in a `sockaddr_in` or `sockaddr_in6`.
fn offender(sockaddr: &[u8]) -> Option<IpAddr> {
    let family = u16::from_ne_bytes(sockaddr.get(..2)?.try_into().ok()?);
    match i32::from(family) {
        libc::AF_INET => {
            let octets: [u8; 4] = sockaddr.get(4..8)?.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(octets)))
        }
        libc::AF_INET6 => {
            let octets: [u8; 16] = sockaddr.get(8..24)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        _ => None,
    }
}

impl Control {
    /// Reads every control message in `bytes`, ignoring unknown ones and stopping at a
    /// malformed one.
    pub fn parse(bytes: &[u8]) -> Control {
        let mut control = Control::default();
        let mut at = 0;
        while let Some((level, kind, data, next)) = message_at(bytes, at) {
            control.apply(level, kind, data);
            at = next;
        }
        control
    }

    fn apply(&mut self, level: i32, kind: i32, data: &[u8]) {
        let int = || Some(i32::from_ne_bytes(data.get(..4)?.try_into().ok()?));
        match (level, kind) {
            (libc::IPPROTO_IP, libc::IP_TTL) | (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                self.hop_limit = int().and_then(|v| u8::try_from(v).ok());
            }
            (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS) => self.kernel_time = timespec(data),
            (libc::IPPROTO_IP, libc::IP_RECVERR) | (libc::IPPROTO_IPV6, libc::IPV6_RECVERR) => {
                self.queued_error = QueuedError::parse(data);
            }
            _ => {}
        }
    }
}

/// The message at `at`: level, type, data, and where the next one starts.
fn message_at(bytes: &[u8], at: usize) -> Option<(i32, i32, &[u8], usize)> {
    let header = bytes.get(at..at.checked_add(HEADER)?)?;
    let len = usize::from_ne_bytes(header[..WORD].try_into().ok()?);
    let level = i32::from_ne_bytes(header[WORD..WORD + 4].try_into().ok()?);
    let kind = i32::from_ne_bytes(header[WORD + 4..WORD + 8].try_into().ok()?);
    if len < HEADER {
        return None;
    }
    let data = bytes.get(at + HEADER..at.checked_add(len)?)?;
    Some((level, kind, data, at + align(len)))
}

/// A `struct timespec` of two native words (seconds, nanoseconds).
fn timespec(data: &[u8]) -> Option<Duration> {
    let secs = i64::from_ne_bytes(data.get(..8)?.try_into().ok()?);
    let nanos = i64::from_ne_bytes(data.get(8..16)?.try_into().ok()?);
    let secs = u64::try_from(secs).ok()?;
    let nanos = u32::try_from(nanos).ok().filter(|n| *n < 1_000_000_000)?;
    Some(Duration::new(secs, nanos))
}

const fn align(len: usize) -> usize {
    len.div_ceil(WORD) * WORD
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmsg(level: i32, kind: i32, data: &[u8]) -> Vec<u8> {
        let mut bytes = (HEADER + data.len()).to_ne_bytes().to_vec();
        bytes.extend_from_slice(&level.to_ne_bytes());
        bytes.extend_from_slice(&kind.to_ne_bytes());
        bytes.resize(HEADER, 0);
        bytes.extend_from_slice(data);
        bytes.resize(align(bytes.len()), 0);
        bytes
    }

    fn timestamp(secs: i64, nanos: i64) -> Vec<u8> {
        let mut data = secs.to_ne_bytes().to_vec();
        data.extend_from_slice(&nanos.to_ne_bytes());
        cmsg(libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS, &data)
    }

    #[test]
    fn reads_ttl_hop_limit_and_timestamp() {
        let ttl = cmsg(libc::IPPROTO_IP, libc::IP_TTL, &64i32.to_ne_bytes());
        assert_eq!(Control::parse(&ttl).hop_limit, Some(64));
        let mut all = timestamp(1_700_000_000, 123_456_789);
        all.extend(cmsg(libc::IPPROTO_IP, libc::IP_TOS, &[7, 0, 0, 0]));
        all.extend(cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_HOPLIMIT,
            &255i32.to_ne_bytes(),
        ));
        assert_eq!(
            Control::parse(&all),
            Control {
                hop_limit: Some(255),
                kernel_time: Some(Duration::new(1_700_000_000, 123_456_789)),
                queued_error: None,
            }
        );
    }

    #[test]
    fn reads_a_queued_icmp_error_and_its_offender() {
        let mut data = 113u32.to_ne_bytes().to_vec(); // EHOSTUNREACH
        data.extend_from_slice(&[libc::SO_EE_ORIGIN_ICMP, 3, 1, 0]);
        data.extend_from_slice(&0u32.to_ne_bytes());
        data.extend_from_slice(&0u32.to_ne_bytes());
        data.extend_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        data.extend_from_slice(&[0, 0, 198, 18, 0, 1]);
        data.resize(data.len() + 8, 0);
        let control = Control::parse(&cmsg(libc::IPPROTO_IP, libc::IP_RECVERR, &data));
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
    }

    #[test]
    fn ignores_garbage() {
        assert_eq!(Control::parse(&[]), Control::default());
        let ttl = cmsg(libc::IPPROTO_IP, libc::IP_TTL, &64i32.to_ne_bytes());
        assert_eq!(Control::parse(&ttl[..ttl.len() - 6]), Control::default());
        let mut zero_len = ttl.clone();
        zero_len[..WORD].fill(0);
        assert_eq!(Control::parse(&zero_len), Control::default());
        assert_eq!(Control::parse(&timestamp(-1, 0)).kernel_time, None);
        assert_eq!(
            Control::parse(&timestamp(1, 2_000_000_000)).kernel_time,
            None
        );
        let huge = cmsg(libc::IPPROTO_IP, libc::IP_TTL, &300i32.to_ne_bytes());
        assert_eq!(Control::parse(&huge).hop_limit, None);
    }
}
