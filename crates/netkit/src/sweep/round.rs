//! One round of a sweep: one task sends the probes the schedule (module `schedule`) asks
//! for (one of each method per target, module `multi`), paced by the meter's rate (module
//! `loss`), and reads the answers as they come, reporting each live host at once. The round ends as soon as every target is settled, or
//! when the schedule has probed every silent target enough and the wait for late answers is
//! over — silent targets cost one wait in all, not one each (and, when a slow-down of the
//! rate is still on trial then, once a few more control probes judged it). Then the silent
//! and unreachable targets are reported in target order, and the summary. With several methods, a target is
//! alive at the first answer by any of them (the record says which), and unreachable only once
//! every method said so: a firewall's ICMP error to an echo request says nothing of TCP.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use tokio::time::{Duration, Instant};

use super::bitset::Bitset;
use super::event::Event;
use super::loss::{Meter, Throttle};
use super::multi::Probers;
use super::neighbour::Mac;
use super::reject::Rejections;
use super::reply::{Answer, Reply, Tag};
use super::rtt::Rtt;
use super::schedule::{Member, Next, Schedule, View};
use super::unreach::{Unreach, UnreachMap};
use super::{Config, Sink};
use crate::error::Error;
use crate::pace::{interval_of, Pacer};
use crate::report::sweep::{
    millis, ChangeRecord, DuplicateRecord, HostRecord, Progress, SummaryRecord, TcpAnswer,
    ThrottleRecord,
};
use crate::target::Targets;

/// How often progress is reported.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
/// The most probes sent before the task looks at the answers again.
const MAX_BURST: usize = 256;
/// The control probes sent after the round's targets are settled, to judge a slow-down still
/// on trial (see [`Work::settle`]): at least these, ...
const SETTLE_CONTROLS: u32 = super::loss::WINDOW;
/// ... and more, up to twice as many, while they take less than this.
const SETTLE_TIME: Duration = Duration::from_millis(500);
/// The longest stretch of missed sending time the pacer makes up for at once, so that a
/// coarse timer does not lower the rate.
const PACE_BURST: Duration = Duration::from_millis(5);

/// What one round needs to know.
#[derive(Debug)]
pub(super) struct Round<'a> {
    /// Round number, from 1.
    pub number: u64,
    /// The targets, iterated lazily.
    pub targets: &'a Targets,
    /// How many targets there are.
    pub total: u64,
    /// Timeout, retries, rate.
    pub config: &'a Config,
    /// Who answered in the previous round, to report changes.
    pub previous: Option<&'a Bitset>,
    /// Whether to keep every target's round-trip time (for per-host metrics).
    pub keep_rtts: bool,
    /// The targets' zones, for the records.
    pub zones: &'a super::zone::Zones,
}

/// What a sweep learns about the network and keeps from round to round.
#[derive(Debug)]
pub(super) struct Learned {
    /// Round-trip times and the waits derived from them.
    pub rtt: Rtt,
    /// Loss, control probes and the sending rate.
    pub meter: Meter,
}

/// What a round found.
#[derive(Debug)]
pub(super) struct Outcome {
    /// Who answered.
    pub alive: Bitset,
    /// Each target's round-trip time in seconds (NaN when silent), when asked for.
    pub rtts: Option<Vec<f32>>,
    /// Targets that came up and went down since the previous round.
    pub changes: (u64, u64),
    /// Counts and duration.
    pub summary: SummaryRecord,
}

/// The answers collected so far.
struct Tally {
    alive: Bitset,
    done: Bitset,
    unreach: UnreachMap,
    /// Probes the targets rejected themselves, and whether a rejecting limiter was seen.
    rejections: Rejections,
    /// With several methods: which methods said a target is unreachable (a bit per slot).
    unreach_by: HashMap<u64, u32>,
    rtts: Option<Vec<f32>>,
    came_up: u64,
    probes: u64,
}

/// Everything the round loop works with.
struct Work<'r, 'l> {
    round: &'r Round<'r>,
    learned: &'l mut Learned,
    tally: Tally,
    schedule: Schedule,
    pacer: Pacer,
    /// A probe held back while a control probe took its turn.
    held: Option<(Member, u8)>,
    /// Whether the round was stopped before its end (Ctrl-C).
    interrupted: bool,
}

/// Runs one round: probes go out through `probers`, and their answers come back from them.
/// When `stop` completes first, the round ends with what it settled.
pub(super) async fn run(
    round: &Round<'_>,
    learned: &mut Learned,
    probers: &mut Probers,
    sink: &mut Sink<'_>,
    stop: &mut Pin<&mut impl Future<Output = ()>>,
) -> Result<Outcome, Error> {
    let start = Instant::now();
    learned.meter.start_round();
    let retries = u8::try_from(round.config.retries).unwrap_or(u8::MAX);
    let max_attempts = retries.saturating_add(1).min(Tag::MAX_ATTEMPT);
    let mut work = Work {
        round,
        tally: Tally {
            alive: Bitset::new(round.total),
            done: Bitset::new(round.total),
            unreach: UnreachMap::new(),
            rejections: Rejections::new(),
            unreach_by: HashMap::new(),
            rtts: round
                .keep_rtts
                .then(|| vec![f32::NAN; usize::try_from(round.total).unwrap_or(0)]),
            came_up: 0,
            probes: 0,
        },
        schedule: Schedule::new(round.targets.iter(), 2, max_attempts, start),
        pacer: Pacer::new(interval_of(learned.meter.rate()), PACE_BURST),
        learned,
        held: None,
        interrupted: false,
    };
    let mut result = work.drive(probers, sink, stop).await;
    if result.is_ok() && !work.interrupted {
        result = work.settle(probers, sink, stop).await;
    }
    probers.end_round();
    result?;
    let timeout = work.learned.rtt.control_timeout();
    if let Some(throttle) = work.learned.meter.end_round(Instant::now(), timeout) {
        let record = throttle_record(round.number, &throttle);
        sink(Event::Throttle(record)).map_err(output_error)?;
    }
    work.finish(start, sink)
}

impl Work<'_, '_> {
    /// Sends and listens until the round is over, or `stop` completes.
    async fn drive(
        &mut self,
        probers: &mut Probers,
        sink: &mut Sink<'_>,
        stop: &mut Pin<&mut impl Future<Output = ()>>,
    ) -> Result<(), Error> {
        let mut ticker = tokio::time::interval(PROGRESS_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            while let Some((slot, reply)) = probers.try_recv() {
                self.on_reply(slot, reply, probers.voters(reply.index, reply.addr), sink)?;
            }
            if self.tally.done.count() == self.round.total {
                break;
            }
            self.check_controls(sink)?;
            let Some(wake) = self.send_some(probers).await else {
                break;
            };
            let timeout = self.learned.rtt.control_timeout();
            let due = self.learned.meter.collapse_due(Instant::now(), timeout);
            let wake = due.map_or(wake, |due| due.min(wake));
            tokio::select! {
                biased;
                Some((slot, reply)) = probers.recv() => {
                    self.on_reply(slot, reply, probers.voters(reply.index, reply.addr), sink)?;
                }
                () = tokio::time::sleep_until(wake) => {}
                _ = ticker.tick() => sink(Event::Progress(self.progress())).map_err(output_error)?,
                () = stop.as_mut() => {
                    self.interrupted = true;
                    break;
                }
            }
        }
        // Answers already read by the receiver (or waiting in the socket) still count.
        for _ in 0..4 {
            tokio::task::yield_now().await;
            while let Some((slot, reply)) = probers.try_recv() {
                self.on_reply(slot, reply, probers.voters(reply.index, reply.addr), sink)?;
            }
        }
        Ok(())
    }

    /// The round's targets are settled while a slow-down is still on trial (a small range is
    /// all found before the controls sent slower fill the window that judges it):
    /// [`SETTLE_CONTROLS`] more control probes (up to twice as many within [`SETTLE_TIME`]) go
    /// out alone, at the slower rate, their answers
    /// are awaited (a control timeout after the last), and the meter judges the trial on them
    /// at the round's end (`Meter::end_round`); they stop as soon as those resolved make the
    /// claim (`Meter::claim_sure`). Without them the round ended with a handful of
    /// slower controls, too few to tell a policer from random loss: a /26 behind a policer of
    /// 50/s went unreported in 9 sweeps of 50. A Ctrl-C meanwhile ends the round as
    /// interrupted, as during the round.
    async fn settle(
        &mut self,
        probers: &mut Probers,
        sink: &mut Sink<'_>,
        stop: &mut Pin<&mut impl Future<Output = ()>>,
    ) -> Result<(), Error> {
        let (start, mut sent, mut last) = (Instant::now(), 0, None);
        loop {
            while let Some((slot, reply)) = probers.try_recv() {
                self.on_reply(slot, reply, probers.voters(reply.index, reply.addr), sink)?;
            }
            self.check_controls(sink)?;
            let now = Instant::now();
            let more =
                sent < SETTLE_CONTROLS || (sent < 2 * SETTLE_CONTROLS && now < start + SETTLE_TIME);
            let waited = last.is_none_or(|at| now >= at + self.learned.rtt.control_timeout());
            let meter = &self.learned.meter;
            if !meter.on_trial() || meter.claim_sure() || (!more && waited) {
                return Ok(());
            }
            let mut wake = last.map_or(now, |at| at + self.learned.rtt.control_timeout());
            if more {
                if self.pacer.ready(now.into_std()) {
                    let Some((index, addr, slot)) = self.learned.meter.settling_control() else {
                        return Ok(());
                    };
                    self.pacer.take(now.into_std());
                    self.tally.probes += 1;
                    let tag = Tag::new(self.round.number, Tag::CONTROL);
                    let began = Instant::now();
                    probers.send_by(slot, tag, index, addr).await;
                    let at = Instant::now();
                    self.learned.meter.sent_control(index, began, at);
                    (sent, last) = (sent + 1, Some(at));
                    continue;
                }
                wake = self.pacer.next().map_or(now, Instant::from_std);
            }
            tokio::select! {
                biased;
                Some((slot, reply)) = probers.recv() => {
                    self.on_reply(slot, reply, probers.voters(reply.index, reply.addr), sink)?;
                }
                () = tokio::time::sleep_until(wake) => {}
                () = stop.as_mut() => {
                    self.interrupted = true;
                    return Ok(());
                }
            }
        }
    }

    /// Resolves the control probes whose time is up, follows the meter's rate, and reports
    /// a confirmed slow-down.
    fn check_controls(&mut self, sink: &mut Sink<'_>) -> Result<(), Error> {
        let timeout = self.learned.rtt.control_timeout();
        let throttle = self.learned.meter.expire(Instant::now(), timeout);
        self.pacer
            .set_interval(interval_of(self.learned.meter.rate()));
        let Some(throttle) = throttle else {
            return Ok(());
        };
        let record = throttle_record(self.round.number, &throttle);
        sink(Event::Throttle(record)).map_err(output_error)
    }

    /// Sends what may go now (at most [`MAX_BURST`] probes); returns when to look again, or
    /// `None` when the round is over.
    async fn send_some(&mut self, probers: &mut Probers) -> Option<Instant> {
        let now = Instant::now();
        for _ in 0..MAX_BURST {
            if !self.pacer.ready(now.into_std()) {
                return self.pacer.next().map(Instant::from_std);
            }
            let (member, attempt) = match self.held.take() {
                Some(held) => held,
                None => match self
                    .schedule
                    .next(now, view(&self.tally, self.round, self.learned))
                {
                    Next::Probe(member, attempt) => (member, attempt),
                    Next::Wait(until) => return Some(until),
                    Next::Finished => return None,
                },
            };
            let number = self.round.number;
            if attempt > 1 {
                // A witness may begin (module `witness`): its rate from this probe on.
                self.learned.meter.reprobing(now);
                self.pacer
                    .set_interval(interval_of(self.learned.meter.rate()));
            }
            if let Some((index, addr, slot)) = self.learned.meter.control(attempt > 1) {
                // A control goes only by the method that found the host: the loss it measures
                // is that of probes the host answers.
                self.pacer.take(now.into_std());
                self.tally.probes += 1;
                self.held = Some((member, attempt));
                let tag = Tag::new(number, Tag::CONTROL);
                let began = Instant::now();
                probers.send_by(slot, tag, index, addr).await;
                self.learned
                    .meter
                    .sent_control(index, began, Instant::now());
                continue;
            }
            // One probe per method that sends one to this target.
            let sent = probers.voters(member.index, member.addr);
            for _ in 0..sent {
                self.pacer.take(now.into_std());
            }
            self.tally.probes += sent as u64;
            let tag = Tag::new(number, attempt);
            probers.send(tag, member.index, member.addr).await;
        }
        tokio::task::yield_now().await;
        Some(now)
    }

    /// Takes in an answer by the method in `slot` (`voters`: how many methods probe its
    /// target); reports a host (and a came-up change) at its first answer.
    fn on_reply(
        &mut self,
        slot: u8,
        reply: Reply,
        voters: usize,
        sink: &mut Sink<'_>,
    ) -> Result<(), Error> {
        if !reply.tag.is_round(self.round.number) {
            return Ok(());
        }
        let (rtt, mac, tcp) = match reply.answer {
            Answer::Alive(rtt) => (rtt, None, None),
            Answer::Tcp(rtt, how) => (rtt, None, Some(how)),
            Answer::Neighbour { mac, nth, .. } if nth > 1 => {
                return self.duplicate(&reply, mac, nth, sink)
            }
            Answer::Neighbour { rtt, mac, .. } => (rtt, Some(mac), None),
            Answer::Unreachable(why) => {
                self.on_unreachable(slot, &reply, why, voters);
                return Ok(());
            }
            Answer::Absent => {
                self.tally.done.set(reply.index);
                return Ok(());
            }
        };
        self.learned.rtt.sample(rtt);
        self.tally.rejections.answered(reply.index);
        if reply.tag.attempt() == Tag::CONTROL {
            self.learned
                .meter
                .answered(reply.index, rtt, Instant::now());
            return Ok(());
        }
        if !self.tally.alive.set(reply.index) {
            let attempt = reply.tag.attempt();
            self.learned.meter.answered_again(reply.index, attempt);
            return Ok(());
        }
        self.tally.done.set(reply.index);
        let meter = &mut self.learned.meter;
        meter.found(reply.index, reply.addr, slot, reply.tag.attempt());
        let by = self.round.config.methods.get(slot).map(|m| m.to_string());
        self.alive(&reply, (rtt, mac, tcp), by, sink)
    }

    /// Keeps why a target is unreachable; it is settled once every method that probes it
    /// (`voters` of them) said so. An error
    /// sent by the target itself (its firewall rejecting this probe, maybe a limiter) settles
    /// nothing: the target is probed again like a silent one (fping does), and reported
    /// unreachable only if no probe is answered. Such a rejection is a limiter's throttling
    /// signal (module `reject`): a rejected control probe counts as lost at once.
    fn on_unreachable(&mut self, slot: u8, reply: &Reply, why: Unreach, voters: usize) {
        let alive = self.tally.alive.get(reply.index);
        if why.is_from(reply.addr) {
            self.tally.rejections.rejected(reply.index, alive);
            if reply.tag.attempt() == Tag::CONTROL {
                self.learned.meter.refused(reply.index);
            }
        }
        if alive {
            return;
        }
        let first = self.tally.unreach.insert(reply.index, why);
        if why.is_from(reply.addr) {
            return;
        }
        let settled = match voters {
            0 | 1 => first,
            n => {
                let votes = self.tally.unreach_by.entry(reply.index).or_default();
                *votes |= 1u32 << u32::from(slot).min(31);
                votes.count_ones() as usize >= n
            }
        };
        if settled {
            self.tally.done.set(reply.index);
        }
    }

    /// Reports another MAC address answering for a live host's address.
    fn duplicate(
        &self,
        reply: &Reply,
        mac: Mac,
        nth: u16,
        sink: &mut Sink<'_>,
    ) -> Result<(), Error> {
        if !self.tally.alive.get(reply.index) {
            return Ok(());
        }
        let record = DuplicateRecord {
            addr: reply.addr,
            mac: mac.to_string(),
            nth,
            round: self.round.number,
            zone: self.round.zones.name(reply.index),
        };
        sink(Event::Duplicate(record)).map_err(output_error)
    }

    fn alive(
        &mut self,
        reply: &Reply,
        (rtt, mac, tcp): (Duration, Option<Mac>, Option<TcpAnswer>),
        by: Option<String>,
        sink: &mut Sink<'_>,
    ) -> Result<(), Error> {
        let number = self.round.number;
        let slot = usize::try_from(reply.index).ok();
        if let Some(kept) = self.tally.rtts.as_mut().and_then(|r| r.get_mut(slot?)) {
            *kept = rtt.as_secs_f32();
        }
        let zone = self.round.zones.name(reply.index);
        let host = HostRecord {
            addr: reply.addr,
            alive: true,
            rtt_ms: Some(millis(rtt)),
            round: number,
            error: None,
            mac: mac.map(|m| m.to_string()),
            by,
            tcp,
            zone: zone.clone(),
            ttl: reply.ttl,
        };
        sink(Event::Host(host)).map_err(output_error)?;
        if self.round.previous.is_some_and(|p| !p.get(reply.index)) {
            self.tally.came_up += 1;
            let change = ChangeRecord {
                addr: reply.addr,
                alive: true,
                round: number,
                zone,
            };
            sink(Event::Change(change)).map_err(output_error)?;
        }
        Ok(())
    }

    fn progress(&self) -> Progress {
        Progress {
            round: self.round.number,
            probed: self.schedule.taken(),
            alive: self.tally.alive.count(),
            total: self.round.total,
        }
    }

    /// Reports the silent and unreachable targets and the summary.
    fn finish(self, start: Instant, sink: &mut Sink<'_>) -> Result<Outcome, Error> {
        let interrupted = self.interrupted;
        let (went_down, unreachable) = report_rest(self.round, &self.tally, interrupted, sink)?;
        let (meter, rtt) = (&self.learned.meter, &self.learned.rtt);
        let alive = self.tally.alive;
        // Stopped early, the silent targets may still answer: neither alive nor inactive.
        let unsettled = match interrupted {
            true => self.round.total - self.tally.done.count(),
            false => 0,
        };
        let summary = SummaryRecord {
            round: self.round.number,
            alive: alive.count(),
            dead: self.round.total - alive.count() - unreachable - unsettled,
            unreachable,
            interrupted,
            unsettled,
            elapsed_s: start.elapsed().as_secs_f64(),
            probes: self.tally.probes,
            rate: meter.rate(),
            throttled: meter.throttled(),
            loss_pct: meter.round_loss().map(|(l, _)| (l * 1000.0).round() / 10.0),
            loss_probes: meter.round_loss().map_or(0, |(_, n)| u64::from(n)),
            timeout_ms: millis(rtt.timeout()),
        };
        sink(Event::Summary(summary.clone())).map_err(output_error)?;
        Ok(Outcome {
            alive,
            rtts: self.tally.rtts,
            changes: (self.tally.came_up, went_down),
            summary,
        })
    }
}

/// What the schedule needs to see of the round.
fn view<'a>(tally: &'a Tally, round: &Round<'a>, learned: &'a Learned) -> View<'a> {
    View {
        done: &tally.done,
        alive: &tally.alive,
        rejections: &tally.rejections,
        previous: round.previous,
        meter: &learned.meter,
        rtt: &learned.rtt,
    }
}

/// Reports every target that did not answer, in order (and a went-down change for those
/// alive before); returns how many went down and how many are unreachable. `settled_only`
/// (an interrupted round): only those an answer settled (unreachable), not the silent ones.
fn report_rest(
    round: &Round<'_>,
    tally: &Tally,
    settled_only: bool,
    sink: &mut Sink<'_>,
) -> Result<(u64, u64), Error> {
    let (mut went_down, mut unreachable) = (0, 0);
    if tally.alive.count() == round.total {
        return Ok((0, 0));
    }
    for (index, target) in (0u64..).zip(round.targets.iter()) {
        if tally.alive.get(index) || settled_only && !tally.done.get(index) {
            continue;
        }
        let error = tally.unreach.get(index).map(|why| why.to_string());
        unreachable += u64::from(error.is_some());
        let (addr, zone) = (target.addr, crate::target::zone_name(target.zone));
        let host = HostRecord {
            addr,
            alive: false,
            rtt_ms: None,
            round: round.number,
            error,
            mac: None,
            by: None,
            tcp: None,
            zone: zone.clone(),
            ttl: None,
        };
        sink(Event::Host(host)).map_err(output_error)?;
        if round.previous.is_some_and(|prev| prev.get(index)) {
            went_down += 1;
            let change = ChangeRecord {
                addr,
                alive: false,
                round: round.number,
                zone,
            };
            sink(Event::Change(change)).map_err(output_error)?;
        }
    }
    Ok((went_down, unreachable))
}

fn throttle_record(round: u64, throttle: &Throttle) -> ThrottleRecord {
    let pct = |share: f64| (share * 1000.0).round() / 10.0;
    ThrottleRecord {
        round,
        from_rate: throttle.from,
        to_rate: throttle.to,
        answered_pct: pct(throttle.answered),
        expected_pct: pct(throttle.expected),
    }
}

fn output_error(err: std::io::Error) -> Error {
    Error::io("write the results", err)
}
