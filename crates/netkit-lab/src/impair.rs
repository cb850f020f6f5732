//! Puts the specified impairments on the links: rate limits with `tc tbf` on each link's
//! egress, and delay/jitter/loss/duplication/reordering with `netem` qdiscs where the kernel
//! has `sch_netem`, else with the user-space [`Relay`] behind NFQUEUE rules in the router.

use std::sync::OnceLock;

use crate::behaviour::Backend;
use crate::error::{LabError, Result};
use crate::firewall::{queue_num, router_rules};
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

/// Puts the qdiscs for one link direction on `dev`.
fn shape(ns: &Netns, dev: &str, imp: &Impairment, netem: bool, limit: usize) -> Result<()> {
    for command in qdisc_commands(dev, imp, netem, limit) {
        let mut args = vec!["tc"];
        args.extend(command.split(' '));
        ns.exec(&args)?;
    }
    Ok(())
}

/// The `tc` commands for one link direction: netem (when used) with tbf beneath it, or tbf
/// alone, or nothing.
fn qdisc_commands(dev: &str, imp: &Impairment, netem: bool, limit: usize) -> Vec<String> {
    let tbf = imp.rate.map(|rate| {
        let burst = (rate.bits_per_sec() / 8 / 100).max(6_000);
        format!("tbf rate {rate} burst {burst} latency {TBF_LATENCY_MS}ms")
    });
    let netem = (netem && imp.has_packet_effects()).then(|| netem_args(imp, limit));
    match (netem, tbf) {
        (Some(n), Some(t)) => vec![
            format!("qdisc add dev {dev} root handle 1: {n}"),
            format!("qdisc add dev {dev} parent 1:1 handle 10: {t}"),
        ],
        (Some(n), None) => vec![format!("qdisc add dev {dev} root {n}")],
        (None, Some(t)) => vec![format!("qdisc add dev {dev} root {t}")],
        (None, None) => Vec::new(),
    }
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

/// Starts the relay with one queue per impaired link direction, then routes those packets
/// into the queues.
fn start_relay(spec: &LabSpec, ns: &Namespaces) -> Result<Relay> {
    let mut queues = Vec::new();
    for link in Link::ALL {
        for dir in Direction::ALL {
            let q = queue_num(link, dir);
            let seed = spec.seed.wrapping_mul(4).wrapping_add(u64::from(q));
            let path = Path::new(vec![spec.impairment(link, dir).clone()], seed);
            if path.is_active() {
                queues.push((link, dir, path));
            }
        }
    }
    let impaired: Vec<(Link, Direction)> = queues.iter().map(|(l, d, _)| (*l, *d)).collect();
    let paths = queues
        .into_iter()
        .map(|(l, d, p)| (queue_num(l, d), p))
        .collect();
    let relay = Relay::start(ns.router.name(), paths, spec.max_held, spec.realtime)?;
    ns.router.restore(false, &router_rules(&impaired, false))?;
    ns.router.restore(true, &router_rules(&impaired, true))?;
    Ok(relay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::impairment::Rate;
    use std::time::Duration;

    fn full() -> Impairment {
        Impairment::none()
            .delay(Duration::from_millis(30))
            .jitter(Duration::from_millis(10))
            .loss(0.02)
            .dup(0.01)
            .reorder(0.01)
            .rate(Rate(2_000_000))
    }

    #[test]
    fn qdiscs_stack_netem_over_tbf() {
        let cmds = qdisc_commands("far0", &full(), true, 5000);
        assert_eq!(cmds.len(), 2);
        assert!(cmds[0].starts_with("qdisc add dev far0 root handle 1: netem limit 5000"));
        assert_eq!(
            cmds[1],
            "qdisc add dev far0 parent 1:1 handle 10: tbf rate 2000000bit burst 6000 latency 50ms"
        );
        let relayed = qdisc_commands("far0", &full(), false, 5000);
        assert_eq!(
            relayed,
            ["qdisc add dev far0 root tbf rate 2000000bit burst 6000 latency 50ms"]
        );
        assert!(qdisc_commands("far0", &Impairment::none(), true, 1).is_empty());
    }

    /// The netem path cannot run on a kernel without `sch_netem`, but `tc` parses every
    /// option before asking the kernel: a kernel without netem must refuse only the kind.
    #[test]
    fn netem_and_tbf_commands_parse_in_tc() {
        if !nix::unistd::geteuid().is_root() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI runs as root"
            );
            return;
        }
        let ns = Netns::create(&format!("lab-tcparse-{}-0-far", std::process::id())).unwrap();
        for cmd in qdisc_commands("lo", &full(), true, 5000) {
            let mut args = vec!["tc"];
            args.extend(cmd.split(' '));
            match ns.exec(&args) {
                Ok(_) => assert!(netem_available(&ns)),
                Err(e) => {
                    let text = e.to_string();
                    assert!(
                        text.contains("qdisc kind is unknown") && !netem_available(&ns),
                        "{text}"
                    );
                    break;
                }
            }
        }
    }

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
