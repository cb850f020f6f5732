//! Targets of `ping`, `sweep` and `scan`: addresses, host names, last-octet ranges
//! (`192.168.0.100-200`), full ranges (`10.0.0.5-10.0.1.20`, `2001:db8::1-2001:db8::ff`),
//! CIDR blocks (`198.18.0.0/24`, `2001:db8::/120`, every address included, as nmap does),
//! IPv6 addresses with a zone (`fe80::1%eth0`: the interface a link-local address is reached
//! through, kept as its index and carried to every socket address made for the target), comma
//! lists and `@FILE`. A [`TargetList`] is parsed without I/O (but for reading `@FILE`);
//! [`TargetList::resolve`] looks names up; [`Targets::iter`] then yields addresses lazily, so a
//! `/8` never becomes a 16M-element vector.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, ToSocketAddrs};
use std::sync::Arc;

use crate::shard::{Arrangement, Order};

use crate::error::Error;

/// A target failed to parse, or names an address of the family not asked for: `input: why`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {kind}", crate::text::clipped(.input))]
pub struct TargetError {
    /// The target expression (or `@FILE`) as given.
    pub input: String,
    /// What is wrong with it.
    pub kind: TargetErrorKind,
}

/// What is wrong with a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetErrorKind {
    /// No target at all was given.
    #[error("no targets given")]
    NoTargets,
    /// An address of the other family than the one asked for (`-4`, `-6`).
    #[error("not an {want} address, but only {want} was asked for")]
    WrongFamily {
        /// `IPv4` or `IPv6`.
        want: &'static str,
    },
    /// `@` without a file name.
    #[error("expected a file name after @")]
    MissingFileName,
    /// The `@FILE` cannot be read.
    #[error("cannot read: {0}")]
    Unreadable(String),
    /// An `@FILE` inside an `@FILE`.
    #[error("nested @FILE in {file} is not allowed")]
    NestedFile {
        /// The `@FILE` it was found in.
        file: String,
    },
    /// A block or range of more than 2^24 addresses without `force`.
    #[error("{count} addresses is more than 2^24; pass --force to take it")]
    TooLarge {
        /// How many addresses it holds.
        count: u128,
    },
    /// Neither an address nor a CIDR block (where only those are accepted, e.g. `--allow`).
    #[error("expected an address or a CIDR block like 198.18.0.0/15")]
    NotANet,
    /// `/PREFIX` without an address.
    #[error("missing address before the /prefix")]
    MissingAddress,
    /// `ADDR/PREFIX` whose address is none.
    #[error("invalid address in CIDR block, expected ADDR/PREFIX")]
    BadCidrAddress,
    /// A prefix length beyond the family's (32 or 128).
    #[error("prefix length must be 0-{max}")]
    BadPrefix {
        /// 32 or 128.
        max: u8,
    },
    /// `A-B` with B below A.
    #[error("inverted range: the end is below the start")]
    InvertedRange,
    /// An IPv4 range whose end is neither an address nor a last octet.
    #[error("expected a range like 192.168.0.100-200 or 10.0.0.5-10.0.1.20")]
    BadV4Range,
    /// An IPv6 range whose end is neither an address nor a last group.
    #[error("expected a range like 2001:db8::1-ff or 2001:db8::1-2001:db8::ff")]
    BadV6Range,
    /// An empty item.
    #[error("empty host")]
    EmptyHost,
    /// Something with colons that is no IPv6 address.
    #[error("invalid IPv6 address")]
    BadIpv6,
    /// Digits and dots that are no IPv4 address.
    #[error("invalid IPv4 address")]
    BadIpv4,
    /// None of the target forms.
    #[error("not an address, range, CIDR block or host name")]
    Unknown,
    /// `ADDR%ZONE` whose zone names no interface of this machine.
    #[error("no interface {0} for the zone")]
    UnknownZone(String),
    /// `ADDR%ZONE` whose address is no IPv6 address (only IPv6 has zones).
    #[error("a zone (%INTERFACE) follows an IPv6 address only")]
    ZoneWithoutIpv6,
    /// A zone on an address that is neither link-local nor link-scoped multicast: the kernel
    /// would ignore it (iputils and fping refuse it too).
    #[error("a zone (%INTERFACE) is for link-local addresses only (fe80::/10, ff02::/16)")]
    ZoneNotLinkLocal,
    /// A zone on a block or range (`fe80::/120%eth0`), which only single addresses take.
    #[error("a zone (%INTERFACE) follows a single IPv6 address, not a block or range")]
    ZoneOnBlock,
}

impl TargetError {
    fn new(input: impl Into<String>, kind: TargetErrorKind) -> TargetError {
        TargetError {
            input: input.into(),
            kind,
        }
    }
}

/// Ranges and blocks larger than this many addresses need `force`.
pub const MAX_UNFORCED_BLOCK: u128 = 1 << 24;

/// Which address families to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    /// IPv4 and IPv6.
    #[default]
    Any,
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

impl Family {
    /// Whether `addr` belongs to this family.
    pub fn admits(self, addr: &IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => addr.is_ipv4(),
            Family::V6 => addr.is_ipv6(),
        }
    }
}

/// One parsed target expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetExpr {
    /// A literal address.
    Addr(IpAddr),
    /// An IPv6 address with its zone: the index of the interface it is reached through.
    Zoned(Ipv6Addr, u32),
    /// A host name, to be resolved.
    Name(String),
    /// An inclusive range of addresses (from a range or a CIDR block).
    Range(AddrRange),
}

/// An inclusive, non-empty range of addresses of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrRange {
    /// IPv4 addresses `start..=end` as integers.
    V4 {
        /// First address.
        start: u32,
        /// Last address.
        end: u32,
    },
    /// IPv6 addresses `start..=end` as integers.
    V6 {
        /// First address.
        start: u128,
        /// Last address.
        end: u128,
    },
}

impl AddrRange {
    /// How many addresses the range holds.
    pub fn len(&self) -> u128 {
        match *self {
            AddrRange::V4 { start, end } => u128::from(end - start) + 1,
            AddrRange::V6 { start, end } => (end - start).saturating_add(1),
        }
    }

    /// Never true: a range holds at least one address.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `i`-th address of the range (`i < len()`).
    pub fn nth(&self, i: u128) -> IpAddr {
        match *self {
            AddrRange::V4 { start, .. } => IpAddr::V4(Ipv4Addr::from(start + i as u32)),
            AddrRange::V6 { start, .. } => IpAddr::V6(Ipv6Addr::from(start + i)),
        }
    }
}

impl TargetExpr {
    /// How many addresses this expression stands for (a name counts as one).
    pub fn len(&self) -> u128 {
        match self {
            TargetExpr::Addr(_) | TargetExpr::Zoned(..) | TargetExpr::Name(_) => 1,
            TargetExpr::Range(range) => range.len(),
        }
    }

    /// Never true.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Target expressions as the user gave them, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetList {
    exprs: Vec<TargetExpr>,
}

impl TargetList {
    /// Parses command-line words; each may hold several expressions separated by commas.
    /// `force` lifts the 2^24-address limit on one block.
    pub fn parse<S: AsRef<str>>(words: &[S], force: bool) -> Result<Self, TargetError> {
        let mut exprs = Vec::new();
        for word in words {
            for item in split_items(word.as_ref()) {
                match item.strip_prefix('@') {
                    Some(path) => exprs.extend(read_target_file(path, force)?),
                    None => exprs.push(parse_expr(item, force)?),
                }
            }
        }
        if exprs.is_empty() {
            return Err(TargetError::new("", TargetErrorKind::NoTargets));
        }
        Ok(TargetList { exprs })
    }

    /// The parsed expressions.
    pub fn exprs(&self) -> &[TargetExpr] {
        &self.exprs
    }

    /// The same list with its IPv4-mapped addresses and blocks (`::ffff:198.18.0.0/120`) as
    /// the IPv4 ones they map, which is how they go on the wire ([`mapped`]); a range only
    /// partly mapped is bad input.
    pub fn mapped_as_ipv4(self) -> Result<Self, crate::ParseError> {
        let exprs = self
            .exprs
            .into_iter()
            .map(mapped::expr_as_ipv4)
            .collect::<Result<_, _>>()?;
        Ok(TargetList { exprs })
    }

    /// How many addresses the list stands for.
    pub fn len(&self) -> u128 {
        self.exprs
            .iter()
            .map(TargetExpr::len)
            .fold(0, u128::saturating_add)
    }

    /// Never true for a parsed list.
    pub fn is_empty(&self) -> bool {
        self.exprs.is_empty()
    }

    /// Resolves host names (the first address of `family`), keeping everything else lazy.
    /// Addresses and ranges of another family than `family` are an input error.
    pub fn resolve(&self, family: Family) -> Result<Targets, Error> {
        let parts = self.exprs.iter().map(|e| part(e, family));
        Ok(Targets {
            parts: Arc::new(parts.collect::<Result<_, _>>()?),
            order: None,
        })
    }

    /// Like [`TargetList::resolve`], but a name that does not resolve is left out and its
    /// error returned beside the targets (fping goes on with the other hosts).
    pub fn resolve_lenient(&self, family: Family) -> Result<(Targets, Vec<Error>), Error> {
        let mut parts = Vec::with_capacity(self.exprs.len());
        let mut unresolved = Vec::new();
        for expr in &self.exprs {
            match part(expr, family) {
                Ok(part) => parts.push(part),
                Err(err @ Error::Resolve { .. }) => unresolved.push(err),
                Err(err) => return Err(err),
            }
        }
        let targets = Targets {
            parts: Arc::new(parts),
            order: None,
        };
        Ok((targets, unresolved))
    }
}

fn part(expr: &TargetExpr, family: Family) -> Result<Part, Error> {
    Ok(match expr {
        TargetExpr::Name(name) => Part::Single {
            name: Some(Arc::from(name.as_str())),
            addr: resolve_name(name, family)?,
            zone: 0,
        },
        TargetExpr::Addr(addr) => {
            check_family(&addr.to_string(), addr, family)?;
            Part::Single {
                name: None,
                addr: *addr,
                zone: 0,
            }
        }
        TargetExpr::Zoned(addr, zone) => {
            let addr = IpAddr::V6(*addr);
            check_family(&addr.to_string(), &addr, family)?;
            Part::Single {
                name: None,
                addr,
                zone: *zone,
            }
        }
        TargetExpr::Range(range) => {
            check_family(&format!("{}", range.nth(0)), &range.nth(0), family)?;
            Part::Range(*range)
        }
    })
}

fn check_family(text: &str, addr: &IpAddr, family: Family) -> Result<(), TargetError> {
    if family.admits(addr) {
        return Ok(());
    }
    let want = if family == Family::V4 { "IPv4" } else { "IPv6" };
    Err(TargetError::new(
        text,
        TargetErrorKind::WrongFamily { want },
    ))
}

/// Resolves `name` to its first address of `family`; a short IPv4 form (`127.1`) is read
/// as `inet_aton` reads it.
pub fn resolve_name(name: &str, family: Family) -> Result<IpAddr, Error> {
    // A short IPv4 form (`127.1`), as the resolver would read it, without asking it.
    if let Some(addr) = crate::ipv4::parse(name) {
        return Some(IpAddr::V4(addr))
            .filter(|ip| family.admits(ip))
            .ok_or_else(|| Error::Resolve {
                host: name.to_string(),
                why: "no address of the requested family".to_string(),
            });
    }
    let addrs = (name, 0).to_socket_addrs().map_err(|e| Error::Resolve {
        host: name.to_string(),
        why: crate::error::describe_io(&e),
    })?;
    addrs
        .map(|sa| sa.ip())
        .find(|ip| family.admits(ip))
        .ok_or_else(|| Error::Resolve {
            host: name.to_string(),
            why: "no address of the requested family".to_string(),
        })
}

/// One target: an address, and the name it came from, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host name given by the user, for names.
    pub name: Option<Arc<str>>,
    /// The address to probe.
    pub addr: IpAddr,
    /// The IPv6 zone given with the address (`fe80::1%eth0`): the index of the interface it
    /// is reached through; 0 when none was given.
    pub zone: u32,
}

impl Target {
    /// A target for `addr`, without name or zone.
    pub fn addr(addr: IpAddr) -> Target {
        Target {
            name: None,
            addr,
            zone: 0,
        }
    }

    /// The socket address of `port` on this target, carrying its zone: what every socket
    /// sending to the target must be given, or a link-local address is reached through no
    /// interface (or the wrong one).
    pub fn socket_addr(&self, port: u16) -> SocketAddr {
        zoned(self.addr, port, self.zone)
    }

    /// The name if there is one, else the address, for display.
    pub fn host(&self) -> String {
        match &self.name {
            Some(name) => name.to_string(),
            None => self.addr.to_string(),
        }
    }

    /// The name if there is one, else the address with its zone (`fe80::1%eth0`): how
    /// iputils and fping name a target given with a zone (nmap shows the bare address).
    pub fn shown(&self) -> String {
        match &self.name {
            Some(name) => name.to_string(),
            None => show_zoned(self.addr, self.zone),
        }
    }
}

/// `addr` with `%INTERFACE` for a `zone` (its index; the index itself when no interface has
/// it now), as iputils and fping print a link-local target; the bare address for zone 0.
pub fn show_zoned(addr: IpAddr, zone: u32) -> String {
    if zone == 0 {
        return addr.to_string();
    }
    match zone_name(zone) {
        Some(name) => format!("{addr}%{name}"),
        None => addr.to_string(),
    }
}

/// How a zone is shown in records: its interface's name (the index as text when no interface
/// has it now); `None` for zone 0, no zone.
pub fn zone_name(zone: u32) -> Option<String> {
    (zone != 0).then(|| interface_name(zone).unwrap_or_else(|| zone.to_string()))
}

/// The index of the interface called `name`, `None` when there is none: the zone a name
/// gives.
pub fn interface_index(name: &str) -> Option<u32> {
    nix::net::if_::if_nametoindex(name)
        .ok()
        .filter(|&index| index != 0)
}

/// The name of interface `index`, `None` when no interface has it. (nix 0.32's
/// `if_indextoname` takes the C function's null for a name, an empty one: checked here.)
fn interface_name(index: u32) -> Option<String> {
    let name = nix::net::if_::if_indextoname(index).ok()?;
    let name = name.to_string_lossy();
    (!name.is_empty()).then(|| name.into_owned())
}

/// `addr` port `port` in `zone` (IPv6 only; 0 for none).
pub fn zoned(addr: IpAddr, port: u16, zone: u32) -> SocketAddr {
    match addr {
        IpAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(v6, port, 0, zone)),
        IpAddr::V4(_) => SocketAddr::new(addr, port),
    }
}

#[derive(Debug)]
enum Part {
    Single {
        name: Option<Arc<str>>,
        addr: IpAddr,
        zone: u32,
    },
    Range(AddrRange),
}

impl Part {
    fn len(&self) -> u128 {
        match self {
            Part::Single { .. } => 1,
            Part::Range(range) => range.len(),
        }
    }
}

/// Resolved targets: cheap to clone, iterated lazily.
#[derive(Debug, Clone)]
pub struct Targets {
    parts: Arc<Vec<Part>>,
    /// `--shard`/`--randomize`: which positions of `parts`, in which order (`None`: all, as
    /// given).
    order: Option<Arc<Order>>,
}

impl Targets {
    /// Whether an address is given more than once (twice by itself, or in overlapping blocks):
    /// it is then scanned once for each time it is given, as nmap does. Found from the parts
    /// (sorted by family and start, an overlap is between neighbours), not the addresses.
    pub fn repeats_an_address(&self) -> bool {
        let mut spans: Vec<(bool, u128, u128)> = self
            .parts
            .iter()
            .map(|part| match part {
                Part::Single { addr, .. } => match addr {
                    IpAddr::V4(v4) => (
                        false,
                        u128::from(u32::from(*v4)),
                        u128::from(u32::from(*v4)),
                    ),
                    IpAddr::V6(v6) => (true, u128::from(*v6), u128::from(*v6)),
                },
                Part::Range(AddrRange::V4 { start, end }) => {
                    (false, u128::from(*start), u128::from(*end))
                }
                Part::Range(AddrRange::V6 { start, end }) => (true, *start, *end),
            })
            .collect();
        spans.sort_unstable();
        spans
            .windows(2)
            .any(|pair| pair[0].0 == pair[1].0 && pair[1].1 <= pair[0].2)
    }

    /// Exactly `list`, in its order (the hosts a discovery found up, say).
    pub fn from_list(list: impl IntoIterator<Item = Target>) -> Targets {
        let parts = list
            .into_iter()
            .map(|t| Part::Single {
                name: t.name,
                addr: t.addr,
                zone: t.zone,
            })
            .collect();
        Targets {
            parts: Arc::new(parts),
            order: None,
        }
    }

    /// These targets in the order and share `arrangement` says (issue 16: `--shard K/N`,
    /// `--seed`, `--randomize`); positions, [`Targets::get`] and [`Targets::iter`] follow it.
    pub fn arranged(self, arrangement: &Arrangement) -> Targets {
        if arrangement.is_identity() {
            return self;
        }
        let order = Order::new(self.whole_len(), arrangement);
        Targets {
            parts: self.parts,
            order: Some(Arc::new(order)),
        }
    }

    /// How many addresses will be produced (repeats are kept, as given).
    pub fn len(&self) -> u128 {
        match &self.order {
            Some(order) => order.len(),
            None => self.whole_len(),
        }
    }

    fn whole_len(&self) -> u128 {
        self.parts
            .iter()
            .map(Part::len)
            .fold(0, u128::saturating_add)
    }

    /// Whether there is nothing to probe.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The target at position `index` (as [`Targets::iter`] would yield it), found in time
    /// proportional to the number of expressions, not of addresses.
    pub fn get(&self, index: u128) -> Option<Target> {
        match &self.order {
            Some(order) => self.get_unordered(order.nth(index)?),
            None => self.get_unordered(index),
        }
    }

    fn get_unordered(&self, index: u128) -> Option<Target> {
        let mut offset = index;
        for part in self.parts.iter() {
            if offset < part.len() {
                return Some(match part {
                    Part::Single { name, addr, zone } => Target {
                        name: name.clone(),
                        addr: *addr,
                        zone: *zone,
                    },
                    Part::Range(range) => Target::addr(range.nth(offset)),
                });
            }
            offset -= part.len();
        }
        None
    }

    /// The targets given with a zone, each address shown with it ([`show_zoned`]): what
    /// output that names targets as fping does prints for them.
    pub fn zoned_names(&self) -> HashMap<IpAddr, String> {
        let zoned = |part: &Part| match part {
            Part::Single { addr, zone, .. } if *zone != 0 => {
                Some((*addr, show_zoned(*addr, *zone)))
            }
            _ => None,
        };
        self.parts.iter().filter_map(zoned).collect()
    }

    /// The first single target (an address or a name, not a range) that means something
    /// only with its interface ([`takes_zone`]) and was given none: a socket connecting to it
    /// is refused with a bare "invalid argument".
    pub fn unzoned_link_local(&self) -> Option<Target> {
        self.parts.iter().find_map(|part| match part {
            Part::Single {
                name,
                addr: IpAddr::V6(v6),
                zone: 0,
            } if takes_zone(*v6) => Some(Target {
                name: name.clone(),
                addr: IpAddr::V6(*v6),
                zone: 0,
            }),
            _ => None,
        })
    }

    /// Whether any target was given with a zone (`fe80::1%eth0`).
    pub fn has_zones(&self) -> bool {
        let zoned = |part: &Part| matches!(part, Part::Single { zone, .. } if *zone != 0);
        self.parts.iter().any(zoned)
    }

    /// The address families present: [`Family::V4`], [`Family::V6`] or both ([`Family::Any`]).
    pub fn families(&self) -> Family {
        let first = |part: &Part| match part {
            Part::Single { addr, .. } => addr.is_ipv4(),
            Part::Range(range) => range.nth(0).is_ipv4(),
        };
        let v4 = self.parts.iter().any(first);
        let v6 = self.parts.iter().any(|p| !first(p));
        match (v4, v6) {
            (true, false) => Family::V4,
            (false, true) => Family::V6,
            _ => Family::Any,
        }
    }

    /// A lazy iterator over every target address, in order.
    pub fn iter(&self) -> TargetIter {
        TargetIter {
            parts: Arc::clone(&self.parts),
            part: 0,
            offset: 0,
            left: self.len(),
            arranged: self.order.as_ref().map(|_| (self.clone(), 0)),
        }
    }
}

/// Iterator over [`Targets`]; produces each address on demand.
#[derive(Debug, Clone)]
pub struct TargetIter {
    parts: Arc<Vec<Part>>,
    part: usize,
    offset: u128,
    left: u128,
    /// Arranged targets are produced by position through their order.
    arranged: Option<(Targets, u128)>,
}

impl Iterator for TargetIter {
    type Item = Target;

    fn next(&mut self) -> Option<Target> {
        if let Some((targets, next)) = &mut self.arranged {
            let target = targets.get(*next)?;
            *next += 1;
            self.left = self.left.saturating_sub(1);
            return Some(target);
        }
        let part = self.parts.get(self.part)?;
        let target = match part {
            Part::Single { name, addr, zone } => Target {
                name: name.clone(),
                addr: *addr,
                zone: *zone,
            },
            Part::Range(range) => Target::addr(range.nth(self.offset)),
        };
        self.offset += 1;
        self.left = self.left.saturating_sub(1);
        if self.offset >= part.len() {
            self.part += 1;
            self.offset = 0;
        }
        Some(target)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match usize::try_from(self.left) {
            Ok(left) => (left, Some(left)),
            Err(_) => (usize::MAX, None),
        }
    }
}

fn split_items(word: &str) -> impl Iterator<Item = &str> {
    word.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

fn read_target_file(path: &str, force: bool) -> Result<Vec<TargetExpr>, TargetError> {
    let label = format!("@{path}");
    if path.is_empty() {
        return Err(TargetError::new(label, TargetErrorKind::MissingFileName));
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        let why = crate::error::describe_io(&e);
        TargetError::new(&label, TargetErrorKind::Unreadable(why))
    })?;
    let mut exprs = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        for item in split_items(line) {
            if item.starts_with('@') {
                let file = label.clone();
                return Err(TargetError::new(item, TargetErrorKind::NestedFile { file }));
            }
            exprs.push(parse_expr(item, force)?);
        }
    }
    Ok(exprs)
}

/// Parses one target expression (no commas, no `@FILE`).
pub fn parse_expr(text: &str, force: bool) -> Result<TargetExpr, TargetError> {
    if let Some((addr, zone)) = text.split_once('%') {
        if addr.contains(['/', '-']) || zone.contains('/') {
            return Err(TargetError::new(text, TargetErrorKind::ZoneOnBlock));
        }
    }
    let expr = if let Some((addr, prefix)) = text.split_once('/') {
        TargetExpr::Range(parse_cidr(text, addr, prefix)?)
    } else if let Ok(addr) = text.parse::<IpAddr>() {
        TargetExpr::Addr(addr)
    } else if let Some((addr, zone)) = text.split_once('%') {
        parse_zoned(text, addr, zone)?
    } else if let Some(range) = parse_range(text)? {
        TargetExpr::Range(range)
    } else {
        TargetExpr::Name(parse_host_name(text)?)
    };
    if !force && expr.len() > MAX_UNFORCED_BLOCK {
        let count = expr.len();
        return Err(TargetError::new(text, TargetErrorKind::TooLarge { count }));
    }
    Ok(expr)
}

/// Parses `ADDR/PREFIX` into a network (host bits cleared); a bare address is a /32 or /128.
pub fn parse_net(text: &str) -> Result<ipnet::IpNet, TargetError> {
    match text.split_once('/') {
        Some((addr, prefix)) => cidr_net(text, addr, prefix),
        None => text
            .parse::<IpAddr>()
            .map(ipnet::IpNet::from)
            .map_err(|_| TargetError::new(text, TargetErrorKind::NotANet)),
    }
}

fn parse_cidr(text: &str, addr: &str, prefix: &str) -> Result<AddrRange, TargetError> {
    Ok(match cidr_net(text, addr, prefix)? {
        ipnet::IpNet::V4(n) => AddrRange::V4 {
            start: n.network().into(),
            end: n.broadcast().into(),
        },
        ipnet::IpNet::V6(n) => AddrRange::V6 {
            start: n.network().into(),
            end: n.broadcast().into(),
        },
    })
}

fn cidr_net(text: &str, addr: &str, prefix: &str) -> Result<ipnet::IpNet, TargetError> {
    if addr.is_empty() {
        return Err(TargetError::new(text, TargetErrorKind::MissingAddress));
    }
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| TargetError::new(text, TargetErrorKind::BadCidrAddress))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits: u8 = prefix
        .parse()
        .ok()
        .filter(|bits| *bits <= max)
        .ok_or_else(|| TargetError::new(text, TargetErrorKind::BadPrefix { max }))?;
    let net = ipnet::IpNet::new(ip, bits)
        .map_err(|_| TargetError::new(text, TargetErrorKind::BadPrefix { max }))?;
    Ok(net.trunc())
}

/// `A-B` where A is an address and B an address of the same family, a last octet (IPv4) or a
/// last group in hex (IPv6). Returns `None` when A is not an address (then it is a name).
fn parse_range(text: &str) -> Result<Option<AddrRange>, TargetError> {
    let Some((first, last)) = text.split_once('-') else {
        return Ok(None);
    };
    let Ok(first) = first.parse::<IpAddr>() else {
        return Ok(None);
    };
    let range = match first {
        IpAddr::V4(start) => {
            let end = match last.parse::<Ipv4Addr>() {
                Ok(end) => end,
                Err(_) => with_last_octet(text, start, last)?,
            };
            ordered(text, u32::from(start), u32::from(end))
                .map(|(start, end)| AddrRange::V4 { start, end })?
        }
        IpAddr::V6(start) => {
            let end = match last.parse::<Ipv6Addr>() {
                Ok(end) => end,
                Err(_) => with_last_group(text, start, last)?,
            };
            ordered(text, u128::from(start), u128::from(end))
                .map(|(start, end)| AddrRange::V6 { start, end })?
        }
    };
    Ok(Some(range))
}

fn ordered<T: PartialOrd>(text: &str, start: T, end: T) -> Result<(T, T), TargetError> {
    if start > end {
        return Err(TargetError::new(text, TargetErrorKind::InvertedRange));
    }
    Ok((start, end))
}

fn with_last_octet(text: &str, start: Ipv4Addr, last: &str) -> Result<Ipv4Addr, TargetError> {
    let octet: u8 = last
        .parse()
        .map_err(|_| TargetError::new(text, TargetErrorKind::BadV4Range))?;
    let [a, b, c, _] = start.octets();
    Ok(Ipv4Addr::new(a, b, c, octet))
}

fn with_last_group(text: &str, start: Ipv6Addr, last: &str) -> Result<Ipv6Addr, TargetError> {
    let group = u16::from_str_radix(last, 16)
        .ok()
        .filter(|_| !last.is_empty() && last.len() <= 4);
    let group = group.ok_or_else(|| TargetError::new(text, TargetErrorKind::BadV6Range))?;
    let mut segments = start.segments();
    segments[7] = group;
    Ok(Ipv6Addr::from(segments))
}

/// `ADDR%ZONE`: an IPv6 address and an interface, by name or index (as `ping` and nmap take
/// them); the interface must exist.
fn parse_zoned(text: &str, addr: &str, zone: &str) -> Result<TargetExpr, TargetError> {
    let (addr, index) = zoned_addr(text, addr, zone)?;
    if !takes_zone(addr) {
        return Err(TargetError::new(text, TargetErrorKind::ZoneNotLinkLocal));
    }
    Ok(TargetExpr::Zoned(addr, index))
}

/// Whether an address means something only with its interface: link-local unicast
/// (`fe80::/10`), interface- and link-local multicast (`ff01::/16`, `ff02::/16`).
pub fn takes_zone(addr: Ipv6Addr) -> bool {
    let multicast_scope = addr.is_multicast().then(|| addr.segments()[0] & 0x000f);
    addr.is_unicast_link_local() || matches!(multicast_scope, Some(1 | 2))
}

/// The address and interface index of `ADDR%ZONE` (`text`, named in errors): the one parser
/// of zones, for targets and endpoints (`[fe80::1%eth0]:80`) alike.
pub(crate) fn zoned_addr(
    text: &str,
    addr: &str,
    zone: &str,
) -> Result<(Ipv6Addr, u32), TargetError> {
    let addr: Ipv6Addr = match addr.parse::<IpAddr>() {
        Ok(IpAddr::V6(addr)) => addr,
        Ok(IpAddr::V4(_)) => return Err(TargetError::new(text, TargetErrorKind::ZoneWithoutIpv6)),
        Err(_) => return Err(TargetError::new(text, TargetErrorKind::BadIpv6)),
    };
    let unknown = || TargetError::new(text, TargetErrorKind::UnknownZone(zone.to_string()));
    // An index must name an interface as a name must (iputils and fping send to `%99` and
    // count it lost, a typo taken for silence).
    let index = match zone.parse::<u32>() {
        Ok(index) => index,
        Err(_) => interface_index(zone).ok_or_else(unknown)?,
    };
    match index {
        0 => Err(unknown()),
        index if interface_name(index).is_none() => Err(unknown()),
        index => Ok((addr, index)),
    }
}

fn parse_host_name(text: &str) -> Result<String, TargetError> {
    if text.is_empty() {
        return Err(TargetError::new(text, TargetErrorKind::EmptyHost));
    }
    if text.contains(':') {
        return Err(TargetError::new(text, TargetErrorKind::BadIpv6));
    }
    // A short IPv4 form (`127.1`) is a name that resolves without a lookup ([`resolve_name`]),
    // shown as given, as iputils, fping and nmap show it; digits that are no address in any
    // form are refused rather than sent to the resolver.
    if crate::ipv4::looks_numeric(text) {
        return match crate::ipv4::parse(text) {
            Some(_) => Ok(text.to_string()),
            None => Err(TargetError::new(text, TargetErrorKind::BadIpv4)),
        };
    }
    if !is_host_name(text) {
        return Err(TargetError::new(text, TargetErrorKind::Unknown));
    }
    Ok(text.to_string())
}

/// Whether `text` is a syntactically valid DNS host name (letters, digits, `-`, `_`, dots).
pub fn is_host_name(text: &str) -> bool {
    let text = text.strip_suffix('.').unwrap_or(text);
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

#[path = "target_mapped.rs"]
pub mod mapped;
pub use mapped::unmapped;

#[cfg(test)]
#[path = "target_tests.rs"]
mod tests;
