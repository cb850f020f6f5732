//! The scan in nmap's formats (`-oX`, `-oG`, `-oA`): written when the scan ends from each
//! host's settled ports ([`super::tally`]), one `<host>` per target in the order given. A
//! host's open ports are listed, and its closed and filtered ports too while few (nmap's rule);
//! a state with more is counted with its reasons (`<extraports>`, `Ignored State:`).
//! After host discovery, hosts found down are counted in `<runstats>` but not listed, and up
//! hosts say which probe answered, and how (`echo-reply`, `syn-ack`, `reset`), as nmap without -v; without
//! discovery they are up because the user said so (`user-set`, as nmap -Pn).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::SystemTime;

use netkit::report::scan::{ScanSummary, ScanType, Unreachable};
use netkit::scan::discover::{Discovery, Status};
use netkit::scan::services;
use netkit::{Target, Targets};

use super::tally::{HostPorts, Hosts, Listing};
use crate::output::files::{self, Documents};
use crate::output::nmap::{self, End, Extra, Host, Port, Run, ScanInfo};

/// A target as the scan's results are keyed: its address and its name as given.
type Key = (IpAddr, String);

/// The documents to write and what they will say.
pub struct NmapOutput {
    docs: Documents,
    run: Run,
    unreachable: HashMap<Key, Unreachable>,
    discovery: Option<Discovery>,
}

impl std::fmt::Debug for NmapOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NmapOutput")
            .field("documents", &self.docs.len())
            .finish_non_exhaustive()
    }
}

impl NmapOutput {
    /// Output of a scan of `ports` that starts now into `docs`.
    pub fn new(docs: Documents, ports: &[u16], kind: ScanType) -> Self {
        let args: Vec<String> = std::env::args().collect();
        let run = Run {
            args: args.join(" "),
            start: SystemTime::now(),
            scan: Some(ScanInfo {
                ports: ports.to_vec(),
                kind,
            }),
        };
        NmapOutput {
            docs,
            run,
            unreachable: HashMap::new(),
            discovery: None,
        }
    }

    /// Keeps what host discovery found.
    pub fn discovered(&mut self, discovery: Discovery) {
        if !self.docs.is_empty() {
            self.discovery = Some(discovery);
        }
    }

    /// What discovery found out about `target` (`None` without discovery).
    fn discovered_as(&self, target: &Target) -> Option<Status> {
        let discovery = self.discovery.as_ref()?;
        Some(discovery.status(target.addr, target.zone))
    }

    /// Whether any document is asked for.
    pub fn wanted(&self) -> bool {
        !self.docs.is_empty()
    }

    /// Keeps an unreachable host.
    pub fn unreachable(&mut self, host: &Unreachable) {
        if self.wanted() {
            let key = (host.addr, host.host.clone());
            self.unreachable.insert(key, host.clone());
        }
    }

    /// Writes the documents: every target (only those heard of when interrupted) with its
    /// ports from `hosts`, then the totals.
    pub fn finish(
        &mut self,
        targets: &Targets,
        summary: &ScanSummary,
        hosts: &Hosts,
        listing: Listing,
    ) -> Result<(), netkit::Error> {
        if !self.wanted() {
            return Ok(());
        }
        let run = self.run.clone();
        files::each(&mut self.docs, |doc| doc.start(&run))?;
        let (mut up, mut down) = (0, 0);
        let own = nmap::own_addrs();
        // Which scan of an address given more than once each target is (its nth time).
        let mut times: HashMap<Key, usize> = HashMap::new();
        for target in targets.iter() {
            let key = (target.addr, target.shown());
            let nth = match hosts.repeats() {
                true => {
                    let n = times.entry(key.clone()).or_default();
                    *n += 1;
                    *n - 1
                }
                false => 0,
            };
            let status = self.discovered_as(&target);
            if status.as_ref().is_some_and(|s| !s.up) {
                // nmap lists down hosts only with -v; it counts them.
                down += 1;
                continue;
            }
            let ports = hosts.get(target.addr, &key.1, nth);
            let reason = status.as_ref().and_then(|s| self.up_reason(s));
            let (by, mac, ttl) = status.map_or((None, None, None), |s| (s.by, s.mac, s.ttl));
            let host = self.host(
                &key,
                (target.name.is_some(), reason),
                summary,
                ports,
                listing,
            );
            let host = host.map(|host| {
                // The TTL of the discovery answer that found it up, as nmap's reason_ttl.
                let found_by_ttl = ttl.filter(|_| host.up && reason.is_some());
                let reason_ttl = found_by_ttl.unwrap_or(host.reason_ttl);
                let mut host = Host {
                    mac,
                    reason_ttl,
                    ..host
                };
                nmap::mark_localhost(&mut host, by.as_deref(), &own);
                host
            });
            let Some(host) = host else { continue };
            if host.up {
                up += 1;
            } else {
                down += 1;
            }
            files::each(&mut self.docs, |doc| doc.host(&host))?;
        }
        let end = End {
            time: SystemTime::now(),
            elapsed_s: summary.elapsed_s,
            up,
            down,
            error: summary.interrupted.then(|| "interrupted".to_string()),
        };
        files::each(&mut self.docs, |doc| doc.finish(&end))
    }

    /// nmap's reason for a host discovery found up (`None`: not found up by a probe).
    fn up_reason(&self, status: &Status) -> Option<&'static str> {
        let privileged = self.discovery.as_ref().is_some_and(|d| d.privileged);
        let by = status.by.as_deref()?;
        Some(nmap::up_reason(Some(by), status.tcp, privileged))
    }

    /// One target as nmap's model says it (`named`: given by name; `reason`: why discovery
    /// found it up), with the ports that got their state; `None` for a target none of
    /// whose ports did in an interrupted scan.
    fn host(
        &self,
        key: &Key,
        (named, reason): (bool, Option<&'static str>),
        summary: &ScanSummary,
        ports: Option<&HostPorts>,
        listing: Listing,
    ) -> Option<Host> {
        let name = named.then(|| key.1.clone());
        if let Some(unreachable) = self.unreachable.get(key) {
            return Some(Host {
                addr: key.0,
                name,
                up: false,
                reason: nmap::no_route_reason(&unreachable.error),
                ports: Vec::new(),
                extra: Vec::new(),
                mac: None,
                reason_ttl: 0,
            });
        }
        if summary.interrupted && ports.is_none_or(|p| p.settled() == 0) {
            return None;
        }
        let empty = HostPorts::default();
        let ports = ports.unwrap_or(&empty);
        // Scanned without discovery, as nmap -Pn: up because the user said so.
        let reason = reason.unwrap_or("user-set");
        Some(Host {
            addr: key.0,
            name,
            up: true,
            reason,
            ports: listed(ports, listing),
            extra: extra(ports, listing),
            mac: None,
            reason_ttl: 0,
        })
    }
}

/// The ports of one host listed one by one, ascending, each once: the open ones and the
/// closed and filtered ones of the states not ignored.
fn listed(host: &HostPorts, listing: Listing) -> Vec<Port> {
    let open = host.open.iter().map(|p| Port {
        reason_ip: p.reason_ip,
        reason_ttl: p.ttl.unwrap_or(0),
        port: p.port,
        state: "open",
        reason: p.reason.as_str(),
        service: p.service.clone(),
    });
    let others = host.listed(listing).into_iter().map(|listed| Port {
        reason_ip: host.reason_ips.get(&listed.port).copied(),
        reason_ttl: listed.ttl.unwrap_or(0),
        port: listed.port,
        state: listed.state.as_str(),
        reason: listed.reason.as_str(),
        service: services::service_name(listed.port).map(str::to_string),
    });
    let mut ports: Vec<Port> = open.chain(others).collect();
    ports.sort_by_key(|p| p.port);
    ports.dedup_by_key(|p| p.port);
    ports
}

/// The ignored states of one host, most ports first, each with its reasons.
fn extra(host: &HostPorts, listing: Listing) -> Vec<Extra> {
    host.ignored(listing)
        .into_iter()
        .map(|(state, tally)| Extra {
            state: state.as_str(),
            count: tally.count,
            reasons: tally
                .reasons_by_count()
                .into_iter()
                .map(|(reason, n)| (reason.as_str(), n))
                .collect(),
        })
        .collect()
}
