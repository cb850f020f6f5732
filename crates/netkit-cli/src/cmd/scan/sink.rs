//! Where scan results go: stdout (human lines or JSON Lines), the same again into `-o FILE`,
//! nmap's output options (`-oN`, `-oJ`, `-oX`, `-oG`, `-oA`; see [`crate::output::files`]),
//! and a progress bar on stderr when stderr is a terminal and the output is not JSON. A
//! `host` record says each host's status: down ones as host discovery finds them, up ones as
//! the scan finishes them.

use std::io::{self, IsTerminal, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use netkit::report::scan::{
    HostReport, HostStatus, PortReport, PortState, ScanSummary, ScanType, Unreachable,
};
use netkit::scan::discover::Discovery;
use netkit::scan::{services, HostDone, Progress};
use netkit::{ParseError, Targets};
use serde::Serialize;

use super::nmap::NmapOutput;
use super::tally::{Hosts, Listing};
use crate::output::files::{self, DocumentArgs, Text, TextArgs};
use crate::output::{write_record, Printer};

/// How often the progress bar is redrawn.
const TICK: Duration = Duration::from_millis(100);

/// The output options of a scan, as given.
#[derive(Debug, Clone, Copy)]
pub struct Outputs<'a> {
    /// `-o FILE`: what stdout shows, again.
    pub output: Option<&'a Path>,
    /// `-oN`, `-oJ`, `-oA`.
    pub text: &'a TextArgs,
    /// `-oX`, `-oG`.
    pub docs: &'a DocumentArgs,
    /// `--reason`: a reason column in the text.
    pub reason: bool,
    /// Which closed and filtered ports are listed one by one.
    pub listing: Listing,
}

/// A results file in a text format.
struct TextFile {
    text: Text,
    path: PathBuf,
    out: Box<dyn Write>,
}

/// The printer, the results files, the nmap documents and the progress bar of one scan.
pub struct Sink<'a> {
    out: &'a Printer,
    /// What stdout carries: a text format, or nothing when a document goes there.
    stdout: Option<Text>,
    files: Vec<TextFile>,
    nmap: NmapOutput,
    bar: Option<ProgressBar>,
    /// Whether a progress bar is wanted.
    show_bar: bool,
    /// What host discovery found, when it ran.
    discovery: Option<Discovery>,
    /// Targets found down by discovery, and how many of them have no route.
    down: (u64, u64),
    /// Hosts scanned that answered nothing (see [`ScanSummary::silent`]).
    silent: u64,
    reason: bool,
    listing: Listing,
    /// Whether ports are kept per host: the text lists a host's few closed and filtered ones
    /// once it is done, the nmap documents list or count them per host.
    tally: bool,
    /// Ports scanned on each host: a host with this many settled is done.
    per_host: u64,
    /// Each host's settled ports, while the text still has to list some or for the nmap
    /// documents.
    hosts: Hosts,
}

impl std::fmt::Debug for Sink<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("stdout", &self.stdout)
            .field("files", &self.files.len())
            .field("nmap", &self.nmap)
            .finish_non_exhaustive()
    }
}

impl<'a> Sink<'a> {
    /// Creates the results files (exit 3 if one cannot be, exit 2 for two outputs on stdout)
    /// for a scan of `ports` of type `kind`.
    pub fn new(
        out: &'a Printer,
        outputs: Outputs<'_>,
        ports: &[u16],
        kind: ScanType,
    ) -> anyhow::Result<Self> {
        let stdout = stdout_format(out, outputs)?;
        let files = text_files(out, outputs)?;
        let docs = files::documents(outputs.docs, outputs.text.output_all.as_deref())?;
        let nmap = NmapOutput::new(docs, ports, kind);
        let show_bar = io::stderr().is_terminal() && !out.json();
        let human = stdout == Some(Text::Human) || files.iter().any(|f| f.text == Text::Human);
        let tally = human || nmap.wanted();
        Ok(Sink {
            out,
            stdout,
            files,
            nmap,
            bar: None,
            show_bar,
            discovery: None,
            down: (0, 0),
            silent: 0,
            reason: outputs.reason,
            listing: outputs.listing,
            tally,
            per_host: ports.len() as u64,
            hosts: Hosts::default(),
        })
    }

    /// Whether the outputs need every closed and filtered port one by one (the engine's
    /// [`netkit::scan::Config::every_port`]): the text lists a host's few ones, the nmap
    /// documents count them per host with their reasons, `--all-ports` lists them all. JSON
    /// Lines alone need only the open ports.
    pub fn every_port(&self) -> bool {
        self.tally || self.listing.limit.is_none()
    }

    /// Tells the sink the targets: an address among them given more than once is scanned
    /// once each time, each scan with its own ports in the text and nmap's formats.
    pub fn targets(&mut self, targets: &Targets) {
        self.hosts = Hosts::new(targets.repeats_an_address());
    }

    /// Shows the progress bar for `total` probes (on a terminal, without JSON).
    pub fn start_bar(&mut self, total: u128) {
        if self.show_bar {
            self.bar = Some(progress_bar(u64::try_from(total).unwrap_or(u64::MAX)));
        }
    }

    /// Reports what host discovery found: a `host` record for each target found down (and
    /// an unreachable one for a target with no route, as the scan reports it); keeps the rest
    /// for the records of the hosts found up.
    pub fn discovered(&mut self, targets: &Targets, discovery: Discovery) -> anyhow::Result<()> {
        for target in targets.iter() {
            let status = discovery.status(target.addr, target.zone);
            if status.up {
                continue;
            }
            self.down.0 += 1;
            let reason = match &status.error {
                Some(error) => {
                    self.down.1 += 1;
                    let from = error
                        .rsplit_once(" from ")
                        .and_then(|(_, a)| a.parse().ok());
                    let host = target.shown();
                    let (addr, error) = (target.addr, error.clone());
                    self.unreachable(&Unreachable {
                        host,
                        addr,
                        error,
                        from,
                    })?;
                    crate::output::nmap::no_route_reason(status.error.as_deref().unwrap_or(""))
                }
                None => "no-response",
            };
            let report = HostReport {
                host: target.shown(),
                addr: target.addr,
                status: HostStatus::Down,
                reason: reason.to_string(),
                by: None,
                open: None,
                closed: None,
                filtered: None,
            };
            self.emit(None, "host", &report)?;
        }
        self.nmap.discovered(discovery.clone());
        self.discovery = Some(discovery);
        Ok(())
    }

    /// Reports a host whose every port got its state.
    pub fn host_finished(&mut self, done: &HostDone) -> anyhow::Result<()> {
        let discovery = self.discovery.as_ref();
        let status = discovery.map(|d| (d.status(done.addr, done.zone), d.privileged));
        let (by, tcp, privileged) = match status {
            Some((status, privileged)) => (status.by, status.tcp, privileged),
            None => (None, None, false),
        };
        let reason = match &by {
            Some(by) => crate::output::nmap::up_reason(Some(by), tcp, privileged),
            None => "user-set",
        };
        if by.is_none() && done.ports.answered == 0 {
            self.silent += 1;
        }
        let report = HostReport {
            host: done.host.clone(),
            addr: done.addr,
            status: HostStatus::Up,
            reason: reason.to_string(),
            by,
            open: Some(done.ports.open),
            closed: Some(done.ports.closed),
            filtered: Some(done.ports.filtered),
        };
        // With --reason, why the host is up, as nmap's `Host is up, received syn-ack.`
        let line = self
            .reason
            .then(|| format!("{} is up, received {reason}", done.host));
        self.emit(line.as_deref(), "host", &report)
    }

    /// Keeps the bar up to date until the returned task is aborted.
    pub fn tick(&self, progress: Arc<Progress>) -> tokio::task::JoinHandle<()> {
        let bar = self.bar.clone();
        tokio::spawn(async move {
            let Some(bar) = bar else { return };
            let mut every = tokio::time::interval(TICK);
            loop {
                every.tick().await;
                bar.set_position(progress.done());
            }
        })
    }

    /// Reports one port: an open one at once, a closed or filtered one at once with
    /// `--all-ports`, else in the text once its host is done if the host has few of them.
    pub fn port(&mut self, port: &PortReport) -> anyhow::Result<()> {
        if port.state == PortState::Open || self.listing.limit.is_none() {
            self.emit(Some(&human_port(port, self.reason)), "port", port)?;
        }
        if !self.tally {
            return Ok(());
        }
        let (nth, host) = self.hosts.entry(port.addr, &port.host, port.port);
        host.add(port, self.listing);
        if host.settled() == self.per_host {
            self.host_done(port.addr, &port.host, nth)?;
        }
        Ok(())
    }

    /// Lists a finished host's few closed and filtered ports in the text, and forgets the
    /// host unless a document needs it.
    fn host_done(&mut self, addr: IpAddr, name: &str, nth: usize) -> anyhow::Result<()> {
        let Some(host) = self.hosts.get(addr, name, nth) else {
            return Ok(());
        };
        let listed = match self.listing.limit {
            Some(_) => host.listed(self.listing),
            None => Vec::new(),
        };
        let reason_ips = host.reason_ips.clone();
        for listed in listed {
            let report = PortReport {
                host: name.to_string(),
                addr,
                port: listed.port,
                state: listed.state,
                reason: listed.reason,
                service: services::service_name(listed.port).map(str::to_string),
                rtt_ms: None,
                tries: 0,
                banner: None,
                reason_ip: reason_ips.get(&listed.port).copied(),
                ttl: listed.ttl,
            };
            self.human_line(&human_port(&report, self.reason))?;
        }
        if !self.nmap.wanted() {
            self.hosts.remove(addr, name, nth);
        }
        Ok(())
    }

    /// Reports a target that cannot be reached: an error line on stderr, and a record in JSON.
    pub fn unreachable(&mut self, host: &Unreachable) -> anyhow::Result<()> {
        let name = if host.host == host.addr.to_string() {
            host.host.clone()
        } else {
            format!("{} ({})", host.host, host.addr)
        };
        let line = format!("netkit: {name}: {}", host.error);
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
        self.nmap.unreachable(host);
        self.emit(None, "unreachable", host)
    }

    /// Reports the totals (with the hosts discovery found down), writes the nmap documents,
    /// and closes the bar and the files; returns the totals reported.
    pub fn summary(
        &mut self,
        targets: &Targets,
        mut summary: ScanSummary,
    ) -> anyhow::Result<ScanSummary> {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if let Some(discovery) = &self.discovery {
            summary.elapsed_s += discovery.elapsed.as_secs_f64();
        }
        // The documents count the scanned hosts' ports from the engine's totals.
        self.nmap
            .finish(targets, &summary, &self.hosts, self.listing)?;
        summary.down = self.down.0;
        summary.silent = self.silent;
        summary.unreachable += self.down.1;
        let line = human_summary(&summary, self.down.1);
        self.emit(Some(&line), "summary", &summary)?;
        for file in &mut self.files {
            file.out
                .flush()
                .map_err(|e| files::file_error(&file.path, e))?;
        }
        Ok(summary)
    }

    /// Writes a result to stdout and every text file: `line` where the format is human text
    /// (nothing when `None`), the record where it is JSON Lines.
    fn emit<T: Serialize>(
        &mut self,
        line: Option<&str>,
        kind: &str,
        record: &T,
    ) -> anyhow::Result<()> {
        match (self.stdout, line) {
            (Some(Text::Json), _) => self.out.record(kind, record)?,
            (Some(Text::Human), Some(line)) => match &self.bar {
                Some(bar) => bar.suspend(|| self.out.line(line))?,
                None => self.out.line(line)?,
            },
            _ => {}
        }
        for file in &mut self.files {
            let written = match (file.text, line) {
                (Text::Json, _) => write_record(&mut file.out, kind, record),
                (Text::Human, Some(line)) => writeln!(file.out, "{line}"),
                (Text::Human, None) => Ok(()),
            };
            written.map_err(|e| files::file_error(&file.path, e))?;
        }
        Ok(())
    }
}

impl Sink<'_> {
    /// Writes `line` to stdout and every text file where the format is human text.
    fn human_line(&mut self, line: &str) -> anyhow::Result<()> {
        if self.stdout == Some(Text::Human) {
            match &self.bar {
                Some(bar) => bar.suspend(|| self.out.line(line))?,
                None => self.out.line(line)?,
            }
        }
        for file in self.files.iter_mut().filter(|f| f.text == Text::Human) {
            writeln!(file.out, "{line}").map_err(|e| files::file_error(&file.path, e))?;
        }
        Ok(())
    }
}

/// What stdout carries: the format sent to `-`, else what `--json` says.
fn stdout_format(out: &Printer, outputs: Outputs<'_>) -> Result<Option<Text>, ParseError> {
    let (text, docs) = (outputs.text, outputs.docs);
    if text.output_all.as_deref().is_some_and(files::is_stdout) {
        return Err(ParseError::new(
            "-oA -",
            "-oA takes a base name for three files",
        ));
    }
    let given = [
        &text.output_normal,
        &text.output_json,
        &docs.output_xml,
        &docs.output_grepable,
    ];
    files::one_stdout(given.iter().filter_map(|p| p.as_deref()))?;
    let on_stdout = |path: &Option<PathBuf>| path.as_deref().is_some_and(files::is_stdout);
    Ok(if on_stdout(&text.output_normal) {
        Some(Text::Human)
    } else if on_stdout(&text.output_json) {
        Some(Text::Json)
    } else if on_stdout(&docs.output_xml) || on_stdout(&docs.output_grepable) {
        None
    } else if out.json() {
        Some(Text::Json)
    } else {
        Some(Text::Human)
    })
}

/// The text files: `-o FILE` in stdout's format, `-oN`, `-oJ` and `-oA`'s `BASE.nmap`.
fn text_files(out: &Printer, outputs: Outputs<'_>) -> Result<Vec<TextFile>, netkit::Error> {
    let like_stdout = if out.json() { Text::Json } else { Text::Human };
    let text = outputs.text;
    let all = text
        .output_all
        .as_deref()
        .map(|b| files::with_extension(b, "nmap"));
    let wanted = [
        (like_stdout, outputs.output.map(Path::to_path_buf)),
        (Text::Human, text.output_normal.clone()),
        (Text::Json, text.output_json.clone()),
        (Text::Human, all),
    ];
    let mut opened = Vec::new();
    for (text, path) in wanted {
        let Some(path) = path.filter(|p| !files::is_stdout(p)) else {
            continue;
        };
        let out = files::create(&path)?;
        opened.push(TextFile { text, path, out });
    }
    Ok(opened)
}

fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{bar:40} {human_pos}/{human_len} probes, eta {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// `ADDR  PORT/tcp  STATE  SERVICE  [REASON]  [RTT ms]  [BANNER]` in columns, with the name
/// first when one was given; the reason with `--reason` (nmap's REASON column), the round
/// trip when an answer came.
pub fn human_port(port: &PortReport, reason: bool) -> String {
    let host = if port.host == port.addr.to_string() {
        port.host.clone()
    } else {
        format!("{} ({})", port.host, port.addr)
    };
    let service = port.service.as_deref().unwrap_or("unknown");
    // The state padded to its longest word (`filtered`), so that the columns after it line
    // up whatever the state, as nmap's do.
    let mut line = format!(
        "{host:<15} {:>5}/tcp  {:<8}  {service:<15}",
        port.port,
        port.state.as_str()
    );
    if reason {
        // A router's ICMP error names the router, and an answer whose TTL was read gives
        // it, as nmap's `syn-ack ttl 63`, `host-unreach from ROUTER ttl 64`.
        let mut why = port.reason.as_str().to_string();
        if let Some(from) = port.reason_ip {
            why.push_str(&format!(" from {from}"));
        }
        if let Some(ttl) = port.ttl {
            why.push_str(&format!(" ttl {ttl}"));
        }
        line.push_str(&format!(" {why:<16}"));
    }
    if let Some(rtt) = port.rtt_ms {
        line.push_str(&format!(" {rtt:>8.2} ms"));
    }
    if let Some(banner) = &port.banner {
        line.push_str(&format!("  \"{banner}\""));
    }
    line.trim_end().to_string()
}

/// The closing line: hosts, ports per host, the three counts and the time taken, and the
/// unreachable hosts and the interruption (with the ports it left without a state) when there
/// were any. `unreachable_down` of `s.unreachable` are among the hosts discovery found down,
/// and are said there: `(247 down, 13 of them unreachable, not scanned)`.
pub fn human_summary(s: &ScanSummary, unreachable_down: u64) -> String {
    let hosts = if s.hosts == 1 { "host" } else { "hosts" };
    let ports = if s.scanned == 1 { "port" } else { "ports" };
    let interrupted = if s.interrupted { " (interrupted)" } else { "" };
    let down = match (s.down, unreachable_down) {
        (0, _) => String::new(),
        (n, 0) => format!(" ({n} down, not scanned)"),
        (n, u) => format!(" ({n} down, {u} of them unreachable, not scanned)"),
    };
    let unreachable = s.unreachable.saturating_sub(unreachable_down);
    let mut line = format!(
        "Scanned {} {hosts}{down}, {} {ports} each, in {:.2} s{interrupted}: {} open, {} closed, {} filtered",
        s.hosts, s.scanned, s.elapsed_s, s.open, s.closed, s.filtered
    );
    let settled = s.open + s.closed + s.filtered;
    // Unreachable hosts are scanned hosts whose ports get no state.
    let asked = s.hosts.saturating_sub(unreachable) * s.scanned;
    if s.interrupted && asked > settled {
        line.push_str(&format!(", {} not probed to the end", asked - settled));
    }
    match unreachable {
        0 => {}
        1 => line.push_str(", 1 host unreachable"),
        n => line.push_str(&format!(", {n} hosts unreachable")),
    }
    match s.silent {
        0 => {}
        1 => line.push_str(", 1 host silent"),
        n => line.push_str(&format!(", {n} hosts silent")),
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hosts discovery found unreachable are said among the down ones, not as more hosts.
    #[test]
    fn unreachable_hosts_found_down_are_said_among_them() {
        let s = ScanSummary {
            hosts: 9,
            down: 247,
            silent: 0,
            scanned: 2,
            open: 3,
            closed: 15,
            filtered: 0,
            unreachable: 13,
            interrupted: false,
            elapsed_s: 1.0,
            scan_type: ScanType::Syn,
        };
        let line = human_summary(&s, 13);
        assert!(
            line.starts_with("Scanned 9 hosts (247 down, 13 of them unreachable, not scanned)"),
            "{line}"
        );
        assert!(!line.contains("hosts unreachable"), "{line}");
        let line = human_summary(
            &ScanSummary {
                unreachable: 14,
                ..s.clone()
            },
            13,
        );
        assert!(line.ends_with(", 1 host unreachable"), "{line}");
    }

    #[test]
    fn lines_name_the_address_port_service_and_rtt() {
        let port = PortReport {
            host: "localhost".into(),
            addr: "::1".parse().unwrap(),
            port: 22,
            state: PortState::Open,
            reason: netkit::report::scan::Reason::SynAck,
            service: Some("ssh".into()),
            rtt_ms: Some(0.125),
            tries: 1,
            banner: Some("SSH-2.0-x".into()),
            reason_ip: None,
            ttl: None,
        };
        let line = human_port(&port, false);
        assert!(
            line.starts_with("localhost (::1)    22/tcp  open      ssh"),
            "{line}"
        );
        assert!(
            line.contains("0.12 ms") || line.contains("0.13 ms"),
            "{line}"
        );
        assert!(line.ends_with("\"SSH-2.0-x\""), "{line}");
    }

    #[test]
    fn the_reason_column_follows_the_service_and_no_answer_has_no_rtt() {
        let port = PortReport {
            host: "198.18.1.1".into(),
            addr: "198.18.1.1".parse().unwrap(),
            port: 100,
            state: PortState::Filtered,
            reason: netkit::report::scan::Reason::NoResponse,
            service: None,
            rtt_ms: None,
            tries: 2,
            banner: None,
            reason_ip: None,
            ttl: None,
        };
        assert_eq!(
            human_port(&port, true),
            "198.18.1.1        100/tcp  filtered  unknown         no-response"
        );
        assert_eq!(
            human_port(&port, false),
            "198.18.1.1        100/tcp  filtered  unknown"
        );
    }
}
