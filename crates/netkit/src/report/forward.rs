//! The records of `netkit forward` (docs/json.md): one `conn` per finished connection (and the
//! shared [`super::Listening`] per rule once bound).

use serde::{Deserialize, Serialize};

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Close {
    /// Both sides finished sending; every byte was delivered.
    Done,
    /// No traffic either way for the idle timeout.
    IdleTimeout,
    /// A side reset the connection or stopped reading.
    Reset,
    /// Another I/O error.
    Error,
    /// The client's address is not in `--allow`.
    Denied,
    /// The target could not be reached; the client was closed.
    ConnectFailed,
    /// An HTTP request head was malformed or over 64 KiB (Host rewrite).
    HttpRejected,
    /// Still open when the drain timeout after SIGINT/SIGTERM ran out; closed.
    DrainTimeout,
    /// A side stopped answering (keepalive probes or retransmissions went unanswered); the
    /// other side was reset.
    DeadPeer,
}

/// The record of one connection, logged when it ends (`{"type":"conn",...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnRecord {
    /// When the connection ended: RFC 3339, UTC, milliseconds (`2026-11-24T17:22:39.123Z`).
    pub time: String,
    /// The client's address (`127.0.0.1:50312`, or `unix`).
    pub client: String,
    /// The target as configured, or the address actually connected to.
    pub target: String,
    /// Bytes delivered from the client to the target.
    pub bytes_up: u64,
    /// Bytes delivered from the target to the client.
    pub bytes_down: u64,
    /// Seconds from accept to close.
    pub duration_s: f64,
    /// How it ended.
    pub close: Close,
    /// The relay path: `splice`, `copy`, or `copy+splice` (rewritten up, zero-copy down).
    pub relay: String,
    /// The error behind `close`, when there was one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}
