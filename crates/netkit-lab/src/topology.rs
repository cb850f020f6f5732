//! The lab's fixed address plan and wiring: three namespaces, two veth links, addresses,
//! routes and forwarding. Everything lives inside the test ranges 198.18.0.0/15 and
//! 2001:db8::/32; no namespace has a route or a link to the host's namespace.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::behaviour::Unroutable;
use crate::error::Result;
use crate::netns::Netns;

/// The IPv4 test range the lab may use (RFC 2544 benchmarking).
pub const TEST_V4: &str = "198.18.0.0/15";
/// The IPv6 test range the lab may use (RFC 3849 documentation).
pub const TEST_V6: &str = "2001:db8::/32";
/// The part of the IPv4 test range the lab's own links use (not for hosts).
pub const INFRA_V4: &str = "198.19.254.0/24";
/// The part of the IPv6 test range the lab's own links use (not for hosts).
pub const INFRA_V6: &str = "2001:db8:ffff::/48";

/// The scanner's IPv4 address (its source address for everything it sends).
pub const SCANNER_V4: Ipv4Addr = Ipv4Addr::new(198, 19, 254, 2);
/// The scanner's IPv6 address.
pub const SCANNER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 2);
/// The router's IPv4 address on the scanner's link (the scanner's gateway).
pub const ROUTER_NEAR_V4: Ipv4Addr = Ipv4Addr::new(198, 19, 254, 1);
/// The router's IPv6 address on the scanner's link.
pub const ROUTER_NEAR_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1);
/// The router's IPv4 address on the far link.
pub const ROUTER_FAR_V4: Ipv4Addr = Ipv4Addr::new(198, 19, 254, 5);
/// The router's IPv6 address on the far link.
pub const ROUTER_FAR_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 1, 0, 0, 0, 1);
/// The far namespace's own IPv4 address on the far link.
pub const FAR_V4: Ipv4Addr = Ipv4Addr::new(198, 19, 254, 6);
/// The far namespace's own IPv6 address on the far link.
pub const FAR_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 1, 0, 0, 0, 2);

/// Interface names (per namespace, so every lab can use the same ones).
pub(crate) const SCANNER_DEV: &str = "lab0";
pub(crate) const FAR_DEV: &str = "lab0";
pub(crate) const ROUTER_NEAR_DEV: &str = "near0";
pub(crate) const ROUTER_FAR_DEV: &str = "far0";

/// The three namespaces of one lab.
#[derive(Debug)]
pub(crate) struct Namespaces {
    pub scanner: Netns,
    pub router: Netns,
    pub far: Netns,
}

/// Parses one of the range constants above.
pub(crate) fn net(s: &str) -> IpNet {
    s.parse()
        .unwrap_or_else(|_| unreachable!("constant network {s}"))
}

/// Whether `net` lies inside the test ranges and outside the lab's own links.
pub(crate) fn is_test_net(candidate: &IpNet) -> bool {
    let inside = [net(TEST_V4), net(TEST_V6)]
        .iter()
        .any(|t| t.contains(candidate));
    let infra = [net(INFRA_V4), net(INFRA_V6)]
        .iter()
        .any(|i| i.contains(candidate) || candidate.contains(i));
    inside && !infra
}

/// Creates the three namespaces called `PREFIX-scanner`, `PREFIX-router` and `PREFIX-far`.
pub(crate) fn create(prefix: &str) -> Result<Namespaces> {
    let ns = |role: &str| Netns::create(&format!("{prefix}-{role}"));
    let (scanner, router, far) = (ns("scanner")?, ns("router")?, ns("far")?);
    for n in [&scanner, &router, &far] {
        n.sysctl(&[
            "net.ipv6.conf.all.accept_dad=0".into(),
            "net.ipv6.conf.default.accept_dad=0".into(),
        ])?;
    }
    router.sysctl(&[
        "net.ipv4.ip_forward=1".into(),
        "net.ipv6.conf.all.forwarding=1".into(),
    ])?;
    Ok(Namespaces {
        scanner,
        router,
        far,
    })
}

/// Joins the namespaces with two veth pairs and sets addresses and routes.
pub(crate) fn wire(ns: &Namespaces) -> Result<()> {
    ns.router.ip_batch(&[
        format!(
            "link add {ROUTER_NEAR_DEV} type veth peer name {SCANNER_DEV} netns {}",
            ns.scanner.name()
        ),
        format!(
            "link add {ROUTER_FAR_DEV} type veth peer name {FAR_DEV} netns {}",
            ns.far.name()
        ),
    ])?;
    ns.router
        .ip_batch(&side(ROUTER_NEAR_DEV, ROUTER_NEAR_V4, ROUTER_NEAR_V6, 30))?;
    ns.router
        .ip_batch(&side(ROUTER_FAR_DEV, ROUTER_FAR_V4, ROUTER_FAR_V6, 30))?;
    let mut scanner = side(SCANNER_DEV, SCANNER_V4, SCANNER_V6, 30);
    scanner.extend(routes_via(ROUTER_NEAR_V4, ROUTER_NEAR_V6));
    ns.scanner.ip_batch(&scanner)?;
    let mut far = side(FAR_DEV, FAR_V4, FAR_V6, 30);
    far.extend(routes_via(ROUTER_FAR_V4, ROUTER_FAR_V6));
    ns.far.ip_batch(&far)?;
    ns.router.ip_batch(&routes_via(FAR_V4, FAR_V6))
}

/// `ip` commands that bring `dev` up with the two addresses.
fn side(dev: &str, v4: Ipv4Addr, v6: Ipv6Addr, v4_len: u8) -> Vec<String> {
    vec![
        format!("addr add {v4}/{v4_len} dev {dev}"),
        format!("addr add {v6}/64 dev {dev} nodad"),
        format!("link set {dev} up"),
    ]
}

/// Routes for the whole test ranges through the given gateways.
fn routes_via(v4: Ipv4Addr, v6: Ipv6Addr) -> Vec<String> {
    vec![
        format!("route add {TEST_V4} via {v4}"),
        format!("route add {TEST_V6} via {v6}"),
    ]
}

/// Makes the far namespace hold the hosts: every address of each block (AnyIP, a local route
/// on `lo`) and each single address (assigned to `lo`).
pub(crate) fn add_hosts(far: &Netns, blocks: &[IpNet], hosts: &[IpAddr]) -> Result<()> {
    let mut lines: Vec<String> = blocks
        .iter()
        .map(|b| format!("route add local {b} dev lo"))
        .collect();
    lines.extend(hosts.iter().map(|h| match h {
        IpAddr::V4(a) => format!("addr add {a}/32 dev lo"),
        IpAddr::V6(a) => format!("addr add {a}/128 dev lo nodad"),
    }));
    far.ip_batch(&lines)
}

/// Makes prefixes unreachable: a `throw` route in the scanner (`Local`), or a `throw`,
/// `unreachable` or `prohibit` route in the router.
pub(crate) fn add_unroutable(ns: &Namespaces, prefixes: &[(IpNet, Unroutable)]) -> Result<()> {
    let (mut scanner, mut router) = (Vec::new(), Vec::new());
    for (prefix, how) in prefixes {
        match how {
            Unroutable::Local => scanner.push(format!("route add throw {prefix}")),
            Unroutable::Net => router.push(format!("route add throw {prefix}")),
            Unroutable::Host => router.push(format!("route add unreachable {prefix}")),
            Unroutable::Prohibited => router.push(format!("route add prohibit {prefix}")),
        }
    }
    ns.scanner.ip_batch(&scanner)?;
    ns.router.ip_batch(&router)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_nets_exclude_the_links_and_the_outside() {
        let ok = |s: &str| is_test_net(&s.parse().unwrap());
        assert!(ok("198.18.1.0/24") && ok("2001:db8:1::/64") && ok("198.19.1.5/32"));
        assert!(!ok("198.19.254.0/30") && !ok("198.18.0.0/15") && !ok("2001:db8:ffff::5/128"));
        assert!(!ok("10.0.0.0/8") && !ok("2001:db9::/32") && !ok("0.0.0.0/0"));
    }
}
