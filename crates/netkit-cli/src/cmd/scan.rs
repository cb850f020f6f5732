//! `netkit scan TARGET...`: TCP connect scan (issue 6).

use std::path::PathBuf;
use std::time::Duration;

use netkit::PortSet;

use crate::exit::Exit;
use crate::output::Printer;
use crate::parse;

const EXAMPLES: &str = "\
Examples:
  netkit scan 127.0.0.1 -p 1-1024                 a port range
  netkit scan ::1 -p all                          every port, IPv6
  netkit scan 198.18.0.0/28 --top 100 -o out.txt  the 100 ports most often found open
  netkit --json scan host.example -p 22,80,443 --banner
Open = connected, closed = refused, filtered = no answer after the retries.";

/// Arguments of `netkit scan`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Targets: addresses, names, ranges, CIDR blocks, @FILE.
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Ports: N, N-M, lists, all, topN (default: top1000).
    #[arg(short = 'p', long = "ports", value_name = "PORTS", value_parser = parse::ports, conflicts_with = "top")]
    pub ports: Option<PortSet>,
    /// The N ports most often found open (ranked by real-world frequency).
    #[arg(long, value_name = "N", value_parser = parse::top)]
    pub top: Option<PortSet>,
    /// Connection attempts in flight at once (default: from the open-files limit).
    #[arg(long, value_name = "N", value_parser = parse::positive_count)]
    pub concurrency: Option<usize>,
    /// How long to wait for one connect.
    #[arg(long, value_name = "DUR", value_parser = parse::positive_duration, default_value = "1s")]
    pub timeout: Duration,
    /// Attempts again for ports that did not answer.
    #[arg(long, value_name = "N", value_parser = parse::retries, default_value = "1")]
    pub retries: u32,
    /// Connection attempts per second at most.
    #[arg(long, value_name = "PPS", value_parser = parse::rate)]
    pub rate: Option<u64>,
    /// Also write the results to FILE.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Read the first bytes each open service sends (sanitised).
    #[arg(long)]
    pub banner: bool,
    /// Allow blocks of more than 2^24 addresses.
    #[arg(long)]
    pub force: bool,
}

/// Runs the scan.
pub fn run(args: Args, _out: &Printer) -> anyhow::Result<Exit> {
    let _targets =
        netkit::TargetList::parse(&args.targets, args.force)?.resolve(netkit::Family::Any)?;
    super::not_implemented("scan")
}
