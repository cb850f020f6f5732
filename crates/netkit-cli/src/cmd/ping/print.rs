//! What ping prints while it runs, as iputils prints it: the header per host, one line per
//! reply (`(DUP!)`, `(BAD CHECKSUM!)`, `(DIFFERENT ADDRESS!)`, `(truncated)`, `-D` timestamps,
//! `-a` bell), `From ... icmp_seq=N <error>` lines, `-O`'s `no answer yet`, flood mode's dots,
//! and SIGQUIT's status line on stderr; or, with `--json`, the reply, error and timeout
//! records.

use std::io::{self, Write};
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use netkit::ping::{Event, Stats};
use netkit::report::ping::PingReply;

use super::format::{format_ms, format_reply_time};

use super::hosts::Host;
use super::names::Names;
use crate::output::Printer;

/// The flags that change what is printed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    /// `-f`: dots instead of lines.
    pub flood: bool,
    /// `-a`: a bell with each reply.
    pub audible: bool,
    /// `-D`: each line starts with the Unix time.
    pub timestamps: bool,
    /// `-v`: duplicates of broadcast pings are marked too.
    pub verbose: bool,
    /// `-s`: the data bytes of a request; a reply with fewer is `(truncated)`.
    pub size: usize,
}

/// Prints a session's events.
#[derive(Debug)]
pub struct EventPrinter<'a> {
    out: &'a Printer,
    hosts: &'a [Host],
    style: Style,
    names: Names,
    /// Per host, the kernel's reason for the refusals since its last request that left (its
    /// `sendmsg` line is printed once, not per request).
    refusing: Vec<Option<i32>>,
}

impl<'a> EventPrinter<'a> {
    /// A printer for `hosts` (event host `i` is `hosts[i]`).
    pub fn new(out: &'a Printer, hosts: &'a [Host], style: Style) -> Self {
        EventPrinter {
            out,
            hosts,
            style,
            names: Names::default(),
            refusing: vec![None; hosts.len()],
        }
    }

    /// Prints one event.
    pub fn event(&mut self, event: Event) -> io::Result<()> {
        if let Event::Sent { host, .. } = event {
            if let Some(refusing) = self.refusing.get_mut(host) {
                *refusing = None;
            }
        }
        match event {
            Event::Sent { .. } if self.dots() => raw("."),
            Event::Outstanding { host, seq } if !self.out.json() => {
                let stamp = self.lead(host);
                self.out.line(&format!(
                    "{stamp}no answer yet for icmp_seq={}",
                    seq % 65536
                ))
            }
            Event::Reply { record, .. } if self.out.json() => self.out.record("reply", &record),
            Event::Reply { host, record, rtt } => self.reply(host, &record, rtt),
            Event::Timeout { record, .. } if self.out.json() => self.out.record("timeout", &record),
            Event::Error { record, .. } if self.out.json() => self.out.record("error", &record),
            Event::Error {
                host, seq, error, ..
            } if !self.out.quiet() => {
                if self.style.flood {
                    return raw("\x08E");
                }
                let from = self.sender(host, error.from);
                let stamp = self.lead(host);
                let text = error.describe();
                self.out.line(&format!(
                    "{stamp}From {from} icmp_seq={} {text}",
                    seq % 65536
                ))
            }
            Event::Notice { host, seq, error }
                if !self.out.json() && !self.out.quiet() && !self.style.flood =>
            {
                // iputils' notice line has a colon after the sender, its error line none.
                let from = self.sender(host, error.from);
                let stamp = self.lead(host);
                let text = error.describe();
                self.out.line(&format!(
                    "{stamp}From {from}: icmp_seq={} {text}",
                    seq % 65536
                ))
            }
            Event::SendError {
                host, error, mtu, ..
            } => self.send_error(host, &error, mtu),
            Event::Status(stats) => self.status(&stats),
            _ => Ok(()),
        }
    }

    /// Who answered a request to `host`, as iputils names it.
    fn sender(&mut self, host: usize, addr: IpAddr) -> String {
        let view = &self.hosts[host];
        match view.numeric {
            true => view.show(addr),
            false => self.names.show(addr),
        }
    }

    fn dots(&self) -> bool {
        self.style.flood && !self.out.quiet() && !self.out.json()
    }

    fn reply(
        &mut self,
        host: usize,
        record: &PingReply,
        rtt: Option<std::time::Duration>,
    ) -> io::Result<()> {
        let bell = if self.style.audible { "\x07" } else { "" };
        if self.out.quiet() {
            return Ok(());
        }
        if self.style.flood {
            // iputils marks a reply with a bad checksum `C` in place of its request's dot.
            return match record.corrupted {
                true => raw(&format!("\x08C{bell}")),
                false => raw(&format!("\x08 \x08{bell}")),
            };
        }
        let from = self.sender(host, record.addr);
        let view = &self.hosts[host];
        let ttl = record.ttl.map(|t| format!(" ttl={t}")).unwrap_or_default();
        let stamp = self.lead(host);
        let seq = record.seq % 65536;
        if record.bytes < 8 + self.style.size {
            // Less data than sent: iputils ends the line there (no time, marks nor bell).
            let bytes = record.bytes;
            let line = format!("{stamp}{bytes} bytes from {from}: icmp_seq={seq}{ttl} (truncated)");
            return self.out.line(&line);
        }
        let time = rtt
            .map(|rtt| format!(" time={} ms", format_reply_time(rtt)))
            .unwrap_or_default();
        let dup = match record.dup && (!view.multicast || self.style.verbose) {
            true => " (DUP!)",
            false => "",
        };
        let corrupted = match record.corrupted {
            true => " (BAD CHECKSUM!)",
            false => "",
        };
        let elsewhere = match !view.multicast && !anycast(view) && record.addr != view.target.addr {
            true => " (DIFFERENT ADDRESS!)",
            false => "",
        };
        self.out.line(&format!(
            "{stamp}{} bytes from {from}: icmp_seq={seq}{ttl}{time}{dup}{corrupted}{elsewhere}{bell}",
            record.bytes
        ))
    }

    /// A request the kernel refused, on stderr in netkit's form. Too big for the path MTU:
    /// iputils' `local error` line (or flood `E`) each time. Any other reason (no route, a
    /// local firewall): flood's `E` each time, else one `sendmsg` line until a request leaves
    /// again or the reason changes; iputils prints nothing there (its error queue is empty),
    /// a line per request would bury the replies at a short interval.
    fn send_error(&mut self, host: usize, error: &io::Error, mtu: Option<u32>) -> io::Result<()> {
        if self.out.quiet() {
            return Ok(());
        }
        if self.style.flood && !self.out.json() {
            return raw("E");
        }
        let too_big = netkit::ping::is_too_big(error);
        if !too_big {
            let reason = Some(error.raw_os_error().unwrap_or(-1));
            match self.refusing.get_mut(host) {
                Some(seen) if *seen == reason => return Ok(()),
                Some(seen) => *seen = reason,
                None => {}
            }
        }
        let view = &self.hosts[host];
        let why = match (too_big, mtu) {
            (true, Some(mtu)) if view.target.addr.is_ipv4() => {
                format!("local error: message too long, mtu={mtu}")
            }
            (true, Some(mtu)) => format!("local error: message too long, mtu: {mtu}"),
            (true, None) => "local error: message too long".to_string(),
            (false, _) => format!("sendmsg: {}", netkit::error::describe_io(error)),
        };
        let mut err = io::stderr().lock();
        writeln!(err, "netkit: {}: {why}", view.target.shown())
    }

    /// SIGQUIT: iputils' status line on stderr, one per host (named when there are several).
    fn status(&self, stats: &[Stats]) -> io::Result<()> {
        let mut err = io::stderr().lock();
        for (host, stats) in self.hosts.iter().zip(stats) {
            let name = match self.hosts.len() {
                1 => String::new(),
                _ => format!("{}: ", host.target.shown()),
            };
            writeln!(err, "\r{name}{}", status_line(stats))?;
        }
        Ok(())
    }

    /// What a per-probe line starts with: `-D`'s time, then, when several hosts are pinged,
    /// the target as the user named it (iputils pings one host, so its lines never say).
    fn lead(&self, host: usize) -> String {
        let stamp = self.stamp();
        match self.hosts.len() {
            1 => stamp,
            _ => format!("{stamp}{}: ", self.hosts[host].target.shown()),
        }
    }

    /// `[SECONDS.MICROS] ` with `-D`.
    fn stamp(&self) -> String {
        if !self.style.timestamps {
            return String::new();
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        format!("[{}.{:06}] ", now.as_secs(), now.subsec_micros())
    }
}

/// iputils' status line: `R/T packets, L% loss, min/avg/ewma/max = a/b/c/d ms`.
pub fn status_line(stats: &Stats) -> String {
    let counts = format!(
        "{}/{} packets, {}% loss",
        stats.received,
        stats.transmitted,
        stats.loss_whole_pct()
    );
    match stats.rtt() {
        Some(rtt) => format!(
            "{counts}, min/avg/ewma/max = {}/{}/{}/{} ms",
            format_ms(rtt.min_us),
            format_ms(rtt.avg_us),
            format_ms(rtt.ewma_us),
            format_ms(rtt.max_us)
        ),
        None => counts,
    }
}

/// An IPv6 subnet-router anycast address (interface identifier zero): any router of the
/// subnet answers, so another address is expected, as iputils expects it.
fn anycast(host: &Host) -> bool {
    match host.target.addr {
        IpAddr::V6(addr) => addr.octets()[8..].iter().all(|b| *b == 0),
        IpAddr::V4(_) => false,
    }
}

/// Writes `text` to stdout without a newline, at once (flood mode).
fn raw(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn status_lines_read_like_iputils() {
        let mut stats = Stats::default();
        stats.sent();
        stats.sent();
        assert_eq!(status_line(&stats), "0/2 packets, 100% loss");
        stats.replied(Some(Duration::from_micros(45)), false);
        stats.sent();
        stats.replied(Some(Duration::from_micros(52)), false);
        assert_eq!(
            status_line(&stats),
            "2/3 packets, 33% loss, min/avg/ewma/max = 0.045/0.048/0.045/0.052 ms"
        );
    }
}
