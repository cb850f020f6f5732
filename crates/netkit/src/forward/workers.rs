//! The threads stream connections live on: one per core the process may run on, each with a
//! single-threaded runtime of its own (HAProxy's model, thread per core). Every listening
//! socket is accepted on by every worker, each through a descriptor of its own registered with
//! its own runtime (`spread`), so a connection is accepted and served to its end on one
//! thread: its wake-ups never cross threads and no task is stolen. The socket stays one (bound
//! once, by this process, or passed by systemd): no `SO_REUSEPORT`, no second process can
//! share the port.
//!
//! The supervisor, the health checks, the metrics endpoint, the log and `udp:` rules stay on
//! the runtime that created the workers.

use std::io;
use std::num::NonZeroUsize;
use std::thread;
use std::time::Duration;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

use super::exclusive::Poller;
use super::keepalive_later::{self, Ticking};

/// The worker threads; they end (with whatever still runs on them) when this is dropped.
#[derive(Debug)]
pub(super) struct Workers {
    workers: Vec<Worker>,
    _stop: Vec<oneshot::Sender<()>>,
}

/// One worker thread's runtime.
#[derive(Debug, Clone)]
pub(super) struct Worker {
    /// Where to spawn its tasks and register its sockets.
    pub handle: Handle,
    /// Its runtime's epoll instance, for exclusive wake-ups (none if it could not be found).
    pub poller: Option<Poller>,
}

impl Workers {
    /// One worker per core available to the process (its CPU affinity and cgroup quota).
    pub fn per_core() -> io::Result<Workers> {
        let count = thread::available_parallelism().map_or(1, NonZeroUsize::get);
        Workers::start(count)
    }

    /// `count` workers (at least one).
    pub fn start(count: usize) -> io::Result<Workers> {
        let mut workers = Vec::new();
        let mut stops = Vec::new();
        for index in 0..count.max(1) {
            let runtime = Builder::new_current_thread().enable_all().build()?;
            let poller = {
                let _entered = runtime.enter();
                Poller::of_current_runtime()
            };
            if let Err(err) = &poller {
                let why = crate::error::describe_io(err);
                tracing::debug!("worker {index}: every worker wakes for each client: {why}");
            }
            workers.push(Worker {
                handle: runtime.handle().clone(),
                poller: poller.ok(),
            });
            let (stop, stopped) = oneshot::channel::<()>();
            stops.push(stop);
            thread::Builder::new()
                .name(format!("netkit-worker-{index}"))
                .spawn(move || {
                    // Dropped before the runtime and the connections it still holds.
                    let _ticking = Ticking::start();
                    runtime.block_on(async {
                        tokio::select! {
                            _ = stopped => {}
                            () = keep_the_clock_ahead() => {}
                        }
                    });
                })?;
        }
        Ok(Workers {
            workers,
            _stop: stops,
        })
    }

    /// The workers, to register listening sockets with and spawn accept loops on.
    pub fn all(&self) -> &[Worker] {
        &self.workers
    }
}

/// How often a worker's clock ticks with nothing to do (see [`keep_the_clock_ahead`]).
const TICK: Duration = Duration::from_millis(500);

/// Ticks for ever, so that a worker's timer wheel always holds a deadline at most [`TICK`]
/// away. Tokio wakes its driver through an `eventfd` write whenever a timer is set earlier
/// than the deadline the driver last slept until, even from the driver's own thread: without
/// a tick, every connection's connect timeout was such a timer on a worker with nothing else
/// pending, one system call per connection. A worker with nothing to do wakes twice a second
/// for it. Each tick also sets the keepalive of the target legs connected before the last one
/// ([`keepalive_later`]).
async fn keep_the_clock_ahead() {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        keepalive_later::tick();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_run_on_the_worker_threads_each_with_its_own_poller() {
        let workers = Workers::start(2).unwrap();
        for (index, worker) in workers.all().iter().enumerate() {
            let name = worker
                .handle
                .spawn(async { thread::current().name().map(String::from) })
                .await
                .unwrap();
            assert_eq!(name, Some(format!("netkit-worker-{index}")));
        }
        let pollers: Vec<_> = workers.all().iter().map(|w| w.poller.unwrap()).collect();
        assert_ne!(pollers[0], pollers[1]);
    }
}
