//! Round-trip time estimation and the probe timeout derived from it: the smoothed RTT and its
//! variance of RFC 6298 (TCP's retransmission timer, which nmap's `timing.cc` adapts to
//! scanning), fed with the time from `connect` to the answer of each probe, and a timeout of
//! `srtt + 4 × rttvar` kept between a floor and a ceiling.
//!
//! The estimate follows a queue that fills slowly, but lags one that fills fast (a slow link
//! the scan itself loads). An answer that comes after its probe timed out proves the timeout
//! too short; [`LateFloor`] then keeps the timeout above that round trip for a while, as TCP
//! does after a spurious retransmission (RFC 4015), instead of retransmitting into the queue.
//! Time is an input: nothing here reads a clock.

use std::time::{Duration, Instant};

use super::window::Delay;

/// When the kernel resends the SYN of a connect still pending (`TCP_TIMEOUT_INIT`; again
/// after 3 s, 7 s, ...). An answer after it may be to either SYN, unless it came too soon
/// after the resend to answer it: sooner than half the least round trip seen (half: a round
/// trip may yet come shorter than the least seen so far, by the jitter). Such an answer, or
/// one before any round trip was measured (a second or more, as through a satellite or a
/// congested tunnel, which the timeout must learn), is the first SYN's, counted from the
/// connect; the others are left out (Karn's rule). Behind round trips of 0.8-1.6 s nearly
/// every answer comes after the resend, and none before 1.4 s can answer it: leaving all
/// those out kept the timeout under most round trips. Raw SYNs are not resent by the kernel
/// and each answer is matched to its try ([`Rtt::matched`]): there every sample counts.
pub const KARN_LIMIT: Duration = Duration::from_secs(1);

/// A smoothed round trip beyond this many times the least one, plus [`QUEUE_SLACK`] seconds,
/// means a queue.
const QUEUE_FACTOR: f64 = 2.0;
const QUEUE_SLACK: f64 = 0.002;

/// The bounds of the probe timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// The timeout before any RTT was measured.
    pub initial: Duration,
    /// The least timeout, however short the RTT: scheduling jitter on a loaded machine must
    /// not pass for loss.
    pub min: Duration,
    /// The greatest timeout (`--timeout`).
    pub max: Duration,
}

impl Timeouts {
    /// The initial timeout when the caller gives none (nmap's `-T4` value).
    pub const INITIAL: Duration = Duration::from_millis(500);
    /// The floor when the caller gives none (nmap's `-T5` value).
    pub const MIN: Duration = Duration::from_millis(50);

    /// The default bounds under a ceiling of `max`: neither the initial value nor the floor
    /// ever exceeds it.
    pub fn capped(max: Duration) -> Self {
        Timeouts {
            initial: Self::INITIAL.min(max),
            min: Self::MIN.min(max),
            max,
        }
    }
}

/// The smoothed round-trip time and its variance for one host, or for the whole scan.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rtt {
    /// (srtt, rttvar) in seconds, once a sample came.
    estimate: Option<(f64, f64)>,
    /// The least sample seen, in seconds.
    min: Option<f64>,
    /// The greatest sample seen, in seconds.
    max: Option<f64>,
    /// The latest samples, in seconds, oldest overwritten first.
    recent: [f64; RECENT],
    /// Samples taken (the next one goes to `recent[taken % RECENT]`).
    taken: usize,
    /// Whether each answer is known to answer the try it is measured from ([`Rtt::matched`]).
    matched: bool,
}

/// Samples [`Rtt::delay`] looks at: their least one is above the least ever when a queue
/// forms (one sample may be jitter; a run of them is not).
const RECENT: usize = 8;

impl Rtt {
    /// An estimate whose samples each answer the very try they are measured from (raw SYNs:
    /// the answer's acknowledgement number names the try, and the kernel resends nothing), so
    /// that none is ambiguous and [`KARN_LIMIT`] does not apply: behind a round trip of
    /// 0.8-1.6 s the answers over a second are the path's, not a resent SYN's.
    pub fn matched() -> Self {
        Rtt {
            matched: true,
            ..Rtt::default()
        }
    }

    /// Takes one measured round trip (RFC 6298 §2: gains 1/8 and 1/4).
    pub fn sample(&mut self, rtt: Duration) {
        if !self.matched && self.may_answer_resend(rtt) {
            return;
        }
        let r = rtt.as_secs_f64();
        self.min = Some(self.min.map_or(r, |m| m.min(r)));
        self.max = Some(self.max.map_or(r, |m| m.max(r)));
        self.recent[self.taken % RECENT] = r;
        self.taken += 1;
        self.estimate = Some(match self.estimate {
            None => (r, r / 2.0),
            Some((srtt, rttvar)) => {
                let rttvar = 0.75 * rttvar + 0.25 * (srtt - r).abs();
                (0.875 * srtt + 0.125 * r, rttvar)
            }
        });
    }

    /// Whether an answer `rtt` after a connect may be to the SYN the kernel resent
    /// ([`KARN_LIMIT`]): it came after the resend, at least half the least round trip seen
    /// after it.
    pub fn may_answer_resend(&self, rtt: Duration) -> bool {
        let since_resend = rtt.checked_sub(KARN_LIMIT).map(|d| d.as_secs_f64());
        matches!((since_resend, self.min), (Some(since), Some(min)) if since >= min / 2.0)
    }

    /// Whether any sample came.
    pub fn is_measured(&self) -> bool {
        self.estimate.is_some()
    }

    /// The smoothed round-trip time, once measured.
    pub fn srtt(&self) -> Option<Duration> {
        self.estimate.map(|(srtt, _)| Duration::from_secs_f64(srtt))
    }

    /// The least round trip seen.
    pub fn min(&self) -> Option<Duration> {
        self.min.map(Duration::from_secs_f64)
    }

    /// The greatest round trip seen: a path that took that long once may again, however short
    /// the smoothed estimate (a reordered packet skips the path's delay).
    pub fn max(&self) -> Option<Duration> {
        self.max.map(Duration::from_secs_f64)
    }

    /// Whether the round trip is well above the least one seen: a queue is building on the
    /// path (the scan's own probes waiting behind each other), so a drop there is congestion.
    /// Without it a drop is random loss or a policer, which a smaller window does not help.
    pub fn is_queueing(&self) -> bool {
        match (self.estimate, self.min) {
            (Some((srtt, _)), Some(min)) => srtt > QUEUE_FACTOR * min + QUEUE_SLACK,
            _ => false,
        }
    }

    /// What the round trips say about a queue on the path: [`Delay::Queueing`] as
    /// [`Rtt::is_queueing`]; [`Delay::Rising`] when the least of the last few samples is above
    /// the least ever by an eighth of it (at least 4 ms, at most 16 ms: TCP HyStart's
    /// delay-increase test); else [`Delay::Clear`].
    pub fn delay(&self) -> Delay {
        let Some(min) = self.min else {
            return Delay::Clear;
        };
        if self.is_queueing() {
            return Delay::Queueing;
        }
        if self.taken < RECENT {
            return Delay::Clear;
        }
        let recent = self.recent.iter().copied().fold(f64::INFINITY, f64::min);
        match recent > min + (min / 8.0).clamp(0.004, 0.016) {
            true => Delay::Rising,
            false => Delay::Clear,
        }
    }

    /// `srtt + 4 × rttvar` whatever the bounds (`None` before any sample): how long an
    /// answer may take, even where `--timeout` caps the wait below it.
    pub fn unbounded_timeout(&self) -> Option<Duration> {
        let (srtt, rttvar) = self.estimate?;
        Some(Duration::from_secs_f64(srtt + 4.0 * rttvar))
    }

    /// How long to wait for an answer: `srtt + 4 × rttvar` within the bounds, or the initial
    /// timeout before any sample.
    pub fn timeout(&self, bounds: &Timeouts) -> Duration {
        match self.estimate {
            None => bounds.initial,
            Some((srtt, rttvar)) => {
                Duration::from_secs_f64(srtt + 4.0 * rttvar).clamp(bounds.min, bounds.max)
            }
        }
    }
}

/// How much longer than a late answer's round trip the timeout is kept.
const LATE_MARGIN: f64 = 1.5;
/// How long a late answer keeps the timeout up.
const LATE_HOLD: Duration = Duration::from_secs(2);

/// A floor under the timeout, raised by answers that came after their probe timed out.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LateFloor {
    floor: Option<(Duration, Instant)>,
}

impl LateFloor {
    /// Raises the floor for an answer at `now` that took `rtt`, after its probe timed out.
    pub fn late(&mut self, rtt: Duration, now: Instant) {
        let wanted = rtt.mul_f64(LATE_MARGIN);
        let floor = match self.floor {
            Some((floor, until)) if until > now => floor.max(wanted),
            _ => wanted,
        };
        self.floor = Some((floor, now + LATE_HOLD));
    }

    /// `timeout`, raised to the floor while it holds (never beyond `bounds.max`).
    pub fn apply(&self, timeout: Duration, bounds: &Timeouts, now: Instant) -> Duration {
        match self.floor {
            Some((floor, until)) if until > now => timeout.max(floor.min(bounds.max)),
            _ => timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn before_any_sample_the_initial_timeout_holds() {
        let bounds = Timeouts::capped(ms(1000));
        assert_eq!(Rtt::default().timeout(&bounds), ms(500));
        assert_eq!(Timeouts::capped(ms(300)).initial, ms(300));
        assert_eq!(Timeouts::capped(ms(20)).min, ms(20));
    }

    #[test]
    fn the_first_sample_sets_srtt_and_half_of_it_as_variance() {
        let mut rtt = Rtt::default();
        rtt.sample(ms(100));
        assert_eq!(rtt.srtt(), Some(ms(100)));
        // 100 + 4 × 50
        assert_eq!(rtt.timeout(&Timeouts::capped(ms(1000))), ms(300));
    }

    #[test]
    fn steady_samples_shrink_the_timeout_to_the_floor() {
        let mut rtt = Rtt::default();
        for _ in 0..100 {
            rtt.sample(Duration::from_micros(40));
        }
        assert_eq!(rtt.timeout(&Timeouts::capped(ms(1000))), Timeouts::MIN);
    }

    #[test]
    fn a_jump_in_rtt_raises_the_timeout_at_once() {
        let mut rtt = Rtt::default();
        for _ in 0..50 {
            rtt.sample(ms(30));
        }
        let before = rtt.timeout(&Timeouts::capped(ms(1000)));
        rtt.sample(ms(130));
        let after = rtt.timeout(&Timeouts::capped(ms(1000)));
        // srtt 42.5, rttvar 25: 142.5 ms.
        assert!(after > before + ms(80), "{before:?} -> {after:?}");
        assert_eq!(rtt.min(), Some(ms(30)));
    }

    #[test]
    fn a_queue_is_a_round_trip_well_above_the_least() {
        let mut rtt = Rtt::default();
        assert!(!rtt.is_queueing());
        for sample in [20, 40, 25, 35, 30, 38, 22] {
            rtt.sample(ms(sample));
        }
        assert!(!rtt.is_queueing(), "jitter is no queue");
        for _ in 0..20 {
            rtt.sample(ms(80));
        }
        assert!(rtt.is_queueing());
    }

    #[test]
    fn a_run_of_higher_round_trips_is_a_rising_delay() {
        let mut rtt = Rtt::default();
        assert_eq!(rtt.delay(), Delay::Clear);
        for sample in [30, 31, 30, 45, 30, 32, 30, 31, 30] {
            rtt.sample(ms(sample));
        }
        assert_eq!(rtt.delay(), Delay::Clear, "one high sample is jitter");
        for _ in 0..RECENT {
            rtt.sample(ms(36));
        }
        assert_eq!(rtt.delay(), Delay::Rising);
        for _ in 0..30 {
            rtt.sample(ms(90));
        }
        assert_eq!(rtt.delay(), Delay::Queueing);
    }

    #[test]
    fn a_late_answer_holds_the_timeout_above_its_round_trip_for_a_while() {
        let bounds = Timeouts::capped(ms(1000));
        let t0 = Instant::now();
        let mut floor = LateFloor::default();
        assert_eq!(floor.apply(ms(60), &bounds, t0), ms(60));
        floor.late(ms(100), t0);
        assert_eq!(floor.apply(ms(60), &bounds, t0 + ms(10)), ms(150));
        assert_eq!(floor.apply(ms(200), &bounds, t0 + ms(10)), ms(200));
        floor.late(ms(800), t0 + ms(20));
        assert_eq!(floor.apply(ms(60), &bounds, t0 + ms(30)), ms(1000));
        assert_eq!(
            floor.apply(ms(60), &bounds, t0 + LATE_HOLD + ms(20)),
            ms(60)
        );
    }

    /// Behind 30-50 ms at 20% loss: an answer 1.031 s after the connect is the answer to the
    /// SYN resent at 1 s, over a path a little shorter than the least seen so far, not a round
    /// trip of a second.
    #[test]
    fn an_answer_to_the_resent_syn_a_little_shorter_than_the_least_seen_is_left_out() {
        let mut rtt = Rtt::default();
        for sample in [42, 35, 47, 38] {
            rtt.sample(ms(sample));
        }
        let before = rtt;
        rtt.sample(ms(1031));
        assert_eq!(rtt, before);
    }

    #[test]
    fn the_ceiling_caps_and_answers_that_may_be_to_the_resent_syn_are_ignored() {
        let mut rtt = Rtt::default();
        rtt.sample(ms(900));
        assert_eq!(rtt.timeout(&Timeouts::capped(ms(1000))), ms(1000));
        let before = rtt;
        // 0.9 s after the kernel's resend at 1 s: an answer to either SYN.
        rtt.sample(ms(1900));
        assert_eq!(rtt, before);
        rtt.sample(ms(3500));
        assert_eq!(rtt, before);
        // 0.4 s after the resend, sooner than half of any round trip seen: the first SYN's.
        rtt.sample(ms(1400));
        assert_ne!(rtt, before);
        assert!(rtt.srtt().is_some_and(|srtt| srtt > ms(900)));
    }

    #[test]
    fn a_path_whose_every_round_trip_is_over_a_second_is_measured() {
        let mut rtt = Rtt::default();
        rtt.sample(ms(1600));
        rtt.sample(ms(1650));
        assert!(rtt.srtt().is_some_and(|srtt| srtt > ms(1600)));
        assert!(rtt.timeout(&Timeouts::capped(ms(10_000))) > ms(1650));
        // A short one after them: the long ones from then on are retransmissions'.
        rtt.sample(ms(20));
        let before = rtt;
        rtt.sample(ms(1020));
        assert_eq!(rtt, before);
    }

    #[test]
    fn answers_matched_to_their_try_count_past_a_second() {
        // A path of 0.8-1.6 s, then a sample that may answer the SYN the kernel resent: raw
        // SYNs take it, connects leave it out.
        let samples = [900, 1300, 850, 1500, 1200, 1600, 950, 1400, 3000];
        let mut connects = Rtt::default();
        let mut raw = Rtt::matched();
        for sample in samples {
            connects.sample(ms(sample));
            raw.sample(ms(sample));
        }
        assert!(raw.srtt() > connects.srtt());
    }

    /// Behind round trips of 0.8-1.6 s, a connect's answer after the kernel resent its SYN at
    /// 1 s but sooner than 1.4 s cannot answer the resent SYN: it is the path's round trip.
    /// Leaving out every answer past a second once a shorter one came kept the timeout at about
    /// 1.1 s, under most round trips, so most ports were tried again.
    #[test]
    fn connects_learn_round_trips_past_a_second_that_cannot_answer_the_resent_syn() {
        let samples = [900, 1300, 850, 1500, 1200, 1600, 950, 1400, 1100, 1250];
        let mut connects = Rtt::default();
        for sample in samples {
            connects.sample(ms(sample));
        }
        let bounds = Timeouts::capped(ms(10_000));
        assert!(connects.srtt().is_some_and(|srtt| srtt > ms(1000)));
        let timeout = connects.timeout(&bounds);
        assert!(timeout > ms(1600), "{timeout:?}");
    }
}
