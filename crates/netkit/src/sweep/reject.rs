//! Targets that rejected probes themselves (an ICMP error sent from the target's own address:
//! its firewall). A rate limiter that REJECTs what it does not let through looks so: the
//! rejections are the throttling signal, as silence is for a policer that drops (module
//! `loss`). Once a host known alive rejects a probe, or a host that rejected one answers
//! another, a limiter is at work: from then on the probes a target rejected do not count
//! against the re-probe limit (module `schedule`), up to [`Tag::MAX_ATTEMPT`] probes in all;
//! those extra re-probes come at the schedule's backed-off gaps (the longest from the fifth
//! probe on), so they fall in later windows of the limiter. And a control probe (to a host
//! known alive) that is rejected counts as lost at once, so the meter slows the sweep down
//! under a rejecting limiter as it does under a policer that drops. Before a limiter is seen,
//! rejections count as before: a firewall that rejects everything costs no extra probes.
//!
//! [`Tag::MAX_ATTEMPT`]: super::reply::Tag::MAX_ATTEMPT

use std::collections::HashMap;

/// Rejections by the targets themselves in one round.
#[derive(Debug, Default)]
pub struct Rejections {
    /// Probes rejected per target.
    count: HashMap<u64, u8>,
    /// Whether a rejecting limiter was seen.
    limiter: bool,
}

impl Rejections {
    /// None yet.
    pub fn new() -> Self {
        Rejections::default()
    }

    /// Target `index` rejected a probe; `alive` says whether it answered one in this round
    /// (then the rejection was a limiter's).
    pub fn rejected(&mut self, index: u64, alive: bool) {
        if alive {
            self.limiter = true;
            return;
        }
        let count = self.count.entry(index).or_default();
        *count = count.saturating_add(1);
    }

    /// Target `index` answered: if it had rejected a probe, a limiter is at work.
    pub fn answered(&mut self, index: u64) {
        if self.count.contains_key(&index) {
            self.limiter = true;
        }
    }

    /// Whether any target rejected a probe itself: the far side has a firewall that rejects,
    /// maybe a limiter, so re-probes wait long enough to span its window (module `schedule`).
    pub fn seen(&self) -> bool {
        self.limiter || !self.count.is_empty()
    }

    /// How many of target `index`'s probes do not count against the re-probe limit: those it
    /// rejected, once a limiter was seen; none before.
    pub fn spare(&self, index: u64) -> u8 {
        match self.limiter {
            true => self.count.get(&index).copied().unwrap_or(0),
            false => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_are_spared_only_once_a_limiter_was_seen() {
        let mut rejections = Rejections::new();
        assert!(!rejections.seen());
        rejections.rejected(3, false);
        rejections.rejected(3, false);
        assert!(rejections.seen());
        assert_eq!(rejections.spare(3), 0, "a plain REJECT firewall");
        rejections.answered(4);
        assert_eq!(rejections.spare(3), 0, "4 never rejected");
        rejections.answered(3);
        assert_eq!(rejections.spare(3), 2);
        assert_eq!(rejections.spare(5), 0);
    }

    #[test]
    fn a_host_known_alive_that_rejects_shows_a_limiter() {
        let mut rejections = Rejections::new();
        rejections.rejected(7, false);
        rejections.rejected(1, true);
        assert!(rejections.seen());
        assert_eq!(rejections.spare(7), 1);
        assert_eq!(rejections.spare(1), 0);
    }
}
