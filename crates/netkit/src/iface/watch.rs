//! `iface watch`: link and address events, from the rtnetlink multicast groups (`RTNLGRP_LINK`,
//! `RTNLGRP_IPV4_IFADDR`, `RTNLGRP_IPV6_IFADDR`; what `ip monitor link address` reads).
//!
//! The watcher keeps the namespace's interfaces as they stand and turns each kernel message
//! into what changed against them (`up`, `carrier`, address `added`, ...), so a message that
//! changes nothing says nothing. When the kernel drops messages because the reader fell
//! behind (`ENOBUFS`), the watcher dumps everything again and reports the difference: no
//! change is lost, though several may arrive as one.
//!
//! Netlink events carry no sequence number, so a message queued before a dump may describe a
//! state older than the dump's: applied after it, it would take the watcher back in time
//! (and, after a loss, leave it there, the messages that came next being the ones dropped).
//! So every dump, the first one too, starts on an empty queue ([`settle`]): what is queued is
//! thrown away, the namespace is dumped, and a dump during which more messages came is taken
//! again; only messages queued after a quiet dump are applied.

use std::collections::BTreeSet;
use std::io;

use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::protocols::NETLINK_ROUTE;
use nix::libc;

use super::link::{self, Link};
use super::netlink::{self, Netlink};
use super::snapshot::{self, Links};
use super::{addr, ethtool, kernel_error};
use crate::error::Error;
use crate::report::iface::{
    AddrChange, AddrEvent, Event, IfAddr, Interface, LinkChange, LinkEvent,
};

/// The multicast groups of link and address changes.
const GROUPS: [u32; 3] = [
    libc::RTNLGRP_LINK,
    libc::RTNLGRP_IPV4_IFADDR,
    libc::RTNLGRP_IPV6_IFADDR,
];

/// Receive buffer asked for (the kernel caps it at `net.core.rmem_max`): room for bursts
/// such as a thousand addresses added by `ip -batch`.
const RECEIVE_BUFFER: usize = 4 << 20;

/// How many dumps [`settle`] takes, at most, before it keeps one during which messages came.
const SETTLE_TRIES: usize = 4;

/// The most datagrams thrown away before one dump: the queue of a busy namespace may never
/// run dry, and the dump after the discarding is what counts.
const DISCARD_LIMIT: usize = 1 << 16;

/// A subscription to the link and address events of this network namespace.
#[derive(Debug)]
pub struct Watcher {
    events: Netlink,
    rtnl: Netlink,
    links: Links,
    only: Option<u32>,
    gone: bool,
}

impl Watcher {
    /// Subscribes, then takes the interfaces as they stand. With `name`, only that interface's
    /// events are reported, and [`Error::NoSuchInterface`] when there is none ([`Error::Name`]
    /// for a name no interface can have).
    pub fn new(name: Option<&str>) -> Result<Watcher, Error> {
        name.map(super::check_name).transpose()?;
        let mut events = Netlink::open(NETLINK_ROUTE).map_err(kernel_error)?;
        let _ = events.socket().set_rx_buf_sz(RECEIVE_BUFFER);
        for group in GROUPS {
            events
                .socket()
                .add_membership(group)
                .map_err(kernel_error)?;
        }
        let mut rtnl = snapshot::rtnetlink()?;
        let links = settle(&mut events, &mut rtnl)?;
        let only = name.map(|name| snapshot::find(&links, name)).transpose()?;
        Ok(Watcher {
            events,
            rtnl,
            links,
            only,
            gone: false,
        })
    }

    /// Whether the one interface watched is gone (nothing more can happen to it).
    pub fn gone(&self) -> bool {
        self.gone
    }

    /// Blocks until the kernel says something, and returns what changed (often nothing).
    pub fn next_events(&mut self) -> Result<Vec<Event>, Error> {
        let datagram = match self.events.receive() {
            Ok(datagram) => datagram,
            Err(err) if err.raw_os_error() == Some(libc::ENOBUFS) => {
                tracing::info!(
                    "the kernel dropped events (ENOBUFS): reading every interface again"
                );
                return self.resync();
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => return Ok(Vec::new()),
            Err(err) => return Err(kernel_error(err)),
        };
        let repair = netlink::repair_for(NETLINK_ROUTE);
        let messages = match netlink::parse_datagram::<RouteNetlinkMessage>(datagram, repair) {
            Ok(messages) => messages,
            Err(err) => {
                tracing::warn!("{err}; reading every interface again");
                return self.resync();
            }
        };
        let mut events = Vec::new();
        for message in messages {
            if let NetlinkPayload::InnerMessage(message) = message.payload {
                events.extend(self.apply(message));
            }
        }
        Ok(self.keep(events))
    }

    /// Takes everything again, the messages queued before thrown away, and reports the
    /// difference.
    fn resync(&mut self) -> Result<Vec<Event>, Error> {
        let now = settle(&mut self.events, &mut self.rtnl)?;
        let events = diff(&self.links, &now);
        self.links = now;
        Ok(self.keep(events))
    }

    fn apply(&mut self, message: RouteNetlinkMessage) -> Vec<Event> {
        match message {
            RouteNetlinkMessage::NewLink(m) if is_link(&m) => self.new_link(&m),
            RouteNetlinkMessage::DelLink(m) if is_link(&m) => self.del_link(&m),
            RouteNetlinkMessage::NewAddress(m) => self.address(&m, true),
            RouteNetlinkMessage::DelAddress(m) => self.address(&m, false),
            _ => Vec::new(),
        }
    }

    fn new_link(&mut self, message: &LinkMessage) -> Vec<Event> {
        let mut new = link::parse(message);
        let index = new.iface.index;
        let old = self.links.get(&index).cloned();
        if let Some(old) = &old {
            new.iface.addrs.clone_from(&old.iface.addrs);
        }
        if let Some(mode) = ethtool::link_modes(&[index]).remove(&index) {
            new.iface.speed_mbps = mode.speed_mbps;
            new.iface.duplex = mode.duplex;
        }
        self.links.insert(index, new);
        link::name_relatives(&mut self.links);
        link_events(old.as_ref(), self.links.get(&index))
    }

    fn del_link(&mut self, message: &LinkMessage) -> Vec<Event> {
        let old = self.links.remove(&message.header.index);
        link::name_relatives(&mut self.links);
        let old = old.unwrap_or_else(|| link::parse(message));
        link_events(Some(&old), None)
    }

    fn address(&mut self, message: &AddressMessage, present: bool) -> Vec<Event> {
        let Some((index, new)) = addr::parse(message) else {
            return Vec::new();
        };
        let Some(link) = self.links.get_mut(&index) else {
            return Vec::new();
        };
        let addrs = &mut link.iface.addrs;
        let at = addrs.iter().position(|old| same_address(old, &new));
        let event = match (at, present) {
            (Some(at), true) => {
                let old = std::mem::replace(&mut addrs[at], new.clone());
                addr_event(&link.iface, Some(&old), Some(&new))
            }
            (None, true) => {
                addrs.push(new.clone());
                addr_event(&link.iface, None, Some(&new))
            }
            // The removal message says how the address stood as it went (its lifetimes then,
            // which `ip monitor` prints under `Deleted`): that is what is reported, not the
            // last state known. Also for one never announced (IPv6 says nothing of a
            // tentative address), as `ip monitor` reports it.
            (at, false) => {
                if let Some(at) = at {
                    addrs.remove(at);
                }
                addr_event(&link.iface, Some(&new), None)
            }
        };
        event.into_iter().collect()
    }

    /// The events of the watched interface only; notes when it went away.
    fn keep(&mut self, events: Vec<Event>) -> Vec<Event> {
        let Some(only) = self.only else {
            return events;
        };
        let kept: Vec<Event> = events.into_iter().filter(|e| index(e) == only).collect();
        self.gone |= kept
            .iter()
            .any(|e| matches!(e, Event::Link(link) if link.event == LinkChange::Removed));
        kept
    }
}

/// Every link with its addresses, speed and duplex, with no message older than them left on
/// `events`: what is queued there is thrown away before each dump, and a dump during which
/// messages came is taken again. A namespace that never falls quiet for [`SETTLE_TRIES`] dumps
/// gets the last one with the messages queued during it applied after it: each of those
/// describes a state taken after the queue was emptied, so the watcher may report again a step
/// the dump already showed, then the ones after it, and ends where the kernel is.
fn settle(events: &mut Netlink, rtnl: &mut Netlink) -> Result<Links, Error> {
    for _ in 1..SETTLE_TRIES {
        events.discard_queued(DISCARD_LIMIT).map_err(kernel_error)?;
        let links = current(rtnl)?;
        if !events.pending().map_err(kernel_error)? {
            return Ok(links);
        }
    }
    events.discard_queued(DISCARD_LIMIT).map_err(kernel_error)?;
    current(rtnl)
}

/// Every link with its addresses, speed and duplex.
fn current(rtnl: &mut Netlink) -> Result<Links, Error> {
    let mut links = snapshot::links(rtnl)?;
    snapshot::add_addrs(rtnl, &mut links, None)?;
    let indices: Vec<u32> = links.keys().copied().collect();
    snapshot::add_link_modes(&mut links, &ethtool::link_modes(&indices));
    Ok(links)
}

/// A link message proper: bridges also send `AF_BRIDGE` ones about their ports.
fn is_link(message: &LinkMessage) -> bool {
    message.header.interface_family == AddressFamily::Unspec
}

fn index(event: &Event) -> u32 {
    match event {
        Event::Link(e) => e.iface.index,
        Event::Addr(e) => e.index,
    }
}

/// What changed between two states of a link (`None`: absent).
fn link_events(old: Option<&Link>, new: Option<&Link>) -> Vec<Event> {
    match (old, new) {
        (None, Some(new)) => vec![whole_link_event(LinkChange::Added, &new.iface)],
        (Some(old), None) => vec![whole_link_event(LinkChange::Removed, &old.iface)],
        (Some(old), Some(new)) => {
            let changed = changed_fields(old, new);
            link_changes(old, new)
                .into_iter()
                .map(|change| change_event(change, old, new, &changed))
                .collect()
        }
        (None, None) => Vec::new(),
    }
}

/// A link that came or went.
fn whole_link_event(event: LinkChange, iface: &Interface) -> Event {
    Event::Link(Box::new(LinkEvent {
        event,
        old_name: None,
        old_flags: None,
        changed: Vec::new(),
        iface: iface.clone(),
    }))
}

/// One change of a link that stays, with everything else that changed with it.
fn change_event(change: LinkChange, old: &Link, new: &Link, changed: &[String]) -> Event {
    Event::Link(Box::new(LinkEvent {
        event: change,
        old_name: (change == LinkChange::Renamed).then(|| old.iface.name.clone()),
        old_flags: (change == LinkChange::Flags).then(|| old.iface.flags.clone()),
        changed: changed.to_vec(),
        iface: new.iface.clone(),
    }))
}

fn link_changes(old: &Link, new: &Link) -> Vec<LinkChange> {
    let (o, n) = (&old.iface, &new.iface);
    let mut changes = Vec::new();
    if o.name != n.name {
        changes.push(LinkChange::Renamed);
    }
    if o.up != n.up {
        changes.push(if n.up {
            LinkChange::Up
        } else {
            LinkChange::Down
        });
    }
    if old.has_carrier() != new.has_carrier() {
        changes.push(if new.has_carrier() {
            LinkChange::Carrier
        } else {
            LinkChange::NoCarrier
        });
    }
    let rest = [
        (other_flags(o) != other_flags(n), LinkChange::Flags),
        (o.operstate != n.operstate, LinkChange::Operstate),
        (o.mtu != n.mtu, LinkChange::Mtu),
        (o.txqlen != n.txqlen, LinkChange::Txqlen),
        (o.mac != n.mac, LinkChange::Mac),
        (old.master_index != new.master_index, LinkChange::Master),
        (o.alias != n.alias, LinkChange::Alias),
        (o.altnames != n.altnames, LinkChange::Altnames),
    ];
    changes.extend(rest.iter().filter(|(changed, _)| *changed).map(|(_, c)| *c));
    changes
}

/// The flags that the `up`, `down`, `carrier` and `operstate` events already say.
const STATE_FLAGS: [&str; 4] = ["UP", "RUNNING", "LOWER_UP", "DORMANT"];

/// The flags of a link that no other event says.
fn other_flags(iface: &Interface) -> Vec<&str> {
    let flags = iface.flags.iter().map(String::as_str);
    flags.filter(|f| !STATE_FLAGS.contains(f)).collect()
}

/// The names of the fields that differ between two states of a link, in the record's order
/// (`carrier`, which the record shows as flags, after `flags`); counters are not a change.
fn changed_fields(old: &Link, new: &Link) -> Vec<String> {
    let (o, n) = (&old.iface, &new.iface);
    let parent = |i: &Interface| (i.parent.clone(), i.parent_index, i.parent_netnsid);
    let fields = [
        (o.name != n.name, "name"),
        (o.up != n.up, "up"),
        (o.running != n.running, "running"),
        (o.flags != n.flags, "flags"),
        (old.has_carrier() != new.has_carrier(), "carrier"),
        (o.mtu != n.mtu, "mtu"),
        (o.mac != n.mac, "mac"),
        (o.operstate != n.operstate, "operstate"),
        (o.kind != n.kind, "kind"),
        (parent(o) != parent(n), "parent"),
        (old.master_index != new.master_index, "master"),
        (o.qdisc != n.qdisc, "qdisc"),
        (o.txqlen != n.txqlen, "txqlen"),
        (o.altnames != n.altnames, "altnames"),
        (o.alias != n.alias, "alias"),
        (o.speed_mbps != n.speed_mbps, "speed_mbps"),
        (o.duplex != n.duplex, "duplex"),
    ];
    let changed = fields.iter().filter(|(changed, _)| *changed);
    changed.map(|(_, name)| (*name).to_string()).collect()
}

/// One address is another in a new state: same family, local address, prefix and peer.
fn same_address(a: &IfAddr, b: &IfAddr) -> bool {
    (a.family, a.addr, a.prefix, a.peer) == (b.family, b.addr, b.prefix, b.peer)
}

/// What changed about one address of `iface` (`None`: absent). Lifetimes counting down are
/// not a change.
fn addr_event(iface: &Interface, old: Option<&IfAddr>, new: Option<&IfAddr>) -> Option<Event> {
    let (change, addr) = match (old, new) {
        (None, Some(new)) => (AddrChange::Added, new),
        (Some(old), None) => (AddrChange::Removed, old),
        (Some(old), Some(new)) => {
            let same = (&old.flags, &old.scope, old.broadcast, &old.label)
                == (&new.flags, &new.scope, new.broadcast, &new.label);
            if same {
                return None;
            }
            (AddrChange::Changed, new)
        }
        (None, None) => return None,
    };
    Some(Event::Addr(AddrEvent {
        event: change,
        iface: iface.name.clone(),
        index: iface.index,
        addr: addr.clone(),
    }))
}

/// Every change between two states of the namespace, by interface index: a link that went
/// away loses its addresses first, a link that came has them after.
fn diff(old: &Links, new: &Links) -> Vec<Event> {
    let indexes: BTreeSet<u32> = old.keys().chain(new.keys()).copied().collect();
    let mut events = Vec::new();
    for index in indexes {
        let (o, n) = (old.get(&index), new.get(&index));
        let addrs = |l: Option<&Link>| l.map(|l| l.iface.addrs.clone()).unwrap_or_default();
        let Some(named) = n.or(o) else { continue };
        let addr_events = addr_diff(&named.iface, &addrs(o), &addrs(n));
        let link_events = link_events(o, n);
        match n {
            None => events.extend(addr_events.into_iter().chain(link_events)),
            Some(_) => events.extend(link_events.into_iter().chain(addr_events)),
        }
    }
    events
}

fn addr_diff(iface: &Interface, old: &[IfAddr], new: &[IfAddr]) -> Vec<Event> {
    let find = |list: &[IfAddr], a: &IfAddr| list.iter().find(|b| same_address(a, b)).cloned();
    let removed = old
        .iter()
        .filter(|a| find(new, a).is_none())
        .filter_map(|a| addr_event(iface, Some(a), None));
    let kept_or_added = new
        .iter()
        .filter_map(|a| addr_event(iface, find(old, a).as_ref(), Some(a)));
    removed.chain(kept_or_added).collect()
}

#[cfg(test)]
mod tests {
    use netlink_packet_route::link::{LinkAttribute, LinkFlags};

    use super::*;

    fn link(index: u32, name: &str, flags: LinkFlags) -> Link {
        let mut message = LinkMessage::default();
        message.header.index = index;
        message.header.flags = flags;
        message.attributes = vec![LinkAttribute::IfName(name.into())];
        link::parse(&message)
    }

    fn v4(last: u8) -> IfAddr {
        IfAddr {
            family: crate::report::iface::AddrFamily::Inet,
            addr: std::net::IpAddr::from([198, 18, 0, last]),
            prefix: 24,
            peer: None,
            broadcast: None,
            scope: "global".into(),
            label: Some("v0".into()),
            flags: vec!["permanent".into()],
            valid_lft_s: None,
            preferred_lft_s: None,
        }
    }

    fn names(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                Event::Link(l) => format!("{} {}", l.iface.name, l.event.name()),
                Event::Addr(a) => format!("{} {} {}", a.iface, a.event.name(), a.addr.addr),
            })
            .collect()
    }

    #[test]
    fn link_changes_are_named_in_order() {
        let old = link(3, "v0", LinkFlags::Broadcast);
        let mut new = link(
            3,
            "v1",
            LinkFlags::Broadcast | LinkFlags::Up | LinkFlags::LowerUp,
        );
        new.iface.mtu = Some(1400);
        new.master_index = Some(9);
        let events = link_events(Some(&old), Some(&new));
        assert_eq!(
            names(&events),
            ["v1 renamed", "v1 up", "v1 carrier", "v1 mtu", "v1 master"]
        );
        let Event::Link(renamed) = &events[0] else {
            panic!("a link event")
        };
        assert_eq!(renamed.old_name.as_deref(), Some("v0"));
        assert!(link_events(Some(&new), Some(&new)).is_empty());
        assert_eq!(
            names(&link_events(Some(&new), Some(&old))),
            [
                "v0 renamed",
                "v0 down",
                "v0 no-carrier",
                "v0 mtu",
                "v0 master"
            ]
        );
    }

    #[test]
    fn flags_alias_and_altnames_are_changes_that_list_what_changed() {
        let old = link(
            3,
            "v0",
            LinkFlags::Broadcast | LinkFlags::Multicast | LinkFlags::Up,
        );
        let mut new = link(
            3,
            "v0",
            LinkFlags::Broadcast | LinkFlags::Promisc | LinkFlags::Up,
        );
        new.iface.alias = Some("uplink".into());
        new.iface.altnames = vec!["zero".into()];
        new.iface.stats.rx_bytes = 100;
        let events = link_events(Some(&old), Some(&new));
        assert_eq!(names(&events), ["v0 flags", "v0 alias", "v0 altnames"]);
        let Event::Link(flags) = &events[0] else {
            panic!("a link event")
        };
        let old_flags = ["BROADCAST", "MULTICAST", "UP"].map(String::from);
        assert_eq!(flags.old_flags.as_deref(), Some(&old_flags[..]));
        assert_eq!(flags.changed, ["flags", "altnames", "alias"]);
        // Up alone is said by `up`; counters alone are no change.
        let down = link(3, "v0", LinkFlags::Broadcast | LinkFlags::Multicast);
        let up = link_events(Some(&down), Some(&old));
        assert_eq!(names(&up), ["v0 up"]);
        let Event::Link(up) = &up[0] else {
            panic!("a link event")
        };
        assert_eq!(
            (up.changed.as_slice(), &up.old_flags),
            (&["up".to_string(), "flags".into()][..], &None)
        );
        let mut counted = old.clone();
        counted.iface.stats.tx_bytes = 1;
        assert!(link_events(Some(&old), Some(&counted)).is_empty());
    }

    #[test]
    fn addresses_are_added_changed_and_removed_once() {
        let iface = link(3, "v0", LinkFlags::Up).iface;
        let mut tentative = v4(1);
        tentative.flags.push("tentative".into());
        assert_eq!(
            names(&addr_diff(&iface, &[tentative, v4(2)], &[v4(1), v4(3)])),
            [
                "v0 removed 198.18.0.2",
                "v0 changed 198.18.0.1",
                "v0 added 198.18.0.3"
            ]
        );
        let mut older = v4(1);
        older.valid_lft_s = Some(100);
        assert!(addr_event(&iface, Some(&older), Some(&v4(1))).is_none());
    }

    #[test]
    fn a_resync_reports_what_was_missed() {
        let mut v0 = link(3, "v0", LinkFlags::Up);
        v0.iface.addrs = vec![v4(1)];
        let mut old = Links::new();
        old.insert(3, v0);
        let mut new = Links::new();
        let mut v1 = link(4, "v1", LinkFlags::Up);
        v1.iface.addrs = vec![v4(9)];
        new.insert(4, v1);
        assert_eq!(
            names(&diff(&old, &new)),
            [
                "v0 removed 198.18.0.1",
                "v0 removed",
                "v1 added",
                "v1 added 198.18.0.9"
            ]
        );
        assert!(diff(&new, &new).is_empty());
    }

    #[test]
    fn bridge_port_messages_are_not_links() {
        let mut message = LinkMessage::default();
        assert!(is_link(&message));
        message.header.interface_family = AddressFamily::Bridge;
        assert!(!is_link(&message));
    }
}
