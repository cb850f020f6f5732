//! `netkit wait ENDPOINT...`: wait for services to accept connections (issue 7).

use std::time::Duration;

use netkit::Endpoint;

use netkit::wait::{WaitEvent, WaitOptions};
use serde::Serialize;

use crate::exit::{Exit, WithStatus};
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

/// Runs the wait, then the command if one was given and the wait succeeded.
pub fn run(args: Args, out: &Printer) -> anyhow::Result<Exit> {
    let options = WaitOptions {
        timeout: args.timeout,
        interval: args.interval,
        any: args.any,
    };
    let progress = !out.quiet();
    if progress {
        for endpoint in &args.endpoints {
            eprintln!("waiting for {endpoint} (timeout {})", seconds(args.timeout));
        }
    }
    let mut printed = Ok(());
    let ready =
        super::runtime()?.block_on(netkit::wait::wait_for(&args.endpoints, &options, |event| {
            if printed.is_ok() {
                printed = report(out, progress, &args.endpoints, &event);
            }
        }));
    printed?;
    if !ready {
        return Ok(Exit::Negative);
    }
    match args.command.split_first() {
        Some((program, rest)) => Err(exec(program, rest)),
        None => Ok(Exit::Success),
    }
}

/// `ready`/`timeout` records (SPEC.md).
#[derive(Debug, Serialize)]
struct WaitRecord {
    endpoint: String,
    elapsed_s: f64,
}

fn report(
    out: &Printer,
    progress: bool,
    endpoints: &[Endpoint],
    event: &WaitEvent,
) -> std::io::Result<()> {
    let (kind, index, elapsed) = match *event {
        WaitEvent::Ready { index, elapsed } => ("ready", index, elapsed),
        WaitEvent::TimedOut { index, elapsed } => ("timeout", index, elapsed),
    };
    let endpoint = endpoints[index].to_string();
    if progress {
        match kind {
            "ready" => eprintln!("{endpoint} is up after {}", seconds(elapsed)),
            _ => eprintln!(
                "timed out waiting for {endpoint} after {}",
                seconds(elapsed)
            ),
        }
    }
    if out.json() {
        out.record(
            kind,
            &WaitRecord {
                endpoint,
                elapsed_s: elapsed.as_secs_f64(),
            },
        )?;
    }
    Ok(())
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Replaces this process with the command, so that stdin, signals and the exit status are the
/// command's own. Returns only when the command could not be started.
fn exec(program: &str, args: &[String]) -> anyhow::Error {
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(program).args(args).exec();
    let status = if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    };
    let message = format!(
        "{program}: cannot run: {}",
        netkit::error::describe_io(&err)
    );
    WithStatus { status, message }.into()
}
