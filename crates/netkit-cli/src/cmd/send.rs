//! `netkit send ENDPOINT [MESSAGE]`: send, half-close, print the reply (issue 8).

use std::time::Duration;

use netkit::Endpoint;

use crate::exit::Exit;
use crate::output::Printer;
use crate::parse;

const EXAMPLES: &str = "\
Examples:
  netkit send unix:/tmp/echo.sock hello
  echo hi | netkit send '[::1]:7000'
  netkit send 'exec:tr a-z A-Z' 'shout'             a child on a socketpair";

/// Arguments of `netkit send`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Where to send: HOST:PORT, [V6]:PORT, unix:PATH, unix:@NAME, exec:COMMAND.
    #[arg(value_parser = parse::endpoint)]
    pub endpoint: Endpoint,
    /// The message (default: stdin until EOF).
    pub message: Option<String>,
    /// Give up after this long.
    #[arg(long, value_name = "DUR", value_parser = parse::positive_duration, default_value = "10s")]
    pub timeout: Duration,
}

/// Runs send.
pub fn run(_args: Args, _out: &Printer) -> anyhow::Result<Exit> {
    super::not_implemented("send")
}
