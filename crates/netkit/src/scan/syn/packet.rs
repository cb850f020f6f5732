//! The bytes of a SYN scan, without I/O: the TCP SYN a probe sends (checksummed over the IPv4
//! or IPv6 pseudo-header), and the parts of what comes back that matter: a TCP segment's ports,
//! acknowledgement and flags, and the TCP header an ICMP error quotes.

use std::net::IpAddr;

use crate::icmp::packet::checksum;

/// The length of the SYN: a bare 20-byte TCP header, no options (54 bytes on Ethernet, as
/// zmap's SYN; nmap adds an MSS option, 58 bytes). On a slow link the scan is bound by bytes on
/// the wire; a peer that gets no MSS option assumes 536 (RFC 9293), which a probe never uses.
pub const SYN_LEN: usize = 20;
/// The receive window the SYN offers (nmap's -sS sends 1024).
const WINDOW: u16 = 1024;
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
/// The ACK flag (set on SYN-ACKs and on the resets that answer a SYN).
pub const ACK: u8 = 0x10;
const TCP: u8 = 6;
/// The ICMPv4 messages that can quote a segment: destination unreachable, time exceeded.
const ERRORS_V4: [u8; 2] = [3, 11];
/// The ICMPv6 ones: destination unreachable, time exceeded.
const ERRORS_V6: [u8; 2] = [1, 3];

/// The ICMP (`v6`: ICMPv6) types [`icmpv4_error`] and [`icmpv6_error`] read.
pub fn error_types(v6: bool) -> &'static [u8] {
    match v6 {
        false => &ERRORS_V4,
        true => &ERRORS_V6,
    }
}

/// A SYN from `src` port `sport` to `dst` port `dport` with sequence number `seq`.
pub fn syn(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, seq: u32) -> [u8; SYN_LEN] {
    let mut seg = [0u8; SYN_LEN];
    seg[0..2].copy_from_slice(&sport.to_be_bytes());
    seg[2..4].copy_from_slice(&dport.to_be_bytes());
    seg[4..8].copy_from_slice(&seq.to_be_bytes());
    seg[12] = ((SYN_LEN / 4) as u8) << 4;
    seg[13] = SYN;
    seg[14..16].copy_from_slice(&WINDOW.to_be_bytes());
    let sum = checksum(&[&pseudo_header(src, dst, SYN_LEN), &seg]);
    seg[16..18].copy_from_slice(&sum.to_be_bytes());
    seg
}

/// The pseudo-header the TCP checksum covers (RFC 793, RFC 8200 section 8.1).
pub(crate) fn pseudo_header(src: IpAddr, dst: IpAddr, len: usize) -> Vec<u8> {
    let mut pseudo = Vec::with_capacity(40);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&[0, TCP]);
            pseudo.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            pseudo.extend_from_slice(&octets(src));
            pseudo.extend_from_slice(&octets(dst));
            pseudo.extend_from_slice(&(len as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, TCP]);
        }
    }
    pseudo
}

fn octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// What a TCP segment says, as far as a SYN scan cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// The sender's port (the probed port).
    pub sport: u16,
    /// The receiver's port (the scan's source port).
    pub dport: u16,
    /// The acknowledgement number.
    pub ack: u32,
    /// What the segment answers: open (SYN-ACK) or closed (RST).
    pub kind: Kind,
}

/// The answers a SYN can get over TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SYN and ACK: a listener accepted.
    SynAck,
    /// A reset: nothing listens.
    Reset,
}

/// Reads the TCP segment `seg` (from its first header byte); `None` when it is no answer to
/// a SYN (too short, or neither SYN-ACK nor RST, or a FIN).
pub fn segment(seg: &[u8]) -> Option<Segment> {
    let flags = *seg.get(13)?;
    if seg.len() < 20 || flags & ACK == 0 || flags & FIN != 0 {
        return None;
    }
    let kind = match (flags & SYN != 0, flags & RST != 0) {
        (true, false) => Kind::SynAck,
        (false, true) => Kind::Reset,
        _ => return None,
    };
    Some(Segment {
        sport: be16(seg, 0),
        dport: be16(seg, 2),
        ack: be32(seg, 8),
        kind,
    })
}

/// Skips the IPv4 header of a datagram a raw IPv4 socket delivers; the payload and the
/// source address, when the datagram carries `protocol`.
pub fn ipv4_payload(datagram: &[u8], protocol: u8) -> Option<(&[u8], IpAddr)> {
    let ihl = usize::from(datagram.first()? & 0x0f) * 4;
    if datagram.len() < ihl || ihl < 20 || datagram[9] != protocol {
        return None;
    }
    let src = <[u8; 4]>::try_from(&datagram[12..16]).ok()?;
    Some((&datagram[ihl..], IpAddr::from(src)))
}

/// The TTL in the header of IPv4 datagram `datagram`.
pub fn ipv4_ttl(datagram: &[u8]) -> Option<u8> {
    datagram.get(8).copied()
}

/// The TCP probe an ICMP error quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    /// The ICMP type.
    pub kind: u8,
    /// The ICMP code.
    pub code: u8,
    /// The probe's destination.
    pub dst: IpAddr,
    /// The probe's source port.
    pub sport: u16,
    /// The probe's destination port.
    pub dport: u16,
    /// The probe's sequence number.
    pub seq: u32,
}

/// Reads an ICMPv4 message (from its type byte) that quotes a TCP segment.
pub fn icmpv4_error(msg: &[u8]) -> Option<Quoted> {
    let (kind, code) = (*msg.first()?, *msg.get(1)?);
    if !ERRORS_V4.contains(&kind) {
        return None;
    }
    let inner = msg.get(8..)?;
    let ihl = usize::from(inner.first()? & 0x0f) * 4;
    if ihl < 20 || *inner.get(9)? != TCP {
        return None;
    }
    let dst = <[u8; 4]>::try_from(inner.get(16..20)?).ok()?;
    quoted(kind, code, IpAddr::from(dst), inner.get(ihl..)?)
}

/// Reads an ICMPv6 message (from its type byte) that quotes a TCP segment.
pub fn icmpv6_error(msg: &[u8]) -> Option<Quoted> {
    let (kind, code) = (*msg.first()?, *msg.get(1)?);
    if !ERRORS_V6.contains(&kind) {
        return None;
    }
    let inner = msg.get(8..)?;
    if *inner.get(6)? != TCP {
        return None;
    }
    let dst = <[u8; 16]>::try_from(inner.get(24..40)?).ok()?;
    quoted(kind, code, IpAddr::from(dst), inner.get(40..)?)
}

fn quoted(kind: u8, code: u8, dst: IpAddr, tcp: &[u8]) -> Option<Quoted> {
    if tcp.len() < 8 {
        return None;
    }
    Some(Quoted {
        kind,
        code,
        dst,
        sport: be16(tcp, 0),
        dport: be16(tcp, 2),
        seq: be32(tcp, 4),
    })
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_syn_checksums_to_zero_with_its_pseudo_header() {
        for (src, dst) in [("127.0.0.1", "127.0.0.2"), ("::1", "2001:db8::1")] {
            let (src, dst): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
            let seg = syn(src, 40000, dst, 443, 0xdead_beef);
            assert_eq!(checksum(&[&pseudo_header(src, dst, SYN_LEN), &seg]), 0);
            assert_eq!(be16(&seg, 2), 443);
            assert_eq!(be32(&seg, 4), 0xdead_beef);
            assert_eq!(seg[13], SYN);
        }
    }

    #[test]
    fn answers_are_read_and_others_ignored() {
        let mut seg = [0u8; 20];
        seg[0..2].copy_from_slice(&80u16.to_be_bytes());
        seg[2..4].copy_from_slice(&40000u16.to_be_bytes());
        seg[8..12].copy_from_slice(&7u32.to_be_bytes());
        seg[13] = SYN | ACK;
        let read = segment(&seg).unwrap();
        assert_eq!((read.sport, read.dport, read.ack), (80, 40000, 7));
        assert_eq!(read.kind, Kind::SynAck);
        seg[13] = RST | ACK;
        assert_eq!(segment(&seg).unwrap().kind, Kind::Reset);
        seg[13] = ACK;
        assert_eq!(segment(&seg), None);
        seg[13] = SYN;
        assert_eq!(segment(&seg), None);
    }

    #[test]
    fn an_icmp_error_quotes_the_probe() {
        let dst: IpAddr = "198.18.1.1".parse().unwrap();
        let mut msg = vec![3, 3, 0, 0, 0, 0, 0, 0];
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[9] = TCP;
        ip[16..20].copy_from_slice(&[198, 18, 1, 1]);
        msg.extend_from_slice(&ip);
        msg.extend_from_slice(&syn("198.18.0.1".parse().unwrap(), 40000, dst, 22, 99)[..8]);
        let quoted = icmpv4_error(&msg).unwrap();
        assert_eq!((quoted.kind, quoted.code, quoted.dst), (3, 3, dst));
        assert_eq!((quoted.sport, quoted.dport, quoted.seq), (40000, 22, 99));
        msg[0] = 0;
        assert_eq!(icmpv4_error(&msg), None);
    }
}
