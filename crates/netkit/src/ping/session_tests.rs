//! The session's rules on a clock of the test's own: every instant is `t0` plus a scripted
//! offset, so late replies, lingering, duplicates and errors are checked to the millisecond
//! against what iputils does in the same script.

use std::net::IpAddr;

use super::*;
use crate::icmp::{Answer, ErrorReply, Reply};

const MS: Duration = Duration::from_millis(1);

fn target(addr: &str) -> Target {
    Target::addr(addr.parse().unwrap())
}

/// A session over `targets` from `t0`, with `config`.
struct Script {
    session: Session,
    t0: Instant,
    events: Vec<Event>,
}

impl Script {
    fn new(config: PingConfig, addrs: &[&str]) -> Script {
        let targets: Vec<Target> = addrs.iter().map(|a| target(a)).collect();
        let t0 = Instant::now();
        Script {
            session: Session::new(config, &targets, t0),
            t0,
            events: Vec::new(),
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    /// Sends whatever is due at `ms`; the sequence numbers sent.
    fn send(&mut self, ms: u64) -> Vec<(usize, u64)> {
        let now = self.at(ms);
        let mut sent = Vec::new();
        while let Some(request) = self.session.next_request(now) {
            sent.push((request.host, request.seq));
        }
        self.session.tick(now);
        self.drain();
        sent
    }

    fn reply(&mut self, ms: u64, host: u32, seq: u16, rtt_ms: u64) {
        let reply = self.echo_reply(host, seq, rtt_ms);
        self.session.answer(&Answer::Reply(reply), self.at(ms));
        self.drain();
    }

    /// A reply with a wrong checksum.
    fn corrupted(&mut self, ms: u64, host: u32, seq: u16, rtt_ms: u64) {
        let reply = self.echo_reply(host, seq, rtt_ms);
        self.session.answer(&Answer::Corrupted(reply), self.at(ms));
        self.drain();
    }

    fn echo_reply(&self, host: u32, seq: u16, rtt_ms: u64) -> Reply {
        Reply {
            index: host,
            addr: self.addr(host),
            seq,
            ttl: Some(64),
            bytes: 64,
            rtt: Some(Duration::from_millis(rtt_ms)),
        }
    }

    fn error(&mut self, ms: u64, host: u32, seq: u16) {
        let error = ErrorReply {
            index: Some(host),
            target: self.addr(host),
            from: "198.18.0.1".parse().unwrap(),
            seq,
            msg_type: 3,
            code: 1,
            info: 0,
            notice: false,
        };
        self.session.answer(&Answer::Error(error), self.at(ms));
        self.drain();
    }

    fn tick(&mut self, ms: u64) {
        self.session.tick(self.at(ms));
        self.drain();
    }

    fn addr(&self, host: u32) -> IpAddr {
        let summaries = self.session.summaries();
        summaries
            .get(host as usize)
            .map_or("198.18.0.9".parse().unwrap(), |s| s.addr)
    }

    fn drain(&mut self) {
        while let Some(event) = self.session.next_event() {
            self.events.push(event);
        }
    }

    fn summary(&self, host: usize) -> PingSummary {
        self.session.summaries().swap_remove(host)
    }

    fn timeouts(&self) -> Vec<u64> {
        let seqs = self.events.iter().filter_map(|e| match e {
            Event::Timeout { record, .. } => Some(record.seq),
            _ => None,
        });
        seqs.collect()
    }

    fn replies(&self) -> Vec<(u64, bool)> {
        let replies = self.events.iter().filter_map(|e| match e {
            Event::Reply { record, .. } => Some((record.seq, record.dup)),
            _ => None,
        });
        replies.collect()
    }
}

fn count(n: u64) -> PingConfig {
    PingConfig {
        count: Some(n),
        ..PingConfig::default()
    }
}

#[test]
fn replies_later_than_the_timeout_count_and_make_the_pipe() {
    // iputils at 1.5 s RTT, -c 3 -W 1: 3 received, pipe 2, time 2000ms.
    let mut s = Script::new(
        PingConfig {
            linger: 1000 * MS,
            ..count(3)
        },
        &["198.18.0.2"],
    );
    assert_eq!(s.send(0), [(0, 1)]);
    assert_eq!(s.send(1000), [(0, 2)]);
    assert_eq!(s.timeouts(), [1], "reported after -W, still answerable");
    s.reply(1500, 0, 1, 1500);
    assert_eq!(s.send(2000), [(0, 3)]);
    // The wait after the last request: twice the longest round trip, from 2000 to 5000.
    assert_eq!(s.session.wake_at(s.at(2000)), Some(s.at(3000)));
    s.reply(2500, 0, 2, 1500);
    assert!(!s.session.is_over());
    s.reply(3500, 0, 3, 1500);
    assert!(s.session.is_over(), "three replies: done");
    let summary = s.summary(0);
    assert_eq!((summary.transmitted, summary.received), (3, 3));
    assert_eq!((summary.pipe, summary.time_ms), (2, 2000));
    assert_eq!(s.replies(), [(1, false), (2, false), (3, false)]);
}

#[test]
fn an_answer_that_came_after_the_wait_or_the_deadline_does_not_count_however_soon_taken_in() {
    // -c 2 -i 0.3, replies 100 ms away: the wait after the last request (at 300) is one
    // interval, to 600. iputils' alarm is exact; a timer that fires late, after a reply that
    // came at 600.5, must not let it count.
    let mut s = Script::new(
        PingConfig {
            interval: 300 * MS,
            ..count(2)
        },
        &["198.18.0.2"],
    );
    s.send(0);
    s.reply(100, 0, 1, 100);
    s.send(300);
    let reply = Reply {
        index: 0,
        addr: s.addr(0),
        seq: 2,
        ttl: Some(64),
        bytes: 64,
        rtt: None,
    };
    let late = s.at(600) + Duration::from_micros(500);
    assert_eq!(s.session.answer(&Answer::Reply(reply), late), None);
    assert!(s.session.is_over());
    assert_eq!(s.summary(0).received, 1);
    // -w 1: a reply that came at the deadline is not counted either.
    let mut s = Script::new(
        PingConfig {
            deadline: Some(1000 * MS),
            ..PingConfig::default()
        },
        &["198.18.0.2"],
    );
    s.send(0);
    s.reply(1000, 0, 1, 1000);
    assert!(s.session.is_over());
    assert_eq!(s.summary(0).received, 0);
}

#[test]
fn without_any_reply_by_the_last_request_the_timeout_ends_the_wait() {
    // iputils -c 2 -W 1 at 1.5 s RTT: 2 sent, 1 received (the second reply comes too late).
    let mut s = Script::new(
        PingConfig {
            linger: 1000 * MS,
            ..count(2)
        },
        &["198.18.0.2"],
    );
    s.send(0);
    s.send(1000);
    s.reply(1500, 0, 1, 1500);
    s.tick(1999);
    assert!(!s.session.is_over());
    s.tick(2000);
    assert!(s.session.is_over());
    s.reply(2500, 0, 2, 1500);
    let summary = s.summary(0);
    assert_eq!((summary.transmitted, summary.received), (2, 1));
    assert_eq!(
        s.timeouts(),
        [1, 2],
        "both were late for -W; the first still counted"
    );
}

#[test]
fn duplicates_are_flagged_counted_and_timed() {
    let mut s = Script::new(
        PingConfig {
            interval: 200 * MS,
            ..count(2)
        },
        &["198.18.0.2"],
    );
    s.send(0);
    s.reply(1, 0, 1, 1);
    s.reply(2, 0, 1, 2);
    s.send(200);
    s.reply(203, 0, 2, 3);
    assert!(s.session.is_over(), "-c 2: two replies end it, as iputils");
    s.reply(204, 0, 2, 4);
    assert_eq!(s.replies(), [(1, false), (1, true), (2, false)]);
    let summary = s.summary(0);
    assert_eq!((summary.received, summary.duplicates), (2, 1));
    // iputils averages over replies and duplicates: (1 + 2 + 3) / 3.
    assert_eq!(summary.avg_ms, Some(2.0));
    assert_eq!(summary.loss_pct, 0.0);
}

#[test]
fn errors_count_whenever_they_come() {
    // iputils -c 3 -i 0.5 to a host whose neighbour never resolves: +3 errors at ~3 s.
    let mut s = Script::new(
        PingConfig {
            interval: 500 * MS,
            ..count(3)
        },
        &["198.18.0.3"],
    );
    s.send(0);
    s.send(500);
    s.send(1000);
    s.error(3000, 0, 1);
    s.error(3000, 0, 2);
    assert!(!s.session.is_over());
    s.error(3001, 0, 3);
    assert!(s.session.is_over(), "errors plus replies reached -c");
    let summary = s.summary(0);
    assert_eq!((summary.errors, summary.received, summary.pipe), (3, 0, 3));
    let errors = s.events.iter().filter(|e| matches!(e, Event::Error { .. }));
    assert_eq!(errors.count(), 3);
    // Each request was answered by its error: none is reported as timed out too.
    let timeouts = s
        .events
        .iter()
        .filter(|e| matches!(e, Event::Timeout { .. }));
    assert_eq!(timeouts.count(), 0);
    let records: Vec<(u64, String)> = s
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Error { record, .. } => Some((record.seq, record.error.clone())),
            _ => None,
        })
        .collect();
    let unreachable = "Destination Host Unreachable".to_string();
    assert_eq!(records, [1, 2, 3].map(|seq| (seq, unreachable.clone())));
}

/// iputils takes an IPv4 error in for an answer to its request (the pipe figure, the flood
/// pacing), not an IPv6 one: after errors only, `ping -6` prints no `pipe`. netkit printed
/// `pipe 3` there (an audit: 5 runs of 5), and its flood ran on as if answered.
#[test]
fn ipv6_errors_are_no_answers_to_the_pipe() {
    let mut s = Script::new(
        PingConfig {
            interval: 500 * MS,
            ..count(3)
        },
        &["2001:db8::3"],
    );
    s.send(0);
    s.send(500);
    s.send(1000);
    for seq in 1..=3 {
        s.error(3000, 0, seq);
    }
    // Nothing answered for the pipe: still in flight, so the host takes in what else is
    // queued first (iputils reads on while requests are in flight), and ends at the tick
    // that follows at once.
    assert_eq!(s.session.wake_at(s.at(3000)), Some(s.at(3000)));
    s.tick(3000);
    assert!(s.session.is_over(), "errors still count for -c");
    let summary = s.summary(0);
    assert_eq!((summary.errors, summary.received, summary.pipe), (3, 0, 0));
}

#[test]
fn count_with_deadline_sends_until_count_replies() {
    // iputils -c 3 -w 5 -i 0.2, odd requests dropped: 6 sent, 3 received.
    let mut s = Script::new(
        PingConfig {
            interval: 200 * MS,
            deadline: Some(5000 * MS),
            ..count(3)
        },
        &["198.18.0.2"],
    );
    for n in 0..6u16 {
        let ms = u64::from(n) * 200;
        assert_eq!(s.send(ms), [(0, u64::from(n) + 1)]);
        if n % 2 == 1 {
            s.reply(ms + 1, 0, n + 1, 1);
        }
    }
    assert!(s.session.is_over());
    assert_eq!(s.send(1200), []);
    let summary = s.summary(0);
    assert_eq!((summary.transmitted, summary.received), (6, 3));
}

#[test]
fn the_deadline_ends_everything_and_an_error_ends_a_deadline_host() {
    let config = PingConfig {
        interval: 200 * MS,
        deadline: Some(1000 * MS),
        ..PingConfig::default()
    };
    let mut s = Script::new(config, &["198.18.0.2", "198.18.0.3"]);
    assert_eq!(s.send(0), [(0, 1), (1, 1)]);
    s.error(100, 1, 1);
    assert_eq!(s.send(200), [(0, 2)], "iputils -w stops at the first error");
    s.tick(1000);
    assert!(s.session.is_over());
    assert_eq!(s.summary(0).transmitted, 2);
}

#[test]
fn preload_sends_at_once_and_outstanding_requests_are_reported() {
    let config = PingConfig {
        preload: 3,
        outstanding: true,
        ..count(4)
    };
    let mut s = Script::new(config, &["198.18.0.2"]);
    assert_eq!(s.send(0), [(0, 1), (0, 2), (0, 3)]);
    s.reply(1, 0, 1, 1);
    assert_eq!(s.send(999), []);
    assert_eq!(s.send(1000), [(0, 4)]);
    let outstanding: Vec<u64> = s
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Outstanding { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(
        outstanding,
        [1, 2, 3],
        "-O: each unanswered when the next went"
    );
}

#[test]
fn sequence_numbers_wrap_on_the_wire() {
    let config = PingConfig {
        interval: Duration::ZERO,
        preload: 70_000,
        ..count(65_537)
    };
    let mut s = Script::new(config, &["198.18.0.2"]);
    assert_eq!(s.send(0).len(), 65_537);
    // Wire number 1 now stands for request 65537.
    s.reply(1, 0, 1, 1);
    assert_eq!(s.replies(), [(65_537, false)]);
}

#[test]
fn adaptive_interval_follows_the_round_trips() {
    let config = PingConfig {
        adaptive: true,
        min_interval: 2 * MS,
        ..count(3)
    };
    let mut s = Script::new(config, &["198.18.0.2"]);
    s.send(0);
    s.reply(50, 0, 1, 50);
    assert_eq!(s.send(49), []);
    assert_eq!(
        s.send(50),
        [(0, 2)],
        "interval 50 ms from the moving average"
    );
    s.reply(51, 0, 2, 1);
    // ewma×8 = 400000 + 1000 - 50000 = 351000 µs, so 43.875 ms, rounded to 44 ms.
    assert_eq!(s.send(93), []);
    assert_eq!(s.send(94), [(0, 3)]);
}

#[test]
fn replies_to_requests_never_sent_are_ignored() {
    let mut s = Script::new(count(2), &["198.18.0.2"]);
    s.send(0);
    s.reply(1, 0, 7, 1);
    s.reply(1, 5, 1, 1);
    assert_eq!(s.replies(), []);
    assert_eq!(s.summary(0).received, 0);
}

#[test]
fn stop_reports_what_is_unanswered_and_status_snapshots() {
    let mut s = Script::new(PingConfig::default(), &["198.18.0.2"]);
    s.send(0);
    s.reply(1, 0, 1, 1);
    s.send(1000);
    s.session.status();
    s.session.stop();
    s.drain();
    assert!(s.session.is_over());
    assert_eq!(s.timeouts(), [2]);
    let status = s.events.iter().find_map(|e| match e {
        Event::Status(stats) => Some(stats[0]),
        _ => None,
    });
    let status = status.expect("a status event");
    assert_eq!((status.received, status.transmitted), (1, 2));
    assert_eq!(s.summary(0).time_ms, 1000);
}

#[test]
fn replies_with_a_bad_checksum_are_corrupted_not_received() {
    // iputils (since bacf1b7): `(BAD CHECKSUM!)`, `+1 corrupted`, the request unanswered (no
    // round trip, no pipe) until a sound reply to it comes, which is no duplicate.
    let mut s = Script::new(count(2), &["198.18.0.2"]);
    s.send(0);
    s.corrupted(5, 0, 1, 5);
    s.send(1000);
    s.corrupted(1020, 0, 2, 20);
    s.reply(1030, 0, 2, 30);
    let corrupted = s.events.iter().filter_map(|e| match e {
        Event::Reply { record, .. } => Some((record.seq, record.dup, record.corrupted)),
        _ => None,
    });
    let corrupted: Vec<_> = corrupted.collect();
    assert_eq!(
        corrupted,
        [(1, false, true), (2, false, true), (2, false, false)]
    );
    let summary = s.summary(0);
    assert_eq!(
        (summary.received, summary.corrupted, summary.duplicates),
        (1, 2, 0)
    );
    assert_eq!((summary.min_ms, summary.max_ms), (Some(30.0), Some(30.0)));
    // Still unanswered: it times out after -W (10 s).
    s.tick(10_000);
    assert_eq!(s.timeouts(), [1]);
}

#[test]
fn a_reply_cut_short_of_its_probe_counts_for_the_host_that_sent_it() {
    // iputils counts a reply too short to carry the send time, untimed; the engine cannot
    // say its target, its sender does (the only host when none has its address).
    let mut s = Script::new(count(1), &["198.18.0.2", "198.18.0.3"]);
    assert_eq!(s.send(0), [(0, 1), (1, 1)]);
    let cut = Reply {
        index: crate::icmp::UNKNOWN_INDEX,
        addr: s.addr(1),
        seq: 1,
        ttl: Some(64),
        bytes: 16,
        rtt: None,
    };
    s.session.answer(&Answer::Reply(cut), s.at(5));
    s.drain();
    let received = |s: &Script| [0, 1].map(|host| s.summary(host).received);
    assert_eq!(received(&s), [0, 1]);
    assert_eq!(s.summary(1).min_ms, None, "no round trip measured");
    let elsewhere = Reply {
        addr: "198.18.0.9".parse().unwrap(),
        ..cut
    };
    s.session.answer(&Answer::Reply(elsewhere), s.at(6));
    assert_eq!(
        received(&s),
        [0, 1],
        "two hosts: no owner for another sender"
    );
    let mut one = Script::new(count(1), &["198.18.0.2"]);
    assert_eq!(one.send(0), [(0, 1)]);
    one.session.answer(&Answer::Reply(elsewhere), one.at(5));
    assert_eq!(one.summary(0).received, 1, "the only host");
}

#[test]
fn answers_queued_with_the_one_that_makes_the_count_still_count() {
    // iputils -c 2 -w 2 -l 3: three requests at once, their replies come together and are
    // all read before the count is checked: 3 received.
    let mut s = Script::new(
        PingConfig {
            preload: 3,
            deadline: Some(2000 * MS),
            ..count(2)
        },
        &["198.18.0.2"],
    );
    assert_eq!(s.send(0).len(), 3);
    s.reply(1, 0, 1, 1);
    s.reply(1, 0, 2, 1);
    assert!(!s.session.is_over(), "the third reply may be queued");
    let more = s.session.next_request(s.at(1));
    assert!(more.is_none(), "nothing more is sent once the count is in");
    s.reply(1, 0, 3, 1);
    assert!(s.session.is_over(), "nothing is in flight any more");
    let summary = s.summary(0);
    assert_eq!((summary.transmitted, summary.received), (3, 3));
    // Nothing more queued: the tick right after ends it with what came.
    let mut s = Script::new(
        PingConfig {
            preload: 3,
            deadline: Some(2000 * MS),
            ..count(2)
        },
        &["198.18.0.2"],
    );
    s.send(0);
    s.reply(1, 0, 1, 1);
    s.reply(1, 0, 2, 1);
    s.tick(1);
    assert!(s.session.is_over());
    let summary = s.summary(0);
    assert_eq!((summary.transmitted, summary.received), (3, 2));
}

/// A request the kernel refuses ends the `-l` burst: iputils drops its credit after a failed
/// send (`tokens = 0`), so the next request waits a whole interval. netkit sent the rest of
/// the burst at once.
#[test]
fn a_refused_request_ends_the_preload_burst() {
    let config = PingConfig {
        preload: 3,
        ..count(4)
    };
    let mut s = Script::new(config, &["198.18.0.2"]);
    let now = s.at(0);
    let mut sent = Vec::new();
    while let Some(request) = s.session.next_request(now) {
        sent.push(request.seq);
        let refused = io::Error::from_raw_os_error(libc::EPERM);
        s.session.send_failed(&request, refused, None);
    }
    assert_eq!(sent, [1], "one request, then the interval");
    assert_eq!(s.send(999), []);
    assert_eq!(s.send(1000), [(0, 2)]);
}
