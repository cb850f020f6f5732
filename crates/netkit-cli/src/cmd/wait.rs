//! `netkit wait TARGET...`: wait until services are ready (or gone, with `--invert`), then
//! optionally run a command (issues 7 and 13).

use std::path::PathBuf;
use std::time::Duration;

use netkit::report::wait::{WaitReady, WaitTimeout};
use netkit::wait::tls::Trust;
use netkit::wait::{Backoff, HttpCheck, StatusSet, Target, WaitEvent, WaitOptions};
use netkit::ParseError;

use crate::exit::{Exit, WithStatus};
use crate::output::Printer;
use crate::parse;

const EXAMPLES: &str = "\
Targets:
  PORT, HOST:PORT, [V6]:PORT, tcp://HOST:PORT   a TCP connection is accepted
  [fe80::1%IFACE]:PORT                          (a link-local address with its interface)
  unix:PATH, unix:@NAME                         a Unix stream connection is accepted (a
                                                full accept queue: not ready, not gone)
  http://URL, https://URL                       a GET answers with a status in --status
                                                (and a body containing --body); redirects
                                                are not followed, so 3xx counts by default
  dns:NAME, dns:NAME=ADDR                       the name resolves (to ADDR, among others)
  file:PATH                                     the path exists
A link-local URL takes its zone as curl does: http://[fe80::1%25IFACE]:PORT/.
Attempts repeat every --interval for 10 s, then the delay doubles up to --max-interval.
HTTPS verifies the server against the system's roots (SSL_CERT_FILE and SSL_CERT_DIR are
honoured), or the CAs of --cacert instead. A timeout says why each target is not ready, and
where the deadline cut an attempt under way (name lookup, connect, TLS handshake, HTTP
response, body); -v prints why a target is not ready, each time the reason changes.

Examples:
  netkit wait db.internal:5432 -- ./migrate       run ./migrate once PostgreSQL accepts
  netkit wait localhost:8080 '[::1]:9090' --timeout 30s
  netkit wait https://app.internal/health --status 200 --body '\"ok\"'
  netkit wait unix:/run/app.sock file:/run/app.ready --interval 50ms
  netkit wait 127.0.0.1:8080 --invert --timeout 0  until the port is free, however long
Exit: 0 ready (or COMMAND's status: 126 it cannot run, 127 not found, as a shell), 1 timed
out (COMMAND is not run), 3 out of file descriptors (raise ulimit -n).";

/// Arguments of `netkit wait`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// What to wait for (see Targets below).
    #[arg(required = true, value_name = "TARGET", value_parser = parse::wait_target)]
    pub targets: Vec<Target>,
    /// Give up after this long (a hard deadline); 0 waits forever.
    #[arg(long, value_name = "DUR", value_parser = parse::duration, default_value = "120s")]
    pub timeout: Duration,
    /// Time between the first attempts.
    #[arg(long, value_name = "DUR", value_parser = positive("--interval"), default_value = "250ms")]
    pub interval: Duration,
    /// Longest time between attempts once backing off [default: 2s, or --interval if longer].
    #[arg(long, value_name = "DUR", value_parser = positive("--max-interval"))]
    pub max_interval: Option<Duration>,
    /// Ready when any one target is (default: all of them).
    #[arg(long)]
    pub any: bool,
    /// Wait until the targets are NOT ready: a port freed, a server gone, a file removed.
    ///
    /// Gone is what the service answers when not ready (refused, reset, a status not in
    /// --status, a body without --body, no HTTP, NXDOMAIN or no address, no such file, not a
    /// directory) or silence: every connect for 8 s unanswered, a new one started each
    /// second. What netkit cannot judge is neither ready nor gone, and the wait goes on: a
    /// certificate it does not trust, a name lookup failing for now (SERVFAIL, REFUSED, no
    /// name server answering), a path it may not check (permission denied, an I/O error), a
    /// Unix server too busy to accept, an HTTP server that took the connection but has not
    /// answered in time.
    #[arg(long)]
    pub invert: bool,
    /// HTTP status codes that count as ready: codes, ranges, classes [default: 200-399].
    #[arg(long, value_name = "CODES", value_parser = parse::status_set)]
    pub status: Option<StatusSet>,
    /// HTTP targets are ready only when the response body contains TEXT.
    #[arg(long, value_name = "TEXT")]
    pub body: Option<String>,
    /// HTTPS: accept any server certificate.
    #[arg(long, conflicts_with = "cacert")]
    pub insecure: bool,
    /// HTTPS: trust the CA certificates in this PEM file instead of the system's roots.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Command to run once ready; netkit exits with its status.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// A duration above zero for `flag`, whose errors name the flag (`--interval 0: must be
/// longer than zero`), as `--timeout -1`'s do.
fn positive(flag: &'static str) -> impl Fn(&str) -> Result<Duration, ParseError> + Clone {
    move |text| {
        parse::positive_duration(text)
            .map_err(|e| ParseError::new(format!("{flag} {text}"), e.kind.to_string()))
    }
}

/// Runs the wait, then the command if one was given and the wait succeeded.
pub fn run(args: Args, out: &Printer) -> anyhow::Result<Exit> {
    let options = options(&args)?;
    let progress = !out.quiet();
    if progress {
        for target in &args.targets {
            eprintln!(
                "waiting for {target}{} ({})",
                gone(args.invert),
                limit(args.timeout)
            );
        }
    }
    let runtime = super::runtime()?;
    let ready = runtime.block_on(netkit::wait::wait_for(&args.targets, &options, |event| {
        unless_stdout_closed(report(out, progress, &args, &event))
    }));
    // A name lookup may still hang in a blocking thread: the deadline is hard, so do not
    // wait for it (dropping the runtime would).
    runtime.shutdown_background();
    let ready = ready?;
    if !ready {
        return Ok(Exit::Negative);
    }
    match args.command.split_first() {
        Some((program, rest)) => Err(exec(program, rest)),
        None => Ok(Exit::Success),
    }
}

/// Validates the flags against the targets and builds the library's options.
fn options(args: &Args) -> anyhow::Result<WaitOptions> {
    let http = args.targets.iter().any(Target::is_http);
    let https = args.targets.iter().any(Target::is_https);
    let any_http = "http:// and https://";
    for (given, flag, applies, kind) in [
        (args.status.is_some(), "--status", http, any_http),
        (args.body.is_some(), "--body", http, any_http),
        (args.insecure, "--insecure", https, "https://"),
        (args.cacert.is_some(), "--cacert", https, "https://"),
    ] {
        if given && !applies {
            return Err(ParseError::new(flag, format!("applies only to {kind} targets")).into());
        }
    }
    let tls = match (https, args.insecure, &args.cacert) {
        (false, _, _) => None,
        (true, true, _) => Some(netkit::wait::tls::client_config(&Trust::Insecure)?),
        (true, false, Some(file)) => Some(netkit::wait::tls::client_config(&Trust::CaFile(
            file.clone(),
        ))?),
        (true, false, None) => Some(netkit::wait::tls::client_config(&Trust::System)?),
    };
    Ok(WaitOptions {
        timeout: (!args.timeout.is_zero()).then_some(args.timeout),
        backoff: Backoff::new(args.interval, args.max_interval)?,
        any: args.any,
        invert: args.invert,
        http: HttpCheck {
            status: args.status.clone().unwrap_or_default(),
            body: args.body.clone(),
            tls,
        },
    })
}

/// A record that found stdout closed (`netkit --json wait A B | head -1`) is not the wait's
/// failure: the wait goes on, and its outcome is the exit status (1 if it times out) and the
/// command run once ready, as without `--json`.
fn unless_stdout_closed(printed: std::io::Result<()>) -> std::io::Result<()> {
    match printed {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        printed => printed,
    }
}

/// Prints one event: progress on stderr, the `ready`/`timeout` records with `--json`.
fn report(out: &Printer, progress: bool, args: &Args, event: &WaitEvent) -> std::io::Result<()> {
    match event {
        WaitEvent::Ready { index, elapsed } => {
            let target = args.targets[*index].to_string();
            if progress {
                let state = if args.invert { "gone" } else { "up" };
                eprintln!("{target} is {state} after {}", seconds(*elapsed));
            }
            if out.json() {
                let record = WaitReady {
                    endpoint: target,
                    elapsed_s: elapsed.as_secs_f64(),
                };
                out.record("ready", &record)?;
            }
        }
        WaitEvent::NotReady { index, finding, .. } => {
            tracing::info!("{}: not ready: {}", args.targets[*index], finding.reason());
        }
        WaitEvent::TimedOut {
            index,
            elapsed,
            finding,
            earlier,
            attempts,
        } => {
            let target = args.targets[*index].to_string();
            let reason = match earlier {
                Some(earlier) => format!("{} (earlier: {})", finding.reason(), earlier.reason()),
                None => finding.reason(),
            };
            if progress {
                eprintln!(
                    "timed out waiting for {target}{} after {} ({}): {reason}",
                    gone(args.invert),
                    seconds(*elapsed),
                    tries(*attempts),
                );
            }
            if out.json() {
                let record = WaitTimeout {
                    endpoint: target,
                    elapsed_s: elapsed.as_secs_f64(),
                    reason,
                    attempts: *attempts,
                };
                out.record("timeout", &record)?;
            }
        }
    }
    Ok(())
}

fn tries(attempts: u32) -> String {
    match attempts {
        1 => "1 attempt".into(),
        n => format!("{n} attempts"),
    }
}

fn gone(invert: bool) -> &'static str {
    if invert {
        " to go away"
    } else {
        ""
    }
}

fn limit(timeout: Duration) -> String {
    if timeout.is_zero() {
        "no timeout".into()
    } else {
        format!("timeout {}", seconds(timeout))
    }
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
