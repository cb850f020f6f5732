//! The `udp:` side of `netkit forward`: printing the session and drop records of UDP rules
//! (JSON Lines on stdout with `--json`, else one line each on stderr, silenced by `-q`).

use std::io::Write;

use netkit::forward::udp::Event;
use netkit::report::forward::{DropRecord, SessionRecord};

use crate::output::Printer;

/// One line per ended session and per drop report. A record that cannot be written is
/// dropped: the sessions go on.
pub(super) fn log(out: &Printer, event: &Event) {
    let (kind, line) = match event {
        Event::Session(record) => ("session", session_line(record)),
        Event::Drop(record) => ("drop", drop_line(record)),
    };
    if out.json() {
        let _ = match event {
            Event::Session(record) => out.record(kind, record),
            Event::Drop(record) => out.record(kind, record),
        };
    } else if !out.quiet() {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

fn close_name<T: serde::Serialize>(value: T) -> String {
    let value = serde_json::to_value(value).unwrap_or_default();
    value.as_str().unwrap_or("?").to_string()
}

fn session_line(r: &SessionRecord) -> String {
    let mut extra = String::new();
    if r.refused > 0 {
        extra.push_str(&format!(", {} refused", r.refused));
    }
    if r.dropped > 0 {
        extra.push_str(&format!(", {} dropped", r.dropped));
    }
    if let Some(error) = &r.error {
        extra.push_str(&format!(": {error}"));
    }
    format!(
        "{} udp {} -> {} via {}: up {} dgrams {} B, down {} dgrams {} B, {:.3}s, {}{extra}",
        r.time,
        r.client,
        r.target,
        r.via,
        r.datagrams_up,
        r.bytes_up,
        r.datagrams_down,
        r.bytes_down,
        r.duration_s,
        close_name(r.close)
    )
}

fn drop_line(r: &DropRecord) -> String {
    let error = r
        .error
        .as_deref()
        .map(|e| format!(": {e}"))
        .unwrap_or_default();
    format!(
        "{} {}: dropped {} datagrams ({}, {} in all), the last from {}{error}",
        r.time,
        r.listen,
        r.datagrams,
        close_name(r.reason),
        r.total,
        r.last_client
    )
}
