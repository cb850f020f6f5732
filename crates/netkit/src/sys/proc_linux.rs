//! Readers of `/proc`. Network settings read here are those of the caller's network namespace
//! (`/proc/sys/net` follows the reading thread's namespace). Nothing reads `/sys`: it may
//! belong to another namespace (`nsenter --net` does not remount it), so interfaces come from
//! rtnetlink instead ([`crate::iface`]).

use std::ops::RangeInclusive;

/// Where the kernel's ephemeral source ports are configured.
const LOCAL_PORT_RANGE: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// The ports the kernel hands out as ephemeral source ports (`net.ipv4.ip_local_port_range`,
/// which applies to IPv6 too); every port when it cannot be read.
pub fn ephemeral_ports() -> RangeInclusive<u16> {
    let text = std::fs::read_to_string(LOCAL_PORT_RANGE).unwrap_or_default();
    parse_port_range(&text).unwrap_or(1..=u16::MAX)
}

/// `LOW<whitespace>HIGH`, as the sysctl prints it.
fn parse_port_range(text: &str) -> Option<RangeInclusive<u16>> {
    let mut words = text.split_whitespace().map(str::parse::<u16>);
    let (low, high) = (words.next()?.ok()?, words.next()?.ok()?);
    (low <= high).then_some(low..=high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_as_the_sysctl_prints_them() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some(32768..=60999));
        assert_eq!(parse_port_range("1024 1024"), Some(1024..=1024));
        assert_eq!(parse_port_range("60999 32768"), None);
        assert_eq!(parse_port_range("32768"), None);
        assert_eq!(parse_port_range(""), None);
        assert_eq!(parse_port_range("a b"), None);
    }

    #[test]
    fn this_machine_has_a_range() {
        let range = ephemeral_ports();
        assert!(range.start() <= range.end());
    }
}
