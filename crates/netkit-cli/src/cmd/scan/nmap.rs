//! The scan in nmap's formats (`-oX`, `-oG`, `-oA`): open ports and unreachable hosts are kept
//! per host as the engine reports them, and the documents are written when the scan ends,
//! one `<host>` per target in the order given. The engine reports closed and filtered ports
//! as totals only, so a host's closed and filtered ports are counted (`<extraports>`), never
//! listed: exactly when one host was scanned or all the scan's non-open ports share a state,
//! as `closed|filtered` (nmap's "one of the two") otherwise. After host discovery, hosts found
//! down are counted in `<runstats>` but not listed, and up hosts say which probe answered
//! (`echo-reply`, `tcp-response`), as nmap without -v; without discovery they are up because
//! the user said so (`user-set`, as nmap -Pn).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::SystemTime;

use netkit::report::scan::{OpenPort, ScanSummary, Unreachable};
use netkit::scan::discover::Discovery;
use netkit::Targets;

use crate::output::files::{self, Documents};
use crate::output::nmap::{self, End, Extra, Host, Port, Run, ScanInfo};

/// The documents to write and what they will say.
pub struct NmapOutput {
    docs: Documents,
    run: Run,
    open: HashMap<(IpAddr, String), Vec<OpenPort>>,
    unreachable: HashMap<(IpAddr, String), Unreachable>,
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
    pub fn new(docs: Documents, ports: &[u16]) -> Self {
        let args: Vec<String> = std::env::args().collect();
        let run = Run {
            args: args.join(" "),
            start: SystemTime::now(),
            scan: Some(ScanInfo {
                ports: ports.to_vec(),
            }),
        };
        NmapOutput {
            docs,
            run,
            open: HashMap::new(),
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

    /// Whether discovery found the host at `addr` down (it was not scanned).
    fn found_down(&self, addr: IpAddr) -> bool {
        self.discovery.as_ref().is_some_and(|d| !d.status(addr).up)
    }

    /// Keeps an open port (nothing when no document is asked for).
    pub fn open(&mut self, port: &OpenPort) {
        if !self.docs.is_empty() {
            let key = (port.addr, port.host.clone());
            self.open.entry(key).or_default().push(port.clone());
        }
    }

    /// Keeps an unreachable host.
    pub fn unreachable(&mut self, host: &Unreachable) {
        if !self.docs.is_empty() {
            let key = (host.addr, host.host.clone());
            self.unreachable.insert(key, host.clone());
        }
    }

    /// Writes the documents: every target (only those heard of when interrupted), then the
    /// totals.
    pub fn finish(
        &mut self,
        targets: &Targets,
        summary: &ScanSummary,
    ) -> Result<(), netkit::Error> {
        if self.docs.is_empty() {
            return Ok(());
        }
        let run = self.run.clone();
        files::each(&mut self.docs, |doc| doc.start(&run))?;
        let (mut up, mut down) = (0, 0);
        let counts = Counts::of(summary);
        for target in targets.iter() {
            let key = (target.addr, target.host());
            if self.found_down(target.addr) {
                // nmap lists down hosts only with -v; it counts them.
                down += 1;
                continue;
            }
            let host = self.host(&key, target.name.is_some(), summary, &counts);
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

    /// One target as nmap's model says it; `None` for a target not heard of in an
    /// interrupted scan.
    fn host(
        &self,
        key: &(IpAddr, String),
        named: bool,
        summary: &ScanSummary,
        counts: &Counts,
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
            });
        }
        let open = self.open.get(key);
        if summary.interrupted && open.is_none() {
            return None;
        }
        let ports = open.map(|open| listed(open)).unwrap_or_default();
        let extra = match summary.interrupted {
            true => Vec::new(),
            false => counts.extra(summary.scanned.saturating_sub(ports.len() as u64)),
        };
        let by = self.discovery.as_ref().and_then(|d| d.status(key.0).by);
        let reason = match by {
            Some(by) => nmap::up_reason(Some(&by)),
            // Scanned without discovery, as nmap -Pn: up because the user said so.
            None => "user-set",
        };
        Some(Host {
            addr: key.0,
            name,
            up: true,
            reason,
            ports,
            extra,
            mac: None,
        })
    }
}

/// The open ports of one host, ascending, each once.
fn listed(open: &[OpenPort]) -> Vec<Port> {
    let mut ports: Vec<Port> = open
        .iter()
        .map(|p| Port {
            port: p.port,
            state: "open",
            reason: "syn-ack",
            service: p.service.clone(),
        })
        .collect();
    ports.sort_by_key(|p| p.port);
    ports.dedup_by_key(|p| p.port);
    ports
}

/// What the scan's totals say about each host's ports that are not open.
struct Counts {
    /// Hosts that got port states (reachable ones).
    hosts: u64,
    closed: u64,
    filtered: u64,
}

impl Counts {
    fn of(summary: &ScanSummary) -> Self {
        Counts {
            hosts: summary.hosts.saturating_sub(summary.unreachable),
            closed: summary.closed,
            filtered: summary.filtered,
        }
    }

    /// The `<extraports>` of a host with `not_open` ports not open.
    fn extra(&self, not_open: u64) -> Vec<Extra> {
        let closed = |count| Extra {
            state: "closed",
            count,
            reason: Some("conn-refused"),
        };
        let filtered = |count| Extra {
            state: "filtered",
            count,
            reason: None,
        };
        let extra = if self.hosts == 1 {
            vec![closed(self.closed), filtered(self.filtered)]
        } else if self.filtered == 0 {
            vec![closed(not_open)]
        } else if self.closed == 0 {
            vec![filtered(not_open)]
        } else {
            vec![Extra {
                state: "closed|filtered",
                count: not_open,
                reason: None,
            }]
        };
        extra.into_iter().filter(|e| e.count > 0).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_host_gets_exact_counts_many_get_exact_or_closed_or_filtered() {
        let one = Counts {
            hosts: 1,
            closed: 97,
            filtered: 2,
        };
        let states: Vec<_> = one.extra(99).iter().map(|e| (e.state, e.count)).collect();
        assert_eq!(states, [("closed", 97), ("filtered", 2)]);
        let mixed = Counts {
            hosts: 2,
            closed: 97,
            filtered: 2,
        };
        let states: Vec<_> = mixed.extra(50).iter().map(|e| (e.state, e.count)).collect();
        assert_eq!(states, [("closed|filtered", 50)]);
        let all_closed = Counts {
            hosts: 2,
            closed: 99,
            filtered: 0,
        };
        assert_eq!(all_closed.extra(50)[0].reason, Some("conn-refused"));
    }
}
