//! A strict reading of RFC 9112 requests, written apart from netkit's rewriter (sharing no
//! code with it) to check it differentially: CRLF line ends only, single spaces in the
//! request line, `field-name ":" OWS field-value OWS` with no control characters, exactly one
//! Host in HTTP/1.1, at most one `Content-Length` of plain digits, `Transfer-Encoding` only as
//! `chunked` alone (never beside `Content-Length`, never in HTTP/1.0),
//! chunk extensions as `;token[=token|quoted-string]`, and request-targets in one of the four
//! forms of RFC 9112 §3.2.

/// One request, as the strict reading sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub method: Vec<u8>,
    pub target: Vec<u8>,
    pub version: Vec<u8>,
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Message {
    /// The values of the fields named `name`.
    pub fn values(&self, name: &str) -> Vec<&[u8]> {
        self.fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
            .collect()
    }
}

/// The outcome of reading one message from the front of a buffer.
#[derive(Debug)]
pub enum Read {
    /// A message, and the bytes it took (with any empty lines before it).
    Complete(Message, usize),
    /// The bytes are a valid beginning; more are needed.
    Incomplete,
    /// Not a valid request.
    Invalid(&'static str),
}

/// Bytes the request-target may hold: RFC 3986 characters, or with `raw` also 0x80-0xFF.
fn target_byte(b: u8, raw: bool) -> bool {
    (0x21..=0x7e).contains(&b) || (raw && b >= 0x80)
}

fn tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn token(t: &[u8]) -> bool {
    !t.is_empty() && t.iter().all(|b| tchar(*b))
}

/// Without optional whitespace (SP, HTAB) at either end.
fn trim_ows(mut t: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = t {
        t = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = t {
        t = rest;
    }
    t
}

type Step<T> = Result<T, Read>;

struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// The next CRLF-terminated line, without its CRLF.
    fn line(&mut self) -> Step<&'a [u8]> {
        let rest = &self.buf[self.at..];
        let Some(lf) = rest.iter().position(|b| *b == b'\n') else {
            let cr = rest.iter().position(|b| *b == b'\r');
            return match cr {
                Some(i) if i + 1 < rest.len() => Err(Read::Invalid("bare CR")),
                _ => Err(Read::Incomplete),
            };
        };
        if lf == 0 || rest[lf - 1] != b'\r' {
            return Err(Read::Invalid("bare LF"));
        }
        let line = &rest[..lf - 1];
        if line.contains(&b'\r') {
            return Err(Read::Invalid("bare CR"));
        }
        self.at += lf + 1;
        Ok(line)
    }

    fn take(&mut self, n: u64) -> Step<&'a [u8]> {
        let rest = &self.buf[self.at..];
        let n = usize::try_from(n).map_err(|_| Read::Incomplete)?;
        if rest.len() < n {
            return Err(Read::Incomplete);
        }
        self.at += n;
        Ok(&rest[..n])
    }
}

/// Reads the request at the front of `buf`.
pub fn read(buf: &[u8], raw_target: bool) -> Read {
    let mut cursor = Cursor { buf, at: 0 };
    while buf[cursor.at..].starts_with(b"\r\n") {
        cursor.at += 2;
    }
    if cursor.at == buf.len() || buf[cursor.at..] == *b"\r" {
        return Read::Incomplete;
    }
    match message(&mut cursor, raw_target) {
        Ok(message) => Read::Complete(message, cursor.at),
        Err(read) => read,
    }
}

fn message(cursor: &mut Cursor<'_>, raw_target: bool) -> Step<Message> {
    let line = cursor.line()?;
    let parts: Vec<&[u8]> = line.split(|b| *b == b' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(Read::Invalid("request line"));
    };
    if !token(method) || !(version == b"HTTP/1.1" || version == b"HTTP/1.0") {
        return Err(Read::Invalid("method or version"));
    }
    if target.is_empty() || !target.iter().all(|b| target_byte(*b, raw_target)) {
        return Err(Read::Invalid("target bytes"));
    }
    check_form(method, target)?;
    // What the rewriter sends (`raw_target`) may hold one field more than it takes: the Host
    // it adds to an HTTP/1.0 request of 100 fields.
    let fields = field_section(cursor, 100 + usize::from(raw_target))?;
    let mut message = Message {
        method: method.to_vec(),
        target: target.to_vec(),
        version: version.to_vec(),
        fields,
        body: Vec::new(),
        trailers: Vec::new(),
    };
    let hosts = message.values("host").len();
    if hosts > 1 || (hosts == 0 && version == b"HTTP/1.1") {
        return Err(Read::Invalid("Host count"));
    }
    body(cursor, &mut message)?;
    Ok(message)
}

/// RFC 9112 §3.2: origin-form, absolute-form (with an authority), authority-form for
/// CONNECT, asterisk-form for OPTIONS.
fn check_form(method: &[u8], target: &[u8]) -> Step<()> {
    if method == b"CONNECT" {
        let colon = target.iter().rposition(|b| *b == b':');
        let ok = colon.is_some_and(|c| {
            c > 0
                && c + 1 < target.len()
                && target[c + 1..].iter().all(u8::is_ascii_digit)
                && !target.iter().any(|b| b"/?#@".contains(b))
        });
        return if ok { Ok(()) } else { Err(Read::Invalid("authority-form")) };
    }
    if target[0] == b'/' || (target == b"*" && method == b"OPTIONS") {
        return Ok(());
    }
    let Some(sep) = target.windows(3).position(|w| w == b"://") else {
        return Err(Read::Invalid("target form"));
    };
    let scheme = &target[..sep];
    let scheme_ok = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme.iter().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b));
    let rest = &target[sep + 3..];
    let end = rest.iter().position(|b| b"/?#".contains(b)).unwrap_or(rest.len());
    if !scheme_ok || rest.get(end) == Some(&b'#') {
        return Err(Read::Invalid("absolute-form"));
    }
    Ok(())
}

/// A field section of at most `most` fields (HAProxy's and the rewriter's bound: 100, 101
/// lines with the request line).
fn field_section(cursor: &mut Cursor<'_>, most: usize) -> Step<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut fields = Vec::new();
    loop {
        let line = cursor.line()?;
        if line.is_empty() {
            return Ok(fields);
        }
        let colon = line.iter().position(|b| *b == b':');
        let Some(colon) = colon.filter(|c| token(&line[..*c])) else {
            return Err(Read::Invalid("field name"));
        };
        let value = trim_ows(&line[colon + 1..]);
        let vchar = |b: &u8| *b == b' ' || *b == b'\t' || (0x21..=0x7e).contains(b) || *b >= 0x80;
        if !value.iter().all(vchar) {
            return Err(Read::Invalid("field value"));
        }
        fields.push((line[..colon].to_vec(), value.to_vec()));
        if fields.len() > most {
            return Err(Read::Invalid("over 100 fields"));
        }
    }
}

fn body(cursor: &mut Cursor<'_>, message: &mut Message) -> Step<()> {
    let lengths = message.values("content-length");
    let codings: Vec<Vec<u8>> = message
        .values("transfer-encoding")
        .iter()
        .flat_map(|v| v.split(|b| *b == b','))
        .map(|c| trim_ows(c).to_ascii_lowercase())
        .collect();
    let connect = message.method == b"CONNECT";
    if !codings.is_empty() {
        // Only `chunked` itself: a coding before it is not one a relay can read (501).
        let ok = codings == [b"chunked".to_vec()];
        if !ok || !lengths.is_empty() || message.version == b"HTTP/1.0" || connect {
            return Err(Read::Invalid("Transfer-Encoding"));
        }
        return chunked(cursor, message);
    }
    match lengths[..] {
        [] => Ok(()),
        [_] if connect => Err(Read::Invalid("CONNECT with Content-Length")),
        [n] if !n.is_empty() && n.len() <= 18 && n.iter().all(u8::is_ascii_digit) => {
            let n: u64 = std::str::from_utf8(n).unwrap_or("0").parse().unwrap_or(0);
            message.body = cursor.take(n)?.to_vec();
            Ok(())
        }
        _ => Err(Read::Invalid("Content-Length")),
    }
}

fn chunked(cursor: &mut Cursor<'_>, message: &mut Message) -> Step<()> {
    loop {
        let line = cursor.line()?;
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if digits == 0 || digits > 15 || !chunk_ext(&line[digits..]) {
            return Err(Read::Invalid("chunk-size line"));
        }
        let size = std::str::from_utf8(&line[..digits]).unwrap_or("0");
        let size = u64::from_str_radix(size, 16).unwrap_or(0);
        if size == 0 {
            message.trailers = field_section(cursor, 100)?;
            let framing = ["host", "content-length", "transfer-encoding"];
            let bad = message
                .trailers
                .iter()
                .any(|(n, _)| framing.iter().any(|f| n.eq_ignore_ascii_case(f.as_bytes())));
            return if bad { Err(Read::Invalid("trailer")) } else { Ok(()) };
        }
        message.body.extend_from_slice(cursor.take(size)?);
        if cursor.line()? != b"" {
            return Err(Read::Invalid("chunk data end"));
        }
    }
}

/// `*( ";" token [ "=" ( token / quoted-string ) ] )`, no whitespace.
fn chunk_ext(mut ext: &[u8]) -> bool {
    while let Some(rest) = ext.strip_prefix(b";") {
        let name = rest.iter().take_while(|b| tchar(**b)).count();
        if name == 0 {
            return false;
        }
        ext = &rest[name..];
        if let Some(value) = ext.strip_prefix(b"=") {
            let len = ext_value(value);
            if len == 0 {
                return false;
            }
            ext = &value[len..];
        }
    }
    ext.is_empty()
}

/// The length of a token or quoted-string at the front of `value` (0: neither).
fn ext_value(value: &[u8]) -> usize {
    if value.first() != Some(&b'"') {
        return value.iter().take_while(|b| tchar(**b)).count();
    }
    let mut i = 1;
    while i < value.len() {
        match value[i] {
            b'"' => return i + 1,
            b'\\' if i + 1 < value.len() => i += 2,
            b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => i += 1,
            _ => return 0,
        }
    }
    0
}
