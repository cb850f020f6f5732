//! What the raw-socket probers (`timestamp`, `ack`) share: opening a raw socket on the tokio
//! reactor (refused without CAP_NET_RAW, with advice) with the classic BPF program that keeps
//! only what can answer a probe ([`crate::sys::bpf`]), the loop that reads it ([`receive`]:
//! each prober only says what one datagram tells of which target, as a [`Heard`]), and
//! [`Sent`], the probes of the round sent to each target, which give an answer its tag and
//! its round-trip time.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

use tokio::sync::mpsc::UnboundedSender;

use super::neighbour;
use super::reply::{Answer, Reply, Tag};
use super::unreach::Unreach;
use crate::error::Error;
use crate::target::Targets;

/// The receive buffer asked for: answers to a fast sweep arrive in bursts.
const RCVBUF: usize = 4 << 20;

/// A raw socket of `domain` for `protocol` that reads only what `filter` (a classic BPF
/// program) keeps, non-blocking on the tokio reactor; `what` names it in the environment
/// error (with the CAP_NET_RAW advice) when it is refused.
pub fn open(
    domain: Domain,
    protocol: Protocol,
    filter: &[nix::libc::sock_filter],
    what: &str,
) -> Result<AsyncFd<Socket>, Error> {
    let opened = Socket::new(domain, Type::RAW, Some(protocol)).and_then(|socket| {
        let _ = socket.set_recv_buffer_size(RCVBUF);
        socket.attach_filter(filter)?;
        neighbour::register(socket)
    });
    opened.map_err(|e| {
        Error::io(
            format!("{what} (a raw socket: needs root or CAP_NET_RAW)"),
            e,
        )
    })
}

/// Receives one datagram into `buf`: its length and its sender.
pub async fn recv_from(fd: &AsyncFd<Socket>, buf: &mut [u8]) -> io::Result<(usize, IpAddr)> {
    loop {
        let mut guard = fd.readable().await?;
        let read = |fd: &AsyncFd<Socket>| crate::sys::cmsg::recv(fd.get_ref(), buf, false);
        match guard.try_io(read) {
            Ok(Ok(msg)) => match msg.from {
                Some(from) => return Ok((msg.len, from)),
                None => continue,
            },
            Ok(Err(err)) => return Err(err),
            Err(_would_block) => continue,
        }
    }
}

/// What one datagram tells of a target of the round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heard {
    /// The target's position.
    pub index: u64,
    /// The address the probe went to.
    pub addr: IpAddr,
    /// The sequence number of the probe's tag, when the answer carries it: it must be one of
    /// the round's probes to the target (an answer to an earlier one than the last counts, with
    /// that probe's tag and round trip); `None`: the last probe's.
    pub seq: Option<u16>,
    /// What it says; `None`: alive, after the round trip since the last probe (the round
    /// trip of an [`Answer::Tcp`] is filled in so too).
    pub answer: Option<Answer>,
}

/// Reads `socket` until the sweep stops listening: `read` says what each datagram (with its
/// sender) tells, and that goes to `replies` when it is about a target of the round (the
/// address its probe went to) and a probe of the round, tagged as the probe it answers (the
/// last one when the answer does not say). `what` names
/// the reading in the debug log of a failed receive.
pub async fn receive(
    socket: Arc<AsyncFd<Socket>>,
    (targets, sent): (Targets, Arc<Sent>),
    replies: UnboundedSender<Reply>,
    what: &'static str,
    mut read: impl FnMut(&[u8], IpAddr) -> Option<Heard>,
) {
    let mut buf = vec![0u8; 2048];
    loop {
        let (len, from) = match recv_from(&socket, &mut buf).await {
            Ok(read) => read,
            Err(err) => {
                tracing::debug!("{what}: {err}");
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        let ttl = ipv4_ttl(&buf[..len], from);
        let Some(heard) = read(&buf[..len], from) else {
            continue;
        };
        if targets.get(u128::from(heard.index)).map(|t| t.addr) != Some(heard.addr) {
            continue;
        }
        let Some((tag, rtt)) = sent.answered(heard.index, heard.seq) else {
            continue;
        };
        let reply = Reply {
            tag,
            index: heard.index,
            addr: heard.addr,
            answer: match heard.answer {
                None => Answer::Alive(rtt),
                // A refusal that says the target is up (its own port unreachable).
                Some(Answer::Tcp(_, how)) => Answer::Tcp(rtt, how),
                Some(answer) => answer,
            },
            ttl,
        };
        if replies.send(reply).is_err() {
            return;
        }
    }
}

/// The TTL of an IPv4 datagram as a raw socket reads it (its IP header first); `None` for
/// IPv6, whose raw sockets see no IP header.
fn ipv4_ttl(datagram: &[u8], from: IpAddr) -> Option<u8> {
    let header = datagram.get(..20).filter(|h| h[0] >> 4 == 4)?;
    from.is_ipv4().then_some(header[8])
}

/// What a refused send to `addr` says: no route (`ENETUNREACH`, `EHOSTUNREACH`, this machine's
/// routing table) or a link that is down (`ENETDOWN`, an on-link method's interface) is an
/// unreachable answer, sent to `replies`, as the echo method reports it; another refusal
/// leaves the target silent.
pub fn refused(
    replies: &UnboundedSender<Reply>,
    (tag, index, addr): (Tag, u64, IpAddr),
    err: &io::Error,
) {
    match err.raw_os_error() {
        Some(errno @ (nix::libc::ENETUNREACH | nix::libc::EHOSTUNREACH | nix::libc::ENETDOWN)) => {
            let answer = Answer::Unreachable(Unreach::Local(errno));
            let _ = replies.send(Reply {
                tag,
                index,
                addr,
                answer,
                ttl: None,
            });
        }
        _ => tracing::debug!("send to {addr}: {err}"),
    }
}

/// The probes of the round sent to each target (by its position), oldest first, shared by a
/// prober's sender and its receiver.
#[derive(Debug, Default)]
pub struct Sent(Mutex<HashMap<u64, Vec<(Tag, Instant)>>>);

impl Sent {
    /// Notes a probe tagged `tag` sent now to the target at `index`.
    pub fn sent(&self, tag: Tag, index: u64) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.entry(index).or_default().push((tag, Instant::now()));
    }

    /// The probe to the target at `index` in this round that an answer received now answers,
    /// and the time since it went (the answer's round trip): the last one whose tag has the
    /// sequence number `seq`, or the last one sent when `seq` is `None` (an answer that does
    /// not say which). A late answer to an earlier probe than the last counts so too, as an
    /// echo reply does. `None` when no such probe went.
    pub fn answered(&self, index: u64, seq: Option<u16>) -> Option<(Tag, Duration)> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let probes = map.get(&index)?;
        let probe = match seq {
            Some(seq) => probes.iter().rev().find(|(tag, _)| tag.seq() == seq),
            None => probes.last(),
        };
        probe.map(|(tag, at)| (*tag, at.elapsed()))
    }

    /// Forgets the round's probes: late answers to them are ignored.
    pub fn clear(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ttl_is_read_from_an_ipv4_header_only() {
        let mut v4 = [0u8; 28];
        (v4[0], v4[8]) = (0x45, 57);
        let from4: IpAddr = "198.18.0.1".parse().unwrap();
        assert_eq!(ipv4_ttl(&v4, from4), Some(57));
        assert_eq!(ipv4_ttl(&v4[..19], from4), None, "cut short");
        let tcp = [0u8; 28];
        assert_eq!(ipv4_ttl(&tcp, "2001:db8::1".parse().unwrap()), None);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_takes_the_last_probes_tag() {
        let sent = Sent::default();
        assert!(sent.answered(3, None).is_none());
        sent.sent(Tag::new(1, 1), 3);
        tokio::time::advance(Duration::from_millis(4)).await;
        sent.sent(Tag::new(1, 2), 3);
        tokio::time::advance(Duration::from_millis(2)).await;
        let (tag, rtt) = sent.answered(3, None).unwrap();
        assert_eq!((tag, rtt), (Tag::new(1, 2), Duration::from_millis(2)));
        sent.clear();
        assert!(sent.answered(3, None).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_answer_takes_the_tag_and_round_trip_of_the_probe_it_answers() {
        let sent = Sent::default();
        sent.sent(Tag::new(1, 1), 3);
        tokio::time::advance(Duration::from_millis(500)).await;
        sent.sent(Tag::new(1, 2), 3);
        tokio::time::advance(Duration::from_millis(700)).await;
        let first = Tag::new(1, 1).seq();
        let (tag, rtt) = sent.answered(3, Some(first)).unwrap();
        assert_eq!((tag, rtt), (Tag::new(1, 1), Duration::from_millis(1200)));
        let (tag, rtt) = sent.answered(3, Some(Tag::new(1, 2).seq())).unwrap();
        assert_eq!((tag, rtt), (Tag::new(1, 2), Duration::from_millis(700)));
        assert!(sent.answered(3, Some(Tag::new(2, 1).seq())).is_none());
        assert!(sent.answered(4, Some(first)).is_none());
    }
}
