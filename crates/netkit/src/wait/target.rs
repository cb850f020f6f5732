//! What `netkit wait` waits for, parsed without I/O: endpoints that accept connections
//! (`PORT`, `HOST:PORT`, `[V6]:PORT`, `tcp://HOST:PORT`, `unix:PATH`, `unix:@NAME`), HTTP(S)
//! URLs, names that resolve (`dns:NAME`, `dns:NAME=ADDR`) and paths that exist (`file:PATH`).

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use crate::endpoint::{Endpoint, EndpointError, EndpointErrorKind};
use crate::error::ParseError;
use crate::target::is_host_name;

/// One thing to wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Ready when a connection is accepted (TCP, Unix path or abstract name).
    Connect(Endpoint),
    /// Ready when a `GET` answers with an accepted status (and the body text, if asked for).
    Http(HttpTarget),
    /// Ready when the name resolves (to the given address, if one is given).
    Dns(DnsTarget),
    /// Ready when the path exists (symbolic links followed).
    File(PathBuf),
}

/// An `http://` or `https://` URL, split for the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// The URL as given.
    pub url: String,
    /// `https://`: the exchange runs over TLS.
    pub tls: bool,
    /// The server's TCP endpoint (default port 80 or 443).
    pub endpoint: Endpoint,
    /// The `Host` header: the URL's authority as written, less an IPv6 zone (as curl sends
    /// it: the zone names an interface of this host only).
    pub authority: String,
    /// Path and query, `/` when the URL has no path (`/?q=1` for `http://h?q=1`).
    pub path: String,
}

/// `dns:NAME` or `dns:NAME=ADDR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsTarget {
    /// The name to resolve.
    pub name: String,
    /// The address it must resolve to (among others), if any.
    pub expect: Option<IpAddr>,
}

impl Target {
    /// Whether this target is an `http://` or `https://` URL.
    pub fn is_http(&self) -> bool {
        matches!(self, Target::Http(_))
    }

    /// Whether this target is an `https://` URL.
    pub fn is_https(&self) -> bool {
        matches!(self, Target::Http(HttpTarget { tls: true, .. }))
    }

    /// Whether this target is a Unix socket (`unix:PATH`, `unix:@NAME`), which answers a
    /// connect at once: refused, accepted or its queue full, never silence.
    pub fn is_unix(&self) -> bool {
        matches!(
            self,
            Target::Connect(Endpoint::Unix(_) | Endpoint::Abstract(_))
        )
    }
}

/// What `wait` takes, for errors that name the input's form as none of them.
const FORMS: &str = "expected PORT, HOST:PORT, [V6]:PORT, tcp://HOST:PORT, unix:PATH, \
                     unix:@NAME, http://URL, https://URL, dns:NAME or file:PATH";

impl FromStr for Target {
    type Err = ParseError;

    /// Schemes are taken in any case, as URLs' are (`HTTP://`, `TCP://`, `DNS:`, `UNIX:`).
    fn from_str(input: &str) -> Result<Self, ParseError> {
        let (scheme, rest) = input.split_once(':').unwrap_or((input, ""));
        let url = rest.starts_with("//");
        match scheme.to_ascii_lowercase().as_str() {
            "http" | "https" if url => return parse_http(input).map(Target::Http),
            "tcp" if url => return parse_tcp_url(input, &rest[2..]).map(Target::Connect),
            "http" | "https" | "tcp" => {
                let why = format!("expected {scheme}://HOST...; {FORMS}");
                return Err(ParseError::new(input, why));
            }
            "dns" => return parse_dns(input, rest).map(Target::Dns),
            "file" => return parse_file(input, rest).map(Target::File),
            "unix" => return parse_endpoint(input, &format!("unix:{rest}")),
            _ => {}
        }
        parse_endpoint(input, input)
    }
}

/// An endpoint (`text`, `input` with its scheme in lower case) that wait can connect to.
fn parse_endpoint(input: &str, text: &str) -> Result<Target, ParseError> {
    let endpoint = text.parse::<Endpoint>().map_err(|e| match e.kind {
        EndpointErrorKind::UnknownScheme { scheme, note } => {
            ParseError::new(input, format!("unknown scheme '{scheme}:'{note}; {FORMS}"))
        }
        kind => ParseError::new(input, kind.to_string()),
    })?;
    match endpoint {
        Endpoint::Exec(_) => Err(ParseError::new(
            input,
            "exec: endpoints cannot be waited for",
        )),
        Endpoint::Udp { .. } => Err(ParseError::new(
            input,
            "udp: endpoints cannot be waited for (UDP has no connection to wait for)",
        )),
        endpoint => Ok(Target::Connect(endpoint)),
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Connect(endpoint) => endpoint.fmt(f),
            Target::Http(http) => f.write_str(&http.url),
            Target::Dns(DnsTarget { name, expect: None }) => write!(f, "dns:{name}"),
            Target::Dns(DnsTarget {
                name,
                expect: Some(ip),
            }) => write!(f, "dns:{name}={ip}"),
            Target::File(path) => write!(f, "file:{}", path.display()),
        }
    }
}

fn parse_http(input: &str) -> Result<HttpTarget, ParseError> {
    let bad = |why: &str| ParseError::new(input, why);
    let uri: hyper::Uri = input
        .parse()
        .map_err(|e| ParseError::new(input, format!("invalid URL: {e}")))?;
    let tls = uri
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("https"));
    let authority = uri.authority().ok_or_else(|| bad("URL without a host"))?;
    if authority.as_str().contains('@') {
        return Err(bad("user names and passwords in URLs are not supported"));
    }
    let (host, port) = split_port(authority.as_str());
    let port = port.unwrap_or(if tls { "443" } else { "80" });
    let endpoint: Endpoint = format!("{}:{port}", url_zone(host))
        .parse()
        .map_err(|e: EndpointError| ParseError::new(input, e.kind.to_string()))?;
    let path = match uri.path_and_query().map(|p| p.as_str()) {
        None | Some("") => "/".to_string(),
        // A query without a path (`http://h?q=1`) asks for `/?q=1`, as curl does.
        Some(query) if query.starts_with('?') => format!("/{query}"),
        Some(path) => path.to_string(),
    };
    Ok(HttpTarget {
        url: input.to_string(),
        tls,
        endpoint,
        authority: host_header(authority.as_str()),
        path,
    })
}

/// A URL's `[V6%25ZONE]` (RFC 6874) as an endpoint writes it, `[V6%ZONE]`; a bare `%ZONE`
/// is taken too, as curl takes it. `host` may go on with `:PORT`.
fn url_zone(host: &str) -> String {
    match host.split_once('%') {
        Some((addr, zone)) if host.starts_with('[') => {
            let zone = zone
                .strip_prefix("25")
                .filter(|z| !z.is_empty())
                .unwrap_or(zone);
            format!("{addr}%{zone}")
        }
        _ => host.to_string(),
    }
}

/// The `Host` header of a URL's authority: without the zone of its IPv6 address
/// ([`without_zone`]), and with a short IPv4 form (`127.1`) written out (`127.0.0.1`), as curl
/// sends them.
fn host_header(authority: &str) -> String {
    let (host, port) = split_port(authority);
    match crate::ipv4::looks_numeric(host).then(|| crate::ipv4::parse(host)) {
        Some(Some(addr)) => match port {
            Some(port) => format!("{addr}:{port}"),
            None => addr.to_string(),
        },
        _ => without_zone(authority),
    }
}

/// An authority less the zone of its IPv6 address: `[fe80::1%25eth0]:8080` is sent as
/// `Host: [fe80::1]:8080`.
fn without_zone(authority: &str) -> String {
    match (authority.find('%'), authority.find(']')) {
        (Some(zone), Some(end)) if zone < end => {
            format!("{}{}", &authority[..zone], &authority[end..])
        }
        _ => authority.to_string(),
    }
}

/// `host:port` into its parts; `[v6]` alone has no port. (The URI parser drops ports it
/// cannot read, such as 99999, which must be an error rather than port 80.)
fn split_port(authority: &str) -> (&str, Option<&str>) {
    match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    }
}

fn parse_dns(input: &str, rest: &str) -> Result<DnsTarget, ParseError> {
    let (name, expect) = match rest.split_once('=') {
        Some((name, addr)) => {
            let ip = addr.parse::<IpAddr>().map_err(|_| {
                ParseError::new(input, "expected dns:NAME=ADDR with an IPv4 or IPv6 address")
            })?;
            (name, Some(ip))
        }
        None => (rest, None),
    };
    if !is_host_name(name) {
        return Err(ParseError::new(
            input,
            "invalid host name, expected dns:NAME or dns:NAME=ADDR",
        ));
    }
    Ok(DnsTarget {
        name: name.to_string(),
        expect,
    })
}

fn parse_file(input: &str, rest: &str) -> Result<PathBuf, ParseError> {
    // `file:///abs/path` (dockerize's spelling) is the same as `file:/abs/path`.
    let path = match rest.strip_prefix("//") {
        Some(abs) if abs.starts_with('/') => abs,
        _ => rest,
    };
    if path.is_empty() {
        return Err(ParseError::new(input, "empty path, expected file:PATH"));
    }
    if path.contains('\0') {
        return Err(ParseError::new(input, "path contains a NUL byte"));
    }
    Ok(PathBuf::from(path))
}

fn parse_tcp_url(input: &str, rest: &str) -> Result<Endpoint, ParseError> {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let bad = || ParseError::new(input, "expected tcp://HOST:PORT");
    if rest.contains('/') {
        return Err(bad());
    }
    match url_zone(rest).parse() {
        Ok(endpoint @ Endpoint::Tcp { .. }) => Ok(endpoint),
        Ok(_) => Err(bad()),
        Err(e) => {
            let e: EndpointError = e;
            Err(ParseError::new(input, e.kind.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(input: &str) -> HttpTarget {
        match input.parse::<Target>() {
            Ok(Target::Http(target)) => target,
            other => panic!("{input}: {other:?}"),
        }
    }

    #[test]
    fn urls_split_into_endpoint_host_header_and_path() {
        let t = http("http://[::1]:8080/health?full=1");
        assert_eq!(t.endpoint.to_string(), "[::1]:8080");
        assert_eq!(t.authority, "[::1]:8080");
        assert_eq!(t.path, "/health?full=1");
        assert!(!t.tls);
        let t = http("https://localhost");
        assert_eq!(t.endpoint.to_string(), "localhost:443");
        assert_eq!(
            (t.authority.as_str(), t.path.as_str(), t.tls),
            ("localhost", "/", true)
        );
        assert_eq!(http("http://127.0.0.1:8080?q=1").path, "/?q=1");
        assert_eq!(http("https://h?").path, "/?");
        assert_eq!(
            http("HTTP://127.0.0.1/").endpoint.to_string(),
            "127.0.0.1:80"
        );
    }

    /// curl reads inet_aton's short forms and sends the address written out as the host.
    #[test]
    fn urls_take_short_ipv4_forms_as_curl() {
        let t = http("http://127.1:8080/x");
        assert_eq!(t.endpoint.to_string(), "127.0.0.1:8080");
        assert_eq!(
            (t.authority.as_str(), t.path.as_str()),
            ("127.0.0.1:8080", "/x")
        );
        assert_eq!(http("http://0x7f.1/").authority, "127.0.0.1");
        assert_eq!(
            http("http://2130706433/").endpoint.to_string(),
            "127.0.0.1:80"
        );
        assert!("http://1.2.3.300/".parse::<Target>().is_err());
    }

    #[test]
    fn urls_take_a_zone_as_rfc_6874_and_curl_write_it() {
        let lo = nix::net::if_::if_nametoindex("lo").expect("lo");
        for url in [
            "http://[fe80::1%25lo]:8080/up".to_string(),
            "http://[fe80::1%lo]:8080/up".to_string(),
            format!("http://[fe80::1%25{lo}]:8080/up"),
        ] {
            let t = http(&url);
            assert_eq!(t.endpoint.to_string(), "[fe80::1%lo]:8080", "{url}");
            // curl sends the Host header without the zone.
            assert_eq!(t.authority, "[fe80::1]:8080", "{url}");
            assert_eq!(t.path, "/up");
        }
        let tcp: Target = "tcp://[fe80::1%25lo]:22".parse().expect("tcp URL");
        assert_eq!(tcp.to_string(), "[fe80::1%lo]:22");
        let err = "http://[fe80::1%25nk-no-such0]/"
            .parse::<Target>()
            .unwrap_err();
        assert!(
            err.to_string().contains("no interface nk-no-such0"),
            "{err}"
        );
        let err = "http://[fe80::1]/".parse::<Target>().unwrap_err();
        assert!(err.to_string().contains("add %IFACE"), "{err}");
    }

    #[test]
    fn bad_urls_name_the_input() {
        for bad in [
            "http://",
            "http://user:pw@host/",
            "http://host:0/",
            "http://host:99999/",
            "http://[::1/",
            "http://bad_host!/",
        ] {
            let err = bad.parse::<Target>().expect_err(bad);
            assert_eq!(err.input, bad);
        }
    }

    #[test]
    fn dns_file_and_tcp_forms() {
        let dns: Target = "dns:db.internal=198.18.0.7".parse().expect("dns");
        assert_eq!(dns.to_string(), "dns:db.internal=198.18.0.7");
        let dns: Target = "dns:localhost".parse().expect("dns");
        assert_eq!(
            dns,
            Target::Dns(DnsTarget {
                name: "localhost".into(),
                expect: None
            })
        );
        for bad in [
            "dns:",
            "dns:a b",
            "dns:x=notanip",
            "file:",
            "tcp://",
            "tcp://unix:/x",
            // The fuzzer's find: a udp: endpoint behind tcp:// was accepted, and its display
            // (`udp:127.0.0.1:116`) was then refused.
            "tcp://udp:116",
            "tcp://udp:[::1]:53",
            "tcp://exec:true",
        ] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
        let file: Target = "file:///tmp/ready".parse().expect("file");
        assert_eq!(file, Target::File("/tmp/ready".into()));
        assert_eq!(file.to_string(), "file:/tmp/ready");
        let tcp: Target = "tcp://[::1]:5432/".parse().expect("tcp");
        assert_eq!(tcp.to_string(), "[::1]:5432");
        assert!("exec:cat".parse::<Target>().is_err());
        assert_eq!(
            "8080".parse::<Target>().expect("port").to_string(),
            "127.0.0.1:8080"
        );
    }
}
