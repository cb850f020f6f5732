//! IPv4 addresses as text, in every form that `inet_aton` reads and so iputils' `ping`, curl,
//! ncat, wait-for-it and nmap take: the dotted quad, and its short forms, where the last part
//! fills the bytes left (`127.1` is 127.0.0.1, `10.1.2` is 10.1.0.2, `2130706433` is
//! 127.0.0.1), each part decimal, octal after a leading `0` (`0177`) or hex after `0x`.
//!
//! Host and target parsing ([`crate::endpoint`], [`crate::target`]) both go through
//! [`looks_numeric`] and [`parse`]: text that looks like an address is one, in one of these
//! forms, or an error (`1.2.3.300`: "invalid IPv4 address"); it is never sent to the resolver
//! as a name.

use std::net::Ipv4Addr;

/// Whether `text` is meant as an IPv4 address rather than a name: digits and dots only, or
/// dot-separated numbers of which some are hex (`0x7f.1`).
pub fn looks_numeric(text: &str) -> bool {
    text.chars().all(|c| c.is_ascii_digit() || c == '.') || text.split('.').all(is_number)
}

/// `text` as `inet_aton` reads it: one to four parts, the last filling the bytes the others
/// leave; `None` when it is no address in any of the forms (a part too big, an empty part).
pub fn parse(text: &str) -> Option<Ipv4Addr> {
    let parts: Vec<u32> = text.split('.').map(part).collect::<Option<_>>()?;
    let (last, leading) = parts.split_last()?;
    if parts.len() > 4 || leading.iter().any(|p| *p > 255) {
        return None;
    }
    let room = 8 * (4 - leading.len() as u32);
    if room < 32 && last >> room != 0 {
        return None;
    }
    let high = leading.iter().fold(0u32, |acc, p| acc << 8 | p);
    let high = high.checked_shl(room).unwrap_or(0);
    Some(Ipv4Addr::from(high | last))
}

/// One part: `0x` hex, `0` octal, else decimal; `None` when empty, of other digits, or past
/// 32 bits.
fn part(text: &str) -> Option<u32> {
    let (digits, radix) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None if text.len() > 1 && text.starts_with('0') => (&text[1..], 8),
        None => (text, 10),
    };
    let valid = !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix));
    valid.then(|| u32::from_str_radix(digits, radix).ok())?
}

/// Whether `text` is written as a number: decimal digits, or `0x` and hex digits.
fn is_number(text: &str) -> bool {
    let hex = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"));
    match hex {
        Some(hex) => !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()),
        None => !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_form_inet_aton_reads() {
        for (text, want) in [
            ("127.0.0.1", "127.0.0.1"),
            ("127.1", "127.0.0.1"),
            ("10.1.2", "10.1.0.2"),
            ("2130706433", "127.0.0.1"),
            ("0x7f.1", "127.0.0.1"),
            ("0X7F.0.0.1", "127.0.0.1"),
            ("0177.0.0.1", "127.0.0.1"),
            ("010.0.0.1", "8.0.0.1"),
            ("0", "0.0.0.0"),
            ("1.0xffffff", "1.255.255.255"),
            ("4294967295", "255.255.255.255"),
        ] {
            assert_eq!(parse(text), Some(want.parse().unwrap()), "{text}");
            assert!(looks_numeric(text), "{text}");
        }
    }

    #[test]
    fn refuses_what_inet_aton_refuses() {
        for text in [
            "1.2.3.300",
            "1.2.3.4.5",
            "1..2",
            "1.2.",
            ".1",
            "",
            "256.1",
            "1.16777216",
            "4294967296",
            "08.1",
            "0x",
            "0xg.1",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }

    #[test]
    fn names_do_not_look_numeric() {
        for text in ["localhost", "0x7f.example", "1.2.3.com", "a1.2", "0xg"] {
            assert!(!looks_numeric(text), "{text}");
        }
        assert!(looks_numeric("1.2.3.300") && looks_numeric("1..2"));
    }
}
