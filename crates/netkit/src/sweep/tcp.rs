//! The TCP prober: one connect per probe with the library's one TCP connect probe
//! ([`crate::scan::probe::attempt`]: non-blocking, ICMP errors read from the error queue),
//! thousands in flight, bounded by the open-files limit. Connected or refused (RST, or ICMP
//! port unreachable) both mean the host is alive; "network unreachable", "no route to host"
//! (the system's, or an ICMP error from a router, named as the echo method names it) or an
//! ICMP administratively prohibited means unreachable; no answer within the timeout means
//! silent. Sockets close with an RST (linger 0) so a large sweep leaves no TIME_WAIT behind.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::reply::{Answer, Reply, Tag};
use super::unreach::{answer_of, LocalAddrs, Unreach};
use crate::icmp::Version;
use crate::report::sweep::TcpAnswer;
use crate::scan::answer::IcmpReport;
use crate::scan::probe::{self, Failure, Outcome};

/// Pause before trying again when the process runs out of descriptors or ports.
const BACKOFF: Duration = Duration::from_millis(10);

/// The longest a connect lasts, in timeouts: a re-probe's connect lasts twice as long as the
/// one before it up to this, so an answer slower than the timeout (a round trip over 1 s)
/// is still heard, as the echo method hears late replies.
const LONGEST: u32 = 8;

/// How long the connect of attempt `attempt` lasts: `timeout` for a first probe (and a
/// control probe), doubling with each re-probe up to [`LONGEST`] timeouts.
fn connect_bound(timeout: Duration, attempt: u8) -> Duration {
    let doublings = u32::from(attempt.saturating_sub(1)).min(LONGEST.ilog2());
    timeout.saturating_mul(1 << doublings)
}

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
    /// A prober for `port`; a first probe's connect lasts at most `timeout`, each re-probe's
    /// twice as long as the one before (up to 8 timeouts; an answer to an earlier
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
    pub async fn send(&mut self, tag: Tag, index: u64, dst: SocketAddr) {
        while self.tasks.try_join_next().is_some() {}
        let Ok(permit) = Arc::clone(&self.slots).acquire_owned().await else {
            return;
        };
        let (addr, mut target) = (dst.ip(), dst);
        target.set_port(self.port);
        let timeout = connect_bound(self.timeout, tag.attempt());
        let replies = self.replies.clone();
        // The round trip counts from here, as the round's timeouts do: a task that waits to
        // run while the round sends is late by that much.
        let start = Instant::now();
        self.tasks.spawn(async move {
            let Some(answer) = answer(target, start, timeout).await else {
                return drop(permit);
            };
            let _ = replies.send(Reply {
                tag,
                index,
                addr,
                answer,
                ttl: None,
            });
            drop(permit);
        });
    }

    /// Aborts the connects still in flight.
    pub fn end_round(&mut self) {
        self.tasks.abort_all();
    }
}

/// What the probe of `target` started at `start` says within `timeout`: alive, unreachable,
/// or nothing (`None`: silent, or an error that says nothing about the target). A local
/// shortage waits and tries again while there is time. The round trip counts from `start`
/// (the send: the wait to run, the socket's creation and any backoff included), as the
/// sweep's timeouts expect.
async fn answer(target: SocketAddr, start: Instant, timeout: Duration) -> Option<Answer> {
    let deadline = start + timeout;
    loop {
        match probe::attempt(target, None, deadline).await {
            Ok(Outcome::Open { .. }) => {
                return Some(Answer::Tcp(start.elapsed(), TcpAnswer::Accepted))
            }
            Ok(Outcome::Refused { failure, .. }) => {
                return from_failure(failure, target.ip(), start.elapsed())
            }
            Ok(Outcome::Silent | Outcome::Phantom) => return None,
            Ok(Outcome::Busy(err)) => {
                tracing::debug!("connect {target}: {err}; trying again");
                if Instant::now() + BACKOFF >= deadline {
                    return None;
                }
                tokio::time::sleep(BACKOFF).await;
            }
            Err(err) => {
                tracing::debug!("connect {target}: {err}");
                return None;
            }
        }
    }
}

/// What a refused connect says about the host: refused (a reset, or ICMP port unreachable)
/// is alive; "network unreachable" or "no route to host" is unreachable, named by the ICMP
/// error and the router that sent it when one came (as the echo method names them), else by
/// the errno (this machine has no route). A "host unreachable" from this host itself is an
/// on-link address no neighbour answered for: absent, as the echo method takes it (it came
/// and went with the kernel's neighbour timers and ICMP rate limit, calling some absent
/// hosts of a LAN unreachable and not others). An administratively prohibited is `EACCES` on
/// IPv6 (`EHOSTUNREACH` on IPv4): unreachable when an ICMP error says so, else (this
/// machine's own refusal) nothing, as anything else says nothing. A port unreachable from
/// another address than `target` (a router's or a firewall's reject, iptables' default) says
/// nothing of the target either, as nmap -PS reads it: a refusal is the target's own.
fn from_failure(failure: Failure, target: IpAddr, rtt: Duration) -> Option<Answer> {
    if let Some(IcmpReport {
        from: Some(from), ..
    }) = failure.icmp
    {
        if failure.errno == Errno::ECONNREFUSED && from != target {
            return None;
        }
    }
    // The target's own ICMP port unreachable (a REJECT's default), or a reset.
    let refusal = match failure.icmp {
        Some(_) => TcpAnswer::PortUnreach,
        None => TcpAnswer::Reset,
    };
    let icmp = match failure.icmp {
        Some(IcmpReport {
            v6,
            kind,
            code,
            from: Some(from),
        }) => {
            let version = if v6 { Version::V6 } else { Version::V4 };
            let mut local = LocalAddrs::default();
            match answer_of(version, (kind, code), from, &mut local) {
                Some(Answer::Absent) => return Some(Answer::Absent),
                _ => Some(Unreach::Icmp {
                    msg_type: kind,
                    code,
                    from,
                }),
            }
        }
        _ => None,
    };
    match failure.errno {
        Errno::ECONNREFUSED => Some(Answer::Tcp(rtt, refusal)),
        Errno::ENETUNREACH | Errno::EHOSTUNREACH => Some(Answer::Unreachable(
            icmp.unwrap_or(Unreach::Local(failure.errno as i32)),
        )),
        Errno::EACCES => icmp.map(Answer::Unreachable),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn re_probes_wait_twice_as_long_up_to_eight_timeouts() {
        let second = Duration::from_secs(1);
        let bounds: Vec<u64> = (0..=6)
            .map(|attempt| connect_bound(second, attempt).as_secs())
            .collect();
        assert_eq!(bounds, [1, 1, 2, 4, 8, 8, 8]);
    }

    fn failure(errno: Errno, icmp: Option<IcmpReport>) -> Option<Answer> {
        let target = "198.18.1.3".parse().unwrap();
        from_failure(Failure { errno, icmp }, target, Duration::from_millis(3))
    }

    /// The kernel's own "host unreachable" (no neighbour answered for an on-link address):
    /// absent, not unreachable; the same from a router is unreachable.
    #[test]
    fn host_unreachable_from_this_host_is_absence() {
        for (v6, kind, code, own) in [(false, 3, 1, "127.0.0.1"), (true, 1, 3, "::1")] {
            let from = Some(own.parse().unwrap());
            let icmp = IcmpReport {
                v6,
                kind,
                code,
                from,
            };
            assert_eq!(
                failure(Errno::EHOSTUNREACH, Some(icmp)),
                Some(Answer::Absent)
            );
        }
    }

    #[test]
    fn refused_is_alive_and_no_route_is_unreachable() {
        let rtt = Duration::from_millis(3);
        let (reset, own_icmp) = (TcpAnswer::Reset, TcpAnswer::PortUnreach);
        assert_eq!(
            failure(Errno::ECONNREFUSED, None),
            Some(Answer::Tcp(rtt, reset))
        );
        let port_unreachable = |from: &str| IcmpReport {
            v6: false,
            kind: 3,
            code: 3,
            from: Some(from.parse().unwrap()),
        };
        let own = Some(port_unreachable("198.18.1.3"));
        let alive = Some(Answer::Tcp(rtt, own_icmp));
        assert_eq!(failure(Errno::ECONNREFUSED, own), alive, "the target's own");
        let routers = Some(port_unreachable("198.19.254.1"));
        assert_eq!(failure(Errno::ECONNREFUSED, routers), None, "a router's");
        let local = Unreach::Local(nix::libc::ENETUNREACH);
        let want = Some(Answer::Unreachable(local));
        assert_eq!(failure(Errno::ENETUNREACH, None), want);
        let router = "198.19.254.1".parse().unwrap();
        let icmp = IcmpReport {
            v6: false,
            kind: 3,
            code: 1,
            from: Some(router),
        };
        let named = Unreach::Icmp {
            msg_type: 3,
            code: 1,
            from: router,
        };
        let want = Some(Answer::Unreachable(named));
        assert_eq!(failure(Errno::EHOSTUNREACH, Some(icmp)), want);
        assert_eq!(failure(Errno::EACCES, None), None);
        let prohibited = IcmpReport {
            v6: true,
            kind: 1,
            code: 1,
            from: Some("2001:db8:1::5".parse().unwrap()),
        };
        let named = Unreach::Icmp {
            msg_type: 1,
            code: 1,
            from: "2001:db8:1::5".parse().unwrap(),
        };
        let want = Some(Answer::Unreachable(named));
        assert_eq!(failure(Errno::EACCES, Some(prohibited)), want);
        assert_eq!(failure(Errno::EHOSTDOWN, None), None);
    }

    #[tokio::test]
    async fn a_closed_port_is_alive_and_a_listener_too() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap();
        let timeout = Duration::from_secs(5);
        let alive = answer(open, Instant::now(), timeout).await;
        let accepted = Some(TcpAnswer::Accepted);
        assert!(
            matches!(alive, Some(Answer::Tcp(_, how)) if Some(how) == accepted),
            "{alive:?}"
        );
        let (_refusing, closed) = crate::testing::refused_addr();
        let refused = answer(closed, Instant::now(), timeout).await;
        assert!(
            matches!(refused, Some(Answer::Tcp(_, TcpAnswer::Reset))),
            "{refused:?}"
        );
    }
}
