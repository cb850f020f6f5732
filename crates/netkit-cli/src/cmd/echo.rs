//! `netkit echo LISTEN`: a concurrent echo server (issue 8; seed recipe 9 and the IPv6 echo
//! server). Prints the address it bound, serves until SIGINT, SIGTERM, SIGHUP or SIGQUIT, then
//! removes its socket file.

use netkit::ipc::echo::Event;
use netkit::ipc::EchoConfig;
use netkit::report::Listening;
use netkit::sys::{Signal, Signals};
use netkit::Endpoint;

use crate::exit::Exit;
use crate::output::Printer;
use crate::parse;

const EXAMPLES: &str = "\
Examples:
  netkit echo '[::1]:7000'                         IPv6 echo server
  netkit echo 0                                    any free loopback port; prints which
  netkit echo unix:/tmp/echo.sock --mode 660
  netkit echo unix:@echo --prefix 'Message received. Data: '

Once bound it prints 'listening on ADDR' (--json: {\"type\":\"listening\",\"addr\":ADDR}),
ADDR being an endpoint such as 127.0.0.1:40123 or unix:/tmp/echo.sock. Clients are logged
with -v, Unix clients with their pid, uid and gid. SIGINT, SIGTERM, SIGHUP or SIGQUIT stops
the server and removes its socket file (as socat does). A live socket at the path (another
server, even one too busy to accept) or a file that is not a socket is never removed: exit 3,
saying what is there (a symbolic link is never followed: the refusal names its target). A
stale socket file (a test connect is refused) is replaced.";

/// Socket files are for their owner unless `--mode` says otherwise.
const DEFAULT_MODE: u32 = 0o600;

/// Arguments of `netkit echo`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Where to listen: PORT, HOST:PORT, [V6]:PORT (port 0 picks one), [fe80::1%IFACE]:PORT
    /// (a link-local address with its interface), unix:PATH, unix:@NAME.
    #[arg(value_parser = parse::listen_endpoint)]
    pub listen: Endpoint,
    /// Text to put before each echoed chunk.
    #[arg(long, value_name = "TEXT")]
    pub prefix: Option<String>,
    /// Permission bits of the socket file (unix:PATH only) [default: 600].
    #[arg(long, value_name = "OCTAL", value_parser = parse::mode)]
    pub mode: Option<u32>,
    /// At most this many clients at once; more wait in the kernel's backlog.
    #[arg(long, value_name = "N", value_parser = parse::positive_count, default_value = "1024")]
    pub max_conns: usize,
}

/// Runs the echo server.
pub fn run(args: Args, out: &Printer) -> anyhow::Result<Exit> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(super::unstarted)?;
    runtime.block_on(serve(args, out))
}

async fn serve(args: Args, out: &Printer) -> anyhow::Result<Exit> {
    // Signals first, so a SIGTERM right after the socket appears still removes it.
    let mut signals = Signals::new(&[
        Signal::Terminate,
        Signal::Interrupt,
        Signal::Hangup,
        Signal::Quit,
    ])?;
    if args.mode.is_some() && !matches!(args.listen, Endpoint::Unix(_)) {
        tracing::warn!(
            "--mode applies only to unix:PATH; {} has no socket file",
            args.listen
        );
    }
    let mode = args.mode.unwrap_or(DEFAULT_MODE);
    let listener = netkit::ipc::listen(&args.listen, mode).await?;
    announce(out, &listener.local_addr())?;
    let config = EchoConfig {
        prefix: args.prefix.unwrap_or_default().into_bytes(),
        max_conns: args.max_conns,
    };
    netkit::ipc::serve(listener, config, signals.recv(), log).await?;
    Ok(Exit::Success)
}

/// Clients are logged (with -v), not printed: the output is the echo itself.
fn log(event: Event) -> std::io::Result<()> {
    match event {
        Event::Connected { peer } => tracing::info!("{peer}: connected"),
        Event::Closed { peer, bytes } => {
            tracing::info!("{peer}: closed after echoing {bytes} bytes")
        }
        Event::Failed { peer, error } => tracing::info!("{peer}: {error}"),
    }
    Ok(())
}

/// Prints the bound address, the real port when port 0 was asked for.
fn announce(out: &Printer, addr: &str) -> std::io::Result<()> {
    if out.json() {
        return out.record(
            "listening",
            &Listening {
                addr: addr.to_string(),
                target: None,
            },
        );
    }
    // The path is the user's (or the kernel's) bytes: a newline in it must not split the line
    // a script reads the address from, nor an escape restyle the terminal.
    out.line(&netkit::text::one_line(&format!("listening on {addr}")))
}
