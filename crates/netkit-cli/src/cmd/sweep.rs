//! `netkit sweep TARGET...`: live and inactive hosts, once or every N seconds (issue 5).

use std::time::Duration;

use netkit::Endpoint;

use crate::exit::Exit;
use crate::output::Printer;
use crate::parse;

const EXAMPLES: &str = "\
Examples:
  netkit sweep 192.168.0.100-200                  which hosts answer, which are inactive
  netkit sweep 198.18.0.0/24 2001:db8::/120 --dead
  netkit sweep @hosts.txt --every 5s --rounds 12  report hosts going up or down
  netkit sweep 10.0.0.0/24 --method tcp:22        where ICMP is filtered
A CIDR block includes every address in it, network and broadcast addresses too (as nmap).
Blocks of more than 2^24 addresses need --force.";

/// Arguments of `netkit sweep`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Targets: addresses, names, 192.168.0.100-200, 10.0.0.5-10.0.1.20, CIDR blocks, @FILE.
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<String>,
    /// How long to wait for a reply after the last probe to a host.
    #[arg(long, value_name = "DUR", value_parser = parse::positive_duration, default_value = "1s")]
    pub timeout: Duration,
    /// Probes to send again to a silent host.
    #[arg(long, value_name = "N", value_parser = parse::retries, default_value = "1")]
    pub retries: u32,
    /// Probes per second at most.
    #[arg(long, value_name = "PPS", value_parser = parse::rate)]
    pub rate: Option<u64>,
    /// Sweep again every DUR and report changes.
    #[arg(long, value_name = "DUR", value_parser = parse::positive_duration)]
    pub every: Option<Duration>,
    /// With --every: stop after N rounds.
    #[arg(long, value_name = "N", requires = "every", value_parser = parse::positive_count)]
    pub rounds: Option<usize>,
    /// Print only the live hosts.
    #[arg(long, conflicts_with = "dead")]
    pub alive: bool,
    /// Print only the inactive hosts.
    #[arg(long)]
    pub dead: bool,
    /// How to probe: icmp, or tcp:PORT (connected or refused both mean alive).
    #[arg(long, value_name = "icmp|tcp:PORT", value_parser = parse::method, default_value = "icmp")]
    pub method: parse::Method,
    /// Serve Prometheus metrics on this address (with --every).
    #[arg(long, value_name = "ADDR", value_parser = parse::listen_endpoint)]
    pub metrics: Option<Endpoint>,
    /// Allow blocks of more than 2^24 addresses.
    #[arg(long)]
    pub force: bool,
}

/// Runs the sweep.
pub fn run(args: Args, _out: &Printer) -> anyhow::Result<Exit> {
    let _targets =
        netkit::TargetList::parse(&args.targets, args.force)?.resolve(netkit::Family::Any)?;
    super::not_implemented("sweep")
}
