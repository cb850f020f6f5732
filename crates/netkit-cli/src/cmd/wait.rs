//! `netkit wait ENDPOINT...`: wait for services to accept connections (issue 7).

use std::time::Duration;

use netkit::Endpoint;

use crate::exit::Exit;
use crate::output::Printer;
use crate::parse;

const EXAMPLES: &str = "\
Examples:
  netkit wait db.internal:5432 -- ./migrate       run ./migrate once PostgreSQL accepts
  netkit wait localhost:8080 '[::1]:9090' --timeout 30s
  netkit wait unix:/run/app.sock --any --interval 50ms
Exit: 0 ready (or COMMAND's status), 1 timed out (COMMAND is not run).";

/// Arguments of `netkit wait`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Services: PORT, HOST:PORT, [V6]:PORT, unix:PATH, unix:@NAME.
    #[arg(required = true, value_name = "ENDPOINT", value_parser = parse::endpoint)]
    pub endpoints: Vec<Endpoint>,
    /// Give up after this long (a hard deadline).
    #[arg(long, value_name = "DUR", value_parser = parse::positive_duration, default_value = "120s")]
    pub timeout: Duration,
    /// Time between attempts (backs off, capped, on long waits).
    #[arg(long, value_name = "DUR", value_parser = parse::positive_duration, default_value = "250ms")]
    pub interval: Duration,
    /// Ready when any one endpoint is up (default: all of them).
    #[arg(long)]
    pub any: bool,
    /// Command to run once ready; netkit exits with its status.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Runs the wait.
pub fn run(_args: Args, _out: &Printer) -> anyhow::Result<Exit> {
    super::not_implemented("wait")
}
