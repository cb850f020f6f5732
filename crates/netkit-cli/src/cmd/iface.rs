//! `netkit iface`: list interfaces, show one, print its addresses, or test whether it is up
//! (seed recipes 4-6).

use netkit::report::{IfAddr, Interface};
use netkit::Family;
use serde::Serialize;

use crate::exit::Exit;
use crate::output::Printer;

const EXAMPLES: &str = "\
Examples:
  netkit iface                       every interface, also down ones and ones without addresses
  netkit iface show eth0             one interface
  netkit iface addr eth0 -6          its IPv6 addresses, one per line, for scripts
  netkit iface status eth0 && echo up    exit 0 when up and running, 1 when not
  netkit --json iface                one JSON object per interface";

/// Arguments of `netkit iface`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// What to report (default: every interface).
    #[command(subcommand)]
    pub view: Option<View>,
}

/// `iface show|addr|status`.
#[derive(Debug, clap::Subcommand)]
pub enum View {
    /// Show one interface.
    Show {
        /// Interface name.
        name: String,
    },
    /// Print the interface's addresses, one per line.
    Addr {
        /// Interface name.
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
        /// Interface name.
        name: String,
    },
}

/// Runs `iface`.
pub fn run(args: Args, out: &Printer) -> anyhow::Result<Exit> {
    match args.view {
        None => {
            for iface in netkit::iface::list()? {
                print_interface(out, &iface)?;
            }
            Ok(Exit::Success)
        }
        Some(View::Show { name }) => {
            print_interface(out, &netkit::iface::show(&name)?)?;
            Ok(Exit::Success)
        }
        Some(View::Addr { name, ipv4, ipv6 }) => {
            let family = match (ipv4, ipv6) {
                (true, _) => Family::V4,
                (_, true) => Family::V6,
                _ => Family::Any,
            };
            for addr in netkit::iface::addrs(&name, family)? {
                print_addr(out, &name, &addr)?;
            }
            Ok(Exit::Success)
        }
        Some(View::Status { name }) => print_status(out, &netkit::iface::show(&name)?),
    }
}

fn print_interface(out: &Printer, iface: &Interface) -> std::io::Result<()> {
    if out.json() {
        return out.record("iface", iface);
    }
    let state = out.paint(&iface.operstate.to_uppercase(), iface.is_up());
    let mtu = iface.mtu.map(|m| format!(" mtu {m}")).unwrap_or_default();
    out.line(&format!(
        "{}: {}: <{}>{mtu} state {state}",
        iface.index,
        iface.name,
        iface.flags.join(",")
    ))?;
    if let Some(mac) = &iface.mac {
        out.line(&format!("    link {mac}"))?;
    }
    for addr in &iface.addrs {
        out.line(&format!(
            "    {} {}/{}",
            family_name(addr),
            addr.addr,
            addr.prefix
        ))?;
    }
    Ok(())
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

fn family_name(addr: &IfAddr) -> &'static str {
    match addr.family {
        netkit::report::AddrFamily::Inet => "inet",
        netkit::report::AddrFamily::Inet6 => "inet6",
    }
}
