//! Where the attempt under way at each target stands, so that a deadline cutting it short
//! says where: the target's watch moves its [`Track`] on at each step (the name lookup, the
//! connect, the TLS handshake, the HTTP request, the body), and the wait reads it when the
//! deadline passes. An attempt that finished
//! leaves its finding there until the next one starts, so one that finished just as the
//! deadline passed is not lost.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::time::Instant;

use super::backoff::SHORTEST_CONNECT;
use super::finding::Finding;
use super::lookup;

/// A step of one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) enum Stage {
    /// No attempt has started.
    #[default]
    Idle,
    /// Looking the target's host name up (`dns:` targets, and names to connect to).
    LookingUp,
    /// Connecting, since then.
    Connecting(Instant),
    /// Checking a path.
    Checking,
    /// Connected, and as far as this finding says, the one a cut there finds: the TLS
    /// handshake under way ([`Finding::HandshakeUnfinished`]), the request sent
    /// ([`Finding::NoResponse`]), the body coming without the text so far
    /// ([`Finding::BodyUnfinished`]).
    Connected(Finding),
    /// The attempt found this; the next one has not started.
    Finished(Finding),
}

impl Stage {
    /// What an attempt cut by the deadline at this stage found, for the timeout's reason: a
    /// finished attempt's finding; past the connect, where the server's answer was cut
    /// (newer than any earlier attempt's finding: the server is there now); a lookup, a
    /// connect or a path check not over when no attempt had finished before (`finished`
    /// false), that step's timeout; a connect unanswered for [`SHORTEST_CONNECT`] (a SYN
    /// lost) `connect timed out` too, as its bound at the default interval would have found
    /// it, whatever its bound; none otherwise, where what the last finished attempt found
    /// says more than a step cut short (a connect just begun after `connection refused`).
    pub(super) fn cut(&self, finished: bool) -> Option<Finding> {
        match self {
            Stage::Finished(finding) | Stage::Connected(finding) => Some(finding.clone()),
            Stage::Connecting(since) if since.elapsed() >= SHORTEST_CONNECT => {
                Some(Finding::ConnectTimedOut)
            }
            _ if finished => None,
            Stage::LookingUp => Some(Finding::LookupFailed(lookup::TIMED_OUT.into())),
            Stage::Connecting(_) => Some(Finding::ConnectTimedOut),
            Stage::Checking => Some(Finding::Unchecked(UNCHECKED.into())),
            Stage::Idle => None,
        }
    }
}

impl Stage {
    /// How far into an attempt this stage is: a step further along says more of the server.
    /// An ended attempt (or none) is no step: any new one goes past it.
    fn depth(&self) -> u8 {
        match self {
            Stage::Idle | Stage::Finished(_) => 0,
            Stage::LookingUp | Stage::Checking => 1,
            Stage::Connecting(_) => 2,
            Stage::Connected(Finding::HandshakeUnfinished) => 3,
            Stage::Connected(Finding::BodyUnfinished { .. }) => 5,
            Stage::Connected(_) => 4,
        }
    }
}

/// What a path check that did not end in time found.
pub(super) const UNCHECKED: &str = "the file system did not answer";

/// The stage of one target's attempt, shared by its watch and the wait; or that of one
/// exchange beside the attempt's first ([`Track::beside`]).
#[derive(Debug, Clone, Default)]
pub(super) struct Track {
    /// The target's stage, the one the wait reads at the deadline.
    target: Arc<Mutex<Stage>>,
    /// An exchange beside the first: its own stage.
    own: Option<Arc<Mutex<Stage>>>,
}

fn lock(stage: &Mutex<Stage>) -> std::sync::MutexGuard<'_, Stage> {
    stage.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Track {
    /// A track for an exchange beside the attempt's first: its steps are its own, and move
    /// the target's on only where they go further than the attempt already got.
    pub(super) fn beside(&self) -> Track {
        Track {
            target: self.target.clone(),
            own: Some(Arc::default()),
        }
    }

    /// The attempt (or, [`Track::beside`], this exchange) has reached `stage`.
    pub(super) fn set(&self, stage: Stage) {
        let Some(own) = &self.own else {
            *lock(&self.target) = stage;
            return;
        };
        let mut target = lock(&self.target);
        if stage.depth() > target.depth() {
            *target = stage.clone();
        }
        *lock(own) = stage;
    }

    /// The stage reached last (by this exchange, [`Track::beside`]).
    pub(super) fn get(&self) -> Stage {
        lock(self.own.as_ref().unwrap_or(&self.target)).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_step_speaks_only_when_no_attempt_finished() {
        let refused = Finding::ConnectFailed("connection refused".into());
        let timed_out = Finding::LookupFailed("name lookup timed out".into());
        for finished in [false, true] {
            let done = Stage::Finished(refused.clone());
            assert_eq!(done.cut(finished), Some(refused.clone()));
            let answering = Stage::Connected(Finding::HandshakeUnfinished);
            assert_eq!(answering.cut(finished), Some(Finding::HandshakeUnfinished));
            assert_eq!(Stage::Idle.cut(finished), None);
        }
        assert_eq!(Stage::LookingUp.cut(false), Some(timed_out));
        let connecting = Stage::Connecting(Instant::now());
        assert_eq!(connecting.cut(false), Some(Finding::ConnectTimedOut));
        for step in [Stage::LookingUp, connecting, Stage::Checking] {
            assert_eq!(step.cut(true), None, "{step:?}");
        }
    }

    /// A connect unanswered for a second (a SYN lost) and cut by the deadline after an attempt
    /// that finished says `connect timed out`, as its bound at the default interval would
    /// have found it, not the finished attempt's `connection refused` of before.
    #[test]
    fn a_connect_unanswered_for_a_second_is_timed_out_after_a_finished_attempt() {
        let since = Instant::now() - SHORTEST_CONNECT;
        for finished in [false, true] {
            let cut = Stage::Connecting(since).cut(finished);
            assert_eq!(cut, Some(Finding::ConnectTimedOut), "{finished}");
        }
    }

    /// An exchange beside a stuck one connecting does not hide that the first one's request
    /// went out; its own steps are its own, and where it goes further, the target's.
    #[test]
    fn an_exchange_beside_moves_the_target_on_only_further() {
        let track = Track::default();
        track.set(Stage::Connected(Finding::NoResponse));
        let beside = track.beside();
        let connecting = Stage::Connecting(Instant::now());
        beside.set(connecting.clone());
        assert_eq!(beside.get(), connecting);
        assert_eq!(track.get(), Stage::Connected(Finding::NoResponse));
        let body = Finding::BodyUnfinished {
            status: 200,
            text: "ok".into(),
        };
        beside.set(Stage::Connected(body.clone()));
        assert_eq!(track.get(), Stage::Connected(body));
    }
}
