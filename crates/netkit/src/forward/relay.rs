//! Relaying both directions of a connection at once ([`super::flow`] moves each one). An error
//! in either direction, no traffic for the idle timeout, or the drain timeout ends both. With
//! `--http-host` the bytes go through [`super::http_relay`] instead.
//!
//! A reset is passed on as a reset: when one side resets the connection (or a write to it
//! fails because it is gone), the other side is closed with `SO_LINGER` 0, so its peer sees
//! `ECONNRESET` rather than a clean end of file that would pass a truncated stream for a
//! whole one. (HAProxy 2.6 passes a client's reset on to the server, and turns a server's
//! reset into a clean close.)

use std::future::Future;

use super::flow::{direction, Dir, Fault, Leg, Stats};
use super::Rule;
use crate::endpoint::{Endpoint, Stream};
use crate::report::forward::Close;

/// What a relay did.
#[derive(Debug)]
pub(super) struct Outcome {
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub path: &'static str,
    pub close: Close,
    pub error: Option<String>,
}

/// Relays between `client` and `upstream` (connected to `target`, one of the rule's) until both
/// directions end, one fails, the connection idles out or `abort` completes (the drain
/// timeout).
pub(super) async fn run(
    client: &Stream,
    upstream: &Stream,
    rule: &Rule,
    target: &Endpoint,
    abort: impl Future<Output = ()>,
) -> Outcome {
    let stats = Stats::new();
    let both = async {
        match &rule.options.http_host {
            Some(host) => {
                let host = host.value_for(target);
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
        bytes_up: stats.up(),
        bytes_down: stats.down(),
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
