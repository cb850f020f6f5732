//! A small NFQUEUE client: the netlink messages the relay needs (bind a queue with its copy
//! mode and length, receive queued packets, issue verdicts in any order) over a non-blocking
//! netlink socket whose descriptor can be polled and whose receive buffer can be forced large.
//!
//! Written here rather than taken from the `nfq` crate: its released version (0.2) exposes no
//! file descriptor, so it can neither be polled (the relay had to spin with short sleeps) nor
//! given a large receive buffer — and `net.core.rmem_*` are read-only inside a non-initial
//! namespace, so at 50k packets/s the default buffer overflowed and the kernel dropped ~12%
//! of the packets before the relay saw them. Message layouts follow
//! `include/uapi/linux/netfilter/nfnetlink_queue.h`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    bind, recv, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};

/// `NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_*`.
const MSG_PACKET: u16 = 3 << 8;
const MSG_VERDICT: u16 = (3 << 8) | 1;
const MSG_CONFIG: u16 = (3 << 8) | 2;
/// Netlink control messages.
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
/// Attributes.
const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_PAYLOAD: u16 = 10;
const NFQA_CAP_LEN: u16 = 13;
const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
const CMD_BIND: u8 = 1;
const COPY_META: u8 = 1;
const COPY_PACKET: u8 = 2;
/// Header sizes: `nlmsghdr`, `nfgenmsg`.
const NLMSG_HDRLEN: usize = 16;
const NFGEN_HDRLEN: usize = 4;

/// A verdict on a queued packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Discard it.
    Drop = 0,
    /// Let it continue.
    Accept = 1,
}

/// One queued packet, borrowed from the receive buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The queue it came from.
    pub queue: u16,
    /// Its id, for the verdict.
    pub id: u32,
    /// The copied bytes (empty in metadata-only mode).
    pub payload: &'a [u8],
    /// Whether `payload` is the whole packet.
    pub complete: bool,
}

/// A netlink socket bound to NFQUEUE queues (in the namespace of the thread that opened it).
#[derive(Debug)]
pub struct NfQueue {
    fd: OwnedFd,
    buf: Vec<u8>,
    seq: u32,
}

impl NfQueue {
    /// Opens a non-blocking netfilter netlink socket with a receive buffer of `rcvbuf` bytes.
    pub fn open(rcvbuf: usize) -> io::Result<NfQueue> {
        let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            flags,
            SockProtocol::NetlinkNetFilter,
        )?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        setsockopt(&fd, sockopt::RcvBufForce, &rcvbuf)?;
        Ok(NfQueue {
            fd,
            buf: vec![0; 128 * 1024],
            seq: 0,
        })
    }

    /// Binds queue `queue`: copies `copy_range` bytes of each packet (0: metadata only) and
    /// lets the kernel hold up to `max_len` packets awaiting a verdict. Fail-open stays off.
    pub fn bind(&mut self, queue: u16, copy_range: u32, max_len: u32) -> io::Result<()> {
        self.configure(queue, NFQA_CFG_CMD, &[CMD_BIND, 0, 0, 0])?;
        let mode = if copy_range == 0 {
            COPY_META
        } else {
            COPY_PACKET
        };
        let mut params = copy_range.to_be_bytes().to_vec();
        params.push(mode);
        self.configure(queue, NFQA_CFG_PARAMS, &params)?;
        self.configure(queue, NFQA_CFG_QUEUE_MAXLEN, &max_len.to_be_bytes())
    }

    /// Sends one configuration attribute for `queue` and waits for the kernel's answer.
    fn configure(&mut self, queue: u16, attr: u16, value: &[u8]) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let flags = NLM_F_REQUEST | NLM_F_ACK;
        let msg = encode(MSG_CONFIG, flags, self.seq, queue, &[(attr, value)]);
        send(self.fd.as_raw_fd(), &msg, MsgFlags::empty())?;
        self.wait_ack()
    }

    /// Waits (at most a second) for the acknowledgement of the last request.
    fn wait_ack(&mut self) -> io::Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while std::time::Instant::now() < deadline {
            match recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty()) {
                Ok(n) => {
                    if let Some(errno) = ack_errno(&self.buf[..n]) {
                        return match errno {
                            0 => Ok(()),
                            e => Err(io::Error::from_raw_os_error(e)),
                        };
                    }
                }
                Err(Errno::EAGAIN) => std::thread::sleep(std::time::Duration::from_millis(1)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(io::ErrorKind::TimedOut.into())
    }

    /// Receives one datagram and calls `each` for every packet in it. `Ok(false)` when
    /// nothing was waiting; `ENOBUFS` means the kernel dropped packets (buffer overflow).
    pub fn receive(&mut self, mut each: impl FnMut(Packet<'_>)) -> io::Result<bool> {
        let n = match recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty()) {
            Ok(n) => n,
            Err(Errno::EAGAIN) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        for msg in messages(&self.buf[..n]) {
            if let Some(packet) = parse_packet(msg) {
                each(packet);
            }
        }
        Ok(true)
    }

    /// Issues `verdict` on packet `id` of `queue`.
    pub fn verdict(&self, queue: u16, id: u32, verdict: Verdict) -> io::Result<()> {
        let mut hdr = (verdict as u32).to_be_bytes().to_vec();
        hdr.extend_from_slice(&id.to_be_bytes());
        let msg = encode(
            MSG_VERDICT,
            NLM_F_REQUEST,
            0,
            queue,
            &[(NFQA_VERDICT_HDR, &hdr)],
        );
        send(self.fd.as_raw_fd(), &msg, MsgFlags::empty())?;
        Ok(())
    }
}

impl AsFd for NfQueue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A netlink message for the queue subsystem: `nlmsghdr`, `nfgenmsg` (AF_UNSPEC, version 0,
/// the queue number big-endian), then the attributes, each padded to 4 bytes.
fn encode(msg_type: u16, flags: u16, seq: u32, queue: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(64);
    msg.extend_from_slice(&[0; 4]); // length, set below
    msg.extend_from_slice(&msg_type.to_ne_bytes());
    msg.extend_from_slice(&flags.to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
    msg.extend_from_slice(&[0, 0]); // family AF_UNSPEC, version 0
    msg.extend_from_slice(&queue.to_be_bytes());
    for (kind, value) in attrs {
        let len = 4 + value.len();
        msg.extend_from_slice(&(len as u16).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(value);
        msg.resize(align(msg.len()), 0);
    }
    let total = msg.len() as u32;
    msg[..4].copy_from_slice(&total.to_ne_bytes());
    msg
}

/// Rounds up to the netlink alignment of 4 bytes.
fn align(len: usize) -> usize {
    (len + 3) & !3
}

fn u16_ne(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_ne(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The netlink messages of one datagram.
fn messages(mut datagram: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let len = u32_ne(datagram, 0)? as usize;
        if len < NLMSG_HDRLEN || len > datagram.len() {
            return None;
        }
        let msg = &datagram[..len];
        datagram = datagram.get(align(len)..).unwrap_or_default();
        Some(msg)
    })
}

/// The error code of an `NLMSG_ERROR` message (0 is an acknowledgement), if it is one.
fn ack_errno(datagram: &[u8]) -> Option<i32> {
    messages(datagram)
        .filter(|m| u16_ne(m, 4) == Some(NLMSG_ERROR))
        .find_map(|m| Some(-(u32_ne(m, NLMSG_HDRLEN)? as i32)))
}

/// The attributes (type, value) of a queue message.
fn attributes(msg: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = msg.get(NLMSG_HDRLEN + NFGEN_HDRLEN..).unwrap_or_default();
    std::iter::from_fn(move || {
        let len = u16_ne(rest, 0)? as usize;
        if len < 4 || len > rest.len() {
            return None;
        }
        // The upper bits of the type are flags (nested, byte order).
        let kind = u16_ne(rest, 2)? & 0x3fff;
        let value = &rest[4..len];
        rest = rest.get(align(len)..).unwrap_or_default();
        Some((kind, value))
    })
}

/// A queued packet from a `NFQNL_MSG_PACKET` message.
fn parse_packet(msg: &[u8]) -> Option<Packet<'_>> {
    if u16_ne(msg, 4)? != MSG_PACKET {
        return None;
    }
    let queue = u16::from_be_bytes(msg.get(18..20)?.try_into().ok()?);
    let (mut id, mut payload, mut complete) = (None, &[][..], true);
    for (kind, value) in attributes(msg) {
        match kind {
            NFQA_PACKET_HDR => id = Some(u32::from_be_bytes(value.get(..4)?.try_into().ok()?)),
            NFQA_PAYLOAD => payload = value,
            NFQA_CAP_LEN => complete = false,
            _ => {}
        }
    }
    Some(Packet {
        queue,
        id: id?,
        payload,
        complete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_encode_as_the_kernel_expects() {
        let mut hdr = 1u32.to_be_bytes().to_vec();
        hdr.extend_from_slice(&0x0102_0304u32.to_be_bytes());
        let msg = encode(
            MSG_VERDICT,
            NLM_F_REQUEST,
            0,
            1,
            &[(NFQA_VERDICT_HDR, &hdr)],
        );
        let mut expected = Vec::new();
        expected.extend_from_slice(&32u32.to_ne_bytes());
        expected.extend_from_slice(&0x0301u16.to_ne_bytes());
        expected.extend_from_slice(&1u16.to_ne_bytes());
        expected.extend_from_slice(&[0; 8]);
        expected.extend_from_slice(&[0, 0, 0, 1]); // AF_UNSPEC, v0, queue 1 (big-endian)
        expected.extend_from_slice(&12u16.to_ne_bytes());
        expected.extend_from_slice(&2u16.to_ne_bytes());
        expected.extend_from_slice(&[0, 0, 0, 1, 1, 2, 3, 4]);
        assert_eq!(msg, expected);
    }

    #[test]
    fn attributes_are_padded() {
        let msg = encode(MSG_CONFIG, 0, 7, 0, &[(NFQA_CFG_PARAMS, &[0, 0, 8, 0, 2])]);
        assert_eq!(msg.len(), NLMSG_HDRLEN + NFGEN_HDRLEN + 12);
        assert_eq!(u32_ne(&msg, 0), Some(msg.len() as u32));
    }

    /// A packet message as the kernel sends it: header, then packet header and payload.
    fn packet_msg(queue: u16, id: u32, payload: &[u8], cap_len: bool) -> Vec<u8> {
        let mut hdr = id.to_be_bytes().to_vec();
        hdr.extend_from_slice(&[0x08, 0x00, 2]); // hw protocol IPv4, hook FORWARD
        let cap = 1500u32.to_be_bytes();
        let mut attrs: Vec<(u16, &[u8])> = vec![(NFQA_PACKET_HDR, &hdr), (NFQA_PAYLOAD, payload)];
        if cap_len {
            attrs.push((NFQA_CAP_LEN, &cap));
        }
        encode(MSG_PACKET, 0, 0, queue, &attrs)
    }

    #[test]
    fn packets_parse_from_a_datagram_of_several_messages() {
        let mut datagram = packet_msg(1, 42, &[0x45, 1, 2], false);
        datagram.extend(packet_msg(0, 43, &[0x60; 8], true));
        let packets: Vec<_> = messages(&datagram).filter_map(parse_packet).collect();
        assert_eq!(packets.len(), 2);
        assert_eq!((packets[0].queue, packets[0].id), (1, 42));
        assert_eq!(packets[0].payload, [0x45, 1, 2]);
        assert!(packets[0].complete);
        assert_eq!(
            (packets[1].queue, packets[1].id, packets[1].complete),
            (0, 43, false)
        );
    }

    #[test]
    fn acks_and_errors_are_read() {
        let mut ack = Vec::new();
        ack.extend_from_slice(&36u32.to_ne_bytes());
        ack.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        ack.extend_from_slice(&[0; 10]);
        ack.extend_from_slice(&(-1i32).to_ne_bytes()); // -EPERM
        ack.extend_from_slice(&[0; 16]);
        assert_eq!(ack_errno(&ack), Some(1));
        assert_eq!(ack_errno(&packet_msg(0, 1, &[], false)), None);
        assert_eq!(messages(&[1, 2, 3]).count(), 0);
        assert!(parse_packet(&[0; 8]).is_none());
    }
}
