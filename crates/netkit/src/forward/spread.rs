//! A listening socket spread over the worker threads ([`Spread`]): a descriptor of it per
//! worker (a lane), registered with that worker's runtime, which the accept loops of every
//! generation of the rule on that worker share, so readiness the kernel reported to a lane
//! stays latched there from one generation to the next (a client is never left unseen in the
//! backlog by a reload). The socket itself is taken off the supervisor's runtime
//! ([`Parked`]): it wakes no thread that does not accept on it.
//!
//! A lane's registration is exclusive (`exclusive`: one worker woken per client) while the
//! rule has no `--max-conns`: its accept loops then always accept, until `EAGAIN`. With a bound,
//! a loop may wait for a free slot while its lane holds the readiness, and another loop that
//! gets the slot must see it too: every lane is woken then, as tokio registers.

use std::io;

use tokio::runtime::Handle;

use super::exclusive::Wakeup;
use super::workers::Worker;
use crate::endpoint::{Listener, Parked};

/// A listening socket and its lanes.
#[derive(Debug)]
pub(super) struct Spread {
    lanes: Vec<Lane>,
    /// The socket, when its lanes are duplicates of it.
    _parked: Option<Parked>,
    name: String,
}

/// One worker's descriptor of the socket.
#[derive(Debug)]
pub(super) struct Lane {
    /// The runtime it is registered with, where its accept loops run.
    pub handle: Handle,
    /// The descriptor, registered with that runtime.
    pub listener: Listener,
    /// Its registration, to make exclusive (none if it cannot be).
    wakeup: Option<Wakeup>,
}

impl Spread {
    /// `listener` with a lane on each of `workers`; without workers (or if no descriptor of it
    /// can be made), `listener` is the one lane, on the runtime it is registered with (the
    /// caller's).
    pub fn new(listener: Listener, workers: &[Worker]) -> Spread {
        let name = listener.local_addr();
        let lanes = lanes(&listener, workers, &name);
        if lanes.is_empty() {
            let lane = Lane {
                handle: Handle::current(),
                listener,
                wakeup: None,
            };
            return Spread {
                lanes: vec![lane],
                _parked: None,
                name,
            };
        }
        match listener.park() {
            Ok(parked) => Spread {
                lanes,
                _parked: Some(parked),
                name,
            },
            // The socket is closed with it; the lanes keep it open.
            Err(err) => {
                let why = crate::error::describe_io(&err);
                tracing::debug!("{name}: could not take the socket off its runtime: {why}");
                Spread {
                    lanes,
                    _parked: None,
                    name,
                }
            }
        }
    }

    /// The lanes, one per worker (one in all without workers).
    pub fn lanes(&self) -> &[Lane] {
        &self.lanes
    }

    /// Where it listens, for the log.
    pub fn local_addr(&self) -> &str {
        &self.name
    }

    /// A descriptor of the socket, to set its options (they apply to every lane).
    pub fn any(&self) -> &Listener {
        &self.lanes[0].listener
    }

    /// Wakes one worker per client (`exclusive`), or every worker.
    pub fn set_exclusive(&self, exclusive: bool) {
        for wakeup in self.lanes.iter().filter_map(|lane| lane.wakeup.as_ref()) {
            if let Err(err) = wakeup.set_exclusive(exclusive) {
                let why = crate::error::describe_io(&err);
                tracing::debug!("{}: exclusive wake-ups {exclusive}: {why}", self.name);
            }
        }
    }
}

/// A lane of `listener` on each worker that takes one.
fn lanes(listener: &Listener, workers: &[Worker], name: &str) -> Vec<Lane> {
    let mut lanes = Vec::with_capacity(workers.len());
    for worker in workers {
        match lane(listener, worker) {
            Ok(lane) => lanes.push(lane),
            Err(err) => {
                let why = crate::error::describe_io(&err);
                tracing::warn!("{name}: accepting on fewer worker threads: {why}");
            }
        }
    }
    lanes
}

/// A descriptor of `listener` registered with `worker`'s runtime.
fn lane(listener: &Listener, worker: &Worker) -> io::Result<Lane> {
    let detached = listener.duplicate()?;
    let registered = {
        let _entered = worker.handle.enter();
        detached.register()?
    };
    let wakeup = worker
        .poller
        .and_then(|poller| Wakeup::find(poller, &registered).ok());
    Ok(Lane {
        handle: worker.handle.clone(),
        listener: registered,
        wakeup,
    })
}
