//! `--allow`: whether a client's address is inside one of the rule's blocks. An IPv4 client
//! of a dual-stack (`[::]`) listener arrives as an IPv4-mapped IPv6 address; it is inside an
//! IPv4 block (`127.0.0.0/8`) and inside the mapped one (`::ffff:127.0.0.0/104`) alike, as in
//! HAProxy's `src` ACLs, which compare an IPv4 address with an IPv6 pattern in its mapped form.

use std::net::IpAddr;

use ipnet::IpNet;

/// Whether `allow` (empty: everyone) lets in a client from `ip`.
pub(super) fn allows(allow: &[IpNet], ip: IpAddr) -> bool {
    if allow.is_empty() {
        return true;
    }
    let ip = ip.to_canonical();
    let mapped = match ip {
        IpAddr::V4(v4) => Some(IpAddr::V6(v4.to_ipv6_mapped())),
        IpAddr::V6(_) => None,
    };
    allow
        .iter()
        .any(|net| net.contains(&ip) || mapped.is_some_and(|m| net.contains(&m)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn an_ipv4_client_is_inside_its_block_in_either_form() {
        let v4: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        for ip in [v4, mapped] {
            assert!(allows(&nets(&["127.0.0.0/8"]), ip), "{ip}");
            assert!(allows(&nets(&["::ffff:127.0.0.0/104"]), ip), "{ip}");
            assert!(!allows(&nets(&["::ffff:10.0.0.0/104"]), ip), "{ip}");
            assert!(!allows(&nets(&["::1/128"]), ip), "{ip}");
        }
        let v6: IpAddr = "::1".parse().unwrap();
        assert!(!allows(&nets(&["::ffff:127.0.0.0/104"]), v6));
        assert!(allows(&nets(&["::/0"]), v6));
        assert!(allows(&[], v6));
    }
}
