//! The far side's behaviours as data: how refused ports answer, which prefixes the router
//! cannot reach, the ICMP rate-limit policy, what listeners do with a connection, and which
//! back end impairs the links.

use std::str::FromStr;

use crate::error::{LabError, Result};

/// How a REJECT rule answers a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// ICMP port unreachable (v6: ICMPv6 port unreachable). A connect fails with ECONNREFUSED.
    PortUnreachable,
    /// ICMP communication administratively prohibited (v4 type 3 code 13; v6 code 1).
    /// A connect fails with EHOSTUNREACH (v4) or EACCES (v6).
    AdminProhibited,
    /// ICMP host unreachable (v6: address unreachable). A connect fails with EHOSTUNREACH.
    HostUnreachable,
    /// A TCP reset sent by the firewall (what a closed port says anyway).
    TcpReset,
}

impl Reject {
    /// The `--reject-with` value for iptables (`v6` false) or ip6tables (`v6` true).
    pub fn iptables(self, v6: bool) -> &'static str {
        match (self, v6) {
            (Reject::PortUnreachable, false) => "icmp-port-unreachable",
            (Reject::PortUnreachable, true) => "icmp6-port-unreachable",
            (Reject::AdminProhibited, false) => "icmp-admin-prohibited",
            (Reject::AdminProhibited, true) => "icmp6-adm-prohibited",
            (Reject::HostUnreachable, false) => "icmp-host-unreachable",
            (Reject::HostUnreachable, true) => "icmp6-addr-unreachable",
            (Reject::TcpReset, _) => "tcp-reset",
        }
    }
}

impl FromStr for Reject {
    type Err = LabError;

    /// Parses `port-unreachable`, `admin-prohibited`, `host-unreachable` or `tcp-reset`.
    fn from_str(s: &str) -> Result<Reject> {
        match s {
            "port-unreachable" => Ok(Reject::PortUnreachable),
            "admin-prohibited" => Ok(Reject::AdminProhibited),
            "host-unreachable" => Ok(Reject::HostUnreachable),
            "tcp-reset" => Ok(Reject::TcpReset),
            _ => Err(LabError::spec(
                s,
                "expected port-unreachable, admin-prohibited, host-unreachable or tcp-reset",
            )),
        }
    }
}

/// What the far firewall does with matching TCP probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortAction {
    /// Silently drop them (nmap: filtered).
    Drop,
    /// Answer with the given rejection.
    Reject(Reject),
}

/// How a prefix is unreachable from the scanner. The router's IPv4 errors for `Net`, `Host`
/// and `Prohibited` are rate-limited by the host-wide `net.ipv4.route.error_cost` and
/// `error_burst` (defaults: 5 at once, then one per second per source), which a namespace
/// cannot change; IPv6 errors follow the lab's ICMP limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unroutable {
    /// The scanner itself has no route: sends fail locally with ENETUNREACH, nothing leaves.
    Local,
    /// The router has no route: it answers ICMP net unreachable (v6: no route to destination).
    Net,
    /// The router has an `unreachable` route: ICMP host unreachable (v6: no route).
    Host,
    /// The router has a `prohibit` route: ICMP administratively prohibited (v4 code 13, v6
    /// code 1).
    Prohibited,
}

impl FromStr for Unroutable {
    type Err = LabError;

    /// Parses `local`, `net`, `host` or `prohibit`.
    fn from_str(s: &str) -> Result<Unroutable> {
        match s {
            "local" => Ok(Unroutable::Local),
            "net" => Ok(Unroutable::Net),
            "host" => Ok(Unroutable::Host),
            "prohibit" => Ok(Unroutable::Prohibited),
            _ => Err(LabError::spec(s, "expected local, net, host or prohibit")),
        }
    }
}

/// The ICMP rate limits of the far and router kernels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IcmpLimits {
    /// Kernel defaults: `net.ipv4.icmp_ratelimit=1000` (one error per second per peer, burst
    /// 6), `net.ipv6.icmp.ratelimit=100`, `net.ipv4.icmp_msgs_per_sec=1000` (burst 50).
    #[default]
    Default,
    /// No limit: per-peer limits 0, rate masks cleared (`net.ipv4.icmp_ratemask=0`,
    /// `net.ipv6.icmp.ratemask=`), global limit raised to 1000000/s.
    Off,
}

impl FromStr for IcmpLimits {
    type Err = LabError;

    /// Parses `default` or `off`.
    fn from_str(s: &str) -> Result<IcmpLimits> {
        match s {
            "default" => Ok(IcmpLimits::Default),
            "off" => Ok(IcmpLimits::Off),
            _ => Err(LabError::spec(s, "expected default or off")),
        }
    }
}

/// What a far-side listener does with each accepted connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Serve {
    /// Accept, then close at once.
    #[default]
    Close,
    /// Echo every byte back until the peer closes.
    Echo,
}

/// Which machinery applies delay, jitter, loss, duplication and reordering.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// `netem` where the kernel has it, else the user-space relay.
    #[default]
    Auto,
    /// The user-space NFQUEUE relay in the router, even where netem exists.
    Relay,
    /// `netem` qdiscs on the links' egress (fails where the kernel lacks `sch_netem`).
    Netem,
}

impl FromStr for Backend {
    type Err = LabError;

    /// Parses `auto`, `relay` or `netem`.
    fn from_str(s: &str) -> Result<Backend> {
        match s {
            "auto" => Ok(Backend::Auto),
            "relay" => Ok(Backend::Relay),
            "netem" => Ok(Backend::Netem),
            _ => Err(LabError::spec(s, "expected auto, relay or netem")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!(
            "admin-prohibited".parse::<Reject>().unwrap(),
            Reject::AdminProhibited
        );
        assert_eq!(
            Reject::AdminProhibited.iptables(true),
            "icmp6-adm-prohibited"
        );
        assert_eq!(
            "prohibit".parse::<Unroutable>().unwrap(),
            Unroutable::Prohibited
        );
        assert_eq!("off".parse::<IcmpLimits>().unwrap(), IcmpLimits::Off);
        assert_eq!("relay".parse::<Backend>().unwrap(), Backend::Relay);
        assert!("icmp".parse::<Reject>().is_err());
        assert!("none".parse::<Unroutable>().is_err());
    }
}
