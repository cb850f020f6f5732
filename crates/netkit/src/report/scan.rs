//! The records of `netkit scan` (docs/json.md): `port` per port that got its state (open
//! ones always, closed and filtered ones when asked), `unreachable` per target with no route,
//! `summary` at the end. The scan engine builds them and hands them over
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

impl PortState {
    /// `open`, `closed` or `filtered`.
    pub fn as_str(self) -> &'static str {
        match self {
            PortState::Open => "open",
            PortState::Closed => "closed",
            PortState::Filtered => "filtered",
        }
    }
}

/// Why a port has its state, in nmap's `--reason` words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The handshake completed (a connect accepted, or a SYN-ACK).
    SynAck,
    /// `connect` was refused: a reset, as the connect scan sees it.
    ConnRefused,
    /// A reset to a SYN (raw SYN scan).
    Reset,
    /// No answer after the retries.
    NoResponse,
    /// ICMP port unreachable.
    PortUnreach,
    /// ICMP protocol unreachable.
    ProtoUnreach,
    /// ICMP administratively prohibited (and the other "prohibited" codes).
    AdminProhibited,
    /// ICMP host unreachable: sent by the target itself (any "no route" code), or by a router
    /// for a host that answered other probes.
    HostUnreach,
    /// ICMPv4 network unreachable from a router, for a host that answered other probes.
    NetUnreach,
    /// ICMPv6 no route to destination from a router, for a host that answered other probes.
    NoRoute,
    /// ICMP time exceeded from a router, for a host that answered other probes.
    TimeExceeded,
    /// This machine's firewall or routing table forbade the probe (netkit's word; nmap -sT
    /// says admin-prohibited).
    LocalPolicy,
}

impl Reason {
    /// The word, as nmap's `--reason` and netkit's JSON say it: `syn-ack`, `conn-refused`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::SynAck => "syn-ack",
            Reason::ConnRefused => "conn-refused",
            Reason::Reset => "reset",
            Reason::NoResponse => "no-response",
            Reason::PortUnreach => "port-unreach",
            Reason::ProtoUnreach => "proto-unreach",
            Reason::AdminProhibited => "admin-prohibited",
            Reason::HostUnreach => "host-unreach",
            Reason::NetUnreach => "net-unreach",
            Reason::NoRoute => "no-route",
            Reason::TimeExceeded => "time-exceeded",
            Reason::LocalPolicy => "local-policy",
        }
    }

    /// Whether something on the network answered the probe: every reason but no answer at all
    /// and this machine's own firewall.
    pub fn is_answer(self) -> bool {
        !matches!(self, Reason::NoResponse | Reason::LocalPolicy)
    }
}

/// One port that got its state (`{"type":"port",...}`): every open port, and closed and
/// filtered ones when the scan was asked for them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortReport {
    /// The target as given: a host name, or the address (with its zone, `fe80::1%eth0`).
    pub host: String,
    /// The address probed.
    pub addr: IpAddr,
    /// The port.
    pub port: u16,
    /// Its state.
    pub state: PortState,
    /// Why it has that state.
    pub reason: Reason,
    /// The usual service name of the port, from the bundled table.
    pub service: Option<String>,
    /// Time from `connect` to the answer that settled the port, in milliseconds (`null`
    /// when no answer came).
    pub rtt_ms: Option<f64>,
    /// Probes sent to the port before it got its state (1: the first try settled it).
    pub tries: u32,
    /// The first bytes the service sent, sanitised (`--banner` only).
    pub banner: Option<String>,
    /// The router whose ICMP error gave the port its state (nmap's `reason_ip`: a router's
    /// `host-unreach`, `net-unreach`, ...); absent when the target answered, or nothing did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_ip: Option<IpAddr>,
    /// The TTL (IPv6: hop limit) of the answer that gave the port its state (nmap's
    /// `reason_ttl`); absent where it is not read (a connect) or nothing answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u8>,
}

/// A target the scan could not reach (`{"type":"unreachable",...}`): no route to it, said by
/// this machine's routing table or by a router's ICMP error. Its ports are counted in no
/// state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unreachable {
    /// The target as given: a host name, or the address (with its zone, `fe80::1%eth0`).
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
    /// The target as given: a host name, or the address (with its zone, `fe80::1%eth0`).
    pub host: String,
    /// The address.
    pub addr: IpAddr,
    /// Up or down.
    pub status: HostStatus,
    /// Why: `echo-reply`, `syn-ack`, `reset`, ... (a discovery probe answered, as nmap says
    /// it), `user-set` (scanned without discovery: `-Pn`, or a single target),
    /// `no-response`, or nmap's word for a router's unreachable (`net-unreach`, ...).
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
    /// Hosts scanned that answered nothing: neither a discovery probe nor a probe of any of
    /// their ports got an answer (every port filtered for want of one).
    #[serde(default)]
    pub silent: u64,
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
    /// Which scan ran: `connect` or `syn` (`--syn` falls back to `connect` unprivileged).
    #[serde(default)]
    pub scan_type: ScanType,
}

/// How a scan probed ports (nmap's `scaninfo` type).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanType {
    /// Non-blocking connects (nmap -sT).
    #[default]
    Connect,
    /// Raw SYNs (nmap -sS).
    Syn,
}

impl ScanType {
    /// nmap's name for it: `connect` or `syn`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScanType::Connect => "connect",
            ScanType::Syn => "syn",
        }
    }
}
