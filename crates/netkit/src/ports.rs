//! Port sets: `N`, `N-M`, `N-`, comma lists of these, `all` (1-65535) and `topN` (the N most
//! frequently open TCP ports, by real-world frequency: netkit's ranking, [`top`]).

pub mod top;

use std::str::FromStr;

/// A port set or port number failed to parse: `input: why`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {kind}", crate::text::clipped(.input))]
pub struct PortError {
    /// The text that failed (the item of a list that failed, for lists).
    pub input: String,
    /// What is wrong with it.
    pub kind: PortErrorKind,
}

/// What is wrong with a port or port set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PortErrorKind {
    /// A comma list has an empty item (`80,`).
    #[error("empty item in port list")]
    EmptyItem,
    /// `top` is not followed by a number.
    #[error("expected topN, e.g. top100")]
    BadTop,
    /// `topN` asks for more ports than the ranked list has (or none).
    #[error("the top-ports list has 1 to {max} entries")]
    TopOutOfRange {
        /// The length of the ranked list.
        max: usize,
    },
    /// Not a number.
    #[error("not a port number, expected 1-65535")]
    NotANumber,
    /// A number outside 1-65535.
    #[error("port must be between 1 and 65535")]
    OutOfRange,
    /// A range whose low end is above its high end.
    #[error("inverted port range, expected LOW-HIGH")]
    Inverted,
}

impl PortError {
    fn new(input: impl Into<String>, kind: PortErrorKind) -> PortError {
        PortError {
            input: input.into(),
            kind,
        }
    }
}

/// An ordered set of TCP/UDP ports without duplicates; order is the order given (and, for
/// `topN`, rank order), which is the order a scanner probes them in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSet {
    ports: Vec<u16>,
}

impl PortSet {
    /// Every port, 1 to 65535.
    pub fn all() -> Self {
        PortSet {
            ports: (1..=u16::MAX).collect(),
        }
    }

    /// The `n` most frequently open TCP ports, most frequent first.
    pub fn top(n: usize) -> Result<Self, PortError> {
        let ranked = top::top_ports();
        if n == 0 || n > ranked.len() {
            let max = ranked.len();
            return Err(PortError::new(
                format!("top{n}"),
                PortErrorKind::TopOutOfRange { max },
            ));
        }
        Ok(PortSet {
            ports: ranked[..n].to_vec(),
        })
    }

    /// Builds a set from ports in order, dropping repeats.
    pub fn from_ports(ports: impl IntoIterator<Item = u16>) -> Self {
        // One flag per port: `all` puts 65535 ports through here, and hashing (and rehashing)
        // each into a HashSet dominated the parse_ports fuzz target (270 runs/s, now ~3300).
        let mut seen = vec![false; 1 << 16];
        let ports = ports
            .into_iter()
            .filter(|p| *p != 0 && !std::mem::replace(&mut seen[usize::from(*p)], true))
            .collect();
        PortSet { ports }
    }

    /// These ports in the order and share `arrangement` says (a scan's `--shard` when it has
    /// fewer targets than shards: each shard probes every target on its share of the ports).
    pub fn arranged(self, arrangement: &crate::shard::Arrangement) -> PortSet {
        if arrangement.is_identity() {
            return self;
        }
        let order = crate::shard::Order::new(self.ports.len() as u128, arrangement);
        let ports = (0..order.len())
            .filter_map(|i| order.nth(i))
            .filter_map(|at| usize::try_from(at).ok())
            .map(|at| self.ports[at])
            .collect();
        PortSet { ports }
    }

    /// The ports, in probe order.
    pub fn as_slice(&self) -> &[u16] {
        &self.ports
    }

    /// How many ports the set holds.
    pub fn len(&self) -> usize {
        self.ports.len()
    }

    /// Whether the set is empty (never true for a parsed set).
    pub fn is_empty(&self) -> bool {
        self.ports.is_empty()
    }
}

impl FromStr for PortSet {
    type Err = PortError;

    /// Parses `22`, `1-1024`, `8000-`, `-` (all), `all`, `top100`, and comma lists of these.
    fn from_str(input: &str) -> Result<Self, PortError> {
        let mut ports = Vec::new();
        for item in input.split(',').map(str::trim) {
            if item.is_empty() {
                return Err(PortError::new(input, PortErrorKind::EmptyItem));
            }
            ports.extend(parse_item(item)?);
        }
        Ok(PortSet::from_ports(ports))
    }
}

fn parse_item(item: &str) -> Result<Vec<u16>, PortError> {
    if item.eq_ignore_ascii_case("all") || item == "-" {
        return Ok(PortSet::all().ports);
    }
    if let Some(n) = item.strip_prefix("top") {
        let n: usize = n
            .parse()
            .map_err(|_| PortError::new(item, PortErrorKind::BadTop))?;
        return Ok(PortSet::top(n)?.ports);
    }
    match item.split_once('-') {
        None => Ok(vec![parse_port(item)?]),
        Some((lo, hi)) => {
            let bound = |text: &str, default: u16| match text {
                "" => Ok(default),
                _ => parse_port(text).map_err(|e| PortError::new(item, e.kind)),
            };
            let (lo, hi) = (bound(lo, 1)?, bound(hi, u16::MAX)?);
            if lo > hi {
                return Err(PortError::new(item, PortErrorKind::Inverted));
            }
            Ok((lo..=hi).collect())
        }
    }
}

/// Parses one port number, 1 to 65535.
pub fn parse_port(text: &str) -> Result<u16, PortError> {
    let value: u64 = text
        .trim()
        .parse()
        .map_err(|_| PortError::new(text, PortErrorKind::NotANumber))?;
    match u16::try_from(value) {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(PortError::new(text, PortErrorKind::OutOfRange)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn parse(text: &str) -> Vec<u16> {
        text.parse::<PortSet>().expect(text).ports
    }

    #[test]
    fn shards_of_the_ports_are_disjoint_and_cover_them() {
        use crate::shard::Arrangement;
        let ports = PortSet::from_ports(1..=1000);
        for shuffle in [false, true] {
            let mut seen = Vec::new();
            for k in 1..=3 {
                let arrangement = Arrangement {
                    shard: Some((k, 3)),
                    seed: 9,
                    shuffle,
                };
                let share = ports.clone().arranged(&arrangement).ports;
                assert!((333..=334).contains(&share.len()), "{k}: {}", share.len());
                seen.extend(share);
            }
            seen.sort_unstable();
            assert_eq!(seen, ports.ports, "shuffle {shuffle}");
        }
    }

    #[test]
    fn single_ranges_and_lists() {
        assert_eq!(parse("22"), vec![22]);
        assert_eq!(parse("1-3"), vec![1, 2, 3]);
        assert_eq!(parse("80,443,8000-8002"), vec![80, 443, 8000, 8001, 8002]);
        assert_eq!(parse("65534-"), vec![65534, 65535]);
        assert_eq!(parse("-3"), vec![1, 2, 3]);
        assert_eq!(parse("5,3,5,4"), vec![5, 3, 4]);
        assert_eq!(parse(" 22 , 80 "), vec![22, 80]);
    }

    #[test]
    fn all_and_dash_cover_every_port() {
        for text in ["all", "ALL", "-"] {
            let set = parse(text);
            assert_eq!(set.len(), 65535);
            assert_eq!(set[0], 1);
            assert_eq!(set[65534], 65535);
        }
    }

    #[test]
    fn top_lists_are_ranked_not_numeric() {
        let top = parse("top10");
        assert_eq!(top.len(), 10);
        assert!(top.contains(&80) && top.contains(&443) && top.contains(&22));
        assert_ne!(top, (1..=10).collect::<Vec<u16>>());
        assert_eq!(parse("top1000").len(), 1000);
        assert_eq!(&parse("top100")[..10], &top[..]);
    }

    #[test]
    fn errors_name_the_input_and_what_is_wrong() {
        use PortErrorKind::*;
        let top = TopOutOfRange {
            max: top::top_ports().len(),
        };
        for (text, bad, kind) in [
            ("0", "0", OutOfRange),
            ("70000", "70000", OutOfRange),
            ("10-5", "10-5", Inverted),
            ("80,", "80,", EmptyItem),
            ("http", "http", NotANumber),
            ("1-70000", "1-70000", OutOfRange),
            ("top0", "top0", top),
            ("top1001", "top1001", top),
            ("topx", "topx", BadTop),
            ("", "", EmptyItem),
            ("-1-5", "-1-5", NotANumber),
        ] {
            let err = text.parse::<PortSet>().expect_err(text);
            assert_eq!((err.input.as_str(), err.kind), (bad, kind), "{text}");
        }
    }

    #[test]
    fn messages_are_input_then_why() {
        let err = "70000".parse::<PortSet>().unwrap_err();
        assert_eq!(err.to_string(), "70000: port must be between 1 and 65535");
        let err = crate::ParseError::from("10-5".parse::<PortSet>().unwrap_err());
        assert_eq!(
            err.to_string(),
            "10-5: inverted port range, expected LOW-HIGH"
        );
    }

    proptest! {
        #[test]
        fn ranges_have_the_right_length(lo in 1u16..=65535, len in 0u16..2000) {
            let hi = lo.saturating_add(len);
            let set: PortSet = format!("{lo}-{hi}").parse().unwrap();
            prop_assert_eq!(set.len(), usize::from(hi - lo) + 1);
            prop_assert_eq!(set.as_slice()[0], lo);
        }

        #[test]
        fn never_panics(text in "[-,0-9a-z]{0,16}") {
            let _ = text.parse::<PortSet>();
        }

        #[test]
        fn lists_keep_every_valid_port_once(ports in proptest::collection::vec(1u16..=65535, 1..50)) {
            let text = ports.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
            let set: PortSet = text.parse().unwrap();
            let unique: HashSet<u16> = ports.iter().copied().collect();
            prop_assert_eq!(set.len(), unique.len());
        }
    }
}
