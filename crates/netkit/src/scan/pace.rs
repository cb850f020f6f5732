//! Pacing: when the next probe may leave. [`spacing`] spaces sends at a fixed rate (the
//! `--rate` ceiling over the whole scan) with the engines' one [`Pacer`]; [`Floor`] says when
//! a send is due to keep `--min-rate`; [`RateControl`] finds the rate a host (or a firewall
//! in front of it) accepts.
//!
//! A congestion window bounds the probes in flight, which bounds the rate only when the round
//! trip is long: a firewall that drops SYNs beyond 1000/s in front of a host 0.1 ms away lets
//! a window of one probe send ten times too fast. So when drops are frequent (more than a
//! quarter of the answers since the last change came only to retransmissions, as nmap's send
//! delay boost judges it), or when most timing probes (to ports that answered before) are
//! lost while answers still come back, the host is paced at a little less than the best rate
//! answers came back at lately, which is what the path lets through (the scan's own window may
//! have throttled it since), at least 5 probes a second; each drop-free interval that held ten
//! answers in a row then raises the rate by a tenth, so a passing bottleneck is not kept for
//! good.
//!
//! A cut for drops is on trial: a rate limit drops less once the pace is below it, random loss
//! on the path (15% each way: 28% of the answers come only to a retransmission) drops as much
//! at any pace. So once 40 answers came to probes sent after a cut, the cut is kept if their
//! share of drops fell below 70% of the share that called for it; it is undone (back to the
//! pace before the trial's first cut) if the share did not fall though answers came back at
//! most 60% as fast as before the cut (the pace held the sends back: a limit would have passed
//! as many answers a second); else it stays on trial and a further cut joins it. Meanwhile no
//! further cut. An undone cut leaves its share of drops as the path's background loss: from
//! then on only drops well beyond it (a quarter of the answers it leaves) cut the rate. Before
//! this, random loss cut a host's rate again and again, each time to 0.8 times the answers'
//! rate (which silent ports and retransmissions keep well below the pace), and a raise needs
//! ten answers in a row without a drop (rare at 28%): down to 5 probes a second, 423 s for a
//! connect scan that nmap -sT ran in 141 s.
//!
//! A cut for lost controls (timing probes) is judged the same way, by the controls after it,
//! and is neither raised while on trial nor undone when none of them came back (a limit far
//! below the pace, shared by several hosts, loses them all; random loss of the share before
//! would let some through); once controls cut the pace, a raise also needs controls that came
//! back since the last change and none lost: answers alone came through a policer's burst at
//! 66 a second for its 50, and raised the pace past it. And a cut for lost controls goes below
//! the answers' rate over the latter half of the meter's span when that is less
//! ([`Meter::recent`]): over the whole span, a policer's first burst, passed at once, counted
//! as its rate.
//!
//! A fixed budget (`--retries`) cannot wait for ten drops: behind a policer passing 10 SYNs a
//! second, a budget of two tries shows a drop only when a port's second try got through, and
//! most ports' last tries had left before the third did. So where a fixed budget's tries
//! mostly go unanswered (no more than half of a host's first tries answered), the host's first
//! drop paces it at once ([`RateControl::budget_cut`], once per host) at the rate answers came
//! back at, past the first ones. Its trial is the scheduler's (`host::FirstTries`: the tries
//! sent after it must be answered far more often, or [`RateControl::undo_budget_cut`]), as
//! random loss of 25-30 % each way leaves half of the first tries unanswered too. The usual
//! raises and cuts follow. An adaptive budget's host gets the same cut where its answers show
//! a policer (`host::HostScan::policed`): behind 10 SYNs a second at 20 % loss each way, 19
//! ports' answers are few and mostly retried, and their retried share, the random loss drops
//! are judged against, kept the cut for drops from firing while every silent port was retried
//! at once into the policer's empty bucket. Time is an input.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use crate::pace::Pacer;

/// A pacer for `rate` sends per second that never catches up: a slow patch never turns into
/// a burst (the `--rate` ceiling, a host's pace).
pub fn spacing(rate: f64) -> Pacer {
    Pacer::new(interval_of(rate), Duration::ZERO)
}

fn interval_of(rate: f64) -> Duration {
    Duration::from_secs_f64(1.0 / rate.max(1e-3))
}

/// `--min-rate`: a send is due whenever none left for one interval.
#[derive(Debug, Clone)]
pub struct Floor {
    interval: Duration,
    due: Instant,
}

impl Floor {
    /// At least `rate` sends per second from `now` on.
    pub fn per_second(rate: f64, now: Instant) -> Self {
        let interval = interval_of(rate);
        Floor {
            interval,
            due: now + interval,
        }
    }

    /// When the next send is due.
    pub fn due(&self) -> Instant {
        self.due
    }

    /// Whether a send is due at `now`.
    pub fn is_due(&self, now: Instant) -> bool {
        self.due <= now
    }

    /// Records a send at `now`.
    pub fn sent(&mut self, now: Instant) {
        self.due = (self.due + self.interval).max(now).min(now + self.interval);
    }
}

/// Answers per second over the last [`Meter::SPAN`].
#[derive(Debug, Clone, Default)]
pub struct Meter {
    start: Option<Instant>,
    buckets: VecDeque<(u64, u32)>,
}

impl Meter {
    /// How far back the meter looks.
    pub const SPAN: Duration = Duration::from_millis(400);
    const BUCKET: Duration = Duration::from_millis(25);
    const BUCKETS: u64 = 16;
    const PEAK_BUCKETS: u64 = 4;

    /// Counts one event at `now`.
    pub fn add(&mut self, now: Instant) {
        let start = *self.start.get_or_insert(now);
        let index = bucket(start, now);
        match self.buckets.back_mut() {
            Some((last, count)) if *last == index => *count += 1,
            _ => self.buckets.push_back((index, 1)),
        }
        while self
            .buckets
            .front()
            .is_some_and(|(i, _)| i + Self::BUCKETS <= index)
        {
            self.buckets.pop_front();
        }
    }

    /// The most events per second seen in any tenth of a second of the span: what got
    /// through at best lately, even when the sender slowed down since.
    pub fn peak(&self, now: Instant) -> f64 {
        let Some(start) = self.start else {
            return 0.0;
        };
        let index = bucket(start, now);
        let oldest = (index + 1).saturating_sub(Self::BUCKETS);
        let counts: Vec<(u64, u32)> = self
            .buckets
            .iter()
            .copied()
            .filter(|(i, _)| *i >= oldest && *i <= index)
            .collect();
        let most = counts
            .iter()
            .map(|(first, _)| {
                let window = first..&(first + Self::PEAK_BUCKETS);
                counts
                    .iter()
                    .filter(|(i, _)| window.contains(&i))
                    .map(|(_, n)| n)
                    .sum::<u32>()
            })
            .max()
            .unwrap_or(0);
        f64::from(most) / (Self::BUCKET * Self::PEAK_BUCKETS as u32).as_secs_f64()
    }

    /// Events per second over the span (or since the first event, when that is shorter).
    pub fn rate(&self, now: Instant) -> f64 {
        self.rate_over(now, Self::BUCKETS)
    }

    /// Events per second over the span or over its latter half, whichever is less but none
    /// (a span with events, a half without: too few to tell): past a firewall's first burst,
    /// which a scan's first fifth of a second may still be in.
    pub fn recent(&self, now: Instant) -> f64 {
        let (all, half) = (self.rate(now), self.rate_over(now, Self::BUCKETS / 2));
        match half > 0.0 {
            true => all.min(half),
            false => all,
        }
    }

    fn rate_over(&self, now: Instant, buckets: u64) -> f64 {
        let Some(start) = self.start else {
            return 0.0;
        };
        let index = bucket(start, now);
        let oldest = (index + 1).saturating_sub(buckets);
        let count: u32 = self
            .buckets
            .iter()
            .filter(|(i, _)| *i >= oldest && *i <= index)
            .map(|(_, n)| n)
            .sum();
        let covered = now
            .duration_since(start)
            .clamp(Self::BUCKET, Self::BUCKET * buckets as u32);
        f64::from(count) / covered.as_secs_f64()
    }
}

fn bucket(start: Instant, now: Instant) -> u64 {
    (now.saturating_duration_since(start).as_nanos() / Meter::BUCKET.as_nanos()) as u64
}

/// Drops since the last change at which the rate is cut (nmap: more than 10).
const CUT_DROPS: u32 = 10;
/// The share of drops among answers at which the rate is cut (beyond the background loss, of
/// what it leaves).
const CUT_RATIO: f64 = 0.25;
/// Answers to probes sent after a cut that judge it.
const TRIAL_ANSWERS: u32 = 40;
/// A cut is kept when the share of drops after it is at most this share of the one before.
const TRIAL_KEEP: f64 = 0.7;
/// A cut whose drops did not fall is undone only when answers came back at most this share of
/// their rate before it: the pace held the sends back. A limit (a firewall's) passes as many
/// answers a second whatever the pace above it, and is cut again.
const TRIAL_SLOWER: f64 = 0.6;
/// Answers since the last change needed for their share of drops to judge a cut by.
const TRIAL_BASIS: u32 = 20;
/// The most background loss assumed.
const MAX_BACKGROUND: f64 = 0.9;
/// Lost control probes that may cut the rate, when they are most of the controls.
const FEW_LOST: u64 = 4;
/// The share of lost controls the cut needs, for all the controls can tell.
const MOST: f64 = 0.5;
/// The share of lost controls beyond the background loss (of what it leaves) that cuts the
/// rate of a host whose answers are scarce.
const SCARCE_SHARE: f64 = 1.0 / 3.0;
/// Controls after a cut for lost controls that judge it.
const CONTROL_TRIAL: u64 = 6;
/// The new rate as a share of the rate answers come back at.
const CUT_FACTOR: f64 = 0.8;
/// How much a drop-free interval raises the rate.
const RAISE_FACTOR: f64 = 1.1;
/// The shortest drop-free interval that raises the rate.
const RAISE_EVERY: Duration = Duration::from_millis(100);
/// The answers in a row, with no drop among them, that a raise needs: behind a firewall passing
/// 10 SYNs a second, 100 ms without a drop is one answer's worth, no evidence at all.
const RAISE_ANSWERS: u32 = CUT_DROPS;
/// The lowest rate a host is ever paced at: below the 10 SYNs a second a firewall may let
/// through (nmap's own floor, its longest scan delay, is one probe a second).
const MIN_RATE: f64 = 5.0;

/// Answers counted over a stretch of time: their number, the drops among them, and when the
/// first came.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Tally {
    answers: u32,
    drops: u32,
    since: Option<Instant>,
}

impl Tally {
    fn add(&mut self, dropped: bool, now: Instant) {
        self.since.get_or_insert(now);
        self.answers += 1;
        self.drops += u32::from(dropped);
    }

    /// The share of drops (0 without answers).
    fn ratio(&self) -> f64 {
        match self.answers {
            0 => 0.0,
            n => f64::from(self.drops) / f64::from(n),
        }
    }

    /// Answers a second from the first one to `now` (`None`: too few to tell).
    fn rate(&self, now: Instant) -> Option<f64> {
        let span = now.duration_since(self.since?).as_secs_f64();
        (self.answers >= 2 && span > 0.0).then(|| f64::from(self.answers - 1) / span)
    }
}

/// A cut for drops on trial (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Trial {
    /// The pace before the first cut of the trial (`None`: unpaced).
    before: Option<f64>,
    /// The share of drops among answers that called for it.
    ratio: f64,
    /// The rate answers came back at before the first cut (`None`: unknown).
    through: Option<f64>,
    /// When the latest cut was made: answers to probes sent since judge it.
    at: Instant,
    /// Those answers.
    after: Tally,
}

/// The adaptive send rate of one host: unpaced until drops are frequent.
#[derive(Debug, Clone, Default)]
pub struct RateControl {
    spacing: Option<(f64, Pacer)>,
    answers: Meter,
    /// Answers since the last change.
    tally: Tally,
    /// Answers since the last drop or change.
    streak: u32,
    changed: Option<Instant>,
    last_drop: Option<Instant>,
    /// Control probes answered and lost since the last change.
    controls: (u64, u64),
    /// The cut on trial, if one is.
    trial: Option<Trial>,
    /// The share of drops a slower pace was seen not to lessen: the path's random loss.
    background: f64,
    /// Probes sent, over the same span as the answers.
    sends: Meter,
    /// A cut for lost controls on trial (a host whose answers are scarce).
    control_trial: Option<ControlTrial>,
    /// The share of controls lost that a slower pace was seen not to lessen.
    control_background: f64,
    /// Whether lost controls cut the pace: from then on a raise needs controls that came
    /// back.
    control_cut: bool,
    /// A fixed budget's cut ([`RateControl::budget_cut`]): `None` before it, `Some(Some(rate))`
    /// while it stands, `Some(None)` once undone (there is one per host).
    budget_cut: Option<Option<f64>>,
    /// When the first answer came, and the answers since that came a bucket later.
    later_answers: Option<(Instant, u32)>,
    /// The share of first tries of answering ports lost ([`RateControl::answers_lost`]).
    answers_lost: f64,
}

/// A cut for lost controls on trial: undone (back to `before`) when the controls after it are
/// lost as often as before it (`share`), as random loss would have them.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ControlTrial {
    before: Option<f64>,
    share: f64,
}

impl RateControl {
    /// The paced rate, if the host is paced.
    pub fn rate(&self) -> Option<f64> {
        self.spacing.as_ref().map(|(rate, _)| *rate)
    }

    /// When the host may send next (`None`: now).
    pub fn next(&self) -> Option<Instant> {
        self.spacing.as_ref().and_then(|(_, s)| s.next())
    }

    /// Whether the host may send at `now`.
    pub fn ready(&self, now: Instant) -> bool {
        self.spacing.as_ref().is_none_or(|(_, s)| s.ready(now))
    }

    /// Records a send at `now`.
    pub fn sent(&mut self, now: Instant) {
        self.sends.add(now);
        if let Some((_, spacing)) = &mut self.spacing {
            spacing.take(now);
        }
    }

    /// Records an answer at `now` to a probe sent at `sent`; `dropped` when only a
    /// retransmission got it. Returns the new rate when this cut it.
    pub fn answer(&mut self, sent: Instant, dropped: bool, now: Instant) -> Option<f64> {
        self.answers.add(now);
        let (first, later) = self.later_answers.get_or_insert((now, 0));
        *later += u32::from(now >= *first + Meter::BUCKET);
        if let Some(trial) = &mut self.trial {
            if sent >= trial.at {
                trial.after.add(dropped, now);
            }
        }
        if self.changed.is_some_and(|changed| sent < changed) {
            return None;
        }
        self.tally.add(dropped, now);
        if dropped {
            self.streak = 0;
            self.last_drop = Some(now);
        } else {
            self.streak += 1;
        }
        if self.judge(now) {
            return None;
        }
        let background = self.background.max(self.answers_lost);
        let cut_ratio = background + CUT_RATIO * (1.0 - background);
        (self.tally.drops > CUT_DROPS && self.tally.ratio() > cut_ratio).then(|| self.cut(now))
    }

    /// Judges the cut on trial once enough answers came after it: kept when the drops fell,
    /// undone when they did not though the pace held the sends back, else left on trial (a
    /// further cut joins it). Returns true when the cut was undone or waits for answers: no
    /// further cut then.
    fn judge(&mut self, now: Instant) -> bool {
        let Some(trial) = self.trial else {
            return false;
        };
        if trial.after.answers < TRIAL_ANSWERS {
            return true;
        }
        let ratio = trial.after.ratio();
        if ratio <= trial.ratio * TRIAL_KEEP {
            self.trial = None;
            return false;
        }
        let slower = match (trial.after.rate(now), trial.through) {
            (Some(after), Some(before)) => after <= before * TRIAL_SLOWER,
            _ => false,
        };
        if !slower {
            return false;
        }
        self.trial = None;
        self.background = self.background.max(ratio).min(MAX_BACKGROUND);
        tracing::debug!(
            "pace: {:.0}% drops after the cut as before it, at a slower pace: undone",
            100.0 * ratio
        );
        match trial.before {
            Some(rate) => self.set(rate, now),
            None => {
                self.spacing = None;
                self.restart(now);
            }
        }
        true
    }

    /// Records the end of a control probe sent at `sent` (a timing probe, to a port that
    /// answered before): `answered`, or lost. Returns the new rate when this cut it: the
    /// controls since the last change were mostly lost, for all they can tell (four at least,
    /// [`crate::wilson::lower`] above one half), while answers still come back.
    /// That is a bottleneck passing a small share of the probes: a firewall passing 10 SYNs a
    /// second to several hosts leaves every host too few answers for drops to show before all
    /// tries are spent. The pace goes below the rate answers came back at over the last
    /// [`Meter::SPAN`] (not their peak: a firewall's bucket passes a burst at first). A host
    /// gone silent (no answer at all lately) is not paced: slowing down would not bring it
    /// back.
    ///
    /// A host whose answers are `scarce` (too few ports answered to show loss: a SYN policer in
    /// front of ports that mostly drop probes) is cut sooner: four controls lost and more than a
    /// third of them (beyond the share a cut was seen not to lessen), to what the path passes,
    /// the rate probes left at lately times the least share of controls answered that they
    /// allow (the lower end of its 95% interval: two of six back cut 300/s to 80/s, far above
    /// a 20/s policer, and the trial, as lost after it, undid it). Such a cut is on
    /// trial: undone when the controls after it are lost as often, as random loss has them.
    pub fn control(
        &mut self,
        sent: Instant,
        answered: bool,
        scarce: bool,
        now: Instant,
    ) -> Option<f64> {
        if self.changed.is_some_and(|changed| sent < changed) {
            return None;
        }
        let (ok, lost) = &mut self.controls;
        *if answered { ok } else { lost } += 1;
        let (ok, lost) = self.controls;
        let share = lost as f64 / (ok + lost) as f64;
        if let Some(trial) = self.control_trial {
            if ok + lost < CONTROL_TRIAL {
                return None;
            }
            self.control_trial = None;
            // Or lost, for all they can tell, as often as the answers' first tries were:
            // random loss a few answers already show (six controls are a small sample; the
            // cut chose the moment they looked worst).
            let random =
                self.answers_lost > 0.0 && crate::wilson::upper(ok, lost) >= self.answers_lost;
            if (share >= trial.share || random) && ok > 0 {
                // As many lost at the slower pace: random loss, not a limit. (A limit still
                // below the pace loses fewer: the cut stays, and the next joins it. None back
                // is no random loss of the share before, even all of it: a limit far below
                // the pace, shared with other hosts, loses every control; the cut stays.)
                self.control_background = share.max(self.control_background).min(MAX_BACKGROUND);
                tracing::debug!(
                    "pace: {:.0}% of the controls lost after the cut as before it: undone",
                    100.0 * share
                );
                match trial.before {
                    Some(rate) => self.set(rate, now),
                    None => {
                        self.spacing = None;
                        self.restart(now);
                    }
                }
                return None;
            }
        }
        if scarce {
            // Too few answers for drops to show (a SYN policer passing 20 a second in front of
            // ports that drop probes: one answer in seconds): the controls decide alone, and
            // what the path passes is the rate probes left at lately times the least share
            // of controls back that they allow. On trial, as a cut for drops.
            let background = self.control_background;
            // Once the answers show random loss, the controls must be lost more often for
            // all they can tell.
            let seen = match self.answers_lost > 0.0 {
                true => crate::wilson::lower(ok, lost),
                false => share,
            };
            let losing = lost >= FEW_LOST && seen > background + SCARCE_SHARE * (1.0 - background);
            let through = self
                .answers
                .recent(now)
                .max(self.sends.rate(now) * (1.0 - crate::wilson::upper(ok, lost)));
            return (losing && through > 0.0).then(|| {
                let before = self.rate();
                self.trial = None;
                self.control_cut = true;
                let rate = self.cut_to(through, now);
                self.control_trial = Some(ControlTrial { before, share });
                rate
            });
        }
        let losing = lost >= FEW_LOST && crate::wilson::lower(ok, lost) > MOST;
        let through = self.answers.recent(now);
        (losing && through > 0.0).then(|| {
            self.trial = None;
            self.control_cut = true;
            self.cut_to(through, now)
        })
    }

    /// Records the share of answering ports whose first try was lost (0 while it shows no
    /// random loss).
    pub fn answers_lost(&mut self, share: f64) {
        self.answers_lost = share.min(MAX_BACKGROUND);
    }

    /// Paces an unpaced host at the rate answers came back at lately, and at most at the rate
    /// they came at since the first ones (a policer's burst passed those at once), once per
    /// host: the caller saw a drop where a fixed budget (`--retries`) is being spent on tries
    /// that mostly go unanswered, or an adaptive one behind what looks like a policer (see the
    /// module's documentation). Returns the new rate.
    pub fn budget_cut(&mut self, now: Instant) -> Option<f64> {
        if self.spacing.is_some() || self.budget_cut.is_some() {
            return None;
        }
        let since_first = self.since_first(now).unwrap_or(f64::INFINITY);
        let through = self.answers.recent(now).min(since_first);
        if through <= 0.0 {
            return None;
        }
        let rate = through.max(MIN_RATE);
        self.budget_cut = Some(Some(rate));
        self.set(rate, now);
        Some(rate)
    }

    /// Undoes the cut of [`RateControl::budget_cut`] and the cuts for drops that followed it
    /// (random loss, not a limit, as its trial found): the host is unpaced again.
    pub fn undo_budget_cut(&mut self, now: Instant) {
        if let Some(Some(rate)) = self.budget_cut.replace(None) {
            tracing::debug!("pace: a fixed budget's cut to {rate:.0}/s was no help: undone");
            self.spacing = None;
            self.restart(now);
        }
    }

    /// Answers per second since a [`Meter::BUCKET`] after the first one, counting only those:
    /// past the answers to the scan's first window, which a policer's burst lets through at
    /// once. `None` before a bucket of them passed.
    fn since_first(&self, now: Instant) -> Option<f64> {
        let (first, later) = self.later_answers?;
        let span = now.checked_duration_since(first + Meter::BUCKET)?;
        (span >= Meter::BUCKET).then(|| f64::from(later) / span.as_secs_f64())
    }

    /// Paces the host below the best rate answers came back at lately (and below its current
    /// pace). The cut is on trial (see the module's documentation) when the share of drops
    /// that called for it is known; a cut during a trial joins it (undone, all are).
    pub fn cut(&mut self, now: Instant) -> f64 {
        let measured = self.answers.peak(now).max(self.answers.rate(now));
        let through = self.tally.rate(now);
        let basis = match self.tally.answers >= TRIAL_BASIS {
            true => self.tally.ratio(),
            false => self.background,
        };
        let trial = match self.trial {
            Some(trial) => Trial {
                at: now,
                after: Tally::default(),
                ..trial
            },
            None => Trial {
                before: self.rate(),
                ratio: basis,
                through,
                at: now,
                after: Tally::default(),
            },
        };
        let rate = self.cut_to(measured, now);
        self.trial = (trial.ratio > 0.0).then_some(trial);
        rate
    }

    /// Paces the host below `measured` answers a second (and below its current pace).
    fn cut_to(&mut self, measured: f64, now: Instant) -> f64 {
        let current = self.rate().unwrap_or(f64::INFINITY);
        let rate = (CUT_FACTOR * measured.min(current)).max(MIN_RATE);
        self.set(rate, now);
        rate
    }

    /// Raises a paced rate after a drop-free interval of at least `interval` (the host's
    /// round trip) since the last change, once ten answers came in a row without a drop.
    /// Returns the new rate when raised. A cut on trial stays on trial.
    pub fn tick(&mut self, interval: Duration, now: Instant) -> Option<f64> {
        let (rate, _) = self.spacing.as_ref()?;
        let since = self.changed.max(self.last_drop)?;
        if now.duration_since(since) < interval.max(RAISE_EVERY) || self.streak < RAISE_ANSWERS {
            return None;
        }
        let (ok, lost) = self.controls;
        if self.control_trial.is_some() || self.control_cut && (ok == 0 || lost > 0) {
            return None;
        }
        let rate = rate * RAISE_FACTOR;
        let trial = self.trial;
        self.set(rate, now);
        self.trial = trial;
        Some(rate)
    }

    fn set(&mut self, rate: f64, now: Instant) {
        let next = self.next();
        let mut spacing = spacing(rate);
        if let Some(next) = next {
            // Keep the slot already promised, at most one new interval away.
            let interval = spacing.interval();
            spacing.take(next.min(now + interval) - interval);
        }
        self.spacing = Some((rate, spacing));
        self.restart(now);
    }

    /// Starts counting answers and controls afresh from a change at `now`.
    fn restart(&mut self, now: Instant) {
        self.changed = Some(now);
        self.tally = Tally::default();
        self.streak = 0;
        self.controls = (0, 0);
        self.trial = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_floor_is_due_one_interval_after_the_last_send() {
        let t0 = Instant::now();
        let mut f = Floor::per_second(100.0, t0);
        assert!(!f.is_due(t0 + ms(9)) && f.is_due(t0 + ms(10)));
        f.sent(t0 + ms(50));
        assert_eq!(f.due(), t0 + ms(50));
        f.sent(t0 + ms(50));
        assert_eq!(f.due(), t0 + ms(60));
    }

    #[test]
    fn the_meter_counts_recent_answers() {
        let t0 = Instant::now();
        let mut m = Meter::default();
        for i in 0..1000 {
            m.add(t0 + Duration::from_millis(i));
        }
        let rate = m.rate(t0 + ms(1000));
        assert!((900.0..=1100.0).contains(&rate), "{rate}");
        let peak = m.peak(t0 + ms(1000));
        assert!((900.0..=1100.0).contains(&peak), "{peak}");
        // A burst, then quiet: the peak remembers the burst.
        let mut m = Meter::default();
        for i in 0..100 {
            m.add(t0 + Duration::from_micros(i * 500));
        }
        m.add(t0 + ms(300));
        assert!(m.peak(t0 + ms(300)) >= 900.0);
        assert!(m.rate(t0 + ms(300)) < 400.0);
        assert_eq!(m.rate(t0 + ms(5000)), 0.0);
        // A firewall's burst of 20, then its 25 a second: the latter half shows the rate.
        let mut m = Meter::default();
        for i in 0..20 {
            m.add(t0 + Duration::from_micros(i * 100));
        }
        for i in 1..=9 {
            m.add(t0 + ms(40 * i));
        }
        let (rate, recent) = (m.rate(t0 + ms(380)), m.recent(t0 + ms(380)));
        assert!(
            rate > 60.0 && (20.0..=30.0).contains(&recent),
            "{rate} {recent}"
        );
    }

    /// A policer passing 1000 answers/s while most probes are dropped: the rate is cut to
    /// below 1000/s, then creeps up again while no drop comes.
    #[test]
    fn frequent_drops_pace_the_host_below_what_gets_through() {
        let t0 = Instant::now();
        let mut rc = RateControl::default();
        let (mut cut, mut now) = (None, t0);
        for i in 0..400 {
            now = t0 + Duration::from_millis(i);
            cut = rc.answer(now, i % 2 == 0, now);
            if cut.is_some() {
                break;
            }
        }
        let rate = cut.expect("a cut");
        assert!((500.0..=900.0).contains(&rate), "{rate}");
        assert!(rc.ready(now));
        rc.sent(now);
        assert!(!rc.ready(now + ms(1)));
        assert_eq!(rc.tick(ms(10), now + ms(50)), None);
        assert_eq!(
            rc.tick(ms(10), now + ms(150)),
            None,
            "no answer since the cut"
        );
        for i in 0..RAISE_ANSWERS {
            let at = now + ms(100 + u64::from(i));
            assert_eq!(rc.answer(at, false, at), None);
        }
        let raised = rc.tick(ms(10), now + ms(150)).expect("raised");
        assert!((raised / rate - RAISE_FACTOR).abs() < 1e-9);
    }

    /// Feeds up to `n` answers `gap` apart from `from`, `dropped` in 25 of them drops (spread
    /// out), until one cuts the rate; returns the time of the last and the cut.
    fn feed(
        rc: &mut RateControl,
        from: Instant,
        gap: Duration,
        n: u32,
        dropped: u32,
    ) -> (Instant, Option<f64>) {
        let (mut now, mut cut) = (from, None);
        for i in 0..n {
            now += gap;
            cut = rc.answer(now, (i * 7) % 25 < dropped, now);
            if cut.is_some() {
                break;
            }
        }
        (now, cut)
    }

    /// Random loss drops 28% of the answers at any pace: the cut it calls for is undone once
    /// answers after it came back slower and dropped as often, and the same loss cuts no more.
    /// A limit passes answers as fast after a cut: the cut stays, and the next joins it.
    #[test]
    fn a_cut_that_the_drops_do_not_follow_is_undone() {
        let t0 = Instant::now();
        let mut rc = RateControl::default();
        let (now, cut) = feed(&mut rc, t0, ms(10), 60, 7);
        assert!(cut.is_some() && rc.rate().is_some(), "{cut:?}");
        // Half as many answers a second, as many drops among them.
        let (now, _) = feed(&mut rc, now, ms(20), 40, 7);
        assert_eq!(rc.rate(), None, "undone");
        let (_, cut) = feed(&mut rc, now, ms(10), 400, 7);
        assert_eq!((cut, rc.rate()), (None, None), "background loss");
        // A limit: answers as fast after the cut, half of them drops.
        let mut rc = RateControl::default();
        let (now, first) = feed(&mut rc, t0, ms(10), 60, 13);
        let first = first.expect("a cut");
        let (now, none) = feed(&mut rc, now, ms(10), 39, 13);
        assert_eq!((none, rc.rate()), (None, Some(first)), "on trial");
        let (_, next) = feed(&mut rc, now, ms(10), 1, 13);
        assert!(next.is_some_and(|rate| rate <= first), "{next:?}");
    }

    /// Behind a firewall passing 10 SYNs a second, 100 ms without a drop holds one answer:
    /// the paced rate must not climb on such intervals, however many there are.
    #[test]
    fn quiet_intervals_with_few_answers_do_not_raise_the_rate() {
        let t0 = Instant::now();
        let mut rc = RateControl::default();
        let rate = rc.cut(t0);
        for i in 1..=50u64 {
            let at = t0 + ms(200 * i);
            rc.answer(at, i % 10 == 0, at);
            assert_eq!(rc.tick(ms(10), at + ms(150)), None, "after {i} answers");
        }
        assert_eq!(rc.rate(), Some(rate));
    }

    /// A rate control that has seen an answer every 100 ms for a second, and that second's end.
    fn ten_answers_a_second() -> (RateControl, Instant) {
        let t0 = Instant::now();
        let mut rc = RateControl::default();
        for i in 0..10u64 {
            let at = t0 + ms(100 * i);
            rc.answer(at, false, at);
        }
        (rc, t0 + ms(1000))
    }

    /// Behind a firewall passing 10 SYNs a second to several hosts, answers trickle in while
    /// nearly every timing probe is lost: the rate is cut to below the answers' rate, and only
    /// new controls can cut it again.
    #[test]
    fn lost_timing_probes_pace_a_scan_whose_answers_still_come() {
        let (mut rc, now) = ten_answers_a_second();
        for i in 0..FEW_LOST - 1 {
            assert_eq!(rc.control(now, false, false, now + ms(i)), None, "{i} lost");
        }
        let rate = rc.control(now, false, false, now + ms(10)).expect("a cut");
        assert!((MIN_RATE..=10.0).contains(&rate), "{rate}");
        for i in 0..2 * FEW_LOST {
            assert_eq!(
                rc.control(now, false, false, now + ms(20 + i)),
                None,
                "sent before the cut"
            );
        }
        assert_eq!(rc.rate(), Some(rate));
    }

    /// Behind a policer shared by 8 hosts (`schedule_tests`, `--syn --retries 2`), a cut for
    /// lost controls was raised by answers while on trial, and undone when every control after
    /// it was lost too (as lost as before it: taken for random loss). Neither now: the trial
    /// judges the pace that was cut to, and no control back is no random loss.
    #[test]
    fn a_cut_for_lost_controls_stays_while_none_come_back() {
        let (mut rc, now) = ten_answers_a_second();
        let cut = (0..FEW_LOST).filter_map(|i| rc.control(now, false, true, now + ms(i)));
        let rate = cut.last().expect("a cut");
        let after = now + ms(10);
        for i in 0..2 * RAISE_ANSWERS {
            let at = after + ms(u64::from(i));
            rc.answer(at, false, at);
        }
        assert_eq!(rc.tick(ms(10), after + ms(500)), None, "raised on trial");
        for i in 0..CONTROL_TRIAL {
            rc.control(after + ms(600), false, true, after + ms(700 + i));
        }
        assert!(rc.rate().is_some_and(|r| r <= rate), "{:?}", rc.rate());
    }

    /// Behind a SYN policer passing 20 a second, a host sending 300 a second with no answer
    /// lately lost four of its six controls: the cut took the share that came back (a third)
    /// for what the path passes, 80/s, and its trial, as lost after it as before (one of six
    /// back), undid it as random loss; the last try of an open port was lost (the rotated
    /// simulation's seed 40). The cut now takes the least share the controls may say came
    /// back (the lower end of its interval).
    #[test]
    fn a_scarce_hosts_cut_for_lost_controls_goes_to_the_least_share_they_allow() {
        let t0 = Instant::now();
        let mut rc = RateControl::default();
        for i in 0..120u64 {
            rc.sent(t0 + Duration::from_micros(i * 400_000 / 120));
        }
        let now = t0 + ms(400);
        let fates = [false, true, false, true, false, false];
        let cut = fates.iter().filter_map(|&ok| rc.control(t0, ok, true, now));
        let rate = cut.last().expect("a cut");
        let least = CUT_FACTOR * rc.sends.rate(now) * (1.0 - crate::wilson::upper(2, 4));
        assert!(
            rate <= least + 1e-9 && rate < 40.0,
            "{rate} (least {least})"
        );
    }

    #[test]
    fn timing_probes_mostly_answered_or_a_silent_host_leave_the_rate_alone() {
        let t0 = Instant::now();
        let mut rc = RateControl::default();
        rc.answer(t0, false, t0);
        for i in 0..40 {
            let at = t0 + ms(10 * i);
            assert_eq!(rc.control(at, i % 3 != 0, false, at), None, "control {i}");
        }
        // A host gone silent: every control lost, no answer for a while.
        let mut rc = RateControl::default();
        rc.answer(t0, false, t0);
        for i in 0..20 {
            let at = t0 + ms(1000 + 10 * i);
            assert_eq!(rc.control(at, false, false, at), None, "control {i}");
        }
        assert_eq!(rc.rate(), None);
    }

    #[test]
    fn rare_drops_leave_the_host_unpaced() {
        let t0 = Instant::now();
        let mut rc = RateControl::default();
        for i in 0..1000 {
            let now = t0 + Duration::from_millis(i);
            assert_eq!(rc.answer(now, i % 20 == 0, now), None);
        }
        assert_eq!(rc.rate(), None);
    }
}
