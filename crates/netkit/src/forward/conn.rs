//! One forwarded connection, from accept to its record: ACL check, connect to a target (the
//! next one when a connect fails), PROXY header, relay; counted into the rule's and the
//! target's metrics.

use std::future::Future;
use std::io;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::backend::Backend;
use super::flow::{Fault, Leg};
use super::io::{End, Head};
use super::metrics::Open;
use super::relay;
use super::target::Target;
use super::{event, io as relay_io, proxy, Rule};
use crate::endpoint::{Endpoint, Host, Peer, Stream};
use crate::report::forward::{Close, ConnRecord};
use crate::server::Cancel;

/// Handles one accepted client until both directions are done or `abort` completes (the
/// drain timeout); returns its record when `records` asks for one (else only the metrics
/// count it, and the strings of a record are not made). `drain` (`--http-host` rules) tells
/// the relay when the server began to drain.
pub(super) async fn handle(
    client: Stream,
    peer: Peer,
    backend: &Backend,
    abort: impl Future<Output = ()>,
    drain: Option<Cancel>,
    records: bool,
) -> Option<ConnRecord> {
    let start = Instant::now();
    backend.metrics.accepted.fetch_add(1, Ordering::Relaxed);
    let open = Open::on(&backend.metrics.active);
    tokio::pin!(abort);
    // The record is made at the end: an open connection keeps only what `Ending` needs.
    let ending = relay_to_target(&client, peer, backend, abort, drain, records).await;
    drop(client);
    crate::descriptor_wait::ended();
    drop(open);
    backend.metrics.closed(ending.close.as_str());
    if !records {
        return None;
    }
    let target = match ending.target.is_empty() {
        true => backend.rule.targets_text(),
        false => ending.target,
    };
    Some(ConnRecord {
        time: event::now(),
        client: peer.to_string(),
        target,
        bytes_up: ending.bytes_up,
        bytes_down: ending.bytes_down,
        duration_s: start.elapsed().as_secs_f64(),
        close: ending.close,
        relay: ending.path.to_string(),
        error: ending.error,
    })
}

/// How a connection ended: what its record says beyond the client and the times.
#[derive(Debug)]
struct Ending {
    close: Close,
    error: Option<String>,
    /// The address connected to (when records are asked for), empty when none was reached.
    target: String,
    bytes_up: u64,
    bytes_down: u64,
    path: &'static str,
}

impl Ending {
    /// Ended before anything was relayed.
    fn early(close: Close, error: Option<String>) -> Ending {
        Ending {
            close,
            error,
            target: String::new(),
            bytes_up: 0,
            bytes_down: 0,
            path: "",
        }
    }
}

async fn relay_to_target(
    client: &Stream,
    peer: Peer,
    backend: &Backend,
    mut abort: std::pin::Pin<&mut impl Future<Output = ()>>,
    drain: Option<Cancel>,
    records: bool,
) -> Ending {
    let rule = &backend.rule;
    if !allowed(peer, rule) {
        // The record is the one log line of a refused client.
        return Ending::early(Close::Denied, None);
    }
    let client_ip = peer.addr().map(|addr| addr.ip());
    // Boxed: the task of a connection would otherwise keep room for it while it relays.
    let connect = Box::pin(backend.connect(client_ip));
    let connected = tokio::select! {
        connected = connect => connected,
        () = &mut abort => {
            // A cut, as the relay's (`relay::cut`): the client is not told the target closed.
            client.set_abortive_close();
            return Ending::early(Close::DrainTimeout, None);
        }
    };
    // Declared before the target's stream, so dropped after it is closed.
    let _relaying: crate::descriptor_wait::Relaying;
    let (upstream, target) = match connected {
        Ok(connected) => connected,
        Err(unreachable) => {
            return Ending::early(Close::ConnectFailed, Some(unreachable.text()));
        }
    };
    _relaying = crate::descriptor_wait::Relaying::new();
    target.metrics.connections.fetch_add(1, Ordering::Relaxed);
    let _open = Open::on(&target.metrics.active);
    let first = first_bytes(client, &upstream, rule);
    let reached = match records {
        true => connected_to(&upstream, target),
        false => String::new(),
    };
    let head = match first {
        Ok(head) => head,
        Err(failure) => {
            return Ending {
                target: reached,
                ..gone_before_a_byte(&upstream, failure)
            }
        }
    };
    if let Some(version) = rule.options.proxy_protocol {
        let header = proxy::header(version, client.peer_addr(), client.local_addr());
        if let Err(err) = relay_io::write_all(&upstream, &header).await {
            let error = Some(crate::error::describe_io(&err));
            return Ending {
                target: reached,
                ..Ending::early(Close::Reset, error)
            };
        }
    }
    let outcome = relay::run(
        client,
        &upstream,
        rule,
        &target.endpoint,
        abort,
        drain,
        head,
    )
    .await;
    target
        .metrics
        .finished(outcome.bytes_up, outcome.bytes_down, outcome.path);
    Ending {
        close: outcome.close,
        error: outcome.error,
        target: reached,
        bytes_up: outcome.bytes_up,
        bytes_down: outcome.bytes_down,
        path: outcome.path,
    }
}

/// A TCP target leg's handshake ended without its last ACK (`HandshakeAck::WithData`): the
/// first bytes written carry it, one segment fewer for both ends (and the target's kernel
/// hands its server the connection with the bytes already there). The PROXY header is
/// written at once; on a plain relay the client's bytes already here are read and passed on
/// now (the first step of the upward direction, returned for the relay to go on from: one
/// read, where a look whether bytes wait cost a system call of its own before the relay read
/// them); with `--http-host` only that look is taken (the HTTP session reads the client). When
/// the client has sent nothing yet the ACK goes now, so a target that speaks first is not
/// kept waiting. An error is the client's pending one (it reset before sending a byte), which
/// the read took from its stream.
fn first_bytes(client: &Stream, upstream: &Stream, rule: &Rule) -> io::Result<Head> {
    let tcp = matches!(upstream, Stream::Tcp(_));
    if !tcp || rule.options.proxy_protocol.is_some() {
        return Ok(Head::None);
    }
    let here = match rule.options.http_host {
        Some(_) => client.readable_now()?.then_some(Head::None),
        None => match relay_io::copy_now(client, upstream) {
            Some(Err((End::Src, err))) => return Err(err),
            step => step.map(Head::of),
        },
    };
    if let Some(head) = here {
        return Ok(head);
    }
    if let Err(err) = upstream.ack_now() {
        let why = crate::error::describe_io(&err);
        tracing::debug!("the handshake's ACK to the target: {why}");
    }
    Ok(Head::None)
}

/// The client failed before it sent a byte (`failure`, taken from its stream, which a read
/// would now find at a clean end of file): a reset reaches the target as a reset, as it
/// would have had the target been connected already. Nothing was relayed, so nothing waits
/// to be delivered first.
fn gone_before_a_byte(upstream: &Stream, failure: io::Error) -> Ending {
    let fault = Fault::new(Leg::Client, failure);
    upstream.set_abortive_close();
    let close = if fault.is_reset() {
        Close::Reset
    } else {
        Close::Error
    };
    Ending::early(close, Some(crate::error::describe_io(&fault.err)))
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
        Some(addr) => Endpoint::tcp(addr).to_string(),
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
    super::allow::allows(allow, addr.ip())
}
