//! A running lab: builds the namespaces from a [`LabSpec`], owns the relay and listener
//! threads, runs commands and closures inside the namespaces, and tears everything down on
//! drop (threads first, then the namespaces).

use std::net::IpAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::behaviour::IcmpLimits;
use crate::builder::LabBuilder;
use crate::error::Result;
use crate::firewall::far_rules;
use crate::impair::{self, Applied};
use crate::listen::FarServer;
use crate::relay::{Relay, RelayStats};
use crate::spec::LabSpec;
use crate::topology::{self, Namespaces, SCANNER_V4, SCANNER_V6};
use crate::truth::Truth;

/// Prefix of every lab namespace name: `lab-TAG-PID-N-ROLE`.
pub const NAME_PREFIX: &str = "lab";

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A running lab. Dropping it stops its threads and deletes its namespaces.
#[derive(Debug)]
pub struct Lab {
    spec: LabSpec,
    applied: Applied,
    relay: Option<Relay>,
    server: Option<FarServer>,
    ns: Namespaces,
}

impl Lab {
    /// A builder for a lab whose namespace names carry `tag`.
    pub fn builder(tag: &str) -> LabBuilder {
        LabBuilder::new(tag)
    }

    /// Builds the lab described by `spec` (validated again here). Needs root.
    pub fn start(spec: LabSpec) -> Result<Lab> {
        spec.validate()?;
        // Labs of killed processes (SIGKILL, a test binary's timeout) leave namespaces behind;
        // the first lab of each process removes them. Races with another process doing the
        // same only make one of the deletions fail, which is harmless.
        static CLEANED: std::sync::Once = std::sync::Once::new();
        CLEANED.call_once(|| {
            let _ = remove_stale();
        });
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("{NAME_PREFIX}-{}-{}-{n}", spec.tag, std::process::id());
        let ns = topology::create(&prefix)?;
        let mut lab = Lab {
            spec,
            applied: Applied::Clean,
            relay: None,
            server: None,
            ns,
        };
        lab.configure()?;
        Ok(lab)
    }

    /// Everything after the namespaces exist (on error, drop removes what was made).
    fn configure(&mut self) -> Result<()> {
        let (spec, ns) = (&self.spec, &self.ns);
        set_icmp_limits(ns, spec.icmp_limits)?;
        ns.far.sysctl(&[
            "net.ipv4.ip_nonlocal_bind=1".into(),
            "net.ipv6.ip_nonlocal_bind=1".into(),
        ])?;
        topology::wire(ns)?;
        topology::add_hosts(&ns.far, &spec.blocks, &spec.hosts)?;
        topology::add_hosts(&ns.far, &[], &spec.v6_error_sources())?;
        topology::add_unroutable(ns, &spec.unroutable)?;
        ns.far.restore(false, &far_rules(spec, false))?;
        ns.far.restore(true, &far_rules(spec, true))?;
        if !spec.listeners.is_empty() {
            self.server = Some(FarServer::start(ns.far.name(), spec.listeners.clone())?);
        }
        let (applied, relay) = impair::apply(spec, ns)?;
        self.applied = applied;
        self.relay = relay;
        Ok(())
    }

    /// The specification the lab was built from.
    pub fn spec(&self) -> &LabSpec {
        &self.spec
    }

    /// The ground truth: what each far address and port was built to answer.
    pub fn truth(&self) -> Truth<'_> {
        Truth::new(&self.spec)
    }

    /// Which machinery impairs the links (netem, the relay, or nothing).
    pub fn applied(&self) -> Applied {
        self.applied
    }

    /// The relay's counters (`None` when the relay is not used).
    pub fn relay_stats(&self) -> Option<RelayStats> {
        self.relay.as_ref().map(Relay::stats)
    }

    /// The scanner namespace's name.
    pub fn scanner(&self) -> &str {
        self.ns.scanner.name()
    }

    /// The router namespace's name.
    pub fn router(&self) -> &str {
        self.ns.router.name()
    }

    /// The far namespace's name.
    pub fn far(&self) -> &str {
        self.ns.far.name()
    }

    /// The three names, as the `netkit-lab` binary prints them:
    /// `scanner=NAME router=NAME far=NAME`.
    pub fn names_line(&self) -> String {
        format!(
            "scanner={} router={} far={}",
            self.scanner(),
            self.router(),
            self.far()
        )
    }

    /// The scanner's source address of the family of `target`.
    pub fn scanner_addr(&self, target: IpAddr) -> IpAddr {
        match target {
            IpAddr::V4(_) => IpAddr::V4(SCANNER_V4),
            IpAddr::V6(_) => IpAddr::V6(SCANNER_V6),
        }
    }

    /// A command running `program` inside the scanner namespace.
    pub fn scanner_cmd(&self, program: &str) -> Command {
        self.ns.scanner.command(program)
    }

    /// A command running `program` inside the far namespace.
    pub fn far_cmd(&self, program: &str) -> Command {
        self.ns.far.command(program)
    }

    /// A command running `program` inside the router namespace.
    pub fn router_cmd(&self, program: &str) -> Command {
        self.ns.router.command(program)
    }

    /// Runs `f` on a thread inside the scanner namespace (sockets it makes live there).
    pub fn in_scanner<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        self.ns.scanner.run_in(f)
    }

    /// Runs `f` on a thread inside the far namespace.
    pub fn in_far<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        self.ns.far.run_in(f)
    }

    /// Makes `addr` a live host while the lab runs (a single address on the far side's `lo`);
    /// the ground truth follows.
    pub fn add_host(&mut self, addr: IpAddr) -> Result<()> {
        topology::add_hosts(&self.ns.far, &[], &[addr])?;
        self.spec.hosts.push(addr);
        Ok(())
    }

    /// Takes away a host added with [`LabBuilder::host`], [`LabBuilder::open`] or
    /// [`Lab::add_host`] while the lab runs: it falls silent. Hosts of a block stay.
    pub fn remove_host(&mut self, addr: IpAddr) -> Result<()> {
        let len = if addr.is_ipv6() { 128 } else { 32 };
        self.ns
            .far
            .ip_batch(&[format!("addr del {addr}/{len} dev lo")])?;
        self.spec.hosts.retain(|&h| h != addr);
        Ok(())
    }

    /// Stops the threads and deletes the namespaces now (dropping the lab does the same).
    pub fn down(self) {
        drop(self);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut relay) = self.relay.take() {
            relay.stop();
        }
        if let Some(mut server) = self.server.take() {
            server.stop();
        }
        // The namespaces are deleted when `ns` drops, after this.
    }
}

/// Deletes the namespaces of labs whose process is gone (killed before it could tear down);
/// returns their names.
pub fn remove_stale() -> Result<Vec<String>> {
    let listing = crate::netns::run(Command::new("ip").args(["netns", "list"]), None)?;
    let stale: Vec<String> = listing
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| {
            owner_pid(name)
                .is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
        })
        .map(String::from)
        .collect();
    let mut deleted = Vec::new();
    for name in stale {
        // Another process may be removing the same one.
        if crate::netns::run(Command::new("ip").args(["netns", "del", &name]), None).is_ok() {
            deleted.push(name);
        }
    }
    Ok(deleted)
}

/// The process id in a lab namespace name (`lab-TAG-PID-N-ROLE`), if it is one.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(NAME_PREFIX)?.strip_prefix('-')?;
    let mut parts = rest.rsplitn(4, '-');
    let role = parts.next()?;
    let _n: usize = parts.next()?.parse().ok()?;
    let pid = parts.next()?.parse().ok()?;
    let tag = parts.next()?;
    let known = ["scanner", "router", "far"].contains(&role);
    (known && !tag.is_empty()).then_some(pid)
}

/// The ICMP rate limits of the far and router kernels.
fn set_icmp_limits(ns: &Namespaces, limits: IcmpLimits) -> Result<()> {
    if limits == IcmpLimits::Default {
        return Ok(());
    }
    // `icmp_msgs_per_sec=0` would mean *no* ICMP errors at all; clearing the rate masks
    // exempts every ICMP type from both the per-peer and the global limit.
    let off: Vec<String> = [
        "net.ipv4.icmp_ratelimit=0",
        "net.ipv4.icmp_ratemask=0",
        "net.ipv4.icmp_msgs_per_sec=1000000",
        "net.ipv4.icmp_msgs_burst=1000000",
        "net.ipv6.icmp.ratelimit=0",
        "net.ipv6.icmp.ratemask=",
    ]
    .map(String::from)
    .to_vec();
    ns.far.sysctl(&off)?;
    ns.router.sysctl(&off)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pids_come_from_lab_names_only() {
        assert_eq!(owner_pid("lab-scan-v6-123-4-router"), Some(123));
        assert_eq!(owner_pid("lab-t-9-0-far"), Some(9));
        assert_eq!(owner_pid("lab-t-9-0-other"), None);
        assert_eq!(owner_pid("nk-t-9-0-far"), None);
        assert_eq!(owner_pid("lab-9-0-far"), None);
    }
}
