//! Ground truth: what the lab was built to answer for each address and port, derived from its
//! specification with the same precedence the namespaces apply (routes, then the far
//! firewall's rules in order, then the listeners). Rate limits (SYN limiting, ICMP policing,
//! ICMP rate limits) change how many probes get through, never the truth.

use std::net::IpAddr;

use crate::behaviour::{PortAction, Reject, Unroutable};
use crate::spec::LabSpec;

/// What a TCP port of the far side is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortTruth {
    /// A listener accepts connections.
    Open,
    /// Nothing listens: the far kernel answers RST.
    Closed,
    /// The firewall drops probes silently.
    Dropped,
    /// The firewall answers with a rejection.
    Rejected(Reject),
    /// The address is no host: probes vanish silently (nothing answers).
    NoHost,
    /// The address has no route (see [`Unroutable`]).
    Unroutable(Unroutable),
}

/// What a far address does with ICMP echo requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EchoTruth {
    /// A host answers echo requests (ICMP policing may still drop some).
    Answers,
    /// A host that drops echo requests.
    Ignores,
    /// No host: nothing answers.
    NoHost,
    /// The address has no route.
    Unroutable(Unroutable),
}

/// The ground truth of one lab (borrowed from its specification).
#[derive(Clone, Copy, Debug)]
pub struct Truth<'a> {
    spec: &'a LabSpec,
}

impl<'a> Truth<'a> {
    /// The truth of the lab specified by `spec`.
    pub fn new(spec: &'a LabSpec) -> Truth<'a> {
        Truth { spec }
    }

    fn unroutable(&self, addr: IpAddr) -> Option<Unroutable> {
        let mut matching: Vec<_> = self
            .spec
            .unroutable
            .iter()
            .filter(|(net, _)| net.contains(&addr))
            .collect();
        matching.sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix_len()));
        matching.first().map(|(_, how)| *how)
    }

    /// What TCP `port` of `addr` is.
    pub fn port(&self, addr: IpAddr, port: u16) -> PortTruth {
        if let Some(how) = self.unroutable(addr) {
            return PortTruth::Unroutable(how);
        }
        if !self.spec.is_host(addr) {
            return PortTruth::NoHost;
        }
        let rule = self
            .spec
            .port_rules
            .iter()
            .find(|r| r.target.contains(&addr) && r.ports.contains(port));
        match rule.map(|r| r.action) {
            Some(PortAction::Drop) => PortTruth::Dropped,
            Some(PortAction::Reject(how)) => PortTruth::Rejected(how),
            None if self.listens(addr, port) => PortTruth::Open,
            None => PortTruth::Closed,
        }
    }

    fn listens(&self, addr: IpAddr, port: u16) -> bool {
        self.spec
            .listeners
            .iter()
            .any(|l| covers(l.addr, addr) && l.ports.contains(&port))
    }

    /// The open ports of `addr`, sorted.
    pub fn open_ports(&self, addr: IpAddr) -> Vec<u16> {
        let mut ports: Vec<u16> = self
            .spec
            .listeners
            .iter()
            .filter(|l| covers(l.addr, addr))
            .flat_map(|l| l.ports.iter().copied())
            .filter(|&p| self.port(addr, p) == PortTruth::Open)
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// What `addr` does with ICMP echo requests.
    pub fn echo(&self, addr: IpAddr) -> EchoTruth {
        if let Some(how) = self.unroutable(addr) {
            return EchoTruth::Unroutable(how);
        }
        if !self.spec.is_host(addr) {
            return EchoTruth::NoHost;
        }
        if self.spec.no_echo.iter().any(|n| n.contains(&addr)) {
            return EchoTruth::Ignores;
        }
        EchoTruth::Answers
    }

    /// Whether `addr` is a far host (whether or not it answers echo).
    pub fn is_host(&self, addr: IpAddr) -> bool {
        self.unroutable(addr).is_none() && self.spec.is_host(addr)
    }

    /// The addresses among `candidates` that answer ICMP echo, in the given order.
    pub fn pingable(&self, candidates: impl IntoIterator<Item = IpAddr>) -> Vec<IpAddr> {
        candidates
            .into_iter()
            .filter(|&a| self.echo(a) == EchoTruth::Answers)
            .collect()
    }
}

/// Whether a listener on `bound` accepts connections to `addr` (a wildcard covers its family).
fn covers(bound: IpAddr, addr: IpAddr) -> bool {
    bound == addr || (bound.is_unspecified() && bound.is_ipv6() == addr.is_ipv6())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::LabBuilder;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ports_follow_routes_then_rules_then_listeners() {
        let spec = LabBuilder::new("t")
            .hosts("198.18.1.0/28")
            .open("198.18.1.5", &[22, 80, 443])
            .drop_ports("198.18.1.5", 443)
            .reject("198.18.1.0/28", 25, Reject::PortUnreachable)
            .unroutable("198.18.9.0/24", Unroutable::Net)
            .spec()
            .unwrap();
        let t = Truth::new(&spec);
        assert_eq!(t.port(ip("198.18.1.5"), 22), PortTruth::Open);
        assert_eq!(t.port(ip("198.18.1.5"), 443), PortTruth::Dropped);
        assert_eq!(t.port(ip("198.18.1.5"), 23), PortTruth::Closed);
        assert_eq!(
            t.port(ip("198.18.1.9"), 25),
            PortTruth::Rejected(Reject::PortUnreachable)
        );
        assert_eq!(t.port(ip("198.18.1.99"), 22), PortTruth::NoHost);
        assert_eq!(
            t.port(ip("198.18.9.1"), 22),
            PortTruth::Unroutable(Unroutable::Net)
        );
        assert_eq!(t.open_ports(ip("198.18.1.5")), [22, 80]);
    }

    #[test]
    fn open_all_opens_the_port_on_every_host() {
        let spec = LabBuilder::new("t")
            .hosts("198.18.1.0/24")
            .hosts("2001:db8:1::/64")
            .open_all(&[80])
            .drop_ports("198.18.1.7", 80)
            .spec()
            .unwrap();
        let t = Truth::new(&spec);
        assert_eq!(t.port(ip("198.18.1.9"), 80), PortTruth::Open);
        assert_eq!(t.port(ip("2001:db8:1::9"), 80), PortTruth::Open);
        assert_eq!(t.port(ip("198.18.1.7"), 80), PortTruth::Dropped);
        assert_eq!(t.port(ip("198.18.1.9"), 81), PortTruth::Closed);
        assert_eq!(t.port(ip("198.18.2.9"), 80), PortTruth::NoHost);
        assert_eq!(t.open_ports(ip("198.18.1.9")), [80]);
    }

    #[test]
    fn echo_truth() {
        let spec = LabBuilder::new("t")
            .hosts("198.18.1.0/30")
            .host("198.18.2.1")
            .no_echo("198.18.1.2")
            .spec()
            .unwrap();
        let t = Truth::new(&spec);
        let all = [
            "198.18.1.0",
            "198.18.1.1",
            "198.18.1.2",
            "198.18.1.3",
            "198.18.1.4",
            "198.18.2.1",
        ];
        let live = t.pingable(all.iter().map(|s| ip(s)));
        assert_eq!(
            live,
            [
                ip("198.18.1.0"),
                ip("198.18.1.1"),
                ip("198.18.1.3"),
                ip("198.18.2.1")
            ]
        );
        assert_eq!(t.echo(ip("198.18.1.2")), EchoTruth::Ignores);
        assert!(t.is_host(ip("198.18.1.2")));
    }
}
