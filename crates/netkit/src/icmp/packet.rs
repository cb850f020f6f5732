//! Sans-IO codec for ICMPv4 and ICMPv6 echo messages, in smoltcp's shape: a [`Packet`] view over
//! any byte buffer with checked field accessors (offsets in `mod field`), a high-level [`Repr`]
//! with `parse`/`emit`/`buffer_len`, the Internet checksum (with the ICMPv6 pseudo-header), and
//! [`ipv4_payload`] for the IPv4 header that raw IPv4 sockets deliver in front of the message.
//! Nothing here touches a socket; every function is tested against byte fixtures.

use std::net::Ipv6Addr;

/// Which ICMP: the echo types and the checksum rules differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// ICMP for IPv4 (RFC 792): echo request 8, reply 0, checksum over the message.
    V4,
    /// ICMPv6 (RFC 4443): echo request 128, reply 129, checksum over a pseudo-header too.
    V6,
}

impl Version {
    /// The version that carries `addr`.
    pub fn of(addr: &std::net::IpAddr) -> Version {
        if addr.is_ipv4() {
            Version::V4
        } else {
            Version::V6
        }
    }

    fn request_type(self) -> u8 {
        match self {
            Version::V4 => 8,
            Version::V6 => 128,
        }
    }

    fn reply_type(self) -> u8 {
        match self {
            Version::V4 => 0,
            Version::V6 => 129,
        }
    }
}

/// Why a buffer is not an echo message we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than an ICMP echo header (8 bytes) or than its IPv4 header says.
    Truncated,
    /// The checksum does not match the contents.
    Checksum,
    /// A well-formed ICMP message that is not an echo request or reply.
    NotEcho,
    /// An IPv4 header that is malformed or does not carry ICMP.
    BadIpHeader,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WireError::Truncated => "truncated ICMP message",
            WireError::Checksum => "bad ICMP checksum",
            WireError::NotEcho => "not an ICMP echo message",
            WireError::BadIpHeader => "malformed IPv4 header",
        })
    }
}

impl std::error::Error for WireError {}

mod field {
    use std::ops::{Range, RangeFrom};

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const SEQ_NO: Range<usize> = 6..8;
    pub const DATA: RangeFrom<usize> = 8..;
    pub const HEADER_LEN: usize = 8;
}

/// Length of the echo header: type, code, checksum, identifier, sequence number.
pub const HEADER_LEN: usize = field::HEADER_LEN;

/// A view of an ICMP echo message in a byte buffer.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking its length; accessors may panic on short buffers.
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after checking that it holds at least the echo header.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Fails with [`WireError::Truncated`] when the buffer is shorter than the header.
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < field::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Message type (8/0 echo request/reply for ICMPv4, 128/129 for ICMPv6).
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Message code (0 for echo).
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The checksum field as sent.
    pub fn checksum(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// Echo identifier.
    pub fn echo_ident(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::IDENT])
    }

    /// Echo sequence number.
    pub fn echo_seq_no(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::SEQ_NO])
    }

    /// The echo data after the header.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA]
    }

    /// Whether the ICMPv4 checksum (over the whole message) is valid.
    pub fn verify_checksum_v4(&self) -> bool {
        checksum(&[self.buffer.as_ref()]) == 0
    }

    /// Whether the ICMPv6 checksum (pseudo-header of `src` and `dst`, then the message) is
    /// valid.
    pub fn verify_checksum_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        let message = self.buffer.as_ref();
        let pseudo = pseudo_header_v6(src, dst, message.len());
        checksum(&[&pseudo, message]) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the message type.
    pub fn set_msg_type(&mut self, value: u8) {
        self.buffer.as_mut()[field::TYPE] = value;
    }

    /// Sets the message code.
    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the echo identifier.
    pub fn set_echo_ident(&mut self, value: u16) {
        self.buffer.as_mut()[field::IDENT].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the echo sequence number.
    pub fn set_echo_seq_no(&mut self, value: u16) {
        self.buffer.as_mut()[field::SEQ_NO].copy_from_slice(&value.to_be_bytes());
    }

    /// The echo data, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }

    /// Computes and stores the ICMPv4 checksum.
    pub fn fill_checksum_v4(&mut self) {
        self.set_checksum(0);
        let sum = checksum(&[self.buffer.as_ref()]);
        self.set_checksum(sum);
    }

    /// Computes and stores the ICMPv6 checksum for a message from `src` to `dst`.
    pub fn fill_checksum_v6(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let message = self.buffer.as_ref();
        let pseudo = pseudo_header_v6(src, dst, message.len());
        let sum = checksum(&[&pseudo, message]);
        self.set_checksum(sum);
    }
}

/// How [`Repr::parse`] treats the checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// Verify the ICMPv4 checksum.
    V4,
    /// Verify the ICMPv6 checksum with this pseudo-header (source, destination).
    V6 {
        /// Source address of the message.
        src: Ipv6Addr,
        /// Destination address of the message.
        dst: Ipv6Addr,
    },
    /// The kernel has verified it already (datagram sockets, raw ICMPv6 sockets).
    Trusted,
}

impl Checksum {
    /// Checks `packet`'s checksum as this variant says, or [`WireError::Checksum`].
    pub fn verify<T: AsRef<[u8]> + ?Sized>(self, packet: &Packet<&T>) -> Result<(), WireError> {
        let valid = match self {
            Checksum::V4 => packet.verify_checksum_v4(),
            Checksum::V6 { src, dst } => packet.verify_checksum_v6(&src, &dst),
            Checksum::Trusted => true,
        };
        if valid {
            Ok(())
        } else {
            Err(WireError::Checksum)
        }
    }
}

/// An echo request or reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr<'a> {
    /// Echo request.
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data carried and returned.
        data: &'a [u8],
    },
    /// Echo reply.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data returned.
        data: &'a [u8],
    },
}

impl<'a> Repr<'a> {
    /// Parses an echo message of `version`, checking its length, code and checksum.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&'a T>,
        version: Version,
        check: Checksum,
    ) -> Result<Repr<'a>, WireError> {
        packet.check_len()?;
        check.verify(packet)?;
        let (ident, seq_no) = (packet.echo_ident(), packet.echo_seq_no());
        let data = &packet.buffer.as_ref()[field::DATA];
        match (packet.msg_type(), packet.msg_code()) {
            (t, 0) if t == version.request_type() => Ok(Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }),
            (t, 0) if t == version.reply_type() => Ok(Repr::EchoReply {
                ident,
                seq_no,
                data,
            }),
            _ => Err(WireError::NotEcho),
        }
    }

    /// Bytes needed to emit this message.
    pub fn buffer_len(&self) -> usize {
        field::HEADER_LEN + self.data().len()
    }

    /// The echo data.
    pub fn data(&self) -> &'a [u8] {
        match *self {
            Repr::EchoRequest { data, .. } | Repr::EchoReply { data, .. } => data,
        }
    }

    /// Writes the message into `packet` (at least [`Repr::buffer_len`] bytes). The checksum
    /// is filled for ICMPv4 and left zero for ICMPv6, whose pseudo-header needs the
    /// addresses: call [`Packet::fill_checksum_v6`] or let the kernel do it.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>, version: Version) {
        let (kind, ident, seq_no, data) = match *self {
            Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => (version.request_type(), ident, seq_no, data),
            Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => (version.reply_type(), ident, seq_no, data),
        };
        packet.set_msg_type(kind);
        packet.set_msg_code(0);
        packet.set_echo_ident(ident);
        packet.set_echo_seq_no(seq_no);
        packet.data_mut()[..data.len()].copy_from_slice(data);
        match version {
            Version::V4 => packet.fill_checksum_v4(),
            Version::V6 => packet.set_checksum(0),
        }
    }
}

/// The ICMP message inside an IPv4 datagram as a raw IPv4 socket delivers it, with the
/// datagram's TTL. Checks version, header length, protocol (1) and total length.
pub fn ipv4_payload(datagram: &[u8]) -> Result<(u8, &[u8]), WireError> {
    const TTL: usize = 8;
    const PROTOCOL: usize = 9;
    let first = *datagram.first().ok_or(WireError::Truncated)?;
    let header_len = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || header_len < 20 {
        return Err(WireError::BadIpHeader);
    }
    if datagram.len() < header_len {
        return Err(WireError::Truncated);
    }
    if datagram[PROTOCOL] != 1 {
        return Err(WireError::BadIpHeader);
    }
    let total = usize::from(be16(&datagram[2..4]));
    if total < header_len {
        return Err(WireError::BadIpHeader);
    }
    // Linux reports the total length as sent; a datagram cut short by the receive buffer
    // is truncated, and anything beyond the total length is link padding.
    let end = total.min(datagram.len());
    if end < total {
        return Err(WireError::Truncated);
    }
    Ok((datagram[TTL], &datagram[header_len..end]))
}

fn be16(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[0], bytes[1]])
}

fn pseudo_header_v6(src: &Ipv6Addr, dst: &Ipv6Addr, len: usize) -> [u8; 40] {
    let mut pseudo = [0u8; 40];
    pseudo[..16].copy_from_slice(&src.octets());
    pseudo[16..32].copy_from_slice(&dst.octets());
    pseudo[32..36].copy_from_slice(&(len as u32).to_be_bytes());
    pseudo[39] = 58; // next header: ICMPv6
    pseudo
}

/// The Internet checksum (RFC 1071) of the concatenated `parts`; each part but the last must
/// have an even length.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    for part in parts {
        let mut chunks = part.chunks_exact(2);
        for pair in &mut chunks {
            sum += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
        }
        if let [last] = chunks.remainder() {
            sum += u64::from(u16::from_be_bytes([*last, 0]));
        }
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
#[path = "packet_tests.rs"]
mod tests;
