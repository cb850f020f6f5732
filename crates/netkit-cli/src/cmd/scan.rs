//! `netkit scan TARGET...`: TCP connect scan (issue 6), or SYN scan with `--syn` (issue 16).

mod nmap;
mod sink;
mod tally;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use netkit::report::scan::ScanType;
use netkit::scan::{self, discover, engine, limits, Config, Event, Progress, Retries};
use netkit::sweep::Methods;
use netkit::sys::{Signal, Signals};
use netkit::{Family, PortSet, TargetList};

use crate::exit::Exit;
use crate::output::files::{DocumentArgs, TextArgs};
use crate::output::Printer;
use crate::parse;
use sink::{Outputs, Sink};
use tally::Listing;

/// Ports scanned when neither `-p` nor `--top` is given.
const DEFAULT_TOP: usize = 1000;
/// The adaptive timeout's ceiling without `--timeout` (nmap's `--max-rtt-timeout`).
const CEILING: Duration = Duration::from_secs(10);
/// The banner wait and a discovery probe's wait without `--timeout`.
const SHORT_WAIT: Duration = Duration::from_secs(1);

const EXAMPLES: &str = "\
Examples:
  netkit scan 127.0.0.1 -p 1-1024                 a port range
  netkit scan ::1 -p all                          every port, IPv6
  netkit scan 198.18.0.0/28 --top 100 -o out.txt  the 100 ports most often found open
  netkit --json scan host.example -p 22,80,443 --banner
  netkit scan 198.18.0.0/24 --top 100 --rate 500   never more than 500 connects a second
  netkit scan 198.18.0.0/28 -oX scan.xml -oG -    nmap's XML into a file, grepable lines on stdout
  sudo netkit scan 198.18.0.7 -p all --syn        SYN scan (nmap -sS): raw SYNs, no handshake
  netkit scan 198.18.0.7 -p 1-200 --reason        why each port has its state
  netkit --json scan ::1 -p all --all-ports       a record for every port, closed ones too
  netkit scan 198.18.0.0/24 -Pn -p 22             every host, without host discovery first
  netkit -vv scan 198.18.0.7 -p 22,80            each try on stderr: sent, answered or not, when
Host discovery: a scan of more than one target first finds the hosts that are up (one sweep
round: with root or CAP_NET_RAW nmap's privileged probes and a connect to 80,
arp,ndp,icmp,tcp:443,ack:80,timestamp,tcp:80, ARP and NDP for on-link targets; else icmp,tcp:80,tcp:443, or tcp:80,tcp:443 where ICMP
may not be used; --discovery METHODS chooses) and scans only those, as nmap does; -Pn (--no-ping) scans every target. Hosts found
down get a JSON host record and are counted, not listed in -oX/-oG (as nmap without -v). A
single target is scanned without discovery.
Open = connected (--syn: SYN-ACK); closed = reset; filtered = no answer after the retries, or an
ICMP port/protocol unreachable or administratively prohibited (a firewall's REJECT), as nmap -sS.
Reasons, as nmap --reason words them: syn-ack, conn-refused (--syn: reset), no-response,
port-unreach, admin-prohibited, host-unreach, proto-unreach, local-policy (this machine's
firewall); net-unreach, no-route, time-exceeded (a router's, see below). Open ports are
always listed; a host's closed (or filtered) ports only while it has at most 25 of them
(nmap's rule; 50 with -v, 75 with -vv, ...), the rest are counted.
Timing adapts to the network as nmap's does: per-host round-trip estimates set the timeout
(--timeout caps it), congestion windows grow on answers and shrink on drops, silent ports are
retransmitted with backoff (-vv traces each try on stderr: its port, try number and time sent,
what answered it and after how long, or when its socket closed unanswered, then the port's
state). A target with no route to it (this machine's routing table, or a
router's ICMP net/host unreachable) is an error naming it; once the target answered other
probes, a router's net/host unreachable filters only its port (net-unreach, no-route,
host-unreach, time-exceeded: a router's firewall refusing some ports), as nmap -sS. Exit
status: 0 every target answered (a port open or closed, an ICMP error, or a discovery
probe), 1 a target was silent (found down, or every port filtered for want of any answer:
\"1 host silent\") or unreachable, 2 bad input, 3 the environment refused, 130 interrupted
(Ctrl-C: the partial summary is printed).
nmap's output options: -oX FILE (nmap's XML), -oG FILE (grepable), -oN FILE (this text), -oJ
FILE (JSON Lines), -oA BASE (BASE.nmap, BASE.xml, BASE.gnmap); - is stdout. The XML lists every
scanned target with its ports by the same rule, the counted ones per host with their reasons
(<extraports>, <extrareasons>), as nmap's.";

/// Arguments of `netkit scan`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Targets: addresses, names, ranges, CIDR blocks (every address included, as nmap does),
    /// @FILE; an IPv6 link-local address with its interface: fe80::1%eth0. IPv4-mapped
    /// addresses and blocks (::ffff:198.18.0.0/120) are scanned as the IPv4 addresses they map,
    /// and shown as those.
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Ports: N, N-M (-M from 1, N- to 65535), lists, all, topN (default: top1000).
    #[arg(short = 'p', long = "ports", value_name = "PORTS", value_parser = parse::ports, conflicts_with = "top", allow_hyphen_values = true)]
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
    /// Probes in flight at once at most (default: from the open-files limit; with --syn, which
    /// needs no descriptor per probe, 4096).
    #[arg(long, value_name = "N", value_parser = parse::positive_count)]
    pub concurrency: Option<usize>,
    /// The longest wait for one probe: the adaptive timeout's ceiling (default 10s, nmap's:
    /// the timeout follows the round trips measured and nears it only on paths that slow
    /// or where a round trip takes seconds); with --banner, how long a service may take to
    /// speak first (two round trips of the port are added: the network's part), and in host
    /// discovery the longest wait for one probe (default 1s both).
    #[arg(long, value_name = "DUR", value_parser = parse::positive_duration)]
    pub timeout: Option<Duration>,
    /// Retransmissions of a silent port at most (nmap's default); fewer when the network
    /// shows no loss: the budget follows the loss seen and nears this only where losses are
    /// frequent or come in bursts.
    #[arg(long, value_name = "N", value_parser = parse::retries, default_value = "10")]
    pub max_retries: u32,
    /// Exactly N retransmissions of every silent port, whatever the network shows (overrides
    /// the adaptive budget of --max-retries).
    #[arg(long, value_name = "N", value_parser = parse::retries, conflicts_with = "max_retries")]
    pub retries: Option<u32>,
    /// Connection attempts per second at most, retransmissions included (a ceiling: the scan
    /// may go slower when the network drops probes).
    #[arg(long, value_name = "PPS", value_parser = parse::rate)]
    pub rate: Option<u64>,
    /// Connection attempts per second at least, whatever congestion control says.
    #[arg(long, value_name = "PPS", value_parser = parse::rate)]
    pub min_rate: Option<u64>,
    /// Also write the results to FILE, as stdout shows them (text, or JSON Lines with --json).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// nmap's text outputs.
    #[command(flatten)]
    pub text: TextArgs,
    /// nmap's document outputs.
    #[command(flatten)]
    pub docs: DocumentArgs,
    /// Read the first bytes each open service sends (sanitised). With --syn, open ports are
    /// connected to once more for it. A service gets --timeout (default 1s) and two round
    /// trips to speak; 3s more where the way loses packets (a handshake repaired, answers
    /// only to retransmissions), as TCP's retransmissions come 1s and 3s late.
    #[arg(long)]
    pub banner: bool,
    /// SYN scan (nmap -sS): raw SYNs, no full handshake. Needs CAP_NET_RAW (root); without
    /// it, a connect scan runs with a note on stderr. Not the default, even as root.
    #[arg(long)]
    pub syn: bool,
    /// Say why each port has its state (nmap's --reason): a REASON column in the text
    /// (syn-ack, conn-refused, no-response, port-unreach, admin-prohibited, host-unreach,
    /// proto-unreach, local-policy; with --syn the answer's TTL too, as nmap's `syn-ack ttl
    /// 63`), and a line per host once scanned saying why it is up (`HOST is up, received
    /// syn-ack`: the discovery probe's answer as nmap words it, echo-reply, syn-ack, reset,
    /// conn-refused, ...; user-set without discovery). JSON records and the XML always carry
    /// it.
    #[arg(long)]
    pub reason: bool,
    /// List every closed and filtered port one by one: a line in the text, a "port" record
    /// in JSON Lines, a port element in the XML. Without it the text and the XML list a host's
    /// closed (or filtered) ports only when it has at most 25 of them, as nmap (50 with -v,
    /// 75 with -vv, ...), and count the rest; JSON Lines carry open ports only.
    #[arg(long)]
    pub all_ports: bool,
    /// Allow blocks of more than 2^24 addresses.
    #[arg(long)]
    pub force: bool,
    /// --shard, --seed, --randomize.
    #[command(flatten)]
    pub order: super::order::OrderArgs,
    /// Scan every target, without host discovery first (nmap's -Pn, which is also taken).
    #[arg(long = "no-ping", conflicts_with = "discovery")]
    pub no_ping: bool,
    /// Host discovery's methods, as sweep --method takes them (default:
    /// arp,ndp,icmp,tcp:443,ack:80,timestamp,tcp:80 with raw sockets, nmap's privileged set
    /// (ARP and NDP for the targets of a directly connected link) and a
    /// connect to 80; icmp,tcp:80,tcp:443 where ICMP may be used, tcp:80,tcp:443 otherwise);
    /// also for a single target, which is otherwise scanned without discovery.
    #[arg(long, value_name = "METHODS", value_parser = parse::methods)]
    pub discovery: Option<Methods>,
}

/// Whether to find the hosts that are up first: for several targets unless --no-ping, and
/// whenever --discovery is given.
fn wants_discovery(args: &Args, targets: &netkit::Targets) -> bool {
    args.discovery.is_some() || (targets.len() > 1 && !args.no_ping)
}

/// Runs the scan: exit 0 when every target answered (whatever the answers were); 1 when a
/// target was silent (found down, or every port filtered for want of an answer) or could not be
/// reached; 130 when interrupted.
pub fn run(args: Args, out: &Printer) -> anyhow::Result<Exit> {
    // A mapped address is IPv4 on the wire: a --syn probe to it as IPv6 found no route.
    let targets = TargetList::parse(&args.targets, args.force)?
        .mapped_as_ipv4()?
        .resolve(Family::Any)?;
    if let Some(target) = targets.unzoned_link_local() {
        let why = "a link-local address needs its interface: add %IFACE, e.g. fe80::1%eth0";
        return Err(netkit::ParseError::new(target.shown(), why).into());
    }
    let syn = args.syn && syn_allowed()?;
    let mut config = config(&args, syn)?;
    let (targets, ports) = args.order.apply_scan(targets, config.ports)?;
    config.ports = ports;
    let kind = match config.syn {
        true => ScanType::Syn,
        false => ScanType::Connect,
    };
    let outputs = Outputs {
        output: args.output.as_deref(),
        text: &args.text,
        docs: &args.docs,
        reason: args.reason,
        listing: Listing::new(args.all_ports, out.verbose()),
    };
    let mut sink = Sink::new(out, outputs, config.ports.as_slice(), kind)?;
    sink.targets(&targets);
    config.every_port = sink.every_port();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| netkit::Error::io("start the async runtime", e))?;
    let scanned = match wants_discovery(&args, &targets) {
        true => {
            let timeout = args.timeout.unwrap_or(SHORT_WAIT);
            let methods = args.discovery.clone();
            let found = runtime.block_on(discover::discover(
                &targets,
                methods,
                timeout,
                config.concurrency,
            ))?;
            let up = found.up(&targets);
            sink.discovered(&targets, found)?;
            up
        }
        false => targets.clone(),
    };
    sink.start_bar(engine::total(&scanned, &config.ports));
    // Ctrl-C is handled from before the first probe on (a signal that comes early is not lost).
    let mut signals = {
        let _runtime = runtime.enter();
        Signals::new(&[Signal::Interrupt])?
    };
    let progress = Arc::new(Progress::default());
    // The sink's own error (a results file that cannot be written, with its path), kept for
    // the exit status: the engine only learns that the event was not taken.
    let mut failed: Option<anyhow::Error> = None;
    let summary = runtime.block_on(async {
        let ticker = sink.tick(Arc::clone(&progress));
        let interrupt = async move {
            signals.recv().await;
        };
        let summary = scan::run(&scanned, config, progress, interrupt, |event| {
            let shown = match event {
                Event::Port(port) => sink.port(&port),
                Event::Unreachable(host) => sink.unreachable(&host),
                Event::HostDone(done) => sink.host_finished(&done),
            };
            shown.map_err(|err| keep(&mut failed, err))
        })
        .await;
        ticker.abort();
        summary
    });
    let summary = match failed {
        Some(err) => return Err(err),
        None => summary?,
    };
    let summary = sink.summary(&targets, summary)?;
    Ok(if summary.interrupted {
        Exit::Interrupted
    } else if summary.unreachable + summary.down + summary.silent > 0 {
        Exit::Negative
    } else {
        Exit::Success
    })
}

/// Whether raw SYNs may be sent; says on stderr when not (a connect scan runs instead).
fn syn_allowed() -> anyhow::Result<bool> {
    let allowed = netkit::scan::syn::available()?;
    if !allowed {
        eprintln!("netkit: --syn needs CAP_NET_RAW (run as root); doing a connect scan");
    }
    Ok(allowed)
}

/// Keeps `err` in `failed` and returns what the engine is told.
fn keep(failed: &mut Option<anyhow::Error>, err: anyhow::Error) -> io::Error {
    let told = io::Error::other(err.to_string());
    *failed = Some(err);
    told
}

/// Turns the flags into the engine's settings (`syn`: a SYN scan), sizing a connect scan's
/// concurrency from the open-files limit.
fn config(args: &Args, syn: bool) -> anyhow::Result<Config> {
    let ports = match &args.ports {
        Some(ports) => ports.clone(),
        None => {
            let ranking = args.top_source.load()?;
            ranking.top(args.top.unwrap_or(DEFAULT_TOP))?
        }
    };
    let nofile = netkit::sys::raise_nofile();
    let (concurrency, beyond) = match syn {
        true => (limits::raw_concurrency(args.concurrency), false),
        false => limits::concurrency(nofile, args.concurrency),
    };
    if beyond {
        tracing::warn!(
            "--concurrency {concurrency} is more than the open-files limit ({nofile}) allows; \
             the scan backs off when out of descriptors (raise the limit with ulimit -n)"
        );
    }
    if let (Some(min), Some(max)) = (args.min_rate, args.rate) {
        if min > max {
            let why = format!("more than --rate {max}");
            return Err(netkit::ParseError::new(format!("--min-rate {min}"), why).into());
        }
    }
    let retries = match args.retries {
        Some(n) => Retries::Fixed(n),
        None => Retries::Adaptive {
            max: args.max_retries,
        },
    };
    Ok(Config {
        ports,
        concurrency,
        sockets: limits::sockets(nofile, concurrency, syn),
        timeout: args.timeout.unwrap_or(CEILING),
        retries,
        rate: args.rate,
        min_rate: args.min_rate,
        banner_wait: args.banner.then(|| args.timeout.unwrap_or(SHORT_WAIT)),
        syn,
        every_port: false,
    })
}
