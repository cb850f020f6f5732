//! The targets of a `udp:` rule: which one a new session goes to (`--balance`, the order of
//! TCP rules' [`balance`](crate::forward::Balance)) and their passive health, as a TCP target's
//! with a failed connect: a target that answers a session with ICMP port unreachable is down
//! for a while (1 s, doubling up to 30 s) and the session moves to the next target; a session
//! it answers brings it up again. Sessions that arrive while it is down go elsewhere; when its
//! time is up, the next new session may try it. UDP has no connect, so a refusal is the only
//! sign of a target gone (a silent one cannot be told from a slow protocol) and there are no
//! active checks.
//!
//! Owned by the rule's session loop alone: plain counters, no locks beyond [`Health`]'s.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::{Counters, TargetCounters};

use crate::forward::balance::{self, View};
use crate::forward::health::{Change, Health};
use crate::forward::{event, Balance};
use crate::report::forward::{TargetRecord, TargetState};

/// One target and its open sessions.
#[derive(Debug)]
struct Target {
    addr: SocketAddr,
    key: String,
    health: Health,
    /// When a refusal last took it down (`None` while up).
    went_down: Option<Instant>,
    sessions: u64,
    counters: Arc<TargetCounters>,
}

/// A rule's targets, in rule order.
#[derive(Debug)]
pub(super) struct Targets {
    list: Vec<Target>,
    balance: Balance,
    turn: usize,
    rule: String,
}

impl Targets {
    /// The targets `addrs` of the rule labelled `rule`, all up, counted into `counters`.
    pub(super) fn new(
        addrs: &[SocketAddr],
        balance: Balance,
        rule: String,
        counters: &Counters,
    ) -> Targets {
        let keys: Vec<String> = addrs
            .iter()
            .map(|&addr| crate::endpoint::Endpoint::udp(addr).to_string())
            .collect();
        counters.retain_targets(&keys);
        let list = addrs
            .iter()
            .zip(keys)
            .map(|(&addr, key)| {
                let counters = counters.target(&key);
                counters.up.store(true, Ordering::Relaxed);
                Target {
                    addr,
                    key,
                    health: Health::new(1),
                    went_down: None,
                    sessions: 0,
                    counters,
                }
            })
            .collect();
        Targets {
            list,
            balance,
            turn: 0,
            rule,
        }
    }

    /// Whether a session can move elsewhere.
    pub(super) fn several(&self) -> bool {
        self.list.len() > 1
    }

    /// The target (index and address) a new session from `client` goes to.
    pub(super) fn pick(&mut self, client: IpAddr, now: Instant) -> (usize, SocketAddr) {
        let index = self.order(client, now).first().copied().unwrap_or(0);
        self.assign(index, now)
    }

    /// The target after `from` for a session of `client` that `from` refused (the first
    /// other one in balance order), if there is another.
    pub(super) fn next(
        &mut self,
        from: usize,
        client: IpAddr,
        now: Instant,
    ) -> Option<(usize, SocketAddr)> {
        let to = self.order(client, now).into_iter().find(|&i| i != from)?;
        self.released(from);
        Some(self.assign(to, now))
    }

    /// The target a session of `client`, given target `from` at `assigned`, moves to because
    /// `from` went down since (another session saw it refuse): the first that is up in balance
    /// order, if any. Each session would otherwise stay until it met a refusal of its own, and
    /// the kernel sends about one ICMP error a second (`icmp_ratelimit`): a datagram of each
    /// lost meanwhile. A session given a target that was already down (one trying whether it
    /// is back) stays.
    pub(super) fn away_from_down(
        &mut self,
        (from, assigned): (usize, Instant),
        client: IpAddr,
        now: Instant,
    ) -> Option<(usize, SocketAddr)> {
        if !self.went_down_since(from, assigned) {
            return None;
        }
        let to = self
            .order(client, now)
            .into_iter()
            .find(|&i| i != from && self.list[i].health.is_up())?;
        self.released(from);
        Some(self.assign(to, now))
    }

    /// Whether target `index`, of several, is down and went down at `assigned` or later.
    pub(super) fn went_down_since(&self, index: usize, assigned: Instant) -> bool {
        let Some(target) = self.list.get(index) else {
            return false;
        };
        let down_at = target.went_down.filter(|_| !target.health.is_up());
        self.several() && down_at.is_some_and(|at| at >= assigned)
    }

    /// A session of target `index` ended (or moved away).
    pub(super) fn released(&mut self, index: usize) {
        if let Some(target) = self.list.get_mut(index) {
            target.sessions = target.sessions.saturating_sub(1);
            target
                .counters
                .sessions_active
                .fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Counts `refusals` of target `index`.
    pub(super) fn count_refusals(&self, index: usize, refusals: u64) {
        if let Some(target) = self.list.get(index) {
            target
                .counters
                .refused
                .fetch_add(refusals, Ordering::Relaxed);
        }
    }

    /// Target `index` refused `refusals` datagrams (ICMP port unreachable): counted; with
    /// several targets, down for a while. The record, when it was up.
    pub(super) fn refused(
        &mut self,
        index: usize,
        refusals: u64,
        now: Instant,
    ) -> Option<TargetRecord> {
        self.count_refusals(index, refusals);
        if !self.several() {
            return None;
        }
        let target = self.list.get_mut(index)?;
        let reason = "refused: ICMP port unreachable".to_string();
        let change = target.health.refused(now, reason);
        if change.is_some() {
            target.went_down = Some(now);
        }
        self.record(&self.list[index], change)
    }

    /// Target `index` answered a session. The record, when it was down.
    pub(super) fn answered(&self, index: usize) -> Option<TargetRecord> {
        let target = self.list.get(index)?;
        if target.health.is_up() {
            return None;
        }
        self.record(target, target.health.answered(false, "answered"))
    }

    fn assign(&mut self, index: usize, now: Instant) -> (usize, SocketAddr) {
        let target = &mut self.list[index];
        target.health.attempting(now);
        target.sessions += 1;
        target
            .counters
            .sessions_total
            .fetch_add(1, Ordering::Relaxed);
        target
            .counters
            .sessions_active
            .fetch_add(1, Ordering::Relaxed);
        (index, target.addr)
    }

    fn order(&mut self, client: IpAddr, now: Instant) -> Vec<usize> {
        if self.list.len() == 1 {
            return vec![0];
        }
        let views: Vec<View<'_>> = self
            .list
            .iter()
            .map(|t| View {
                key: &t.key,
                eligible: t.health.eligible(now, false),
                active: t.sessions,
            })
            .collect();
        let turn = self.turn;
        self.turn = self.turn.wrapping_add(1);
        balance::order(self.balance, &views, turn, Some(client))
    }

    fn record(&self, target: &Target, change: Option<Change>) -> Option<TargetRecord> {
        let change = change?;
        target.counters.up.store(change.up, Ordering::Relaxed);
        Some(TargetRecord {
            time: event::now(),
            rule: self.rule.clone(),
            target: target.key.clone(),
            state: match change.up {
                true => TargetState::Up,
                false => TargetState::Down,
            },
            reason: change.reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn three(balance: Balance) -> Targets {
        let addrs: Vec<SocketAddr> = ["127.0.0.1:1", "127.0.0.1:2", "[::1]:3"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        Targets::new(
            &addrs,
            balance,
            "udp:127.0.0.1:53".into(),
            &Counters::default(),
        )
    }

    const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn round_robin_takes_turns_and_skips_a_refusing_target_until_its_time_is_up() {
        let mut targets = three(Balance::RoundRobin);
        let now = Instant::now();
        let picks: Vec<usize> = (0..3).map(|_| targets.pick(CLIENT, now).0).collect();
        assert_eq!(picks, [0, 1, 2]);
        let down = targets.refused(1, 1, now).expect("a record: it was up");
        assert!(!targets.list[1].counters.up.load(Ordering::Relaxed));
        assert_eq!(down.state, TargetState::Down);
        assert_eq!(down.target, "udp:127.0.0.1:2");
        assert!(
            targets.refused(1, 1, now).is_none(),
            "already down (held 2 s now)"
        );
        let picks: Vec<usize> = (0..4).map(|_| targets.pick(CLIENT, now).0).collect();
        assert!(!picks.contains(&1), "{picks:?}");
        let later = now + Duration::from_millis(2100);
        let picks: Vec<usize> = (0..3).map(|_| targets.pick(CLIENT, later).0).collect();
        assert_eq!(picks.iter().filter(|&&i| i == 1).count(), 1, "{picks:?}");
        let up = targets.answered(1).expect("a record: it was down");
        assert_eq!(up.state, TargetState::Up);
        assert!(targets.answered(1).is_none());
    }

    #[test]
    fn a_refused_session_moves_to_another_target_and_its_count_with_it() {
        let mut targets = three(Balance::LeastConn);
        let now = Instant::now();
        let (from, _) = targets.pick(CLIENT, now);
        targets.refused(from, 1, now);
        let (to, addr) = targets.next(from, CLIENT, now).expect("another target");
        assert_ne!(to, from);
        assert_eq!(addr, targets.list[to].addr);
        assert_eq!(targets.list[from].sessions, 0);
        assert_eq!(targets.list[to].sessions, 1);
        targets.released(to);
        assert_eq!(targets.list[to].sessions, 0);
    }

    #[test]
    fn sessions_of_a_target_that_went_down_move_but_not_those_trying_it_since() {
        let mut targets = three(Balance::RoundRobin);
        let t0 = Instant::now();
        let (from, _) = targets.pick(CLIENT, t0);
        assert!(
            targets.away_from_down((from, t0), CLIENT, t0).is_none(),
            "it is up"
        );
        let t1 = t0 + Duration::from_millis(10);
        targets.refused(from, 1, t1);
        let (to, _) = targets
            .away_from_down((from, t0), CLIENT, t1)
            .expect("given it before it went down: moves");
        assert_ne!(to, from);
        assert!(targets.list[to].health.is_up());
        assert_eq!(targets.list[from].sessions, 0);
        // Given it after it went down (its hold over, trying it): stays.
        let t2 = t1 + Duration::from_secs(2);
        assert!(targets.away_from_down((from, t2), CLIENT, t2).is_none());
        // Every other target down too: nowhere to go.
        for other in (0..3).filter(|&i| i != from) {
            targets.refused(other, 1, t1);
        }
        assert!(targets.away_from_down((from, t0), CLIENT, t1).is_none());
    }

    #[test]
    fn hash_keeps_a_client_on_its_target_and_one_target_has_nowhere_to_go() {
        let mut targets = three(Balance::Hash);
        let now = Instant::now();
        let first = targets.pick(CLIENT, now).0;
        assert!((0..5).all(|_| targets.pick(CLIENT, now).0 == first));
        let addrs = ["127.0.0.1:1".parse().unwrap()];
        let mut one = Targets::new(
            &addrs,
            Balance::RoundRobin,
            "r".into(),
            &Counters::default(),
        );
        let (index, _) = one.pick(CLIENT, now);
        assert!(!one.several());
        assert!(one.next(index, CLIENT, now).is_none());
    }
}
