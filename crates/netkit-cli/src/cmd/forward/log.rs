//! Printing what the forwarder reports: a record per finished connection and per change of a
//! target's state, JSON Lines on stdout with `--json`, else a line each on stderr (silenced by
//! `-q`), and UDP rules' session and drop records (their lines are [`super::udp`]'s). The
//! events waiting are printed together, one write per stream: under load the records of many
//! connections cost one system call. After each print the log rests for [`REST`]: the
//! connections that end meanwhile queue their records without waking it, so a busy forwarder
//! wakes its log (a thread of its own, away from the workers) at most 100 times a second, not
//! once per connection.

use std::io::{self, Write};
use std::time::Duration;

use netkit::forward::{udp::Event as UdpEvent, Event};
use netkit::report::forward::{ConnRecord, TargetRecord, TargetState};
use serde::Serialize;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

use super::udp;
use crate::output::{write_record, Printer};

/// The most events printed with one write.
const BATCH: usize = 256;

/// How long the log rests after a print before it takes the next events. Waking the log's
/// thread for each connection's record cost more than the rest of the connection's work
/// (bench/forward_cost.sh); a line may now come up to this much after its connection ended.
const REST: Duration = Duration::from_millis(10);

/// The events taken and not printed yet, and the log's rest after its last print.
#[derive(Debug, Default)]
pub(super) struct Pending {
    batch: Vec<Event>,
    rest: Option<Instant>,
}

impl Pending {
    /// Waits out the rest begun at the last print, then for events: how many came (0 when
    /// the channel is closed). Cancel-safe: dropped in its rest, the rest is over.
    pub async fn next(&mut self, incoming: &mut UnboundedReceiver<Event>) -> usize {
        if let Some(until) = self.rest.take() {
            tokio::time::sleep_until(until).await;
        }
        incoming.recv_many(&mut self.batch, BATCH).await
    }

    /// Prints the events taken and begins a rest of [`REST`].
    pub fn print(&mut self, out: &Printer) {
        events(out, &mut self.batch);
        self.rest = Some(Instant::now() + REST);
    }

    /// Prints the events taken and every one still queued, at once: the forwarder is done.
    pub fn print_the_rest(&mut self, incoming: &mut UnboundedReceiver<Event>, out: &Printer) {
        while let Ok(event) = incoming.try_recv() {
            self.batch.push(event);
        }
        events(out, &mut self.batch);
    }
}

/// Prints `events` (and empties it). A record that cannot be written is dropped: the
/// connections go on.
fn events(out: &Printer, events: &mut Vec<Event>) {
    let mut lines = Lines::default();
    for event in events.drain(..) {
        match &event {
            Event::Conn(record) => lines.add(out, "conn", record, conn_line),
            Event::Target(record) => lines.add(out, "target", record, target_line),
            Event::Udp(UdpEvent::Session(record)) => {
                lines.add(out, "session", record, udp::session_line);
            }
            Event::Udp(UdpEvent::Drop(record)) => lines.add(out, "drop", record, udp::drop_line),
            Event::Udp(UdpEvent::Target(record)) => {
                lines.add(out, "target", record, target_line);
            }
        }
    }
    lines.flush();
}

/// Lines gathered for one write to each stream.
#[derive(Default)]
struct Lines {
    json: Vec<u8>,
    text: String,
}

impl Lines {
    fn add<R: Serialize>(&mut self, out: &Printer, kind: &str, record: &R, line: fn(&R) -> String) {
        if out.json() {
            let _ = write_record(&mut self.json, kind, record);
        } else if !out.quiet() {
            // A path (unix:) with a newline or an escape must not split or restyle the line.
            let line = line(record);
            if line.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                self.text.push_str(&line);
            } else {
                self.text.push_str(&netkit::text::one_line(&line));
            }
            self.text.push('\n');
        }
    }

    fn flush(&mut self) {
        if !self.json.is_empty() {
            let mut stdout = io::stdout().lock();
            let _ = stdout.write_all(&self.json).and_then(|()| stdout.flush());
            self.json.clear();
        }
        if !self.text.is_empty() {
            let _ = io::stderr().lock().write_all(self.text.as_bytes());
            self.text.clear();
        }
    }
}

fn target_line(r: &TargetRecord) -> String {
    let state = match r.state {
        TargetState::Up => "up",
        TargetState::Down => "down",
    };
    format!(
        "{} target {} of {} is {state}: {}",
        r.time, r.target, r.rule, r.reason
    )
}

fn conn_line(r: &ConnRecord) -> String {
    let error = r
        .error
        .as_deref()
        .map(|e| format!(": {e}"))
        .unwrap_or_default();
    let close = r.close.as_str();
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
