//! One attempt at one target, whatever its kind, turned into a [`Finding`]. Every attempt is
//! bounded: connects and HTTP answers by the [`Bounds`] the caller gives, name lookups (a step
//! of their own, before a connect: [`super::lookup`]) and file checks by [`ANSWER_BOUND`],
//! all by the time left before the deadline. Each step is marked on the target's [`Track`].

use std::time::Duration;

use tokio::time::Instant;

use super::backoff::Bounds;
use super::finding::Finding;
use super::http::{HttpCheck, ANSWER_BOUND};
use super::lookup;
use super::stage::{Stage, Track, UNCHECKED};
use super::target::{DnsTarget, HttpTarget, Target};
use crate::endpoint::{Endpoint, Host, Stream};

/// What every attempt of one wait shares.
#[derive(Debug, Clone)]
pub(super) struct Probe {
    /// What HTTP targets must answer.
    pub http: HttpCheck,
}

/// `bound`, or `left` if that is shorter.
fn cap(bound: Duration, left: Option<Duration>) -> Duration {
    left.map_or(bound, |left| bound.min(left))
}

impl Probe {
    /// Tries `target` once within `bounds`, all within `left` (the time before the deadline,
    /// if there is one).
    pub async fn attempt(
        &self,
        target: &Target,
        bounds: Bounds,
        left: Option<Duration>,
        track: &Track,
    ) -> Finding {
        match target {
            Target::Connect(endpoint) => match connect(endpoint, bounds.connect, left, track).await
            {
                Ok(_) => Finding::Accepts,
                Err(finding) => finding,
            },
            Target::Http(http) => {
                match connect(&http.endpoint, bounds.connect, left, track).await {
                    Ok(stream) => self.answer(http, stream, bounds.answer, left, track).await,
                    Err(finding) => finding,
                }
            }
            Target::Dns(dns) => resolve(dns, cap(ANSWER_BOUND, left), track).await,
            Target::File(path) => {
                track.set(Stage::Checking);
                tokio::time::timeout(cap(ANSWER_BOUND, left), exists(path.clone()))
                    .await
                    .unwrap_or_else(|_| Finding::Unchecked(UNCHECKED.into()))
            }
        }
    }

    /// The rest of an HTTP attempt over `stream`, already connected, within `bound` and
    /// `left`, its steps on `track`.
    pub async fn answer(
        &self,
        target: &HttpTarget,
        stream: Stream,
        bound: Duration,
        left: Option<Duration>,
        track: &Track,
    ) -> Finding {
        super::http::answer(stream, target, &self.http, bound, left, track).await
    }
}

/// Connects to `endpoint` within `bound` and `left`, a name looked up first (within
/// [`ANSWER_BOUND`] and `left`).
async fn connect(
    endpoint: &Endpoint,
    bound: Duration,
    left: Option<Duration>,
    track: &Track,
) -> Result<Stream, Finding> {
    let connected = match endpoint {
        Endpoint::Tcp { .. } => {
            let addrs = lookup::addresses(endpoint, cap(ANSWER_BOUND, left), track).await?;
            track.set(Stage::Connecting(Instant::now()));
            endpoint.connect_resolved(&addrs, cap(bound, left)).await
        }
        _ => {
            track.set(Stage::Connecting(Instant::now()));
            endpoint.connect(cap(bound, left)).await
        }
    };
    connected.map_err(|err| Finding::of_connect_error(&err))
}

/// Checks a path off the runtime's threads: a hung network file system must not stall the
/// other targets.
async fn exists(path: std::path::PathBuf) -> Finding {
    match tokio::task::spawn_blocking(move || std::fs::metadata(path)).await {
        Ok(Ok(_)) => Finding::Exists,
        Ok(Err(err)) if err.kind() == std::io::ErrorKind::NotFound => Finding::Missing,
        Ok(Err(err)) if err.kind() == std::io::ErrorKind::NotADirectory => Finding::NotADirectory,
        Ok(Err(err)) => Finding::Unchecked(crate::error::describe_io(&err)),
        Err(join) => Finding::Unchecked(join.to_string()),
    }
}

/// Resolves a `dns:` target the way a client of the name would (the system resolver, and
/// `localhost` as both loopbacks), within `bound`.
async fn resolve(dns: &DnsTarget, bound: Duration, track: &Track) -> Finding {
    let endpoint = Endpoint::Tcp {
        host: Host::Name(dns.name.clone()),
        port: 0,
    };
    let mut found: Vec<_> = match lookup::addresses(&endpoint, bound, track).await {
        Ok(addrs) => addrs.iter().map(|a| a.ip()).collect(),
        Err(finding) => return finding,
    };
    found.sort();
    found.dedup();
    match dns.expect {
        Some(expect) if !found.contains(&expect) => Finding::ResolvesElsewhere { found, expect },
        _ => Finding::Resolves(found),
    }
}
