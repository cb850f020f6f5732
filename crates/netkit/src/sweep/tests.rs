//! Sweeps of loopback addresses with the TCP prober (every 127.x address and ::1 answer, by a
//! connect or a refusal). Silent hosts need namespaces: see the CLI integration tests.

use std::time::Duration;

use super::*;
use crate::error::ErrorClass;
use crate::target::{Family, TargetList};

fn targets(words: &[&str]) -> Targets {
    let list = TargetList::parse(words, true).expect("targets");
    list.resolve(Family::Any).expect("resolve")
}

fn config(port: u16, timeout: Duration) -> Config {
    Config {
        method: Method::Tcp(port),
        timeout,
        retries: 1,
        rate: DEFAULT_RATE,
        every: None,
        rounds: None,
    }
}

async fn listener() -> (tokio::net::TcpListener, u16) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    (listener, port)
}

/// Runs `sweep` to its end (bounded), collecting its events.
async fn collect(sweep: &mut Sweep) -> (SummaryRecord, Vec<Event>) {
    let mut events = Vec::new();
    let mut sink = |event: Event| {
        events.push(event);
        Ok(())
    };
    let run = tokio::time::timeout(Duration::from_secs(60), sweep.run(&mut sink));
    let summary = run.await.expect("bounded").expect("sweep");
    (summary, events)
}

fn hosts(events: &[Event]) -> Vec<&HostRecord> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Host(host) => Some(host),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn every_loopback_target_answers_and_the_round_ends_without_waiting() {
    let (_listener, port) = listener().await;
    let list = targets(&["127.0.0.1-40", "::1"]);
    // An hour of timeout: the round can only end in time by ending when all have answered.
    let mut sweep = Sweep::new(list, config(port, Duration::from_secs(3600))).expect("new");
    let (summary, events) = collect(&mut sweep).await;
    assert_eq!((summary.alive, summary.dead, summary.round), (41, 0, 1));
    let hosts = hosts(&events);
    assert_eq!(hosts.len(), 41);
    assert!(hosts.iter().all(|h| h.alive && h.rtt_ms.is_some()));
    let mut addrs: Vec<String> = hosts.iter().map(|h| h.addr.to_string()).collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 41, "each target once: {addrs:?}");
    assert!(addrs.contains(&"::1".to_string()));
}

#[tokio::test]
async fn periodic_rounds_report_no_changes_when_nothing_changes() {
    let (_listener, port) = listener().await;
    let mut cfg = config(port, Duration::from_secs(3600));
    cfg.every = Some(Duration::from_millis(20));
    cfg.rounds = Some(3);
    let mut sweep = Sweep::new(targets(&["127.0.0.1-4"]), cfg).expect("new");
    let metrics = sweep.metrics();
    let (summary, events) = collect(&mut sweep).await;
    assert_eq!(summary.round, 3);
    assert_eq!(
        hosts(&events).len(),
        12,
        "one host record per target per round"
    );
    assert!(!events.iter().any(|e| matches!(e, Event::Change(_))));
    let text = metrics.render();
    assert!(text.contains("netkit_sweep_rounds_total 3\n"), "{text}");
    assert!(
        text.contains("netkit_sweep_up{addr=\"127.0.0.4\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("netkit_sweep_rtt_seconds{addr=\"127.0.0.2\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn a_closed_sink_ends_the_sweep_with_its_error() {
    let (_listener, port) = listener().await;
    let mut sweep = Sweep::new(
        targets(&["127.0.0.1-9"]),
        config(port, Duration::from_secs(5)),
    )
    .expect("new");
    let mut sink = |_: Event| Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
    let run = tokio::time::timeout(Duration::from_secs(60), sweep.run(&mut sink));
    let err = run.await.expect("bounded").expect_err("broken pipe");
    assert!(err.to_string().contains("write the results"), "{err}");
}

#[test]
fn refuses_more_targets_than_it_can_track() {
    let err = Sweep::new(
        targets(&["2001:db8::/64"]),
        config(1, Duration::from_secs(1)),
    )
    .expect_err("too many");
    assert_eq!(err.class(), ErrorClass::Input);
    assert!(err.to_string().contains("at most 2^28"), "{err}");
}
