//! One forwarded connection, from accept to its record: ACL check, connect to a target (the
//! next one when a connect fails), PROXY header, relay; counted into the rule's and the
//! target's metrics.

use std::future::Future;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
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
///
/// An async block, not an async fn: an async fn keeps room for its arguments twice, once as
/// given and once moved into its body (rust-lang/rust#62958), and this state is what an open
/// connection's task holds for as long as it lives.
#[allow(clippy::manual_async_fn)] // an async fn keeps its arguments twice (rust-lang/rust#62958)
pub(super) fn handle<'a>(
    client: Stream,
    peer: Peer,
    backend: &'a Backend,
    mut abort: impl Future<Output = ()> + Unpin + 'a,
    drain: Option<Cancel>,
    records: bool,
) -> impl Future<Output = Option<ConnRecord>> + 'a {
    async move {
        // Only a record says how long the connection lasted: no clock read without one.
        let start = records.then(Instant::now);
        backend.metrics.accepted.fetch_add(1, Ordering::Relaxed);
        let open = Open::on(&backend.metrics.active);
        // The record is made at the end: an open connection keeps only what `Ending` needs.
        let ending = relay_to_target(&client, peer, backend, &mut abort, drain, records).await;
        drop(client);
        crate::descriptor_wait::ended();
        drop(open);
        backend.metrics.closed(ending.close.as_str());
        let start = start?;
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

/// A connection that reached its target, ready to relay: what it holds while it relays. Made
/// in a box of its own ([`reach`]), so the connect, the first bytes and the PROXY header
/// leave no room behind in the connection's task.
struct Reached<'a> {
    /// Declared before the count of relaying connections, so closed before that drops.
    upstream: Stream,
    _relaying: crate::descriptor_wait::Relaying,
    target: &'a Arc<Target>,
    _open: Open<'a>,
    /// The address connected to, when records are asked for.
    text: String,
    head: Head,
}

/// Connects to a target and relays to it: how the connection ended. An async block, as
/// [`handle`]: the arguments are kept once.
#[allow(clippy::manual_async_fn)] // an async fn keeps its arguments twice (rust-lang/rust#62958)
fn relay_to_target<'a, A: Future<Output = ()> + Unpin>(
    client: &'a Stream,
    peer: Peer,
    backend: &'a Backend,
    abort: &'a mut A,
    drain: Option<Cancel>,
    records: bool,
) -> impl Future<Output = Ending> + 'a {
    async move {
        // Boxed: the task of a connection would otherwise keep room for it while it relays.
        let reach = Box::pin(reach(client, peer, backend, &mut *abort, records));
        let mut reached = match reach.await {
            Ok(reached) => reached,
            Err(ending) => return ending,
        };
        let head = std::mem::replace(&mut reached.head, Head::None);
        let target = reached.target;
        let outcome = relay::run(
            client,
            &reached.upstream,
            &backend.rule,
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
            target: std::mem::take(&mut reached.text),
            bytes_up: outcome.bytes_up,
            bytes_down: outcome.bytes_down,
            path: outcome.path,
        }
    }
}

/// Everything before the relay: the `--allow` check, the connect (given up when `abort`
/// completes), the client's first bytes and the PROXY header; the connection's end when it
/// ends there.
async fn reach<'a>(
    client: &Stream,
    peer: Peer,
    backend: &'a Backend,
    abort: &mut (impl Future<Output = ()> + Unpin),
    records: bool,
) -> Result<Reached<'a>, Ending> {
    let rule = &backend.rule;
    if !allowed(peer, rule) {
        // The record is the one log line of a refused client.
        return Err(Ending::early(Close::Denied, None));
    }
    let client_ip = peer.addr().map(|addr| addr.ip());
    let connected = tokio::select! {
        connected = backend.connect(client_ip) => connected,
        () = abort => {
            // A cut, as the relay's (`relay::cut`): the client is not told the target closed.
            client.set_abortive_close();
            return Err(Ending::early(Close::DrainTimeout, None));
        }
    };
    // Declared before the target's stream, so dropped after it is closed.
    let _relaying: crate::descriptor_wait::Relaying;
    let (upstream, target) = match connected {
        Ok(connected) => connected,
        Err(unreachable) => {
            return Err(Ending::early(
                Close::ConnectFailed,
                Some(unreachable.text()),
            ));
        }
    };
    _relaying = crate::descriptor_wait::Relaying::new();
    target.metrics.connections.fetch_add(1, Ordering::Relaxed);
    let open = Open::on(&target.metrics.active);
    let first = first_bytes(client, &upstream, &backend.rule);
    let text = match records {
        true => connected_to(&upstream, target),
        false => String::new(),
    };
    let head = match first {
        Ok(head) => head,
        Err(failure) => {
            return Err(Ending {
                target: text,
                ..gone_before_a_byte(&upstream, failure)
            })
        }
    };
    if let Some(version) = rule.options.proxy_protocol {
        let header = proxy::header(version, client.peer_addr(), client.local_addr());
        if let Err(err) = relay_io::write_all(&upstream, &header).await {
            let error = Some(crate::error::describe_io(&err));
            return Err(Ending {
                target: text,
                ..Ending::early(Close::Reset, error)
            });
        }
    }
    Ok(Reached {
        upstream,
        _relaying,
        target,
        _open: open,
        text,
        head,
    })
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::forward::event::Events;
    use crate::forward::metrics::Registry;

    /// Regression: an open connection's task (`handle`'s state, which `serve_backend` boxes)
    /// kept room for what came before the relay (the connect's select, the PROXY header's
    /// write) and the arguments of `handle` and of `relay_to_target` twice, async fns both
    /// (rust-lang/rust#62958), for as long as the connection lived: 772 B of every idle
    /// connection's 3.9 kB (heaptrack), 816 B here (a debug build's layout: sizes are the
    /// compiler's, not a measurement).
    #[tokio::test]
    async fn an_open_connections_task_keeps_its_arguments_once_and_nothing_of_its_connect() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (ours, _theirs) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let client = Stream::Tcp(ours.unwrap());
        let rule = Arc::new(Rule::new(Endpoint::tcp(addr), Endpoint::tcp(addr)));
        let (events, _incoming) = Events::channel();
        let registry = Registry::default();
        let backend = Backend::new(rule, "test", &registry, &events, None);
        let abort = Box::pin(std::future::pending::<()>());
        let task = handle(client, Peer::Tcp(addr), &backend, abort, None, false);
        let size = std::mem::size_of_val(&task);
        // The client's stream and its address, the target's stream and the rest: 344 B now.
        assert!(size < 512, "a connection's task {size} B");
    }
}
