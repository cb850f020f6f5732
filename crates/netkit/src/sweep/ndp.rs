//! The neighbour-discovery prober (`--method ndp`, IPv6's ARP, RFC 4861): a neighbour
//! solicitation per probe, sent to the target's solicited-node multicast address
//! (`ff02::1:ffXX:XXXX`, the low 24 bits of the target) on one link through a raw ICMPv6
//! socket with hop limit 255 (receivers drop solicitations with any other), and a task that
//! reads the neighbour advertisements and hands them to the round with the MAC address they
//! carry (the target link-layer address option). A host that drops ICMPv6 echo still answers
//! neighbour discovery, which IPv6 cannot work without. Needs CAP_NET_RAW.

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::Arc;
use std::time::Duration;

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
use crate::target::takes_zone;

/// ICMPv6 types: neighbour solicitation and advertisement.
const SOLICITATION: u8 = 135;
const ADVERTISEMENT: u8 = 136;
/// Neighbour-discovery options: source and target link-layer address.
const SOURCE_LL: u8 = 1;
const TARGET_LL: u8 = 2;
/// A solicitation with the source link-layer address option.
const NS_LEN: usize = 32;
/// The hop limit neighbour discovery demands.
const HOP_LIMIT: u32 = 255;

/// Sends neighbour solicitations on one link; a background task collects the advertisements.
#[derive(Debug)]
pub struct NdpProber {
    socket: Arc<AsyncFd<Socket>>,
    link: Link,
    pending: Arc<Pending>,
    own: OwnAddrs,
    replies: UnboundedSender<Reply>,
    receiver: JoinHandle<()>,
}

impl NdpProber {
    /// Opens a raw ICMPv6 socket bound to `link` and starts reading advertisements into
    /// `replies`; an environment error when refused (it needs CAP_NET_RAW).
    pub fn open(link: &Link, replies: UnboundedSender<Reply>) -> Result<Self, Error> {
        let what = format!(
            "open a raw ICMPv6 socket (needs CAP_NET_RAW) on {}",
            link.name
        );
        let socket = open_socket(link)
            .and_then(neighbour::register)
            .map_err(|e| Error::io(what, e))?;
        let socket = Arc::new(socket);
        let pending = Arc::new(Pending::default());
        let own = OwnAddrs::new(link.own.clone(), link.mac, replies.clone());
        let receiver = tokio::spawn(receive(
            Arc::clone(&socket),
            Arc::clone(&pending),
            replies.clone(),
        ));
        Ok(NdpProber {
            socket,
            link: link.clone(),
            pending,
            own,
            replies,
            receiver,
        })
    }

    /// Whether a probe to `dst` (a target's address in its zone) goes out: an IPv6 address
    /// on the link, a link-local one only in the link's zone (or in none); the others are left
    /// to the sweep's other methods. `fe80::1%eth1` is not `fe80::1` on eth0's link.
    pub fn takes(&self, dst: SocketAddr) -> bool {
        let SocketAddr::V6(dst) = dst else {
            return false;
        };
        let zone = dst.scope_id();
        let in_zone = zone == 0 || zone == self.link.index || !takes_zone(*dst.ip());
        in_zone && self.link.holds(IpAddr::V6(*dst.ip()))
    }

    /// Sends one neighbour solicitation for the target at `index`, `dst` (one of the link's
    /// own addresses is answered at once instead); none to a target it does not take
    /// ([`NdpProber::takes`]). A link that is down is an unreachable answer ([`raw::refused`]);
    /// another refused send leaves the target silent.
    pub async fn send(&self, tag: Tag, index: u64, dst: SocketAddr) {
        let addr = dst.ip();
        let IpAddr::V6(target) = addr else {
            return;
        };
        if !self.takes(dst) || self.own.answered(tag, index, addr) {
            return;
        }
        let packet = solicitation(target, self.link.mac);
        let to = SockAddr::from(SocketAddrV6::new(
            solicited_node(target),
            0,
            0,
            self.link.index,
        ));
        self.pending.sent(tag, index, addr);
        let send = || neighbour::send_to(&self.socket, &packet, &to);
        if let Err(err) = sys::retry_enobufs(send).await {
            raw::refused(&self.replies, (tag, index, addr), &err);
        }
    }

    /// Forgets the round's solicitations.
    pub fn end_round(&self) {
        self.pending.clear();
    }
}

impl Drop for NdpProber {
    fn drop(&mut self) {
        self.receiver.abort();
    }
}

/// A raw ICMPv6 socket that sends and receives on `link` only, hop limit 255. The kernel
/// fills in the checksum (always on for ICMPv6 raw sockets).
fn open_socket(link: &Link) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    socket.bind_device(Some(link.name.as_bytes()))?;
    socket.set_multicast_if_v6(link.index)?;
    socket.set_multicast_hops_v6(HOP_LIMIT)?;
    socket.set_unicast_hops_v6(HOP_LIMIT)?;
    Ok(socket)
}

/// The solicited-node multicast address of `target`: `ff02::1:ff00:0` and its low 24 bits.
fn solicited_node(target: Ipv6Addr) -> Ipv6Addr {
    let low = u128::from(target) & 0xff_ffff;
    Ipv6Addr::from(0xff02_0000_0000_0000_0000_0001_ff00_0000 | low)
}

/// A neighbour solicitation for `target` from `mac` (checksum left to the kernel).
fn solicitation(target: Ipv6Addr, mac: Mac) -> [u8; NS_LEN] {
    let mut packet = [0u8; NS_LEN];
    packet[0] = SOLICITATION;
    packet[8..24].copy_from_slice(&target.octets());
    packet[24..26].copy_from_slice(&[SOURCE_LL, 1]);
    packet[26..32].copy_from_slice(&mac.0);
    packet
}

/// The target address and link-layer address of the neighbour advertisement in `packet`
/// (an ICMPv6 message); none for anything else, or one without a link-layer address.
fn parse_advertisement(packet: &[u8]) -> Option<(Ipv6Addr, Mac)> {
    if packet.len() < 24 || packet[0] != ADVERTISEMENT || packet[1] != 0 {
        return None;
    }
    let target: [u8; 16] = packet[8..24].try_into().ok()?;
    let mut options = &packet[24..];
    while let [kind, len, ..] = *options {
        let size = usize::from(len) * 8;
        if size == 0 || options.len() < size {
            return None;
        }
        if kind == TARGET_LL {
            return Some((Ipv6Addr::from(target), Mac::from_slice(&options[2..size])?));
        }
        options = &options[size..];
    }
    None
}

/// Forwards every advertisement about an address solicited in this round.
async fn receive(
    socket: Arc<AsyncFd<Socket>>,
    pending: Arc<Pending>,
    replies: UnboundedSender<Reply>,
) {
    let mut buf = [0u8; 1500];
    loop {
        let len = match neighbour::recv(&socket, &mut buf).await {
            Ok(len) => len,
            Err(err) => {
                tracing::debug!("receive ICMPv6: {err}");
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        let at = Instant::now();
        let Some((target, mac)) = parse_advertisement(&buf[..len]) else {
            continue;
        };
        let Some(reply) = pending.answered(IpAddr::V6(target), mac, at) else {
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
    fn the_solicited_node_address_keeps_the_low_24_bits() {
        let target: Ipv6Addr = "2001:db8::1:2345:6789".parse().unwrap();
        assert_eq!(
            solicited_node(target),
            "ff02::1:ff45:6789".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn a_solicitation_carries_the_target_and_our_mac() {
        let target: Ipv6Addr = "2001:db8::5".parse().unwrap();
        let packet = solicitation(target, Mac([2, 0, 0, 0, 0, 1]));
        assert_eq!(packet[..8], [135, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(packet[8..24], target.octets());
        assert_eq!(packet[24..], [1, 1, 2, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn advertisements_give_their_target_and_link_layer_address() {
        let target: Ipv6Addr = "2001:db8::5".parse().unwrap();
        let mut packet = vec![136, 0, 0, 0, 0x60, 0, 0, 0];
        packet.extend_from_slice(&target.octets());
        // A nonce-like unknown option first, then the target link-layer address.
        packet.extend_from_slice(&[14, 1, 9, 9, 9, 9, 9, 9]);
        packet.extend_from_slice(&[2, 1, 2, 0, 0, 0, 0, 5]);
        let want = Some((target, Mac([2, 0, 0, 0, 0, 5])));
        assert_eq!(parse_advertisement(&packet), want);
        assert_eq!(parse_advertisement(&packet[..32]), None);
        let zero_length = [&packet[..24], &[2, 0, 0, 0, 0, 0, 0, 0]].concat();
        assert_eq!(parse_advertisement(&zero_length), None);
        packet[0] = 135;
        assert_eq!(parse_advertisement(&packet), None);
    }
}
