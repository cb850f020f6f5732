//! The TCP ACK prober (`--method ack:PORT`, as `nmap -PA`): a bare TCP ACK per probe through a
//! raw socket, and a task that reads the resets that answer it. A host answers an ACK that
//! belongs to no connection with a reset whether the port is open or closed (RFC 9293), so any
//! reset means up; a stateless firewall that drops SYNs to keep connections out often lets
//! ACKs through (a stateful one drops them). Needs CAP_NET_RAW.
//!
//! The segment is built as the SYN scan builds its SYN ([`crate::scan::syn::packet`]: the
//! checksum over the pseudo-header) and leaves from a source port the SYN scan's way reserves
//! (`crate::scan::syn::socket::reserve`: a bound, never listening TCP socket, so this
//! machine's kernel drops the reset quietly). The acknowledgement number is the target's
//! position: the reset takes it as its sequence number, so an answer names its target.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use socket2::{Domain, Protocol, SockAddr, Socket};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use super::neighbour;
use super::raw::{self, Sent};
use super::reply::{Answer, Reply, Tag};
use crate::error::Error;
use crate::icmp::packet::checksum;
use crate::scan::syn::packet::{ipv4_payload, pseudo_header};
use crate::scan::syn::socket::reserve;
use crate::sys;
use crate::target::{Family, Targets};

/// A bare TCP header.
const LEN: usize = 20;
/// The receive window the ACK offers (nmap's -PA sends 1024).
const WINDOW: u16 = 1024;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;
const TCP: u8 = 6;

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

/// The raw socket of one address family, its source port and its receiver.
#[derive(Debug)]
struct Side {
    socket: Arc<AsyncFd<Socket>>,
    sport: u16,
    receiver: JoinHandle<()>,
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
        let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
        let what = "open a TCP socket for ACK probes";
        let socket = Arc::new(raw::open(domain, Protocol::TCP, what)?);
        let (reservation, sport) = reserve(domain, v6)
            .map_err(|e| Error::io("reserve a source port for ACK probes", e))?;
        let expect = Expect { v6, port, sport };
        let receiver = tokio::spawn(receive(
            Arc::clone(&socket),
            expect,
            targets.clone(),
            Arc::clone(sent),
            replies.clone(),
        ));
        Ok(Side {
            socket,
            sport,
            receiver,
            _reservation: reservation,
        })
    }
}

impl Drop for Side {
    fn drop(&mut self) {
        self.receiver.abort();
    }
}

/// A bare ACK from `src` port `sport` to `dst` port `dport`, acknowledging `ack`.
pub fn ack(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, ack: u32) -> [u8; LEN] {
    let mut seg = [0u8; LEN];
    seg[0..2].copy_from_slice(&sport.to_be_bytes());
    seg[2..4].copy_from_slice(&dport.to_be_bytes());
    // Any sequence number does; this one differs from probe to probe, as nmap's.
    seg[4..8].copy_from_slice(&ack.rotate_left(16).wrapping_mul(0x9e37_79b9).to_be_bytes());
    seg[8..12].copy_from_slice(&ack.to_be_bytes());
    seg[12] = ((LEN / 4) as u8) << 4;
    seg[13] = ACK;
    seg[14..16].copy_from_slice(&WINDOW.to_be_bytes());
    let sum = checksum(&[&pseudo_header(src, dst, LEN), &seg]);
    seg[16..18].copy_from_slice(&sum.to_be_bytes());
    seg
}

/// What a reset to one of our ACKs looks like: from `port`, to `sport`.
#[derive(Debug, Clone, Copy)]
struct Expect {
    v6: bool,
    port: u16,
    sport: u16,
}

impl Expect {
    /// The sequence number of `seg` (from its first TCP header byte) when it is a reset from
    /// the probed port to our source port: the acknowledgement number our ACK carried.
    fn reset(self, seg: &[u8]) -> Option<u32> {
        if seg.len() < LEN || seg[13] & RST == 0 {
            return None;
        }
        let sport = u16::from_be_bytes([seg[0], seg[1]]);
        let dport = u16::from_be_bytes([seg[2], seg[3]]);
        let seq = u32::from_be_bytes([seg[4], seg[5], seg[6], seg[7]]);
        (sport == self.port && dport == self.sport).then_some(seq)
    }
}

/// Forwards every reset that answers an ACK of this round.
async fn receive(
    socket: Arc<AsyncFd<Socket>>,
    expect: Expect,
    targets: Targets,
    sent: Arc<Sent>,
    replies: UnboundedSender<Reply>,
) {
    let mut buf = vec![0u8; 2048];
    loop {
        let (len, from) = match raw::recv_from(&socket, &mut buf).await {
            Ok(read) => read,
            Err(err) => {
                tracing::debug!("receive TCP resets: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                continue;
            }
        };
        let (seg, from) = match expect.v6 {
            false => match ipv4_payload(&buf[..len], TCP) {
                Some(read) => read,
                None => continue,
            },
            true => (&buf[..len], from),
        };
        let Some(index) = expect.reset(seg).map(u64::from) else {
            continue;
        };
        if targets.get(u128::from(index)).map(|t| t.addr) != Some(from) {
            continue;
        }
        let Some((tag, rtt)) = sent.answered(index) else {
            continue;
        };
        let reply = Reply {
            tag,
            index,
            addr: from,
            answer: Answer::Alive(rtt),
        };
        if replies.send(reply).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(expect.reset(&rst), Some(7));
        rst[13] = ACK;
        assert_eq!(expect.reset(&rst), None);
        rst[13] = RST;
        rst[0..2].copy_from_slice(&81u16.to_be_bytes());
        assert_eq!(expect.reset(&rst), None);
    }
}
