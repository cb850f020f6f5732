//! Regressions of `netkit echo`.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::socket::{
    bind, connect, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
};

use crate::echo::EchoServer;
use crate::harness::{netkit, text};

/// Runs `netkit ARGS`, killing it if it is still running after 20 s (a server that should
/// have refused to start but took the socket instead).
pub fn run_bounded(args: &[&str]) -> std::process::Output {
    use std::process::Stdio;
    let mut child = netkit()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// A live Unix server at `path` that listens with a backlog of 1 and never accepts, its accept
/// queue filled until a non-blocking connect answers EAGAIN. Returns the listener and the
/// queued clients (keep both alive).
pub fn full_unix_server(path: &Path) -> (UnixListener, Vec<OwnedFd>) {
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    let addr = UnixAddr::new(path).unwrap();
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr).unwrap();
    listen(&fd, Backlog::new(1).unwrap()).unwrap();
    let mut queued = Vec::new();
    for _ in 0..16 {
        let client = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        match connect(std::os::fd::AsRawFd::as_raw_fd(&client), &addr) {
            Ok(()) => queued.push(client),
            Err(Errno::EAGAIN) => return (UnixListener::from(fd), queued),
            Err(err) => panic!("connect to the test server: {err}"),
        }
    }
    panic!("the accept queue of a backlog-1 listener never filled");
}

/// The live server still owns `path`: after one accept frees a slot, a new client reaches it.
pub fn still_reaches(server: &UnixListener, path: &Path) {
    let (_first, _) = server.accept().expect("accept a queued client");
    let _client = std::os::unix::net::UnixStream::connect(path).expect("connect after accept");
    server.set_nonblocking(true).unwrap();
    let mut accepted = 0;
    while server.accept().is_ok() {
        accepted += 1;
    }
    assert!(
        accepted >= 1,
        "the new client did not reach the live server"
    );
}

#[test]
fn echo_took_a_live_unix_socket_with_a_full_accept_queue_for_stale() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.sock");
    let (server, _queued) = full_unix_server(&path);
    let listen = format!("unix:{}", path.display());
    let (code, stdout, stderr) = text(&run_bounded(&["echo", &listen]));
    assert_eq!(code, 3, "stdout {stdout:?} stderr {stderr:?}");
    assert!(stderr.contains("live socket"), "{stderr}");
    assert!(path.exists(), "the live server's socket file was removed");
    still_reaches(&server, &path);
}

#[test]
fn echo_left_its_socket_file_behind_on_sighup_and_sigquit() {
    let dir = tempfile::tempdir().unwrap();
    for signal in ["HUP", "QUIT"] {
        let path = dir.path().join(format!("{signal}.sock"));
        let server = EchoServer::start(&format!("unix:{}", path.display()), &[]);
        assert!(path.exists());
        let (code, stderr) = server.stop(signal);
        assert_eq!(code, 0, "{signal}: {stderr}");
        assert!(!path.exists(), "{signal}: socket file left behind");
    }
}
