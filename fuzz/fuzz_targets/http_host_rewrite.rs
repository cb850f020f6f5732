//! The `--http-host` rewriter (`netkit::forward::http::Session`), checked three ways on any
//! client byte stream, with the target's answers to CONNECT/Upgrade requests chosen by the
//! fuzzer (a tunnel, a refusal, or a plain 200):
//! - splitting the stream anywhere never changes what reaches the target, nor the verdict;
//! - soundness: what reaches the target (up to a tunnel) reads, under a strict RFC 9112
//!   parser written apart from the rewriter (`strict_http`), as complete valid requests, each
//!   with exactly one Host and an authority that are the new host's, followed at most by the
//!   start of one more;
//! - completeness: a stream the strict parser reads as valid requests (without CONNECT or
//!   Upgrade) is never refused, and reaches the target as the same requests (method, target
//!   path, version, fields but Host, body, trailers).
#![no_main]

mod strict_http;

use libfuzzer_sys::fuzz_target;
use netkit::forward::http::{Session, Switch};
use strict_http::{Message, Read};

const HOST: &str = "fuzz.example:8080";

fuzz_target!(|input: (u16, u8, &[u8])| {
    let (split, answer, bytes) = input;
    let whole = drive(&[bytes], answer);
    let at = usize::from(split) % (bytes.len() + 1);
    let (head, tail) = bytes.split_at(at);
    assert_eq!(drive(&[head, tail], answer), whole, "the split changed the outcome");
    check_sound(&whole);
    check_complete(bytes, &whole);
});

/// What a run sent to the target.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    out: Vec<u8>,
    /// Where the tunnel began in `out`, if one did.
    tunnel_at: Option<usize>,
    rejected: bool,
}

/// Feeds the pieces in order, answering whenever the session waits for responses.
fn drive(pieces: &[&[u8]], answer: u8) -> Run {
    let mut session = Session::new(HOST.to_string());
    let mut run = Run {
        out: Vec::new(),
        tunnel_at: None,
        rejected: false,
    };
    for piece in pieces {
        let fed = session.feed_request(piece, &mut run.out);
        if fed.and_then(|()| respond(&mut session, &mut run, answer)).is_err() {
            run.rejected = true;
            break;
        }
    }
    run
}

/// Answers every request in flight while the session holds client bytes; the last answer
/// (to a CONNECT or Upgrade) is the fuzzer's choice.
fn respond(session: &mut Session, run: &mut Run, answer: u8) -> Result<(), netkit::forward::http::Error> {
    while !session.wants_requests() {
        let pending = session.pending();
        let switch = session.awaiting();
        for i in 0..pending {
            let last = i + 1 == pending;
            let response: &[u8] = match (last, switch, answer % 3) {
                (true, Some(Switch::Upgrade), 0) => b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
                (true, Some(Switch::Connect), 0) => b"HTTP/1.1 200 Connection established\r\n\r\n",
                (true, Some(_), 1) => b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n",
                _ => b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            };
            session
                .feed_response(response, &mut Vec::new())
                .expect("well-formed responses are followed");
        }
        let before = run.out.len();
        session.resume_requests(&mut run.out)?;
        if session.requests_raw() && run.tunnel_at.is_none() {
            run.tunnel_at = Some(before);
        }
        if pending == 0 {
            break;
        }
    }
    if session.requests_raw() && run.tunnel_at.is_none() {
        run.tunnel_at = Some(run.out.len());
    }
    Ok(())
}

/// Every complete message of `bytes` under the strict reading, and whether they took all of
/// it (`Ok(true)`), stopped at an incomplete one (`Ok(false)`), or met an invalid one (`Err`
/// with the reason).
fn messages(bytes: &[u8], raw_target: bool) -> (Vec<Message>, Result<bool, &'static str>) {
    let mut found = Vec::new();
    let mut at = 0;
    loop {
        if at == bytes.len() {
            return (found, Ok(true));
        }
        match strict_http::read(&bytes[at..], raw_target) {
            Read::Complete(message, len) => {
                found.push(message);
                at += len;
            }
            Read::Incomplete => return (found, Ok(false)),
            Read::Invalid(why) => return (found, Err(why)),
        }
    }
}

/// What reached the target is valid, rewritten HTTP up to the tunnel (if any).
fn check_sound(run: &Run) {
    let http = &run.out[..run.tunnel_at.unwrap_or(run.out.len())];
    let (found, ending) = messages(http, true);
    let whole = ending.unwrap_or_else(|why| {
        panic!(
            "the target got invalid HTTP ({why}): {:?}",
            String::from_utf8_lossy(http)
        )
    });
    assert!(whole || run.tunnel_at.is_none(), "a tunnel began inside a request");
    for message in &found {
        assert_eq!(message.values("host"), [HOST.as_bytes()], "{message:?}");
        assert!(authority_rewritten(message), "{message:?}");
    }
}

/// The authority of an absolute-form or authority-form target is the new host.
fn authority_rewritten(message: &Message) -> bool {
    let target = message.target.as_slice();
    if message.method == b"CONNECT" {
        return target == HOST.as_bytes();
    }
    match target.windows(3).position(|w| w == b"://") {
        Some(at) if !target.starts_with(b"/") => {
            let rest = &target[at + 3..];
            let end = rest.iter().position(|b| b"/?#".contains(b)).unwrap_or(rest.len());
            &rest[..end] == HOST.as_bytes()
        }
        _ => true,
    }
}

/// Valid requests (no tunnel asked for) pass whole and unchanged but for Host and authority.
fn check_complete(bytes: &[u8], run: &Run) {
    let (sent, ending) = messages(bytes, false);
    let switches = sent
        .iter()
        .any(|m| m.method == b"CONNECT" || !m.values("upgrade").is_empty());
    if ending != Ok(true) || switches {
        return;
    }
    assert!(!run.rejected, "a valid stream was refused: {:?}", String::from_utf8_lossy(bytes));
    let (got, _) = messages(&run.out, true);
    assert_eq!(got.len(), sent.len(), "requests lost or invented");
    for (sent, got) in sent.iter().zip(&got) {
        assert_eq!(without_host(sent), without_host(got));
        assert_eq!(expected_target(sent), got.target);
    }
}

/// A message with its Host fields and target left out, and its Content-Length as the number
/// it says (the rewriter sends `005` on as `5`), for comparison.
fn without_host(message: &Message) -> Message {
    let mut copy = message.clone();
    copy.fields.retain(|(n, _)| !n.eq_ignore_ascii_case(b"host"));
    for (name, value) in &mut copy.fields {
        if name.eq_ignore_ascii_case(b"content-length") {
            let n: u64 = std::str::from_utf8(value).ok().and_then(|t| t.parse().ok()).unwrap_or(0);
            *value = n.to_string().into_bytes();
        }
    }
    copy.target.clear();
    copy
}

/// The target the rewriter must send for `message` (RFC 9112 §3.2.2: its authority replaced).
fn expected_target(message: &Message) -> Vec<u8> {
    let target = &message.target;
    if target.starts_with(b"/") || target == b"*" {
        return target.clone();
    }
    let at = target.windows(3).position(|w| w == b"://").unwrap_or(0);
    let rest = &target[at + 3..];
    let end = rest.iter().position(|b| b"/?#".contains(b)).unwrap_or(rest.len());
    let mut expected = target[..at + 3].to_vec();
    expected.extend_from_slice(HOST.as_bytes());
    // An empty path is `/`, before a query too (RFC 9112 §3.2.1); OPTIONS keeps it empty.
    match &rest[end..] {
        [] if message.method == b"OPTIONS" => {}
        [] => expected.push(b'/'),
        path => {
            if path.starts_with(b"?") {
                expected.push(b'/');
            }
            expected.extend_from_slice(path);
        }
    }
    expected
}
