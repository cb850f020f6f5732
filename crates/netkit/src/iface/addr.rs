//! One address as rtnetlink describes it (`RTM_NEWADDR`): local address and prefix, the
//! peer of a point-to-point address, broadcast, scope, label, flags and lifetimes.

use std::net::IpAddr;

use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::AddressFamily;

use super::names;
use super::record::{AddrFamily, IfAddr};

/// The kernel's "forever" lifetime.
const INFINITY_LIFE_TIME: u32 = u32::MAX;

/// The interface index and the address a `RTM_NEWADDR`/`RTM_DELADDR` message describes;
/// none for families other than IPv4 and IPv6, or a message without an address.
pub(crate) fn parse(message: &AddressMessage) -> Option<(u32, IfAddr)> {
    let header = &message.header;
    let family = match header.family {
        AddressFamily::Inet => AddrFamily::Inet,
        AddressFamily::Inet6 => AddrFamily::Inet6,
        _ => return None,
    };
    let (mut local, mut address) = (None, None);
    let mut flags = AddressFlags::from_bits_retain(header.flags.bits().into());
    let mut addr = IfAddr {
        family,
        addr: IpAddr::from([0, 0, 0, 0]),
        prefix: header.prefix_len,
        peer: None,
        broadcast: None,
        scope: names::scope(header.scope),
        label: None,
        flags: Vec::new(),
        valid_lft_s: None,
        preferred_lft_s: None,
    };
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Broadcast(ip) => addr.broadcast = Some(IpAddr::V4(*ip)),
            AddressAttribute::Label(label) => addr.label = Some(label.clone()),
            AddressAttribute::Flags(all) => flags = *all,
            AddressAttribute::CacheInfo(info) => {
                addr.valid_lft_s = finite(info.ifa_valid);
                addr.preferred_lft_s = finite(info.ifa_preferred);
            }
            _ => {}
        }
    }
    addr.addr = local.or(address)?;
    addr.peer = address.filter(|peer| local.is_some_and(|local| local != *peer));
    addr.flags = names::addr_flags(flags, family == AddrFamily::Inet6);
    Some((header.index, addr))
}

fn finite(seconds: u32) -> Option<u32> {
    (seconds != INFINITY_LIFE_TIME).then_some(seconds)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use netlink_packet_route::address::{AddressHeaderFlags, AddressScope, CacheInfo};

    use super::*;

    fn message(family: AddressFamily, attributes: Vec<AddressAttribute>) -> AddressMessage {
        let mut message = AddressMessage::default();
        message.header.family = family;
        message.header.prefix_len = 24;
        message.header.index = 7;
        message.header.scope = AddressScope::Universe;
        message.header.flags = AddressHeaderFlags::Permanent;
        message.attributes = attributes;
        message
    }

    #[test]
    fn a_labelled_broadcast_address() {
        let local = IpAddr::from([198, 18, 0, 1]);
        let (index, addr) = parse(&message(
            AddressFamily::Inet,
            vec![
                AddressAttribute::Address(local),
                AddressAttribute::Local(local),
                AddressAttribute::Broadcast(Ipv4Addr::new(198, 18, 0, 255)),
                AddressAttribute::Label("v0:1".into()),
            ],
        ))
        .expect("an address");
        assert_eq!(index, 7);
        assert_eq!((addr.addr, addr.prefix, addr.peer), (local, 24, None));
        assert_eq!(addr.broadcast, Some(IpAddr::from([198, 18, 0, 255])));
        assert_eq!(addr.label.as_deref(), Some("v0:1"));
        assert_eq!(addr.scope, "global");
        assert_eq!(addr.flags, ["permanent"]);
        assert_eq!((addr.valid_lft_s, addr.preferred_lft_s), (None, None));
    }

    #[test]
    fn a_point_to_point_address_has_a_peer() {
        let (_, addr) = parse(&message(
            AddressFamily::Inet,
            vec![
                AddressAttribute::Local(IpAddr::from([198, 18, 5, 1])),
                AddressAttribute::Address(IpAddr::from([198, 18, 5, 2])),
            ],
        ))
        .expect("an address");
        assert_eq!(addr.addr, IpAddr::from([198, 18, 5, 1]));
        assert_eq!(addr.peer, Some(IpAddr::from([198, 18, 5, 2])));
    }

    #[test]
    fn ipv6_flags_and_lifetimes_come_from_their_attributes() {
        let mut lifetimes = CacheInfo::default();
        lifetimes.ifa_preferred = 0;
        lifetimes.ifa_valid = 299;
        let (_, addr) = parse(&message(
            AddressFamily::Inet6,
            vec![
                AddressAttribute::Address(IpAddr::V6(Ipv6Addr::LOCALHOST)),
                AddressAttribute::Flags(AddressFlags::Deprecated | AddressFlags::Noprefixroute),
                AddressAttribute::CacheInfo(lifetimes),
            ],
        ))
        .expect("an address");
        assert_eq!(addr.family, AddrFamily::Inet6);
        assert_eq!(addr.flags, ["deprecated", "noprefixroute", "dynamic"]);
        assert_eq!(
            (addr.valid_lft_s, addr.preferred_lft_s),
            (Some(299), Some(0))
        );
        assert_eq!(addr.label, None);
    }

    #[test]
    fn other_families_are_not_addresses() {
        assert!(parse(&message(AddressFamily::Packet, vec![])).is_none());
        assert!(parse(&message(AddressFamily::Inet, vec![])).is_none());
    }
}
