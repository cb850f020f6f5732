//! The `udp:` side of `netkit forward`: the text lines of UDP rules' session and drop records
//! (printed by [`super::log`] with the others).

use netkit::report::forward::{DropRecord, SessionRecord};

fn close_name<T: serde::Serialize>(value: T) -> String {
    let value = serde_json::to_value(value).unwrap_or_default();
    value.as_str().unwrap_or("?").to_string()
}

pub(super) fn session_line(r: &SessionRecord) -> String {
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

pub(super) fn drop_line(r: &DropRecord) -> String {
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
