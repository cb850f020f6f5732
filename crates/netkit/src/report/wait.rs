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
    /// Why the last finished attempt found it not ready (`no answer` when none finished).
    pub reason: String,
    /// How many attempts finished.
    pub attempts: u32,
}
