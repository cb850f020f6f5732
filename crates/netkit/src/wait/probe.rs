//! One attempt at one target, whatever its kind, turned into a [`Finding`]. Every attempt is
//! bounded: connects and HTTP answers by the [`Bounds`] the caller gives, name lookups and
//! file checks by [`ANSWER_BOUND`], all by the time left before the deadline.

use std::time::Duration;

use super::backoff::Bounds;
use super::finding::Finding;
use super::http::{HttpCheck, ANSWER_BOUND};
use super::target::{DnsTarget, HttpTarget, Target};
use crate::endpoint::{Endpoint, Host};

/// What every attempt of one wait shares.
#[derive(Debug, Clone)]
pub(super) struct Probe {
    /// What HTTP targets must answer.
    pub http: HttpCheck,
}

impl Probe {
    /// Tries `target` once within `bounds`, all within `left` (the time before the deadline,
    /// if there is one).
    pub async fn attempt(
        &self,
        target: &Target,
        bounds: Bounds,
        left: Option<Duration>,
    ) -> Finding {
        let cap = |bound: Duration| left.map_or(bound, |left| bound.min(left));
        let connect_bound = cap(bounds.connect);
        match target {
            Target::Connect(endpoint) => match endpoint.connect(connect_bound).await {
                Ok(_) => Finding::Accepts,
                Err(err) => Finding::of_connect_error(&err),
            },
            Target::Http(http) => {
                super::http::attempt(http, &self.http, connect_bound, cap(bounds.answer)).await
            }
            Target::Dns(dns) => tokio::time::timeout(cap(ANSWER_BOUND), resolve(dns))
                .await
                .unwrap_or_else(|_| Finding::LookupFailed("name lookup timed out".into())),
            Target::File(path) => tokio::time::timeout(cap(ANSWER_BOUND), exists(path.clone()))
                .await
                .unwrap_or_else(|_| Finding::Unchecked("the file system did not answer".into())),
        }
    }
}

impl Probe {
    /// The rest of an HTTP attempt over `stream`, already connected, within `bound` and
    /// `left`.
    pub async fn answer(
        &self,
        target: &HttpTarget,
        stream: crate::endpoint::Stream,
        bound: Duration,
        left: Option<Duration>,
    ) -> Finding {
        let bound = left.map_or(bound, |left| bound.min(left));
        super::http::answer(stream, target, &self.http, bound).await
    }
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
/// `localhost` as both loopbacks).
async fn resolve(dns: &DnsTarget) -> Finding {
    let endpoint = Endpoint::Tcp {
        host: Host::Name(dns.name.clone()),
        port: 0,
    };
    let mut found: Vec<_> = match endpoint.resolve().await {
        Ok(addrs) => addrs.iter().map(|a| a.ip()).collect(),
        Err(err) => return Finding::of_connect_error(&err),
    };
    found.sort();
    found.dedup();
    match dns.expect {
        Some(expect) if !found.contains(&expect) => Finding::ResolvesElsewhere { found, expect },
        _ => Finding::Resolves(found),
    }
}
