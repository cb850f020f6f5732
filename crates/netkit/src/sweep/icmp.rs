//! The ICMP prober: the shared echo [`Engine`] (one socket per address family, each probe
//! tagged with the target's position and the round) and a task that reads the engine's
//! replies, checks that each comes from the address it was sent to, and hands it to the round.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use super::probe::Reply;
use crate::error::Error;
use crate::icmp::{self, Engine, Version};
use crate::target::{Family, Targets};

/// Pause when the kernel's transmit queue is full, and how often to try again.
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(1);
const QUEUE_FULL_TRIES: u32 = 20;

/// Sends ICMP echo requests; a background task collects the replies.
#[derive(Debug)]
pub struct IcmpProber {
    engine: Arc<Engine>,
    receiver: JoinHandle<()>,
}

impl IcmpProber {
    /// Opens a socket for each address family among `targets` (raw, else datagram) and starts
    /// reading replies into `replies`. [`Error::IcmpDenied`] when ICMP is not permitted.
    pub fn open(targets: &Targets, replies: UnboundedSender<Reply>) -> Result<Self, Error> {
        let versions: &[Version] = match targets.families() {
            Family::V4 => &[Version::V4],
            Family::V6 => &[Version::V6],
            Family::Any => &[Version::V4, Version::V6],
        };
        let engine = Arc::new(Engine::new(&icmp::Config::default(), versions)?);
        let receiver = tokio::spawn(receive(Arc::clone(&engine), targets.clone(), replies));
        Ok(IcmpProber { engine, receiver })
    }

    /// Sends one echo request to the target at `index`; waits while the transmit queue is
    /// full. Other refusals (unreachable, a broadcast address) leave the target silent.
    pub async fn send(&self, round: u16, index: u64, addr: IpAddr) {
        let Ok(index) = u32::try_from(index) else {
            return;
        };
        for _ in 0..QUEUE_FULL_TRIES {
            match self.engine.send(index, addr, round).await {
                Err(err) if queue_full(&err) => tokio::time::sleep(QUEUE_FULL_PAUSE).await,
                Err(err) => return tracing::debug!("send to {addr}: {err}"),
                Ok(()) => return,
            }
        }
    }
}

impl Drop for IcmpProber {
    fn drop(&mut self) {
        self.receiver.abort();
    }
}

fn queue_full(err: &io::Error) -> bool {
    err.raw_os_error() == Some(nix::libc::ENOBUFS)
}

/// Forwards every reply that comes from the address its probe was sent to.
async fn receive(engine: Arc<Engine>, targets: Targets, replies: UnboundedSender<Reply>) {
    loop {
        let reply = match engine.recv().await {
            Ok(reply) => reply,
            Err(err) => {
                tracing::debug!("receive ICMP: {err}");
                tokio::time::sleep(QUEUE_FULL_PAUSE).await;
                continue;
            }
        };
        let index = u64::from(reply.index);
        let sent_to = targets.get(u128::from(reply.index)).map(|t| t.addr);
        if sent_to != Some(reply.addr) {
            tracing::debug!("echo reply from {} for {sent_to:?}: ignored", reply.addr);
            continue;
        }
        let reply = Reply {
            round: reply.seq,
            index,
            addr: reply.addr,
            rtt: reply.rtt.unwrap_or_default(),
        };
        if replies.send(reply).is_err() {
            return;
        }
    }
}
