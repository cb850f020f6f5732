//! The probing link's own addresses in an on-link sweep (`--method arp|ndp`): no host answers
//! its own ARP request or neighbour solicitation, yet the address is in use — by this host.
//! nmap reports it up (`localhost-response`), as every ICMP sweep does, so a probe of one is
//! answered here at once with the link's own MAC address instead of going out unanswered and
//! leaving the address to look free.

use std::net::IpAddr;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use super::neighbour::Mac;
use super::reply::{Answer, Reply, Tag};

/// Answers probes of the link's own addresses.
#[derive(Debug)]
pub struct OwnAddrs {
    addrs: Vec<IpAddr>,
    mac: Mac,
    replies: UnboundedSender<Reply>,
}

impl OwnAddrs {
    /// The addresses `addrs` of the link whose MAC address is `mac`; answers go to `replies`.
    pub fn new(addrs: Vec<IpAddr>, mac: Mac, replies: UnboundedSender<Reply>) -> Self {
        OwnAddrs {
            addrs,
            mac,
            replies,
        }
    }

    /// Whether `addr` is one of the link's own, in which case the probe tagged `tag` of the
    /// target at `index` is answered now and nothing is to be sent.
    pub fn answered(&self, tag: Tag, index: u64, addr: IpAddr) -> bool {
        if !self.addrs.contains(&addr) {
            return false;
        }
        let answer = Answer::Neighbour {
            rtt: Duration::ZERO,
            mac: self.mac,
            nth: 1,
        };
        // A closed channel means the sweep is over: nothing is waiting for the answer.
        let _ = self.replies.send(Reply {
            tag,
            index,
            addr,
            answer,
            ttl: None,
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_own_addresses_are_answered_with_the_links_mac() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let own: IpAddr = "198.18.0.1".parse().unwrap();
        let mac = Mac([2, 0, 0, 0, 0, 1]);
        let addrs = OwnAddrs::new(vec![own], mac, tx);
        let tag = Tag::new(1, 1);
        assert!(!addrs.answered(tag, 1, "198.18.0.2".parse().unwrap()));
        assert!(rx.try_recv().is_err());
        assert!(addrs.answered(tag, 0, own));
        let reply = rx.try_recv().unwrap();
        let want = Answer::Neighbour {
            rtt: Duration::ZERO,
            mac,
            nth: 1,
        };
        assert_eq!((reply.index, reply.addr, reply.answer), (0, own, want));
    }
}
