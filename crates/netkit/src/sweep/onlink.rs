//! Which interface an on-link sweep (`--method arp|ndp`) probes through: the one whose
//! connected prefix (an address of the interface with its prefix length, as rtnetlink lists
//! it) holds every target, the longest prefix when several do (as the kernel routes), or the
//! one named with `-I`. ARP requests and neighbour solicitations reach only the hosts of that
//! link, so a target outside its prefixes, or one a longer prefix puts on another link, is an
//! input error that names the target, said before anything is sent.

use std::cmp::Reverse;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

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
    /// Its IPv4 addresses with their prefixes, in the kernel's order: the ARP sender's
    /// address for a target is one of them ([`Link::sender`]).
    pub v4: Vec<Ipv4Net>,
    /// Its IPv6 addresses with their prefixes.
    pub v6: Vec<Ipv6Net>,
    /// Every address the interface owns: a probe of one of them is answered by this host.
    /// Not the tentative or DAD-failed ones, which the kernel does not answer for: another
    /// host may hold them.
    pub own: Vec<IpAddr>,
}

impl Link {
    /// Whether one of the link's prefixes holds `addr`: only such a target is probed (in a
    /// list of methods the others take the rest; a proxy-ARP router must not answer for an
    /// address the link does not hold).
    pub fn holds(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(v4) => self.v4.iter().any(|net| net.contains(&v4)),
            IpAddr::V6(v6) => self.v6.iter().any(|net| net.contains(&v6)),
        }
    }

    /// The address an ARP request for `target` comes from, as the kernel picks it for its own
    /// requests: the interface's address whose prefix holds the target (the longest prefix,
    /// the first address among equals), else its first IPv4 address, else 0.0.0.0. A host
    /// that answers only requests from its own subnet (`arp_ignore=2`) answers this one.
    pub fn sender(&self, target: Ipv4Addr) -> Ipv4Addr {
        let holding = self
            .v4
            .iter()
            .filter(|net| net.contains(&target))
            .min_by_key(|net| Reverse(net.prefix_len()));
        holding
            .or(self.v4.first())
            .map_or(Ipv4Addr::UNSPECIFIED, Ipv4Net::addr)
    }
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

/// The link that holds every target of `targets`: `interface` when given, else the
/// interface whose prefix holds the first target (the longest prefix). Alone, input errors
/// name the first target that is of the wrong family, not on that link or, without
/// `interface`, on another link by a longer prefix. With other methods in the sweep (`alone`
/// false), those targets are left to them, as `nmap -PE -PR` leaves its routed targets to
/// `-PE`; `None` when no target is left for `method`. Either way, an interface that cannot
/// do `method` is an input error.
pub fn find(
    targets: &Targets,
    interface: Option<&str>,
    method: OnLink,
    alone: bool,
) -> Result<Option<Link>, Error> {
    find_in(&crate::iface::list()?, targets, interface, (method, alone))
}

/// [`find`] among `interfaces`.
fn find_in(
    interfaces: &[Interface],
    targets: &Targets,
    interface: Option<&str>,
    (method, alone): (OnLink, bool),
) -> Result<Option<Link>, Error> {
    let mut chosen: Option<(&Interface, Link)> = match interface {
        Some(name) => {
            let found = interfaces.iter().find(|i| i.is_named(name));
            let iface = found.ok_or_else(|| Error::NoSuchInterface(name.to_string()))?;
            Some((iface, link_of(iface, method)?))
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
        let zoned = (target.zone != 0).then(|| interfaces.iter().find(|i| i.index == target.zone));
        let refused = match (zoned, &chosen) {
            // A zone names the target's link (`fe80::1%eth1`): not the first prefix's.
            (Some(None), _) => Some(zone_gone(addr, target.zone)),
            (Some(Some(iface)), None) => {
                chosen = Some((iface, link_of(iface, method)?));
                None
            }
            (Some(Some(iface)), Some((_, link))) if iface.index == link.index => None,
            (Some(Some(iface)), Some((_, link))) => {
                Some(other_zone(addr, method, &iface.name, &link.name))
            }
            (None, Some((iface, link))) => match prefix_holding(iface, addr) {
                None => Some(not_on_link(addr, method, Some(&link.name))),
                Some(_) if interface.is_some() => None,
                Some(prefix) => match holder(interfaces, addr) {
                    Some((best, longest)) if longest > prefix => {
                        Some(elsewhere(addr, method, &best.name, &link.name))
                    }
                    _ => None,
                },
            },
            (None, None) => match holder(interfaces, addr) {
                Some((iface, _)) => {
                    chosen = Some((iface, link_of(iface, method)?));
                    None
                }
                None => Some(not_on_link(addr, method, None)),
            },
        };
        match refused {
            Some(err) if alone => return Err(err.into()),
            _ => {}
        }
    }
    match chosen {
        Some((_, link)) => Ok(Some(link)),
        None if alone => Err(no_target(method).into()),
        None => Ok(None),
    }
}

/// The interface whose prefix holding `addr` is the longest (the first among equals), and
/// that prefix's length: the link the kernel's connected routes put `addr` on. An interface
/// that is down has no routes: it holds `addr` only when no interface that is up does (then
/// probes sent on it fail, and say so).
fn holder(interfaces: &[Interface], addr: IpAddr) -> Option<(&Interface, u8)> {
    interfaces
        .iter()
        .filter_map(|iface| prefix_holding(iface, addr).map(|prefix| (iface, prefix)))
        .min_by_key(|&(iface, prefix)| Reverse((iface.up, prefix)))
}

/// The length of the interface's longest prefix that holds `addr` (never loopback's).
fn prefix_holding(iface: &Interface, addr: IpAddr) -> Option<u8> {
    if iface.flags.iter().any(|f| f == "LOOPBACK") {
        return None;
    }
    iface
        .addrs
        .iter()
        .filter(|a| a.peer.is_none())
        .filter(|a| IpNet::new(a.addr, a.prefix).is_ok_and(|net| net.contains(&addr)))
        .map(|a| a.prefix)
        .max()
}

/// Whether an address is one the kernel answers for: not tentative (duplicate address
/// detection still running) and not DAD-failed (another host holds it).
fn owned(addr: &crate::report::iface::IfAddr) -> bool {
    !addr
        .flags
        .iter()
        .any(|f| f == "tentative" || f == "dadfailed")
}

/// What `method` needs of `iface`: a MAC address.
fn link_of(iface: &Interface, method: OnLink) -> Result<Link, ParseError> {
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
    let nets = iface.addrs.iter().filter(|a| a.peer.is_none());
    let nets: Vec<IpNet> = nets
        .filter_map(|a| IpNet::new(a.addr, a.prefix).ok())
        .collect();
    let v4 = nets.iter().filter_map(|net| match net {
        IpNet::V4(v4) => Some(*v4),
        IpNet::V6(_) => None,
    });
    let v6 = nets.iter().filter_map(|net| match net {
        IpNet::V6(v6) => Some(*v6),
        IpNet::V4(_) => None,
    });
    Ok(Link {
        index: iface.index,
        name: iface.name.clone(),
        mac,
        v4: v4.collect(),
        v6: v6.collect(),
        own: iface
            .addrs
            .iter()
            .filter(|a| owned(a))
            .map(|a| a.addr)
            .collect(),
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

fn elsewhere(addr: IpAddr, method: OnLink, on: &str, chosen: &str) -> ParseError {
    ParseError::new(
        addr.to_string(),
        format!(
            "on-link of {on}, not of {chosen} (a longer prefix; {} probes one link: sweep \
             {on}'s targets apart, or name the link with -I)",
            method.name()
        ),
    )
}

fn other_zone(addr: IpAddr, method: OnLink, zone: &str, chosen: &str) -> ParseError {
    ParseError::new(
        format!("{addr}%{zone}"),
        format!(
            "on the link of {zone}, not of {chosen} ({} probes one link: sweep {zone}'s \
             targets apart)",
            method.name()
        ),
    )
}

fn zone_gone(addr: IpAddr, zone: u32) -> ParseError {
    let why = format!("no interface {zone} for the zone (gone since it was named?)");
    ParseError::new(crate::target::show_zoned(addr, zone), why)
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
        let found = find_in(&interfaces(), &targets(words), interface, (method, true))?;
        Ok(found.expect("alone, a link or an error"))
    }

    #[test]
    fn the_link_is_the_one_whose_prefix_holds_the_targets() {
        let link = find(&["198.18.0.0/24"], None, OnLink::Arp).unwrap();
        let want = Link {
            index: 2,
            name: "eth0".to_string(),
            mac: Mac([2, 0, 0, 0, 0, 1]),
            v4: vec!["198.18.0.1/24".parse().unwrap()],
            v6: vec!["2001:db8::1/64".parse().unwrap()],
            own: link.own.clone(),
        };
        assert_eq!(link, want);
        let link = find(&["2001:db8::5"], Some("eth0"), OnLink::Ndp).unwrap();
        assert_eq!(link.index, 2);
    }

    /// `eth0` (198.18.0.1/16 and the secondary 198.19.0.1/24, the tentative 2001:db8::6) and
    /// `eth1` (198.18.5.1/24), as `iface::list` reports them.
    fn overlapping() -> Vec<Interface> {
        let mut ifaces = interfaces();
        let json = |addr: &str, prefix: u8, flags: &str| {
            let family = if addr.contains(':') { "inet6" } else { "inet" };
            let text = format!(
                r#"{{"family":"{family}","addr":"{addr}","prefix":{prefix},"peer":null,
                "broadcast":null,"scope":"global","label":null,"flags":[{flags}],
                "valid_lft_s":null,"preferred_lft_s":null}}"#
            );
            serde_json::from_str(&text).unwrap()
        };
        ifaces[1].addrs = vec![
            json("198.18.0.1", 16, r#""permanent""#),
            json("198.19.0.1", 24, r#""permanent""#),
            json("2001:db8::6", 64, r#""permanent","tentative","dadfailed""#),
        ];
        let mut eth1 = ifaces[1].clone();
        (eth1.name, eth1.index) = ("eth1".to_string(), 3);
        eth1.addrs = vec![json("198.18.5.1", 24, r#""permanent""#)];
        ifaces.push(eth1);
        ifaces
    }

    /// A target's zone picks its link, whichever link's prefix comes first; an `-I` or an
    /// earlier target on another link is refused (every link has `fe80::/64`).
    #[test]
    fn a_zone_picks_the_link_of_a_link_local_target() {
        let mut ifaces = overlapping();
        let mut link_local = ifaces[1].addrs[0].clone();
        (link_local.addr, link_local.prefix) = ("fe80::1".parse().unwrap(), 64);
        ifaces[1].addrs.push(link_local.clone());
        // Index 1 is lo in every namespace, so `%1` parses; here it is an Ethernet link.
        ifaces.retain(|iface| iface.name != "lo");
        let mut zoned = ifaces[1].clone();
        (zoned.name, zoned.index, zoned.flags) = ("eth9".to_string(), 1, vec![]);
        zoned.addrs = vec![link_local];
        ifaces.push(zoned);
        let find = |words: &[&str], interface| {
            find_in(&ifaces, &targets(words), interface, (OnLink::Ndp, true))
                .map(|link| link.expect("alone, a link or an error").name)
        };
        assert_eq!(find(&["fe80::5%1"], None).unwrap(), "eth9");
        assert_eq!(find(&["fe80::5%1"], Some("eth9")).unwrap(), "eth9");
        assert_eq!(find(&["fe80::5"], None).unwrap(), "eth0");
        for (words, interface) in [
            (&["fe80::5%1"][..], Some("eth0")),
            (&["fe80::6", "fe80::5%1"][..], None),
        ] {
            let err = find(words, interface).unwrap_err().to_string();
            assert!(err.contains("on the link of eth9, not of eth0"), "{err}");
        }
    }

    #[test]
    fn the_longest_prefix_picks_the_link_and_the_arp_sender() {
        let find = |words: &[&str], interface| {
            let found = find_in(
                &overlapping(),
                &targets(words),
                interface,
                (OnLink::Arp, true),
            );
            found.map(|link| link.expect("alone, a link or an error"))
        };
        assert_eq!(find(&["198.18.5.5"], None).unwrap().name, "eth1");
        assert_eq!(find(&["198.18.7.5"], None).unwrap().name, "eth0");
        let err = find(&["198.18.7.5", "198.18.5.5"], None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("198.18.5.5: on-link of eth1, not of eth0 (a longer prefix;"),
            "{err}"
        );
        // A link that is down has no routes: the shorter prefix of one that is up wins.
        let mut down = overlapping();
        down[2].up = false;
        let link = find_in(&down, &targets(&["198.18.5.5"]), None, (OnLink::Arp, true));
        assert_eq!(link.unwrap().map(|l| l.name).as_deref(), Some("eth0"));
        // Named with -I, the link's own prefix is enough.
        let link = find(&["198.18.5.5"], Some("eth0")).unwrap();
        assert_eq!(link.name, "eth0");
        let sender = |target: &str| link.sender(target.parse().unwrap()).to_string();
        assert_eq!(sender("198.18.5.5"), "198.18.0.1");
        assert_eq!(sender("198.19.0.7"), "198.19.0.1");
        assert_eq!(sender("203.0.113.1"), "198.18.0.1");
        // A DAD-failed address is not this host's to answer for.
        assert!(!link.own.contains(&"2001:db8::6".parse().unwrap()));
        assert!(link.own.contains(&"198.19.0.1".parse().unwrap()));
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
    fn with_other_methods_the_targets_off_the_link_are_left_to_them() {
        let mixed = targets(&["198.18.0.5", "2001:db8::5"]);
        let with_others = |targets: &Targets, method| {
            let found = find_in(&interfaces(), targets, None, (method, false));
            found.unwrap().map(|link| link.name)
        };
        assert_eq!(with_others(&mixed, OnLink::Arp).as_deref(), Some("eth0"));
        assert_eq!(with_others(&mixed, OnLink::Ndp).as_deref(), Some("eth0"));
        // Nothing of its family, or nothing on a link: nothing to do, not an error.
        assert_eq!(with_others(&targets(&["2001:db8::5"]), OnLink::Arp), None);
        let off = targets(&["198.51.100.7", "2001:db8::5"]);
        assert_eq!(with_others(&off, OnLink::Arp), None);
        // A routed target beside on-link ones: the link is found, the target left out.
        let routed = targets(&["198.51.100.7", "198.18.0.5"]);
        let found = find_in(&interfaces(), &routed, None, (OnLink::Arp, false));
        let link = found.unwrap().expect("a link");
        assert!(link.holds("198.18.0.5".parse().unwrap()));
        assert!(!link.holds("198.51.100.7".parse().unwrap()));
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
