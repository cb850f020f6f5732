//! Result records: plain serde types that the binary prints either as human text or as JSON
//! Lines. Field names are the JSON contract of SPEC.md; see `docs/json.md`.
//!
//! The interface records live with their engine in [`crate::iface::record`]; this module
//! keeps the names they have always had.

pub use crate::iface::record::{AddrFamily, IfAddr, Interface};
