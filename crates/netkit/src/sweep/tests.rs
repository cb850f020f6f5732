//! Sweeps of loopback addresses with the TCP prober (every 127.x address and ::1 answer, by a
//! connect or a refusal). Silent hosts need namespaces: see the CLI integration tests.

use std::time::Duration;

use std::net::IpAddr;

use super::*;
use crate::error::ErrorClass;
use crate::report::sweep::{HostRecord, SummaryRecord};
use crate::target::{Family, TargetList};

fn targets(words: &[&str]) -> Targets {
    let list = TargetList::parse(words, true).expect("targets");
    list.resolve(Family::Any).expect("resolve")
}

fn config(port: u16, timeout: Duration) -> Config {
    Config {
        methods: Methods::one(Method::Tcp(port)),
        timeout,
        retries: 1,
        rate: DEFAULT_RATE,
        every: None,
        rounds: None,
        interface: None,
        patience: super::rtt::INITIAL_TIMEOUT,
        max_in_flight: 64,
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

// The policy only: unit tests never change the limits of the test process.
#[test]
fn tcp_connects_in_flight_follow_the_open_files_limit() {
    assert_eq!(in_flight(1024), 960);
    assert_eq!(in_flight(1_048_576), MAX_IN_FLIGHT);
    assert_eq!(in_flight(10), 1);
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

/// Round timing and bookkeeping with scripted answers on tokio's paused clock: exact, and
/// independent of the machine's load.
mod scripted {
    use super::*;
    use crate::sweep::reply::Tag;
    use crate::sweep::scripted::{self, Log};
    use tokio::time::Instant;

    fn config(timeout: Duration, retries: u32) -> Config {
        Config {
            methods: Methods::one(Method::Icmp),
            timeout,
            retries,
            rate: 10_000,
            every: None,
            rounds: None,
            interface: None,
            patience: super::rtt::INITIAL_TIMEOUT,
            max_in_flight: 64,
        }
    }

    /// Probes (control probes left out) per target index, for targets 0..n.
    fn probes_per_index(log: &Log, n: u64) -> Vec<usize> {
        let log = log.lock().expect("log");
        (0..n)
            .map(|index| {
                log.iter()
                    .filter(|(tag, i)| *i == index && tag.attempt() != Tag::CONTROL)
                    .count()
            })
            .collect()
    }

    fn within(elapsed: Duration, low_ms: u64, high_ms: u64) -> bool {
        (Duration::from_millis(low_ms)..=Duration::from_millis(high_ms)).contains(&elapsed)
    }

    #[tokio::test(start_paused = true)]
    async fn silent_targets_cost_one_wait_in_all_not_one_each() {
        let cfg = config(Duration::from_secs(1), 10);
        let (mut sweep, log) = scripted::sweep(targets(&["198.18.0.0/24"]), cfg, |_, _, _| vec![]);
        let start = Instant::now();
        let (summary, _) = collect(&mut sweep).await;
        let elapsed = start.elapsed();
        assert_eq!((summary.alive, summary.dead), (0, 256));
        // Nothing measured: a loss of 5% is assumed, so 4 probes make a miss unlikely (1e-5).
        assert_eq!(probes_per_index(&log, 256), vec![4; 256]);
        assert_eq!(summary.probes, 4 * 256);
        // No round trip seen: gaps of 500, 750 and 1000 ms (capped), then one last wait of
        // 1 s, after the 26 ms it takes to send the first probes. Not 256 timeouts.
        assert!(within(elapsed, 3270, 3330), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn retries_go_only_to_silent_targets_and_the_round_ends_with_the_last_answer() {
        let cfg = config(Duration::from_secs(3600), 3);
        let script: scripted::Script = |tag, index, sent| {
            let first = if index % 2 == 0 { 1 } else { 2 };
            match sent == first {
                true => vec![(tag, Duration::from_millis(10))],
                false => vec![],
            }
        };
        let (mut sweep, log) = scripted::sweep(targets(&["198.18.0.1-10"]), cfg, script);
        let start = Instant::now();
        let (summary, events) = collect(&mut sweep).await;
        assert_eq!((summary.alive, summary.dead), (10, 0));
        assert_eq!(probes_per_index(&log, 10), [1, 2, 1, 2, 1, 2, 1, 2, 1, 2]);
        assert_eq!(hosts(&events).len(), 10);
        // The odd ones are probed again one timeout (50 ms, from the 10 ms round trips) later.
        assert!(within(start.elapsed(), 55, 70), "{:?}", start.elapsed());
        assert!((summary.timeout_ms - 50.0).abs() < 1e-9, "{summary:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn duplicate_answers_count_once_and_other_rounds_answers_not_at_all() {
        let cfg = config(Duration::from_secs(1), 3);
        let script: scripted::Script = |tag, index, _| match index {
            0 => vec![
                (tag, Duration::from_millis(1)),
                (tag, Duration::from_millis(2)),
            ],
            1 => vec![(Tag::new(7, tag.attempt()), Duration::from_millis(1))],
            _ => vec![(tag, Duration::from_millis(3))],
        };
        let (mut sweep, _) = scripted::sweep(targets(&["198.18.0.1-3"]), cfg, script);
        let (summary, events) = collect(&mut sweep).await;
        assert_eq!((summary.alive, summary.dead), (2, 1));
        let seen: Vec<(String, bool)> = hosts(&events)
            .iter()
            .map(|h| (h.addr.to_string(), h.alive))
            .collect();
        let expected = [
            ("198.18.0.1", true),
            ("198.18.0.3", true),
            ("198.18.0.2", false),
        ];
        let expected: Vec<(String, bool)> = expected
            .iter()
            .map(|(a, up)| (a.to_string(), *up))
            .collect();
        assert_eq!(seen, expected);
    }

    /// Whether the probe tagged `tag` to `index` is lost, deterministically: about `pct` of
    /// probes.
    fn lost(tag: Tag, index: u64, sent: u32, pct: u64) -> bool {
        let mut x = index.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(sent) << 32;
        x ^= u64::from(tag.attempt()) << 48;
        x ^= x >> 29;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 32;
        x % 100 < pct
    }

    #[tokio::test(start_paused = true)]
    async fn measured_loss_buys_more_re_probes_and_every_live_host_is_found() {
        let cfg = config(Duration::from_secs(1), 10);
        // 128 live hosts (the first half) behind 30% round-trip loss, 128 silent.
        let script: scripted::Script = |tag, index, sent| match index < 128 {
            true if !lost(tag, index, sent, 30) => vec![(tag, Duration::from_millis(30))],
            _ => vec![],
        };
        let (mut sweep, log) = scripted::sweep(targets(&["198.18.0.0/24"]), cfg, script);
        let (summary, _) = collect(&mut sweep).await;
        assert_eq!((summary.alive, summary.dead), (128, 128));
        let loss = summary.loss_pct.expect("control probes were sent");
        assert!((20.0..40.0).contains(&loss), "{summary:?}");
        // About 0.3^8 < 1e-4: eight probes or more to each silent target, where a clean link
        // needs far fewer (the test above).
        let silent = &probes_per_index(&log, 256)[128..];
        assert!(silent.iter().all(|n| *n >= 8), "{silent:?}");
        assert!(!summary.throttled);
    }

    /// Whether the round trip of the `sent`-th probe to `index` is lost on a link losing
    /// `pct` percent each way, drawn from the seed [`LINK_SEED`] holds (per thread, so per
    /// test): the lab's relay, which decides each direction of each packet apart.
    fn lost_each_way(index: u64, sent: u32, pct: u64) -> bool {
        let seed = LINK_SEED.with(std::cell::Cell::get);
        let draw = |way: u64| {
            let mut x = seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            x ^= (u64::from(sent) << 32) ^ (way << 62);
            for _ in 0..2 {
                x ^= x >> 31;
                x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
                x ^= x >> 29;
                x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
            }
            x ^= x >> 32;
            x % 100 < pct
        };
        draw(0) || draw(1)
    }

    thread_local! {
        /// The seed of [`lost_each_way`]'s draws.
        static LINK_SEED: std::cell::Cell<u64> = const { std::cell::Cell::new(1) };
    }

    /// A sweep of `range`, every address live behind a link losing `pct` percent each way
    /// (the seed set beforehand), 5 ms each way: its summary.
    async fn sweep_behind_random_loss(range: &str, pct: u64) -> SummaryRecord {
        let cfg = config(Duration::from_secs(1), 10);
        let script: scripted::Script = match pct {
            10 => |tag, index, sent| match lost_each_way(index, sent, 10) {
                false => vec![(tag, Duration::from_millis(10))],
                true => vec![],
            },
            30 => |tag, index, sent| match lost_each_way(index, sent, 30) {
                false => vec![(tag, Duration::from_millis(10))],
                true => vec![],
            },
            _ => |tag, index, sent| match lost_each_way(index, sent, 50) {
                false => vec![(tag, Duration::from_millis(10))],
                true => vec![],
            },
        };
        let (mut sweep, _) = scripted::sweep(targets(&[range]), cfg, script);
        collect(&mut sweep).await.0
    }

    /// The loss a round reports is the link's on a small range too. On a /26 losing 10% each
    /// way (19% of the round trips) it read 0.0 or null in 20 seeds of 20: it counted only the
    /// control probes, a handful on 64 hosts, and those in flight at the round's end were
    /// never judged. The probes each host needed before it answered are evidence as well.
    #[tokio::test(start_paused = true)]
    async fn a_small_range_measures_its_loss_too() {
        for (range, pct, truth) in [("198.18.1.0/26", 10, 19.0), ("198.18.1.0/26", 30, 51.0)] {
            let mut read = Vec::new();
            for seed in 1..=20 {
                LINK_SEED.with(|s| s.set(seed));
                let summary = sweep_behind_random_loss(range, pct).await;
                assert!(summary.loss_probes >= 64, "{summary:?}");
                read.push(summary.loss_pct.expect("hosts were found"));
            }
            let mean = read.iter().sum::<f64>() / read.len() as f64;
            assert!((mean - truth).abs() < 5.0, "{pct}% each way: {read:?}");
            assert!(read.iter().all(|l| (l - truth).abs() < 20.0), "{read:?}");
        }
    }

    /// Random loss is no throttling, whatever its rate. On a /26 behind 50% loss each way
    /// (three round trips in four lost) the sweep said `throttled` for 7 seeds in 20 (the lab:
    /// 9 runs in 25; over 300 seeds, 93 on the /26 and 16 on the /24 at 50%, 6 on the /24 at
    /// 30%): the first window of controls answered a quarter, under half of the
    /// answer ratio assumed before any was judged (all), the sweep slowed down, and when the
    /// round ended before the next window filled, that collapse was reported as it stood.
    #[tokio::test(start_paused = true)]
    async fn random_loss_is_not_taken_for_throttling() {
        let mut wrong = Vec::new();
        for (range, n) in [("198.18.1.0/26", 64), ("198.18.1.0/24", 256)] {
            for pct in [10, 30, 50] {
                for seed in 1..=20 {
                    LINK_SEED.with(|s| s.set(seed));
                    let summary = sweep_behind_random_loss(range, pct).await;
                    if summary.throttled {
                        wrong.push((range, pct, seed, summary.rate, summary.loss_pct));
                    }
                    // The answers: every host found, but at 50% loss each way a few (fewer
                    // than one in twenty) lose all 11 probes' round trips.
                    let missed = n - summary.alive;
                    assert!(missed * 20 < n, "{range} {pct}% seed {seed}: {summary:?}");
                    assert!(pct == 50 || missed == 0, "{range} {pct}%: {summary:?}");
                }
            }
        }
        // The tests of a cure are statistical: over 300 seeds each, 5 sweeps in 1800 still
        // said so (all at 50% each way; 115 before), one of them here (a /24, seed 11).
        assert!(wrong.len() <= 1, "{} throttled: {wrong:?}", wrong.len());
    }

    /// Whether a policer passing `per_sec` echo requests a second (burst a tenth of that, as
    /// the lab's `hashlimit`) lets the one arriving now through; its bucket is per thread, so
    /// per test (each runs on its own current-thread runtime).
    fn policed(per_sec: f64) -> bool {
        use std::cell::Cell;
        thread_local! {
            static BUCKET: Cell<Option<(f64, Instant)>> = const { Cell::new(None) };
        }
        let burst = (per_sec / 10.0).max(5.0);
        let now = Instant::now();
        BUCKET.with(|bucket| {
            let (tokens, last) = bucket.get().unwrap_or((burst, now));
            let tokens = (tokens + (now - last).as_secs_f64() * per_sec).min(burst);
            let pass = tokens >= 1.0;
            bucket.set(Some((tokens - f64::from(u8::from(pass)), now)));
            pass
        })
    }

    /// A sweep of `range`, every address live behind a far side policing echo requests to
    /// `per_sec` (50, 200 or 1000) a second, 5 ms each way: its summary.
    async fn sweep_behind_policer(range: &str, per_sec: u32) -> SummaryRecord {
        let cfg = config(Duration::from_secs(1), 10);
        let script: scripted::Script = match per_sec {
            50 => |tag, _, _| match policed(50.0) {
                true => vec![(tag, Duration::from_millis(10))],
                false => vec![],
            },
            200 => |tag, _, _| match policed(200.0) {
                true => vec![(tag, Duration::from_millis(10))],
                false => vec![],
            },
            _ => |tag, _, _| match policed(1000.0) {
                true => vec![(tag, Duration::from_millis(10))],
                false => vec![],
            },
        };
        let (mut sweep, _) = scripted::sweep(targets(&[range]), cfg, script);
        collect(&mut sweep).await.0
    }

    /// What the test above asks of random loss, a policer still shows: the answers rise
    /// when the sweep slows down.
    #[tokio::test(start_paused = true)]
    async fn a_policer_is_still_found_on_a_small_range() {
        for (range, per_sec, n) in [
            ("198.18.1.0/26", 50, 64),
            ("198.18.1.0/24", 50, 256),
            ("198.18.1.0/24", 200, 256),
            ("198.18.0.0/22", 1000, 1024),
        ] {
            let summary = sweep_behind_policer(range, per_sec).await;
            assert!(summary.throttled, "{range} {per_sec}/s: {summary:?}");
            assert_eq!(summary.alive, n, "{range} {per_sec}/s: {summary:?}");
            // The policer's bucket fills up again before the next range.
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }

    /// How many milliseconds (under `span`) the `sent`-th probe to `index` is delayed beyond
    /// the least, drawn from the seed [`LINK_SEED`] holds.
    fn jitter_ms(index: u64, sent: u32, span: u64) -> u64 {
        let seed = LINK_SEED.with(std::cell::Cell::get);
        let mut x = seed.wrapping_mul(0x2545_f491_4f6c_dd1d);
        x ^= index.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (u64::from(sent) << 40);
        x ^= x >> 31;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 29;
        x % span
    }

    /// As [`policed`], but the bucket starts with as many tokens (0 to 5) as the seed
    /// [`LINK_SEED`] holds says, and starts anew when the seed changes.
    fn policed_from_seed(per_sec: f64) -> bool {
        let burst = (per_sec / 10.0).max(5.0);
        policed_bucket(per_sec, burst, |seed| (seed % 6) as f64)
    }

    /// Whether the far side passes a probe sent now: a token bucket of `per_sec`, holding at
    /// most `burst`, that starts with `start(seed)` tokens for the seed [`LINK_SEED`] holds and
    /// starts anew when the seed changes.
    fn policed_bucket(per_sec: f64, burst: f64, start: impl Fn(u64) -> f64) -> bool {
        use std::cell::Cell;
        thread_local! {
            static BUCKET: Cell<Option<(f64, Instant, u64)>> = const { Cell::new(None) };
        }
        let now = Instant::now();
        let seed = LINK_SEED.with(Cell::get);
        BUCKET.with(|bucket| {
            let kept = bucket.get().filter(|b| b.2 == seed);
            let (tokens, last, _) = kept.unwrap_or((start(seed), now, seed));
            let tokens = (tokens + (now - last).as_secs_f64() * per_sec).min(burst);
            let pass = tokens >= 1.0;
            bucket.set(Some((tokens - f64::from(u8::from(pass)), now, seed)));
            pass
        })
    }

    /// The lab's /26 behind a policer of 50/s went unreported in 9 sweeps of 50 (fping and
    /// the sweep found every host): the targets were all found before the controls sent
    /// slower filled the window that judges the slow-down, and the few there were, weighed
    /// with the 1250/s epoch's (collapsed too) against the first, by two 99% intervals that
    /// had to part, told nothing. Here 9 of these 40 phases of the policer's bucket and round
    /// trips were missed. Now a slow-down on trial at the round's end is judged on more
    /// controls, sent alone, at the slower rate.
    #[tokio::test(start_paused = true)]
    async fn a_policer_on_a_small_range_is_found_whatever_its_phase() {
        let mut missed = Vec::new();
        for seed in 1..=40 {
            LINK_SEED.with(|s| s.set(seed * 7919 + 13));
            let cfg = config(Duration::from_secs(1), 10);
            let script: scripted::Script = |tag, index, sent| match policed_from_seed(50.0) {
                true => vec![(tag, Duration::from_millis(8 + jitter_ms(index, sent, 5)))],
                false => vec![],
            };
            let (mut sweep, _) = scripted::sweep(targets(&["198.18.1.0/26"]), cfg, script);
            let summary = collect(&mut sweep).await.0;
            assert_eq!(summary.alive, 64, "seed {seed}: {summary:?}");
            if !summary.throttled {
                missed.push(seed);
            }
        }
        assert!(missed.is_empty(), "policed to 50/s, not said: {missed:?}");
    }

    /// As [`policed`] at 100/s (burst 10), but the bucket starts with 10 to 7 tokens, as the
    /// seed [`LINK_SEED`] holds says (the lab's bucket is full, or nearly, when a sweep
    /// starts), and starts anew when the seed changes.
    fn policed_100_from_seed() -> bool {
        policed_bucket(100.0, 10.0, |seed| 10.0 - (seed % 4) as f64)
    }

    /// `--retries 0` on the lab's /26, every address live behind a far side policing echo
    /// requests to 100/s (a burst of 10): with 0.1 to 1 ms round trips 42 of the 64 hosts
    /// were found in some runs, 64 in others (fping -r 0, one request every 10 ms, finds all
    /// it sweeps): the first batch was judged on a handful of control probes, most of them
    /// lost but too few to call the far side throttling, and its silent hosts were given up on
    /// their one probe; the slow-downs never came under what the policer passes. With 8 to 13
    /// ms round trips, longer than the first wave, no control went out at all and 7 to 10 were
    /// found, the policer's burst. Here, over 30 phases of the policer's bucket and round
    /// trips each, every sweep finds 62 or more.
    #[tokio::test(start_paused = true)]
    async fn without_retries_a_policer_eats_no_answers() {
        let mut wrong = Vec::new();
        for (way, seed, summary) in policed_26_sweeps(0).await {
            if summary.alive < 62 {
                wrong.push((way, seed, summary.alive, summary.probes));
            }
        }
        assert!(wrong.is_empty(), "(way, seed, found, probes): {wrong:?}");
    }

    /// As [`policed`] at 100/s (burst 10), but the bucket is empty as the sweep starts (another
    /// flow used it up), and starts anew when the seed [`LINK_SEED`] holds changes.
    fn policed_100_empty() -> bool {
        policed_bucket(100.0, 10.0, |_| 0.0)
    }

    /// `--retries 0` on the lab's /26, every address live behind a far side policing echo
    /// requests to 100/s whose bucket is empty as the sweep starts: the first wave at 10000/s
    /// (6.4 ms) got no answer through, so no host was found to send control probes to, nothing
    /// told the probes wasted, and every host was reported down on its one probe (64 of 64;
    /// fping -r 0, one request every 10 ms, finds all it sweeps). Here, 10 phases of round
    /// trips near (0.1 to 1 ms) and 10 far (8 to 13 ms): 62 found at least in each.
    #[tokio::test(start_paused = true)]
    async fn without_retries_a_policer_with_an_empty_bucket_hides_no_host() {
        let near: scripted::Script = |tag, index, sent| match policed_100_empty() {
            true => vec![(
                tag,
                Duration::from_micros(100 + jitter_ms(index, sent, 900)),
            )],
            false => vec![],
        };
        let far: scripted::Script = |tag, index, sent| match policed_100_empty() {
            true => vec![(
                tag,
                Duration::from_micros(8000 + jitter_ms(index, sent, 5000)),
            )],
            false => vec![],
        };
        let mut wrong = Vec::new();
        for (way, script) in [("near", near), ("far", far)] {
            for seed in 1..=10 {
                LINK_SEED.with(|s| s.set(seed * 7919 + 13));
                let cfg = config(Duration::from_secs(1), 0);
                let (mut sweep, _) = scripted::sweep(targets(&["198.18.1.0/26"]), cfg, script);
                let s = collect(&mut sweep).await.0;
                if s.alive < 62 {
                    wrong.push((way, seed, s.alive, s.probes));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        assert!(wrong.is_empty(), "(way, seed, found, probes): {wrong:?}");
    }

    /// `--retries 0` on a /26 where nothing answers: one probe each, and one batch (32) more
    /// at 100/s to witness that a far side throttling the first wave is not to blame.
    #[tokio::test(start_paused = true)]
    async fn without_retries_an_empty_range_costs_few_more_probes() {
        let cfg = config(Duration::from_secs(1), 0);
        let (mut sweep, log) = scripted::sweep(targets(&["198.18.1.0/26"]), cfg, |_, _, _| vec![]);
        let (summary, _) = collect(&mut sweep).await;
        assert_eq!((summary.alive, summary.dead), (0, 64), "{summary:?}");
        let extra = probes_per_index(&log, 64).iter().sum::<usize>() - 64;
        assert!(extra <= 32, "{extra} more probes");
    }

    /// `--retries 0` on the lab's /26 behind 100/s (near round trips, 12 phases of the bucket):
    /// the first batch was probed again at 10000/s 2 ms before the controls that slowed the
    /// sweep down came due (22 re-probes, 6 through), and those lost had a third probe; and
    /// once its targets were all settled the round sent 32 to 50 controls alone at the slower
    /// rate (0.3-0.5 s), the claim sure after the first few. Now no target is probed a third
    /// time, and at most 8 controls go out alone at the end.
    #[tokio::test(start_paused = true)]
    async fn without_retries_a_policer_gets_one_slow_wave_and_few_controls_alone() {
        let mut wrong = Vec::new();
        for (seed, s, log) in near_policed_sweeps_without_retries().await {
            let most = probes_per_index(&log, 64).into_iter().max().unwrap_or(0);
            let alone = log
                .lock()
                .expect("log")
                .iter()
                .rev()
                .take_while(|(tag, _)| tag.attempt() == Tag::CONTROL)
                .count();
            if s.alive < 64 || most > 2 || alone > 8 {
                wrong.push((seed, s.alive, most, alone));
            }
        }
        assert!(
            wrong.is_empty(),
            "(seed, found, most probes, controls alone): {wrong:?}"
        );
    }

    /// `--retries 0` on the lab's /26 behind 100/s (near round trips, 12 phases of the bucket):
    /// the slow wave sent one control per 4 re-probes to the end, 22-23 controls of 140-144
    /// probes (0.87-1.26 s on the simulated clock; the lab: 16 of the slow wave's 70, fping's
    /// 62 requests in 0.63 s): the early slow-down's window waited for 16 controls though 7 or
    /// 8 answered after the first 4 lost were already sure, and once it was judged the
    /// re-probes kept the denser controls. Now the cure is judged once sure, and re-probes
    /// then take one control per 16 probes: 13 controls, 131-134 probes (0.77-1.11 s), every
    /// host found and the policer reported.
    #[tokio::test(start_paused = true)]
    async fn without_retries_a_policer_found_costs_few_controls() {
        let mut wrong = Vec::new();
        for (seed, s, log) in near_policed_sweeps_without_retries().await {
            let controls = log
                .lock()
                .expect("log")
                .iter()
                .filter(|(tag, _)| tag.attempt() == Tag::CONTROL)
                .count();
            if s.alive < 64 || !s.throttled || controls > 16 {
                wrong.push((seed, s.alive, s.throttled, controls));
            }
        }
        assert!(
            wrong.is_empty(),
            "(seed, found, throttled, controls): {wrong:?}"
        );
    }

    /// `--retries 0` sweeps of the lab's /26 behind 100/s at near round trips (0.1-1 ms), one
    /// per phase of the bucket (seeds 1-12, a second apart): each one's seed, summary and
    /// probe log.
    async fn near_policed_sweeps_without_retries() -> Vec<(u64, SummaryRecord, scripted::Log)> {
        let near: scripted::Script = |tag, index, sent| match policed_100_from_seed() {
            true => vec![(
                tag,
                Duration::from_micros(100 + jitter_ms(index, sent, 900)),
            )],
            false => vec![],
        };
        let mut sweeps = Vec::new();
        for seed in 1..=12 {
            LINK_SEED.with(|s| s.set(seed * 7919 + 13));
            let cfg = config(Duration::from_secs(1), 0);
            let (mut sweep, log) = scripted::sweep(targets(&["198.18.1.0/26"]), cfg, near);
            let summary = collect(&mut sweep).await.0;
            sweeps.push((seed, summary, log));
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        sweeps
    }

    /// As [`policed`] at 1000/s (burst 100), the bucket full as the sweep starts, and
    /// starting anew when the seed [`LINK_SEED`] holds changes.
    fn policed_1000() -> bool {
        policed_bucket(1000.0, 100.0, |_| 100.0)
    }

    /// `--retries 0` on a /21, every address live behind a far side policing echo requests
    /// to 1000/s (burst 100), 40 to 80 ms round trips (the lab's `--delay 30ms --jitter
    /// 10ms`): each seed's summary, and the rates its slow-downs went to.
    async fn policed_21_sweeps_without_retries(seeds: u64) -> Vec<(u64, SummaryRecord, Vec<u64>)> {
        let script: scripted::Script = |tag, index, sent| match policed_1000() {
            true => vec![(tag, Duration::from_millis(40 + jitter_ms(index, sent, 40)))],
            false => vec![],
        };
        let mut sweeps = Vec::new();
        for seed in 1..=seeds {
            LINK_SEED.with(|s| s.set(seed * 7919 + 13));
            let cfg = config(Duration::from_secs(1), 0);
            let (mut sweep, _) = scripted::sweep(targets(&["198.18.8.0/21"]), cfg, script);
            let (summary, events) = collect(&mut sweep).await;
            let to = events.iter().filter_map(|e| match e {
                Event::Throttle(t) => Some(t.to_rate),
                _ => None,
            });
            sweeps.push((seed, summary, to.collect()));
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        sweeps
    }

    /// `--retries 0` on a /21, every address live behind a far side policing echo requests
    /// to 1000/s (burst 100) with 40-80 ms round trips: the lab (`--delay 30ms --jitter
    /// 10ms`) found 2007-2048 of 2048 (fping -r 0, at its 100/s, all in 21 s). The early
    /// slow-down went to about 1200/s, above the policer, and that epoch lost a sixth of its
    /// probes once the bucket was empty, too few of its controls to call it wasted: its
    /// silent targets were given up on their one probe (here 5 to 29 missed in 4 of 24
    /// phases); after the cure the rate crept back up a quarter (in 22 of the 24; to
    /// 1010-1186/s, above the policer, in 14). Now every host is found in every phase, and
    /// the rate stays where the slow-down reported settled.
    #[tokio::test(start_paused = true)]
    async fn without_retries_a_large_range_behind_a_policer_hides_no_host() {
        let mut wrong = Vec::new();
        for (seed, s, to) in policed_21_sweeps_without_retries(24).await {
            let settled = to.last().copied().unwrap_or(0);
            if s.alive < 2048 || !s.throttled || s.rate > settled {
                wrong.push((seed, s.alive, s.throttled, to, s.rate));
            }
        }
        assert!(
            wrong.is_empty(),
            "(seed, found, throttled, slowed to, rate at the end): {wrong:?}"
        );
    }

    /// Whether target `index` of a sparse range is a live host: about `per_100` addresses in
    /// 100, spread as a hash of the index spreads them (the same set in every phase).
    fn sparse_live(index: u64, per_100: u64) -> bool {
        let mut x = index.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5bd1_e995;
        x ^= x >> 31;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 29;
        x % 100 < per_100
    }

    /// Whether the far side answers the probe to `index` of a sparse range (`per_100` live in
    /// 100) sent now: a live host, and a policer of the echo requests its live hosts get, 100/s
    /// (burst 10, full at the start; as the lab's, which polices only what reaches a host).
    fn sparse_policed(index: u64, per_100: u64) -> bool {
        sparse_live(index, per_100) && policed_bucket(100.0, 10.0, |_| 10.0)
    }

    /// The answers [`sparse_policed`] lets through, after a near round trip (0.1-1 ms).
    fn sparse_near(tag: Tag, index: u64, sent: u32, per_100: u64) -> Vec<(Tag, Duration)> {
        match sparse_policed(index, per_100) {
            true => vec![(
                tag,
                Duration::from_micros(100 + jitter_ms(index, sent, 900)),
            )],
            false => vec![],
        }
    }

    /// The answers [`sparse_policed`] lets through, after a far round trip (40-80 ms).
    fn sparse_far(tag: Tag, index: u64, sent: u32, per_100: u64) -> Vec<(Tag, Duration)> {
        match sparse_policed(index, per_100) {
            true => vec![(tag, Duration::from_millis(40 + jitter_ms(index, sent, 40)))],
            false => vec![],
        }
    }

    /// `--retries 0` sweeps of a /22 with about `per_100` addresses in 100 live (10 or 3),
    /// behind [`sparse_policed`], at near (0.1-1 ms) and far (40-80 ms) round trips, 12 phases
    /// each: (way, seed, found, live, summary).
    async fn sparse_policed_sweeps(
        per_100: u64,
    ) -> Vec<(&'static str, u64, u64, u64, SummaryRecord)> {
        let scripts: [(&str, scripted::Script); 2] = match per_100 {
            3 => [
                ("near", |t, i, s| sparse_near(t, i, s, 3)),
                ("far", |t, i, s| sparse_far(t, i, s, 3)),
            ],
            _ => [
                ("near", |t, i, s| sparse_near(t, i, s, 10)),
                ("far", |t, i, s| sparse_far(t, i, s, 10)),
            ],
        };
        let live = (0..1024).filter(|i| sparse_live(*i, per_100)).count() as u64;
        let mut sweeps = Vec::new();
        for (way, script) in scripts {
            for seed in 1..=12 {
                LINK_SEED.with(|s| s.set(seed * 7919 + 13));
                let cfg = config(Duration::from_secs(1), 0);
                let (mut sweep, _) = scripted::sweep(targets(&["198.18.4.0/22"]), cfg, script);
                let s = collect(&mut sweep).await.0;
                sweeps.push((way, seed, s.alive, live, s));
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
        sweeps
    }

    /// The sweeps of [`sparse_policed_sweeps`] that missed a host or did not report the
    /// policer: (way, seed, found, live, throttled).
    async fn sparse_policed_wrong(per_100: u64) -> Vec<(&'static str, u64, u64, u64, bool)> {
        let sweeps = sparse_policed_sweeps(per_100).await.into_iter();
        sweeps
            .filter(|(_, _, found, live, s)| found < live || !s.throttled)
            .map(|(way, seed, found, live, s)| (way, seed, found, live, s.throttled))
            .collect()
    }

    /// `--retries 0` on a sparse /22 (one address in ten live, 85) behind a policer of 100/s:
    /// the lab (102 live) found 100 or 101 in 2 runs of 11 (fping -r 0 all, in 12-19 s). The
    /// first probes at 10000/s emptied the bucket, and the second wave began at that rate;
    /// the early slow-down came in the middle of a batch, whose probes were all taken for
    /// the slower epoch's, a clean one: its live hosts re-probed at 10000/s were reported
    /// down (here 83 or 84 found in 4 far phases of 12; with another set of 90 live, 87 in all
    /// 12 near phases). Now a batch's probe is judged by every epoch it went out in.
    #[tokio::test(start_paused = true)]
    async fn without_retries_a_sparse_range_behind_a_policer_hides_no_host() {
        let wrong = sparse_policed_wrong(10).await;
        assert!(
            wrong.is_empty(),
            "(way, seed, found, live, throttled): {wrong:?}"
        );
    }

    /// `--retries 0` on a /22 with 3% of it live (27) behind a policer of 100/s: 11 found in
    /// all 12 near phases, the policer unreported. The controls (one per 16 probes, to the
    /// few hosts found) outnumbered the probes to live hosts; once the bucket was empty each
    /// host's controls were lost in a row, and each host in turn was taken for gone (module
    /// `loss`, `Meter::went_down`), its lost controls taken out of the counts. Now a host is
    /// gone only if the controls to other hosts sent after its lost one show the way open.
    #[tokio::test(start_paused = true)]
    async fn without_retries_a_very_sparse_range_behind_a_policer_hides_no_host() {
        let wrong = sparse_policed_wrong(3).await;
        assert!(
            wrong.is_empty(),
            "(way, seed, found, live, throttled): {wrong:?}"
        );
    }

    /// Whether the far side answers the probe to `index` of a /22 with 3% of it live (27
    /// hosts), behind a policer of the echo requests its live hosts get, 50/s (burst 5),
    /// whose bucket starts with 0 to 5 tokens, as the seed [`LINK_SEED`] holds says.
    fn sparse_policed_50(index: u64) -> bool {
        sparse_live(index, 3) && policed_bucket(50.0, 5.0, |seed| (seed % 6) as f64)
    }

    /// A sweep (default retries) of a /22 with 3% live behind a policer of 50/s whose bucket
    /// was nearly empty, near round trips (0.1-1 ms): 22 of 27 found in 2 bucket phases of 8.
    /// The 8 controls of the first wave at 10000/s were all lost; the sweep slowed down to
    /// 80/s but sent nothing while its batches waited, the path was called dead 2 s after the
    /// first of them (`Meter::dead`), and the batches then due were given up after their two
    /// probes, both sent at 10000/s. Now a batch whose probes all went faster than the sweep
    /// goes gets one at the current rate before it is given up on a dead path.
    #[tokio::test(start_paused = true)]
    async fn a_policer_that_drops_the_first_wave_is_no_dead_path() {
        let live = (0..1024).filter(|i| sparse_live(*i, 3)).count() as u64;
        let mut wrong = Vec::new();
        for seed in 1..=8 {
            LINK_SEED.with(|s| s.set(seed * 7919 + 13));
            let cfg = config(Duration::from_secs(1), 10);
            let script: scripted::Script = |tag, index, sent| match sparse_policed_50(index) {
                true => vec![(
                    tag,
                    Duration::from_micros(100 + jitter_ms(index, sent, 900)),
                )],
                false => vec![],
            };
            let (mut sweep, _) = scripted::sweep(targets(&["198.18.4.0/22"]), cfg, script);
            let summary = collect(&mut sweep).await.0;
            if summary.alive < live || !summary.throttled {
                wrong.push((seed, summary.alive, summary.throttled));
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        assert!(
            wrong.is_empty(),
            "(seed, found of {live}, throttled): {wrong:?}"
        );
    }

    /// The same /26 and policer with the default retries (1): every host was found, in 5.0-5.5
    /// s (fping 0.6-1.0 s) and with 350-450 probes, and the policer went unreported. The
    /// sweep waited for a window of 16 controls before it slowed down, then went to 1250/s
    /// and 350-500/s, always above the policer's 100/s; each wave of re-probes, a second
    /// apart once most controls were lost, got the policer's burst through (10-20 hosts).
    /// Now most of the first controls lost slow it down at once, to the rate the answers came
    /// back at, whatever the retries. Here, over 30 phases of the policer's bucket and round
    /// trips each: every host found, the policer reported, at most 5 probes a host (200-275).
    #[tokio::test(start_paused = true)]
    async fn with_retries_a_policer_is_found_before_it_eats_wave_after_wave() {
        let mut wrong = Vec::new();
        for (way, seed, s) in policed_26_sweeps(1).await {
            if s.alive < 64 || !s.throttled || s.probes > 5 * 64 {
                wrong.push((way, seed, s.alive, s.throttled, s.probes));
            }
        }
        assert!(
            wrong.is_empty(),
            "(way, seed, found, throttled, probes): {wrong:?}"
        );
    }

    /// Sweeps of the lab's /26, every address live behind a far side policing echo requests
    /// to 100/s, with `retries`: 30 phases of the policer's bucket at near round trips (0.1 to
    /// 1 ms) and 30 at far ones (8 to 13 ms). Each sweep's way, seed and summary.
    async fn policed_26_sweeps(retries: u32) -> Vec<(&'static str, u64, SummaryRecord)> {
        let near: scripted::Script = |tag, index, sent| match policed_100_from_seed() {
            true => vec![(
                tag,
                Duration::from_micros(100 + jitter_ms(index, sent, 900)),
            )],
            false => vec![],
        };
        let far: scripted::Script = |tag, index, sent| match policed_100_from_seed() {
            true => vec![(
                tag,
                Duration::from_micros(8000 + jitter_ms(index, sent, 5000)),
            )],
            false => vec![],
        };
        let mut sweeps = Vec::new();
        for (way, script) in [("near", near), ("far", far)] {
            for seed in 1..=30 {
                LINK_SEED.with(|s| s.set(seed * 7919 + 13));
                let cfg = config(Duration::from_secs(1), retries);
                let (mut sweep, _) = scripted::sweep(targets(&["198.18.1.0/26"]), cfg, script);
                sweeps.push((way, seed, collect(&mut sweep).await.0));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        sweeps
    }

    /// The same /26 behind random loss, half the packets each way and 10-15 ms each way: no
    /// claim of throttling in 200 sweeps but one (a cure judged on a full window: chance, one
    /// sweep in 200 to 250 with these seeds, as before), though every round that ends with a
    /// slow-down on trial now sends more controls to judge it.
    #[tokio::test(start_paused = true)]
    async fn random_loss_on_a_small_range_is_no_throttling_when_more_controls_judge_it() {
        let mut wrong = Vec::new();
        for seed in 1..=200 {
            LINK_SEED.with(|s| s.set(seed * 7919 + 13));
            let cfg = config(Duration::from_secs(1), 10);
            let script: scripted::Script = |tag, index, sent| match lost_each_way(index, sent, 50) {
                false => vec![(tag, Duration::from_millis(20 + jitter_ms(index, sent, 20)))],
                true => vec![],
            };
            let (mut sweep, _) = scripted::sweep(targets(&["198.18.1.0/26"]), cfg, script);
            let summary = collect(&mut sweep).await.0;
            if summary.throttled {
                wrong.push(seed);
            }
        }
        assert!(
            wrong.len() <= 1,
            "random loss taken for throttling: {wrong:?}"
        );
    }

    /// 298 live hosts of 320 behind a far side policing echo requests to 200/s, found at
    /// 10000/s with `--retries 2`: the probes wasted on the policer before the sweep slowed
    /// down do not count against the retries. They used to, in effect: a batch probed more
    /// than `retries + 1` times had no queue to wait in and was dropped, unreported — no more
    /// probes, and no wait for the answers to its last one — and 49-106 of the 298 hosts were
    /// reported inactive (fping -r 2 finds them all).
    #[tokio::test(start_paused = true)]
    async fn probes_wasted_on_a_policer_do_not_use_up_the_retries() {
        let cfg = config(Duration::from_secs(1), 2);
        let script: scripted::Script = |tag, index, _| match index < 298 && policed(200.0) {
            true => vec![(tag, Duration::from_millis(10))],
            false => vec![],
        };
        let (mut sweep, log) = scripted::sweep(targets(&["198.18.1.0-198.18.2.63"]), cfg, script);
        let (summary, _) = collect(&mut sweep).await;
        assert!(summary.throttled, "{summary:?}");
        assert_eq!((summary.alive, summary.dead), (298, 22), "{summary:?}");
        // The silent targets were probed more than 3 times (the wasted probes do not count),
        // and at most as often as a tag can say.
        let silent = &probes_per_index(&log, 320)[298..];
        let most = usize::from(Tag::MAX_ATTEMPT);
        assert!(silent.iter().all(|n| (4..=most).contains(n)), "{silent:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn several_methods_find_hosts_that_answer_one_and_measure_no_loss_from_the_others() {
        let mut cfg = config(Duration::from_secs(1), 10);
        cfg.methods = Methods::new([Method::Icmp, Method::Tcp(443)]).expect("methods");
        // 128 live hosts (the first half): the even ones answer only the first method (ICMP
        // dropped for the odd ones), the odd ones only the second; 128 silent. No loss.
        let echo: scripted::Script = |tag, index, _| match index < 128 && index % 2 == 0 {
            true => vec![(tag, Duration::from_millis(5))],
            false => vec![],
        };
        let syn: scripted::Script = |tag, index, _| match index < 128 && index % 2 == 1 {
            true => vec![(tag, Duration::from_millis(5))],
            false => vec![],
        };
        let (mut sweep, logs) = scripted::sweep_by(targets(&["198.18.0.0/24"]), cfg, &[echo, syn]);
        let (summary, events) = collect(&mut sweep).await;
        assert_eq!((summary.alive, summary.dead), (128, 128));
        let by: Vec<(u8, Option<&str>)> = hosts(&events)
            .iter()
            .filter(|h| h.alive)
            .map(|h| match h.addr {
                IpAddr::V4(v4) => (v4.octets()[3] % 2, h.by.as_deref()),
                IpAddr::V6(_) => (9, None),
            })
            .collect();
        assert!(by
            .iter()
            .all(|b| matches!(b, (0, Some("icmp")) | (1, Some("tcp:443")))));
        // Controls go by the method that found each host: none is lost. (Sent by both, or by
        // the first, half of them would be, and silent targets would get the most re-probes.)
        assert_eq!(summary.loss_pct, Some(0.0), "{summary:?}");
        for log in &logs {
            // No loss measured: the bound of the loss (not zero, for all a few dozen controls
            // can tell) asks 4 or 5 probes of a silent target, not the most (11).
            let silent = &probes_per_index(log, 256)[128..];
            assert!(silent.iter().all(|n| (2..=6).contains(n)), "{silent:?}");
            // Every target gets a probe of each method, live or not.
            assert!(probes_per_index(log, 128).iter().all(|n| *n >= 1));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn periodic_rounds_report_each_change_once_after_confirming_it() {
        let mut cfg = config(Duration::from_millis(500), 10);
        cfg.every = Some(Duration::from_secs(10));
        cfg.rounds = Some(4);
        // Target 0 answers in rounds 1 and 3 only; target 1 always; target 2 never.
        let script: scripted::Script = |tag, index, _| {
            let even_round = tag.is_round(2) || tag.is_round(4);
            match (index, even_round) {
                (0, true) | (2, _) => vec![],
                _ => vec![(tag, Duration::from_millis(1))],
            }
        };
        let (mut sweep, log) = scripted::sweep(targets(&["198.18.0.1-3"]), cfg, script);
        let metrics = sweep.metrics();
        let start = Instant::now();
        let (summary, events) = collect(&mut sweep).await;
        assert_eq!((summary.round, summary.alive, summary.dead), (4, 1, 2));
        let changes: Vec<(u64, bool)> = events
            .iter()
            .filter_map(|e| match e {
                Event::Change(c) => Some((c.round, c.alive)),
                _ => None,
            })
            .collect();
        assert_eq!(changes, [(2, false), (3, true), (4, false)]);
        // A host alive in the round before is probed more before it is reported gone.
        let in_round_2 = |index| {
            let log = log.lock().expect("log");
            log.iter()
                .filter(|(t, i)| *i == index && t.is_round(2) && t.attempt() != Tag::CONTROL)
                .count()
        };
        assert!(
            in_round_2(0) > in_round_2(2),
            "{} {}",
            in_round_2(0),
            in_round_2(2)
        );
        // Rounds start 10 s apart: the fourth at 30 s, ending a few re-probes later.
        let elapsed = start.elapsed();
        assert!(within(elapsed, 30_500, 32_500), "{elapsed:?}");
        let text = metrics.render();
        assert!(
            text.contains("netkit_sweep_changes_total{direction=\"down\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("netkit_sweep_changes_total{direction=\"up\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("netkit_sweep_up{addr=\"198.18.0.1\"} 0\n"),
            "{text}"
        );
    }
}
