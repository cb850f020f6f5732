//! The records of `netkit iface` (docs/json.md): an interface with its addresses and counters,
//! and the link and address events of `iface watch`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// One network interface (`netkit iface`, `iface show`), as rtnetlink reports it.
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
    /// Every IPv4 and IPv6 address, in the kernel's order.
    pub addrs: Vec<IfAddr>,
    /// The driver's link kind (`veth`, `bridge`, `macvlan`, `tun`, `vlan`, ...); none for
    /// physical devices and loopback.
    pub kind: Option<String>,
    /// The link this one is paired with or stacked on (`ip`'s `@link`): a veth's peer, a
    /// macvlan's or vlan's lower device. Its name when it lives in this namespace.
    pub parent: Option<String>,
    /// The index of `parent`, also when it lives in another namespace.
    pub parent_index: Option<u32>,
    /// The namespace id (as `ip netns list-id` shows it) of a parent in another namespace.
    pub parent_netnsid: Option<i32>,
    /// The bridge or bond this interface is a port of.
    pub master: Option<String>,
    /// Queueing discipline of the transmit queue (`noqueue`, `fq_codel`, `noop`, ...).
    pub qdisc: Option<String>,
    /// Transmit queue length in packets.
    pub txqlen: Option<u32>,
    /// Alternative names (`ip link property add dev X altname Y`); each one names the
    /// interface wherever a name is taken.
    pub altnames: Vec<String>,
    /// The interface's alias (`ip link set X alias TEXT`).
    pub alias: Option<String>,
    /// Link speed in Mb/s as the driver reports it through ethtool; none when it reports none.
    pub speed_mbps: Option<u32>,
    /// `full` or `half`, as the driver reports it through ethtool.
    pub duplex: Option<String>,
    /// Packet, byte, error and drop counters.
    #[serde(flatten)]
    pub stats: LinkStats,
}

impl Interface {
    /// Up and running: what `iface status` reports as `up`.
    pub fn is_up(&self) -> bool {
        self.up && self.running
    }

    /// Whether `name` is this interface's name or one of its alternative names.
    pub fn is_named(&self, name: &str) -> bool {
        self.name == name || self.altnames.iter().any(|alt| alt == name)
    }
}

/// The counters of an interface (the kernel's 64-bit link statistics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStats {
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Bad packets received.
    pub rx_errors: u64,
    /// Packets received and dropped (no buffer space, unknown protocol, ...).
    pub rx_dropped: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Packets that failed to go out.
    pub tx_errors: u64,
    /// Packets dropped on the way out.
    pub tx_dropped: u64,
}

/// One address of an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IfAddr {
    /// `inet` or `inet6`, as `ip` names them.
    pub family: AddrFamily,
    /// The local address, without a scope suffix.
    pub addr: IpAddr,
    /// Prefix length in bits.
    pub prefix: u8,
    /// The other end of a point-to-point address (`ip addr add A peer B`).
    pub peer: Option<IpAddr>,
    /// The IPv4 broadcast address, when one is set.
    pub broadcast: Option<IpAddr>,
    /// `global`, `site`, `link`, `host`, `nowhere`, or the number of another scope.
    pub scope: String,
    /// The IPv4 address label (`ip addr add ... label eth0:1`); the interface name when no
    /// label was given. None for IPv6.
    pub label: Option<String>,
    /// Address flags as `ip` names them: `permanent` or `dynamic` (one of the two, always),
    /// `secondary` (`temporary` for IPv6), `deprecated`, `tentative`, `nodad`, `optimistic`,
    /// `dadfailed`, `home`, `mngtmpaddr`, `noprefixroute`, `autojoin`, `stable-privacy`.
    pub flags: Vec<String>,
    /// Seconds this address stays valid; none for forever.
    pub valid_lft_s: Option<u32>,
    /// Seconds this address stays preferred (0: deprecated); none for forever.
    pub preferred_lft_s: Option<u32>,
}

impl IfAddr {
    /// Whether duplicate address detection found this address in use by another node
    /// (`dadfailed`): the kernel keeps it, tentative, and never uses it.
    pub fn dad_failed(&self) -> bool {
        self.flags.iter().any(|flag| flag == "dadfailed")
    }
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

impl AddrFamily {
    /// `inet` or `inet6`.
    pub fn name(self) -> &'static str {
        match self {
            AddrFamily::Inet => "inet",
            AddrFamily::Inet6 => "inet6",
        }
    }
}

/// What `iface watch` reports: a link or an address changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A link appeared, went away or changed state.
    Link(Box<LinkEvent>),
    /// An address was added, removed or changed.
    Addr(AddrEvent),
}

/// A link event, with the interface as it is after the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkEvent {
    /// What happened.
    pub event: LinkChange,
    /// The name before a `renamed` event.
    pub old_name: Option<String>,
    /// The flags before a `flags` event.
    #[serde(default)]
    pub old_flags: Option<Vec<String>>,
    /// Everything that changed in the kernel message this event comes from, by field name
    /// (`name`, `up`, `running`, `flags`, `carrier`, `mtu`, `mac`, `operstate`, `kind`,
    /// `parent`, `master`, `qdisc`, `txqlen`, `altnames`, `alias`, `speed_mbps`, `duplex`);
    /// empty for `added` and `removed`.
    #[serde(default)]
    pub changed: Vec<String>,
    /// The interface after the change (its addresses included).
    #[serde(flatten)]
    pub iface: Interface,
}

/// What happened to a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkChange {
    /// The link appeared.
    Added,
    /// The link went away.
    Removed,
    /// The link got a new name.
    Renamed,
    /// Set administratively up (`ip link set X up`).
    Up,
    /// Set administratively down.
    Down,
    /// The lower layer got a carrier (`IFLA_CARRIER`; `LOWER_UP` while the link is up).
    Carrier,
    /// The lower layer lost its carrier (`ip`'s `NO-CARRIER` once the link is up).
    NoCarrier,
    /// Flags other than those `up`, `down`, `carrier` and `operstate` say changed
    /// (`PROMISC`, `MULTICAST`, `NOARP`, `ALLMULTI`, ...).
    Flags,
    /// The operational state changed (what `iface status` follows).
    Operstate,
    /// The MTU changed.
    Mtu,
    /// The transmit queue length changed (`ip link set X txqlen N`).
    Txqlen,
    /// The hardware address changed.
    Mac,
    /// The link joined or left a bridge or bond.
    Master,
    /// The alias was set, changed or cleared (`ip link set X alias TEXT`).
    Alias,
    /// An alternative name was added or removed (`ip link property add dev X altname Y`).
    Altnames,
}

impl LinkChange {
    /// The event's name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            LinkChange::Added => "added",
            LinkChange::Removed => "removed",
            LinkChange::Renamed => "renamed",
            LinkChange::Up => "up",
            LinkChange::Down => "down",
            LinkChange::Carrier => "carrier",
            LinkChange::NoCarrier => "no-carrier",
            LinkChange::Flags => "flags",
            LinkChange::Operstate => "operstate",
            LinkChange::Mtu => "mtu",
            LinkChange::Txqlen => "txqlen",
            LinkChange::Mac => "mac",
            LinkChange::Master => "master",
            LinkChange::Alias => "alias",
            LinkChange::Altnames => "altnames",
        }
    }
}

/// An address event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddrEvent {
    /// What happened.
    pub event: AddrChange,
    /// The interface's name.
    pub iface: String,
    /// The interface's index.
    pub index: u32,
    /// The address after the change; for `removed`, as the removal message describes it
    /// (its lifetimes at that moment).
    #[serde(flatten)]
    pub addr: IfAddr,
}

/// What happened to an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddrChange {
    /// The address was added.
    Added,
    /// The address was removed.
    Removed,
    /// Its flags or scope changed (duplicate address detection done, deprecated, ...).
    Changed,
}

impl AddrChange {
    /// The event's name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            AddrChange::Added => "added",
            AddrChange::Removed => "removed",
            AddrChange::Changed => "changed",
        }
    }
}
