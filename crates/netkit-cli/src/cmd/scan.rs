//! `netkit scan TARGET...`: TCP connect scan (issue 6).

mod sink;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use netkit::scan::{self, engine, limits, Config, Progress};
use netkit::{Family, PortSet, TargetList};

use crate::exit::Exit;
use crate::output::Printer;
use crate::parse;
use sink::Sink;

/// Ports scanned when neither `-p` nor `--top` is given.
const DEFAULT_TOP: usize = 1000;

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
    /// Targets: addresses, names, ranges, CIDR blocks (every address included, as nmap does),
    /// @FILE.
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Ports: N, N-M, lists, all, topN (default: top1000).
    #[arg(short = 'p', long = "ports", value_name = "PORTS", value_parser = parse::ports, conflicts_with = "top")]
    pub ports: Option<PortSet>,
    /// The N ports most often found open, ranked from netkit's data (internet-wide scan
    /// counts, then stated rules: see docs/top-ports.md) or from --top-source.
    #[arg(long, value_name = "N", value_parser = parse::top)]
    pub top: Option<usize>,
    /// What ranks --top and the default top 1000: netkit (its own data), nmap (the local nmap
    /// install's nmap-services, read at run time) or the path of an nmap-services file.
    #[arg(
        long,
        value_name = "SOURCE",
        default_value = "netkit",
        conflicts_with = "ports"
    )]
    pub top_source: netkit::scan::rank::TopSource,
    /// Connection attempts in flight at once (default: from the open-files limit).
    #[arg(long, value_name = "N", value_parser = parse::positive_count)]
    pub concurrency: Option<usize>,
    /// How long to wait for one connect (and, with --banner, for a service to speak first).
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

/// Runs the scan: exit 0 once every port got its answer, whatever the answers were.
pub fn run(args: Args, out: &Printer) -> anyhow::Result<Exit> {
    let targets = TargetList::parse(&args.targets, args.force)?.resolve(Family::Any)?;
    let config = config(&args)?;
    let total = engine::total(&targets, &config.ports);
    let mut sink = Sink::new(out, args.output.as_deref(), total)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| netkit::Error::io("start the async runtime", e))?;
    let progress = Arc::new(Progress::default());
    let summary = runtime.block_on(async {
        let ticker = sink.tick(Arc::clone(&progress));
        let summary = scan::run(&targets, config, progress, |open| sink.open(&open)).await;
        ticker.abort();
        summary
    })?;
    sink.summary(&summary)?;
    Ok(Exit::Success)
}

/// Turns the flags into the engine's settings, sizing the concurrency from the open-files limit.
fn config(args: &Args) -> anyhow::Result<Config> {
    let ports = match &args.ports {
        Some(ports) => ports.clone(),
        None => {
            let ranking = args.top_source.load()?;
            ranking.top(args.top.unwrap_or(DEFAULT_TOP))?
        }
    };
    let nofile = limits::raise_nofile();
    let (concurrency, beyond) = limits::concurrency(nofile, args.concurrency);
    if beyond {
        tracing::warn!(
            "--concurrency {concurrency} is more than the open-files limit ({nofile}) allows; \
             the scan backs off when out of descriptors (raise the limit with ulimit -n)"
        );
    }
    Ok(Config {
        ports,
        concurrency,
        timeout: args.timeout,
        retries: args.retries,
        rate: args.rate,
        banner_wait: args.banner.then_some(args.timeout),
    })
}
