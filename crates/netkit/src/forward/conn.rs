//! One forwarded connection, from accept to its record: ACL check, connect to the target,
//! PROXY header, relay.

use std::future::Future;
use std::net::IpAddr;
use std::time::{Instant, SystemTime};

use super::relay::{self, Outcome};
use super::{io as relay_io, proxy, Rule};
use crate::endpoint::Stream;
use crate::report::forward::{Close, ConnRecord};

/// Handles one accepted client until both directions are done or `abort` completes (the
/// drain timeout); returns its record.
pub(super) async fn handle(
    client: Stream,
    peer: String,
    rule: &Rule,
    abort: impl Future<Output = ()>,
) -> ConnRecord {
    let start = Instant::now();
    let mut record = ConnRecord {
        time: String::new(),
        client: peer,
        target: rule.target.to_string(),
        bytes_up: 0,
        bytes_down: 0,
        duration_s: 0.0,
        close: Close::Done,
        relay: String::new(),
        error: None,
    };
    tokio::pin!(abort);
    relay_to_target(&client, rule, &mut record, abort).await;
    drop(client);
    record.duration_s = start.elapsed().as_secs_f64();
    record.time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    record
}

async fn relay_to_target(
    client: &Stream,
    rule: &Rule,
    record: &mut ConnRecord,
    mut abort: std::pin::Pin<&mut impl Future<Output = ()>>,
) {
    if !allowed(client, rule) {
        tracing::warn!("{}: refused, not in --allow", record.client);
        record.close = Close::Denied;
        return;
    }
    // Boxed: the task of a connection would otherwise keep room for it while it relays.
    let connect = Box::pin(rule.target.connect(rule.options.connect_timeout));
    let connected = tokio::select! {
        connected = connect => connected,
        () = &mut abort => {
            record.close = Close::DrainTimeout;
            return;
        }
    };
    let upstream = match connected {
        Ok(upstream) => upstream,
        Err(err) => {
            record.close = Close::ConnectFailed;
            record.error = Some(err.to_string());
            return;
        }
    };
    if let Some(addr) = upstream.peer_addr() {
        record.target = addr.to_string();
    }
    if let Some(version) = rule.options.proxy_protocol {
        let header = proxy::header(version, client.peer_addr(), client.local_addr());
        if let Err(err) = relay_io::write_all(&upstream, &header).await {
            record.close = Close::Reset;
            record.error = Some(crate::error::describe_io(&err));
            return;
        }
    }
    let outcome = relay::run(client, &upstream, rule, abort).await;
    finish(record, outcome);
}

fn finish(record: &mut ConnRecord, outcome: Outcome) {
    record.bytes_up = outcome.bytes_up;
    record.bytes_down = outcome.bytes_down;
    record.relay = outcome.path.to_string();
    record.close = outcome.close;
    record.error = outcome.error;
}

/// Whether the client may connect: no `--allow` list, a Unix client, or an address inside it.
fn allowed(client: &Stream, rule: &Rule) -> bool {
    let allow = &rule.options.allow;
    if allow.is_empty() {
        return true;
    }
    let Some(peer) = client.peer_addr() else {
        return matches!(client, Stream::Unix(_));
    };
    let ip = match peer.ip() {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    allow.iter().any(|net| net.contains(&ip))
}
