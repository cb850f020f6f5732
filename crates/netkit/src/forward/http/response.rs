//! One response head, read only as far as the relay needs (RFC 9112 §6.3): its status decides
//! whether the connection becomes a tunnel, and its framing where the next response starts.
//! Responses pass on byte for byte; a head `httparse` cannot read, or framing that cannot be
//! trusted, ends the connection (as HAProxy answers 502).
//!
//! The rules, given the request it answers:
//! - 1xx other than 101: an interim response; the final one follows.
//! - 101 to a request with `Upgrade`, 2xx to CONNECT: a tunnel from the empty line on.
//!   101 to a request without `Upgrade` is refused. A 2xx to CONNECT with `Content-Length` or
//!   `Transfer-Encoding` is a server answering CONNECT as any request, not a tunnel (HAProxy
//!   opens one there, and the next request reaches the target unrewritten).
//! - Answers to HEAD, 204 and 304: no body whatever the fields say.
//! - `Transfer-Encoding` ending in `chunked`: chunked (it overrides `Content-Length`); any
//!   other coding: the body runs until the target closes.
//! - `Content-Length` (equal values): that many bytes; otherwise until the target closes.

use super::body::Framing;
use super::fields;
use super::request::Request;
use super::{Error, MAX_FIELDS};

/// What a response head means for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// An interim response (1xx but 101): the same request gets another response.
    Interim,
    /// The final response; its body is framed so.
    Final(Framing),
    /// The protocol switches: everything after the head, both ways, is a tunnel.
    Tunnel,
}

/// Reads a complete response head answering `request` (`None`: a response nobody asked for,
/// which cannot start a tunnel).
pub(super) fn read(head: &[u8], request: Option<&Request>) -> Result<Verdict, Error> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut response = httparse::Response::new(&mut slots);
    let code = match response.parse(head) {
        Ok(httparse::Status::Complete(len)) if len == head.len() => response.code.unwrap_or(0),
        _ => return Err(Error::Response("malformed response head")),
    };
    let http10 = response.version == Some(0);
    let upgrade = request.is_some_and(|r| r.upgrade);
    let connect = request.is_some_and(|r| r.connect);
    match code {
        101 if upgrade => Ok(Verdict::Tunnel),
        101 => Err(Error::Response("101 to a request without Upgrade")),
        100..=199 => Ok(Verdict::Interim),
        200..=299 if connect && !frames_a_body(response.headers) => Ok(Verdict::Tunnel),
        204 | 304 => Ok(Verdict::Final(Framing::Length(0))),
        _ if request.is_some_and(|r| r.head) => Ok(Verdict::Final(Framing::Length(0))),
        _ => framing(response.headers, http10).map(Verdict::Final),
    }
}

/// Whether the fields frame a body (`Content-Length` or `Transfer-Encoding`): a 2xx to
/// CONNECT that does answers it as any request (RFC 9110 §9.3.6 forbids them on a tunnel's
/// answer), and starts no tunnel, so that the requests after it are still read and rewritten.
fn frames_a_body(headers: &[httparse::Header<'_>]) -> bool {
    let framing = ["content-length", "transfer-encoding"];
    headers
        .iter()
        .any(|h| framing.iter().any(|f| h.name.eq_ignore_ascii_case(f)))
}

/// The body framing the fields of a response give.
fn framing(headers: &[httparse::Header<'_>], http10: bool) -> Result<Framing, Error> {
    let named = |name: &'static str| {
        headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .flat_map(|h| fields::list(h.value))
    };
    if let Some(last) = named("transfer-encoding").last() {
        let chunked = last.eq_ignore_ascii_case(b"chunked") && !http10;
        return Ok(if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        });
    }
    let mut length = None;
    for element in named("content-length") {
        let n = std::str::from_utf8(element)
            .ok()
            .filter(|t| !t.is_empty() && t.len() <= 19 && t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse::<u64>().ok())
            .ok_or(Error::Response("invalid Content-Length"))?;
        if length.is_some_and(|old| old != n) {
            return Err(Error::Response("Content-Length values differ"));
        }
        length = Some(n);
    }
    Ok(length.map_or(Framing::UntilClose, Framing::Length))
}
