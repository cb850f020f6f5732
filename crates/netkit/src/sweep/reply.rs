//! What a probe carries and what comes back, shared by the probers (`icmp`, `tcp`, `arp`, `ndp`) and the
//! round loop: a [`Reply`] carries the target's position and the probe's [`Tag`] (round and
//! attempt), so the round loop matches it with a bit lookup instead of a map of addresses,
//! and knows which of a target's probes was answered.

use std::net::IpAddr;
use std::time::Duration;

use super::neighbour::Mac;
use super::unreach::Unreach;
use crate::report::sweep::TcpAnswer;

/// What a probe carries to tell its answer apart: the round (modulo 2^11) and the attempt —
/// 1 for a target's first probe, 2 for its first re-probe, ..., [`Tag::CONTROL`] for a
/// re-probe of a host already known to be alive (which measures the loss).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tag {
    round: u16,
    attempt: u8,
}

impl Tag {
    /// The attempt number of control probes.
    pub const CONTROL: u8 = 0;
    /// The highest attempt number a tag holds.
    pub const MAX_ATTEMPT: u8 = 31;

    /// The tag of a probe of round `round`, attempt `attempt` (at most [`Tag::MAX_ATTEMPT`]).
    pub fn new(round: u64, attempt: u8) -> Self {
        Tag {
            round: (round & 0x7ff) as u16,
            attempt: attempt.min(Self::MAX_ATTEMPT),
        }
    }

    /// Whether this is the tag of round `round`'s probes.
    pub fn is_round(self, round: u64) -> bool {
        self.round == (round & 0x7ff) as u16
    }

    /// The attempt: 1 for a first probe, [`Tag::CONTROL`] for a control probe.
    pub fn attempt(self) -> u8 {
        self.attempt
    }

    /// The tag as an ICMP echo sequence number.
    pub fn seq(self) -> u16 {
        self.round << 5 | u16::from(self.attempt)
    }

    /// The tag an ICMP echo sequence number carries.
    pub fn from_seq(seq: u16) -> Self {
        Tag {
            round: seq >> 5,
            attempt: (seq & 0x1f) as u8,
        }
    }
}

/// What the network said about one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The target answered after this long.
    Alive(Duration),
    /// The target answered a TCP connect after this long, this way (accepted or refused):
    /// alive either way.
    Tcp(Duration, TcpAnswer),
    /// The target cannot be reached, and why.
    Unreachable(Unreach),
    /// This host reported that nothing answered at the target's link-layer address (an
    /// on-link target without a neighbour): the target is silent, no need to ask again.
    Absent,
    /// An on-link neighbour answered for the target (ARP reply, neighbour advertisement)
    /// after this long, from this MAC address; `nth` is 1 for the first MAC heard for the
    /// address in this round, 2 or more for another one (two hosts claim the address).
    Neighbour {
        /// The round trip, from the last probe sent to the address.
        rtt: Duration,
        /// The MAC address that answered.
        mac: Mac,
        /// Which of the MAC addresses heard for the address this is, from 1.
        nth: u16,
    },
}

/// An answer about the target at position `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// The tag of the probe answered; answers to another round are ignored.
    pub tag: Tag,
    /// The target's position in the target list.
    pub index: u64,
    /// The target's address.
    pub addr: IpAddr,
    /// What came back.
    pub answer: Answer,
    /// The TTL (IPv4) or hop limit (IPv6) of the answer, where the prober reads it (ICMP echo
    /// replies; IPv4 answers on raw sockets); `None` for a connect's answer, on-link
    /// neighbours and answers of this host.
    pub ttl: Option<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_survive_the_sequence_number() {
        for (round, attempt) in [(1, 1), (2047, 31), (2048, 0), (5000, 7)] {
            let tag = Tag::new(round, attempt);
            assert_eq!(Tag::from_seq(tag.seq()), tag);
            assert!(tag.is_round(round) && !tag.is_round(round + 1));
            assert_eq!(tag.attempt(), attempt);
        }
        assert_eq!(Tag::new(1, 99).attempt(), Tag::MAX_ATTEMPT);
    }
}
