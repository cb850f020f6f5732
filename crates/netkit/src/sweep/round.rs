//! One round of a sweep: a sender walks the target list lazily (pass after pass for the
//! retries, skipping targets that answered), paced by the rate, while the same task reads the
//! answers and reports them as they come. The round ends as soon as every target answered, or
//! one timeout after the last probe — silent targets cost one timeout in all, not one each.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

use super::bitset::Bitset;
use super::pace::Pacer;
use super::probe::{Prober, Reply};
use super::record::{millis, ChangeRecord, Event, HostRecord, Progress, SummaryRecord};
use super::{Config, Sink};
use crate::error::Error;
use crate::target::Targets;

/// The longest wait before a retry pass starts again from the first silent target.
const MAX_RETRY_GAP: Duration = Duration::from_millis(250);
/// How often progress is reported.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

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
struct Tally<'a> {
    round: &'a Round<'a>,
    alive: RefCell<Bitset>,
    probed: Cell<u64>,
    rtts: RefCell<Option<Vec<f32>>>,
    came_up: Cell<u64>,
}

/// Runs one round: probes go out through `prober`, answers come back on `replies`.
pub(super) async fn run(
    round: &Round<'_>,
    prober: &mut Prober,
    replies: &mut UnboundedReceiver<Reply>,
    sink: &mut Sink<'_>,
) -> Result<Outcome, Error> {
    let start = Instant::now();
    let rtts = round
        .keep_rtts
        .then(|| vec![f32::NAN; usize::try_from(round.total).unwrap_or(0)]);
    let tally = Tally {
        round,
        alive: RefCell::new(Bitset::new(round.total)),
        probed: Cell::new(0),
        rtts: RefCell::new(rtts),
        came_up: Cell::new(0),
    };
    let result = listen(&tally, prober, replies, sink).await;
    prober.end_round();
    result?;
    let went_down = report_silent(&tally, sink)?;
    let alive = tally.alive.into_inner();
    let summary = SummaryRecord {
        round: round.number,
        alive: alive.count(),
        dead: round.total - alive.count(),
        elapsed_s: start.elapsed().as_secs_f64(),
    };
    sink(Event::Summary(summary.clone())).map_err(output_error)?;
    Ok(Outcome {
        alive,
        rtts: tally.rtts.into_inner(),
        changes: (tally.came_up.get(), went_down),
        summary,
    })
}

/// Reads answers while the sender runs, until everyone answered or the last timeout ran out.
async fn listen(
    tally: &Tally<'_>,
    prober: &mut Prober,
    replies: &mut UnboundedReceiver<Reply>,
    sink: &mut Sink<'_>,
) -> Result<(), Error> {
    let (round, alive, probed) = (tally.round, &tally.alive, &tally.probed);
    let sending = send_all(round, prober, alive, probed);
    tokio::pin!(sending);
    let mut sent = false;
    let deadline = tokio::time::sleep(Duration::from_secs(86_400 * 365));
    tokio::pin!(deadline);
    let mut ticker = tokio::time::interval(PROGRESS_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while tally.alive.borrow().count() < round.total {
        tokio::select! {
            biased;
            Some(reply) = replies.recv() => on_reply(tally, reply, sink)?,
            () = &mut sending, if !sent => {
                sent = true;
                deadline.as_mut().reset(Instant::now() + round.config.timeout);
            }
            () = &mut deadline, if sent => break,
            _ = ticker.tick() => sink(Event::Progress(progress(tally))).map_err(output_error)?,
        }
    }
    Ok(())
}

/// Sends the first probe to every target, then the retries to the silent ones.
async fn send_all(
    round: &Round<'_>,
    prober: &mut Prober,
    alive: &RefCell<Bitset>,
    probed: &Cell<u64>,
) {
    let mut pacer = Pacer::new(round.config.rate);
    let gap = (round.config.timeout / 4).min(MAX_RETRY_GAP);
    let mut pass_start = Instant::now();
    for pass in 0..=round.config.retries {
        if pass > 0 {
            tokio::time::sleep_until(pass_start + gap).await;
            pass_start = Instant::now();
        }
        for (index, target) in (0u64..).zip(round.targets.iter()) {
            if alive.borrow().get(index) {
                continue;
            }
            pacer.tick().await;
            prober.send(round.number as u16, index, target.addr).await;
            probed.set(probed.get().max(index + 1));
        }
        if alive.borrow().count() == round.total {
            break;
        }
    }
}

/// Records an answer; reports it (and a came-up change) if it is the target's first.
fn on_reply(tally: &Tally<'_>, reply: Reply, sink: &mut Sink<'_>) -> Result<(), Error> {
    let round = tally.round;
    if reply.round != round.number as u16 || !tally.alive.borrow_mut().set(reply.index) {
        return Ok(());
    }
    let slot = usize::try_from(reply.index).ok();
    if let Some(rtt) = tally
        .rtts
        .borrow_mut()
        .as_mut()
        .and_then(|r| r.get_mut(slot?))
    {
        *rtt = reply.rtt.as_secs_f32();
    }
    let host = HostRecord {
        addr: reply.addr,
        alive: true,
        rtt_ms: Some(millis(reply.rtt)),
        round: round.number,
    };
    sink(Event::Host(host)).map_err(output_error)?;
    if round.previous.is_some_and(|prev| !prev.get(reply.index)) {
        tally.came_up.set(tally.came_up.get() + 1);
        let change = ChangeRecord {
            addr: reply.addr,
            alive: true,
            round: round.number,
        };
        sink(Event::Change(change)).map_err(output_error)?;
    }
    Ok(())
}

/// Reports every silent target (and a went-down change for those alive before); returns how
/// many went down.
fn report_silent(tally: &Tally<'_>, sink: &mut Sink<'_>) -> Result<u64, Error> {
    let (round, alive) = (tally.round, tally.alive.borrow());
    let mut went_down = 0;
    if alive.count() == round.total {
        return Ok(0);
    }
    for (index, target) in (0u64..).zip(round.targets.iter()) {
        if alive.get(index) {
            continue;
        }
        let addr = target.addr;
        let host = HostRecord {
            addr,
            alive: false,
            rtt_ms: None,
            round: round.number,
        };
        sink(Event::Host(host)).map_err(output_error)?;
        if round.previous.is_some_and(|prev| prev.get(index)) {
            went_down += 1;
            let change = ChangeRecord {
                addr,
                alive: false,
                round: round.number,
            };
            sink(Event::Change(change)).map_err(output_error)?;
        }
    }
    Ok(went_down)
}

fn progress(tally: &Tally<'_>) -> Progress {
    Progress {
        round: tally.round.number,
        probed: tally.probed.get(),
        alive: tally.alive.borrow().count(),
        total: tally.round.total,
    }
}

fn output_error(err: std::io::Error) -> Error {
    Error::io("write the results", err)
}
