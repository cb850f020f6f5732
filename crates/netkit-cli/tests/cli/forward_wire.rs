//! What `netkit forward` puts on the wire for a connection: its segments, watched by tcpdump
//! on loopback beside HAProxy's for the same exchange.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::thread;
use std::time::Duration;

use super::forward_util::*;
use super::harness::{privileged, Proc};

const REQUEST: &[u8] = b"GET / HTTP/1.0\r\n\r\n";
const REPLY: &[u8] = b"HTTP/1.0 200 OK\r\n\r\nhello";

/// A target that answers each connection's request with [`REPLY`] and its FIN in one segment
/// (`MSG_MORE`, then the half-close), as a server that writes its reply and closes at once
/// usually does on a busy machine.
fn target(connections: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for _ in 0..connections {
            let Ok((mut conn, _)) = listener.accept() else {
                return;
            };
            let mut request = vec![0u8; REQUEST.len()];
            if conn.read_exact(&mut request).is_err() {
                continue;
            }
            send_with_fin(&conn);
            let _ = conn.read_to_end(&mut Vec::new());
        }
    });
    addr
}

/// Sends [`REPLY`] and the FIN in one segment.
fn send_with_fin(conn: &TcpStream) {
    let more = nix::sys::socket::MsgFlags::from_bits_retain(nix::libc::MSG_MORE);
    let _ = nix::sys::socket::send(std::os::fd::AsRawFd::as_raw_fd(conn), REPLY, more);
    let _ = conn.shutdown(Shutdown::Write);
}

/// Asks `proxy` for the reply while tcpdump watches the segments it sends to the client:
/// the payload length of the segment that carried its FIN.
fn fin_payload(proxy: SocketAddr) -> usize {
    let filter = format!(
        "tcp src port {} and tcp[tcpflags] & tcp-fin != 0",
        proxy.port()
    );
    let mut cmd = Command::new("tcpdump");
    cmd.args(["-l", "-nn", "-i", "lo", "-c", "1", &filter]);
    let dump = Proc::spawn(cmd);
    dump.stderr.wait_for(|l| l.contains("listening on"), 1);
    let mut client = TcpStream::connect(proxy).unwrap();
    client.write_all(REQUEST).unwrap();
    let mut reply = Vec::new();
    client.read_to_end(&mut reply).unwrap();
    assert_eq!(reply, REPLY, "the reply through {proxy}");
    let fin = dump.stdout.wait_for(|l| l.contains("Flags [F"), 1);
    let length = fin[0].rsplit("length ").next().unwrap();
    length.trim().parse().unwrap()
}

#[test]
fn forward_sends_the_last_bytes_and_the_fin_in_one_segment() {
    if !privileged("forward_sends_the_last_bytes_and_the_fin_in_one_segment") {
        return;
    }
    let target = target(3);
    // The scenario holds: the target's own FIN carries its reply.
    assert_eq!(fin_payload(target), REPLY.len(), "the target, directly");
    let fw = Forwarder::start(&["forward", "127.0.0.1:0", &target.to_string()]);
    // The bytes and the end of file came together: they leave together, one segment (and
    // the client's acknowledgement of it) fewer per connection than a FIN of its own.
    assert_eq!(fin_payload(fw.addr()), REPLY.len(), "netkit");
    if let Some(haproxy) = Haproxy::available() {
        let proxy = haproxy.tcp(target);
        let seen = fin_payload(proxy.addr);
        eprintln!("HAProxy's FIN to the client carried {seen} bytes of the reply (24 in 2.6)");
    }
}

/// The reply, then a reset at once, sent by a target while `hold` is in force (`hold(true)`
/// before, `hold(false)` after): what the client then reads through `addr` (the target
/// itself, or a proxy to `target`): the bytes, and whether the end was a reset.
fn reply_then_reset(target: TcpListener, addr: SocketAddr, hold: impl Fn(bool)) -> (Vec<u8>, bool) {
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(REQUEST).unwrap();
    let (mut conn, _) = target.accept().unwrap();
    let mut request = vec![0u8; REQUEST.len()];
    conn.read_exact(&mut request).unwrap();
    hold(true);
    send_with_fin(&conn);
    socket2::SockRef::from(&conn)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(conn);
    // The segments are delivered on loopback before the system calls that sent them return.
    hold(false);
    let mut reply = Vec::new();
    let reset = match client.read_to_end(&mut reply) {
        Ok(_) => false,
        Err(err) => {
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
            true
        }
    };
    (reply, reset)
}

#[test]
fn forward_passes_on_a_reply_and_a_reset_after_its_fin_as_a_direct_client_sees_them() {
    // The client reads only once the reply, the FIN and the reset are all in: so does the
    // forwarder, stopped meanwhile. It must pass on every byte and end as the client's own
    // socket does on a direct connection (Linux reports no reset that came after the FIN).
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = target.local_addr().unwrap();
    let direct = reply_then_reset(target.try_clone().unwrap(), addr, |_| {});
    assert_eq!(direct.0, REPLY, "direct");
    let fw = Forwarder::start(&["forward", "127.0.0.1:0", &addr.to_string()]);
    let hold = |on: bool| fw.signal(if on { "STOP" } else { "CONT" });
    assert_eq!(reply_then_reset(target, fw.addr(), hold), direct, "netkit");
}
