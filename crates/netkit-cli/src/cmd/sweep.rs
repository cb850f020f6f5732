//! `netkit sweep TARGET...`: live and inactive hosts, once or every N seconds (issue 5).

mod nmap;

use std::io::{self, IsTerminal, Write};
use std::net::IpAddr;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use netkit::report::sweep::{
    ChangeRecord, DuplicateRecord, HostRecord, Progress, SummaryRecord, ThrottleRecord,
};
use netkit::sweep::{self, Config, Event, Methods, Sweep};
use netkit::sys::{Signal, Signals};
use netkit::Endpoint;
use tokio::sync::oneshot;

use crate::exit::Exit;
use crate::output::files::{self, DocumentArgs};
use crate::output::Printer;
use crate::parse;

const EXAMPLES: &str = "\
Examples:
  netkit sweep 192.168.0.100-200                  which hosts answer, which are inactive
  netkit sweep 198.18.0.0/24 2001:db8::/120 --dead
  netkit sweep @hosts.txt --every 5s --rounds 12  report hosts going up or down
  netkit sweep 10.0.0.0/24 --method tcp:22        where ICMP is filtered
  netkit sweep 192.168.1.0/24 --method arp        the LAN's hosts and their MAC addresses
  netkit sweep fd00::/120 --method ndp -I eth0    the same for IPv6 (neighbour solicitation)
  netkit sweep 198.18.0.0/24 --method icmp,tcp:80,tcp:443   alive when any answers
  sudo netkit sweep 198.18.0.0/24 --method icmp,tcp:443,ack:80,timestamp   nmap -sn's probes
  netkit sweep 198.18.0.0/24 -oX hosts.xml        nmap -sn's XML: every host up or down, and why
A CIDR block includes every address in it, network and broadcast addresses too (as nmap).
Blocks of more than 2^24 addresses need --force.
Silent targets are probed again until the loss measured on the way (by re-probing hosts
already found) says a live host would have answered; the waits follow the round-trip times.
When the answers collapse (a far side that polices ICMP: fewer than half of the re-probes of
hosts already found answer), the sweep slows down, probes the silent targets again, and says
so on stderr once slower probes answered more. A policer that drops fewer than half of them
(a /24 behind one of 1000/s, at the default rate) is taken for loss: the silent targets are
probed again until the loss says a live host would have answered, and the round is not
marked throttled.
Output: 'ADDR is alive' lines as answers arrive, then 'Total N hosts are inactive'; with
--dead 'ADDR is inactive' lines instead (and 'ADDR is unreachable' for one with no route, as
fping -u lists it). With arp and ndp: 'ADDR is alive (MAC)', and 'ADDR is alive (MAC)
(DUP: 2)' when a second host answers for the same address (as arp-scan). A target with no
route is an error on stderr ('netkit: ADDR: Network is unreachable', 'netkit: ADDR:
Destination Host Unreachable from ROUTER'). With --every, later rounds print only 'ADDR went
down' (after the re-probes confirm it) and 'ADDR came up'. Ctrl-C ends the round under way
with its summary ('(interrupted: M not probed to the end)'), exit 130. -oX FILE and -oG FILE write
nmap's XML and grepable formats (each host's last round, when the sweep ends; - is stdout;
the XML has the MAC addresses of arp and ndp). Exit 0 when every target answered (in the
last round), 1 otherwise.";

/// Arguments of `netkit sweep`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Targets: addresses, names, 192.168.0.100-200, 10.0.0.5-10.0.1.20, CIDR blocks, @FILE,
    /// fe80::1%eth0 (an IPv6 address with its interface). IPv4-mapped addresses and blocks
    /// (::ffff:198.18.0.0/120) are swept as the IPv4 addresses they map, and shown as those.
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<String>,
    /// The longest wait for an answer to one probe. The waits used are derived from the
    /// round-trip times seen (srtt + 4 rttvar, backed off 1.5x per re-probe), up to this; 500 ms
    /// before the first answer. Later answers still count while the round runs (a tcp:PORT
    /// re-probe's connect lasts twice as long as the one before, up to 8 times this); a round
    /// ends at least 500 ms after its last probe, or this long if nothing has answered yet.
    #[arg(long, value_name = "DUR", value_parser = parse::positive_duration, default_value = "1s")]
    pub timeout: Duration,
    /// The most probes sent again to a silent host. How many it gets depends on the loss
    /// measured on the way: 1-2 on a clean link, 6-7 at 10% loss each way. Probes sent while
    /// the far side may be throttling the sweep (more than half of them possibly lost, before
    /// it slowed down enough) do not count.
    #[arg(long, value_name = "N", value_parser = parse::retries, default_value = "10")]
    pub retries: u32,
    /// Probes per second at most [default: 10000]; lower when the answers collapse.
    #[arg(long, value_name = "PPS", value_parser = parse::rate)]
    pub rate: Option<u64>,
    /// Start a new round every DUR and report hosts that went down or came up.
    #[arg(long, value_name = "DUR", value_parser = parse::positive_duration)]
    pub every: Option<Duration>,
    /// With --every: stop after N rounds.
    #[arg(long, value_name = "N", requires = "every", value_parser = parse::positive_count)]
    pub rounds: Option<usize>,
    /// Print only the live hosts (no total).
    #[arg(long, conflicts_with = "dead")]
    pub alive: bool,
    /// Print the inactive hosts ('ADDR is inactive') instead of the live ones.
    #[arg(long)]
    pub dead: bool,
    /// How to probe: icmp, tcp:PORT (connected or refused both mean alive), or, for hosts on
    /// a directly connected network (also those that drop ICMP), arp (IPv4) or ndp (IPv6
    /// neighbour solicitation), which report each host's MAC address (these need root or
    /// CAP_NET_RAW); timestamp (an ICMP timestamp request, IPv4, as nmap -PP) or ack:PORT (a
    /// bare TCP ACK: any reset means alive, as nmap -PA), through raw sockets (root or
    /// CAP_NET_RAW); or several, comma-separated (icmp,tcp:80,tcp:443: alive when any
    /// answers, as nmap -sn -PE -PS80,443; each host's record says which answered; arp and
    /// ndp then probe the targets of their address family on their link, as nmap -PR).
    #[arg(long, value_name = "icmp|tcp:PORT|arp|ndp|timestamp|ack:PORT,...", value_parser = parse::methods, default_value = "icmp")]
    pub method: Methods,
    /// With --method arp|ndp: the interface to probe through [default: the one whose
    /// connected prefix holds the targets].
    #[arg(short = 'I', long, value_name = "IFACE")]
    pub interface: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics (PORT alone: 127.0.0.1:PORT).
    /// Per-host series only for sweeps of at most 4096 targets.
    #[arg(long, value_name = "ADDR", value_parser = parse::listen_endpoint)]
    pub metrics: Option<Endpoint>,
    /// Allow blocks of more than 2^24 addresses.
    #[arg(long)]
    pub force: bool,
    /// nmap's document outputs (each host's last round, written when the sweep ends).
    #[command(flatten)]
    pub docs: DocumentArgs,
    /// --shard, --seed, --randomize.
    #[command(flatten)]
    pub order: super::order::OrderArgs,
}

/// Runs the sweep.
pub fn run(args: Args, out: &Printer) -> anyhow::Result<Exit> {
    let targets = netkit::TargetList::parse(&args.targets, args.force)?
        .mapped_as_ipv4()?
        .resolve(netkit::Family::Any)?;
    let targets = args.order.apply(targets)?;
    let on_link = args.method.as_slice().iter().any(|m| m.is_on_link());
    if let (Some(iface), false) = (&args.interface, on_link) {
        let why = "-I/--interface chooses the link of --method arp or ndp; other methods route";
        return Err(netkit::ParseError::new(iface, why).into());
    }
    let config = Config {
        methods: args.method.clone(),
        timeout: args.timeout,
        retries: args.retries,
        rate: args.rate.unwrap_or(sweep::DEFAULT_RATE),
        every: args.every,
        rounds: args.rounds.map(|n| n as u64),
        max_in_flight: sweep::in_flight(netkit::sys::raise_nofile()),
        interface: args.interface.clone(),
        patience: sweep::rtt::INITIAL_TIMEOUT,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(super::unstarted)?;
    runtime.block_on(sweep_all(targets, config, &args, out))
}

async fn sweep_all(
    targets: netkit::Targets,
    config: Config,
    args: &Args,
    out: &Printer,
) -> anyhow::Result<Exit> {
    let docs = documents(args)?;
    let on_stdout = docs.iter().any(|(path, _)| files::is_stdout(path));
    let mut nmap = nmap::NmapOutput::new(docs);
    // Registered before the first probe: Ctrl-C or SIGTERM ends the sweep with its documents
    // written (the hosts of the rounds that finished), not with the default death.
    let mut signals = Signals::new(&[Signal::Interrupt, Signal::Terminate])?;
    let mut sweep = Sweep::new(targets.clone(), config)?;
    let (stop_metrics, stopped) = oneshot::channel::<()>();
    let metrics = match &args.metrics {
        Some(endpoint) => {
            let listener = endpoint.listen().await?;
            if !out.quiet() {
                let at = listener.local_addr();
                let _ = writeln!(std::io::stderr(), "netkit: metrics on http://{at}/metrics");
            }
            let serve = sweep::http::serve_until(listener, sweep.metrics(), stopped);
            Some(tokio::spawn(serve))
        }
        None => None,
    };
    let filter = match (args.alive, args.dead) {
        (true, _) => Filter::Alive,
        (_, true) => Filter::Dead,
        _ => Filter::All,
    };
    let mut view = View::new(out, filter, sweep.total(), !on_stdout);
    let mut sink = |event: Event| {
        if let Event::Host(host) = &event {
            nmap.host(host);
        }
        view.show(event)
    };
    // A signal ends the round under way with what it settled, and its summary (fping prints
    // its results too).
    let summary = sweep
        .run_until(&mut sink, async {
            signals.recv().await;
        })
        .await;
    // The sweep is over (or failed): the metrics endpoint stops with it.
    let _ = stop_metrics.send(());
    if let Some(server) = metrics {
        let _ = server.await;
    }
    let summary = summary?;
    view.finish();
    nmap.finish(&targets, summary.interrupted)?;
    if summary.interrupted {
        return Ok(Exit::Interrupted);
    }
    Ok(if summary.dead == 0 && summary.unreachable == 0 {
        Exit::Success
    } else {
        Exit::Negative
    })
}

/// The `-oX`/`-oG` documents, opened; refused (exit 2) for an endless periodic sweep, whose
/// documents would never be written, and for two on stdout.
fn documents(args: &Args) -> anyhow::Result<files::Documents> {
    let docs = &args.docs;
    let given = [&docs.output_xml, &docs.output_grepable];
    let given: Vec<&std::path::Path> = given.iter().filter_map(|p| p.as_deref()).collect();
    if let (false, Some(_), None) = (given.is_empty(), args.every, args.rounds) {
        let why = "needs --rounds with --every: the document is written when the sweep ends";
        return Err(netkit::ParseError::new("-oX/-oG", why).into());
    }
    files::one_stdout(given)?;
    Ok(files::documents(docs, None)?)
}

/// Which hosts to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filter {
    All,
    Alive,
    Dead,
}

impl Filter {
    fn admits(self, alive: bool) -> bool {
        match self {
            Filter::All => true,
            Filter::Alive => alive,
            Filter::Dead => !alive,
        }
    }
}

/// Prints a sweep's events: JSON records, or fping-style lines for the first round and the
/// changes after it; a progress bar on a terminal.
struct View<'a> {
    out: &'a Printer,
    filter: Filter,
    total: u64,
    bar: Option<ProgressBar>,
    bars: bool,
    /// Whether stdout shares the terminal with the bar (then lines hide it while printing).
    shared: bool,
    /// Whether results go to stdout (not when an nmap document goes there).
    stdout: bool,
}

impl<'a> View<'a> {
    fn new(out: &'a Printer, filter: Filter, total: u64, stdout: bool) -> Self {
        let bars = !out.json() && !out.quiet() && std::io::stderr().is_terminal();
        View {
            out,
            filter,
            total,
            bar: None,
            bars,
            shared: std::io::stdout().is_terminal(),
            stdout,
        }
    }

    /// A target's address as fping shows it: with its zone when it was given with one
    /// (`fe80::1%eth0 is alive`).
    fn shown(addr: IpAddr, zone: Option<&str>) -> String {
        match zone {
            Some(zone) => format!("{addr}%{zone}"),
            None => addr.to_string(),
        }
    }

    /// One JSON record on stdout (unless a document goes there).
    fn record<T: serde::Serialize>(&self, kind: &str, record: &T) -> io::Result<()> {
        match self.stdout {
            true => self.out.record(kind, record),
            false => Ok(()),
        }
    }

    fn show(&mut self, event: Event) -> io::Result<()> {
        match event {
            Event::Host(host) => self.host(&host),
            Event::Duplicate(duplicate) => self.duplicate(&duplicate),
            Event::Change(change) => self.change(&change),
            Event::Progress(progress) => {
                self.progress(&progress);
                Ok(())
            }
            Event::Summary(summary) => self.summary(&summary),
            Event::Throttle(throttle) => self.throttle(&throttle),
        }
    }

    fn throttle(&self, throttle: &ThrottleRecord) -> io::Result<()> {
        if self.out.json() {
            return self.record("throttle", throttle);
        }
        self.warn(&format!(
            "answers collapsed at {} probes/s ({}% of probes to live hosts answered, {}% \
             before): slowing down to {} probes/s and probing the silent hosts again",
            throttle.from_rate, throttle.answered_pct, throttle.expected_pct, throttle.to_rate
        ))
    }

    fn host(&self, host: &HostRecord) -> io::Result<()> {
        if let (Some(why), false) = (&host.error, self.out.json()) {
            // Like fping's error lines, once (later rounds report changes only); listed
            // with the dead too, as `fping -u` lists it.
            if host.round > 1 {
                return Ok(());
            }
            self.warn(&format!(
                "{}: {why}",
                Self::shown(host.addr, host.zone.as_deref())
            ))?;
            return match self.filter {
                Filter::Dead => self.line(&format!(
                    "{} is unreachable",
                    Self::shown(host.addr, host.zone.as_deref())
                )),
                _ => Ok(()),
            };
        }
        if !self.filter.admits(host.alive) {
            return Ok(());
        }
        if self.out.json() {
            return self.record("host", host);
        }
        // Like fping: the live hosts by default, the inactive ones only when asked for.
        if host.round > 1 || (self.filter == Filter::All && !host.alive) {
            return Ok(());
        }
        let state = match host.alive {
            true => self.out.paint("alive", true),
            false => self.out.paint("inactive", false),
        };
        let mac = host
            .mac
            .as_ref()
            .map(|mac| format!(" ({mac})"))
            .unwrap_or_default();
        self.line(&format!(
            "{} is {state}{mac}",
            Self::shown(host.addr, host.zone.as_deref())
        ))
    }

    /// Another host answering for a live host's address, as arp-scan reports it.
    fn duplicate(&self, duplicate: &DuplicateRecord) -> io::Result<()> {
        if !self.filter.admits(true) {
            return Ok(());
        }
        if self.out.json() {
            return self.record("duplicate", duplicate);
        }
        if duplicate.round > 1 {
            return Ok(());
        }
        let (mac, nth) = (&duplicate.mac, duplicate.nth);
        let addr = Self::shown(duplicate.addr, duplicate.zone.as_deref());
        let state = self.out.paint("alive", true);
        self.line(&format!("{addr} is {state} ({mac}) (DUP: {nth})"))
    }

    fn change(&self, change: &ChangeRecord) -> io::Result<()> {
        if self.out.json() {
            return self.record("change", change);
        }
        let what = match change.alive {
            true => self.out.paint("came up", true),
            false => self.out.paint("went down", false),
        };
        self.line(&format!(
            "{} {what}",
            Self::shown(change.addr, change.zone.as_deref())
        ))
    }

    fn summary(&mut self, summary: &SummaryRecord) -> io::Result<()> {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.out.json() {
            return self.record("summary", summary);
        }
        if summary.throttled {
            self.warn(&format!(
                "round {} was throttled: it ended at {} probes/s (--rate {} avoids the losses)",
                summary.round, summary.rate, summary.rate
            ))?;
        }
        let interrupted = match summary.interrupted {
            true => format!(
                " (interrupted: {} not probed to the end)",
                summary.unsettled
            ),
            false => String::new(),
        };
        if self.filter == Filter::Alive {
            return Ok(());
        }
        if summary.round > 1 {
            return match summary.interrupted {
                true => self.line(&format!("Round {}{interrupted}", summary.round)),
                false => Ok(()),
            };
        }
        // SPEC's words whatever N, 1 too: scripts grep `hosts are inactive`.
        let unreachable = match summary.unreachable {
            0 => String::new(),
            n => format!(", {n} unreachable"),
        };
        self.line(&format!(
            "Total {} hosts are inactive{unreachable}{interrupted}",
            summary.dead
        ))
    }

    fn progress(&mut self, progress: &Progress) {
        if !self.bars {
            return;
        }
        let total = self.total;
        let bar = self.bar.get_or_insert_with(|| new_bar(total));
        bar.set_position(progress.probed);
        bar.set_message(format!(
            "round {}, {} alive",
            progress.round, progress.alive
        ));
    }

    /// A line on stderr, `netkit: TEXT`, for what is not a result: unreachable targets and
    /// slow-downs.
    fn warn(&self, text: &str) -> io::Result<()> {
        let write = || writeln!(std::io::stderr().lock(), "netkit: {text}");
        match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }

    fn line(&self, text: &str) -> io::Result<()> {
        if !self.stdout {
            return Ok(());
        }
        match &self.bar {
            Some(bar) if self.shared => bar.suspend(|| self.out.line(text)),
            _ => self.out.line(text),
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

fn new_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{bar:30} {pos}/{len} probed, {msg} [{elapsed}]")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}
