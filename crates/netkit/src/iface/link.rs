//! One link as rtnetlink describes it (`RTM_NEWLINK`): name, flags, MTU, MAC, operstate,
//! kind, parent, master, qdisc, queue length, alternative names, alias and counters. The
//! indexes of the parent and master become names once every link of the namespace is known.

use std::collections::BTreeMap;

use netlink_packet_route::link::{
    LinkAttribute, LinkFlags, LinkInfo, LinkMessage, Prop, State, Stats, Stats64,
};

use super::names;
use crate::report::iface::{Interface, LinkStats};

/// An interface before its master's and parent's indexes are turned into names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    /// The record, addresses and speed still to be filled in.
    pub(crate) iface: Interface,
    /// `IFLA_MASTER`: the bridge or bond this link is a port of.
    pub(crate) master_index: Option<u32>,
    /// `IFLA_CARRIER`: whether the lower layer has a carrier, whatever the administrative
    /// state (the kernel hides `LOWER_UP` while a link is down, carrier or not).
    pub(crate) carrier: Option<bool>,
}

impl Link {
    /// Whether the lower layer has a carrier: `IFLA_CARRIER`, else the `LOWER_UP` flag.
    pub(crate) fn has_carrier(&self) -> bool {
        self.carrier
            .unwrap_or_else(|| self.iface.flags.iter().any(|f| f == "LOWER_UP"))
    }
}

/// The link a `RTM_NEWLINK` message describes.
pub(crate) fn parse(message: &LinkMessage) -> Link {
    let flags = message.header.flags;
    let mut link = Link {
        iface: Interface {
            name: String::new(),
            index: message.header.index,
            up: flags.contains(LinkFlags::Up),
            running: flags.contains(LinkFlags::Running),
            flags: names::link_flags(flags),
            mtu: None,
            mac: None,
            operstate: names::operstate(State::Unknown),
            addrs: Vec::new(),
            kind: None,
            parent: None,
            parent_index: None,
            parent_netnsid: None,
            master: None,
            qdisc: None,
            txqlen: None,
            altnames: Vec::new(),
            alias: None,
            speed_mbps: None,
            duplex: None,
            stats: LinkStats::default(),
        },
        master_index: None,
        carrier: None,
    };
    let mut stats32 = None;
    for attribute in &message.attributes {
        if let LinkAttribute::Stats(stats) = attribute {
            stats32 = Some(stats);
        }
        absorb(&mut link, attribute);
    }
    if let (Some(stats), true) = (stats32, link.iface.stats == LinkStats::default()) {
        link.iface.stats = from_stats32(stats);
    }
    link
}

/// Adds what one attribute says.
fn absorb(link: &mut Link, attribute: &LinkAttribute) {
    let iface = &mut link.iface;
    match attribute {
        LinkAttribute::IfName(name) => iface.name = name.clone(),
        LinkAttribute::Mtu(mtu) => iface.mtu = Some(*mtu),
        LinkAttribute::Address(mac) if !mac.is_empty() => iface.mac = Some(names::format_mac(mac)),
        LinkAttribute::OperState(state) => iface.operstate = names::operstate(*state),
        LinkAttribute::LinkInfo(infos) => iface.kind = kind(infos),
        LinkAttribute::Link(parent) if *parent != 0 && *parent != iface.index => {
            iface.parent_index = Some(*parent);
        }
        LinkAttribute::LinkNetNsId(id) => iface.parent_netnsid = Some(*id),
        LinkAttribute::Controller(master) if *master != 0 => link.master_index = Some(*master),
        LinkAttribute::Carrier(carrier) => link.carrier = Some(*carrier != 0),
        LinkAttribute::Qdisc(qdisc) => iface.qdisc = Some(qdisc.clone()),
        LinkAttribute::TxQueueLen(len) => iface.txqlen = Some(*len),
        LinkAttribute::IfAlias(alias) => iface.alias = Some(alias.clone()),
        LinkAttribute::PropList(props) => iface.altnames = altnames(props),
        LinkAttribute::Stats64(stats) => iface.stats = from_stats64(stats),
        _ => {}
    }
}

fn kind(infos: &[LinkInfo]) -> Option<String> {
    infos.iter().find_map(|info| match info {
        LinkInfo::Kind(kind) => Some(kind.to_string()),
        _ => None,
    })
}

fn altnames(props: &[Prop]) -> Vec<String> {
    props
        .iter()
        .filter_map(|prop| match prop {
            Prop::AltIfName(name) => Some(name.clone()),
            _ => None,
        })
        .collect()
}

fn from_stats64(s: &Stats64) -> LinkStats {
    LinkStats {
        rx_bytes: s.rx_bytes,
        rx_packets: s.rx_packets,
        rx_errors: s.rx_errors,
        rx_dropped: s.rx_dropped,
        tx_bytes: s.tx_bytes,
        tx_packets: s.tx_packets,
        tx_errors: s.tx_errors,
        tx_dropped: s.tx_dropped,
    }
}

/// The 32-bit counters, for kernels that send no 64-bit ones.
fn from_stats32(s: &Stats) -> LinkStats {
    LinkStats {
        rx_bytes: s.rx_bytes.into(),
        rx_packets: s.rx_packets.into(),
        rx_errors: s.rx_errors.into(),
        rx_dropped: s.rx_dropped.into(),
        tx_bytes: s.tx_bytes.into(),
        tx_packets: s.tx_packets.into(),
        tx_errors: s.tx_errors.into(),
        tx_dropped: s.tx_dropped.into(),
    }
}

/// Names every link's master, and its parent when the parent lives in this namespace (an
/// index with a namespace id belongs to another namespace and has no name here).
pub(crate) fn name_relatives(links: &mut BTreeMap<u32, Link>) {
    let names: BTreeMap<u32, String> = links
        .iter()
        .map(|(index, link)| (*index, link.iface.name.clone()))
        .collect();
    for link in links.values_mut() {
        link.iface.master = link.master_index.and_then(|i| names.get(&i).cloned());
        link.iface.parent = match link.iface.parent_netnsid {
            Some(_) => None,
            None => link.iface.parent_index.and_then(|i| names.get(&i).cloned()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::link::InfoKind;

    fn message(attributes: Vec<LinkAttribute>) -> LinkMessage {
        let mut message = LinkMessage::default();
        message.header.index = 3;
        message.header.flags = LinkFlags::Up | LinkFlags::Broadcast;
        message.attributes = attributes;
        message
    }

    #[test]
    fn attributes_fill_the_record() {
        let link = parse(&message(vec![
            LinkAttribute::IfName("v0".into()),
            LinkAttribute::Mtu(1400),
            LinkAttribute::Address(vec![2, 0, 0, 0, 0, 1]),
            LinkAttribute::OperState(State::LowerLayerDown),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth)]),
            LinkAttribute::Link(2),
            LinkAttribute::Controller(4),
            LinkAttribute::Qdisc("noqueue".into()),
            LinkAttribute::TxQueueLen(1000),
            LinkAttribute::IfAlias("uplink".into()),
            LinkAttribute::PropList(vec![Prop::AltIfName("veth-zero".into())]),
        ]));
        let iface = &link.iface;
        assert_eq!((iface.name.as_str(), iface.index), ("v0", 3));
        assert!(iface.up && !iface.running);
        assert_eq!(iface.flags, ["BROADCAST", "UP"]);
        assert_eq!(iface.mtu, Some(1400));
        assert_eq!(iface.mac.as_deref(), Some("02:00:00:00:00:01"));
        assert_eq!(iface.operstate, "lowerlayerdown");
        assert_eq!(iface.kind.as_deref(), Some("veth"));
        assert_eq!(iface.parent_index, Some(2));
        assert_eq!(link.master_index, Some(4));
        assert_eq!(iface.qdisc.as_deref(), Some("noqueue"));
        assert_eq!(iface.txqlen, Some(1000));
        assert_eq!(iface.alias.as_deref(), Some("uplink"));
        assert_eq!(iface.altnames, ["veth-zero"]);
    }

    #[test]
    fn a_link_that_is_its_own_parent_has_none() {
        let link = parse(&message(vec![LinkAttribute::Link(3)]));
        assert_eq!(link.iface.parent_index, None);
    }

    #[test]
    fn relatives_get_names_unless_in_another_namespace() {
        let mut links = BTreeMap::new();
        for (index, name, parent, netnsid) in [
            (2, "v1", Some(3), None),
            (3, "v0", Some(2), Some(0)),
            (4, "br0", None, None),
        ] {
            let mut link = parse(&message(vec![LinkAttribute::IfName(name.into())]));
            link.iface.index = index;
            link.iface.parent_index = parent;
            link.iface.parent_netnsid = netnsid;
            link.master_index = (index == 2).then_some(4);
            links.insert(index, link);
        }
        name_relatives(&mut links);
        assert_eq!(links[&2].iface.parent.as_deref(), Some("v0"));
        assert_eq!(links[&2].iface.master.as_deref(), Some("br0"));
        assert_eq!(links[&3].iface.parent, None);
        assert_eq!(links[&4].iface.master, None);
    }
}
