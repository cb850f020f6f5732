//! Where the attempt under way at each target stands, so that a deadline cutting it short
//! says where: the target's watch moves its [`Track`] on at each step (the name lookup, the
//! connect, the TLS handshake, the HTTP request, the body), and the wait reads it when the
//! deadline passes. An attempt that finished
//! leaves its finding there until the next one starts, so one that finished just as the
//! deadline passed is not lost.

use std::sync::{Arc, Mutex, PoisonError};

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
    /// Connecting.
    Connecting,
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
    /// false), that step's timeout; none otherwise, where what the last finished attempt
    /// found says more than a step cut short (a connect just begun after `connection
    /// refused`).
    pub(super) fn cut(&self, finished: bool) -> Option<Finding> {
        match self {
            Stage::Finished(finding) | Stage::Connected(finding) => Some(finding.clone()),
            _ if finished => None,
            Stage::LookingUp => Some(Finding::LookupFailed(lookup::TIMED_OUT.into())),
            Stage::Connecting => Some(Finding::ConnectTimedOut),
            Stage::Checking => Some(Finding::Unchecked(UNCHECKED.into())),
            Stage::Idle => None,
        }
    }
}

/// What a path check that did not end in time found.
pub(super) const UNCHECKED: &str = "the file system did not answer";

/// The stage of one target's attempt, shared by its watch and the wait.
#[derive(Debug, Clone, Default)]
pub(super) struct Track(Arc<Mutex<Stage>>);

impl Track {
    /// The attempt has reached `stage`.
    pub(super) fn set(&self, stage: Stage) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = stage;
    }

    /// The stage reached last.
    pub(super) fn get(&self) -> Stage {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
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
        assert_eq!(Stage::Connecting.cut(false), Some(Finding::ConnectTimedOut));
        for step in [Stage::LookingUp, Stage::Connecting, Stage::Checking] {
            assert_eq!(step.cut(true), None, "{step:?}");
        }
    }
}
