//! The probers a sweep can use, behind one enum: each sends one probe to one target and
//! reports answers on a channel as [`Reply`] values that carry the target's position, so the
//! round loop matches them with a bit lookup instead of a map of addresses.

use std::net::IpAddr;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use super::icmp::IcmpProber;
use super::tcp::TcpProber;
use crate::error::Error;
use crate::target::Targets;

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
    /// The round the probe belonged to, modulo 2^16; answers to another round are ignored.
    pub round: u16,
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
    /// ICMP echo requests.
    Icmp(IcmpProber),
    /// TCP connects.
    Tcp(TcpProber),
    /// Scripted answers, for tests.
    #[cfg(test)]
    Scripted(super::scripted::Scripted),
}

impl Prober {
    /// Opens what `method` needs; answers will go to `replies`. Fails with an environment
    /// error when the needed sockets are refused.
    pub fn open(
        method: Method,
        timeout: Duration,
        targets: &Targets,
        replies: UnboundedSender<Reply>,
    ) -> Result<Self, Error> {
        match method {
            Method::Tcp(port) => Ok(Prober::Tcp(TcpProber::new(port, timeout, replies))),
            Method::Icmp => IcmpProber::open(targets, replies).map(Prober::Icmp),
        }
    }

    /// Sends one probe for round `round` (modulo 2^16). A target the network refuses simply
    /// stays silent.
    pub async fn send(&mut self, round: u16, index: u64, addr: IpAddr) {
        match self {
            Prober::Icmp(icmp) => icmp.send(round, index, addr).await,
            Prober::Tcp(tcp) => tcp.send(round, index, addr).await,
            #[cfg(test)]
            Prober::Scripted(scripted) => scripted.send(round, index, addr),
        }
    }

    /// Drops whatever is still in flight at the end of a round.
    pub fn end_round(&mut self) {
        match self {
            Prober::Icmp(_) => {}
            Prober::Tcp(tcp) => tcp.end_round(),
            #[cfg(test)]
            Prober::Scripted(scripted) => scripted.end_round(),
        }
    }
}
