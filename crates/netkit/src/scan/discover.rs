//! Host discovery before a scan (nmap's default: hosts that answer no discovery probe are not
//! scanned): one round of the sweep engine ([`crate::sweep`]) over the targets with a set of
//! methods, a host up when any of them answers. The default set holds nmap's: with raw sockets
//! (root, CAP_NET_RAW) nmap's privileged set — ARP and neighbour discovery for the targets on
//! a directly connected link (`-PR`, which nmap uses there whatever else is asked: a host
//! that drops every IP packet still answers them), ICMP echo, TCP to 443, a bare ACK to 80,
//! ICMP timestamp (`-PE -PS443 -PA80 -PP`; netkit's TCP probe is a connect, which a host
//! answers as it answers a SYN) — and a connect to 80 besides, so that no host nmap finds up
//! is down here and none that netkit's earlier default found is lost; where raw sockets are
//! refused,
//! ICMP echo (an unprivileged ICMP socket) and connects to 80 and 443; where ICMP may not be
//! used either, the connects alone (nmap, unprivileged: the same connects).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::report::sweep::{HostRecord, TcpAnswer};
use crate::sweep::{self, Config, Event, Method, Methods, Sweep};
use crate::target::{zone_name, Target, Targets};

/// The default discovery methods where raw sockets may be used: nmap's privileged set (ARP
/// and neighbour discovery on link, echo, TCP to 443, ACK to 80, timestamp) and a connect to
/// 80. The on-link methods probe only the targets of a directly connected link.
pub const PRIVILEGED: [Method; 7] = [
    Method::Arp,
    Method::Ndp,
    Method::Icmp,
    Method::Tcp(443),
    Method::Ack(80),
    Method::Timestamp,
    Method::Tcp(80),
];
/// The default discovery methods where ICMP may be used but raw sockets may not.
pub const WITH_ICMP: [Method; 3] = [Method::Icmp, Method::Tcp(80), Method::Tcp(443)];
/// The default discovery methods where it may not.
pub const WITHOUT_ICMP: [Method; 2] = [Method::Tcp(80), Method::Tcp(443)];

/// What discovery found out about one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Whether it answered a discovery probe.
    pub up: bool,
    /// The method that answered (`icmp`, `tcp:443`), when up.
    pub by: Option<String>,
    /// Why it cannot be reached (no route), when a method said so.
    pub error: Option<String>,
    /// The MAC address that answered an on-link probe (`arp`, `ndp`).
    pub mac: Option<String>,
    /// How the host answered a TCP connect (`tcp:PORT`), when that is what found it up.
    pub tcp: Option<TcpAnswer>,
    /// The TTL (IPv6: hop limit) of the answer that found it up, where it was read (nmap's
    /// `reason_ttl`).
    pub ttl: Option<u8>,
}

/// What discovery found, per address.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// The methods used.
    pub methods: Methods,
    /// How long it took.
    pub elapsed: Duration,
    /// Probes sent.
    pub probes: u64,
    /// Whether this process may open raw sockets: nmap, in its place, would probe with raw
    /// SYNs and name a refusal `reset` (else, connecting, `conn-refused`).
    pub privileged: bool,
    /// Keyed by address and zone: `fe80::1%eth0` and `fe80::1%eth1` are two hosts.
    found: HashMap<(IpAddr, Option<String>), Status>,
}

impl Discovery {
    /// What discovery found out about `addr` in `zone` (0: none): silent when it never heard
    /// of it.
    pub fn status(&self, addr: IpAddr, zone: u32) -> Status {
        let found = self.found.get(&(addr, zone_name(zone)));
        found.cloned().unwrap_or(Status {
            up: false,
            by: None,
            error: None,
            mac: None,
            tcp: None,
            ttl: None,
        })
    }

    /// The targets of `targets` found up, in their order.
    pub fn up(&self, targets: &Targets) -> Targets {
        let up = |t: &Target| self.status(t.addr, t.zone).up;
        Targets::from_list(targets.iter().filter(up))
    }

    /// How many targets of `targets` were found up.
    pub fn count_up(&self, targets: &Targets) -> u64 {
        let up = |t: &Target| self.status(t.addr, t.zone).up;
        targets.iter().filter(up).count() as u64
    }

    fn keep(&mut self, host: &HostRecord) {
        let status = Status {
            up: host.alive,
            by: host.by.clone(),
            error: host.error.clone(),
            mac: host.mac.clone(),
            tcp: host.tcp,
            ttl: host.ttl.filter(|_| host.alive),
        };
        let key = (host.addr, host.zone.clone());
        match self.found.get(&key) {
            Some(known) if known.up => {}
            _ => {
                self.found.insert(key, status);
            }
        }
    }
}

/// How long a discovery round waits at least for late answers after its last probe: a host
/// found down is not scanned at all, so it waits as long as nmap's ping scan does at first
/// (its initial round-trip timeout, 1 s), not the sweep's half second.
pub const PATIENCE: Duration = Duration::from_secs(1);

/// The sweep settings of a discovery: one round, the sweep's default rate and re-probes,
/// `timeout` at most per probe, `max_in_flight` TCP connects at once, [`PATIENCE`].
pub fn config(methods: Methods, timeout: Duration, max_in_flight: usize) -> Config {
    Config {
        methods,
        timeout,
        retries: sweep::DEFAULT_RETRIES,
        rate: sweep::DEFAULT_RATE,
        every: None,
        rounds: None,
        max_in_flight,
        interface: None,
        patience: PATIENCE,
    }
}

/// Runs one discovery round over `targets` with `methods` (`None`: the default set,
/// [`PRIVILEGED`], else [`WITH_ICMP`] when this process may not open raw sockets, else
/// [`WITHOUT_ICMP`] when it may not use ICMP at all), each probe waiting `timeout` at most,
/// `max_in_flight` TCP connects at once.
pub async fn discover(
    targets: &Targets,
    methods: Option<Methods>,
    timeout: Duration,
    max_in_flight: usize,
) -> Result<Discovery, Error> {
    let started = Instant::now();
    let (mut sweep, methods) = match methods {
        Some(methods) => (open(targets, &methods, timeout, max_in_flight)?, methods),
        None => open_default(targets, timeout, max_in_flight)?,
    };
    let mut discovery = Discovery {
        methods,
        elapsed: Duration::ZERO,
        probes: 0,
        privileged: crate::scan::syn::socket::raw_allowed(),
        found: HashMap::new(),
    };
    let mut sink = |event: Event| {
        if let Event::Host(host) = &event {
            discovery.keep(host);
        }
        Ok(())
    };
    let summary = sweep.round(&mut sink).await?;
    discovery.probes = summary.probes;
    discovery.elapsed = started.elapsed();
    Ok(discovery)
}

/// The default set's sweep: the first of [`PRIVILEGED`], [`WITH_ICMP`] and [`WITHOUT_ICMP`]
/// this process may use.
fn open_default(
    targets: &Targets,
    timeout: Duration,
    max_in_flight: usize,
) -> Result<(Sweep, Methods), Error> {
    for set in [&PRIVILEGED[..], &WITH_ICMP[..], &WITHOUT_ICMP[..]] {
        let methods = Methods::new(set.iter().copied()).map_err(Error::from)?;
        match open(targets, &methods, timeout, max_in_flight) {
            Ok(sweep) => return Ok((sweep, methods)),
            Err(Error::IcmpDenied(why)) => tracing::info!("discovery without ICMP: {why}"),
            Err(err) if crate::scan::syn::socket::is_denied(&err) => {
                tracing::info!("discovery without raw sockets: {err}");
            }
            Err(err) => return Err(err),
        }
    }
    let methods = Methods::new(WITHOUT_ICMP).map_err(Error::from)?;
    Ok((open(targets, &methods, timeout, max_in_flight)?, methods))
}

fn open(
    targets: &Targets,
    methods: &Methods,
    timeout: Duration,
    max_in_flight: usize,
) -> Result<Sweep, Error> {
    let config = config(methods.clone(), timeout, max_in_flight);
    Sweep::new(targets.clone(), config)
}
