//! The name lookup of an attempt, a step of its own before the connect: bounded on its own
//! (by [`ANSWER_BOUND`](super::http::ANSWER_BOUND) and the time left) and run in a blocking
//! thread that is abandoned when the bound passes ([`names::look_up_within`]), so a resolver
//! that never answers reads `name lookup timed out`, not as a silent host, and never holds
//! the wait past its deadline.

use std::net::SocketAddr;
use std::time::Duration;

use super::finding::Finding;
use super::stage::{Stage, Track};
use crate::endpoint::names::{self, Lookup};
use crate::endpoint::{Endpoint, Host};

/// What a lookup that did not end within its bound found.
pub(super) const TIMED_OUT: &str = "name lookup timed out";

/// The addresses of a TCP endpoint: a literal one's own, or those its name has, looked up
/// within `bound` (the lookup's stage on `track`); else the finding that ends the attempt.
pub(super) async fn addresses(
    endpoint: &Endpoint,
    bound: Duration,
    track: &Track,
) -> Result<Vec<SocketAddr>, Finding> {
    let Endpoint::Tcp { host, port } = endpoint else {
        return Ok(Vec::new());
    };
    let Host::Name(name) = host else {
        return Ok(host.socket_addr(*port).into_iter().collect());
    };
    track.set(Stage::LookingUp);
    match names::look_up_within(name, *port, bound).await {
        Some(Lookup::Found(addrs)) => Ok(addrs),
        Some(Lookup::NoSuchName(why)) => Err(Finding::Unresolved(cannot(name, &why))),
        Some(Lookup::Unanswered(why)) => Err(Finding::LookupFailed(cannot(name, &why))),
        None => Err(Finding::LookupFailed(TIMED_OUT.into())),
    }
}

/// `cannot resolve NAME: WHY`.
fn cannot(name: &str, why: &str) -> String {
    format!("cannot resolve {name}: {why}")
}
