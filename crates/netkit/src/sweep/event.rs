//! What a sweep tells its caller as it happens: [`Event`], which carries the records of
//! [`crate::report::sweep`].

use crate::report::sweep::{
    ChangeRecord, DuplicateRecord, HostRecord, Progress, SummaryRecord, ThrottleRecord,
};

/// What a sweep tells its caller, in the order it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A target answered (as soon as it does), or stayed silent (at the end of the round).
    Host(HostRecord),
    /// Another MAC address answered for a live host's address (on-link methods).
    Duplicate(DuplicateRecord),
    /// A target came up (as soon as it answers) or went down (at the end of the round).
    Change(ChangeRecord),
    /// Progress of the round, about ten times a second.
    Progress(Progress),
    /// The answers collapsed and the sweep slowed down.
    Throttle(ThrottleRecord),
    /// The round is over.
    Summary(SummaryRecord),
}
