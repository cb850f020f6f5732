//! The port forwarder behind `netkit forward`.
//!
//! # Layout
//! - `reload`: the [`Supervisor`] of the rules in force: binds them (`activation` hands it
//!   the sockets systemd passed), replaces them on reload (new listeners bound first, kept ones
//!   never closed, connections untouched), stops them.
//! - `workers`: a thread per core, each with a single-threaded runtime, where stream
//!   connections are accepted and served; `spread`: a listening socket's descriptor per worker
//!   (its lanes), shared by the accept loops of every generation; `exclusive`: a lane's
//!   registration made `EPOLLEXCLUSIVE`, so one worker wakes per client.
//! - `server`: a rule on the [`crate::server`] accept loop ([`serve`]): connections capped by
//!   `--max-conns`, drained for `--drain-timeout` after shutdown, each one reported as an
//!   [`Event`] (`event`: the events and their channel).
//! - `backend`: a rule being served: its targets (`target`: endpoint, `health`, counters), the
//!   order a connection tries them in (`balance`), failover and retries (`attempts`), the
//!   active checks (`check`).
//! - `conn`: one connection: ACL check at accept (`allow`), connect to a target, PROXY header,
//!   relay, its [`ConnRecord`](crate::report::forward::ConnRecord).
//! - `relay`: both directions at once, with reset propagation, the idle and drain timeouts;
//!   `flow`: one direction with half-close, and what both share (sides, counters); `acks`:
//!   whether a peer took every byte sent to it, or stopped taking any.
//! - `keepalive`: TCP keepalive on both legs ([`Keepalive`], `--keepalive`); `keepalive_later`:
//!   the target leg's, set at its worker's tick after next (short connections never pay it).
//! - `splice`, `pipe_pool` and `io`: the zero-copy path (`splice(2)` through a pipe for bulk
//!   transfers, a copy for small exchanges), the process's pool of pipes (a connection holds a
//!   pipe only while bytes are in it), and the readiness-based reads and writes under both
//!   (through one copy buffer per worker thread).
//! - `http_relay`: the relay of `--http-host` connections, through an [`http::Session`]
//!   (requests rewritten, responses followed) until a tunnel or a read-until-close body.
//! - [`http`], [`proxy`]: sans-IO wire formats (HTTP/1 requests and responses, PROXY v1/v2).
//! - [`config`]: rules from a TOML file; [`rules`]: from a rule's text (target lists, port
//!   ranges) to rules, and the checks every rule passes; [`metrics`]: the counters by rule and
//!   target and their Prometheus text.
//! - [`udp`]: `udp:` rules, a session per client on a session loop of their own.
//!
//! Modules depend downwards only: `reload` → `spread` → `workers` → `exclusive`, `reload` →
//! `server` → `conn` → `backend` → `attempts`, `backend` → `check` →
//! `target` → `health`, and `conn` → `relay` → `http_relay` → `flow` → `splice` →
//! `pipe_pool`, `io`; `relay` → `keepalive_later` → `keepalive`; `workers` → `keepalive_later`; `relay`, `flow` → `acks`.

mod acks;
mod activation;
mod allow;
mod attempts;
mod backend;
mod balance;
mod check;
pub mod config;
mod conn;
mod event;
mod exclusive;
mod flow;
mod health;
pub mod http;
mod http_relay;
mod io;
mod keepalive;
mod keepalive_later;
pub mod metrics;
mod pipe_pool;
pub mod proxy;
mod relay;
mod reload;
pub mod rules;
mod server;
mod splice;
mod spread;
mod target;
pub mod udp;
mod workers;

use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;

use crate::endpoint::{Endpoint, Host};
use crate::error::ParseError;

pub use activation::Activation;
pub use balance::Balance;
pub use check::Check;
pub use event::{Event, Events};
pub use keepalive::{Keepalive, DEFAULT_KEEPALIVE, KEEPALIVE_PROBES};
pub use pipe_pool::{pipe_counts, PipeCounts};
pub use reload::{Cutter, Reloaded, Served, Supervisor};
pub use server::{descriptor_cap, serve};

/// The default bound on connecting to one target address.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default time open connections are given to finish after shutdown begins.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The default time between two health checks of a target (HAProxy's `inter`).
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(2);
/// The default number of passed checks in a row that bring a target up (HAProxy's `rise`).
pub const DEFAULT_RISE: u32 = 2;
/// The default number of connect attempts a client connection makes after trying every
/// target once (HAProxy's `retries`).
pub const DEFAULT_RETRIES: u32 = 3;
/// The default number of failed checks in a row that take a target down (HAProxy's `fall`).
pub const DEFAULT_FALL: u32 = 3;

/// One forwarding rule: where to listen, where to relay to, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Where clients connect.
    pub listen: Endpoint,
    /// Where connections are relayed to: one target, or several shared as
    /// [`Options::balance`] says (never empty).
    pub targets: Vec<Endpoint>,
    /// How connections are treated.
    pub options: Options,
}

impl Rule {
    /// A rule relaying `listen` to one target with the default options.
    pub fn new(listen: Endpoint, target: Endpoint) -> Rule {
        Rule {
            listen,
            targets: vec![target],
            options: Options::default(),
        }
    }

    /// Whether it relays datagrams: a `udp:` listen, or a `systemd:` one (a socket systemd
    /// passes, `ListenDatagram=`) with `udp:` targets.
    pub fn is_datagram(&self) -> bool {
        match self.listen {
            Endpoint::Systemd(_) => self.targets.iter().any(Endpoint::is_udp),
            ref listen => listen.is_udp(),
        }
    }

    /// The targets as the log shows them: `a:80,b:80`.
    pub fn targets_text(&self) -> String {
        let texts: Vec<String> = self.targets.iter().map(ToString::to_string).collect();
        texts.join(",")
    }
}

/// Per-rule behaviour; the command-line flags override these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Rewrite the Host header of every HTTP request.
    pub http_host: Option<HttpHost>,
    /// Client blocks allowed to connect; empty allows everyone.
    pub allow: Vec<IpNet>,
    /// At most this many connections at once.
    pub max_conns: Option<usize>,
    /// Close a connection after this long without traffic either way.
    pub idle_timeout: Option<Duration>,
    /// Bound on connecting to one target address.
    pub connect_timeout: Duration,
    /// Connect attempts after every target was tried once, each to the next target that
    /// did not refuse; 0 for one attempt per target.
    pub retries: u32,
    /// Send a PROXY protocol header to the target first.
    pub proxy_protocol: Option<ProxyProtocol>,
    /// After shutdown begins, connections still open this long later are closed.
    pub drain_timeout: Duration,
    /// How a connection picks one of several targets.
    pub balance: Balance,
    /// The active health check of every target, if any.
    pub check: Option<Check>,
    /// Time between two checks of a target.
    pub check_interval: Duration,
    /// Passed checks in a row that bring a down target up.
    pub rise: u32,
    /// Failed checks in a row that take an up target down.
    pub fall: u32,
    /// TCP keepalive on both legs.
    pub keepalive: Keepalive,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            http_host: None,
            allow: Vec::new(),
            max_conns: None,
            idle_timeout: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            retries: DEFAULT_RETRIES,
            proxy_protocol: None,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            balance: Balance::RoundRobin,
            check: None,
            check_interval: DEFAULT_CHECK_INTERVAL,
            rise: DEFAULT_RISE,
            fall: DEFAULT_FALL,
            keepalive: Keepalive::default(),
        }
    }
}

/// The PROXY protocol version sent to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyProtocol {
    /// The text header (`PROXY TCP4 ...\r\n`).
    V1,
    /// The binary header.
    V2,
}

impl FromStr for ProxyProtocol {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, ParseError> {
        match text {
            "v1" | "1" => Ok(ProxyProtocol::V1),
            "v2" | "2" => Ok(ProxyProtocol::V2),
            _ => Err(ParseError::new(text, "expected v1 or v2")),
        }
    }
}

/// The Host header value to put into requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpHost {
    /// The target's `host:port` (`host` alone for port 80).
    Auto,
    /// This value.
    Fixed(String),
}

impl FromStr for HttpHost {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, ParseError> {
        if text == "auto" {
            return Ok(HttpHost::Auto);
        }
        let valid = !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b',' && b != b'"');
        if !valid {
            return Err(ParseError::new(
                text,
                "invalid Host value, expected auto or host[:port] without spaces",
            ));
        }
        Ok(HttpHost::Fixed(text.to_string()))
    }
}

impl HttpHost {
    /// The header value for connections to `target`.
    pub fn value_for(&self, target: &Endpoint) -> String {
        match (self, target) {
            (HttpHost::Fixed(value), _) => value.clone(),
            (HttpHost::Auto, Endpoint::Tcp { host, port }) => {
                let host = match host {
                    Host::Name(name) => name.clone(),
                    // Without the zone, which names an interface of this host only (curl
                    // leaves it out of its Host header too).
                    Host::Ip(std::net::IpAddr::V6(ip)) | Host::Zoned(ip, _) => format!("[{ip}]"),
                    Host::Ip(ip) => ip.to_string(),
                };
                match port {
                    80 => host,
                    port => format!("{host}:{port}"),
                }
            }
            (HttpHost::Auto, _) => "localhost".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_host_values() {
        let target: Endpoint = "example.test:8080".parse().unwrap();
        assert_eq!(HttpHost::Auto.value_for(&target), "example.test:8080");
        let target: Endpoint = "[::1]:80".parse().unwrap();
        assert_eq!(HttpHost::Auto.value_for(&target), "[::1]");
        // A zone names an interface of this host only: left out, as curl leaves it out.
        let target: Endpoint = "[fe80::1%lo]:8080".parse().unwrap();
        assert_eq!(HttpHost::Auto.value_for(&target), "[fe80::1]:8080");
        assert!("a b".parse::<HttpHost>().is_err());
        assert!("x\r\nEvil: 1".parse::<HttpHost>().is_err());
        assert_eq!("v2".parse::<ProxyProtocol>(), Ok(ProxyProtocol::V2));
    }
}
