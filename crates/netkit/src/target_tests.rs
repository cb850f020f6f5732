use super::*;
use proptest::prelude::*;
use std::io::Write;

fn addrs(words: &[&str]) -> Vec<IpAddr> {
    let list = TargetList::parse(words, false).expect("parse");
    list.resolve(Family::Any)
        .expect("resolve")
        .iter()
        .map(|t| t.addr)
        .collect()
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("ip")
}

#[test]
fn single_addresses_v4_and_v6() {
    assert_eq!(addrs(&["127.0.0.1"]), vec![ip("127.0.0.1")]);
    assert_eq!(addrs(&["::1"]), vec![ip("::1")]);
    assert_eq!(
        addrs(&["2001:db8::1,198.18.0.1"]),
        vec![ip("2001:db8::1"), ip("198.18.0.1")]
    );
}

#[test]
fn last_octet_range() {
    let got = addrs(&["192.168.0.100-102"]);
    assert_eq!(
        got,
        vec![
            ip("192.168.0.100"),
            ip("192.168.0.101"),
            ip("192.168.0.102")
        ]
    );
}

#[test]
fn full_range_crosses_octets() {
    let got = addrs(&["10.0.0.254-10.0.1.1"]);
    assert_eq!(
        got,
        vec![
            ip("10.0.0.254"),
            ip("10.0.0.255"),
            ip("10.0.1.0"),
            ip("10.0.1.1")
        ]
    );
}

#[test]
fn v6_ranges_full_and_last_group() {
    assert_eq!(addrs(&["2001:db8::fe-2001:db8::100"]).len(), 3);
    let got = addrs(&["2001:db8::a-c"]);
    assert_eq!(
        got,
        vec![ip("2001:db8::a"), ip("2001:db8::b"), ip("2001:db8::c")]
    );
}

#[test]
fn cidr_includes_network_and_broadcast() {
    let got = addrs(&["198.18.0.0/30"]);
    assert_eq!(
        got,
        vec![
            ip("198.18.0.0"),
            ip("198.18.0.1"),
            ip("198.18.0.2"),
            ip("198.18.0.3")
        ]
    );
    assert_eq!(addrs(&["198.18.0.7/32"]), vec![ip("198.18.0.7")]);
    let v6 = addrs(&["2001:db8::/126"]);
    assert_eq!(
        v6,
        vec![
            ip("2001:db8::"),
            ip("2001:db8::1"),
            ip("2001:db8::2"),
            ip("2001:db8::3")
        ]
    );
}

#[test]
fn cidr_with_host_bits_is_the_whole_block() {
    assert_eq!(addrs(&["198.18.0.5/30"])[0], ip("198.18.0.4"));
}

#[test]
fn mixed_words_and_separators() {
    let got = addrs(&["127.0.0.1, 127.0.0.2", "::1"]);
    assert_eq!(got, vec![ip("127.0.0.1"), ip("127.0.0.2"), ip("::1")]);
}

#[test]
fn file_targets_with_comments() {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    writeln!(file, "# lab hosts\n127.0.0.1 # me\n\n198.18.0.0/31, ::1").expect("write");
    let word = format!("@{}", file.path().display());
    let got = addrs(&[word.as_str()]);
    assert_eq!(
        got,
        vec![
            ip("127.0.0.1"),
            ip("198.18.0.0"),
            ip("198.18.0.1"),
            ip("::1")
        ]
    );
}

#[test]
fn names_are_kept_and_resolved() {
    let list = TargetList::parse(&["localhost"], false).expect("parse");
    assert_eq!(list.exprs(), &[TargetExpr::Name("localhost".into())]);
    let targets = list.resolve(Family::V4).expect("resolve");
    let first = targets.iter().next().expect("one");
    assert_eq!(first.addr, ip("127.0.0.1"));
    assert_eq!(first.host(), "localhost");
}

/// inet_aton's short forms, as iputils, fping, nmap and curl take them: kept as given (the
/// name shown), read without a lookup.
#[test]
fn short_ipv4_forms_are_addresses_shown_as_given() {
    for (text, want) in [
        ("127.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("10.1.2", "10.1.0.2"),
    ] {
        let list = TargetList::parse(&[text], false).expect(text);
        let targets = list.resolve(Family::Any).expect(text);
        let first = targets.iter().next().expect("one");
        assert_eq!((first.addr, first.host()), (ip(want), text.to_string()));
    }
    assert!(TargetList::parse(&["127.1"], false)
        .unwrap()
        .resolve(Family::V6)
        .is_err());
}

#[test]
fn hyphenated_names_are_names_not_ranges() {
    let list = TargetList::parse(&["my-host.example"], false).expect("parse");
    assert_eq!(list.exprs(), &[TargetExpr::Name("my-host.example".into())]);
}

#[test]
fn length_is_known_without_iterating() {
    let list = TargetList::parse(&["10.0.0.0/8", "::1"], false).expect("parse");
    assert_eq!(list.len(), (1 << 24) + 1);
    let targets = list.resolve(Family::Any).expect("resolve");
    assert_eq!(targets.len(), (1 << 24) + 1);
    assert_eq!(
        targets.iter().size_hint(),
        ((1 << 24) + 1, Some((1 << 24) + 1))
    );
    let last = targets.iter().nth(1 << 24).expect("last");
    assert_eq!(last.addr, ip("::1"));
}

#[test]
fn huge_blocks_need_force() {
    let err = TargetList::parse(&["10.0.0.0/7"], false).expect_err("too big");
    assert_eq!(err.kind, TargetErrorKind::TooLarge { count: 1 << 25 });
    assert_eq!(
        err.to_string(),
        "10.0.0.0/7: 33554432 addresses is more than 2^24; pass --force to take it"
    );
    assert!(TargetList::parse(&["10.0.0.0/7"], true).is_ok());
    assert!(TargetList::parse(&["2001:db8::/64"], false).is_err());
    let v6 = TargetList::parse(&["2001:db8::/32"], true).expect("forced");
    assert_eq!(v6.len(), 1u128 << 96);
    assert_eq!(
        v6.resolve(Family::Any).expect("r").iter().size_hint().1,
        None
    );
}

#[test]
fn whole_v6_space_does_not_overflow() {
    let all = TargetList::parse(&["::/0"], true).expect("parse");
    assert_eq!(all.len(), u128::MAX);
}

#[test]
fn family_mismatch_is_an_input_error() {
    let list = TargetList::parse(&["::1"], false).expect("parse");
    assert!(list.resolve(Family::V4).is_err());
    assert!(list.resolve(Family::V6).is_ok());
}

#[test]
fn bad_inputs_name_themselves_and_what_is_wrong() {
    use TargetErrorKind::*;
    for (text, kind) in [
        ("1.2.3.300", BadIpv4),
        ("10.0.0.5-2", InvertedRange),
        ("/33", MissingAddress),
        ("10.0.0.0/33", BadPrefix { max: 32 }),
        ("::1/129", BadPrefix { max: 128 }),
        ("10.0.0.1-300", BadV4Range),
        ("10.0.0.1-::1", BadV4Range),
        ("2001:db8::5-1", InvertedRange),
        ("2001:db8::1-fffff", BadV6Range),
        ("1.2.3.4.5", BadIpv4),
        ("1..2", BadIpv4),
        ("::g", BadIpv6),
        ("bad_host!", Unknown),
        ("-leading", Unknown),
        ("@", MissingFileName),
        ("10.0.0.0/x", BadPrefix { max: 32 }),
        ("fe80::1%no-such-if9", UnknownZone("no-such-if9".into())),
        ("fe80::1%", UnknownZone(String::new())),
        ("fe80::1%0", UnknownZone("0".into())),
        ("10.0.0.1%lo", ZoneWithoutIpv6),
        ("fe80::/120%lo", ZoneOnBlock),
        ("fe80::%lo/120", ZoneOnBlock),
        ("fe80::1-5%lo", ZoneOnBlock),
        ("fe80::g%lo", BadIpv6),
    ] {
        let err = TargetList::parse(&[text], false).expect_err(text);
        assert_eq!(err.input, text, "{text}: {err}");
        assert_eq!(err.kind, kind, "{text}");
    }
    let err = TargetList::parse(&["@/nonexistent/netkit"], false).unwrap_err();
    assert!(matches!(err.kind, Unreadable(_)), "{err}");
    let err = TargetList::parse::<&str>(&[], false).unwrap_err();
    assert_eq!((err.input.as_str(), err.kind), ("", NoTargets));
    assert!(TargetList::parse(&[" , "], false).is_err());
}

#[test]
fn a_family_mismatch_says_which_family() {
    let list = TargetList::parse(&["::1"], false).expect("parse");
    match list.resolve(Family::V4) {
        Err(crate::Error::Target(err)) => {
            assert_eq!(err.kind, TargetErrorKind::WrongFamily { want: "IPv4" });
            assert_eq!(
                err.to_string(),
                "::1: not an IPv4 address, but only IPv4 was asked for"
            );
        }
        other => panic!("{other:?}"),
    }
}

proptest! {
    #[test]
    fn v4_ranges_yield_exactly_their_addresses(start in any::<u32>(), len in 0u32..300) {
        let end = start.saturating_add(len);
        let text = format!("{}-{}", Ipv4Addr::from(start), Ipv4Addr::from(end));
        let got = addrs(&[text.as_str()]);
        prop_assert_eq!(got.len() as u64, u64::from(end - start) + 1);
        prop_assert_eq!(got[0], IpAddr::V4(start.into()));
        prop_assert_eq!(*got.last().unwrap(), IpAddr::V4(end.into()));
    }

    #[test]
    fn cidr_v4_counts(addr in any::<u32>(), bits in 20u8..=32) {
        let text = format!("{}/{bits}", Ipv4Addr::from(addr));
        let list = TargetList::parse(&[text.as_str()], false).unwrap();
        prop_assert_eq!(list.len(), 1u128 << (32 - bits));
        let targets = list.resolve(Family::Any).unwrap();
        prop_assert_eq!(targets.iter().count() as u128, list.len());
    }

    #[test]
    fn cidr_v6_counts(addr in any::<u128>(), bits in 112u8..=128) {
        let text = format!("{}/{bits}", Ipv6Addr::from(addr));
        let list = TargetList::parse(&[text.as_str()], false).unwrap();
        prop_assert_eq!(list.len(), 1u128 << (128 - bits));
        let first = list.resolve(Family::Any).unwrap().iter().next().unwrap().addr;
        let mask = u128::MAX << (128 - bits);
        prop_assert_eq!(first, IpAddr::V6((addr & mask).into()));
    }

    #[test]
    fn never_panics(text in "[0-9a-f.:/@,-]{0,24}") {
        let _ = TargetList::parse(&[text.as_str()], true);
    }
}

#[test]
fn get_matches_the_iterator_and_families_are_known() {
    let list = TargetList::parse(&["198.18.0.250-198.18.1.3", "::1", "2001:db8::/126"], false)
        .expect("parse");
    let targets = list.resolve(Family::Any).expect("resolve");
    for (index, target) in (0u128..).zip(targets.iter()) {
        assert_eq!(targets.get(index), Some(target), "{index}");
    }
    assert_eq!(targets.get(targets.len()), None);
    assert_eq!(targets.families(), Family::Any);
    let v4 = TargetList::parse(&["127.0.0.1/30"], false).expect("parse");
    assert_eq!(v4.resolve(Family::Any).expect("v4").families(), Family::V4);
    let v6 = TargetList::parse(&["::1"], false).expect("parse");
    assert_eq!(v6.resolve(Family::Any).expect("v6").families(), Family::V6);
}

#[test]
fn a_zone_is_kept_by_name_or_index_and_reaches_the_socket_address() {
    // Loopback is index 1 in every network namespace.
    for text in ["fe80::1%lo", "fe80::1%1"] {
        let list = TargetList::parse(&[text], false).expect(text);
        let zoned = TargetExpr::Zoned("fe80::1".parse().unwrap(), 1);
        assert_eq!(list.exprs(), &[zoned][..], "{text}");
        let target = list.resolve(Family::Any).unwrap().iter().next().unwrap();
        assert_eq!(
            (target.addr.to_string(), target.zone),
            ("fe80::1".into(), 1)
        );
        assert_eq!(target.socket_addr(22).to_string(), "[fe80::1%1]:22");
        assert!(list.resolve(Family::V4).is_err(), "{text}");
    }
    let plain = TargetList::parse(&["fe80::1"], false).unwrap();
    let target = plain.resolve(Family::Any).unwrap().iter().next().unwrap();
    assert_eq!(
        (target.zone, target.socket_addr(22).to_string()),
        (0, "[fe80::1]:22".into())
    );
}

#[test]
fn a_zone_needs_a_link_local_address_and_an_interface_that_exists() {
    for text in ["ff02::1%lo", "ff02::1%1", "ff01::1%lo"] {
        TargetList::parse(&[text], false).expect(text);
    }
    for (text, kind) in [
        ("2001:db8::1%lo", TargetErrorKind::ZoneNotLinkLocal),
        ("ff05::1%lo", TargetErrorKind::ZoneNotLinkLocal),
        (
            "fe80::1%4000000000",
            TargetErrorKind::UnknownZone("4000000000".into()),
        ),
        ("fe80::1%0", TargetErrorKind::UnknownZone("0".into())),
    ] {
        let err = TargetList::parse(&[text], false).expect_err(text);
        assert_eq!((err.input.as_str(), err.kind), (text, kind));
    }
}

#[test]
fn an_address_given_twice_or_in_overlapping_blocks_repeats() {
    let repeats = |words: &[&str]| {
        TargetList::parse(words, false)
            .expect("parse")
            .resolve(Family::Any)
            .expect("resolve")
            .repeats_an_address()
    };
    assert!(!repeats(&[
        "198.18.0.1",
        "198.18.0.2",
        "::1",
        "198.18.1.0/24"
    ]));
    assert!(repeats(&["198.18.0.1", "198.18.0.1"]));
    assert!(repeats(&["198.18.0.0/24", "198.18.1.7", "198.18.0.9"]));
    assert!(repeats(&["198.18.0.0/16", "198.18.7.0/24"]));
    assert!(repeats(&["2001:db8::1", "2001:db8::/120"]));
    // The same bits in two families are two addresses.
    assert!(!repeats(&["0.0.0.1", "::1"]));
}
