//! The iptables rules of the far side (DROP/REJECT per port, hosts that ignore echo, ICMP
//! policing, SYN limiting) and of the router (NFQUEUE for the relay), as iptables-save text
//! that `iptables-restore`/`ip6tables-restore` load in one step.

use std::fmt::Write;

use crate::behaviour::PortAction;
use crate::impairment::{Direction, Link};
use crate::spec::LabSpec;
use crate::topology::{ROUTER_FAR_DEV, ROUTER_NEAR_DEV};

/// The burst a rate limit of `per_sec` allows: a tenth of a second's worth, at least 5.
pub fn burst(per_sec: u32) -> u32 {
    (per_sec / 10).max(5)
}

/// The far namespace's filter table for IPv4 (`v6` false) or IPv6 (`v6` true).
pub(crate) fn far_rules(spec: &LabSpec, v6: bool) -> String {
    let echo = if v6 {
        "-p ipv6-icmp --icmpv6-type echo-request"
    } else {
        "-p icmp --icmp-type echo-request"
    };
    let mut out = String::from("*filter\n:INPUT ACCEPT [0:0]\n");
    for net in spec.no_echo.iter().filter(|n| n.addr().is_ipv6() == v6) {
        let _ = writeln!(out, "-A INPUT {echo} -d {net} -j DROP");
    }
    if let Some(n) = spec.icmp_police {
        let limit = hashlimit(n, "lab-echo", false);
        let _ = writeln!(out, "-A INPUT {echo} {limit} -j DROP");
    }
    if let Some(n) = spec.syn_limit {
        let limit = hashlimit(n, "lab-syn", true);
        let _ = writeln!(out, "-A INPUT -p tcp --syn {limit} -j DROP");
    }
    for rule in spec
        .port_rules
        .iter()
        .filter(|r| r.target.addr().is_ipv6() == v6)
    {
        let verdict = match rule.action {
            PortAction::Drop => "DROP".to_string(),
            PortAction::Reject(how) => format!("REJECT --reject-with {}", how.iptables(v6)),
        };
        let base = format!("-A INPUT -p tcp -d {}", rule.target);
        if rule.ports.is_all() {
            let _ = writeln!(out, "{base} -j {verdict}");
        }
        for range in rule.ports.ranges() {
            let _ = writeln!(
                out,
                "{base} --dport {}:{} -j {verdict}",
                range.start(),
                range.end()
            );
        }
    }
    out.push_str("COMMIT\n");
    out
}

/// A hashlimit match that is true above `per_sec` (per source address when `per_source`).
fn hashlimit(per_sec: u32, name: &str, per_source: bool) -> String {
    let mode = if per_source {
        " --hashlimit-mode srcip"
    } else {
        ""
    };
    format!(
        "-m hashlimit --hashlimit-above {per_sec}/sec --hashlimit-burst {}{mode} \
         --hashlimit-name {name}",
        burst(per_sec)
    )
}

/// Firewall mark of the duplicates the relay sends for queue `q` (`RELAY_MARK | q`): the
/// queue of the same link and direction lets them pass, the others take them as usual.
pub(crate) const RELAY_MARK: u32 = 0x1ab0;

/// The NFQUEUE number of one link and direction.
pub(crate) fn queue_num(link: Link, dir: Direction) -> u16 {
    (link.index() * 2 + dir.index()) as u16
}

/// The router's mangle table sending each impaired link direction to its NFQUEUE, where the
/// packets enter the router from that link (PREROUTING) or leave the router onto it
/// (POSTROUTING) — so router-originated packets (ICMP errors) cross the near link too.
/// IPv6 neighbour discovery is never queued. No `--queue-bypass`: without the relay, packets
/// are dropped, never passed unimpaired.
pub(crate) fn router_rules(impaired: &[(Link, Direction)], v6: bool) -> String {
    let mut out = String::from("*mangle\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n");
    for &(link, dir) in impaired {
        let (chain, match_dev) = match (link, dir) {
            (Link::Near, Direction::ToFar) => ("PREROUTING", format!("-i {ROUTER_NEAR_DEV}")),
            (Link::Far, Direction::ToScanner) => ("PREROUTING", format!("-i {ROUTER_FAR_DEV}")),
            (Link::Far, Direction::ToFar) => ("POSTROUTING", format!("-o {ROUTER_FAR_DEV}")),
            (Link::Near, Direction::ToScanner) => ("POSTROUTING", format!("-o {ROUTER_NEAR_DEV}")),
        };
        let q = queue_num(link, dir);
        if v6 {
            for nd in ND_TYPES {
                let _ = writeln!(
                    out,
                    "-A {chain} {match_dev} -p ipv6-icmp --icmpv6-type {nd} -j RETURN"
                );
            }
        }
        let _ = writeln!(
            out,
            "-A {chain} {match_dev} -m mark ! --mark {:#x} -j NFQUEUE --queue-num {q}",
            RELAY_MARK | u32::from(q)
        );
    }
    out.push_str("COMMIT\n");
    out
}

/// ICMPv6 neighbour discovery, which the relay leaves alone.
const ND_TYPES: [&str; 5] = [
    "router-solicitation",
    "router-advertisement",
    "neighbour-solicitation",
    "neighbour-advertisement",
    "redirect",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::Reject;
    use crate::builder::LabBuilder;

    #[test]
    fn far_rules_follow_the_spec_in_order() {
        let spec = LabBuilder::new("t")
            .no_echo("198.18.1.7")
            .icmp_police(1000)
            .syn_limit(200)
            .drop_ports("198.18.1.5", 1000..=1999)
            .reject("198.18.1.6", &[25], Reject::AdminProhibited)
            .reject("2001:db8:1::6", &[25], Reject::AdminProhibited)
            .spec()
            .unwrap();
        let v4 = far_rules(&spec, false);
        let expected = "*filter\n:INPUT ACCEPT [0:0]\n\
            -A INPUT -p icmp --icmp-type echo-request -d 198.18.1.7/32 -j DROP\n\
            -A INPUT -p icmp --icmp-type echo-request -m hashlimit --hashlimit-above 1000/sec \
            --hashlimit-burst 100 --hashlimit-name lab-echo -j DROP\n\
            -A INPUT -p tcp --syn -m hashlimit --hashlimit-above 200/sec --hashlimit-burst 20 \
            --hashlimit-mode srcip --hashlimit-name lab-syn -j DROP\n\
            -A INPUT -p tcp -d 198.18.1.5/32 --dport 1000:1999 -j DROP\n\
            -A INPUT -p tcp -d 198.18.1.6/32 --dport 25:25 -j REJECT --reject-with \
            icmp-admin-prohibited\nCOMMIT\n";
        assert_eq!(v4, expected);
        let v6 = far_rules(&spec, true);
        assert!(
            v6.contains(
                "-d 2001:db8:1::6/128 --dport 25:25 -j REJECT --reject-with icmp6-adm-prohibited"
            ),
            "{v6}"
        );
        assert!(!v6.contains("198.18"), "{v6}");
    }

    #[test]
    fn router_rules_queue_each_impaired_link_direction_where_it_touches_the_router() {
        let rules = router_rules(
            &[
                (Link::Far, Direction::ToScanner),
                (Link::Near, Direction::ToScanner),
            ],
            false,
        );
        assert!(rules.starts_with("*mangle\n"), "{rules}");
        assert!(
            rules.contains(
                "-A PREROUTING -i far0 -m mark ! --mark 0x1ab3 -j NFQUEUE --queue-num 3\n"
            ),
            "{rules}"
        );
        assert!(
            rules.contains(
                "-A POSTROUTING -o near0 -m mark ! --mark 0x1ab1 -j NFQUEUE --queue-num 1\n"
            ),
            "{rules}"
        );
        assert!(
            !rules.contains("queue-num 0") && !rules.contains("icmpv6"),
            "{rules}"
        );
        let v6 = router_rules(&[(Link::Near, Direction::ToFar)], true);
        assert!(v6.contains("-A PREROUTING -i near0 -p ipv6-icmp --icmpv6-type neighbour-solicitation -j RETURN\n"), "{v6}");
    }
}
