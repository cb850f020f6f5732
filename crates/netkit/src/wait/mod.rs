//! Waiting until services are ready, or gone with `invert`. One task per target tries it
//! (connect, HTTP(S) `GET`, name lookup or file check), every `interval` at first and then
//! backing off; each attempt is bounded by the time left, and the overall timeout is a hard
//! deadline, also against silent hosts whose connects would otherwise hang for minutes. Why a
//! target is not ready is reported once per change, not once per attempt.
//!
//! - [`target`]: what can be waited for, parsed without I/O.
//! - [`backoff`]: when attempts repeat. [`status`]: accepted HTTP status codes.
//! - [`finding`]: what one attempt found. [`tls`]: whom `https://` targets trust.
//! - `probe` and `http`: one attempt; `lookup`: its name lookup, a step of its own before the
//!   connect; `linger`: TCP connects that go on past their bound; `stage`: how far the
//!   attempt under way got, for the deadline to say where it cut it; `hedge`: a second HTTP
//!   exchange beside one stuck in retransmissions; `knock`: with `invert`, bare connects
//!   beside stuck exchanges, whose refusal says the server gone.

pub mod backoff;
pub mod finding;
mod hedge;
mod http;
mod knock;
mod linger;
mod lookup;
mod probe;
mod stage;
pub mod status;
pub mod target;
pub mod tls;

use std::io;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};

use crate::endpoint::{Endpoint, Stream};
use crate::error::Error;

pub use backoff::Backoff;
pub use finding::Finding;
pub use http::HttpCheck;
pub use status::StatusSet;
pub use target::Target;

use stage::{Stage, Track};
use target::HttpTarget;

/// How to wait.
#[derive(Debug, Clone)]
pub struct WaitOptions {
    /// The hard deadline for the whole wait; `None` waits forever.
    pub timeout: Option<Duration>,
    /// When attempts repeat.
    pub backoff: Backoff,
    /// Done when any target is ready (default: when all are).
    pub any: bool,
    /// Ready means *not* up: a port freed, a server gone, a file removed.
    pub invert: bool,
    /// What HTTP targets must answer.
    pub http: HttpCheck,
}

/// What happened to one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitEvent {
    /// The target is ready (or gone, with `invert`).
    Ready {
        /// Index of the target in the list given.
        index: usize,
        /// Time from the start of the wait.
        elapsed: Duration,
    },
    /// The target is not ready, for a reason other than the last one reported.
    NotReady {
        /// Index of the target in the list given.
        index: usize,
        /// Time from the start of the wait.
        elapsed: Duration,
        /// What the attempt found.
        finding: Finding,
    },
    /// The deadline passed before the target was ready.
    TimedOut {
        /// Index of the target in the list given.
        index: usize,
        /// Time from the start of the wait.
        elapsed: Duration,
        /// Why the target is not ready ([`Finding::NoAnswer`] when nothing is known): where
        /// the deadline cut the attempt under way when it had connected (`TLS handshake not
        /// finished in time`, `no HTTP response in time`, `HTTP 200 but no "ok" in the body
        /// in time`) or no attempt had finished (`name lookup timed out`, `connect timed
        /// out`), else what the last attempt found.
        finding: Finding,
        /// When that was only silence ([`Finding::is_silence`]): the last finding of an
        /// earlier attempt that said more (an ICMP error before a router's rate limit bit).
        earlier: Option<Finding>,
        /// How many attempts finished.
        attempts: u32,
    },
}

/// Where one target stands.
#[derive(Debug, Clone)]
struct Progress {
    ready: bool,
    last: Option<Finding>,
    /// The last finding that was more than silence.
    telling: Option<Finding>,
    attempts: u32,
}

/// Waits for `targets`, reporting each [`WaitEvent`] to `on_event` as it happens; returns
/// whether the wait succeeded (all ready, or any with `any`). When `on_event` fails, the wait
/// stops and its error is returned (`print the results: ...`). An attempt that found this
/// process out of file descriptors ([`Finding::OutOfDescriptors`]) ends the wait with the
/// environment's refusal (`wait for TARGET: too many open files`), not a timeout: waiting
/// longer would only repeat it.
pub async fn wait_for<E>(
    targets: &[Target],
    options: &WaitOptions,
    mut on_event: E,
) -> crate::Result<bool>
where
    E: FnMut(WaitEvent) -> io::Result<()>,
{
    let start = Instant::now();
    let deadline = options.timeout.map(|t| start + t);
    let (tasks, tracks, mut found) = spawn_watches(targets, options, deadline);
    let idle = Progress {
        ready: false,
        last: None,
        telling: None,
        attempts: 0,
    };
    let mut progress = vec![idle; targets.len()];
    while !done(&progress, options.any) {
        let next = tokio::select! {
            biased;
            next = found.recv() => next,
            () = until(deadline) => None,
        };
        let Some((index, finding, ready)) = next else {
            break;
        };
        if let Finding::OutOfDescriptors(errno) = finding {
            let err = io::Error::from_raw_os_error(errno);
            return Err(Error::io(format!("wait for {}", targets[index]), err));
        }
        let event = record(&mut progress[index], index, finding, ready, start);
        if let Some(event) = event {
            on_event(event).map_err(printing)?;
        }
    }
    drop(tasks);
    let success = done(&progress, options.any);
    if !success {
        report_timeouts(&progress, &tracks, start, &mut on_event).map_err(printing)?;
    }
    Ok(success)
}

/// The error of `on_event`, named.
fn printing(err: io::Error) -> Error {
    Error::io("print the results", err)
}

/// One [`Watch`] task per target; their findings arrive on the receiver, the stage of their
/// attempt under way is on their [`Track`]. Dropping the set aborts them.
fn spawn_watches(
    targets: &[Target],
    options: &WaitOptions,
    deadline: Option<Instant>,
) -> (JoinSet<()>, Vec<Track>, mpsc::UnboundedReceiver<Found>) {
    let (found_tx, found) = mpsc::unbounded_channel();
    let probe = std::sync::Arc::new(probe::Probe {
        http: options.http.clone(),
    });
    let mut tasks = JoinSet::new();
    // One track each: `vec![Track::default(); n]` would clone one `Arc`, and every target's
    // timeout would say where the last attempt of any of them stood.
    let tracks: Vec<Track> = targets.iter().map(|_| Track::default()).collect();
    for (index, target) in targets.iter().enumerate() {
        let watch = Watch {
            index,
            target: target.clone(),
            probe: probe.clone(),
            backoff: options.backoff,
            invert: options.invert,
            deadline,
            track: tracks[index].clone(),
        };
        tasks.spawn(watch.run(found_tx.clone()));
    }
    (tasks, tracks, found)
}

/// What a watch sends: the target's index, an attempt's finding, and whether it made the
/// target ready.
type Found = (usize, Finding, bool);

/// Updates a target's progress with a finding; returns the event to report, if any.
fn record(
    progress: &mut Progress,
    index: usize,
    finding: Finding,
    ready: bool,
    start: Instant,
) -> Option<WaitEvent> {
    let elapsed = start.elapsed();
    progress.attempts += 1;
    if ready {
        progress.ready = true;
        return Some(WaitEvent::Ready { index, elapsed });
    }
    if !finding.is_silence() {
        progress.telling = Some(finding.clone());
    }
    if progress.last.as_ref() == Some(&finding) {
        return None;
    }
    progress.last = Some(finding.clone());
    Some(WaitEvent::NotReady {
        index,
        elapsed,
        finding,
    })
}

/// One [`WaitEvent::TimedOut`] per target not ready, its finding where the deadline cut its
/// attempt under way ([`stage::Stage::cut`]) or else its last.
fn report_timeouts<E>(
    progress: &[Progress],
    tracks: &[Track],
    start: Instant,
    on_event: &mut E,
) -> io::Result<()>
where
    E: FnMut(WaitEvent) -> io::Result<()>,
{
    for (index, target) in progress.iter().enumerate().filter(|(_, p)| !p.ready) {
        let finding = tracks[index]
            .get()
            .cut(target.attempts > 0)
            .or_else(|| target.last.clone())
            .unwrap_or(Finding::NoAnswer);
        let earlier = match finding.is_silence() {
            true => target.telling.clone(),
            false => None,
        };
        on_event(WaitEvent::TimedOut {
            index,
            elapsed: start.elapsed(),
            finding,
            earlier,
            attempts: target.attempts,
        })?;
    }
    Ok(())
}

fn done(progress: &[Progress], any: bool) -> bool {
    if any {
        progress.iter().any(|p| p.ready)
    } else {
        progress.iter().all(|p| p.ready)
    }
}

/// Sleeps until the deadline, or forever without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The task that tries one target until it is ready.
struct Watch {
    index: usize,
    target: Target,
    probe: std::sync::Arc<probe::Probe>,
    backoff: Backoff,
    invert: bool,
    deadline: Option<Instant>,
    /// The stage of the attempt under way, for the wait to read at the deadline.
    track: Track,
}

impl Watch {
    /// Sends every attempt's finding; stops once ready, at the deadline, or when nobody listens any
    /// more. A connect or an HTTP answer that timed out gets a longer bound next time (but a
    /// connect with `invert`); a finding of [`finding::Verdict::Unknown`] (a Unix server with a
    /// full accept queue, an untrusted certificate, a resolver failing for now, a path that cannot
    /// be checked) is neither ready nor gone. A TCP connect that timed out goes on beside the next
    /// attempts (`linger`). With `invert`, silence means gone only once every connect for
    /// [`backoff::LONGEST_CONNECT`] went unanswered (`silent_since`): the connects keep their first
    /// bound, so a new one, from a new port, starts every second or so, and one socket whose SYNs
    /// or SYN-ACKs are all lost is not taken for the server gone.
    async fn run(self, found: mpsc::UnboundedSender<Found>) {
        let started = Instant::now();
        let mut delay = self.backoff.interval;
        let mut lingering = linger::Lingering::default();
        let mut connected = None;
        let mut bounds = backoff::Bounds {
            connect: self.backoff.connect_bound(),
            answer: http::ANSWER_BOUND,
        };
        // When the first of the connects timed out in a row started.
        let mut silent_since = None;
        loop {
            let attempt_started = Instant::now();
            let left = self
                .deadline
                .map(|d| d.saturating_duration_since(attempt_started));
            // An attempt with no time left would find only its own bound (a connect "timed
            // out" at once), and the wait, not yet at its deadline's branch, might report it.
            if left == Some(Duration::ZERO) {
                return;
            }
            let finding = self
                .attempt(&mut lingering, connected.take(), bounds, left)
                .await;
            if self.cut_by_deadline(&finding) {
                return;
            }
            silent_since = match finding {
                Finding::ConnectTimedOut => Some(silent_since.unwrap_or(attempt_started)),
                _ => None,
            };
            let silence = silent_since.map_or(Duration::ZERO, |since: Instant| since.elapsed());
            let ready = self.judge(&finding, silence);
            bounds = match self.invert {
                true => backoff::Bounds {
                    connect: bounds.connect,
                    ..bounds.after(&finding)
                },
                false => bounds.after(&finding),
            };
            self.track.set(match ready {
                true => Stage::Idle,
                false => Stage::Finished(finding.clone()),
            });
            if found.send((self.index, finding, ready)).is_err() || ready {
                return;
            }
            delay = self.backoff.next(delay, started.elapsed());
            let next = backoff::next_start(attempt_started, Instant::now(), delay);
            connected = lingering.sleep_until(next).await;
        }
    }

    /// Whether `finding` is only the end of a bound that the deadline cut (a connect, a
    /// lookup, an answer not over when the deadline passed): the attempt did not finish, the
    /// deadline cut it. Its stage, left as it was, says where ([`Stage::cut`]); sent as a
    /// finished attempt's finding, it would race the wait's deadline branch for the reason
    /// and the count of attempts (the two timers end together).
    fn cut_by_deadline(&self, finding: &Finding) -> bool {
        let bound_ended = finding.is_silence()
            || finding.is_slow_answer()
            || matches!(finding, Finding::QueueFull)
            || matches!(finding, Finding::LookupFailed(why) if why == lookup::TIMED_OUT);
        bound_ended && self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Whether `finding` makes the target ready: up is ready, down is gone with `invert` (a
    /// connect that timed out only after `silence`, the time since the first of the connects
    /// that timed out in a row started, reached the longest bound; an HTTP answer not over in
    /// time never: the server took the connection and may answer yet, as it does for a wait
    /// without `invert`); a finding that cannot judge (an untrusted certificate, a resolver
    /// failing for now, a busy Unix server) is neither.
    fn judge(&self, finding: &Finding, silence: Duration) -> bool {
        match finding {
            Finding::ConnectTimedOut if self.invert => silence >= backoff::LONGEST_CONNECT,
            slow if self.invert && slow.is_slow_answer() => false,
            _ => match finding.verdict() {
                finding::Verdict::Up => !self.invert,
                finding::Verdict::Down => self.invert,
                finding::Verdict::Unknown => false,
            },
        }
    }

    /// One attempt within `bounds` and `left` (see [`probe`]). TCP and HTTP targets look
    /// their name up, then connect through `lingering`, or use `connected`, what an earlier
    /// connect met while the watch slept: its connection, or the server's refusal (the
    /// attempt's finding then).
    async fn attempt(
        &self,
        lingering: &mut linger::Lingering,
        connected: Option<Result<Stream, Finding>>,
        bounds: backoff::Bounds,
        left: Option<Duration>,
    ) -> Finding {
        let endpoint = match &self.target {
            Target::Connect(tcp @ Endpoint::Tcp { .. }) => Some(tcp),
            Target::Http(http) if matches!(http.endpoint, Endpoint::Tcp { .. }) => {
                Some(&http.endpoint)
            }
            _ => None,
        };
        let Some(endpoint) = endpoint else {
            return self
                .probe
                .attempt(&self.target, bounds, left, &self.track)
                .await;
        };
        let stream = match connected {
            Some(Ok(stream)) => stream,
            Some(Err(refused)) => return refused,
            None => match self.connect(lingering, endpoint, bounds, left).await {
                Ok(stream) => stream,
                Err(finding) => return finding,
            },
        };
        match &self.target {
            Target::Http(http) => {
                let bound = bounds.answer;
                // Raced against exchanges beside it ([`hedge`]), with `invert` too: one stuck
                // in retransmissions when the server went away would hide that until its
                // bound, where a connect beside it is refused at once. Its steps on a track
                // of its own, so that the race sees when it reads its body (the target's
                // moves on with it as before: its steps only go on).
                let track = self.track.beside();
                let first = self.probe.answer(http, stream, bound, left, &track);
                let reading = || {
                    matches!(
                        track.get(),
                        Stage::Connected(Finding::BodyUnfinished { .. })
                    )
                };
                // The exchanges beside it connect through the attempt's lingering connects: a
                // SYN lost by one is not lost to the next, and a connection that the first
                // one's connect made but did not need is taken at once.
                let beside = tokio::sync::Mutex::new(std::mem::take(lingering));
                let next = || self.exchange(http, endpoint, bounds, &beside);
                let raced = hedge::race(first, &reading, hedge::HEDGE_AFTER, next);
                // With `invert`, bare connects beside them ([`knock`]): both exchanges can be
                // stuck on connections the server took before it went.
                let found = match self.invert {
                    true => tokio::select! {
                        found = raced => found,
                        refused = knock::refusal(endpoint, &reading) => refused,
                    },
                    false => raced.await,
                };
                *lingering = beside.into_inner();
                found
            }
            _ => Finding::Accepts,
        }
    }

    /// A whole HTTP exchange over a connection of its own, beside one that is stuck
    /// ([`hedge`]), its connect through `lingering` (the attempt's), its steps on a track of
    /// its own ([`Track::beside`]): its connect under way when the deadline passes does not
    /// hide that the first exchange connected.
    async fn exchange(
        &self,
        http: &HttpTarget,
        endpoint: &Endpoint,
        bounds: backoff::Bounds,
        lingering: &tokio::sync::Mutex<linger::Lingering>,
    ) -> Finding {
        let left = self
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()));
        let track = self.track.beside();
        let connected = {
            let mut lingering = lingering.lock().await;
            let fresh = linger::FRESH_BESIDE;
            self.connect_on(&track, &mut lingering, endpoint, bounds, left, fresh)
                .await
        };
        match connected {
            Ok(stream) => {
                self.probe
                    .answer(http, stream, bounds.answer, left, &track)
                    .await
            }
            Err(finding) => finding,
        }
    }

    /// The name lookup (bounded by [`http::ANSWER_BOUND`] and `left`), then a connect through
    /// `lingering` to the addresses found.
    async fn connect(
        &self,
        lingering: &mut linger::Lingering,
        endpoint: &Endpoint,
        bounds: backoff::Bounds,
        left: Option<Duration>,
    ) -> Result<Stream, Finding> {
        let (track, fresh) = (&self.track, linger::FRESH);
        self.connect_on(track, lingering, endpoint, bounds, left, fresh)
            .await
    }

    /// [`Watch::connect`], its steps on `track`, taking a connection made in the background
    /// up to `fresh` before. A connect not answered within a second (or `--interval`, if
    /// longer) is joined by a new one from a new port ([`linger`]).
    async fn connect_on(
        &self,
        track: &Track,
        lingering: &mut linger::Lingering,
        endpoint: &Endpoint,
        bounds: backoff::Bounds,
        left: Option<Duration>,
        fresh: Duration,
    ) -> Result<Stream, Finding> {
        let bound = left.map_or(http::ANSWER_BOUND, |left| http::ANSWER_BOUND.min(left));
        let addrs = lookup::addresses(endpoint, bound, track).await?;
        track.set(Stage::Connecting(Instant::now()));
        let every = self.backoff.interval.max(linger::RESTART);
        let pace = linger::Pace { every, fresh };
        lingering
            .connect(endpoint, addrs, bounds.connect, left, pace)
            .await
    }
}

#[cfg(test)]
mod tests;
