//! UDP forwarding (`netkit forward udp:LISTEN udp:TARGET`): datagrams relayed a session per
//! client address, on a session loop of its own beside the [`crate::server`] accept loop
//! (datagrams have no connections to accept).
//!
//! Each session owns one socket *connected* to the target: the target sees one source address
//! per client, and the kernel matches its replies to the session (a reply from anywhere else
//! is not delivered to it). The cost is one file descriptor and one local port per session, so
//! sessions are bounded by the open-files limit and by the ephemeral port range (about 28,000
//! per target address with Linux's default `ip_local_port_range`); `--max-conns` bounds them
//! below that, and a client that finds no room has its datagrams dropped and counted (a
//! `drop` record). One shared socket would cost one descriptor in all, but the target would
//! see every client as one, and replies could be told apart only by parsing the protocol.
//!
//! # Layout
//! - [`serve`] (`relay`): the session loop: receives client datagrams in batches, opens
//!   sessions, expires idle ones, drains on shutdown, reports [`Event`]s.
//! - `session`: one session: its connected socket, counters, and the task that pumps the
//!   target's replies back to the client.
//! - `drops`: datagrams dropped before any session took them, counted and reported at most
//!   once a second per reason.
//! - `targets`: which target a new session goes to (`--balance`) and their passive health
//!   (a refusing target is down for a while; its sessions move to the next one).
//! - [`Counters`] (`counters`): the rule's live totals, plain atomics for a metrics endpoint.
//! - `batch`: `recvmmsg(2)`-batched receiving on the listening socket.

mod batch;
mod counters;
mod drops;
mod relay;
mod session;
mod targets;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;

use super::{ProxyProtocol, Rule};
use crate::endpoint::Endpoint;
use crate::error::{Error, ParseError};
use crate::report::forward::{DropRecord, SessionRecord, TargetRecord};

pub use counters::{Counters, TargetCounters};
pub use relay::{serve, Ending};

/// A session ends after this long without a datagram either way, unless `--idle-timeout`
/// says otherwise: longer than the keepalives of the chattiest UDP protocols (WireGuard's
/// 25 s, QUIC's usual 30 s idle), shorter than nginx's 10 minutes (a session holds a file
/// descriptor; realm uses 30 s, Linux's NAT 30 s for one-way flows and 120 s for answered
/// ones).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest UDP payload (IPv6's 65,527 bytes rounded up): every datagram arrives whole.
pub const MAX_DATAGRAM: usize = 65_536;

/// What a UDP rule reports while it serves.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A session ended (`{"type":"session",...}`).
    Session(SessionRecord),
    /// Datagrams were dropped before any session took them (`{"type":"drop",...}`).
    Drop(DropRecord),
    /// A target of a rule with several went down or came back (`{"type":"target",...}`).
    Target(TargetRecord),
}

/// A UDP rule's bound listening socket and its resolved targets, ready to [`serve`].
#[derive(Debug)]
pub struct Bound {
    socket: UdpSocket,
    local: SocketAddr,
    targets: Vec<SocketAddr>,
}

impl Bound {
    /// The bound address as an endpoint (`udp:127.0.0.1:40123`): the real port when port 0
    /// was asked for.
    pub fn local_endpoint(&self) -> String {
        Endpoint::udp(self.local).to_string()
    }

    /// The target addresses datagrams go to, in rule order.
    pub fn targets(&self) -> &[SocketAddr] {
        &self.targets
    }

    /// A second descriptor of the listening socket: what a reload keeps, to serve the same
    /// socket again ([`Bound::on`]) once this rule's session loop has ended.
    pub fn duplicate(&self) -> std::io::Result<std::net::UdpSocket> {
        Ok(socket2::SockRef::from(&self.socket).try_clone()?.into())
    }

    /// A rule on a socket already bound (a [`Bound::duplicate`]), relaying to `targets`. Call
    /// it on the runtime that will serve it.
    pub fn on(socket: std::net::UdpSocket, targets: Vec<SocketAddr>) -> std::io::Result<Bound> {
        socket.set_nonblocking(true)?;
        let local = socket.local_addr()?;
        Ok(Bound {
            socket: UdpSocket::from_std(socket)?,
            local,
            targets,
        })
    }
}

/// The addresses a `udp:` rule's datagrams go to: each target resolved once, to its first
/// address (a refusing target is left for the next one, not for its name's next address).
pub async fn targets_of(rule: &Rule) -> Result<Vec<SocketAddr>, Error> {
    let mut addrs = Vec::with_capacity(rule.targets.len());
    for target in &rule.targets {
        let found = target.resolve().await?;
        let missing = || {
            Error::io(
                format!("resolve {target}"),
                std::io::Error::other("no address"),
            )
        };
        addrs.push(found.first().copied().ok_or_else(missing)?);
    }
    Ok(addrs)
}

/// Binds the rule's `udp:` listen address and resolves its targets ([`targets_of`]).
pub async fn bind(rule: &Rule) -> Result<Bound, Error> {
    let what = || format!("listen on {}", rule.listen);
    let first = |found: Vec<SocketAddr>| {
        let missing = || Error::io(what(), std::io::Error::other("no address"));
        found.first().copied().ok_or_else(missing)
    };
    let addr = first(rule.listen.resolve().await?)?;
    let targets = targets_of(rule).await?;
    let socket = session::listen_socket(addr).map_err(|e| Error::io(what(), e))?;
    let local = socket.local_addr().map_err(|e| Error::io(what(), e))?;
    Ok(Bound {
        socket,
        local,
        targets,
    })
}

/// Checks that a rule's endpoints and options go together: both `udp:` or neither, and no
/// option a datagram relay cannot honour (`--proxy-protocol v1`, `--http-host`, `--check`).
/// The error names the rule's key (`target`, `proxy_protocol`, ...) and the value.
pub fn check(rule: &Rule) -> Result<(), (&'static str, ParseError)> {
    let listen = &rule.listen;
    let datagram = rule.is_datagram();
    let target = match rule.targets.iter().find(|t| t.is_udp() != datagram) {
        Some(odd) => odd,
        None => match rule.targets.first() {
            Some(first) => first,
            None => return Ok(()),
        },
    };
    match (datagram, target.is_udp()) {
        (false, false) => return Ok(()),
        (true, false) => {
            let why = "a udp: listen needs a udp: target (udp:HOST:PORT)";
            return Err(("target", ParseError::new(target.to_string(), why)));
        }
        (false, true) => {
            let why = "a udp: target needs a udp: listen (udp:PORT)";
            return Err(("listen", ParseError::new(listen.to_string(), why)));
        }
        (true, true) => {}
    }
    if rule.options.proxy_protocol == Some(ProxyProtocol::V1) {
        let why = "PROXY protocol v1 has no form for UDP; use v2 with udp: rules";
        return Err(("proxy_protocol", ParseError::new("v1", why)));
    }
    if let Some(host) = &rule.options.http_host {
        let why = "the Host rewrite is for HTTP over TCP; a udp: rule cannot take it";
        let value = match host {
            super::HttpHost::Auto => "auto".to_string(),
            super::HttpHost::Fixed(value) => value.clone(),
        };
        return Err(("http_host", ParseError::new(value, why)));
    }
    if let Some(check) = &rule.options.check {
        let why = "active checks are for TCP targets; a udp: target that answers with ICMP \
                   port unreachable is taken out of the rotation for a while";
        return Err(("check", ParseError::new(check.to_string(), why)));
    }
    Ok(())
}

/// The rule's session bound and idle timeout, with the UDP defaults.
fn limits(rule: &Rule) -> (usize, Duration) {
    let max = rule.options.max_conns.unwrap_or(usize::MAX);
    (
        max,
        rule.options.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT),
    )
}

/// What every session of a rule shares: the listening socket (replies leave from it) and the
/// rule's counters.
#[derive(Debug)]
struct Shared {
    listen: Arc<UdpSocket>,
    counters: Arc<Counters>,
}
