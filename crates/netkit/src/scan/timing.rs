//! Timing probes (nmap's "port pings"): a host whose ports mostly drop probes answers too
//! rarely for its congestion window to grow, which only answers make grow. A host with two
//! open ports and a thousand filtered ones would be scanned at its initial window (ten probes
//! per timeout) from its second answer on. So, while the host has ports left to try and has
//! been silent a while, a probe goes again to a port that answered before; its answer grows
//! the windows [`MAGNIFIER`] times as much as an ordinary one and refreshes the round-trip
//! estimate, and settles nothing. nmap sends one after 1.25 s without an answer and ten
//! probes; here the silence is one timeout (at least 250 ms, at most nmap's 1.25 s),
//! so that a scan over a short round trip does not crawl for over a second first.
//!
//! Timing probes are also the scan's control probes: a port that answered before answers
//! again unless the probe or its answer is lost, so their fate measures the loss of probes
//! that ordinary answers cannot (behind a firewall passing 10 SYNs a second, a scan sending
//! hundreds a second gets answers that look like a clean link's, while nearly every probe is
//! lost; see [`super::pace::RateControl::control`]). So a host that answers too gets one
//! after every 50 to 100 probes since the last one ended, counted, not timed: a firewall's
//! token bucket passes the first probe of each burst, and a check sent when a time came would
//! be that first probe more often than not (behind a firewall passing 10 SYNs a second, 4 of 6
//! such checks were answered where 1 in 400 probes was). Time is an input.

use std::time::{Duration, Instant};

use super::schedule::ProbeId;

/// How many ordinary answers a timing probe's answer counts for in the windows' growth
/// (nmap's `ping_magnifier`).
pub const MAGNIFIER: f64 = 3.0;
/// The fewest probes to the host between two timing probes (nmap's value).
const MIN_PROBES: u32 = 10;
/// The fewest probes to a host that is not silent between two timing probes (at most 2% more
/// probes).
const CHECK_PROBES: u32 = 50;
/// A host that answered fewer than one probe in this many gets a check after every 10 to 20
/// probes ([`MIN_PROBES`]) rather than 50 to 100: its answers are too few to show loss, and
/// its checks are all the scan learns of it (behind a SYN policer passing 20 a second, 33
/// silent ports of 36 left three checks in the two seconds the scan took).
const SCARCE: u32 = 10;
/// Probes a host sends after a pause of its own (its retries wait for their timeouts, then
/// leave at once) before a timing probe that its silence calls for: a firewall's token bucket,
/// full after the pause, passes the first few SYNs of the burst, and a timing probe among
/// them would come back whatever the firewall does to the rest (behind a 20/s SYN limit with a
/// burst of 5, the one timing probe of a scan of 36 mostly dropped ports led its burst and was
/// answered, while every burst lost all but its first five).
const IN_BURST: u32 = 8;
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
    /// Timing probes sent so far.
    launched: u32,
    /// Answers heard and ordinary probes sent, over the whole scan of the host.
    totals: (u32, u32),
    /// When the last ordinary probe left, and the probes sent since the host last paused
    /// sending for [`MIN_SILENCE`].
    run: (Option<Instant>, u32),
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
        self.totals.0 = self.totals.0.saturating_add(1);
        self.heard = Some(now);
    }

    /// Records an ordinary probe sent to the host.
    pub fn sent(&mut self, now: Instant) {
        let (last, run) = &mut self.run;
        if last.is_some_and(|last| now.duration_since(last) >= MIN_SILENCE) {
            *run = 0;
        }
        *last = Some(now);
        *run = run.saturating_add(1);
        self.totals.1 = self.totals.1.saturating_add(1);
        self.since = self.since.saturating_add(1);
    }

    /// The port index a timing probe should go to at `now`, if one is due: a port answered,
    /// none is in flight, and either enough probes left since the last one and the host has
    /// been silent for `timeout` (within the bounds) since its last answer and the last
    /// timing probe (and 8 probes, `IN_BURST`, left since the host last paused sending), or the
    /// check's count of probes left since the last one ended.
    /// `timeout` is asked only when the rest allows one (the scheduler asks every host at
    /// every send).
    pub fn due(&self, now: Instant, timeout: impl FnOnce() -> Duration) -> Option<usize> {
        let (port, _) = self.port?;
        if self.live.is_some() || self.since < MIN_PROBES {
            return None;
        }
        let (last, run) = self.run;
        let paused = last.is_some_and(|last| now.duration_since(last) >= MIN_SILENCE);
        if paused || run < IN_BURST {
            return None;
        }
        if self.since >= self.check_after() {
            return Some(port);
        }
        let silence = timeout().clamp(MIN_SILENCE, MAX_SILENCE);
        let quiet = |at: Option<Instant>| at.is_none_or(|at| now.duration_since(at) >= silence);
        (quiet(self.heard) && quiet(self.last)).then_some(port)
    }

    /// The probes after which the next check is due: [`CHECK_PROBES`] and a share of as many
    /// again that moves with each timing probe (the golden ratio's sequence), so that checks
    /// fall anywhere in a burst of sends.
    fn check_after(&self) -> u32 {
        let spread = (f64::from(self.launched) * 0.618_034).fract();
        let every = match self.scarce() {
            true => MIN_PROBES,
            false => CHECK_PROBES,
        };
        every + (spread * f64::from(every)) as u32
    }

    /// Whether the host answered fewer than one probe in ten (`SCARCE`): its answers are
    /// too few to show loss, and its checks are all the scan learns of it.
    pub fn scarce(&self) -> bool {
        let (answers, sent) = self.totals;
        answers.saturating_mul(SCARCE) < sent
    }

    /// Records timing probe `id` sent at `now`.
    pub fn launched(&mut self, id: ProbeId, now: Instant) {
        self.live = Some(id);
        self.last = Some(now);
        self.since = 0;
        self.launched = self.launched.wrapping_add(1);
    }

    /// The timing probe in flight, taken out (it ended, or is being closed); probes are
    /// counted for the next from here.
    pub fn take_live(&mut self) -> Option<ProbeId> {
        let live = self.live.take();
        if live.is_some() {
            self.since = 0;
        }
        live
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
            t.sent(t0);
        }
        assert_eq!(
            t.due(t0 + ms(5000), || ms(100)),
            None,
            "no port answered yet"
        );
        t.answered_port(7, false);
        // Answers to one probe in ten at least: not a host whose answers are scarce.
        for _ in 0..5 {
            t.heard(t0);
        }
        // The host sends on meanwhile (a timing probe never leads a burst after a pause).
        let burst = |t: &mut Timing, at: Duration| (0..IN_BURST).for_each(|_| t.sent(t0 + at));
        burst(&mut t, ms(249));
        assert_eq!(
            t.due(t0 + ms(249), || ms(100)),
            None,
            "at least 250 ms of silence"
        );
        assert_eq!(t.due(t0 + ms(250), || ms(100)), Some(7));
        burst(&mut t, ms(1249));
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
        assert_eq!(t.due(t0 + ms(9000), || ms(100)), None, "after a pause");
        for _ in 0..10 {
            t.sent(t0 + ms(9000));
        }
        assert_eq!(t.due(t0 + ms(9000), || ms(100)), Some(7));
    }

    /// A host that answers fewer than one probe in ten gets a check after 10 to 20 probes,
    /// never as the first probes of a burst after a pause of its sends.
    #[test]
    fn a_host_whose_answers_are_scarce_gets_checks_amid_its_bursts() {
        let t0 = Instant::now();
        let mut t = Timing::default();
        t.answered_port(3, false);
        t.heard(t0);
        let mut n = 0;
        while t.due(t0, || ms(1000)).is_none() {
            t.sent(t0);
            n += 1;
            assert!(n <= 2 * MIN_PROBES, "after {n}");
        }
        assert!(n >= MIN_PROBES, "after {n}");
        let at = t0 + ms(500);
        for i in 0..IN_BURST {
            assert_eq!(t.due(at, || ms(1000)), None, "{i} into the burst");
            t.sent(at);
        }
        assert_eq!(t.due(at, || ms(1000)), Some(3));
    }

    /// A host that keeps answering gets a check after 50 to 100 probes since the last one
    /// ended, a different count each time.
    #[test]
    fn a_host_that_answers_gets_a_check_every_fifty_to_a_hundred_probes() {
        let t0 = Instant::now();
        let mut t = Timing::default();
        t.answered_port(3, true);
        let mut counts = Vec::new();
        for id in 0..8 {
            let mut n = 0;
            while t.due(t0, || ms(100)).is_none() {
                t.heard(t0);
                t.sent(t0);
                n += 1;
                assert!(n <= 2 * CHECK_PROBES, "check {id} after {n}");
            }
            assert!(n >= CHECK_PROBES, "check {id} after {n}");
            counts.push(n);
            t.launched(id, t0);
            t.sent(t0);
            assert_eq!(t.due(t0, || ms(100)), None, "one in flight");
            assert_eq!(t.take_live(), Some(id));
        }
        counts.dedup();
        assert!(counts.len() >= 6, "{counts:?}");
    }

    #[test]
    fn a_closed_port_is_preferred() {
        let mut t = Timing::default();
        let now = Instant::now();
        for _ in 0..10 {
            t.sent(now);
        }
        t.answered_port(3, false);
        t.answered_port(4, false);
        assert_eq!(t.due(now, || ms(0)), Some(3));
        t.answered_port(5, true);
        t.answered_port(6, false);
        t.answered_port(8, true);
        assert_eq!(t.due(now, || ms(0)), Some(5));
    }
}
