//! Regressions of `netkit send`.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use netkit::ipc::Reply;

use crate::harness::{netkit, run, text};

#[test]
fn send_timeout_counted_the_time_spent_reading_stdin_and_lost_the_reply() {
    // stdin trickles in for about 3 s, three times --timeout; the reply comes at once after.
    let mut child = netkit()
        .args(["send", "exec:wc -c", "--timeout", "1s"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        for _ in 0..10 {
            stdin.write_all(&[b'x'; 1000]).unwrap();
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let (code, stdout, stderr) = text(&out);
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
