//! The records of `netkit wait` (docs/json.md): `ready` when a target is ready (or gone, with
//! `--invert`), `timeout` for each target still not ready at the deadline.

use serde::{Deserialize, Serialize};

/// `{"type":"ready",...}`: a target is ready.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitReady {
    /// The target as given (re-quoted: `127.0.0.1:5432`, `https://app/health`).
    pub endpoint: String,
    /// Seconds from the start of the wait.
    pub elapsed_s: f64,
}

/// `{"type":"timeout",...}`: the deadline passed before the target was ready.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitTimeout {
    /// The target as given.
    pub endpoint: String,
    /// Seconds from the start of the wait.
    pub elapsed_s: f64,
    /// Why the target is not ready, as the timeout line says it: where the deadline cut the
    /// attempt under way when that had connected (`TLS handshake not finished in time`, `no
    /// HTTP response in time`, `HTTP 200 but no "ok" in the body in time`) or when no attempt
    /// had finished (`name lookup timed out`, `connect timed out`); else what the last
    /// attempt found (`connection refused`); `no answer` only when no attempt had begun.
    /// When that is silence (a connect, a TLS handshake or an HTTP answer timed out) and an
    /// earlier attempt said more, ` (earlier: WHY)` follows.
    pub reason: String,
    /// How many attempts finished.
    pub attempts: u32,
}
