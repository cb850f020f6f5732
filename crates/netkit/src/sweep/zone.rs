//! The zones of a sweep's targets (`fe80::1%eth0`, issue 16): the socket address a probe to a
//! target goes to carries the zone it was given with, or a link-local target is reached
//! through no interface, or the wrong one. Most sweeps have no zone at all and pay nothing.

use std::net::{IpAddr, SocketAddr};

use crate::target::{zone_name, zoned, Targets};

/// The targets whose zones probes need, when any target has one.
#[derive(Debug, Clone, Default)]
pub struct Zones(Option<Targets>);

impl Zones {
    /// The zones of `targets` (nothing kept when none has one).
    pub fn of(targets: &Targets) -> Zones {
        Zones(targets.has_zones().then(|| targets.clone()))
    }

    /// Where a probe to the target at `index`, `addr`, goes: `addr` in its zone, port 0.
    pub fn dst(&self, index: u64, addr: IpAddr) -> SocketAddr {
        let target = self.0.as_ref().and_then(|t| t.get(u128::from(index)));
        let zone = target.filter(|t| t.addr == addr).map_or(0, |t| t.zone);
        zoned(addr, 0, zone)
    }

    /// The zone of the target at `index`, as records show it ([`zone_name`]): `None` without.
    pub fn name(&self, index: u64) -> Option<String> {
        let target = self.0.as_ref()?.get(u128::from(index))?;
        zone_name(target.zone)
    }
}
