//! The records of `netkit scan` (docs/json.md): `port` per open port, `unreachable` per
//! target with no route, `summary` at the end. The scan engine builds them and hands them over
//! in its events; the binary prints them as human lines or JSON Lines.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// What a probe found out about a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortState {
    /// The handshake completed.
    Open,
    /// The host answered with a reset (RST): nothing listens there.
    Closed,
    /// No answer after the retries, or an ICMP error (port, protocol or administratively
    /// prohibited unreachable) or this machine's firewall refused the probe.
    Filtered,
}

/// One open port (`{"type":"port",...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenPort {
    /// The target as given: a host name, or the address.
    pub host: String,
    /// The address probed.
    pub addr: IpAddr,
    /// The port.
    pub port: u16,
    /// Always [`PortState::Open`]: only open ports are reported one by one.
    pub state: PortState,
    /// The usual service name of the port, from the bundled table.
    pub service: Option<String>,
    /// Time from `connect` to the completed handshake, in milliseconds.
    pub rtt_ms: f64,
    /// The first bytes the service sent, sanitised (`--banner` only).
    pub banner: Option<String>,
}

/// A target the scan could not reach (`{"type":"unreachable",...}`): no route to it, said by
/// this machine's routing table or by a router's ICMP error. Its ports are counted in no
/// state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unreachable {
    /// The target as given: a host name, or the address.
    pub host: String,
    /// The address probed.
    pub addr: IpAddr,
    /// What was said, e.g. `network unreachable (ICMP from 198.18.0.254)`.
    pub error: String,
    /// The router that said it (`null`: this machine's routing table).
    pub from: Option<IpAddr>,
}

/// Whether a host is up (`{"type":"host",...}`'s `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostStatus {
    /// It answered a discovery probe, or was scanned without discovery.
    Up,
    /// It answered no discovery probe (or there is no route to it): not scanned.
    Down,
}

/// A host, once it is finished (`{"type":"host",...}`): up (scanned, with its ports counted
/// by state) or down (not scanned), and why, in nmap's `--reason` words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostReport {
    /// The target as given: a host name, or the address.
    pub host: String,
    /// The address.
    pub addr: IpAddr,
    /// Up or down.
    pub status: HostStatus,
    /// Why: `echo-reply` or `tcp-response` (a discovery probe answered), `user-set` (scanned
    /// without discovery: `-Pn`, or a single target), `no-response`, or nmap's word for a
    /// router's unreachable (`net-unreach`, `host-unreach`, ...).
    pub reason: String,
    /// The discovery method that answered (`icmp`, `tcp:443`), when one did.
    pub by: Option<String>,
    /// Open ports (`null` when not scanned).
    pub open: Option<u64>,
    /// Closed ports (`null` when not scanned).
    pub closed: Option<u64>,
    /// Filtered ports (`null` when not scanned).
    pub filtered: Option<u64>,
}

/// The totals of a scan (`{"type":"summary",...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanSummary {
    /// Hosts scanned (with discovery: those found up).
    pub hosts: u64,
    /// Hosts found down by discovery, not scanned.
    #[serde(default)]
    pub down: u64,
    /// Ports scanned on each host.
    pub scanned: u64,
    /// Open ports, over all hosts.
    pub open: u64,
    /// Closed ports, over all hosts.
    pub closed: u64,
    /// Filtered ports, over all hosts.
    pub filtered: u64,
    /// Hosts that could not be reached (no route).
    #[serde(default)]
    pub unreachable: u64,
    /// Whether the scan was interrupted (SIGINT) before every port got its state.
    #[serde(default)]
    pub interrupted: bool,
    /// Wall-clock duration of the scan in seconds.
    pub elapsed_s: f64,
}
