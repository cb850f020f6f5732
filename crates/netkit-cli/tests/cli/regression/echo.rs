//! Regressions of `netkit echo`.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::os::fd::OwnedFd;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::socket::{
    bind, connect, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
};

use crate::echo::EchoServer;
use crate::harness::{netkit, Proc};

/// Runs `netkit ARGS` to its end: (code, stdout, stderr). A server that should have refused to
/// start but took the socket instead fails the test after the harness's patience.
pub fn run_bounded(args: &[&str]) -> (i32, String, String) {
    let mut command = netkit();
    command.args(args);
    Proc::spawn(command).finish()
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
    let (code, stdout, stderr) = run_bounded(&["echo", &listen]);
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

/// On exit the server unlinked whatever was at its path: a socket another server had bound
/// there since (cutting it off from its clients), or a regular file someone put there. Only
/// the socket file the bind made (same device and inode) is removed now; socat removes the
/// path whatever is there, the same mistake.
#[test]
fn echo_removed_the_socket_of_the_server_that_replaced_it_on_exit() {
    let dir = tempfile::tempdir().unwrap();
    for signal in ["TERM", "INT"] {
        let path = dir.path().join(format!("{signal}.sock"));
        let server = EchoServer::start(&format!("unix:{}", path.display()), &[]);
        std::fs::remove_file(&path).unwrap();
        let (newcomer, _queued) = full_unix_server(&path);
        let (code, stderr) = server.stop(signal);
        assert_eq!(code, 0, "{signal}: {stderr}");
        assert!(
            path.exists(),
            "{signal}: the newcomer's socket file was removed"
        );
        still_reaches(&newcomer, &path);
        drop(newcomer);
        std::fs::remove_file(&path).unwrap();
        // A regular file in its place is not removed either.
        let server = EchoServer::start(&format!("unix:{}", path.display()), &[]);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "keep").unwrap();
        let (code, stderr) = server.stop(signal);
        assert_eq!(code, 0, "{signal}: {stderr}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep", "{signal}");
    }
}

/// A second server on an abstract name in use was told to "choose another port".
#[test]
fn echo_on_an_abstract_name_in_use_advised_another_port() {
    let name = format!("unix:@netkit-regression-{}", std::process::id());
    let server = EchoServer::start(&name, &[]);
    let (code, _, stderr) = run_bounded(&["echo", &name]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("choose another name"), "{stderr}");
    assert!(!stderr.contains("port"), "{stderr}");
    drop(server);
}

/// A user who may not write the socket's directory was told to grant CAP_NET_BIND_SERVICE (a
/// capability for low TCP ports that has nothing to do with Unix sockets).
#[test]
fn echo_unix_path_in_a_read_only_directory_suggested_a_port_capability() {
    if !crate::harness::privileged(
        "echo_unix_path_in_a_read_only_directory_suggested_a_port_capability",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let endpoint = format!("unix:{}/echo.sock", dir.path().display());
    let mut command = std::process::Command::new("setpriv");
    command.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]);
    command
        .arg(env!("CARGO_BIN_EXE_netkit"))
        .args(["echo", &endpoint]);
    let (code, _, stderr) = Proc::spawn(command).finish();
    assert_eq!(code, 3, "{stderr}");
    assert!(!stderr.contains("CAP_NET_BIND_SERVICE"), "{stderr}");
    let dir_text = dir.path().display().to_string();
    assert!(
        stderr.contains(&format!("{dir_text} is not writable")),
        "expected the directory named: {stderr}"
    );
}

/// An abstract name of `len` bytes no other test uses: [`crate::echo::unique`] padded.
fn abstract_name(len: usize) -> String {
    let mut name = crate::echo::unique("abs");
    name.extend(std::iter::repeat_n('x', len - name.len()));
    name
}

/// `socat - ABSTRACT-CONNECT:NAME` with `input` on stdin: exit code and what came back.
fn socat_abstract(name: &str, input: &str) -> (i32, String) {
    let mut child = std::process::Command::new("socat")
        .args(["-", &format!("ABSTRACT-CONNECT:{name}")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("socat");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let reply = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), reply)
}

/// An abstract socket name of 107 bytes, all that `sun_path` holds after its leading NUL (an
/// abstract name has no terminator; the kernel and socat's `ABSTRACT-LISTEN` take it), was
/// refused as "longer than 106 bytes". socat reaches `netkit echo` on it; 108 bytes is refused
/// by both.
#[test]
fn echo_refused_a_107_byte_abstract_name_the_kernel_and_socat_take() {
    let name = abstract_name(107);
    let server = EchoServer::start(&format!("unix:@{name}"), &[]);
    assert_eq!(server.addr, format!("unix:@{name}"));
    assert_eq!(
        socat_abstract(&name, "over socat\n"),
        (0, "over socat\n".into())
    );
    let (code, stdout, stderr) = run_bounded(&["send", &server.addr, "over netkit"]);
    assert_eq!((code, stdout.as_str()), (0, "over netkit\n"), "{stderr}");
    let (code, _) = server.stop("TERM");
    assert_eq!(code, 0);

    let over = abstract_name(108);
    let (socat, _) = socat_abstract(&over, "");
    assert_ne!(socat, 0, "socat took a 108-byte abstract name");
    let (code, _, stderr) = run_bounded(&["echo", &format!("unix:@{over}")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("longer than 107 bytes"), "{stderr}");
}

/// `socat - UNIX-CONNECT:PATH` with `input` on stdin: what came back.
fn socat_unix(path: &Path, input: &str) -> String {
    let mut child = std::process::Command::new("socat")
        .args(["-", &format!("UNIX-CONNECT:{}", path.display())])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("socat");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "socat: {:?}", out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A socket path with a newline or a terminal escape in it was printed as it was in
/// `listening on ADDR`: the one line a script reads the address from became two (`listening
/// on unix:/tmp/d/a`, then `b...`) and the escape restyled the terminal (an audit; error lines
/// escape them already). The path is a good one: socat reaches the server through it. The
/// line now shows it escaped, as an error line does; so does every log line (`-v`: `shutting
/// down ADDR`), whose newlines were printed as they were too.
#[test]
fn echo_listening_line_printed_control_characters_of_the_path_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a\nb\x1b[31m.sock");
    let server = EchoServer::start(&format!("unix:{}", path.display()), &["-v"]);
    let shown = format!("unix:{}/a\\nb\\x1b[31m.sock", dir.path().display());
    assert_eq!(server.addr, shown);
    assert_eq!(socat_unix(&path, "through socat"), "through socat");
    let (code, stderr) = server.stop("TERM");
    assert_eq!(code, 0, "{stderr}");
    assert!(!path.exists(), "socket file left behind");
    // The -v log line names it the same way, on one line.
    assert!(
        stderr
            .lines()
            .any(|l| l.ends_with(&format!("shutting down {shown}"))),
        "{stderr:?}"
    );
}

/// A socket path of exactly `len` bytes under `dir` (`DIR/xx…x/s`), and a short alias of it
/// (`DIR/a/s`, through a symlink to its directory) that std's sockets can bind and connect:
/// they refuse a path that fills `sun_path`, as netkit did.
pub fn long_path(dir: &Path, len: usize) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let room = len.checked_sub(dir.as_os_str().len() + "/".len() + "/s".len());
    let room = room.expect("the temporary directory's path is too long for this socket path");
    let long_dir = dir.join("x".repeat(room));
    std::fs::create_dir(&long_dir).unwrap();
    std::os::unix::fs::symlink(&long_dir, dir.join("a")).unwrap();
    let path = long_dir.join("s");
    assert_eq!(path.as_os_str().len(), len);
    (path, dir.join("a/s"))
}

/// `ncat -U PATH` with `input` on stdin: what came back (skipped when ncat is missing).
fn ncat_unix(path: &Path, input: &str) -> Option<String> {
    let child = std::process::Command::new("ncat")
        .arg("-U")
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(err) => {
            crate::harness::skip("ncat -U beside netkit", &err.to_string());
            return None;
        }
    };
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "ncat: {:?}", out);
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A Unix socket path of 108 bytes, all of `sun_path` with no room for a terminating NUL (the
/// kernel takes it so; socat and `ncat -U` listen and connect on it), was refused by `echo`
/// and `send` as "longer than 107 bytes" (std's sockets refuse it, and netkit used them).
/// socat and ncat now reach `netkit echo` there, `netkit send` reaches it, and the socket file
/// goes with the server. 109 bytes is refused by both peers; netkit refuses it as bad input,
/// naming the limit.
#[test]
fn echo_and_send_refused_a_108_byte_unix_path_the_kernel_socat_and_ncat_take() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = long_path(dir.path(), 108);
    let endpoint = format!("unix:{}", path.display());
    let server = EchoServer::start(&endpoint, &[]);
    assert_eq!(server.addr, endpoint);
    assert_eq!(socat_unix(&path, "over socat\n"), "over socat\n");
    if let Some(reply) = ncat_unix(&path, "over ncat\n") {
        assert_eq!(reply, "over ncat\n");
    }
    let (code, stdout, stderr) = run_bounded(&["send", &endpoint, "over netkit"]);
    assert_eq!((code, stdout.as_str()), (0, "over netkit\n"), "{stderr}");
    let (code, stderr) = server.stop("TERM");
    assert_eq!(code, 0, "{stderr}");
    assert!(!path.exists(), "socket file left behind");

    let over = path.with_file_name("s9");
    let over = format!("unix:{}", over.display());
    for args in [vec!["echo", &over], vec!["send", &over, "x"]] {
        let (code, _, stderr) = run_bounded(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert_eq!(
            stderr,
            format!(
                "netkit: {over}: unix socket path of 109 bytes: longer than 108 bytes, the \
                 kernel's limit (sun_path)\n"
            )
        );
    }
}

/// A symbolic link at the path was refused as "a file that is not a socket is in the way",
/// whatever it pointed to: a dead socket (a link to a stale socket, the case noticed), a live
/// one, nothing, a regular file. socat says `"PATH" exists` and `ncat -lU` `Address already in
/// use`, neither saying what is there. The refusal now names the link and what it points to,
/// and what to do; nothing is followed to be removed or taken over: the link, its stale socket
/// and its file are left as they were, and the live server still reaches its clients.
#[test]
fn echo_called_a_symlink_to_a_dead_socket_a_file_that_is_not_a_socket() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let dead = dir.path().join("dead.sock");
    drop(UnixListener::bind(&dead).unwrap());
    let live = dir.path().join("live.sock");
    let server = UnixListener::bind(&live).unwrap();
    std::fs::write(dir.path().join("plain"), "keep").unwrap();
    let cases = [
        (
            "to-dead",
            "dead.sock",
            format!("{d}/dead.sock (a stale socket)"),
        ),
        (
            "to-none",
            "none.sock",
            format!("{d}/none.sock (nothing there)"),
        ),
        (
            "to-live",
            "live.sock",
            format!("{d}/live.sock (a live socket: another server is listening)"),
        ),
        ("to-plain", "plain", format!("{d}/plain (a regular file)")),
    ];
    for (link, target, what) in cases {
        let path = dir.path().join(link);
        std::os::unix::fs::symlink(target, &path).unwrap();
        let listen = format!("unix:{}", path.display());
        let (code, stdout, stderr) = run_bounded(&["echo", &listen]);
        assert_eq!(code, 3, "{link}: {stderr}");
        assert!(stdout.is_empty(), "{link}: {stdout}");
        let advice = match link {
            "to-dead" | "to-none" => format!("remove it, or listen on unix:{d}/{target}"),
            _ => "remove it or choose another path".to_string(),
        };
        assert_eq!(
            stderr,
            format!(
                "netkit: listen on {listen}: a symbolic link to {what} is in the way; a link is \
                 neither followed nor removed: {advice}\n"
            ),
            "{link}"
        );
        assert_eq!(std::fs::read_link(&path).unwrap(), Path::new(target));
    }
    assert!(std::fs::symlink_metadata(&dead)
        .unwrap()
        .file_type()
        .is_socket());
    assert!(!dir.path().join("none.sock").exists());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("plain")).unwrap(),
        "keep"
    );
    let _client = std::os::unix::net::UnixStream::connect(&live).unwrap();
    assert!(server.accept().is_ok(), "the live server lost its socket");
}

/// A directory, or any file that is not a socket, at the path was "a file that is not a
/// socket": the refusal now says what it is, and it is left as it was.
#[test]
fn echo_called_a_directory_in_the_way_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub");
    std::fs::create_dir(&path).unwrap();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    for (path, what) in [(&path, "a directory"), (&fifo, "a named pipe")] {
        let listen = format!("unix:{}", path.display());
        let (code, _, stderr) = run_bounded(&["echo", &listen]);
        assert_eq!(code, 3, "{stderr}");
        assert_eq!(
            stderr,
            format!(
                "netkit: listen on {listen}: {what} (not a socket) is in the way; remove it or \
                 choose another path\n"
            )
        );
    }
    assert!(path.is_dir());
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
}
