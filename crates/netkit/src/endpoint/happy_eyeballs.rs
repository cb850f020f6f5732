//! Connecting to a name with several addresses, Happy Eyeballs style (RFC 8305): the addresses
//! are interleaved by family (§4: the resolver's first address, then the first of the other
//! family, and so on), the first attempt starts at once, and each next one starts when the
//! attempt before it failed or after [`ATTEMPT_DELAY`] without an answer (§5), whichever
//! comes first. The first connection made wins; the attempts still running are dropped (their
//! sockets closed). So a dead first address (a host that drops SYNs) costs a connection
//! 250 ms, not the whole connect timeout, and only the first connection: the process
//! remembers which address answered and which stayed silent (`endpoint::eyeballs_memory`) and
//! starts the next connects with the winner.
//!
//! Names are resolved by the system resolver, which answers both families at once: the
//! separate AAAA/A queries of RFC 8305 §3 are not made here.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use super::eyeballs_memory::{self as memory, Verdict};

/// How long an attempt runs alone before the next address is tried too (RFC 8305 §8's
/// recommended Connection Attempt Delay).
pub const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// When a TCP connect sends the last ACK of its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HandshakeAck {
    /// At once, as the kernel does by default.
    #[default]
    Now,
    /// With the first bytes written, one segment fewer per connection (`TCP_QUICKACK` off
    /// before the connect, as HAProxy's `tcp-smart-connect`). The kernel holds it for up to
    /// 200 ms, so a caller with nothing to write sends it at once with
    /// [`super::Stream::ack_now`]: a server that speaks first is not kept waiting.
    WithData,
}

/// Connects to the first of `addrs` that answers, each attempt bounded by `timeout`, attempts
/// staggered by `delay`; the error of the last attempt to fail when none does. The order is
/// the interleaved one as the process's memory of earlier connects rearranges it (the last
/// winner first, the addresses that failed lately last), and what this connect learns is
/// written back; a single address is tried alone, with no memory.
pub async fn connect(
    addrs: &[SocketAddr],
    timeout: Duration,
    delay: Duration,
    ack: HandshakeAck,
) -> io::Result<TcpStream> {
    let order = interleave(addrs);
    match order.as_slice() {
        [] => return Err(io::Error::new(io::ErrorKind::NotFound, "no addresses")),
        [only] => return attempt(*only, timeout, ack).await,
        _ => {}
    }
    connect_noting(order, timeout, delay, ack).await.0
}

/// [`connect`]'s race of two or more addresses (interleaved) in the order the memory gives
/// them, writing what it learned back; the verdicts are returned too.
async fn connect_noting(
    mut order: Vec<SocketAddr>,
    timeout: Duration,
    delay: Duration,
    ack: HandshakeAck,
) -> (io::Result<TcpStream>, Vec<(SocketAddr, Verdict)>) {
    let known = memory::arrange(&mut order);
    let (result, verdicts) = race(&order, timeout, delay, ack).await;
    // A winner remembered lately that answered first again changes nothing worth a lock.
    let again =
        known && matches!(verdicts.as_slice(), [(addr, Verdict::Answered)] if *addr == order[0]);
    if !again {
        memory::record(&verdicts);
    }
    (result, verdicts)
}

/// Races the attempts to `order` (two or more addresses), staggered by `delay`: the first
/// connection made, and the verdicts learned on the way (the winner answered; the attempts
/// that failed, and those started before it still unanswered, failed).
async fn race(
    order: &[SocketAddr],
    timeout: Duration,
    delay: Duration,
    ack: HandshakeAck,
) -> (io::Result<TcpStream>, Vec<(SocketAddr, Verdict)>) {
    let mut verdicts = Vec::with_capacity(order.len());
    let mut pending = Vec::with_capacity(order.len());
    let mut next = order.iter().copied().enumerate();
    let mut running = JoinSet::new();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no addresses");
    let mut start = |running: &mut JoinSet<_>, pending: &mut Vec<usize>| match next.next() {
        Some((i, addr)) => {
            tracing::debug!("connect to {addr}: attempt {} of {}", i + 1, order.len());
            pending.push(i);
            running.spawn(async move { (i, attempt(addr, timeout, ack).await) });
            true
        }
        None => false,
    };
    let mut more = start(&mut running, &mut pending);
    loop {
        let stagger = tokio::time::sleep(delay);
        tokio::select! {
            done = running.join_next() => match done {
                Some(Ok((i, Ok(stream)))) => {
                    verdicts.extend(pending.iter().filter(|&&j| j < i).map(|&j| (order[j], Verdict::Failed)));
                    verdicts.push((order[i], Verdict::Answered));
                    return (Ok(stream), verdicts);
                }
                Some(Ok((i, Err(err)))) => {
                    pending.retain(|&j| j != i);
                    verdicts.push((order[i], Verdict::Failed));
                    last = err;
                }
                Some(Err(join)) => last = io::Error::other(join.to_string()),
                None => return (Err(last), verdicts),
            },
            () = stagger, if more => {}
        }
        if more {
            more = start(&mut running, &mut pending);
        }
    }
}

/// One connection attempt, bounded by `timeout`, with `TCP_NODELAY` set.
pub async fn attempt(
    addr: SocketAddr,
    timeout: Duration,
    ack: HandshakeAck,
) -> io::Result<TcpStream> {
    tokio::time::timeout(timeout, connect_one(addr, ack))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}

/// Connects a non-blocking socket (`TCP_NODELAY` set before the connect, which keeps it) and
/// takes the kernel's verdict from the readiness alone: a connect that failed reports an error
/// (`EPOLLERR`), and only then is the error fetched. tokio's own connect asks `SO_ERROR` after
/// every connect, one system call per forwarded connection.
async fn connect_one(addr: SocketAddr, ack: HandshakeAck) -> io::Result<TcpStream> {
    super::refuse_unzoned_link_local(addr)?;
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )?;
    socket.set_nodelay(true)?;
    // A saving, not a promise: if the option is refused, the ACK goes alone as it always did.
    if ack == HandshakeAck::WithData && socket.set_quickack(false).is_err() {
        tracing::debug!("connect to {addr}: the handshake's ACK goes alone");
    }
    match socket.connect(&addr.into()) {
        Err(err) if err.raw_os_error() != Some(nix::errno::Errno::EINPROGRESS as i32) => {
            return Err(err)
        }
        _ => {}
    }
    let stream = TcpStream::from_std(std::net::TcpStream::from(socket))?;
    let ready = stream.ready(Interest::WRITABLE | Interest::ERROR).await?;
    if ready.is_error() || ready.is_write_closed() {
        if let Some(err) = stream.take_error()? {
            return Err(err);
        }
        // Connected, then closed at once by the peer: the relay sees the close.
        stream.peer_addr()?;
    }
    Ok(stream)
}

/// The resolver's order with the two families alternating, starting with the family of the
/// first address (RFC 8305 §4, First Address Family Count 1).
fn interleave(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return Vec::new();
    };
    let (mut same, mut other): (Vec<_>, Vec<_>) =
        addrs.iter().partition(|a| a.is_ipv6() == first.is_ipv6());
    same.reverse();
    other.reverse();
    let mut order = Vec::with_capacity(addrs.len());
    while let Some(next) = same.pop() {
        order.push(next);
        order.extend(other.pop());
    }
    order.extend(other.into_iter().rev());
    order
}

#[cfg(test)]
#[path = "happy_eyeballs_memory_tests.rs"]
mod memory_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn families_alternate_from_the_first_one() {
        let got = interleave(&addrs(&[
            "[2001:db8::1]:80",
            "[2001:db8::2]:80",
            "[2001:db8::3]:80",
            "198.18.0.1:80",
        ]));
        let want = addrs(&[
            "[2001:db8::1]:80",
            "198.18.0.1:80",
            "[2001:db8::2]:80",
            "[2001:db8::3]:80",
        ]);
        assert_eq!(got, want);
        let got = interleave(&addrs(&["198.18.0.1:80", "198.18.0.2:80", "[::1]:80"]));
        assert_eq!(got, addrs(&["198.18.0.1:80", "[::1]:80", "198.18.0.2:80"]));
        assert!(interleave(&[]).is_empty());
    }

    #[tokio::test]
    async fn a_refused_first_address_moves_on_at_once_and_the_live_one_wins() {
        let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (_refusing, dead) = crate::testing::refused_addr();
        let list = [dead, live.local_addr().unwrap()];
        // A delay longer than the test may take: only the failure can start the second one.
        let stream = connect(
            &list,
            Duration::from_secs(5),
            Duration::from_secs(3600),
            HandshakeAck::Now,
        )
        .await
        .unwrap();
        assert_eq!(stream.peer_addr().unwrap(), live.local_addr().unwrap());
    }

    #[tokio::test]
    async fn every_address_failing_gives_the_last_error() {
        let (_refusing, dead) = crate::testing::refused_addr();
        let err = connect(
            &[dead, dead],
            Duration::from_secs(5),
            ATTEMPT_DELAY,
            HandshakeAck::Now,
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        let none = connect(
            &[],
            Duration::from_secs(5),
            ATTEMPT_DELAY,
            HandshakeAck::Now,
        )
        .await;
        assert_eq!(none.unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
