//! `netkit forward LISTEN TARGET`: the port forwarder (issue 3).

use std::path::PathBuf;
use std::time::Duration;

use netkit::{Endpoint, IpNet};

use crate::exit::Exit;
use crate::output::Printer;
use crate::parse;

const EXAMPLES: &str = "\
Examples:
  netkit forward 8080 example.internal:80            relay 127.0.0.1:8080 to example.internal:80
  netkit forward '[::]:8080' 127.0.0.1:80 --http-host auto
  netkit forward unix:/run/app.sock '[::1]:9000'     expose a TCP service on a Unix socket
  netkit forward 0.0.0.0:2222 10.0.0.5:22 --allow 10.0.0.0/8 --max-conns 100
  netkit forward --config rules.toml";

/// Arguments of `netkit forward`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Where to listen: PORT (loopback), HOST:PORT, [V6]:PORT, unix:PATH, unix:@NAME.
    #[arg(value_parser = parse::listen_endpoint, required_unless_present = "config")]
    pub listen: Option<Endpoint>,
    /// Where to relay to: HOST:PORT, [V6]:PORT, unix:PATH, unix:@NAME, exec:COMMAND.
    #[arg(value_parser = parse::endpoint, required_unless_present = "config")]
    pub target: Option<Endpoint>,
    /// Rewrite the Host header of every HTTP request (auto: the target's host:port).
    #[arg(long, value_name = "HOST|auto")]
    pub http_host: Option<String>,
    /// Accept clients only from this block (repeatable); others are refused and logged.
    #[arg(long, value_name = "CIDR", value_parser = parse::cidr)]
    pub allow: Vec<IpNet>,
    /// At most this many connections at once; more wait in the kernel's backlog.
    #[arg(long, value_name = "N", value_parser = parse::positive_count)]
    pub max_conns: Option<usize>,
    /// Close a connection after this long with no traffic either way.
    #[arg(long, value_name = "DUR", value_parser = parse::positive_duration)]
    pub idle_timeout: Option<Duration>,
    /// Give up connecting to one target address after this long.
    #[arg(long, value_name = "DUR", value_parser = parse::positive_duration, default_value = "10s")]
    pub connect_timeout: Duration,
    /// Send a PROXY protocol header to the target.
    #[arg(long, value_name = "v1|v2", value_parser = parse::proxy_protocol)]
    pub proxy_protocol: Option<parse::ProxyProtocol>,
    /// Read forwarding rules from a TOML file; flags given here override each rule's options.
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
}

/// Runs the forwarder.
pub fn run(_args: Args, _out: &Printer) -> anyhow::Result<Exit> {
    super::not_implemented("forward")
}
