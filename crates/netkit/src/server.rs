//! The one accept loop of every stream server (the forwarder, the echo server, the metrics
//! endpoint), shaped like mini-redis's: [`serve`] takes a bound listener and a shutdown future,
//! caps the connections served at once with a semaphore (more wait in the kernel's backlog),
//! backs off when accepting fails for want of descriptors or memory (the loop slows down; it
//! never spins and never ends), and on shutdown stops accepting and either lets the open
//! connections finish for a while ([`Stop::Drain`]) or ends them at once ([`Stop::Abort`]).
//!
//! The listener is anything that can [`Accept`]: an [`endpoint::Listener`] bound from an
//! endpoint, one the caller built (from a `std` or tokio listener, or a socket passed by a
//! service manager), or a test's scripted one. Datagram services have no connections to
//! accept: they run their own session loop beside this one.
//!
//! [`endpoint::Listener`]: crate::endpoint::Listener

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::endpoint::{Listener, Peer, Stream};
use crate::error::{describe_io, hint};
use crate::sys::{aborted_connection, shortage};

/// The first pause after a failed accept; doubled with each failure in a row.
pub const BACKOFF_MIN: Duration = Duration::from_millis(5);
/// The longest pause between two failed accepts.
pub const BACKOFF_MAX: Duration = Duration::from_millis(500);
/// The least time between two warnings about failed accepts.
pub const WARN_EVERY: Duration = Duration::from_secs(1);

/// A listening socket the loop can take connections from.
pub trait Accept {
    /// One accepted connection, handed to the handler.
    type Conn: Send + 'static;

    /// Waits for the next connection. Must be cancel safe: the loop drops it on shutdown.
    fn accept(&self) -> impl Future<Output = io::Result<Self::Conn>> + Send;

    /// Where it listens, for the log (`127.0.0.1:8080`, `unix:/run/app.sock`).
    fn local_addr(&self) -> String;
}

impl Accept for Listener {
    /// The stream and a printable peer address.
    type Conn = (Stream, Peer);

    fn accept(&self) -> impl Future<Output = io::Result<(Stream, Peer)>> + Send {
        Listener::accept(self)
    }

    fn local_addr(&self) -> String {
        Listener::local_addr(self)
    }
}

/// What happens to open connections once shutdown begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Wait for them to end, for at most this long; then their [`Cancel`] fires and the
    /// server waits for the handlers to return.
    Drain(Duration),
    /// End them at once: their tasks are dropped where they stand.
    Abort,
}

/// Given to every handler: completes when the server stops waiting for the connection (the
/// drain deadline passed, or the server itself was dropped). A handler that drains must watch
/// it and wind up promptly (close, log) when it fires; one that knows when its connection is
/// idle may also watch [`Cancel::draining`] and close it then.
#[derive(Debug, Clone)]
pub struct Cancel(watch::Receiver<Phase>);

/// Where the server is, as the connections see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Serving,
    /// It stopped accepting and waits for the open connections to end.
    Draining,
    /// It waits no more: the connections are to end now.
    Cancelled,
}

impl Cancel {
    /// Completes when the connection is to end now.
    pub async fn cancelled(mut self) {
        let _ = self.0.wait_for(|phase| *phase == Phase::Cancelled).await;
    }

    /// Completes once the server stopped accepting and waits for the open connections to
    /// end (at once when it already does; never while it serves, or when it is gone).
    pub async fn draining(&mut self) {
        if self
            .0
            .wait_for(|phase| *phase >= Phase::Draining)
            .await
            .is_err()
        {
            std::future::pending::<()>().await;
        }
    }
}

/// Serves `listener` until `shutdown` completes: each accepted connection runs `handler` on its
/// own task, at most `max_conns` at once (at least one); then the listener is dropped (a Unix
/// socket file goes with it) and open connections end as `stop` says. Returns once every
/// connection task has ended.
pub async fn serve<L, H, F>(
    listener: L,
    shutdown: impl Future,
    max_conns: usize,
    handler: H,
    stop: Stop,
) where
    L: Accept,
    H: FnMut(L::Conn, Cancel) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let ends = Ends::as_stop_says(stop);
    serve_limited(listener, shutdown, Some(limit(max_conns)), handler, ends).await;
}

/// The bound on connections served at once of [`serve_limited`]: `max_conns` (at least one).
pub fn limit(max_conns: usize) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(max_conns.clamp(1, Semaphore::MAX_PERMITS)))
}

/// How the open connections of [`serve_limited`] end once it stops accepting: as `stop` says,
/// or cancelled as soon as `cut` completes, whichever comes first (`cut` is awaited only
/// then: a forwarder whose drain deadline runs from the moment it began to stop, which may
/// come long after an accept loop of a rule replaced by a reload stopped accepting).
#[derive(Debug)]
pub struct Ends<C, D = std::future::Ready<()>> {
    /// Drain (for at most how long) or abort.
    pub stop: Stop,
    /// Cancels the connections still open when it completes ([`std::future::pending`]: only
    /// `stop` decides).
    pub cut: C,
    /// Tells the connections still open that the server drains ([`Cancel::draining`]) when it
    /// completes, awaited once accepting stopped ([`std::future::ready`]: at once; a rule a
    /// reload replaced tells them only once the forwarder itself stops).
    pub drain: D,
}

impl Ends<std::future::Pending<()>> {
    /// Only `stop` decides; the connections are told at once that the server drains.
    pub fn as_stop_says(stop: Stop) -> Self {
        Ends {
            stop,
            cut: std::future::pending(),
            drain: std::future::ready(()),
        }
    }
}

/// [`serve`], with connections counted against `limit` (none: no bound), which other accept
/// loops may share (the loops of one listening socket on several threads share its bound),
/// and the open connections ended as `ends` says.
pub async fn serve_limited<L, H, F, C, D>(
    listener: L,
    shutdown: impl Future,
    limit: Option<Arc<Semaphore>>,
    mut handler: H,
    ends: Ends<C, D>,
) where
    L: Accept,
    H: FnMut(L::Conn, Cancel) -> F,
    F: Future<Output = ()> + Send + 'static,
    C: Future,
    D: Future,
{
    let (cancel, cancelled) = watch::channel(Phase::Serving);
    let mut tasks = JoinSet::new();
    let mut backoff = Backoff::default();
    let name = listener.local_addr();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            (permit, conn) = next(&listener, limit.as_ref(), &mut backoff, &name) => {
                let task = handler(conn, Cancel(cancelled.clone()));
                tasks.spawn(async move {
                    task.await;
                    drop(permit);
                });
            }
        }
        reap(&mut tasks);
    }
    drop(listener);
    finish(tasks, ends, &cancel, &name).await;
}

/// Hands events from the connection tasks to the serving task ([`serve_reporting`]).
#[derive(Debug)]
pub struct Reporter<E>(mpsc::UnboundedSender<E>);

impl<E> Clone for Reporter<E> {
    fn clone(&self) -> Self {
        Reporter(self.0.clone())
    }
}

impl<E> Reporter<E> {
    /// Reports `event`; it reaches the sink in the order reported.
    pub fn report(&self, event: E) {
        let _ = self.0.send(event);
    }
}

/// [`serve`], with the engines' event convention: each handler also gets a [`Reporter`], and
/// the events reported reach `on_event` in order, from the serving task (so the sink needs no
/// lock). When `on_event` fails, the server stops as on `shutdown` and the error is returned
/// once every connection has ended; events after the failure are dropped.
pub async fn serve_reporting<L, H, F, E, S>(
    listener: L,
    shutdown: impl Future,
    max_conns: usize,
    mut handler: H,
    stop: Stop,
    on_event: S,
) -> io::Result<()>
where
    L: Accept,
    H: FnMut(L::Conn, Cancel, Reporter<E>) -> F,
    F: Future<Output = ()> + Send + 'static,
    S: FnMut(E) -> io::Result<()>,
{
    let (events, incoming) = mpsc::unbounded_channel();
    let (failed, sink_failed) = oneshot::channel::<()>();
    let stopping = async {
        tokio::select! {
            _ = shutdown => {}
            _ = sink_failed => {}
        }
    };
    let reporter = Reporter(events);
    let with_reporter = move |conn, cancel| handler(conn, cancel, reporter.clone());
    let serving = serve(listener, stopping, max_conns, with_reporter, stop);
    tokio::join!(serving, deliver(incoming, failed, on_event)).1
}

/// Hands the events of `incoming` to `on_event` in order until every sender is gone; on the
/// first failure, says so on `failed` (the server then stops) and drops the later events.
/// Returns the first failure.
pub(crate) async fn deliver<E>(
    mut incoming: mpsc::UnboundedReceiver<E>,
    failed: oneshot::Sender<()>,
    mut on_event: impl FnMut(E) -> io::Result<()>,
) -> io::Result<()> {
    let mut failed = Some(failed);
    let mut result = Ok(());
    while let Some(event) = incoming.recv().await {
        if result.is_ok() {
            result = on_event(event);
            if result.is_err() {
                failed.take().map(|stop| stop.send(()));
            }
        }
    }
    result
}

/// Waits for a free connection slot (when there is a bound), for no accepted client to wait
/// for descriptors, then for a connection, pausing after failures.
async fn next<L: Accept>(
    listener: &L,
    limit: Option<&Arc<Semaphore>>,
    backoff: &mut Backoff,
    name: &str,
) -> (Option<OwnedSemaphorePermit>, L::Conn) {
    let permit = match limit {
        Some(limit) => match limit.clone().acquire_owned().await {
            Ok(permit) => Some(permit),
            // The semaphore is never closed; should it be, nothing more is accepted.
            Err(_) => std::future::pending().await,
        },
        None => None,
    };
    loop {
        // Clients already accepted that wait for descriptors go first (`descriptor_wait`).
        crate::descriptor_wait::until_nobody_waits().await;
        match listener.accept().await {
            Ok(conn) => {
                backoff.reset();
                return (permit, conn);
            }
            Err(err) if aborted_connection(&err) => {
                tracing::debug!("accept on {name}: {}", describe_io(&err));
            }
            Err(err) => backoff.pause(name, &err).await,
        }
    }
}

/// Collects the tasks that have ended, so the set only holds open connections.
fn reap(tasks: &mut JoinSet<()>) {
    while let Some(ended) = tasks.try_join_next() {
        if let Err(err) = ended {
            if err.is_panic() {
                tracing::warn!("a connection task panicked");
            }
        }
    }
}

/// Ends the open connections as `ends` says.
async fn finish<C: Future, D: Future>(
    mut tasks: JoinSet<()>,
    ends: Ends<C, D>,
    cancel: &watch::Sender<Phase>,
    name: &str,
) {
    let deadline = match ends.stop {
        Stop::Abort => return tasks.shutdown().await,
        Stop::Drain(deadline) => deadline,
    };
    let tell = async {
        ends.drain.await;
        cancel.send_replace(Phase::Draining);
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = tell => {}
        () = join_all(&mut tasks) => return,
        () = tokio::time::sleep(deadline) => tracing::warn!(
            "{name}: drain timeout ({}) reached: closing {} open connection(s)",
            humantime::format_duration(deadline),
            tasks.len()
        ),
        _ = ends.cut => {}
    }
    cancel.send_replace(Phase::Cancelled);
    join_all(&mut tasks).await;
}

async fn join_all(tasks: &mut JoinSet<()>) {
    while tasks.join_next().await.is_some() {}
}

/// The pause after failed accepts: exponential from [`BACKOFF_MIN`] to [`BACKOFF_MAX`], reset by
/// the next success. Warnings come at most once per [`WARN_EVERY`], saying how many failures
/// went unreported in between, so a flapping descriptor limit does not flood the log.
#[derive(Debug, Default)]
struct Backoff {
    next: Option<Duration>,
    warned: Option<Instant>,
    unreported: u64,
}

impl Backoff {
    fn reset(&mut self) {
        self.next = None;
    }

    /// The pause to take now (doubling the next one).
    fn step(&mut self) -> Duration {
        let wait = self
            .next
            .map_or(BACKOFF_MIN, |wait| (wait * 2).min(BACKOFF_MAX));
        self.next = Some(wait);
        wait
    }

    /// Whether this failure is to be logged (else it is counted for the next warning).
    fn should_warn(&mut self, now: Instant) -> bool {
        if self.warned.is_some_and(|at| now < at + WARN_EVERY) {
            self.unreported += 1;
            return false;
        }
        self.warned = Some(now);
        true
    }

    async fn pause(&mut self, name: &str, err: &io::Error) {
        let wait = self.step();
        if self.should_warn(Instant::now()) {
            let kind = match shortage(err) {
                Some(_) => "out of resources",
                None => "failed",
            };
            let more = match std::mem::take(&mut self.unreported) {
                0 => String::new(),
                n => format!(" ({n} more since the last warning)"),
            };
            tracing::warn!(
                "accept on {name} {kind}: {}{}; backing off{more}",
                describe_io(err),
                hint(err)
            );
        }
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
