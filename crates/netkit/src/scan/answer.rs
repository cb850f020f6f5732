//! What the network's answer to a connect means for the port, without I/O: a completed
//! handshake is open, a reset is closed, and an ICMP error read from the socket's error queue
//! (`IP_RECVERR`) is classified as nmap's SYN scan does:
//!
//! - port, protocol or administratively prohibited unreachable (ICMPv4 3/2, 3/3, 3/9, 3/10,
//!   3/13; ICMPv6 1/1, 1/4, 1/5, 1/6) is **filtered**: a TCP port that nothing listens on
//!   answers with a reset, so an ICMP error comes from a firewall rule (`REJECT`). The kernel
//!   reports port unreachable to `connect` as `ECONNREFUSED`, exactly like a reset, which is
//!   why `nmap -sT` calls such ports closed; reading the error queue tells them apart. It also
//!   keeps the answer the same whatever the far side's ICMP rate limit: a rate-limited error
//!   is silence, and silence after the retries is filtered too.
//! - network or host unreachable, and time exceeded, sent by a router (ICMPv4 3/0, 3/1, 3/5-8,
//!   3/11, 3/12, 11; ICMPv6 1/0, 1/2, 1/3, 3) mean there is **no route** to the target: the
//!   host cannot be scanned, which is an error about the host, not a port state — unless the
//!   host answered other probes: then a router's firewall refused only some ports so, and
//!   the scheduler filters those (`host-unreach`, `net-unreach`, ... as nmap -sS). The same
//!   errors sent by the target itself (`REJECT --reject-with icmp-host-unreachable`) come from
//!   a live host refusing one port: filtered.
//! - fragmentation needed (3/4) is path MTU discovery, no answer about the port.
//!
//! Without an ICMP error, `ECONNREFUSED` is a reset (closed), `ENETUNREACH`/`EHOSTUNREACH`
//! are this machine's own "no route", `EACCES`/`EPERM` its own firewall or a `prohibit`
//! route (filtered, as nmap).

use std::fmt;
use std::net::IpAddr;

use nix::errno::Errno;

use crate::report::scan::Reason;

/// What an answer says about a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The handshake completed.
    Open,
    /// The host answered with a reset.
    Closed,
    /// An ICMP error from the target or a local policy refused the probe.
    Filtered(Refusal),
    /// An ICMP error from another address (a router's or a firewall's: port unreachable,
    /// administratively prohibited, ...) refused the probe: filtered, that address being
    /// nmap's `reason_ip`.
    RouterRefused(Refusal, IpAddr),
    /// There is no route to the host.
    Unreachable(NoRoute),
    /// Nothing that concerns the port (fragmentation needed).
    Nothing,
}

impl Answer {
    /// Whether this machine gave the answer itself, its routing table or firewall refusing
    /// the probe before it left ([`from_errno`] without an ICMP error): nothing crossed the
    /// network, so the time it took is no round trip. Audit: an unroutable target beside a
    /// host behind a 1.2 s round trip taught the scan a round trip of microseconds, which the
    /// host's first tries took for theirs, and 15 of its 20 closed ports came out filtered.
    pub fn is_local(&self) -> bool {
        matches!(
            self,
            Answer::Unreachable(NoRoute { from: None, .. })
                | Answer::Filtered(Refusal::LocalPolicy)
        )
    }
}

/// Who refused a probe, in nmap's `--reason` words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// ICMP port unreachable.
    PortUnreach,
    /// ICMP protocol unreachable.
    ProtoUnreach,
    /// ICMP administratively prohibited (and the other "prohibited" codes).
    AdminProhibited,
    /// ICMP host or network unreachable sent by the target itself.
    HostUnreach,
    /// This machine's firewall or routing table forbade the connect.
    LocalPolicy,
}

impl Refusal {
    /// The refusal in nmap's `--reason` words.
    pub fn reason(self) -> Reason {
        match self {
            Refusal::PortUnreach => Reason::PortUnreach,
            Refusal::ProtoUnreach => Reason::ProtoUnreach,
            Refusal::AdminProhibited => Reason::AdminProhibited,
            Refusal::HostUnreach => Reason::HostUnreach,
            Refusal::LocalPolicy => Reason::LocalPolicy,
        }
    }
}

/// [`NoRoute::why`] of ICMP network unreachable.
const NET_UNREACHABLE: &str = "network unreachable";
/// [`NoRoute::why`] of ICMP time exceeded.
const TTL_EXCEEDED: &str = "time to live exceeded";

/// Why a host cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRoute {
    /// What was said, e.g. "network unreachable".
    pub why: &'static str,
    /// The router that said it (`None`: this machine's routing table).
    pub from: Option<IpAddr>,
}

impl fmt::Display for NoRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.from {
            Some(from) => write!(f, "{} (ICMP from {from})", self.why),
            None => write!(f, "no route: {}", self.why),
        }
    }
}

impl NoRoute {
    /// The reason a port gets when a router says this of a host that answered other probes
    /// (a router's firewall refusing some ports), in nmap's words: `net-unreach` (IPv6:
    /// `no-route`), `time-exceeded`, else `host-unreach`.
    pub fn reason(&self, v6: bool) -> Reason {
        match self.why {
            NET_UNREACHABLE if v6 => Reason::NoRoute,
            NET_UNREACHABLE => Reason::NetUnreach,
            TTL_EXCEEDED => Reason::TimeExceeded,
            _ => Reason::HostUnreach,
        }
    }
}

/// An ICMP error the kernel queued on the probe's socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpReport {
    /// ICMPv6 rather than ICMPv4.
    pub v6: bool,
    /// The ICMP type.
    pub kind: u8,
    /// The ICMP code.
    pub code: u8,
    /// The address that sent it.
    pub from: Option<IpAddr>,
}

impl IcmpReport {
    /// What the error means for a probe to `target`.
    pub fn classify(&self, target: IpAddr) -> Answer {
        let no_route = |why| {
            if self.from == Some(target) {
                Answer::Filtered(Refusal::HostUnreach)
            } else {
                Answer::Unreachable(NoRoute {
                    why,
                    from: self.from,
                })
            }
        };
        let filtered = |refusal| match self.from {
            Some(from) if from != target => Answer::RouterRefused(refusal, from),
            _ => Answer::Filtered(refusal),
        };
        match (self.v6, self.kind, self.code) {
            (false, 3, 0 | 6 | 11) | (true, 1, 0) => no_route(NET_UNREACHABLE),
            (false, 3, 1 | 7 | 8 | 12) | (true, 1, 3) => no_route("host unreachable"),
            (false, 3, 5) => no_route("source route failed"),
            (true, 1, 2) => no_route("beyond scope of source address"),
            (false, 11, _) | (true, 3, _) => no_route(TTL_EXCEEDED),
            (false, 3, 2) => filtered(Refusal::ProtoUnreach),
            (false, 3, 3) | (true, 1, 4) => filtered(Refusal::PortUnreach),
            (false, 3, 4) => Answer::Nothing,
            _ => filtered(Refusal::AdminProhibited),
        }
    }
}

/// What a failed connect's errno means when no ICMP error came with it; `None` when it says
/// nothing about the port (a local shortage or an unexpected failure).
pub fn from_errno(errno: Errno) -> Option<Answer> {
    Some(match errno {
        Errno::ECONNREFUSED | Errno::ECONNRESET => Answer::Closed,
        Errno::ENETUNREACH => local_no_route("network is unreachable"),
        Errno::EHOSTUNREACH => local_no_route("no route to host"),
        Errno::EHOSTDOWN => local_no_route("host is down"),
        Errno::ENONET => local_no_route("machine is not on the network"),
        Errno::EACCES | Errno::EPERM => Answer::Filtered(Refusal::LocalPolicy),
        Errno::ENOPROTOOPT => Answer::Filtered(Refusal::ProtoUnreach),
        _ => return None,
    })
}

fn local_no_route(why: &'static str) -> Answer {
    Answer::Unreachable(NoRoute { why, from: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET: &str = "198.18.1.1";
    const ROUTER: &str = "198.18.0.254";

    fn v4(kind: u8, code: u8, from: &str) -> Answer {
        let from = Some(from.parse().unwrap());
        IcmpReport {
            v6: false,
            kind,
            code,
            from,
        }
        .classify(TARGET.parse().unwrap())
    }

    fn v6(kind: u8, code: u8, from: &str) -> Answer {
        let from = Some(from.parse().unwrap());
        IcmpReport {
            v6: true,
            kind,
            code,
            from,
        }
        .classify("2001:db8:1::1".parse().unwrap())
    }

    #[test]
    fn rejects_are_filtered_as_nmap_syn_scan_says() {
        use Refusal::*;
        assert_eq!(v4(3, 3, TARGET), Answer::Filtered(PortUnreach));
        assert_eq!(v4(3, 13, TARGET), Answer::Filtered(AdminProhibited));
        let router = ROUTER.parse().unwrap();
        assert_eq!(
            v4(3, 10, ROUTER),
            Answer::RouterRefused(AdminProhibited, router),
            "a router's: its address is nmap's reason_ip"
        );
        assert_eq!(v4(3, 2, TARGET), Answer::Filtered(ProtoUnreach));
        assert_eq!(v6(1, 4, "2001:db8:1::1"), Answer::Filtered(PortUnreach));
        assert_eq!(v6(1, 1, "2001:db8:1::1"), Answer::Filtered(AdminProhibited));
    }

    #[test]
    fn unreachable_from_a_router_is_no_route() {
        let answer = v4(3, 0, ROUTER);
        let Answer::Unreachable(no_route) = answer else {
            panic!("{answer:?}")
        };
        assert_eq!(
            no_route.to_string(),
            "network unreachable (ICMP from 198.18.0.254)"
        );
        assert!(matches!(v4(3, 1, ROUTER), Answer::Unreachable(_)));
        assert!(matches!(v4(11, 0, ROUTER), Answer::Unreachable(_)));
        assert!(matches!(v6(1, 3, "2001:db8::fe"), Answer::Unreachable(_)));
        assert!(matches!(v6(1, 0, "2001:db8::fe"), Answer::Unreachable(_)));
    }

    #[test]
    fn unreachable_from_the_target_itself_is_a_refusal() {
        assert_eq!(v4(3, 1, TARGET), Answer::Filtered(Refusal::HostUnreach));
        assert_eq!(
            v6(1, 0, "2001:db8:1::1"),
            Answer::Filtered(Refusal::HostUnreach)
        );
    }

    #[test]
    fn fragmentation_needed_says_nothing() {
        assert_eq!(v4(3, 4, ROUTER), Answer::Nothing);
    }

    #[test]
    fn errnos_without_icmp() {
        assert_eq!(from_errno(Errno::ECONNREFUSED), Some(Answer::Closed));
        let local = from_errno(Errno::ENETUNREACH);
        assert_eq!(
            local.map(|a| match a {
                Answer::Unreachable(n) => n.to_string(),
                _ => String::new(),
            }),
            Some("no route: network is unreachable".into())
        );
        assert_eq!(
            from_errno(Errno::EACCES),
            Some(Answer::Filtered(Refusal::LocalPolicy))
        );
        assert_eq!(from_errno(Errno::EMFILE), None);
    }

    #[test]
    fn only_this_machines_own_refusals_are_local() {
        let local = |errno| from_errno(errno).is_some_and(|a| a.is_local());
        assert!(local(Errno::ENETUNREACH) && local(Errno::EHOSTUNREACH) && local(Errno::EPERM));
        assert!(!local(Errno::ECONNREFUSED));
        assert!(
            !v4(3, 1, ROUTER).is_local(),
            "a router's no route crossed the network"
        );
        assert!(!v4(3, 13, TARGET).is_local());
    }
}
