//! The names of the addresses that answer, as iputils shows them when the host was given by
//! name (`64 bytes from localhost (127.0.0.1)`): looked up once per address with
//! `getnameinfo`, which falls back to the address itself when it has no name.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// Remembered names.
#[derive(Debug, Default)]
pub struct Names {
    known: HashMap<IpAddr, String>,
}

impl Names {
    /// `addr` as iputils prints who answered when names are shown: `NAME (ADDR)`.
    pub fn show(&mut self, addr: IpAddr) -> String {
        let name = self.known.entry(addr).or_insert_with(|| lookup(addr));
        format!("{name} ({addr})")
    }
}

fn lookup(addr: IpAddr) -> String {
    match dns_lookup::getnameinfo(&SocketAddr::new(addr, 0), 0) {
        Ok((name, _)) => sanitize(&name),
        Err(_) => addr.to_string(),
    }
}

/// A name from the network, kept to printable characters before it reaches a terminal.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitised() {
        assert_eq!(sanitize("a\x1b[31mb"), "a?[31mb");
    }
}
