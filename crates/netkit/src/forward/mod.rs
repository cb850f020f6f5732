//! The port forwarder behind `netkit forward`.
//!
//! # Layout
//! - [`server`]: the accept loop. It takes a bound [`Listener`](crate::endpoint::Listener) and
//!   a shutdown future, caps connections with a semaphore (`--max-conns`), backs off on accept
//!   errors (EMFILE never spins or ends the loop) and drains connections after shutdown.
//! - `conn`: one connection: ACL check at accept, connect to the target, PROXY header,
//!   relay, one [`ConnRecord`] when it ends.
//! - `relay`: both directions at once with half-close and reset propagation, the idle and
//!   drain timeouts; `splice(2)` through a pipe per direction on Linux, a buffered copy
//!   elsewhere.
//! - `http_relay`: the relay of `--http-host` connections, through an [`http::Session`]
//!   (requests rewritten, responses followed) until a tunnel or a read-until-close body.
//! - [`http`], [`proxy`]: sans-IO wire formats (HTTP/1 requests and responses, PROXY v1/v2).
//! - [`config`]: rules from a TOML file.

pub mod config;
mod conn;
pub mod http;
mod http_relay;
pub mod proxy;
mod relay;
pub mod server;
#[cfg(target_os = "linux")]
mod splice;

use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::endpoint::{Endpoint, Host};
use crate::error::ParseError;

pub use server::serve;

/// The default bound on connecting to one target address.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default time open connections are given to finish after shutdown begins.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// One forwarding rule: where to listen, where to relay to, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Where clients connect.
    pub listen: Endpoint,
    /// Where each connection is relayed to.
    pub target: Endpoint,
    /// How connections are treated.
    pub options: Options,
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
    /// Send a PROXY protocol header to the target first.
    pub proxy_protocol: Option<ProxyProtocol>,
    /// After shutdown begins, connections still open this long later are closed.
    pub drain_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            http_host: None,
            allow: Vec::new(),
            max_conns: None,
            idle_timeout: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            proxy_protocol: None,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
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
                    Host::Ip(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
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

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Close {
    /// Both sides finished sending; every byte was delivered.
    Done,
    /// No traffic either way for the idle timeout.
    IdleTimeout,
    /// A side reset the connection or stopped reading.
    Reset,
    /// Another I/O error.
    Error,
    /// The client's address is not in `--allow`.
    Denied,
    /// The target could not be reached; the client was closed.
    ConnectFailed,
    /// An HTTP request head was malformed or over 64 KiB (Host rewrite).
    HttpRejected,
    /// Still open when the drain timeout after SIGINT/SIGTERM ran out; closed.
    DrainTimeout,
}

/// The record of one connection, logged when it ends (`{"type":"conn",...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnRecord {
    /// When the connection ended: RFC 3339, UTC, milliseconds (`2026-11-24T17:22:39.123Z`).
    pub time: String,
    /// The client's address (`127.0.0.1:50312`, or `unix`).
    pub client: String,
    /// The target as configured, or the address actually connected to.
    pub target: String,
    /// Bytes delivered from the client to the target.
    pub bytes_up: u64,
    /// Bytes delivered from the target to the client.
    pub bytes_down: u64,
    /// Seconds from accept to close.
    pub duration_s: f64,
    /// How it ended.
    pub close: Close,
    /// The relay path: `splice`, `copy`, or `copy+splice` (rewritten up, zero-copy down).
    pub relay: String,
    /// The error behind `close`, when there was one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
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
        assert!("a b".parse::<HttpHost>().is_err());
        assert!("x\r\nEvil: 1".parse::<HttpHost>().is_err());
        assert_eq!("v2".parse::<ProxyProtocol>(), Ok(ProxyProtocol::V2));
    }
}
