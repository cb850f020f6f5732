//! The records of `netkit sweep` (docs/json.md): `host`, `duplicate`, `change`, `throttle`,
//! `summary`, and the progress line. The sweep engine builds them and hands them over in its
//! events ([`crate::sweep::Event`]); the binary prints them as human lines or JSON Lines.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One target's answer in one round:
/// `{"type":"host","addr","alive","rtt_ms","round","error","by"}`, and `"mac"` for on-link
/// methods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRecord {
    /// The target address.
    pub addr: IpAddr,
    /// Whether it answered in this round.
    pub alive: bool,
    /// Round-trip time of its first answer, in milliseconds; null when silent.
    pub rtt_ms: Option<f64>,
    /// Round number, from 1.
    pub round: u64,
    /// Why the target cannot be reached (no route), as the peers say it; null otherwise.
    #[serde(default)]
    pub error: Option<String>,
    /// The method that answered first (`icmp`, `tcp:443`, as `--method` names it); absent
    /// when silent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// How the target answered a TCP connect (`--method tcp:PORT`): `accepted`, `reset`, or
    /// `port-unreach` (its own ICMP port unreachable); absent for the other methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpAnswer>,
    /// The MAC address that answered (`--method arp|ndp` only; absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// The interface of a target given with a zone (`fe80::1%eth0`: `"eth0"`); absent
    /// otherwise. The same address in two zones is two targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// The TTL (IPv4) or hop limit (IPv6) of its first answer, where it is known (ICMP echo
    /// replies; answers on raw sockets: `ack`, `timestamp`, IPv4); absent otherwise (a TCP
    /// connect's answer, ARP and neighbour discovery, a silent target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u8>,
}

/// How a target answered a TCP connect probe: the three ways that say it is alive. nmap's
/// reasons for them: `syn-ack`; `reset` and `port-unreach` when it probes with raw SYNs
/// (privileged), `conn-refused` for both when it connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TcpAnswer {
    /// The connection was accepted (a SYN-ACK).
    Accepted,
    /// It was refused with a reset.
    Reset,
    /// It was refused with an ICMP port unreachable from the target itself.
    PortUnreach,
}

/// A second MAC address answered for a live host's address in the same round (an address
/// conflict; arp-scan's "DUP"): `{"type":"duplicate","addr","mac","nth","round"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateRecord {
    /// The target address.
    pub addr: IpAddr,
    /// The other MAC address that answered for it.
    pub mac: String,
    /// Which MAC address heard for it this is: 2 for the second one, ...
    pub nth: u16,
    /// Round number, from 1.
    pub round: u64,
    /// The target's zone, as in [`HostRecord`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// A host that changed state since the previous round (periodic mode, from round 2 on):
/// `{"type":"change","addr","alive","round"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// The target address.
    pub addr: IpAddr,
    /// `true`: it came up; `false`: it went down.
    pub alive: bool,
    /// The round in which the change was seen.
    pub round: u64,
    /// The target's zone, as in [`HostRecord`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// The end of a round: `{"type":"summary","round","alive","dead","unreachable","elapsed_s",
/// "probes","rate","throttled","loss_pct","loss_probes","timeout_ms"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SummaryRecord {
    /// Round number, from 1.
    pub round: u64,
    /// Targets that answered.
    pub alive: u64,
    /// Targets that stayed silent.
    pub dead: u64,
    /// Targets with no route (not counted in `dead`).
    #[serde(default)]
    pub unreachable: u64,
    /// Whether the round was stopped (Ctrl-C, SIGTERM) before its end.
    #[serde(default)]
    pub interrupted: bool,
    /// Targets of an interrupted round that neither answered nor were probed to the end (not
    /// counted in `alive`, `dead` or `unreachable`); 0 otherwise.
    #[serde(default)]
    pub unsettled: u64,
    /// How long the round took, in seconds.
    pub elapsed_s: f64,
    /// Probes sent: first probes, re-probes of silent targets and control probes.
    #[serde(default)]
    pub probes: u64,
    /// Probes per second the round ended at (the `--rate` ceiling unless throttled).
    #[serde(default)]
    pub rate: u64,
    /// Whether the answers collapsed and the sweep slowed down in this round.
    #[serde(default)]
    pub throttled: bool,
    /// The round-trip loss measured on probes to live hosts, in percent: control probes
    /// (re-probes of live hosts), and the probes each host needed before it answered; null
    /// when no host was found.
    #[serde(default)]
    pub loss_pct: Option<f64>,
    /// How many probes `loss_pct` rests on.
    #[serde(default)]
    pub loss_probes: u64,
    /// The probe timeout derived from the round-trip times, at the end of the round.
    #[serde(default)]
    pub timeout_ms: f64,
}

/// The sweep slowed down because the answers collapsed:
/// `{"type":"throttle","round","from_rate","to_rate","answered_pct","expected_pct"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThrottleRecord {
    /// Round number, from 1.
    pub round: u64,
    /// Probes per second before.
    pub from_rate: u64,
    /// Probes per second from now on.
    pub to_rate: u64,
    /// Percentage of control probes (re-probes of live hosts) answered at `from_rate`.
    pub answered_pct: f64,
    /// Percentage answered before the collapse.
    pub expected_pct: f64,
}

/// How far the current round has got, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Round number, from 1.
    pub round: u64,
    /// Targets probed at least once so far.
    pub probed: u64,
    /// Targets that answered so far.
    pub alive: u64,
    /// Targets in the round.
    pub total: u64,
}

/// Milliseconds as a float to the microsecond, for `rtt_ms`.
pub fn millis(rtt: Duration) -> f64 {
    (rtt.as_secs_f64() * 1e6).round() / 1000.0
}
