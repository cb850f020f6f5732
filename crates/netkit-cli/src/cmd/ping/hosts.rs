//! The hosts to ping, checked before anything is sent: names resolved one by one (one that
//! does not resolve is reported and left out, as fping does), then the kernel's route to each
//! (no route, a broadcast address without `-b`: reported and left out, as iputils refuses
//! them). Only when no host is left is the first failure the command's error.

use std::net::IpAddr;

use netkit::ping::route;
use netkit::{Family, ParseError, Target, TargetList};

use super::flags::Source;
use super::mapped;

/// Hosts pinged at once at most (each gets its own statistics and summary).
const MAX_HOSTS: u128 = 4096;

/// A host to ping and how to show it.
#[derive(Debug, Clone)]
pub struct Host {
    /// Its name (if given by name) and address.
    pub target: Target,
    /// The source address requests leave from.
    pub source: IpAddr,
    /// A broadcast or multicast address: many hosts answer, duplicates are expected.
    pub multicast: bool,
    /// iputils warns `WARNING: pinging broadcast address`: its route check found a broadcast
    /// address (`-b` given), which it makes only when no source address was given.
    pub broadcast_warning: bool,
    /// The zone link-local repliers are shown with: the target's, else `-I`'s interface.
    pub zone: u32,
    /// Show addresses that answer without looking up their names (iputils does when the
    /// host was given as an address, or with `-n`).
    pub numeric: bool,
}

impl Host {
    /// `addr`, one that answered, as iputils shows it: with the target's zone when it is the
    /// target's address or another link-local one (`fe80::1%eth0`: the hosts answering a
    /// ping to `ff02::1%eth0` are on that link).
    pub fn show(&self, addr: IpAddr) -> String {
        let link_local = matches!(addr, IpAddr::V6(v6) if v6.is_unicast_link_local());
        match addr == self.target.addr || link_local {
            true => netkit::target::show_zoned(addr, self.zone),
            false => addr.to_string(),
        }
    }
}

/// The hosts that can be pinged, and the failures of the others.
#[derive(Debug)]
pub struct Hosts {
    /// In the order given.
    pub hosts: Vec<Host>,
    /// One per host left out, in the order given.
    pub failures: Vec<netkit::Error>,
}

/// How hosts are chosen and checked.
#[derive(Debug, Clone, Copy)]
pub struct Choice<'a> {
    /// `-4`, `-6` or either.
    pub family: Family,
    /// `-I`.
    pub source: Option<&'a Source>,
    /// `-b`.
    pub broadcast_ok: bool,
    /// `-n` (or `-f`).
    pub numeric: bool,
    /// `--force`: blocks of more than 2^24 addresses are taken.
    pub force: bool,
}

/// Resolves and checks `words`.
pub fn choose(words: &[String], choice: Choice<'_>) -> anyhow::Result<Hosts> {
    let list = TargetList::parse(words, choice.force)?;
    if list.len() > MAX_HOSTS {
        let why = format!("ping takes at most {MAX_HOSTS} hosts; netkit sweep is for ranges");
        return Err(ParseError::new(words.join(" "), why).into());
    }
    let (targets, mut failures) = mapped::resolve(&list, choice.family)?;
    let mut hosts = Vec::new();
    for target in targets.iter() {
        let target = match mapped::target_as_ipv4(target, choice.family) {
            Ok(target) => target,
            Err(err) => {
                failures.push(err.into());
                continue;
            }
        };
        check_source_family(&target, choice.source)?;
        match check(target, choice) {
            Ok(host) => hosts.push(host),
            Err(err) if err.class() == netkit::ErrorClass::Input => failures.push(err),
            Err(err) => return Err(err.into()),
        }
    }
    if hosts.is_empty() && !failures.is_empty() {
        return Err(failures.swap_remove(0).into());
    }
    Ok(Hosts { hosts, failures })
}

fn check(target: Target, choice: Choice<'_>) -> Result<Host, netkit::Error> {
    let device = choice.source.and_then(Source::device);
    let zone = reply_zone(&target, device)?;
    let host = target.shown();
    let route = route(&host, target.socket_addr(0), device, choice.broadcast_ok)?;
    let source = choice.source.and_then(Source::addr);
    let from = source.unwrap_or(route.source);
    let target = unspecified_as_source(target, &host, from);
    Ok(Host {
        source: from,
        multicast: route.broadcast || target.addr.is_multicast(),
        broadcast_warning: route.broadcast && source.is_none(),
        // An address, in a short form too (`127.1`): iputils names no replier of one.
        numeric: choice.numeric || target.name.as_deref().is_none_or(is_address),
        zone,
        target,
    })
}

/// IPv4's unspecified address (`0.0.0.0`, `0`) as iputils pings it: a request to it goes to
/// this host, from `source`, and the reply comes from `source`, so `source` is the address
/// pinged (the PING line's, the replies' own, not a `DIFFERENT ADDRESS!`); the name stays as
/// given (`PING 0.0.0.0 (127.0.0.1)`). IPv6's `::` stays itself, as iputils keeps it.
fn unspecified_as_source(target: Target, host: &str, source: IpAddr) -> Target {
    match target.addr {
        IpAddr::V4(addr) if addr.is_unspecified() && source.is_ipv4() => Target {
            name: Some(host.into()),
            addr: source,
            zone: 0,
        },
        _ => target,
    }
}

/// Whether a target's name is an address: an IPv6 one (`::ffff:192.0.2.1`, kept as its name
/// when pinged as IPv4) or an IPv4 one in any form (`127.1`, read as inet_aton reads it).
fn is_address(name: &str) -> bool {
    name.parse::<std::net::Ipv6Addr>().is_ok() || netkit::ipv4::parse(name).is_some()
}

/// The zone a host's link-local repliers are shown with: the target's, else `-I`'s interface
/// (iputils shows `fe80::1%eth0` either way). A link-local target (or link-scoped multicast)
/// with neither is refused, as is one whose zone is not `-I`'s interface: no socket reaches it
/// (iputils sends the first where the kernel's first route for `fe80::/64` points, whichever
/// link that is, and the second nowhere, calling every request lost).
fn reply_zone(target: &Target, device: Option<&str>) -> Result<u32, ParseError> {
    let device_zone = device.and_then(netkit::target::interface_index);
    let link_scoped = matches!(target.addr, IpAddr::V6(v6) if netkit::target::takes_zone(v6));
    match (target.zone, device) {
        (_, _) if !link_scoped => Ok(target.zone),
        (0, None) => Err(ParseError::new(
            target.shown(),
            "a link-local address needs its interface: add %IFACE (fe80::1%eth0) or -I IFACE",
        )),
        // An interface that does not exist is -I's error, said by the route check.
        (0, Some(_)) => Ok(device_zone.unwrap_or(0)),
        (zone, Some(device)) if device_zone.is_some_and(|d| d != zone) => Err(ParseError::new(
            target.shown(),
            format!("the zone is not -I {device}'s interface: give one of them"),
        )),
        (zone, _) => Ok(zone),
    }
}

/// A source address of one family cannot send to a host of the other.
fn check_source_family(target: &Target, source: Option<&Source>) -> Result<(), ParseError> {
    let Some(addr) = source.and_then(Source::addr) else {
        return Ok(());
    };
    if addr.is_ipv4() == target.addr.is_ipv4() {
        return Ok(());
    }
    Err(ParseError::new(
        format!("-I {addr}"),
        format!(
            "a source address of the other family than {}",
            mapped::shown_with_family(target)
        ),
    ))
}
