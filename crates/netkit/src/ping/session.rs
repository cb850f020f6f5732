//! The ping session as a state machine without I/O: time comes in as an argument, requests to
//! send come out of [`Session::next_request`], answers go in through [`Session::answer`], and
//! what happened comes out of [`Session::next_event`]. The [`driver`](super::driver) runs it
//! over real sockets; tests run it on a clock of their own.
//!
//! Every host keeps iputils' rules (module `host`). The session ends when every
//! host is finished, at the `-w` deadline, or when stopped (a signal).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::config::PingConfig;
use super::host::Host;
use super::stats::Stats;
use crate::icmp::{Answer, ErrorReply, Reply, UNKNOWN_INDEX};
use crate::report::ping::{PingError, PingReply, PingSummary, PingTimeout};
use crate::target::Target;

/// A request the caller is to send now (it already counts as transmitted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// The host's index among the session's targets.
    pub host: usize,
    /// Where it goes: the host's address in its zone (`fe80::1%eth0`), port 0.
    pub dst: SocketAddr,
    /// Its sequence number, from 1 (the wire carries it modulo 65536).
    pub seq: u64,
}

/// Something that happened during a session, in the order it happened.
#[derive(Debug)]
pub enum Event {
    /// A request went out (flood mode prints a dot).
    Sent {
        /// The host's index.
        host: usize,
        /// Its sequence number.
        seq: u64,
    },
    /// A request was still unanswered when the next one went (`-O`).
    Outstanding {
        /// The host's index.
        host: usize,
        /// The unanswered request.
        seq: u64,
    },
    /// An echo reply (or a duplicate, or one with a wrong checksum), however late.
    Reply {
        /// The host's index.
        host: usize,
        /// The JSON record.
        record: PingReply,
        /// The round-trip time, unrounded, when the payload carried the send time.
        rtt: Option<Duration>,
    },
    /// A request without a reply after `-W`, or when its host finished.
    Timeout {
        /// The host's index.
        host: usize,
        /// The JSON record.
        record: PingTimeout,
    },
    /// An ICMP error about a request (unreachable, time exceeded, fragmentation needed): it
    /// answers the request, which is not reported as timed out.
    Error {
        /// The host's index.
        host: usize,
        /// The request's sequence number.
        seq: u64,
        /// The error, with who sent it.
        error: ErrorReply,
        /// The JSON record.
        record: PingError,
    },
    /// A notice about a request (an IPv4 redirect, a source quench): printed, not counted.
    Notice {
        /// The host's index.
        host: usize,
        /// The request's sequence number.
        seq: u64,
        /// The notice, with who sent it.
        error: ErrorReply,
    },
    /// The kernel refused to send a request (it still counts as transmitted; a request too
    /// big for the path MTU also counts as an error, as in iputils).
    SendError {
        /// The host's index.
        host: usize,
        /// The request's sequence number.
        seq: u64,
        /// The kernel's reason.
        error: io::Error,
        /// The path MTU, when the request was too big for it.
        mtu: Option<u32>,
    },
    /// Every host's statistics so far, in order (SIGQUIT).
    Status(Vec<Stats>),
}

/// A running session.
///
/// An answer touches only its host (constant time, whatever the number of hosts); a pass over
/// every host ([`Session::tick`], [`Session::wake_at`]) is for the timer.
#[derive(Debug)]
pub struct Session {
    config: PingConfig,
    hosts: Vec<Host>,
    start: Instant,
    end: Option<Instant>,
    events: VecDeque<Event>,
    /// Hosts not finished yet.
    live: usize,
    /// Where the next search for a request due starts (hosts take turns).
    cursor: usize,
    stopped: bool,
}

impl Session {
    /// A session pinging `targets` from `now`.
    pub fn new(config: PingConfig, targets: &[Target], now: Instant) -> Session {
        Session {
            hosts: targets.iter().map(|t| Host::new(t, &config)).collect(),
            end: config.deadline.map(|d| now + d),
            config,
            start: now,
            events: VecDeque::new(),
            live: targets.len(),
            cursor: 0,
            stopped: false,
        }
    }

    /// Whether the session has ended.
    pub fn is_over(&self) -> bool {
        self.stopped || self.live == 0
    }

    /// The next request due at `now`, already counted as sent; `None` when none is due.
    /// Hosts take turns, so a round over many hosts costs one step per request.
    pub fn next_request(&mut self, now: Instant) -> Option<Request> {
        if self.is_over() {
            return None;
        }
        let count = self.hosts.len();
        let host = (0..count)
            .map(|step| (self.cursor + step) % count)
            .find(|i| self.is_due(*i, now))?;
        self.cursor = (host + 1) % count;
        Some(self.send(host, now))
    }

    /// The request of host `host` due at `now`, if any (after an answer to it).
    pub fn next_request_of(&mut self, host: usize, now: Instant) -> Option<Request> {
        match !self.is_over() && self.is_due(host, now) {
            true => Some(self.send(host, now)),
            false => None,
        }
    }

    /// Whether host `host` has a request due at `now`. None is at or after the deadline: a
    /// request that falls due with it (`-w 1` at the default interval) is not sent, as iputils,
    /// whose deadline alarm goes first, sends none.
    fn is_due(&self, host: usize, now: Instant) -> bool {
        if self.end.is_some_and(|end| now >= end) {
            return false;
        }
        self.hosts
            .get(host)
            .and_then(|h| h.due(&self.config, now))
            .is_some_and(|due| due <= now)
    }

    fn send(&mut self, host: usize, now: Instant) -> Request {
        let sent = self.hosts[host].send(&self.config, now);
        if let Some(seq) = sent.outstanding {
            self.events.push_back(Event::Outstanding { host, seq });
        }
        self.events.push_back(Event::Sent {
            host,
            seq: sent.seq,
        });
        Request {
            host,
            dst: self.hosts[host].target.socket_addr(0),
            seq: sent.seq,
        }
    }

    /// The kernel refused `request`; `mtu` is the path MTU when it was too big. It did not
    /// go out, so its [`Event::Sent`] is withdrawn (iputils prints a flood dot only for a
    /// request that left), and the host's next request waits a whole interval: the rest of
    /// a `-l` burst is not sent at once (iputils drops its credit after a failed send).
    pub fn send_failed(&mut self, request: &Request, error: io::Error, mtu: Option<u32>) {
        let host = request.host;
        let sent = |e: &Event| matches!(e, Event::Sent { host: h, seq } if *h == host && *seq == request.seq);
        if let Some(at) = self.events.iter().rposition(sent) {
            self.events.remove(at);
        }
        if let Some(h) = self.hosts.get_mut(host) {
            h.refused();
            if super::is_too_big(&error) {
                h.local_error();
            }
        }
        let seq = request.seq;
        self.events.push_back(Event::SendError {
            host,
            seq,
            error,
            mtu,
        });
    }

    /// Counts an answer that arrived at `now`; the host it was about, if it counted. The
    /// session is first brought to `now`, so an answer that came after the deadline or after
    /// its host's wait ended does not count, however soon it is taken in.
    pub fn answer(&mut self, answer: &Answer, now: Instant) -> Option<usize> {
        if self.end.is_some_and(|end| now >= end) {
            self.stop();
        }
        if let Some(host) = self.host_of(answer) {
            self.tick_host(host, now, true);
        }
        let host = match answer {
            Answer::Reply(reply) => self.reply(reply),
            Answer::Error(error) => self.error(error),
            Answer::Corrupted(reply) => self.corrupted(reply),
        }?;
        self.hosts[host].heard(now);
        self.tick_host(host, now, true);
        Some(host)
    }

    /// The host an answer is about, as far as its index (or a reply's sender) says.
    fn host_of(&self, answer: &Answer) -> Option<usize> {
        let index = match answer {
            Answer::Reply(reply) | Answer::Corrupted(reply) => return self.replied(reply),
            Answer::Error(error) => error.index,
        };
        index.map(|i| i as usize).filter(|i| *i < self.hosts.len())
    }

    /// The host a reply answers: its index's; for a reply cut short of the probe, which cannot
    /// say it, the first host with the sender's address, else the only host.
    fn replied(&self, reply: &Reply) -> Option<usize> {
        if reply.index != UNKNOWN_INDEX {
            return Some(reply.index as usize).filter(|i| *i < self.hosts.len());
        }
        let by_addr = self.hosts.iter().position(|h| h.target.addr == reply.addr);
        by_addr.or((self.hosts.len() == 1).then_some(0))
    }

    fn reply(&mut self, reply: &Reply) -> Option<usize> {
        let host = self.replied(reply)?;
        let config = self.config;
        let record = self.hosts.get_mut(host)?.reply(reply, &config)?;
        self.events.push_back(Event::Reply {
            host,
            record,
            rtt: reply.rtt,
        });
        Some(host)
    }

    /// A reply with a wrong checksum: reported (`(BAD CHECKSUM!)`) and counted as corrupted,
    /// not as an answer.
    fn corrupted(&mut self, reply: &Reply) -> Option<usize> {
        let host = self.replied(reply)?;
        let record = self.hosts.get_mut(host)?.corrupted(reply)?;
        self.events.push_back(Event::Reply {
            host,
            record,
            rtt: reply.rtt,
        });
        Some(host)
    }

    fn error(&mut self, error: &ErrorReply) -> Option<usize> {
        // A short quote carries no index: then the first host with that address is meant.
        let found = match error.index {
            Some(index) => Some(index as usize).filter(|i| *i < self.hosts.len()),
            None => self
                .hosts
                .iter()
                .position(|h| h.target.addr == error.target),
        };
        let host = found.filter(|i| self.hosts[*i].target.addr == error.target)?;
        if error.notice {
            let seq = self.hosts[host].notice(error.seq)?;
            let error = *error;
            self.events.push_back(Event::Notice { host, seq, error });
            return None;
        }
        let seq = self.hosts[host].error(error.seq, error.target.is_ipv4())?;
        let record = self.hosts[host].error_record(seq, error);
        self.events.push_back(Event::Error {
            host,
            seq,
            error: *error,
            record,
        });
        Some(host)
    }

    /// Brings every host to `now`: requests unanswered for `-W`, hosts that finished, the
    /// deadline.
    pub fn tick(&mut self, now: Instant) {
        if self.is_over() {
            return;
        }
        if self.end.is_some_and(|end| now >= end) {
            return self.stop();
        }
        for host in 0..self.hosts.len() {
            self.tick_host(host, now, false);
        }
    }

    /// Brings one host to `now`; `draining` while answers are taken in (a host that has its
    /// count waits for those already queued, see [`Host::should_finish`]).
    fn tick_host(&mut self, index: usize, now: Instant, draining: bool) {
        let config = self.config;
        let host = &mut self.hosts[index];
        if host.is_done() {
            return;
        }
        let mut timeouts = host.expire(&config, now);
        if host.should_finish(&config, now, draining) {
            timeouts.extend(host.finish());
            self.live -= 1;
        }
        let events = timeouts.into_iter().map(|record| Event::Timeout {
            host: index,
            record,
        });
        self.events.extend(events);
    }

    /// Ends the session (a signal, the deadline): unanswered requests are reported.
    pub fn stop(&mut self) {
        for (index, host) in self.hosts.iter_mut().enumerate() {
            if host.is_done() {
                continue;
            }
            let events = host.finish().into_iter().map(|record| Event::Timeout {
                host: index,
                record,
            });
            self.events.extend(events);
        }
        self.live = 0;
        self.stopped = true;
    }

    /// Reports every host's statistics so far (SIGQUIT).
    pub fn status(&mut self) {
        let stats = self.hosts.iter().map(|h| h.stats).collect();
        self.events.push_back(Event::Status(stats));
    }

    /// When the session must next be ticked or asked for a request; `None`: only an answer
    /// or a signal can move it.
    pub fn wake_at(&self, now: Instant) -> Option<Instant> {
        if self.is_over() {
            return None;
        }
        let hosts = (0..self.hosts.len()).filter_map(|h| self.wake_of(h, now));
        hosts.chain(self.end).min()
    }

    /// When host `host` next needs the session: its next request, a timeout, the end of its
    /// wait.
    pub fn wake_of(&self, host: usize, now: Instant) -> Option<Instant> {
        let host = self.hosts.get(host)?;
        [host.due(&self.config, now), host.wake(&self.config)]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next thing that happened, oldest first.
    pub fn next_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// One summary per host, in order.
    pub fn summaries(&self) -> Vec<PingSummary> {
        self.hosts.iter().map(|h| h.summary(self.start)).collect()
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
