//! IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`, `::ffff:198.18.0.0/120`) are IPv4 on the
//! wire: such an address never goes on the wire itself (RFC 4291 §2.5.5.2; RFC 4942 §2.2), a
//! connect to one reaches the IPv4 address it maps, and an ICMPv6 or raw IPv6 probe to one
//! fails without an IPv6 route and leaves through the default route where there is one. The
//! commands that probe (`sweep`, `scan`, `ping`) take them as the IPv4 addresses they map.
//! fping sends ICMPv6 to a mapped address and calls it unreachable (`-g` refuses a mapped
//! block); nmap refuses it without `-6` and finds no route to it with.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{AddrRange, TargetExpr};
use crate::error::ParseError;

/// The first and last address of the IPv4-mapped block `::ffff:0:0/96`.
const MAPPED: (u128, u128) = (0xffff_0000_0000, 0xffff_ffff_ffff);

/// The IPv4 address `addr` maps, if it is an IPv4-mapped IPv6 address; else `addr`.
pub fn unmapped(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    }
}

/// `expr` with an IPv4-mapped address or block as the IPv4 one it maps; a range only partly
/// mapped is bad input (half of it would go on the wire as IPv6, half as IPv4).
pub(super) fn expr_as_ipv4(expr: TargetExpr) -> Result<TargetExpr, ParseError> {
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
                let why = "only part of this range is IPv4-mapped (::ffff:0:0/96, taken as \
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
