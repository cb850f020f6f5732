//! The SYNs waiting for an answer, without I/O. Each try of a port gets its own sequence
//! number (the scan's secret mixed with the probe's identity, as nmap encodes the try in what
//! it sends), so an answer names the very try it answers: a SYN-ACK or reset acknowledges
//! `seq + 1`, an ICMP error quotes `seq`. An answer counts only when its addresses and ports
//! are the probe's too. A try nobody answers leaves the table when its probe expires.

use std::cmp::Reverse;
use std::collections::hash_map::RandomState;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::scan::schedule::ProbeId;

/// One SYN in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The scheduler's probe.
    pub id: ProbeId,
    /// Where it went.
    pub dst: SocketAddr,
    /// When it left.
    pub sent: Instant,
}

/// The SYNs in flight, by sequence number.
#[derive(Debug)]
pub struct Table {
    secret: u32,
    live: HashMap<u32, Entry>,
    expiry: BinaryHeap<Reverse<(Instant, u32)>>,
}

impl Default for Table {
    fn default() -> Self {
        let secret = RandomState::new().build_hasher().finish() as u32;
        Table::with_secret(secret)
    }
}

impl Table {
    /// A table whose sequence numbers are mixed with `secret`.
    pub fn with_secret(secret: u32) -> Self {
        Table {
            secret,
            live: HashMap::new(),
            expiry: BinaryHeap::new(),
        }
    }

    /// The sequence number of probe `id` (distinct for 2^32 probes in a row).
    pub fn seq(&self, id: ProbeId) -> u32 {
        (id as u32).wrapping_mul(0x9e37_79b1) ^ self.secret
    }

    /// Records `entry`, sent with `seq`, until `expires`.
    pub fn insert(&mut self, seq: u32, entry: Entry, expires: Instant) {
        self.live.insert(seq, entry);
        self.expiry.push(Reverse((expires, seq)));
    }

    /// Takes the try sent with `seq` out (it was never sent, or has been answered).
    pub fn remove(&mut self, seq: u32) -> Option<Entry> {
        self.live.remove(&seq)
    }

    /// The try a segment from `from` port `port` acknowledging `ack` answers, taken out.
    pub fn answered(&mut self, from: IpAddr, port: u16, ack: u32) -> Option<Entry> {
        self.take_if(ack.wrapping_sub(1), SocketAddr::new(from, port))
    }

    /// The try an ICMP error quoting `seq` to `dst` reports on, taken out.
    pub fn quoted(&mut self, dst: SocketAddr, seq: u32) -> Option<Entry> {
        self.take_if(seq, dst)
    }

    /// Takes the try sent with `seq` out when it went to `dst`'s address and port (an answer
    /// carries no zone: the probe's may have one).
    fn take_if(&mut self, seq: u32, dst: SocketAddr) -> Option<Entry> {
        let same = |sent: SocketAddr| (sent.ip(), sent.port()) == (dst.ip(), dst.port());
        match self.live.get(&seq) {
            Some(entry) if same(entry.dst) => self.live.remove(&seq),
            _ => None,
        }
    }

    /// The tries whose probes expired by `now`, taken out.
    pub fn expired(&mut self, now: Instant) -> Vec<Entry> {
        let mut gone = Vec::new();
        while let Some(Reverse((at, seq))) = self.expiry.peek().copied() {
            if at > now {
                break;
            }
            self.expiry.pop();
            gone.extend(self.live.remove(&seq));
        }
        gone
    }

    /// When the next try expires.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.expiry.peek().map(|Reverse((at, _))| *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_answer_matches_its_try_only() {
        let now = Instant::now();
        let mut table = Table::with_secret(0x1234_5678);
        let dst: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let (first, second) = (table.seq(0), table.seq(1));
        assert_ne!(first, second);
        let entry = |id| Entry { id, dst, sent: now };
        table.insert(first, entry(0), now + Duration::from_secs(1));
        table.insert(second, entry(1), now + Duration::from_secs(2));
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(table.answered(other, 80, second.wrapping_add(1)), None);
        assert_eq!(table.answered(dst.ip(), 81, second.wrapping_add(1)), None);
        let got = table.answered(dst.ip(), 80, second.wrapping_add(1));
        assert_eq!(got.map(|e| e.id), Some(1));
        assert_eq!(table.answered(dst.ip(), 80, second.wrapping_add(1)), None);
        assert_eq!(table.quoted(dst, first).map(|e| e.id), Some(0));
    }

    #[test]
    fn silent_tries_expire() {
        let now = Instant::now();
        let mut table = Table::with_secret(7);
        let dst: SocketAddr = "[::1]:22".parse().unwrap();
        let seq = table.seq(3);
        table.insert(
            seq,
            Entry {
                id: 3,
                dst,
                sent: now,
            },
            now + Duration::from_secs(1),
        );
        assert!(table.expired(now).is_empty());
        assert_eq!(table.next_expiry(), Some(now + Duration::from_secs(1)));
        let gone = table.expired(now + Duration::from_secs(1));
        assert_eq!(gone.len(), 1);
        assert_eq!(table.remove(seq), None);
    }
}
