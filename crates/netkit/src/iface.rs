//! Network interfaces: every link, also down ones and ones without addresses, with flags,
//! MTU, MAC, operational state and every IPv4/IPv6 address (seed recipes 4-6).
//!
//! Links and addresses come from `getifaddrs(3)` (which lists every link through netlink);
//! MTU and operstate from `/sys/class/net/NAME`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use nix::ifaddrs::{getifaddrs, InterfaceAddress};
use nix::net::if_::InterfaceFlags;

use crate::error::Error;
use crate::report::{AddrFamily, IfAddr, Interface};
use crate::target::Family;

/// Kernel flag names in the order `ip link` prints them.
const FLAG_NAMES: &[(InterfaceFlags, &str)] = &[
    (InterfaceFlags::IFF_UP, "UP"),
    (InterfaceFlags::IFF_BROADCAST, "BROADCAST"),
    (InterfaceFlags::IFF_DEBUG, "DEBUG"),
    (InterfaceFlags::IFF_LOOPBACK, "LOOPBACK"),
    (InterfaceFlags::IFF_POINTOPOINT, "POINTOPOINT"),
    (InterfaceFlags::IFF_NOTRAILERS, "NOTRAILERS"),
    (InterfaceFlags::IFF_RUNNING, "RUNNING"),
    (InterfaceFlags::IFF_NOARP, "NOARP"),
    (InterfaceFlags::IFF_PROMISC, "PROMISC"),
    (InterfaceFlags::IFF_ALLMULTI, "ALLMULTI"),
    (InterfaceFlags::IFF_MASTER, "MASTER"),
    (InterfaceFlags::IFF_SLAVE, "SLAVE"),
    (InterfaceFlags::IFF_MULTICAST, "MULTICAST"),
    (InterfaceFlags::IFF_PORTSEL, "PORTSEL"),
    (InterfaceFlags::IFF_AUTOMEDIA, "AUTOMEDIA"),
    (InterfaceFlags::IFF_DYNAMIC, "DYNAMIC"),
    (InterfaceFlags::IFF_LOWER_UP, "LOWER_UP"),
    (InterfaceFlags::IFF_DORMANT, "DORMANT"),
    (InterfaceFlags::IFF_ECHO, "ECHO"),
];

/// Every interface of this network namespace, ordered by index.
pub fn list() -> Result<Vec<Interface>, Error> {
    let entries = getifaddrs().map_err(|e| Error::io("list interfaces", e.into()))?;
    let mut by_name: BTreeMap<String, Interface> = BTreeMap::new();
    for entry in entries {
        let iface = by_name
            .entry(entry.interface_name.clone())
            .or_insert_with(|| new_interface(&entry));
        absorb(iface, &entry);
    }
    let mut all: Vec<Interface> = by_name.into_values().collect();
    all.sort_by_key(|iface| iface.index);
    Ok(all)
}

/// The interface called `name`, or [`Error::NoSuchInterface`].
pub fn show(name: &str) -> Result<Interface, Error> {
    list()?
        .into_iter()
        .find(|iface| iface.name == name)
        .ok_or_else(|| Error::NoSuchInterface(name.to_string()))
}

/// The addresses of interface `name` of the given family.
pub fn addrs(name: &str, family: Family) -> Result<Vec<IfAddr>, Error> {
    let iface = show(name)?;
    Ok(iface
        .addrs
        .into_iter()
        .filter(|a| family.admits(&a.addr))
        .collect())
}

fn new_interface(entry: &InterfaceAddress) -> Interface {
    let name = entry.interface_name.clone();
    let index = nix::net::if_::if_nametoindex(name.as_str()).unwrap_or(0);
    Interface {
        index,
        up: entry.flags.contains(InterfaceFlags::IFF_UP),
        running: entry.flags.contains(InterfaceFlags::IFF_RUNNING),
        flags: flag_names(entry.flags),
        mtu: sysfs(&name, "mtu").and_then(|s| s.parse().ok()),
        mac: None,
        operstate: sysfs(&name, "operstate").unwrap_or_else(|| "unknown".to_string()),
        addrs: Vec::new(),
        name,
    }
}

/// Adds what one `getifaddrs` entry says: a MAC (AF_PACKET) or an IP address and mask.
fn absorb(iface: &mut Interface, entry: &InterfaceAddress) {
    let Some(address) = &entry.address else {
        return;
    };
    if let Some(link) = address.as_link_addr() {
        if let Some(mac) = link.addr() {
            iface.mac = Some(format_mac(&mac));
        }
        return;
    }
    let ip: Option<IpAddr> = address
        .as_sockaddr_in()
        .map(|a| IpAddr::V4(a.ip()))
        .or_else(|| address.as_sockaddr_in6().map(|a| IpAddr::V6(a.ip())));
    let Some(ip) = ip else { return };
    let prefix = entry.netmask.as_ref().map_or(0, |mask| {
        mask.as_sockaddr_in()
            .map(|m| m.ip().to_bits().count_ones())
            .or_else(|| {
                mask.as_sockaddr_in6()
                    .map(|m| m.ip().to_bits().count_ones())
            })
            .unwrap_or(0)
    });
    let family = if ip.is_ipv4() {
        AddrFamily::Inet
    } else {
        AddrFamily::Inet6
    };
    iface.addrs.push(IfAddr {
        family,
        addr: ip,
        prefix: prefix as u8,
    });
}

fn flag_names(flags: InterfaceFlags) -> Vec<String> {
    FLAG_NAMES
        .iter()
        .filter(|(flag, _)| flags.contains(*flag))
        .map(|(_, name)| (*name).to_string())
        .collect()
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn sysfs(name: &str, attribute: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{name}/{attribute}")).ok()?;
    Some(text.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_listed_with_its_addresses() {
        let all = list().unwrap();
        let lo = all.iter().find(|i| i.name == "lo").expect("lo");
        assert!(lo.flags.contains(&"LOOPBACK".to_string()));
        assert_eq!(lo.index, 1);
        if lo.up {
            assert!(lo
                .addrs
                .iter()
                .any(|a| a.addr == IpAddr::from([127, 0, 0, 1]) && a.prefix == 8));
        }
    }

    #[test]
    fn sorted_by_index_and_unique() {
        let all = list().unwrap();
        assert!(all.windows(2).all(|w| w[0].index < w[1].index));
    }

    #[test]
    fn unknown_interface_is_an_input_error() {
        let err = show("nosuchif0").unwrap_err();
        assert_eq!(err.to_string(), "nosuchif0: no such interface");
        assert_eq!(err.class(), crate::ErrorClass::Input);
    }

    #[test]
    fn macs_are_lower_case_colon_separated() {
        assert_eq!(
            format_mac(&[0x02, 0xfc, 0, 0, 0, 0x1a]),
            "02:fc:00:00:00:1a"
        );
    }
}
