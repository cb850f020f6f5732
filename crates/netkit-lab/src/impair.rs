//! Puts the specified impairments on the links: rate limits with `tc tbf` on each link's
//! egress, and delay/jitter/loss/duplication/reordering with `netem` qdiscs where the kernel
//! has `sch_netem`, else with the user-space [`Relay`] behind NFQUEUE rules in the router.

use std::sync::OnceLock;

use crate::behaviour::Backend;
use crate::error::{LabError, Result};
use crate::firewall::router_rules;
use crate::impairment::{Direction, Impairment, Link};
use crate::netns::Netns;
use crate::relay::Relay;
use crate::schedule::Path;
use crate::spec::LabSpec;
use crate::topology::{Namespaces, FAR_DEV, ROUTER_FAR_DEV, ROUTER_NEAR_DEV, SCANNER_DEV};

/// Queueing latency a `tbf` rate limit allows before it drops (its queue length).
pub const TBF_LATENCY_MS: u32 = 50;

/// Which machinery ended up impairing the links.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Nothing but (maybe) rate limits: no delay, jitter, loss, duplication or reordering.
    Clean,
    /// `netem` qdiscs.
    Netem,
    /// The user-space NFQUEUE relay.
    Relay,
}

/// Whether the kernel has `sch_netem` (probed once per process, in namespace `ns`).
pub fn netem_available(ns: &Netns) -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let added = ns
            .exec(&[
                "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
            ])
            .is_ok();
        if added {
            let _ = ns.exec(&["tc", "qdisc", "del", "dev", "lo", "root"]);
        }
        added
    })
}

/// Applies every impairment of `spec`; returns what was used and the relay, if one runs.
pub(crate) fn apply(spec: &LabSpec, ns: &Namespaces) -> Result<(Applied, Option<Relay>)> {
    let effects = Link::ALL.iter().any(|&l| {
        Direction::ALL
            .iter()
            .any(|&d| spec.impairment(l, d).has_packet_effects())
    });
    let use_netem = match spec.backend {
        _ if !effects => false,
        Backend::Relay => false,
        Backend::Auto => netem_available(&ns.router),
        Backend::Netem if netem_available(&ns.router) => true,
        Backend::Netem => {
            return Err(LabError::spec(
                "netem",
                "this kernel has no sch_netem; use the relay",
            ))
        }
    };
    for link in Link::ALL {
        for dir in Direction::ALL {
            let (netns, dev) = egress(ns, link, dir);
            shape(
                netns,
                dev,
                spec.impairment(link, dir),
                use_netem,
                spec.max_held,
            )?;
        }
    }
    if !effects {
        return Ok((Applied::Clean, None));
    }
    if use_netem {
        return Ok((Applied::Netem, None));
    }
    let relay = start_relay(spec, ns)?;
    Ok((Applied::Relay, Some(relay)))
}

/// The namespace and device whose egress carries `link` in direction `dir`.
fn egress(ns: &Namespaces, link: Link, dir: Direction) -> (&Netns, &'static str) {
    match (link, dir) {
        (Link::Near, Direction::ToFar) => (&ns.scanner, SCANNER_DEV),
        (Link::Near, Direction::ToScanner) => (&ns.router, ROUTER_NEAR_DEV),
        (Link::Far, Direction::ToFar) => (&ns.router, ROUTER_FAR_DEV),
        (Link::Far, Direction::ToScanner) => (&ns.far, FAR_DEV),
    }
}

/// Puts the qdiscs for one link direction on `dev`: netem (when used) with tbf beneath it,
/// or tbf alone.
fn shape(ns: &Netns, dev: &str, imp: &Impairment, netem: bool, limit: usize) -> Result<()> {
    let tbf = imp.rate.map(|rate| {
        let burst = (rate.bits_per_sec() / 8 / 100).max(6_000);
        format!("tbf rate {rate} burst {burst} latency {TBF_LATENCY_MS}ms")
    });
    let netem = (netem && imp.has_packet_effects()).then(|| netem_args(imp, limit));
    let mut commands = Vec::new();
    match (netem, tbf) {
        (Some(n), Some(t)) => {
            commands.push(format!("qdisc add dev {dev} root handle 1: {n}"));
            commands.push(format!("qdisc add dev {dev} parent 1:1 handle 10: {t}"));
        }
        (Some(n), None) => commands.push(format!("qdisc add dev {dev} root {n}")),
        (None, Some(t)) => commands.push(format!("qdisc add dev {dev} root {t}")),
        (None, None) => {}
    }
    for command in commands {
        let mut args = vec!["tc"];
        args.extend(command.split(' '));
        ns.exec(&args)?;
    }
    Ok(())
}

/// `netem` parameters with the relay's semantics.
fn netem_args(imp: &Impairment, limit: usize) -> String {
    let pct = |p: f64| format!("{:.4}%", p * 100.0);
    let mut args = format!("netem limit {}", limit.max(1000));
    if !imp.delay.is_zero() {
        args += &format!(" delay {}us", imp.delay.as_micros());
        if !imp.jitter.is_zero() {
            args += &format!(" {}us", imp.jitter.as_micros());
        }
    }
    for (name, p) in [
        ("loss random", imp.loss),
        ("duplicate", imp.dup),
        ("reorder", imp.reorder),
    ] {
        if p > 0.0 {
            args += &format!(" {name} {}", pct(p));
        }
    }
    args
}

/// Starts the relay for the directions that need it, then routes them into its queues.
fn start_relay(spec: &LabSpec, ns: &Namespaces) -> Result<Relay> {
    let mut paths = Vec::new();
    for dir in Direction::ALL {
        let order = match dir {
            Direction::ToFar => [Link::Near, Link::Far],
            Direction::ToScanner => [Link::Far, Link::Near],
        };
        let stages = order.map(|l| spec.impairment(l, dir).clone()).to_vec();
        let seed = spec.seed.wrapping_mul(2).wrapping_add(dir.index() as u64);
        let path = Path::new(stages, seed);
        if path.is_active() {
            paths.push((dir, path));
        }
    }
    let relayed: Vec<Direction> = paths.iter().map(|(d, _)| *d).collect();
    let relay = Relay::start(ns.router.name(), paths, spec.max_held)?;
    let rules = router_rules(&relayed);
    ns.router.restore(false, &rules)?;
    ns.router.restore(true, &rules)?;
    Ok(relay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn netem_arguments_mirror_the_impairment() {
        let imp = Impairment::none()
            .delay(Duration::from_millis(30))
            .jitter(Duration::from_millis(10))
            .loss(0.02)
            .reorder(0.01);
        assert_eq!(
            netem_args(&imp, 16_384),
            "netem limit 16384 delay 30000us 10000us loss random 2.0000% reorder 1.0000%"
        );
    }
}
