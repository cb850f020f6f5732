//! The probers a sweep can use, behind one enum: each sends one probe to one target and
//! reports answers on a channel as [`Reply`] values that carry the target's position, so the
//! round loop matches them with a bit lookup instead of a map of addresses.

use std::net::IpAddr;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use super::tcp::TcpProber;
use crate::error::Error;

/// How a sweep decides that a host is alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// An ICMP echo reply.
    Icmp,
    /// A TCP connect to this port: connected or refused (RST) both mean alive.
    Tcp(u16),
}

/// An answer from the target at position `index` of round `round`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// The round the probe belonged to; answers to an earlier round are ignored.
    pub round: u64,
    /// The target's position in the target list.
    pub index: u64,
    /// The address that answered.
    pub addr: IpAddr,
    /// Time from the probe to the answer.
    pub rtt: Duration,
}

/// One of the probing methods, ready to send.
#[derive(Debug)]
pub enum Prober {
    /// TCP connects.
    Tcp(TcpProber),
}

impl Prober {
    /// Opens what `method` needs; answers will go to `replies`. Fails with an environment
    /// error when the needed sockets are refused.
    pub fn open(
        method: Method,
        timeout: Duration,
        replies: UnboundedSender<Reply>,
    ) -> Result<Self, Error> {
        match method {
            Method::Tcp(port) => Ok(Prober::Tcp(TcpProber::new(port, timeout, replies))),
            Method::Icmp => Err(Error::NotImplemented("sweep --method icmp")),
        }
    }

    /// Sends one probe. Only failures that end the sweep are errors; a target the network
    /// refuses simply stays silent.
    pub async fn send(&mut self, round: u64, index: u64, addr: IpAddr) -> Result<(), Error> {
        match self {
            Prober::Tcp(tcp) => {
                tcp.send(round, index, addr).await;
                Ok(())
            }
        }
    }

    /// Drops whatever is still in flight at the end of a round.
    pub fn end_round(&mut self) {
        match self {
            Prober::Tcp(tcp) => tcp.end_round(),
        }
    }
}
