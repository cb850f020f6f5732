//! clap value parsers: every argument is parsed straight into a domain type, and every failure
//! is one of the library's input errors naming the input (its domain's typed error, or a
//! [`netkit::ParseError`]).

use std::time::Duration;

use netkit::duration::DurationError;
use netkit::endpoint::EndpointError;
use netkit::ports::PortError;
use netkit::sweep::Method;
use netkit::target::TargetError;
use netkit::{Endpoint, ParseError, PortSet};

/// `250ms`, `2s`, `1m`, bare seconds.
pub fn duration(text: &str) -> Result<Duration, DurationError> {
    netkit::parse_duration(text)
}

/// A duration that must be above zero.
pub fn positive_duration(text: &str) -> Result<Duration, DurationError> {
    netkit::duration::parse_positive_duration(text)
}

/// A stream endpoint to connect to (`udp:` is forward's only).
pub fn endpoint(text: &str) -> Result<Endpoint, EndpointError> {
    text.parse::<Endpoint>()?.stream_only(text)
}

/// What `netkit wait` waits for: an endpoint, an HTTP(S) URL, `dns:NAME[=ADDR]`, `file:PATH`.
pub fn wait_target(text: &str) -> Result<netkit::wait::Target, ParseError> {
    text.parse()
}

/// `--status`: HTTP status codes, ranges and classes.
pub fn status_set(text: &str) -> Result<netkit::wait::StatusSet, ParseError> {
    text.parse()
}

/// A stream endpoint to listen on (port 0 picks a free port); `udp:` and `systemd:` endpoints
/// are `forward`'s only (its LISTEN is parsed with the rule).
pub fn listen_endpoint(text: &str) -> Result<Endpoint, ParseError> {
    match Endpoint::parse_listen(text)?.stream_only(text)? {
        Endpoint::Systemd(_) => Err(ParseError::new(
            text,
            "systemd: sockets are for netkit forward only",
        )),
        endpoint => Ok(endpoint),
    }
}

/// A port set: `N`, `N-M`, lists, `all`, `topN`.
pub fn ports(text: &str) -> Result<PortSet, PortError> {
    text.parse()
}

/// A whole number within `min..=max`, with a message naming the option's meaning.
pub fn number_in<T>(text: &str, min: T, max: T, what: &str) -> Result<T, ParseError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    match text.trim().parse::<T>() {
        Ok(value) if value >= min && value <= max => Ok(value),
        _ => Err(ParseError::new(
            text,
            format!("{what} must be a whole number from {min} to {max}"),
        )),
    }
}

/// ping `-c`: 1 or more probes.
pub fn count(text: &str) -> Result<u64, ParseError> {
    number_in(text, 1, 1_000_000_000, "count")
}

/// ping `-s`: ICMP data size; 65527 is the most an IPv6 packet can carry (65507 to an IPv4
/// host, refused when the targets are known). Below 16 bytes
/// the send time does not fit, and replies come without round-trip times (as iputils).
pub fn payload_size(text: &str) -> Result<usize, ParseError> {
    number_in(text, 0, netkit::icmp::engine::MAX_PAYLOAD, "packet size")
}

/// ping `-t`: time to live / hop limit; 0 is an IPv6 hop limit only (on-link neighbours, as
/// iputils sends it), refused for IPv4 hosts once the targets are known.
pub fn ttl(text: &str) -> Result<u8, ParseError> {
    number_in(text, 0, 255, "TTL")
}

/// Retries (scan's, forward's connects): 0 to 100.
pub fn retries(text: &str) -> Result<u32, ParseError> {
    number_in(text, 0, 100, "retries")
}

/// Packets or connections per second.
pub fn rate(text: &str) -> Result<u64, ParseError> {
    number_in(text, 1, 100_000_000, "rate")
}

/// Concurrency and connection caps: 1 or more.
pub fn positive_count(text: &str) -> Result<usize, ParseError> {
    number_in(text, 1, 1_000_000, "value")
}

/// `--top N`: a whole number; its range, 1 to the ranking's length (1000 for netkit's own),
/// is checked once `--top-source` is read, and said with the length of the ranking used.
pub fn top(text: &str) -> Result<usize, ParseError> {
    text.trim().parse().map_err(|_| {
        ParseError::new(
            text,
            "top must be a whole number of ports, from 1 to the length of the ranking (1000 \
             for netkit's own)",
        )
    })
}

/// `--allow CIDR` (an address alone is a /32 or /128).
pub fn cidr(text: &str) -> Result<netkit::IpNet, TargetError> {
    netkit::target::parse_net(text)
}

/// `--mode OCTAL`: Unix permission bits for a socket file.
pub fn mode(text: &str) -> Result<u32, ParseError> {
    match u32::from_str_radix(text.trim_start_matches("0o"), 8) {
        Ok(mode) if mode <= 0o777 => Ok(mode),
        _ => Err(ParseError::new(
            text,
            "mode must be octal permission bits from 000 to 777",
        )),
    }
}

/// `icmp`, `tcp:PORT`, `arp`, `ndp`, `timestamp` or `ack:PORT`.
pub fn method(text: &str) -> Result<Method, ParseError> {
    let port = |port: &str| {
        netkit::ports::parse_port(port).map_err(|e| ParseError::new(text, e.kind.to_string()))
    };
    match text {
        "icmp" => Ok(Method::Icmp),
        "arp" => Ok(Method::Arp),
        "ndp" => Ok(Method::Ndp),
        "timestamp" => Ok(Method::Timestamp),
        _ => match (text.strip_prefix("tcp:"), text.strip_prefix("ack:")) {
            (Some(p), _) => port(p).map(Method::Tcp),
            (_, Some(p)) => port(p).map(Method::Ack),
            _ => Err(ParseError::new(
                text,
                "expected icmp, tcp:PORT, arp, ndp, timestamp or ack:PORT",
            )),
        },
    }
}

/// `icmp,tcp:80,tcp:443`: one method or several, comma-separated (a host is alive when any
/// of them answers).
pub fn methods(text: &str) -> Result<netkit::sweep::Methods, ParseError> {
    let list = text
        .split(',')
        .map(|word| match word.trim() {
            "" => Err(ParseError::new(text, "an empty method in the list")),
            word => method(word),
        })
        .collect::<Result<Vec<_>, _>>()?;
    netkit::sweep::Methods::new(list).map_err(|e| ParseError::new(text, e.why))
}

/// `--proxy-protocol v1|v2`.
pub use netkit::forward::ProxyProtocol;

/// `v1` or `v2`.
pub fn proxy_protocol(text: &str) -> Result<ProxyProtocol, ParseError> {
    text.parse()
}

/// `--balance round-robin|least-conn|hash`.
pub fn balance(text: &str) -> Result<netkit::forward::Balance, ParseError> {
    text.parse()
}

/// `--check tcp|http:/PATH`.
pub fn check(text: &str) -> Result<netkit::forward::Check, ParseError> {
    text.parse()
}

/// `--rise N`, `--fall N`: 1 to 100 checks in a row.
pub fn checks_in_a_row(text: &str) -> Result<u32, ParseError> {
    number_in(text, 1, 100, "checks in a row")
}

/// `--http-host HOST|auto`.
pub fn http_host(text: &str) -> Result<netkit::forward::HttpHost, ParseError> {
    text.parse()
}

/// `--keepalive DUR|off`.
pub fn keepalive(text: &str) -> Result<netkit::forward::Keepalive, ParseError> {
    text.parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_reject_out_of_range_with_the_input() {
        assert_eq!(count("3"), Ok(3));
        assert_eq!(count("-1").unwrap_err().input, "-1");
        assert_eq!(count("0").unwrap_err().input, "0");
        assert_eq!(payload_size("70000").unwrap_err().input, "70000");
        assert_eq!(payload_size("56"), Ok(56));
        assert_eq!(
            ttl("0"),
            Ok(0),
            "an IPv6 hop limit (IPv4 refuses it once the targets are known)"
        );
        assert_eq!(ttl("256").unwrap_err().input, "256");
    }

    #[test]
    fn methods_and_modes() {
        assert_eq!(method("icmp"), Ok(Method::Icmp));
        assert_eq!(method("tcp:22"), Ok(Method::Tcp(22)));
        assert_eq!(method("arp"), Ok(Method::Arp));
        assert_eq!(method("ndp"), Ok(Method::Ndp));
        assert_eq!(method("timestamp"), Ok(Method::Timestamp));
        assert_eq!(method("ack:80"), Ok(Method::Ack(80)));
        assert!(method("ack:0").is_err() && method("ack:").is_err());
        assert!(method("tcp:0").is_err());
        assert!(method("udp:53").is_err());
        assert_eq!(
            methods("icmp, tcp:443").unwrap().to_string(),
            "icmp,tcp:443"
        );
        assert!(methods("icmp,").is_err());
        assert!(methods("icmp,udp:53").is_err());
        assert_eq!(mode("600"), Ok(0o600));
        assert_eq!(mode("0o755"), Ok(0o755));
        assert!(mode("800").is_err());
        assert!(mode("1777").is_err());
    }

    #[test]
    fn positive_durations() {
        let zero = positive_duration("0").unwrap_err();
        assert_eq!(zero.to_string(), "0: must be longer than zero");
        assert_eq!(positive_duration("1s"), Ok(Duration::from_secs(1)));
    }
}
