//! The accept loop: a semaphore caps connections, accept errors back off (a full fd table
//! slows accepting down instead of spinning or ending the loop), shutdown stops accepting and
//! waits for the connections in flight to finish, for at most the rule's drain timeout: then
//! the connections still open are closed (and logged, `close: drain-timeout`).

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch, Semaphore};

use super::{conn, ConnRecord, Rule};
use crate::endpoint::Listener;

/// Receives one record per finished connection.
pub type ConnLog = Arc<dyn Fn(&ConnRecord) + Send + Sync>;

/// The first and the longest pause after a failed accept.
const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_millis(500);

/// Serves `rule` on `listener` until `shutdown` completes, then waits for every connection
/// to end, closing those still open after the drain timeout. Each finished connection is
/// passed to `log`.
pub async fn serve(
    listener: Listener,
    rule: Arc<Rule>,
    shutdown: impl Future<Output = ()>,
    log: ConnLog,
) {
    let permits = rule
        .options
        .max_conns
        .unwrap_or(Semaphore::MAX_PERMITS)
        .min(Semaphore::MAX_PERMITS);
    let limit = Arc::new(Semaphore::new(permits));
    let (alive, mut drained) = mpsc::channel::<()>(1);
    let (abort, aborted) = watch::channel(false);
    let conns = Conns {
        limit: &limit,
        alive: &alive,
        aborted: &aborted,
        log: &log,
    };
    tokio::select! {
        () = accept_loop(&listener, &rule, conns) => {}
        () = shutdown => {}
    }
    let name = listener.local_addr();
    drop(listener);
    drop(alive);
    let drain = rule.options.drain_timeout;
    if tokio::time::timeout(drain, drained.recv()).await.is_err() {
        let open = permits - limit.available_permits();
        tracing::warn!(
            "{name}: drain timeout ({}) reached: closing {open} open connection(s)",
            humantime::format_duration(drain)
        );
        let _ = abort.send(true);
        let _ = drained.recv().await;
    }
}

/// What every connection task shares: the cap, the drain tracker, the abort signal, the log.
#[derive(Clone, Copy)]
struct Conns<'a> {
    limit: &'a Arc<Semaphore>,
    alive: &'a mpsc::Sender<()>,
    aborted: &'a watch::Receiver<bool>,
    log: &'a ConnLog,
}

async fn accept_loop(listener: &Listener, rule: &Arc<Rule>, conns: Conns<'_>) {
    let mut backoff = Backoff::default();
    loop {
        let Ok(permit) = conns.limit.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((client, peer)) => {
                backoff.reset();
                let (rule, log, alive) = (rule.clone(), conns.log.clone(), conns.alive.clone());
                let mut aborted = conns.aborted.clone();
                tokio::spawn(async move {
                    let abort = async move {
                        let _ = aborted.wait_for(|abort| *abort).await;
                    };
                    conn::handle(client, peer, &rule, &log, abort).await;
                    drop((permit, alive));
                });
            }
            Err(err) => backoff.pause(&err).await,
        }
    }
}

/// Exponential pause after accept errors, reset by the next success. Warnings are limited to
/// one per [`WARN_EVERY`] so a flapping fd limit does not flood the log.
#[derive(Debug, Default)]
struct Backoff {
    next: Option<Duration>,
    warned: Option<Instant>,
}

/// The least time between two accept-error warnings.
const WARN_EVERY: Duration = Duration::from_secs(1);

impl Backoff {
    fn reset(&mut self) {
        self.next = None;
    }

    async fn pause(&mut self, err: &io::Error) {
        let wait = match self.next {
            None => BACKOFF_MIN,
            Some(wait) => (wait * 2).min(BACKOFF_MAX),
        };
        if self.warned.map_or(true, |at| at.elapsed() >= WARN_EVERY) {
            self.warned = Some(Instant::now());
            tracing::warn!(
                "accept failed: {}{}; backing off",
                crate::error::describe_io(err),
                crate::error::hint(err)
            );
        }
        self.next = Some(wait);
        tokio::time::sleep(wait).await;
    }
}

/// Raises the soft open-files limit to the hard one (each connection holds two sockets and
/// two pipes) and returns the new soft limit.
pub fn raise_open_files_limit() -> io::Result<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard.max(soft))
}
