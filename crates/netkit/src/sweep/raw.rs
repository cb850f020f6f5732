//! What the raw-socket probers (`timestamp`, `ack`) share: opening a raw socket on the tokio
//! reactor (refused without CAP_NET_RAW, with advice), receiving a datagram with its sender,
//! and [`Sent`], the last probe sent to each target of the round, which gives an answer its
//! tag and its round-trip time.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

use tokio::sync::mpsc::UnboundedSender;

use super::neighbour;
use super::reply::{Answer, Reply, Tag};
use super::unreach::Unreach;
use crate::error::Error;

/// The receive buffer asked for: answers to a fast sweep arrive in bursts.
const RCVBUF: usize = 4 << 20;

/// A raw socket of `domain` for `protocol`, non-blocking on the tokio reactor; `what` names
/// it in the environment error (with the CAP_NET_RAW advice) when it is refused.
pub fn open(domain: Domain, protocol: Protocol, what: &str) -> Result<AsyncFd<Socket>, Error> {
    let opened = Socket::new(domain, Type::RAW, Some(protocol)).and_then(|socket| {
        let _ = socket.set_recv_buffer_size(RCVBUF);
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

/// What a refused send to `addr` says: no route (`ENETUNREACH`, `EHOSTUNREACH`, this machine's
/// routing table) is an unreachable answer, sent to `replies`, as the echo method reports it;
/// another refusal leaves the target silent.
pub fn refused(
    replies: &UnboundedSender<Reply>,
    (tag, index, addr): (Tag, u64, IpAddr),
    err: &io::Error,
) {
    match err.raw_os_error() {
        Some(errno @ (nix::libc::ENETUNREACH | nix::libc::EHOSTUNREACH)) => {
            let answer = Answer::Unreachable(Unreach::Local(errno));
            let _ = replies.send(Reply {
                tag,
                index,
                addr,
                answer,
            });
        }
        _ => tracing::debug!("send to {addr}: {err}"),
    }
}

/// The last probe of the round sent to each target (by its position), shared by a prober's
/// sender and its receiver.
#[derive(Debug, Default)]
pub struct Sent(Mutex<HashMap<u64, (Tag, Instant)>>);

impl Sent {
    /// Notes a probe tagged `tag` sent now to the target at `index`.
    pub fn sent(&self, tag: Tag, index: u64) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.insert(index, (tag, Instant::now()));
    }

    /// The tag of the last probe sent to the target at `index` in this round, and the time
    /// since (the round trip of an answer received now); `None` when none went.
    pub fn answered(&self, index: u64) -> Option<(Tag, Duration)> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&index).map(|(tag, at)| (*tag, at.elapsed()))
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

    #[tokio::test(start_paused = true)]
    async fn an_answer_takes_the_last_probes_tag() {
        let sent = Sent::default();
        assert!(sent.answered(3).is_none());
        sent.sent(Tag::new(1, 1), 3);
        tokio::time::advance(Duration::from_millis(4)).await;
        sent.sent(Tag::new(1, 2), 3);
        tokio::time::advance(Duration::from_millis(2)).await;
        let (tag, rtt) = sent.answered(3).unwrap();
        assert_eq!((tag, rtt), (Tag::new(1, 2), Duration::from_millis(2)));
        sent.clear();
        assert!(sent.answered(3).is_none());
    }
}
