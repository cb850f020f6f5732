//! The TCP prober: one non-blocking connect per probe, thousands in flight, bounded by the
//! open-files limit. Connected or refused (RST, or ICMP port unreachable) both mean the host
//! is alive; "network unreachable" or "no route to host" (the system's, or an ICMP error from
//! a router) means unreachable; no answer within the timeout means silent. Sockets close with
//! an RST (linger 0) so a large sweep leaves no TIME_WAIT behind.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpSocket;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::probe::{Answer, Reply, Tag};
use super::unreach::Unreach;

/// Pause before trying again when the process runs out of descriptors or ports.
const BACKOFF: Duration = Duration::from_millis(10);

/// Sends TCP connect probes to one port.
#[derive(Debug)]
pub struct TcpProber {
    port: u16,
    timeout: Duration,
    slots: Arc<Semaphore>,
    replies: UnboundedSender<Reply>,
    tasks: JoinSet<()>,
}

impl TcpProber {
    /// A prober for `port`; each connect lasts at most `timeout` (an answer to an earlier
    /// probe still counts while a later one is in flight), at most `slots` at once.
    pub fn new(
        port: u16,
        timeout: Duration,
        slots: usize,
        replies: UnboundedSender<Reply>,
    ) -> Self {
        TcpProber {
            port,
            timeout,
            slots: Arc::new(Semaphore::new(slots.max(1))),
            replies,
            tasks: JoinSet::new(),
        }
    }

    /// Starts one connect; waits first when too many are in flight.
    pub async fn send(&mut self, tag: Tag, index: u64, addr: IpAddr) {
        while self.tasks.try_join_next().is_some() {}
        let Ok(permit) = Arc::clone(&self.slots).acquire_owned().await else {
            return;
        };
        let target = SocketAddr::new(addr, self.port);
        let (timeout, replies) = (self.timeout, self.replies.clone());
        self.tasks.spawn(async move {
            let start = Instant::now();
            let answer = match answers(target, start + timeout).await {
                Outcome::Answered => Answer::Alive(start.elapsed()),
                Outcome::Unreachable(errno) => Answer::Unreachable(Unreach::Local(errno)),
                Outcome::Silent => return drop(permit),
            };
            let _ = replies.send(Reply {
                tag,
                index,
                addr,
                answer,
            });
            drop(permit);
        });
    }

    /// Aborts the connects still in flight.
    pub fn end_round(&mut self) {
        self.tasks.abort_all();
    }
}

/// What one connect found out.
enum Outcome {
    /// Accepted or refused.
    Answered,
    /// No route: this `errno`.
    Unreachable(i32),
    /// Nothing before the deadline, or an error that says nothing about the target.
    Silent,
}

/// Whether `target` answers (accepts or refuses) before `deadline`, or cannot be reached.
async fn answers(target: SocketAddr, deadline: Instant) -> Outcome {
    loop {
        let attempt = tokio::time::timeout_at(deadline, connect(target)).await;
        match attempt {
            Err(_elapsed) => return Outcome::Silent,
            Ok(Ok(())) => return Outcome::Answered,
            Ok(Err(err)) if err.kind() == io::ErrorKind::ConnectionRefused => {
                return Outcome::Answered
            }
            Ok(Err(err)) if crate::sys::shortage(&err).is_some() => {
                tracing::debug!("connect {target}: {err}; trying again");
                if Instant::now() + BACKOFF >= deadline {
                    return Outcome::Silent;
                }
                tokio::time::sleep(BACKOFF).await;
            }
            Ok(Err(err)) => {
                tracing::debug!("connect {target}: {err}");
                return match err.raw_os_error() {
                    Some(e @ (nix::libc::ENETUNREACH | nix::libc::EHOSTUNREACH)) => {
                        Outcome::Unreachable(e)
                    }
                    _ => Outcome::Silent,
                };
            }
        }
    }
}

async fn connect(target: SocketAddr) -> io::Result<()> {
    let socket = match target {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // A zero linger never blocks: the close sends an RST at once.
    socket2::SockRef::from(&socket).set_linger(Some(Duration::ZERO))?;
    socket.connect(target).await.map(drop)
}

