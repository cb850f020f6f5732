//! `-oX`: nmap's XML output (the `nmaprun` document of nmap's `nmap.dtd`, xmloutputversion
//! 1.05), element by element as nmap writes it, so that ndiff, python-libnmap and the other
//! readers of nmap's XML read netkit's results. `scanner="nmap"` is what the DTD allows (the
//! format's name); `version` and `args` say that netkit wrote it.

use std::io::{self, Write};
use std::net::IpAddr;

use super::nmap::{self, Document, End, Host, Run};

/// nmap's XML format version that this writer follows.
const XML_OUTPUT_VERSION: &str = "1.05";

/// Writes an `nmaprun` document to `W`.
#[derive(Debug)]
pub struct Xml<W: Write> {
    out: W,
}

impl<W: Write> Xml<W> {
    /// A writer to `out`.
    pub fn new(out: W) -> Self {
        Xml { out }
    }
}

impl<W: Write> Document for Xml<W> {
    fn start(&mut self, run: &Run) -> io::Result<()> {
        let (start, args) = (nmap::epoch(run.start), escape(&run.args));
        let startstr = nmap::timestr(run.start);
        let version = env!("CARGO_PKG_VERSION");
        let out = &mut self.out;
        writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
        writeln!(out, "<!DOCTYPE nmaprun>")?;
        writeln!(
            out,
            "<!-- netkit {version} scan initiated {startstr} as: {} -->",
            comment(&run.args)
        )?;
        writeln!(
            out,
            "<nmaprun scanner=\"nmap\" args=\"{args}\" start=\"{start}\" startstr=\"{startstr}\" \
             version=\"netkit {version}\" xmloutputversion=\"{XML_OUTPUT_VERSION}\">"
        )?;
        if let Some(scan) = &run.scan {
            writeln!(
                out,
                "<scaninfo type=\"{}\" protocol=\"tcp\" numservices=\"{}\" services=\"{}\"/>",
                scan.kind.as_str(),
                scan.ports.len(),
                scan.services()
            )?;
        }
        writeln!(out, "<verbose level=\"0\"/>\n<debugging level=\"0\"/>")
    }

    fn host(&mut self, host: &Host) -> io::Result<()> {
        let out = &mut self.out;
        let state = if host.up { "up" } else { "down" };
        writeln!(
            out,
            "<host><status state=\"{state}\" reason=\"{}\" reason_ttl=\"{}\"/>",
            host.reason, host.reason_ttl
        )?;
        writeln!(
            out,
            "<address addr=\"{}\" addrtype=\"{}\"/>",
            host.addr,
            addrtype(host.addr)
        )?;
        if let Some(mac) = &host.mac {
            writeln!(
                out,
                "<address addr=\"{}\" addrtype=\"mac\"/>",
                mac.to_uppercase()
            )?;
        }
        write_hostnames(out, host)?;
        if host.up && (!host.ports.is_empty() || !host.extra.is_empty()) {
            write_ports(out, host)?;
        }
        writeln!(out, "</host>")
    }

    fn finish(&mut self, end: &End) -> io::Result<()> {
        let (time, timestr) = (nmap::epoch(end.time), nmap::timestr(end.time));
        let summary = format!("netkit done at {timestr}; {}", nmap::done_sentence(end));
        let exit = match &end.error {
            Some(why) => format!("exit=\"error\" errormsg=\"{}\"", escape(why)),
            None => "exit=\"success\"".to_string(),
        };
        writeln!(
            self.out,
            "<runstats><finished time=\"{time}\" timestr=\"{timestr}\" summary=\"{}\" \
             elapsed=\"{:.2}\" {exit}/><hosts up=\"{}\" down=\"{}\" total=\"{}\"/>\n\
             </runstats>\n</nmaprun>",
            escape(&summary),
            end.elapsed_s,
            end.up,
            end.down,
            end.up + end.down
        )?;
        self.out.flush()
    }
}

fn addrtype(addr: IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(_) => "ipv4",
        IpAddr::V6(_) => "ipv6",
    }
}

fn write_hostnames(out: &mut impl Write, host: &Host) -> io::Result<()> {
    match &host.name {
        Some(name) => writeln!(
            out,
            "<hostnames>\n<hostname name=\"{}\" type=\"user\"/>\n</hostnames>",
            escape(name)
        ),
        None => writeln!(out, "<hostnames>\n</hostnames>"),
    }
}

/// `<ports>`: the counted states first, then the listed ports (the DTD's order).
fn write_ports(out: &mut impl Write, host: &Host) -> io::Result<()> {
    write!(out, "<ports>")?;
    for extra in &host.extra {
        writeln!(
            out,
            "<extraports state=\"{}\" count=\"{}\">",
            extra.state, extra.count
        )?;
        for (reason, count) in &extra.reasons {
            writeln!(
                out,
                "<extrareasons reason=\"{reason}\" count=\"{count}\" proto=\"tcp\"/>"
            )?;
        }
        writeln!(out, "</extraports>")?;
    }
    for port in &host.ports {
        write!(
            out,
            "<port protocol=\"tcp\" portid=\"{}\"><state state=\"{}\" reason=\"{}\" \
             reason_ttl=\"{}\"",
            port.port, port.state, port.reason, port.reason_ttl
        )?;
        // The router that refused the port, after reason_ttl as nmap writes it.
        if let Some(from) = port.reason_ip {
            write!(out, " reason_ip=\"{from}\"")?;
        }
        write!(out, "/>")?;
        if let Some(service) = &port.service {
            write!(
                out,
                "<service name=\"{}\" method=\"table\" conf=\"3\"/>",
                escape(service)
            )?;
        }
        writeln!(out, "</port>")?;
    }
    writeln!(out, "</ports>")
}

/// Text as an XML attribute value: markup characters as entities, white space as character
/// references (attribute values are normalised otherwise), and the control characters XML 1.0
/// cannot carry at all as U+FFFD.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\t' | '\n' | '\r' => escaped.push_str(&format!("&#{};", u32::from(c))),
            c if c < ' ' || c == '\u{7f}' => escaped.push('\u{fffd}'),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Text inside a comment: no `--` (XML forbids it there), no control characters.
fn comment(text: &str) -> String {
    let mut clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    while clean.contains("--") {
        clean = clean.replace("--", "- -");
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_values_are_escaped() {
        assert_eq!(
            escape("a&b<c>\"d'\te\u{1}"),
            "a&amp;b&lt;c&gt;&quot;d&apos;&#9;e\u{fffd}"
        );
    }

    #[test]
    fn comments_never_hold_a_double_dash() {
        assert!(!comment("netkit scan --top 10 ---").contains("--"));
    }
}
