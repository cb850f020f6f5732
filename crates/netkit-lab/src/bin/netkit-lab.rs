//! `netkit-lab`: builds the impaired-link lab for bench scripts, prints the namespace names on
//! one line, keeps the relay and listeners running until SIGINT/SIGTERM, then tears down.
//! `netkit-lab clean` removes namespaces left behind by labs whose process was killed.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use netkit_lab::{
    parse_probability, remove_stale, Backend, Direction, IcmpLimits, Lab, LabBuilder, LabError,
    Link, Ports, Rate, Reject, Unroutable,
};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};

#[derive(Parser)]
#[command(
    name = "netkit-lab",
    version,
    about = "The impaired-link lab for netkit's benches"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build a lab, print `scanner=NS router=NS far=NS backend=B`, run until SIGINT/SIGTERM.
    Up(Box<UpArgs>),
    /// Delete the namespaces of labs whose process is gone.
    Clean,
}

#[derive(Args)]
struct UpArgs {
    /// Tag in the namespace names (lab-TAG-PID-N-ROLE).
    #[arg(long, default_value = "bench")]
    tag: String,
    /// Which link the impairment flags apply to.
    #[arg(long, default_value = "far", value_parser = parse_link)]
    link: Link,
    /// Which direction of that link: to-far, to-scanner or both.
    #[arg(long, default_value = "both", value_parser = parse_directions)]
    direction: Directions,
    /// One-way delay (e.g. 15ms), each direction.
    #[arg(long, value_parser = humantime::parse_duration)]
    delay: Option<Duration>,
    /// Uniform jitter around the delay (e.g. 5ms).
    #[arg(long, value_parser = humantime::parse_duration)]
    jitter: Option<Duration>,
    /// Loss probability per direction (2% or 0.02).
    #[arg(long, value_parser = prob)]
    loss: Option<f64>,
    /// Duplication probability per direction.
    #[arg(long, value_parser = prob)]
    dup: Option<f64>,
    /// Reordering probability per direction (needs --delay).
    #[arg(long, value_parser = prob)]
    reorder: Option<f64>,
    /// Rate limit per direction (2mbit, 500kbit, ...).
    #[arg(long, value_parser = lab_parse::<Rate>)]
    rate: Option<Rate>,
    /// Seed of the relay's random decisions.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// A block where every address is a host (repeatable).
    #[arg(long = "hosts", value_name = "BLOCK")]
    blocks: Vec<String>,
    /// A single host (repeatable).
    #[arg(long = "host", value_name = "ADDR")]
    hosts: Vec<String>,
    /// Listeners that accept and close: ADDR:PORTS, v6 as [ADDR]:PORTS (repeatable).
    #[arg(long, value_name = "ADDR:PORTS")]
    open: Vec<String>,
    /// Ports open on every far host (wildcard listeners), e.g. 80,443.
    #[arg(long, value_name = "PORTS", value_parser = lab_parse::<Ports>)]
    open_all: Option<Ports>,
    /// Listeners that echo: ADDR:PORTS (repeatable).
    #[arg(long, value_name = "ADDR:PORTS")]
    echo: Vec<String>,
    /// Drop TCP probes: TARGET[:PORTS], a v6 address as [ADDR]:PORTS, a prefix as
    /// PREFIX:PORTS (repeatable).
    #[arg(long, value_name = "TARGET[:PORTS]")]
    drop: Vec<String>,
    /// Reject TCP probes: TARGET[:PORTS][=port-unreachable|admin-prohibited|host-unreachable|tcp-reset]
    /// (ports as --drop takes them).
    #[arg(long, value_name = "TARGET[:PORTS][=KIND]")]
    reject: Vec<String>,
    /// Hosts that drop ICMP echo requests (repeatable).
    #[arg(long, value_name = "TARGET")]
    no_echo: Vec<String>,
    /// ICMP rate limits of the far and router kernels: default or off.
    #[arg(long, default_value = "default", value_parser = lab_parse::<IcmpLimits>)]
    icmp_ratelimit: IcmpLimits,
    /// Drop TCP SYNs above N per second per source.
    #[arg(long, value_name = "N")]
    syn_limit: Option<u32>,
    /// Drop ICMP echo requests above N per second.
    #[arg(long, value_name = "N")]
    icmp_police: Option<u32>,
    /// A prefix without route: PREFIX[=local|net|host|prohibit] (repeatable; default net).
    #[arg(long, value_name = "PREFIX[=KIND]")]
    unroutable: Vec<String>,
    /// Impairment machinery: auto (netem where present), relay or netem.
    #[arg(long, default_value = "auto", value_parser = lab_parse::<Backend>)]
    backend: Backend,
    /// Most packets the relay holds at once.
    #[arg(long, default_value_t = 16_384)]
    max_held: usize,
    /// Run the relay at normal priority (less CPU per packet, less punctual when busy).
    #[arg(long)]
    no_realtime: bool,
}

fn lab_parse<T: std::str::FromStr<Err = LabError>>(s: &str) -> Result<T, String> {
    s.parse::<T>().map_err(|e| e.to_string())
}

fn prob(s: &str) -> Result<f64, String> {
    parse_probability(s).map_err(|e| e.to_string())
}

/// The directions the impairment flags apply to.
#[derive(Clone)]
struct Directions(Vec<Direction>);

fn parse_directions(s: &str) -> Result<Directions, String> {
    match s {
        "to-far" => Ok(Directions(vec![Direction::ToFar])),
        "to-scanner" => Ok(Directions(vec![Direction::ToScanner])),
        "both" => Ok(Directions(Direction::ALL.to_vec())),
        _ => Err(format!("{s}: expected to-far, to-scanner or both")),
    }
}

fn parse_link(s: &str) -> Result<Link, String> {
    match s {
        "near" => Ok(Link::Near),
        "far" => Ok(Link::Far),
        _ => Err(format!("{s}: expected near or far")),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("netkit-lab: {err:#}");
            let spec = err
                .downcast_ref::<LabError>()
                .is_some_and(|e| matches!(e, LabError::Spec { .. }));
            ExitCode::from(if spec { 2 } else { 3 })
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Up(args) => up(*args),
        Cmd::Clean => {
            for name in remove_stale()? {
                println!("deleted {name}");
            }
            Ok(())
        }
    }
}

fn up(args: UpArgs) -> anyhow::Result<()> {
    let builder = builder(&args)?;
    // Block the signals before any thread starts, so only `wait` below receives them.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&signals), None)
        .context("block SIGINT/SIGTERM")?;
    // A bench script killed outright must not leave the lab running: our parent's death
    // becomes a SIGTERM, handled like any other.
    nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).context("set the parent-death signal")?;
    let lab = builder.build()?;
    let mut out = std::io::stdout();
    writeln!(out, "{} backend={:?}", lab.names_line(), lab.applied())?;
    out.flush()?;
    let signal = signals.wait().context("wait for SIGINT/SIGTERM")?;
    if let Some(stats) = lab.relay_stats() {
        eprintln!("netkit-lab: {signal}: relay {stats:?}");
    }
    lab.down();
    Ok(())
}

/// The lab the flags describe.
fn builder(a: &UpArgs) -> anyhow::Result<LabBuilder> {
    let mut b = Lab::builder(&a.tag)
        .seed(a.seed)
        .backend(a.backend)
        .max_held(a.max_held)
        .realtime(!a.no_realtime);
    let mut imp = netkit_lab::Impairment::none();
    imp.delay = a.delay.unwrap_or_default();
    imp.jitter = a.jitter.unwrap_or_default();
    imp.loss = a.loss.unwrap_or_default();
    imp.dup = a.dup.unwrap_or_default();
    imp.reorder = a.reorder.unwrap_or_default();
    imp.rate = a.rate;
    for &dir in &a.direction.0 {
        b = b.impair(a.link, dir, imp.clone());
    }
    for block in &a.blocks {
        b = b.hosts(block);
    }
    for host in &a.hosts {
        b = b.host(host);
    }
    for spec in &a.open {
        let (addr, ports) = target_ports(spec)?;
        b = b.open(&addr, ports);
    }
    if let Some(ports) = &a.open_all {
        b = b.open_all(ports.clone());
    }
    for spec in &a.echo {
        let (addr, ports) = target_ports(spec)?;
        b = b.open_echo(&addr, ports);
    }
    for spec in &a.drop {
        let (target, ports) = target_ports(spec)?;
        b = b.drop_ports(&target, ports);
    }
    for spec in &a.reject {
        let (rest, kind) = spec.split_once('=').unwrap_or((spec, "port-unreachable"));
        let (target, ports) = target_ports(rest)?;
        b = b.reject(&target, ports, kind.parse::<Reject>()?);
    }
    for target in &a.no_echo {
        b = b.no_echo(target);
    }
    for spec in &a.unroutable {
        let (prefix, kind) = spec.split_once('=').unwrap_or((spec, "net"));
        b = b.unroutable(prefix, kind.parse::<Unroutable>()?);
    }
    b = b.icmp_limits(a.icmp_ratelimit);
    if let Some(n) = a.syn_limit {
        b = b.syn_limit(n);
    }
    if let Some(n) = a.icmp_police {
        b = b.icmp_police(n);
    }
    Ok(b)
}

/// Splits `ADDR:PORTS`, `[V6]:PORTS`, `PREFIX:PORTS` (v6 too: `2001:db8:1::/64:80`),
/// `TARGET` (all ports) into the target and its ports. A v6 address alone takes its ports in
/// brackets: `2001:db8:1::5:80` is the address `2001:db8:1::5:80`, every port.
fn target_ports(spec: &str) -> Result<(String, Ports), LabError> {
    if let Some(rest) = spec.strip_prefix('[') {
        let (addr, tail) = rest
            .split_once(']')
            .ok_or_else(|| LabError::spec(spec, "expected [ADDR]:PORTS"))?;
        let ports = match tail.strip_prefix(':') {
            Some(p) => p.parse()?,
            None if tail.is_empty() => Ports::all(),
            None => return Err(LabError::spec(spec, "expected [ADDR]:PORTS")),
        };
        return Ok((addr.to_string(), ports));
    }
    // A prefix ends at its length, so its ports follow without brackets, v6 too:
    // `2001:db8:1::/64:80` as `198.18.1.0/24:80`.
    if let Some((net, tail)) = spec.split_once('/') {
        return match tail.split_once(':') {
            Some((len, ports)) => Ok((format!("{net}/{len}"), ports.parse()?)),
            None => Ok((spec.to_string(), Ports::all())),
        };
    }
    match spec.split_once(':') {
        Some((addr, ports)) if !ports.contains(':') => Ok((addr.to_string(), ports.parse()?)),
        _ => Ok((spec.to_string(), Ports::all())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_with_and_without_ports() {
        let (a, p) = target_ports("198.18.1.5:22,80").unwrap();
        assert_eq!((a.as_str(), p), ("198.18.1.5", Ports::from(&[22, 80])));
        let (a, p) = target_ports("[2001:db8:1::5]:22").unwrap();
        assert_eq!((a.as_str(), p), ("2001:db8:1::5", Ports::from(22)));
        let (a, p) = target_ports("2001:db8:1::/64").unwrap();
        assert_eq!((a.as_str(), p.is_all()), ("2001:db8:1::/64", true));
        let (a, p) = target_ports("198.18.1.0/24").unwrap();
        assert_eq!((a.as_str(), p.is_all()), ("198.18.1.0/24", true));
        let (a, p) = target_ports("2001:db8:1::/64:80,443").unwrap();
        assert_eq!(
            (a.as_str(), p),
            ("2001:db8:1::/64", Ports::from(&[80, 443]))
        );
        let (a, p) = target_ports("198.18.1.0/24:22").unwrap();
        assert_eq!((a.as_str(), p), ("198.18.1.0/24", Ports::from(22)));
        assert!(target_ports("198.18.1.5:x").is_err());
        assert!(target_ports("[2001:db8::1").is_err());
    }

    #[test]
    fn flags_make_a_valid_spec() {
        let cli = Cli::parse_from([
            "netkit-lab",
            "up",
            "--tag",
            "t",
            "--delay",
            "15ms",
            "--jitter",
            "5ms",
            "--loss",
            "2%",
            "--rate",
            "2mbit",
            "--hosts",
            "198.18.1.0/24",
            "--open",
            "198.18.1.5:22,80",
            "--drop",
            "198.18.1.5:1000-1999",
            "--reject",
            "198.18.1.6=admin-prohibited",
            "--unroutable",
            "198.18.200.0/24=local",
            "--icmp-ratelimit",
            "off",
            "--direction",
            "to-scanner",
        ]);
        let Cmd::Up(args) = cli.command else {
            panic!("not up")
        };
        let spec = builder(&args).unwrap().spec().unwrap();
        assert_eq!(spec.impairment(Link::Far, Direction::ToScanner).loss, 0.02);
        assert_eq!(spec.impairment(Link::Far, Direction::ToFar).loss, 0.0);
        assert_eq!(spec.listeners[0].ports, [22, 80]);
        assert_eq!(spec.port_rules.len(), 2);
        assert_eq!(spec.unroutable[0].1, Unroutable::Local);
        assert_eq!(spec.icmp_limits, IcmpLimits::Off);
    }
}
