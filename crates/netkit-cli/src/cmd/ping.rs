//! `netkit ping HOST...`: ICMP echo with iputils-style statistics (issue 4).

use std::net::IpAddr;
use std::time::Duration;

use netkit::icmp::{self, Version};
use netkit::ping::{format_g, format_reply_time, Event, PingConfig, PingSummary};
use netkit::{Family, ParseError, Target};

use crate::exit::Exit;
use crate::output::Printer;
use crate::parse;

const EXAMPLES: &str = "\
Examples:
  netkit ping -c 3 ::1                      three probes to the IPv6 loopback
  netkit ping -c 5 -i 200ms host1 host2     several hosts at once, one summary each
  netkit --json ping -c 1 127.0.0.1         JSON Lines: reply/timeout/summary records
Without CAP_NET_RAW, ping uses the unprivileged ICMP socket when net.ipv4.ping_group_range
admits your group. Exit status: 0 every host answered, 1 a host stayed silent, 2 bad input
(e.g. an unknown host), 3 no ICMP socket allowed.";

/// Hosts pinged at once at most (each gets its own statistics and summary).
const MAX_HOSTS: u128 = 4096;

/// Arguments of `netkit ping`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Hosts: addresses, names (and the target forms of `sweep`).
    #[arg(required = true, value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Stop after this many probes per host (default: until Ctrl-C or -w).
    #[arg(short = 'c', allow_negative_numbers = true, long = "count", value_name = "COUNT", value_parser = parse::count)]
    pub count: Option<u64>,
    /// Time between probes to one host.
    #[arg(short = 'i', allow_negative_numbers = true, long = "interval", value_name = "INTERVAL", value_parser = parse::positive_duration, default_value = "1s")]
    pub interval: Duration,
    /// How long to wait for each reply.
    #[arg(short = 'W', allow_negative_numbers = true, long = "timeout", value_name = "TIMEOUT", value_parser = parse::positive_duration, default_value = "1s")]
    pub timeout: Duration,
    /// Stop after this long, whatever the count.
    #[arg(short = 'w', allow_negative_numbers = true, long = "deadline", value_name = "DEADLINE", value_parser = parse::positive_duration)]
    pub deadline: Option<Duration>,
    /// ICMP payload bytes, 16-65507 (default 56, as iputils; the first 16 carry the send time).
    #[arg(short = 's', allow_negative_numbers = true, long = "size", value_name = "BYTES", value_parser = parse::payload_size, default_value = "56")]
    pub size: usize,
    /// Time to live (IPv4) or hop limit (IPv6).
    #[arg(short = 't', allow_negative_numbers = true, long = "ttl", value_name = "TTL", value_parser = parse::ttl)]
    pub ttl: Option<u8>,
    /// Use IPv4 only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use IPv6 only.
    #[arg(short = '6')]
    pub ipv6: bool,
}

/// Runs ping: resolve, open one socket per family needed, ping until done or Ctrl-C, print
/// one summary per host.
pub fn run(args: Args, out: &Printer) -> anyhow::Result<Exit> {
    let family = match (args.ipv4, args.ipv6) {
        (true, _) => Family::V4,
        (_, true) => Family::V6,
        _ => Family::Any,
    };
    let list = netkit::TargetList::parse(&args.hosts, false)?;
    if list.len() > MAX_HOSTS {
        let why = format!("ping takes at most {MAX_HOSTS} hosts; netkit sweep is for ranges");
        return Err(ParseError::new(args.hosts.join(" "), why).into());
    }
    let targets: Vec<Target> = list.resolve(family)?.iter().collect();
    let engine_config = icmp::Config {
        payload_size: args.size,
        ttl: args.ttl,
    };
    let config = PingConfig {
        count: args.count,
        interval: args.interval,
        timeout: args.timeout,
        deadline: args.deadline,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let summaries = runtime.block_on(session(&targets, &engine_config, &config, out))?;
    for summary in &summaries {
        print_summary(out, summary)?;
    }
    let all_answered = summaries.iter().all(|s| s.received > 0);
    Ok(if all_answered {
        Exit::Success
    } else {
        Exit::Negative
    })
}

async fn session(
    targets: &[Target],
    engine_config: &icmp::Config,
    config: &PingConfig,
    out: &Printer,
) -> anyhow::Result<Vec<PingSummary>> {
    let versions: Vec<Version> = [Version::V4, Version::V6]
        .into_iter()
        .filter(|v| targets.iter().any(|t| Version::of(&t.addr) == *v))
        .collect();
    let engine = icmp::Engine::new(engine_config, &versions)?;
    netkit::ping::check_interval(&engine, config.interval)?;
    for target in targets {
        print_header(out, target, engine_config.payload_size)?;
    }
    let shutdown = async {
        // Without a handler (never on Linux) the session simply runs to its end.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let summaries = netkit::ping::run(&engine, targets, config, shutdown, |event| {
        print_event(out, event)
    })
    .await?;
    Ok(summaries)
}

fn print_header(out: &Printer, target: &Target, size: usize) -> std::io::Result<()> {
    if out.json() {
        return Ok(());
    }
    let (host, addr) = (target.host(), target.addr);
    out.line(&match addr {
        IpAddr::V4(_) => format!("PING {host} ({addr}) {size}({}) bytes of data.", size + 28),
        IpAddr::V6(_) => format!("PING {host}({addr}) {size} data bytes"),
    })
}

fn print_event(out: &Printer, event: Event<'_>) -> std::io::Result<()> {
    match event {
        Event::Reply { record, .. } if out.json() => out.record("reply", record),
        Event::Reply { record: reply, rtt } if !out.quiet() => {
            let ttl = reply.ttl.map(|t| format!(" ttl={t}")).unwrap_or_default();
            let time = format_reply_time(rtt);
            out.line(&format!(
                "{} bytes from {}: icmp_seq={}{ttl} time={time} ms",
                reply.bytes, reply.addr, reply.seq
            ))
        }
        Event::Timeout(timeout) if out.json() => out.record("timeout", timeout),
        Event::Error { seq, error, .. } if !out.json() && !out.quiet() => out.line(&format!(
            "From {} icmp_seq={seq} {}",
            error.from,
            error.describe()
        )),
        Event::SendError { target, error } => {
            tracing::warn!(
                "{}: send: {}",
                target.host(),
                netkit::error::describe_io(&error)
            );
            Ok(())
        }
        _ => Ok(()),
    }
}

fn print_summary(out: &Printer, summary: &PingSummary) -> std::io::Result<()> {
    if out.json() {
        return out.record("summary", summary);
    }
    out.line("")?;
    out.line(&format!("--- {} ping statistics ---", summary.host))?;
    let errors = match summary.errors {
        0 => String::new(),
        n => format!(", +{n} errors"),
    };
    out.line(&format!(
        "{} packets transmitted, {} received{errors}, {}% packet loss, time {}ms",
        summary.transmitted,
        summary.received,
        format_g(summary.loss_pct),
        summary.time_ms
    ))?;
    if let (Some(min), Some(avg), Some(max), Some(mdev)) = (
        summary.min_ms,
        summary.avg_ms,
        summary.max_ms,
        summary.mdev_ms,
    ) {
        // The figures are whole microseconds, so three decimals print them exactly.
        out.line(&format!(
            "rtt min/avg/max/mdev = {min:.3}/{avg:.3}/{max:.3}/{mdev:.3} ms"
        ))?;
    }
    Ok(())
}
