//! PROXY protocol headers (HAProxy's v1 text and v2 binary forms) that tell the target who the
//! client is. Clients without an IP address (Unix sockets) get the `UNKNOWN`/`LOCAL` form.
//! UDP sessions get the v2 form with the `DGRAM` transport ([`dgram_header`]), prepended to
//! every datagram: v1 has no UDP form.

use std::net::{IpAddr, SocketAddr};

use super::ProxyProtocol;

/// The v2 signature that opens every binary header.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The header for a client at `source` that connected to `destination`.
pub fn header(
    version: ProxyProtocol,
    source: Option<SocketAddr>,
    destination: Option<SocketAddr>,
) -> Vec<u8> {
    let pair = source.zip(destination).and_then(same_family);
    match version {
        ProxyProtocol::V1 => v1(pair),
        ProxyProtocol::V2 => v2(pair, STREAM),
    }
}

/// The v2 header for a datagram from `source` to `destination` (transport `DGRAM`: family
/// byte `0x12` for IPv4, `0x22` for IPv6).
pub fn dgram_header(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    v2(same_family((source, destination)), DGRAM)
}

/// The v2 transport nibbles: a TCP connection, a UDP datagram.
const STREAM: u8 = 0x1;
const DGRAM: u8 = 0x2;

/// Both addresses in one family (v4-mapped IPv6 counts as IPv4), or nothing.
fn same_family((src, dst): (SocketAddr, SocketAddr)) -> Option<(SocketAddr, SocketAddr)> {
    let canon = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let (src, dst) = (canon(src), canon(dst));
    (src.is_ipv4() == dst.is_ipv4()).then_some((src, dst))
}

fn v1(pair: Option<(SocketAddr, SocketAddr)>) -> Vec<u8> {
    let Some((src, dst)) = pair else {
        return b"PROXY UNKNOWN\r\n".to_vec();
    };
    let family = if src.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {family} {} {} {} {}\r\n",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    )
    .into_bytes()
}

fn v2(pair: Option<(SocketAddr, SocketAddr)>, transport: u8) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    let Some((src, dst)) = pair else {
        out.extend_from_slice(&[0x20, 0x00, 0, 0]);
        return out;
    };
    let (family, addrs) = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (0x10, [s.octets().to_vec(), d.octets().to_vec()]),
        (s, d) => (0x20, [v6_octets(s), v6_octets(d)]),
    };
    let len = (addrs[0].len() * 2 + 4) as u16;
    out.extend_from_slice(&[0x21, family | transport]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&addrs.concat());
    out.extend_from_slice(&src.port().to_be_bytes());
    out.extend_from_slice(&dst.port().to_be_bytes());
    out
}

fn v6_octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V6(v6) => v6.octets().to_vec(),
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> Option<SocketAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn v1_headers() {
        let h = header(
            ProxyProtocol::V1,
            addr("127.0.0.1:5000"),
            addr("127.0.0.2:80"),
        );
        assert_eq!(h, b"PROXY TCP4 127.0.0.1 127.0.0.2 5000 80\r\n");
        let h = header(ProxyProtocol::V1, addr("[::1]:5000"), addr("[::1]:80"));
        assert_eq!(h, b"PROXY TCP6 ::1 ::1 5000 80\r\n");
        let h = header(
            ProxyProtocol::V1,
            addr("[::ffff:1.2.3.4]:5"),
            addr("1.2.3.5:6"),
        );
        assert_eq!(h, b"PROXY TCP4 1.2.3.4 1.2.3.5 5 6\r\n");
        assert_eq!(header(ProxyProtocol::V1, None, None), b"PROXY UNKNOWN\r\n");
    }

    #[test]
    fn v2_headers() {
        let h = header(
            ProxyProtocol::V2,
            addr("127.0.0.1:5000"),
            addr("127.0.0.2:80"),
        );
        let mut want = V2_SIGNATURE.to_vec();
        want.extend_from_slice(&[0x21, 0x11, 0, 12, 127, 0, 0, 1, 127, 0, 0, 2]);
        want.extend_from_slice(&[0x13, 0x88, 0, 80]);
        assert_eq!(h, want);
        let h = header(ProxyProtocol::V2, addr("[::1]:1"), addr("[::1]:2"));
        assert_eq!(h.len(), 16 + 36);
        assert_eq!(&h[12..16], &[0x21, 0x21, 0, 36]);
        assert_eq!(header(ProxyProtocol::V2, None, None)[12..], [0x20, 0, 0, 0]);
    }

    #[test]
    fn v2_datagram_headers() {
        let h = dgram_header(
            "127.0.0.1:5000".parse().unwrap(),
            "127.0.0.2:53".parse().unwrap(),
        );
        let mut want = V2_SIGNATURE.to_vec();
        want.extend_from_slice(&[0x21, 0x12, 0, 12, 127, 0, 0, 1, 127, 0, 0, 2]);
        want.extend_from_slice(&[0x13, 0x88, 0, 53]);
        assert_eq!(h, want);
        let h = dgram_header("[::1]:1".parse().unwrap(), "[::2]:2".parse().unwrap());
        assert_eq!(&h[12..16], &[0x21, 0x22, 0, 36]);
        let mapped = dgram_header(
            "[::ffff:10.0.0.1]:7".parse().unwrap(),
            "127.0.0.1:8".parse().unwrap(),
        );
        assert_eq!(&mapped[12..20], &[0x21, 0x12, 0, 12, 10, 0, 0, 1]);
    }
}
