//! What the on-link probers (`arp`, `ndp`) share: the [`Mac`] address a neighbour answers
//! with, and [`Pending`], the probes sent by address. An ARP reply or a neighbour
//! advertisement carries no tag of ours, so the answer is matched to its target by the
//! address it is about: the last probe sent to that address gives the target's position, the
//! tag and the round-trip time, and the MAC addresses heard for it in this round tell a
//! second host answering for the same address (an address conflict, arp-scan's "DUP").
//! Also the socket plumbing both use: a non-blocking socket on the tokio reactor
//! ([`register`], [`send_to`], [`recv`]).

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read};
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use socket2::{SockAddr, Socket};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::time::Instant;

use super::reply::{Answer, Reply, Tag};

/// A link-layer (Ethernet) address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    /// `aa:bb:cc:dd:ee:ff`, as `ip link` and arp-scan write it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::iface::format_mac(&self.0))
    }
}

impl Mac {
    /// The address in `bytes` (the first six), if there are six.
    pub fn from_slice(bytes: &[u8]) -> Option<Mac> {
        bytes.get(..6)?.try_into().ok().map(Mac)
    }
}

/// The last probe sent to one address in this round, and who answered for it.
#[derive(Debug)]
struct Sent {
    index: u64,
    tag: Tag,
    at: Instant,
    macs: Vec<Mac>,
}

/// The probes of the current round by address, shared by a prober's sender and its receiver.
#[derive(Debug, Default)]
pub struct Pending(Mutex<HashMap<IpAddr, Sent>>);

impl Pending {
    /// Notes a probe tagged `tag` sent now to the target at `index`.
    pub fn sent(&self, tag: Tag, index: u64, addr: IpAddr) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let at = Instant::now();
        map.entry(addr)
            .and_modify(|s| (s.index, s.tag, s.at) = (index, tag, at))
            .or_insert(Sent {
                index,
                tag,
                at,
                macs: Vec::new(),
            });
    }

    /// The reply that `mac`'s answer for `addr`, received at `at`, makes: none when no probe
    /// went to `addr` in this round, or when `mac` is a second host for it heard before (a
    /// duplicate is reported once a round). The round trip counts from the last probe sent.
    pub fn answered(&self, addr: IpAddr, mac: Mac, at: Instant) -> Option<Reply> {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let sent = map.get_mut(&addr)?;
        let nth = match sent.macs.iter().position(|m| *m == mac) {
            Some(0) => 1,
            // Another host for the same address, heard before: reported once.
            Some(_) => return None,
            None => {
                sent.macs.push(mac);
                sent.macs.len()
            }
        };
        let answer = Answer::Neighbour {
            rtt: at.saturating_duration_since(sent.at),
            mac,
            nth: u16::try_from(nth).unwrap_or(u16::MAX),
        };
        Some(Reply {
            tag: sent.tag,
            index: sent.index,
            addr,
            answer,
            ttl: None,
        })
    }

    /// Forgets the round's probes: late answers to them are ignored.
    pub fn clear(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// `socket`, non-blocking, on the tokio reactor. Needs a tokio runtime.
pub fn register(socket: Socket) -> io::Result<AsyncFd<Socket>> {
    socket.set_nonblocking(true)?;
    // SAFETY: the Socket owns its descriptor, which stays open and the same until the
    // AsyncFd (its only owner) is dropped.
    let interest = Interest::READABLE | Interest::WRITABLE;
    unsafe { AsyncFd::register_with_interest(socket, interest) }.map_err(Into::into)
}

/// Sends `message` to `to`, waiting while the send buffer is full.
pub async fn send_to(fd: &AsyncFd<Socket>, message: &[u8], to: &SockAddr) -> io::Result<()> {
    loop {
        let mut guard = fd.writable().await?;
        if let Ok(sent) = guard.try_io(|fd| fd.get_ref().send_to(message, to)) {
            return sent.map(drop);
        }
    }
}

/// Receives one packet into `buf`; its length.
pub async fn recv(fd: &AsyncFd<Socket>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        let mut guard = fd.readable().await?;
        let mut read_from = |fd: &AsyncFd<Socket>| {
            let mut socket: &Socket = fd.get_ref();
            socket.read(buf)
        };
        if let Ok(read) = guard.try_io(&mut read_from) {
            return read;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const A: Mac = Mac([2, 0, 0, 0, 0, 5]);
    const B: Mac = Mac([2, 0, 0, 0, 0, 6]);

    fn nth(reply: Option<Reply>) -> Option<u16> {
        match reply?.answer {
            Answer::Neighbour { nth, .. } => Some(nth),
            _ => None,
        }
    }

    #[test]
    fn macs_read_like_ip_link() {
        assert_eq!(A.to_string(), "02:00:00:00:00:05");
        assert_eq!(
            Mac::from_slice(&[1, 2, 3, 4, 5, 6, 7]),
            Some(Mac([1, 2, 3, 4, 5, 6]))
        );
        assert_eq!(Mac::from_slice(&[1, 2, 3]), None);
    }

    #[tokio::test(start_paused = true)]
    async fn answers_match_the_last_probe_and_a_second_mac_is_a_duplicate() {
        let pending = Pending::default();
        let addr: IpAddr = "198.18.0.5".parse().unwrap();
        assert!(pending.answered(addr, A, Instant::now()).is_none());
        pending.sent(Tag::new(1, 1), 4, addr);
        tokio::time::advance(Duration::from_millis(3)).await;
        pending.sent(Tag::new(1, 2), 4, addr);
        tokio::time::advance(Duration::from_millis(2)).await;
        let reply = pending.answered(addr, A, Instant::now()).unwrap();
        assert_eq!((reply.index, reply.tag), (4, Tag::new(1, 2)));
        let want = Answer::Neighbour {
            rtt: Duration::from_millis(2),
            mac: A,
            nth: 1,
        };
        assert_eq!(reply.answer, want);
        assert_eq!(nth(pending.answered(addr, B, Instant::now())), Some(2));
        assert_eq!(nth(pending.answered(addr, A, Instant::now())), Some(1));
        assert_eq!(nth(pending.answered(addr, B, Instant::now())), None);
        pending.clear();
        assert!(pending.answered(addr, A, Instant::now()).is_none());
    }
}
