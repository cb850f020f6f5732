//! The records of `netkit forward` (docs/json.md): one `conn` per finished connection, a
//! `target` when a target goes down or comes back up, a `reload` per SIGHUP (and the shared
//! [`super::Listening`] per rule once bound); for `udp:` rules one `session` per ended UDP
//! session and `drop` records counting datagrams no session took.

use serde::{Deserialize, Serialize};

/// How a connection (or a UDP session) ended.
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

impl Close {
    /// The name in the records (`done`, `idle-timeout`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Close::Done => "done",
            Close::IdleTimeout => "idle-timeout",
            Close::Reset => "reset",
            Close::Error => "error",
            Close::Denied => "denied",
            Close::ConnectFailed => "connect-failed",
            Close::HttpRejected => "http-rejected",
            Close::DrainTimeout => "drain-timeout",
            Close::DeadPeer => "dead-peer",
        }
    }
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

/// A target of a rule went down or came back up (`{"type":"target",...}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetRecord {
    /// When: RFC 3339, UTC, milliseconds.
    pub time: String,
    /// The rule: its bound listen address.
    pub rule: String,
    /// The target, as configured.
    pub target: String,
    /// `up` or `down`.
    pub state: TargetState,
    /// Why: `connected`, `connect failed: ...`, `N check(s) passed`, `N check(s) failed: ...`.
    pub reason: String,
}

/// Whether a target takes connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetState {
    /// It does.
    Up,
    /// It is left alone: new connections go to the other targets.
    Down,
}

/// A reload of the rules file on SIGHUP (`{"type":"reload",...}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadRecord {
    /// When: RFC 3339, UTC, milliseconds.
    pub time: String,
    /// The rules file.
    pub file: String,
    /// Whether the new rules are in force; when not, the old ones still are.
    pub ok: bool,
    /// The rules in force now.
    pub rules: usize,
    /// Listen addresses added (each also announced by a `listening` record).
    pub added: Vec<String>,
    /// Listen addresses that stopped accepting (their open connections go on).
    pub removed: Vec<String>,
    /// Why the file was refused.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

/// The record of one UDP session (a client address of a `udp:` rule), logged when it ends
/// (`{"type":"session",...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// When the session ended: RFC 3339, UTC, milliseconds.
    pub time: String,
    /// The client's address (`127.0.0.1:50312`, `[::1]:50312`; an IPv4 client of a `[::]`
    /// listener in its IPv4 form).
    pub client: String,
    /// The target address the session's socket sent to.
    pub target: String,
    /// The session's own address toward the target: the source the target saw.
    pub via: String,
    /// Datagrams relayed from the client to the target.
    pub datagrams_up: u64,
    /// Datagrams relayed from the target to the client.
    pub datagrams_down: u64,
    /// Payload bytes relayed from the client to the target (a PROXY header not counted).
    pub bytes_up: u64,
    /// Payload bytes relayed from the target to the client.
    pub bytes_down: u64,
    /// Datagrams of this session that could not be relayed (a send failed: the error is in
    /// `error`).
    pub dropped: u64,
    /// ICMP port unreachable answers from the target (seen as `ECONNREFUSED`): nothing
    /// listened there at the time. The session goes on.
    pub refused: u64,
    /// Seconds from the first datagram to the end.
    pub duration_s: f64,
    /// How it ended: `idle-timeout`, `drain-timeout` or `error`.
    pub close: Close,
    /// The last error seen (a failed send, or the error that ended the session).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

/// Why datagrams of a `udp:` rule were dropped before any session took them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DropReason {
    /// A new client while `--max-conns` sessions were open.
    SessionLimit,
    /// A client whose address is not in `--allow`.
    Denied,
    /// A new client after SIGINT/SIGTERM: sessions are draining, none are opened.
    Draining,
    /// A new client whose session socket could not be opened (no file descriptors, no local
    /// port, no route): the error is in `error`.
    SocketError,
}

/// Datagrams dropped for one reason since the previous such record, logged at most once a
/// second per rule and reason while drops go on (`{"type":"drop",...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DropRecord {
    /// When the record was made: RFC 3339, UTC, milliseconds.
    pub time: String,
    /// The rule's listening address (`udp:127.0.0.1:5353`).
    pub listen: String,
    /// Why they were dropped.
    pub reason: DropReason,
    /// Datagrams dropped for this reason since the previous record.
    pub datagrams: u64,
    /// Datagrams dropped for this reason since the rule started.
    pub total: u64,
    /// The client of the last one.
    pub last_client: String,
    /// The error behind `socket-error`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}
