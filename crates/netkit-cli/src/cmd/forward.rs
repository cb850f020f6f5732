//! `netkit forward LISTEN TARGET`: the port forwarder (issues 3 and 15); the printing of
//! `udp:` rules' records in `udp`.

mod log;
mod udp;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use std::io::Write;

use netkit::forward::metrics::Registry;
use netkit::forward::{
    self, rules, Activation, Balance, Check, Event, Events, HttpHost, Keepalive, Options, Rule,
    Supervisor,
};
use netkit::report::forward::ReloadRecord;
use netkit::report::Listening;
use netkit::sys::{Signal, Signals};
use netkit::{Endpoint, IpNet, ParseError};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::exit::Exit;
use crate::output::Printer;
use crate::parse;

const EXAMPLES: &str = "\
Examples:
  netkit forward 8080 example.internal:80            relay 127.0.0.1:8080 to example.internal:80
  netkit forward '[::]:8080' 127.0.0.1:80 --http-host auto
  netkit forward unix:/run/app.sock '[::1]:9000'     expose a TCP service on a Unix socket
  netkit forward 0.0.0.0:2222 10.0.0.5:22 --allow 10.0.0.0/8 --max-conns 100
  netkit forward 8080 a.internal:80,b.internal:80 --balance least-conn --check http:/health
  netkit forward 8000-8010 host.internal:9000-9010    one rule per port
  netkit forward udp:5353 udp:127.0.0.1:53           relay DNS over UDP, a session per client
  netkit forward 'udp:[::]:5353' 'udp:[::1]:53' --idle-timeout 30s --max-conns 1000
  netkit forward --config rules.toml --metrics 9100  (SIGHUP rereads rules.toml)

Once bound, each rule prints 'listening on ADDR -> TARGET' on stderr (port 0 shows the port
the kernel chose; with --json also a \"listening\" record on stdout), then one line per finished
connection: time (RFC 3339, UTC), client, target, bytes each way, duration, how it ended; and
one line when a target goes down or comes back up.
Several targets: a connection tries them in the --balance order; when a connect fails it
tries the next one (the client sees nothing of it) and the failed target is left alone for 1s,
doubling up to 30s while it keeps failing (with --check a connect that timed out leaves the
verdict to the checks, and only the checks bring a target back). A target that is down is
passed over while one that is up is left to try; when every target is down, connections
still try them all. After that first round, --retries more
attempts (3 by default) go to the targets that timed out, so a lost SYN does not cost the
client its connection; a client waits at most (targets + retries) x --connect-timeout. udp: rules with several targets spread
new sessions the same way; a target that answers with ICMP port unreachable is left alone as
above and its sessions move to the next one (no --check for UDP). A name with several addresses is
connected to Happy Eyeballs style (RFC 8305): the next address 250ms after the last, the first
to answer wins, and is tried first for 5 minutes (one that failed or stayed silent, last). Target names are looked up once before anything is bound: one that does not
exist is bad input (exit 2; a reload naming one is refused), as HAProxy and nginx refuse it;
one the resolver cannot answer for now gives a warning; names are resolved again at each
connection.
SIGHUP rereads --config: new connections follow the new rules, open ones go on, listeners that
stay are never closed; a file that fails its checks leaves the old rules in force (logged).
Without --config SIGHUP is logged and ignored. SIGINT/SIGTERM stop accepting and let open
connections finish for --drain-timeout (30s by default), then reset them, so that neither
end takes the cut for the end of its stream (--http-host connections idle between requests
close at once, busy ones after their response, as HAProxy's soft stop closes idle keep-alive
connections); a second signal
resets them at once (each logged as drain-timeout), a third exits without their records. An
exec: child still running 1s after its connection closed, or when the forwarder ends, gets
SIGTERM (its process group), SIGKILL 2s later (as socat stops its EXEC child). A reset
on one side is passed on as a reset (SO_LINGER 0) to the other, also when it comes to a side
that already sent its end of file (a client that half-closed, then vanished).
--metrics serves Prometheus text at http://ADDR/metrics: netkit_forward_* by rule and target
(docs/forward-metrics.md).

UDP (udp: on both sides): each client address gets a session, a socket of its own connected
to the target (the target sees one source per client; replies go back to their client, from
the address it sent to, also on a 0.0.0.0 or [::] listener). A session ends after
--idle-timeout without a datagram either way (60s by default) and is logged then (a
\"session\" record). --max-conns bounds sessions: datagrams of new clients
beyond it, from outside --allow, or arriving while draining are dropped and counted (a \"drop\"
line at most once a second). --proxy-protocol v2 puts a PROXY v2 header (DGRAM) before every
datagram. An ICMP port unreachable from the target is counted, never fatal. On SIGTERM no new
sessions start; open ones go on until idle or --drain-timeout. A reload keeps an unchanged
udp: rule and its sessions; a changed one serves the new rule from the next datagram on (every
client's), while the old sessions drain, still relaying their targets' replies.";

/// Arguments of `netkit forward`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Where to listen: PORT (loopback), HOST:PORT, [V6]:PORT, [fe80::1%IFACE]:PORT (a
    /// link-local address with its interface), a port range (8000-8010,
    /// HOST:8000-8010: one rule per port), unix:PATH, unix:@NAME, systemd:NAME (the sockets
    /// systemd passed with that FileDescriptorName) or systemd: (the next passed socket no
    /// systemd:NAME takes; a datagram socket when the targets are udp:); or udp:PORT,
    /// udp:HOST:PORT, udp:[V6]:PORT (then the target is udp: too).
    #[arg(required_unless_present = "config")]
    pub listen: Option<String>,
    /// Where to relay to: HOST:PORT, [V6]:PORT, [fe80::1%IFACE]:PORT, unix:PATH, unix:@NAME,
    /// exec:COMMAND, or several
    /// comma-separated (a:80,b:80); with a listen range, HOST:FIRST-LAST of the same length;
    /// udp:HOST:PORT, udp:[V6]:PORT (one) for a udp: listen.
    #[arg(required_unless_present = "config")]
    pub target: Option<String>,
    /// Rewrite the Host of every HTTP/1.x request (auto: the target's host:port), and the
    /// authority of absolute-form targets (GET http://x/p -> GET http://HOST/p) and of
    /// CONNECT. Malformed or ambiguous requests get 400; a tunnel starts only on the target's
    /// 101 to an Upgrade request or 2xx to CONNECT (docs/http-host.md).
    #[arg(long, value_name = "HOST|auto", value_parser = parse::http_host)]
    pub http_host: Option<HttpHost>,
    /// Accept clients only from this block (repeatable); others are refused and logged
    /// (Unix-socket clients are not filtered). An IPv4 client of a dual-stack `[::]` listener
    /// is inside an IPv4 block and inside its mapped form (`::ffff:127.0.0.0/104`) alike.
    #[arg(long, value_name = "CIDR", value_parser = parse::cidr)]
    pub allow: Vec<IpNet>,
    /// At most this many connections at once; more wait in the kernel's backlog (without it,
    /// under an open-files limit below 4096: as many as the limit carries). UDP: at most this
    /// many sessions; datagrams of new clients beyond them are dropped and counted.
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
    /// Connect attempts a client connection makes after trying every target once (HAProxy's
    /// retries with option redispatch): each goes to the next target in the --balance order
    /// that may take connections, one that is down only when no other is left; a target that
    /// refused is not tried again for that client, one that timed out is (a SYN may have been
    /// lost); a single target is retried itself. The client sees nothing of it. 0: each target
    /// once; at most 100 [default: 3].
    #[arg(long, value_name = "N", value_parser = parse::retries)]
    pub retries: Option<u32>,
    /// Send a PROXY protocol header to the target (UDP: v2 only, before every datagram).
    #[arg(long, value_name = "v1|v2", value_parser = parse::proxy_protocol)]
    pub proxy_protocol: Option<parse::ProxyProtocol>,
    /// After SIGINT/SIGTERM, give open connections this long to finish, then reset them (each
    /// is logged as drain-timeout) [default: 30s].
    #[arg(long, value_name = "DUR", value_parser = parse::duration)]
    pub drain_timeout: Option<Duration>,
    /// Read forwarding rules from a TOML file (SIGHUP rereads it); flags given here override
    /// each rule's options.
    #[arg(long, value_name = "FILE.toml", conflicts_with_all = ["listen", "target"])]
    pub config: Option<PathBuf>,
    /// How a connection picks one of several targets: round-robin (each in turn), least-conn
    /// (fewest open connections), hash (the client's address: the same client to the same
    /// target while it is up) [default: round-robin].
    #[arg(long, value_name = "round-robin|least-conn|hash", value_parser = parse::balance)]
    pub balance: Option<Balance>,
    /// Check every target actively: tcp (a connection is made) or http:/PATH (GET PATH
    /// answers 2xx or 3xx, its whole head received); a target is down after --fall failures in
    /// a row, up again after --rise passes.
    #[arg(long, value_name = "tcp|http:/PATH", value_parser = parse::check)]
    pub check: Option<Check>,
    /// Time between two checks of a target; a check must pass within it, connect included
    /// (--connect-timeout is for clients' connects, as HAProxy's inter without timeout check)
    /// [default: 2s].
    #[arg(long, value_name = "DUR", value_parser = parse::positive_duration)]
    pub check_interval: Option<Duration>,
    /// Passed checks in a row that bring a down target up [default: 2].
    #[arg(long, value_name = "N", value_parser = parse::checks_in_a_row)]
    pub rise: Option<u32>,
    /// Failed checks in a row that take an up target down [default: 3].
    #[arg(long, value_name = "N", value_parser = parse::checks_in_a_row)]
    pub fall: Option<u32>,
    /// Serve Prometheus metrics at http://ADDR/metrics (PORT alone: 127.0.0.1:PORT):
    /// connections, bytes, connect failures, target up/down, relay paths, by rule and target;
    /// for udp: rules sessions, datagrams and drops.
    #[arg(long, value_name = "ADDR", value_parser = parse::listen_endpoint)]
    pub metrics: Option<Endpoint>,
    /// TCP keepalive on both legs: after DUR without traffic the kernel probes the peer, every
    /// DUR/4 (whole seconds), and after 9 unanswered probes (the kernel's and Go's count) the
    /// connection is closed (the other leg reset) and logged as dead-peer, so a vanished peer
    /// is noticed within 3.25*DUR; 0 or off disables [default: 60s].
    #[arg(long, value_name = "DUR|off", value_parser = parse::keepalive)]
    pub keepalive: Option<Keepalive>,
}

/// Runs the forwarder until SIGINT or SIGTERM, then drains open connections (a second signal
/// closes them at once); SIGHUP reloads `--config`.
///
/// Once bound, each rule is announced on stderr as `listening on ADDR -> TARGET` (with
/// `--json` also as a `listen` record on stdout), so port 0 can be read back.
pub fn run(args: Args, out: &Printer) -> anyhow::Result<Exit> {
    let rules = rules(&args)?;
    // Before any thread: taking the passed sockets changes the environment.
    let activation = Activation::from_env()?;
    netkit::sys::raise_nofile();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(super::unstarted)?;
    // On a worker thread, not the thread that blocks on the runtime: the records of finished
    // connections come to this loop, and waking a thread outside the runtime at each one
    // costs two futex calls and a context switch per connection.
    let out = out.clone();
    let serving = runtime.spawn(async move { serve(&args, rules, activation, &out).await });
    runtime.block_on(serving)?
}

/// The rules of the command line or the config file, with the flags applied to each, checked.
fn rules(args: &Args) -> Result<Vec<Rule>, netkit::Error> {
    let mut rules = match (&args.config, &args.listen, &args.target) {
        (Some(path), _, _) => forward::config::load(path)?,
        (None, Some(listen), Some(target)) => {
            let targets = rules::split_targets(target);
            rules::expand(listen, &targets, &Options::default()).map_err(|(_, e)| e)?
        }
        _ => {
            let why = "expected LISTEN TARGET or --config";
            return Err(ParseError::new("forward", why).into());
        }
    };
    for rule in &mut rules {
        apply_flags(args, &mut rule.options);
        rules::check(rule).map_err(|(_, e)| e)?;
    }
    for warning in rules::check_names(&rules)? {
        tracing::warn!("{warning}");
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
    options.retries = args.retries.unwrap_or(options.retries);
    options.proxy_protocol = args.proxy_protocol.or(options.proxy_protocol);
    options.drain_timeout = args.drain_timeout.unwrap_or(options.drain_timeout);
    options.balance = args.balance.unwrap_or(options.balance);
    if let Some(check) = &args.check {
        options.check = Some(check.clone());
    }
    options.check_interval = args.check_interval.unwrap_or(options.check_interval);
    options.rise = args.rise.unwrap_or(options.rise);
    options.fall = args.fall.unwrap_or(options.fall);
    options.keepalive = args.keepalive.unwrap_or(options.keepalive);
}

async fn serve(
    args: &Args,
    rules: Vec<Rule>,
    activation: Activation,
    out: &Printer,
) -> anyhow::Result<Exit> {
    // Signals first, so that one coming right after a rule is announced is handled.
    let mut signals = Signals::new(&[Signal::Interrupt, Signal::Terminate, Signal::Hangup])?;
    netkit::endpoint::children::own_process_groups();
    let registry = Arc::new(Registry::default());
    let metrics = serve_metrics(args, &registry, out).await?;
    let (events, mut incoming) = Events::channel();
    // `-q` without `--json` prints no connection: none is recorded.
    let events = match out.quiet() && !out.json() {
        true => events.without_conn_records(),
        false => events,
    };
    let listens: Vec<Endpoint> = rules.iter().map(|r| r.listen.clone()).collect();
    let unused = activation.unused(&listens);
    let mut supervisor = Supervisor::new(events, Arc::clone(&registry), activation);
    let started = supervisor.apply(rules).await?;
    for served in &started.added {
        announce(out, &served.addr, &served.rule)?;
        warn_if_capped(&served.addr, &served.rule);
    }
    if !unused.is_empty() {
        tracing::warn!(
            "systemd passed socket(s) no rule listens on: {} (kept open for a reload)",
            unused.join(", ")
        );
    }
    let mut log = log::Pending::default();
    loop {
        tokio::select! {
            signal = signals.recv() => match signal {
                Signal::Hangup => reload(args, &mut supervisor, &registry, out).await,
                _ => break,
            },
            1.. = log.next(&mut incoming) => log.print(out),
        }
    }
    tracing::info!("stopping: no new connections, draining open ones");
    if let Some(task) = metrics {
        task.abort();
    }
    drain(supervisor, &mut incoming, &mut signals, out).await;
    let stopped = netkit::endpoint::children::end(CHILD_GRACE).await;
    if stopped > 0 {
        tracing::info!("stopped {stopped} exec child(ren) still running");
    }
    Ok(Exit::Success)
}

/// How long the `exec:` children still running at the end have after SIGTERM before SIGKILL.
const CHILD_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Stops the supervisor, logging the connections as they end; a second signal closes the open
/// ones at once (logged as at the drain timeout), a third one ends it without their records.
async fn drain(
    supervisor: Supervisor,
    incoming: &mut UnboundedReceiver<Event>,
    signals: &mut Signals,
    out: &Printer,
) {
    let cutter = supervisor.cutter();
    let stop = supervisor.stop();
    tokio::pin!(stop);
    let mut log = log::Pending::default();
    let mut cut = false;
    loop {
        tokio::select! {
            () = &mut stop => break,
            1.. = log.next(incoming) => log.print(out),
            signal = signals.recv() => match (signal, cut) {
                (Signal::Hangup, _) => {}
                (_, false) => {
                    tracing::warn!("second signal: closing open connections");
                    cutter.cut();
                    cut = true;
                }
                (_, true) => {
                    tracing::warn!("third signal: ending now");
                    return;
                }
            },
        }
    }
    log.print_the_rest(incoming, out);
}

/// `--metrics`: the Prometheus endpoint, on its own task.
async fn serve_metrics(
    args: &Args,
    registry: &Arc<Registry>,
    out: &Printer,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(endpoint) = &args.metrics else {
        return Ok(None);
    };
    let listener = endpoint.listen().await?;
    if !out.quiet() {
        let at = listener.local_addr();
        let _ = writeln!(std::io::stderr(), "metrics on http://{at}/metrics");
    }
    let registry = Arc::clone(registry);
    let serve = netkit::prometheus::serve_until(listener, registry, std::future::pending::<()>());
    Ok(Some(tokio::spawn(serve)))
}

/// SIGHUP: rereads `--config` and applies it; a file that fails leaves the rules as they are.
async fn reload(args: &Args, supervisor: &mut Supervisor, registry: &Registry, out: &Printer) {
    let Some(path) = &args.config else {
        tracing::warn!("SIGHUP ignored: there is no --config file to reload; connections go on");
        return;
    };
    // Target names are looked up (blocking) on this worker thread; the others serve on.
    let applied = match tokio::task::block_in_place(|| rules(args)) {
        Ok(rules) => supervisor.apply(rules).await,
        Err(err) => Err(err),
    };
    registry.reloaded(applied.is_ok());
    let file = path.display().to_string();
    let record = match &applied {
        Ok(reloaded) => reloaded.record(&file),
        Err(err) => supervisor.refused(&file, err.to_string()),
    };
    if let Ok(reloaded) = &applied {
        for served in &reloaded.added {
            let _ = announce(out, &served.addr, &served.rule);
        }
    }
    if out.json() {
        let _ = out.record("reload", &record);
    }
    if !out.quiet() || !record.ok {
        let line = netkit::text::one_line(&reload_line(&record));
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

fn reload_line(r: &ReloadRecord) -> String {
    if let Some(error) = &r.error {
        return format!(
            "{} reload of {} failed, the rules in force stay: {error}",
            r.time, r.file
        );
    }
    let list = |what: &str, addrs: &[String]| match addrs {
        [] => String::new(),
        addrs => format!("; {what} {}", addrs.join(", ")),
    };
    format!(
        "{} reloaded {}: {} rule(s){}{}",
        r.time,
        r.file,
        r.rules,
        list("listening on", &r.added),
        list("stopped listening on", &r.removed)
    )
}

/// Says once, at startup, that the open-files limit caps a rule's connections (without it,
/// clients beyond the cap wait in the backlog and nothing says why).
fn warn_if_capped(bound: &str, rule: &Rule) {
    if let Some(cap) = forward::descriptor_cap(rule) {
        tracing::warn!(
            "{bound}: the open-files limit ({}) caps this rule at {cap} connection{} at once \
             (more wait in the backlog); raise it (ulimit -n, LimitNOFILE= for a systemd \
             service)",
            netkit::sys::rlimit::nofile(),
            if cap == 1 { "" } else { "s" }
        );
    }
}

fn announce(out: &Printer, bound: &str, rule: &Rule) -> std::io::Result<()> {
    if out.json() {
        let record = Listening {
            addr: bound.to_string(),
            target: Some(rule.targets_text()),
        };
        out.record("listening", &record)?;
    }
    if !out.quiet() {
        let mut err = std::io::stderr().lock();
        let line = format!("listening on {bound} -> {}", rule.targets_text());
        writeln!(err, "{}", netkit::text::one_line(&line))?;
    }
    Ok(())
}
