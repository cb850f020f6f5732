//! The words for kernel numbers, as `ip` prints them: link flags, address flags, address
//! scopes, operational states, duplex. One table each, tested row by row.

use netlink_packet_route::address::{AddressFlags, AddressScope};
use netlink_packet_route::link::{LinkFlags, State};

/// Link flag names in the order `ip link` prints them (`RUNNING`, which `ip` leaves out,
/// after `UP`).
const LINK_FLAGS: &[(LinkFlags, &str)] = &[
    (LinkFlags::Loopback, "LOOPBACK"),
    (LinkFlags::Broadcast, "BROADCAST"),
    (LinkFlags::Pointopoint, "POINTOPOINT"),
    (LinkFlags::Multicast, "MULTICAST"),
    (LinkFlags::Noarp, "NOARP"),
    (LinkFlags::Allmulti, "ALLMULTI"),
    (LinkFlags::Promisc, "PROMISC"),
    (LinkFlags::Notrailers, "NOTRAILERS"),
    (LinkFlags::Debug, "DEBUG"),
    (LinkFlags::Dynamic, "DYNAMIC"),
    (LinkFlags::Automedia, "AUTOMEDIA"),
    (LinkFlags::Portsel, "PORTSEL"),
    (LinkFlags::Controller, "MASTER"),
    (LinkFlags::Port, "SLAVE"),
    (LinkFlags::Up, "UP"),
    (LinkFlags::Running, "RUNNING"),
    (LinkFlags::LowerUp, "LOWER_UP"),
    (LinkFlags::Dormant, "DORMANT"),
    (LinkFlags::Echo, "ECHO"),
];

/// The names of the link flags that are set.
pub(crate) fn link_flags(flags: LinkFlags) -> Vec<String> {
    LINK_FLAGS
        .iter()
        .filter(|(flag, _)| flags.contains(*flag))
        .map(|(_, name)| (*name).to_string())
        .collect()
}

/// Address flag names as `ip addr` prints them; `permanent` is printed as `dynamic` when
/// absent, and `secondary` reads `temporary` on IPv6 (the same bit).
const ADDR_FLAGS: &[(AddressFlags, &str)] = &[
    (AddressFlags::Secondary, "secondary"),
    (AddressFlags::Nodad, "nodad"),
    (AddressFlags::Optimistic, "optimistic"),
    (AddressFlags::Dadfailed, "dadfailed"),
    (AddressFlags::Homeaddress, "home"),
    (AddressFlags::Deprecated, "deprecated"),
    (AddressFlags::Tentative, "tentative"),
    (AddressFlags::Permanent, "permanent"),
    (AddressFlags::Managetempaddr, "mngtmpaddr"),
    (AddressFlags::Noprefixroute, "noprefixroute"),
    (AddressFlags::Mcautojoin, "autojoin"),
    (AddressFlags::StablePrivacy, "stable-privacy"),
];

/// The names of the address flags that are set, plus `dynamic` when `permanent` is not.
pub(crate) fn addr_flags(flags: AddressFlags, ipv6: bool) -> Vec<String> {
    let mut names: Vec<String> = ADDR_FLAGS
        .iter()
        .filter(|(flag, _)| flags.contains(*flag))
        .map(
            |(flag, name)| match (*flag == AddressFlags::Secondary, ipv6) {
                (true, true) => "temporary".to_string(),
                _ => (*name).to_string(),
            },
        )
        .collect();
    if !flags.contains(AddressFlags::Permanent) {
        names.push("dynamic".to_string());
    }
    names
}

/// `global`, `site`, `link`, `host`, `nowhere`, or the scope's number.
pub(crate) fn scope(scope: AddressScope) -> String {
    match scope {
        AddressScope::Universe => "global".to_string(),
        AddressScope::Site => "site".to_string(),
        AddressScope::Link => "link".to_string(),
        AddressScope::Host => "host".to_string(),
        AddressScope::Nowhere => "nowhere".to_string(),
        other => u8::from(other).to_string(),
    }
}

/// The RFC 2863 state in lower case, as /sys/class/net/X/operstate spells it.
pub(crate) fn operstate(state: State) -> String {
    match state {
        State::Unknown => "unknown".to_string(),
        State::NotPresent => "notpresent".to_string(),
        State::Down => "down".to_string(),
        State::LowerLayerDown => "lowerlayerdown".to_string(),
        State::Testing => "testing".to_string(),
        State::Dormant => "dormant".to_string(),
        State::Up => "up".to_string(),
        other => u8::from(other).to_string(),
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_flags_read_like_ip_link() {
        let flags = LinkFlags::Up
            | LinkFlags::Broadcast
            | LinkFlags::Multicast
            | LinkFlags::LowerUp
            | LinkFlags::Running;
        assert_eq!(
            link_flags(flags),
            ["BROADCAST", "MULTICAST", "UP", "RUNNING", "LOWER_UP"]
        );
        assert_eq!(
            link_flags(LinkFlags::Controller | LinkFlags::Port),
            ["MASTER", "SLAVE"]
        );
        assert!(link_flags(LinkFlags::empty()).is_empty());
    }

    #[test]
    fn every_link_flag_has_one_name() {
        let all = LINK_FLAGS
            .iter()
            .fold(LinkFlags::empty(), |acc, (flag, _)| acc | *flag);
        assert_eq!(link_flags(all).len(), LINK_FLAGS.len());
    }

    #[test]
    fn address_flags_read_like_ip_addr() {
        assert_eq!(addr_flags(AddressFlags::Permanent, false), ["permanent"]);
        assert_eq!(addr_flags(AddressFlags::empty(), true), ["dynamic"]);
        assert_eq!(
            addr_flags(AddressFlags::Secondary | AddressFlags::Permanent, false),
            ["secondary", "permanent"]
        );
        assert_eq!(
            addr_flags(AddressFlags::Secondary, true),
            ["temporary", "dynamic"]
        );
        let v6 = AddressFlags::Nodad
            | AddressFlags::Deprecated
            | AddressFlags::Tentative
            | AddressFlags::Homeaddress
            | AddressFlags::Managetempaddr
            | AddressFlags::Noprefixroute
            | AddressFlags::Mcautojoin
            | AddressFlags::StablePrivacy
            | AddressFlags::Optimistic
            | AddressFlags::Dadfailed;
        assert_eq!(
            addr_flags(v6, true),
            [
                "nodad",
                "optimistic",
                "dadfailed",
                "home",
                "deprecated",
                "tentative",
                "mngtmpaddr",
                "noprefixroute",
                "autojoin",
                "stable-privacy",
                "dynamic"
            ]
        );
    }

    #[test]
    fn scopes_and_states_have_ip_names() {
        assert_eq!(scope(AddressScope::Universe), "global");
        assert_eq!(scope(AddressScope::Site), "site");
        assert_eq!(scope(AddressScope::Link), "link");
        assert_eq!(scope(AddressScope::Host), "host");
        assert_eq!(scope(AddressScope::Nowhere), "nowhere");
        assert_eq!(scope(AddressScope::from(100)), "100");
        assert_eq!(operstate(State::LowerLayerDown), "lowerlayerdown");
        assert_eq!(operstate(State::NotPresent), "notpresent");
        assert_eq!(operstate(State::Up), "up");
        assert_eq!(operstate(State::Unknown), "unknown");
        assert_eq!(operstate(State::Down), "down");
        assert_eq!(operstate(State::Testing), "testing");
        assert_eq!(operstate(State::Dormant), "dormant");
    }

    #[test]
    fn macs_are_lower_case_colon_separated() {
        assert_eq!(
            format_mac(&[0x02, 0xfc, 0, 0, 0, 0x1a]),
            "02:fc:00:00:00:1a"
        );
    }
}
