//! Timing probes (nmap's "port pings"): a host whose ports mostly drop probes answers too
//! rarely for its congestion window to grow, which only answers make grow. A host with two
//! open ports and a thousand filtered ones would be scanned at its initial window (ten probes
//! per timeout) from its second answer on. So, while the host has ports left to try and has
//! been silent a while, a probe goes again to a port that answered before; its answer grows
//! the windows [`MAGNIFIER`] times as much as an ordinary one and refreshes the round-trip
//! estimate, and settles nothing. nmap sends one after 1.25 s without an answer and ten
//! probes; here the silence is one timeout (at least 250 ms, at most nmap's 1.25 s),
//! so that a scan over a short round trip does not crawl for over a second first. Time is an
//! input.

use std::time::{Duration, Instant};

use super::schedule::ProbeId;

/// How many ordinary answers a timing probe's answer counts for in the windows' growth
/// (nmap's `ping_magnifier`).
pub const MAGNIFIER: f64 = 3.0;
/// The fewest probes to the host between two timing probes (nmap's value).
const MIN_PROBES: u32 = 10;
/// The shortest silence before a timing probe.
const MIN_SILENCE: Duration = Duration::from_millis(250);
/// The longest silence before a timing probe (nmap's `pingtime`).
const MAX_SILENCE: Duration = Duration::from_millis(1250);

/// One host's timing probes.
#[derive(Debug, Default)]
pub struct Timing {
    /// The port index to probe, and whether it was closed (a reset: preferred, it opens no
    /// connection to a service).
    port: Option<(usize, bool)>,
    /// When the host last answered anything.
    heard: Option<Instant>,
    /// When the last timing probe left.
    last: Option<Instant>,
    /// Probes sent to the host since then.
    since: u32,
    /// The timing probe in flight.
    live: Option<ProbeId>,
}

impl Timing {
    /// Records that port index `port` answered with a handshake, or with a reset (`closed`).
    pub fn answered_port(&mut self, port: usize, closed: bool) {
        match self.port {
            Some((_, true)) => {}
            Some(_) if !closed => {}
            _ => self.port = Some((port, closed)),
        }
    }

    /// Records an answer from the host at `now`.
    pub fn heard(&mut self, now: Instant) {
        self.heard = Some(now);
    }

    /// Records an ordinary probe sent to the host.
    pub fn sent(&mut self) {
        self.since = self.since.saturating_add(1);
    }

    /// The port index a timing probe should go to at `now`, if one is due: a port answered,
    /// none is in flight, enough probes left since the last one, and the host has been
    /// silent for `timeout` (within the bounds) since its last answer and the last timing
    /// probe. `timeout` is asked only when the rest allows one (the scheduler asks every
    /// host at every send).
    pub fn due(&self, now: Instant, timeout: impl FnOnce() -> Duration) -> Option<usize> {
        let (port, _) = self.port?;
        if self.live.is_some() || self.since < MIN_PROBES {
            return None;
        }
        let silence = timeout().clamp(MIN_SILENCE, MAX_SILENCE);
        let quiet = |at: Option<Instant>| at.is_none_or(|at| now.duration_since(at) >= silence);
        (quiet(self.heard) && quiet(self.last)).then_some(port)
    }

    /// Records timing probe `id` sent at `now`.
    pub fn launched(&mut self, id: ProbeId, now: Instant) {
        self.live = Some(id);
        self.last = Some(now);
        self.since = 0;
    }

    /// The timing probe in flight, taken out (it ended, or is being closed).
    pub fn take_live(&mut self) -> Option<ProbeId> {
        self.live.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn due_only_after_an_answer_enough_probes_and_silence() {
        let t0 = Instant::now();
        let mut t = Timing::default();
        for _ in 0..20 {
            t.sent();
        }
        assert_eq!(
            t.due(t0 + ms(5000), || ms(100)),
            None,
            "no port answered yet"
        );
        t.answered_port(7, false);
        t.heard(t0);
        assert_eq!(
            t.due(t0 + ms(249), || ms(100)),
            None,
            "at least 250 ms of silence"
        );
        assert_eq!(t.due(t0 + ms(250), || ms(100)), Some(7));
        assert_eq!(
            t.due(t0 + ms(1249), || ms(3000)),
            None,
            "one timeout, at most 1.25 s"
        );
        assert_eq!(t.due(t0 + ms(1250), || ms(3000)), Some(7));
        t.launched(1, t0 + ms(1250));
        assert_eq!(
            t.due(t0 + ms(9000), || ms(100)),
            None,
            "one in flight at a time"
        );
        assert_eq!(t.take_live(), Some(1));
        assert_eq!(
            t.due(t0 + ms(9000), || ms(100)),
            None,
            "ten probes since the last"
        );
        for _ in 0..10 {
            t.sent();
        }
        assert_eq!(t.due(t0 + ms(9000), || ms(100)), Some(7));
    }

    #[test]
    fn a_closed_port_is_preferred() {
        let mut t = Timing::default();
        for _ in 0..10 {
            t.sent();
        }
        let now = Instant::now();
        t.answered_port(3, false);
        t.answered_port(4, false);
        assert_eq!(t.due(now, || ms(0)), Some(3));
        t.answered_port(5, true);
        t.answered_port(6, false);
        t.answered_port(8, true);
        assert_eq!(t.due(now, || ms(0)), Some(5));
    }
}
