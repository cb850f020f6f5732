//! The connect attempts of one client connection (`--retries`, HAProxy's `retries` with
//! `option redispatch`): a first round tries every target once in the balance's order, then
//! up to `retries` more attempts go on round the same order from the target after the last
//! one tried, each to the next target that may take connections now (its health says so),
//! wrapping around to one that is down only when no other is left. The first round passes
//! over a target that is down as long as one that is up is left to try: a client is never
//! handed to a target its checks failed (a 503 page, a wrong service) because the connect to
//! a healthy one timed out once, as HAProxy never sends one to a server that is down. A target that refused the
//! connect (or failed otherwise than by a timeout) is not tried again for this client: a
//! timeout can be a lost SYN, a refusal is an answer. The count of attempts is bounded, so a
//! dead target never holds a client longer than the attempts' connect timeouts.

/// Where one client connection is in its attempts. Nothing is allocated for a rule of one
/// target, nor until an attempt fails for good: this runs for every client.
#[derive(Debug)]
pub(super) struct Attempts {
    /// The targets (indexes into the rule's) in the balance's order; empty for a rule of one
    /// target (index 0).
    order: Vec<usize>,
    /// How many targets `order` stands for.
    len: usize,
    /// Whether the target at each position failed for good (empty until one did).
    definitive: Vec<bool>,
    /// The position of the last target tried, if any.
    last: Option<usize>,
    /// The first round's next position (`len` once it is over).
    walk: usize,
    /// Attempts made so far.
    made: usize,
    /// Attempts after the first round still allowed.
    retries: u32,
}

impl Attempts {
    /// The attempts over `order` (never empty), with `retries` after the first round.
    pub fn new(order: Vec<usize>, retries: u32) -> Attempts {
        Attempts {
            len: order.len(),
            order,
            definitive: Vec::new(),
            last: None,
            walk: 0,
            made: 0,
            retries,
        }
    }

    /// The attempts of a rule of one target, with `retries` after the first.
    pub fn single(retries: u32) -> Attempts {
        Attempts {
            len: 1,
            ..Attempts::new(Vec::new(), retries)
        }
    }

    /// The target at `position` of the order.
    fn target(&self, position: usize) -> usize {
        self.order.get(position).copied().unwrap_or(0)
    }

    /// Whether the target at `position` failed for good.
    fn is_definitive(&self, position: usize) -> bool {
        self.definitive.get(position).copied().unwrap_or(false)
    }

    /// The next target to try (an index into the rule's targets), `None` when none is left;
    /// `eligible` says whether a target may take connections now.
    pub fn next(&mut self, eligible: impl Fn(usize) -> bool) -> Option<usize> {
        let position = match self.next_of_first_round(&eligible) {
            Some(position) => position,
            None => self.next_retry(&eligible)?,
        };
        self.made += 1;
        self.last = Some(position);
        Some(self.target(position))
    }

    /// The first round's next position: the next in the order, passing over a target that is
    /// down while one that is up is left to try (a single target is not asked about).
    fn next_of_first_round(&mut self, eligible: &impl Fn(usize) -> bool) -> Option<usize> {
        while self.walk < self.len {
            let position = self.walk;
            self.walk += 1;
            let alone = self.len == 1;
            if alone || eligible(self.target(position)) || !self.any_eligible_left(eligible) {
                return Some(position);
            }
        }
        None
    }

    /// A retry's position: round the order from the target after the last one tried, the
    /// first that may take connections, else the first not refused.
    fn next_retry(&mut self, eligible: &impl Fn(usize) -> bool) -> Option<usize> {
        if self.retries == 0 {
            return None;
        }
        let len = self.len;
        let from = self.last.map_or(0, |last| last + 1);
        let open: Vec<usize> = (0..len)
            .map(|k| (from + k) % len)
            .filter(|&p| !self.is_definitive(p))
            .collect();
        let first = open.iter().find(|&&p| eligible(self.target(p)));
        let position = *first.or(open.first())?;
        self.retries -= 1;
        Some(position)
    }

    /// Whether a target that may take connections has not refused (may be tried).
    fn any_eligible_left(&self, eligible: &impl Fn(usize) -> bool) -> bool {
        (0..self.len).any(|p| !self.is_definitive(p) && eligible(self.target(p)))
    }

    /// The last attempt failed; `definitive`: not by a timeout, so its target is not tried
    /// again.
    pub fn failed(&mut self, definitive: bool) {
        let Some(last) = self.last else {
            return;
        };
        if definitive {
            self.definitive.resize(self.len, false);
            self.definitive[last] = true;
        }
    }

    /// The attempts made so far.
    #[cfg(test)]
    pub fn made(&self) -> usize {
        self.made
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The targets tried when every attempt fails, `definitive` for the targets in `refusing`,
    /// with the targets in `down` not eligible (a rule of one target as the backend makes it).
    fn tried(order: &[usize], retries: u32, refusing: &[usize], down: &[usize]) -> Vec<usize> {
        let mut attempts = match order {
            [0] => Attempts::single(retries),
            _ => Attempts::new(order.to_vec(), retries),
        };
        let mut tried = Vec::new();
        while let Some(target) = attempts.next(|t| !down.contains(&t)) {
            tried.push(target);
            attempts.failed(refusing.contains(&target));
            assert!(tried.len() <= order.len() + retries as usize, "{tried:?}");
        }
        assert_eq!(attempts.made(), tried.len());
        tried
    }

    #[test]
    fn no_retries_is_one_round_in_the_balance_order() {
        assert_eq!(tried(&[2, 0, 1], 0, &[], &[]), [2, 0, 1]);
        assert_eq!(tried(&[0], 0, &[], &[]), [0]);
    }

    #[test]
    fn a_single_target_is_retried_after_timeouts_but_not_after_a_refusal() {
        assert_eq!(tried(&[0], 3, &[], &[]), [0, 0, 0, 0]);
        assert_eq!(tried(&[0], 3, &[0], &[]), [0]);
    }

    #[test]
    fn retries_go_round_the_order_from_the_target_after_the_last_one() {
        assert_eq!(tried(&[1, 0], 3, &[], &[]), [1, 0, 1, 0, 1]);
        assert_eq!(tried(&[0, 1, 2], 2, &[], &[]), [0, 1, 2, 0, 1]);
    }

    #[test]
    fn refused_targets_are_not_retried() {
        assert_eq!(tried(&[0, 1, 2], 3, &[1], &[]), [0, 1, 2, 0, 2, 0]);
        assert_eq!(tried(&[0, 1], 3, &[0, 1], &[]), [0, 1]);
    }

    #[test]
    fn retries_prefer_eligible_targets_and_fall_back_to_down_ones() {
        // 0 drops SYNs (down), 1 loses one: the retries go to 1.
        assert_eq!(tried(&[0, 1], 3, &[], &[0]), [1, 1, 1, 1]);
        // Every target down: round the order as if all were up.
        assert_eq!(tried(&[0, 1], 2, &[], &[0, 1]), [0, 1, 0, 1]);
    }

    #[test]
    fn the_first_round_passes_over_down_targets_while_an_up_one_is_left() {
        // Up 0 times out: it is tried again, never down 1 (its checks failed), as HAProxy.
        assert_eq!(tried(&[0, 1], 0, &[], &[1]), [0]);
        assert_eq!(tried(&[0, 1, 2], 2, &[], &[1]), [0, 2, 0, 2]);
        // Up 0 refused: down 1 is what is left.
        assert_eq!(tried(&[0, 1], 0, &[0], &[1]), [0, 1]);
        assert_eq!(tried(&[0, 1, 2], 1, &[0], &[1, 2]), [0, 1, 2, 1]);
    }

    #[test]
    fn the_first_success_ends_the_attempts() {
        let mut attempts = Attempts::new(vec![0, 1], 3);
        assert_eq!(attempts.next(|_| true), Some(0));
        attempts.failed(false);
        assert_eq!(attempts.next(|_| true), Some(1));
        // 1 connected: the caller stops asking.
        assert_eq!(attempts.made(), 2);
    }
}
