//! How much of the traffic gets through, and how fast to send: the sweep re-probes hosts it
//! already found alive (*control probes*, one per [`CONTROL_EVERY`] first probes, one per
//! [`REPROBE_CONTROL_EVERY`] re-probes of silent targets, so that a small range re-probed in
//! a few quick waves still sends enough of them to be judged) and counts how many of those
//! answer. Their answer ratio is the loss the network inflicts on probes to live
//! hosts at the current rate, whatever the density of live hosts in the part of the range
//! being swept (a stretch of empty addresses is not mistaken for throttling).
//!
//! The [`Meter`] keeps these counts per *epoch* (a stretch of time at one rate) and judges them
//! a window of [`WINDOW`] resolved controls at a time:
//! - when a window's answer ratio falls far below what earlier windows showed (below
//!   [`COLLAPSE`] of their average), or below one half before anything else was learned, the
//!   rate may be to blame: the sweep slows down by the ratio of the two (at least by half);
//! - the next window checks the cure. If the answer ratio rose, the far side was throttling:
//!   a [`Throttle`] says so, and the rate will not climb back above what got through (a cure
//!   that lost a quarter or less after an early slow-down goes by the probes that reached
//!   live hosts, the ones a policer counts: `Meter::paced_by_live`). If it
//!   did not, the sweep slows down once more (the first estimate may have been flattered by a
//!   policer's burst; the next window is compared with the worse of the two); if that did not
//!   help either, the loss is the network's, not the rate's, so the rate goes back up, the
//!   lower ratio becomes the new normal, and nothing is said — unless the ratio rose a little
//!   (by a quarter but not by 0.2), as it does behind a limiter that lets a burst through per
//!   wave of re-probes until the rate nears its limit: then the sweep slows down again, up to
//!   four times in a row;
//! - after two windows as good as normal, the rate creeps back up, up to the ceiling (or to
//!   what got through when the far side throttled);
//! - most of the first few controls lost is enough to slow down, to the rate answers came
//!   back at, before any window is judged (`Meter::early_collapse`);
//! - without retries (`--retries 0`: a lost probe is a lost answer), a probe sent before
//!   enough controls judge its epoch counts as a try only if four or more show under a third
//!   lost (see [`Meter::eager`]).
//!
//! A control counts as lost only once the answer to a *later* control arrived more than the
//! timeout after it was sent (answers are read in the order they arrive), so a sweep that
//! falls behind reading its own answers — a loaded machine — does not take its own delay
//! for loss. Only when nothing at all comes back for [`SILENCE`] do controls expire by the
//! clock alone.
//!
//! The per-epoch loss estimates also tell the schedule how many re-probes a silent target
//! needs (module `schedule`). Until a round has resolved `TRUSTED` controls — on a small
//! range it never does — the estimate is what the round saw so far: the controls resolved,
//! and the probes the hosts found lost before one was answered (a host found at its third
//! probe lost two, unless their answers still come, overtaken by the third one's), as nmap
//! takes an answer to a retransmission for a sign of loss; never less than what the last round
//! saw, nor than `PRIOR_LOSS`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;

use tokio::time::{Duration, Instant};

use super::witness::{self, Witness};

/// One control probe per this many probes.
pub const CONTROL_EVERY: u32 = 16;
/// One control probe per this many re-probes of silent targets: a small range re-probed in
/// quick waves would otherwise send too few controls for the meter to judge a window.
pub const REPROBE_CONTROL_EVERY: u32 = 4;
/// Resolved control probes per judgement of the answer ratio (half as many when the answer
/// is plain: a collapse to a third, a slow-down that doubled the ratio, or a first slow-down
/// that did not raise it at all).
pub const WINDOW: u32 = 32;
/// A window answering less than this share of the usual ratio means the answers collapsed.
pub const COLLAPSE: f64 = 0.5;
/// Before a slow-down was ever found useless, a window answering less than this is suspect
/// too (a far side throttling from the first probe on shows no drop).
const SUSPECT: f64 = 0.5;
/// A window answering at least this share of the usual ratio is as good as normal.
const NORMAL: f64 = 0.95;
/// A slow-down is kept when it raises the answer ratio by this factor (and by 0.2 at least).
const CURED: f64 = 1.25;
/// How much faster to go after two normal windows.
const SPEED_UP: f64 = 1.25;
/// How many times each found host may serve as a control in a round.
const CONTROLS_PER_HOST: u8 = 8;
/// How many found hosts are kept as control candidates.
const CANDIDATES: usize = 256;
/// Controls an epoch needs before its own loss estimate is trusted.
const TRUSTED: u32 = 8;
/// The loss assumed before anything was measured.
const PRIOR_LOSS: f64 = 0.05;
/// With no control answered for this long, controls expire by the clock alone.
pub const SILENCE: Duration = Duration::from_secs(2);
/// A path is taken for dead when the controls sent since the last answer would all be lost
/// less often than this at the loss seen before them (see [`Meter::dead`]).
const DEAD_CHANCE: f64 = 1e-4;
/// The most a single slow-down divides the rate by.
const MAX_DIVIDE: u64 = 8;
/// The most answer counts noted before the early slow-down (see [`Meter::capacity`]).
const MARKS: usize = 4096;
/// The fewest answers in the second half of the time before the early slow-down that measure
/// what gets through (see [`Meter::capacity`]).
const LATE_ANSWERS: u32 = 4;
/// How much later than its answer's round trip says a control's send may have begun and still
/// be the one answered (round trips are measured on another clock).
const MATCH_SLACK: Duration = Duration::from_millis(1);

/// A slow-down: the answer ratio of control probes collapsed at `from` probes/s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttle {
    /// The rate before, probes per second.
    pub from: u64,
    /// The rate after.
    pub to: u64,
    /// The share of control probes answered in the window that collapsed (0 to 1).
    pub answered: f64,
    /// The share earlier windows had.
    pub expected: f64,
}

#[derive(Debug, Clone, Copy)]
struct Epoch {
    /// Probes per second in this epoch.
    rate: u64,
    /// Controls answered.
    ok: u32,
    /// Controls lost (a later control's answer came after their timeout).
    lost: u32,
    /// Controls past their timeout by the clock but not yet known lost (at the last look).
    overdue: u32,
    /// Probes sent (controls included).
    sent: u32,
    /// Hosts found in this epoch (their probes went to live hosts).
    found: u32,
}

impl Epoch {
    fn new(rate: u64) -> Epoch {
        Epoch {
            rate,
            ok: 0,
            lost: 0,
            overdue: 0,
            sent: 0,
            found: 0,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    index: u64,
    /// When its send began: no later than the time the probe carries.
    began: Instant,
    sent: Instant,
    epoch: u16,
    answered: bool,
    /// Rejected by the host itself (a limiter): lost, known at once.
    refused: bool,
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    index: u64,
    addr: IpAddr,
    /// The slot of the method that found it (module `multi`): its controls go by that one.
    slot: u8,
    uses: u8,
    /// Its controls lost in a row since its last answer, and the epoch of each.
    missed: u8,
    missed_in: [u16; CONTROLS_PER_HOST as usize],
}

/// Slow-downs waiting for the window that judges them.
#[derive(Debug, Clone, Copy)]
struct Trial {
    /// The rate before the first of them.
    from: u64,
    /// The answer ratio that made the first one (the worst of the trial since).
    answered: f64,
    /// The controls (answered, lost) of the window that showed it.
    window: (u32, u32),
    /// The epoch of that window: the controls of later epochs were sent slower.
    epoch: u16,
    /// The epoch of the window that made the first slow-down.
    start: u16,
    /// How many slow-downs so far.
    steps: u32,
    /// Begun on a handful of controls, before any window was judged
    /// ([`Meter::early_collapse`]): unless the next window shows a cure, the rate goes back
    /// and nothing is concluded.
    early: bool,
}

/// Slow-downs tried in a row without a better answer ratio before the loss is taken to be the
/// network's rather than the rate's.
const TRIALS: u32 = 2;
/// Slow-downs tried in a row at most while each raises the answer ratio a little.
const MAX_TRIALS: u32 = 4;

/// Control probes, loss per epoch, and the sending rate.
#[derive(Debug)]
pub struct Meter {
    ceiling: u64,
    limit: u64,
    rate: u64,
    usual: f64,
    suspicious: bool,
    good: u32,
    epochs: Vec<Epoch>,
    pending: VecDeque<Pending>,
    candidates: VecDeque<Candidate>,
    /// Candidates whose controls are all sent, kept while some are in flight: a host that
    /// went down is told by the controls it lost in a row (see [`Meter::went_down`]).
    spent: HashMap<u64, Candidate>,
    /// Hosts that went down during the round: their lost controls measure nothing.
    gone: HashSet<u64>,
    since_control: u32,
    window: (u32, u32),
    trial: Option<Trial>,
    /// The round's targets are settled and controls go out to judge the trial at its end:
    /// no window is judged before then.
    settling: bool,
    throttled: bool,
    /// The latest arrival of a control answer.
    heard: Option<Instant>,
    /// Control probes sent since a live host last answered anything, and when the first of
    /// them went (see [`Meter::dead`]).
    unanswered: (u32, Option<Instant>),
    /// Whether nothing answered for long (see [`Meter::dead`]), at the last look.
    dead: bool,
    /// The first probes to the hosts found in this round: (answered, lost before the one
    /// answered). One lost whose answer came after all counts as answered.
    first: (u32, u32),
    /// Hosts found at a re-probe: the attempt that found each, and the earlier attempts
    /// answered since (bit N: attempt N), whose probes were late, not lost.
    reprobed: HashMap<u64, (u8, u32)>,
    /// The loss the last round's evidence showed (see [`Meter::prior`]).
    carried: f64,
    /// When this round was first looked at (its first [`Meter::expire`]).
    began: Option<Instant>,
    /// Answers from live hosts this round: first answers, control answers, answers again.
    answers: u32,
    /// Windows judged this round.
    windows: u32,
    /// Whether a lost probe is a lost answer (`--retries 0`): then a probe counts as a try in
    /// an epoch too thin to judge only if the controls show the way clean ([`Meter::clean`]).
    eager: bool,
    /// Whether most of the first controls lost may slow the sweep before any window is judged
    /// ([`Meter::early_collapse`]; off only in tests of the windows alone).
    early: bool,
    /// The rate of this round's early slow-down, the rate answers came back at (see
    /// [`Meter::paced`]).
    early_rate: Option<u64>,
    /// Whether an earlier round of this sweep (`--every`) was run: then a sweep with retries
    /// slows down only as its windows say (see [`Meter::early_collapse`]).
    later: bool,
    /// The answers per second from live hosts, net of a burst, when the early slow-down began
    /// (the far side's throughput, while it throttled; see [`Meter::capacity`]).
    collapse_capacity: Option<u64>,
    /// Before the early slow-down: when each new count of answers was first seen (at an
    /// [`Meter::expire`]), for [`Meter::capacity`]; at most `MARKS`.
    marks: Vec<(Instant, u32)>,
    /// Whether a round that found nothing without retries makes sure a far side throttling
    /// its first probes is not to blame (module `witness`).
    witness: Witness,
    /// The epoch the witness began in, once it found a host: every earlier epoch (nothing
    /// answered in them, something did slower) was wasted on a far side throttling.
    witnessed: Option<u16>,
    /// The epoch the witness began in.
    witness_epoch: u16,
}

impl Meter {
    /// A meter that starts sending at `ceiling` probes per second and never goes faster.
    pub fn new(ceiling: u64) -> Self {
        Meter {
            ceiling: ceiling.max(1),
            limit: ceiling.max(1),
            rate: ceiling.max(1),
            usual: 1.0,
            suspicious: true,
            good: 0,
            epochs: vec![Epoch::new(ceiling.max(1))],
            pending: VecDeque::new(),
            candidates: VecDeque::new(),
            spent: HashMap::new(),
            gone: HashSet::new(),
            since_control: 0,
            window: (0, 0),
            trial: None,
            settling: false,
            throttled: false,
            heard: None,
            unanswered: (0, None),
            dead: false,
            first: (0, 0),
            reprobed: HashMap::new(),
            carried: 0.0,
            began: None,
            answers: 0,
            windows: 0,
            eager: false,
            early: true,
            early_rate: None,
            collapse_capacity: None,
            marks: Vec::new(),
            later: false,
            witness: Witness::Idle,
            witnessed: None,
            witness_epoch: 0,
        }
    }

    /// The same meter, slowing down only as its windows say (tests of the windows alone).
    #[cfg(test)]
    fn windows_only(self) -> Self {
        Meter {
            early: false,
            ..self
        }
    }

    /// The same meter, eager or not: eager for a sweep without retries (`--retries 0`), where
    /// a lost probe is a lost answer. While too few controls were sent to judge an epoch, an
    /// eager meter counts its probes as tries only once four or more show under a third lost
    /// (see [`Meter::wasted`]).
    pub fn eager(self, eager: bool) -> Self {
        Meter { eager, ..self }
    }

    /// Forgets the last round's controls and epochs; keeps the rate and what is usual, and
    /// lets the rate climb a little higher than what got through last time.
    pub fn start_round(&mut self) {
        let last = Meter::new(self.ceiling);
        let old = std::mem::replace(self, last);
        self.limit = ((old.limit as f64 * SPEED_UP) as u64).min(self.ceiling);
        self.rate = match old.early_rate {
            // The early slow-down went to the rate answers came back at, waits included, and
            // a small round has no windows to raise it: the next round starts faster.
            Some(_) => ((old.rate as f64 * SPEED_UP) as u64)
                .min(self.limit)
                .max(old.rate),
            None => old.rate,
        };
        self.epochs = vec![Epoch::new(self.rate)];
        self.usual = old.usual;
        self.suspicious = old.suspicious;
        self.carried = old.seen().unwrap_or(old.carried);
        self.eager = old.eager;
        self.early = old.early;
        self.later = old.later || old.began.is_some();
        if self.later {
            // A later round (`--every`) that found nothing pays no witness each time.
            self.witness = Witness::Done;
        }
    }

    /// Probes per second now.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Whether the rate was lowered in this round.
    pub fn throttled(&self) -> bool {
        self.throttled
    }

    /// The rate probes went at in `epoch` (the current rate if there is no such epoch).
    pub fn epoch_rate(&self, epoch: u16) -> u64 {
        self.epochs
            .get(usize::from(epoch))
            .map_or(self.rate, |e| e.rate)
    }

    /// The current epoch.
    pub fn epoch(&self) -> u16 {
        (self.epochs.len() - 1) as u16
    }

    /// A host that answered the method in `slot`, first at its `attempt`-th probe: a
    /// candidate for control probes by it, and `attempt - 1` probes to a live host lost.
    pub fn found(&mut self, index: u64, addr: IpAddr, slot: u8, attempt: u8) {
        self.heard_back();
        self.answers += 1;
        if let Some(e) = self.epochs.last_mut() {
            e.found += 1;
        }
        self.first.0 += 1;
        self.first.1 += u32::from(attempt.saturating_sub(1));
        if attempt > 1 {
            self.reprobed.insert(index, (attempt, 0));
        }
        if self.candidates.len() < CANDIDATES {
            self.candidates.push_back(Candidate {
                index,
                addr,
                slot,
                uses: 0,
                missed: 0,
                missed_in: [0; CONTROLS_PER_HOST as usize],
            });
        }
    }

    /// A host already found answered its `attempt`-th probe too. An answer to a probe sent
    /// before the one that found it (overtaken on the way by the re-probe's: a link that
    /// reorders) says that probe was not lost after all: it counts as answered.
    pub fn answered_again(&mut self, index: u64, attempt: u8) {
        self.answers += 1;
        let Some((found, heard)) = self.reprobed.get_mut(&index) else {
            return;
        };
        if attempt == 0 || attempt >= *found {
            return;
        }
        let bit = 1u32 << u32::from(attempt).min(31);
        if *heard & bit == 0 && self.first.1 > 0 {
            *heard |= bit;
            self.first.0 += 1;
            self.first.1 -= 1;
        }
    }

    /// Called before each probe (`reprobe`: of a silent target): the host to send a control
    /// probe to instead, when one is due, and the slot of the method to send it by. Once it
    /// is sent, [`Meter::sent_control`] says so.
    ///
    /// Once this round found the far side throttling and no slow-down is on trial, re-probes
    /// take controls as first probes do (one per [`CONTROL_EVERY`]): the rate is under what
    /// gets through, and behind a policer each control costs a re-probe's place in its
    /// bucket.
    pub fn control(&mut self, reprobe: bool) -> Option<(u64, IpAddr, u8)> {
        let settled = self.throttled && self.trial.is_none();
        self.since_control += match reprobe && !settled {
            true => CONTROL_EVERY / REPROBE_CONTROL_EVERY,
            false => 1,
        };
        let pick = match self.since_control < CONTROL_EVERY {
            true => None,
            false => self.pick(),
        };
        let Some(pick) = pick else {
            // The probe goes (a control goes instead otherwise: [`Meter::sent_control`]).
            self.count_sent();
            return None;
        };
        self.since_control = 0;
        Some(pick)
    }

    /// Whether a slow-down is waiting for the window that judges it.
    pub fn on_trial(&self) -> bool {
        self.trial.is_some()
    }

    /// The host to send a control probe to now, whatever the probes before (the round's
    /// targets are settled, a slow-down still on trial), and the slot of its method. From the
    /// first on, no window is judged: [`Meter::end_round`] judges the trial on them all.
    pub fn settling_control(&mut self) -> Option<(u64, IpAddr, u8)> {
        self.settling = true;
        self.pick()
    }

    /// The next control candidate, used once more.
    fn pick(&mut self) -> Option<(u64, IpAddr, u8)> {
        let mut pick = self.candidates.pop_front()?;
        pick.uses += 1;
        match pick.uses < CONTROLS_PER_HOST {
            true => self.candidates.push_back(pick),
            false => {
                self.spent.insert(pick.index, pick);
            }
        }
        Some((pick.index, pick.addr, pick.slot))
    }

    /// A control probe to `index` went out: the send began at `began` (before the probe took
    /// its time) and returned at `now` (its timeout counts from then: a send that had to wait
    /// for room in the socket is not a late answer).
    pub fn sent_control(&mut self, index: u64, began: Instant, now: Instant) {
        self.unanswered.0 += 1;
        self.unanswered.1.get_or_insert(now);
        self.count_sent();
        let epoch = self.epoch();
        self.pending.push_back(Pending {
            index,
            began,
            sent: now,
            epoch,
            answered: false,
            refused: false,
        });
    }

    /// A control probe to `index` was answered after `rtt`, the answer taken in at `now`: the
    /// latest control to that host not answered yet whose send began by `now - rtt` (the
    /// answers carry no sign of which; an answer is no sooner taken in than it arrived, so its
    /// probe left by then). Crediting the oldest let the answers to a slowed-down sweep's
    /// controls go to controls lost before the slow-down, still pending, and the slow-down
    /// looked as if nothing got through; crediting the latest of all, when several controls to
    /// one host were in flight and answers came late or out of order, left the earliest ones
    /// unanswered — the first window judged looked like a collapse and the next like a cure.
    /// An answer that comes after its control was resolved lost credits none sent later.
    pub fn answered(&mut self, index: u64, rtt: Duration, now: Instant) {
        self.heard_back();
        self.answers += 1;
        let left = now.checked_sub(rtt).unwrap_or(now) + MATCH_SLACK;
        let Some(p) = self
            .pending
            .iter_mut()
            .rev()
            .find(|p| p.index == index && !p.answered && p.began <= left)
        else {
            return;
        };
        p.answered = true;
        let arrived = p.sent + rtt;
        self.heard = Some(self.heard.map_or(arrived, |h| h.max(arrived)));
    }

    /// A control probe to `index` was rejected by the host itself (a rate limiter that
    /// REJECTs, module `reject`): it is lost, and known to be at once.
    pub fn refused(&mut self, index: u64) {
        let pending = self.pending.iter_mut();
        if let Some(p) = pending
            .filter(|p| p.index == index && !p.answered)
            .find(|p| !p.refused)
        {
            p.refused = true;
        }
    }

    /// Resolves the controls answered, and those lost (see the module's text), and judges the
    /// window when it is full; a confirmed slow-down is returned.
    pub fn expire(&mut self, now: Instant, timeout: Duration) -> Option<Throttle> {
        self.began.get_or_insert(now);
        let silence = now.checked_sub(SILENCE);
        let clock = match (self.heard, silence) {
            (Some(heard), Some(silence)) => heard.max(silence),
            (heard, silence) => heard.or(silence).unwrap_or(now).min(now),
        };
        let mut verdict = None;
        while let Some(p) = self.pending.front().copied() {
            if !p.answered && !p.refused && p.sent + timeout > clock {
                break;
            }
            self.pending.pop_front();
            let after = self.others_after(&p, clock, timeout);
            self.resolve(p, after);
            if !self.settling && self.window_full() {
                verdict = verdict.or(self.judge());
            }
        }
        self.count_overdue(now, timeout);
        let (sent, since) = self.unanswered;
        let (ok, lost) = self.evidence();
        let before = crate::wilson::upper(u64::from(ok), u64::from(lost.saturating_sub(sent)));
        let unlikely = before.powi(i32::try_from(sent).unwrap_or(i32::MAX)) < DEAD_CHANCE;
        let dead =
            sent >= TRUSTED && unlikely && since.is_some_and(|at| now >= at + SILENCE.max(timeout));
        if dead && !self.dead {
            tracing::debug!("sweep: {sent} control probes and nothing answered since {since:?}");
        }
        self.dead = dead;
        self.follow_witness(now, timeout);
        self.mark(now);
        if verdict.is_none() {
            self.early_collapse(now);
        }
        tracing::trace!(
            "controls: {} pending, window {:?}, epoch {} {:?}",
            self.pending.len(),
            self.window,
            self.epoch(),
            self.epochs.last()
        );
        verdict
    }

    /// A live host answered something (a control, or a first answer): the way is open.
    fn heard_back(&mut self) {
        self.unanswered = (0, None);
        self.dead = false;
    }

    /// Whether the way to the hosts found looks dead: `TRUSTED` control probes or more went
    /// out and no live host answered anything for [`SILENCE`] (or the control timeout, if
    /// longer) since the first of them, and the loss seen before (the controls, and the
    /// probes the hosts found needed, as [`Meter::round_loss`] counts them; the upper end of
    /// its one-sided 95% interval) loses that many in a row less than once in 10^4
    /// (a link losing three round trips in four needs 32: at 8, a /26 on such a link was
    /// taken for dead and 10 hosts were given up). A far side that throttles lets its rate
    /// through, and the controls ride on every wave of probes, so some come back; a path cut
    /// after the round began (or every host found gone) answers nothing at any rate. Then no
    /// probe is counted as wasted on a throttle (slowing down cannot bring answers back) and
    /// the silent targets are given up once they had their least probes (module `schedule`):
    /// re-probing them to the most of a throttled round made a /24 whose path died 0.1 s
    /// into the round last 30 s and more. (On the controls alone, a path cut before any
    /// control was answered, the hosts found by their first probes, never looked dead.)
    pub fn dead(&self) -> bool {
        self.dead
    }

    /// Whether the window holds enough controls to judge.
    fn window_full(&self) -> bool {
        let (ok, lost) = self.window;
        let n = ok + lost;
        if n >= WINDOW {
            return true;
        }
        let answered = f64::from(ok) / f64::from(n.max(1));
        let plain = match self.trial {
            Some(trial) => {
                let cured = answered >= 2.0 * trial.answered + 0.2;
                if trial.early && cured && self.early_cure_sure(&trial) {
                    return true;
                }
                // Slowing down further may be judged on little; going back up may not,
                // unless nothing answered at any rate of the trial (a path that died).
                let dead = ok == 0 && trial.answered == 0.0;
                cured || (answered <= trial.answered && (trial.steps < TRIALS || dead))
            }
            None => answered < self.usual / 3.0,
        };
        n >= WINDOW / 2 && plain
    }

    /// Whether the window so far already shows the early slow-down of `trial` a cure as surely
    /// as [`Meter::judge_trial`] asks of it (more than chance at `CLAIM_Z` against the handful
    /// of controls that began it): then it is judged at once. It waited for half a window
    /// (16 controls) whatever the first ones showed: behind a policer of 100/s a /26 swept
    /// with `--retries 0` went on sending one control per 4 re-probes at the slower rate, and
    /// its round was over before the window was (16 controls of the slow wave's 70 probes;
    /// 4 lost before, 8 of 8 answered after are already sure). A quarter window at least:
    /// judged after each control from the first on, a /26 losing half the packets each way
    /// claimed throttling in 2 sweeps of 200 (1 before).
    fn early_cure_sure(&self, trial: &Trial) -> bool {
        let (ok, lost) = self.window;
        ok + lost >= WINDOW / 4 && significantly_more(self.window, self.reference(trial), CLAIM_Z)
    }

    /// Counts, per epoch, the controls past their timeout by the clock that are not known
    /// lost yet: the loss estimates for re-probing count them as lost (a policer that lets
    /// few answers through must not look like a clean link).
    fn count_overdue(&mut self, now: Instant, timeout: Duration) {
        for epoch in &mut self.epochs {
            epoch.overdue = 0;
        }
        let overdue = self.pending.iter().take_while(|p| p.sent + timeout <= now);
        for p in overdue.filter(|p| !p.answered) {
            if let Some(epoch) = self.epochs.get_mut(usize::from(p.epoch)) {
                epoch.overdue += 1;
            }
        }
    }

    /// Resolves the control `p`; `after`: the controls to other hosts sent after it, as
    /// [`Meter::others_after`] counts them.
    fn resolve(&mut self, p: Pending, after: (u32, u32)) {
        if !p.answered && self.went_down(&p, after) {
            return;
        }
        let Some(epoch) = self.epochs.get_mut(usize::from(p.epoch)) else {
            return;
        };
        match p.answered {
            true => epoch.ok += 1,
            false => epoch.lost += 1,
        }
        if p.answered {
            if let Some(c) = self.candidate(p.index) {
                c.missed = 0;
            }
        }
        self.forget_spent(p.index);
        if p.epoch == self.epoch() {
            match p.answered {
                true => self.window.0 += 1,
                false => self.window.1 += 1,
            }
        }
    }

    /// Whether the control `p`, lost, is one more of its host's in a row that the other
    /// hosts' controls make too many for chance (fewer than 1 in 100 at their loss, as
    /// [`estimate`] weighs it, once `TRUSTED` of theirs were resolved; at least two in a
    /// row): the host went down during the round, and its controls measure that host, not
    /// the way to the others. It serves as a control no
    /// more, and its lost controls are taken out of the counts: a host that went down just
    /// after it was found made the others' loss look like a third on a clean link (one of
    /// three hosts found), and the silent targets were probed up to four times as often.
    /// Otherwise `p` is noted as one more of its host's lost in a row.
    ///
    /// A host's controls go out faster than they are resolved: a host that went down just
    /// after it was found had all its controls sent, and was no candidate any more, before
    /// the first was seen lost; and once it was found down, its controls still in flight
    /// were counted lost. On a clean link a /24 with three hosts, one gone as soon as it
    /// answered, read 30% loss and sent its silent targets 17 probes each (`--retries 1`):
    /// 4328 probes in 5.1 s where the same round with nothing gone takes 1542 in 1.1 s.
    ///
    /// The others' loss over the round is not enough: the controls to other hosts sent after
    /// `p` (`after`, answered and known lost), when any are known, must show the way open
    /// then, by the same rule (none known yet: the round's loss decides alone, as before).
    /// Behind a policer the controls of a sparse range (one per 16 probes, a few hosts found)
    /// outnumber the probes to live hosts; once its bucket was empty every host's controls
    /// were lost in a row, each host in turn was taken for gone while the others' loss, its
    /// lost controls taken out, stayed low, and the policer was never seen: a /22 with 3% of
    /// it live, swept with `--retries 0` behind 100/s, found 11 of 27 (scheduler's
    /// simulation).
    fn went_down(&mut self, p: &Pending, after: (u32, u32)) -> bool {
        if self.gone.contains(&p.index) {
            return true;
        }
        let open = match after.0 + after.1 {
            0 => 0.0, // nothing known after it: no evidence against
            _ => estimate(after.0, after.1),
        };
        let (ok, lost) = self.totals();
        let Some(c) = self.candidate(p.index) else {
            return false;
        };
        let missed = c.missed;
        let others_lost = lost.saturating_sub(u32::from(missed));
        let chance = estimate(ok, others_lost);
        let judged = ok + others_lost >= TRUSTED;
        let unlikely = |chance: f64| chance.powi(i32::from(missed) + 1) < 0.01;
        if missed >= 1 && judged && unlikely(chance) && unlikely(open) {
            let earlier = c.missed_in;
            self.candidates.retain(|c| c.index != p.index);
            self.spent.remove(&p.index);
            self.gone.insert(p.index);
            tracing::debug!("sweep: control host {} stopped answering", p.index);
            for e in &earlier[..usize::from(missed)] {
                if let Some(epoch) = self.epochs.get_mut(usize::from(*e)) {
                    epoch.lost = epoch.lost.saturating_sub(1);
                }
                if *e == self.epoch() {
                    self.window.1 = self.window.1.saturating_sub(1);
                }
            }
            return true;
        }
        if let Some(slot) = c.missed_in.get_mut(usize::from(missed)) {
            *slot = p.epoch;
            c.missed += 1;
        }
        false
    }

    /// The controls to hosts other than `p`'s (and not gone) sent after it and still pending:
    /// (answered, known lost: rejected, or sent `timeout` or more before `clock`).
    /// Only a lost control needs them: (0, 0) for an answered one.
    fn others_after(&self, p: &Pending, clock: Instant, timeout: Duration) -> (u32, u32) {
        if p.answered {
            return (0, 0);
        }
        let others = self
            .pending
            .iter()
            .filter(|q| q.index != p.index && q.sent >= p.sent && !self.gone.contains(&q.index));
        others.fold((0, 0), |(ok, lost), q| match q.answered {
            true => (ok + 1, lost),
            false if q.refused || q.sent + timeout <= clock => (ok, lost + 1),
            false => (ok, lost),
        })
    }

    /// The control candidate `index`, in use or spent.
    fn candidate(&mut self, index: u64) -> Option<&mut Candidate> {
        match self.candidates.iter_mut().find(|c| c.index == index) {
            Some(c) => Some(c),
            None => self.spent.get_mut(&index),
        }
    }

    /// Lets a spent candidate go once none of its controls is in flight.
    fn forget_spent(&mut self, index: u64) {
        if self.spent.contains_key(&index) && !self.pending.iter().any(|q| q.index == index) {
            self.spent.remove(&index);
        }
    }

    /// Judges a full window of the current epoch.
    fn judge(&mut self) -> Option<Throttle> {
        self.windows += 1;
        let (ok, lost) = std::mem::take(&mut self.window);
        let answered = f64::from(ok) / f64::from(ok + lost);
        tracing::debug!(
            "sweep window at {}/s: {ok} of {} controls answered",
            self.rate,
            ok + lost
        );
        if let Some(trial) = self.trial.take() {
            return self.judge_trial(trial, (ok, lost));
        }
        let suspect = self.suspicious && answered < SUSPECT;
        if answered < COLLAPSE * self.usual || suspect {
            let trial = Trial {
                from: self.rate,
                answered,
                window: (ok, lost),
                epoch: self.epoch(),
                start: self.epoch(),
                steps: 0,
                early: false,
            };
            return self.slow_down(answered, trial);
        }
        self.usual = 0.75 * self.usual + 0.25 * answered;
        self.speed_up(answered);
        None
    }

    /// Judges the window after a slow-down of `trial`: cured (the far side throttles), or one
    /// more slow-down, or the loss is the network's and the rate goes back up. A slow-down
    /// that raised the ratio by [`CURED`] but not by 0.2 is followed by another, up to
    /// [`MAX_TRIALS`]: behind a limiter that lets a burst through per wave of re-probes, the
    /// ratio rises slowly until the rate nears the limit. The next window is judged against
    /// the worst ratio of the trial: the first may have been flattered by that burst.
    ///
    /// A cure must be more than chance: the window after answers more than the controls of
    /// the epoch of the trial's worst window for certain (one-sided 97.7% intervals apart; see
    /// [`Meter::reference`]). Windows of 16 to 32 controls on a link that loses half the
    /// answers at any rate come out anywhere from a quarter to three quarters answered, and
    /// one such pair was taken for a throttling far side.
    fn judge_trial(&mut self, trial: Trial, window: (u32, u32)) -> Option<Throttle> {
        let (ok, lost) = window;
        let answered = f64::from(ok) / f64::from(ok + lost);
        let raised = answered >= (trial.answered * CURED).max(trial.answered + 0.2);
        // An early trial is weighed against the handful of controls that began it: a cure
        // needs as much certainty as a claim at the round's end.
        let sure = match trial.early {
            true => significantly_more(window, self.reference(&trial), CLAIM_Z),
            false => clearly_more(window, self.reference(&trial), CURE_Z),
        };
        if raised && sure {
            return Some(self.cured(trial, answered));
        }
        if trial.early {
            if raised {
                // Slower answered more, too little yet to be sure: the trial goes on at this
                // rate, judged as any other by the next window or at the round's end.
                self.trial = Some(Trial {
                    early: false,
                    ..trial
                });
                return None;
            }
            // Slower answered no more: the windows take it from the rate before, as if it
            // had not been tried.
            self.set_rate(trial.from);
            return None;
        }
        // Nothing answering at a slower rate either is no rise: a path that died, not a
        // policer (which lets its rate through at any rate of ours).
        let rose = answered > 0.0 && answered >= trial.answered * CURED;
        if trial.steps < TRIALS || (rose && trial.steps < MAX_TRIALS) {
            let worst = match answered <= trial.answered {
                true => (answered, window, self.epoch()),
                false => (trial.answered, trial.window, trial.epoch),
            };
            let trial = Trial {
                answered: worst.0,
                window: worst.1,
                epoch: worst.2,
                ..trial
            };
            return self.slow_down(answered, trial);
        }
        // Slower did not help: the loss is the network's, not the rate's.
        self.usual = answered;
        self.suspicious = false;
        self.set_rate(trial.from);
        None
    }

    /// At the end of a round (`now`), a slow-down still on trial, its window not judged: the
    /// controls of the last epoch (the slowest; those past `timeout` count too, answered or
    /// lost) judge it as they stand, against all those of the trial's earlier epochs (the first
    /// collapse's included). When they answered more by 0.2 and by more than chance (a
    /// two-proportion test at `CLAIM_Z`), the far side throttled and it is reported;
    /// otherwise the rate goes back to what it was. A round whose targets were all settled
    /// with a slow-down on trial sent a window of controls at the slower rate for this (module
    /// `round`), and no window was judged meanwhile ([`Meter::settling_control`]).
    ///
    /// The controls sent after the trial's worst window used to be weighed against that
    /// window's epoch alone, by two 99% intervals that had to part: on a /26 behind a policer
    /// of 50/s the round ended with a handful of controls at the slowest rate, pooled with
    /// those of a 1250/s epoch (collapsed as well), and the policer went unreported in 9
    /// sweeps of 50.
    ///
    /// How far the answers fell below what was usual is no evidence on its own: before any
    /// window was judged the usual ratio is a guess (all answered), and a link losing half the
    /// packets each way at any rate answers a quarter. Such a collapse, reported as it stood,
    /// claimed throttling on a /26 in 9 runs of 25 (5 ms each way, 50% loss each way).
    pub fn end_round(&mut self, now: Instant, timeout: Duration) -> Option<Throttle> {
        let settled = |p: &Pending| p.refused || p.sent + timeout <= now;
        let done: Vec<Pending> = self.pending.iter().copied().filter(settled).collect();
        let after: Vec<(u32, u32)> = done
            .iter()
            .map(|p| self.others_after(p, now, timeout))
            .collect();
        self.pending.retain(|p| !settled(p));
        for (p, after) in done.into_iter().zip(after) {
            self.resolve(p, after);
        }
        let trial = self.trial.take()?;
        self.conclude(trial)
    }

    /// Judges the slow-downs of `trial` on the controls resolved so far (see
    /// [`Meter::end_round`]): reported, or the rate goes back to what it was.
    fn conclude(&mut self, trial: Trial) -> Option<Throttle> {
        let (slower, reference) = self.claim_counts(&trial);
        tracing::debug!(
            "sweep slow-down judged as it stands: {slower:?} controls (answered, lost) at {}/s, \
             {reference:?} before",
            self.rate
        );
        if !claimed(slower, reference) {
            self.set_rate(trial.from);
            return None;
        }
        self.throttled = true;
        Some(Throttle {
            from: trial.from,
            to: self.rate,
            answered: trial.answered,
            expected: self.usual,
        })
    }

    /// The controls (answered, lost) resolved so far that judge `trial` as it stands (see
    /// [`Meter::end_round`]): those of the last epoch (the slowest), and those of the trial's
    /// earlier epochs.
    fn claim_counts(&self, trial: &Trial) -> ((u32, u32), (u32, u32)) {
        let last = self.epoch();
        let slower = self.resolved_between(last, last);
        let reference = match last.checked_sub(1) {
            Some(before) if before >= trial.start => self.resolved_between(trial.start, before),
            _ => (0, 0),
        };
        (slower, reference)
    }

    /// Whether the controls resolved so far already make the claim that the slow-down on
    /// trial cured the loss ([`Meter::end_round`] would report it): then the controls sent
    /// alone at a round's end to judge it (module `round`) can stop. They went on to a window
    /// and more whatever the first ones showed: behind a policer of 100/s a /26 swept with
    /// `--retries 0` (scheduler's simulation) spent its last 0.5 s sending 50 controls alone,
    /// the claim sure after the first.
    pub fn claim_sure(&self) -> bool {
        self.trial
            .as_ref()
            .is_some_and(|trial| matches!(self.claim_counts(trial), (s, r) if claimed(s, r)))
    }

    /// A slow-down raised the answer ratio (to `answered`): the far side throttles. Says so,
    /// settles a little under what gets through, and keeps the rate from climbing back above
    /// it.
    fn cured(&mut self, trial: Trial, answered: f64) -> Throttle {
        self.throttled = true;
        let through = self.rate as f64 * (answered / self.usual).min(1.0);
        let share = answered / self.usual;
        // A cure window that lost a few (three quarters answered or more) still goes by the
        // probes that reach live hosts, less its loss: at 0.9 of what got through, a /22 with
        // 10% live behind 50/s whose cure window answered 7 of 8 went at 72-80/s (49.6 s).
        let paced = match share >= 0.75 {
            true => self.paced_by_live(trial.from),
            false => None,
        };
        let paced = paced.map(|p| (p as f64 * share.min(1.0)) as u64);
        match paced {
            Some(paced) if paced > self.rate => {
                self.set_rate(paced);
                self.limit = paced;
            }
            _ if answered < NORMAL * self.usual => self.set_rate(((through * 0.9) as u64).max(1)),
            _ => {}
        }
        self.limit = match self.eager {
            // Without retries every probe the far side drops is a host called down: the rate
            // stays where the cure settled, under what got through (see [`Meter::policed`]).
            true => self.rate,
            false => self.limit.min(through as u64).max(self.rate),
        };
        Throttle {
            from: trial.from,
            to: self.rate,
            answered: trial.answered,
            expected: self.usual,
        }
    }

    /// A probe went out in the current epoch (a control or not).
    fn count_sent(&mut self) {
        if let Some(e) = self.epochs.last_mut() {
            e.sent += 1;
        }
    }

    /// After a cure whose window lost little (with retries), the rate to go at: the far side
    /// counts only the probes that reach a live host, so 0.9 of what it let through as the
    /// early slow-down began, net of its burst ([`Meter::capacity`]), over the share of the
    /// probes to come that will reach live hosts: the one control in [`CONTROL_EVERY`] probes
    /// once the cure is found, and the hosts found in this epoch over its probes; at most half
    /// of `from`, the rate that collapsed (going back to it collapsed again). `None` when it
    /// is no faster than the rate now, or there is too little to go by (fewer than half a
    /// `WINDOW` of probes: a cure window of eight controls among re-probes, one in four, can
    /// be 29 probes, and it asked for a whole `WINDOW`: the rate stayed at the early
    /// slow-down's for the round).
    ///
    /// It went by the answers' rate since the round began (the burst in it: about 160/s
    /// behind a policer of 100/s, so 0.6 of it) over this epoch's share of probes to live
    /// hosts, controls counted as sent: a cure window of re-probes, one control in four while
    /// on trial, read a quarter and paced a sparse /22 behind 100/s at 393/s (14.8 s), a cure
    /// window of first probes one in 16 and 1440/s (6.5 s).
    fn paced_by_live(&self, from: u64) -> Option<u64> {
        let capacity = self.collapse_capacity?;
        let e = self.epochs.last()?;
        tracing::debug!(
            "sweep: paced at {}/s: {capacity}/s got through, {} probes, {} hosts found",
            self.rate,
            e.sent,
            e.found
        );
        if self.eager || e.sent < WINDOW / 2 || capacity == 0 {
            return None;
        }
        let share = f64::from(e.found) / f64::from(e.sent) + 1.0 / f64::from(CONTROL_EVERY);
        let paced = ((capacity as f64 * 0.9 / share) as u64).min(from / 2);
        (paced > self.rate).then_some(paced)
    }

    /// After two windows as good as usual, a little faster.
    fn speed_up(&mut self, answered: f64) {
        self.good = match answered >= NORMAL * self.usual {
            true => self.good + 1,
            false => 0,
        };
        if self.good >= 2 && self.rate < self.limit {
            self.good = 0;
            let faster = (self.rate as f64 * SPEED_UP) as u64;
            self.set_rate(faster.min(self.limit));
        }
    }

    /// Slows down by the ratio of the answers to the usual (at least by half), as one step
    /// of `trial`; nothing is said until the next window shows whether it helped.
    fn slow_down(&mut self, answered: f64, trial: Trial) -> Option<Throttle> {
        let floor = self.floor();
        let by_ratio = self.rate as f64 * (answered / self.usual) * 0.9;
        let to = (by_ratio as u64)
            .clamp(self.rate / MAX_DIVIDE, self.rate / 2)
            .max(floor);
        let trial = Trial {
            steps: trial.steps + 1,
            ..trial
        };
        if to < self.rate {
            self.trial = Some(trial);
            self.good = 0;
            self.set_rate(to);
        } else if trial.steps > 1 {
            // No slower to go: judged on what the slow-downs so far showed. The trial was
            // dropped here, neither reported nor undone (the rate stayed at the floor).
            return self.conclude(trial);
        }
        None
    }

    fn set_rate(&mut self, rate: u64) {
        tracing::debug!(
            "sweep rate {} -> {rate}/s (usual answer ratio {:.2}, limit {})",
            self.rate,
            self.usual,
            self.limit
        );
        self.rate = rate;
        self.window = (0, 0);
        if self.epochs.len() < usize::from(u16::MAX) {
            self.epochs.push(Epoch::new(rate));
        }
    }

    /// The chance that a probe to a live host sent in `epoch` went unanswered: the epoch's own
    /// count once it has enough controls, else the whole round's, else what the round saw so
    /// far or earlier rounds showed (at least 5%: `Meter::prior`). Controls overdue count as
    /// lost here.
    pub fn loss(&self, epoch: u16) -> f64 {
        match self.counts(epoch) {
            Some((ok, lost)) => estimate(ok, lost),
            None => self.prior(),
        }
    }

    /// What the chance of [`Meter::loss`] may be at most, for all the controls can tell: the
    /// upper end of a one-sided 95% (Wilson score) interval around their count. The re-probes
    /// of silent targets are counted against it, not against the count itself: on a link that
    /// loses a fifth of the round trips, 8 controls all answer one time in six, and the count
    /// alone would then give up on a silent live host after two or three probes.
    pub fn loss_bound(&self, epoch: u16) -> f64 {
        match self.counts(epoch) {
            Some((ok, lost)) => crate::wilson::upper(u64::from(ok), u64::from(lost)),
            None => self.prior(),
        }
    }

    /// Whether `epoch`'s loss is judged by enough controls (its own, or the round's), as
    /// `Meter::counts` counts them.
    pub fn judged(&self, epoch: u16) -> bool {
        self.counts(epoch).is_some()
    }

    /// The controls (answered, lost or overdue) `epoch`'s loss is judged by: its own once it
    /// has enough, else the whole round's; none before [`TRUSTED`] resolved.
    fn counts(&self, epoch: u16) -> Option<(u32, u32)> {
        if let Some(e) = self.epochs.get(usize::from(epoch)) {
            let lost = e.lost + e.overdue;
            if e.ok + lost >= TRUSTED {
                return Some((e.ok, lost));
            }
        }
        let (ok, lost) = self.totals();
        let overdue = self.overdue();
        (ok + lost + overdue >= TRUSTED).then_some((ok, lost + overdue))
    }

    /// The loss assumed while this round has too few controls to judge by: what this round
    /// saw so far ([`Meter::seen`]), what earlier rounds showed, at least [`PRIOR_LOSS`].
    fn prior(&self) -> f64 {
        let seen = self.seen().unwrap_or(0.0);
        (1.0 - self.usual)
            .max(PRIOR_LOSS)
            .max(self.carried)
            .max(seen)
    }

    /// The loss this round's evidence shows, if it has any: the controls resolved (overdue
    /// ones as lost) and the probes lost to hosts before they were found.
    fn seen(&self) -> Option<f64> {
        let (ok, lost) = self.evidence();
        (ok + lost > 0).then(|| estimate(ok, lost))
    }

    /// The probes to live hosts this round (answered, lost): the controls resolved, those
    /// overdue (as lost), and each found host's probes up to the one it answered (a host
    /// found at its third probe lost two).
    fn evidence(&self) -> (u32, u32) {
        let (ok, lost) = self.totals();
        (ok + self.first.0, lost + self.overdue() + self.first.1)
    }

    /// The controls past their timeout by the clock, not known lost yet (at the last look).
    fn overdue(&self) -> u32 {
        self.epochs.iter().map(|e| e.overdue).sum()
    }

    /// Whether probes sent in `epoch` were mostly wasted on a far side that throttles: more
    /// than half lost, at a rate above what gets through, or while a slow-down is on trial,
    /// or before any slow-down was found useless (the meter may not have judged a window yet:
    /// a policer that lets a few dozen probes through starves the controls of answers, and
    /// the re-probe limit would be used up at a rate it lets almost nothing through). Such
    /// probes do not count against the re-probe limit.
    ///
    /// An epoch with too few controls to judge it alone is judged by [`Meter::losing`]: on a
    /// small range the controls never fill a window, and a limiter that lets a handful of
    /// probes through a second would otherwise see every re-probe counted.
    pub fn wasted(&self, epoch: u16) -> bool {
        let Some(e) = self.epochs.get(usize::from(epoch)) else {
            return false;
        };
        if self.dead {
            return false;
        }
        if self.unwitnessed(e.rate) || self.witnessed.is_some_and(|w| epoch < w) {
            return true;
        }
        if self.eager && self.policed(e) {
            return true;
        }
        let throttling = self.trial.is_some() || e.rate > self.limit || self.suspicious;
        let lost = match self.counts(epoch) {
            Some((ok, lost)) => crate::wilson::upper(u64::from(ok), u64::from(lost)) > 0.5,
            None => self.losing() || (self.eager && !self.clean()),
        };
        throttling && lost
    }

    /// Whether probes sent in epoch `e` went faster than a far side that throttles lets
    /// through, as far as this round can tell: the round found it throttling and `e` went
    /// faster than the rate it settled at ([`Meter::cured`]). An eager meter counts no such
    /// probe as a try, whatever share of its controls came back (see [`Meter::wasted`]):
    /// without retries a probe the far side dropped is a host called down. A /21 behind a
    /// policer of 1000/s (burst 100, 40-80 ms round trips) swept with `--retries 0` missed up
    /// to 41 of its 2048 hosts: the early slow-down went to about 1200/s (the answers' rate
    /// since the round began, the policer's burst included), a sixth of its probes dropped
    /// once the bucket was empty, and with 55 of its 67 controls answered the epoch was not
    /// "mostly lost"; its silent targets were given up on their one probe.
    fn policed(&self, e: &Epoch) -> bool {
        self.throttled && e.rate > self.limit
    }

    /// Whether at least four of this round's controls were resolved or are overdue, and at
    /// least two thirds of them lost: too few to judge a window by, and to call the loss sure
    /// ([`Meter::losing`]), but enough to slow down at once (see [`Meter::early_collapse`]).
    fn mostly_lost(&self) -> bool {
        let (ok, lost) = self.totals();
        let lost = lost + self.overdue();
        ok + lost >= 4 && 3 * lost >= 2 * (ok + lost)
    }

    /// Whether this round's controls so far show the way clean enough to count a probe as a
    /// try without a judged epoch: four at least (resolved or overdue), under a third of them
    /// lost; or no host was found, so there is nothing to witness with. An eager meter
    /// ([`Meter::wasted`]) counts a probe only then: the silent targets get one more probe,
    /// with controls among them, rather than be given up on evidence still coming. Behind a
    /// policer of 100/s a /26 swept with `--retries 0` had its first batch judged on five
    /// controls, three lost, three more in flight (42 of 64 found); with round trips longer
    /// than its first wave (5 ms each way: a /26 at 10000/s takes 6.4 ms) no control went out
    /// with the first probes at all, and the 10 hosts of the policer's burst were all it found.
    fn clean(&self) -> bool {
        let (ok, lost) = self.totals();
        let lost = lost + self.overdue();
        self.first.0 == 0 || (ok + lost >= 4 && 3 * lost < ok + lost)
    }

    /// The slowest rate a slow-down goes to: a hundredth of the ceiling (fping's 100/s at the
    /// default 10000/s), at least 10/s.
    fn floor(&self) -> u64 {
        (self.ceiling / 100).max(10).min(self.ceiling)
    }

    /// The slowest rate an early slow-down ([`Meter::early_collapse`]) goes to: half the
    /// floor (50/s at the default 10000/s), at least 10/s. The rate answers came back at
    /// over the first probes is all it goes by, and behind a policer under the floor (a
    /// bucket that was empty as the sweep began) a trial at the floor answers about half,
    /// too little to tell a policer from random loss; one window at half the floor costs
    /// little.
    fn early_floor(&self) -> u64 {
        (self.floor() / 2).max(10).min(self.ceiling)
    }

    /// Answers per second from live hosts since the round was first looked at: what got
    /// through, whatever was sent (`None` before the round was looked at).
    fn delivered(&self, now: Instant) -> Option<u64> {
        let elapsed = now.checked_duration_since(self.began?)?.as_secs_f64();
        (elapsed > 0.0).then(|| (f64::from(self.answers) / elapsed) as u64)
    }

    /// Answers per second from live hosts over the second half of the time since the first
    /// answer came (to `now`): what gets through once a policer's burst is spent. The answers'
    /// rate since the round began counts the burst: behind a policer of 100/s (burst 10) a
    /// sparse /22 collapsed about 0.2 s in, at 123-167 answers/s. With fewer than
    /// `LATE_ANSWERS` answers in that half, two thirds of `delivered`, the answers' rate since
    /// the round began (about the burst's share in it behind 100/s): taken as nothing, a /22
    /// (10% live) behind 50/s stayed at the early slow-down's 87/s for 41-54 s.
    fn capacity(&self, now: Instant, delivered: u64) -> u64 {
        let fallback = delivered * 2 / 3;
        let Some(&(first, _)) = self.marks.iter().find(|(_, n)| *n > 0) else {
            return fallback;
        };
        let half = now.saturating_duration_since(first) / 2;
        let mid = first + half;
        let before = self.marks.iter().take_while(|(at, _)| *at <= mid).last();
        let late = self.answers - before.map_or(0, |(_, n)| *n);
        match half.as_secs_f64() {
            secs if secs > 0.0 && late >= LATE_ANSWERS => (f64::from(late) / secs) as u64,
            _ => fallback,
        }
    }

    /// Notes the count of answers at `now` while the early slow-down may still come (for
    /// [`Meter::capacity`]).
    fn mark(&mut self, now: Instant) {
        let waiting = self.early_rate.is_none() && self.windows == 0;
        let new = self.marks.last().is_none_or(|(_, n)| *n != self.answers);
        if waiting && new && self.marks.len() < MARKS {
            self.marks.push((now, self.answers));
        }
    }

    /// Before any window of this round was judged, most controls lost
    /// ([`Meter::mostly_lost`], the overdue ones counted; with retries, in the sweep's first
    /// round only, the loss sure: [`Meter::losing`]): a slow-down is put on trial at once,
    /// to the rate answers came back at so far (at least [`Meter::early_floor`], at most half
    /// the rate). The next window judges it: a cure is reported when slower answered more by
    /// more than chance against the handful of controls that began it (the two-proportion test
    /// of a claim at the round's end, `CLAIM_Z`); when slower answered more but not surely, the
    /// trial goes on as any other (the next window, or the round's end, judges it); when it
    /// answered no more, the rate goes back and the windows go on as if it had not been tried.
    /// Once loss shows, the sweep sends no faster than answers come back. It waited for a
    /// window that a small range's few probes could not fill: behind a policer of 100/s a /26
    /// sent its re-probes in waves at 10000/s, about a second apart, each of which the
    /// policer's burst (10) let through, and the slow-downs that came at last (to 1250/s,
    /// then 350-500/s) were still far above what it passes: 5.0-5.5 s with the default
    /// retries (fping 0.6-1.0 s), and with `--retries 0` 4-6 s or 42 of 64 hosts found (the
    /// first use, for `--retries 0` only). With retries too since stop 48: a cure at the next
    /// window needed only the window's interval (`CURE_Z`) before, and took random loss
    /// (three quarters of the round trips) for a policer in 2 sweeps of 200; going back when
    /// slower answered more but not surely, and the floor at [`Meter::floor`], left policers
    /// of 50/s whose bucket was empty at the start unreported (6 of 40 phases).
    fn early_collapse(&mut self, now: Instant) {
        let quiet = self.trial.is_some() || self.settling || self.dead || self.windows > 0;
        // With retries a lost probe is tried again: the loss must be sure ([`Meter::losing`]),
        // not only likely, and only in a sweep's first round: later rounds (`--every`) start
        // from the rate the earlier ones learned, and the controls to hosts that went down
        // since look like a collapse (a /27 at 10% loss whose hosts came and went, 20 rounds:
        // 3.4-5 s a round beside 2.3 s).
        let lost = match self.eager {
            true => self.mostly_lost(),
            false => !self.later && self.losing(),
        };
        if !self.early || quiet || !self.suspicious || !lost {
            return;
        }
        let Some(delivered) = self.delivered(now) else {
            return;
        };
        let to = delivered.min(self.rate / 2).max(self.early_floor());
        if to >= self.rate {
            return;
        }
        let (ok, lost) = self.totals();
        let window = (ok, lost + self.overdue());
        let capacity = self.capacity(now, delivered).min(delivered);
        tracing::debug!(
            "sweep: {} of {} controls answered before any window, {delivered} answers/s \
             ({capacity}/s net of a burst)",
            window.0,
            window.0 + window.1
        );
        self.trial = Some(Trial {
            from: self.rate,
            answered: f64::from(window.0) / f64::from(window.0 + window.1),
            window,
            epoch: self.epoch(),
            start: self.epoch(),
            steps: 1,
            early: true,
        });
        self.good = 0;
        self.set_rate(to);
        self.early_rate = Some(to);
        self.collapse_capacity = Some(capacity);
    }

    /// Whether no live host answered anything this round yet: there is no host to send a
    /// control probe to.
    pub fn found_nothing(&self) -> bool {
        self.answers == 0 && self.first.0 == 0
    }

    /// Whether a round found nothing and its witness (module `witness`) is over, or none was
    /// wanted: no control will ever judge its probes, so the schedule puts none off for them.
    pub fn nothing_to_judge_by(&self) -> bool {
        self.witness.done() && self.found_nothing()
    }

    /// Whether the witness of a round that found nothing (module `witness`) is wanted: no
    /// retries (a lost probe is a lost answer), nothing answered, and it is not over.
    fn witness_wanted(&self) -> bool {
        self.eager && !self.witness.done() && self.answers == 0 && self.first.0 == 0
    }

    /// Whether probes sent at `rate` wait for the witness before they count as tries: it is
    /// wanted, they went faster than its rate, and its probes are not all out yet (once they
    /// are, batches whose probes had their time are put off, module `schedule`, until it
    /// ends).
    fn unwitnessed(&self, rate: u64) -> bool {
        let waiting = matches!(self.witness, Witness::Waiting { .. });
        self.witness_wanted() && !waiting && rate > witness::RATE
    }

    /// A silent target is about to be probed again at `now`: a wanted witness begins, at its
    /// rate (module `witness`).
    pub fn reprobing(&mut self, now: Instant) {
        if self.witness == Witness::Idle && self.unwitnessed(self.rate) {
            tracing::debug!("sweep: nothing answered at {}/s: witness probes", self.rate);
            self.witness = Witness::begin(now, self.rate, witness::RATE);
            self.set_rate(witness::RATE);
            self.witness_epoch = self.epoch();
        }
    }

    /// Follows the witness at `now` (`timeout`: a control's): over once a host answered,
    /// and the rate back to what it was once its probes and their wait are over unanswered.
    fn follow_witness(&mut self, now: Instant, timeout: Duration) {
        if self.witness.done() {
            return;
        }
        if self.answers > 0 || self.first.0 > 0 {
            if self.witness != Witness::Idle {
                tracing::debug!(
                    "sweep: a witness probe found a host: the faster probes were wasted"
                );
                self.witnessed = Some(self.witness_epoch);
            }
            self.witness = Witness::Done;
            return;
        }
        // A probe's timeout (half a control's) after the last: nothing is known of the round
        // trips yet, and the round's last wait covers later answers.
        if let Some(from) = self.witness.tick(now, timeout / 2) {
            tracing::debug!("sweep: the witness probes found nothing");
            self.set_rate(from);
        }
    }

    /// When the next control probe still in flight comes due (`timeout` after it went), while
    /// it may still slow the sweep down before any window (`Meter::early_collapse`): the
    /// round looks again then. The slow-down went to the answers' rate over the time until
    /// it was seen, and it was seen only when the round woke for something else: behind a
    /// policer of 100/s, 10 answers in 0.1 s or in 0.2 s, 99/s or 49/s (0.8 s or 1.6 s for
    /// a /26 with `--retries 0`).
    pub fn collapse_due(&self, now: Instant, timeout: Duration) -> Option<Instant> {
        let quiet = self.trial.is_some() || self.settling || self.dead || self.windows > 0;
        if !self.early || quiet || !self.suspicious {
            return None;
        }
        let unanswered = self.pending.iter().filter(|p| !p.answered && !p.refused);
        unanswered.map(|p| p.sent + timeout).find(|due| *due > now)
    }

    /// Whether the sweep is paced to what gets through: a slow-down of this round was a cure
    /// (the rate is under what got through), or the early slow-down to the rate answers came
    /// back at is in force. Then the schedule needs no patient gaps between waves of re-probes
    /// (module `schedule`): the pace spreads them. Behind a policer of 100/s a /26 whose
    /// re-probes were paced to 114/s still waited 0.75 s between its second wave and its
    /// third, with nothing in flight (1.4 s in all, fping 0.6-1.0 s).
    pub fn paced(&self) -> bool {
        self.throttled || self.early_rate == Some(self.rate)
    }

    /// Whether most probes to live hosts are being lost, as far as this round's controls
    /// (answered, lost or overdue) can tell already: the lower end of the one-sided 95%
    /// interval of their loss is above one half (four controls, all lost, are enough).
    pub fn losing(&self) -> bool {
        let (ok, lost) = self.totals();
        let lost = lost + self.overdue();
        crate::wilson::lower(u64::from(ok), u64::from(lost)) > 0.5
    }

    /// The round-trip loss this round measured on probes to live hosts, for its summary: the
    /// share lost, and of how many probes. The evidence the re-probes of silent targets go
    /// by, counted plainly: the controls alone (a few on a small range, and those still in
    /// flight at its end never judged) read 0.0 on a /26 losing a fifth of the round trips in
    /// most sweeps. None before any host was found.
    pub fn round_loss(&self) -> Option<(f64, u32)> {
        let (ok, lost) = self.evidence();
        let probes = ok + lost;
        (probes > 0).then(|| (f64::from(lost) / f64::from(probes), probes))
    }

    /// The share of this round's control probes that went unanswered, if any were resolved.
    #[cfg(test)]
    fn loss_ratio(&self) -> Option<f64> {
        let (ok, lost) = self.totals();
        (ok + lost > 0).then(|| f64::from(lost) / f64::from(ok + lost))
    }

    /// The controls (answered, lost) a slow-down on `trial` is judged against: all those
    /// resolved of the epoch whose window showed the collapse (sent at the same rate), not
    /// only that window.
    fn reference(&self, trial: &Trial) -> (u32, u32) {
        let epoch = self.epochs.get(usize::from(trial.epoch));
        epoch.map_or(trial.window, |e| (e.ok, e.lost))
    }

    /// The controls (answered, lost) resolved in the epochs `from` to `to`.
    fn resolved_between(&self, from: u16, to: u16) -> (u32, u32) {
        let span = usize::from(from)..=usize::from(to);
        let epochs = self.epochs.get(span).unwrap_or_default();
        epochs
            .iter()
            .fold((0, 0), |(ok, lost), e| (ok + e.ok, lost + e.lost))
    }

    fn totals(&self) -> (u32, u32) {
        self.epochs
            .iter()
            .fold((0, 0), |(ok, lost), e| (ok + e.ok, lost + e.lost))
    }
}

/// The z of the one-sided intervals (97.7%) a full window after a slow-down is judged by
/// (see [`Meter::judge_trial`]): the window that made the slow-down was the worst of several,
/// so the next one answers more by chance alone. At 95% a link losing half the packets each
/// way (at any rate) was taken for a throttling far side in 11 sweeps of a /24 or a /26 in 600
/// (the unit tests' simulated link); at 97.7%, 5; at 99%, 2, but a limiter that lets a burst
/// through per wave of re-probes is no longer found.
const CURE_Z: f64 = 2.0;
/// The z of the two-proportion test the controls resolved since a slow-down are judged by
/// when the round ends before they fill a window ([`Meter::end_round`]), or when there is no
/// slower to go: one-sided, about 1 in 2000 by chance alone (the earlier controls include the
/// collapse that began the trial, chosen for being low). On the unit tests' simulated /26
/// (1000 seeds each) behind a policer of 50/s every sweep said so (189 did not before); behind
/// half the packets lost each way 4 did, the same 4 as before (by a window judged mid-round).
const CLAIM_Z: f64 = 3.3;

/// Whether the controls `slower` (answered, lost) answered a larger share than those of
/// `before` by 0.2 at least and by more than chance (`CLAIM_Z`): a slow-down's claim.
fn claimed(slower: (u32, u32), before: (u32, u32)) -> bool {
    let share = |(ok, lost): (u32, u32)| f64::from(ok) / f64::from((ok + lost).max(1));
    share(slower) >= share(before) + 0.2 && significantly_more(slower, before, CLAIM_Z)
}

/// Whether the controls `now` (answered, lost) answer more than those of `then` by more than
/// chance: the lower end of its answer share's one-sided interval at `z` is above the upper
/// end of the other's.
fn clearly_more(now: (u32, u32), then: (u32, u32), z: f64) -> bool {
    let now_lost_at_most = crate::wilson::upper_at(u64::from(now.0), u64::from(now.1), z);
    let then_lost_at_least = 1.0 - crate::wilson::upper_at(u64::from(then.1), u64::from(then.0), z);
    now_lost_at_most < then_lost_at_least
}

/// Whether the controls `now` (answered, lost) answer a larger share than those of `then` by
/// more than chance: the two-proportion z statistic (pooled) is above `z`.
fn significantly_more(now: (u32, u32), then: (u32, u32), z: f64) -> bool {
    let (n1, n0) = (f64::from(now.0 + now.1), f64::from(then.0 + then.1));
    if n1 == 0.0 || n0 == 0.0 {
        return false;
    }
    let (p1, p0) = (f64::from(now.0) / n1, f64::from(then.0) / n0);
    let p = f64::from(now.0 + then.0) / (n1 + n0);
    let se = (p * (1.0 - p) * (1.0 / n1 + 1.0 / n0)).sqrt();
    se > 0.0 && (p1 - p0) / se > z
}

/// The loss `ok` answered and `lost` unanswered probes show, weighted with four probes' worth
/// of [`PRIOR_LOSS`] (one answered: 4%; one lost, one answered: 20%).
fn estimate(ok: u32, lost: u32) -> f64 {
    (f64::from(lost) + PRIOR_LOSS * 4.0) / (f64::from(ok + lost) + 4.0)
}

#[cfg(test)]
mod tests {
    use super::super::reply::Tag;
    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(100);

    fn addr() -> IpAddr {
        "198.18.0.1".parse().unwrap()
    }

    /// Sends `windows` windows of controls at the meter's rate, each answered when
    /// `answers(rate, k)` says so; returns the slow-downs.
    fn run(meter: &mut Meter, windows: u32, answers: impl Fn(u64, u32) -> bool) -> Vec<Throttle> {
        run_controls(meter, windows * WINDOW, answers)
    }

    /// As [`run`], `n` controls.
    fn run_controls(
        meter: &mut Meter,
        n: u32,
        answers: impl Fn(u64, u32) -> bool,
    ) -> Vec<Throttle> {
        let start = Instant::now();
        let mut throttles = Vec::new();
        for k in 0..n {
            let now = start + Duration::from_millis(u64::from(k));
            let rate = meter.rate();
            let control = (0..CONTROL_EVERY).find_map(|_| meter.control(false));
            let (index, _, _) = control.expect("a candidate");
            meter.sent_control(index, now, now);
            if answers(rate, k) {
                let rtt = Duration::from_millis(1);
                meter.answered(index, rtt, now + rtt);
            }
            throttles.extend(meter.expire(now + TIMEOUT + SILENCE, TIMEOUT));
        }
        throttles
    }

    fn meter(ceiling: u64) -> Meter {
        let mut meter = Meter::new(ceiling);
        for i in 0..200 {
            meter.found(i, addr(), 0, 1);
        }
        meter
    }

    /// Sends `n` controls, none answered, 1 ms apart from `start` on.
    fn silent_controls(meter: &mut Meter, start: Instant, n: u32) {
        for k in 0..n {
            let now = start + Duration::from_millis(u64::from(k));
            let control = (0..CONTROL_EVERY).find_map(|_| meter.control(false));
            let (index, _, _) = control.expect("a candidate");
            meter.sent_control(index, now, now);
        }
    }

    /// Whether the meter says the path is dead at `at`.
    fn dead_at(meter: &mut Meter, at: Instant) -> bool {
        meter.expire(at, TIMEOUT);
        meter.dead()
    }

    #[test]
    fn a_path_that_went_silent_is_dead_but_random_loss_is_not() {
        let start = Instant::now() + Duration::from_secs(60);
        let mut clean = meter(10_000);
        run_controls(&mut clean, 64, |_, _| true);
        silent_controls(&mut clean, start, 8);
        let almost = start + SILENCE - Duration::from_millis(1);
        assert!(!dead_at(&mut clean, almost), "8 lost, not for long yet");
        assert!(dead_at(&mut clean, start + SILENCE), "8 lost in a row");
        clean.answered(0, Duration::from_millis(1), start + SILENCE);
        assert!(!clean.dead(), "an answer: the way is open again");
        // Three round trips in four lost (each host found at its fourth probe): 16 in a row
        // happen by chance, 48 hardly.
        let mut lossy = Meter::new(10_000);
        for i in 0..200 {
            lossy.found(i, addr(), 0, 4);
        }
        run_controls(&mut lossy, 256, |_, k| k % 4 == 0);
        silent_controls(&mut lossy, start, 16);
        assert!(!dead_at(&mut lossy, start + SILENCE), "16 in a row");
        silent_controls(&mut lossy, start + Duration::from_millis(16), 32);
        assert!(dead_at(&mut lossy, start + SILENCE), "48 in a row");
    }

    #[test]
    fn a_policer_is_found_and_the_rate_settles_under_it() {
        let mut meter = meter(10_000).windows_only();
        // A policer passing 1000/s: the share answered is 1000/rate.
        let police = |rate: u64, k: u32| (k as f64 * 0.618).fract() < 1000.0 / rate as f64;
        let throttles = run(&mut meter, 20, police);
        assert!(!throttles.is_empty());
        assert_eq!(throttles[0].from, 10_000);
        assert!(throttles[0].answered < 0.2, "{throttles:?}");
        assert!(meter.throttled());
        assert!((700..=1300).contains(&meter.rate()), "{}", meter.rate());
        assert!(meter.loss(meter.epoch()) < 0.3);
        assert!(meter.loss(0) > 0.6, "the first epoch lost most");
    }

    #[test]
    fn steady_random_loss_is_not_throttling() {
        let mut meter = meter(10_000);
        // 19% of round trips lost (10% each way), whatever the rate.
        let lossy = |_: u64, k: u32| (k as f64 * 0.618).fract() >= 0.19;
        assert_eq!(run(&mut meter, 30, lossy), []);
        assert_eq!(meter.rate(), 10_000);
        let loss = meter.loss(meter.epoch());
        assert!((0.12..0.26).contains(&loss), "{loss}");
    }

    #[test]
    fn heavy_loss_that_slowing_down_does_not_cure_restores_the_rate() {
        let mut meter = meter(10_000);
        let lossy = |_: u64, k: u32| (k as f64 * 0.618).fract() >= 0.55;
        assert_eq!(run(&mut meter, 12, lossy), [], "not the rate's doing");
        assert_eq!(meter.rate(), 10_000, "restored after two tries");
        assert!(!meter.throttled());
    }

    /// Half the answers lost at any rate: a first window that happened to answer a quarter
    /// (under one half: suspect) and the next a half was taken for a cure — a throttling far
    /// side reported on a small range at 50% random loss, 2 runs in 30.
    #[test]
    fn a_chance_rise_in_the_answers_after_a_slow_down_is_no_cure() {
        let meter_of = meter;
        let mut meter = meter_of(10_000);
        let half = |_: u64, k: u32| match k < WINDOW {
            true => k % 4 == 0,
            false => k % 2 == 0,
        };
        assert_eq!(run(&mut meter, 6, half), [], "not the rate's doing");
        assert!(!meter.throttled());
        assert_eq!(
            meter.end_round(Instant::now(), TIMEOUT),
            None,
            "nothing to report at the end either"
        );
        // The same rise from a quarter to three quarters is a cure.
        let mut policed = meter_of(10_000);
        let cure = |rate: u64, k: u32| match rate == 10_000 {
            true => k % 4 == 0,
            false => k % 4 != 0,
        };
        assert_eq!(run(&mut policed, 6, cure).len(), 1);
    }

    /// An eighth answered at any rate (a lossy link): the first window fell under half of the
    /// ratio assumed before any was judged, the sweep slowed down, and the round ended before
    /// the window after it filled. That collapse was reported as it stood (under a third of
    /// "usual", for certain), a throttle claimed on random loss.
    #[test]
    fn a_round_ending_on_a_slow_down_says_nothing_unless_slower_answered_more() {
        let eighth = |_: u64, k: u32| k % 8 == 0;
        let mut lossy = meter(10_000).windows_only();
        // 16 controls make the first (plain) window, 8 more go out slower.
        assert_eq!(run_controls(&mut lossy, 24, eighth), []);
        assert!(lossy.rate() < 10_000, "slowed down, on trial");
        assert_eq!(lossy.end_round(Instant::now(), TIMEOUT), None);
        assert!(!lossy.throttled());
        assert_eq!(lossy.rate(), 10_000, "back to what it was");
        // The same, but every control sent slower is answered: a policer.
        let mut policed = meter(10_000).windows_only();
        let cure = |rate: u64, k: u32| rate < 10_000 || k % 8 == 0;
        assert_eq!(run_controls(&mut policed, 24, cure), []);
        let throttle = policed
            .end_round(Instant::now(), TIMEOUT)
            .expect("slower answered all");
        assert_eq!(throttle.from, 10_000);
        assert!(policed.throttled());
    }

    /// The lab's /26 behind a limiter of 50/s with a burst of 5, re-probed in waves of 60:
    /// each wave gets the burst through (a twelfth) and 50/s of its length. The first window
    /// was flattered by the first wave's answers. netkit took the rise from a twelfth to a
    /// quarter for no cure and went back to full speed.
    #[test]
    fn a_limiter_whose_burst_flatters_each_slow_down_is_found() {
        let mut meter = meter(10_000);
        let share = |rate: u64, k: u32| match k < WINDOW / 2 {
            true => 0.25,
            false => (5.0 + 60.0 * 50.0 / rate as f64) / 60.0,
        };
        let limiter = |rate: u64, k: u32| (k as f64 * 0.618).fract() < share(rate, k);
        let throttles = run(&mut meter, 8, limiter);
        assert!(!throttles.is_empty(), "rate {}", meter.rate());
        assert!(meter.throttled());
        assert!(meter.rate() <= 200, "{}", meter.rate());
    }

    /// The lab's /26 behind a policer of 50/s (the windows of a sweep that missed it): a
    /// sixteenth answered at 10000/s and again at 1250/s, six of 16 at 156/s (not enough to
    /// call a cure on 16), and the round ended at 100/s with three of four answered. The
    /// controls since the slow-down were weighed against the worst window's epoch alone, the
    /// 1250/s one among the slower, and by two intervals that had to part (99% each): no claim,
    /// in about one sweep in six. Now the epochs before the split are pooled, the tie goes to
    /// the later one, and the two shares are weighed by a two-proportion test.
    #[test]
    fn a_policer_found_at_the_end_of_a_small_round_is_reported() {
        let meter_of = meter;
        let mut meter = meter_of(10_000).windows_only();
        let policer = |rate: u64, k: u32| match rate {
            1000.. => k % 16 == 0,
            101..=999 => k % 16 < 6,
            _ => k % 4 != 0,
        };
        assert_eq!(run_controls(&mut meter, 48 + 8, policer), []);
        assert_eq!(meter.rate(), 100, "slowed down three times, on trial");
        let throttle = meter.end_round(Instant::now(), TIMEOUT);
        assert_eq!(throttle.map(|t| t.from), Some(10_000), "{:?}", meter.epochs);
        assert!(meter.throttled());
        // The same windows, but a quarter answered at 100/s as well: chance, no claim.
        let mut lossy = meter_of(10_000).windows_only();
        let chance = |rate: u64, k: u32| match rate {
            1000.. => k % 16 == 0,
            101..=999 => k % 16 < 6,
            _ => k % 4 == 0,
        };
        assert_eq!(run_controls(&mut lossy, 48 + 8, chance), []);
        assert_eq!(lossy.end_round(Instant::now(), TIMEOUT), None);
        assert!(!lossy.throttled());
    }

    /// Four controls of which three are overdue, before any window: without retries (an
    /// eager meter) the sweep slows down at once to the rate answers came back at (201 in
    /// 0.2 s), on trial; with retries it needs the loss sure (four of four lost), and then
    /// does the same (it waited for a window: behind a policer of 100/s a /26 took 5 s, its
    /// re-probes sent in waves far above what the policer passes).
    #[test]
    fn most_of_the_first_controls_lost_slow_the_sweep_at_once() {
        for (eager, answered) in [(true, 1), (false, 1), (false, 0)] {
            let mut meter = meter(10_000).eager(eager);
            let start = Instant::now();
            assert_eq!(meter.expire(start, TIMEOUT), None);
            let sent = send_controls(&mut meter, 4, start);
            let rtt = Duration::from_millis(1);
            for &index in &sent[..answered] {
                meter.answered(index, rtt, start + rtt);
            }
            assert_eq!(meter.expire(start + TIMEOUT * 2, TIMEOUT), None);
            match eager || answered == 0 {
                true => {
                    assert!(meter.on_trial(), "eager {eager}, {answered} answered");
                    let least = meter.early_floor();
                    let rate = meter.rate();
                    assert!(rate == least || (950..=1050).contains(&rate), "{rate}");
                }
                false => assert_eq!((meter.on_trial(), meter.rate()), (false, 10_000)),
            }
        }
    }

    /// Behind a policer the far side counts only the probes that reach a live host: a cure
    /// whose window lost nothing goes to what the policer lets through once its burst is
    /// spent, over the share of the probes to come that reach live hosts (one control in
    /// `CONTROL_EVERY` once cured, and the hosts the cure window found). A sparse /22 behind a
    /// policer of 100/s went to 393/s when its cure window was of re-probes (one control in
    /// four while on trial: 14.8 s) and to 1440/s when it was of first probes (6.5 s).
    #[test]
    fn a_clean_cure_paces_by_what_gets_through_after_the_burst() {
        // No host found in the cure window: 0.9 × 100/s × 16.
        let rate = cured_behind_a_policer(false, false);
        assert!((1300..=1600).contains(&rate), "{rate}");
        // A host found per four probes of the cure window: 0.9 × 100/s / (1/4 + 1/16).
        let rate = cured_behind_a_policer(true, false);
        assert!((250..=330).contains(&rate), "{rate}");
        // One control in eight of the cure window lost: as much less (main: 0.9 × 7/8 of the
        // early rate, about 175/s).
        let rate = cured_behind_a_policer(false, true);
        assert!((1100..=1400).contains(&rate), "{rate}");
    }

    /// A cure window of re-probes (one control in four) that began three probes short of a
    /// control: eight controls, all answered, judge it on 29 probes, too few to pace by (at
    /// least `WINDOW`), and the rate stayed at the early slow-down's for the whole round (a
    /// /22 with 10% live behind 50/s, a window of 29 probes, 7 of 8 answered: 70-77/s, 61.9
    /// s). The eight controls that judge a window are enough to pace by.
    #[test]
    fn a_cure_window_of_few_probes_still_paces() {
        let meter = cure_with(false, 12, |_| false, u64::from);
        // The epoch of the early slow-down, cured.
        let e = meter.epochs[1];
        assert!(e.sent < WINDOW, "{e:?}");
        // 0.9 × 100/s × 16.
        let rate = meter.rate();
        assert!((1300..=1600).contains(&rate), "{rate}");
    }

    /// Too few answers after a burst to tell what gets through: two thirds of the answers'
    /// rate since the round began, not nothing (taken as nothing, a /22 with 10% live behind
    /// a policer of 50/s stayed at the early slow-down's 87/s for 41-54 s).
    #[test]
    fn a_burst_alone_leaves_two_thirds_of_the_answers_rate() {
        let ms = Duration::from_millis;
        let mut meter = Meter::new(10_000);
        let start = Instant::now();
        assert_eq!(meter.expire(start, TIMEOUT), None);
        for i in 0..10 {
            meter.found(i, addr(), 0, 1);
        }
        assert_eq!(meter.expire(start + ms(1), TIMEOUT), None);
        meter.found(10, addr(), 0, 1);
        assert_eq!(meter.expire(start + ms(80), TIMEOUT), None);
        assert_eq!(meter.capacity(start + ms(101), 109), 72);
        // Four answers or more in the second half measure it: 4 in 50 ms.
        for i in 11..14 {
            meter.found(i, addr(), 0, 1);
        }
        assert_eq!(meter.expire(start + ms(90), TIMEOUT), None);
        assert_eq!(meter.capacity(start + ms(101), 109), 80);
    }

    /// The rate a meter settles at after a clean cure behind a policer of 100/s with a burst
    /// of 20: 20 hosts found at once, then one per 10 ms; four controls lost bring the early
    /// slow-down, then re-probes of silent targets (one control in four, all answered; with
    /// `find`, a host found with each control; with `lose`, one control in eight lost) cure it.
    fn cured_behind_a_policer(find: bool, lose: bool) -> u64 {
        // Lost controls are known lost once a later one's answer came a timeout after them.
        let meter = match lose {
            true => cure_with(find, 0, |c| c % 8 == 7, |c| u64::from(c) * 20),
            false => cure_with(find, 0, |_| false, u64::from),
        };
        meter.rate()
    }

    /// As [`cured_behind_a_policer`], the meter: `carry` probes went out since the last control as the
    /// early slow-down began; the cure window's control `c` is sent `at(c)` ms after it and
    /// lost when `lost(c)`.
    fn cure_with(find: bool, carry: u32, lost: fn(u32) -> bool, at: fn(u32) -> u64) -> Meter {
        let ms = Duration::from_millis;
        let mut meter = Meter::new(10_000);
        let start = Instant::now();
        assert_eq!(meter.expire(start, TIMEOUT), None);
        for i in 0..20 {
            meter.found(i, addr(), 0, 1);
        }
        assert_eq!(meter.expire(start + ms(1), TIMEOUT), None);
        let mut k = 1;
        while !meter.on_trial() {
            assert!(k < 100, "no early slow-down");
            meter.found(100 + k, addr(), 0, 1);
            if k == 5 {
                send_controls(&mut meter, 4, start + ms(1 + 10 * k));
                for _ in 0..carry {
                    assert_eq!(meter.control(false), None);
                }
            }
            meter.expire(start + ms(1 + 10 * k), TIMEOUT);
            k += 1;
        }
        let early = meter.rate();
        assert!(
            (180..=260).contains(&early),
            "the answers' rate, burst and all: {early}"
        );
        let rtt = Duration::from_millis(1);
        let later = start + ms(10 * k) + TIMEOUT;
        let mut found = 1000;
        for c in 0..WINDOW * 4 {
            let now = later + ms(at(c));
            let control = (0..CONTROL_EVERY).find_map(|_| meter.control(true));
            let (index, _, _) = control.expect("a candidate");
            if find {
                meter.found(found, addr(), 0, 1);
                found += 1;
            }
            meter.sent_control(index, now, now);
            if !lost(c) {
                meter.answered(index, rtt, now + rtt);
            }
            meter.expire(now + rtt, TIMEOUT);
            if meter.throttled() {
                return meter;
            }
        }
        panic!("not cured");
    }

    #[test]
    fn unanswered_controls_count_as_lost_for_re_probing_before_they_are_judged() {
        let mut meter = meter(10_000);
        let start = Instant::now();
        for _ in 0..20 * CONTROL_EVERY {
            if let Some((index, _, _)) = meter.control(false) {
                meter.sent_control(index, start, start);
            }
        }
        // Nothing answered: no later answer says they are lost, but the clock does.
        assert_eq!(meter.expire(start + TIMEOUT, TIMEOUT), None);
        assert!(meter.loss(0) > 0.8, "{}", meter.loss(0));
        assert_eq!(meter.loss_ratio(), None, "not judged yet");
    }

    /// Sends `n` control probes at `at`: the hosts they went to.
    fn send_controls(meter: &mut Meter, n: usize, at: Instant) -> Vec<u64> {
        let mut sent = Vec::new();
        while sent.len() < n {
            if let Some((index, _, _)) = meter.control(false) {
                meter.sent_control(index, at, at);
                sent.push(index);
            }
        }
        sent
    }

    #[test]
    fn a_control_the_host_rejects_is_lost_at_once() {
        let mut meter = meter(10_000);
        let start = Instant::now();
        let sent = send_controls(&mut meter, 2, start);
        meter.refused(sent[0]);
        meter.answered(
            sent[1],
            Duration::from_millis(1),
            start + Duration::from_millis(1),
        );
        // Long before the timeout, and with no later answer to say so.
        assert_eq!(meter.expire(start, TIMEOUT), None);
        assert_eq!(meter.loss_ratio(), Some(0.5));
    }

    /// Four controls all lost (overdue by the clock) tell a limiter: too few to judge an
    /// epoch alone, enough to count its probes as wasted; four answered tell nothing of it.
    #[test]
    fn a_few_controls_all_lost_are_enough_to_tell_probes_wasted() {
        let (mut lost, mut answered) = (meter(10_000), meter(10_000));
        let start = Instant::now();
        send_controls(&mut lost, 4, start);
        assert!(!lost.losing() && !lost.wasted(0), "nothing resolved yet");
        assert_eq!(lost.expire(start + TIMEOUT, TIMEOUT), None);
        assert!(lost.losing());
        assert!(lost.wasted(0));
        for index in send_controls(&mut answered, 4, start) {
            answered.answered(
                index,
                Duration::from_millis(1),
                start + Duration::from_millis(1),
            );
        }
        assert_eq!(answered.expire(start + TIMEOUT, TIMEOUT), None);
        assert!(!answered.losing() && !answered.wasted(0));
    }

    /// Three hosts found, the first gone at once: all its controls went out before the first
    /// was seen lost (it was no candidate any more), and those still in flight once it was
    /// found down were counted lost too; its controls measure nothing of the way to the others.
    #[test]
    fn a_host_gone_with_all_its_controls_in_flight_is_no_loss() {
        let mut meter = Meter::new(10_000);
        for index in 0..3 {
            meter.found(index, addr(), 0, 1);
        }
        let start = Instant::now();
        let sent = send_controls(&mut meter, 3 * usize::from(CONTROLS_PER_HOST), start);
        assert!(meter.control(false).is_none(), "every control used");
        for index in sent.iter().filter(|i| **i != 0) {
            let at = start + Duration::from_millis(1);
            meter.answered(*index, Duration::from_millis(1), at);
        }
        // Nothing answers after them: they are lost once the silence is long enough.
        meter.expire(start + SILENCE + TIMEOUT * 2, TIMEOUT);
        assert_eq!(
            meter.round_loss(),
            Some((0.0, 19)),
            "16 controls and 3 first probes"
        );
        assert!(!meter.losing());
    }

    /// Behind a DROPping limiter on a /24 the answers to the controls sent after the last
    /// slow-down went to older controls to the same hosts, lost and still pending: the window
    /// read nothing answered and the rate went back up.
    #[test]
    fn an_answer_goes_to_the_latest_control_to_its_host() {
        let mut meter = Meter::new(10_000);
        meter.found(0, addr(), 0, 1);
        let start = Instant::now();
        send_controls(&mut meter, 1, start);
        let later = start + TIMEOUT * 2;
        send_controls(&mut meter, 1, later);
        let rtt = Duration::from_millis(1);
        meter.answered(0, rtt, later + rtt);
        assert_eq!(
            meter.expire(later + Duration::from_millis(1), TIMEOUT),
            None
        );
        assert_eq!(
            meter.loss_ratio(),
            Some(0.5),
            "the first lost, the second answered"
        );
    }

    /// Two controls to one host in flight, the first answered after 300 ms: the answer is the
    /// first's (the second had not been sent 300 ms before it came), so the first is not lost.
    /// Credited to the second, it left the first to be counted lost.
    #[test]
    fn an_answer_goes_to_the_control_sent_before_its_round_trip() {
        let mut meter = Meter::new(10_000);
        meter.found(0, addr(), 0, 1);
        let start = Instant::now();
        send_controls(&mut meter, 1, start);
        send_controls(&mut meter, 1, start + Duration::from_millis(50));
        let rtt = Duration::from_millis(300);
        meter.answered(0, rtt, start + rtt);
        assert_eq!(meter.expire(start + rtt, Duration::from_millis(320)), None);
        assert_eq!(meter.loss_ratio(), Some(0.0), "the first answered");
    }

    #[test]
    fn without_controls_the_loss_is_the_prior() {
        let meter = Meter::new(100);
        assert_eq!(meter.loss(0), PRIOR_LOSS);
        assert_eq!(meter.loss_ratio(), None);
    }

    /// Before the controls are trusted, hosts found late say how lossy the way is; so does
    /// the last round, at the start of the next.
    #[test]
    fn hosts_found_late_raise_the_loss_before_the_controls_are_trusted() {
        let mut meter = Meter::new(100);
        meter.found(0, addr(), 0, 1);
        assert_eq!(meter.loss(0), PRIOR_LOSS, "found at its first probe");
        for index in 1..5 {
            meter.found(index, addr(), 0, 2);
        }
        let seen = (4.0 + PRIOR_LOSS * 4.0) / (9.0 + 4.0);
        assert!((meter.loss(0) - seen).abs() < 1e-9, "{}", meter.loss(0));
        assert_eq!(meter.loss_bound(0), meter.loss(0));
        meter.start_round();
        assert!(
            (meter.loss(0) - seen).abs() < 1e-9,
            "carried: {}",
            meter.loss(0)
        );
        meter.found(0, addr(), 0, 1);
        assert!(
            (meter.loss(0) - seen).abs() < 1e-9,
            "at least the last round's"
        );
    }

    /// A host found at its third probe lost two, until the answers to those come after all
    /// (overtaken by the third one's on a link that reorders): each one heard is not lost, and
    /// counts once however often it is heard.
    #[test]
    fn an_answer_overtaken_by_a_re_probes_is_not_a_loss() {
        let mut meter = Meter::new(100);
        meter.found(0, addr(), 0, 1);
        meter.found(1, addr(), 0, 3);
        assert_eq!(meter.round_loss(), Some((2.0 / 4.0, 4)));
        meter.answered_again(1, 1);
        meter.answered_again(1, 1);
        assert_eq!(meter.round_loss(), Some((1.0 / 4.0, 4)));
        meter.answered_again(1, 3);
        meter.answered_again(1, Tag::CONTROL);
        meter.answered_again(0, 1);
        assert_eq!(meter.round_loss(), Some((1.0 / 4.0, 4)), "no earlier probe");
        meter.answered_again(1, 2);
        assert_eq!(meter.round_loss(), Some((0.0, 4)));
    }
}
