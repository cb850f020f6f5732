//! `netkit forward LISTEN exec:COMMAND`: one child per connection on a socketpair (inetd
//! style), bulk data intact, half-close seen as EOF, child stderr passed through, and every
//! child reaped — none left as a zombie of the forwarder.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use super::forward_util::{connect, hashed_echo, pattern, Forwarder, PATIENCE};

fn tcp_clone(s: &TcpStream) -> TcpStream {
    s.try_clone().expect("clone")
}

/// Sends `message`, half-closes, returns the whole reply.
fn round_trip(mut stream: TcpStream, message: &[u8]) -> String {
    stream.write_all(message).expect("write");
    stream.shutdown(Shutdown::Write).expect("shutdown");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("read reply");
    reply
}

/// Children of `pid` as (pid, state letter), from /proc.
pub fn children(pid: u32) -> Vec<(u32, char)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let child: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).ok()?;
        let mut fields = stat[stat.rfind(')')? + 2..].split(' ');
        let state = fields.next()?.chars().next()?;
        let ppid: u32 = fields.next()?.parse().ok()?;
        (ppid == pid).then_some((child, state))
    })
    .collect()
}

#[test]
fn forward_exec_cat_carries_large_transfers_intact_one_child_each() {
    let fw = Forwarder::start(&["forward", "127.0.0.1:0", "exec:cat"]);
    let addr = fw.addr();
    let clients: Vec<_> = (0..4u64)
        .map(|i| {
            thread::spawn(move || {
                let data = pattern(100 + i, 6 * 1024 * 1024 + i as usize * 4099);
                let len = data.len();
                let (sent, got, got_len) = hashed_echo(connect(addr), data, tcp_clone);
                assert_eq!(got_len, len, "client {i}: byte count");
                assert_eq!(sent, got, "client {i}: sha256 differs");
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client");
    }
}

#[test]
fn forward_exec_half_close_gives_the_child_eof_and_each_connection_its_own_child() {
    let fw = Forwarder::start(&["forward", "127.0.0.1:0", "exec:sh -c 'echo $$; wc -c'"]);
    let first = connect(fw.addr());
    let second = connect(fw.addr());
    let a = round_trip(first, &[b'x'; 300_007]);
    let b = round_trip(second, b"four");
    let (pid_a, count_a) = a.split_once('\n').expect("two lines");
    let (pid_b, count_b) = b.split_once('\n').expect("two lines");
    assert_eq!(count_a.trim(), "300007");
    assert_eq!(count_b.trim(), "4");
    assert_ne!(pid_a, pid_b, "one child per connection");
}

#[test]
fn forward_exec_child_stderr_reaches_the_forwarders_stderr() {
    let fw = Forwarder::start(&[
        "forward",
        "127.0.0.1:0",
        "exec:sh -c 'echo from-the-child >&2; cat'",
    ]);
    assert_eq!(round_trip(connect(fw.addr()), b"hi"), "hi");
    fw.wait_for(|l| l.contains("from-the-child"), 1);
}

#[test]
fn forward_exec_children_are_reaped_never_left_as_zombies() {
    let fw = Forwarder::start(&["forward", "127.0.0.1:0", "exec:cat"]);
    for i in 0..30u8 {
        assert_eq!(round_trip(connect(fw.addr()), &[b'a' + i % 26]).len(), 1);
    }
    let pid = fw.pid();
    let start = Instant::now();
    while !children(pid).is_empty() && start.elapsed() < PATIENCE {
        thread::sleep(Duration::from_millis(20));
    }
    let left = children(pid);
    assert!(left.is_empty(), "children of the forwarder left: {left:?}");
}
