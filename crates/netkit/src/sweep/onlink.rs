//! Which interface an on-link sweep (`--method arp|ndp`) probes through: the one whose
//! connected prefix (an address of the interface with its prefix length, as rtnetlink lists
//! it) holds every target, or the one named with `-I`. ARP requests and neighbour
//! solicitations reach only the hosts of that link, so a target outside its prefixes is an
//! input error that names the target, said before anything is sent.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use super::neighbour::Mac;
use crate::error::{Error, ParseError};
use crate::report::iface::Interface;
use crate::target::Targets;

/// The interface an on-link sweep uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The kernel's interface index.
    pub index: u32,
    /// Its name.
    pub name: String,
    /// Its MAC address (the ARP sender's, the solicitation's source link-layer address).
    pub mac: Mac,
    /// Its IPv4 address in the prefix that holds the first target (the ARP sender's), if any.
    pub v4: Option<Ipv4Addr>,
    /// Every address of the interface: a probe of one of them is answered by this host.
    pub own: Vec<IpAddr>,
}

/// The name of an on-link method in messages: `arp` or `ndp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnLink {
    /// ARP, IPv4 targets.
    Arp,
    /// Neighbour discovery, IPv6 targets.
    Ndp,
}

impl OnLink {
    fn name(self) -> &'static str {
        match self {
            OnLink::Arp => "arp",
            OnLink::Ndp => "ndp",
        }
    }

    fn admits(self, addr: IpAddr) -> bool {
        matches!(
            (self, addr),
            (OnLink::Arp, IpAddr::V4(_)) | (OnLink::Ndp, IpAddr::V6(_))
        )
    }
}

/// The link that holds every target of `targets` (of `method`'s family, when the sweep has
/// other methods for the rest: `alone` false): `interface` when given, else the interface
/// whose prefix holds the first target. Input errors name the first target that is of the
/// wrong family (`alone`) or not on that link, or an interface that cannot do `method`.
pub fn find(
    targets: &Targets,
    interface: Option<&str>,
    method: OnLink,
    alone: bool,
) -> Result<Link, Error> {
    find_in(&crate::iface::list()?, targets, interface, (method, alone))
}

/// [`find`] among `interfaces`.
fn find_in(
    interfaces: &[Interface],
    targets: &Targets,
    interface: Option<&str>,
    (method, alone): (OnLink, bool),
) -> Result<Link, Error> {
    let mut chosen: Option<(&Interface, Link)> = match interface {
        Some(name) => {
            let found = interfaces.iter().find(|i| i.is_named(name));
            let iface = found.ok_or_else(|| Error::NoSuchInterface(name.to_string()))?;
            Some((iface, link_of(iface, None, method)?))
        }
        None => None,
    };
    for target in targets.iter() {
        let addr = target.addr;
        match (method.admits(addr), alone) {
            (true, _) => {}
            (false, true) => return Err(wrong_family(addr, method).into()),
            (false, false) => continue,
        }
        match &mut chosen {
            Some((iface, link)) => {
                let Some(source) = prefix_holding(iface, addr) else {
                    return Err(not_on_link(addr, method, Some(&link.name)).into());
                };
                link.v4 = link.v4.or(v4_of(source));
            }
            None => {
                let holder = interfaces
                    .iter()
                    .find_map(|i| prefix_holding(i, addr).map(|source| (i, source)));
                let (iface, source) = holder.ok_or_else(|| not_on_link(addr, method, None))?;
                chosen = Some((iface, link_of(iface, v4_of(source), method)?));
            }
        }
    }
    let (_, link) = chosen.ok_or_else(|| no_target(method))?;
    Ok(link)
}

/// The interface's address whose prefix holds `addr` (never loopback's).
fn prefix_holding(iface: &Interface, addr: IpAddr) -> Option<IpAddr> {
    if iface.flags.iter().any(|f| f == "LOOPBACK") {
        return None;
    }
    iface
        .addrs
        .iter()
        .filter(|a| a.peer.is_none())
        .find(|a| IpNet::new(a.addr, a.prefix).is_ok_and(|net| net.contains(&addr)))
        .map(|a| a.addr)
}

fn v4_of(addr: IpAddr) -> Option<Ipv4Addr> {
    match addr {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    }
}

/// What `method` needs of `iface`: a MAC address.
fn link_of(iface: &Interface, v4: Option<Ipv4Addr>, method: OnLink) -> Result<Link, ParseError> {
    let mac = iface
        .mac
        .as_deref()
        .and_then(parse_mac)
        .filter(|m| m.0 != [0; 6] && !iface.flags.iter().any(|f| f == "LOOPBACK"));
    let Some(mac) = mac else {
        let why = format!(
            "has no Ethernet address ({} needs an Ethernet-like interface)",
            method.name()
        );
        return Err(ParseError::new(&iface.name, why));
    };
    Ok(Link {
        index: iface.index,
        name: iface.name.clone(),
        mac,
        v4,
        own: iface.addrs.iter().map(|a| a.addr).collect(),
    })
}

fn parse_mac(text: &str) -> Option<Mac> {
    let bytes: Option<Vec<u8>> = text
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).ok())
        .collect();
    Mac::from_slice(&bytes?).filter(|_| text.len() == 17)
}

fn not_on_link(addr: IpAddr, method: OnLink, on: Option<&str>) -> ParseError {
    let on = on.map(|name| format!(" of {name}")).unwrap_or_default();
    ParseError::new(
        addr.to_string(),
        format!(
            "not on-link{on} ({} needs a target on a directly connected network; use --method \
             icmp or tcp:PORT)",
            method.name()
        ),
    )
}

fn no_target(method: OnLink) -> ParseError {
    let why = match method {
        OnLink::Arp => "no IPv4 target to find (arp finds IPv4 hosts)",
        OnLink::Ndp => "no IPv6 target to find (ndp finds IPv6 hosts)",
    };
    ParseError::new(method.name(), why)
}

fn wrong_family(addr: IpAddr, method: OnLink) -> ParseError {
    let why = match method {
        OnLink::Arp => "arp finds IPv4 hosts; use --method ndp for IPv6",
        OnLink::Ndp => "ndp finds IPv6 hosts; use --method arp for IPv4",
    };
    ParseError::new(addr.to_string(), why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{Family, TargetList};

    fn targets(words: &[&str]) -> Targets {
        TargetList::parse(words, false)
            .unwrap()
            .resolve(Family::Any)
            .unwrap()
    }

    /// `lo` and `eth0` (198.18.0.1/24, 2001:db8::1/64), as `iface::list` reports them.
    fn interfaces() -> Vec<Interface> {
        let iface = |name: &str, index: u32, mac: &str, addrs: &str, flags: &str| {
            let json = format!(
                r#"{{"name":"{name}","index":{index},"up":true,"running":true,"flags":[{flags}],
                "mtu":1500,"mac":"{mac}","operstate":"up","addrs":[{addrs}],"kind":null,
                "parent":null,"parent_index":null,"parent_netnsid":null,"master":null,
                "qdisc":null,"txqlen":null,"altnames":[],"alias":null,"speed_mbps":null,
                "duplex":null,"rx_bytes":0,"rx_packets":0,"rx_errors":0,"rx_dropped":0,
                "tx_bytes":0,"tx_packets":0,"tx_errors":0,"tx_dropped":0}}"#
            );
            serde_json::from_str::<Interface>(&json).unwrap()
        };
        let addr = |family: &str, addr: &str, prefix: u8| {
            format!(
                r#"{{"family":"{family}","addr":"{addr}","prefix":{prefix},"peer":null,
                "broadcast":null,"scope":"global","label":null,"flags":["permanent"],
                "valid_lft_s":null,"preferred_lft_s":null}}"#
            )
        };
        let lo_addrs = addr("inet", "127.0.0.1", 8);
        let eth_addrs = [
            addr("inet", "198.18.0.1", 24),
            addr("inet6", "2001:db8::1", 64),
        ];
        vec![
            iface(
                "lo",
                1,
                "00:00:00:00:00:00",
                &lo_addrs,
                r#""LOOPBACK","UP""#,
            ),
            iface(
                "eth0",
                2,
                "02:00:00:00:00:01",
                &eth_addrs.join(","),
                r#""UP""#,
            ),
        ]
    }

    fn find(words: &[&str], interface: Option<&str>, method: OnLink) -> Result<Link, Error> {
        find_in(&interfaces(), &targets(words), interface, (method, true))
    }

    #[test]
    fn the_link_is_the_one_whose_prefix_holds_the_targets() {
        let link = find(&["198.18.0.0/24"], None, OnLink::Arp).unwrap();
        let want = Link {
            index: 2,
            name: "eth0".to_string(),
            mac: Mac([2, 0, 0, 0, 0, 1]),
            v4: Some("198.18.0.1".parse().unwrap()),
            own: link.own.clone(),
        };
        assert_eq!(link, want);
        let link = find(&["2001:db8::5"], Some("eth0"), OnLink::Ndp).unwrap();
        assert_eq!((link.index, link.v4), (2, None));
    }

    #[test]
    fn targets_off_the_link_and_links_without_ethernet_are_refused() {
        let err = |words: &[&str], interface, method| {
            find(words, interface, method).unwrap_err().to_string()
        };
        let not_on_link = "198.51.100.7: not on-link (arp needs a target on a directly \
                           connected network; use --method icmp or tcp:PORT)";
        assert_eq!(err(&["198.51.100.7"], None, OnLink::Arp), not_on_link);
        let second = err(&["198.18.0.5", "198.18.1.5"], None, OnLink::Arp);
        assert!(
            second.starts_with("198.18.1.5: not on-link of eth0 (arp"),
            "{second}"
        );
        let no_mac = "lo: has no Ethernet address (arp needs an Ethernet-like interface)";
        assert_eq!(err(&["127.0.0.1"], Some("lo"), OnLink::Arp), no_mac);
        // Loopback's prefix holds no on-link target.
        assert!(err(&["127.0.0.1"], None, OnLink::Arp).contains("not on-link"));
        assert!(err(&["::1"], None, OnLink::Arp).contains("use --method ndp"));
        assert!(err(&["198.18.0.5"], None, OnLink::Ndp).contains("use --method arp"));
        let none = err(&["198.18.0.5"], Some("nk-none0"), OnLink::Arp);
        assert_eq!(none, "nk-none0: no such interface");
    }

    #[test]
    fn with_other_methods_the_other_family_is_left_to_them() {
        let mixed = targets(&["198.18.0.5", "2001:db8::5"]);
        let with_others = |method| find_in(&interfaces(), &mixed, None, (method, false));
        assert_eq!(with_others(OnLink::Arp).unwrap().name, "eth0");
        assert_eq!(with_others(OnLink::Ndp).unwrap().name, "eth0");
        let v6_only = targets(&["2001:db8::5"]);
        let err = find_in(&interfaces(), &v6_only, None, (OnLink::Arp, false)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "arp: no IPv4 target to find (arp finds IPv4 hosts)"
        );
        // Still on the link, the targets of its family.
        let off = targets(&["198.51.100.7", "2001:db8::5"]);
        let err = find_in(&interfaces(), &off, None, (OnLink::Arp, false)).unwrap_err();
        assert!(
            err.to_string().starts_with("198.51.100.7: not on-link"),
            "{err}"
        );
    }

    #[test]
    fn macs_parse_as_iface_writes_them() {
        assert_eq!(
            parse_mac("02:00:00:00:00:0a"),
            Some(Mac([2, 0, 0, 0, 0, 10]))
        );
        assert_eq!(parse_mac("02:00:00:00:00"), None);
        assert_eq!(parse_mac("02:00:00:00:00:0a:0b"), None);
    }
}
