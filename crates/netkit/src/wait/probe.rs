//! One attempt at one target, whatever its kind, turned into a [`Finding`]. Every attempt is
//! bounded: connects by the backoff's connect bound, HTTP answers and name lookups by
//! [`ANSWER_BOUND`], all by the time left before the deadline.

use std::time::Duration;

use super::finding::Finding;
use super::http::{HttpCheck, ANSWER_BOUND};
use super::target::{DnsTarget, Target};
use crate::endpoint::{Endpoint, Host};
use crate::error::Error;

/// What every attempt of one wait shares.
#[derive(Debug, Clone)]
pub(super) struct Probe {
    /// How long one connect may take.
    pub connect_bound: Duration,
    /// What HTTP targets must answer.
    pub http: HttpCheck,
}

impl Probe {
    /// Tries `target` once, within `left` (the time before the deadline, if there is one).
    pub async fn attempt(&self, target: &Target, left: Option<Duration>) -> Finding {
        let cap = |bound: Duration| left.map_or(bound, |left| bound.min(left));
        let connect_bound = cap(self.connect_bound);
        match target {
            Target::Connect(endpoint) => match endpoint.connect(connect_bound).await {
                Ok(_) => Finding::Accepts,
                Err(err) => connect_failure(&err),
            },
            Target::Http(http) => {
                super::http::attempt(http, &self.http, connect_bound, cap(ANSWER_BOUND)).await
            }
            Target::Dns(dns) => tokio::time::timeout(cap(ANSWER_BOUND), resolve(dns))
                .await
                .unwrap_or_else(|_| Finding::Unresolved("name lookup timed out".into())),
            Target::File(path) => tokio::time::timeout(cap(ANSWER_BOUND), exists(path.clone()))
                .await
                .unwrap_or_else(|_| Finding::Unchecked("the file system did not answer".into())),
        }
    }
}

/// Checks a path off the runtime's threads: a hung network file system must not stall the
/// other targets.
async fn exists(path: std::path::PathBuf) -> Finding {
    match tokio::task::spawn_blocking(move || std::fs::metadata(path)).await {
        Ok(Ok(_)) => Finding::Exists,
        Ok(Err(err)) if err.kind() == std::io::ErrorKind::NotFound => Finding::Missing,
        Ok(Err(err)) => Finding::Unchecked(crate::error::describe_io(&err)),
        Err(join) => Finding::Unchecked(join.to_string()),
    }
}

/// A failed connect (or the lookup before it) as a finding.
pub(super) fn connect_failure(err: &Error) -> Finding {
    match err {
        Error::Resolve { host, why } => {
            Finding::Unresolved(format!("cannot resolve {host}: {}", resolver_reason(why)))
        }
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::TimedOut => {
            Finding::ConnectFailed("connect timed out".into())
        }
        Error::Io { source, .. } => Finding::ConnectFailed(crate::error::describe_io(source)),
        other => Finding::ConnectFailed(other.to_string()),
    }
}

/// The resolver's own words (`name or service not known`), without the standard library's
/// `failed to lookup address information:` preamble.
fn resolver_reason(why: &str) -> String {
    let why = why.trim_start_matches("failed to lookup address information: ");
    let mut chars = why.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => why.to_string(),
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
        Err(err) => return connect_failure(&err),
    };
    found.sort();
    found.dedup();
    match dns.expect {
        Some(expect) if !found.contains(&expect) => Finding::ResolvesElsewhere { found, expect },
        _ => Finding::Resolves(found),
    }
}
