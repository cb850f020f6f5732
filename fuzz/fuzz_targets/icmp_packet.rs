//! Fuzzes the ICMP echo codec with arbitrary bytes as the sockets deliver them: an IPv4
//! datagram (raw IPv4 sockets), a bare ICMPv4 or ICMPv6 message or ICMP error. Nothing may
//! panic, and whatever parses must emit back to the same bytes. (Control messages are decoded
//! by nix from the kernel's `recvmsg` buffer, never from bytes off the wire.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use netkit::icmp::error::IcmpErrorRepr;
use netkit::icmp::packet::{ipv4_payload, Checksum, Packet, Repr, Version};
use netkit::icmp::probe::Probe;

fuzz_target!(|data: &[u8]| {
    let _ = Probe::read(data);
    if let Ok((_ttl, message)) = ipv4_payload(data) {
        round_trip(message, Version::V4, Checksum::V4);
    }
    if let Ok(packet) = Packet::new_checked(data) {
        for version in [Version::V4, Version::V6] {
            if let Ok(error) = IcmpErrorRepr::parse(&packet, version, Checksum::Trusted) {
                let _ = error.describe(version);
            }
        }
    }
    round_trip(data, Version::V4, Checksum::V4);
    round_trip(data, Version::V6, Checksum::Trusted);
    let (src, dst) = ("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap());
    round_trip(data, Version::V6, Checksum::V6 { src, dst });
});

fn round_trip(message: &[u8], version: Version, check: Checksum) {
    let Ok(packet) = Packet::new_checked(message) else {
        return;
    };
    let Ok(repr) = Repr::parse(&packet, version, check) else {
        return;
    };
    let mut out = vec![0u8; repr.buffer_len()];
    let mut emitted = Packet::new_unchecked(&mut out[..]);
    repr.emit(&mut emitted, version);
    if let Checksum::V6 { src, dst } = check {
        emitted.fill_checksum_v6(&src, &dst);
    }
    if check != Checksum::Trusted {
        // Equal up to the checksum's two representations of zero (0x0000 and 0xffff).
        assert_eq!(out[4..], message[4..], "{version:?} round trip");
        assert_eq!(out[..2], message[..2]);
    }
}
