//! The records of `netkit scan` (docs/json.md): `open` per open port, `summary` at the end.
//! They are defined beside the scan engine for now; phase 2 moves them here
//! (docs/ARCHITECTURE.md).

pub use crate::scan::record::{OpenPort, PortState, ScanSummary, Unreachable};
