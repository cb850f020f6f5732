//! IPv4-mapped IPv6 targets (`::ffff:198.18.0.0/120`) swept as the IPv4 addresses they map, as
//! `netkit ping` pings such an address (cmd/ping/hosts.rs): a mapped address never goes on the
//! wire (RFC 4291 §2.5.5.2; RFC 4942 §2.2), so an ICMPv6 request to one fails without an IPv6
//! route and leaves through the default route where there is one. They are reported as the
//! IPv4 addresses probed: every record, line and document then names the address that
//! answered, and a block is no list of names. fping sends ICMPv6 to a mapped address and
//! calls it unreachable (`-g` refuses a mapped block); nmap refuses it without `-6` and finds
//! no route to it with.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netkit::target::{AddrRange, TargetExpr};
use netkit::{ParseError, TargetList};

/// The first and last address of the IPv4-mapped block `::ffff:0:0/96`.
const MAPPED: (u128, u128) = (0xffff_0000_0000, 0xffff_ffff_ffff);

/// `list` with its IPv4-mapped addresses and blocks as the IPv4 ones they map; a range only
/// partly mapped is bad input (half of it could go on the wire as IPv6, half as IPv4).
pub fn as_ipv4(list: TargetList) -> Result<TargetList, ParseError> {
    list.map_exprs(unmapped)
}

fn unmapped(expr: TargetExpr) -> Result<TargetExpr, ParseError> {
    Ok(match expr {
        TargetExpr::Addr(IpAddr::V6(v6)) | TargetExpr::Zoned(v6, _)
            if v6.to_ipv4_mapped().is_some() =>
        {
            TargetExpr::Addr(IpAddr::V4(Ipv4Addr::from(low32(u128::from(v6)))))
        }
        TargetExpr::Range(AddrRange::V6 { start, end }) => match (inside(start), inside(end)) {
            (true, true) => TargetExpr::Range(AddrRange::V4 {
                start: low32(start),
                end: low32(end),
            }),
            (false, false) if end < MAPPED.0 || start > MAPPED.1 => expr,
            _ => {
                let (first, last) = (Ipv6Addr::from(start), Ipv6Addr::from(end));
                let why = "only part of this range is IPv4-mapped (::ffff:0:0/96, swept as \
                           IPv4): give the mapped part and the rest apart";
                return Err(ParseError::new(format!("{first}-{last}"), why));
            }
        },
        other => other,
    })
}

fn inside(addr: u128) -> bool {
    (MAPPED.0..=MAPPED.1).contains(&addr)
}

/// The low 32 bits of an address of the mapped block: the IPv4 address it maps.
fn low32(addr: u128) -> u32 {
    (addr & 0xffff_ffff) as u32
}
