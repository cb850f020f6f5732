//! Where scan results go: stdout (human lines or JSON Lines), the same again into `-o FILE`,
//! and a progress bar on stderr when stderr is a terminal and the output is not JSON.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use netkit::report::scan::{OpenPort, ScanSummary, Unreachable};
use netkit::scan::Progress;

use crate::output::{write_record, Printer};

/// How often the progress bar is redrawn.
const TICK: Duration = Duration::from_millis(100);

/// The printer, the results file and the progress bar of one scan.
#[derive(Debug)]
pub struct Sink<'a> {
    out: &'a Printer,
    file: Option<(PathBuf, BufWriter<File>)>,
    bar: Option<ProgressBar>,
}

impl<'a> Sink<'a> {
    /// Creates the results file (exit 3 if it cannot be) and the bar for `total` probes.
    pub fn new(out: &'a Printer, path: Option<&Path>, total: u128) -> anyhow::Result<Self> {
        let file = match path {
            Some(path) => {
                let file = File::create(path).map_err(|e| file_error(path, e))?;
                Some((path.to_path_buf(), BufWriter::new(file)))
            }
            None => None,
        };
        let show = io::stderr().is_terminal() && !out.json();
        let bar = show.then(|| progress_bar(u64::try_from(total).unwrap_or(u64::MAX)));
        Ok(Sink { out, file, bar })
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

    /// Reports one open port.
    pub fn open(&mut self, port: &OpenPort) -> anyhow::Result<()> {
        if self.out.json() {
            self.out.record("port", port)?;
            return self.write_file(|file| write_record(file, "port", port));
        }
        let line = human_port(port);
        match &self.bar {
            Some(bar) => bar.suspend(|| self.out.line(&line))?,
            None => self.out.line(&line)?,
        }
        self.write_file(|file| writeln!(file, "{line}"))
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
        if self.out.json() {
            self.out.record("unreachable", host)?;
            self.write_file(|file| write_record(file, "unreachable", host))?;
        }
        Ok(())
    }

    /// Reports the totals, and closes the bar and the file.
    pub fn summary(&mut self, summary: &ScanSummary) -> anyhow::Result<()> {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.out.json() {
            self.out.record("summary", summary)?;
            self.write_file(|file| write_record(file, "summary", summary))?;
        } else {
            let line = human_summary(summary);
            self.out.line(&line)?;
            self.write_file(|file| writeln!(file, "{line}"))?;
        }
        self.write_file(|file| file.flush())
    }

    fn write_file(
        &mut self,
        write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
    ) -> anyhow::Result<()> {
        match &mut self.file {
            Some((path, file)) => write(file).map_err(|e| file_error(path, e).into()),
            None => Ok(()),
        }
    }
}

fn file_error(path: &Path, err: io::Error) -> netkit::Error {
    netkit::Error::io(format!("{}", path.display()), err)
}

fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{bar:40} {human_pos}/{human_len} probes, eta {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// `ADDR  PORT/tcp  open  SERVICE  RTT ms  [BANNER]`, with the name first when one was given.
pub fn human_port(port: &OpenPort) -> String {
    let host = if port.host == port.addr.to_string() {
        port.host.clone()
    } else {
        format!("{} ({})", port.host, port.addr)
    };
    let service = port.service.as_deref().unwrap_or("unknown");
    let mut line = format!(
        "{host:<15} {:>5}/tcp  open  {service:<15} {:>8.2} ms",
        port.port, port.rtt_ms
    );
    if let Some(banner) = &port.banner {
        line.push_str(&format!("  \"{banner}\""));
    }
    line
}

/// The closing line: hosts, ports per host, the three counts and the time taken, and the
/// unreachable hosts and the interruption when there were any.
pub fn human_summary(s: &ScanSummary) -> String {
    let hosts = if s.hosts == 1 { "host" } else { "hosts" };
    let ports = if s.scanned == 1 { "port" } else { "ports" };
    let interrupted = if s.interrupted { " (interrupted)" } else { "" };
    let mut line = format!(
        "Scanned {} {hosts}, {} {ports} each, in {:.2} s{interrupted}: {} open, {} closed, {} filtered",
        s.hosts, s.scanned, s.elapsed_s, s.open, s.closed, s.filtered
    );
    match s.unreachable {
        0 => {}
        1 => line.push_str(", 1 host unreachable"),
        n => line.push_str(&format!(", {n} hosts unreachable")),
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_the_address_port_service_and_rtt() {
        let port = OpenPort {
            host: "localhost".into(),
            addr: "::1".parse().unwrap(),
            port: 22,
            state: netkit::report::scan::PortState::Open,
            service: Some("ssh".into()),
            rtt_ms: 0.125,
            banner: Some("SSH-2.0-x".into()),
        };
        let line = human_port(&port);
        assert!(
            line.starts_with("localhost (::1)    22/tcp  open  ssh"),
            "{line}"
        );
        assert!(
            line.contains("0.12 ms") || line.contains("0.13 ms"),
            "{line}"
        );
        assert!(line.ends_with("\"SSH-2.0-x\""), "{line}");
    }
}
