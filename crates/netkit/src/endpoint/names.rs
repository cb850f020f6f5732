//! Looking a host name up, and what the resolver's answer says of it: its addresses, that it
//! does not exist (a wrong name, bad input) or nothing of it (the resolver could not answer
//! now). `wait --invert` counts only the second as gone; `forward` refuses to start on the
//! second and starts on the third, its names resolved per connection. `wait` looks names up
//! as a step of its own ([`look_up_within`]), bounded apart from the connect that follows.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// The standard library's preamble to the resolver's words.
const PREAMBLE: &str = "failed to lookup address information: ";

/// What a lookup of a name found now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The name has these addresses, in the resolver's order (`localhost` both loopbacks).
    Found(Vec<SocketAddr>),
    /// The name does not exist or has no address; the resolver's words.
    NoSuchName(String),
    /// The resolver did not answer for the name (SERVFAIL, no answer, no server); its words.
    Unanswered(String),
}

/// Looks `host` up once, as a connection would (blocking: the system's `getaddrinfo`).
pub fn look_up(host: &str, port: u16) -> Lookup {
    match (host, port).to_socket_addrs() {
        Ok(addrs) => {
            let mut found: Vec<SocketAddr> = addrs.collect();
            add_loopbacks(host, port, &mut found);
            match found.is_empty() {
                true => Lookup::NoSuchName("no addresses".to_string()),
                false => Lookup::Found(found),
            }
        }
        Err(err) => {
            let why = crate::error::describe_io(&err);
            match no_such_name(&why) {
                true => Lookup::NoSuchName(resolver_reason(&why)),
                false => Lookup::Unanswered(resolver_reason(&why)),
            }
        }
    }
}

/// [`look_up`] in a blocking thread, for at most `bound`; `None` when the resolver has not
/// answered by then (a name server that takes queries and stays silent keeps `getaddrinfo`
/// for its whole `timeout:` times `attempts:`). The lookup is then abandoned to its thread,
/// which ends on its own: nothing waits for it, so the caller's deadline holds.
pub async fn look_up_within(host: &str, port: u16, bound: Duration) -> Option<Lookup> {
    let host = host.to_string();
    let lookup = tokio::task::spawn_blocking(move || look_up(&host, port));
    match tokio::time::timeout(bound, lookup).await {
        Ok(Ok(lookup)) => Some(lookup),
        Ok(Err(join)) => Some(Lookup::Unanswered(join.to_string())),
        Err(_) => None,
    }
}

/// `localhost` means both loopbacks (RFC 6761, and curl's rule), whatever /etc/hosts says, so
/// that a service listening on only one family is reached either way.
pub(crate) fn add_loopbacks(name: &str, port: u16, found: &mut Vec<SocketAddr>) {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name != "localhost" && !name.ends_with(".localhost") {
        return;
    }
    for ip in [
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
    ] {
        let addr = SocketAddr::new(ip, port);
        if !found.contains(&addr) {
            found.push(addr);
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
    fn localhost_is_found_as_both_loopbacks() {
        let Lookup::Found(found) = look_up("localhost", 80) else {
            panic!("localhost not found");
        };
        for addr in ["127.0.0.1:80", "[::1]:80"] {
            assert!(found.contains(&addr.parse().expect("addr")), "{found:?}");
        }
    }

    #[tokio::test]
    async fn a_lookup_within_its_bound_answers() {
        let found = look_up_within("localhost", 80, Duration::from_secs(10)).await;
        assert!(matches!(found, Some(Lookup::Found(_))), "{found:?}");
    }
}
