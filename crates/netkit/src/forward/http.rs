//! Sans-IO rewriter of the `Host` header of HTTP/1.x requests, fed the client's byte stream in
//! whatever pieces it arrives in. Heads are buffered (at most [`MAX_HEAD`] bytes) and re-emitted
//! with the new Host; bodies (Content-Length or chunked) and everything after an upgrade pass
//! untouched. A malformed or oversized head is an error: the connection is closed, never
//! buffered without bound.

/// The largest request head accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// The longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 8 * 1024;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// The head grew past [`MAX_HEAD`] without ending.
    #[error("request head is over 64 KiB")]
    TooLarge,
    /// The request line or a header line is not HTTP/1.x.
    #[error("malformed request head")]
    Malformed,
    /// Content-Length or Transfer-Encoding is invalid or ambiguous.
    #[error("invalid request body framing")]
    Framing,
    /// A chunk-size line or trailer is malformed or too long.
    #[error("malformed chunked body")]
    Chunked,
}

/// Where in the request stream the rewriter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Collecting a request head.
    Head,
    /// Passing this many more body bytes.
    Body(u64),
    /// Reading a chunk-size line.
    ChunkSize,
    /// Passing this many more chunk bytes.
    ChunkData(u64),
    /// Expecting the CRLF after chunk data.
    ChunkEnd,
    /// Reading trailer lines after the last chunk.
    Trailer,
    /// After CONNECT or an upgrade: everything passes.
    Tunnel,
}

/// Rewrites the Host header of every request of one connection.
#[derive(Debug)]
pub struct HostRewriter {
    host: String,
    state: State,
    buf: Vec<u8>,
}

/// What the head says about the body that follows it.
#[derive(Debug, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    Tunnel,
}

impl HostRewriter {
    /// A rewriter that sets every request's Host to `host`.
    pub fn new(host: String) -> Self {
        HostRewriter {
            host,
            state: State::Head,
            buf: Vec::new(),
        }
    }

    /// Consumes `input`, appending what should be sent on to `out`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), HeadError> {
        while !input.is_empty() {
            input = match self.state {
                State::Head => self.head(input, out)?,
                State::Body(left) | State::ChunkData(left) => self.pass(input, left, out),
                State::ChunkSize | State::ChunkEnd | State::Trailer => self.line(input, out)?,
                State::Tunnel => {
                    out.extend_from_slice(input);
                    &[]
                }
            };
        }
        Ok(())
    }

    fn pass<'a>(&mut self, input: &'a [u8], left: u64, out: &mut Vec<u8>) -> &'a [u8] {
        let take = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
        out.extend_from_slice(&input[..take]);
        let left = left - take as u64;
        self.state = match (self.state, left) {
            (State::ChunkData(_), 0) => State::ChunkEnd,
            (State::ChunkData(_), left) => State::ChunkData(left),
            (_, 0) => State::Head,
            (_, left) => State::Body(left),
        };
        &input[take..]
    }

    fn head<'a>(&mut self, input: &'a [u8], out: &mut Vec<u8>) -> Result<&'a [u8], HeadError> {
        if self.buf.is_empty() {
            // Blank lines between requests pass as they are.
            let blank = input.iter().take_while(|b| **b == b'\r' || **b == b'\n');
            let skip = blank.count();
            if skip > 0 {
                out.extend_from_slice(&input[..skip]);
                return Ok(&input[skip..]);
            }
        }
        let from = self.buf.len().saturating_sub(3);
        self.buf.extend_from_slice(input);
        let Some(end) = head_end(&self.buf, from) else {
            if self.buf.len() > MAX_HEAD {
                return Err(HeadError::TooLarge);
            }
            return Ok(&[]);
        };
        if end > MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
        let rest = self.buf.len() - end;
        let framing = rewrite_head(&self.buf[..end], &self.host, out)?;
        self.buf.clear();
        self.state = match framing {
            Framing::None | Framing::Length(0) => State::Head,
            Framing::Length(n) => State::Body(n),
            Framing::Chunked => State::ChunkSize,
            Framing::Tunnel => State::Tunnel,
        };
        Ok(&input[input.len() - rest..])
    }

    /// Collects one line of chunk framing, passes it on and acts on it.
    fn line<'a>(&mut self, input: &'a [u8], out: &mut Vec<u8>) -> Result<&'a [u8], HeadError> {
        let (taken, done) = match input.iter().position(|b| *b == b'\n') {
            Some(at) => (at + 1, true),
            None => (input.len(), false),
        };
        self.buf.extend_from_slice(&input[..taken]);
        if self.buf.len() > MAX_LINE {
            return Err(HeadError::Chunked);
        }
        if done {
            out.extend_from_slice(&self.buf);
            let line = trim_eol(&self.buf);
            self.state = next_chunk_state(self.state, line)?;
            self.buf.clear();
        }
        Ok(&input[taken..])
    }
}

fn next_chunk_state(state: State, line: &[u8]) -> Result<State, HeadError> {
    match state {
        State::ChunkSize => match chunk_size(line)? {
            0 => Ok(State::Trailer),
            n => Ok(State::ChunkData(n)),
        },
        State::ChunkEnd if line.is_empty() => Ok(State::ChunkSize),
        State::Trailer if line.is_empty() => Ok(State::Head),
        State::Trailer => Ok(State::Trailer),
        _ => Err(HeadError::Chunked),
    }
}

fn chunk_size(line: &[u8]) -> Result<u64, HeadError> {
    let size = line.split(|b| *b == b';').next().unwrap_or_default();
    let size = std::str::from_utf8(size)
        .map_err(|_| HeadError::Chunked)?
        .trim();
    if size.is_empty() || size.len() > 15 {
        return Err(HeadError::Chunked);
    }
    u64::from_str_radix(size, 16).map_err(|_| HeadError::Chunked)
}

/// The index just past the blank line that ends a head, searching from `from`.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(nl) = buf[at..].iter().position(|b| *b == b'\n') {
        let after = at + nl + 1;
        match &buf[after.min(buf.len())..] {
            [b'\n', ..] => return Some(after + 1),
            [b'\r', b'\n', ..] => return Some(after + 2),
            _ => at = after,
        }
    }
    None
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Re-emits a complete head with the new Host and says how the body is framed.
fn rewrite_head(head: &[u8], host: &str, out: &mut Vec<u8>) -> Result<Framing, HeadError> {
    let text = std::str::from_utf8(head).map_err(|_| HeadError::Malformed)?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request = lines.next().ok_or(HeadError::Malformed)?;
    let method = request_method(request)?;
    out.extend_from_slice(request.as_bytes());
    out.extend_from_slice(format!("\r\nHost: {host}\r\n").as_bytes());
    let mut body = Body::default();
    let mut hosts = 0;
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = header(line)?;
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            continue;
        }
        body.note(name, value)?;
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if hosts > 1 {
        return Err(HeadError::Malformed);
    }
    body.framing(method == "CONNECT")
}

/// Checks `METHOD SP TARGET SP HTTP/1.x` and returns the method.
fn request_method(line: &str) -> Result<&str, HeadError> {
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed);
    };
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
    if !token(method) || !token(target) || !version.starts_with("HTTP/1.") {
        return Err(HeadError::Malformed);
    }
    Ok(method)
}

/// Splits `Name: value`; folded lines and names with spaces are refused.
fn header(line: &str) -> Result<(&str, &str), HeadError> {
    let (name, value) = line.split_once(':').ok_or(HeadError::Malformed)?;
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
    if !token {
        return Err(HeadError::Malformed);
    }
    Ok((name, value.trim()))
}

/// The body-related headers of one request.
#[derive(Debug, Default)]
struct Body {
    length: Option<u64>,
    chunked: Option<bool>,
    upgrade: bool,
}

impl Body {
    fn note(&mut self, name: &str, value: &str) -> Result<(), HeadError> {
        if name.eq_ignore_ascii_case("content-length") {
            let n = parse_length(value)?;
            if self.length.is_some_and(|old| old != n) {
                return Err(HeadError::Framing);
            }
            self.length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value.rsplit(',').next().unwrap_or_default().trim();
            self.chunked = Some(last.eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("upgrade") {
            self.upgrade = true;
        }
        Ok(())
    }

    fn framing(&self, connect: bool) -> Result<Framing, HeadError> {
        match (self.chunked, self.length) {
            (Some(_), Some(_)) | (Some(false), None) => Err(HeadError::Framing),
            _ if connect || self.upgrade => Ok(Framing::Tunnel),
            (Some(true), None) => Ok(Framing::Chunked),
            (None, Some(n)) => Ok(Framing::Length(n)),
            (None, None) => Ok(Framing::None),
        }
    }
}

fn parse_length(value: &str) -> Result<u64, HeadError> {
    if value.is_empty() || value.len() > 19 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeadError::Framing);
    }
    value.parse().map_err(|_| HeadError::Framing)
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
