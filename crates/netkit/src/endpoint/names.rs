//! What the resolver's answer says of a host name: that it does not exist (a wrong name, bad
//! input) or nothing of it (the resolver could not answer now). `wait --invert` counts only the
//! first as gone; `forward` refuses to start on the first and starts on the second, its names
//! resolved per connection.

use std::net::ToSocketAddrs;

/// The standard library's preamble to the resolver's words.
const PREAMBLE: &str = "failed to lookup address information: ";

/// What a lookup of a name found now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The name has addresses.
    Found,
    /// The name does not exist or has no address; the resolver's words.
    NoSuchName(String),
    /// The resolver did not answer for the name (SERVFAIL, no answer, no server); its words.
    Unanswered(String),
}

/// Looks `host` up once, as a connection would (blocking: the system's `getaddrinfo`).
pub fn look_up(host: &str, port: u16) -> Lookup {
    match (host, port).to_socket_addrs().map(|mut addrs| addrs.next()) {
        Ok(Some(_)) => Lookup::Found,
        Ok(None) => Lookup::NoSuchName("no addresses".to_string()),
        Err(err) => {
            let why = err.to_string();
            match no_such_name(&why) {
                true => Lookup::NoSuchName(resolver_reason(&why)),
                false => Lookup::Unanswered(resolver_reason(&why)),
            }
        }
    }
}

/// Whether the resolver's answer says the name has no address: it does not exist
/// (`EAI_NONAME`: NXDOMAIN) or has no address (`EAI_NODATA`, or no address at all). Anything
/// else (`EAI_AGAIN`: SERVFAIL, REFUSED, no answer; `EAI_FAIL`; a system error) says nothing
/// of the name.
pub fn no_such_name(why: &str) -> bool {
    use nix::libc::{gai_strerror, EAI_NODATA, EAI_NONAME};
    let why = why.trim_start_matches(PREAMBLE);
    let said = |code| {
        // SAFETY: gai_strerror returns a pointer to a static NUL-terminated string.
        let text = unsafe { std::ffi::CStr::from_ptr(gai_strerror(code)) };
        text.to_string_lossy().eq_ignore_ascii_case(why)
    };
    why == "no addresses" || said(EAI_NONAME) || said(EAI_NODATA)
}

/// The resolver's own words (`name or service not known`), without the standard library's
/// `failed to lookup address information:` preamble.
pub fn resolver_reason(why: &str) -> String {
    let why = why.trim_start_matches(PREAMBLE);
    let mut chars = why.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => why.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resolvers_words_tell_a_missing_name_from_a_silent_resolver() {
        assert!(no_such_name(
            "failed to lookup address information: Name or service not known"
        ));
        assert!(no_such_name("no addresses"));
        assert!(!no_such_name(
            "failed to lookup address information: Temporary failure in name resolution"
        ));
        assert_eq!(
            resolver_reason("failed to lookup address information: Name or service not known"),
            "name or service not known"
        );
    }

    #[test]
    fn localhost_is_found() {
        assert_eq!(look_up("localhost", 80), Lookup::Found);
    }
}
