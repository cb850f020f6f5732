//! What a NAME given for an interface may be, by the kernel's rules: not empty, at most 15
//! bytes (`IFNAMSIZ`, its NUL left out), or, for an alternative name, at most 127
//! (`ALTIFNAMSIZ`). A name the kernel could never have is refused for what it is, not called
//! an unknown interface: before any lookup when it is empty or longer than any name, after
//! the lookup found no alternative name of its length.
//!
//! Names arrive escaped ([`super::escape_bytes`]): `\xNN` stands for one byte, and lengths
//! count the bytes the name stands for.

use std::borrow::Cow;

use crate::text::clipped;

/// The longest interface name, in bytes (`IFNAMSIZ` - 1).
pub const MAX_NAME_BYTES: usize = 15;

/// The longest alternative name, in bytes (`ALTIFNAMSIZ` - 1).
pub const MAX_ALTNAME_BYTES: usize = 127;

/// A NAME no interface can have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {kind}", shown(.input))]
pub struct NameError {
    /// The name as given (escaped as the listing shows names).
    pub input: String,
    /// What is wrong with it.
    pub kind: NameErrorKind,
}

/// Why a NAME cannot name an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameErrorKind {
    /// The name is empty.
    #[error("empty interface name")]
    Empty,
    /// Longer than an interface name may be, and no interface has it as an alternative name.
    #[error(
        "interface name of {0} bytes: longer than 15 bytes, the kernel's limit (IFNAMSIZ), \
         and no interface has it as an alternative name"
    )]
    TooLong(usize),
    /// Longer than even an alternative name may be.
    #[error(
        "interface name of {0} bytes: longer than the kernel's limits (15 bytes, 127 for an \
         alternative name)"
    )]
    TooLongForAny(usize),
}

/// Refuses a name no interface can have, whatever the namespace holds: an empty one, or one
/// longer than an alternative name may be.
pub fn check(name: &str) -> Result<(), NameError> {
    let error = |kind| {
        Err(NameError {
            input: name.to_string(),
            kind,
        })
    };
    match byte_len(name) {
        0 => error(NameErrorKind::Empty),
        n if n > MAX_ALTNAME_BYTES => error(NameErrorKind::TooLongForAny(n)),
        _ => Ok(()),
    }
}

/// Why no interface is called `name`, when its length says: longer than an interface name
/// (the lookup found no alternative name like it either).
pub(crate) fn not_found(name: &str) -> Option<NameError> {
    let n = byte_len(name);
    (n > MAX_NAME_BYTES).then(|| NameError {
        input: name.to_string(),
        kind: NameErrorKind::TooLong(n),
    })
}

/// The bytes `name` stands for: each `\xNN` escape is one.
fn byte_len(name: &str) -> usize {
    let bytes = name.as_bytes();
    let (mut at, mut count) = (0, 0);
    while at < bytes.len() {
        let escape = bytes.get(at..at + 4).is_some_and(|b| {
            b[0] == b'\\' && b[1] == b'x' && b[2].is_ascii_hexdigit() && b[3].is_ascii_hexdigit()
        });
        at += if escape { 4 } else { 1 };
        count += 1;
    }
    count
}

/// The input at the start of the message: `''` when empty.
fn shown(input: &str) -> Cow<'_, str> {
    match input.is_empty() {
        true => "''".into(),
        false => clipped(input),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_count_the_bytes_escapes_stand_for() {
        assert_eq!(byte_len("eth0"), 4);
        assert_eq!(byte_len("bad\\xff"), 4);
        assert_eq!(byte_len("é"), 2);
        assert_eq!(byte_len("a\\x4"), 4);
    }

    #[test]
    fn empty_and_overlong_names_are_refused_with_why() {
        assert_eq!(
            check("").unwrap_err().to_string(),
            "'': empty interface name"
        );
        assert!(check(&"a".repeat(MAX_ALTNAME_BYTES)).is_ok());
        let long = "a".repeat(MAX_ALTNAME_BYTES + 1);
        assert_eq!(
            check(&long).unwrap_err().kind,
            NameErrorKind::TooLongForAny(128)
        );
        assert!(not_found("a".repeat(MAX_NAME_BYTES).as_str()).is_none());
        let err = not_found("abcdefghijklmnop").expect("too long");
        assert!(
            err.to_string()
                .starts_with("abcdefghijklmnop: interface name of 16 bytes: longer than 15 bytes"),
            "{err}"
        );
    }
}
