//! The HTTP part of a readiness attempt, once connected (every address of the name, as for
//! TCP targets): TLS for `https://`, one `GET` over HTTP/1.1 with `Connection: close`, then the status against
//! `--status` and, if asked, the body searched for `--body` as it streams in. Redirects are
//! not followed: a 3xx is an answer like any other.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, CONNECTION, HOST, USER_AGENT};
use hyper::rt::{Read, Write};
use hyper::Response;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;

use super::backoff::LONGEST_ANSWER;
use super::finding::Finding;
use super::stage::{Stage, Track};
use super::status::StatusSet;
use super::target::HttpTarget;

/// How long the server has to answer once connected (TLS handshake, head and, with `--body`,
/// body) at first; an answer that timed out gets longer the next time
/// ([`super::backoff::Bounds`]). Also the bound of a name lookup and of a file check.
pub const ANSWER_BOUND: Duration = Duration::from_secs(10);

/// What an HTTP target must answer to be ready.
#[derive(Debug, Clone, Default)]
pub struct HttpCheck {
    /// Accepted status codes (default 200-399).
    pub status: StatusSet,
    /// Text the body must contain, if any.
    pub body: Option<String>,
    /// The TLS client configuration, required for `https://` targets.
    pub tls: Option<Arc<ClientConfig>>,
}

/// The rest of an attempt once connected: TLS, the request and the judgement of its answer,
/// within `answer_bound`, and all within `left` (the time before the wait's deadline, if there
/// is one); each step is marked on `track`, and an answer cut by the bound finds where it was
/// cut ([`Finding::HandshakeUnfinished`], [`Finding::NoResponse`],
/// [`Finding::BodyUnfinished`]). A `--body` still arriving when the bound passes is read on
/// while its data keeps coming (no gap of `answer_bound`), up to `left` and
/// [`LONGEST_ANSWER`], as curl reads a slow body to its end: over a slow link the text may
/// come only after the bound.
pub(super) async fn answer(
    stream: crate::endpoint::Stream,
    target: &HttpTarget,
    check: &HttpCheck,
    answer_bound: Duration,
    left: Option<Duration>,
    track: &Track,
) -> Finding {
    let progress = Progress::default();
    let answer = async {
        if !target.tls {
            let io = RequestFirst::new(TokioIo::new(stream));
            return exchange(io, target, check, track, &progress).await;
        }
        track.set(Stage::Connected(Finding::HandshakeUnfinished));
        match handshake(stream, target, check).await {
            Ok(tls) => {
                let io = RequestFirst::new(TokioIo::new(tls));
                exchange(io, target, check, track, &progress).await
            }
            Err(finding) => finding,
        }
    };
    tokio::pin!(answer);
    let start = Instant::now();
    let longest = start + LONGEST_ANSWER.max(answer_bound);
    let end = left.map_or(longest, |left| longest.min(start + left));
    let within = |at: Instant| at.min(end);
    let mut cut = within(start + answer_bound);
    loop {
        if let Ok(finding) = tokio::time::timeout_at(cut, &mut answer).await {
            return finding;
        }
        match progress.last().map(|at| within(at + answer_bound)) {
            Some(later) if later > cut => cut = later,
            _ => break,
        }
    }
    match track.get() {
        Stage::Connected(cut) => cut,
        _ => Finding::NoResponse,
    }
}

/// The connection as hyper sees it, but that nothing is read from it before the request has
/// gone out. hyper's client, polled before it has taken the request, reads the idle connection
/// for its close, and takes any byte there for an answer to no request ("unexpected message"):
/// so a server that answers at once without reading the request (a `printf ... | nc -l`
/// health check, an answer sent as soon as the connection is accepted) failed about every
/// other attempt, as "operation was canceled", which `--invert` took for the server gone.
/// curl writes its request and then reads, and gets the answer.
#[derive(Debug)]
struct RequestFirst<T> {
    io: T,
    /// Bytes of the request have been written.
    sent: bool,
    /// The read held back until then.
    reader: Option<Waker>,
}

impl<T> RequestFirst<T> {
    fn new(io: T) -> Self {
        RequestFirst {
            io,
            sent: false,
            reader: None,
        }
    }

    /// Marks the request sent once a write took bytes, and wakes the read held back.
    fn wrote(&mut self, written: &Poll<std::io::Result<usize>>) {
        if matches!(written, Poll::Ready(Ok(n)) if *n > 0) {
            self.sent = true;
            if let Some(reader) = self.reader.take() {
                reader.wake();
            }
        }
    }
}

impl<T: Read + Unpin> Read for RequestFirst<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if !this.sent {
            this.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for RequestFirst<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write(cx, buf);
        this.wrote(&written);
        written
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.wrote(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// When the body's data last came (none yet: `None`).
#[derive(Debug, Default)]
struct Progress(Mutex<Option<Instant>>);

impl Progress {
    fn mark(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    }

    fn last(&self) -> Option<Instant> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn handshake(
    stream: crate::endpoint::Stream,
    target: &HttpTarget,
    check: &HttpCheck,
) -> Result<tokio_rustls::client::TlsStream<crate::endpoint::Stream>, Finding> {
    let config = check
        .tls
        .clone()
        .ok_or_else(|| Finding::Tls("no TLS configuration".into()))?;
    let name = super::tls::server_name(&target.endpoint)
        .ok_or_else(|| Finding::Tls("the host is not a valid TLS server name".into()))?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(|err| tls_failure(&err))
}

/// A failed handshake: [`Finding::Untrusted`] when the certificate was not trusted (the
/// server is there), [`Finding::Tls`] otherwise.
fn tls_failure(err: &std::io::Error) -> Finding {
    let untrusted = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
        .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_)));
    match untrusted {
        true => Finding::Untrusted(describe_tls_io(err)),
        false => Finding::Tls(describe_tls_io(err)),
    }
}

fn describe_tls_io(err: &std::io::Error) -> String {
    match err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(tls) => super::tls::describe(tls),
        None if err.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the server closed the connection during the handshake".into()
        }
        None => format!("handshake failed: {}", crate::error::describe_io(err)),
    }
}

/// Sends the request on `io` and judges the answer (its steps on `track`, the body's data on
/// `progress`).
async fn exchange<T>(
    io: T,
    target: &HttpTarget,
    check: &HttpCheck,
    track: &Track,
    progress: &Progress,
) -> Finding
where
    T: Read + Write + Unpin + Send + 'static,
{
    track.set(Stage::Connected(Finding::NoResponse));
    let (mut sender, conn) = match lenient().handshake(io).await {
        Ok(pair) => pair,
        Err(err) => return http_failure(&err),
    };
    let request = match request(target) {
        Ok(request) => request,
        Err(err) => return Finding::Http(err.to_string()),
    };
    let answer = async {
        match sender.send_request(request).await {
            Ok(response) => judge(response, check, track, progress).await,
            Err(err) => http_failure(&err),
        }
    };
    tokio::pin!(conn, answer);
    tokio::select! {
        biased;
        finding = &mut answer => finding,
        Err(err) = &mut conn => http_failure(&err),
    }
}

/// The most header lines an answer may have (hyper's default is 100; curl counts none, it
/// bounds only the size, 300 KB, as hyper's buffer does, 400 KB).
const MAX_HEADERS: usize = 4096;

/// An HTTP/1 client that reads the answers curl reads: wait judges the status and the body,
/// so a header hyper would refuse (folded over lines, a space before its colon, a control
/// byte in its value, one line of many more than a hundred) does not make a server that
/// answers 200 look down. (RFC 9112 has a user agent unfold an obs-fold, not refuse it.)
fn lenient() -> hyper::client::conn::http1::Builder {
    let mut builder = hyper::client::conn::http1::Builder::new();
    builder
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_spaces_after_header_name_in_responses(true)
        .ignore_invalid_headers_in_responses(true)
        .max_headers(MAX_HEADERS);
    builder
}

fn request(target: &HttpTarget) -> Result<hyper::Request<Empty<Bytes>>, hyper::http::Error> {
    hyper::Request::get(target.path.as_str())
        .header(HOST, target.authority.as_str())
        .header(USER_AGENT, concat!("netkit/", env!("CARGO_PKG_VERSION")))
        .header(ACCEPT, "*/*")
        .header(CONNECTION, "close")
        .body(Empty::new())
}

/// The status against `--status`, then the body searched for `--body` as it comes (marked on
/// `track`: a cut there finds [`Finding::BodyUnfinished`]; each piece of data marked on
/// `progress`).
async fn judge(
    response: Response<Incoming>,
    check: &HttpCheck,
    track: &Track,
    progress: &Progress,
) -> Finding {
    let status = response.status().as_u16();
    if !check.status.contains(status) {
        return Finding::Status(status);
    }
    let Some(text) = &check.body else {
        return Finding::Answers(status);
    };
    // Empty text is in every body, an empty one too (which has no data to feed).
    if text.is_empty() {
        return Finding::Answers(status);
    }
    track.set(Stage::Connected(Finding::BodyUnfinished {
        status,
        text: text.clone(),
    }));
    let mut search = BodySearch::new(text.as_bytes());
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(err) => return http_failure(&err),
        };
        let Some(data) = frame.data_ref() else {
            continue;
        };
        if search.feed(data) {
            return Finding::Answers(status);
        }
        progress.mark();
    }
    Finding::BodyLacks {
        status,
        text: text.clone(),
    }
}

fn http_failure(err: &hyper::Error) -> Finding {
    if err.is_incomplete_message() {
        return Finding::Http("the connection closed before a complete answer".into());
    }
    if err.is_parse() {
        return Finding::Http(format!("not an HTTP answer ({err})"));
    }
    let io = std::error::Error::source(err).and_then(|e| e.downcast_ref::<std::io::Error>());
    match io {
        Some(io) => Finding::Http(crate::error::describe_io(io)),
        None => Finding::Http(err.to_string()),
    }
}

/// Looks for a byte string in a body that arrives in pieces, keeping only the tail that could
/// start a match across two pieces.
#[derive(Debug)]
struct BodySearch<'a> {
    needle: &'a [u8],
    carry: Vec<u8>,
}

impl<'a> BodySearch<'a> {
    fn new(needle: &'a [u8]) -> Self {
        BodySearch {
            needle,
            carry: Vec::new(),
        }
    }

    /// Adds the next piece; true once the text has been seen.
    fn feed(&mut self, piece: &[u8]) -> bool {
        if self.needle.is_empty() {
            return true;
        }
        self.carry.extend_from_slice(piece);
        if self
            .carry
            .windows(self.needle.len())
            .any(|w| w == self.needle)
        {
            return true;
        }
        let keep = self.carry.len().min(self.needle.len() - 1);
        self.carry.drain(..self.carry.len() - keep);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_text_is_found_across_every_split() {
        let body = b"status: all systems ready\n";
        for split in 0..body.len() {
            for split2 in split..body.len() {
                let mut search = BodySearch::new(b"ready");
                let found = [&body[..split], &body[split..split2], &body[split2..]]
                    .iter()
                    .any(|piece| search.feed(piece));
                assert!(found, "split at {split}/{split2}");
            }
        }
        let mut search = BodySearch::new(b"ready");
        assert!(!search.feed(b"not rea"));
        assert!(search.feed(b"dy?"));
        let mut search = BodySearch::new(b"ready");
        assert!(!search.feed(b"rea"));
        assert!(!search.feed(b"Dy"));
        assert!(search.carry.len() < 5);
    }
}
