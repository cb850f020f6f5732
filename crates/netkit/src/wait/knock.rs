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

/// When, into an exchange, the first knock goes: with the exchange beside it (started at
/// [`HEDGE_AFTER`](super::hedge::HEDGE_AFTER)), which often takes a connection already made
/// ([`super::linger`]) and so asks the server nothing new. From 2 s (stop 50), a server gone
/// in the first seconds was heard a second later: 10 runs behind 20 % loss, median 1.30 s
/// after it went (max 3.16) against 0.93 s (max 1.71) from 1 s, and neither said gone in 8
/// runs at 35 % loss with the server there all along (bench/wait_invert_loss.py).
pub const KNOCK_FROM: Duration = Duration::from_secs(1);

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

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback listener that is never accepted from here: the kernel completes every
    /// knock's handshake into its queue, where [`knocks`] counts them.
    fn listener() -> (std::net::TcpListener, Endpoint) {
        let server = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        server.set_nonblocking(true).expect("non-blocking");
        let endpoint = Endpoint::tcp(server.local_addr().expect("addr"));
        (server, endpoint)
    }

    /// The knocks `server` took since the last count.
    fn knocks(server: &std::net::TcpListener) -> usize {
        std::iter::from_fn(|| server.accept().ok()).count()
    }

    /// Knocks at a server that takes connections for `until` of (virtual) time.
    async fn knock_for(until: Duration, endpoint: &Endpoint, reading: bool) {
        let found = timeout(until, refusal(endpoint, || reading)).await;
        assert!(
            found.is_err(),
            "a server that takes connections refused: {found:?}"
        );
    }

    /// No knock before [`KNOCK_FROM`], then one every [`KNOCK_EVERY`]; none while the exchange
    /// reads its answer's body.
    #[tokio::test(start_paused = true)]
    async fn knocks_start_at_knock_from_then_one_every_knock_every() {
        let (server, endpoint) = listener();
        let half = KNOCK_EVERY / 2;
        knock_for(KNOCK_FROM - half, &endpoint, false).await;
        assert_eq!(knocks(&server), 0);
        knock_for(KNOCK_FROM + half, &endpoint, false).await;
        assert_eq!(knocks(&server), 1);
        knock_for(KNOCK_FROM + 2 * KNOCK_EVERY + half, &endpoint, false).await;
        assert_eq!(knocks(&server), 3);
        knock_for(KNOCK_FROM + 2 * KNOCK_EVERY + half, &endpoint, true).await;
        assert_eq!(knocks(&server), 0);
    }

    /// A server gone (its port refuses) is heard at the first knock.
    #[tokio::test(start_paused = true)]
    async fn the_first_knock_hears_a_refusal() {
        let (server, endpoint) = listener();
        drop(server);
        let start = Instant::now();
        let found = refusal(&endpoint, || false).await;
        assert!(matches!(found, Finding::ConnectFailed(_)), "{found:?}");
        assert!(
            start.elapsed() < KNOCK_FROM + KNOCK_EVERY,
            "{:?}",
            start.elapsed()
        );
    }
}
