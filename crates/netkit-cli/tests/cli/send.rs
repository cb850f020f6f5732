//! `netkit send`: messages and stdin to echo servers and `exec:` children, timeouts, refusals.

use std::process::Stdio;

use netkit::report::send::Reply;

use crate::echo::{send, send_bytes, unique, EchoServer};
use crate::harness::{netkit, run, text};

#[test]
fn exec_child_answers_over_the_socketpair() {
    assert_eq!(send("exec:tr a-z A-Z", "hello"), "HELLO\n");
}

#[test]
fn stdin_is_sent_as_is_until_eof() {
    let server = EchoServer::start(&format!("unix:@{}", unique("stdin")), &[]);
    assert_eq!(send_bytes(&server.addr, b"no newline"), b"no newline");
    assert_eq!(send_bytes("exec:cat", b""), b"");
}

#[test]
fn half_close_gives_the_child_exactly_the_bytes_sent() {
    let input = vec![b'z'; 1_000_003];
    let reply = send_bytes("exec:wc -c", &input);
    assert_eq!(String::from_utf8_lossy(&reply).trim(), "1000003");
    let (code, stdout, stderr) = text(&run(&["send", "-n", "exec:wc -c", "abc"]));
    assert_eq!((code, stdout.trim()), (0, "3"), "{stderr}");
}

#[test]
fn several_mebibytes_through_an_exec_child_come_back_intact() {
    let payload: Vec<u8> = (0..6u32 << 20)
        .map(|i| (i.wrapping_mul(40_503) >> 7) as u8)
        .collect();
    let reply = send_bytes("exec:cat", &payload);
    assert_eq!(reply.len(), payload.len());
    assert!(reply == payload, "content differs");
}

#[test]
fn child_stderr_passes_through_to_ours() {
    let (code, stdout, stderr) = text(&run(&[
        "send",
        "exec:sh -c 'echo oops-from-child >&2; cat'",
        "x",
    ]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "x\n");
    assert!(stderr.contains("oops-from-child"), "{stderr}");
}

#[test]
fn a_failing_child_is_reported_but_its_reply_still_printed() {
    let (code, stdout, stderr) = text(&run(&["send", "exec:sh -c 'cat; exit 4'", "x"]));
    assert_eq!((code, stdout.as_str()), (0, "x\n"), "{stderr}");
    assert!(stderr.contains("exit status: 4"), "{stderr}");
}

#[test]
fn no_end_of_reply_in_time_exits_1_with_a_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("silent.sock");
    let _silent = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    let addr = format!("unix:{}", path.display());
    let (code, stdout, stderr) = text(&run(&["send", &addr, "x", "--timeout", "300ms"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.starts_with(&format!(
            "netkit: send to {addr}: no end of reply: nothing received for 300ms"
        )),
        "{stderr}"
    );
}

#[test]
fn refused_connections_and_missing_commands_exit_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gone.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
    let addr = format!("unix:{}", path.display());
    let (code, _, stderr) = text(&run(&["send", &addr, "x"]));
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(
        stderr,
        format!("netkit: connect to {addr}: connection refused\n")
    );
    let (code, _, stderr) = text(&run(&["send", "exec:/nonexistent/prog", "x"]));
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.starts_with("netkit: connect to exec:/nonexistent/prog: no such file"),
        "{stderr}"
    );
}

#[test]
fn json_reply_record_deserializes() {
    let (code, stdout, stderr) = text(&run(&["--json", "send", "exec:tr a-z A-Z", "abc"]));
    assert_eq!(code, 0, "{stderr}");
    let value: serde_json::Value = serde_json::from_str(stdout.trim()).expect(&stdout);
    assert_eq!(value["type"], "reply");
    let reply: Reply = serde_json::from_value(value).expect("Reply");
    assert_eq!(reply.reply, "ABC\n");
    assert_eq!((reply.sent, reply.received), (4, 4));
    assert_eq!(reply.endpoint, "exec:tr a-z A-Z");
}

#[test]
fn a_closed_stdout_ends_send_quietly() {
    let mut child = netkit()
        .args(["send", "exec:yes"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("netkit:"));
}

#[test]
fn send_waits_for_its_exec_child_to_exit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flag = dir.path().join("child-finished");
    // The child closes its end (and our stderr pipe) first: the reply is over before it exits.
    let command = format!(
        "exec:sh -c 'cat; exec >&- <&- 2>&-; sleep 0.3; touch {}'",
        flag.display()
    );
    let (code, stdout, stderr) = text(&run(&["send", &command, "x"]));
    assert_eq!((code, stdout.as_str()), (0, "x\n"), "{stderr}");
    assert!(flag.exists(), "netkit exited before its child");
}

/// A peer that closes its end for good (an `exec:` child that exits) ends `send` even while its
/// input stays open; one that only shuts down its side gets the rest of the input
/// (`regression::send`).
#[test]
fn a_peer_gone_for_good_ends_send_while_stdin_stays_open() {
    let mut cmd = netkit();
    cmd.args(["send", "exec:echo done"]);
    let (child, stdin) = crate::harness::Proc::spawn_with_stdin(cmd);
    let (code, stdout, stderr) = child.finish();
    drop(stdin);
    assert_eq!((code, stdout.as_str()), (0, "done\n"), "{stderr}");
}
