//! `netkit forward LISTEN TARGET`: the port forwarder (issue 3); `udp:` rules in `udp`.

mod udp;

use std::path::PathBuf;
use std::time::Duration;

use std::io::Write;
use std::sync::Arc;

use netkit::forward::{self, Event, HttpHost, Keepalive, Options, Rule};
use netkit::report::forward::ConnRecord;
use netkit::report::Listening;
use netkit::sys::{Signal, Signals};
use netkit::{Endpoint, IpNet, ParseError};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::exit::Exit;
use crate::output::Printer;
use crate::parse;

const EXAMPLES: &str = "\
Examples:
  netkit forward 8080 example.internal:80            relay 127.0.0.1:8080 to example.internal:80
  netkit forward '[::]:8080' 127.0.0.1:80 --http-host auto
  netkit forward unix:/run/app.sock '[::1]:9000'     expose a TCP service on a Unix socket
  netkit forward 0.0.0.0:2222 10.0.0.5:22 --allow 10.0.0.0/8 --max-conns 100
  netkit forward udp:5353 udp:127.0.0.1:53              relay DNS over UDP, a session per client
  netkit forward 'udp:[::]:5353' 'udp:[::1]:53' --idle-timeout 30s --max-conns 1000
  netkit forward --config rules.toml

Once bound, each rule prints 'listening on ADDR -> TARGET' on stderr (port 0 shows the port
the kernel chose; with --json also a \"listen\" record on stdout), then one line per finished
connection: time (RFC 3339, UTC), client, target, bytes each way, duration, how it ended.
SIGINT/SIGTERM stop accepting and let open connections finish for --drain-timeout (30s by
default), then close them; a second signal closes them at once. SIGHUP is logged and ignored.
A reset on one side is passed on as a reset (SO_LINGER 0) to the other.

UDP (udp: on both sides): each client address gets a session, a socket of its own connected
to the target (the target sees one source per client; replies go back to their client). A
session ends after --idle-timeout without a datagram either way (60s by default) and is
logged then (a \"session\" record). --max-conns bounds sessions: datagrams of new clients
beyond it, from outside --allow, or arriving while draining are dropped and counted (a \"drop\"
line at most once a second). --proxy-protocol v2 puts a PROXY v2 header (DGRAM) before every
datagram. An ICMP port unreachable from the target is counted, never fatal. On SIGTERM no new
sessions start; open ones go on until idle or --drain-timeout.";

/// Arguments of `netkit forward`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Where to listen: PORT (loopback), HOST:PORT, [V6]:PORT, unix:PATH, unix:@NAME, or
    /// udp:PORT, udp:HOST:PORT, udp:[V6]:PORT (then the target is udp: too).
    #[arg(value_parser = parse::forward_listen, required_unless_present = "config")]
    pub listen: Option<Endpoint>,
    /// Where to relay to: HOST:PORT, [V6]:PORT, unix:PATH, unix:@NAME, exec:COMMAND, or
    /// udp:HOST:PORT, udp:[V6]:PORT for a udp: listen.
    #[arg(value_parser = parse::forward_target, required_unless_present = "config")]
    pub target: Option<Endpoint>,
    /// Rewrite the Host of every HTTP/1.x request (auto: the target's host:port), and the
    /// authority of absolute-form targets (GET http://x/p -> GET http://HOST/p) and of
    /// CONNECT. Malformed or ambiguous requests get 400; a tunnel starts only on the target's
    /// 101 to an Upgrade request or 2xx to CONNECT (docs/http-host.md).
    #[arg(long, value_name = "HOST|auto", value_parser = parse::http_host)]
    pub http_host: Option<HttpHost>,
    /// Accept clients only from this block (repeatable); others are refused and logged
    /// (Unix-socket clients are not filtered).
    #[arg(long, value_name = "CIDR", value_parser = parse::cidr)]
    pub allow: Vec<IpNet>,
    /// At most this many connections at once; more wait in the kernel's backlog. UDP: at
    /// most this many sessions; datagrams of new clients beyond them are dropped and counted.
    #[arg(long, value_name = "N", value_parser = parse::positive_count)]
    pub max_conns: Option<usize>,
    /// Close a connection after this long with no traffic either way (TCP: never by default:
    /// an idle connection stays open as long as both peers are there, see --keepalive; UDP
    /// sessions: 60s by default).
    #[arg(long, value_name = "DUR", value_parser = parse::positive_duration)]
    pub idle_timeout: Option<Duration>,
    /// Give up connecting to one target address after this long [default: 10s].
    #[arg(long, value_name = "DUR", value_parser = parse::positive_duration)]
    pub connect_timeout: Option<Duration>,
    /// Send a PROXY protocol header to the target (UDP: v2 only, before every datagram).
    #[arg(long, value_name = "v1|v2", value_parser = parse::proxy_protocol)]
    pub proxy_protocol: Option<parse::ProxyProtocol>,
    /// After SIGINT/SIGTERM, give open connections this long to finish, then close them (each
    /// is logged as drain-timeout) [default: 30s].
    #[arg(long, value_name = "DUR", value_parser = parse::duration)]
    pub drain_timeout: Option<Duration>,
    /// Read forwarding rules from a TOML file; flags given here override each rule's options.
    #[arg(long, value_name = "FILE.toml", conflicts_with_all = ["listen", "target"])]
    pub config: Option<PathBuf>,
    /// TCP keepalive on both legs: after DUR without traffic the kernel probes the peer, every
    /// DUR/4 (whole seconds), and after 4 unanswered probes the connection is closed (the other
    /// leg reset) and logged as dead-peer, so a vanished peer is noticed within 2*DUR; 0 or off
    /// disables [default: 60s].
    #[arg(long, value_name = "DUR|off", value_parser = parse::keepalive)]
    pub keepalive: Option<Keepalive>,
}

/// Runs the forwarder until SIGINT or SIGTERM, then drains open connections (a second signal
/// closes them at once).
///
/// Once bound, each rule is announced on stderr as `listening on ADDR -> TARGET` (with
/// `--json` also as a `listen` record on stdout), so port 0 can be read back.
pub fn run(args: Args, out: &Printer) -> anyhow::Result<Exit> {
    let rules = rules(&args)?;
    netkit::sys::raise_nofile();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(rules, out))
}

/// The rules of the command line or the config file, with the flags applied to each.
fn rules(args: &Args) -> Result<Vec<Rule>, netkit::Error> {
    let mut rules = match (&args.config, &args.listen, &args.target) {
        (Some(path), _, _) => forward::config::load(path)?,
        (None, Some(listen), Some(target)) => vec![Rule {
            listen: listen.clone(),
            target: target.clone(),
            options: Options::default(),
        }],
        _ => {
            let why = "expected LISTEN TARGET or --config";
            return Err(ParseError::new("forward", why).into());
        }
    };
    for rule in &mut rules {
        apply_flags(args, &mut rule.options);
        forward::udp::check(rule).map_err(|(_, error)| error)?;
    }
    Ok(rules)
}

fn apply_flags(args: &Args, options: &mut Options) {
    if let Some(host) = &args.http_host {
        options.http_host = Some(host.clone());
    }
    if !args.allow.is_empty() {
        options.allow.clone_from(&args.allow);
    }
    options.max_conns = args.max_conns.or(options.max_conns);
    options.idle_timeout = args.idle_timeout.or(options.idle_timeout);
    options.connect_timeout = args.connect_timeout.unwrap_or(options.connect_timeout);
    options.proxy_protocol = args.proxy_protocol.or(options.proxy_protocol);
    options.drain_timeout = args.drain_timeout.unwrap_or(options.drain_timeout);
    options.keepalive = args.keepalive.unwrap_or(options.keepalive);
}

async fn serve(rules: Vec<Rule>, out: &Printer) -> anyhow::Result<Exit> {
    // Signals first, so that one coming right after a rule is announced is handled.
    let mut signals = Signals::new(&[Signal::Interrupt, Signal::Terminate, Signal::Hangup])?;
    let mut bound = Vec::new();
    for rule in rules {
        let listener = udp::Listening::bind(&rule).await?;
        announce(out, &listener.local_addr(), &rule)?;
        bound.push((listener, Arc::new(rule)));
    }
    let (stop, stopped) = watch::channel(false);
    let mut servers = JoinSet::new();
    for (listener, rule) in bound {
        let mut stopped = stopped.clone();
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        match listener {
            udp::Listening::Stream(listener) => {
                servers.spawn(forward::serve(
                    listener,
                    rule,
                    shutdown,
                    conn_log(out.clone()),
                ));
            }
            udp::Listening::Datagram(bound) => {
                let log = udp::session_log(out.clone());
                servers.spawn(forward::udp::serve(
                    bound,
                    rule,
                    Arc::default(),
                    shutdown,
                    log,
                ));
            }
        }
    }
    stop_signal(&mut signals).await;
    tracing::info!("stopping: no new connections, draining open ones");
    let _ = stop.send(true);
    tokio::select! {
        () = async { while servers.join_next().await.is_some() {} } => {}
        _ = stop_signal(&mut signals) => tracing::warn!("second signal: closing open connections"),
    }
    Ok(Exit::Success)
}

/// Waits for SIGINT or SIGTERM; SIGHUP is logged and ignored (no reload yet).
async fn stop_signal(signals: &mut Signals) {
    while signals.recv().await == Signal::Hangup {
        tracing::warn!(
            "SIGHUP ignored: reloading the configuration is not supported yet; connections go on"
        );
    }
}

fn announce(out: &Printer, bound: &str, rule: &Rule) -> std::io::Result<()> {
    if out.json() {
        let record = Listening {
            addr: bound.to_string(),
            target: Some(rule.target.to_string()),
        };
        out.record("listening", &record)?;
    }
    if !out.quiet() {
        let mut err = std::io::stderr().lock();
        writeln!(err, "listening on {bound} -> {}", rule.target)?;
    }
    Ok(())
}

/// One line per finished connection: a `conn` record on stdout with `--json`, else text on
/// stderr (silenced by `-q`). A record that cannot be written is dropped: the connections go
/// on.
fn conn_log(out: Printer) -> impl FnMut(Event) -> std::io::Result<()> {
    move |event| {
        let Event::Conn(record) = event;
        if out.json() {
            let _ = out.record("conn", &record);
        } else if !out.quiet() {
            let _ = writeln!(std::io::stderr().lock(), "{}", conn_line(&record));
        }
        Ok(())
    }
}

fn conn_line(r: &ConnRecord) -> String {
    let error = r
        .error
        .as_deref()
        .map(|e| format!(": {e}"))
        .unwrap_or_default();
    let close = serde_json::to_value(r.close).unwrap_or_default();
    let close = close.as_str().unwrap_or("?");
    let relay = if r.relay.is_empty() {
        String::new()
    } else {
        format!(" [{}]", r.relay)
    };
    format!(
        "{} {} -> {}: up {} B, down {} B, {:.3}s, {close}{error}{relay}",
        r.time, r.client, r.target, r.bytes_up, r.bytes_down, r.duration_s
    )
}
