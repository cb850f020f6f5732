//! Endpoints of `forward`, `echo`, `send` and `wait`: `PORT` (loopback), `HOST:PORT`,
//! `[V6]:PORT`, `unix:PATH`, `unix:@NAME` (Linux abstract namespace) and `exec:COMMAND`.
//! Parsing is pure; [`Endpoint::connect`] and [`Endpoint::listen`] do the I/O.

pub mod exec;
mod io;
mod unix_path;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::ParseError;
use crate::target::is_host_name;

pub use io::{Listener, Stream};

/// The longest Unix socket path the kernel accepts (`sun_path` less its terminating NUL).
pub const MAX_UNIX_PATH: usize = 107;

/// Where to connect or listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A TCP endpoint; names resolve to every address they have, tried in order.
    Tcp {
        /// Address or name.
        host: Host,
        /// Port, 1-65535.
        port: u16,
    },
    /// A Unix stream socket at a path.
    Unix(PathBuf),
    /// A Linux abstract-namespace Unix stream socket (`unix:@NAME`).
    Abstract(String),
    /// A child process per connection, talking over a socketpair (`exec:COMMAND`).
    Exec(Vec<String>),
}

/// The host part of a TCP endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A literal address.
    Ip(IpAddr),
    /// A name to resolve.
    Name(String),
}

impl Endpoint {
    /// A TCP endpoint on a literal socket address.
    pub fn tcp(addr: SocketAddr) -> Self {
        Endpoint::Tcp {
            host: Host::Ip(addr.ip()),
            port: addr.port(),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp {
                host: Host::Ip(ip),
                port,
            } => write!(f, "{}", SocketAddr::new(*ip, *port)),
            Endpoint::Tcp {
                host: Host::Name(name),
                port,
            } => write!(f, "{name}:{port}"),
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
            Endpoint::Abstract(name) => write!(f, "unix:@{name}"),
            Endpoint::Exec(argv) => write!(
                f,
                "exec:{}",
                shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| argv.join(" "))
            ),
        }
    }
}

impl FromStr for Endpoint {
    type Err = ParseError;

    /// Parses an endpoint to connect to; port 0 is refused.
    fn from_str(input: &str) -> Result<Self, ParseError> {
        if let Some(rest) = input.strip_prefix("unix:") {
            return parse_unix(input, rest);
        }
        if let Some(command) = input.strip_prefix("exec:") {
            return parse_exec(input, command);
        }
        reject_scheme(input)?;
        parse_tcp(input, PortRule::NonZero)
    }
}

impl Endpoint {
    /// Parses an endpoint to listen on: like [`FromStr`], but port 0 asks the kernel for a free
    /// port (the server then reports the port it bound), and `exec:` is refused.
    pub fn parse_listen(input: &str) -> Result<Self, ParseError> {
        if input.starts_with("exec:") {
            return Err(ParseError::new(
                input,
                "exec: endpoints can only be targets",
            ));
        }
        if input.starts_with("unix:") {
            return input.parse();
        }
        reject_scheme(input)?;
        parse_tcp(input, PortRule::ZeroMeansAny)
    }
}

/// Whether port 0 is an error (connecting) or "any free port" (listening).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortRule {
    NonZero,
    ZeroMeansAny,
}

fn parse_unix(input: &str, rest: &str) -> Result<Endpoint, ParseError> {
    if let Some(name) = rest.strip_prefix('@') {
        if name.is_empty() {
            return Err(ParseError::new(
                input,
                "empty abstract socket name after unix:@",
            ));
        }
        if name.len() > MAX_UNIX_PATH - 1 {
            return Err(ParseError::new(
                input,
                "abstract socket name is longer than 106 bytes",
            ));
        }
        return Ok(Endpoint::Abstract(name.to_string()));
    }
    if rest.is_empty() {
        return Err(ParseError::new(
            input,
            "empty unix socket path, expected unix:PATH",
        ));
    }
    if rest.len() > MAX_UNIX_PATH {
        return Err(ParseError::new(
            input,
            "unix socket path is longer than 107 bytes",
        ));
    }
    if rest.contains('\0') {
        return Err(ParseError::new(
            input,
            "unix socket path contains a NUL byte",
        ));
    }
    Ok(Endpoint::Unix(PathBuf::from(rest)))
}

/// Words that are endpoint schemes elsewhere (SPEC.md) or commonly guessed, never host names.
const SCHEMES: &[(&str, &str)] = &[
    ("udp", " (UDP forwarding is not supported yet)"),
    ("systemd", " (socket activation is not supported yet)"),
    ("tcp", ""),
    ("tls", ""),
    ("ssl", ""),
    ("http", ""),
    ("https", ""),
    ("ws", ""),
    ("wss", ""),
    ("dns", ""),
    ("file", ""),
];

/// Refuses `SCHEME:...` forms other than `unix:` and `exec:` with an error naming the forms
/// accepted, rather than reading the scheme as a host name (`udp:53`) or an IPv6 address
/// without brackets (`tls:host:443`).
fn reject_scheme(input: &str) -> Result<(), ParseError> {
    let Some((scheme, rest)) = input.split_once(':') else {
        return Ok(());
    };
    let shaped = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    let known = SCHEMES
        .iter()
        .find(|(name, _)| scheme.eq_ignore_ascii_case(name));
    let ipv6 = input.rsplit_once(':').is_some_and(|(host, _)| {
        host.parse::<std::net::Ipv6Addr>().is_ok() || rest.starts_with(':')
    });
    let looks_like_url = shaped && !ipv6 && (rest.starts_with("//") || rest.contains(':'));
    if known.is_none() && !looks_like_url {
        return Ok(());
    }
    let note = known.map_or("", |(_, note)| *note);
    Err(ParseError::new(
        input,
        format!(
            "unknown endpoint scheme '{scheme}:'{note}; expected PORT, HOST:PORT, [V6]:PORT, \
             unix:PATH, unix:@NAME or exec:COMMAND"
        ),
    ))
}

fn parse_exec(input: &str, command: &str) -> Result<Endpoint, ParseError> {
    let argv = shlex::split(command)
        .ok_or_else(|| ParseError::new(input, "unbalanced quotes in exec command"))?;
    if argv.is_empty() {
        return Err(ParseError::new(
            input,
            "empty exec command, expected exec:COMMAND [ARGS]",
        ));
    }
    Ok(Endpoint::Exec(argv))
}

fn parse_tcp(input: &str, rule: PortRule) -> Result<Endpoint, ParseError> {
    if input.is_empty() {
        return Err(ParseError::new(
            input,
            "empty endpoint, expected PORT, HOST:PORT or unix:PATH",
        ));
    }
    if input.bytes().all(|b| b.is_ascii_digit()) {
        let port = port_of(input, input, rule)?;
        return Ok(Endpoint::Tcp {
            host: Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            port,
        });
    }
    if let Some(rest) = input.strip_prefix('[') {
        return parse_bracketed(input, rest, rule);
    }
    let Some((host, port)) = input.rsplit_once(':') else {
        return Err(ParseError::new(input, "missing port, expected HOST:PORT"));
    };
    if host.contains(':') {
        return Err(ParseError::new(
            input,
            "IPv6 addresses need brackets, e.g. [::1]:8080",
        ));
    }
    let port = port_of(input, port, rule)?;
    Ok(Endpoint::Tcp {
        host: parse_host(input, host)?,
        port,
    })
}

fn parse_bracketed(input: &str, rest: &str, rule: PortRule) -> Result<Endpoint, ParseError> {
    let (addr, port) = rest
        .split_once("]:")
        .ok_or_else(|| ParseError::new(input, "expected [IPV6]:PORT"))?;
    let ip: std::net::Ipv6Addr = addr
        .parse()
        .map_err(|_| ParseError::new(input, "invalid IPv6 address in brackets"))?;
    Ok(Endpoint::Tcp {
        host: Host::Ip(IpAddr::V6(ip)),
        port: port_of(input, port, rule)?,
    })
}

fn port_of(input: &str, port: &str, rule: PortRule) -> Result<u16, ParseError> {
    if rule == PortRule::ZeroMeansAny && port == "0" {
        return Ok(0);
    }
    crate::ports::parse_port(port).map_err(|e| ParseError::new(input, e.why))
}

fn parse_host(input: &str, host: &str) -> Result<Host, ParseError> {
    if host.is_empty() {
        return Err(ParseError::new(input, "empty host, expected HOST:PORT"));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    if host.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(ParseError::new(input, "invalid IPv4 address"));
    }
    if !is_host_name(host) {
        return Err(ParseError::new(input, "invalid host name"));
    }
    Ok(Host::Name(host.to_string()))
}

#[cfg(test)]
#[path = "endpoint/tests.rs"]
mod tests;
