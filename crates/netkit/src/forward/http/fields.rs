//! Header and trailer fields (RFC 9110 §5, RFC 9112 §5): tokenized by `httparse`, which refuses
//! bare CR, NUL and the other control characters in names and values, whitespace before the
//! colon and obsolete line folding, and accepts obs-text (bytes 0x80-0xFF) in values. What the
//! rest of the rewriter needs on top: line ends, the list syntax of framing fields, and
//! re-emitting fields in one canonical form.

use super::{Error, MAX_FIELDS};

/// One header or trailer field; the value has no leading or trailing whitespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Field<'a> {
    pub name: &'a str,
    pub value: &'a [u8],
}

/// A control character other than HTAB: refused in every part of a message head.
pub(super) fn is_ctl(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// A `tchar` of RFC 9110 §5.6.2 (methods, field names, transfer codings).
pub(super) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether `text` is a token: one or more tchars.
pub(super) fn is_token(text: &[u8]) -> bool {
    !text.is_empty() && text.iter().all(|b| is_tchar(*b))
}

/// A line without its end (LF, or CRLF); a CR anywhere else is refused.
pub(super) fn strip_eol(line: &[u8]) -> Result<&[u8], Error> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.contains(&b'\r') {
        return Err(Error::Malformed("bare CR"));
    }
    Ok(line)
}

/// Parses a field section that ends with its empty line, all of `block`.
pub(super) fn parse(block: &[u8]) -> Result<Vec<Field<'_>>, Error> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_FIELDS];
    match httparse::parse_headers(block, &mut slots) {
        Ok(httparse::Status::Complete((len, fields))) if len == block.len() => Ok(fields
            .iter()
            .map(|f| Field {
                name: f.name,
                value: f.value,
            })
            .collect()),
        Err(httparse::Error::TooManyHeaders) => Err(Error::Malformed("over 100 header fields")),
        Err(httparse::Error::HeaderValue) => Err(Error::Malformed(
            "control character (bare CR, NUL, ...) in a header field value",
        )),
        Err(httparse::Error::HeaderName) => Err(Error::Malformed(
            "invalid header field name (control character, space, folded line)",
        )),
        _ => Err(Error::Malformed("malformed header section")),
    }
}

/// Checks one complete field line (with its line end) of a head still being collected; the
/// same rules as [`parse`] gives the whole section.
pub(super) fn parse_line(line: &[u8]) -> Result<(), Error> {
    let mut block = Vec::with_capacity(line.len() + 2);
    block.extend_from_slice(line);
    block.extend_from_slice(b"\r\n");
    parse(&block).map(drop)
}

/// Appends `name: value` CRLF.
pub(super) fn emit(field: &Field<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(field.name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(field.value);
    out.extend_from_slice(b"\r\n");
}

/// `text` without optional whitespace (SP, HTAB) at either end.
pub(super) fn trim_ows(mut text: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = text {
        text = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = text {
        text = rest;
    }
    text
}

/// The elements of a comma-separated list field value (RFC 9110 §5.6.1), trimmed; empty
/// elements included, so that callers can refuse them.
pub(super) fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|b| *b == b',').map(trim_ows)
}

/// Fields that frame or route a message: never allowed in a trailer section (RFC 9110 §6.5.1),
/// where a target that merges trailers into the header section would obey them.
const NOT_IN_TRAILERS: &[&str] = &["host", "content-length", "transfer-encoding"];

/// Checks a request's trailer section (its lines and the empty one) and re-emits it in
/// canonical form.
pub(super) fn rewrite_trailers(section: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    let fields = parse(section)?;
    for field in &fields {
        if NOT_IN_TRAILERS
            .iter()
            .any(|name| field.name.eq_ignore_ascii_case(name))
        {
            return Err(Error::Chunked(
                "framing or Host field in the trailer section",
            ));
        }
        emit(field, out);
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}
