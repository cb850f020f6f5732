//! Result records: every record a command prints, one module per command, as plain serde types
//! that the binary prints either as human text or as JSON Lines (two views of the same data).
//! Field names are the JSON contract of SPEC.md; see `docs/json.md`. The engines build these
//! records and hand them over through their events; nothing here does I/O.
//!
//! - [`Listening`]: a server is bound (`echo`, and `forward` with its target).
//! - [`forward`], [`ping`], [`wait`], [`send`], [`iface`], [`scan`], [`sweep`]: each
//!   command's records.

pub mod forward;
pub mod iface;
pub mod ping;
pub mod scan;
pub mod send;
pub mod sweep;
pub mod wait;

use serde::{Deserialize, Serialize};

/// A server has bound its socket and is serving (`{"type":"listening"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listening {
    /// The bound address as an endpoint: `127.0.0.1:40123`, `[::1]:7000`, `unix:/tmp/e.sock`,
    /// `unix:@name`; the real port when port 0 was asked for.
    pub addr: String,
    /// Where connections are relayed (`forward` only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target: Option<String>,
}
