//! `netkit echo`: every family, prefix, socket file mode and safety, signals, concurrency.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use netkit::report::Listening;

use crate::harness::{netkit, run, text, Proc};

/// A running `netkit echo` (a [`Proc`]), killed on drop.
pub struct EchoServer {
    proc: Proc,
    /// The address it printed (`127.0.0.1:40123`, `unix:/tmp/x.sock`, ...).
    pub addr: String,
}

impl EchoServer {
    /// Starts `netkit echo LISTEN EXTRA...` and waits for its `listening on ADDR` line.
    pub fn start(listen: &str, extra: &[&str]) -> EchoServer {
        let mut command = netkit();
        command.arg("echo").arg(listen).args(extra);
        EchoServer::spawn(command)
    }

    /// Starts a command that runs `netkit echo` and waits for its `listening on ADDR` line.
    pub fn spawn(command: Command) -> EchoServer {
        let proc = Proc::spawn(command);
        let line = proc.stdout.next(&mut 0);
        let Some(addr) = line
            .as_deref()
            .and_then(|l| l.strip_prefix("listening on "))
        else {
            panic!("no address: {line:?}; stderr: {:?}", proc.stderr.to_end());
        };
        let addr = addr.to_string();
        EchoServer { proc, addr }
    }

    /// Sends `signal` (TERM, INT) and returns the exit code and stderr.
    pub fn stop(self, signal: &str) -> (i32, String) {
        let (code, _, stderr) = self.proc.stop(signal);
        (code, stderr)
    }
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A name no other test (or test run) uses.
pub fn unique(tag: &str) -> String {
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    format!("netkit-{tag}-{}-{n}", std::process::id())
}

/// `netkit send ADDR MESSAGE`: the reply, after checking the exit status.
pub fn send(addr: &str, message: &str) -> String {
    let (code, stdout, stderr) = text(&run(&["send", addr, message]));
    assert_eq!(code, 0, "send {addr}: {stderr}");
    stdout
}

/// `netkit send ADDR` with `input` on stdin: the raw reply.
pub fn send_bytes(addr: &str, input: &[u8]) -> Vec<u8> {
    let mut child = netkit()
        .args(["send", addr, "--timeout", "60s"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn send");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer").expect("write stdin");
    assert!(
        out.status.success(),
        "send {addr}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[test]
fn echoes_on_ipv4_ipv6_unix_path_and_abstract_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = format!("unix:{}", dir.path().join("e.sock").display());
    let name = format!("unix:@{}", unique("abstract"));
    for listen in ["127.0.0.1:0", "[::1]:0", &path, &name] {
        let server = EchoServer::start(listen, &[]);
        if listen.ends_with(":0") {
            assert!(
                !server.addr.ends_with(":0"),
                "real port printed: {}",
                server.addr
            );
        } else {
            assert_eq!(server.addr, listen);
        }
        assert_eq!(send(&server.addr, "hello"), "hello\n", "{listen}");
        let (code, stderr) = server.stop("TERM");
        assert_eq!(code, 0, "{listen}: {stderr}");
    }
}

#[test]
fn prefix_goes_before_each_reply() {
    let server = EchoServer::start("[::1]:0", &["--prefix", "Message received. Data: "]);
    assert_eq!(send(&server.addr, "hi"), "Message received. Data: hi\n");
}

#[test]
fn socket_file_mode_defaults_to_0600_and_follows_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let default = dir.path().join("default.sock");
    let server = EchoServer::start(&format!("unix:{}", default.display()), &[]);
    assert_eq!(mode_of(&default), 0o600);
    drop(server);
    let open = dir.path().join("open.sock");
    let _server = EchoServer::start(&format!("unix:{}", open.display()), &["--mode", "660"]);
    assert_eq!(mode_of(&open), 0o660);
}

#[test]
fn a_live_socket_is_refused_with_exit_3_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = format!("unix:{}", dir.path().join("live.sock").display());
    let first = EchoServer::start(&listen, &[]);
    let (code, stdout, stderr) = text(&run(&["echo", &listen]));
    assert_eq!(code, 3, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.starts_with(&format!("netkit: listen on {listen}: a live socket")),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(send(&first.addr, "still here"), "still here\n");
}

#[test]
fn a_file_that_is_not_a_socket_is_refused_and_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("plain");
    std::fs::write(&file, b"keep me").expect("write");
    let (code, _, stderr) = text(&run(&["echo", &format!("unix:{}", file.display())]));
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("not a socket"), "{stderr}");
    assert_eq!(std::fs::read(&file).expect("read"), b"keep me");
}

#[test]
fn a_stale_socket_file_is_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
    assert!(path.exists());
    let server = EchoServer::start(&format!("unix:{}", path.display()), &[]);
    assert_eq!(send(&server.addr, "fresh"), "fresh\n");
}

#[test]
fn sigterm_and_sigint_stop_the_server_and_remove_its_socket_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    for signal in ["TERM", "INT"] {
        let path = dir.path().join(format!("{signal}.sock"));
        let server = EchoServer::start(&format!("unix:{}", path.display()), &[]);
        assert!(path.exists());
        let (code, stderr) = server.stop(signal);
        assert_eq!(code, 0, "{signal}: {stderr}");
        assert!(!path.exists(), "{signal}: socket file left behind");
    }
}

#[test]
fn unix_clients_are_logged_with_their_credentials() {
    let listen = format!("unix:@{}", unique("cred"));
    let server = EchoServer::start(&listen, &["-v"]);
    send(&server.addr, "who");
    let (_, stderr) = server.stop("TERM");
    let uid = nix_uid();
    assert!(stderr.contains(&format!("uid={uid} ")), "{stderr}");
    assert!(stderr.contains("pid="), "{stderr}");
}

fn nix_uid() -> String {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let line = status.lines().find(|l| l.starts_with("Uid:")).expect("Uid");
    line.split_whitespace().nth(1).expect("uid").to_string()
}

#[test]
fn json_announces_the_bound_address() {
    let mut command = netkit();
    command.args(["--json", "echo", "127.0.0.1:0"]);
    let proc = Proc::spawn(command);
    let line = proc.stdout.next(&mut 0).expect("a line");
    let (code, _, stderr) = proc.stop("TERM");
    assert_eq!(code, 0, "{stderr}");
    let value: serde_json::Value = serde_json::from_str(&line).expect(&line);
    assert_eq!(value["type"], "listening");
    assert!(value.get("target").is_none(), "{line}");
    let record: Listening = serde_json::from_value(value).expect("Listening");
    assert!(record.addr.starts_with("127.0.0.1:"), "{line}");
}

#[test]
fn fifty_concurrent_unix_clients_each_get_exactly_their_own_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = EchoServer::start(
        &format!("unix:{}", dir.path().join("many.sock").display()),
        &[],
    );
    let clients: Vec<_> = (0..50u8)
        .map(|id| {
            let addr = server.addr.clone();
            std::thread::spawn(move || {
                let payload: Vec<u8> = (0..40_000u32).map(|i| (i as u8) ^ id).collect();
                let payload = [&[id][..], &payload].concat();
                let reply = send_bytes(&addr, &payload);
                assert!(
                    reply == payload,
                    "client {id}: {} bytes back of {}",
                    reply.len(),
                    payload.len()
                );
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client");
    }
}

#[test]
fn several_mebibytes_come_back_intact() {
    let server = EchoServer::start("127.0.0.1:0", &[]);
    let payload: Vec<u8> = (0..8u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let reply = send_bytes(&server.addr, &payload);
    assert_eq!(reply.len(), payload.len());
    assert!(reply == payload, "content differs");
}

#[test]
fn running_out_of_file_descriptors_slows_accept_down_but_never_stops_it() {
    let name = format!("unix:@{}", unique("emfile"));
    let mut command = Command::new("sh");
    command
        .args(["-c", "ulimit -n 20 && exec \"$0\" echo \"$1\""])
        .arg(env!("CARGO_BIN_EXE_netkit"))
        .arg(&name);
    let server = EchoServer::spawn(command);
    assert_eq!(server.addr, name);
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name["unix:@".len()..])
        .expect("abstract address");
    let held: Vec<_> = (0..40)
        .map(|_| std::os::unix::net::UnixStream::connect_addr(&addr).expect("connect"))
        .collect();
    // Wait (bounded) until the server says it is out of descriptors.
    server
        .proc
        .stderr
        .wait_for(|line| line.contains("too many open files"), 1);
    drop(held);
    assert_eq!(send(&name, "still serving"), "still serving\n");
    assert_eq!(server.stop("TERM").0, 0);
}
