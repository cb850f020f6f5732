//! The sweep in nmap's formats (`-oX`, `-oG`), as `nmap -sn -v` writes them: every target a
//! `<host>`, up (`echo-reply` for ICMP; for `--method tcp:PORT` `syn-ack`, and `reset` or
//! `port-unreach` with raw sockets, `conn-refused` without, as nmap -PS words them;
//! `arp-response` and `nd-response` with the MAC address for `arp` and `ndp`) or down
//! (`no-response`, or nmap's word for the router's "unreachable"), with the name it was given
//! by; an on-link sweep's own address is up by `localhost-response`, without a MAC address, as
//! nmap writes it. Each host's last round is written when the sweep ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Instant, SystemTime};

use netkit::report::sweep::HostRecord;
use netkit::Targets;

use crate::output::files::{self, Documents};
use crate::output::nmap::{self, End, Host, Run};

/// The documents to write and what they will say.
pub struct NmapOutput {
    docs: Documents,
    run: Run,
    started: Instant,
    last: HashMap<IpAddr, HostRecord>,
}

impl std::fmt::Debug for NmapOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NmapOutput")
            .field("documents", &self.docs.len())
            .finish_non_exhaustive()
    }
}

impl NmapOutput {
    /// Output of a sweep that starts now into `docs`.
    pub fn new(docs: Documents) -> Self {
        let args: Vec<String> = std::env::args().collect();
        let run = Run {
            args: args.join(" "),
            start: SystemTime::now(),
            scan: None,
        };
        NmapOutput {
            docs,
            run,
            started: Instant::now(),
            last: HashMap::new(),
        }
    }

    /// Keeps a host's answer in a round (the last one counts).
    pub fn host(&mut self, record: &HostRecord) {
        if !self.docs.is_empty() {
            self.last.insert(record.addr, record.clone());
        }
    }

    /// Writes the documents: every target heard of, in the order given, then the totals.
    pub fn finish(&mut self, targets: &Targets, interrupted: bool) -> Result<(), netkit::Error> {
        if self.docs.is_empty() {
            return Ok(());
        }
        let run = self.run.clone();
        files::each(&mut self.docs, |doc| doc.start(&run))?;
        let (mut up, mut down) = (0, 0);
        let own = nmap::own_addrs();
        // nmap's words for a TCP probe's answer depend on whether it would send raw SYNs.
        let privileged = netkit::scan::syn::socket::raw_allowed();
        for target in targets.iter() {
            let Some(record) = self.last.get(&target.addr) else {
                continue;
            };
            let mut host = Self::host_of(record, target.name.as_deref(), privileged);
            nmap::mark_localhost(&mut host, record.by.as_deref(), &own);
            if host.up {
                up += 1;
            } else {
                down += 1;
            }
            files::each(&mut self.docs, |doc| doc.host(&host))?;
        }
        let end = End {
            time: SystemTime::now(),
            elapsed_s: self.started.elapsed().as_secs_f64(),
            up,
            down,
            error: interrupted.then(|| "interrupted".to_string()),
        };
        files::each(&mut self.docs, |doc| doc.finish(&end))
    }

    fn host_of(record: &HostRecord, name: Option<&str>, privileged: bool) -> Host {
        let reason = match (&record.error, record.alive) {
            (Some(error), _) => nmap::no_route_reason(error),
            (None, true) => nmap::up_reason(record.by.as_deref(), record.tcp, privileged),
            (None, false) => "no-response",
        };
        Host {
            addr: record.addr,
            name: name.map(str::to_string),
            up: record.alive,
            reason,
            ports: Vec::new(),
            extra: Vec::new(),
            mac: record.mac.clone(),
            reason_ttl: record.ttl.filter(|_| record.alive).unwrap_or(0),
        }
    }
}
