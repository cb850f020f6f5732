//! TCP keepalive on both legs of a forwarded connection (`--keepalive`, on by default): after
//! the idle time without traffic the kernel sends a probe, then one every quarter of the idle
//! time, and after [`KEEPALIVE_PROBES`] unanswered probes it gives the peer up; the relay then
//! sees `ETIMEDOUT`, closes both legs (the other one with a reset) and logs `dead-peer`. So a
//! peer that vanished (powered off, cable cut, a NAT that forgot the connection) is noticed
//! within 3¼ times the idle time (3 min 15 s by default) instead of never, a path that loses
//! the probes for up to twice the idle time (a lossy link, a route flap) does not end a live
//! connection, and the probes keep NAT and firewall state of a quiet but live connection
//! fresh.
//!
//! HAProxy's `option clitcpka`/`srvtcpka` enable keepalive with the kernel's timers (2 h idle,
//! then 9 probes 75 s apart); realm and Go programs (gost) use 15 s. 60 s is well inside the
//! idle timeouts of common NATs and cloud load balancers (4-10 min) and costs one small
//! packet a minute on a quiet connection.

use std::io;
use std::str::FromStr;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};

use crate::endpoint::{Listener, Stream};
use crate::error::ParseError;

/// The idle time before the first probe unless `--keepalive` says otherwise.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(60);
/// Unanswered probes after which the peer is given up: the kernel's default count, and Go's
/// (realm, gost). With fewer, a live peer behind a lossy path or a short outage was given up
/// (4 probes: all lost with 7 % odds per quiet minute at 30 % loss each way).
pub const KEEPALIVE_PROBES: u32 = 9;
/// The longest idle time the kernel takes (`TCP_KEEPIDLE` is at most 32767 s).
pub const MAX_KEEPALIVE: Duration = Duration::from_secs(32767);

/// TCP keepalive of a rule's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keepalive {
    /// No probes: a vanished peer leaves the connection open until something is sent.
    Off,
    /// Probes after this long without traffic (whole seconds, rounded up).
    After(Duration),
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive::After(DEFAULT_KEEPALIVE)
    }
}

impl FromStr for Keepalive {
    type Err = ParseError;

    /// A duration (`60s`, `5m`, a number of seconds), or `0` or `off` for none.
    fn from_str(text: &str) -> Result<Self, ParseError> {
        if text.trim().eq_ignore_ascii_case("off") {
            return Ok(Keepalive::Off);
        }
        let idle = crate::duration::parse_duration(text).map_err(|_| {
            ParseError::new(
                text,
                "invalid keepalive, expected a duration like 60s, or off",
            )
        })?;
        if idle.is_zero() {
            return Ok(Keepalive::Off);
        }
        if idle > MAX_KEEPALIVE {
            let why = "keepalive idle time is at most 32767s (9h6m7s), the kernel's limit";
            return Err(ParseError::new(text, why));
        }
        Ok(Keepalive::After(idle))
    }
}

impl Keepalive {
    /// The kernel timers: idle time, interval between probes, probes. `None` when off.
    pub fn timers(self) -> Option<(Duration, Duration, u32)> {
        let Keepalive::After(idle) = self else {
            return None;
        };
        let idle = whole_seconds(idle);
        let interval = whole_seconds(idle / 4);
        Some((idle, interval, KEEPALIVE_PROBES))
    }

    /// Turns keepalive on (or leaves it off) for a TCP stream; other streams have none.
    pub(super) fn apply(self, stream: &Stream) -> io::Result<()> {
        match stream {
            Stream::Tcp(tcp) => self.set(SockRef::from(tcp)),
            _ => Ok(()),
        }
    }

    /// Turns keepalive on (or off) for a TCP listener, whose connections inherit it (Linux
    /// copies the listener's socket options into each accepted socket): four system calls
    /// once instead of at every connection. Setting a socket option on a TCP socket of our
    /// own does not fail in practice; if it does, it is said once and the client legs go
    /// without keepalive.
    pub(super) fn apply_to_listener(self, listener: &Listener) {
        let Listener::Tcp(tcp) = listener else {
            return;
        };
        let sock = SockRef::from(tcp);
        // Off turns it off: a listener kept by a reload may have had it on.
        let set = match self {
            Keepalive::Off => sock.set_keepalive(false),
            _ => self.set(sock),
        };
        if let Err(err) = set {
            let why = crate::error::describe_io(&err);
            tracing::warn!("keepalive on the listener: {why}; client connections go without");
        }
    }

    /// Turns keepalive on (or leaves it off) for a TCP socket.
    pub(super) fn set(self, sock: SockRef<'_>) -> io::Result<()> {
        let Some((idle, interval, probes)) = self.timers() else {
            return Ok(());
        };
        let timers = TcpKeepalive::new()
            .with_time(idle)
            .with_interval(interval)
            .with_retries(probes);
        sock.set_tcp_keepalive(&timers)
    }
}

/// Rounded up to whole seconds, at least one: the kernel counts keepalive time in seconds.
fn whole_seconds(d: Duration) -> Duration {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    Duration::from_secs(secs.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_and_off() {
        assert_eq!("60s".parse(), Ok(Keepalive::After(Duration::from_secs(60))));
        assert_eq!("off".parse(), Ok(Keepalive::Off));
        assert_eq!("0".parse(), Ok(Keepalive::Off));
        assert_eq!("0s".parse(), Ok(Keepalive::Off));
        let long = "10h".parse::<Keepalive>().unwrap_err();
        assert_eq!(long.input, "10h");
        assert!(long.why.contains("32767"), "{long}");
        assert!("soon".parse::<Keepalive>().is_err());
    }

    #[test]
    fn probes_every_quarter_of_the_idle_time_in_whole_seconds() {
        let timers = |text: &str| text.parse::<Keepalive>().unwrap().timers();
        let s = Duration::from_secs;
        assert_eq!(timers("60s"), Some((s(60), s(15), 9)));
        assert_eq!(timers("1s"), Some((s(1), s(1), 9)));
        assert_eq!(timers("1500ms"), Some((s(2), s(1), 9)));
        assert_eq!(timers("10s"), Some((s(10), s(3), 9)));
        assert_eq!(timers("off"), None);
        assert_eq!(Keepalive::default().timers(), Some((s(60), s(15), 9)));
    }

    #[tokio::test]
    async fn the_kernel_reads_back_the_timers_set() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let stream = Stream::Tcp(tcp);
        "10s".parse::<Keepalive>().unwrap().apply(&stream).unwrap();
        let Stream::Tcp(tcp) = &stream else {
            unreachable!()
        };
        let sock = SockRef::from(tcp);
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.keepalive_time().unwrap(), Duration::from_secs(10));
        assert_eq!(sock.keepalive_interval().unwrap(), Duration::from_secs(3));
        assert_eq!(sock.keepalive_retries().unwrap(), 9);
    }
}
