//! The validated description of a lab: what the builder and the `netkit-lab` binary produce
//! and what [`Lab::start`](crate::Lab::start) builds. Plain data, checked before any I/O.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::behaviour::{Backend, IcmpLimits, PortAction, Serve, Unroutable};
use crate::error::{LabError, Result};
use crate::impairment::{Direction, Impairment, Link};
use crate::ports::Ports;
use crate::topology::is_test_net;

/// A far-side listener: real sockets on each port of one address.
#[derive(Clone, Debug, PartialEq)]
pub struct Listener {
    /// The address listened on: a far host, or the unspecified address of a family for every
    /// far host of that family.
    pub addr: IpAddr,
    /// The ports listened on.
    pub ports: Vec<u16>,
    /// What happens to accepted connections.
    pub serve: Serve,
}

/// A far-side firewall rule for TCP probes to `target` on `ports`.
#[derive(Clone, Debug, PartialEq)]
pub struct PortRule {
    /// The destination addresses the rule applies to.
    pub target: IpNet,
    /// The destination ports it applies to (empty: every port).
    pub ports: Ports,
    /// What happens to matching probes.
    pub action: PortAction,
}

/// Everything that defines one lab; build one with [`LabBuilder`](crate::LabBuilder).
#[derive(Clone, Debug, PartialEq)]
pub struct LabSpec {
    /// Tag in the namespace names (letters, digits, `-`, `_`; at most 16).
    pub tag: String,
    /// Seed of the relay's random decisions.
    pub seed: u64,
    /// Impairments by `[link][direction]` (see [`LabSpec::impairment`]).
    pub links: [[Impairment; 2]; 2],
    /// Blocks where every address is a host (AnyIP).
    pub blocks: Vec<IpNet>,
    /// Single hosts (only these exist, besides the blocks).
    pub hosts: Vec<IpAddr>,
    /// Listeners (open ports).
    pub listeners: Vec<Listener>,
    /// DROP and REJECT rules, first match wins.
    pub port_rules: Vec<PortRule>,
    /// Hosts that drop ICMP echo requests.
    pub no_echo: Vec<IpNet>,
    /// The far and router kernels' ICMP rate limits.
    pub icmp_limits: IcmpLimits,
    /// Drop TCP SYNs above this many per second per source.
    pub syn_limit: Option<u32>,
    /// Drop ICMP echo requests above this many per second (all sources together).
    pub icmp_police: Option<u32>,
    /// Prefixes without a route, and how that shows.
    pub unroutable: Vec<(IpNet, Unroutable)>,
    /// Which machinery impairs the links.
    pub backend: Backend,
    /// Most packets the relay holds at once; beyond it, packets are dropped and counted.
    pub max_held: usize,
    /// Whether the relay thread runs at real-time priority (SCHED_FIFO 1): releases on time
    /// on a busy machine, at about twice the CPU per packet (docs/lab.md).
    pub realtime: bool,
}

impl LabSpec {
    /// An empty lab (no hosts, no impairment) with the given tag.
    pub fn new(tag: &str) -> LabSpec {
        LabSpec {
            tag: tag.to_string(),
            seed: 1,
            links: Default::default(),
            blocks: Vec::new(),
            hosts: Vec::new(),
            listeners: Vec::new(),
            port_rules: Vec::new(),
            no_echo: Vec::new(),
            icmp_limits: IcmpLimits::Default,
            syn_limit: None,
            icmp_police: None,
            unroutable: Vec::new(),
            backend: Backend::Auto,
            max_held: 16_384,
            realtime: true,
        }
    }

    /// The impairment of `link` in direction `dir`.
    pub fn impairment(&self, link: Link, dir: Direction) -> &Impairment {
        &self.links[link.index()][dir.index()]
    }

    /// Mutable access to the impairment of `link` in direction `dir`.
    pub fn impairment_mut(&mut self, link: Link, dir: Direction) -> &mut Impairment {
        &mut self.links[link.index()][dir.index()]
    }

    /// Whether `addr` is a far host (in a block or one of the single hosts).
    pub fn is_host(&self, addr: IpAddr) -> bool {
        self.hosts.contains(&addr) || self.blocks.iter().any(|b| b.contains(&addr))
    }

    /// IPv6 block hosts named alone by a REJECT rule: they get their address assigned, so
    /// their ICMPv6 errors come from themselves (Linux picks the source of an ICMPv6 error
    /// among assigned addresses, and AnyIP addresses are not assigned).
    pub fn v6_error_sources(&self) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> = self
            .port_rules
            .iter()
            .filter(|r| matches!(r.action, PortAction::Reject(_)) && r.target.prefix_len() == 128)
            .map(|r| r.target.addr())
            .filter(|a| !self.hosts.contains(a) && self.is_host(*a))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Checks the whole specification: tag, address ranges, impairments, limits.
    pub fn validate(&self) -> Result<()> {
        let tag_ok = !self.tag.is_empty()
            && self.tag.len() <= 16
            && self
                .tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !tag_ok {
            return Err(LabError::spec(
                &self.tag,
                "expected a tag of 1-16 letters, digits, - or _",
            ));
        }
        for link in Link::ALL {
            for dir in Direction::ALL {
                self.impairment(link, dir)
                    .validate(&format!("{link:?} link {dir:?}"))?;
            }
        }
        self.validate_addresses()?;
        for limit in [self.syn_limit, self.icmp_police].into_iter().flatten() {
            if limit == 0 || limit > 1_000_000 {
                return Err(LabError::spec(
                    limit.to_string(),
                    "expected 1 to 1000000 per second",
                ));
            }
        }
        if self.max_held == 0 || self.max_held > 1_000_000 {
            return Err(LabError::spec(
                self.max_held.to_string(),
                "expected 1 to 1000000 held",
            ));
        }
        Ok(())
    }

    /// Every address and prefix must lie in the test ranges, outside the lab's own links.
    fn validate_addresses(&self) -> Result<()> {
        let nets = self
            .blocks
            .iter()
            .copied()
            .chain(self.hosts.iter().map(|&h| IpNet::from(h)))
            .chain(
                self.listeners
                    .iter()
                    .filter(|l| !l.addr.is_unspecified())
                    .map(|l| IpNet::from(l.addr)),
            )
            .chain(self.port_rules.iter().map(|r| r.target))
            .chain(self.no_echo.iter().copied())
            .chain(self.unroutable.iter().map(|u| u.0));
        for net in nets {
            if !is_test_net(&net) {
                return Err(LabError::spec(
                    net.to_string(),
                    "expected addresses inside 198.18.0.0/15 or 2001:db8::/32, outside the \
                     lab's own links 198.19.254.0/24 and 2001:db8:ffff::/48",
                ));
            }
        }
        let sockets: usize = self.listeners.iter().map(|l| l.ports.len()).sum();
        if sockets > 4096 {
            return Err(LabError::spec(
                sockets.to_string(),
                "at most 4096 listening sockets",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_keeps_addresses_inside_the_test_ranges() {
        let mut spec = LabSpec::new("t");
        assert!(spec.validate().is_ok());
        spec.blocks.push("10.0.0.0/24".parse().unwrap());
        assert!(spec.validate().is_err());
        spec.blocks = vec!["198.19.254.0/28".parse().unwrap()];
        assert!(spec.validate().is_err());
        spec.blocks = vec!["198.18.1.0/24".parse().unwrap()];
        assert!(spec.validate().is_ok());
        assert!(spec.is_host("198.18.1.9".parse().unwrap()));
        assert!(!spec.is_host("198.18.2.9".parse().unwrap()));
    }

    #[test]
    fn v6_hosts_rejected_alone_answer_from_themselves() {
        use crate::behaviour::Reject;
        let spec = crate::builder::LabBuilder::new("t")
            .hosts("2001:db8:1::/64")
            .host("2001:db8:2::1")
            .reject("2001:db8:1::5", 81, Reject::PortUnreachable)
            .reject("2001:db8:1::/120", 82, Reject::PortUnreachable)
            .reject("2001:db8:2::1", 81, Reject::PortUnreachable)
            .drop_ports("2001:db8:1::6", 81)
            .spec()
            .unwrap();
        assert_eq!(
            spec.v6_error_sources(),
            ["2001:db8:1::5".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn validation_checks_tag_and_limits() {
        assert!(LabSpec::new("bad tag").validate().is_err());
        assert!(LabSpec::new("scan-v6").validate().is_ok());
        assert!(LabSpec::new("").validate().is_err());
        let mut spec = LabSpec::new("t");
        spec.syn_limit = Some(0);
        assert!(spec.validate().is_err());
    }
}
