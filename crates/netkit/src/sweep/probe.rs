//! The probers a sweep can use, behind one enum: each sends one probe to one target and
//! reports what came back on a channel as a [`Reply`] (module `reply`, which the probers and
//! the round loop share). The on-link ones (ARP, neighbour discovery) first find the link
//! that holds the targets ([`super::onlink`]). Several methods at once are module `multi`'s:
//! one prober each.

use std::fmt;
use std::net::SocketAddr;

use tokio::sync::mpsc::UnboundedSender;

use super::ack::AckProber;
use super::arp::ArpProber;
use super::icmp::IcmpProber;
use super::ndp::NdpProber;
use super::onlink::{self, OnLink};
use super::reply::{Reply, Tag};
use super::tcp::TcpProber;
use super::timestamp::TimestampProber;
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
    /// An ARP reply (IPv4 targets on a directly connected network).
    Arp,
    /// A neighbour advertisement (IPv6 targets on a directly connected network).
    Ndp,
    /// An ICMP timestamp reply (IPv4 targets; raw sockets), as `nmap -PP`.
    Timestamp,
    /// A TCP reset answering a bare ACK to this port (raw sockets), as `nmap -PA`.
    Ack(u16),
}

impl Method {
    /// Whether the method finds only hosts of a directly connected network (and reports their
    /// MAC addresses).
    pub fn is_on_link(self) -> bool {
        matches!(self, Method::Arp | Method::Ndp)
    }
}

impl fmt::Display for Method {
    /// As `--method` takes it: `icmp`, `tcp:443`, `arp`, `ndp`, `timestamp`, `ack:80`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Method::Icmp => f.write_str("icmp"),
            Method::Tcp(port) => write!(f, "tcp:{port}"),
            Method::Arp => f.write_str("arp"),
            Method::Ndp => f.write_str("ndp"),
            Method::Timestamp => f.write_str("timestamp"),
            Method::Ack(port) => write!(f, "ack:{port}"),
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
    /// ARP requests.
    Arp(ArpProber),
    /// Neighbour solicitations.
    Ndp(NdpProber),
    /// ICMP timestamp requests.
    Timestamp(TimestampProber),
    /// TCP ACKs.
    Ack(AckProber),
    /// Nothing to send: an on-link method in a list whose targets are all off its link (or
    /// of the other address family), left to the other methods.
    Idle,
    /// Scripted answers, for tests.
    #[cfg(test)]
    Scripted(super::scripted::Scripted),
}

impl Prober {
    /// Opens what `method` needs; answers will go to `replies`. TCP connects give up after
    /// `config.timeout`, at most `config.max_in_flight` at once; ARP and neighbour discovery
    /// use `config.interface`, else the link that holds the targets (those of their address
    /// family when the sweep has other methods for the rest). Timestamp requests take the IPv4
    /// targets (alone: an IPv6 target is an input error). Fails with an input error for a
    /// target not on that link, and with an environment error when the needed sockets are
    /// refused (raw sockets for `arp`, `ndp`, `timestamp` and `ack:PORT`).
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
            Method::Arp => match on_link(config, targets, OnLink::Arp)? {
                Some(link) => ArpProber::open(&link, replies).map(Prober::Arp),
                None => Ok(Prober::Idle),
            },
            Method::Ndp => match on_link(config, targets, OnLink::Ndp)? {
                Some(link) => NdpProber::open(&link, replies).map(Prober::Ndp),
                None => Ok(Prober::Idle),
            },
            Method::Timestamp => {
                let alone = !config.methods.is_several();
                TimestampProber::open(targets, alone, replies).map(Prober::Timestamp)
            }
            Method::Ack(port) => AckProber::open(port, targets, replies).map(Prober::Ack),
        }
    }

    /// Sends one probe tagged `tag` to the target at `index`, `dst` (its address in its zone,
    /// port 0). What the network answers (including a refusal to send) comes back as a
    /// [`Reply`].
    pub async fn send(&mut self, tag: Tag, index: u64, dst: SocketAddr) {
        let addr = dst.ip();
        match self {
            Prober::Icmp(icmp) => icmp.send(tag, index, dst).await,
            Prober::Tcp(tcp) => tcp.send(tag, index, dst).await,
            Prober::Arp(arp) => arp.send(tag, index, addr).await,
            Prober::Ndp(ndp) => ndp.send(tag, index, dst).await,
            Prober::Timestamp(ts) => ts.send(tag, index, addr).await,
            Prober::Ack(ack) => ack.send(tag, index, dst).await,
            Prober::Idle => {}
            #[cfg(test)]
            Prober::Scripted(scripted) => scripted.send(tag, index, addr),
        }
    }

    /// Whether a probe to `dst` (a target's address in its zone) goes out at all: an on-link
    /// method sends only to the addresses of its family on its link (a link-local one only in
    /// that link's zone), `timestamp` only to IPv4 ones; a method that sends nothing to a
    /// target has no say in whether it is unreachable.
    pub fn takes(&self, dst: SocketAddr) -> bool {
        let addr = dst.ip();
        match self {
            Prober::Arp(arp) => arp.takes(addr),
            Prober::Ndp(ndp) => ndp.takes(dst),
            Prober::Timestamp(_) => addr.is_ipv4(),
            Prober::Idle => false,
            Prober::Icmp(_) | Prober::Tcp(_) | Prober::Ack(_) => true,
            #[cfg(test)]
            Prober::Scripted(_) => true,
        }
    }

    /// Drops whatever is still in flight at the end of a round.
    pub fn end_round(&mut self) {
        match self {
            Prober::Icmp(_) => {}
            Prober::Tcp(tcp) => tcp.end_round(),
            Prober::Arp(arp) => arp.end_round(),
            Prober::Ndp(ndp) => ndp.end_round(),
            Prober::Timestamp(ts) => ts.end_round(),
            Prober::Ack(ack) => ack.end_round(),
            Prober::Idle => {}
            #[cfg(test)]
            Prober::Scripted(scripted) => scripted.end_round(),
        }
    }
}

/// The link an on-link method probes through (module `onlink`): with other methods in the
/// sweep, it takes the targets of its address family on that link and leaves the rest to
/// them (`None`: none is left for it, or their link cannot carry it, a tunnel without
/// Ethernet addresses: the other methods take them).
fn on_link(
    config: &Config,
    targets: &Targets,
    method: OnLink,
) -> Result<Option<onlink::Link>, Error> {
    let alone = !config.methods.is_several();
    match onlink::find(targets, config.interface.as_deref(), method, alone) {
        Err(Error::Parse(why)) if !alone => {
            tracing::debug!("{method:?} left to the other methods: {why}");
            Ok(None)
        }
        found => found,
    }
}
