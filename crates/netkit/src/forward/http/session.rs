//! [`Session`]: both directions of one HTTP/1.x connection, fed the client's and the target's
//! byte streams in whatever pieces they arrive in. The request side rewrites; the response
//! side follows; a queue of requests in flight pairs each response with its request.

use std::collections::VecDeque;

use super::body::{Body, Emit};
use super::close;
use super::request::{self, Request};
use super::response::{self, Verdict};
use super::{collect_head, Error, MAX_PENDING};

/// A request sent on whose final response has not been seen yet.
#[derive(Debug, Clone, Copy)]
struct Pending {
    request: Request,
    /// Its body was sent on whole.
    complete: bool,
}

impl Pending {
    /// It may switch protocols: CONNECT, or Upgrade.
    fn switches(&self) -> bool {
        self.request.connect || self.request.upgrade
    }
}

/// Where the request direction is.
#[derive(Debug)]
enum Up {
    /// Collecting a request head.
    Head,
    /// Passing a request body.
    Body(Body),
    /// Waiting for the response that decides whether a tunnel starts.
    Decide,
    /// Everything passes untouched.
    Tunnel,
}

/// Where the response direction is.
#[derive(Debug)]
enum Down {
    /// Collecting a response head.
    Head,
    /// Passing a response body.
    Body(Body),
    /// Everything passes untouched.
    Tunnel,
}

/// The kind of request whose response decides whether a tunnel starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// A CONNECT: a 2xx response starts a tunnel.
    Connect,
    /// A request with `Upgrade`: a 101 response starts a tunnel.
    Upgrade,
}

/// One connection's HTTP exchange, as the relay between client and target sees it.
///
/// The relay feeds client bytes to [`Session::feed_request`] and target bytes to
/// [`Session::feed_response`], sending on what each appends to its output. While
/// [`Session::wants_requests`] is false (a response must decide about a tunnel, or too many
/// requests are in flight) it stops reading the client, and calls
/// [`Session::resume_requests`] once a response came.
#[derive(Debug)]
pub struct Session {
    host: String,
    up: Up,
    up_buf: Vec<u8>,
    /// How much of an unfinished request head in `up_buf` was checked already.
    up_partial: request::Partial,
    /// Client bytes not processed yet (held while the request side waits).
    held: Vec<u8>,
    down: Down,
    down_buf: Vec<u8>,
    pending: VecDeque<Pending>,
    /// The answer to the request that may switch, once it came: whether it did.
    switched: Option<bool>,
    /// The forwarder drains: the response to the last request in flight is the last one.
    draining: bool,
    /// A response head went out marked `Connection: close`: nothing more is sent on.
    closing: bool,
}

impl Session {
    /// A session that sets every request's Host (and authority) to `host`.
    pub fn new(host: String) -> Session {
        Session {
            host,
            up: Up::Head,
            up_buf: Vec::new(),
            up_partial: request::Partial::default(),
            held: Vec::new(),
            down: Down::Head,
            down_buf: Vec::new(),
            pending: VecDeque::new(),
            switched: None,
            draining: false,
            closing: false,
        }
    }

    /// Consumes client bytes, appending what to send to the target to `out`. On an error,
    /// `out` holds the complete requests before the bad one (to be sent on), and the client
    /// is to be answered 400 once their responses are through.
    pub fn feed_request(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if self.closing {
            // The client was told the connection closes: what it sends is not served.
            return Ok(());
        }
        if !self.held.is_empty() || self.holding() {
            self.held.extend_from_slice(input);
            return Ok(());
        }
        self.requests(input, out)
    }

    /// Processes held client bytes once the session allows (after a response came).
    pub fn resume_requests(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.closing {
            self.held.clear();
        }
        if self.held.is_empty() || self.holding() {
            return Ok(());
        }
        let held = std::mem::take(&mut self.held);
        self.requests(&held, out)
    }

    /// Whether the relay may read more from the client now.
    pub fn wants_requests(&self) -> bool {
        self.held.is_empty() && !self.holding()
    }

    /// The request whose response the request side waits for, when it waits for one.
    pub fn awaiting(&self) -> Option<Switch> {
        if !matches!(self.up, Up::Decide) {
            return None;
        }
        let last = self.pending.back()?;
        Some(match last.request.connect {
            true => Switch::Connect,
            false => Switch::Upgrade,
        })
    }

    /// Whether client bytes are held, waiting for a response.
    pub fn holds_requests(&self) -> bool {
        !self.held.is_empty()
    }

    /// Whether the request direction is a tunnel with nothing held: the relay may copy it
    /// without looking.
    pub fn requests_raw(&self) -> bool {
        matches!(self.up, Up::Tunnel) && self.held.is_empty()
    }

    /// Whether the response direction needs no more reading: a tunnel, or a body that runs
    /// until the target closes.
    pub fn responses_raw(&self) -> bool {
        match &self.down {
            Down::Tunnel => true,
            Down::Body(body) => body.until_close(),
            Down::Head => false,
        }
    }

    /// Whether the response side is between responses (a response head that failed was
    /// not sent on, nor anything after it).
    pub fn responses_at_head(&self) -> bool {
        matches!(self.down, Down::Head)
    }

    /// How many of the target's next bytes are response body that passes untouched (the rest
    /// of a `Content-Length` body or of a chunk): the relay may move them with `splice(2)`
    /// and report them with [`Session::response_body_passed`].
    pub fn response_body_left(&self) -> u64 {
        match &self.down {
            Down::Body(body) => body.opaque_left(),
            _ => 0,
        }
    }

    /// `n` bytes of response body (at most [`Session::response_body_left`]) went to the client
    /// without being fed.
    pub fn response_body_passed(&mut self, n: u64) {
        if let Down::Body(body) = &mut self.down {
            body.advance(n);
            if body.done() {
                self.down = Down::Head;
            }
        }
    }

    /// Requests in flight: sent on (whole or in part), final response not seen.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Whether a response is still owed to the client: one is being passed on, or a request
    /// sent on whole has not been answered.
    pub fn responses_owed(&self) -> bool {
        !matches!(self.down, Down::Head)
            || !self.down_buf.is_empty()
            || self.pending.iter().any(|p| p.complete)
    }

    /// Whether the connection is between exchanges: no request begun or held, none in flight,
    /// no response begun. A connection may be closed then without cutting a message (what a
    /// server does to an idle keep-alive connection).
    pub fn idle(&self) -> bool {
        matches!(self.up, Up::Head)
            && self.up_buf.is_empty()
            && self.held.is_empty()
            && self.pending.is_empty()
            && matches!(self.down, Down::Head)
            && self.down_buf.is_empty()
    }

    /// The forwarder drains: the next final response head that answers the last request in
    /// flight goes out marked `Connection: close`, and the connection is through once that
    /// response is ([`Session::closed`]).
    pub fn drain(&mut self) {
        self.draining = true;
    }

    /// Whether a response marked `Connection: close` was passed on whole: the connection may
    /// end without cutting anything the client is owed.
    pub fn closed(&self) -> bool {
        self.closing && matches!(self.down, Down::Head) && self.down_buf.is_empty()
    }

    /// Consumes target bytes, appending what to send to the client to `out`.
    pub fn feed_response(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        self.responses(input, out).map_err(Error::in_response)
    }

    /// The target closed: no response will decide about a tunnel any more.
    pub fn responses_ended(&mut self) {
        if matches!(self.up, Up::Decide) {
            self.up = Up::Head;
        }
        self.pending.clear();
    }

    fn holding(&self) -> bool {
        match self.up {
            Up::Decide => true,
            Up::Head => self.pending.len() >= MAX_PENDING,
            Up::Body(_) | Up::Tunnel => false,
        }
    }

    fn requests(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        while !input.is_empty() {
            if self.holding() {
                self.held.extend_from_slice(input);
                return Ok(());
            }
            input = match &mut self.up {
                Up::Head => self.request_head(input, out)?,
                Up::Body(body) => {
                    let rest = body.feed(input, out)?;
                    if body.done() {
                        self.request_done();
                    }
                    rest
                }
                Up::Tunnel => {
                    out.extend_from_slice(input);
                    &[]
                }
                Up::Decide => input,
            };
        }
        Ok(())
    }

    fn request_head<'a>(&mut self, input: &'a [u8], out: &mut Vec<u8>) -> Result<&'a [u8], Error> {
        let Some(end) = collect_head(&mut self.up_buf, input, &mut Vec::new())? else {
            request::check_partial(&self.up_buf, &mut self.up_partial)?;
            return Ok(&[]);
        };
        self.up_partial = request::Partial::default();
        let rest = self.up_buf.len() - end;
        let mark = out.len();
        let request = request::rewrite(&self.up_buf[..end], &self.host, out).inspect_err(|_| {
            out.truncate(mark);
        })?;
        self.up_buf.clear();
        self.pending.push_back(Pending {
            request,
            complete: false,
        });
        let body = Body::new(request.framing, Emit::Normalized);
        if body.done() {
            self.request_done();
        } else {
            self.up = Up::Body(body);
        }
        Ok(&input[input.len() - rest..])
    }

    /// The current request was sent on whole.
    fn request_done(&mut self) {
        let current = self.pending.back_mut().filter(|p| !p.complete);
        let switches = match current {
            Some(pending) => {
                pending.complete = true;
                pending.switches()
            }
            // Answered before its body ended: the answer is in `switched`.
            None => self.switched.is_some(),
        };
        self.up = Up::Head;
        if switches {
            self.up = Up::Decide;
            self.decide();
        }
    }

    /// Acts on the answer to the request that may switch, once both it and the request's
    /// end are there.
    fn decide(&mut self) {
        if !matches!(self.up, Up::Decide) {
            return;
        }
        match self.switched.take() {
            Some(true) => self.up = Up::Tunnel,
            Some(false) => self.up = Up::Head,
            None => {}
        }
    }

    fn responses(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        while !input.is_empty() {
            input = match &mut self.down {
                Down::Head => self.response_head(input, out)?,
                Down::Body(body) => {
                    let rest = body.feed(input, out)?;
                    if body.done() {
                        self.down = Down::Head;
                    }
                    rest
                }
                Down::Tunnel => {
                    out.extend_from_slice(input);
                    &[]
                }
            };
        }
        Ok(())
    }

    fn response_head<'a>(&mut self, input: &'a [u8], out: &mut Vec<u8>) -> Result<&'a [u8], Error> {
        let Some(end) = collect_head(&mut self.down_buf, input, out)? else {
            return Ok(&[]);
        };
        let rest = self.down_buf.len() - end;
        let front = self.pending.front().map(|p| p.request);
        let verdict = response::read(&self.down_buf[..end], front.as_ref())?;
        if matches!(verdict, Verdict::Final(_)) && self.last_response() {
            close::mark(&self.down_buf[..end], out);
            self.closing = true;
            self.held.clear();
        } else {
            out.extend_from_slice(&self.down_buf[..end]);
        }
        self.down_buf.clear();
        match verdict {
            Verdict::Interim => {}
            Verdict::Tunnel => {
                self.answered(true);
                self.down = Down::Tunnel;
            }
            Verdict::Final(framing) => {
                self.answered(false);
                let body = Body::new(framing, Emit::Raw);
                if !body.done() {
                    self.down = Down::Body(body);
                }
            }
        }
        Ok(&input[input.len() - rest..])
    }

    /// Whether a final response head now is the connection's last: the forwarder drains, and
    /// no other request is in flight behind the one it answers.
    fn last_response(&self) -> bool {
        self.draining && !self.closing && self.pending.len() <= 1
    }

    /// The front request got its final response; `tunnel` when the protocol switched.
    fn answered(&mut self, tunnel: bool) {
        let Some(pending) = self.pending.pop_front() else {
            return;
        };
        if pending.switches() {
            self.switched = Some(tunnel);
            self.decide();
        }
    }
}

#[cfg(test)]
impl Session {
    /// The size of the request head being collected.
    pub(super) fn up_buf_len(&self) -> usize {
        self.up_buf.len()
    }
}
