//! `netkit ping HOST...`: ICMP echo as iputils does it, for one host or many (issues 4, 13).

mod flags;
mod format;
mod hosts;
mod mapped;
mod names;
mod print;
mod summary;

use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

use netkit::icmp::{self, FlowLabel, Pmtu, SocketOptions, Version};
use netkit::ping::{Control, PingConfig, MIN_USER_INTERVAL};
use netkit::report::ping::PingSummary;
use netkit::sys::{Signal, Signals};
use netkit::Family;
use tokio::sync::mpsc;

use crate::exit::Exit;
use crate::output::Printer;
use crate::parse;
use flags::{Pattern, Source, Unsupported};
use hosts::{Choice, Host, Hosts};
use print::{EventPrinter, Style};

const EXAMPLES: &str = "\
Examples:
  netkit ping -c 3 ::1                      three requests to the IPv6 loopback
  netkit ping -c 5 -i 200ms host1 host2     several hosts at once, lines named, one summary each
  netkit ping -c 5 --fping-summary a b c    fping's one-line summaries
  netkit --json ping -c 1 127.0.0.1         JSON Lines: reply/error/timeout/summary records
Replies count however late they come; -W only ends the wait when none came (iputils).
SIGQUIT (Ctrl-\\) prints the statistics so far; SIGINT and SIGTERM end with the summary.
Without CAP_NET_RAW, ping uses the unprivileged ICMP socket when net.ipv4.ping_group_range
admits your group (then -f, -l above 3 and intervals below 2ms are refused, as by iputils).
Exit status: 0 every host answered, 1 a host stayed silent (or, with -w, fewer than -c
replies came), 2 bad input (an unknown host, no route: the other hosts are still pinged),
3 not permitted.";

/// Arguments of `netkit ping`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Hosts: addresses, names, fe80::1%eth0 (an IPv6 address with its interface), and the
    /// target forms of `sweep`: ranges, @FILE, CIDR blocks (every address in a block included,
    /// network and broadcast addresses too, as nmap does).
    #[arg(required = true, value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Stop after this many requests per host; with -w, after this many replies.
    #[arg(short = 'c', allow_negative_numbers = true, long = "count", value_name = "COUNT", value_parser = parse::count)]
    pub count: Option<u64>,
    /// Time between requests to one host, in whole milliseconds as iputils keeps it [default:
    /// 1s; 0 with -f].
    #[arg(short = 'i', allow_negative_numbers = true, long = "interval", value_name = "INTERVAL", value_parser = parse::duration)]
    pub interval: Option<Duration>,
    /// How long to wait for a reply when none came: after the last request, and before a
    /// request is reported as timed out (later replies still count); 0 waits without limit
    /// until a reply comes, then twice the longest round trip (as iputils, which also keeps it
    /// in whole milliseconds).
    #[arg(short = 'W', allow_negative_numbers = true, long = "timeout", value_name = "TIMEOUT", value_parser = parse::duration, default_value = "10s")]
    pub timeout: Duration,
    /// Stop after this long, whatever the count; 0 is no deadline (as iputils).
    #[arg(short = 'w', allow_negative_numbers = true, long = "deadline", value_name = "DEADLINE", value_parser = parse::duration)]
    pub deadline: Option<Duration>,
    /// ICMP data bytes, 0-65527 to IPv6 hosts, 0-65507 to IPv4 ones (below 16 the send time
    /// does not fit: no round-trip times).
    #[arg(short = 's', allow_negative_numbers = true, long = "size", value_name = "BYTES", value_parser = parse::payload_size, default_value = "56")]
    pub size: usize,
    /// Time to live (IPv4, 1-255) or hop limit (IPv6, 0-255: 0 reaches on-link neighbours
    /// only), of multicast requests too.
    #[arg(short = 't', allow_negative_numbers = true, long = "ttl", value_name = "TTL", value_parser = parse::ttl)]
    pub ttl: Option<u8>,
    /// Use IPv4 only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use IPv6 only.
    #[arg(short = '6')]
    pub ipv6: bool,
    /// Numeric output: do not look up the names of the addresses that answer.
    #[arg(short = 'n')]
    pub numeric: bool,
    /// Start each line with the Unix time, [SECONDS.MICROSECONDS].
    #[arg(short = 'D')]
    pub timestamps: bool,
    /// Report a request still unanswered when the next one goes.
    #[arg(short = 'O')]
    pub outstanding: bool,
    /// Ring the terminal bell with each reply.
    #[arg(short = 'a')]
    pub audible: bool,
    /// Send through this interface, or from this source address (ADDR%IFACE for IPv6).
    #[arg(short = 'I', value_name = "IFACE|ADDR", value_parser = flags::source)]
    pub interface: Option<Source>,
    /// Fill the data with this pattern: up to 16 bytes as hex digits, e.g. ff or 0102.
    #[arg(short = 'p', value_name = "PATTERN", value_parser = flags::pattern)]
    pub pattern: Option<Pattern>,
    /// IPv4 type of service / IPv6 traffic class, decimal or 0x hex (0-255).
    #[arg(short = 'Q', value_name = "TOS", value_parser = flags::tos)]
    pub tos: Option<u8>,
    /// Path MTU discovery: do (never fragment; too-big requests fail), dont, want.
    #[arg(short = 'M', value_name = "do|dont|want", value_parser = flags::pmtu)]
    pub pmtu: Option<Pmtu>,
    /// Adaptive: the interval follows the round-trip time (at least 2ms unless privileged).
    #[arg(short = 'A')]
    pub adaptive: bool,
    /// Flood: the next request as soon as a reply comes (or after 10ms); a dot per request,
    /// a backspace per reply. Needs a raw socket (root or CAP_NET_RAW).
    #[arg(short = 'f')]
    pub flood: bool,
    /// Send this many requests at once at the start (more than 3 need a raw socket).
    #[arg(short = 'l', value_name = "PRELOAD", value_parser = flags::preload)]
    pub preload: Option<u64>,
    /// Allow pinging a broadcast address.
    #[arg(short = 'b')]
    pub broadcast: bool,
    /// User-to-user latency: a round trip ends when netkit reads the reply, its wake-up time
    /// included, not at the kernel's receive timestamp (which netkit, as iputils, uses
    /// otherwise).
    #[arg(short = 'U')]
    pub user_latency: bool,
    /// IPv6 flow label of the requests: 20 bits, decimal, 0x hex or 0 octal; 0 lets the
    /// kernel choose one (shown in the PING line). IPv4 requests have none (ignored, as by
    /// iputils).
    #[arg(short = 'F', allow_negative_numbers = true, value_name = "FLOWLABEL", value_parser = flags::flow_label)]
    pub flow_label: Option<u32>,
    /// End with fping's one line per host (xmt/rcv/%loss, min/avg/max of the first replies,
    /// as fping); in JSON, each summary lists every request's round trip (fping -C).
    #[arg(long = "fping-summary")]
    pub fping_summary: bool,
    /// Allow blocks of more than 2^24 addresses (as sweep and scan; ping still takes at most
    /// 4096 hosts).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    unsupported: Unsupported,
}

impl Args {
    /// The interval in whole milliseconds, as iputils keeps `-i` (`-i 0.0005` is 0: flood
    /// pacing and `ipg/ewma`, as iputils).
    fn interval(&self) -> Duration {
        match (self.interval, self.flood) {
            (Some(interval), _) => whole_ms(interval),
            (None, true) => Duration::ZERO,
            (None, false) => Duration::from_secs(1),
        }
    }

    fn family(&self) -> Family {
        match (self.ipv4, self.ipv6) {
            (true, _) => Family::V4,
            (_, true) => Family::V6,
            _ => Family::Any,
        }
    }

    fn engine_config(&self, hosts: &[Host]) -> icmp::Config {
        let multicast = hosts.iter().any(|h| h.multicast);
        icmp::Config {
            payload_size: self.size,
            pattern: self.pattern.as_ref().map(|p| p.0.clone()),
            socket: SocketOptions {
                ttl: self.ttl,
                tos: self.tos,
                // iputils never lets broadcast and multicast requests fragment.
                pmtu: self.pmtu.or(multicast.then_some(Pmtu::Do)),
                device: self
                    .interface
                    .as_ref()
                    .and_then(|s| s.device().map(String::from)),
                source: self.interface.as_ref().and_then(Source::addr),
                broadcast: self.broadcast,
                flow_label: self.flow_label.and_then(|label| flow_label(label, hosts)),
                user_latency: self.user_latency,
            },
        }
    }

    fn session_config(&self, privileged: bool) -> PingConfig {
        PingConfig {
            count: self.count,
            interval: self.interval(),
            // Whole milliseconds as iputils keeps `-W`: below one is 0, no limit.
            linger: match whole_ms(self.timeout) {
                zero if zero.is_zero() => netkit::ping::LINGER_WITHOUT_LIMIT,
                timeout => timeout,
            },
            deadline: self.deadline,
            preload: self.preload.unwrap_or(1),
            adaptive: self.adaptive,
            min_interval: match privileged {
                true => Duration::ZERO,
                false => MIN_USER_INTERVAL,
            },
            outstanding: self.outstanding,
            per_probe: self.fping_summary,
        }
    }
}

/// Runs ping: check the hosts, open one socket per family needed, ping until done or a
/// signal, print one summary per host.
pub fn run(mut args: Args, out: &Printer) -> anyhow::Result<Exit> {
    args.unsupported.check()?;
    args.deadline = args.deadline.filter(|d| !d.is_zero());
    let choice = Choice {
        family: args.family(),
        source: args.interface.as_ref(),
        broadcast_ok: args.broadcast,
        numeric: args.numeric || args.flood,
        force: args.force,
    };
    let Hosts { hosts, failures } = hosts::choose(&args.hosts, choice)?;
    let mut stderr = std::io::stderr().lock();
    for failure in &failures {
        writeln!(stderr, "netkit: {failure}")?;
    }
    warn_broadcast(&hosts, &mut stderr)?;
    drop(stderr);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(super::unstarted)?;
    let summaries = runtime.block_on(session(&args, &hosts, out))?;
    let ipg = args.interval().is_zero() || args.flood || args.adaptive;
    summary::print(out, &summaries, args.fping_summary, ipg)?;
    Ok(exit(&args, &summaries, !failures.is_empty()))
}

/// iputils' `WARNING: pinging broadcast address` (stderr, before the `PING` line) for each
/// broadcast host that `-b` lets through; with several hosts, the line starts with its host.
fn warn_broadcast(hosts: &[Host], stderr: &mut impl Write) -> std::io::Result<()> {
    for host in hosts.iter().filter(|h| h.broadcast_warning) {
        match hosts.len() {
            1 => writeln!(stderr, "WARNING: pinging broadcast address")?,
            _ => writeln!(
                stderr,
                "{}: WARNING: pinging broadcast address",
                host.target.shown()
            )?,
        }
    }
    Ok(())
}

/// iputils' status, per host: 1 when nothing came back, or with -w fewer replies than -c;
/// hosts left out (no name, no route) make it 2, as fping.
fn exit(args: &Args, summaries: &[PingSummary], left_out: bool) -> Exit {
    let short = |s: &PingSummary| {
        s.received == 0 || (args.deadline.is_some() && args.count.is_some_and(|c| s.received < c))
    };
    match (left_out, summaries.iter().any(short)) {
        (true, _) => Exit::Usage,
        (false, true) => Exit::Negative,
        (false, false) => Exit::Success,
    }
}

async fn session(args: &Args, hosts: &[Host], out: &Printer) -> anyhow::Result<Vec<PingSummary>> {
    let versions: Vec<Version> = [Version::V4, Version::V6]
        .into_iter()
        .filter(|v| hosts.iter().any(|h| Version::of(&h.target.addr) == *v))
        .collect();
    let engine = icmp::Engine::new(&args.engine_config(hosts), &versions)?;
    let privileged = netkit::ping::privileged(&engine);
    check_privilege(args, hosts, &engine, privileged)?;
    print_headers(args, hosts, engine.flow_label(), out)?;
    let controls = signals()?;
    let style = Style {
        flood: args.flood,
        audible: args.audible,
        timestamps: args.timestamps,
        verbose: false,
        size: args.size,
    };
    let mut printer = EventPrinter::new(out, hosts, style);
    let targets: Vec<netkit::Target> = hosts.iter().map(|h| h.target.clone()).collect();
    let config = args.session_config(privileged);
    let summaries = netkit::ping::run(&engine, &targets, config, controls, |event| {
        printer.event(event)
    })
    .await?;
    Ok(summaries)
}

/// `-F`'s label, leased for the first IPv6 host (the kernel leases one for a destination);
/// none when no host is IPv6.
fn flow_label(label: u32, hosts: &[Host]) -> Option<FlowLabel> {
    hosts.iter().find_map(|h| match h.target.addr {
        IpAddr::V6(dst) => Some(FlowLabel { label, dst }),
        IpAddr::V4(_) => None,
    })
}

/// `duration` truncated to whole milliseconds.
fn whole_ms(duration: Duration) -> Duration {
    Duration::from_millis(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

/// What only a raw socket may do, as iputils allows it only to root: flood, intervals below
/// 2 ms, a preload above 3, broadcast requests more often than once a second.
fn check_privilege(
    args: &Args,
    hosts: &[Host],
    engine: &icmp::Engine,
    privileged: bool,
) -> anyhow::Result<()> {
    let flood = args.flood && args.interval.is_none();
    netkit::ping::check_interval(engine, args.interval(), flood)?;
    if privileged {
        return Ok(());
    }
    if let Some(preload) = args.preload.filter(|p| *p > 3) {
        let what = format!("-l {preload} (a preload above 3 needs a raw socket, as with iputils)");
        return Err(netkit::ping::raw_only(what).into());
    }
    let multicast = hosts.iter().any(|h| h.multicast);
    if multicast && args.interval() < Duration::from_secs(1) {
        let what = "broadcast ping with an interval below 1s (needs a raw socket, as with iputils)";
        return Err(netkit::ping::raw_only(what).into());
    }
    Ok(())
}

/// Turns SIGINT and SIGTERM into [`Control::Stop`], SIGQUIT into [`Control::Status`].
fn signals() -> anyhow::Result<mpsc::Receiver<Control>> {
    let (tx, rx) = mpsc::channel(8);
    let mut signals = Signals::new(&[Signal::Interrupt, Signal::Terminate, Signal::Quit])?;
    tokio::spawn(async move {
        loop {
            let control = match signals.recv().await {
                Signal::Quit => Control::Status,
                _ => Control::Stop,
            };
            if tx.send(control).await.is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

/// `PATTERN: 0x...` (iputils prints it first), then `PING ...` for each host; `flow` is the
/// flow label of IPv6 requests.
fn print_headers(
    args: &Args,
    hosts: &[Host],
    flow: Option<u32>,
    out: &Printer,
) -> std::io::Result<()> {
    if out.json() {
        return Ok(());
    }
    if let (Some(pattern), false) = (&args.pattern, out.quiet()) {
        let hex: String = pattern.0.iter().map(|b| format!("{b:02x}")).collect();
        out.line(&format!("PATTERN: 0x{hex}"))?;
    }
    for host in hosts {
        out.line(&header(args, host, flow))?;
    }
    Ok(())
}

/// iputils' first line: `PING host (addr) 56(84) bytes of data.` (IPv4) or `PING
/// host(addr) 56 data bytes` (IPv6), with `from SOURCE DEVICE: ` when -I was given and, for
/// IPv6, ` , flow 0x03039,` before it when the requests carry a flow label.
fn header(args: &Args, host: &Host, flow: Option<u32>) -> String {
    let (name, size) = (host.target.shown(), args.size);
    // The target's own zone only: iputils shows `-I`'s on the replies, not here.
    let addr = netkit::target::show_zoned(host.target.addr, host.target.zone);
    let from = match &args.interface {
        Some(source) => format!("from {} {}: ", host.source, source.device().unwrap_or("")),
        None => String::new(),
    };
    match host.target.addr {
        IpAddr::V4(_) => format!(
            "PING {name} ({addr}) {from}{size}({}) bytes of data.",
            size + 28
        ),
        IpAddr::V6(_) => {
            let flow = flow
                .map(|f| format!(", flow {f:#07x}, "))
                .unwrap_or_default();
            format!("PING {name}({addr}) {flow}{from}{size} data bytes")
        }
    }
}
