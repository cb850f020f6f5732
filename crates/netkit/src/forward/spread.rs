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
//!
//! A worker that drains the backlog takes every client in it: a burst of clients (a pool of
//! keep-alive connections opened at once) would all live on the first worker woken. So while
//! the rule has no `--max-conns`, a lane whose worker runs more tasks than another's (by
//! [`HANDOFF_SLACK`], counting the clients handed to it and not yet taken) hands the client it
//! accepted to the least loaded lane's inbox, which that lane's loops take before accepting
//! (HAProxy's threads hand accepted connections over the same way). A client handed over costs
//! a deregistration, a registration and a wake-up of the other worker: rare, since exclusive
//! wake-ups already go to a worker that is idle. With a bound, nothing is handed over: a loop
//! with a client in its inbox may be the one waiting for a free slot.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use tokio::net::{TcpStream, UnixStream};
use tokio::runtime::Handle;
use tokio::sync::Notify;

use super::exclusive::Wakeup;
use super::workers::Worker;
use crate::endpoint::{Listener, Parked, Peer, Stream};

/// How many more tasks than the least loaded worker's a worker runs before it hands clients it
/// accepts over. The counts jitter under a steady load of short connections (with 4, 50
/// clients at once of `Connection: close` had 0.2 of every connection handed over); a burst of
/// 100 keep-alive connections still ends up split no worse than 58 to 42.
pub(super) const HANDOFF_SLACK: usize = 16;

/// A listening socket and its lanes.
#[derive(Debug)]
pub(super) struct Spread {
    lanes: Vec<Lane>,
    /// The socket as bound when the lanes are duplicates of it: off any runtime (or, should
    /// it not come off, on the caller's: it then wakes that runtime for nothing, but the socket
    /// and its file stay).
    _held: Option<Result<Parked, Listener>>,
    name: String,
    /// Whether accepted clients are handed to a less loaded lane (no `--max-conns`).
    handoff: AtomicBool,
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
    /// Clients other lanes accepted and handed to this one.
    inbox: Inbox,
}

/// Clients handed to a lane, off any runtime, and the wake-up of its loops.
#[derive(Debug, Default)]
struct Inbox {
    clients: Mutex<VecDeque<(Moving, Peer)>>,
    arrived: Notify,
}

/// An accepted client between two runtimes.
#[derive(Debug)]
enum Moving {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
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
                inbox: Inbox::default(),
            };
            return Spread {
                lanes: vec![lane],
                _held: None,
                name,
                handoff: AtomicBool::new(false),
            };
        }
        let held = listener.park().map_err(|(listener, err)| {
            let why = crate::error::describe_io(&err);
            tracing::debug!("{name}: could not take the socket off its runtime: {why}");
            listener
        });
        Spread {
            lanes,
            _held: Some(held),
            name,
            handoff: AtomicBool::new(false),
        }
    }

    /// The lanes, one per worker (one in all without workers).
    pub fn lanes(&self) -> &[Lane] {
        &self.lanes
    }

    /// The next client of lane `at`, served on its runtime (the caller's): one handed to it,
    /// or one it accepts and does not hand to a less loaded lane. Cancel safe.
    pub async fn accept(&self, at: usize) -> io::Result<(Stream, Peer)> {
        let lane = &self.lanes[at];
        loop {
            if let Some((client, peer)) = lane.inbox.take() {
                match client.register() {
                    Ok(stream) => return Ok((stream, peer)),
                    // Like a connection reset before it was accepted: the next one.
                    Err(err) => {
                        tracing::debug!("{}: a client handed over: {err}", self.name);
                        continue;
                    }
                }
            }
            let (stream, peer) = tokio::select! {
                accepted = lane.listener.accept() => accepted?,
                () = lane.inbox.arrived.notified() => continue,
            };
            let Some(to) = self.less_loaded(at) else {
                return Ok((stream, peer));
            };
            match Moving::off(stream) {
                Ok(client) => self.lanes[to].inbox.put(client, peer),
                Err(err) => tracing::debug!("{}: handing a client over: {err}", self.name),
            }
        }
    }

    /// The least loaded lane, if lane `at` runs more than [`HANDOFF_SLACK`] tasks more than it
    /// (and clients are handed over at all).
    fn less_loaded(&self, at: usize) -> Option<usize> {
        if !self.handoff.load(Ordering::Relaxed) || self.lanes.len() < 2 {
            return None;
        }
        // Each lane's load read once (its inbox's lock taken once): the first least loaded
        // lane, and this one's.
        let (mut to, mut least, mut own) = (at, usize::MAX, 0);
        for (i, lane) in self.lanes.iter().enumerate() {
            let load = lane.handle.metrics().num_alive_tasks() + lane.inbox.len();
            if i == at {
                own = load;
            }
            if load < least {
                (to, least) = (i, load);
            }
        }
        (to != at && own > least + HANDOFF_SLACK).then_some(to)
    }

    /// Where it listens, for the log.
    pub fn local_addr(&self) -> &str {
        &self.name
    }

    /// A descriptor of the socket, to set its options (they apply to every lane).
    pub fn any(&self) -> &Listener {
        &self.lanes[0].listener
    }

    /// Wakes one worker per client and hands clients to less loaded lanes (`exclusive`, for a
    /// rule without `--max-conns`), or wakes every worker and keeps each client where it was
    /// accepted.
    pub fn set_exclusive(&self, exclusive: bool) {
        self.handoff.store(exclusive, Ordering::Relaxed);
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

/// Lanes given exclusive wake-ups so far, in this process.
static EXCLUSIVE_LANES: AtomicUsize = AtomicUsize::new(0);
/// The most lanes given exclusive wake-ups ([`lane`]).
const MAX_EXCLUSIVE_LANES: usize = 512;

/// A descriptor of `listener` registered with `worker`'s runtime.
fn lane(listener: &Listener, worker: &Worker) -> io::Result<Lane> {
    let detached = listener.duplicate()?;
    let registered = {
        let _entered = worker.handle.enter();
        detached.register()?
    };
    // Finding a registration reads the epoll instance's whole fdinfo: past a few hundred
    // listeners (a port range of thousands) that became quadratic (4000 rules: 24 s before the
    // first accept), so the rest keep tokio's registration (every worker wakes).
    let wakeup = worker
        .poller
        .filter(|_| EXCLUSIVE_LANES.fetch_add(1, Ordering::Relaxed) < MAX_EXCLUSIVE_LANES)
        .and_then(|poller| Wakeup::find(poller, &registered).ok());
    Ok(Lane {
        handle: worker.handle.clone(),
        listener: registered,
        wakeup,
        inbox: Inbox::default(),
    })
}

impl Inbox {
    /// Queues a client and wakes one of the lane's loops.
    fn put(&self, client: Moving, peer: Peer) {
        self.lock().push_back((client, peer));
        self.arrived.notify_one();
    }

    /// The oldest client queued.
    fn take(&self) -> Option<(Moving, Peer)> {
        self.lock().pop_front()
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Moving, Peer)>> {
        // A panic while holding it leaves a queue that is still whole.
        self.clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Moving {
    /// Takes an accepted stream off its runtime.
    fn off(stream: Stream) -> io::Result<Moving> {
        match stream {
            Stream::Tcp(tcp) => Ok(Moving::Tcp(tcp.into_std()?)),
            Stream::Unix(unix) => Ok(Moving::Unix(unix.into_std()?)),
            Stream::Child(..) => Err(io::Error::other("not an accepted client")),
        }
    }

    /// Registers the stream with the caller's runtime.
    fn register(self) -> io::Result<Stream> {
        match self {
            Moving::Tcp(tcp) => Ok(Stream::Tcp(TcpStream::from_std(tcp)?)),
            Moving::Unix(unix) => Ok(Stream::Unix(UnixStream::from_std(unix)?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::forward::workers::Workers;

    /// Two workers, and a socket spread over them, clients handed over or not.
    async fn spread(handoff: bool) -> (Workers, Arc<Spread>, std::net::SocketAddr) {
        let workers = Workers::start(2).unwrap();
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let spread = Arc::new(Spread::new(Listener::from(tcp), workers.all()));
        spread.set_exclusive(handoff);
        // Lane 0's worker is the busy one.
        for _ in 0..HANDOFF_SLACK + 2 {
            workers.all()[0].handle.spawn(std::future::pending::<()>());
        }
        (workers, spread, addr)
    }

    /// Lane `at`'s next client, accepted on its worker.
    fn accept_on(
        workers: &Workers,
        spread: &Arc<Spread>,
        at: usize,
    ) -> tokio::task::JoinHandle<io::Result<Peer>> {
        let spread = Arc::clone(spread);
        let accept = async move { spread.accept(at).await.map(|(_, peer)| peer) };
        workers.all()[at].handle.spawn(accept)
    }

    #[tokio::test]
    async fn a_client_accepted_on_a_busy_worker_is_served_by_the_least_loaded_one() {
        let (workers, spread, addr) = spread(true).await;
        let on_busy = accept_on(&workers, &spread, 0);
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        // Handed to lane 1's inbox (bounded wait: 10 s).
        for _ in 0..1000 {
            if spread.lanes[1].inbox.len() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(spread.lanes[1].inbox.len(), 1);
        let peer = accept_on(&workers, &spread, 1).await.unwrap().unwrap();
        assert_eq!(peer, Peer::Tcp(client.local_addr().unwrap()));
        assert!(!on_busy.is_finished());
    }

    #[tokio::test]
    async fn with_a_connection_bound_a_client_stays_where_it_was_accepted() {
        let (workers, spread, addr) = spread(false).await;
        let on_busy = accept_on(&workers, &spread, 0);
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let peer = on_busy.await.unwrap().unwrap();
        assert_eq!(peer, Peer::Tcp(client.local_addr().unwrap()));
        assert_eq!(spread.lanes[1].inbox.len(), 0);
    }
}
