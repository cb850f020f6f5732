//! `netkit ping HOST...`: ICMP echo with iputils-style statistics (issue 4).

use std::time::Duration;

use crate::exit::Exit;
use crate::output::Printer;
use crate::parse;

const EXAMPLES: &str = "\
Examples:
  netkit ping -c 3 ::1                      three probes to the IPv6 loopback
  netkit ping -c 5 -i 200ms host1 host2     several hosts at once, one summary each
  netkit --json ping -c 1 127.0.0.1         JSON Lines: reply/timeout/summary records
Without CAP_NET_RAW, ping uses the unprivileged ICMP socket when net.ipv4.ping_group_range
admits your group.";

/// Arguments of `netkit ping`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES, allow_negative_numbers = true)]
pub struct Args {
    /// Hosts: addresses, names (and the target forms of `sweep`).
    #[arg(required = true, value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Stop after this many probes per host (default: until Ctrl-C or -w).
    #[arg(short = 'c', long = "count", value_name = "COUNT", value_parser = parse::count)]
    pub count: Option<u64>,
    /// Time between probes to one host.
    #[arg(short = 'i', long = "interval", value_name = "INTERVAL", value_parser = parse::positive_duration, default_value = "1s")]
    pub interval: Duration,
    /// How long to wait for each reply.
    #[arg(short = 'W', long = "timeout", value_name = "TIMEOUT", value_parser = parse::positive_duration, default_value = "1s")]
    pub timeout: Duration,
    /// Stop after this long, whatever the count.
    #[arg(short = 'w', long = "deadline", value_name = "DEADLINE", value_parser = parse::positive_duration)]
    pub deadline: Option<Duration>,
    /// ICMP payload bytes (default 56, as iputils).
    #[arg(short = 's', long = "size", value_name = "BYTES", value_parser = parse::payload_size, default_value = "56")]
    pub size: usize,
    /// Time to live (IPv4) or hop limit (IPv6).
    #[arg(short = 't', long = "ttl", value_name = "TTL", value_parser = parse::ttl)]
    pub ttl: Option<u8>,
    /// Use IPv4 only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use IPv6 only.
    #[arg(short = '6')]
    pub ipv6: bool,
}

/// Runs ping.
pub fn run(args: Args, _out: &Printer) -> anyhow::Result<Exit> {
    let _targets = netkit::TargetList::parse(&args.hosts, false)?.resolve(netkit::Family::Any)?;
    super::not_implemented("ping")
}
