//! The namespace's interfaces at one moment: every link in one rtnetlink dump, every address
//! in another (optionally only one link's), joined by interface index; speed and duplex added
//! from ethtool. One link asked for by name is asked of the kernel by name, with its parent
//! and master by index, as `ip link show dev NAME` does: no dump of every link.

use std::collections::BTreeMap;
use std::io;

use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::protocols::NETLINK_ROUTE;

use super::ethtool::{self, LinkMode};
use super::ifname::MAX_NAME_BYTES;
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
    let request = RouteNetlinkMessage::GetLink(LinkMessage::default());
    let found = rtnl.dump(&request, |reply| match reply {
        RouteNetlinkMessage::NewLink(message) => Some(link::parse(&message)),
        _ => None,
    });
    let mut links: Links = found
        .map_err(kernel_error)?
        .into_iter()
        .map(|link| (link.iface.index, link))
        .collect();
    link::name_relatives(&mut links);
    Ok(links)
}

/// The link the kernel knows by the name `name` (not an alternative name), with its master
/// and its parent in this namespace (for their names), and its index; `None` when the kernel
/// has no link by that name, or the name is one only an alternative name can have (longer
/// than [`MAX_NAME_BYTES`]) or is written with escapes (`\xNN`).
pub(crate) fn named(rtnl: &mut Netlink, name: &str) -> Result<Option<(Links, u32)>, Error> {
    if name.len() > MAX_NAME_BYTES || name.contains('\\') {
        return Ok(None);
    }
    let mut request = LinkMessage::default();
    request
        .attributes
        .push(LinkAttribute::IfName(name.to_string()));
    let Some(link) = get_link(rtnl, request)? else {
        return Ok(None);
    };
    let index = link.iface.index;
    let relatives = [
        link.master_index,
        link.iface
            .parent_index
            .filter(|_| link.iface.parent_netnsid.is_none()),
    ];
    let mut links = Links::from([(index, link)]);
    for relative in relatives.into_iter().flatten() {
        let mut request = LinkMessage::default();
        request.header.index = relative;
        if let Some(link) = get_link(rtnl, request)? {
            links.insert(relative, link);
        }
    }
    link::name_relatives(&mut links);
    Ok(Some((links, index)))
}

/// The one link a `RTM_GETLINK` request names; `None` when there is none (`ENODEV`).
fn get_link(rtnl: &mut Netlink, request: LinkMessage) -> Result<Option<Link>, Error> {
    match rtnl.get(RouteNetlinkMessage::GetLink(request)) {
        Ok(Some(RouteNetlinkMessage::NewLink(message))) => Ok(Some(link::parse(&message))),
        Ok(_) => Ok(None),
        Err(err) if err.raw_os_error() == Some(nix::libc::ENODEV) => Ok(None),
        Err(err) => Err(kernel_error(err)),
    }
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
    rtnl.dump(
        &RouteNetlinkMessage::GetAddress(request),
        |reply| match reply {
            RouteNetlinkMessage::NewAddress(message) => {
                addr::parse(&message).filter(|(at, _)| index.is_none_or(|index| index == *at))
            }
            _ => None,
        },
    )
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
