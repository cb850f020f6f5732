//! One UDP session: the socket connected to the target for one client address, its counters,
//! and the task that pumps the target's replies back to the client through the listening
//! socket. The session loop owns the [`Session`] (and the client-to-target direction); the
//! pump owns the other direction and shares its counters through [`Replies`].
//!
//! Errors that ICMP brings back on the connected socket (port or host unreachable, a too-big
//! datagram) are consumed by the next send or receive: they are counted and the session goes
//! on, so a target that restarts is reached again without the client noticing more than the
//! lost datagrams. With several targets the session loop moves a refused session to the next
//! one ([`Session::retarget`]: the same socket connected elsewhere).

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Counters, Shared, MAX_DATAGRAM};
use crate::error::describe_io;
use crate::report::forward::{Close, SessionRecord};
use crate::sys::pktinfo::{self, Arrival};

/// What the listening socket asks of the kernel for its receive queue (capped by
/// `net.core.rmem_max`): bursts of many clients wait there, not in drops.
const LISTEN_RCVBUF: usize = 4 << 20;

/// Replies pumped per wake-up before the pump lets other tasks run.
const PUMP_BUDGET: usize = 64;

thread_local! {
    /// The pumps' receive buffer: one per worker thread, not one per session.
    static REPLY: RefCell<Vec<u8>> = RefCell::new(vec![0; MAX_DATAGRAM]);
}

fn micros_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// A client address as records show it: an IPv4 client of a `[::]` listener in IPv4 form, a
/// link-local one with the name of its interface (as endpoints are shown).
pub(super) fn shown(addr: SocketAddr) -> String {
    crate::endpoint::Endpoint::tcp(crate::endpoint::plain_peer(addr)).to_string()
}

/// The listening socket of a rule, bound to `addr` (dual-stack on `[::]`, as TCP's).
pub(super) fn listen_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    crate::endpoint::refuse_unzoned_link_local(addr)?;
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    // Best effort: the kernel caps it at net.core.rmem_max.
    let _ = socket.set_recv_buffer_size(LISTEN_RCVBUF);
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// A socket connected to `target` (the kernel picks its local address and port).
fn session_socket(target: SocketAddr) -> io::Result<UdpSocket> {
    crate::endpoint::refuse_unzoned_link_local(target)?;
    let socket = Socket::new(
        Domain::for_address(target),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    socket.set_nonblocking(true)?;
    socket.connect(&target.into())?;
    UdpSocket::from_std(socket.into())
}

/// Whether `err` is an ICMP error about an earlier datagram that the kernel reports at the
/// socket's next call (`IP_RECVERR` off): unreachable, prohibited (`EACCES` on IPv6), too big,
/// a parameter problem. Port unreachable (`ECONNREFUSED`) is the caller's own case.
fn icmp_reported(err: &io::Error) -> bool {
    use nix::libc::{EACCES, EHOSTDOWN, EHOSTUNREACH, EMSGSIZE, ENETDOWN, ENETUNREACH, EPROTO};
    matches!(
        err.raw_os_error(),
        Some(EHOSTUNREACH | ENETUNREACH | EHOSTDOWN | ENETDOWN | EMSGSIZE | EPROTO | EACCES)
    )
}

/// The target-to-client half of a session, counted by its pump.
#[derive(Debug, Default)]
pub(super) struct Replies {
    datagrams: AtomicU64,
    bytes: AtomicU64,
    dropped: AtomicU64,
    refused: AtomicU64,
    /// When the last reply came, in microseconds since the session opened.
    last_us: AtomicU64,
    error: Mutex<Option<String>>,
}

impl Replies {
    fn note_error(&self, err: &io::Error) {
        let text = describe_io(err);
        if let Ok(mut slot) = self.error.lock() {
            *slot = Some(text);
        }
    }

    fn refused(&self, counters: &Counters) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        Counters::bump(&counters.refused);
    }
}

/// A target's refusal reported instead of a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Refused;

/// Whose a session is: the client's address and, on a wildcard listener, the local address its
/// datagrams arrive at. A client that sends to two addresses of the host from one socket has a
/// session for each, each answered from the address it sent to, as a server bound to each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Peer {
    /// The client's address.
    pub client: SocketAddr,
    /// Where its datagrams arrive (wildcard listeners only).
    pub local: Option<IpAddr>,
}

/// Which session a pump belongs to: its peer and a number no other session of the rule had,
/// so that a late message about an ended session never closes its successor.
pub(super) type SessionId = (Peer, u64);

/// What a pump tells the session loop.
#[derive(Debug)]
pub(super) enum FromPump {
    /// The target refused (ICMP port unreachable) while the loop was not looking: after the
    /// session's last datagram, which may be its client's only one. The loop takes the
    /// refusals ([`Session::take_refusals`]) as a send meeting one would.
    Refused(SessionId),
    /// The pump stopped on an error the session cannot go on after.
    Ended(SessionId, io::Error),
}

/// One client's session.
#[derive(Debug)]
pub(super) struct Session {
    id: SessionId,
    socket: Arc<UdpSocket>,
    replies: Arc<Replies>,
    pump: JoinHandle<()>,
    /// The PROXY v2 header put before every datagram, when asked for.
    header: Option<Vec<u8>>,
    target: SocketAddr,
    /// Which of the rule's targets it is.
    index: usize,
    /// When it was given that target.
    assigned: std::time::Instant,
    /// The refusals already looked at ([`Session::take_refusal`]).
    refusals_seen: u64,
    via: String,
    started: Instant,
    /// When the last client datagram came, in microseconds since the session opened.
    last_up_us: u64,
    datagrams_up: u64,
    bytes_up: u64,
    dropped: u64,
    error: Option<String>,
}

impl Session {
    /// Opens a session for `id`'s client toward `target` and starts its pump, which answers
    /// from `arrival` when given (where the client's first datagram arrived, on a wildcard
    /// listener); `ended` hears from the pump when it stops on its own or counts a refusal.
    pub(super) fn open(
        id: SessionId,
        (index, target): (usize, SocketAddr),
        header: Option<Vec<u8>>,
        arrival: Option<Arrival>,
        shared: &Shared,
        ended: mpsc::UnboundedSender<FromPump>,
    ) -> io::Result<Session> {
        let socket = Arc::new(session_socket(target)?);
        let via = socket.local_addr().map(shown).unwrap_or_default();
        let replies = Arc::new(Replies::default());
        let now = Instant::now();
        let pump = Pump {
            id,
            socket: socket.clone(),
            listen: shared.listen.clone(),
            arrival,
            counters: shared.counters.clone(),
            replies: replies.clone(),
            started: now,
        };
        Ok(Session {
            id,
            socket,
            replies,
            pump: tokio::spawn(pump.run(ended)),
            header,
            target,
            index,
            assigned: std::time::Instant::now(),
            refusals_seen: 0,
            via,
            started: now,
            last_up_us: 0,
            datagrams_up: 0,
            bytes_up: 0,
            dropped: 0,
            error: None,
        })
    }

    /// The session's number.
    pub(super) fn id(&self) -> SessionId {
        self.id
    }

    /// When a datagram last went either way.
    pub(super) fn last_active(&self) -> Instant {
        let down = self.replies.last_us.load(Ordering::Relaxed);
        self.started + Duration::from_micros(self.last_up_us.max(down))
    }

    /// Whether the target has answered since the client last sent.
    pub(super) fn answered(&self) -> bool {
        self.replies.last_us.load(Ordering::Relaxed) >= self.last_up_us
            && self.replies.datagrams.load(Ordering::Relaxed) > 0
    }

    /// Whether a draining session owes its client nothing: the target answered since the
    /// client last sent, and with as many replies as the client sent datagrams. A reply
    /// after the last datagram alone may answer an earlier one while the last is still in
    /// flight (a target slower than its client); a session that got fewer replies than it
    /// sent (one lost, or a protocol that answers less) ends once quiet instead.
    pub(super) fn owes_nothing(&self) -> bool {
        let replies = self.replies.datagrams.load(Ordering::Relaxed)
            + self.replies.dropped.load(Ordering::Relaxed);
        self.answered() && replies >= self.datagrams_up
    }

    /// Which of the rule's targets the session sends to.
    pub(super) fn target_index(&self) -> usize {
        self.index
    }

    /// When the session was given its target.
    pub(super) fn assigned(&self) -> std::time::Instant {
        self.assigned
    }

    /// How many refusals (ICMP port unreachable, seen by a send or by the pump) came since
    /// the last call.
    pub(super) fn take_refusals(&mut self) -> u64 {
        let refused = self.replies.refused.load(Ordering::Relaxed);
        let new = refused.saturating_sub(self.refusals_seen);
        self.refusals_seen = refused;
        new
    }

    /// Sends to target `index`, at `target`, from now on (the same socket and local port).
    /// A refusal of the old target still pending (on the socket, or counted by the pump and not
    /// yet looked at) is the old target's: it is counted (into `counters`) and returned, not
    /// left to take the new target down.
    pub(super) fn retarget(
        &mut self,
        (index, target): (usize, SocketAddr),
        counters: &Counters,
    ) -> io::Result<u64> {
        let pending = self.socket.take_error().ok().flatten();
        if pending.is_some_and(|e| e.kind() == io::ErrorKind::ConnectionRefused) {
            self.replies.refused(counters);
        }
        let stale = self.take_refusals();
        SockRef::from(&*self.socket).connect(&target.into())?;
        self.index = index;
        self.assigned = std::time::Instant::now();
        self.target = target;
        self.via = self.socket.local_addr().map(shown).unwrap_or_default();
        Ok(stale)
    }

    /// Sends one client datagram to the target. A refusal the kernel reports instead (about
    /// an earlier datagram: ICMP port unreachable) is counted and returned: the datagram was
    /// not sent, the caller sends it again (to this target or, with several, the next). Any
    /// other ICMP error reported instead (unreachable, prohibited) is noted and the datagram
    /// sent again at once: only one that fails again is dropped.
    pub(super) async fn send(&mut self, data: &[u8], counters: &Counters) -> Result<(), Refused> {
        self.last_up_us = micros_since(self.started);
        let mut sent = self.send_once(data).await;
        let earlier = match &sent {
            Err(err) if icmp_reported(err) => {
                self.replies.note_error(err);
                true
            }
            _ => false,
        };
        if earlier {
            sent = self.send_once(data).await;
        }
        if sent
            .as_ref()
            .is_err_and(|e| e.kind() == io::ErrorKind::ConnectionRefused)
        {
            self.replies.refused(counters);
            return Err(Refused);
        }
        match sent {
            Ok(_) => {
                self.datagrams_up += 1;
                self.bytes_up += data.len() as u64;
                counters.relayed(false, data.len());
            }
            Err(err) => self.drop_datagram(&err, counters),
        }
        Ok(())
    }

    /// Counts a client datagram that could not be sent.
    pub(super) fn drop_datagram(&mut self, err: &io::Error, counters: &Counters) {
        self.dropped += 1;
        Counters::bump(&counters.send_failed);
        self.error = Some(describe_io(err));
    }

    async fn send_once(&self, data: &[u8]) -> io::Result<usize> {
        let Some(header) = &self.header else {
            return self.socket.send(data).await;
        };
        let parts = [IoSlice::new(header), IoSlice::new(data)];
        let socket = &*self.socket;
        socket
            .async_io(Interest::WRITABLE, || {
                SockRef::from(socket).send_vectored(&parts)
            })
            .await
    }

    /// Ends the session (its pump stops) and makes its record; `error` is what ended it, if
    /// anything did.
    pub(super) fn close(self, close: Close, error: Option<&io::Error>) -> SessionRecord {
        self.pump.abort();
        let replies = &self.replies;
        let reply_error = replies.error.lock().ok().and_then(|mut e| e.take());
        let error = error
            .map(describe_io)
            .or(reply_error)
            .or(self.error.clone());
        SessionRecord {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            client: shown(self.id.0.client),
            target: shown(self.target),
            via: self.via.clone(),
            datagrams_up: self.datagrams_up,
            datagrams_down: replies.datagrams.load(Ordering::Relaxed),
            bytes_up: self.bytes_up,
            bytes_down: replies.bytes.load(Ordering::Relaxed),
            dropped: self.dropped + replies.dropped.load(Ordering::Relaxed),
            refused: replies.refused.load(Ordering::Relaxed),
            duration_s: self.started.elapsed().as_secs_f64(),
            close,
            error,
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

/// The task that relays a session's replies to its client.
struct Pump {
    id: SessionId,
    socket: Arc<UdpSocket>,
    listen: Arc<UdpSocket>,
    /// Where the client's datagrams arrive (a wildcard listener): replies leave from there.
    arrival: Option<Arrival>,
    counters: Arc<Counters>,
    replies: Arc<Replies>,
    started: Instant,
}

/// What one wake-up of the pump came to.
enum Drained {
    /// Nothing more to read: wait for the socket.
    Empty,
    /// The budget is spent: let other tasks run, then go on.
    Budget,
    /// The listening socket's send queue is full: this reply waits for room.
    Blocked(Vec<u8>),
    /// An error the session cannot go on after.
    Failed(io::Error),
}

impl Pump {
    async fn run(self, ended: mpsc::UnboundedSender<FromPump>) {
        loop {
            // An ICMP error with no datagram queued makes the socket report an error, not
            // readable data: waited for too, or a refusal of the session's last datagram
            // would wait for the next one to be seen.
            let interest = Interest::READABLE | Interest::ERROR;
            let refused = self.replies.refused.load(Ordering::Relaxed);
            let drained = match self.socket.ready(interest).await {
                Ok(ready) => match ready.is_error().then(|| self.take_error()).flatten() {
                    Some(fatal) => Drained::Failed(fatal),
                    None => self.drain(),
                },
                Err(err) => Drained::Failed(err),
            };
            if self.replies.refused.load(Ordering::Relaxed) > refused {
                let _ = ended.send(FromPump::Refused(self.id));
            }
            match drained {
                Drained::Empty => {}
                Drained::Budget => tokio::task::yield_now().await,
                Drained::Blocked(data) => match self.reply_when_room(&data).await {
                    Ok(_) => self.delivered(data.len()),
                    Err(err) => self.undelivered(&err),
                },
                Drained::Failed(err) => {
                    let _ = ended.send(FromPump::Ended(self.id, err));
                    return;
                }
            }
        }
    }

    /// Takes the error the socket reports (an ICMP error about a datagram sent, with no
    /// reply queued to come with it) and counts it as a receive meeting it would; `Some` when
    /// the session cannot go on.
    fn take_error(&self) -> Option<io::Error> {
        let mut fatal = None;
        let _ = self.socket.try_io(Interest::ERROR, || {
            if let Ok(Some(err)) = self.socket.take_error() {
                fatal = self.received_error(err);
            }
            // Clears the error readiness: the next error reports itself anew.
            Err::<(), _>(io::ErrorKind::WouldBlock.into())
        });
        fatal
    }

    /// Relays what the socket holds, up to [`PUMP_BUDGET`] datagrams, without waiting.
    fn drain(&self) -> Drained {
        REPLY.with_borrow_mut(|buf| {
            for _ in 0..PUMP_BUDGET {
                let len = match self.socket.try_recv(buf) {
                    Ok(len) => len,
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Drained::Empty,
                    Err(err) => match self.received_error(err) {
                        Some(fatal) => return Drained::Failed(fatal),
                        None => continue,
                    },
                };
                match self.reply_now(&buf[..len]) {
                    Ok(_) => self.delivered(len),
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                        return Drained::Blocked(buf[..len].to_vec());
                    }
                    Err(err) => self.undelivered(&err),
                }
            }
            Drained::Budget
        })
    }

    /// Sends a reply to the client through the listening socket if it has room now.
    fn reply_now(&self, data: &[u8]) -> io::Result<usize> {
        let client = self.id.0.client;
        let Some(arrival) = self.arrival else {
            return self.listen.try_send_to(data, client);
        };
        let listen = &*self.listen;
        listen.try_io(Interest::WRITABLE, || {
            pktinfo::send_to(listen, data, client, arrival)
        })
    }

    /// Sends a reply to the client through the listening socket, waiting for room.
    async fn reply_when_room(&self, data: &[u8]) -> io::Result<usize> {
        let client = self.id.0.client;
        let Some(arrival) = self.arrival else {
            return self.listen.send_to(data, client).await;
        };
        let listen = &*self.listen;
        listen
            .async_io(Interest::WRITABLE, || {
                pktinfo::send_to(listen, data, client, arrival)
            })
            .await
    }

    /// Counts an ICMP error reported on the socket; `Some` for any other error.
    fn received_error(&self, err: io::Error) -> Option<io::Error> {
        if err.kind() == io::ErrorKind::ConnectionRefused {
            self.replies.refused(&self.counters);
            return None;
        }
        if !icmp_reported(&err) {
            return Some(err);
        }
        self.replies.note_error(&err);
        None
    }

    fn delivered(&self, len: usize) {
        let replies = &self.replies;
        replies.datagrams.fetch_add(1, Ordering::Relaxed);
        replies.bytes.fetch_add(len as u64, Ordering::Relaxed);
        replies
            .last_us
            .store(micros_since(self.started), Ordering::Relaxed);
        self.counters.relayed(true, len);
    }

    fn undelivered(&self, err: &io::Error) {
        self.replies.dropped.fetch_add(1, Ordering::Relaxed);
        Counters::bump(&self.counters.send_failed);
        self.replies.note_error(err);
    }
}
