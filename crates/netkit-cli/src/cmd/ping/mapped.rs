//! IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) are IPv4 on the wire: such an address never
//! goes on the wire (RFC 4291 §2.5.5.2; RFC 4942 §2.2), and a connect to it reaches the IPv4
//! address it maps. ping takes one as that IPv4 address wherever it is given: a target (with
//! `-4` too), a block or range of targets, an `-I` source (as iputils takes a mapped source).

use std::net::{IpAddr, Ipv6Addr};

use netkit::target::{resolve_name, unmapped, TargetError, TargetErrorKind, TargetExpr};
use netkit::{Error, Family, ParseError, Target, TargetList, Targets};

/// Resolves `list` as [`TargetList::resolve_lenient`] does, but with `-4` an IPv4-mapped
/// address, or a block or range of them, is taken as the IPv4 it maps is (iputils refuses it:
/// its resolver finds no IPv4 address in the text). A name still resolves to IPv4 only.
pub fn resolve(list: &TargetList, family: Family) -> Result<(Targets, Vec<Error>), Error> {
    if family != Family::V4 || !list.exprs().iter().any(maps_ipv4) {
        return list.resolve_lenient(family);
    }
    let mut targets = Vec::new();
    let mut failures = Vec::new();
    for expr in list.exprs() {
        match expr {
            TargetExpr::Name(name) => match resolve_name(name, family) {
                Ok(addr) => targets.push(Target {
                    name: Some(name.as_str().into()),
                    addr,
                    zone: 0,
                }),
                Err(err @ Error::Resolve { .. }) => failures.push(err),
                Err(err) => return Err(err),
            },
            TargetExpr::Addr(addr) => targets.push(Target::addr(ipv4_only(*addr)?)),
            TargetExpr::Zoned(addr, _) => return Err(not_ipv4(IpAddr::V6(*addr)).into()),
            TargetExpr::Range(range) => {
                for i in 0..range.len() {
                    targets.push(Target::addr(ipv4_only(range.nth(i))?));
                }
            }
        }
    }
    Ok((Targets::from_list(targets), failures))
}

/// Whether `expr` is an IPv4-mapped address, or a block or range of nothing else.
fn maps_ipv4(expr: &TargetExpr) -> bool {
    let mapped = |addr: IpAddr| matches!(addr, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some());
    match expr {
        TargetExpr::Addr(addr) => mapped(*addr),
        TargetExpr::Range(range) => mapped(range.nth(0)) && mapped(range.nth(range.len() - 1)),
        TargetExpr::Name(_) | TargetExpr::Zoned(..) => false,
    }
}

/// `addr` if `-4` can ping it (IPv4, or IPv4-mapped), else `-4`'s refusal.
fn ipv4_only(addr: IpAddr) -> Result<IpAddr, TargetError> {
    match unmapped(addr).is_ipv4() {
        true => Ok(addr),
        false => Err(not_ipv4(addr)),
    }
}

/// `-4`'s refusal of an IPv6 address, as the library words it.
fn not_ipv4(addr: IpAddr) -> TargetError {
    TargetError {
        input: addr.to_string(),
        kind: TargetErrorKind::WrongFamily { want: "IPv4" },
    }
}

/// A mapped target as the IPv4 address it maps; the name stays as given
/// (`PING ::ffff:192.0.2.1 (192.0.2.1)`). With `-6` it is refused: no IPv6 packet reaches
/// it (iputils sends ICMPv6 to it, which leaves through the default route, if any, to be
/// dropped or answered "unreachable").
pub fn target_as_ipv4(target: Target, family: Family) -> Result<Target, ParseError> {
    let IpAddr::V4(v4) = unmapped(target.addr) else {
        return Ok(target);
    };
    if target.addr.is_ipv4() {
        return Ok(target);
    }
    let host = target.shown();
    if family == Family::V6 {
        let why = format!(
            "an IPv4-mapped address is IPv4 on the wire, never IPv6; ping {v4} (without -6)"
        );
        return Err(ParseError::new(host, why));
    }
    Ok(Target {
        name: Some(host.into()),
        addr: IpAddr::V4(v4),
        zone: 0,
    })
}

/// How a target is named in an error about its family: a mapped one with the address it is
/// pinged at (`::ffff:192.0.2.1 (pinged as 192.0.2.1)`).
pub fn shown_with_family(target: &Target) -> String {
    let given = target
        .name
        .as_deref()
        .and_then(|n| n.parse::<Ipv6Addr>().ok());
    match given.and_then(|v6| v6.to_ipv4_mapped()) {
        Some(v4) => format!("{} (pinged as {v4})", target.shown()),
        None => target.shown(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(words: &[&str], family: Family) -> Result<Vec<IpAddr>, Error> {
        let list = TargetList::parse(words, false).expect("parse");
        let (targets, failures) = resolve(&list, family)?;
        assert!(failures.is_empty(), "{failures:?}");
        Ok(targets.iter().map(|t| t.addr).collect())
    }

    #[test]
    fn dash_4_takes_mapped_addresses_and_blocks_of_them_only() {
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().expect("addr");
        assert_eq!(
            resolved(&["::ffff:127.0.0.1", "127.0.0.2"], Family::V4).expect("ok"),
            [mapped, "127.0.0.2".parse().expect("addr")]
        );
        let block = resolved(&["::ffff:127.0.0.0/126"], Family::V4).expect("ok");
        assert_eq!(block.len(), 4);
        assert!(block.iter().all(|a| unmapped(*a).is_ipv4()), "{block:?}");
        let err = resolved(&["::ffff:127.0.0.1", "::1"], Family::V4).expect_err("::1");
        assert_eq!(
            err.to_string(),
            "::1: not an IPv4 address, but only IPv4 was asked for"
        );
        let err = resolved(
            &["::ffff:127.0.0.1", "::fffe:ffff:ffff-::ffff:0.0.0.1"],
            Family::V4,
        )
        .expect_err("a range reaching out of ::ffff:0:0/96");
        assert!(
            err.to_string().starts_with("::fffe:ffff:ffff: not an IPv4"),
            "{err}"
        );
    }

    #[test]
    fn a_mapped_target_is_its_ipv4_address_named_as_given() {
        let target = Target::addr("::ffff:7f00:1".parse().expect("addr"));
        let ipv4 = target_as_ipv4(target.clone(), Family::V4).expect("-4");
        assert_eq!(ipv4.addr, "127.0.0.1".parse::<IpAddr>().expect("addr"));
        assert_eq!(ipv4.shown(), "::ffff:127.0.0.1");
        assert_eq!(
            shown_with_family(&ipv4),
            "::ffff:127.0.0.1 (pinged as 127.0.0.1)"
        );
        assert!(target_as_ipv4(target, Family::V6).is_err());
    }
}
