//! `netkit echo LISTEN`: a concurrent echo server (issue 8).

use netkit::Endpoint;

use crate::exit::Exit;
use crate::output::Printer;
use crate::parse;

const EXAMPLES: &str = "\
Examples:
  netkit echo '[::1]:7000'                         IPv6 echo server
  netkit echo unix:/tmp/echo.sock --mode 660
  netkit echo unix:@echo --prefix 'Message received. Data: '";

/// Arguments of `netkit echo`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Where to listen: PORT, HOST:PORT, [V6]:PORT (port 0 picks one), unix:PATH, unix:@NAME.
    #[arg(value_parser = parse::listen_endpoint)]
    pub listen: Endpoint,
    /// Text to put before each echoed chunk.
    #[arg(long, value_name = "TEXT")]
    pub prefix: Option<String>,
    /// Permission bits of the socket file (unix:PATH).
    #[arg(long, value_name = "OCTAL", value_parser = parse::mode, default_value = "600")]
    pub mode: u32,
}

/// Runs the echo server.
pub fn run(_args: Args, _out: &Printer) -> anyhow::Result<Exit> {
    super::not_implemented("echo")
}
