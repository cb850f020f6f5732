//! The per-try trace of `-vv` (the `debug` level), one stderr line per event, so that a port's
//! state can be followed without a capture: each try as it leaves (port, try number, time),
//! how its socket ended (the answer and its round trip, no answer until its expiry, or closed
//! by the scan unanswered) and each port's verdict. Times count from the start of the scan.
//! A try that timed out shows as the next try of its port leaving; its socket may stay open
//! for a late answer (and, for a connect, for the answers to its kernel's own resends of the
//! SYN, a second and three seconds after it) until one of its end lines.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::answer::Answer;
use super::schedule::{Probe, ProbeId, Reply, Verdict, KERNEL_SYN_RESENDS};

/// The tries in flight and the scan's start; empty and silent unless `debug` is enabled.
#[derive(Debug)]
pub(super) struct Trace {
    on: bool,
    /// Whether a try's kernel resends its SYN while it is open (connects): an answer after
    /// such a resend is named with it.
    resends: bool,
    started: Instant,
    tries: HashMap<ProbeId, Try>,
}

/// One try still open, as its lines name it.
#[derive(Debug)]
struct Try {
    dst: SocketAddr,
    /// 1 for a port's first try.
    number: u32,
    timing: bool,
    at: Instant,
}

impl Trace {
    /// A trace of a scan started at `started`, on if the `debug` level is; `resends`: the
    /// kernel resends each try's SYN while it is open ([`KERNEL_SYN_RESENDS`]).
    pub(super) fn new(started: Instant, resends: bool) -> Self {
        Trace {
            on: tracing::enabled!(tracing::Level::DEBUG),
            resends,
            started,
            tries: HashMap::new(),
        }
    }

    /// `probe`, to `dst`, left at `now`.
    pub(super) fn sent(&mut self, probe: &Probe, dst: SocketAddr, now: Instant) {
        if !self.on {
            return;
        }
        let tried = Try {
            dst,
            number: probe.tryno + 1,
            timing: probe.timing,
            at: now,
        };
        tracing::debug!("scan {dst}: {} sent at {}", tried.name(), self.at(now));
        self.tries.insert(probe.id, tried);
    }

    /// Try `id`'s socket ended at `now` with `reply`.
    pub(super) fn ended(&mut self, id: ProbeId, reply: &Reply, now: Instant) {
        let Some(tried) = self.take(id) else {
            return;
        };
        let (dst, name, at) = (tried.dst, tried.name(), self.at(now));
        match reply {
            Reply::Answered(answer, rtt) => {
                let (what, ms) = (describe(answer), rtt.as_millis());
                let resent = self.resent(&tried, *rtt);
                tracing::debug!("scan {dst}: {name} answered at {at}: {what} after {ms}ms{resent}");
            }
            Reply::Silent => tracing::debug!("scan {dst}: {name} unanswered, expired at {at}"),
            Reply::Phantom => tracing::debug!("scan {dst}: {name} joined another try at {at}"),
            Reply::Busy => tracing::debug!("scan {dst}: {name} not sent, out of resources"),
        }
    }

    /// The scan closed try `id` at `now`, unanswered: its port got its state, or it lingered
    /// long enough.
    pub(super) fn closed(&mut self, id: ProbeId, now: Instant) {
        if let Some(tried) = self.take(id) {
            let (dst, name, at) = (tried.dst, tried.name(), self.at(now));
            tracing::debug!("scan {dst}: {name} unanswered, closed at {at}");
        }
    }

    /// Port `dst` got `verdict` at `now`.
    pub(super) fn settled(&self, dst: SocketAddr, verdict: &Verdict, now: Instant) {
        if !self.on {
            return;
        }
        let (state, reason) = (verdict.state.as_str(), verdict.reason.as_str());
        let tries = match verdict.tries {
            1 => "1 try".to_string(),
            n => format!("{n} tries"),
        };
        let at = self.at(now);
        tracing::debug!("scan {dst}: {state} ({reason}) at {at} after {tries}");
    }

    /// What an answer after `rtt` to `tried` may have answered instead of the try itself:
    /// its kernel's latest resend of the SYN before it came, if any.
    fn resent(&self, tried: &Try, rtt: Duration) -> String {
        let mut before = KERNEL_SYN_RESENDS.iter().filter(|resend| **resend < rtt);
        match before.next_back().filter(|_| self.resends) {
            Some(resend) => format!(
                " (the kernel resent its SYN at {})",
                self.at(tried.at + *resend)
            ),
            None => String::new(),
        }
    }

    fn take(&mut self, id: ProbeId) -> Option<Try> {
        self.tries.remove(&id).filter(|_| self.on)
    }

    /// `now` as the scan's elapsed time: `+1.234s`.
    fn at(&self, now: Instant) -> String {
        let elapsed = now.saturating_duration_since(self.started);
        format!("+{:.3}s", elapsed.as_secs_f64())
    }
}

impl Try {
    fn name(&self) -> String {
        match self.timing {
            true => "timing probe".to_string(),
            false => format!("try {}", self.number),
        }
    }
}

/// What an answer was, in nmap's `--reason` words where it has them.
fn describe(answer: &Answer) -> String {
    match answer {
        Answer::Open => "syn-ack".to_string(),
        Answer::Closed => "reset".to_string(),
        Answer::Filtered(refusal) => refusal.reason().as_str().to_string(),
        Answer::RouterRefused(refusal, from) => {
            format!("{} from {from}", refusal.reason().as_str())
        }
        Answer::Unreachable(no_route) => no_route.to_string(),
        Answer::Nothing => "an ICMP error that says nothing of the port".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::answer::Refusal;

    #[test]
    fn answers_are_named_in_nmaps_reason_words() {
        assert_eq!(describe(&Answer::Closed), "reset");
        assert_eq!(describe(&Answer::Open), "syn-ack");
        let from = "198.18.0.1".parse().unwrap();
        let refused = Answer::RouterRefused(Refusal::AdminProhibited, from);
        assert_eq!(describe(&refused), "admin-prohibited from 198.18.0.1");
    }

    #[test]
    fn times_count_from_the_scan_start() {
        let started = Instant::now();
        let trace = Trace::new(started, true);
        let now = started + Duration::from_millis(1507);
        assert_eq!(trace.at(now), "+1.507s");
    }

    #[test]
    fn an_answer_after_the_kernels_resend_names_it() {
        let started = Instant::now();
        let tried = Try {
            dst: "198.18.1.1:22".parse().unwrap(),
            number: 2,
            timing: false,
            at: started + Duration::from_millis(302),
        };
        let late = Duration::from_millis(1745);
        let connect = Trace::new(started, true);
        assert_eq!(
            connect.resent(&tried, late),
            " (the kernel resent its SYN at +1.302s)"
        );
        assert_eq!(connect.resent(&tried, Duration::from_millis(745)), "");
        assert_eq!(Trace::new(started, false).resent(&tried, late), "");
    }
}
