//! The ARP prober (`--method arp`, as arp-scan): an ARP request per probe, broadcast on the
//! link through a packet socket (`AF_PACKET`, datagram: the kernel writes the Ethernet
//! header), and a task that reads the ARP replies addressed to this host and hands them to
//! the round with the MAC address that answered. A host that drops every IP packet still
//! answers ARP, so this finds hosts that drop ICMP. Needs CAP_NET_RAW.
//!
//! The packet (RFC 826, Ethernet and IPv4): hardware type 1, protocol 0x0800, lengths 6 and
//! 4, operation (1 request, 2 reply), sender MAC and IPv4 address, target MAC and address.

use std::mem;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use nix::libc;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::neighbour::{self, Mac, Pending};
use super::onlink::Link;
use super::own::OwnAddrs;
use super::raw;
use super::reply::{Reply, Tag};
use crate::error::Error;
use crate::sys;

/// The length of an ARP packet for Ethernet and IPv4.
const ARP_LEN: usize = 28;
/// ARP requests and replies.
const OP_REQUEST: u16 = 1;
const OP_REPLY: u16 = 2;
/// The Ethernet broadcast address.
const BROADCAST: [u8; 6] = [0xff; 6];

/// Sends ARP requests on one link; a background task collects the replies.
#[derive(Debug)]
pub struct ArpProber {
    socket: Arc<AsyncFd<Socket>>,
    link: Link,
    broadcast: SockAddr,
    pending: Arc<Pending>,
    own: OwnAddrs,
    replies: UnboundedSender<Reply>,
    receiver: JoinHandle<()>,
}

impl ArpProber {
    /// Opens a packet socket on `link` and starts reading replies into `replies`; an
    /// environment error when refused (it needs CAP_NET_RAW).
    pub fn open(link: &Link, replies: UnboundedSender<Reply>) -> Result<Self, Error> {
        let what = format!(
            "open an ARP socket (AF_PACKET, needs CAP_NET_RAW) on {}",
            link.name
        );
        let socket = open_socket(link.index)
            .and_then(neighbour::register)
            .map_err(|e| Error::io(what, e))?;
        let socket = Arc::new(socket);
        let pending = Arc::new(Pending::default());
        let own = OwnAddrs::new(link.own.clone(), link.mac, replies.clone());
        let me = link.v4.iter().map(|net| net.addr()).collect();
        let receiver = tokio::spawn(receive(
            Arc::clone(&socket),
            me,
            Arc::clone(&pending),
            replies.clone(),
        ));
        Ok(ArpProber {
            socket,
            link: link.clone(),
            broadcast: link_addr(link.index, BROADCAST),
            pending,
            own,
            replies,
            receiver,
        })
    }

    /// Whether a probe to `addr` goes out: an IPv4 address on the link (the others are left
    /// to the sweep's other methods).
    pub fn takes(&self, addr: IpAddr) -> bool {
        addr.is_ipv4() && self.link.holds(addr)
    }

    /// Broadcasts one ARP request for the target at `index`, from the link's address in the
    /// target's prefix ([`Link::sender`]; one of the link's own addresses is answered at once
    /// instead). A link that is down is an unreachable answer, as a send without a route is
    /// for the echo method; another refused send (a queue that stayed full) leaves the target
    /// silent.
    pub async fn send(&self, tag: Tag, index: u64, addr: IpAddr) {
        let IpAddr::V4(target) = addr else {
            return;
        };
        if self.own.answered(tag, index, addr) || !self.link.holds(addr) {
            return;
        }
        let request = Request {
            mac: self.link.mac,
            ip: self.link.sender(target),
        };
        let packet = request.to(target);
        self.pending.sent(tag, index, addr);
        let send = || neighbour::send_to(&self.socket, &packet, &self.broadcast);
        if let Err(err) = sys::retry_enobufs(send).await {
            raw::refused(&self.replies, (tag, index, addr), &err);
        }
    }

    /// Forgets the round's requests.
    pub fn end_round(&self) {
        self.pending.clear();
    }
}

impl Drop for ArpProber {
    fn drop(&mut self) {
        self.receiver.abort();
    }
}

/// A packet socket for ARP on the interface `index`.
fn open_socket(index: u32) -> std::io::Result<Socket> {
    let protocol = Protocol::from(i32::from((libc::ETH_P_ARP as u16).to_be()));
    let socket = Socket::new(Domain::PACKET, Type::DGRAM, Some(protocol))?;
    socket.bind(&link_addr(index, [0; 6]))?;
    Ok(socket)
}

/// The packet socket address of the interface `index` and the MAC address `dest`.
fn link_addr(index: u32, dest: [u8; 6]) -> SockAddr {
    // SAFETY: a zeroed sockaddr_storage is a valid (empty) address of any family; the
    // sockaddr_ll written into it fits (it is smaller) and `len` says how much is used.
    unsafe {
        let mut storage: libc::sockaddr_storage = mem::zeroed();
        let ll = &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_ll>();
        ll.sll_family = libc::AF_PACKET as u16;
        ll.sll_protocol = (libc::ETH_P_ARP as u16).to_be();
        ll.sll_ifindex = i32::try_from(index).unwrap_or(0);
        ll.sll_halen = 6;
        ll.sll_addr[..6].copy_from_slice(&dest);
        let len = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        SockAddr::new(storage, len)
    }
}

/// Who asks: the interface's MAC and IPv4 address.
#[derive(Debug, Clone, Copy)]
struct Request {
    mac: Mac,
    ip: Ipv4Addr,
}

impl Request {
    /// The ARP request for `target`.
    fn to(self, target: Ipv4Addr) -> [u8; ARP_LEN] {
        let mut packet = [0u8; ARP_LEN];
        packet[..8].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, OP_REQUEST as u8]);
        packet[8..14].copy_from_slice(&self.mac.0);
        packet[14..18].copy_from_slice(&self.ip.octets());
        packet[24..28].copy_from_slice(&target.octets());
        packet
    }
}

/// An ARP reply: who answered (its IPv4 address and MAC) and to whom (the target address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ArpReply {
    sender: Ipv4Addr,
    mac: Mac,
    to: Ipv4Addr,
}

/// The ARP reply in `packet`, if it is one for Ethernet and IPv4.
fn parse_reply(packet: &[u8]) -> Option<ArpReply> {
    let header = packet.get(..8)?;
    let op = u16::from_be_bytes([header[6], header[7]]);
    if header[..6] != [0, 1, 8, 0, 6, 4] || op != OP_REPLY || packet.len() < ARP_LEN {
        return None;
    }
    let ip = |at: usize| Ipv4Addr::new(packet[at], packet[at + 1], packet[at + 2], packet[at + 3]);
    Some(ArpReply {
        sender: ip(14),
        mac: Mac::from_slice(&packet[8..14])?,
        to: ip(24),
    })
}

/// Forwards every ARP reply addressed to one of `me` (the link's IPv4 addresses; 0.0.0.0
/// when it has none) about an address probed in this round.
async fn receive(
    socket: Arc<AsyncFd<Socket>>,
    mut me: Vec<Ipv4Addr>,
    pending: Arc<Pending>,
    replies: UnboundedSender<Reply>,
) {
    if me.is_empty() {
        me.push(Ipv4Addr::UNSPECIFIED);
    }
    let mut buf = [0u8; 1500];
    loop {
        let len = match neighbour::recv(&socket, &mut buf).await {
            Ok(len) => len,
            Err(err) => {
                tracing::debug!("receive ARP: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                continue;
            }
        };
        let at = Instant::now();
        let Some(reply) = parse_reply(&buf[..len]).filter(|r| me.contains(&r.to)) else {
            continue;
        };
        let Some(reply) = pending.answered(IpAddr::V4(reply.sender), reply.mac, at) else {
            continue;
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
    fn a_request_reads_as_tcpdump_shows_it() {
        let request = Request {
            mac: Mac([2, 0, 0, 0, 0, 1]),
            ip: Ipv4Addr::new(198, 18, 0, 1),
        };
        let packet = request.to(Ipv4Addr::new(198, 18, 0, 5));
        let want: [u8; ARP_LEN] = [
            0, 1, 8, 0, 6, 4, 0, 1, // Ethernet, IPv4, request
            2, 0, 0, 0, 0, 1, 198, 18, 0, 1, // sender
            0, 0, 0, 0, 0, 0, 198, 18, 0, 5, // target
        ];
        assert_eq!(packet, want);
        // A request is no reply.
        assert_eq!(parse_reply(&packet), None);
    }

    #[test]
    fn replies_parse_and_other_packets_do_not() {
        let reply: [u8; ARP_LEN] = [
            0, 1, 8, 0, 6, 4, 0, 2, // reply
            2, 0, 0, 0, 0, 5, 198, 18, 0, 5, // sender
            2, 0, 0, 0, 0, 1, 198, 18, 0, 1, // target
        ];
        let want = ArpReply {
            sender: Ipv4Addr::new(198, 18, 0, 5),
            mac: Mac([2, 0, 0, 0, 0, 5]),
            to: Ipv4Addr::new(198, 18, 0, 1),
        };
        assert_eq!(parse_reply(&reply), Some(want));
        assert_eq!(parse_reply(&reply[..20]), None);
        let mut token_ring = reply;
        token_ring[1] = 6;
        assert_eq!(parse_reply(&token_ring), None);
    }
}
