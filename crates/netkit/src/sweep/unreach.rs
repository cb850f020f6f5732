//! Targets with no route: why each is unreachable ([`Unreach`]: the system refused to send, or
//! a router answered with an ICMP destination-unreachable error), kept per target position in
//! runs of equal reasons ([`UnreachMap`]), so a whole unroutable block costs a few entries.
//! [`answer_of`] reads an ICMP error about a probe the one way every prober reads it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr, UdpSocket};

use super::reply::Answer;
use crate::icmp::{error, Version};

/// Why a target is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreach {
    /// The system has no route: sending failed with this `errno` (ENETUNREACH, EHOSTUNREACH).
    Local(i32),
    /// A router answered a probe with an ICMP destination-unreachable error.
    Icmp {
        /// ICMP type of the error (3 for ICMPv4, 1 for ICMPv6).
        msg_type: u8,
        /// ICMP code of the error.
        code: u8,
        /// The router that sent it.
        from: IpAddr,
    },
}

impl Unreach {
    /// Whether the ICMP error came from `addr` (the target itself rather than a router).
    pub fn is_from(&self, addr: IpAddr) -> bool {
        matches!(self, Unreach::Icmp { from, .. } if *from == addr)
    }

    /// Whether an ICMP error (`msg_type`, `code`) about an echo request says the destination
    /// cannot be reached (net, host, prohibited, no route...). Port unreachable and
    /// "fragmentation needed" say something else, and time exceeded is not a routing answer.
    pub fn is_unreachable(version: Version, msg_type: u8, code: u8) -> bool {
        match version {
            Version::V4 => msg_type == 3 && code != 3 && code != 4,
            Version::V6 => msg_type == 1 && code != 4,
        }
    }
}

/// What an ICMP error (`msg_type`, `code`, sent by `from`) about a probe to a target says of
/// it: unreachable, with the error as the reason ([`Unreach::is_unreachable`]), or absent when
/// it is "host unreachable" from this host itself (the neighbour never answered: ARP or
/// neighbour discovery failed for an on-link target, an absent host rather than a routing
/// error); `None` for an error that says nothing about reaching the target.
pub fn answer_of(
    version: Version,
    (msg_type, code): (u8, u8),
    from: IpAddr,
    local: &mut LocalAddrs,
) -> Option<Answer> {
    if !Unreach::is_unreachable(version, msg_type, code) {
        return None;
    }
    let neighbour = matches!((version, code), (Version::V4, 1) | (Version::V6, 3));
    Some(match neighbour && local.contains(from) {
        true => Answer::Absent,
        false => Answer::Unreachable(Unreach::Icmp {
            msg_type,
            code,
            from,
        }),
    })
}

/// Which addresses belong to this host, remembered.
#[derive(Debug, Default)]
pub struct LocalAddrs(HashMap<IpAddr, bool>);

impl LocalAddrs {
    /// Whether `addr` is one of this host's addresses.
    pub fn contains(&mut self, addr: IpAddr) -> bool {
        *self.0.entry(addr).or_insert_with(|| is_own(addr))
    }
}

/// Whether a socket can bind `addr`, or, for an IPv6 address (a link-local one binds only with
/// its zone, which an ICMP error's source does not carry), an interface has it.
fn is_own(addr: IpAddr) -> bool {
    if UdpSocket::bind(SocketAddr::new(addr, 0)).is_ok() {
        return true;
    }
    if addr.is_ipv4() {
        return false;
    }
    let interfaces = crate::iface::list().unwrap_or_default();
    interfaces
        .iter()
        .flat_map(|i| &i.addrs)
        .any(|a| a.addr == addr)
}

impl fmt::Display for Unreach {
    /// In the peers' words: `Network is unreachable` (fping, when sending fails) or
    /// `Destination Net Unreachable from 198.19.254.1` (iputils ping).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Unreach::Local(errno) => f.write_str(nix::errno::Errno::from_raw(errno).desc()),
            Unreach::Icmp {
                msg_type,
                code,
                from,
            } => {
                let what = error::describe(Version::of(&from), msg_type, code, 0);
                write!(f, "{what} from {from}")
            }
        }
    }
}

/// The unreachable targets of a round, by position: runs `[start, end)` of one reason.
#[derive(Debug, Default)]
pub struct UnreachMap {
    runs: BTreeMap<u64, (u64, Unreach)>,
    count: u64,
}

impl UnreachMap {
    /// No target unreachable.
    pub fn new() -> Self {
        UnreachMap::default()
    }

    /// How many targets are unreachable.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether no target is unreachable.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Why target `index` is unreachable, if it is.
    pub fn get(&self, index: u64) -> Option<Unreach> {
        let (_, &(end, why)) = self.runs.range(..=index).next_back()?;
        (index < end).then_some(why)
    }

    /// Records that target `index` is unreachable; the first reason given stays. Returns
    /// whether it was new.
    pub fn insert(&mut self, index: u64, why: Unreach) -> bool {
        if self.get(index).is_some() {
            return false;
        }
        self.count += 1;
        let before = self.runs.range(..index).next_back().map(|(s, r)| (*s, *r));
        let extend_before = before.filter(|(_, (end, w))| *end == index && *w == why);
        let after = self.runs.get(&(index + 1)).copied();
        let join_after = after.filter(|(_, w)| *w == why);
        match (extend_before, join_after) {
            (Some((start, _)), Some((end, _))) => {
                self.runs.remove(&(index + 1));
                self.runs.insert(start, (end, why));
            }
            (Some((start, _)), None) => {
                self.runs.insert(start, (index + 1, why));
            }
            (None, Some((end, _))) => {
                self.runs.remove(&(index + 1));
                self.runs.insert(index, (end, why));
            }
            (None, None) => {
                self.runs.insert(index, (index + 1, why));
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> IpAddr {
        "198.19.254.1".parse().unwrap()
    }

    #[test]
    fn says_it_as_fping_and_iputils_do() {
        let local = Unreach::Local(nix::libc::ENETUNREACH);
        assert_eq!(local.to_string(), "Network is unreachable");
        let net = Unreach::Icmp {
            msg_type: 3,
            code: 0,
            from: router(),
        };
        assert_eq!(
            net.to_string(),
            "Destination Net Unreachable from 198.19.254.1"
        );
        let v6 = Unreach::Icmp {
            msg_type: 1,
            code: 0,
            from: "2001:db8:ffff::1".parse().unwrap(),
        };
        assert_eq!(
            v6.to_string(),
            "Destination unreachable: No route from 2001:db8:ffff::1"
        );
    }

    #[test]
    fn which_errors_mean_unreachable() {
        assert!(Unreach::is_unreachable(Version::V4, 3, 0));
        assert!(Unreach::is_unreachable(Version::V4, 3, 13));
        assert!(!Unreach::is_unreachable(Version::V4, 3, 3), "port");
        assert!(!Unreach::is_unreachable(Version::V4, 3, 4), "frag needed");
        assert!(
            !Unreach::is_unreachable(Version::V4, 11, 0),
            "time exceeded"
        );
        assert!(Unreach::is_unreachable(Version::V6, 1, 3));
        assert!(!Unreach::is_unreachable(Version::V6, 3, 0));
    }

    #[test]
    fn runs_merge_and_reasons_stay() {
        let (a, b) = (Unreach::Local(1), Unreach::Local(2));
        let mut map = UnreachMap::new();
        for i in [5, 7, 6, 4, 9] {
            assert!(map.insert(i, a));
        }
        assert!(!map.insert(6, b), "the first reason stays");
        assert!(map.insert(8, b));
        assert_eq!(map.len(), 6);
        assert_eq!(map.runs.len(), 3, "{:?}", map.runs);
        let got: Vec<_> = (3..11).map(|i| map.get(i)).collect();
        let want = [
            None,
            Some(a),
            Some(a),
            Some(a),
            Some(a),
            Some(b),
            Some(a),
            None,
        ];
        assert_eq!(got, want);
    }
}
