//! The probers a sweep can use, behind one enum: each sends one probe to one target and
//! reports what came back on a channel as a [`Reply`] (module `reply`, which the probers and
//! the round loop share). Several methods at once are module `multi`'s: one prober each.

use std::fmt;
use std::net::IpAddr;

use tokio::sync::mpsc::UnboundedSender;

use super::icmp::IcmpProber;
use super::reply::{Reply, Tag};
use super::tcp::TcpProber;
use super::Config;
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

impl fmt::Display for Method {
    /// As `--method` takes it: `icmp`, `tcp:443`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Method::Icmp => f.write_str("icmp"),
            Method::Tcp(port) => write!(f, "tcp:{port}"),
        }
    }
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
    /// Opens what `method` needs; answers will go to `replies`. TCP connects give up after
    /// `config.timeout`, at most `config.max_in_flight` at once. Fails with an environment
    /// error when the needed sockets are refused.
    pub fn open(
        method: Method,
        config: &Config,
        targets: &Targets,
        replies: UnboundedSender<Reply>,
    ) -> Result<Self, Error> {
        match method {
            Method::Tcp(port) => Ok(Prober::Tcp(TcpProber::new(
                port,
                config.timeout,
                config.max_in_flight,
                replies,
            ))),
            Method::Icmp => IcmpProber::open(targets, replies).map(Prober::Icmp),
        }
    }

    /// Sends one probe tagged `tag` to the target at `index`. What the network answers
    /// (including a refusal to send) comes back as a [`Reply`].
    pub async fn send(&mut self, tag: Tag, index: u64, addr: IpAddr) {
        match self {
            Prober::Icmp(icmp) => icmp.send(tag, index, addr).await,
            Prober::Tcp(tcp) => tcp.send(tag, index, addr).await,
            #[cfg(test)]
            Prober::Scripted(scripted) => scripted.send(tag, index, addr),
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
