//! The health of one target: up or down, from what connections see (passive) and what the
//! active checks see, with time as an input so that every rule is testable without waiting.
//!
//! - **Active checks** follow HAProxy's counter exactly: a health value from 0 to
//!   `rise + fall - 1`; a target starts up at `rise` (so the first failed check takes a
//!   never-checked target down at once, as HAProxy's default `init-state up`), a passed check
//!   counts up and, once the count reaches `rise`, sets it to the top (HAProxy's "OK now": a
//!   down target comes up, an up one in transition is back to full health after one pass), a
//!   failed check counts an up target down and takes it down when it would drop below `rise`
//!   (so `fall` failures in a row from the top), and resets a down target's count to 0.
//! - **Passive**: a connect that fails takes the target down for a while: 1 s, doubling with
//!   every failure in a row up to [`BACKOFF_MAX`]. When that time is up one connection may try
//!   it again (the time is re-armed as it does, so only one waits on a silent target); its
//!   connect succeeding brings the target up. With active checks on, only the checks bring a
//!   target back up (HAProxy's `observe layer4` with `on-error mark-down`), and the backend
//!   reports only connects that failed otherwise than by a timeout (a lost SYN is the checks'
//!   to judge, as HAProxy without `observe` leaves it).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The first time a target is left alone after a failed connect.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// The longest time a target is left alone after failed connects in a row.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// A change of a target's state, for the `target` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Change {
    /// Up (true) or down now.
    pub up: bool,
    /// Why: `connected`, `connect failed: ...`, `3 checks failed: ...`, `2 checks passed`.
    pub reason: String,
}

/// The active-check parameters in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Thresholds {
    /// Passed checks in a row that bring a down target up.
    pub rise: u32,
    /// Failed checks in a row that take an up target down.
    pub fall: u32,
}

impl Thresholds {
    fn top(self) -> u32 {
        self.rise + self.fall - 1
    }
}

/// One target's health; shared by the connections and the checks of its rule, and kept
/// across reloads while the target stays in the rule.
#[derive(Debug)]
pub(super) struct Health {
    up: AtomicBool,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// HAProxy's health counter (active checks).
    counter: u32,
    /// How long the next passive hold lasts.
    backoff: Duration,
    /// When a passively held target may be tried again.
    retry_at: Option<Instant>,
    /// Failed checks in a row, and the last reason, for the record.
    failed: u32,
    /// Passed checks in a row, for the record.
    passed: u32,
}

impl Health {
    /// A target never seen failing: up, its counter at `rise` (HAProxy's start).
    pub fn new(rise: u32) -> Health {
        Health {
            up: AtomicBool::new(true),
            state: Mutex::new(State {
                counter: rise,
                backoff: BACKOFF_MIN,
                retry_at: None,
                failed: 0,
                passed: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether it is up.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Whether a connection may go to it now: it is up, or (without active checks) its
    /// passive hold is over.
    pub fn eligible(&self, now: Instant, checked: bool) -> bool {
        self.is_up() || (!checked && self.lock().retry_at.is_none_or(|at| now >= at))
    }

    /// A connection is about to try it: when it is down, the hold is re-armed, so the
    /// connections that come meanwhile go elsewhere.
    pub fn attempting(&self, now: Instant) {
        if !self.is_up() {
            let mut state = self.lock();
            state.retry_at = Some(now + state.backoff);
        }
    }

    /// A connect to it succeeded.
    pub fn connected(&self, checked: bool) -> Option<Change> {
        self.answered(checked, "connected")
    }

    /// It answered (`reason`, the record's: a connect succeeded, a UDP target replied).
    pub fn answered(&self, checked: bool, reason: &str) -> Option<Change> {
        if self.is_up() || checked {
            return None;
        }
        let mut state = self.lock();
        state.backoff = BACKOFF_MIN;
        state.retry_at = None;
        self.set(true, reason.into())
    }

    /// A connect to it failed (`why`): down for a while.
    pub fn connect_failed(&self, now: Instant, why: &str) -> Option<Change> {
        self.refused(now, format!("connect failed: {why}"))
    }

    /// It refused (`reason`, the record's): down for a while.
    pub fn refused(&self, now: Instant, reason: String) -> Option<Change> {
        let mut state = self.lock();
        state.backoff = match self.is_up() {
            true => BACKOFF_MIN,
            false => (state.backoff * 2).min(BACKOFF_MAX),
        };
        state.retry_at = Some(now + state.backoff);
        state.counter = 0;
        state.passed = 0;
        if !self.is_up() {
            return None;
        }
        self.set(false, reason)
    }

    /// An active check passed.
    pub fn check_passed(&self, limits: Thresholds) -> Option<Change> {
        let mut state = self.lock();
        state.failed = 0;
        state.passed += 1;
        if state.counter < limits.top() {
            state.counter += 1;
        }
        // HAProxy's "OK now": a count that reaches `rise` jumps to the top, so an up target
        // in transition is back to full health after one pass.
        if state.counter >= limits.rise {
            state.counter = limits.top();
        }
        if self.is_up() || state.counter < limits.rise {
            return None;
        }
        state.retry_at = None;
        state.backoff = BACKOFF_MIN;
        let passed = state.passed;
        self.set(true, format!("{passed} check(s) passed"))
    }

    /// An active check failed (`why`).
    pub fn check_failed(&self, limits: Thresholds, why: &str) -> Option<Change> {
        let mut state = self.lock();
        state.passed = 0;
        state.failed += 1;
        if state.counter > limits.rise {
            state.counter -= 1;
            return None;
        }
        state.counter = 0;
        if !self.is_up() {
            return None;
        }
        let failed = state.failed;
        self.set(false, format!("{failed} check(s) failed: {why}"))
    }

    fn set(&self, up: bool, reason: String) -> Option<Change> {
        self.up.store(up, Ordering::Relaxed);
        Some(Change { up, reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HAPROXY: Thresholds = Thresholds { rise: 2, fall: 3 };

    /// Runs checks (`+` passed, `-` failed) and returns the state after each: `U` or `D`.
    fn run(health: &Health, checks: &str) -> String {
        checks
            .chars()
            .map(|c| {
                match c {
                    '+' => health.check_passed(HAPROXY),
                    _ => health.check_failed(HAPROXY, "refused"),
                };
                if health.is_up() {
                    'U'
                } else {
                    'D'
                }
            })
            .collect()
    }

    #[test]
    fn checks_follow_haproxys_counter() {
        // Never checked: the first failure takes it down (HAProxy starts servers at `rise`).
        assert_eq!(run(&Health::new(2), "-"), "D");
        // Down: `rise` passes in a row bring it up; a failure in between starts over.
        assert_eq!(run(&Health::new(2), "-+-++"), "DDDDU");
        // Fully up (counter at the top): `fall` failures in a row take it down; a pass in
        // between brings it back to the top, so `fall` more are needed.
        assert_eq!(run(&Health::new(2), "++---"), "UUUUD");
        assert_eq!(run(&Health::new(2), "++--+--"), "UUUUUUU");
        assert_eq!(run(&Health::new(2), "++--+---"), "UUUUUUUD");
        // A fresh target (at `rise`, one failure from down) is at the top after one pass.
        assert_eq!(run(&Health::new(2), "+--"), "UUU");
        assert_eq!(run(&Health::new(2), "+---"), "UUUD");
    }

    #[test]
    fn a_change_says_why_once() {
        let health = Health::new(2);
        let down = health.check_failed(HAPROXY, "connection refused");
        assert_eq!(
            down,
            Some(Change {
                up: false,
                reason: "1 check(s) failed: connection refused".into()
            })
        );
        assert_eq!(health.check_failed(HAPROXY, "connection refused"), None);
        assert_eq!(health.check_passed(HAPROXY), None);
        let up = health.check_passed(HAPROXY).unwrap();
        assert_eq!(up.reason, "2 check(s) passed");
    }

    #[test]
    fn a_failed_connect_holds_the_target_with_a_doubling_backoff() {
        let health = Health::new(2);
        let t0 = Instant::now();
        let change = health.connect_failed(t0, "connection refused").unwrap();
        assert_eq!(change.reason, "connect failed: connection refused");
        assert!(!health.eligible(t0, false));
        assert!(health.eligible(t0 + BACKOFF_MIN, false));
        // The retry is taken: the hold is re-armed for the others meanwhile.
        health.attempting(t0 + BACKOFF_MIN);
        assert!(!health.eligible(t0 + BACKOFF_MIN, false));
        assert_eq!(health.connect_failed(t0 + BACKOFF_MIN, "refused"), None);
        let t1 = t0 + BACKOFF_MIN;
        assert!(!health.eligible(t1 + BACKOFF_MIN, false));
        assert!(health.eligible(t1 + 2 * BACKOFF_MIN, false));
        for _ in 0..20 {
            health.connect_failed(t1, "refused");
        }
        assert!(health.eligible(t1 + BACKOFF_MAX, false));
        assert!(!health.eligible(t1 + BACKOFF_MAX - Duration::from_millis(1), false));
        let up = health.connected(false).unwrap();
        assert_eq!((up.up, up.reason.as_str()), (true, "connected"));
        assert_eq!(health.connected(false), None);
    }

    #[test]
    fn with_checks_only_checks_bring_a_target_back() {
        let health = Health::new(2);
        let t0 = Instant::now();
        health.connect_failed(t0, "refused").unwrap();
        assert!(!health.eligible(t0 + BACKOFF_MAX, true));
        assert_eq!(health.connected(true), None);
        assert!(!health.is_up());
        assert_eq!(run(&health, "++"), "DU");
    }
}
