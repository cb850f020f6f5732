//! Relaying both directions of a connection at once. Each direction ends when its source
//! reaches EOF and everything read was delivered; then the destination is half-closed
//! (`shutdown(Write)`) and the other direction keeps flowing until it ends too. An error in
//! either direction, no traffic for the idle timeout, or the drain timeout ends both.
//! With `--http-host` the bytes go through [`super::http_relay`] instead.
//!
//! A reset is passed on as a reset: when one side resets the connection (or a write to it
//! fails because it is gone), the other side is closed with `SO_LINGER` 0, so its peer sees
//! `ECONNRESET` rather than a clean end of file that would pass a truncated stream for a
//! whole one. (HAProxy 2.6 passes a client's reset on to the server, and turns a server's
//! reset into a clean close.)

use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::Interest;

use super::{Close, Rule};
use crate::endpoint::Stream;

/// Size of the buffer of a copying direction.
pub(super) const COPY_BUF: usize = 16 * 1024;

/// What a relay did.
#[derive(Debug)]
pub(super) struct Outcome {
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub path: &'static str,
    pub close: Close,
    pub error: Option<String>,
}

/// One side of a forwarded connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Leg {
    /// The accepted client.
    Client,
    /// The target connected to.
    Target,
}

/// An I/O error and the side of the connection it came from.
#[derive(Debug)]
pub(super) struct Fault {
    pub leg: Leg,
    pub err: io::Error,
}

impl Fault {
    /// Tags errors with the side they came from.
    pub(super) fn on(leg: Leg) -> impl Fn(io::Error) -> Fault {
        move |err| Fault { leg, err }
    }

    /// Whether the side is gone abortively (reset, or a write it could not take).
    fn is_reset(&self) -> bool {
        matches!(
            self.err.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::ConnectionAborted
        )
    }
}

/// Which end of a transfer failed, in the words of `splice`/`copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    /// Reading the source.
    Src,
    /// Writing the destination.
    Dst,
}

/// A direction of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dir {
    /// Client to target.
    Up,
    /// Target to client.
    Down,
}

impl Dir {
    /// The sides bytes come from and go to.
    pub(super) fn legs(self) -> (Leg, Leg) {
        match self {
            Dir::Up => (Leg::Client, Leg::Target),
            Dir::Down => (Leg::Target, Leg::Client),
        }
    }
}

/// Byte counters and the time of the last transfer, shared by both directions.
#[derive(Debug)]
pub(super) struct Stats {
    start: Instant,
    last_ms: AtomicU64,
    up: AtomicU64,
    down: AtomicU64,
    spliced_up: AtomicBool,
    spliced_down: AtomicBool,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
            spliced_up: AtomicBool::new(false),
            spliced_down: AtomicBool::new(false),
        }
    }

    /// Counts `n` bytes delivered in direction `dir` (and that the connection is not idle).
    pub(super) fn moved(&self, dir: Dir, n: usize) {
        let counter = match dir {
            Dir::Up => &self.up,
            Dir::Down => &self.down,
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
        let now = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(now, Ordering::Relaxed);
    }

    /// Notes that direction `dir` moved bytes with `splice(2)`.
    pub(super) fn spliced(&self, dir: Dir) {
        let flag = match dir {
            Dir::Up => &self.spliced_up,
            Dir::Down => &self.spliced_down,
        };
        flag.store(true, Ordering::Relaxed);
    }

    /// Which relay path the directions took: `splice`, `copy` or `copy+splice`.
    fn path(&self) -> &'static str {
        match (
            self.spliced_up.load(Ordering::Relaxed),
            self.spliced_down.load(Ordering::Relaxed),
        ) {
            (true, true) => "splice",
            (false, false) => "copy",
            _ => "copy+splice",
        }
    }

    /// Completes once nothing moved for `idle`.
    async fn idle(&self, idle: Duration) {
        loop {
            let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let quiet_since = self.start + last;
            if quiet_since.elapsed() >= idle {
                return;
            }
            tokio::time::sleep_until((quiet_since + idle).into()).await;
        }
    }
}

/// Relays between `client` and `upstream` until both directions end, one fails, the
/// connection idles out or `abort` completes (the drain timeout).
pub(super) async fn run(
    client: &Stream,
    upstream: &Stream,
    rule: &Rule,
    abort: impl Future<Output = ()>,
) -> Outcome {
    let stats = Stats::new();
    let both = async {
        match &rule.options.http_host {
            Some(host) => {
                let host = host.value_for(&rule.target);
                super::http_relay::run(client, upstream, host, &stats).await
            }
            None => tokio::try_join!(
                direction(client, upstream, Dir::Up, &stats),
                direction(upstream, client, Dir::Down, &stats),
            )
            .map(|_| (Close::Done, None)),
        }
    };
    let idle = async {
        match rule.options.idle_timeout {
            Some(idle) => stats.idle(idle).await,
            None => std::future::pending().await,
        }
    };
    let (close, error) = tokio::select! {
        result = both => result.unwrap_or_else(|fault| pass_on(client, upstream, &fault)),
        () = idle => (Close::IdleTimeout, None),
        () = abort => (Close::DrainTimeout, None),
    };
    let path = stats.path();
    tracing::debug!("relay path: {path}");
    Outcome {
        bytes_up: stats.up.load(Ordering::Relaxed),
        bytes_down: stats.down.load(Ordering::Relaxed),
        path,
        close,
        error,
    }
}

/// Classifies a failed direction; a reset is passed on to the other side.
fn pass_on(client: &Stream, upstream: &Stream, fault: &Fault) -> (Close, Option<String>) {
    let text = Some(crate::error::describe_io(&fault.err));
    if !fault.is_reset() {
        return (Close::Error, text);
    }
    let other = match fault.leg {
        Leg::Client => upstream,
        Leg::Target => client,
    };
    other.set_abortive_close();
    (Close::Reset, text)
}

/// Moves `src` to `dst` until EOF, then half-closes `dst`: through `splice(2)` for bulk
/// transfers on Linux, a buffer elsewhere.
pub(super) async fn direction(
    src: &Stream,
    dst: &Stream,
    dir: Dir,
    stats: &Stats,
) -> Result<(), Fault> {
    let (src_leg, dst_leg) = dir.legs();
    let moved = |n: usize| stats.moved(dir, n);
    let mut buf = vec![0u8; COPY_BUF];
    #[cfg(target_os = "linux")]
    let result = super::splice::pump(src, dst, &mut buf, moved, || stats.spliced(dir)).await;
    #[cfg(not(target_os = "linux"))]
    let result = copy(src, dst, &mut buf, moved).await;
    result.map_err(|(end, err)| match end {
        End::Src => Fault { leg: src_leg, err },
        End::Dst => Fault { leg: dst_leg, err },
    })?;
    dst.shutdown_write().map_err(Fault::on(dst_leg))
}

/// Buffered copy until EOF.
#[cfg(not(target_os = "linux"))]
async fn copy(
    src: &Stream,
    dst: &Stream,
    buf: &mut [u8],
    moved: impl Fn(usize),
) -> Result<(), (End, io::Error)> {
    loop {
        let n = read(src, buf).await.map_err(|e| (End::Src, e))?;
        if n == 0 {
            return Ok(());
        }
        write_all(dst, &buf[..n]).await.map_err(|e| (End::Dst, e))?;
        moved(n);
    }
}

/// Reads what is there, waiting for readiness. A read that does not fill `buf` drained the
/// socket, so its readiness is cleared at once (as tokio's own `poll_read` does): the next
/// read waits for new data instead of costing a system call that says "nothing yet".
pub(super) async fn read(src: &Stream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        src.read_ready().await?;
        let mut short = 0;
        let result = src.try_io(Interest::READABLE, || {
            let n = nix::unistd::read(src.fd().as_raw_fd(), buf).map_err(io::Error::from)?;
            if n > 0 && n < buf.len() {
                short = n;
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(n)
        });
        match result {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock && short > 0 => return Ok(short),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

/// Writes all of `buf`, waiting for readiness.
pub(super) async fn write_all(dst: &Stream, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        dst.write_ready().await?;
        match dst.try_write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
