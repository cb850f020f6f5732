//! The stream of (target, port) probes: targets are taken lazily from [`Targets::iter`](crate::target::Targets::iter) a window
//! at a time, and within a window the ports go round the hosts (port 1 of every host, then port
//! 2, ...), so no single host takes the whole burst and memory stays bounded for any block size.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::target::{Target, TargetIter};

use super::guard::is_local;

/// How many hosts share one round of ports.
pub const WINDOW: usize = 256;

/// A target with what the scan needs to know about it.
#[derive(Debug)]
pub struct Host {
    /// The target as given.
    pub target: Target,
    /// Whether the address belongs to this host (see [`super::guard`]).
    pub local: bool,
}

/// One probe to make.
#[derive(Debug, Clone)]
pub struct Job {
    /// The host to probe.
    pub host: Arc<Host>,
    /// The port to probe.
    pub port: u16,
}

impl Job {
    /// The address to connect to.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host.target.addr, self.port)
    }
}

/// Produces the probes of a scan in interleaved order.
#[derive(Debug)]
pub struct Jobs {
    targets: TargetIter,
    ports: Arc<[u16]>,
    window: Vec<Arc<Host>>,
    port: usize,
    host: usize,
}

impl Jobs {
    /// The probes for every target of `targets` and every port of `ports`.
    pub fn new(targets: TargetIter, ports: Arc<[u16]>) -> Self {
        Jobs {
            targets,
            ports,
            window: Vec::new(),
            port: 0,
            host: 0,
        }
    }

    fn refill(&mut self) -> bool {
        self.window.clear();
        self.window
            .extend(self.targets.by_ref().take(WINDOW).map(|target| {
                let local = is_local(target.addr);
                Arc::new(Host { target, local })
            }));
        self.port = 0;
        self.host = 0;
        !self.window.is_empty() && !self.ports.is_empty()
    }
}

impl Iterator for Jobs {
    type Item = Job;

    fn next(&mut self) -> Option<Job> {
        if self.host == self.window.len() {
            self.host = 0;
            self.port += 1;
        }
        let exhausted = self.port >= self.ports.len() || self.window.is_empty();
        if exhausted && !self.refill() {
            return None;
        }
        let job = Job {
            host: Arc::clone(&self.window[self.host]),
            port: self.ports[self.port],
        };
        self.host += 1;
        Some(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{Family, TargetList};

    fn jobs(targets: &str, ports: &[u16]) -> Vec<(String, u16)> {
        let targets = TargetList::parse(&[targets], false)
            .unwrap()
            .resolve(Family::Any)
            .unwrap();
        Jobs::new(targets.iter(), ports.into())
            .map(|job| (job.host.target.addr.to_string(), job.port))
            .collect()
    }

    #[test]
    fn ports_go_round_the_hosts() {
        let got = jobs("198.18.0.1-2", &[22, 80]);
        let want = [
            ("198.18.0.1", 22),
            ("198.18.0.2", 22),
            ("198.18.0.1", 80),
            ("198.18.0.2", 80),
        ];
        let want: Vec<_> = want.iter().map(|(a, p)| (a.to_string(), *p)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn every_pair_once_across_windows() {
        let got = jobs("198.18.0.0/23", &[1, 2, 3]);
        assert_eq!(got.len(), 512 * 3);
        let unique: std::collections::HashSet<_> = got.iter().collect();
        assert_eq!(unique.len(), got.len());
        assert_eq!(got[0], ("198.18.0.0".to_string(), 1));
        assert_eq!(got[256 * 3], ("198.18.1.0".to_string(), 1));
    }

    #[test]
    fn one_host_keeps_port_order() {
        assert_eq!(
            jobs("::1", &[5, 3, 9])
                .iter()
                .map(|j| j.1)
                .collect::<Vec<_>>(),
            [5, 3, 9]
        );
    }
}
