//! The relay's per-packet decisions, without I/O: for each packet of one direction, whether
//! it is lost, how long it is held, whether it skipped the delay (reordered) and whether a
//! duplicate follows. Seeded, so the same packet sequence meets the same fate every run.

use std::time::Duration;

use crate::impairment::Impairment;

/// What happens to one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Dropped.
    Lost,
    /// Passed on after `hold`; `copy` is the hold of its duplicate, if one is made.
    Deliver {
        /// How long the packet is held.
        hold: Duration,
        /// Whether a link's reordering made it skip that link's delay.
        reordered: bool,
        /// How long the duplicate is held, when the packet is duplicated.
        copy: Option<Duration>,
    },
}

/// The decisions for one direction: its links' impairments, crossed in order.
#[derive(Debug)]
pub struct Path {
    stages: Vec<Impairment>,
    rng: fastrand::Rng,
}

impl Path {
    /// A path through `stages` with its own random sequence from `seed`.
    pub fn new(stages: Vec<Impairment>, seed: u64) -> Path {
        Path {
            stages,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// Whether the path does anything at all.
    pub fn is_active(&self) -> bool {
        self.stages.iter().any(Impairment::has_packet_effects)
    }

    /// Whether some packets get duplicated (so the relay needs their bytes).
    pub fn wants_copies(&self) -> bool {
        self.stages.iter().any(|s| s.dup > 0.0)
    }

    /// The next packet's fate. Every packet draws the same number of random values, so one
    /// packet's fate never shifts the draws of the next.
    pub fn fate(&mut self) -> Fate {
        let mut lost = false;
        let mut dup = false;
        let mut reordered = false;
        let mut hold = Duration::ZERO;
        for i in 0..self.stages.len() {
            let (l, d, r) = (self.rng.f64(), self.rng.f64(), self.rng.f64());
            let stage = &self.stages[i];
            lost |= l < stage.loss;
            dup |= d < stage.dup;
            let skip = r < stage.reorder;
            reordered |= skip;
            let delay = self.delay(i);
            if !skip {
                hold += delay;
            }
        }
        let copy = (0..self.stages.len()).map(|i| self.delay(i)).sum();
        if lost {
            return Fate::Lost;
        }
        Fate::Deliver {
            hold,
            reordered,
            copy: dup.then_some(copy),
        }
    }

    /// One draw of stage `i`'s delay: uniform in `delay ± jitter`.
    fn delay(&mut self, i: usize) -> Duration {
        let stage = &self.stages[i];
        let base = stage.delay.as_micros() as i64;
        let jitter = stage.jitter.as_micros() as i64;
        let offset = self.rng.i64(-jitter..=jitter);
        Duration::from_micros((base + offset).max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn fates(stages: Vec<Impairment>, seed: u64, n: usize) -> Vec<Fate> {
        let mut path = Path::new(stages, seed);
        (0..n).map(|_| path.fate()).collect()
    }

    #[test]
    fn same_seed_same_fates() {
        let imp = Impairment::none()
            .delay(ms(10))
            .jitter(ms(5))
            .loss(0.1)
            .dup(0.1);
        let a = fates(vec![imp.clone()], 7, 1000);
        assert_eq!(a, fates(vec![imp.clone()], 7, 1000));
        assert_ne!(a, fates(vec![imp], 8, 1000));
    }

    #[test]
    fn delays_stay_within_jitter_and_add_up_over_stages() {
        let imp = Impairment::none().delay(ms(10)).jitter(ms(5));
        for fate in fates(vec![imp.clone(), imp], 1, 2000) {
            let Fate::Deliver { hold, copy, .. } = fate else {
                panic!("lost without loss")
            };
            assert!(hold >= ms(10) && hold <= ms(30), "{hold:?}");
            assert_eq!(copy, None);
        }
    }

    #[test]
    fn rates_come_out_near_the_probabilities() {
        let imp = Impairment::none()
            .delay(ms(1))
            .loss(0.1)
            .dup(0.05)
            .reorder(0.2);
        let all = fates(vec![imp], 3, 20_000);
        let lost = all.iter().filter(|f| **f == Fate::Lost).count();
        let dup = all
            .iter()
            .filter(|f| matches!(f, Fate::Deliver { copy: Some(_), .. }))
            .count();
        let reordered = all
            .iter()
            .filter(|f| matches!(f, Fate::Deliver { reordered: true, hold, .. } if hold.is_zero()))
            .count();
        assert!((1_700..2_300).contains(&lost), "lost {lost}");
        assert!((700..1_100).contains(&dup), "dup {dup}");
        assert!((3_200..4_000).contains(&reordered), "reordered {reordered}");
    }

    #[test]
    fn a_clean_path_is_inactive() {
        assert!(!Path::new(vec![Impairment::none()], 1).is_active());
        assert!(Path::new(vec![Impairment::none().loss(0.5)], 1).is_active());
    }
}
