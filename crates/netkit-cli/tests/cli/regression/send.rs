//! Regressions of `netkit send`.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::Write;
use std::time::Duration;

use netkit::report::send::Reply;

use crate::harness::{netkit, run, text, Proc};

#[test]
fn send_timeout_counted_the_time_spent_reading_stdin_and_lost_the_reply() {
    // stdin trickles in for about 3 s, three times --timeout; the reply comes at once after.
    let mut cmd = netkit();
    cmd.args(["send", "exec:wc -c", "--timeout", "1s"]);
    let (child, mut stdin) = Proc::spawn_with_stdin(cmd);
    for _ in 0..10 {
        stdin.write_all(&[b'x'; 1000]).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(stdin);
    let (code, stdout, stderr) = child.finish();
    assert_eq!((code, stdout.trim()), (0, "10000"), "{stderr}");
}

#[test]
fn send_timeout_record_said_sent_0_whatever_was_sent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent.sock");
    // Accepts (in the kernel's queue) and reads nothing: the message sits in its buffer.
    let _silent = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let addr = format!("unix:{}", path.display());
    let (code, stdout, stderr) = text(&run(&[
        "--json",
        "send",
        &addr,
        "hello",
        "--timeout",
        "300ms",
    ]));
    assert_eq!(code, 1, "{stderr}");
    let value: serde_json::Value = serde_json::from_str(stdout.trim()).expect(&stdout);
    assert_eq!(value["type"], "timeout");
    let record: Reply = serde_json::from_value(value).unwrap();
    assert_eq!((record.sent, record.received), (6, 0), "{stdout}");
}

/// A receiver that half-closes at once (`nc -lU PATH > file` with no stdin shuts its write side
/// down when it connects) ended the "reply" before any input was read: `send` exited 0 having
/// sent nothing of its stdin. `nc -U` sends all of it (socat, for 0.5 s after the end of file).
#[test]
fn send_dropped_its_input_when_the_peer_half_closed_first() {
    use std::io::Read;
    use std::net::Shutdown;
    use std::os::unix::net::UnixListener;
    const SIZE: usize = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sink.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let (closed_tx, closed_rx) = std::sync::mpsc::channel();
    let sink = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.shutdown(Shutdown::Write).unwrap();
        closed_tx.send(()).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut got = Vec::new();
        let _ = conn.read_to_end(&mut got);
        got.len()
    });
    let mut cmd = netkit();
    cmd.args(["send", &format!("unix:{}", path.display())]);
    let (child, mut stdin) = Proc::spawn_with_stdin(cmd);
    closed_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    // Let send see the end of the reply before its input comes (as a slow stdin would).
    std::thread::sleep(Duration::from_millis(300));
    let _ = stdin.write_all(&vec![b'x'; SIZE]);
    drop(stdin);
    let (code, _, stderr) = child.finish();
    assert_eq!((code, sink.join().unwrap()), (0, SIZE), "{stderr}");
}
