//! `netkit send ENDPOINT [MESSAGE]`: connect, send, half-close, print the reply until the peer's
//! end of file (issue 8; seed recipes 8 and 9).

use std::io::Write;
use std::time::{Duration, Instant};

use netkit::endpoint::Stream;
use netkit::ipc::Exchange;
use netkit::report::send::Reply;
use netkit::Endpoint;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::exit::Exit;
use crate::output::Printer;
use crate::parse;

const EXAMPLES: &str = "\
Examples:
  netkit send unix:/tmp/echo.sock hello
  echo hi | netkit send '[::1]:7000'
  netkit send 'exec:tr a-z A-Z' 'shout'             a child on a socketpair
  netkit send -n 'exec:wc -c' abc                   exact bytes: prints 3

  tar c dir | netkit send 'exec:wc -c'              a slow upload is fine: --timeout is idle time

--timeout is an idle timeout: it starts when the input has ended and restarts with every byte
of reply, so a long upload never times out while it flows. A peer that shuts down its side
first (nc -lU PATH > file) still gets all the input, as with nc -U; one that closes its Unix
socket for good (an exec: child that exits) ends send at once.

--timeout never counts the time the output takes to take the reply (send | less left on
screen). A TCP peer that resets the connection may have thrown away the end of its reply: send
says so and exits 1, as ncat does (on a Unix socket or an exec: child a reset only means the
peer closed with input unread; its reply is whole).

Exit status: 0 the reply ended, 1 the reply went silent for --timeout before its end (or the
peer took no input for that long), or a TCP peer reset the connection, 2 bad input, 3 the
connection was refused or has no route (network or host unreachable), or the command could not
be started.";

/// Arguments of `netkit send`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Where to send: HOST:PORT, [V6]:PORT, [fe80::1%IFACE]:PORT (a link-local address with
    /// its interface), unix:PATH, unix:@NAME, exec:COMMAND.
    #[arg(value_parser = parse::endpoint)]
    pub endpoint: Endpoint,
    /// The message, sent with a newline after it like echo (default: stdin until EOF, as is).
    pub message: Option<String>,
    /// Send MESSAGE without the newline.
    #[arg(short = 'n', long, requires = "message")]
    pub no_newline: bool,
    /// Give up (exit 1) when the reply stays silent this long after the input ended, or the
    /// peer takes no input for this long; also bounds connecting. Time spent reading a slow
    /// stdin never counts.
    #[arg(long, value_name = "DUR", value_parser = parse::positive_duration, default_value = "10s")]
    pub timeout: Duration,
}

/// Runs send.
pub fn run(args: Args, out: &Printer) -> anyhow::Result<Exit> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(super::unstarted)?;
    let result = runtime.block_on(send(&args, out));
    // A read of stdin may still be blocked in a worker thread; do not wait for it.
    runtime.shutdown_background();
    result
}

async fn send(args: &Args, out: &Printer) -> anyhow::Result<Exit> {
    let start = Instant::now();
    let mut stream = match args.endpoint.connect(args.timeout).await {
        Ok(stream) => stream,
        Err(err) if is_timeout(&err) => return timed_out(args, "no connection within"),
        Err(err) => return Err(err.into()),
    };
    let mut collected = Vec::new();
    let output: Box<dyn AsyncWrite + Unpin + Send + '_> = match out.json() {
        true => Box::new(&mut collected),
        false => Box::new(tokio::io::stdout()),
    };
    let hung_up = netkit::ipc::hung_up(&stream);
    let done = netkit::ipc::exchange(
        &mut stream,
        input(args),
        output,
        Some(args.timeout),
        hung_up,
    )
    .await
    .map_err(|e| netkit::Error::io(format!("send to {}", args.endpoint), e))?;
    if done.timed_out {
        print_record(out, "timeout", args, done, &collected, start)?;
        return match done.input_stalled {
            true => timed_out(args, "the peer took no input for"),
            false => timed_out(args, "no end of reply: nothing received for"),
        };
    }
    print_record(out, "reply", args, done, &collected, start)?;
    if done.reset && over_network(&args.endpoint) {
        return reset(args);
    }
    reap(&args.endpoint, &mut stream, Instant::now() + args.timeout).await;
    Ok(Exit::Success)
}

/// Whether `endpoint` is reached over TCP, where a reset can throw away reply bytes still on
/// their way (the peer's kernel drops what it had not sent). On a Unix socket or a socketpair
/// nothing is on its way: a reset there only says the peer closed with input unread, and its
/// reply is whole.
fn over_network(endpoint: &Endpoint) -> bool {
    !matches!(
        endpoint,
        Endpoint::Unix(_) | Endpoint::Abstract(_) | Endpoint::Exec(_)
    )
}

/// Says on stderr that the peer reset the connection, as ncat does; exit 1.
fn reset(args: &Args) -> anyhow::Result<Exit> {
    let _ = writeln!(
        std::io::stderr(),
        "netkit: send to {}: connection reset by peer; the reply may be cut short",
        args.endpoint
    );
    Ok(Exit::Negative)
}

/// MESSAGE and its newline, or stdin.
fn input(args: &Args) -> Box<dyn AsyncRead + Unpin + Send> {
    match &args.message {
        Some(message) => {
            let mut bytes = message.clone().into_bytes();
            if !args.no_newline {
                bytes.push(b'\n');
            }
            Box::new(std::io::Cursor::new(bytes))
        }
        None => Box::new(tokio::io::stdin()),
    }
}

fn is_timeout(err: &netkit::Error) -> bool {
    matches!(err, netkit::Error::Io { source, .. } if source.kind() == std::io::ErrorKind::TimedOut)
}

/// Says what did not happen in time on stderr; exit 1.
fn timed_out(args: &Args, what: &str) -> anyhow::Result<Exit> {
    let _ = writeln!(
        std::io::stderr(),
        "netkit: send to {}: {what} {:?}; raise --timeout to wait longer",
        args.endpoint,
        args.timeout
    );
    Ok(Exit::Negative)
}

fn print_record(
    out: &Printer,
    kind: &str,
    args: &Args,
    done: Exchange,
    reply: &[u8],
    start: Instant,
) -> std::io::Result<()> {
    if !out.json() {
        return Ok(());
    }
    let record = Reply {
        endpoint: args.endpoint.to_string(),
        sent: done.sent,
        received: done.received,
        reply: String::from_utf8_lossy(reply).into_owned(),
        elapsed_s: start.elapsed().as_secs_f64(),
        reset: done.reset,
    };
    out.record(kind, &record)
}

/// Waits (until `deadline`) for an `exec:` child to exit, and says so when it failed.
async fn reap(endpoint: &Endpoint, stream: &mut Stream, deadline: Instant) {
    let Stream::Child(_, child) = stream else {
        return;
    };
    match tokio::time::timeout_at(deadline.into(), child.wait()).await {
        Ok(Ok(status)) if !status.success() => tracing::warn!("{endpoint}: {status}"),
        _ => {}
    }
}
