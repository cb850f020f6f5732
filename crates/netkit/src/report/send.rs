//! The record of `netkit send` (docs/json.md): `reply`, or `timeout` when the reply did not end
//! in time.

use serde::{Deserialize, Serialize};

/// What `send` got back (`{"type":"reply"}`, or `{"type":"timeout"}` when the reply did not end
/// in time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The endpoint as given.
    pub endpoint: String,
    /// Bytes sent.
    pub sent: u64,
    /// Bytes received.
    pub received: u64,
    /// The reply as text (invalid UTF-8 replaced by U+FFFD).
    pub reply: String,
    /// Seconds from the start of the connection to the end of the reply (or the timeout).
    pub elapsed_s: f64,
    /// The peer reset the connection rather than ending its reply with an end of file.
    #[serde(default)]
    pub reset: bool,
}
