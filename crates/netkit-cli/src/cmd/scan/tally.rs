//! Each host's settled ports, kept the way nmap decides what to list: open ports always,
//! and the closed (or filtered) ones one by one only while the host has few of them — more
//! than [`Listing::limit`] ports in a state make it an "ignored" state, counted with its
//! reasons (nmap's `Not shown: 998 closed tcp ports (conn-refused)`, `<extraports>`). nmap's
//! limit is 25 per state, times 1 + the `-v` count (portlist.cc, `isIgnoredState`);
//! `--all-ports` lists every port, as nmap's `-ddd`. A host whose ports all settled is done:
//! its listed ports can be shown then.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use netkit::report::scan::{PortReport, PortState, Reason};

/// Ports in one state beyond which nmap stops listing them (without `-v`).
pub const NMAP_LIMIT: u64 = 25;

/// Which closed and filtered ports are listed one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listing {
    /// The most ports of one state listed per host (`None`: every port).
    pub limit: Option<u64>,
}

impl Listing {
    /// nmap's rule for `verbose` `-v` flags, or every port.
    pub fn new(all_ports: bool, verbose: u8) -> Self {
        let limit = (!all_ports).then(|| NMAP_LIMIT * (1 + u64::from(verbose)));
        Listing { limit }
    }

    fn lists(self, count: u64) -> bool {
        self.limit.is_none_or(|limit| count <= limit)
    }
}

/// The ports of one state (closed or filtered) on one host.
#[derive(Debug, Clone, Default)]
pub struct StateTally {
    /// How many.
    pub count: u64,
    /// How many for each reason.
    pub reasons: BTreeMap<Reason, u64>,
    /// The ports while few enough to list; emptied beyond the limit.
    pub ports: Vec<Listed>,
}

/// A closed or filtered port listed one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    /// The port.
    pub port: u16,
    /// Its state.
    pub state: PortState,
    /// Why it has that state.
    pub reason: Reason,
    /// The TTL of the answer that gave it (nmap's `reason_ttl`), where it was read.
    pub ttl: Option<u8>,
}

impl StateTally {
    fn add(&mut self, port: &PortReport, listing: Listing) {
        self.count += 1;
        *self.reasons.entry(port.reason).or_default() += 1;
        if listing.lists(self.count) {
            self.ports.push(Listed {
                port: port.port,
                state: port.state,
                reason: port.reason,
                ttl: port.ttl,
            });
        } else if !self.ports.is_empty() {
            self.ports = Vec::new();
        }
    }

    /// Whether the state is listed port by port (else counted: an ignored state).
    pub fn listed(&self, listing: Listing) -> bool {
        listing.lists(self.count)
    }

    /// The reasons, most frequent first.
    pub fn reasons_by_count(&self) -> Vec<(Reason, u64)> {
        let mut reasons: Vec<(Reason, u64)> = self.reasons.iter().map(|(r, n)| (*r, *n)).collect();
        reasons.sort_by_key(|&(reason, n)| (std::cmp::Reverse(n), reason));
        reasons
    }
}

/// One host's settled ports.
#[derive(Debug, Clone, Default)]
pub struct HostPorts {
    /// Its open ports, as found.
    pub open: Vec<PortReport>,
    /// Its closed ports.
    pub closed: StateTally,
    /// Its filtered ports.
    pub filtered: StateTally,
    /// The ports a router's ICMP error decided, with that router (nmap's `reason_ip`).
    pub reason_ips: BTreeMap<u16, IpAddr>,
    /// The ports settled, sorted: kept only for an address given more than once, whose
    /// scans' ports are told apart by them.
    seen: Vec<u16>,
}

impl HostPorts {
    /// Counts `port` in (open ports: keeps it).
    pub fn add(&mut self, port: &PortReport, listing: Listing) {
        if let Some(from) = port.reason_ip {
            self.reason_ips.insert(port.port, from);
        }
        match port.state {
            PortState::Open => self.open.push(port.clone()),
            PortState::Closed => self.closed.add(port, listing),
            PortState::Filtered => self.filtered.add(port, listing),
        }
    }

    /// Ports settled so far.
    pub fn settled(&self) -> u64 {
        self.open.len() as u64 + self.closed.count + self.filtered.count
    }

    /// The closed and filtered ports listed one by one, ascending.
    pub fn listed(&self, listing: Listing) -> Vec<Listed> {
        let mut listed: Vec<Listed> = [&self.closed, &self.filtered]
            .into_iter()
            .filter(|tally| tally.listed(listing))
            .flat_map(|tally| tally.ports.iter().copied())
            .collect();
        listed.sort_unstable_by_key(|listed| listed.port);
        listed
    }

    /// The states counted, not listed (nmap's ignored states), most ports first.
    pub fn ignored(&self, listing: Listing) -> Vec<(PortState, &StateTally)> {
        let mut ignored: Vec<(PortState, &StateTally)> = [
            (PortState::Closed, &self.closed),
            (PortState::Filtered, &self.filtered),
        ]
        .into_iter()
        .filter(|(_, tally)| tally.count > 0 && !tally.listed(listing))
        .collect();
        ignored.sort_by_key(|(_, tally)| std::cmp::Reverse(tally.count));
        ignored
    }
}

/// Every host's settled ports, by address and name as given (one name per address, nearly
/// always): a port's host is found without building a key. An address given more than once
/// (`repeats`) is scanned once each time, and each scan gets its own ports: a port goes to the
/// first of that target's scans that has not settled it yet.
#[derive(Debug, Default)]
pub struct Hosts {
    by_addr: HashMap<IpAddr, Vec<(String, HostPorts)>>,
    repeats: bool,
}

impl Hosts {
    /// No host yet; `repeats`: some address is given more than once.
    pub fn new(repeats: bool) -> Self {
        Hosts {
            by_addr: HashMap::new(),
            repeats,
        }
    }

    /// Whether some address is given more than once.
    pub fn repeats(&self) -> bool {
        self.repeats
    }

    /// The ports of the scan of `name` at `addr` that `port` settles (new if none yet), with
    /// its place among that target's scans.
    pub fn entry(&mut self, addr: IpAddr, name: &str, port: u16) -> (usize, &mut HostPorts) {
        let repeats = self.repeats;
        let named = self.by_addr.entry(addr).or_default();
        let unsettled = |ports: &HostPorts| !repeats || ports.seen.binary_search(&port).is_err();
        let at = match named
            .iter()
            .position(|(n, ports)| n == name && unsettled(ports))
        {
            Some(at) => at,
            None => {
                named.push((name.to_string(), HostPorts::default()));
                named.len() - 1
            }
        };
        let nth = named[..at].iter().filter(|(n, _)| n == name).count();
        let ports = &mut named[at].1;
        if repeats {
            if let Err(i) = ports.seen.binary_search(&port) {
                ports.seen.insert(i, port);
            }
        }
        (nth, ports)
    }

    /// The ports of the `nth` scan of `name` at `addr`, if any settled.
    pub fn get(&self, addr: IpAddr, name: &str, nth: usize) -> Option<&HostPorts> {
        let named = self.by_addr.get(&addr)?;
        named
            .iter()
            .filter(|(n, _)| n == name)
            .nth(nth)
            .map(|(_, ports)| ports)
    }

    /// Forgets the `nth` scan of `name` at `addr`.
    pub fn remove(&mut self, addr: IpAddr, name: &str, nth: usize) {
        if let Some(named) = self.by_addr.get_mut(&addr) {
            let at = named
                .iter()
                .enumerate()
                .filter(|(_, (n, _))| n == name)
                .nth(nth)
                .map(|(at, _)| at);
            if let Some(at) = at {
                named.remove(at);
            }
            if named.is_empty() {
                self.by_addr.remove(&addr);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(port: u16, state: PortState, reason: Reason) -> PortReport {
        PortReport {
            host: "127.0.0.1".into(),
            addr: "127.0.0.1".parse().unwrap(),
            port,
            state,
            reason,
            service: None,
            rtt_ms: None,
            tries: 1,
            banner: None,
            reason_ip: None,
            ttl: None,
        }
    }

    #[test]
    fn each_scan_of_an_address_given_twice_gets_its_own_ports() {
        let listing = Listing::new(false, 0);
        let addr = "127.0.0.1".parse().unwrap();
        let mut hosts = Hosts::new(true);
        // The two scans' answers interleave: port 1 of both, then port 2 of both.
        for port in [1, 1, 2, 2] {
            let (_, host) = hosts.entry(addr, "127.0.0.1", port);
            host.add(
                &report(port, PortState::Closed, Reason::ConnRefused),
                listing,
            );
        }
        for nth in 0..2 {
            let host = hosts.get(addr, "127.0.0.1", nth).expect("a scan");
            assert_eq!(host.closed.count, 2, "scan {nth}");
            let ports: Vec<u16> = host.closed.ports.iter().map(|l| l.port).collect();
            assert_eq!(ports, [1, 2], "scan {nth}");
        }
        assert!(hosts.get(addr, "127.0.0.1", 2).is_none());
        hosts.remove(addr, "127.0.0.1", 0);
        assert!(hosts.get(addr, "127.0.0.1", 1).is_none());
        // Without repeats, one tally per target.
        let mut once = Hosts::new(false);
        for port in [1, 2] {
            assert_eq!(once.entry(addr, "127.0.0.1", port).0, 0);
        }
    }

    #[test]
    fn a_state_is_listed_up_to_nmaps_limit_and_counted_beyond() {
        let listing = Listing::new(false, 0);
        let mut host = HostPorts::default();
        for port in 1..=26 {
            host.add(
                &report(port, PortState::Closed, Reason::ConnRefused),
                listing,
            );
        }
        for port in 100..=124 {
            host.add(
                &report(port, PortState::Filtered, Reason::NoResponse),
                listing,
            );
        }
        host.add(&report(22, PortState::Open, Reason::SynAck), listing);
        assert_eq!(host.settled(), 52);
        // 26 closed: ignored; 25 filtered: listed.
        let listed = host.listed(listing);
        assert_eq!(listed.len(), 25);
        assert!(listed.iter().all(|l| l.state == PortState::Filtered));
        let ignored = host.ignored(listing);
        assert_eq!(ignored.len(), 1);
        assert_eq!((ignored[0].0, ignored[0].1.count), (PortState::Closed, 26));
        assert!(host.closed.ports.is_empty(), "the list is dropped");
    }

    #[test]
    fn verbosity_raises_the_limit_and_all_ports_lists_everything() {
        assert_eq!(Listing::new(false, 1).limit, Some(50));
        assert_eq!(Listing::new(false, 3).limit, Some(100));
        let all = Listing::new(true, 0);
        let mut host = HostPorts::default();
        for port in 1..=1000 {
            host.add(&report(port, PortState::Closed, Reason::ConnRefused), all);
        }
        assert_eq!(host.listed(all).len(), 1000);
        assert!(host.ignored(all).is_empty());
    }

    #[test]
    fn reasons_come_most_frequent_first() {
        let listing = Listing::new(false, 0);
        let mut host = HostPorts::default();
        let reasons = [Reason::PortUnreach, Reason::NoResponse, Reason::NoResponse];
        for (port, reason) in (1..).zip(reasons) {
            host.add(&report(port, PortState::Filtered, reason), listing);
        }
        assert_eq!(
            host.filtered.reasons_by_count(),
            [(Reason::NoResponse, 2), (Reason::PortUnreach, 1)]
        );
    }
}
