//! Byte fixtures for the echo codec. Checksums were computed independently (Python, RFC 1071).

use super::*;

/// ICMPv4 echo request, ident 0x1234, seq 0xabcd, data aa 00 00 ff.
const V4_REQUEST: [u8; 12] = [
    0x08, 0x00, 0x8e, 0xfe, 0x12, 0x34, 0xab, 0xcd, 0xaa, 0x00, 0x00, 0xff,
];

/// ICMPv4 echo reply, ident 0x1234, seq 1, data "abc" (odd length).
const V4_REPLY: [u8; 11] = [
    0x00, 0x00, 0x29, 0x68, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c',
];

/// ICMPv6 echo request 2001:db8::1 -> 2001:db8::2, ident 0xbeef, seq 7, data "ping".
const V6_REQUEST: [u8; 12] = [
    0x80, 0x00, 0x86, 0x7c, 0xbe, 0xef, 0x00, 0x07, b'p', b'i', b'n', b'g',
];

/// An IPv4 header (TTL 61, protocol 1, total length 31) in front of `V4_REPLY`.
fn ipv4_datagram() -> Vec<u8> {
    let mut datagram = vec![
        0x45, 0x00, 0x00, 31, 0x00, 0x00, 0x40, 0x00, 61, 1, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
    ];
    datagram.extend_from_slice(&V4_REPLY);
    datagram
}

fn v6_addrs() -> (Ipv6Addr, Ipv6Addr) {
    (
        "2001:db8::1".parse().unwrap(),
        "2001:db8::2".parse().unwrap(),
    )
}

#[test]
fn deconstructs_a_v4_request() {
    let packet = Packet::new_checked(&V4_REQUEST[..]).unwrap();
    assert_eq!(packet.msg_type(), 8);
    assert_eq!(packet.msg_code(), 0);
    assert_eq!(packet.checksum(), 0x8efe);
    assert_eq!(packet.echo_ident(), 0x1234);
    assert_eq!(packet.echo_seq_no(), 0xabcd);
    assert_eq!(packet.data(), &[0xaa, 0x00, 0x00, 0xff]);
    assert!(packet.verify_checksum_v4());
}

#[test]
fn parses_requests_and_replies() {
    let request = Repr::parse(
        &Packet::new_checked(&V4_REQUEST[..]).unwrap(),
        Version::V4,
        Checksum::V4,
    );
    assert_eq!(
        request,
        Ok(Repr::EchoRequest {
            ident: 0x1234,
            seq_no: 0xabcd,
            data: &[0xaa, 0, 0, 0xff]
        })
    );
    let reply = Repr::parse(
        &Packet::new_checked(&V4_REPLY[..]).unwrap(),
        Version::V4,
        Checksum::V4,
    );
    assert_eq!(
        reply,
        Ok(Repr::EchoReply {
            ident: 0x1234,
            seq_no: 1,
            data: b"abc"
        })
    );
}

#[test]
fn emits_the_fixture_bytes() {
    let repr = Repr::EchoRequest {
        ident: 0x1234,
        seq_no: 0xabcd,
        data: &[0xaa, 0x00, 0x00, 0xff],
    };
    let mut bytes = vec![0xa5; repr.buffer_len()];
    repr.emit(&mut Packet::new_unchecked(&mut bytes), Version::V4);
    assert_eq!(bytes, V4_REQUEST);

    let odd = Repr::EchoReply {
        ident: 0x1234,
        seq_no: 1,
        data: b"abc",
    };
    let mut bytes = vec![0; odd.buffer_len()];
    odd.emit(&mut Packet::new_unchecked(&mut bytes), Version::V4);
    assert_eq!(bytes, V4_REPLY);
}

#[test]
fn v6_checksum_covers_the_pseudo_header() {
    let (src, dst) = v6_addrs();
    let repr = Repr::EchoRequest {
        ident: 0xbeef,
        seq_no: 7,
        data: b"ping",
    };
    let mut bytes = vec![0; repr.buffer_len()];
    let mut packet = Packet::new_unchecked(&mut bytes);
    repr.emit(&mut packet, Version::V6);
    assert_eq!(packet.checksum(), 0, "left for the kernel");
    packet.fill_checksum_v6(&src, &dst);
    assert_eq!(bytes, V6_REQUEST);

    let packet = Packet::new_checked(&V6_REQUEST[..]).unwrap();
    assert!(packet.verify_checksum_v6(&src, &dst));
    assert!(!packet.verify_checksum_v6(&dst, &"2001:db8::3".parse().unwrap()));
    let parsed = Repr::parse(&packet, Version::V6, Checksum::V6 { src, dst });
    assert_eq!(parsed, Ok(repr));
}

#[test]
fn rejects_truncated_messages() {
    for len in 0..HEADER_LEN {
        assert_eq!(
            Packet::new_checked(&V4_REQUEST[..len]).unwrap_err(),
            WireError::Truncated,
            "length {len}"
        );
    }
}

#[test]
fn rejects_a_bad_checksum() {
    let mut bytes = V4_REPLY;
    bytes[10] ^= 0x01;
    let packet = Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!(
        Repr::parse(&packet, Version::V4, Checksum::V4),
        Err(WireError::Checksum)
    );
    let (src, dst) = v6_addrs();
    let mut bytes = V6_REQUEST;
    bytes[4] ^= 0x80;
    let packet = Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!(
        Repr::parse(&packet, Version::V6, Checksum::V6 { src, dst }),
        Err(WireError::Checksum)
    );
}

#[test]
fn rejects_other_types_and_the_other_version() {
    // Destination unreachable (3/1) with a valid checksum.
    let mut bytes = [3, 1, 0, 0, 0, 0, 0, 0];
    Packet::new_unchecked(&mut bytes[..]).fill_checksum_v4();
    let packet = Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!(
        Repr::parse(&packet, Version::V4, Checksum::V4),
        Err(WireError::NotEcho)
    );
    // An ICMPv4 request is not an ICMPv6 message.
    let packet = Packet::new_checked(&V4_REQUEST[..]).unwrap();
    assert_eq!(
        Repr::parse(&packet, Version::V6, Checksum::Trusted),
        Err(WireError::NotEcho)
    );
}

#[test]
fn strips_the_ipv4_header() {
    let datagram = ipv4_datagram();
    assert_eq!(ipv4_payload(&datagram), Ok((61, &V4_REPLY[..])));
    let mut padded = datagram.clone();
    padded.extend_from_slice(&[0, 0, 0]);
    assert_eq!(ipv4_payload(&padded), Ok((61, &V4_REPLY[..])));
}

#[test]
fn rejects_bad_ipv4_headers() {
    let datagram = ipv4_datagram();
    assert_eq!(ipv4_payload(&[]), Err(WireError::Truncated));
    assert_eq!(ipv4_payload(&datagram[..19]), Err(WireError::Truncated));
    assert_eq!(ipv4_payload(&datagram[..25]), Err(WireError::Truncated));
    let mut udp = datagram.clone();
    udp[9] = 17;
    assert_eq!(ipv4_payload(&udp), Err(WireError::BadIpHeader));
    let mut v6 = datagram.clone();
    v6[0] = 0x65;
    assert_eq!(ipv4_payload(&v6), Err(WireError::BadIpHeader));
    let mut short_ihl = datagram;
    short_ihl[0] = 0x44;
    assert_eq!(ipv4_payload(&short_ihl), Err(WireError::BadIpHeader));
}

#[test]
fn checksum_of_a_known_sum() {
    // RFC 1071 section 3 example: 0001 f203 f4f5 f6f7 sums to ddf2 (complement 220d).
    assert_eq!(
        checksum(&[&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]]),
        0x220d
    );
}
