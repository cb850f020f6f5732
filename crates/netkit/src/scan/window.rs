//! Congestion windows: how many probes may be in flight, per host and for the whole scan, as
//! nmap's `timing.cc` does after RFC 2581. A window grows with every answer (by one per answer
//! in slow start, by about two per window's worth of answers in congestion avoidance) and
//! shrinks when a drop is seen — an answer that only a retransmission got, so an earlier
//! probe or its answer was lost. A host's window falls to one probe, the scan's to half, and
//! the slow-start threshold to three quarters of what was in flight; drops that come in a
//! batch (probes sent before the last decrease) shrink it only once. Until the first answer,
//! a timeout grows the window as an answer would: silence is no sign of congestion, and a
//! host (or a scan) that never answers would otherwise crawl at its initial window, ten
//! probes per timeout. Time is an input.
//!
//! A window may also be *bound by the queue* ([`Window::bound_by_queue`], the SYN scan's): a
//! loss-driven window grows until the bottleneck's queue overflows, then falls (a host's to one
//! probe) and waits for the retransmissions, which on a slow link costs more than the fuller
//! queue ever gained. Bound by the queue, slow start goes on past the initial threshold until
//! the round trip starts to rise ([`Delay::Rising`], as TCP's HyStart ends slow start), and
//! the window stops growing while the round trip shows a standing queue ([`Delay::Queueing`]):
//! the bottleneck stays busy (the window holds at least a round trip's worth) without
//! overflowing. Drops still shrink it as above.

use std::time::Instant;

/// Growth per answer in slow start.
const SLOW_INCR: f64 = 1.0;
/// Growth per window's worth of answers in congestion avoidance (nmap's `-T4` value).
const CA_INCR: f64 = 2.0;
/// The most by which growth is scaled up when many probes get no answer (filtered ports).
const SCALE_MAX: f64 = 50.0;
/// The window at the start.
const INITIAL: f64 = 10.0;
/// The slow-start threshold at the start.
const INITIAL_SSTHRESH: f64 = 75.0;
/// The smallest window.
const LOW: f64 = 1.0;
/// After a drop the threshold is what was in flight divided by this (nmap's `-T4` value).
const SSTHRESH_DIVISOR: f64 = 4.0 / 3.0;

/// What the round trip says about the queue on the path, for a window bound by the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delay {
    /// No sign of a queue.
    Clear,
    /// Recent round trips are above the least one: a queue starts to form.
    Rising,
    /// The smoothed round trip is well above the least one: a queue stands.
    Queueing,
}

/// Whose window: one host's falls to the minimum on a drop, the scan's only halves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One host's window.
    Host,
    /// The window over every host of the scan.
    Group,
}

/// A congestion window.
#[derive(Debug, Clone)]
pub struct Window {
    scope: Scope,
    cwnd: f64,
    ssthresh: f64,
    max: f64,
    expected: u64,
    received: u64,
    last_drop: Option<Instant>,
    queue_bound: bool,
}

impl Window {
    /// A window of `scope` that never grows beyond `max` probes.
    pub fn new(scope: Scope, max: usize) -> Self {
        let max = (max as f64).max(LOW);
        Window {
            scope,
            cwnd: INITIAL.min(max),
            ssthresh: INITIAL_SSTHRESH,
            max,
            expected: 0,
            received: 0,
            last_drop: None,
            queue_bound: false,
        }
    }

    /// Makes the window bound by the queue (see the module's documentation): slow start until
    /// the round trip rises, no growth while a queue stands.
    pub fn bound_by_queue(&mut self) {
        self.queue_bound = true;
        self.ssthresh = self.max;
    }

    /// The window, in probes.
    pub fn cwnd(&self) -> f64 {
        self.cwnd
    }

    /// Whether one more probe fits beside `in_flight` others.
    pub fn has_room(&self, in_flight: usize) -> bool {
        in_flight as f64 + 0.5 <= self.cwnd
    }

    /// Counts a probe that ended, answered or not: unanswered ones make the window grow faster
    /// per answer, so that a host with many filtered ports still opens up.
    pub fn expect(&mut self) {
        self.expected += 1;
    }

    /// Counts a probe that timed out: [`Window::expect`], and growth as for an answer while
    /// none ever came.
    pub fn lapse(&mut self) {
        self.expect();
        if self.received == 0 {
            self.grow(1.0);
        }
    }

    /// Grows the window for an answer (call [`Window::expect`] for it too).
    pub fn ack(&mut self) {
        self.ack_with(Delay::Clear);
    }

    /// Grows the window for an answer that came while the round trip said `delay` (which a
    /// window not bound by the queue ignores).
    pub fn ack_with(&mut self, delay: Delay) {
        self.ack_magnified(delay, 1.0);
    }

    /// Grows the window for an answer as [`Window::ack_with`] does, `gain` times as much (a
    /// timing probe's answer: [`super::timing`]).
    pub fn ack_magnified(&mut self, delay: Delay, gain: f64) {
        self.received += 1;
        if self.queue_bound {
            match delay {
                Delay::Clear => {}
                Delay::Rising if self.cwnd >= INITIAL_SSTHRESH => {
                    self.ssthresh = self.ssthresh.min(self.cwnd);
                }
                Delay::Rising => {}
                Delay::Queueing if self.cwnd >= INITIAL_SSTHRESH => {
                    self.ssthresh = self.ssthresh.min(self.cwnd);
                    return;
                }
                Delay::Queueing => {}
            }
        }
        let scale = (self.expected as f64 / self.received as f64).clamp(1.0, SCALE_MAX);
        self.grow(scale * gain);
    }

    /// Grows the window by one answer's worth, `scale` times.
    fn grow(&mut self, scale: f64) {
        if self.cwnd < self.ssthresh {
            self.cwnd = (self.cwnd + SLOW_INCR * scale).min(self.ssthresh);
        } else {
            self.cwnd += CA_INCR / self.cwnd * scale;
        }
        self.cwnd = self.cwnd.min(self.max);
    }

    /// Shrinks the window for a drop seen on a probe sent at `sent`, unless a decrease already
    /// happened after that probe left. Returns whether it shrank.
    pub fn drop(&mut self, in_flight: usize, sent: Instant, now: Instant) -> bool {
        if self.last_drop.is_some_and(|last| sent <= last) {
            return false;
        }
        self.cwnd = match self.scope {
            Scope::Host => LOW,
            Scope::Group => (self.cwnd / 2.0).max(LOW),
        };
        self.ssthresh = (in_flight as f64 / SSTHRESH_DIVISOR).max(2.0);
        self.last_drop = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn answered(window: &mut Window, n: usize) {
        for _ in 0..n {
            window.expect();
            window.ack();
        }
    }

    #[test]
    fn slow_start_then_congestion_avoidance() {
        let mut w = Window::new(Scope::Host, 1000);
        assert_eq!(w.cwnd(), 10.0);
        answered(&mut w, 65);
        assert_eq!(w.cwnd(), 75.0);
        // About CA_INCR per window's worth of answers from here on.
        answered(&mut w, 75);
        assert!((w.cwnd() - 77.0).abs() < 0.1, "{}", w.cwnd());
    }

    #[test]
    fn unanswered_probes_scale_the_growth() {
        let mut w = Window::new(Scope::Host, 1000);
        for _ in 0..9 {
            w.expect();
        }
        answered(&mut w, 1);
        // expected 10, received 1: one answer counts ten times.
        assert_eq!(w.cwnd(), 20.0);
    }

    #[test]
    fn silence_grows_the_window_until_the_first_answer() {
        let mut w = Window::new(Scope::Host, 1000);
        for _ in 0..10 {
            w.lapse();
        }
        assert_eq!(w.cwnd(), 20.0);
        answered(&mut w, 1);
        let after = w.cwnd();
        for _ in 0..10 {
            w.lapse();
        }
        assert_eq!(w.cwnd(), after);
    }

    #[test]
    fn a_window_bound_by_the_queue_grows_until_the_round_trip_rises() {
        let mut w = Window::new(Scope::Host, 1000);
        w.bound_by_queue();
        answered(&mut w, 190);
        // Slow start past the usual threshold (75) while nothing queues.
        assert_eq!(w.cwnd(), 200.0);
        w.expect();
        w.ack_with(Delay::Rising);
        // A rising round trip ends slow start: about two per window from here on.
        answered(&mut w, 200);
        assert!((w.cwnd() - 202.0).abs() < 0.2, "{}", w.cwnd());
        let held = w.cwnd();
        for _ in 0..500 {
            w.expect();
            w.ack_with(Delay::Queueing);
        }
        assert_eq!(w.cwnd(), held, "no growth while a queue stands");
        // Below the usual threshold the signs are ignored (jitter on a young estimate).
        let mut young = Window::new(Scope::Host, 1000);
        young.bound_by_queue();
        young.expect();
        young.ack_with(Delay::Queueing);
        assert_eq!(young.cwnd(), 11.0);
        // A window not bound by the queue ignores them.
        let mut plain = Window::new(Scope::Host, 1000);
        answered(&mut plain, 100);
        let before = plain.cwnd();
        plain.expect();
        plain.ack_with(Delay::Queueing);
        assert!(plain.cwnd() > before);
    }

    #[test]
    fn the_ceiling_holds() {
        let mut w = Window::new(Scope::Group, 40);
        answered(&mut w, 1000);
        assert_eq!(w.cwnd(), 40.0);
        assert!(w.has_room(39) && !w.has_room(40));
    }

    #[test]
    fn a_drop_shrinks_once_per_batch() {
        let t0 = Instant::now();
        let later = |ms| t0 + Duration::from_millis(ms);
        let mut host = Window::new(Scope::Host, 1000);
        let mut group = Window::new(Scope::Group, 1000);
        answered(&mut host, 30);
        answered(&mut group, 30);
        assert!(host.drop(40, later(0), later(100)));
        assert!(group.drop(40, later(0), later(100)));
        assert_eq!((host.cwnd(), group.cwnd()), (1.0, 20.0));
        // Another probe of the same batch (sent before the decrease) changes nothing.
        assert!(!host.drop(40, later(50), later(120)));
        assert_eq!(host.cwnd(), 1.0);
        // Slow start up to three quarters of what was in flight.
        answered(&mut host, 100);
        assert!(host.cwnd() >= 30.0, "{}", host.cwnd());
        assert!(host.drop(40, later(150), later(200)));
    }
}
