//! Result records: plain serde types that the binary prints either as human text or as JSON
//! Lines. Field names are the JSON contract of SPEC.md; see `docs/json.md`.

use serde::{Deserialize, Serialize};

/// One network interface (`netkit iface`, `iface show`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// Interface name, e.g. `eth0`.
    pub name: String,
    /// Kernel interface index.
    pub index: u32,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Operationally running (`IFF_RUNNING`: carrier present).
    pub running: bool,
    /// Every flag that is set, by its kernel name (`UP`, `BROADCAST`, `LOWER_UP`, ...).
    pub flags: Vec<String>,
    /// Maximum transmission unit in bytes, when known.
    pub mtu: Option<u32>,
    /// Hardware address as `aa:bb:cc:dd:ee:ff`, when the interface has one.
    pub mac: Option<String>,
    /// RFC 2863 operational state as the kernel reports it (`up`, `down`, `unknown`, ...).
    pub operstate: String,
    /// Every IPv4 and IPv6 address with its prefix length.
    pub addrs: Vec<IfAddr>,
}

impl Interface {
    /// Up and running: what `iface status` reports as `up`.
    pub fn is_up(&self) -> bool {
        self.up && self.running
    }
}

/// One address of an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IfAddr {
    /// `inet` or `inet6`, as `ip` names them.
    pub family: AddrFamily,
    /// The address, without a scope suffix.
    pub addr: std::net::IpAddr,
    /// Prefix length in bits.
    pub prefix: u8,
}

/// The family of an interface address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddrFamily {
    /// IPv4.
    Inet,
    /// IPv6.
    Inet6,
}
