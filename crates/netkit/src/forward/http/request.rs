//! One request head (RFC 9112 §3, §6): checked, and re-emitted in canonical form with the new
//! Host. The request line is tokenized here (strictly: single spaces, a token method, HTTP/1.0
//! or HTTP/1.1, a target of visible ASCII or raw bytes 0x80-0xFF); the fields by `httparse`.
//!
//! The target's authority is rewritten too, so that the Host and the authority can never
//! disagree (RFC 9112 §3.2.2 makes a server take the authority of an absolute-form target
//! over the Host field): `GET http://evil.test/x` goes on as `GET http://NEW/x`, and the
//! authority-form of `CONNECT evil.test:443` as `CONNECT NEW:443` (keeping the client's port
//! when the new host has none). Userinfo is dropped. A target that is neither origin-form
//! (`/...`), absolute-form with an authority (`SCHEME://...`), authority-form (CONNECT only)
//! nor `*` (OPTIONS only) is refused.
//!
//! Framing (RFC 9112 §6.1-6.3): `Transfer-Encoding` must end in `chunked` (once), and is
//! refused beside `Content-Length`, in HTTP/1.0 and on CONNECT; any coding but `chunked` is
//! refused as not implemented; `Content-Length` values must agree (one number is sent on) and
//! have at most 18 digits; anything ambiguous is refused rather than guessed.

use super::body::Framing;
use super::fields::{self, Field};
use super::{Error, MAX_FIELDS};

/// What the response side needs to know about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Request {
    /// HEAD: the response has no body whatever it says.
    pub head: bool,
    /// CONNECT: a 2xx response starts a tunnel.
    pub connect: bool,
    /// It carries `Upgrade`: a 101 response starts a tunnel.
    pub upgrade: bool,
    /// How its body is framed.
    pub framing: Framing,
}

/// Checks a complete head (its last line is the empty one) and writes it to `out` with `host`
/// as its Host and authority.
pub(super) fn rewrite(head: &[u8], host: &str, out: &mut Vec<u8>) -> Result<Request, Error> {
    let line_end = head
        .iter()
        .position(|b| *b == b'\n')
        .ok_or(Error::Malformed("no line"))?;
    let line = fields::strip_eol(&head[..=line_end])?;
    let (method, target, version) = request_line(line)?;
    let fields = fields::parse(&head[line_end + 1..])?;
    let connect = method == b"CONNECT";
    out.extend_from_slice(method);
    out.push(b' ');
    rewrite_target(method, target, host, out)?;
    out.push(b' ');
    out.extend_from_slice(version);
    out.extend_from_slice(b"\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    let framing = emit_fields(&fields, out)?;
    out.extend_from_slice(b"\r\n");
    let request = Request {
        head: method == b"HEAD",
        connect,
        upgrade: framing.upgrade,
        framing: framing.resolve(version == b"HTTP/1.0", connect)?,
    };
    Ok(request)
}

/// How far [`check_partial`] checked an unfinished request head, kept between its calls so
/// that bytes trickling in one at a time are each looked at once.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Partial {
    /// The bytes checked so far.
    checked: usize,
    /// Where the line being checked starts (0: the request line).
    line: usize,
    /// Whether the field name of that line has ended (its colon came).
    named: bool,
    /// Header fields in the complete lines so far.
    fields: usize,
    /// Host fields among them.
    hosts: usize,
}

/// Checks the start of a head that has not ended yet, from where the last call stopped: each
/// line as it completes, and the bytes so far of the line still coming (a method that is not
/// a token, a control character, a field name that cannot be one, a second Host field).
/// Bytes that can never begin a valid head (a TLS ClientHello, an SSH banner, NULs, a
/// malformed field line, a NUL in a value still coming) are refused at once, as HAProxy and
/// nginx do, rather than waited on until the head would end: a client speaking another
/// protocol, or waiting for an answer before it goes on, would otherwise wait forever.
/// Everything refused here, [`rewrite`] refuses once the head is whole.
pub(super) fn check_partial(buf: &[u8], partial: &mut Partial) -> Result<(), Error> {
    while let Some(nl) = buf[partial.checked..].iter().position(|b| *b == b'\n') {
        let end = partial.checked + nl + 1;
        let line = &buf[partial.line..end];
        if partial.line == 0 {
            request_line(fields::strip_eol(line)?)?;
        } else {
            fields::parse_line(line)?;
            partial.fields += 1;
            if partial.fields > MAX_FIELDS {
                return Err(Error::Malformed("over 100 header fields"));
            }
            let colon = line.iter().position(|b| *b == b':').unwrap_or_default();
            partial.hosts += usize::from(line[..colon].eq_ignore_ascii_case(b"host"));
            if partial.hosts > 1 {
                return Err(Error::Malformed("more than one Host field"));
            }
        }
        partial.checked = end;
        partial.line = end;
        partial.named = false;
    }
    // The line still coming, but a last CR (the start of its line end).
    let end = (buf.len() - usize::from(buf.ends_with(b"\r"))).max(partial.checked);
    if partial.line == 0 {
        check_unfinished_request_line(buf, partial.checked, end)?;
    } else {
        check_unfinished_field_line(buf, end, partial)?;
    }
    partial.checked = end;
    Ok(())
}

/// The bytes so far of a request line without its line end (nor a last CR), `buf[from..end]`
/// not seen before: the method's first bytes must be a token (they tell another protocol),
/// and no control character (nor HTAB) may appear anywhere but as the CR of a line end to
/// come.
fn check_unfinished_request_line(buf: &[u8], from: usize, end: usize) -> Result<(), Error> {
    if buf[from..end].iter().any(|b| *b < 0x20 || *b == 0x7f) {
        return Err(Error::Malformed("control character in the request line"));
    }
    // The method so far, within the first bytes only: a line that trickles in byte by byte
    // must not cost quadratic time.
    let first = &buf[..end.min(32)];
    let method = first.split(|b| *b == b' ').next().unwrap_or_default();
    if !method.iter().all(|b| fields::is_tchar(*b)) || (method.is_empty() && !first.is_empty()) {
        return Err(Error::Malformed("method is not a token"));
    }
    Ok(())
}

/// `buf[partial.checked..end]`, the new bytes of a field line still coming (without a last
/// CR): a name of tchars up to the colon, which may not be a second Host; then a value
/// without control characters but HTAB. A line that begins with whitespace (obsolete line
/// folding, or whitespace before a name) is refused as its first byte comes, as the complete
/// line would be.
fn check_unfinished_field_line(buf: &[u8], end: usize, partial: &mut Partial) -> Result<(), Error> {
    let mut value = &buf[partial.checked..end];
    if !partial.named {
        let name_end = value.iter().position(|b| *b == b':');
        let (name, rest) = value.split_at(name_end.unwrap_or(value.len()));
        if !name.iter().all(|b| fields::is_tchar(*b)) {
            return Err(Error::Malformed(
                "invalid header field name (control character, space, folded line)",
            ));
        }
        let Some(colon) = name_end.map(|n| partial.checked + n) else {
            return Ok(());
        };
        let whole = &buf[partial.line..colon];
        if whole.is_empty() {
            return Err(Error::Malformed("invalid header field name (empty)"));
        }
        if whole.eq_ignore_ascii_case(b"host") && partial.hosts > 0 {
            return Err(Error::Malformed("more than one Host field"));
        }
        partial.named = true;
        value = &rest[1..];
    }
    if value.iter().any(|b| fields::is_ctl(*b)) {
        return Err(Error::Malformed(
            "control character (bare CR, NUL, ...) in a header field value",
        ));
    }
    Ok(())
}

/// The three parts of a request line: method, target, version.
type RequestLine<'a> = (&'a [u8], &'a [u8], &'a [u8]);

/// `METHOD SP TARGET SP VERSION`, single spaces.
fn request_line(line: &[u8]) -> Result<RequestLine<'_>, Error> {
    let mut parts = line.split(|b| *b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::Malformed(
            "request line is not METHOD TARGET VERSION",
        ));
    };
    if !fields::is_token(method) {
        return Err(Error::Malformed("method is not a token"));
    }
    let visible = |b: &u8| (0x21..=0x7e).contains(b) || *b >= 0x80;
    if target.is_empty() || !target.iter().all(visible) {
        return Err(Error::Malformed(
            "control character or space in the request-target",
        ));
    }
    if version != b"HTTP/1.1" && version != b"HTTP/1.0" {
        return Err(Error::Malformed("version is not HTTP/1.0 or HTTP/1.1"));
    }
    Ok((method, target, version))
}

/// Writes the target with its authority (if it has one) replaced by `host`.
fn rewrite_target(
    method: &[u8],
    target: &[u8],
    host: &str,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    if method == b"CONNECT" {
        return rewrite_authority_form(target, host, out);
    }
    if target.starts_with(b"/") || (target == b"*" && method == b"OPTIONS") {
        out.extend_from_slice(target);
        return Ok(());
    }
    let (scheme, rest) = split_scheme(target).ok_or(Error::Malformed(
        "request-target is not /PATH, SCHEME://AUTHORITY/PATH or * (OPTIONS)",
    ))?;
    let rest = rest.strip_prefix(b"//").ok_or(Error::Malformed(
        "absolute-form target without an authority",
    ))?;
    let end = rest
        .iter()
        .position(|b| b"/?#".contains(b))
        .unwrap_or(rest.len());
    let path = &rest[end..];
    if path.starts_with(b"#") {
        return Err(Error::Malformed("fragment in the request-target"));
    }
    out.extend_from_slice(scheme);
    out.extend_from_slice(b"://");
    out.extend_from_slice(host.as_bytes());
    // An empty path is `/` (RFC 9112 §3.2.1), before a query too; OPTIONS keeps it empty.
    match path {
        [] if method == b"OPTIONS" => {}
        [] => out.push(b'/'),
        [b'?', ..] => {
            out.push(b'/');
            out.extend_from_slice(path);
        }
        path => out.extend_from_slice(path),
    }
    Ok(())
}

/// `SCHEME:REST` with a scheme of RFC 3986 §3.1 (`ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`).
fn split_scheme(target: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = target.iter().position(|b| *b == b':')?;
    let scheme = &target[..colon];
    let first = scheme.first()?;
    let valid = first.is_ascii_alphabetic()
        && scheme
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b));
    valid.then(|| (scheme, &target[colon + 1..]))
}

/// `HOST:PORT` of a CONNECT, rewritten to `host` (with the client's port if `host` has none).
fn rewrite_authority_form(target: &[u8], host: &str, out: &mut Vec<u8>) -> Result<(), Error> {
    let invalid = Error::Malformed("CONNECT target is not HOST:PORT");
    let colon = target.iter().rposition(|b| *b == b':').ok_or(invalid)?;
    let (name, port) = (&target[..colon], &target[colon + 1..]);
    let valid = !name.is_empty()
        && !port.is_empty()
        && port.iter().all(u8::is_ascii_digit)
        && !target.iter().any(|b| b"/?#@".contains(b));
    if !valid {
        return Err(invalid);
    }
    out.extend_from_slice(host.as_bytes());
    if !has_port(host) {
        out.push(b':');
        out.extend_from_slice(port);
    }
    Ok(())
}

/// Whether a Host value (`name`, `name:port`, `[v6]`, `[v6]:port`) carries a port.
fn has_port(host: &str) -> bool {
    match host.rsplit_once(':') {
        Some((name, port)) => !port.is_empty() && !name.ends_with(':') && !port.ends_with(']'),
        None => false,
    }
}

fn is(field: &Field<'_>, name: &str) -> bool {
    field.name.eq_ignore_ascii_case(name)
}

/// Writes every field but Host (and but one Content-Length); collects the framing fields.
fn emit_fields(fields: &[Field<'_>], out: &mut Vec<u8>) -> Result<BodyFields, Error> {
    let mut framing = BodyFields::default();
    let mut hosts = 0;
    for field in fields {
        if is(field, "host") {
            hosts += 1;
            continue;
        }
        if is(field, "content-length") {
            let first = framing.length.is_none();
            framing.length(field.value)?;
            if let (true, Some(n)) = (first, framing.length) {
                // One number, whatever list of equal ones the client wrote (`5, 5`, `005`).
                let value = n.to_string();
                let field = Field {
                    name: field.name,
                    value: value.as_bytes(),
                };
                fields::emit(&field, out);
            }
            continue;
        }
        if is(field, "transfer-encoding") {
            framing.coding(field.value)?;
        }
        if is(field, "upgrade") {
            framing.upgrade |= emit_upgrade(field, out)?;
            continue;
        }
        fields::emit(field, out);
    }
    if hosts > 1 {
        return Err(Error::Malformed("more than one Host field"));
    }
    Ok(framing)
}

/// Upgrade protocols whose tunnel carries HTTP requests, with their own Host or `:authority`
/// that nothing would rewrite: HTTP/2 over cleartext (`h2c`, deprecated by RFC 9113 §3.1;
/// `h2`), HTTP itself (`HTTP/2.0`, `HTTP/1.1`), TLS (RFC 2817: HTTP inside it) and SPDY.
const HTTP_CARRIERS: &[&[u8]] = &[b"h2c", b"h2", b"http", b"tls", b"spdy"];

/// Writes an Upgrade field without the protocols that carry HTTP ([`HTTP_CARRIERS`]): after
/// a `101` to `Upgrade: h2c` the client's HTTP/2 streams, each with any `:authority`, would
/// reach the target untouched (h2c smuggling; nginx passes no Upgrade unless told to). The
/// field is dropped when none is left; returns whether it went on. An element that is not
/// `protocol-name ["/" protocol-version]` is refused.
fn emit_upgrade(field: &Field<'_>, out: &mut Vec<u8>) -> Result<bool, Error> {
    let mut kept = Vec::new();
    for element in fields::list(field.value).filter(|e| !e.is_empty()) {
        let mut parts = element.splitn(2, |b| *b == b'/');
        let name = parts.next().unwrap_or_default();
        if !fields::is_token(name) || parts.next().is_some_and(|v| !fields::is_token(v)) {
            return Err(Error::Malformed("Upgrade is not a list of protocols"));
        }
        if HTTP_CARRIERS.iter().any(|p| name.eq_ignore_ascii_case(p)) {
            continue;
        }
        if !kept.is_empty() {
            kept.extend_from_slice(b", ");
        }
        kept.extend_from_slice(element);
    }
    if kept.is_empty() {
        return Ok(false);
    }
    fields::emit(
        &Field {
            name: field.name,
            value: &kept,
        },
        out,
    );
    Ok(true)
}

/// The most digits of a Content-Length (under 10^18 bytes): 19 fit a u64 but not always the
/// signed 64 bits many servers read a length into, which could frame the body otherwise.
const LENGTH_DIGITS: usize = 18;

/// The framing fields of one request, and whether it asks for an upgrade.
#[derive(Debug, Default)]
struct BodyFields {
    /// An Upgrade field went on (with a protocol that does not carry HTTP).
    upgrade: bool,
    /// The agreed Content-Length.
    length: Option<u64>,
    /// The transfer codings, in order, over every Transfer-Encoding field.
    codings: Vec<Vec<u8>>,
}

impl BodyFields {
    /// One Content-Length field: a list of equal decimal numbers, equal to any before, each
    /// of at most [`LENGTH_DIGITS`] digits.
    fn length(&mut self, value: &[u8]) -> Result<(), Error> {
        for element in fields::list(value) {
            let valid = !element.is_empty()
                && element.len() <= LENGTH_DIGITS
                && element.iter().all(u8::is_ascii_digit);
            if !valid {
                return Err(Error::Framing("Content-Length is not a number"));
            }
            let n = std::str::from_utf8(element)
                .ok()
                .and_then(|t| t.parse::<u64>().ok())
                .ok_or(Error::Framing("Content-Length is not a number"))?;
            if self.length.is_some_and(|old| old != n) {
                return Err(Error::Framing("Content-Length values differ"));
            }
            self.length = Some(n);
        }
        Ok(())
    }

    /// One Transfer-Encoding field: a list of tokens (parameters are refused).
    fn coding(&mut self, value: &[u8]) -> Result<(), Error> {
        for element in fields::list(value) {
            if !fields::is_token(element) {
                return Err(Error::Framing("Transfer-Encoding is not a list of codings"));
            }
            self.codings.push(element.to_ascii_lowercase());
        }
        Ok(())
    }

    /// The framing of the body: refused whenever two readers could disagree about it.
    fn resolve(&self, http10: bool, connect: bool) -> Result<Framing, Error> {
        let chunked = |c: &Vec<u8>| c == b"chunked";
        match (self.codings.as_slice(), self.length) {
            ([], None) => Ok(Framing::Length(0)),
            ([], Some(_)) if connect => Err(Error::Framing("CONNECT with Content-Length")),
            ([], Some(n)) => Ok(Framing::Length(n)),
            (_, Some(_)) => Err(Error::Framing("both Transfer-Encoding and Content-Length")),
            _ if http10 => Err(Error::Framing("Transfer-Encoding in an HTTP/1.0 request")),
            _ if connect => Err(Error::Framing("CONNECT with Transfer-Encoding")),
            ([only], None) if chunked(only) => Ok(Framing::Chunked),
            // Another coding before chunked (`gzip, chunked`): the forwarder would pass a body
            // it cannot read to a target that may frame it otherwise (HAProxy 422, nginx 501).
            ([.., last], None)
                if chunked(last) && self.codings.iter().filter(|c| chunked(c)).count() == 1 =>
            {
                Err(Error::Unsupported("a transfer coding other than chunked"))
            }
            _ => Err(Error::Framing(
                "Transfer-Encoding does not end in chunked (once)",
            )),
        }
    }
}
