//! Port sets for far-side behaviours: a list of ranges, where the empty list means every port.

use std::ops::RangeInclusive;
use std::str::FromStr;

use crate::error::{LabError, Result};

/// A set of TCP ports as inclusive ranges; empty means all ports (1-65535).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ports(Vec<RangeInclusive<u16>>);

impl Ports {
    /// Every port.
    pub fn all() -> Ports {
        Ports(Vec::new())
    }

    /// Whether this set means every port.
    pub fn is_all(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `port` is in the set.
    pub fn contains(&self, port: u16) -> bool {
        self.is_all() || self.0.iter().any(|r| r.contains(&port))
    }

    /// The ranges (empty for all ports).
    pub fn ranges(&self) -> &[RangeInclusive<u16>] {
        &self.0
    }

    /// Every single port of the set, in order of the ranges (all ports: 1-65535).
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        let all = [1..=u16::MAX];
        let ranges: Vec<RangeInclusive<u16>> = if self.is_all() {
            all.to_vec()
        } else {
            self.0.clone()
        };
        ranges.into_iter().flatten()
    }
}

impl From<&[u16]> for Ports {
    fn from(ports: &[u16]) -> Ports {
        Ports(ports.iter().map(|&p| p..=p).collect())
    }
}

impl<const N: usize> From<&[u16; N]> for Ports {
    fn from(ports: &[u16; N]) -> Ports {
        Ports::from(&ports[..])
    }
}

impl From<u16> for Ports {
    fn from(port: u16) -> Ports {
        Ports(vec![port..=port])
    }
}

impl From<RangeInclusive<u16>> for Ports {
    fn from(range: RangeInclusive<u16>) -> Ports {
        Ports(vec![range])
    }
}

impl FromStr for Ports {
    type Err = LabError;

    /// Parses `22,80,1000-1999` or `all`.
    fn from_str(s: &str) -> Result<Ports> {
        if s == "all" {
            return Ok(Ports::all());
        }
        let why = "expected ports such as 22,80,1000-1999 (1-65535) or all";
        let port = |p: &str| match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(LabError::spec(s, why)),
        };
        let mut ranges = Vec::new();
        for item in s.split(',') {
            let (lo, hi) = item.split_once('-').unwrap_or((item, item));
            let (lo, hi) = (port(lo)?, port(hi)?);
            if lo > hi {
                return Err(LabError::spec(s, why));
            }
            ranges.push(lo..=hi);
        }
        Ok(Ports(ranges))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_ranges() {
        let p: Ports = "22,80,1000-1002".parse().unwrap();
        assert_eq!(p.iter().collect::<Vec<_>>(), [22, 80, 1000, 1001, 1002]);
        assert!(p.contains(1001) && !p.contains(23));
        assert!("all".parse::<Ports>().unwrap().contains(9));
        for bad in ["", "0", "5-4", "x", "70000", "1,"] {
            assert!(bad.parse::<Ports>().is_err(), "{bad}");
        }
    }

    #[test]
    fn converts_from_slices_and_ranges() {
        assert_eq!(Ports::from(&[22, 80]).iter().count(), 2);
        assert_eq!(Ports::from(10..=19).iter().count(), 10);
        assert_eq!(Ports::all().iter().count(), 65535);
    }
}
