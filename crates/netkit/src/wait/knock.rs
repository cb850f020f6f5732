//! With `--invert`, bare connects beside HTTP exchanges that are stuck. On a lossy path the
//! first exchange and the one beside it ([`super::hedge`]) can both sit on connections the
//! server took before it went away, their resends rejected (ICMP errors do not end an
//! established connection), until the one beside is replaced after
//! [`REPLACE_AFTER`](super::hedge::REPLACE_AFTER): a server gone meanwhile was seen only then,
//! where an `ncat -z` loop, one connect a second or so, hears the refusal at its next try. So
//! from [`KNOCK_FROM`] into an exchange, a connect alone every [`KNOCK_EVERY`] asks whether the
//! server still takes connections: a refusal (a reset, an ICMP error) or a name that no longer
//! exists ends the attempt, the server gone; a connection made is closed at once (it says
//! nothing of the HTTP answer), and silence waits for the next knock. One knock at a time,
//! each bounded by [`KNOCK_EVERY`]: a far server sees one SYN a second, as from the loop.

use std::time::Duration;

use tokio::time::{sleep_until, timeout, Instant};

use super::finding::Finding;
use super::lookup;
use super::stage::Track;
use crate::endpoint::Endpoint;

/// When, into an exchange, the first knock goes: after the exchange beside it (started at
/// [`HEDGE_AFTER`](super::hedge::HEDGE_AFTER)) had its own connect.
pub const KNOCK_FROM: Duration = Duration::from_secs(2);

/// How often a knock goes, and how long each may take: an `ncat -z -w 1` loop's pace.
pub const KNOCK_EVERY: Duration = Duration::from_secs(1);

/// Knocks at `endpoint` from [`KNOCK_FROM`] on, every [`KNOCK_EVERY`], while `reading` says
/// the exchange has not begun reading its answer's body (its answer has come: it is not
/// stuck); returns the first refusal heard then (never returns otherwise).
pub(super) async fn refusal(endpoint: &Endpoint, reading: impl Fn() -> bool) -> Finding {
    let mut at = Instant::now() + KNOCK_FROM;
    loop {
        sleep_until(at).await;
        at += KNOCK_EVERY;
        if reading() {
            continue;
        }
        if let Some(refused) = timeout(KNOCK_EVERY, knock(endpoint)).await.ok().flatten() {
            if !reading() {
                return refused;
            }
        }
    }
}

/// One knock: the refusal it met, if any.
async fn knock(endpoint: &Endpoint) -> Option<Finding> {
    let addrs = match lookup::addresses(endpoint, KNOCK_EVERY, &Track::default()).await {
        Ok(addrs) => addrs,
        Err(finding) => return refused(finding),
    };
    match endpoint.connect_resolved(&addrs, KNOCK_EVERY).await {
        Ok(connection) => {
            drop(connection);
            None
        }
        Err(err) => refused(Finding::of_connect_error(&err)),
    }
}

/// `finding` when it says the server gone: a refused connect or a name that does not exist.
fn refused(finding: Finding) -> Option<Finding> {
    matches!(finding, Finding::ConnectFailed(_) | Finding::Unresolved(_)).then_some(finding)
}
