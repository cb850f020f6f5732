//! `--status CODES`: the HTTP status codes that count as ready, as a list of codes, ranges and
//! classes (`200,204,300-399`, `2xx`). The default is 200-399: a redirect is ready and is not
//! followed.

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

use crate::error::ParseError;

/// A set of HTTP status codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(Vec<RangeInclusive<u16>>);

impl StatusSet {
    /// Whether `code` is in the set.
    pub fn contains(&self, code: u16) -> bool {
        self.0.iter().any(|range| range.contains(&code))
    }
}

impl Default for StatusSet {
    /// 200-399: success and redirects.
    fn default() -> Self {
        StatusSet(vec![200..=399])
    }
}

impl FromStr for StatusSet {
    type Err = ParseError;

    fn from_str(input: &str) -> Result<Self, ParseError> {
        input
            .split(',')
            .map(|item| parse_item(item.trim()))
            .collect::<Option<Vec<_>>>()
            .map(StatusSet)
            .ok_or_else(|| {
                ParseError::new(
                    input,
                    "expected HTTP status codes (100-999) as a list of codes, ranges and \
                     classes, e.g. 200,204,300-399 or 2xx",
                )
            })
    }
}

fn parse_item(item: &str) -> Option<RangeInclusive<u16>> {
    if let Some(class) = item.strip_suffix("xx") {
        let hundreds: u16 = class.parse().ok().filter(|c| (1..=9).contains(c))?;
        return Some(hundreds * 100..=hundreds * 100 + 99);
    }
    let (low, high) = item.split_once('-').unwrap_or((item, item));
    let (low, high) = (code(low)?, code(high)?);
    (low <= high).then_some(low..=high)
}

fn code(text: &str) -> Option<u16> {
    let code: u16 = text.trim().parse().ok()?;
    (100..=999).contains(&code).then_some(code)
}

impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, range) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            match (range.start(), range.end()) {
                (low, high) if low == high => write!(f, "{sep}{low}")?,
                (low, high) => write!(f, "{sep}{low}-{high}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_ranges_and_classes() {
        let set: StatusSet = "200, 204,300-399,5xx".parse().expect("parse");
        for (code, ready) in [
            (200, true),
            (201, false),
            (204, true),
            (302, true),
            (399, true),
            (404, false),
            (503, true),
            (600, false),
        ] {
            assert_eq!(set.contains(code), ready, "{code}");
        }
        assert_eq!(set.to_string(), "200,204,300-399,500-599");
    }

    #[test]
    fn default_is_success_and_redirects() {
        let set = StatusSet::default();
        assert!(set.contains(200) && set.contains(301) && !set.contains(404));
        assert_eq!(set.to_string(), "200-399");
    }

    #[test]
    fn bad_lists_name_the_input() {
        for bad in ["", "2000", "99", "300-200", "0xx", "abc", "200,", "1-"] {
            let err = bad.parse::<StatusSet>().expect_err(bad);
            assert_eq!(err.input, bad);
        }
    }
}
