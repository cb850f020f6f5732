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
/// interface whose prefix holds the first target. Input errors name the first target that
/// is of the wrong family or not on that link, or an interface that cannot do `method`.
pub fn find(targets: &Targets, interface: Option<&str>, method: OnLink) -> Result<Link, Error> {
    let interfaces = crate::iface::list()?;
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
        if !method.admits(addr) {
            return Err(wrong_family(addr, method).into());
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
    let (_, link) = chosen.ok_or_else(|| ParseError::new("targets", "none given"))?;
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

    #[test]
    fn loopback_is_no_link_and_documentation_addresses_are_not_on_link() {
        // The host's own namespace: whatever its interfaces, 192.0.2.0/24 (TEST-NET-1) is on
        // none of them, and loopback has no Ethernet address. Nothing is sent.
        let err = find(&targets(&["192.0.2.7"]), None, OnLink::Arp).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("192.0.2.7: not on-link (arp needs"),
            "{err}"
        );
        let err = find(&targets(&["127.0.0.1"]), Some("lo"), OnLink::Arp).unwrap_err();
        assert_eq!(
            err.to_string(),
            "lo: has no Ethernet address (arp needs an Ethernet-like interface)"
        );
        let err = find(&targets(&["::1"]), None, OnLink::Arp).unwrap_err();
        assert!(err.to_string().contains("use --method ndp"), "{err}");
        let err = find(&targets(&["192.0.2.7"]), Some("nk-none0"), OnLink::Arp).unwrap_err();
        assert_eq!(err.to_string(), "nk-none0: no such interface");
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
