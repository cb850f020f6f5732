//! The ICMP echo engine shared by `ping` and `sweep`: one socket per address family, any
//! number of probes in flight, replies matched without a per-probe table.
//!
//! Every request carries a [`Probe`] (engine cookie, target index, send time on a monotonic
//! clock) in its payload; a reply is accepted when it is an echo reply with our identifier (raw
//! sockets; the kernel filters datagram sockets) and our cookie, whatever its length beyond
//! the probe (iputils counts a reply with less or more data than sent); a reply cut short of
//! the probe is ours by its identifier alone, as iputils takes it, without a round trip nor a
//! target index ([`UNKNOWN_INDEX`]: its sender says it). Its checksum is
//! checked where the kernel has not checked it already (an IPv4 raw socket): a reply of ours
//! with a wrong one is [`Answer::Corrupted`], which [`Engine::recv`] skips. Everything else —
//! other programs' pings, our own requests seen on loopback, ICMP errors — is skipped. The
//! round trip ends at the kernel's receive timestamp, not when the task woke up (as iputils
//! measures it). The rest of the payload is iputils' filler (byte `i` is `i`) or the caller's
//! pattern (`ping -p`).
//!
//! A payload shorter than a probe (`ping -s 0` to `-s 15`) carries no probe, as iputils then
//! carries no time: replies, of whatever length, are matched by identifier alone, their target
//! found by the address that answered, and they come without a round-trip time.
//!
//! [`Engine::send`] and [`Engine::recv`] take `&self`, so a caller can pace sends in one task
//! and collect replies in another, or `select!` between them:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use netkit::icmp::{Config, Engine, Version};
//! let engine = Engine::new(&Config::default(), &[Version::V4, Version::V6])?;
//! engine.send(0, "127.0.0.1:0".parse()?, 1).await?;
//! engine.send(1, "[::1]:0".parse()?, 1).await?;
//! for _ in 0..2 {
//!     let reply = engine.recv().await?;
//!     println!("target {} answered in {:?}", reply.index, reply.rtt);
//! }
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::error::IcmpErrorRepr;
use super::packet::{self, Checksum, Packet, Repr, Version};
use super::probe::{Probe, PROBE_LEN};
use super::socket::{IcmpSocket, Kind, Received, SocketOptions};
use crate::error::{Error, ParseError};

/// Largest payload: what fits in one IPv6 packet after the ICMPv6 header (its payload length
/// does not count the IPv6 header).
pub const MAX_PAYLOAD: usize = 65527;
/// Largest payload to an IPv4 host: what fits in one IPv4 datagram after the IP and ICMP
/// headers.
pub const MAX_PAYLOAD_V4: usize = 65507;

/// How probes are built and sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Echo data bytes per probe, 0 to [`MAX_PAYLOAD`] (iputils' default is 56); below
    /// [`PROBE_LEN`] replies come without round-trip time.
    pub payload_size: usize,
    /// Bytes repeated over the payload (`ping -p`, up to 16); `None` is iputils' filler.
    pub pattern: Option<Vec<u8>>,
    /// How the sockets are set up.
    pub socket: SocketOptions,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            payload_size: 56,
            pattern: None,
            socket: SocketOptions::default(),
        }
    }
}

/// [`Reply::index`] of a reply cut short of its timed probe, which cannot say its target.
pub const UNKNOWN_INDEX: u32 = u32::MAX;

/// An echo reply matched to its probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// The target index given to [`Engine::send`]; [`UNKNOWN_INDEX`] when the reply was cut
    /// short of a timed probe (fewer than 16 data bytes) and cannot say it.
    pub index: u32,
    /// Who answered.
    pub addr: IpAddr,
    /// The sequence number given to [`Engine::send`].
    pub seq: u16,
    /// TTL or hop limit of the reply, when known.
    pub ttl: Option<u8>,
    /// Length of the ICMP message (header and data), as ping reports it.
    pub bytes: usize,
    /// Round-trip time, measured on the monotonic clock; `None` when the payload was too
    /// small to carry the send time.
    pub rtt: Option<Duration>,
}

/// An ICMP error (unreachable, time exceeded) about one of our probes. Only raw sockets
/// receive them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorReply {
    /// The target index, when the error quoted enough of the probe to carry it.
    pub index: Option<u32>,
    /// Where the probe was going.
    pub target: IpAddr,
    /// Who sent the error (a router, or this host).
    pub from: IpAddr,
    /// The probe's sequence number.
    pub seq: u16,
    /// ICMP type of the error.
    pub msg_type: u8,
    /// ICMP code of the error.
    pub code: u8,
    /// The error's datum: the MTU of "fragmentation needed" / "packet too big", the pointer
    /// of "parameter problem", the new gateway of a redirect, else 0.
    pub info: u32,
    /// A notice (an IPv4 redirect or source quench read from a raw socket), which iputils
    /// prints but neither counts nor takes for an answer. From the error queue of a datagram
    /// socket the kernel reports it as an error, and iputils counts it as one.
    pub notice: bool,
}

impl ErrorReply {
    /// The error in iputils' words, e.g. `Time to live exceeded`.
    pub fn describe(&self) -> String {
        super::error::describe(
            Version::of(&self.target),
            self.msg_type,
            self.code,
            self.info,
        )
    }
}

/// What [`Engine::recv_answer`] yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// An echo reply to one of our probes.
    Reply(Reply),
    /// An ICMP error about one of our probes.
    Error(ErrorReply),
    /// An echo reply to one of our probes whose ICMP checksum is wrong: iputils prints it
    /// `(BAD CHECKSUM!)` and counts it `+N corrupted`, not as an answer. Only an IPv4 raw
    /// socket gets one (the kernel drops it before a datagram socket, and checks ICMPv6).
    Corrupted(Reply),
}

/// Echo requests out, matched echo replies in, over one socket per address family.
#[derive(Debug)]
pub struct Engine {
    v4: Option<IcmpSocket>,
    v6: Option<IcmpSocket>,
    matcher: Matcher,
    epoch: Instant,
    /// The payload every request starts from: filler or pattern.
    template: Vec<u8>,
    /// Untimed probes only: which target index each address was sent to.
    sent_to: Mutex<HashMap<IpAddr, u32>>,
}

/// Decides whether a received message is a reply to one of our probes.
#[derive(Debug, Clone, Copy)]
struct Matcher {
    ident: u16,
    cookie: u32,
    payload_size: usize,
}

impl Matcher {
    /// Whether probes carry the send time (and cookie and index).
    fn timed(&self) -> bool {
        self.payload_size >= PROBE_LEN
    }
}

impl Matcher {
    /// The reply that `data` (as received from a `kind` socket of `version`, at `now` ns on
    /// the engine clock) is, if it is ours, and whether its checksum is wrong.
    fn accept(
        &self,
        version: Version,
        kind: Kind,
        got: &Received,
        data: &[u8],
        now: u64,
    ) -> Option<(Reply, bool)> {
        let (ttl, message, check) = match (version, kind) {
            (Version::V4, Kind::Raw) => {
                let (ttl, message) = packet::ipv4_payload(data).ok()?;
                (Some(ttl), message, Checksum::V4)
            }
            (Version::V4, Kind::Datagram) => (got.hop_limit, data, Checksum::V4),
            // The kernel verifies ICMPv6 checksums (it has the pseudo-header's addresses).
            (Version::V6, _) => (got.hop_limit, data, Checksum::Trusted),
        };
        let packet = Packet::new_checked(message).ok()?;
        let (repr, corrupted) = match Repr::parse(&packet, version, check) {
            Err(packet::WireError::Checksum) => {
                (Repr::parse(&packet, version, Checksum::Trusted).ok()?, true)
            }
            parsed => (parsed.ok()?, false),
        };
        let Repr::EchoReply {
            ident,
            seq_no,
            data: payload,
        } = repr
        else {
            return None;
        };
        // A reply with more or less data than sent is ours if it carries our probe (iputils
        // counts it, `(truncated)` when shorter); one cut short of the probe, or answering an
        // untimed probe, by its identifier alone, as iputils takes every reply (the kernel
        // matches a datagram socket's), and it comes without a round trip.
        let probe = Probe::read(payload).filter(|_| self.timed());
        let ours = (kind == Kind::Datagram || ident == self.ident)
            && probe.is_none_or(|p| p.cookie == self.cookie && p.sent_ns <= now);
        if !ours {
            return None;
        }
        let reply = Reply {
            index: probe.map_or(UNKNOWN_INDEX, |p| p.index),
            addr: got.from,
            seq: seq_no,
            ttl,
            bytes: message.len(),
            rtt: probe.map(|p| Duration::from_nanos(now - p.sent_ns)),
        };
        Some((reply, corrupted))
    }

    /// The error a datagram socket's error queue reported about one of its requests (`data`
    /// is the request's ICMP message, as far as it was quoted).
    fn queued_error(&self, got: &Received, data: &[u8]) -> Option<ErrorReply> {
        let queued = got.queued_error?;
        let icmp = matches!(
            queued.origin,
            nix::libc::SO_EE_ORIGIN_ICMP | nix::libc::SO_EE_ORIGIN_ICMP6
        );
        let request = Packet::new_checked(data).ok()?;
        let echo_request = matches!(request.msg_type(), 8 | 128);
        if !icmp || !echo_request {
            return None;
        }
        let index = match Probe::read(request.data()).filter(|_| self.timed()) {
            Some(probe) if probe.cookie == self.cookie => Some(probe.index),
            Some(_) => return None,
            None => None,
        };
        Some(ErrorReply {
            index,
            target: got.from,
            from: queued.offender.unwrap_or(got.from),
            seq: request.echo_seq_no(),
            msg_type: queued.msg_type,
            code: queued.code,
            info: queued.info,
            notice: false,
        })
    }

    /// The ICMP error that `data` is, if it is about one of our probes, as a raw socket
    /// receives it (a datagram socket's come through [`Matcher::queued_error`]).
    fn accept_error(
        &self,
        version: Version,
        kind: Kind,
        got: &Received,
        data: &[u8],
    ) -> Option<ErrorReply> {
        if kind != Kind::Raw {
            return None;
        }
        let (message, check) = match version {
            Version::V4 => (packet::ipv4_payload(data).ok()?.1, Checksum::V4),
            Version::V6 => (data, Checksum::Trusted),
        };
        let packet = Packet::new_checked(message).ok()?;
        let repr = IcmpErrorRepr::parse(&packet, version, check).ok()?;
        if repr.ident != self.ident {
            return None;
        }
        let index = match Probe::read(repr.data).filter(|_| self.timed()) {
            Some(probe) if probe.cookie == self.cookie => Some(probe.index),
            Some(_) => return None,
            None => None,
        };
        Some(ErrorReply {
            index,
            target: repr.target,
            from: got.from,
            seq: repr.seq_no,
            msg_type: repr.msg_type,
            code: repr.code,
            info: repr.info,
            notice: super::error::is_notice(version, repr.msg_type),
        })
    }
}

impl Engine {
    /// Opens one socket for each of `versions` (raw, else datagram). Fails with an input
    /// error for a payload too large or a TTL of 0 (for IPv4 when among `versions`), with
    /// [`Error::IcmpDenied`] when no ICMP socket is permitted. Needs a tokio runtime.
    pub fn new(config: &Config, versions: &[Version]) -> Result<Engine, Error> {
        check_payload(config.payload_size, versions)?;
        check_ttl(config.socket.ttl, versions)?;
        let open = |version| -> Result<Option<IcmpSocket>, Error> {
            match versions.contains(&version) {
                true => IcmpSocket::open(version, &config.socket).map(Some),
                false => Ok(None),
            }
        };
        let random = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
        Ok(Engine {
            v4: open(Version::V4)?,
            v6: open(Version::V6)?,
            matcher: Matcher {
                ident: random as u16,
                cookie: (random >> 32) as u32,
                payload_size: config.payload_size,
            },
            epoch: Instant::now(),
            template: template(config.payload_size, config.pattern.as_deref()),
            sent_to: Mutex::new(HashMap::new()),
        })
    }

    /// The kind of socket open for `version`, if any.
    pub fn kind(&self, version: Version) -> Option<Kind> {
        self.socket(version).map(IcmpSocket::kind)
    }

    /// The flow label IPv6 requests carry (`-F`: the one asked for, or the kernel's choice
    /// for 0), if any.
    pub fn flow_label(&self) -> Option<u32> {
        self.socket(Version::V6).and_then(IcmpSocket::flow_label)
    }

    /// Sends echo request `seq` for target `index` to `dst`'s address, in its zone (the port
    /// is not used). Errors are the kernel's (e.g. network unreachable); a family the engine
    /// was not opened for is `Unsupported`.
    pub async fn send(&self, index: u32, dst: SocketAddr, seq: u16) -> io::Result<()> {
        let addr = dst.ip();
        let version = Version::of(&addr);
        let socket = self.socket(version).ok_or_else(|| {
            io::Error::new(io::ErrorKind::Unsupported, "address family not opened")
        })?;
        let mut message = vec![0u8; packet::HEADER_LEN + self.template.len()];
        let mut payload = self.template.clone();
        if self.matcher.timed() {
            let probe = Probe {
                cookie: self.matcher.cookie,
                index,
                sent_ns: self.now_ns(),
            };
            probe.write(&mut payload);
        } else if let Ok(mut sent_to) = self.sent_to.lock() {
            sent_to.insert(addr, index);
        }
        let repr = Repr::EchoRequest {
            ident: self.matcher.ident,
            seq_no: seq,
            data: &payload,
        };
        repr.emit(&mut Packet::new_unchecked(&mut message[..]), version);
        socket.send_to(&message, dst).await
    }

    /// Waits for the next echo reply to one of our probes, skipping everything else. Cancel
    /// safe: a reply is never lost by dropping the future.
    pub async fn recv(&self) -> io::Result<Reply> {
        loop {
            if let Answer::Reply(reply) = self.recv_answer().await? {
                return Ok(reply);
            }
        }
    }

    /// Waits for the next echo reply or ICMP error about one of our probes. Cancel safe.
    pub async fn recv_answer(&self) -> io::Result<Answer> {
        self.recv_answer_at().await.map(|(answer, _)| answer)
    }

    /// [`Engine::recv_answer`] with when the answer arrived: the kernel's receive timestamp,
    /// on the monotonic clock (a timer that fires late must not take in an answer that came
    /// after it was due). Cancel safe.
    pub async fn recv_answer_at(&self) -> io::Result<(Answer, Instant)> {
        let size = packet::HEADER_LEN + self.matcher.payload_size + 128;
        let (mut buf4, mut buf6) = (vec![0u8; size], vec![0u8; size]);
        loop {
            let (version, got) = match (&self.v4, &self.v6) {
                (Some(v4), Some(v6)) => tokio::select! {
                    got = v4.recv(&mut buf4) => (Version::V4, got),
                    got = v6.recv(&mut buf6) => (Version::V6, got),
                },
                (Some(v4), None) => (Version::V4, v4.recv(&mut buf4).await),
                (None, Some(v6)) => (Version::V6, v6.recv(&mut buf6).await),
                (None, None) => return std::future::pending().await,
            };
            let got = match got {
                Ok(got) => got,
                Err(e) if is_transient(&e) => continue,
                Err(e) => return Err(e),
            };
            let buf = match version {
                Version::V4 => &buf4,
                Version::V6 => &buf6,
            };
            let now = self.arrival_ns(&got);
            let Some(kind) = self.kind(version) else {
                continue;
            };
            let data = &buf[..got.len];
            let arrived = self.epoch + Duration::from_nanos(now);
            if got.queued_error.is_some() {
                if let Some(error) = self.matcher.queued_error(&got, data) {
                    return Ok((Answer::Error(error), arrived));
                }
                continue;
            }
            if let Some((reply, corrupted)) = self.matcher.accept(version, kind, &got, data, now) {
                let answer = match corrupted {
                    true => Answer::Corrupted,
                    false => Answer::Reply,
                };
                if let Some(reply) = self.locate(reply) {
                    return Ok((answer(reply), arrived));
                }
                continue;
            }
            if let Some(error) = self.matcher.accept_error(version, kind, &got, data) {
                return Ok((Answer::Error(error), arrived));
            }
        }
    }

    /// The target of a reply without a probe: for untimed probes the one its address was
    /// sent to, else the only one (else it is not ours); a timed probe's reply cut short of
    /// it keeps [`UNKNOWN_INDEX`], for the caller to find its target by its address.
    fn locate(&self, mut reply: Reply) -> Option<Reply> {
        if reply.index != UNKNOWN_INDEX || self.matcher.timed() {
            return Some(reply);
        }
        let sent_to = self.sent_to.lock().ok()?;
        let only = match sent_to.len() {
            1 => sent_to.values().next().copied(),
            _ => None,
        };
        reply.index = sent_to.get(&reply.addr).copied().or(only)?;
        Some(reply)
    }

    fn socket(&self, version: Version) -> Option<&IcmpSocket> {
        match version {
            Version::V4 => self.v4.as_ref(),
            Version::V6 => self.v6.as_ref(),
        }
    }

    /// When `got` arrived on the engine clock: now, minus the time it waited in the socket
    /// since the kernel stamped it. The wait is measured on the wall clock but is only
    /// microseconds long, so the round trip stays on the monotonic clock.
    fn arrival_ns(&self, got: &Received) -> u64 {
        let now = self.now_ns();
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).ok();
        let waited = match (got.kernel_time, wall) {
            (Some(kernel), Some(wall)) => wall.checked_sub(kernel).unwrap_or_default(),
            _ => Duration::ZERO,
        };
        // A wall-clock step could make the wait absurd; then trust the monotonic clock alone.
        match u64::try_from(waited.as_nanos()) {
            Ok(waited) if waited < 1_000_000_000 => now.saturating_sub(waited),
            _ => now,
        }
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Errors a socket may report about an earlier send (an ICMP error turned into errno, of any
/// kind: an IPv6 admin-prohibited one is `EACCES`), or an interrupted call; the next message
/// is still worth reading.
fn is_transient(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::Interrupted || super::socket::is_icmp_errno(err)
}

fn check_payload(size: usize, versions: &[Version]) -> Result<(), ParseError> {
    let (most, to) = match versions.contains(&Version::V4) {
        true => (MAX_PAYLOAD_V4, " to an IPv4 host"),
        false => (MAX_PAYLOAD, ""),
    };
    if size <= most {
        return Ok(());
    }
    Err(ParseError::new(
        size.to_string(),
        format!("packet size must be 0-{most} bytes{to}"),
    ))
}

/// A TTL of 0 is IPv6's only: a hop limit of 0 reaches the on-link neighbours (RFC 8200 forbids
/// only forwarding it), where IPv4 has no such TTL (iputils: "cannot set unicast time-to-live").
fn check_ttl(ttl: Option<u8>, versions: &[Version]) -> Result<(), ParseError> {
    match ttl == Some(0) && versions.contains(&Version::V4) {
        true => Err(ParseError::new(
            "0",
            "TTL must be a whole number from 1 to 255 to an IPv4 host (0 is an IPv6 hop limit)",
        )),
        false => Ok(()),
    }
}

/// The payload before the probe is written: byte `i` is `i` (iputils' filler), or `pattern`
/// repeated.
fn template(size: usize, pattern: Option<&[u8]>) -> Vec<u8> {
    match pattern.filter(|p| !p.is_empty()) {
        Some(pattern) => pattern.iter().copied().cycle().take(size).collect(),
        None => (0..size).map(|i| i as u8).collect(),
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
