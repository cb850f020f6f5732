//! The SYN scan's receiver: one thread polls the raw TCP and ICMP sockets, reads every
//! segment and error that arrives, keeps those that answer a SYN in flight ([`super::table`])
//! and hands them to the scheduler in batches, with the tries that expired unanswered. Each
//! raw socket sees all of its protocol's traffic of this network namespace; what is not an
//! answer to this scan (another port, another sequence number) is skipped.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags};

use super::packet::{self, Kind, Quoted};
use super::socket::{self, Family};
use super::table::Entry;
use super::Prober;
use crate::error::Error;
use crate::scan::answer::{Answer, IcmpReport};
use crate::scan::schedule::Reply;
use crate::scan::worker::{Found, Report, Shared};

/// The longest wait in `poll`: how soon a stopped scan's receiver notices.
const TICK: Duration = Duration::from_millis(20);
/// Datagrams read from one socket before the others get their turn.
const BURST: usize = 256;
const ICMP: u8 = 1;
const TCP: u8 = 6;

/// The receiving thread: runs until the scan is stopped.
pub fn listen(shared: &Arc<Shared>, prober: &Prober) {
    let mut buf = vec![0u8; 2048];
    while !shared.is_stopped() {
        if let Err(err) = wait(prober) {
            shared.fail(Error::io("wait for SYN answers", err));
            return;
        }
        let mut reports = Vec::new();
        for (family, v6) in prober.sockets.families() {
            drain(&family.tcp, &mut buf, &mut reports, |bytes, from| {
                tcp_answer(prober, family, v6, bytes, from)
            });
            drain(&family.icmp, &mut buf, &mut reports, |bytes, from| {
                icmp_answer(prober, family, v6, bytes, from)
            });
        }
        reports.extend(
            prober
                .table()
                .expired(Instant::now())
                .into_iter()
                .map(silent),
        );
        if reports.is_empty() {
            continue;
        }
        if let Err(err) = shared.report(reports) {
            shared.fail(err);
            return;
        }
    }
}

/// Waits until a socket is readable or [`TICK`] passed.
fn wait(prober: &Prober) -> io::Result<()> {
    let fds = socket::fds(&prober.sockets);
    let mut polled: Vec<PollFd> = fds
        .iter()
        .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
        .collect();
    let tick = u16::try_from(TICK.as_millis()).unwrap_or(u16::MAX);
    match poll(&mut polled, tick) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
        Err(errno) => Err(errno.into()),
    }
}

/// Reads up to [`BURST`] datagrams from `socket`, keeping the answers `read` finds.
fn drain(
    socket: &socket2::Socket,
    buf: &mut [u8],
    reports: &mut Vec<Report>,
    mut read: impl FnMut(&[u8], Sender) -> Option<Report>,
) {
    for _ in 0..BURST {
        match crate::sys::cmsg::recv(socket, buf, false) {
            Ok(msg) => {
                let sender = Sender {
                    addr: msg.from,
                    hop_limit: msg.control.hop_limit,
                };
                reports.extend(read(&buf[..msg.len], sender));
            }
            Err(_) => return,
        }
    }
}

/// Who sent a datagram read from a raw socket, as `recvmsg` tells: its address, and for
/// IPv6 the hop limit it arrived with (IPv4's TTL is read from the header in the datagram).
#[derive(Debug, Clone, Copy)]
struct Sender {
    addr: Option<IpAddr>,
    hop_limit: Option<u8>,
}

/// The TTL (IPv6: hop limit) a datagram read from a raw socket arrived with.
fn ttl(v6: bool, bytes: &[u8], sender: Sender) -> Option<u8> {
    match v6 {
        false => packet::ipv4_ttl(bytes),
        true => sender.hop_limit,
    }
}

/// A SYN-ACK or reset that answers a SYN in flight.
fn tcp_answer(
    prober: &Prober,
    family: &Family,
    v6: bool,
    bytes: &[u8],
    sender: Sender,
) -> Option<Report> {
    let (seg, from) = match v6 {
        false => packet::ipv4_payload(bytes, TCP)?,
        true => (bytes, sender.addr?),
    };
    let seg = packet::segment(seg)?;
    if !family.owns(seg.dport) {
        return None;
    }
    let entry = prober.table().answered(from, seg.sport, seg.ack)?;
    let answer = match seg.kind {
        Kind::SynAck => Answer::Open,
        Kind::Reset => Answer::Closed,
    };
    Some(answered(entry, answer, ttl(v6, bytes, sender)))
}

/// An ICMP error that quotes a SYN in flight.
fn icmp_answer(
    prober: &Prober,
    family: &Family,
    v6: bool,
    bytes: &[u8],
    sender: Sender,
) -> Option<Report> {
    let (quoted, from): (Quoted, IpAddr) = match v6 {
        false => {
            let (msg, from) = packet::ipv4_payload(bytes, ICMP)?;
            (packet::icmpv4_error(msg)?, from)
        }
        true => (packet::icmpv6_error(bytes)?, sender.addr?),
    };
    if !family.owns(quoted.sport) {
        return None;
    }
    let dst = SocketAddr::new(quoted.dst, quoted.dport);
    let entry = prober.table().quoted(dst, quoted.seq)?;
    let icmp = IcmpReport {
        v6,
        kind: quoted.kind,
        code: quoted.code,
        from: Some(from),
    };
    let ttl = ttl(v6, bytes, sender);
    Some(answered(entry, icmp.classify(quoted.dst), ttl))
}

fn answered(entry: Entry, answer: Answer, ttl: Option<u8>) -> Report {
    let rtt = entry.sent.elapsed();
    Report {
        id: entry.id,
        dst: entry.dst,
        found: Found::Raw(Reply::Answered(answer, rtt), ttl),
    }
}

fn silent(entry: Entry) -> Report {
    Report {
        id: entry.id,
        dst: entry.dst,
        found: Found::Raw(Reply::Silent, None),
    }
}
