//! The relay of `--http-host` connections: client bytes go through the [`Session`]'s request
//! side (rewritten), target bytes through its response side (followed, untouched). Long runs
//! of response body (`Content-Length` bodies, large chunks) move with `splice(2)` without
//! passing through user space, the session only told how many bytes went by. Once a
//! response starts a tunnel, or a response body runs until the target closes, the direction
//! concerned goes back to the plain relay.
//!
//! Once the forwarder drains (SIGINT/SIGTERM; not on a reload), a connection idle between two
//! exchanges ends at once (the target gets the FIN, the client its FIN once the target
//! closed), as HAProxy's soft stop and nginx's graceful quit close idle keep-alive
//! connections. Only one whose last response is still on its way to the client, or reached
//! it less than a few round trips ago ([`idle_grace`]), waits that out first, so that a client
//! answering its response at once with its next request gets that answered (marked, below)
//! instead of meeting the close. One busy then gets its last response marked `Connection:
//! close` (as from HAProxy and nginx: the client sends no next request to meet the close) and
//! ends once that response is through, without waiting out the drain timeout.
//!
//! A malformed request does not cut what the client is owed: the complete requests before it
//! are sent on, their responses are relayed to their end, and only then does the client get
//! `400 Bad Request` and the connection close. A response that cannot be followed ends the
//! connection, with `502 Bad Gateway` when it was a response head.
//!
//! Every close the forwarder decides while the client may still send (the drain's last
//! response, a connection idle when the drain began, the 400, 501 or 502 it answers itself,
//! a target that closed after its response) lingers, as HAProxy's and nginx's
//! `lingering_close`: the client's late bytes are read and dropped until the client has all it
//! was sent, then until it stays quiet a moment. Closing with its bytes unread (or getting
//! them once closed) makes the kernel answer with a reset and throw away what it had not sent
//! yet: over a slow link, the end of the last response.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::acks::{self, Until};
use super::flow::{both_ends, direction, Dir, Fault, Leg, Stats};
use super::http::{Error, Session};
use super::io::{self as relay_io, End, Head, COPY_BUF};
use super::splice::splice_some;
use crate::endpoint::Stream;
use crate::report::forward::Close;
use crate::server::Cancel;

/// Response body runs at least this long move with `splice(2)`.
const SPLICE_MIN: u64 = COPY_BUF as u64;

/// While draining, a connection idle between exchanges is closed once its last response
/// reached the client at least this long ago, plus four of its round trips: a client sending
/// its next request as soon as it has the response would have it arrive by then.
const IDLE_GRACE_MIN: Duration = Duration::from_millis(50);
/// The longest [`idle_grace`], however long the client's round trip.
const IDLE_GRACE_MAX: Duration = Duration::from_secs(1);
/// How long the 400 or 502 answer may take to be written.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// A lingering close ends once the client, which has all it was sent, sent nothing this long.
const LINGER_QUIET: Duration = Duration::from_secs(2);
/// The longest a lingering close lasts (nginx's `lingering_time`).
const LINGER_MAX: Duration = Duration::from_secs(30);
/// How often a lingering close asks whether the client has all it was sent.
const LINGER_POLL: Duration = Duration::from_millis(50);

const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const NOT_IMPLEMENTED: &[u8] =
    b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const BAD_GATEWAY: &[u8] =
    b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// The session and the wake-ups the two directions give each other.
struct Shared {
    session: Mutex<Session>,
    /// A response came: held requests may be released.
    to_requests: Notify,
    /// The request side refused a request.
    to_responses: Notify,
    rejected: AtomicBool,
    /// When the connection began.
    born: Instant,
    /// When response bytes last went to the client, in milliseconds after `born`.
    responded: AtomicU64,
}

impl Shared {
    /// Response bytes went to the client now.
    fn responding(&self) {
        let at = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.responded.store(at, Ordering::Relaxed);
    }

    /// How long ago response bytes last went to the client.
    fn since_response(&self) -> Duration {
        let at = Duration::from_millis(self.responded.load(Ordering::Relaxed));
        self.born.elapsed().saturating_sub(at)
    }

    fn session(&self) -> MutexGuard<'_, Session> {
        self.session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn rejected(&self) -> bool {
        self.rejected.load(Ordering::Relaxed)
    }
}

/// How the request direction ended.
enum UpEnd {
    /// The client finished, or the connection was idle while the server drained; the target
    /// got its FIN.
    Done,
    /// A request was refused.
    Rejected(Error),
}

/// Why the response direction stopped the whole connection.
enum Stop {
    Io(Fault),
    /// A response that cannot be followed; true when it was a head (nothing of it sent).
    BadResponse(Error, bool),
}

impl From<Fault> for Stop {
    fn from(fault: Fault) -> Stop {
        Stop::Io(fault)
    }
}

/// An I/O failure may be outlived by the other direction ([`both_ends`]): after the target's
/// reset met a request write, the responses it sent before are still read to their end; after
/// the client's reset met a response write, what the client sent before still goes on. A
/// response that cannot be followed ends both at once.
impl super::flow::Failure for Stop {
    fn fault(&self) -> Option<&Fault> {
        match self {
            Stop::Io(fault) => Some(fault),
            Stop::BadResponse(..) => None,
        }
    }
}

/// Relays one `--http-host` connection, rewriting every request's Host to `host`.
pub(super) async fn run(
    client: &Stream,
    upstream: &Stream,
    host: String,
    stats: &Stats,
    drain: Option<Cancel>,
) -> Result<(Close, Option<String>), Fault> {
    let shared = Shared {
        session: Mutex::new(Session::new(host)),
        to_requests: Notify::new(),
        to_responses: Notify::new(),
        rejected: AtomicBool::new(false),
        born: Instant::now(),
        responded: AtomicU64::new(0),
    };
    let down_drain = drain.clone();
    // Both sides pinned here and lent to `both_ends` (as the plain relay's directions), in a
    // block of their own: gone before the answer or the linger after them, whose state then
    // takes their room instead of its own beside them.
    let ended = {
        let up = std::pin::pin!(async {
            requests(client, upstream, &shared, stats, drain)
                .await
                .map_err(Stop::Io)
        });
        let down = std::pin::pin!(async {
            let ended = responses(upstream, client, &shared, stats, down_drain).await;
            if ended.is_err() {
                // No response comes any more: a request side run on to its end must not wait
                // for one (to release held requests, or to decide about a tunnel).
                shared.session().responses_ended();
                shared.to_requests.notify_one();
            }
            ended
        });
        both_ends(up, down, client, upstream, None).await
    };
    match ended {
        Ok((UpEnd::Done, ())) => {
            linger(client, stats).await;
            Ok((Close::Done, None))
        }
        Ok((UpEnd::Rejected(err), ())) => {
            let refusal = match err {
                Error::Unsupported(_) => NOT_IMPLEMENTED,
                _ => BAD_REQUEST,
            };
            answer(client, refusal, stats).await;
            Ok((Close::HttpRejected, Some(err.to_string())))
        }
        Err(Stop::Io(fault)) => Err(fault),
        Err(Stop::BadResponse(err, head)) => {
            if head {
                answer(client, BAD_GATEWAY, stats).await;
            }
            Ok((Close::Error, Some(err.to_string())))
        }
    }
}

/// Client to target, through the request side.
async fn requests(
    client: &Stream,
    upstream: &Stream,
    shared: &Shared,
    stats: &Stats,
    mut drain: Option<Cancel>,
) -> Result<UpEnd, Fault> {
    let mut out = Vec::new();
    loop {
        if let Err(err) = release(
            client,
            upstream,
            shared,
            stats,
            &mut out,
            Session::wants_requests,
        )
        .await?
        {
            return Ok(reject(shared, err));
        }
        if shared.session().requests_raw() {
            direction(client, upstream, Dir::Up, stats, Head::None).await?;
            return Ok(UpEnd::Done);
        }
        let fed = relay_io::read_with(client, |bytes| {
            out.clear();
            (!bytes.is_empty()).then(|| shared.session().feed_request(bytes, &mut out))
        });
        let fed = tokio::select! {
            fed = fed => fed,
            () = idle_while_draining(client, shared, drain.as_mut()) => {
                // Idle: the target owes the client nothing, so its end of file is not waited
                // for (a target that keeps its side open after the FIN held the client until
                // the drain timeout; HAProxy's soft stop and nginx's graceful quit close such
                // a client at once).
                upstream.shutdown_both().map_err(Fault::on(Leg::Target))?;
                return Ok(UpEnd::Done);
            }
        };
        let Some(result) = fed.map_err(Fault::on(Leg::Client))? else {
            return finish_requests(client, upstream, shared, stats, &mut out).await;
        };
        send(client, upstream, &out, Dir::Up, stats).await?;
        if let Err(err) = result {
            return Ok(reject(shared, err));
        }
    }
}

/// Completes once the server drains (never without `drain`) while the connection is idle
/// between exchanges ([`Session::idle`]) with nothing more from the client to read, its last
/// response acknowledged by the client [`idle_grace`] ago or longer, or once the response
/// marked `Connection: close` went through ([`Session::closed`]): after a response, when the
/// server began to drain during the exchange.
async fn idle_while_draining(client: &Stream, shared: &Shared, drain: Option<&mut Cancel>) {
    let Some(drain) = drain else {
        return std::future::pending().await;
    };
    drain.draining().await;
    // Boxed: an idle connection waits for the drain alone, without room for what follows.
    Box::pin(idle_after_drain(client, shared)).await;
}

/// [`idle_while_draining`] once the server drains.
async fn idle_after_drain(client: &Stream, shared: &Shared) {
    shared.session().drain();
    // When the client was seen to have every byte of its last response, if that was after
    // the drain began.
    let mut delivered: Option<Instant> = None;
    loop {
        let notified = shared.to_requests.notified();
        let (closed, idle) = {
            let session = shared.session();
            (session.closed(), session.idle())
        };
        if closed {
            return;
        }
        if idle && !client.readable_now().unwrap_or(true) {
            if client.unacked().unwrap_or(0) > 0 {
                // The last response is still on its way: the client answers it once it has it.
                tokio::select! {
                    () = acks::watch(client, Until::Delivered, LINGER_POLL) => {
                        delivered = Some(Instant::now());
                    }
                    () = notified => {}
                }
                continue;
            }
            let since = shared.since_response();
            let since = delivered.map_or(since, |at| since.min(at.elapsed()));
            let left = idle_grace(client).saturating_sub(since);
            if left.is_zero() {
                return;
            }
            // A client that has just read its last response may be sending the next request.
            tokio::select! {
                () = tokio::time::sleep(left) => {}
                () = notified => {}
            }
            continue;
        }
        notified.await;
    }
}

/// How long after its last response reached the client an idle connection is still left open
/// while draining: [`IDLE_GRACE_MIN`] and four of the client's round trips, at most
/// [`IDLE_GRACE_MAX`].
fn idle_grace(client: &Stream) -> Duration {
    let rtt = client.rtt().unwrap_or_default();
    (IDLE_GRACE_MIN + rtt * 4).min(IDLE_GRACE_MAX)
}

/// Completes once the server drains (never without `drain`).
async fn draining(drain: Option<&mut Cancel>) {
    match drain {
        Some(drain) => drain.draining().await,
        None => std::future::pending().await,
    }
}

/// The client sent its FIN: send on what is still held (once a response releases it), then
/// the FIN.
async fn finish_requests(
    client: &Stream,
    upstream: &Stream,
    shared: &Shared,
    stats: &Stats,
    out: &mut Vec<u8>,
) -> Result<UpEnd, Fault> {
    let released = |s: &Session| !s.holds_requests();
    if let Err(err) = release(client, upstream, shared, stats, out, released).await? {
        return Ok(reject(shared, err));
    }
    upstream.shutdown_write().map_err(Fault::on(Leg::Target))?;
    Ok(UpEnd::Done)
}

/// Sends what the session releases of held client bytes, waiting for responses until `ready`
/// says the session is where the caller needs it. The client is not read meanwhile: a client
/// gone abortively then ([`Stream::aborted`]) ends the wait, or a target that never answers
/// would keep the connection for good (directly it gets the reset at once); what it held is
/// thrown away, as nothing can be sent before a response says what it is.
async fn release(
    client: &Stream,
    upstream: &Stream,
    shared: &Shared,
    stats: &Stats,
    out: &mut Vec<u8>,
    ready: fn(&Session) -> bool,
) -> Result<Result<(), Error>, Fault> {
    loop {
        out.clear();
        let (result, ready) = {
            let mut session = shared.session();
            let result = session.resume_requests(out);
            (result, ready(&session))
        };
        send(client, upstream, out, Dir::Up, stats).await?;
        if result.is_err() || ready {
            return Ok(result);
        }
        // Boxed: requests are seldom held, and the relay keeps no room for this wait.
        Box::pin(held(client, shared)).await?;
    }
}

/// Waits while requests are held for a response ([`release`]), or until the client is gone
/// abortively.
async fn held(client: &Stream, shared: &Shared) -> Result<(), Fault> {
    tokio::select! {
        () = shared.to_requests.notified() => Ok(()),
        () = client.aborted() => Err(Fault::new(Leg::Client, client.take_failure())),
    }
}

fn reject(shared: &Shared, err: Error) -> UpEnd {
    tracing::debug!("request refused: {err}");
    shared.rejected.store(true, Ordering::Relaxed);
    shared.to_responses.notify_one();
    UpEnd::Rejected(err)
}

/// Target to client, through the response side; after a refused request, until the responses
/// owed to the client are through.
async fn responses(
    upstream: &Stream,
    client: &Stream,
    shared: &Shared,
    stats: &Stats,
    mut drain: Option<Cancel>,
) -> Result<(), Stop> {
    let mut out = Vec::new();
    loop {
        if shared.rejected() && !shared.session().responses_owed() {
            return Ok(());
        }
        if shared.session().responses_raw() && !shared.rejected() {
            direction(upstream, client, Dir::Down, stats, Head::None).await?;
            // The target closed (after a body that ran until then, or a tunnel): a request
            // waiting for a response that may start a tunnel waits no more.
            shared.session().responses_ended();
            shared.to_requests.notify_one();
            return Ok(());
        }
        match splice_body(upstream, client, shared, stats).await? {
            Some(0) => return responses_ended(client, shared),
            Some(_) => continue,
            None => {}
        }
        let fed = relay_io::read_with(upstream, |bytes| {
            out.clear();
            (!bytes.is_empty()).then(|| {
                let mut session = shared.session();
                let result = session.feed_response(bytes, &mut out);
                (result, session.responses_at_head())
            })
        });
        let fed = tokio::select! {
            biased;
            // The next response head is then marked `Connection: close` if it is the last.
            () = draining(drain.as_mut()) => {
                shared.session().drain();
                tracing::debug!("draining: the last response goes out marked Connection: close");
                drain = None;
                continue;
            }
            () = shared.to_responses.notified() => continue,
            fed = fed => fed.map_err(Fault::on(Leg::Target))?,
        };
        let Some((result, head)) = fed else {
            return responses_ended(client, shared);
        };
        shared.to_requests.notify_one();
        send(upstream, client, &out, Dir::Down, stats).await?;
        shared.responding();
        result.map_err(|err| Stop::BadResponse(err, head))?;
    }
}

/// Moves a long run of response body with `splice(2)`: `None` when there is none (or no pipe
/// to be had), else the bytes moved (0: the target closed).
async fn splice_body(
    upstream: &Stream,
    client: &Stream,
    shared: &Shared,
    stats: &Stats,
) -> Result<Option<usize>, Fault> {
    let left = shared.session().response_body_left();
    if left < SPLICE_MIN {
        return Ok(None);
    }
    let limit = usize::try_from(left).unwrap_or(usize::MAX);
    // Boxed (once per run of body): the response side idle between responses keeps no room
    // for a splice.
    let moved = Box::pin(splice_some(upstream, client, limit, &|n| {
        stats.moved(Dir::Down, n)
    }))
    .await
    .map_err(|failed| Fault::of(Dir::Down, failed))?;
    let Some(moved) = moved else {
        return Ok(None);
    };
    shared.session().response_body_passed(moved as u64);
    shared.responding();
    // A response that ended here may leave the connection idle (`idle_while_draining`).
    shared.to_requests.notify_one();
    stats.spliced(Dir::Down);
    Ok(Some(moved))
}

/// The target closed: the client gets its FIN (unless a 400 is still to come), and held
/// requests are released (no response will start a tunnel any more).
fn responses_ended(client: &Stream, shared: &Shared) -> Result<(), Stop> {
    shared.session().responses_ended();
    shared.to_requests.notify_one();
    if !shared.rejected() {
        client.shutdown_write().map_err(Fault::on(Leg::Client))?;
    }
    Ok(())
}

/// Writes `bytes`, read from `src`, to `dst`.
async fn send(
    src: &Stream,
    dst: &Stream,
    bytes: &[u8],
    dir: Dir,
    stats: &Stats,
) -> Result<(), Fault> {
    if bytes.is_empty() {
        return Ok(());
    }
    let progress = |n| stats.moved(dir, n);
    // What `dst` takes at once goes without a wait; the rest (rarely any) waits boxed, so the
    // relay between two exchanges keeps no room for a blocked write.
    let taken = match dst.try_write(bytes) {
        Ok(0) => 0,
        Ok(n) => {
            progress(n);
            n
        }
        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => 0,
        Err(err) => return Err(Fault::of(dir, (End::Dst, err))),
    };
    let rest = &bytes[taken..];
    if rest.is_empty() {
        return Ok(());
    }
    Box::pin(relay_io::write_all_counted(dst, rest, &progress, Some(src)))
        .await
        .map_err(|failed| Fault::of(dir, failed))
}

/// Writes a final answer to the client, then closes lingering ([`linger`]).
async fn answer(client: &Stream, reply: &[u8], stats: &Stats) {
    stats.closing();
    let _ = tokio::time::timeout(ANSWER_TIMEOUT, relay_io::write_all(client, reply)).await;
    linger(client, stats).await;
}

/// Half-closes the client and reads and drops what it still sends (for [`LINGER_MAX`] at
/// most), so that closing does not reset the connection under what it has not received yet.
/// The idle timeout does not cut it ([`Stats::closing`]): the close is decided, and the
/// connection is recorded as it was decided (nginx's `lingering_time` and
/// `lingering_timeout` are apart from its keep-alive and proxy timeouts too).
async fn linger(client: &Stream, stats: &Stats) {
    stats.closing();
    let _ = client.shutdown_write();
    let _ = tokio::time::timeout(LINGER_MAX, drop_until_quiet(client)).await;
}

/// Reads and drops the client's bytes until its end of file (or an error), or until it has
/// every byte it was sent: then at once if it sent nothing meanwhile, else once it stays quiet
/// for [`LINGER_QUIET`] (a client still sending may send more, nginx's `lingering_timeout`).
async fn drop_until_quiet(client: &Stream) {
    let mut sent = false;
    loop {
        tokio::select! {
            biased;
            read = relay_io::read_with(client, <[u8]>::len) => match read {
                Ok(1..) => sent = true,
                _ => return,
            },
            () = acks::watch(client, Until::Delivered, LINGER_POLL) => {
                if !sent {
                    return;
                }
                let quiet = relay_io::read_with(client, <[u8]>::len);
                match tokio::time::timeout(LINGER_QUIET, quiet).await {
                    Ok(Ok(1..)) => {}
                    _ => return,
                }
            }
        }
    }
}
