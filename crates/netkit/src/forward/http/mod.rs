//! Sans-IO HTTP/1.x for `forward --http-host`: rewrites the Host (and the target's authority)
//! of every request a client sends, and reads just enough of the target's responses to know
//! when the connection stops being HTTP.
//!
//! The property it keeps: **no request reaches the target with a Host or authority that was
//! not rewritten.** Hence:
//! - Requests are parsed strictly and re-emitted in one canonical form (request line, `Host`
//!   first, `name: value` CRLF fields, canonical chunk-size lines): whatever the target's own
//!   parser tolerates, it never sees an ambiguous byte. Anything two parsers could read
//!   differently is refused with 400: bare CR, NUL and other control characters, folded or
//!   space-before-colon fields, several Hosts, conflicting or malformed `Content-Length`,
//!   `Transfer-Encoding` not ending in `chunked`, with `Content-Length`, in HTTP/1.0 or on
//!   CONNECT. obs-text in field values and raw non-ASCII bytes in the target pass.
//! - A tunnel starts only when a *response* says so, as in HAProxy: `101` to a request
//!   carrying `Upgrade`, `2xx` to CONNECT. Upgrade never asks for a protocol whose tunnel
//!   carries HTTP requests of its own (h2c, HTTP/*, TLS/*, SPDY/*): those are taken out. Until that response arrives the client's later bytes
//!   are held (the relay stops reading); if it says no (426, 405, 200...), they are parsed as
//!   requests like any others.
//! - So responses are followed one by one (status line, `HEAD`/1xx/204/304, `Content-Length`,
//!   chunked framing, read-until-close) to pair each with its request, which a queue of
//!   requests in flight remembers. Responses pass on untouched, but for the last one of a
//!   connection while the forwarder drains: that head goes out marked `Connection: close`.
//!
//! Layout: [`Session`] pairs the two directions; `request` and `response` read heads,
//! `fields` header fields (tokenized by `httparse`), `body` message bodies, `close` the
//! `Connection: close` mark.

mod body;
mod close;
mod fields;
mod request;
mod response;
mod session;

pub use session::{Session, Switch};

/// The largest request or response head (and trailer section) accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// The most header fields one head may have (HAProxy: 101 with the request line).
const MAX_FIELDS: usize = 100;
/// Requests in flight (sent on, not yet answered) beyond which the client's further requests
/// wait for answers.
pub const MAX_PENDING: usize = 1024;

/// Why a request (or the target's response) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A head grew past [`MAX_HEAD`] without ending.
    #[error("request head is over 64 KiB")]
    TooLarge,
    /// The request line or a header field is not HTTP/1.x, or holds forbidden bytes.
    #[error("malformed request head: {0}")]
    Malformed(&'static str),
    /// Content-Length or Transfer-Encoding is invalid or ambiguous.
    #[error("invalid request body framing: {0}")]
    Framing(&'static str),
    /// A transfer coding the forwarder does not decode (`gzip, chunked`): answered 501.
    #[error("unsupported request body framing: {0}")]
    Unsupported(&'static str),
    /// A chunk-size line or trailer section is malformed or too long.
    #[error("malformed chunked request body: {0}")]
    Chunked(&'static str),
    /// The target's response cannot be followed.
    #[error("malformed response from the target: {0}")]
    Response(&'static str),
}

impl Error {
    /// The same reason, blamed on the response.
    fn in_response(self) -> Error {
        match self {
            Error::TooLarge => Error::Response("head over 64 KiB"),
            Error::Malformed(why)
            | Error::Framing(why)
            | Error::Unsupported(why)
            | Error::Chunked(why) => Error::Response(why),
            Error::Response(why) => Error::Response(why),
        }
    }
}

/// Collects a head into `buf` from `input`; returns the length of the complete head in `buf`
/// (the bytes after it are the start of what follows) or `None` when more is needed. Empty
/// lines before the head are dropped into `skipped`.
fn collect_head(
    buf: &mut Vec<u8>,
    input: &[u8],
    skipped: &mut Vec<u8>,
) -> Result<Option<usize>, Error> {
    let from = buf.len().saturating_sub(3);
    buf.extend_from_slice(input);
    let blank = leading_empty_lines(buf);
    if blank > 0 {
        skipped.extend(buf.drain(..blank));
    }
    match head_end(buf, from.saturating_sub(blank)) {
        Some(end) if end > MAX_HEAD => Err(Error::TooLarge),
        Some(end) => Ok(Some(end)),
        None if buf.len() > MAX_HEAD => Err(Error::TooLarge),
        None => Ok(None),
    }
}

/// The length of the empty lines (LF or CRLF) that open `buf`.
fn leading_empty_lines(buf: &[u8]) -> usize {
    let mut at = 0;
    loop {
        match &buf[at..] {
            [b'\n', ..] => at += 1,
            [b'\r', b'\n', ..] => at += 2,
            _ => return at,
        }
    }
}

/// The index just past the empty line that ends a head, searching from `from`.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(nl) = buf[at..].iter().position(|b| *b == b'\n') {
        let after = at + nl + 1;
        match &buf[after..] {
            [b'\n', ..] => return Some(after + 1),
            [b'\r', b'\n', ..] => return Some(after + 2),
            _ => at = after,
        }
    }
    None
}

#[cfg(test)]
mod drain_tests;
#[cfg(test)]
mod tests;
