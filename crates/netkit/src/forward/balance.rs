//! Which of a rule's targets a connection tries first, second, ... ([`order`]): the targets
//! that may take connections (up, or down but due for a retry) come first, in the order of
//! the [`Balance`] policy, then the others in the same policy's order as a last resort, so a
//! client is failed over to the next target when a connect fails, and is only refused when
//! every target failed.
//!
//! `hash` is rendezvous (highest random weight) hashing of the client's address: each target
//! scores `hash(client address, target)`, the best score wins. A target going down moves only
//! its own clients (each to its second-best target), and when it comes back exactly those
//! clients move back; nothing else is remapped. A hash ring (consistent hashing) gives the
//! same property only on average and needs virtual nodes to spread load evenly over a few
//! targets; rendezvous needs no state at all, and scoring every target is nothing next to a
//! connect when a rule has a handful of them. The target's key is its endpoint text, so
//! reordering targets in the file on reload moves nobody.

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::IpAddr;
use std::str::FromStr;

use crate::error::ParseError;

/// How a connection picks one of several targets (`--balance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Balance {
    /// Each target in turn (HAProxy's `roundrobin`).
    #[default]
    RoundRobin,
    /// The target with the fewest open connections, in turn among equals (`leastconn`).
    LeastConn,
    /// The same client address always to the same target while it is up (rendezvous hashing
    /// of the address, without the port; Unix clients go round-robin).
    Hash,
}

impl FromStr for Balance {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, ParseError> {
        match text {
            "round-robin" => Ok(Balance::RoundRobin),
            "least-conn" => Ok(Balance::LeastConn),
            "hash" => Ok(Balance::Hash),
            _ => Err(ParseError::new(
                text,
                "unknown balance, expected round-robin, least-conn or hash",
            )),
        }
    }
}

impl fmt::Display for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Balance::RoundRobin => "round-robin",
            Balance::LeastConn => "least-conn",
            Balance::Hash => "hash",
        })
    }
}

/// What the balancer knows of one target.
#[derive(Debug, Clone, Copy)]
pub(super) struct View<'a> {
    /// Its endpoint text (the key `hash` scores).
    pub key: &'a str,
    /// Whether it may take connections now.
    pub eligible: bool,
    /// Its open connections.
    pub active: u64,
}

/// The order in which a connection tries `targets` (indexes into it): eligible targets first,
/// then the others; `turn` is this connection's number (round-robin's rotation), `client` its
/// address (`hash`).
pub(super) fn order(
    balance: Balance,
    targets: &[View<'_>],
    turn: usize,
    client: Option<IpAddr>,
) -> Vec<usize> {
    let (up, down): (Vec<usize>, Vec<usize>) =
        (0..targets.len()).partition(|&i| targets[i].eligible);
    let rank = |set: Vec<usize>| match (balance, client) {
        (Balance::RoundRobin, _) | (Balance::Hash, None) => rotate(set, turn),
        (Balance::LeastConn, _) => fewest_first(set, targets, turn),
        (Balance::Hash, Some(ip)) => {
            let mut set = set;
            set.sort_by_key(|&i| std::cmp::Reverse(score(ip, targets[i].key)));
            set
        }
    };
    let mut all = rank(up);
    all.extend(rank(down));
    all
}

/// `set` by open connections, fewest first; targets with as many connections as each other
/// take turns.
fn fewest_first(mut set: Vec<usize>, targets: &[View<'_>], turn: usize) -> Vec<usize> {
    set.sort_by_key(|&i| targets[i].active);
    let mut start = 0;
    while start < set.len() {
        let active = targets[set[start]].active;
        let len = set[start..]
            .iter()
            .take_while(|&&i| targets[i].active == active)
            .count();
        set[start..start + len].rotate_left(turn % len);
        start += len;
    }
    set
}

/// `set` rotated left by `turn` places.
fn rotate(mut set: Vec<usize>, turn: usize) -> Vec<usize> {
    if !set.is_empty() {
        let by = turn % set.len();
        set.rotate_left(by);
    }
    set
}

/// The rendezvous score of `target` for `client` (an IPv4-mapped address scores as IPv4).
fn score(client: IpAddr, target: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    client.to_canonical().hash(&mut hasher);
    target.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn views<'a>(keys: &'a [&'a str], eligible: &[bool]) -> Vec<View<'a>> {
        keys.iter()
            .zip(eligible)
            .map(|(key, &eligible)| View {
                key,
                eligible,
                active: 0,
            })
            .collect()
    }

    #[test]
    fn round_robin_takes_each_eligible_target_in_turn() {
        let keys = ["a", "b", "c"];
        let all = views(&keys, &[true, true, true]);
        let firsts: Vec<usize> = (0..6)
            .map(|turn| order(Balance::RoundRobin, &all, turn, None)[0])
            .collect();
        assert_eq!(firsts, [0, 1, 2, 0, 1, 2]);
        // b is down: a and c share the connections evenly, b comes last in every order.
        let one_down = views(&keys, &[true, false, true]);
        let orders: Vec<Vec<usize>> = (0..4)
            .map(|turn| order(Balance::RoundRobin, &one_down, turn, None))
            .collect();
        assert_eq!(orders, [[0, 2, 1], [2, 0, 1], [0, 2, 1], [2, 0, 1]]);
    }

    #[test]
    fn least_conn_prefers_the_least_busy_then_turns() {
        let keys = ["a", "b", "c"];
        let mut all = views(&keys, &[true, true, true]);
        all[0].active = 5;
        all[1].active = 1;
        all[2].active = 1;
        let firsts: Vec<usize> = (0..4)
            .map(|turn| order(Balance::LeastConn, &all, turn, None)[0])
            .collect();
        assert_eq!(firsts, [1, 2, 1, 2]);
        assert_eq!(order(Balance::LeastConn, &all, 0, None)[2], 0);
    }

    fn clients() -> impl Iterator<Item = IpAddr> {
        (0..2000u32).map(|n| IpAddr::from([198, 18, (n >> 8) as u8, n as u8]))
    }

    fn first(keys: &[&str], eligible: &[bool], client: IpAddr) -> usize {
        order(Balance::Hash, &views(keys, eligible), 7, Some(client))[0]
    }

    #[test]
    fn hash_moves_only_the_clients_of_a_target_that_goes_down_and_back() {
        let keys = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"];
        let before: Vec<usize> = clients().map(|c| first(&keys, &[true; 3], c)).collect();
        let share = |t| before.iter().filter(|&&f| f == t).count();
        for t in 0..3 {
            assert!((500..=830).contains(&share(t)), "target {t}: {}", share(t));
        }
        let down: Vec<usize> = clients()
            .map(|c| first(&keys, &[true, false, true], c))
            .collect();
        for (was, now) in before.iter().zip(&down) {
            match was {
                1 => assert_ne!(*now, 1),
                other => assert_eq!(now, other, "a client of an up target moved"),
            }
        }
        let back: Vec<usize> = clients().map(|c| first(&keys, &[true; 3], c)).collect();
        assert_eq!(back, before);
    }

    #[test]
    fn hash_ignores_target_order_and_treats_mapped_addresses_as_ipv4() {
        let keys = ["a:1", "b:1", "c:1"];
        let reordered = ["c:1", "a:1", "b:1"];
        for client in clients().take(200) {
            let one = keys[first(&keys, &[true; 3], client)];
            let two = reordered[first(&reordered, &[true; 3], client)];
            assert_eq!(one, two);
        }
        let v4: IpAddr = "198.18.0.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:198.18.0.7".parse().unwrap();
        assert_eq!(
            first(&keys, &[true; 3], v4),
            first(&keys, &[true; 3], mapped)
        );
    }

    #[test]
    fn balance_names() {
        for name in ["round-robin", "least-conn", "hash"] {
            assert_eq!(name.parse::<Balance>().unwrap().to_string(), name);
        }
        let err = "roundrobin".parse::<Balance>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "roundrobin: unknown balance, expected round-robin, least-conn or hash"
        );
    }
}
