//! Sans-IO parsing of ICMP error messages (destination unreachable, time exceeded) that quote
//! one of our echo requests: which kind of error, who it was about, and the quoted request's
//! identifier, sequence number and (when the router quoted enough) data. Raw sockets receive
//! these; they are what iputils prints as `From ROUTER icmp_seq=N Time to live exceeded`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::packet::{self, Checksum, Packet, Version, WireError};

/// An ICMP error about an echo request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpErrorRepr<'a> {
    /// ICMP type (3 or 11 for ICMPv4, 1 or 3 for ICMPv6).
    pub msg_type: u8,
    /// ICMP code.
    pub code: u8,
    /// Where the quoted request was going.
    pub target: IpAddr,
    /// Identifier of the quoted request.
    pub ident: u16,
    /// Sequence number of the quoted request.
    pub seq_no: u16,
    /// The error's own datum: the next-hop MTU of "fragmentation needed" and "packet too big",
    /// the pointer of "parameter problem", else 0.
    pub info: u32,
    /// As much of the request's data as was quoted (may be empty).
    pub data: &'a [u8],
}

impl<'a> IcmpErrorRepr<'a> {
    /// Parses an error message of `version` that quotes an echo request; anything else is
    /// [`WireError::NotEcho`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&'a T>,
        version: Version,
        check: Checksum,
    ) -> Result<IcmpErrorRepr<'a>, WireError> {
        packet.check_len()?;
        let message: &'a [u8] = packet_bytes(packet);
        check.verify(packet)?;
        let (msg_type, code) = (packet.msg_type(), packet.msg_code());
        if !is_error_type(version, msg_type, code) {
            return Err(WireError::NotEcho);
        }
        let info = info(version, msg_type, code, &message[4..packet::HEADER_LEN]);
        let quoted = &message[packet::HEADER_LEN..];
        let (target, request) = match version {
            Version::V4 => quoted_v4(quoted)?,
            Version::V6 => quoted_v6(quoted)?,
        };
        let request = Packet::new_checked(request)?;
        let echo_request = match version {
            Version::V4 => 8,
            Version::V6 => 128,
        };
        if request.msg_type() != echo_request || request.msg_code() != 0 {
            return Err(WireError::NotEcho);
        }
        Ok(IcmpErrorRepr {
            msg_type,
            code,
            target,
            ident: request.echo_ident(),
            seq_no: request.echo_seq_no(),
            info,
            data: &request.into_inner()[packet::HEADER_LEN..],
        })
    }

    /// The error in iputils' words, e.g. `Destination Host Unreachable`.
    pub fn describe(&self, version: Version) -> String {
        describe(version, self.msg_type, self.code, self.info)
    }
}

/// An ICMP error in iputils' words (its `pr_icmph` and `print_icmp`).
pub fn describe(version: Version, msg_type: u8, code: u8, info: u32) -> String {
    match (version, msg_type, code) {
        (Version::V4, 3, 4) => format!("Frag needed and DF set (mtu = {info})"),
        (Version::V4, 3, code) => unreachable_v4(code),
        (Version::V4, 11, 0) => "Time to live exceeded".to_string(),
        (Version::V4, 11, 1) => "Frag reassembly time exceeded".to_string(),
        (Version::V4, 11, code) => format!("Time exceeded, Bad Code: {code}"),
        (Version::V4, 12, _) => format!("Parameter problem: pointer = {info}"),
        (Version::V4, 4, _) => "Source Quench".to_string(),
        (Version::V4, 5, code) => {
            format!("{}(New nexthop: {})", redirect(code), Ipv4Addr::from(info))
        }
        (Version::V6, 1, code) => format!("Destination unreachable: {}", unreachable_v6(code)),
        (Version::V6, 2, 0) => format!("Packet too big: mtu={info}"),
        (Version::V6, 2, code) => format!("Packet too big: mtu={info}, code={code}"),
        (Version::V6, 3, 0) => "Time exceeded: Hop limit".to_string(),
        (Version::V6, 3, 1) => "Time exceeded: Defragmentation failure".to_string(),
        (Version::V6, 3, code) => format!("Time exceeded: code {code}"),
        (Version::V6, 4, code) => format!("Parameter problem: {}at {info}", parameter_v6(code)),
        (_, kind, code) => format!("ICMP type {kind} code {code}"),
    }
}

/// The datum in bytes 4..8 of an error message, as the kernel passes it to iputils.
fn info(version: Version, msg_type: u8, code: u8, rest: &[u8]) -> u32 {
    let word = |r: &[u8]| u32::from_be_bytes([r[0], r[1], r[2], r[3]]);
    match (version, msg_type, code) {
        (Version::V4, 3, 4) => u32::from(u16::from_be_bytes([rest[2], rest[3]])),
        (Version::V4, 12, _) => u32::from(rest[0]),
        (Version::V4, 5, _) => word(rest),
        (Version::V6, 2 | 4, _) => word(rest),
        _ => 0,
    }
}

fn packet_bytes<'a, T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> &'a [u8] {
    T::as_ref(packet.clone().into_inner())
}

/// Whether an ICMP message of `msg_type` quoting a request is a notice rather than an error:
/// IPv4's redirect and source quench, which iputils prints (`From GATEWAY: icmp_seq=N
/// Redirect Host(New nexthop: ADDR)`) but neither counts nor takes for an answer.
pub fn is_notice(version: Version, msg_type: u8) -> bool {
    version == Version::V4 && matches!(msg_type, 4 | 5)
}

/// Messages that quote the request: the errors iputils counts (unreachable, time exceeded,
/// parameter problem, IPv6's packet too big) and the notices it prints ([`is_notice`]). Not
/// IPv4's time exceeded in fragment reassembly (code 1): the Linux kernel drops it before any
/// socket's error queue, so iputils never counts one (IPv6's it does).
fn is_error_type(version: Version, msg_type: u8, code: u8) -> bool {
    match version {
        Version::V4 => matches!((msg_type, code), (3 | 4 | 5 | 12, _) | (11, 0)),
        Version::V6 => matches!(msg_type, 1..=4),
    }
}

/// The destination and the ICMP part of a quoted IPv4 datagram (cut short, usually).
fn quoted_v4(quoted: &[u8]) -> Result<(IpAddr, &[u8]), WireError> {
    let first = *quoted.first().ok_or(WireError::Truncated)?;
    let header_len = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || header_len < 20 {
        return Err(WireError::BadIpHeader);
    }
    let header = quoted.get(..header_len).ok_or(WireError::Truncated)?;
    if header[9] != 1 {
        return Err(WireError::NotEcho);
    }
    let dst = Ipv4Addr::new(header[16], header[17], header[18], header[19]);
    Ok((IpAddr::V4(dst), &quoted[header_len..]))
}

/// The destination and the ICMPv6 part of a quoted IPv6 packet, past its extension headers
/// (a request sent in fragments is quoted with a Fragment header; only the first fragment
/// holds the ICMPv6 header).
fn quoted_v6(quoted: &[u8]) -> Result<(IpAddr, &[u8]), WireError> {
    const HEADER: usize = 40;
    let header = quoted.get(..HEADER).ok_or(WireError::Truncated)?;
    if header[0] >> 4 != 6 {
        return Err(WireError::BadIpHeader);
    }
    let dst: [u8; 16] = header[24..40]
        .try_into()
        .map_err(|_| WireError::Truncated)?;
    let icmp = past_extensions(header[6], &quoted[HEADER..])?;
    Ok((IpAddr::V6(Ipv6Addr::from(dst)), icmp))
}

/// The ICMPv6 message after the extension headers that start `rest`, `next` naming the first
/// (hop-by-hop options, routing, fragment, destination options); anything else is not ours.
fn past_extensions(mut next: u8, mut rest: &[u8]) -> Result<&[u8], WireError> {
    const FRAGMENT: u8 = 44;
    // At most one of each kind (destination options twice), as RFC 8200 orders them.
    for _ in 0..5 {
        let len = match next {
            58 => return Ok(rest),
            0 | 43 | 60 => (usize::from(*rest.get(1).ok_or(WireError::Truncated)?) + 1) * 8,
            FRAGMENT => {
                let offset = rest.get(2..4).ok_or(WireError::Truncated)?;
                if u16::from_be_bytes([offset[0], offset[1]]) >> 3 != 0 {
                    return Err(WireError::NotEcho);
                }
                8
            }
            _ => return Err(WireError::NotEcho),
        };
        next = *rest.first().ok_or(WireError::Truncated)?;
        rest = rest.get(len..).ok_or(WireError::Truncated)?;
    }
    Err(WireError::NotEcho)
}

/// A redirect's kind in iputils' words.
fn redirect(code: u8) -> String {
    match code {
        0 => "Redirect Network".to_string(),
        1 => "Redirect Host".to_string(),
        2 => "Redirect Type of Service and Network".to_string(),
        3 => "Redirect Type of Service and Host".to_string(),
        code => format!("Redirect, Bad Code: {code}"),
    }
}

fn unreachable_v4(code: u8) -> String {
    match code {
        0 => "Destination Net Unreachable",
        1 => "Destination Host Unreachable",
        2 => "Destination Protocol Unreachable",
        3 => "Destination Port Unreachable",
        5 => "Source Route Failed",
        6 => "Destination Net Unknown",
        7 => "Destination Host Unknown",
        8 => "Source Host Isolated",
        9 => "Destination Net Prohibited",
        10 => "Destination Host Prohibited",
        11 => "Destination Net Unreachable for Type of Service",
        12 => "Destination Host Unreachable for Type of Service",
        13 => "Packet filtered",
        14 => "Precedence Violation",
        15 => "Precedence Cutoff",
        _ => return format!("Dest Unreachable, Bad Code: {code}"),
    }
    .to_string()
}

fn unreachable_v6(code: u8) -> String {
    match code {
        0 => "No route",
        1 => "Administratively prohibited",
        2 => "Beyond scope of source address",
        3 => "Address unreachable",
        4 => "Port unreachable",
        _ => return format!("Unknown code {code}"),
    }
    .to_string()
}

fn parameter_v6(code: u8) -> String {
    match code {
        0 => "Wrong header field ",
        1 => "Unknown header ",
        2 => "Unknown option ",
        _ => return format!("code {code} "),
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::icmp::packet::Repr;

    /// An echo request to `dst` behind an IPv4 header, as a router quotes it.
    fn quoted_request_v4(data: &[u8]) -> Vec<u8> {
        let mut quoted = vec![
            0x45, 0, 0, 84, 0, 0, 0x40, 0, 1, 1, 0, 0, 198, 18, 0, 1, 198, 18, 1, 2,
        ];
        let repr = Repr::EchoRequest {
            ident: 0x4242,
            seq_no: 7,
            data,
        };
        let mut request = vec![0; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut request[..]), Version::V4);
        quoted.extend(request);
        quoted
    }

    fn error_v4(kind: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
        let mut message = vec![kind, code, 0, 0, 0, 0, 0, 0];
        message.extend_from_slice(quoted);
        Packet::new_unchecked(&mut message[..]).fill_checksum_v4();
        message
    }

    #[test]
    fn time_exceeded_names_the_quoted_request() {
        let message = error_v4(11, 0, &quoted_request_v4(b"0123456789abcdefXY"));
        let packet = Packet::new_checked(&message[..]).unwrap();
        let repr = IcmpErrorRepr::parse(&packet, Version::V4, Checksum::V4).unwrap();
        assert_eq!(repr.target, "198.18.1.2".parse::<IpAddr>().unwrap());
        assert_eq!((repr.ident, repr.seq_no), (0x4242, 7));
        assert_eq!(repr.data, b"0123456789abcdefXY");
        assert_eq!(repr.describe(Version::V4), "Time to live exceeded");
    }

    #[test]
    fn a_quote_of_only_the_echo_header_has_no_data() {
        let quoted = quoted_request_v4(b"");
        let message = error_v4(3, 1, &quoted);
        let packet = Packet::new_checked(&message[..]).unwrap();
        let repr = IcmpErrorRepr::parse(&packet, Version::V4, Checksum::V4).unwrap();
        assert_eq!(repr.data, b"");
        assert_eq!(repr.describe(Version::V4), "Destination Host Unreachable");
    }

    #[test]
    fn rejects_truncated_foreign_and_corrupted_errors() {
        let quoted = quoted_request_v4(b"abcd");
        for cut in [0, 10, 20, 27] {
            let message = error_v4(11, 0, &quoted[..cut]);
            let packet = Packet::new_checked(&message[..]).unwrap();
            let parsed = IcmpErrorRepr::parse(&packet, Version::V4, Checksum::V4);
            assert_eq!(parsed.unwrap_err(), WireError::Truncated, "cut {cut}");
        }
        let mut udp = quoted.clone();
        udp[9] = 17;
        let message = error_v4(3, 3, &udp);
        let packet = Packet::new_checked(&message[..]).unwrap();
        let parsed = IcmpErrorRepr::parse(&packet, Version::V4, Checksum::V4);
        assert_eq!(parsed, Err(WireError::NotEcho));
        let mut corrupted = error_v4(11, 0, &quoted);
        corrupted[30] ^= 1;
        let packet = Packet::new_checked(&corrupted[..]).unwrap();
        let parsed = IcmpErrorRepr::parse(&packet, Version::V4, Checksum::V4);
        assert_eq!(parsed, Err(WireError::Checksum));
        let reply = [0u8, 0, 0xff, 0xff, 0, 0, 0, 0];
        let packet = Packet::new_checked(&reply[..]).unwrap();
        let parsed = IcmpErrorRepr::parse(&packet, Version::V4, Checksum::V4);
        assert_eq!(parsed, Err(WireError::NotEcho));
    }

    #[test]
    fn fragmentation_needed_carries_the_mtu() {
        let mut message = error_v4(3, 4, &quoted_request_v4(b""));
        message[6..8].copy_from_slice(&1280u16.to_be_bytes());
        Packet::new_unchecked(&mut message[..]).fill_checksum_v4();
        let packet = Packet::new_checked(&message[..]).unwrap();
        let repr = IcmpErrorRepr::parse(&packet, Version::V4, Checksum::V4).unwrap();
        assert_eq!(repr.info, 1280);
        assert_eq!(
            repr.describe(Version::V4),
            "Frag needed and DF set (mtu = 1280)"
        );
        assert_eq!(
            describe(Version::V6, 2, 0, 1400),
            "Packet too big: mtu=1400"
        );
        assert_eq!(
            describe(Version::V6, 4, 0, 40),
            "Parameter problem: Wrong header field at 40"
        );
        assert_eq!(describe(Version::V4, 3, 9, 0), "Destination Net Prohibited");
        assert_eq!(
            describe(Version::V6, 1, 6, 0),
            "Destination unreachable: Unknown code 6"
        );
    }

    #[test]
    fn v6_hop_limit_exceeded() {
        let mut quoted = vec![0x60, 0, 0, 0, 0, 16, 58, 1];
        quoted.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        quoted.extend_from_slice(&"2001:db8:1::2".parse::<Ipv6Addr>().unwrap().octets());
        quoted.extend_from_slice(&[128, 0, 0, 0, 0x42, 0x42, 0, 9, 1, 2, 3, 4]);
        let mut message = vec![3, 0, 0, 0, 0, 0, 0, 0];
        message.extend(quoted);
        let packet = Packet::new_checked(&message[..]).unwrap();
        let repr = IcmpErrorRepr::parse(&packet, Version::V6, Checksum::Trusted).unwrap();
        assert_eq!(repr.target, "2001:db8:1::2".parse::<IpAddr>().unwrap());
        assert_eq!(
            (repr.ident, repr.seq_no, repr.data),
            (0x4242, 9, &[1, 2, 3, 4][..])
        );
        assert_eq!(repr.describe(Version::V6), "Time exceeded: Hop limit");
    }

    /// An ICMPv6 error quoting `extensions` (next header `first`) and an echo request.
    fn error_v6(first: u8, extensions: &[u8]) -> Vec<u8> {
        let mut quoted = vec![0x60, 0, 0, 0, 0, 0, first, 64];
        quoted.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        quoted.extend_from_slice(&"2001:db8:1::2".parse::<Ipv6Addr>().unwrap().octets());
        quoted.extend_from_slice(extensions);
        quoted.extend_from_slice(&[128, 0, 0, 0, 0x42, 0x42, 0, 1, 9, 9]);
        let mut message = vec![2, 0, 0, 0, 0, 0, 5, 0];
        message.extend(quoted);
        message
    }

    #[test]
    fn v6_errors_about_a_first_fragment_name_the_request() {
        // A Fragment header, offset 0, more fragments: the first fragment.
        let fragment = [58, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef];
        let message = error_v6(44, &fragment);
        let packet = Packet::new_checked(&message[..]).unwrap();
        let repr = IcmpErrorRepr::parse(&packet, Version::V6, Checksum::Trusted).unwrap();
        assert_eq!((repr.ident, repr.seq_no, repr.info), (0x4242, 1, 1280));
        assert_eq!(repr.describe(Version::V6), "Packet too big: mtu=1280");
        // Destination options (8 bytes) before it.
        let options = [44, 0, 1, 4, 0, 0, 0, 0];
        let both = [&options[..], &fragment[..]].concat();
        let message = error_v6(60, &both);
        let packet = Packet::new_checked(&message[..]).unwrap();
        let repr = IcmpErrorRepr::parse(&packet, Version::V6, Checksum::Trusted).unwrap();
        assert_eq!(repr.seq_no, 1);
        // A later fragment holds no ICMPv6 header; UDP is not ours; a cut header is short.
        let later = [58, 0, 0x05, 0xa9, 0xde, 0xad, 0xbe, 0xef];
        let message = error_v6(44, &later);
        let packet = Packet::new_checked(&message[..]).unwrap();
        let parsed = IcmpErrorRepr::parse(&packet, Version::V6, Checksum::Trusted);
        assert_eq!(parsed, Err(WireError::NotEcho));
        let message = error_v6(17, &[]);
        let packet = Packet::new_checked(&message[..]).unwrap();
        let parsed = IcmpErrorRepr::parse(&packet, Version::V6, Checksum::Trusted);
        assert_eq!(parsed, Err(WireError::NotEcho));
        let message = error_v6(44, &fragment);
        let packet = Packet::new_checked(&message[..8 + 40 + 3]).unwrap();
        let parsed = IcmpErrorRepr::parse(&packet, Version::V6, Checksum::Trusted);
        assert_eq!(parsed, Err(WireError::Truncated));
    }

    #[test]
    fn redirects_and_source_quench_are_notices_in_iputils_words() {
        let mut message = error_v4(5, 1, &quoted_request_v4(b""));
        message[4..8].copy_from_slice(&[198, 18, 0, 2]);
        Packet::new_unchecked(&mut message[..]).fill_checksum_v4();
        let packet = Packet::new_checked(&message[..]).unwrap();
        let repr = IcmpErrorRepr::parse(&packet, Version::V4, Checksum::V4).unwrap();
        assert_eq!(
            repr.describe(Version::V4),
            "Redirect Host(New nexthop: 198.18.0.2)"
        );
        assert!(is_notice(Version::V4, 5) && is_notice(Version::V4, 4));
        assert!(!is_notice(Version::V4, 3) && !is_notice(Version::V6, 4));
        assert_eq!(describe(Version::V4, 4, 0, 0), "Source Quench");
        assert_eq!(
            describe(Version::V4, 5, 0, 0xc612_0001),
            "Redirect Network(New nexthop: 198.18.0.1)"
        );
    }
}
