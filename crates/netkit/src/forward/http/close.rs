//! Marking a response head `Connection: close` (RFC 9112 §9.6), as HAProxy's soft stop and
//! nginx's graceful quit do to the last response of a keep-alive connection: the client then
//! sends no further request on it, instead of meeting the close with one under way.
//!
//! The head is re-emitted line for line but for its `Connection` fields: `keep-alive` and
//! `close` are taken out of them (other tokens, `Upgrade` or field names, stay, in one field
//! where they were), a field left empty goes, and `Connection: close` ends the head.

use super::fields;

/// The connection options this rewrite replaces.
const REPLACED: &[&[u8]] = &[b"keep-alive", b"close"];

/// Appends `head` (a complete response head that `httparse` read, ending with its empty line)
/// to `out`, marked `Connection: close`.
pub(super) fn mark(head: &[u8], out: &mut Vec<u8>) {
    let mut lines = head.split_inclusive(|b| *b == b'\n');
    let Some(status) = lines.next() else {
        return;
    };
    out.extend_from_slice(status);
    let eol: &[u8] = if status.ends_with(b"\r\n") {
        b"\r\n"
    } else {
        b"\n"
    };
    for line in lines {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        match connection_value(line) {
            Some(value) => kept_options(value, eol, out),
            None => out.extend_from_slice(line),
        }
    }
    out.extend_from_slice(b"Connection: close");
    out.extend_from_slice(eol);
    out.extend_from_slice(eol);
}

/// The value of a `Connection` field line, without its line end; `None` for other fields.
fn connection_value(line: &[u8]) -> Option<&[u8]> {
    let colon = line.iter().position(|b| *b == b':')?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if !name.eq_ignore_ascii_case(b"connection") {
        return None;
    }
    let value = value.strip_suffix(b"\n").unwrap_or(value);
    Some(value.strip_suffix(b"\r").unwrap_or(value))
}

/// Re-emits a `Connection` field with the options other than those [`REPLACED`], if any.
fn kept_options(value: &[u8], eol: &[u8], out: &mut Vec<u8>) {
    let kept: Vec<&[u8]> = fields::list(value)
        .filter(|o| !o.is_empty() && !REPLACED.iter().any(|r| o.eq_ignore_ascii_case(r)))
        .collect();
    if kept.is_empty() {
        return;
    }
    out.extend_from_slice(b"Connection: ");
    out.extend_from_slice(&kept.join(&b", "[..]));
    out.extend_from_slice(eol);
}
