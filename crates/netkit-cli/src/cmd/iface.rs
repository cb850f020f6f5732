//! `netkit iface`: list interfaces, show one, print its addresses, test whether it is up, or
//! watch link and address events (seed recipes 4-6, issue 17).

use std::fmt::Write as _;

use clap::builder::TypedValueParser;

use netkit::iface::Watcher;
use netkit::report::iface::{AddrEvent, Event, IfAddr, Interface, LinkChange, LinkEvent};
use netkit::text::one_line;
use netkit::Family;
use serde::Serialize;

use crate::exit::Exit;
use crate::output::Printer;

const EXAMPLES: &str = "\
Everything comes from the kernel over rtnetlink (speed and duplex from ethtool netlink), so
it is right in any network namespace, also under `nsenter --net` where /sys is the host's.
A NAME is an interface name or one of its alternative names (ip link property add ... altname):
at most 15 bytes, the kernel's limit, or 127 for an alternative name; an empty or longer NAME
is refused as bad input (exit 2), saying which.
Bytes of a name (alias, address label) that are not UTF-8 are shown as \\xNN, and a NAME is
taken either way: as the bytes, or written so.

Examples:
  netkit iface                       every interface, also down ones and ones without addresses
  netkit iface show eth0             one interface: kind, parent, master, counters, addresses
  netkit iface addr eth0 -6          its IPv6 addresses, one per line, for scripts
  netkit iface status eth0 && echo up    exit 0 when up and running, 1 when not
  netkit iface watch                 link and address events as they happen, until Ctrl-C
  netkit --json iface watch eth0     eth0's events as JSON Lines; ends when eth0 goes away
  netkit --json iface                one JSON object per interface";

/// Arguments of `netkit iface`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// What to report (default: every interface).
    #[command(subcommand)]
    pub view: Option<View>,
}

/// `iface show|addr|status|watch`.
#[derive(Debug, clap::Subcommand)]
pub enum View {
    /// Show one interface.
    Show {
        /// Interface name (or alternative name).
        #[arg(value_parser = name_parser())]
        name: String,
    },
    /// Print the interface's addresses, one per line (not one that failed duplicate address
    /// detection: ip's dadfailed).
    Addr {
        /// Interface name (or alternative name).
        #[arg(value_parser = name_parser())]
        name: String,
        /// IPv4 addresses only.
        #[arg(short = '4', conflicts_with = "ipv6")]
        ipv4: bool,
        /// IPv6 addresses only.
        #[arg(short = '6')]
        ipv6: bool,
    },
    /// Print up or down; exit 0 when up and running, 1 otherwise.
    Status {
        /// Interface name (or alternative name).
        #[arg(value_parser = name_parser())]
        name: String,
    },
    /// Print link and address events as they happen, until interrupted.
    ///
    /// Link events: added, removed, renamed, up, down (administrative), carrier, no-carrier,
    /// flags (others than those: promisc, multicast, arp off, ...), operstate, mtu, mac,
    /// master, alias, altnames; each says what changed (in JSON, 'changed' lists everything
    /// that did). Address events: added, removed, changed. Once subscribed, 'watching ...' on
    /// stderr says so (not with -q).
    Watch {
        /// Only this interface's events; the watch ends when it is removed.
        #[arg(value_parser = name_parser())]
        name: Option<String>,
    },
}

/// Interface names as bytes: one that is not UTF-8 is escaped as the listing shows it
/// (`bad\xff`), so that it names the interface it is. An empty name, or one longer than the
/// kernel allows any interface name, is refused here and says why.
fn name_parser() -> impl TypedValueParser<Value = String> {
    clap::builder::OsStringValueParser::new().try_map(|name| {
        let name = netkit::iface::escape_bytes(name.as_encoded_bytes());
        netkit::iface::check_name(&name).map(|()| name)
    })
}

/// Runs `iface`.
pub fn run(args: Args, out: &Printer) -> anyhow::Result<Exit> {
    match args.view {
        None => {
            print_interfaces(out, &netkit::iface::list()?)?;
            Ok(Exit::Success)
        }
        Some(View::Show { name }) => {
            print_interfaces(out, &[netkit::iface::show(&name)?])?;
            Ok(Exit::Success)
        }
        Some(View::Addr { name, ipv4, ipv6 }) => {
            let family = match (ipv4, ipv6) {
                (true, _) => Family::V4,
                (_, true) => Family::V6,
                _ => Family::Any,
            };
            let iface = netkit::iface::show(&name)?;
            // An address that failed duplicate address detection is not one to use.
            let usable = iface.addrs.iter().filter(|a| !a.dad_failed());
            for addr in usable.filter(|a| family.admits(&a.addr)) {
                print_addr(out, &iface.name, addr)?;
            }
            Ok(Exit::Success)
        }
        Some(View::Status { name }) => print_status(out, &netkit::iface::show(&name)?),
        Some(View::Watch { name }) => watch(out, name.as_deref()),
    }
}

/// The whole listing in one write, as `ip` leaves it to stdio's buffer when stdout is not a
/// terminal: two thousand interfaces are not two thousand writes (each one waking the reader
/// of a pipe), and a thousand addresses are a thousand lines.
fn print_interfaces(out: &Printer, ifaces: &[Interface]) -> std::io::Result<()> {
    let mut lines = Vec::new();
    for iface in ifaces {
        match out.json() {
            true => lines.push(json_line("iface", iface)?),
            false => lines.extend(interface_text(out, iface)),
        }
    }
    if lines.is_empty() {
        return Ok(());
    }
    out.line(&lines.join("\n"))
}

/// One JSON Lines record as text, to go out in one write (the printer's own `record` hands
/// the serializer a line-buffered stdout, which writes a large record a kilobyte at a time).
fn json_line(kind: &str, record: &impl Serialize) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    crate::output::write_record(&mut bytes, kind, record)?;
    bytes.pop(); // the newline, which `line` adds back
    String::from_utf8(bytes).map_err(std::io::Error::other)
}

/// The lines `ip addr` would print, in netkit's words.
fn interface_text(out: &Printer, iface: &Interface) -> Vec<String> {
    let mut lines = vec![headline(out, iface)];
    lines.extend(details(iface).map(|details| format!("    {details}")));
    lines.extend(iface.mac.iter().map(|mac| format!("    link {mac}")));
    lines.extend(
        iface
            .altnames
            .iter()
            .map(|alt| format!("    altname {}", clean(alt))),
    );
    lines.extend(
        iface
            .alias
            .iter()
            .map(|alias| format!("    alias {}", clean(alias))),
    );
    let mut addrs = String::with_capacity(iface.addrs.len() * 64);
    for addr in &iface.addrs {
        if !addrs.is_empty() {
            addrs.push('\n');
        }
        addrs.push_str("    ");
        push_addr(&mut addrs, &iface.name, addr);
    }
    if !addrs.is_empty() {
        lines.push(addrs);
    }
    let s = &iface.stats;
    lines.push(format!(
        "    rx bytes {} packets {} errors {} dropped {}",
        s.rx_bytes, s.rx_packets, s.rx_errors, s.rx_dropped
    ));
    lines.push(format!(
        "    tx bytes {} packets {} errors {} dropped {}",
        s.tx_bytes, s.tx_packets, s.tx_errors, s.tx_dropped
    ));
    lines
}

/// `3: eth0: <BROADCAST,MULTICAST,UP,RUNNING,LOWER_UP> mtu 1500 state UP qdisc fq_codel txqlen 1000`
fn headline(out: &Printer, iface: &Interface) -> String {
    let state = out.paint(&iface.operstate.to_uppercase(), iface.is_up());
    let mut line = format!(
        "{}: {}: <{}>",
        iface.index,
        clean(&iface.name),
        iface.flags.join(",")
    );
    if let Some(mtu) = iface.mtu {
        line.push_str(&format!(" mtu {mtu}"));
    }
    line.push_str(&format!(" state {state}"));
    if let Some(qdisc) = &iface.qdisc {
        line.push_str(&format!(" qdisc {}", clean(qdisc)));
    }
    if let Some(txqlen) = iface.txqlen {
        line.push_str(&format!(" txqlen {txqlen}"));
    }
    line
}

/// `kind veth parent v1 master br0 speed 10000Mb/s duplex full`, when any is known.
fn details(iface: &Interface) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(kind) = &iface.kind {
        parts.push(format!("kind {}", clean(kind)));
    }
    match (&iface.parent, iface.parent_index, iface.parent_netnsid) {
        (Some(parent), _, _) => parts.push(format!("parent {}", clean(parent))),
        (None, Some(index), Some(netnsid)) => {
            parts.push(format!("parent index {index} netnsid {netnsid}"))
        }
        (None, Some(index), None) => parts.push(format!("parent index {index}")),
        _ => {}
    }
    if let Some(master) = &iface.master {
        parts.push(format!("master {}", clean(master)));
    }
    if let Some(speed) = iface.speed_mbps {
        parts.push(format!("speed {speed}Mb/s"));
    }
    if let Some(duplex) = &iface.duplex {
        parts.push(format!("duplex {duplex}"));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// `inet 198.18.0.1/24 brd 198.18.0.255 scope global label eth0:1 secondary`, as `ip addr`
/// prints it (the label only when it differs from the interface name, `permanent` and
/// infinite lifetimes left out).
fn addr_text(iface: &str, addr: &IfAddr) -> String {
    let mut text = String::with_capacity(64);
    push_addr(&mut text, iface, addr);
    text
}

/// [`addr_text`], appended to `text` (writing to a `String` cannot fail).
fn push_addr(text: &mut String, iface: &str, addr: &IfAddr) {
    let _ = write!(text, "{} {}", addr.family.name(), addr.addr);
    if let Some(peer) = addr.peer {
        let _ = write!(text, " peer {peer}");
    }
    let _ = write!(text, "/{}", addr.prefix);
    if let Some(brd) = addr.broadcast {
        let _ = write!(text, " brd {brd}");
    }
    let _ = write!(text, " scope {}", addr.scope);
    if let Some(label) = addr.label.as_ref().filter(|l| *l != iface) {
        let _ = write!(text, " label {}", clean(label));
    }
    for flag in addr.flags.iter().filter(|f| *f != "permanent") {
        let _ = write!(text, " {flag}");
    }
    if let Some(valid) = addr.valid_lft_s {
        let _ = write!(text, " valid {valid}s");
    }
    if let Some(preferred) = addr.preferred_lft_s {
        let _ = write!(text, " preferred {preferred}s");
    }
}

/// Names, labels and aliases are whatever someone set; for the terminal: control characters escaped, a backslash left as
/// it is, so that a name whose bytes are not UTF-8 reads as the library escaped it (`bad\xff`)
/// and can be given back as NAME.
fn clean(text: &str) -> String {
    one_line(text)
}

#[derive(Serialize)]
struct AddrRecord<'a> {
    iface: &'a str,
    #[serde(flatten)]
    addr: &'a IfAddr,
}

fn print_addr(out: &Printer, name: &str, addr: &IfAddr) -> std::io::Result<()> {
    if out.json() {
        return out.record("addr", &AddrRecord { iface: name, addr });
    }
    out.line(&addr.addr.to_string())
}

fn print_status(out: &Printer, iface: &Interface) -> anyhow::Result<Exit> {
    if out.json() {
        out.record("iface", iface)?;
    } else {
        let word = if iface.is_up() { "up" } else { "down" };
        out.line(&out.paint(word, iface.is_up()))?;
    }
    Ok(if iface.is_up() {
        Exit::Success
    } else {
        Exit::Negative
    })
}

/// Streams events until interrupted, or until the one interface watched is removed.
fn watch(out: &Printer, name: Option<&str>) -> anyhow::Result<Exit> {
    let mut watcher = Watcher::new(name)?;
    if !out.quiet() {
        let what = name.map_or("every interface".to_string(), clean);
        eprintln!("watching link and address events of {what} (Ctrl-C to stop)");
    }
    while !watcher.gone() {
        for event in watcher.next_events()? {
            print_event(out, &event)?;
        }
    }
    Ok(Exit::Success)
}

fn print_event(out: &Printer, event: &Event) -> std::io::Result<()> {
    match (event, out.json()) {
        (Event::Link(link), true) => out.record("link", link),
        (Event::Addr(addr), true) => out.record("addr", addr),
        (Event::Link(link), false) => out.line(&link_event_text(link)),
        (Event::Addr(addr), false) => out.line(&addr_event_text(addr)),
    }
}

/// `eth0: link up`, `eth0: link mtu 9000`, `eth0: link txqlen 500`, `eth1: link renamed from eth0`, `eth0: link flags
/// +PROMISC`, `eth0: link alias uplink`, ...
fn link_event_text(e: &LinkEvent) -> String {
    let iface = &e.iface;
    let detail = match e.event {
        LinkChange::Added => iface.kind.as_deref().map(clean),
        LinkChange::Renamed => e.old_name.as_deref().map(|o| format!("from {}", clean(o))),
        LinkChange::Operstate => Some(iface.operstate.clone()),
        LinkChange::Mtu => iface.mtu.map(|m| m.to_string()),
        LinkChange::Txqlen => iface.txqlen.map(|q| q.to_string()),
        LinkChange::Mac => iface.mac.clone(),
        LinkChange::Master => Some(iface.master.as_deref().map_or("none".into(), clean)),
        LinkChange::Flags => e
            .old_flags
            .as_deref()
            .map(|old| flag_changes(old, &iface.flags)),
        LinkChange::Alias => Some(iface.alias.as_deref().map_or("none".into(), clean)),
        LinkChange::Altnames => Some(match iface.altnames.is_empty() {
            true => "none".to_string(),
            false => clean(&iface.altnames.join(" ")),
        }),
        _ => None,
    };
    let mut text = format!("{}: link {}", clean(&iface.name), e.event.name());
    if let Some(detail) = detail {
        text.push(' ');
        text.push_str(&detail);
    }
    text
}

/// `+PROMISC -NOARP`: the flags set and the flags cleared.
fn flag_changes(old: &[String], new: &[String]) -> String {
    let set = new
        .iter()
        .filter(|f| !old.contains(f))
        .map(|f| format!("+{f}"));
    let cleared = old
        .iter()
        .filter(|f| !new.contains(f))
        .map(|f| format!("-{f}"));
    set.chain(cleared).collect::<Vec<_>>().join(" ")
}

/// `eth0: addr added inet 198.18.0.1/24 brd 198.18.0.255 scope global`
fn addr_event_text(e: &AddrEvent) -> String {
    format!(
        "{}: addr {} {}",
        clean(&e.iface),
        e.event.name(),
        addr_text(&e.iface, &e.addr)
    )
}
