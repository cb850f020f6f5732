//! What nmap's output formats say about a run, independent of the format: the run's start,
//! each host with its status and ports, and the end. The scan and the sweep fill it in from
//! their events; [`super::nmap_xml`] (`-oX`) and [`super::nmap_grep`] (`-oG`) write it as nmap
//! does, so that nmap's consumers (ndiff, python-libnmap, Metasploit's `db_import`, ...) read
//! netkit's results.

use std::collections::HashSet;
use std::io;
use std::net::IpAddr;
use std::time::SystemTime;

use netkit::report::sweep::TcpAnswer;

/// The start of a run.
#[derive(Debug, Clone)]
pub struct Run {
    /// The command line, as typed.
    pub args: String,
    /// When the run started.
    pub start: SystemTime,
    /// What a port scan covers; `None` for a host sweep (nmap -sn).
    pub scan: Option<ScanInfo>,
}

/// What a port scan covers: a TCP connect (nmap -sT) or SYN (nmap -sS) scan of these ports.
#[derive(Debug, Clone)]
pub struct ScanInfo {
    /// The ports, sorted.
    pub ports: Vec<u16>,
    /// How they were probed (`type="connect"` or `type="syn"`).
    pub kind: netkit::report::scan::ScanType,
}

impl ScanInfo {
    /// The ports as nmap lists them: ascending, runs folded, `1-1024,3389`.
    pub fn services(&self) -> String {
        let mut sorted = self.ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        let mut runs: Vec<(u16, u16)> = Vec::new();
        for port in sorted {
            match runs.last_mut() {
                Some((_, last)) if u32::from(*last) + 1 == u32::from(port) => *last = port,
                _ => runs.push((port, port)),
            }
        }
        let text: Vec<String> = runs
            .iter()
            .map(|&(a, b)| match a == b {
                true => a.to_string(),
                false => format!("{a}-{b}"),
            })
            .collect();
        text.join(",")
    }
}

/// One host of the run.
#[derive(Debug, Clone)]
pub struct Host {
    /// Its address.
    pub addr: IpAddr,
    /// The name the user gave for it, if any (nmap's `type="user"` host name).
    pub name: Option<String>,
    /// Whether it is up.
    pub up: bool,
    /// Its MAC address, when an on-link sweep heard it (nmap's `addrtype="mac"`).
    pub mac: Option<String>,
    /// Why it is up or down, in nmap's `--reason` words (`user-set`, `echo-reply`,
    /// `no-response`, `net-unreach`, ...).
    pub reason: &'static str,
    /// The TTL (IPv4) or hop limit (IPv6) of the answer the reason names, as nmap's
    /// `reason_ttl`; 0 where no packet was read or its TTL is not known (a connect, ARP, no
    /// response), as nmap writes it then.
    pub reason_ttl: u8,
    /// Its ports listed one by one, ascending (scan only).
    pub ports: Vec<Port>,
    /// Ports counted but not listed one by one (nmap's `<extraports>`).
    pub extra: Vec<Extra>,
}

/// One port listed one by one.
#[derive(Debug, Clone)]
pub struct Port {
    /// The port number (TCP).
    pub port: u16,
    /// `open`, `closed` or `filtered`.
    pub state: &'static str,
    /// Why, in nmap's `--reason` words: `syn-ack`, `conn-refused`, `no-response`,
    /// `port-unreach`, `admin-prohibited`, ...
    pub reason: &'static str,
    /// The router whose ICMP error gave the port its state (nmap's `reason_ip`).
    pub reason_ip: Option<IpAddr>,
    /// The TTL of the answer that gave the port its state (nmap's `reason_ttl`); 0 where it
    /// was not read (a connect) or nothing answered, as nmap writes it.
    pub reason_ttl: u8,
    /// The service name from netkit's table (nmap's `method="table"`).
    pub service: Option<String>,
}

/// Ports of one state counted, not listed (an "ignored" state, in nmap's words).
#[derive(Debug, Clone)]
pub struct Extra {
    /// The state: `closed` or `filtered`.
    pub state: &'static str,
    /// How many ports.
    pub count: u64,
    /// How many for each reason, most frequent first (nmap's `<extrareasons>`).
    pub reasons: Vec<(&'static str, u64)>,
}

/// The end of a run.
#[derive(Debug, Clone)]
pub struct End {
    /// When it ended.
    pub time: SystemTime,
    /// How long it took, in seconds.
    pub elapsed_s: f64,
    /// Hosts up.
    pub up: u64,
    /// Hosts down.
    pub down: u64,
    /// Why the run ended early (`interrupted`), if it did.
    pub error: Option<String>,
}

/// An output format of nmap's: a run start, hosts as they are known, the end.
pub trait Document {
    /// Writes what comes before the first host.
    fn start(&mut self, run: &Run) -> io::Result<()>;
    /// Writes one host.
    fn host(&mut self, host: &Host) -> io::Result<()>;
    /// Writes the end of the run and flushes.
    fn finish(&mut self, end: &End) -> io::Result<()>;
}

/// `2026-12-01T02:32:22Z`: the time as nmap's `startstr`/`timestr` carry it (nmap writes the
/// local `ctime`; a consumer reads the numeric `start`/`time` beside it).
pub fn timestr(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// Seconds since the epoch.
pub fn epoch(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// nmap's closing sentence: `1 IP address (1 host up) scanned in 0.04 seconds`.
pub fn done_sentence(end: &End) -> String {
    let total = end.up + end.down;
    let addresses = if total == 1 { "address" } else { "addresses" };
    let hosts = if end.up == 1 { "host" } else { "hosts" };
    format!(
        "{total} IP {addresses} ({} {hosts} up) scanned in {:.2} seconds",
        end.up, end.elapsed_s
    )
}

/// Why a host cannot be reached, in nmap's reason words, from netkit's message (`network
/// unreachable (ICMP from 198.18.0.254)`, `Destination Host Unreachable from ROUTER`).
pub fn no_route_reason(error: &str) -> &'static str {
    let error = error.to_ascii_lowercase();
    // The sweep's words are iputils' (`Destination Net Unreachable`, `Packet filtered`,
    // `Destination unreachable: No route`), the scan's its own; the reasons are nmap's for
    // the same ICMP type and code.
    let reasons = [
        ("net prohibited", "net-prohibited"),
        ("host prohibited", "host-prohibited"),
        ("packet filtered", "admin-prohibited"),
        ("administratively prohibited", "admin-prohibited"),
        ("network", "net-unreach"),
        ("net unreachable", "net-unreach"),
        ("net unknown", "net-unreach"),
        ("host unreachable", "host-unreach"),
        ("host unknown", "host-unreach"),
        ("address unreachable", "host-unreach"),
        ("no route to host", "host-unreach"),
        ("time to live", "time-exceeded"),
        ("beyond scope", "beyond-scope"),
    ];
    reasons
        .iter()
        .find(|(words, _)| error.contains(words))
        .map_or("no-route", |&(_, reason)| reason)
}

/// This host's addresses (none when the interfaces cannot be listed).
pub fn own_addrs() -> HashSet<IpAddr> {
    let interfaces = netkit::iface::list().unwrap_or_default();
    let addrs = interfaces
        .iter()
        .flat_map(|i| i.addrs.iter().map(|a| a.addr));
    addrs.collect()
}

/// A host found up by an on-link probe (`by`: `arp`, `ndp`) of one of this host's own
/// addresses (`own`), as nmap says it: `localhost-response`, without a MAC address.
pub fn mark_localhost(host: &mut Host, by: Option<&str>, own: &HashSet<IpAddr>) {
    if host.up && matches!(by, Some("arp" | "ndp")) && own.contains(&host.addr) {
        (host.reason, host.mac, host.reason_ttl) = ("localhost-response", None, 0);
    }
}

/// nmap's reason for a host found up by the discovery method `by` (`icmp`, `tcp:443`,
/// `timestamp`, `ack:80`, as a sweep's host record `by` names it); a TCP connect's by how it
/// was answered (`tcp`), as nmap words it when it has raw sockets (`privileged`: it sends
/// SYNs, `syn-ack`, `reset`, `port-unreach`) or not (it connects: `syn-ack`, `conn-refused`).
pub fn up_reason(by: Option<&str>, tcp: Option<TcpAnswer>, privileged: bool) -> &'static str {
    match by {
        Some("icmp") => "echo-reply",
        Some(by) if by.starts_with("tcp:") => match (tcp, privileged) {
            (Some(TcpAnswer::Accepted), _) => "syn-ack",
            (Some(TcpAnswer::Reset), true) => "reset",
            (Some(TcpAnswer::PortUnreach), true) => "port-unreach",
            (Some(TcpAnswer::Reset | TcpAnswer::PortUnreach), false) => "conn-refused",
            (None, _) => "tcp-response",
        },
        Some("timestamp") => "timestamp-reply",
        Some(by) if by.starts_with("ack:") => match tcp {
            Some(TcpAnswer::PortUnreach) => "port-unreach",
            _ => "reset",
        },
        Some("arp") => "arp-response",
        Some("ndp") => "nd-response",
        _ => "unknown-response",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_route_reads_as_nmaps_reasons() {
        let reason = no_route_reason;
        assert_eq!(
            reason("network unreachable (ICMP from 198.18.0.254)"),
            "net-unreach"
        );
        assert_eq!(reason("Network is unreachable"), "net-unreach");
        assert_eq!(reason("no route: no route to host"), "host-unreach");
        assert_eq!(
            reason("Destination Host Unreachable from ::1"),
            "host-unreach"
        );
        assert_eq!(reason("no route: host is down"), "no-route");
        let router = |what: &str| reason(&format!("{what} from 198.19.254.1"));
        assert_eq!(router("Destination Net Unreachable"), "net-unreach");
        assert_eq!(router("Destination Net Unknown"), "net-unreach");
        assert_eq!(router("Destination Host Unreachable"), "host-unreach");
        assert_eq!(router("Packet filtered"), "admin-prohibited");
        assert_eq!(router("Destination Net Prohibited"), "net-prohibited");
        assert_eq!(router("Destination Host Prohibited"), "host-prohibited");
        let v6 = |what: &str| reason(&format!("Destination unreachable: {what} from ::1"));
        assert_eq!(v6("No route"), "no-route");
        assert_eq!(v6("Administratively prohibited"), "admin-prohibited");
        assert_eq!(v6("Address unreachable"), "host-unreach");
        assert_eq!(v6("Beyond scope of source address"), "beyond-scope");
    }

    #[test]
    fn each_discovery_method_reads_as_nmaps_reason() {
        let words = ["icmp", "timestamp", "ack:80", "arp", "ndp"].map(Some);
        let want = [
            "echo-reply",
            "timestamp-reply",
            "reset",
            "arp-response",
            "nd-response",
        ];
        assert_eq!(words.map(|by| up_reason(by, None, true)), want);
        assert_eq!(up_reason(None, None, true), "unknown-response");
        let tcp = |how, privileged| up_reason(Some("tcp:443"), Some(how), privileged);
        assert_eq!(tcp(TcpAnswer::Accepted, true), "syn-ack");
        assert_eq!(tcp(TcpAnswer::Accepted, false), "syn-ack");
        assert_eq!(tcp(TcpAnswer::Reset, true), "reset");
        assert_eq!(tcp(TcpAnswer::Reset, false), "conn-refused");
        assert_eq!(tcp(TcpAnswer::PortUnreach, true), "port-unreach");
        assert_eq!(tcp(TcpAnswer::PortUnreach, false), "conn-refused");
        let ack = Some(TcpAnswer::PortUnreach);
        assert_eq!(up_reason(Some("ack:80"), ack, true), "port-unreach");
    }

    #[test]
    fn services_fold_runs_as_nmap_lists_them() {
        let info = ScanInfo {
            ports: vec![80, 3, 1, 2, 22, 65535, 65534, 2],
            kind: netkit::report::scan::ScanType::Connect,
        };
        assert_eq!(info.services(), "1-3,22,80,65534-65535");
    }

    #[test]
    fn the_closing_sentence_counts_as_nmap_does() {
        let end = End {
            time: SystemTime::UNIX_EPOCH,
            elapsed_s: 0.041,
            up: 1,
            down: 0,
            error: None,
        };
        assert_eq!(
            done_sentence(&end),
            "1 IP address (1 host up) scanned in 0.04 seconds"
        );
    }
}
