//! One forwarded connection, from accept to its record: ACL check, connect to a target (the
//! next one when a connect fails), PROXY header, relay; counted into the rule's and the
//! target's metrics.

use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::backend::Backend;
use super::metrics::Open;
use super::relay::{self, Outcome};
use super::target::Target;
use super::{event, io as relay_io, proxy, Rule};
use crate::endpoint::{Endpoint, Host, Peer, Stream};
use crate::report::forward::{Close, ConnRecord};

/// Handles one accepted client until both directions are done or `abort` completes (the
/// drain timeout); returns its record when `records` asks for one (else only the metrics
/// count it, and the strings of a record are not made).
pub(super) async fn handle(
    client: Stream,
    peer: Peer,
    backend: &Backend,
    abort: impl Future<Output = ()>,
    records: bool,
) -> Option<ConnRecord> {
    let start = Instant::now();
    backend.metrics.accepted.fetch_add(1, Ordering::Relaxed);
    let open = Open::on(&backend.metrics.active);
    let mut record = ConnRecord {
        time: String::new(),
        client: String::new(),
        // The address connected to, once connected (and asked for).
        target: String::new(),
        bytes_up: 0,
        bytes_down: 0,
        duration_s: 0.0,
        close: Close::Done,
        relay: String::new(),
        error: None,
    };
    tokio::pin!(abort);
    relay_to_target(&client, peer, backend, &mut record, abort, records).await;
    drop(client);
    drop(open);
    backend.metrics.closed(record.close.as_str());
    if !records {
        return None;
    }
    record.client = peer.to_string();
    if record.target.is_empty() {
        record.target = backend.rule.targets_text();
    }
    record.duration_s = start.elapsed().as_secs_f64();
    record.time = event::now();
    Some(record)
}

async fn relay_to_target(
    client: &Stream,
    peer: Peer,
    backend: &Backend,
    record: &mut ConnRecord,
    mut abort: std::pin::Pin<&mut impl Future<Output = ()>>,
    records: bool,
) {
    let rule = &backend.rule;
    if !allowed(peer, rule) {
        // The record is the one log line of a refused client.
        record.close = Close::Denied;
        return;
    }
    let client_ip = peer.addr().map(|addr| addr.ip());
    // Boxed: the task of a connection would otherwise keep room for it while it relays.
    let connect = Box::pin(backend.connect(client_ip));
    let connected = tokio::select! {
        connected = connect => connected,
        () = &mut abort => {
            record.close = Close::DrainTimeout;
            return;
        }
    };
    let (upstream, target) = match connected {
        Ok(connected) => connected,
        Err(unreachable) => {
            record.close = Close::ConnectFailed;
            record.error = Some(unreachable.text());
            return;
        }
    };
    target.metrics.connections.fetch_add(1, Ordering::Relaxed);
    let _open = Open::on(&target.metrics.active);
    if records {
        record.target = connected_to(&upstream, target);
    }
    if let Some(version) = rule.options.proxy_protocol {
        let header = proxy::header(version, client.peer_addr(), client.local_addr());
        if let Err(err) = relay_io::write_all(&upstream, &header).await {
            record.close = Close::Reset;
            record.error = Some(crate::error::describe_io(&err));
            return;
        }
    }
    let outcome = relay::run(client, &upstream, rule, &target.endpoint, abort).await;
    target
        .metrics
        .finished(outcome.bytes_up, outcome.bytes_down, outcome.path);
    finish(record, outcome, records);
}

fn finish(record: &mut ConnRecord, outcome: Outcome, records: bool) {
    record.bytes_up = outcome.bytes_up;
    record.bytes_down = outcome.bytes_down;
    if records {
        record.relay = outcome.path.to_string();
    }
    record.close = outcome.close;
    record.error = outcome.error;
}

/// The address a connection reached: the target's own text when it names one address, the
/// address the kernel connected to when it is a name (asked only then: a system call).
fn connected_to(upstream: &Stream, target: &Target) -> String {
    let named = matches!(
        target.endpoint,
        Endpoint::Tcp {
            host: Host::Name(_),
            ..
        }
    );
    match named.then(|| upstream.peer_addr()).flatten() {
        Some(addr) => addr.to_string(),
        None => target.key.clone(),
    }
}

/// Whether the client may connect: no `--allow` list, a Unix client, or an address inside it.
fn allowed(peer: Peer, rule: &Rule) -> bool {
    let allow = &rule.options.allow;
    if allow.is_empty() {
        return true;
    }
    let Some(addr) = peer.addr() else {
        return true;
    };
    let ip: IpAddr = addr.ip();
    allow.iter().any(|net| net.contains(&ip))
}
