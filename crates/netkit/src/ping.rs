//! `ping` as iputils does it, for one host or many at once.
//!
//! # Layout
//! - [`PingConfig`]: what a session does, validated before any I/O (module `config`).
//! - [`session`]: the session as a state machine without I/O (time is an input): iputils'
//!   rules for each host (module `host`: late replies count, duplicates, errors, `pipe`, the wait
//!   after the last request, `-c` with `-w`), its send schedule ([`pacer`]: interval,
//!   preload, flood, adaptive) and the answered sequence numbers ([`seqset`]).
//! - [`driver`]: runs a session over the ICMP engine, with stop and status controls.
//! - [`route`](mod@route): the kernel's route to a host, asked before sending (no route, broadcast,
//!   source address, path MTU).
//! - [`stats`]: iputils' arithmetic. The records (`reply`, `timeout`, `summary`) are in
//!   [`crate::report::ping`]; iputils' number formats are the binary's.

mod config;
pub mod driver;
mod host;
pub mod pacer;
pub mod route;
pub mod seqset;
pub mod session;
pub mod stats;

pub use config::{PingConfig, LINGER_WITHOUT_LIMIT};
pub use driver::{run, Control};
pub use route::{route, Route};
pub use session::{Event, Request, Session};
pub use stats::{Rtt, Stats, SummaryParts};

use std::time::Duration;

use crate::error::Error;
use crate::icmp::{Engine, Kind, Version};

/// The shortest interval an unprivileged user may ask for, as iputils allows.
pub const MIN_USER_INTERVAL: Duration = Duration::from_millis(2);

/// Whether every socket of `engine` is raw (root or CAP_NET_RAW): iputils' privileged user,
/// who may flood, preload more than 3 requests and go below [`MIN_USER_INTERVAL`].
pub fn privileged(engine: &Engine) -> bool {
    [Version::V4, Version::V6]
        .into_iter()
        .all(|v| engine.kind(v) != Some(Kind::Datagram))
}

/// Whether the kernel refused a request as too big for the path MTU (`-M do`): iputils'
/// `local error: message too long`, counted among the errors.
pub fn is_too_big(err: &std::io::Error) -> bool {
    err.raw_os_error() == Some(nix::libc::EMSGSIZE)
}

/// Refuses intervals below [`MIN_USER_INTERVAL`] unless [`privileged`], as iputils refuses
/// to let users flood. `flood`: the interval is `-f`'s (no `-i` given), and the error names
/// `-f`, the flag the user gave.
pub fn check_interval(engine: &Engine, interval: Duration, flood: bool) -> Result<(), Error> {
    if privileged(engine) || interval >= MIN_USER_INTERVAL {
        return Ok(());
    }
    let what = match flood {
        true => "-f (flooding, with intervals below 2ms, needs a raw socket, as with iputils)"
            .to_string(),
        false => format!(
            "-i {}ms (intervals below 2ms need a raw socket, as with iputils)",
            interval.as_secs_f64() * 1000.0
        ),
    };
    Err(raw_only(what))
}

/// The refusal of `what`, which only a raw socket may do (an unprivileged user's short
/// interval, preload above 3, frequent broadcast): an environment refusal whose hint names
/// root and CAP_NET_RAW.
pub fn raw_only(what: impl Into<String>) -> Error {
    Error::io(what, std::io::Error::from_raw_os_error(nix::libc::EPERM))
}
