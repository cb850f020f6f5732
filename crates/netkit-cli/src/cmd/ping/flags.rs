//! ping's flags that take iputils' values (`-p PATTERN`, `-Q TOS`, `-M do|dont|want`,
//! `-I IFACE|ADDR`, `-F FLOWLABEL`), and iputils' flags that netkit does not take: each is
//! refused by name with what it means in iputils, so none can silently mean something else.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netkit::icmp::Pmtu;
use netkit::ParseError;

/// `-I`: an interface to send through, or a source address (an IPv6 one may name its
/// interface after `%`, as iputils takes `fe80::1%eth0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Send through this interface.
    Interface(String),
    /// Send from this address, through `device` when given.
    Address {
        /// The source address.
        addr: IpAddr,
        /// The interface after `%`.
        device: Option<String>,
    },
}

impl Source {
    /// The interface to bind to, if any.
    pub fn device(&self) -> Option<&str> {
        match self {
            Source::Interface(name) => Some(name),
            Source::Address { device, .. } => device.as_deref(),
        }
    }

    /// The source address, if one was given.
    pub fn addr(&self) -> Option<IpAddr> {
        match self {
            Source::Interface(_) => None,
            Source::Address { addr, .. } => Some(*addr),
        }
    }
}

/// Parses `-I`; an IPv4-mapped address is the IPv4 address it maps.
pub fn source(text: &str) -> Result<Source, ParseError> {
    if text.contains(':') {
        let (addr, device) = match text.split_once('%') {
            Some((addr, device)) => (addr, Some(device.to_string())),
            None => (text, None),
        };
        let addr: Ipv6Addr = addr
            .parse()
            .map_err(|_| ParseError::new(text, "not an IPv6 source address"))?;
        if device.is_none() && addr.is_unicast_link_local() {
            // Bound without an interface, the kernel refuses it ("invalid argument").
            let why = "a link-local source address needs its interface: add %IFACE (fe80::1%eth0)";
            return Err(ParseError::new(text, why));
        }
        return Ok(Source::Address {
            // A mapped address is the IPv4 one it maps (iputils: `from 127.0.0.1`).
            addr: netkit::target::unmapped(addr.into()),
            device,
        });
    }
    if let Ok(addr) = text.parse::<Ipv4Addr>() {
        return Ok(Source::Address {
            addr: addr.into(),
            device: None,
        });
    }
    let valid = !text.is_empty() && text.len() < 16 && !text.contains(['/', ' ']);
    match valid {
        true => Ok(Source::Interface(text.to_string())),
        false => Err(ParseError::new(text, "not an interface name or address")),
    }
}

/// `-p`: the bytes repeated over the request's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(pub Vec<u8>);

/// Parses `-p`: up to 16 bytes as hex digits, two per byte (an odd last digit is a byte of
/// its own, as iputils reads it).
pub fn pattern(text: &str) -> Result<Pattern, ParseError> {
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ParseError::new(
            text,
            "patterns must be specified as hex digits",
        ));
    }
    if text.len() > 32 {
        return Err(ParseError::new(
            text,
            "a pattern is at most 16 bytes (32 hex digits)",
        ));
    }
    let bytes = text.as_bytes().chunks(2).map(|pair| {
        let digits = std::str::from_utf8(pair).unwrap_or_default();
        u8::from_str_radix(digits, 16).unwrap_or_default()
    });
    Ok(Pattern(bytes.collect()))
}

/// Parses `-Q`: the TOS byte (traffic class for IPv6), decimal or `0x` hex, 0-255.
pub fn tos(text: &str) -> Result<u8, ParseError> {
    let value = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => text.parse::<u32>(),
    };
    let value = value.map_err(|_| ParseError::new(text, "bad TOS value"))?;
    u8::try_from(value)
        .map_err(|_| ParseError::new(text, "the decimal value of TOS bits must be in range 0-255"))
}

/// Parses `-M do|dont|want`.
pub fn pmtu(text: &str) -> Result<Pmtu, ParseError> {
    match text {
        "do" => Ok(Pmtu::Do),
        "dont" => Ok(Pmtu::Dont),
        "want" => Ok(Pmtu::Want),
        _ => Err(ParseError::new(text, "-M takes do, dont or want")),
    }
}

/// Parses `-F`: an IPv6 flow label of 20 bits, read as iputils reads it (`strtoul` of base 0:
/// decimal, `0x` hex, `0` octal).
pub fn flow_label(text: &str) -> Result<u32, ParseError> {
    let (digits, radix) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None if text.len() > 1 && text.starts_with('0') => (&text[1..], 8),
        None => (text.strip_prefix('-').unwrap_or(text), 10),
    };
    let valid = !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix));
    let value = valid
        .then(|| u64::from_str_radix(digits, radix).unwrap_or(u64::MAX))
        .ok_or_else(|| ParseError::new(text, "bad value for flowinfo"))?;
    match u32::try_from(value) {
        Ok(label) if label <= 0xf_ffff && !text.starts_with('-') => Ok(label),
        _ => Err(ParseError::new(
            text,
            "flow value is greater than 20 bits (0-1048575, or 0x0-0xfffff)",
        )),
    }
}

/// Parses `-l`: 1 to 65536 requests sent at once.
pub fn preload(text: &str) -> Result<u64, ParseError> {
    crate::parse::number_in(text, 1, 65536, "preload")
}

/// iputils' flags that netkit does not take; hidden from `--help`, refused by name.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Unsupported {
    #[arg(short = 'B', hide = true)]
    sticky_source: bool,
    #[arg(short = 'C', hide = true)]
    connect: bool,
    #[arg(short = 'd', hide = true)]
    so_debug: bool,
    #[arg(short = 'L', hide = true)]
    no_loopback: bool,
    #[arg(short = 'r', hide = true)]
    dont_route: bool,
    #[arg(short = 'R', hide = true)]
    record_route: bool,
    #[arg(short = 'e', hide = true, allow_hyphen_values = true)]
    ident: Option<String>,
    #[arg(short = 'm', hide = true, allow_hyphen_values = true)]
    mark: Option<String>,
    #[arg(short = 'N', hide = true, allow_hyphen_values = true)]
    node_info: Option<String>,
    #[arg(short = 'S', hide = true, allow_hyphen_values = true)]
    sndbuf: Option<String>,
    #[arg(short = 'T', hide = true, allow_hyphen_values = true)]
    timestamp: Option<String>,
}

impl Unsupported {
    /// The first of these flags given, refused with its iputils meaning.
    pub fn check(&self) -> Result<(), ParseError> {
        let given = [
            (self.sticky_source, "-B", "sticky source address"),
            (self.connect, "-C", "connect() on the socket"),
            (self.so_debug, "-d", "SO_DEBUG"),
            (self.no_loopback, "-L", "no multicast loopback"),
            (self.dont_route, "-r", "bypass the routing table"),
            (self.record_route, "-R", "record route"),
            (self.ident.is_some(), "-e", "echo identifier"),
            (self.mark.is_some(), "-m", "SO_MARK"),
            (
                self.node_info.is_some(),
                "-N",
                "IPv6 node information queries",
            ),
            (self.sndbuf.is_some(), "-S", "send buffer size"),
            (self.timestamp.is_some(), "-T", "IP timestamp option"),
        ];
        match given.into_iter().find(|(on, _, _)| *on) {
            Some((_, flag, meaning)) => Err(ParseError::new(
                flag,
                format!("iputils' {meaning}; netkit ping does not take this flag (see --help)"),
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_interfaces_or_addresses() {
        assert_eq!(source("lo"), Ok(Source::Interface("lo".into())));
        let v4 = source("127.0.0.1").unwrap();
        assert_eq!(v4.addr(), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(v4.device(), None);
        let v6 = source("fe80::1%veth0").unwrap();
        assert_eq!(v6.device(), Some("veth0"));
        assert!(source("fe80::zz").is_err());
        let bare = source("fe80::1").unwrap_err();
        assert!(bare.why.contains("needs its interface"), "{bare}");
        assert!(source("a/b").is_err());
        let mapped = source("::ffff:127.0.0.1").unwrap();
        assert_eq!(mapped.addr(), Some("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn patterns_read_like_iputils() {
        assert_eq!(pattern("ff"), Ok(Pattern(vec![0xff])));
        assert_eq!(pattern("abc"), Ok(Pattern(vec![0xab, 0x0c])));
        assert!(pattern("xyz").is_err());
        assert!(pattern(&"a".repeat(33)).is_err());
    }

    #[test]
    fn tos_is_decimal_or_hex_up_to_255() {
        assert_eq!(tos("16"), Ok(16));
        assert_eq!(tos("0x10"), Ok(16));
        assert!(tos("300").unwrap_err().why.contains("0-255"));
        assert!(tos("ab").is_err());
    }

    #[test]
    fn flow_labels_read_like_iputils() {
        assert_eq!(flow_label("12345"), Ok(12345));
        assert_eq!(flow_label("0x10"), Ok(16));
        assert_eq!(flow_label("010"), Ok(8));
        assert_eq!(flow_label("0"), Ok(0));
        assert_eq!(flow_label("1048575"), Ok(0xf_ffff));
        for big in ["1048576", "-1", "0x100000", "99999999999999999999999"] {
            assert!(
                flow_label(big).unwrap_err().why.contains("20 bits"),
                "{big}"
            );
        }
        for bad in ["zz", "", "0x", "08", "1.5"] {
            assert!(
                flow_label(bad).unwrap_err().why.contains("bad value"),
                "{bad}"
            );
        }
    }

    #[test]
    fn unsupported_flags_are_named() {
        let flags = Unsupported {
            record_route: true,
            ..Unsupported::default()
        };
        let err = flags.check().unwrap_err();
        assert_eq!(err.input, "-R");
        assert!(err.why.contains("record route"), "{err}");
        assert_eq!(Unsupported::default().check(), Ok(()));
    }
}
