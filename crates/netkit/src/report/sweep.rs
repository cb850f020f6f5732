//! The records of `netkit sweep` (docs/json.md): `host`, `change`, `throttle`, `summary`, and
//! the progress line. They are defined beside the sweep engine for now; phase 2 moves them here
//! (docs/ARCHITECTURE.md).

pub use crate::sweep::record::{ChangeRecord, HostRecord, Progress, SummaryRecord, ThrottleRecord};
