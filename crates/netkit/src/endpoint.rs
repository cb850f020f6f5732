//! Endpoints of `forward`, `echo`, `send` and `wait`: `PORT` (loopback), `HOST:PORT`,
//! `[V6]:PORT`, `[V6%IFACE]:PORT` (a link-local address with its zone), `unix:PATH`,
//! `unix:@NAME` (Linux abstract namespace), `exec:COMMAND`, and `forward`'s `systemd:NAME`
//! listeners (sockets passed by systemd) and its datagram forms `udp:PORT`, `udp:HOST:PORT`,
//! `udp:[V6]:PORT`. Parsing does no I/O but look up a zone's interface; [`Endpoint::connect`]
//! and [`Endpoint::listen`] do the I/O of the stream endpoints ([`exec::check`] the one check
//! of an `exec:` program before any connection), `forward::udp` that of `udp:`.

pub mod children;
pub mod exec;
mod eyeballs_memory;
pub mod happy_eyeballs;
mod in_the_way;
mod io;
pub mod names;
mod parked;
mod unix_addr;
mod unix_connect;
mod unix_path;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use crate::ports::PortErrorKind;
use crate::target::{is_host_name, show_zoned, zoned, zoned_addr, TargetErrorKind};

pub use io::{plain_peer, Listener, Peer, Stream};
pub use parked::{Detached, Parked};
pub(crate) use unix_connect::AcceptQueueFull;

/// An endpoint failed to parse: `input: why`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {kind}", crate::text::clipped(.input))]
pub struct EndpointError {
    /// The endpoint as given.
    pub input: String,
    /// What is wrong with it.
    pub kind: EndpointErrorKind,
}

/// What is wrong with an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointErrorKind {
    /// Nothing was given.
    #[error("empty endpoint, expected PORT, HOST:PORT or unix:PATH")]
    Empty,
    /// `HOST` without `:PORT`.
    #[error("missing port, expected HOST:PORT")]
    MissingPort,
    /// The port is not 1-65535 (or 0 where a port to connect to is needed).
    #[error("{0}")]
    Port(PortErrorKind),
    /// `HOST:` with an empty host.
    #[error("empty host, expected HOST:PORT")]
    EmptyHost,
    /// Digits and dots that are no IPv4 address.
    #[error("invalid IPv4 address")]
    BadIpv4,
    /// Neither an address nor a valid host name.
    #[error("invalid host name")]
    BadHostName,
    /// An IPv6 address without brackets (`::1:80`).
    #[error("IPv6 addresses need brackets, e.g. [::1]:8080")]
    Ipv6WithoutBrackets,
    /// `[` without `]:PORT`.
    #[error("expected [IPV6]:PORT")]
    BadBrackets,
    /// Something other than an IPv6 address in brackets.
    #[error("invalid IPv6 address in brackets")]
    BadIpv6,
    /// A zone in brackets that names no interface, or follows an IPv4 address (worded as
    /// targets word it).
    #[error("{0}")]
    Zone(TargetErrorKind),
    /// A zone on an address that is not link-local: the kernel would ignore it (and the
    /// resolver, for ncat and socat, refuses an interface name there).
    #[error("a zone (%IFACE) is for link-local addresses (fe80::/10) only")]
    ZoneNotLinkLocal,
    /// A link-local IPv6 address without a zone: no socket can reach or bind it.
    #[error("a link-local address needs its interface: add %IFACE, e.g. [fe80::1%eth0]:80")]
    LinkLocal,
    /// `unix:` with nothing after it.
    #[error("empty unix socket path, expected unix:PATH")]
    EmptyUnixPath,
    /// A path the kernel cannot bind: more than [`MAX_UNIX_PATH`] bytes (how many it has).
    #[error(
        "unix socket path of {0} bytes: longer than {max} bytes, the kernel's limit (sun_path)",
        max = MAX_UNIX_PATH
    )]
    UnixPathTooLong(usize),
    /// A path with a NUL byte.
    #[error("unix socket path contains a NUL byte")]
    UnixPathNul,
    /// `unix:@` with nothing after it.
    #[error("empty abstract socket name after unix:@")]
    EmptyAbstractName,
    /// An abstract name the kernel cannot bind: more than [`MAX_ABSTRACT_NAME`] bytes (how
    /// many it has).
    #[error(
        "abstract socket name of {0} bytes: longer than {max} bytes, the kernel's limit \
         (sun_path less its leading NUL)",
        max = MAX_ABSTRACT_NAME
    )]
    AbstractNameTooLong(usize),
    /// `exec:` with an unbalanced quote.
    #[error("unbalanced quotes in exec command")]
    ExecQuotes,
    /// `exec:` with no command.
    #[error("empty exec command, expected exec:COMMAND [ARGS]")]
    EmptyExec,
    /// `exec:` where only a listening endpoint makes sense.
    #[error("exec: endpoints can only be targets")]
    ExecListen,
    /// A scheme other than `unix:`, `exec:`, `udp:` and `systemd:` (`tls://h`).
    #[error(
        "unknown endpoint scheme '{scheme}:'{note}; expected PORT, HOST:PORT, [V6]:PORT, \
         unix:PATH, unix:@NAME or exec:COMMAND"
    )]
    UnknownScheme {
        /// The scheme as given.
        scheme: String,
        /// Why a known one is refused, or empty.
        note: &'static str,
    },
    /// `systemd:` where a socket to connect to is needed.
    #[error("systemd: endpoints are sockets passed by systemd, for forward to listen on")]
    SystemdTarget,
    /// A `systemd:NAME` whose name systemd could not have given (`FileDescriptorName=`).
    #[error("invalid systemd socket name, expected printable ASCII without ':', at most 255")]
    BadSystemdName,
    /// The program of an `exec:` endpoint cannot be run (checked before any connection).
    #[error("{0}")]
    ExecProgram(String),
    /// A `udp:` endpoint where only a stream endpoint makes sense (`echo`, `send`, `wait`).
    #[error("udp: endpoints are for forward only; expected PORT, HOST:PORT, [V6]:PORT, unix:PATH or unix:@NAME")]
    UdpNotHere,
}

impl EndpointError {
    pub(crate) fn new(input: &str, kind: EndpointErrorKind) -> EndpointError {
        EndpointError {
            input: input.to_string(),
            kind,
        }
    }
}

/// The longest Unix socket path the kernel accepts: all of `sun_path`, a path that fills it
/// having no terminating NUL (socat and `ncat -U` take it so; std's and tokio's sockets do not,
/// so netkit makes its own, in `endpoint/unix_addr.rs`).
pub const MAX_UNIX_PATH: usize = 108;

/// The longest abstract socket name the kernel accepts: `sun_path` less its leading NUL (an
/// abstract name has no terminator), as socat's `ABSTRACT-LISTEN` takes it.
pub const MAX_ABSTRACT_NAME: usize = 107;

/// Where to connect or listen.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
    /// A listening socket passed by systemd (`systemd:NAME`, the name of
    /// `FileDescriptorName=`; empty for `systemd:`, the passed sockets in order): `forward`
    /// listens on it, nothing connects to it.
    Systemd(String),
    /// A UDP address (`udp:PORT`, `udp:HOST:PORT`, `udp:[V6]:PORT`): `forward` relays
    /// datagrams between two of these, a session per client.
    Udp {
        /// Address or name.
        host: Host,
        /// Port, 1-65535 (0 when listening means any free port).
        port: u16,
    },
}

/// The host part of a TCP or UDP endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A literal address.
    Ip(IpAddr),
    /// A link-local IPv6 address with its zone (`[fe80::1%eth0]:80`): the index of the
    /// interface it is reached through, put on every socket address made for it.
    Zoned(Ipv6Addr, u32),
    /// A name to resolve.
    Name(String),
}

impl Host {
    /// The host of a literal socket address: [`Host::Zoned`] when it is link-local with a
    /// scope id (the kernel ignores the scope id of any other address).
    pub fn of(addr: SocketAddr) -> Host {
        match addr {
            SocketAddr::V6(v6) if v6.scope_id() != 0 && v6.ip().is_unicast_link_local() => {
                Host::Zoned(*v6.ip(), v6.scope_id())
            }
            other => Host::Ip(other.ip()),
        }
    }

    /// The socket address of `port` on a literal host, with its zone as scope id; `None` for
    /// a name.
    pub fn socket_addr(&self, port: u16) -> Option<SocketAddr> {
        match self {
            Host::Ip(ip) => Some(SocketAddr::new(*ip, port)),
            Host::Zoned(ip, zone) => Some(zoned(IpAddr::V6(*ip), port, *zone)),
            Host::Name(_) => None,
        }
    }
}

impl Endpoint {
    /// A TCP endpoint on a literal socket address (zoned when it is link-local with a scope
    /// id, see [`Host::of`]).
    pub fn tcp(addr: SocketAddr) -> Self {
        Endpoint::Tcp {
            host: Host::of(addr),
            port: addr.port(),
        }
    }

    /// A UDP endpoint on a literal socket address (zoned as [`Endpoint::tcp`]).
    pub fn udp(addr: SocketAddr) -> Self {
        Endpoint::Udp {
            host: Host::of(addr),
            port: addr.port(),
        }
    }

    /// Whether this is a `udp:` endpoint.
    pub fn is_udp(&self) -> bool {
        matches!(self, Endpoint::Udp { .. })
    }

    /// The same endpoint, refused when it is a `udp:` one (`input` as the user gave it): for
    /// the commands that speak streams only (`echo`, `send`, `wait`).
    pub fn stream_only(self, input: &str) -> Result<Self, EndpointError> {
        match self {
            Endpoint::Udp { .. } => Err(EndpointError::new(input, EndpointErrorKind::UdpNotHere)),
            other => Ok(other),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { host, port } => write_inet(f, host, *port),
            Endpoint::Udp { host, port } => {
                f.write_str("udp:")?;
                write_inet(f, host, *port)
            }
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
            Endpoint::Abstract(name) => write!(f, "unix:@{name}"),
            Endpoint::Exec(argv) => write!(
                f,
                "exec:{}",
                shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| argv.join(" "))
            ),
            Endpoint::Systemd(name) => write!(f, "systemd:{name}"),
        }
    }
}

fn write_inet(f: &mut fmt::Formatter<'_>, host: &Host, port: u16) -> fmt::Result {
    match host {
        Host::Ip(ip) => write!(f, "{}", SocketAddr::new(*ip, port)),
        // The interface by name, as targets show it (`[fe80::1%eth0]:80`).
        Host::Zoned(ip, zone) => write!(f, "[{}]:{port}", show_zoned(IpAddr::V6(*ip), *zone)),
        Host::Name(name) => write!(f, "{name}:{port}"),
    }
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    /// Parses an endpoint to connect to; port 0 is refused.
    fn from_str(input: &str) -> Result<Self, EndpointError> {
        if let Some(rest) = input.strip_prefix("unix:") {
            return parse_unix(input, rest);
        }
        if let Some(command) = input.strip_prefix("exec:") {
            return parse_exec(input, command);
        }
        if input.starts_with("systemd:") {
            return Err(EndpointError::new(input, EndpointErrorKind::SystemdTarget));
        }
        if let Some(rest) = input.strip_prefix("udp:") {
            return parse_udp(input, rest, PortRule::NonZero);
        }
        reject_scheme(input)?;
        parse_tcp(input, PortRule::NonZero)
    }
}

impl Endpoint {
    /// Parses an endpoint to listen on: like [`FromStr`], but port 0 asks the kernel for a free
    /// port (the server then reports the port it bound), and `exec:` is refused.
    pub fn parse_listen(input: &str) -> Result<Self, EndpointError> {
        if input.starts_with("exec:") {
            return Err(EndpointError::new(input, EndpointErrorKind::ExecListen));
        }
        if input.starts_with("unix:") {
            return input.parse();
        }
        if let Some(name) = input.strip_prefix("systemd:") {
            return parse_systemd(input, name);
        }
        if let Some(rest) = input.strip_prefix("udp:") {
            return parse_udp(input, rest, PortRule::ZeroMeansAny);
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

fn parse_unix(input: &str, rest: &str) -> Result<Endpoint, EndpointError> {
    if let Some(name) = rest.strip_prefix('@') {
        if name.is_empty() {
            return Err(EndpointError::new(
                input,
                EndpointErrorKind::EmptyAbstractName,
            ));
        }
        if name.len() > MAX_ABSTRACT_NAME {
            return Err(EndpointError::new(
                input,
                EndpointErrorKind::AbstractNameTooLong(name.len()),
            ));
        }
        return Ok(Endpoint::Abstract(name.to_string()));
    }
    if rest.is_empty() {
        return Err(EndpointError::new(input, EndpointErrorKind::EmptyUnixPath));
    }
    if rest.len() > MAX_UNIX_PATH {
        return Err(EndpointError::new(
            input,
            EndpointErrorKind::UnixPathTooLong(rest.len()),
        ));
    }
    if rest.contains('\0') {
        return Err(EndpointError::new(input, EndpointErrorKind::UnixPathNul));
    }
    Ok(Endpoint::Unix(PathBuf::from(rest)))
}

/// Words that are endpoint schemes elsewhere (SPEC.md) or commonly guessed, never host names.
const SCHEMES: &[(&str, &str)] = &[
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

/// Refuses `SCHEME:...` forms other than `unix:`, `exec:`, `udp:` and `systemd:` with an error
/// naming the forms accepted, rather than reading the scheme as a host name (`udp:53`) or an IPv6 address
/// without brackets (`tls:host:443`).
fn reject_scheme(input: &str) -> Result<(), EndpointError> {
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
    let scheme = scheme.to_string();
    Err(EndpointError::new(
        input,
        EndpointErrorKind::UnknownScheme { scheme, note },
    ))
}

/// `systemd:NAME`: a name as systemd's `FileDescriptorName=` allows (sd_listen_fds(3)).
fn parse_systemd(input: &str, name: &str) -> Result<Endpoint, EndpointError> {
    let valid = name.len() <= 255 && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
    if !valid {
        return Err(EndpointError::new(input, EndpointErrorKind::BadSystemdName));
    }
    Ok(Endpoint::Systemd(name.to_string()))
}

fn parse_exec(input: &str, command: &str) -> Result<Endpoint, EndpointError> {
    let argv = shlex::split(command)
        .ok_or_else(|| EndpointError::new(input, EndpointErrorKind::ExecQuotes))?;
    // `exec:''` quotes an empty program name: as empty as none.
    if argv.first().is_none_or(String::is_empty) {
        return Err(EndpointError::new(input, EndpointErrorKind::EmptyExec));
    }
    Ok(Endpoint::Exec(argv))
}

fn parse_tcp(input: &str, rule: PortRule) -> Result<Endpoint, EndpointError> {
    let (host, port) = parse_inet(input, input, rule)?;
    Ok(Endpoint::Tcp { host, port })
}

/// `udp:` and what follows it: the TCP forms, the errors naming the whole input.
fn parse_udp(input: &str, rest: &str, rule: PortRule) -> Result<Endpoint, EndpointError> {
    let (host, port) = parse_inet(input, rest, rule)?;
    Ok(Endpoint::Udp { host, port })
}

/// `PORT`, `HOST:PORT` or `[V6]:PORT` in `text` (all of `input`, or what follows a scheme).
fn parse_inet(input: &str, text: &str, rule: PortRule) -> Result<(Host, u16), EndpointError> {
    if text.is_empty() {
        return Err(EndpointError::new(input, EndpointErrorKind::Empty));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let port = port_of(input, text, rule)?;
        return Ok((Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)), port));
    }
    if let Some(rest) = text.strip_prefix('[') {
        return parse_bracketed(input, rest, rule);
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(EndpointError::new(input, EndpointErrorKind::MissingPort));
    };
    if host.contains(':') {
        return Err(EndpointError::new(
            input,
            EndpointErrorKind::Ipv6WithoutBrackets,
        ));
    }
    let port = port_of(input, port, rule)?;
    Ok((parse_host(input, host)?, port))
}

fn parse_bracketed(input: &str, rest: &str, rule: PortRule) -> Result<(Host, u16), EndpointError> {
    let (addr, port) = rest
        .split_once("]:")
        .ok_or_else(|| EndpointError::new(input, EndpointErrorKind::BadBrackets))?;
    if let Some((addr, zone)) = addr.split_once('%') {
        let host = parse_zoned(input, addr, zone)?;
        return Ok((host, port_of(input, port, rule)?));
    }
    let ip: Ipv6Addr = addr
        .parse()
        .map_err(|_| EndpointError::new(input, EndpointErrorKind::BadIpv6))?;
    if ip.is_unicast_link_local() {
        return Err(EndpointError::new(input, EndpointErrorKind::LinkLocal));
    }
    Ok((Host::Ip(IpAddr::V6(ip)), port_of(input, port, rule)?))
}

/// `ADDR%ZONE` in brackets, by the targets' parser of zones (an interface name that must exist,
/// or an index, taken as given as ping takes it); only a link-local address takes one.
fn parse_zoned(input: &str, addr: &str, zone: &str) -> Result<Host, EndpointError> {
    let (ip, index) = zoned_addr(input, addr, zone).map_err(|e| {
        let kind = match e.kind {
            TargetErrorKind::BadIpv6 => EndpointErrorKind::BadIpv6,
            other => EndpointErrorKind::Zone(other),
        };
        EndpointError::new(input, kind)
    })?;
    if !ip.is_unicast_link_local() {
        return Err(EndpointError::new(
            input,
            EndpointErrorKind::ZoneNotLinkLocal,
        ));
    }
    Ok(Host::Zoned(ip, index))
}

fn port_of(input: &str, port: &str, rule: PortRule) -> Result<u16, EndpointError> {
    if rule == PortRule::ZeroMeansAny && port == "0" {
        return Ok(0);
    }
    crate::ports::parse_port(port)
        .map_err(|e| EndpointError::new(input, EndpointErrorKind::Port(e.kind)))
}

fn parse_host(input: &str, host: &str) -> Result<Host, EndpointError> {
    if host.is_empty() {
        return Err(EndpointError::new(input, EndpointErrorKind::EmptyHost));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    // The short IPv4 forms (`127.1`) as curl, ncat and wait-for-it read them; digits that
    // are no address in any form are refused rather than sent to the resolver.
    if crate::ipv4::looks_numeric(host) {
        return crate::ipv4::parse(host)
            .map(|addr| Host::Ip(IpAddr::V4(addr)))
            .ok_or_else(|| EndpointError::new(input, EndpointErrorKind::BadIpv4));
    }
    if !is_host_name(host) {
        return Err(EndpointError::new(input, EndpointErrorKind::BadHostName));
    }
    Ok(Host::Name(host.to_string()))
}

/// Refuses a link-local IPv6 socket address without a scope id, which the kernel would refuse
/// with a bare "invalid argument": what a name that resolves to a link-local address gives
/// (the resolver knows no interface for it).
pub(crate) fn refuse_unzoned_link_local(addr: SocketAddr) -> std::io::Result<()> {
    match addr {
        SocketAddr::V6(v6) if v6.ip().is_unicast_link_local() && v6.scope_id() == 0 => {
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "{} is link-local and has no interface (a name gives none); give the \
                     address with its zone, [{}%IFACE]:{}",
                    v6.ip(),
                    v6.ip(),
                    v6.port()
                ),
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
#[path = "endpoint/tests.rs"]
mod tests;

#[cfg(test)]
#[path = "endpoint/unacked_tests.rs"]
mod unacked_tests;
