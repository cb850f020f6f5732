//! The TCP ACK prober (`--method ack:PORT`, as `nmap -PA`): a bare TCP ACK per probe through a
//! raw socket, and tasks that read the resets that answer it and the routers' ICMP errors that
//! quote it (net or host unreachable, administratively prohibited: an unreachable answer, read
//! as every prober reads it, [`super::unreach::answer_of`]). A host answers an ACK that
//! belongs to no connection with a reset whether the port is open or closed (RFC 9293), so any
//! reset means up, and so does the target's own ICMP port unreachable (its firewall rejecting
//! the segment: nmap -PA's `port-unreach`); a stateless firewall that drops SYNs to keep
//! connections out often lets ACKs through (a stateful one drops them). Needs CAP_NET_RAW.
//!
//! The segment is built as the SYN scan builds its SYN ([`crate::scan::syn::packet`]: the
//! checksum over the pseudo-header) and leaves from a source port the SYN scan's way reserves
//! (`crate::scan::syn::socket::reserve`: a bound, never listening TCP socket, so this
//! machine's kernel drops the reset quietly). The acknowledgement number is the target's
//! position: the reset takes it as its sequence number, so an answer names its target; the
//! sequence number is that position mixed (an invertible multiply), and an ICMP error quotes
//! it, so an error names its target too. Both raw sockets read only what can answer
//! ([`crate::sys::bpf`]: resets to our source port; destination unreachable errors).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use super::neighbour;
use super::raw::{self, Heard, Sent};
use super::reply::{Answer, Reply, Tag};
use super::unreach::{answer_of, LocalAddrs};
use crate::error::Error;
use crate::icmp::packet::checksum;
use crate::icmp::Version;
use crate::report::sweep::TcpAnswer;
use crate::scan::syn::packet::{icmpv4_error, icmpv6_error, ipv4_payload, pseudo_header};
use crate::scan::syn::socket::reserve;
use crate::sys::{self, bpf};
use crate::target::{Family, Targets};

/// A bare TCP header.
const LEN: usize = 20;
/// The receive window the ACK offers (nmap's -PA sends 1024).
const WINDOW: u16 = 1024;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;
const TCP: u8 = 6;
const ICMP: u8 = 1;

/// Sends TCP ACKs to one port; background tasks collect the resets.
#[derive(Debug)]
pub struct AckProber {
    port: u16,
    v4: Option<Side>,
    v6: Option<Side>,
    sent: Arc<Sent>,
    sources: crate::scan::syn::socket::Sources,
    replies: UnboundedSender<Reply>,
}

/// The raw sockets of one address family (TCP to send and read resets, ICMP to read errors),
/// its source port and its receivers.
#[derive(Debug)]
struct Side {
    socket: Arc<AsyncFd<Socket>>,
    sport: u16,
    receivers: [JoinHandle<()>; 2],
    _reservation: Socket,
}

impl AckProber {
    /// Opens a raw TCP socket for each address family among `targets` and starts reading
    /// resets from `port` into `replies`; an environment error when refused (it needs
    /// CAP_NET_RAW).
    pub fn open(
        port: u16,
        targets: &Targets,
        replies: UnboundedSender<Reply>,
    ) -> Result<Self, Error> {
        let sent = Arc::new(Sent::default());
        let (want4, want6) = match targets.families() {
            Family::V4 => (true, false),
            Family::V6 => (false, true),
            Family::Any => (true, true),
        };
        let open = |v6: bool| Side::open(v6, port, targets, &sent, &replies);
        let v4 = want4.then(|| open(false)).transpose()?;
        let v6 = want6.then(|| open(true)).transpose()?;
        Ok(AckProber {
            port,
            v4,
            v6,
            sent,
            sources: Default::default(),
            replies,
        })
    }

    /// Sends one ACK to the target at `index`. No route is an unreachable answer; another
    /// refused send leaves the target silent.
    pub async fn send(&mut self, tag: Tag, index: u64, dst: SocketAddr) {
        let addr = dst.ip();
        let side = match addr {
            IpAddr::V4(_) => self.v4.as_ref(),
            IpAddr::V6(_) => self.v6.as_ref(),
        };
        let (Some(side), Ok(index32)) = (side, u32::try_from(index)) else {
            return;
        };
        let src = match self.sources.of(dst) {
            Ok(src) => src,
            Err(err) => return raw::refused(&self.replies, (tag, index, addr), &err),
        };
        let segment = ack(src, side.sport, addr, self.port, index32);
        self.sent.sent(tag, index);
        let to = SockAddr::from(dst);
        let send = || neighbour::send_to(&side.socket, &segment, &to);
        if let Err(err) = sys::retry_enobufs(send).await {
            raw::refused(&self.replies, (tag, index, addr), &err);
        }
    }

    /// Forgets the round's ACKs.
    pub fn end_round(&self) {
        self.sent.clear();
    }
}

impl Side {
    fn open(
        v6: bool,
        port: u16,
        targets: &Targets,
        sent: &Arc<Sent>,
        replies: &UnboundedSender<Reply>,
    ) -> Result<Self, Error> {
        let (domain, icmp) = match v6 {
            false => (Domain::IPV4, Protocol::ICMPV4),
            true => (Domain::IPV6, Protocol::ICMPV6),
        };
        let (reservation, sport) = reserve(domain, v6)
            .map_err(|e| Error::io("reserve a source port for ACK probes", e))?;
        let what = "open a TCP socket for ACK probes";
        let resets = bpf::tcp_to(&[sport], RST, v6);
        let socket = Arc::new(raw::open(domain, Protocol::TCP, &resets, what)?);
        let what = "open an ICMP socket for the errors ACK probes meet";
        let errors = bpf::icmp_of(&[unreachable_type(v6)], v6);
        let icmp = Arc::new(raw::open(domain, icmp, &errors, what)?);
        let expect = Expect { v6, port, sport };
        let round = || (targets.clone(), Arc::clone(sent));
        let mut local = LocalAddrs::default();
        let receivers = [
            tokio::spawn(raw::receive(
                Arc::clone(&socket),
                round(),
                replies.clone(),
                "receive TCP resets",
                move |datagram, from| expect.reset(datagram, from),
            )),
            tokio::spawn(raw::receive(
                icmp,
                round(),
                replies.clone(),
                "receive ICMP errors about ACK probes",
                move |datagram, from| expect.error(datagram, from, &mut local),
            )),
        ];
        Ok(Side {
            socket,
            sport,
            receivers,
            _reservation: reservation,
        })
    }
}

impl Drop for Side {
    fn drop(&mut self) {
        for receiver in &self.receivers {
            receiver.abort();
        }
    }
}

/// Destination unreachable: ICMPv4 type 3, ICMPv6 type 1.
fn unreachable_type(v6: bool) -> u8 {
    if v6 {
        1
    } else {
        3
    }
}

/// Whether an ICMP error is "port unreachable" (ICMPv4 type 3 code 3, ICMPv6 type 1 code 4).
fn is_port_unreachable(version: Version, msg_type: u8, code: u8) -> bool {
    match version {
        Version::V4 => (msg_type, code) == (3, 3),
        Version::V6 => (msg_type, code) == (1, 4),
    }
}

/// The odd multiplier that mixes a target's position into an ACK's sequence number.
const MIX: u32 = 0x9e37_79b9;

/// Its inverse modulo 2^32 (Newton's iteration: each step doubles the correct low bits).
const UNMIX: u32 = {
    let mut inv = MIX;
    let mut i = 0;
    while i < 5 {
        inv = inv.wrapping_mul(2u32.wrapping_sub(MIX.wrapping_mul(inv)));
        i += 1;
    }
    inv
};

/// The sequence number of the ACK to the target at position `ack`: any does, and this one
/// differs from probe to probe, as nmap's; an ICMP error quotes it and [`index_of`] reads the
/// position back.
fn seq_of(ack: u32) -> u32 {
    ack.rotate_left(16).wrapping_mul(MIX)
}

/// The target position an ACK with sequence number `seq` went to.
fn index_of(seq: u32) -> u32 {
    seq.wrapping_mul(UNMIX).rotate_right(16)
}

/// A bare ACK from `src` port `sport` to `dst` port `dport`, acknowledging `ack`.
pub fn ack(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, ack: u32) -> [u8; LEN] {
    let mut seg = [0u8; LEN];
    seg[0..2].copy_from_slice(&sport.to_be_bytes());
    seg[2..4].copy_from_slice(&dport.to_be_bytes());
    seg[4..8].copy_from_slice(&seq_of(ack).to_be_bytes());
    seg[8..12].copy_from_slice(&ack.to_be_bytes());
    seg[12] = ((LEN / 4) as u8) << 4;
    seg[13] = ACK;
    seg[14..16].copy_from_slice(&WINDOW.to_be_bytes());
    let sum = checksum(&[&pseudo_header(src, dst, LEN), &seg]);
    seg[16..18].copy_from_slice(&sum.to_be_bytes());
    seg
}

/// What answers one of our ACKs looks like: a reset from `port` to `sport`, or an ICMP error
/// quoting a segment from `sport` to `port`.
#[derive(Debug, Clone, Copy)]
struct Expect {
    v6: bool,
    port: u16,
    sport: u16,
}

impl Expect {
    /// A reset from the probed port to our source port (`datagram` from `from`, with its IPv4
    /// header for IPv4): it names the target by its sequence number, the acknowledgement
    /// number our ACK carried.
    fn reset(self, datagram: &[u8], from: IpAddr) -> Option<Heard> {
        let (seg, from) = match self.v6 {
            false => ipv4_payload(datagram, TCP)?,
            true => (datagram, from),
        };
        let index = u64::from(self.reset_seq(seg)?);
        Some(Heard {
            index,
            addr: from,
            seq: None,
            answer: None,
        })
    }

    /// The sequence number of `seg` (from its first TCP header byte) when it is a reset from
    /// the probed port to our source port.
    fn reset_seq(self, seg: &[u8]) -> Option<u32> {
        if seg.len() < LEN || seg[13] & RST == 0 {
            return None;
        }
        let sport = u16::from_be_bytes([seg[0], seg[1]]);
        let dport = u16::from_be_bytes([seg[2], seg[3]]);
        let seq = u32::from_be_bytes([seg[4], seg[5], seg[6], seg[7]]);
        (sport == self.port && dport == self.sport).then_some(seq)
    }

    /// An ICMP error (`datagram` from `from`, a router or the target) quoting one of our ACKs.
    fn error(self, datagram: &[u8], from: IpAddr, local: &mut LocalAddrs) -> Option<Heard> {
        let (quoted, from, version) = match self.v6 {
            false => {
                let (msg, from) = ipv4_payload(datagram, ICMP)?;
                (icmpv4_error(msg)?, from, Version::V4)
            }
            true => (icmpv6_error(datagram)?, from, Version::V6),
        };
        if (quoted.sport, quoted.dport) != (self.sport, self.port) {
            return None;
        }
        // The target's own port unreachable: its stack (or its own firewall) refused the
        // segment, so it is up, as nmap -PA says (`port-unreach`) and as tcp:PORT counts a
        // refused connection. A router's says nothing about the target.
        // Its round trip is the receiver's to fill in.
        let own = Answer::Tcp(Duration::ZERO, TcpAnswer::PortUnreach);
        let answer = match is_port_unreachable(version, quoted.kind, quoted.code) {
            true if from == quoted.dst => Some(own),
            _ => Some(answer_of(version, (quoted.kind, quoted.code), from, local)?),
        };
        Some(Heard {
            index: u64::from(index_of(quoted.seq)),
            addr: quoted.dst,
            seq: None,
            answer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::unreach::Unreach;

    #[test]
    fn an_ack_checksums_and_its_reset_names_the_target() {
        for (src, dst) in [("127.0.0.1", "127.0.0.2"), ("::1", "2001:db8::1")] {
            let (src, dst): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
            let seg = ack(src, 40000, dst, 80, 7);
            assert_eq!(checksum(&[&pseudo_header(src, dst, LEN), &seg]), 0);
            assert_eq!(seg[13], ACK);
            assert_eq!(&seg[8..12], &7u32.to_be_bytes());
        }
        let expect = Expect {
            v6: false,
            port: 80,
            sport: 40000,
        };
        let mut rst = [0u8; LEN];
        rst[0..2].copy_from_slice(&80u16.to_be_bytes());
        rst[2..4].copy_from_slice(&40000u16.to_be_bytes());
        rst[4..8].copy_from_slice(&7u32.to_be_bytes());
        rst[13] = RST;
        assert_eq!(expect.reset_seq(&rst), Some(7));
        rst[13] = ACK;
        assert_eq!(expect.reset_seq(&rst), None);
        rst[13] = RST;
        rst[0..2].copy_from_slice(&81u16.to_be_bytes());
        assert_eq!(expect.reset_seq(&rst), None);
    }

    #[test]
    fn an_icmp_error_quoting_an_ack_names_its_target_and_reason() {
        for index in [0u32, 1, 7, 65_535, 1 << 24, u32::MAX] {
            assert_eq!(index_of(seq_of(index)), index);
        }
        let (src, dst): (IpAddr, IpAddr) =
            ("198.18.0.1".parse().unwrap(), "198.18.9.9".parse().unwrap());
        let router: IpAddr = "198.18.0.2".parse().unwrap();
        let expect = Expect {
            v6: false,
            port: 80,
            sport: 40000,
        };
        let error = |code: u8, sport: u16| {
            let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, ICMP, 0, 0];
            ip.extend_from_slice(&[198, 18, 0, 2, 198, 18, 0, 1]);
            ip.extend_from_slice(&[3, code, 0, 0, 0, 0, 0, 0]);
            let mut quoted = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, TCP, 0, 0];
            quoted.extend_from_slice(&[198, 18, 0, 1, 198, 18, 9, 9]);
            ip.extend_from_slice(&quoted);
            ip.extend_from_slice(&ack(src, sport, dst, 80, 42)[..8]);
            ip
        };
        let mut local = LocalAddrs::default();
        let heard = expect.error(&error(0, 40000), router, &mut local).unwrap();
        assert_eq!((heard.index, heard.addr), (42, dst));
        let why = Unreach::Icmp {
            msg_type: 3,
            code: 0,
            from: router,
        };
        assert_eq!(
            heard.answer,
            Some(super::super::reply::Answer::Unreachable(why))
        );
        assert_eq!(
            expect.error(&error(0, 40001), router, &mut local),
            None,
            "not ours"
        );
        assert_eq!(
            expect.error(&error(3, 40000), router, &mut local),
            None,
            "a router's port unreachable"
        );
        let mut from_target = error(3, 40000);
        from_target[12..16].copy_from_slice(&[198, 18, 9, 9]);
        let own = expect.error(&from_target, dst, &mut local).unwrap();
        assert_eq!(
            (own.index, own.addr, own.answer),
            (
                42,
                dst,
                Some(Answer::Tcp(Duration::ZERO, TcpAnswer::PortUnreach))
            ),
            "the target's own: alive, as nmap -PA's port-unreach"
        );
    }
}
