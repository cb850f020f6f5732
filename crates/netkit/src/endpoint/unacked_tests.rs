//! [`Stream::unacked`] counts data only: a FIN sent (or queued) on a write side that was shut
//! down is one sequence number that `TIOCOUTQ` counts too, but not a byte the peer is owed.
//! Each case runs in a network namespace of its own (a thread that unshared one: it goes away
//! with the thread), where a firewall rule drops the peer's acknowledgements from a chosen
//! moment on, so that what is acknowledged and what is not is decided, not raced.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use super::Stream;

/// How long the peer's kernel is given to acknowledge what it was sent while nothing drops
/// its acknowledgements (loopback: well under a millisecond).
const PATIENCE: Duration = Duration::from_secs(5);

/// `tcpi_state` numbers of the kernel's `include/net/tcp_states.h`.
const FIN_WAIT1: u8 = 4;
const LAST_ACK: u8 = 9;

/// Runs `what` on a thread in a network namespace of its own with loopback up; `None` when
/// this user may not make one (or lacks `ip`).
fn in_own_netns<T: Send + 'static>(what: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    std::thread::spawn(move || {
        // SAFETY: unshare(2) with CLONE_NEWNET moves only this thread into a new namespace.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return None;
        }
        // A child started from this thread shares its namespace.
        let up = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status();
        up.is_ok_and(|s| s.success()).then(what)
    })
    .join()
    .unwrap()
}

/// Drops, from now on, every TCP segment `peer` sends (in this thread's namespace).
fn drop_acks_of(peer: &TcpStream) {
    let port = peer.local_addr().unwrap().port().to_string();
    let rule = ["-A", "INPUT", "-p", "tcp", "--sport", &port, "-j", "DROP"];
    let status = Command::new("iptables").args(rule).status().unwrap();
    assert!(status.success(), "iptables {rule:?}");
}

/// A connected pair on loopback: (the side under test, its peer).
fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (sender, _) = listener.accept().unwrap();
    (sender, peer)
}

/// What `TIOCOUTQ` says of `stream`.
fn outq(stream: &TcpStream) -> usize {
    crate::sys::sockopt::unacked(stream).unwrap()
}

/// Waits until `stream`'s peer acknowledged everything sent so far.
fn wait_acked(stream: &TcpStream) {
    let start = Instant::now();
    while outq(stream) > 0 && start.elapsed() < PATIENCE {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(outq(stream), 0, "the peer never acknowledged");
}

/// (`TIOCOUTQ`, `tcpi_state`, [`Stream::unacked`]) of `sender`.
fn counts(sender: TcpStream) -> (usize, u8, Option<usize>) {
    let raw = outq(&sender);
    let state = crate::sys::sockopt::tcp_info(&sender).unwrap().tcpi_state;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let unacked = rt.block_on(async move {
        sender.set_nonblocking(true).unwrap();
        Stream::Tcp(tokio::net::TcpStream::from_std(sender).unwrap()).unacked()
    });
    (raw, state, unacked)
}

/// Data acknowledged, then the write side shut down and the FIN's acknowledgement dropped
/// (`FIN_WAIT1`): `TIOCOUTQ` says 1, the FIN; no data is owed.
fn fin_alone_unacked() -> (usize, u8, Option<usize>) {
    let (mut sender, peer) = pair();
    sender.write_all(b"reply").unwrap();
    wait_acked(&sender);
    drop_acks_of(&peer);
    sender.shutdown(Shutdown::Write).unwrap();
    counts(sender)
}

/// The peer's acknowledgements dropped before the data: the data and the FIN unacknowledged.
fn data_and_fin_unacked() -> (usize, u8, Option<usize>) {
    let (mut sender, peer) = pair();
    drop_acks_of(&peer);
    sender.write_all(b"reply").unwrap();
    sender.shutdown(Shutdown::Write).unwrap();
    counts(sender)
}

/// The peer closed first; data acknowledged, then this side's FIN unacknowledged
/// (`LAST_ACK`).
fn fin_after_the_peers_unacked() -> (usize, u8, Option<usize>) {
    let (mut sender, peer) = pair();
    sender.write_all(b"reply").unwrap();
    wait_acked(&sender);
    peer.shutdown(Shutdown::Write).unwrap();
    assert_eq!(
        sender.read(&mut [0; 8]).unwrap(),
        0,
        "the peer's end of file"
    );
    drop_acks_of(&peer);
    sender.shutdown(Shutdown::Write).unwrap();
    counts(sender)
}

/// The lingering close of an HTTP connection (`acks::watch(client, Until::Delivered, ..)`)
/// waited for the client's acknowledgement of the forwarder's own FIN, often delayed: a
/// graceful stop of an idle keep-alive connection exited 0.08-0.1 s after the client's end
/// of file instead of at once.
#[test]
fn unacked_counted_the_fin_of_a_shut_write_side_as_undelivered_data() {
    let test = "unacked_counted_the_fin_of_a_shut_write_side_as_undelivered_data";
    let Some(seen) = in_own_netns(|| {
        [
            fin_alone_unacked(),
            data_and_fin_unacked(),
            fin_after_the_peers_unacked(),
        ]
    }) else {
        return crate::testing::skip(test, "no network namespace of its own (root)");
    };
    assert_eq!(
        seen[0],
        (1, FIN_WAIT1, Some(0)),
        "data acknowledged, FIN not"
    );
    assert_eq!(
        seen[1],
        (6, FIN_WAIT1, Some(5)),
        "data and FIN unacknowledged"
    );
    assert_eq!(seen[2], (1, LAST_ACK, Some(0)), "after the peer's FIN");
}
