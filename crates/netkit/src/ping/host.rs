//! One host of a ping session, kept by iputils' rules: every reply counts however late it
//! comes (a second one to the same request is a duplicate); ICMP errors about any of the
//! requests count whenever they come; `pipe` is the most requests in flight when one was
//! answered; after the last request of `-c` (without `-w`) the host waits twice the longest
//! round trip (at least one interval) when replies came, else `-W` (a wait of zero, untimed
//! requests at an interval of 0, has no limit: iputils' `setitimer` of zero disarms its
//! alarm, so it waits for every answer, the deadline or a signal); with `-c` it is finished
//! when replies plus errors reach the count, with `-w` at the first error, but only once the
//! answers already queued are taken in (iputils reads every queued one before it checks the
//! count). A finished host is frozen: later replies to it are ignored, as iputils, having
//! exited, would not see them.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::config::PingConfig;
use super::pacer::Pacer;
use super::seqset::SeqSet;
use super::stats::Stats;
use super::stats::SummaryParts;
use crate::icmp::{ErrorReply, Reply};
use crate::report::ping::{PingError, PingReply, PingSummary, PingTimeout};
use crate::target::Target;

/// One host's progress.
#[derive(Debug)]
pub(super) struct Host {
    pub target: Target,
    pub name: String,
    pub stats: Stats,
    answered: SeqSet,
    /// Requests an ICMP error answered (reported as such, never as timed out).
    errored: SeqSet,
    /// Requests not yet answered nor reported as timed out: sequence number and send time.
    pending: VecDeque<(u64, Instant)>,
    acked: u64,
    pipe: u64,
    pacer: Pacer,
    linger_until: Option<Instant>,
    /// The wait after the last request is `-W 0`'s, without limit, until a reply comes.
    linger_open: bool,
    /// When the host reached its count (or, with `-w`, an error) while requests were in
    /// flight: it finishes once the answers already queued are in.
    settling: Option<Instant>,
    done: bool,
    last_sent: Option<Instant>,
    rtts: Option<Vec<Option<f64>>>,
}

/// What a request just sent brought along.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sent {
    /// Its sequence number.
    pub seq: u64,
    /// The previous request, still unanswered (for `-O`).
    pub outstanding: Option<u64>,
}

impl Host {
    pub fn new(target: &Target, config: &PingConfig) -> Host {
        Host {
            target: target.clone(),
            name: target.shown(),
            stats: Stats::default(),
            answered: SeqSet::default(),
            errored: SeqSet::default(),
            pending: VecDeque::new(),
            acked: 0,
            pipe: 0,
            pacer: Pacer::new(config.interval, config.preload),
            linger_until: None,
            linger_open: false,
            settling: None,
            done: false,
            last_sent: None,
            rtts: config.per_probe.then(Vec::new),
        }
    }

    /// Whether the host is finished (frozen).
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn in_flight(&self) -> u64 {
        self.stats.transmitted - self.acked
    }

    /// When the next request may go (`None`: this host sends no more); at or before `now`
    /// means now.
    pub fn due(&self, config: &PingConfig, now: Instant) -> Option<Instant> {
        let more = config
            .count
            .is_none_or(|count| self.stats.transmitted < count);
        if self.done || self.settling.is_some() || !(more || config.deadline.is_some()) {
            return None;
        }
        Some(self.pacer.due(self.in_flight()).unwrap_or(now))
    }

    /// Records a request sent at `now`.
    pub fn send(&mut self, config: &PingConfig, now: Instant) -> Sent {
        let previous = self.stats.transmitted;
        let outstanding = (previous > 0 && !self.answered.contains(wire(previous)))
            .then_some(previous)
            .filter(|_| config.outstanding);
        self.stats.sent();
        self.pacer.take(now, self.in_flight());
        let seq = self.stats.transmitted;
        self.answered.remove(wire(seq));
        self.errored.remove(wire(seq));
        self.pending.push_back((seq, now));
        self.last_sent = Some(now);
        if let Some(rtts) = &mut self.rtts {
            rtts.push(None);
        }
        if config.count == Some(seq) && config.deadline.is_none() {
            self.linger_until = self.linger(config).map(|wait| now + wait);
            self.linger_open =
                self.stats.received == 0 && config.linger >= super::config::LINGER_WITHOUT_LIMIT;
        }
        Sent { seq, outstanding }
    }

    /// How long to wait after the last request: twice the longest round trip (at least one
    /// interval) once a reply came, else `-W`; `None` without limit.
    fn linger(&self, config: &PingConfig) -> Option<Duration> {
        match self.stats.received {
            0 => Some(config.linger),
            _ => self.linger_after_replies(),
        }
    }

    /// Twice the longest round trip, at least one interval; `None` (no limit) when that is
    /// zero (no round trip measured, `-s` below 16, at an interval of 0), as iputils, whose
    /// alarm of zero is no alarm.
    fn linger_after_replies(&self) -> Option<Duration> {
        Some((self.stats.max_rtt() * 2).max(self.pacer.interval())).filter(|w| !w.is_zero())
    }

    /// The full sequence number that wire number `seq` stands for: the latest one sent.
    fn full_seq(&self, seq: u16) -> Option<u64> {
        let sent = self.stats.transmitted;
        let back = u64::from(wire(sent).wrapping_sub(seq));
        sent.checked_sub(back).filter(|full| *full > 0)
    }

    /// iputils' `acknowledge`: the pipe and the newest answered request.
    fn acknowledge(&mut self, seq: u64) {
        let behind = self.stats.transmitted - seq;
        if behind <= 0x7fff {
            self.pipe = self.pipe.max(behind + 1);
            self.acked = self.acked.max(seq);
        }
    }

    /// Counts an echo reply; the record to report, unless the host is finished or never sent
    /// that number.
    pub fn reply(&mut self, reply: &Reply, config: &PingConfig) -> Option<PingReply> {
        if self.done {
            return None;
        }
        let seq = self.full_seq(reply.seq)?;
        self.acknowledge(seq);
        let dup = self.answered.insert(reply.seq);
        self.stats.replied(reply.rtt, dup);
        if let (false, Some(rtts)) = (dup, &mut self.rtts) {
            if let Some(slot) = usize::try_from(seq - 1).ok().and_then(|i| rtts.get_mut(i)) {
                *slot = rtt_ms(reply);
            }
        }
        if config.adaptive && reply.rtt.is_some() {
            self.adapt(config);
        }
        Some(self.record(reply, seq, (dup, false)))
    }

    /// The record of `reply` to request `seq`, a duplicate or `corrupted` as said.
    fn record(&self, reply: &Reply, seq: u64, (dup, corrupted): (bool, bool)) -> PingReply {
        PingReply {
            host: self.name.clone(),
            addr: reply.addr,
            seq,
            ttl: reply.ttl,
            bytes: reply.bytes,
            rtt_ms: rtt_ms(reply),
            dup,
            corrupted,
        }
    }

    /// Counts a reply with a wrong checksum, as iputils: corrupted, neither received nor an
    /// answer to its request (nor a round trip); the record to report, unless the host is
    /// finished or never sent that number.
    pub fn corrupted(&mut self, reply: &Reply) -> Option<PingReply> {
        if self.done {
            return None;
        }
        let seq = self.full_seq(reply.seq)?;
        self.stats.corrupted += 1;
        Some(self.record(reply, seq, (false, true)))
    }

    /// `-A`: the interval follows the moving average of the round trips (iputils'
    /// `update_interval`), rounded to whole milliseconds, never below the user minimum.
    fn adapt(&mut self, config: &PingConfig) {
        let Some(ewma) = self.stats.ewma() else {
            return;
        };
        let ms = (ewma.as_micros() + 500) / 1000;
        let interval = Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX));
        self.pacer.set_interval(interval.max(config.min_interval));
    }

    /// Notes that an answer (reply or error) was taken in at `now`: it moves iputils' 10 ms
    /// floor (see the pacer).
    /// After the last request, the first reply ends `-W 0`'s wait without limit: twice the
    /// longest round trip from now ([`super::LINGER_WITHOUT_LIMIT`]).
    pub fn heard(&mut self, now: Instant) {
        let in_flight = self.in_flight();
        self.pacer.heard(now, in_flight);
        if self.linger_open && self.stats.received > 0 {
            self.linger_open = false;
            self.linger_until = self.linger_after_replies().map(|wait| now + wait);
        }
    }

    /// The full number of wire request `seq` that a notice (redirect) is about, unless the
    /// host is finished or never sent it; nothing is counted.
    pub fn notice(&self, seq: u16) -> Option<u64> {
        match self.done {
            true => None,
            false => self.full_seq(seq),
        }
    }

    /// Counts an ICMP error about wire request `seq`; its full number, unless the host is
    /// finished or never sent it. An IPv4 error answers its request for the pipe and the
    /// pacing (`answers`), an IPv6 one does not: iputils acknowledges only the former.
    pub fn error(&mut self, seq: u16, answers: bool) -> Option<u64> {
        if self.done {
            return None;
        }
        let seq = self.full_seq(seq)?;
        if answers {
            self.acknowledge(seq);
        }
        self.errored.insert(wire(seq));
        self.stats.errors += 1;
        Some(seq)
    }

    /// The record of `error` about request `seq`.
    pub fn error_record(&self, seq: u64, error: &ErrorReply) -> PingError {
        PingError {
            host: self.name.clone(),
            addr: self.target.addr,
            seq,
            from: error.from,
            error: error.describe(),
            icmp_type: error.msg_type,
            icmp_code: error.code,
        }
    }

    /// Whether request `seq` is still waiting for its answer: no reply nor ICMP error came.
    fn unanswered(&self, seq: u64) -> bool {
        !self.answered.contains(wire(seq)) && !self.errored.contains(wire(seq))
    }

    /// The kernel refused the request just sent: the rest of the preload waits an interval.
    pub fn refused(&mut self) {
        self.pacer.refused();
    }

    /// Counts a local error (the request was not sent: too big for the path MTU).
    pub fn local_error(&mut self) {
        if !self.done {
            self.stats.errors += 1;
        }
    }

    /// Whether, at `now`, the host has what it waited for: `-c` replies and errors, an error
    /// under `-w`, or the end of the wait after its last request. While answers are being
    /// taken in (`draining`) with requests still in flight, the first two wait for the
    /// answers already queued: iputils reads on (without blocking) while anything is in
    /// flight and checks them only when nothing more is queued, so that `-c 2 -w 2 -l 3`
    /// counts the three replies that came together. The host then asks to be woken at once
    /// ([`Host::wake`]), and sends nothing more.
    pub fn should_finish(&mut self, config: &PingConfig, now: Instant, draining: bool) -> bool {
        let answers = self.stats.received + self.stats.errors;
        let ended = self.linger_until.is_some_and(|at| now >= at);
        let enough = config.count.is_some_and(|count| answers >= count)
            || (config.deadline.is_some() && self.stats.errors > 0);
        if enough && draining && self.in_flight() > 0 {
            self.settling.get_or_insert(now);
            return ended;
        }
        enough || ended
    }

    /// Requests unanswered (by a reply or an ICMP error) for `-W` by `now`, oldest first; each
    /// is reported once.
    pub fn expire(&mut self, config: &PingConfig, now: Instant) -> Vec<PingTimeout> {
        let mut expired = Vec::new();
        while let Some(&(seq, sent)) = self.pending.front() {
            let unanswered = self.unanswered(seq);
            if unanswered && sent + config.linger > now {
                break;
            }
            self.pending.pop_front();
            if unanswered {
                expired.push(self.timeout(seq));
            }
        }
        expired
    }

    /// Freezes the host; every request still unanswered (by a reply or an ICMP error) is
    /// reported as timed out.
    pub fn finish(&mut self) -> Vec<PingTimeout> {
        self.done = true;
        let pending = std::mem::take(&mut self.pending);
        pending
            .into_iter()
            .filter(|(seq, _)| self.unanswered(*seq))
            .map(|(seq, _)| self.timeout(seq))
            .collect()
    }

    fn timeout(&self, seq: u64) -> PingTimeout {
        PingTimeout {
            host: self.name.clone(),
            addr: self.target.addr,
            seq,
        }
    }

    /// The next moment something is due besides sending: a request's `-W`, the end of the
    /// wait after the last request, at once when settling (the count reached).
    pub fn wake(&self, config: &PingConfig) -> Option<Instant> {
        if self.done {
            return None;
        }
        let timeout = self.pending.front().map(|(_, sent)| *sent + config.linger);
        [timeout, self.linger_until, self.settling]
            .into_iter()
            .flatten()
            .min()
    }

    /// The host's summary; `time` runs from `start` to its last request.
    pub fn summary(&self, start: Instant) -> PingSummary {
        let elapsed = self
            .last_sent
            .map_or(Duration::ZERO, |last| last.saturating_duration_since(start));
        let parts = SummaryParts {
            pipe: self.pipe,
            elapsed,
            rtts_ms: self.rtts.clone(),
        };
        self.stats.summary(&self.name, self.target.addr, parts)
    }
}

/// A reply's round trip in milliseconds, when it carried its send time.
fn rtt_ms(reply: &Reply) -> Option<f64> {
    reply.rtt.map(|rtt| rtt.as_nanos() as f64 / 1e6)
}

/// The 16-bit number a request carries on the wire.
fn wire(seq: u64) -> u16 {
    seq as u16
}
