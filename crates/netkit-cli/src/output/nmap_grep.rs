//! `-oG`: nmap's grepable output, one line per host with tab-separated fields
//! (`Host: 127.0.0.1 (localhost)\tPorts: 22/open/tcp//ssh///\tIgnored State: closed (998)`),
//! comment lines at the start and the end.

use std::io::{self, Write};

use super::nmap::{self, Document, End, Host, Run};

/// Writes grepable lines to `W`.
#[derive(Debug)]
pub struct Grepable<W: Write> {
    out: W,
    /// Whether the run is a port scan (hosts get a `Ports:` line).
    scan: bool,
}

impl<W: Write> Grepable<W> {
    /// A writer to `out`.
    pub fn new(out: W) -> Self {
        Grepable { out, scan: false }
    }
}

impl<W: Write> Document for Grepable<W> {
    fn start(&mut self, run: &Run) -> io::Result<()> {
        self.scan = run.scan.is_some();
        let args: String = run.args.chars().filter(|c| !c.is_control()).collect();
        writeln!(
            self.out,
            "# netkit {} scan initiated {} as: {args}",
            env!("CARGO_PKG_VERSION"),
            nmap::timestr(run.start)
        )
    }

    fn host(&mut self, host: &Host) -> io::Result<()> {
        let name: String = host
            .name
            .as_deref()
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        let who = format!("Host: {} ({name})", host.addr);
        let status = if host.up { "Up" } else { "Down" };
        writeln!(self.out, "{who}\tStatus: {status}")?;
        if !self.scan || !host.up {
            return Ok(());
        }
        let ports: Vec<String> = host
            .ports
            .iter()
            .map(|p| {
                let service = p.service.as_deref().unwrap_or_default();
                format!("{}/{}/tcp//{service}///", p.port, p.state)
            })
            .collect();
        let mut line = format!("{who}\tPorts: {}", ports.join(", "));
        // nmap names the ignored state only when there is one.
        if let [extra] = host.extra.as_slice() {
            line.push_str(&format!(
                "\tIgnored State: {} ({})",
                extra.state, extra.count
            ));
        }
        writeln!(self.out, "{line}")
    }

    fn finish(&mut self, end: &End) -> io::Result<()> {
        let interrupted = if end.error.is_some() {
            " (interrupted)"
        } else {
            ""
        };
        writeln!(
            self.out,
            "# netkit done at {} -- {}{interrupted}",
            nmap::timestr(end.time),
            nmap::done_sentence(end)
        )?;
        self.out.flush()
    }
}
