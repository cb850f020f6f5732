//! The ICMP prober: the shared echo [`Engine`] (one socket per address family, each probe
//! tagged with the target's position, the round and the attempt) and a task that reads the
//! engine's answers, checks that each is about the address it was sent to, and hands it to the
//! round: echo replies, and destination-unreachable errors (raw sockets only) that end a
//! target early. A send the system refuses for want of a route is an unreachable answer too.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use super::raw;
use super::reply::{Answer, Reply, Tag};
use super::unreach::{answer_of, LocalAddrs};
use crate::error::Error;
use crate::icmp::{self, Engine, ErrorReply, Version};
use crate::sys;
use crate::target::{Family, Targets};

/// Pause after a failed receive before reading again.
const RECV_ERROR_PAUSE: Duration = Duration::from_millis(1);

/// Sends ICMP echo requests; a background task collects the answers.
#[derive(Debug)]
pub struct IcmpProber {
    engine: Arc<Engine>,
    replies: UnboundedSender<Reply>,
    receiver: JoinHandle<()>,
}

impl IcmpProber {
    /// Opens a socket for each address family among `targets` (raw, else datagram) and starts
    /// reading answers into `replies`. [`Error::IcmpDenied`] when ICMP is not permitted.
    pub fn open(targets: &Targets, replies: UnboundedSender<Reply>) -> Result<Self, Error> {
        let versions: &[Version] = match targets.families() {
            Family::V4 => &[Version::V4],
            Family::V6 => &[Version::V6],
            Family::Any => &[Version::V4, Version::V6],
        };
        let engine = Arc::new(Engine::new(&icmp::Config::default(), versions)?);
        let receiver = tokio::spawn(receive(
            Arc::clone(&engine),
            targets.clone(),
            replies.clone(),
        ));
        Ok(IcmpProber {
            engine,
            replies,
            receiver,
        })
    }

    /// Sends one echo request to the target at `index`; waits while the transmit queue is
    /// full ([`sys::retry_enobufs`]). No route is reported as an unreachable answer; other
    /// refusals (a broadcast address, a local firewall, a queue that stayed full) leave the
    /// target silent.
    pub async fn send(&self, tag: Tag, index: u64, dst: SocketAddr) {
        let Ok(index32) = u32::try_from(index) else {
            return;
        };
        let sent = sys::retry_enobufs(|| self.engine.send(index32, dst, tag.seq())).await;
        if let Err(err) = sent {
            raw::refused(&self.replies, (tag, index, dst.ip()), &err);
        }
    }
}

impl Drop for IcmpProber {
    fn drop(&mut self) {
        self.receiver.abort();
    }
}

/// Forwards every echo reply that comes from the address its probe was sent to, and every
/// destination-unreachable error about one of our probes.
async fn receive(engine: Arc<Engine>, targets: Targets, replies: UnboundedSender<Reply>) {
    let mut local = LocalAddrs::default();
    loop {
        let reply = match engine.recv_answer().await {
            Ok(icmp::Answer::Reply(reply)) => echo_reply(&targets, &reply),
            Ok(icmp::Answer::Error(error)) => unreachable(&targets, &error, &mut local),
            // A reply with a wrong checksum is not taken for a sign of life (as before).
            Ok(icmp::Answer::Corrupted(_)) => None,
            Err(err) => {
                tracing::debug!("receive ICMP: {err}");
                tokio::time::sleep(RECV_ERROR_PAUSE).await;
                continue;
            }
        };
        if let Some(reply) = reply {
            if replies.send(reply).is_err() {
                return;
            }
        }
    }
}

fn echo_reply(targets: &Targets, reply: &icmp::Reply) -> Option<Reply> {
    let sent_to = targets.get(u128::from(reply.index)).map(|t| t.addr);
    if sent_to != Some(reply.addr) {
        tracing::debug!("echo reply from {} for {sent_to:?}: ignored", reply.addr);
        return None;
    }
    Some(Reply {
        tag: Tag::from_seq(reply.seq),
        index: u64::from(reply.index),
        addr: reply.addr,
        answer: Answer::Alive(reply.rtt.unwrap_or_default()),
        ttl: reply.ttl,
    })
}

fn unreachable(targets: &Targets, error: &ErrorReply, local: &mut LocalAddrs) -> Option<Reply> {
    let version = Version::of(&error.target);
    let index = error.index?;
    let sent_to = targets.get(u128::from(index)).map(|t| t.addr);
    if sent_to != Some(error.target) {
        return None;
    }
    let answer = answer_of(version, (error.msg_type, error.code), error.from, local)?;
    Some(Reply {
        tag: Tag::from_seq(error.seq),
        index: u64::from(index),
        addr: error.target,
        answer,
        ttl: None,
    })
}
