//! Tests of the Happy Eyeballs memory's order and bounds, on a clock of their own.

use super::*;

fn addrs(list: &[&str]) -> Vec<SocketAddr> {
    list.iter().map(|a| a.parse().unwrap()).collect()
}

const V6: &str = "[2001:db8::1]:80";
const V4: &str = "198.18.0.1:80";
const V6B: &str = "[2001:db8::2]:80";

fn verdict(addr: &str, verdict: Verdict) -> (SocketAddr, Verdict) {
    (addr.parse().unwrap(), verdict)
}

#[test]
fn nothing_remembered_keeps_the_order() {
    let memory = Memory::new();
    let mut order = addrs(&[V6, V4, V6B]);
    assert!(!memory.arrange(&mut order, Instant::now()));
    assert_eq!(order, addrs(&[V6, V4, V6B]));
}

#[test]
fn the_last_winner_goes_first_and_the_silent_one_last() {
    let now = Instant::now();
    let mut memory = Memory::new();
    memory.record(
        &[verdict(V6, Verdict::Failed), verdict(V4, Verdict::Answered)],
        now,
    );
    let mut order = addrs(&[V6, V4, V6B]);
    assert!(memory.arrange(&mut order, now + Duration::from_secs(1)));
    assert_eq!(order, addrs(&[V4, V6B, V6]));
}

#[test]
fn of_two_winners_the_later_goes_first() {
    let now = Instant::now();
    let mut memory = Memory::new();
    memory.record(&[verdict(V6, Verdict::Answered)], now);
    memory.record(
        &[verdict(V4, Verdict::Answered)],
        now + Duration::from_secs(1),
    );
    let mut order = addrs(&[V6, V4]);
    memory.arrange(&mut order, now + Duration::from_secs(2));
    assert_eq!(order, addrs(&[V4, V6]));
}

#[test]
fn a_winner_that_failed_since_goes_last() {
    let now = Instant::now();
    let mut memory = Memory::new();
    memory.record(&[verdict(V4, Verdict::Answered)], now);
    memory.record(
        &[verdict(V4, Verdict::Failed)],
        now + Duration::from_secs(1),
    );
    let mut order = addrs(&[V4, V6]);
    assert!(!memory.arrange(&mut order, now + Duration::from_secs(2)));
    assert_eq!(order, addrs(&[V6, V4]));
}

#[test]
fn every_address_remembered_dead_keeps_the_plain_order() {
    let now = Instant::now();
    let mut memory = Memory::new();
    memory.record(
        &[verdict(V6, Verdict::Failed), verdict(V4, Verdict::Failed)],
        now,
    );
    let mut order = addrs(&[V6, V4]);
    memory.arrange(&mut order, now);
    assert_eq!(order, addrs(&[V6, V4]));
}

#[test]
fn verdicts_expire() {
    let now = Instant::now();
    let mut memory = Memory::new();
    memory.record(
        &[verdict(V6, Verdict::Failed), verdict(V4, Verdict::Answered)],
        now,
    );
    let mut order = addrs(&[V6, V4]);
    // Half-way: still used, but no longer fresh enough to skip writing a new answer down.
    assert!(!memory.arrange(&mut order, now + REMEMBERED_FOR / 2));
    assert_eq!(order, addrs(&[V4, V6]));
    let mut order = addrs(&[V6, V4]);
    memory.arrange(&mut order, now + REMEMBERED_FOR);
    assert_eq!(order, addrs(&[V6, V4]));
}

#[test]
fn the_memory_is_bounded_and_forgets_the_oldest_first() {
    let now = Instant::now();
    let mut memory = Memory::new();
    let port = |p: usize| SocketAddr::from(([198, 18, 0, 1], u16::try_from(p).unwrap()));
    for p in 1..=CAPACITY + 10 {
        let at = now + Duration::from_millis(u64::try_from(p).unwrap());
        memory.record(&[(port(p), Verdict::Failed)], at);
    }
    assert_eq!(memory.len(), CAPACITY);
    let mut order = vec![port(1), port(CAPACITY + 10), port(CAPACITY + 11)];
    memory.arrange(&mut order, now + Duration::from_secs(1));
    // The first verdicts were forgotten: port 1 stands with the unknown one, before the dead.
    assert_eq!(
        order,
        vec![port(1), port(CAPACITY + 11), port(CAPACITY + 10)]
    );
}
