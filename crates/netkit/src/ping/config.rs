//! What a ping session does ([`PingConfig`]: iputils' `-c -i -W -w -l -A -O` and fping's
//! `-C`), validated before any I/O; the session and every host follow it.

use std::time::Duration;

/// `-W 0`: no limit on the wait for a reply, in effect (a year; the timers take no more). After
/// the last request it lasts only while no reply came: the first one sets the wait to twice the
/// longest round trip from then, as iputils' `__schedule_exit` recomputes a wait of 0.
pub const LINGER_WITHOUT_LIMIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// What a session does, validated before any I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingConfig {
    /// Requests per host (`-c`); `None` runs until the deadline or a signal. With a
    /// deadline, requests go on until this many replies (or errors) came.
    pub count: Option<u64>,
    /// Time between two requests to one host (`-i`); zero sends the next as soon as the
    /// previous is answered, or after 10 ms (`-f`).
    pub interval: Duration,
    /// How long to wait for a reply when none came (`-W`): after the last request of
    /// `-c`, and before a request is reported as timed out. Later replies still count.
    pub linger: Duration,
    /// The whole session stops after this long (`-w`).
    pub deadline: Option<Duration>,
    /// Requests sent at once at the start (`-l`), at least 1.
    pub preload: u64,
    /// The interval follows the round trips (`-A`).
    pub adaptive: bool,
    /// The shortest interval `-A` may reach (2 ms for unprivileged users, as iputils).
    pub min_interval: Duration,
    /// Report a request still unanswered when the next goes (`-O`).
    pub outstanding: bool,
    /// Keep every request's round trip for the summary (fping's `-C`).
    pub per_probe: bool,
}

impl Default for PingConfig {
    fn default() -> Self {
        PingConfig {
            count: None,
            interval: Duration::from_secs(1),
            linger: Duration::from_secs(10),
            deadline: None,
            preload: 1,
            adaptive: false,
            min_interval: Duration::ZERO,
            outstanding: false,
            per_probe: false,
        }
    }
}
