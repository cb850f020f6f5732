//! Round-trip times and the waits derived from them: a smoothed RTT and its variation as TCP
//! keeps them (RFC 6298), a probe timeout `srtt + 4·rttvar` between a floor and the user's
//! `--timeout`, the wait before each re-probe (the timeout, times 1.5 per earlier attempt as
//! fping backs off, up to 4 times the timeout), and the wait for late answers at the end of a
//! round. Answers that come after their wait still count until the round ends: the waits
//! decide when to probe again, not whether an answer is accepted.
//!
//! The scanner keeps the same kind of estimate (`scan/`); the two are to be merged into one
//! module shared by both.

use std::time::Duration;

/// The shortest probe timeout, whatever the RTTs (nmap's `--min-rtt-timeout` is 100 ms).
pub const MIN_TIMEOUT: Duration = Duration::from_millis(50);
/// The probe timeout before any answer was seen (fping's first timeout), at most the cap.
pub const INITIAL_TIMEOUT: Duration = Duration::from_millis(500);
/// Each re-probe of a silent target waits this much longer than the one before...
pub const BACKOFF: f64 = 1.5;
/// ... up to this many times the timeout.
pub const MAX_BACKOFF: f64 = 4.0;

/// Smoothed round-trip time, its variation, and the longest seen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rtt {
    srtt: Option<Duration>,
    rttvar: Duration,
    max: Duration,
    cap: Duration,
    patience: Duration,
}

impl Rtt {
    /// No samples yet; no wait will exceed `cap` (the user's `--timeout`).
    pub fn new(cap: Duration) -> Self {
        Rtt {
            srtt: None,
            rttvar: Duration::ZERO,
            max: Duration::ZERO,
            cap,
            patience: INITIAL_TIMEOUT,
        }
    }

    /// The same, waiting at least `patience` for late answers at the end of a round
    /// ([`INITIAL_TIMEOUT`] unless said).
    pub fn with_patience(self, patience: Duration) -> Self {
        Rtt { patience, ..self }
    }

    /// Takes in one measured round trip.
    pub fn sample(&mut self, rtt: Duration) {
        self.max = self.max.max(rtt);
        let Some(srtt) = self.srtt else {
            self.srtt = Some(rtt);
            self.rttvar = rtt / 2;
            return;
        };
        let error = srtt.max(rtt) - srtt.min(rtt);
        self.rttvar = (self.rttvar * 3 + error) / 4;
        self.srtt = Some((srtt * 7 + rtt) / 8);
    }

    /// The smoothed round-trip time, once there is one.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// How long to wait for the answer to a probe: `srtt + 4·rttvar`, at least
    /// [`MIN_TIMEOUT`], at most the cap; [`INITIAL_TIMEOUT`] (or the cap) before any sample.
    pub fn timeout(&self) -> Duration {
        let Some(srtt) = self.srtt else {
            return INITIAL_TIMEOUT.min(self.cap);
        };
        (srtt + self.rttvar * 4).clamp(MIN_TIMEOUT.min(self.cap), self.cap)
    }

    /// The wait after a target's `attempt`-th probe (from 1) before it is probed again:
    /// the timeout times [`BACKOFF`]^(attempt-1) (at most [`MAX_BACKOFF`]), at most the cap.
    pub fn gap(&self, attempt: u8) -> Duration {
        self.backed_off(self.timeout(), attempt)
    }

    /// The gap when the far side is known to reject probes itself (module `reject`): as
    /// [`gap`](Self::gap), with fping's timeout ([`INITIAL_TIMEOUT`]) as the least timeout, so
    /// that the re-probes of a silent target span a rate limiter's window, however short the
    /// round trip is.
    pub fn patient_gap(&self, attempt: u8) -> Duration {
        self.backed_off(self.timeout().max(INITIAL_TIMEOUT), attempt)
    }

    /// `timeout` times [`BACKOFF`]^(attempt-1) (at most [`MAX_BACKOFF`]), at most the cap.
    fn backed_off(&self, timeout: Duration, attempt: u8) -> Duration {
        let factor = BACKOFF.powi(i32::from(attempt.max(1)) - 1).min(MAX_BACKOFF);
        timeout.mul_f64(factor).min(self.cap)
    }

    /// How long the round waits for late answers after its last probe: the gap after that
    /// probe, twice the slowest round trip seen and the patience ([`INITIAL_TIMEOUT`] unless
    /// said), whichever is longest, at most the cap; the cap itself before any answer was
    /// seen (nothing says the way is short: behind a 700 ms round trip, a sweep without
    /// re-probes found no host after 500 ms). Paid once per round, so it can afford to be
    /// generous.
    pub fn final_wait(&self, attempt: u8) -> Duration {
        if self.srtt.is_none() {
            return self.cap;
        }
        let wait = self.gap(attempt).max(self.max * 2).max(self.patience);
        wait.min(self.cap)
    }

    /// When a control probe (a re-probe of a host known to be alive) counts as lost: twice the
    /// timeout (at most the cap), or twice the slowest round trip seen, whichever is longer.
    /// Answers later than the cap still find hosts, so a link whose round trips exceed it
    /// does not lose the controls it answers that late: counted lost, they looked like a far
    /// side throttling the sweep.
    pub fn control_timeout(&self) -> Duration {
        (self.timeout() * 2).min(self.cap).max(self.max * 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn starts_at_the_initial_timeout_within_the_cap() {
        assert_eq!(Rtt::new(ms(1000)).timeout(), INITIAL_TIMEOUT);
        assert_eq!(Rtt::new(ms(200)).timeout(), ms(200));
        assert_eq!(Rtt::new(ms(200)).final_wait(4), ms(200));
    }

    #[test]
    fn follows_rfc_6298() {
        let mut rtt = Rtt::new(ms(10_000));
        rtt.sample(ms(100));
        // srtt 100, rttvar 50: 100 + 200.
        assert_eq!(rtt.timeout(), ms(300));
        rtt.sample(ms(100));
        // rttvar 3/4·50 + 1/4·0 = 37.5; srtt 100.
        assert_eq!(rtt.srtt(), Some(ms(100)));
        assert_eq!(rtt.timeout(), ms(250));
        for _ in 0..100 {
            rtt.sample(ms(30));
        }
        assert!(rtt.srtt().is_some_and(|s| s > ms(29) && s < ms(31)));
        assert_eq!(rtt.timeout(), MIN_TIMEOUT, "the floor");
    }

    #[test]
    fn backs_off_by_half_each_attempt_up_to_the_cap() {
        let mut rtt = Rtt::new(ms(1000));
        for _ in 0..50 {
            rtt.sample(ms(100));
        }
        let timeout = rtt.timeout().as_millis();
        let gaps: Vec<u128> = (1..=7).map(|a| rtt.gap(a).as_millis()).collect();
        assert_eq!(gaps[0], timeout);
        assert_eq!(gaps[1], timeout * 3 / 2);
        assert!(gaps.windows(2).all(|w| w[1] >= w[0]), "{gaps:?}");
        assert_eq!(gaps[6], timeout * 4, "backoff limited: {gaps:?}");
        let mut slow = Rtt::new(ms(1000));
        slow.sample(ms(400));
        assert_eq!(slow.gap(7), ms(1000), "capped");
        assert_eq!(rtt.final_wait(1), ms(500), "at least the initial timeout");
        let mut patient = Rtt::new(ms(2000)).with_patience(ms(1000));
        patient.sample(ms(10));
        assert_eq!(patient.final_wait(1), ms(1000), "at least the patience");
        rtt.sample(ms(900));
        assert_eq!(rtt.final_wait(1), ms(1000), "twice the slowest, capped");
    }

    #[test]
    fn before_any_answer_the_round_waits_the_cap_for_late_ones() {
        let silent = Rtt::new(ms(1000));
        assert_eq!(
            silent.timeout(),
            INITIAL_TIMEOUT,
            "re-probes still start early"
        );
        assert_eq!(silent.final_wait(1), ms(1000));
        assert_eq!(Rtt::new(ms(3000)).final_wait(1), ms(3000));
        let mut heard = silent;
        heard.sample(ms(5));
        assert_eq!(
            heard.final_wait(1),
            INITIAL_TIMEOUT,
            "an answer seen: the patience"
        );
    }

    #[test]
    fn a_control_waits_twice_the_slowest_round_trip_even_beyond_the_cap() {
        let mut rtt = Rtt::new(ms(1000));
        assert_eq!(
            rtt.control_timeout(),
            ms(1000),
            "twice the initial timeout, capped"
        );
        rtt.sample(ms(1300));
        assert_eq!(rtt.control_timeout(), ms(2600));
        let mut fast = Rtt::new(ms(1000));
        for _ in 0..50 {
            fast.sample(ms(100));
        }
        let control = fast.control_timeout();
        assert!(control >= ms(200) && control < ms(201), "{control:?}");
    }

    #[test]
    fn the_patient_gap_waits_at_least_fpings_timeout() {
        let mut rtt = Rtt::new(ms(1000));
        for _ in 0..50 {
            rtt.sample(ms(10));
        }
        assert_eq!(rtt.gap(1), MIN_TIMEOUT);
        assert_eq!(rtt.patient_gap(1), INITIAL_TIMEOUT);
        assert_eq!(rtt.patient_gap(2), ms(750));
        assert_eq!(rtt.patient_gap(7), ms(1000), "capped");
        let mut slow = Rtt::new(ms(5000));
        slow.sample(ms(400));
        assert_eq!(slow.patient_gap(1), slow.gap(1), "a longer timeout stands");
    }
}
