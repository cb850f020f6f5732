//! Network interfaces, as the kernel of the caller's network namespace sees them: every link
//! (also down ones and ones without addresses) with its flags, MTU, MAC, operstate, kind,
//! parent, master, qdisc, queue length, alternative names, alias, counters, speed and duplex,
//! and every IPv4/IPv6 address with its scope, broadcast, label, peer, flags and lifetimes;
//! and a stream of link and address events ([`Watcher`]).
//!
//! Everything comes from rtnetlink (`RTM_GETLINK`/`RTM_GETADDR` dumps, the `RTNLGRP_LINK`
//! and `RTNLGRP_IPV4/6_IFADDR` multicast groups) and, for speed and duplex, from ethtool's
//! generic-netlink family. Nothing is read from /sys or `getifaddrs(3)`: /sys may belong to
//! another namespace (`nsenter --net` does not remount it), and `getifaddrs` reports IPv4
//! addresses under their label (`eth0:1`) as if it were an interface.
//!
//! Layout: `netlink` (request and reply on a socket), `escape` (names that are not UTF-8),
//! `link` and `addr` (one message each), `names` (kernel numbers as `ip` words), `ethtool`,
//! `snapshot` (dumps joined into interfaces), `watch` (events). The records are in
//! [`crate::report::iface`].

mod addr;
mod escape;
mod ethtool;
mod ifname;
mod link;
mod names;
mod netlink;
mod snapshot;
mod watch;

use std::io;

pub use escape::escape_bytes;
pub use ifname::{check as check_name, NameError, NameErrorKind};
pub use names::format_mac;
pub use watch::Watcher;

use crate::error::Error;
use crate::report::iface::Interface;

/// Every interface of this network namespace, ordered by index.
pub fn list() -> Result<Vec<Interface>, Error> {
    let mut rtnl = snapshot::rtnetlink()?;
    let mut links = snapshot::links(&mut rtnl)?;
    snapshot::add_addrs(&mut rtnl, &mut links, None)?;
    Ok(snapshot::interfaces(links, None))
}

/// The interface called `name` (its name or one of its alternative names), or
/// [`Error::NoSuchInterface`]; [`Error::Name`] for a name no interface can have (see
/// [`check_name`]). An IPv4 address label such as `eth0:1` is not an interface.
pub fn show(name: &str) -> Result<Interface, Error> {
    check_name(name)?;
    let mut rtnl = snapshot::rtnetlink()?;
    let (mut links, index) = match snapshot::named(&mut rtnl, name)? {
        Some(found) => found,
        // An alternative name, one written with escapes, or none: every link, and a search.
        None => {
            let links = snapshot::links(&mut rtnl)?;
            let index = snapshot::find(&links, name)?;
            (links, index)
        }
    };
    snapshot::add_addrs(&mut rtnl, &mut links, Some(index))?;
    snapshot::interfaces(links, Some(index))
        .pop()
        .ok_or_else(|| Error::NoSuchInterface(name.to_string()))
}

/// A failed conversation with the kernel.
fn kernel_error(err: io::Error) -> Error {
    Error::io("read the interfaces from the kernel (rtnetlink)", err)
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    #[test]
    fn loopback_is_listed_with_its_addresses() {
        let all = list().unwrap();
        let lo = all.iter().find(|i| i.name == "lo").expect("lo");
        assert!(lo.flags.contains(&"LOOPBACK".to_string()));
        assert_eq!(lo.index, 1);
        assert_eq!(lo.mtu, Some(65536));
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
    fn show_finds_what_list_lists() {
        let lo = show("lo").unwrap();
        let listed = list().unwrap().into_iter().find(|i| i.name == "lo");
        assert_eq!(lo.index, listed.expect("lo").index);
    }

    #[test]
    fn unknown_interface_is_an_input_error() {
        let err = show("nosuchif0").unwrap_err();
        assert_eq!(err.to_string(), "nosuchif0: no such interface");
        assert_eq!(err.class(), crate::ErrorClass::Input);
    }

    #[test]
    fn a_name_too_long_for_any_interface_says_so() {
        let err = show("nosuchinterface0").unwrap_err();
        assert!(matches!(err, Error::Name(_)), "{err}");
        assert_eq!(err.class(), crate::ErrorClass::Input);
        let err = show("").unwrap_err();
        assert_eq!(err.to_string(), "'': empty interface name");
    }
}
