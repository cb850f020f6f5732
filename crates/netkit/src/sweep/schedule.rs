//! Which probe goes next in a round. Targets are taken from the (lazy) target list in batches
//! of [`BATCH`]; a batch is probed, then waits the gap its attempt number calls for (the
//! probe timeout from the RTTs seen, backed off 1.5 times per attempt, module `rtt`) and its
//! members still silent are probed again — re-probes go before new targets, and only to
//! silent targets. Batches waiting for the same attempt sit in one FIFO queue, so the next one
//! due is always at the front of one of the queues.
//!
//! How many probes a silent target gets is decided by the loss measured on the way (module
//! `loss`): a batch is retired when the chance that a live host would have missed every one
//! of its probes — the product of the loss estimates of the epochs they were sent in — falls
//! below [`MISS`]. A target that was alive in the previous round (periodic mode) must fall
//! below [`MISS_CONFIRM`] before it is reported gone, so a lossy link does not make hosts
//! flap. At least `min_attempts` and at most `max_attempts` probes go to each silent target;
//! probes wasted on a far side that was throttling the sweep at the time (module `loss`) do
//! not count against the most, nor do re-probes that found a member of the batch alive (proof
//! that probes to live hosts were being lost, as nmap takes an answer to a retransmission),
//! and a batch whose last re-probe found one is not probed enough yet: up to
//! [`Tag::MAX_ATTEMPT`] probes in all.

use std::collections::VecDeque;
use std::net::IpAddr;

use tokio::time::{Duration, Instant};

use super::bitset::Bitset;
use super::loss::Meter;
use super::reject::Rejections;
use super::reply::Tag;
use super::rtt::Rtt;
use crate::target::TargetIter;

/// Targets per batch.
pub const BATCH: usize = 32;
/// A silent target is given up when a live host would have answered one of its probes with
/// at least this certainty (1 - MISS).
pub const MISS: f64 = 1e-5;
/// The same for a target that was alive in the previous round: it is reported gone only then.
pub const MISS_CONFIRM: f64 = 1e-9;
/// The most times the judgement of a batch that had its most probes is put off for want of
/// control probes (see `Schedule::postpone`).
const POSTPONE: u8 = 3;

/// A target to probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Its position in the target list.
    pub index: u64,
    /// Its address.
    pub addr: IpAddr,
}

#[derive(Debug)]
struct Batch {
    members: Vec<Member>,
    /// The epochs each probe so far was sent in: those of its first and its last member (a
    /// batch sent while the rate changed spans them; see [`Span`]).
    epochs: Vec<Span>,
    /// The epoch the probe being sent began in (its first member's).
    began: Option<u16>,
    /// When the last probe went (or, once postponed, when its wait began again).
    sent: Instant,
    /// When the last probe went.
    probed: Instant,
    /// How many times its judgement was put off for want of controls (see
    /// [`Schedule::postpone`]).
    postponed: u8,
    /// How many probes it had when it was first found probed enough: members that rejected
    /// probes during a limiter's throttling get as many more (module `reject`).
    enough_at: Option<u8>,
    /// Re-probes that found a member alive: they do not count against the most.
    fruitful: u8,
    /// Whether the last re-probe found a member alive: then the batch is not probed enough.
    paid_off: bool,
}

impl Batch {
    fn attempts(&self) -> u8 {
        u8::try_from(self.epochs.len()).unwrap_or(u8::MAX)
    }
}

/// The epochs (first, last) one probe of a batch went out in, its members one after the
/// other. A batch whose sending a slow-down cut in two is judged by the worst of them: wasted
/// if any was, and at the highest loss of any. It was judged by the epoch its last member
/// went in alone: behind a policer of 100/s, a sparse /22 (one address in ten live) swept with
/// `--retries 0` had a batch's first members re-probed at 10000/s, the bucket empty, its last
/// ones at the slower rate; that epoch was clean, the batch's probes counted as tries, and the
/// live hosts among its first members were reported down (3 of 90 in the scheduler's
/// simulation, 2 of 102 in the lab).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span(u16, u16);

impl Span {
    fn epochs(self) -> impl Iterator<Item = u16> {
        self.0..=self.1
    }

    /// Whether probes sent in any of these epochs were wasted on a far side throttling.
    fn wasted(self, meter: &Meter) -> bool {
        self.epochs().any(|e| meter.wasted(e))
    }

    /// The highest loss bound of these epochs (`Meter::loss_bound`).
    fn loss_bound(self, meter: &Meter) -> f64 {
        self.epochs()
            .map(|e| meter.loss_bound(e))
            .fold(0.0, f64::max)
    }

    /// Whether every one of these epochs went faster than the sweep goes now: probes sent
    /// before a slow-down, which a far side that throttles may have dropped all of. A path
    /// called dead on such probes alone (`Meter::dead`) may be a policer that the slow-down
    /// cures: a /22 with 3% live behind a policer of 50 echo requests/s lost all 8 controls
    /// of its first wave at 10000/s, the sweep slowed down to 80/s and sent nothing while its
    /// batches waited, the path was called dead 2 s later, and the batches then due were
    /// given up after their two probes, both at 10000/s: 5 of 27 hosts missed (library
    /// simulation, 2 bucket phases of 8). Such a batch gets one probe at the current rate
    /// before it is given up.
    fn all_faster(self, meter: &Meter) -> bool {
        self.epochs().all(|e| meter.epoch_rate(e) > meter.rate())
    }

    /// Whether every one of these epochs is judged by enough controls (`Meter::judged`).
    fn judged(self, meter: &Meter) -> bool {
        self.epochs().all(|e| meter.judged(e))
    }
}

/// What the round knows that the schedule needs.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// Targets settled in this round (answered, unreachable or reported absent).
    pub done: &'a Bitset,
    /// Targets that answered in this round.
    pub alive: &'a Bitset,
    /// The probes targets rejected themselves.
    pub rejections: &'a Rejections,
    /// Who answered in the previous round.
    pub previous: Option<&'a Bitset>,
    /// The loss per epoch, and the current epoch.
    pub meter: &'a Meter,
    /// The waits.
    pub rtt: &'a Rtt,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Probe this target; `attempt` counts its probes in this round, from 1.
    Probe(Member, u8),
    /// Nothing to send before this time (answers may come meanwhile).
    Wait(Instant),
    /// Every target was probed enough and the wait for late answers is over.
    Finished,
}

/// The probe schedule of one round.
#[derive(Debug)]
pub struct Schedule {
    targets: Option<TargetIter>,
    taken: u64,
    waiting: Vec<VecDeque<Batch>>,
    sending: Option<(Batch, usize)>,
    min_attempts: u8,
    max_attempts: u8,
    end: Instant,
}

impl Schedule {
    /// A schedule over `targets` giving each silent target `min_attempts` to `max_attempts`
    /// probes (at least 1), starting at `now`.
    pub fn new(targets: TargetIter, min_attempts: u8, max_attempts: u8, now: Instant) -> Self {
        let max_attempts = max_attempts.max(1);
        Schedule {
            targets: Some(targets),
            taken: 0,
            // One queue per attempt a batch can have had: probes wasted on a far side that
            // throttles do not count against `max_attempts`, so a batch may get up to
            // [`Tag::MAX_ATTEMPT`] probes. (A batch with nowhere to wait would be dropped
            // unreported: no more probes, and no wait for the answers to its last one.)
            waiting: (0..=Tag::MAX_ATTEMPT).map(|_| VecDeque::new()).collect(),
            sending: None,
            min_attempts: min_attempts.clamp(1, max_attempts),
            max_attempts,
            end: now,
        }
    }

    /// How many targets have had their first probe (or are about to).
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// The next probe at `now`, or how long to wait, or the end of the round.
    pub fn next(&mut self, now: Instant, view: View<'_>) -> Next {
        loop {
            if let Some(probe) = self.next_member(now, view) {
                return probe;
            }
            if let Some(batch) = self.due(now, view) {
                self.sending = Some((batch, 0));
                continue;
            }
            if let Some(batch) = self.fresh(now) {
                self.sending = Some((batch, 0));
                continue;
            }
            return match self.next_due(view) {
                Some(due) => Next::Wait(due),
                None if now < self.end => Next::Wait(self.end),
                None => Next::Finished,
            };
        }
    }

    /// The next unsettled member of the batch being sent; when it is done, queues it to wait.
    fn next_member(&mut self, now: Instant, view: View<'_>) -> Option<Next> {
        let (batch, at) = self.sending.as_mut()?;
        while let Some(member) = batch.members.get(*at).copied() {
            *at += 1;
            if !view.done.get(member.index) {
                batch.began.get_or_insert(view.meter.epoch());
                return Some(Next::Probe(member, batch.attempts() + 1));
            }
        }
        let (mut batch, _) = self.sending.take()?;
        let last = view.meter.epoch();
        let first = batch.began.take().unwrap_or(last).min(last);
        batch.epochs.push(Span(first, last));
        batch.sent = now;
        batch.probed = now;
        let level = usize::from(batch.attempts()).min(self.waiting.len() - 1);
        self.waiting[level].push_back(batch);
        None
    }

    /// The earliest batch whose gap is over, with the members it should probe again; retires
    /// the batches (or members) that were probed enough.
    fn due(&mut self, now: Instant, view: View<'_>) -> Option<Batch> {
        loop {
            let level = self.earliest(view).filter(|(_, due)| *due <= now)?.0;
            let mut batch = self.waiting[level].pop_front()?;
            batch.paid_off =
                batch.attempts() > 1 && batch.members.iter().any(|m| view.alive.get(m.index));
            batch.fruitful = batch.fruitful.saturating_add(u8::from(batch.paid_off));
            batch.members.retain(|m| !view.done.get(m.index));
            if self.postpone(&batch, now, view) {
                batch.postponed += 1;
                batch.sent = now;
                self.waiting[level].push_back(batch);
                continue;
            }
            let (retire_new, retire_all) = self.enough(&batch, view.meter);
            if retire_new {
                tracing::trace!(
                    "retire batch at {} after {} probes ({} silent), loss by epoch {:?}",
                    batch.members.first().map_or(0, |m| m.index),
                    batch.attempts(),
                    batch.members.len(),
                    batch
                        .epochs
                        .iter()
                        .map(|e| e.epochs().map(|e| view.meter.loss(e)).fold(0.0, f64::max))
                        .collect::<Vec<_>>()
                );
                let attempts = batch.attempts();
                let enough_at = *batch.enough_at.get_or_insert(attempts);
                let was_alive = |m: &Member| view.previous.is_some_and(|p| p.get(m.index));
                let owed = |m: &Member| {
                    let spare = view.rejections.spare(m.index);
                    attempts < Tag::MAX_ATTEMPT && attempts < enough_at.saturating_add(spare)
                };
                batch
                    .members
                    .retain(|m| (!retire_all && was_alive(m)) || owed(m));
                let wait = view.rtt.final_wait(batch.attempts());
                self.end = self.end.max(batch.probed + wait);
            }
            if !batch.members.is_empty() {
                return Some(batch);
            }
        }
    }

    /// Whether to put off (at `now`) the judgement of a batch that had its most probes, when
    /// the epoch of its last ones has too few controls yet to tell whether they were wasted on
    /// a far side throttling the sweep: the controls of the probes after them will tell. At
    /// most [`POSTPONE`] times, and only within the round's last wait after the batch's last
    /// probe, so the round ends no later. With `--retries 0` the first batch of a /26 behind
    /// a policer was judged on the two controls sent with it and given up, its silent hosts
    /// unanswered, while the second, judged on four, was found wasted and probed again. A
    /// batch whose last probes are already known wasted is not put off: it is probed again.
    fn postpone(&self, batch: &Batch, now: Instant, view: View<'_>) -> bool {
        let meter = view.meter;
        let attempts = batch.attempts();
        let counted = usize::from(attempts).saturating_sub(usize::from(batch.fruitful));
        let last = batch.epochs.last().copied().unwrap_or(Span(0, 0));
        batch.postponed < POSTPONE
            && now < batch.probed + view.rtt.final_wait(attempts)
            && !batch.members.is_empty()
            && counted >= usize::from(self.max_attempts)
            && attempts < Tag::MAX_ATTEMPT
            && !meter.dead()
            && !meter.nothing_to_judge_by()
            && !last.judged(meter)
            && !last.wasted(meter)
    }

    /// Whether a batch was probed enough: (for targets new in this round, for all).
    fn enough(&self, batch: &Batch, meter: &Meter) -> (bool, bool) {
        let attempts = batch.attempts();
        let wasted = batch.epochs.iter().filter(|e| e.wasted(meter)).count();
        let counted = usize::from(attempts).saturating_sub(wasted + usize::from(batch.fruitful));
        if counted >= usize::from(self.max_attempts) || attempts >= Tag::MAX_ATTEMPT {
            return (true, true);
        }
        if attempts < self.min_attempts {
            return (false, false);
        }
        if meter.dead() {
            // Nothing answers any more: re-probes cannot tell a live host from a silent one,
            // unless every probe so far went faster than the sweep goes now (see
            // [`Span::all_faster`]): then one at this rate first.
            let faster = batch.epochs.iter().all(|e| e.all_faster(meter));
            return (!faster, !faster);
        }
        if batch.paid_off {
            return (false, false);
        }
        let miss: f64 = batch.epochs.iter().map(|e| e.loss_bound(meter)).product();
        (miss < MISS, miss < MISS_CONFIRM)
    }

    /// The queue whose front batch is due first, and when. Once a target rejected a probe
    /// itself (module `reject`), or the controls show most probes to live hosts lost (module
    /// `loss`) and the sweep is not paced to what gets through (`Meter::paced`), the gaps are
    /// the patient ones: a rate limiter gives a wave of re-probes as little room as the probes
    /// it just refused, unless the wave comes a window later.
    ///
    /// A batch that has had its most probes (`--retries` + 1) waits at least a control probe's
    /// timeout before it is judged, once a host was found (else no control can go out), so that the
    /// controls sent with its probes tell whether they were wasted on a far side throttling the
    /// sweep (then they do not count, and the batch is probed again): with `--retries 0` the batch
    /// was given up after one probe timeout, before any control could be seen lost, and a /26
    /// behind a policer of 100 echo requests/s came out with 10 of 64 hosts, those of the policer's
    /// burst (fping -r 0 found them all). The round's last wait is longer anyway, so it ends no
    /// later.
    fn earliest(&self, view: View<'_>) -> Option<(usize, Instant)> {
        let patient = view.rejections.seen() || (view.meter.losing() && !view.meter.paced());
        let last = usize::from(self.max_attempts);
        self.waiting
            .iter()
            .enumerate()
            .filter_map(|(level, queue)| {
                let front = queue.front()?;
                let attempt = u8::try_from(level).unwrap_or(u8::MAX);
                let mut gap = match patient {
                    true => view.rtt.patient_gap(attempt),
                    false => view.rtt.gap(attempt),
                };
                // Nothing found yet: no control can go out, there is none to wait for.
                if level >= last && !view.meter.found_nothing() {
                    let sent_at = front.epochs.last().map(|e| view.meter.epoch_rate(e.1));
                    gap = gap.max(view.rtt.control_timeout()) + settling(view, sent_at);
                }
                Some((level, front.sent + gap))
            })
            .min_by_key(|(_, due)| *due)
    }

    fn next_due(&self, view: View<'_>) -> Option<Instant> {
        self.earliest(view).map(|(_, due)| due)
    }

    /// A batch of targets not probed yet.
    fn fresh(&mut self, now: Instant) -> Option<Batch> {
        let targets = self.targets.as_mut()?;
        let members: Vec<Member> = targets
            .by_ref()
            .take(BATCH)
            .zip(self.taken..)
            .map(|(t, index)| Member {
                index,
                addr: t.addr,
            })
            .collect();
        if members.is_empty() {
            self.targets = None;
            return None;
        }
        self.taken += members.len() as u64;
        Some(Batch {
            members,
            epochs: Vec::new(),
            began: None,
            sent: now,
            probed: now,
            postponed: 0,
            enough_at: None,
            fruitful: 0,
            paid_off: false,
        })
    }
}

/// How much longer than a control's timeout a batch that had its most probes waits: the time two
/// batches take at the rate its last probes went at (`rate`; the current one if unknown), at most
/// half that timeout. The controls that tell whether its probes were wasted go out with the next
/// batch too (one per 16 first probes, two per batch), and were not yet overdue when it was judged:
/// with `--retries 0` behind a policer of 100/s the first batch of a /26 was probed again at
/// 10000/s 2 ms before the controls that slowed the sweep down came due (scheduler's simulation: 22
/// re-probes, 6 through; 150-300 ms round trips, the third wave's first 20).
fn settling(view: View<'_>, rate: Option<u64>) -> Duration {
    let rate = rate.unwrap_or_else(|| view.meter.rate());
    let two_batches = crate::pace::interval_of(rate) * (2 * BATCH as u32);
    two_batches.min(view.rtt.control_timeout() / 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{Family, TargetList};

    /// What the probes of a test bring about: the targets settled and found alive, and the
    /// rejections seen.
    struct World {
        done: Bitset,
        alive: Bitset,
        rejections: Rejections,
    }

    /// Runs a schedule of silent `addrs` to its end, `on_probe` telling each probe's fate:
    /// the probes each target got.
    fn drive(
        addrs: &[&str],
        max_attempts: u8,
        rejections: Rejections,
        mut on_probe: impl FnMut(usize, u8, &mut World),
    ) -> Vec<u8> {
        let list = TargetList::parse(addrs, true).expect("targets");
        let targets = list.resolve(Family::Any).expect("resolve");
        let (meter, rtt) = (Meter::new(1000), Rtt::new(Duration::from_secs(1)));
        let mut world = World {
            done: Bitset::new(addrs.len() as u64),
            alive: Bitset::new(addrs.len() as u64),
            rejections,
        };
        let mut now = Instant::now();
        let mut schedule = Schedule::new(targets.iter(), 1, max_attempts, now);
        let mut sent = vec![0u8; addrs.len()];
        for _ in 0..200 {
            let view = View {
                done: &world.done,
                alive: &world.alive,
                rejections: &world.rejections,
                previous: None,
                meter: &meter,
                rtt: &rtt,
            };
            match schedule.next(now, view) {
                Next::Probe(member, attempt) => {
                    let at = usize::try_from(member.index).expect("index");
                    sent[at] += 1;
                    assert_eq!(attempt, sent[at]);
                    on_probe(at, attempt, &mut world);
                }
                Next::Wait(until) => now = until,
                Next::Finished => return sent,
            }
        }
        panic!("no end after {sent:?} probes");
    }

    /// How many probes one silent target gets with `max_attempts`, when it rejects the first
    /// `rejects` of them and `limiter` says whether a rejecting limiter was seen.
    fn probes(max_attempts: u8, rejects: u8, limiter: bool) -> u8 {
        let mut rejections = Rejections::new();
        if limiter {
            rejections.rejected(1, true);
        }
        let sent = drive(&["127.0.0.1"], max_attempts, rejections, |_, attempt, w| {
            if attempt <= rejects {
                w.rejections.rejected(0, false);
            }
        });
        sent[0]
    }

    /// The probes each of two silent targets gets with `max_attempts` when the first answers
    /// its probe number `found_at` (0: never).
    fn probes_of_two(max_attempts: u8, found_at: u8) -> Vec<u8> {
        let addrs = ["127.0.0.1", "127.0.0.2"];
        drive(&addrs, max_attempts, Rejections::new(), |at, attempt, w| {
            if at == 0 && attempt == found_at {
                w.done.set(0);
                w.alive.set(0);
            }
        })
    }

    #[test]
    fn a_re_probe_that_found_a_host_does_not_count() {
        assert_eq!(probes_of_two(2, 0), [2, 2], "nothing found");
        assert_eq!(probes_of_two(2, 1), [1, 2], "found at once: no loss seen");
        assert_eq!(probes_of_two(2, 2), [2, 3], "the second probe paid off");
        assert_eq!(probes_of_two(3, 3), [3, 4]);
    }

    #[test]
    fn rejected_probes_do_not_count_once_a_limiter_was_seen() {
        assert_eq!(probes(1, 0, true), 1, "silent, not rejected");
        assert_eq!(probes(1, 5, false), 1, "no limiter seen: they count");
        assert_eq!(probes(1, 1, true), 2);
        assert_eq!(probes(2, 3, true), 5);
        assert_eq!(probes(1, u8::MAX, true), Tag::MAX_ATTEMPT, "at most");
    }
}
