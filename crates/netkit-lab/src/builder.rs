//! The fluent way to describe a lab in a test: chainable setters that take addresses as text
//! and remember the first bad input, so `build()` reports it (nothing is created before).

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use crate::behaviour::{Backend, IcmpLimits, PortAction, Reject, Serve, Unroutable};
use crate::error::{LabError, Result};
use crate::impairment::{Direction, Impairment, Link, Rate};
use crate::lab::Lab;
use crate::ports::Ports;
use crate::spec::{LabSpec, Listener, PortRule};

/// Describes a lab; [`build`](LabBuilder::build) creates it.
///
/// The impairment shortcuts (`delay`, `jitter`, `loss`, `dup`, `reorder`, `rate`) set the far
/// link (router ↔ far) in *both* directions, so a round trip crosses them twice: `delay(15ms)`
/// adds at least 30 ms to a ping's RTT, and `loss(0.02)` loses about 4% of echo round trips.
/// Use [`impair`](LabBuilder::impair) for one link and direction.
#[derive(Debug)]
pub struct LabBuilder {
    spec: LabSpec,
    error: Option<LabError>,
}

impl LabBuilder {
    /// A builder for a lab whose namespace names carry `tag`.
    pub fn new(tag: &str) -> LabBuilder {
        LabBuilder {
            spec: LabSpec::new(tag),
            error: None,
        }
    }

    fn far_both(mut self, set: impl Fn(&mut Impairment)) -> LabBuilder {
        for dir in Direction::ALL {
            set(self.spec.impairment_mut(Link::Far, dir));
        }
        self
    }

    fn fail(mut self, err: LabError) -> LabBuilder {
        self.error.get_or_insert(err);
        self
    }

    /// One-way delay on the far link, both directions.
    pub fn delay(self, d: Duration) -> LabBuilder {
        self.far_both(|i| i.delay = d)
    }

    /// Uniform jitter (± this) on the far link, both directions.
    pub fn jitter(self, d: Duration) -> LabBuilder {
        self.far_both(|i| i.jitter = d)
    }

    /// Loss probability on the far link, each direction.
    pub fn loss(self, p: f64) -> LabBuilder {
        self.far_both(|i| i.loss = p)
    }

    /// Duplication probability on the far link, each direction.
    pub fn dup(self, p: f64) -> LabBuilder {
        self.far_both(|i| i.dup = p)
    }

    /// Reordering probability on the far link, each direction (needs a delay).
    pub fn reorder(self, p: f64) -> LabBuilder {
        self.far_both(|i| i.reorder = p)
    }

    /// Rate limit (`2mbit`, `500kbit`, ...) on the far link, each direction.
    pub fn rate(self, rate: &str) -> LabBuilder {
        match rate.parse::<Rate>() {
            Ok(r) => self.far_both(|i| i.rate = Some(r)),
            Err(e) => self.fail(e),
        }
    }

    /// Replaces the impairment of one link in one direction.
    pub fn impair(mut self, link: Link, dir: Direction, impairment: Impairment) -> LabBuilder {
        *self.spec.impairment_mut(link, dir) = impairment;
        self
    }

    /// Seed of the relay's random decisions (loss, duplication, jitter, reordering).
    pub fn seed(mut self, seed: u64) -> LabBuilder {
        self.spec.seed = seed;
        self
    }

    /// Which machinery impairs the links (default: netem where the kernel has it).
    pub fn backend(mut self, backend: Backend) -> LabBuilder {
        self.spec.backend = backend;
        self
    }

    /// Most packets the relay holds at once (default 16384).
    pub fn max_held(mut self, packets: usize) -> LabBuilder {
        self.spec.max_held = packets;
        self
    }

    /// Whether the relay runs at real-time priority (default: yes; see docs/lab.md).
    pub fn realtime(mut self, on: bool) -> LabBuilder {
        self.spec.realtime = on;
        self
    }

    /// Every address of `block` (`198.18.1.0/24`, `2001:db8:1::/64`) is a live host.
    pub fn hosts(self, block: &str) -> LabBuilder {
        self.with_net(block, |spec, net| spec.blocks.push(net))
    }

    /// `addr` is a live host (blocks aside, only such hosts exist).
    pub fn host(self, addr: &str) -> LabBuilder {
        self.with_addr(addr, |spec, a| spec.hosts.push(a))
    }

    /// Real listeners on `addr` for each port, accepting and closing (made a host if needed).
    pub fn open(self, addr: &str, ports: impl Into<Ports>) -> LabBuilder {
        self.listen(addr, ports.into(), Serve::Close)
    }

    /// Every far host (v4 and v6) has `ports` open: one wildcard listener per port and family
    /// (for many hosts with an open port, where a socket per address would be too many).
    pub fn open_all(mut self, ports: impl Into<Ports>) -> LabBuilder {
        let ports: Ports = ports.into();
        if ports.is_all() {
            return self.fail(LabError::spec("open_all", "listeners need a list of ports"));
        }
        for addr in [IpAddr::from([0u8; 4]), IpAddr::from([0u16; 8])] {
            self.spec.listeners.push(Listener {
                addr,
                ports: ports.iter().collect(),
                serve: Serve::Close,
            });
        }
        self
    }

    /// Real listeners on `addr` for each port that echo what they receive.
    pub fn open_echo(self, addr: &str, ports: impl Into<Ports>) -> LabBuilder {
        self.listen(addr, ports.into(), Serve::Echo)
    }

    fn listen(self, addr: &str, ports: Ports, serve: Serve) -> LabBuilder {
        if ports.is_all() {
            return self.fail(LabError::spec(addr, "listeners need a list of ports"));
        }
        self.with_addr(addr, |spec, addr| {
            if !spec.is_host(addr) {
                spec.hosts.push(addr);
            }
            let ports = ports.iter().collect();
            spec.listeners.push(Listener { addr, ports, serve });
        })
    }

    /// Silently drops TCP probes to `target` (address or block) on `ports` (`Ports::all()`
    /// for a filtered host).
    pub fn drop_ports(self, target: &str, ports: impl Into<Ports>) -> LabBuilder {
        self.rule(target, ports.into(), PortAction::Drop)
    }

    /// Rejects TCP probes to `target` on `ports` with `how`.
    pub fn reject(self, target: &str, ports: impl Into<Ports>, how: Reject) -> LabBuilder {
        self.rule(target, ports.into(), PortAction::Reject(how))
    }

    fn rule(self, target: &str, ports: Ports, action: PortAction) -> LabBuilder {
        self.with_net(target, |spec, target| {
            spec.port_rules.push(PortRule {
                target,
                ports,
                action,
            })
        })
    }

    /// Hosts in `target` drop ICMP echo requests (their ports still answer).
    pub fn no_echo(self, target: &str) -> LabBuilder {
        self.with_net(target, |spec, net| spec.no_echo.push(net))
    }

    /// The far and router kernels' ICMP rate limits (default: kernel defaults).
    pub fn icmp_limits(mut self, limits: IcmpLimits) -> LabBuilder {
        self.spec.icmp_limits = limits;
        self
    }

    /// The far firewall drops TCP SYNs above `per_sec` per second per source address.
    pub fn syn_limit(mut self, per_sec: u32) -> LabBuilder {
        self.spec.syn_limit = Some(per_sec);
        self
    }

    /// The far firewall drops ICMP echo requests above `per_sec` per second.
    pub fn icmp_police(mut self, per_sec: u32) -> LabBuilder {
        self.spec.icmp_police = Some(per_sec);
        self
    }

    /// `prefix` has no route (see [`Unroutable`] for how each kind shows).
    pub fn unroutable(self, prefix: &str, how: Unroutable) -> LabBuilder {
        self.with_net(prefix, |spec, net| spec.unroutable.push((net, how)))
    }

    fn with_net(self, text: &str, add: impl FnOnce(&mut LabSpec, IpNet)) -> LabBuilder {
        match parse_net(text) {
            Ok(net) => self.apply(|spec| add(spec, net)),
            Err(e) => self.fail(e),
        }
    }

    fn with_addr(self, text: &str, add: impl FnOnce(&mut LabSpec, IpAddr)) -> LabBuilder {
        match text.parse::<IpAddr>() {
            Ok(addr) => self.apply(|spec| add(spec, addr)),
            Err(_) => self.fail(LabError::spec(text, "expected an IP address")),
        }
    }

    fn apply(mut self, f: impl FnOnce(&mut LabSpec)) -> LabBuilder {
        f(&mut self.spec);
        self
    }

    /// The validated specification, or the first bad input.
    pub fn spec(self) -> Result<LabSpec> {
        if let Some(err) = self.error {
            return Err(err);
        }
        self.spec.validate()?;
        Ok(self.spec)
    }

    /// Creates the lab (needs root): namespaces, links, hosts, rules, listeners, impairments.
    pub fn build(self) -> Result<Lab> {
        Lab::start(self.spec()?)
    }
}

/// Parses an address (a one-address prefix) or a prefix; host bits must be zero.
pub fn parse_net(text: &str) -> Result<IpNet> {
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(addr));
    }
    let net: IpNet = text.parse().map_err(|_| {
        LabError::spec(
            text,
            "expected an address or a prefix such as 198.18.1.0/24",
        )
    })?;
    if net.trunc() != net {
        return Err(LabError::spec(
            text,
            format!("host bits set; did you mean {}?", net.trunc()),
        ));
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortcuts_impair_the_far_link_both_ways() {
        let spec = LabBuilder::new("t")
            .delay(Duration::from_millis(15))
            .loss(0.02)
            .rate("2mbit")
            .spec()
            .unwrap();
        for dir in Direction::ALL {
            let far = spec.impairment(Link::Far, dir);
            assert_eq!(far.delay, Duration::from_millis(15));
            assert_eq!(far.loss, 0.02);
            assert_eq!(far.rate, Some(Rate(2_000_000)));
            assert_eq!(spec.impairment(Link::Near, dir), &Impairment::none());
        }
    }

    #[test]
    fn open_makes_a_host_and_bad_input_is_reported_at_build() {
        let spec = LabBuilder::new("t")
            .open("198.18.1.5", &[22, 80])
            .spec()
            .unwrap();
        assert_eq!(spec.hosts, ["198.18.1.5".parse::<IpAddr>().unwrap()]);
        assert_eq!(spec.listeners[0].ports, [22, 80]);
        let err = LabBuilder::new("t")
            .hosts("198.18.1.1/24")
            .spec()
            .unwrap_err();
        assert!(err.to_string().contains("198.18.1.0/24"), "{err}");
        assert!(LabBuilder::new("t").open("nope", 22).spec().is_err());
        assert!(LabBuilder::new("t").rate("fast").spec().is_err());
    }
}
