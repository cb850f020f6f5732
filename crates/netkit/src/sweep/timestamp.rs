//! The ICMP timestamp prober (`--method timestamp`, as `nmap -PP`): an ICMP timestamp request
//! (type 13, RFC 792) per probe through a raw ICMPv4 socket, and a task that reads the
//! timestamp replies (type 14) and the routers' destination-unreachable errors that quote a
//! request (an unreachable answer, named as the echo method names it). A host or firewall that drops echo requests often lets
//! timestamp requests through, and Linux, BSD and Windows hosts answer them. IPv4 only (ICMPv6
//! has no timestamp message); needs CAP_NET_RAW (unprivileged ICMP sockets carry only echo).
//!
//! The request carries the process's identifier, the probe's tag as the sequence number and
//! the target's position as the originate timestamp, which the reply copies back: an answer is
//! the target's when all three match and it comes from the address the probe went to.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use socket2::{Domain, Protocol, SockAddr, Socket};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use super::neighbour;
use super::raw::{self, Heard, Sent};
use super::reply::{Reply, Tag};
use super::unreach::{answer_of, LocalAddrs, Unreach};
use crate::error::{Error, ParseError};
use crate::icmp::packet::checksum;
use crate::icmp::Version;
use crate::scan::syn::packet::ipv4_payload;
use crate::sys::{self, bpf};
use crate::target::Targets;

/// ICMP timestamp request and reply (RFC 792).
const REQUEST: u8 = 13;
const REPLY: u8 = 14;
/// ICMP destination unreachable.
const UNREACHABLE: u8 = 3;
/// Type, code, checksum, identifier, sequence and three 32-bit timestamps.
const LEN: usize = 20;
const ICMP: u8 = 1;

/// Sends ICMP timestamp requests; a background task collects the replies.
#[derive(Debug)]
pub struct TimestampProber {
    socket: Arc<AsyncFd<Socket>>,
    id: u16,
    sent: Arc<Sent>,
    replies: UnboundedSender<Reply>,
    receiver: JoinHandle<()>,
}

impl TimestampProber {
    /// Opens a raw ICMPv4 socket and starts reading replies into `replies`. `alone` (no other
    /// method in the sweep): an input error naming the first IPv6 target, which this method
    /// cannot probe (with other methods, IPv6 targets are left to them). An environment error
    /// when the socket is refused (it needs CAP_NET_RAW).
    pub fn open(
        targets: &Targets,
        alone: bool,
        replies: UnboundedSender<Reply>,
    ) -> Result<Self, Error> {
        if let Some(v6) = targets.iter().find(|t| t.addr.is_ipv6()).filter(|_| alone) {
            let why = "ICMP timestamp requests are IPv4 only; use --method icmp (or add it: \
                       --method icmp,timestamp) for IPv6 targets";
            return Err(ParseError::new(v6.addr.to_string(), why).into());
        }
        let what = "open an ICMP socket for timestamp requests";
        let filter = bpf::icmp_of(&[REPLY, UNREACHABLE], false);
        let socket = Arc::new(raw::open(Domain::IPV4, Protocol::ICMPV4, &filter, what)?);
        let id = std::process::id() as u16;
        let sent = Arc::new(Sent::default());
        let mut local = LocalAddrs::default();
        let receiver = tokio::spawn(raw::receive(
            Arc::clone(&socket),
            (targets.clone(), Arc::clone(&sent)),
            replies.clone(),
            "receive ICMP timestamp replies",
            move |datagram, _| heard(datagram, id, &mut local),
        ));
        Ok(TimestampProber {
            socket,
            id,
            sent,
            replies,
            receiver,
        })
    }

    /// Sends one timestamp request to the target at `index` (IPv4 targets only: an IPv6 one
    /// stays silent for this method). No route is an unreachable answer; another refused send
    /// leaves the target silent.
    pub async fn send(&self, tag: Tag, index: u64, addr: IpAddr) {
        let (IpAddr::V4(_), Ok(index32)) = (addr, u32::try_from(index)) else {
            return;
        };
        let packet = request(self.id, tag.seq(), index32);
        self.sent.sent(tag, index);
        let to = SockAddr::from(SocketAddr::new(addr, 0));
        let send = || neighbour::send_to(&self.socket, &packet, &to);
        if let Err(err) = sys::retry_enobufs(send).await {
            raw::refused(&self.replies, (tag, index, addr), &err);
        }
    }

    /// Forgets the round's requests.
    pub fn end_round(&self) {
        self.sent.clear();
    }
}

impl Drop for TimestampProber {
    fn drop(&mut self) {
        self.receiver.abort();
    }
}

/// A timestamp request with identifier `id`, sequence number `seq` and originate timestamp
/// `originate`, checksummed.
pub fn request(id: u16, seq: u16, originate: u32) -> [u8; LEN] {
    let mut msg = [0u8; LEN];
    msg[0] = REQUEST;
    msg[4..6].copy_from_slice(&id.to_be_bytes());
    msg[6..8].copy_from_slice(&seq.to_be_bytes());
    msg[8..12].copy_from_slice(&originate.to_be_bytes());
    let sum = checksum(&[&msg]);
    msg[2..4].copy_from_slice(&sum.to_be_bytes());
    msg
}

/// A timestamp reply's identifier, sequence number and originate timestamp; `None` for any
/// other message.
pub fn reply(msg: &[u8]) -> Option<(u16, u16, u32)> {
    if msg.len() < LEN || msg[0] != REPLY || msg[1] != 0 {
        return None;
    }
    let be16 = |at: usize| u16::from_be_bytes([msg[at], msg[at + 1]]);
    let originate = u32::from_be_bytes([msg[8], msg[9], msg[10], msg[11]]);
    Some((be16(4), be16(6), originate))
}

/// What a router's destination-unreachable error (ICMP type 3, a routing code: not port
/// unreachable nor fragmentation needed) that quotes one of our timestamp requests says: the
/// request's identifier, sequence number and originate timestamp, where it went, the code.
/// `None` for any other message, or a quote too short to hold the originate timestamp.
pub fn unreachable(msg: &[u8]) -> Option<(u16, u16, u32, IpAddr, u8)> {
    let code = *msg.get(1)?;
    if msg.first() != Some(&UNREACHABLE) || !Unreach::is_unreachable(Version::V4, 3, code) {
        return None;
    }
    let inner = msg.get(8..)?;
    let ihl = usize::from(inner.first()? & 0x0f) * 4;
    if ihl < 20 || *inner.get(9)? != ICMP {
        return None;
    }
    let dst = IpAddr::from(<[u8; 4]>::try_from(inner.get(16..20)?).ok()?);
    let quoted = inner.get(ihl..ihl + 12)?;
    if quoted[0] != REQUEST {
        return None;
    }
    let be16 = |at: usize| u16::from_be_bytes([quoted[at], quoted[at + 1]]);
    let originate = u32::from_be_bytes([quoted[8], quoted[9], quoted[10], quoted[11]]);
    Some((be16(4), be16(6), originate, dst, code))
}

/// What a datagram tells: a timestamp reply to one of our requests (from the target), or a
/// router's unreachable error quoting one (read as every prober reads it,
/// [`super::unreach::answer_of`]).
fn heard(datagram: &[u8], id: u16, local: &mut LocalAddrs) -> Option<Heard> {
    let (msg, from) = ipv4_payload(datagram, ICMP)?;
    let (seq, index, addr, answer) = match (reply(msg), unreachable(msg)) {
        (Some((got, seq, index)), _) if got == id => (seq, index, from, None),
        (_, Some((got, seq, index, dst, code))) if got == id => {
            let answer = answer_of(Version::V4, (UNREACHABLE, code), from, local)?;
            (seq, index, dst, Some(answer))
        }
        _ => return None,
    };
    Some(Heard {
        index: u64::from(index),
        addr,
        seq: Some(seq),
        answer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_checksums_and_a_reply_gives_back_its_fields() {
        let msg = request(0x1234, 0x0041, 7);
        assert_eq!(checksum(&[&msg]), 0);
        assert_eq!(msg[0], REQUEST);
        let mut answer = msg;
        answer[0] = REPLY;
        assert_eq!(reply(&answer), Some((0x1234, 0x0041, 7)));
        assert_eq!(reply(&msg), None);
        assert_eq!(reply(&answer[..12]), None);
        let mut error = vec![UNREACHABLE, 0, 0, 0, 0, 0, 0, 0];
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[9] = ICMP;
        ip[16..20].copy_from_slice(&[198, 18, 6, 1]);
        error.extend_from_slice(&ip);
        error.extend_from_slice(&msg);
        let dst: IpAddr = "198.18.6.1".parse().unwrap();
        assert_eq!(unreachable(&error), Some((0x1234, 0x0041, 7, dst, 0)));
        error[1] = 3;
        assert_eq!(unreachable(&error), None, "port unreachable");
        error[1] = 1;
        assert_eq!(unreachable(&error[..36]), None, "no originate timestamp");
    }
}
