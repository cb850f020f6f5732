//! The records `netkit echo` and `netkit send` print (see `docs/json.md`).

use serde::{Deserialize, Serialize};

/// `echo` has bound its socket and is serving (`{"type":"listening"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listening {
    /// The bound address as an endpoint: `127.0.0.1:40123`, `[::1]:7000`, `unix:/tmp/e.sock`,
    /// `unix:@name`; the real port when port 0 was asked for.
    pub addr: String,
}

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
}
