//! The namespace's interfaces at one moment: every link in one rtnetlink dump, every address
//! in another (optionally only one link's), joined by interface index; speed and duplex added
//! from ethtool.

use std::collections::BTreeMap;
use std::io;

use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::protocols::NETLINK_ROUTE;

use super::ethtool::{self, LinkMode};
use super::link::{self, Link};
use super::netlink::Netlink;
use super::{addr, kernel_error};
use crate::error::Error;
use crate::report::iface::{IfAddr, Interface};

/// Every link of the namespace by index, addresses attached.
pub(crate) type Links = BTreeMap<u32, Link>;

/// An rtnetlink socket in the calling thread's namespace.
pub(crate) fn rtnetlink() -> Result<Netlink, Error> {
    let rtnl = Netlink::open(NETLINK_ROUTE).map_err(kernel_error)?;
    // Lets the kernel filter an address dump by interface (ignored before Linux 4.20, where
    // the filter below still applies).
    let _ = rtnl.socket().set_netlink_get_strict_chk(true);
    Ok(rtnl)
}

/// Every link of the namespace, without addresses yet.
pub(crate) fn links(rtnl: &mut Netlink) -> Result<Links, Error> {
    let replies = rtnl
        .dump(&RouteNetlinkMessage::GetLink(LinkMessage::default()))
        .map_err(kernel_error)?;
    let mut links: Links = replies
        .iter()
        .filter_map(|reply| match reply {
            RouteNetlinkMessage::NewLink(message) => Some(link::parse(message)),
            _ => None,
        })
        .map(|link| (link.iface.index, link))
        .collect();
    link::name_relatives(&mut links);
    Ok(links)
}

/// Attaches the addresses of every link (`only: None`) or of one.
pub(crate) fn add_addrs(
    rtnl: &mut Netlink,
    links: &mut Links,
    only: Option<u32>,
) -> Result<(), Error> {
    for (index, addr) in addrs(rtnl, only).map_err(kernel_error)? {
        if let Some(link) = links.get_mut(&index) {
            link.iface.addrs.push(addr);
        }
    }
    Ok(())
}

/// The index of the link named `name` (its name or one of its alternative names); when
/// there is none, [`Error::Name`] for a name longer than an interface name may be.
pub(crate) fn find(links: &Links, name: &str) -> Result<u32, Error> {
    let found = links.values().find(|link| link.iface.is_named(name));
    found.map(|link| link.iface.index).ok_or_else(|| {
        super::ifname::not_found(name)
            .map_or_else(|| Error::NoSuchInterface(name.to_string()), Error::Name)
    })
}

fn addrs(rtnl: &mut Netlink, index: Option<u32>) -> io::Result<Vec<(u32, IfAddr)>> {
    let mut request = AddressMessage::default();
    request.header.index = index.unwrap_or(0);
    let replies = rtnl.dump(&RouteNetlinkMessage::GetAddress(request))?;
    Ok(replies
        .iter()
        .filter_map(|reply| match reply {
            RouteNetlinkMessage::NewAddress(message) => addr::parse(message),
            _ => None,
        })
        .filter(|(at, _)| index.is_none_or(|index| index == *at))
        .collect())
}

/// Sets speed and duplex on the links that reported them.
pub(crate) fn add_link_modes(links: &mut Links, modes: &BTreeMap<u32, LinkMode>) {
    for (index, mode) in modes {
        if let Some(link) = links.get_mut(index) {
            link.iface.speed_mbps = mode.speed_mbps;
            link.iface.duplex.clone_from(&mode.duplex);
        }
    }
}

/// The interfaces, ordered by index, with speed and duplex asked of ethtool (for one link
/// when `only` is given).
pub(crate) fn interfaces(mut links: Links, only: Option<u32>) -> Vec<Interface> {
    let indices: Vec<u32> = match only {
        Some(index) => vec![index],
        None => links.keys().copied().collect(),
    };
    add_link_modes(&mut links, &ethtool::link_modes(&indices));
    links
        .into_values()
        .filter(|link| only.is_none_or(|index| index == link.iface.index))
        .map(|link| link.iface)
        .collect()
}
