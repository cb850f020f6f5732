//! A witness for a round that found nothing without retries (`--retries 0`): its first probes
//! went faster than a policer may pass, and no answer came back, so there is no host to send
//! control probes to and nothing tells an empty range from a far side that let none of them
//! through (a policer whose bucket was empty as the sweep began: another flow used it up). Up
//! to [`PROBES`] silent targets are probed once more at [`RATE`] (fping's 100/s) before the
//! probes of the faster epochs count as tries: an answer then finds a host, and the meter's
//! controls take it from there (module `loss`); none, within a probe timeout after the last
//! (half a control's), and the range is taken for empty.
//!
//! A /26 behind a policer of 100/s with an empty bucket was reported all down on its one probe
//! each (64 of 64; fping -r 0 finds the 62 it sweeps). An empty range pays one batch of
//! re-probes at that rate and the round's last wait after them (an empty /26 in the lab:
//! 1.0 s before, 1.8 s now; fping -r 0 1.1 s); a later round of `--every` pays none.

use tokio::time::{Duration, Instant};

/// Witness probes, at least (the batch being re-probed goes to its end).
pub const PROBES: u32 = 16;
/// The rate of the witness probes, probes per second: fping's. Only a round whose first
/// probes went faster has one.
pub const RATE: u64 = 100;

/// Where the witness stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Witness {
    /// Not begun: the round's first probes wait for it, if it is wanted.
    Idle,
    /// Its probes go out at the floor rate until `until`; `from` is the rate before.
    Probing { until: Instant, from: u64 },
    /// Its probes are out; their answers may come until `until`; `from` is the rate before.
    Waiting { until: Instant, from: u64 },
    /// Over: a host answered, or none did in time, or none was wanted.
    Done,
}

impl Witness {
    /// Begins at `now`, the rate `from` going to `floor`: [`PROBES`] at that rate.
    pub fn begin(now: Instant, from: u64, floor: u64) -> Witness {
        let each = Duration::from_nanos(1_000_000_000 / floor.max(1));
        Witness::Probing {
            until: now + each * PROBES,
            from,
        }
    }

    /// The state at `now`, a control timeout being `timeout`: the probes' time over, their
    /// answers awaited; that over too, `Some(rate before)` (to go back to) and done.
    pub fn tick(&mut self, now: Instant, timeout: Duration) -> Option<u64> {
        match *self {
            Witness::Probing { until, from } if now >= until => {
                *self = Witness::Waiting {
                    until: now + timeout,
                    from,
                };
                None
            }
            Witness::Waiting { until, from } if now >= until => {
                *self = Witness::Done;
                Some(from)
            }
            _ => None,
        }
    }

    /// Whether it is over.
    pub fn done(&self) -> bool {
        *self == Witness::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_then_waits_a_timeout_then_gives_the_rate_back() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut w = Witness::begin(t0, 10_000, 100);
        assert!(matches!(w, Witness::Probing { .. }));
        assert_eq!(w.tick(t0 + ms(100), ms(500)), None);
        assert!(matches!(w, Witness::Probing { .. }), "16 at 100/s: 160 ms");
        assert_eq!(w.tick(t0 + ms(160), ms(500)), None);
        assert!(matches!(w, Witness::Waiting { .. }));
        assert_eq!(w.tick(t0 + ms(600), ms(500)), None);
        assert_eq!(w.tick(t0 + ms(660), ms(500)), Some(10_000));
        assert!(w.done());
        assert_eq!(w.tick(t0 + ms(9000), ms(500)), None);
    }
}
