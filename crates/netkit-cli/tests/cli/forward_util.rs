//! Helpers of the forward tests: a running forwarder (a [`Proc`]), echo and late-reply
//! upstreams on port 0, the peers it is compared with (HAProxy, nginx, a Python HTTP server),
//! and hashed bulk transfers.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::{Deref, DerefMut};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub use super::harness::PATIENCE;
use super::harness::{Netns, Proc, Reserved};

/// `netkit echo LISTEN ARGS...` in `ns`; its bound address.
pub fn echo_in(ns: &Netns, listen: &str, args: &[&str]) -> (Proc, SocketAddr) {
    let mut cmd = ns.netkit();
    cmd.args(["echo", listen]).args(args);
    let proc = Proc::spawn(cmd);
    let line = proc.stdout.wait_line("listening on ");
    let addr = line.trim_start_matches("listening on ").parse().unwrap();
    (proc, addr)
}

/// A running `netkit forward` (a [`Proc`]: stderr lines, signals, killed on drop).
pub struct Forwarder {
    proc: Proc,
    pub listens: Vec<String>,
}

impl Forwarder {
    /// Starts `netkit ARGS` and waits for its `listening on` line.
    pub fn start(args: &[&str]) -> Forwarder {
        let mut cmd = super::harness::netkit();
        cmd.args(args);
        Forwarder::spawn(cmd, 1)
    }

    /// Starts a prepared command and waits until it announced `rules` listeners.
    pub fn spawn(cmd: Command, rules: usize) -> Forwarder {
        let proc = Proc::spawn(cmd);
        let listens = proc
            .stderr
            .wait_for(|l| l.starts_with("listening on "), rules)
            .iter()
            .filter_map(|l| l.strip_prefix("listening on "))
            .map(|l| l.split(" -> ").next().unwrap().to_string())
            .collect();
        Forwarder { proc, listens }
    }

    /// The first bound TCP address.
    pub fn addr(&self) -> SocketAddr {
        self.listens[0].parse().expect("tcp listen address")
    }

    /// Sends `signal`, waits for the forwarder to exit: (code, stdout, stderr).
    pub fn stop(self, signal: &str) -> (i32, String, String) {
        self.proc.stop(signal)
    }

    /// The running process itself, to stop or finish it (`fw.into_proc().stop("TERM")`).
    pub fn into_proc(self) -> Proc {
        self.proc
    }

    /// Waits until `count` stderr lines match.
    pub fn wait_for(&self, pred: impl Fn(&str) -> bool, count: usize) -> Vec<String> {
        self.proc.stderr.wait_for(pred, count)
    }
}

impl Deref for Forwarder {
    type Target = Proc;

    fn deref(&self) -> &Proc {
        &self.proc
    }
}

impl DerefMut for Forwarder {
    fn deref_mut(&mut self) -> &mut Proc {
        &mut self.proc
    }
}

/// Echoes everything it reads, then half-closes.
fn echo<S: Read + Write>(mut stream: S, close: impl FnOnce(&S)) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
    close(&stream);
}

/// A TCP echo server on `addr` (port 0); returns the bound address.
pub fn tcp_echo(addr: &str) -> SocketAddr {
    let listener = TcpListener::bind(addr).expect("bind echo");
    let bound = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            thread::spawn(move || echo(stream, |s| drop(s.shutdown(Shutdown::Write))));
        }
    });
    bound
}

/// A Unix echo server on a bound listener.
pub fn unix_echo(listener: UnixListener) {
    thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            thread::spawn(move || echo(stream, |s| drop(s.shutdown(Shutdown::Write))));
        }
    });
}

/// Reads to EOF, waits two seconds, then replies with what it read and closes.
pub fn late_reply_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let bound = listener.local_addr().unwrap();
    thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            thread::spawn(move || {
                let mut got = Vec::new();
                let _ = stream.read_to_end(&mut got);
                thread::sleep(Duration::from_secs(2));
                let _ = stream.write_all(b"late reply to ");
                let _ = stream.write_all(&got);
            });
        }
    });
    bound
}

/// A port with nothing listening on it, held (bound, not listening) for as long as the value
/// lives, so that no other socket can take it meanwhile.
pub fn closed_port() -> Reserved {
    Reserved::v4()
}

/// A listener whose accept queue is full: one connection waits in it, never accepted, so the
/// kernel drops the next SYN (its sender tries again a second later). Returns the listener
/// and the connection that fills it.
pub fn full_listener() -> (TcpListener, TcpStream) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&any.into()).unwrap();
    socket.listen(0).unwrap();
    let listener: TcpListener = socket.into();
    let filler = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    (listener, filler)
}

/// Connects with generous timeouts set.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to forwarder");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Deterministic pseudo-random bytes (xorshift), different for each seed.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Sends `data` (then FIN) while reading the echo to EOF; returns (sent, received) digests
/// and the received length.
pub fn hashed_echo<S>(
    stream: S,
    data: Vec<u8>,
    try_clone: fn(&S) -> S,
) -> ([u8; 32], [u8; 32], usize)
where
    S: Read + Write + Send + 'static + HalfClose,
{
    let mut writer = try_clone(&stream);
    let sent = thread::spawn(move || {
        let digest: [u8; 32] = Sha256::digest(&data).into();
        for piece in data.chunks(100_003) {
            writer.write_all(piece).expect("write to forwarder");
        }
        writer.half_close();
        digest
    });
    let (received, len) = hash_to_eof(stream);
    (sent.join().unwrap(), received, len)
}

/// SHA-256 and length of everything read until EOF.
pub fn hash_to_eof(mut stream: impl Read) -> ([u8; 32], usize) {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut len = 0;
    loop {
        let n = stream.read(&mut buf).expect("read from forwarder");
        if n == 0 {
            return (hasher.finalize().into(), len);
        }
        hasher.update(&buf[..n]);
        len += n;
    }
}

/// Sending FIN on either kind of stream.
pub trait HalfClose {
    /// Shuts down the write side.
    fn half_close(&self);
}

impl HalfClose for TcpStream {
    fn half_close(&self) {
        self.shutdown(Shutdown::Write).expect("shutdown write");
    }
}

impl HalfClose for UnixStream {
    fn half_close(&self) {
        self.shutdown(Shutdown::Write).expect("shutdown write");
    }
}

/// Sends `message`, half-closes, returns everything read back.
pub fn round_trip(mut stream: TcpStream, message: &[u8]) -> Vec<u8> {
    stream.write_all(message).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    stream.read_to_end(&mut got).expect("read reply");
    got
}

/// HAProxy, the reference the forwarder is compared with on the same scenario.
pub struct Haproxy;

/// A running peer proxy (HAProxy), killed on drop.
pub struct PeerProxy {
    proc: Proc,
    /// Where clients connect.
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    /// HAProxy when it is installed (CI installs it); otherwise a note and `None`.
    pub fn available() -> Option<Haproxy> {
        let found = Command::new("haproxy")
            .arg("-v")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI must have HAProxy"
            );
            eprintln!("haproxy not installed: comparison skipped");
        }
        found.then_some(Haproxy)
    }

    /// HAProxy in TCP mode relaying to `target`.
    pub fn tcp(&self, target: SocketAddr) -> PeerProxy {
        self.start(&format!(
            "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  \
             timeout server 60s\nfrontend f\n  bind fd@3\n  default_backend b\n\
             backend b\n  server s {target}\n"
        ))
    }

    /// HAProxy in HTTP mode setting every request's Host to `host` before relaying to
    /// `server` (`127.0.0.1:PORT` or `unix@PATH`): the peer of `forward --http-host`.
    pub fn http_host(&self, server: &str, host: &str) -> PeerProxy {
        self.start(&format!(
            "defaults\n  mode http\n  timeout connect 5s\n  timeout client 5s\n  \
             timeout server 5s\n  timeout http-request 5s\nfrontend f\n  bind fd@3\n  \
             http-request set-header Host {host}\n  default_backend b\n\
             backend b\n  server s {server}\n"
        ))
    }

    /// Starts HAProxy with `config`, whose frontend binds `fd@3`: a listener on port 0 that
    /// this process bound, so no port is guessed.
    pub fn start(&self, config: &str) -> PeerProxy {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("haproxy.cfg");
        std::fs::write(&file, format!("global\n  maxconn 1000\n{config}")).unwrap();
        let fd = listener.as_raw_fd();
        let mut cmd = Command::new("haproxy");
        cmd.args(["-db", "-q", "-f"]).arg(&file);
        cmd.stdout(Stdio::null());
        // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec; `fd` is
        // the listener's, open until the child has exec'd.
        unsafe {
            cmd.pre_exec(move || {
                use nix::fcntl::{fcntl, FcntlArg, FdFlag};
                use std::os::fd::{BorrowedFd, IntoRawFd};
                let listener = BorrowedFd::borrow_raw(fd);
                if fd == 3 {
                    fcntl(listener, FcntlArg::F_SETFD(FdFlag::empty()))?;
                } else {
                    // fd 3 stays open for the program exec'd: never closed here.
                    let _ = nix::unistd::dup2_raw(listener, 3)?.into_raw_fd();
                }
                Ok(())
            });
        }
        PeerProxy {
            proc: Proc::spawn_quiet(cmd),
            addr,
            _dir: dir,
        }
    }
}

impl PeerProxy {
    /// Sends it the signal `name` (`USR1`: HAProxy's soft stop).
    pub fn signal(&self, name: &str) {
        self.proc.signal(name);
    }
}

/// Python's http.server as an upstream (tests/data/http_upstream.py) that logs, per request
/// it parsed, the method, the request-target and every Host field; killed on drop.
pub struct HttpUpstream {
    proc: Proc,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl HttpUpstream {
    /// Starts the upstream; `connect_ok` is the one host CONNECT is allowed to.
    pub fn start(connect_ok: &str) -> HttpUpstream {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/http_upstream.py");
        let mut cmd = Command::new("python3");
        cmd.args([script, "--connect-ok", connect_ok]);
        let proc = Proc::spawn(cmd);
        let first = proc.stdout.wait_line("listening ");
        let port: u16 = first.strip_prefix("listening ").unwrap().parse().unwrap();
        HttpUpstream {
            proc,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    /// Everything logged so far (after the `listening` line), parsed.
    fn log(&self) -> Vec<serde_json::Value> {
        let lines = self.proc.stdout.since(1);
        let parse = |l: &String| serde_json::from_str(l).expect("upstream log line");
        lines.iter().map(parse).collect()
    }

    /// Every request logged so far (tunnel records and sentinels left out).
    pub fn requests(&self) -> Vec<serde_json::Value> {
        self.log()
            .into_iter()
            .filter(|v| v.get("tunnel").is_none() && !is_sentinel(v))
            .collect()
    }

    /// Sends a request of its own straight to the upstream and waits until it is logged, so
    /// that everything before it is too; returns [`HttpUpstream::requests`].
    pub fn settle(&self) -> Vec<serde_json::Value> {
        let path = format!("/__sentinel/{}", SENTINELS.fetch_add(1, Ordering::Relaxed));
        let request = format!("GET {path} HTTP/1.0\r\n\r\n");
        round_trip(connect(self.addr), request.as_bytes());
        let quoted = format!("\"{path}\"");
        self.proc.stdout.wait_line(&quoted);
        self.requests()
    }

    /// Waits until `count` requests were logged; returns them all.
    pub fn wait_requests(&self, count: usize) -> Vec<serde_json::Value> {
        let start = Instant::now();
        loop {
            let requests = self.requests();
            if requests.len() >= count {
                return requests;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "waited for {count} requests: {requests:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Numbers the sentinel requests of [`HttpUpstream::settle`].
static SENTINELS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn is_sentinel(request: &serde_json::Value) -> bool {
    request["target"]
        .as_str()
        .is_some_and(|t| t.starts_with("/__sentinel/"))
}

/// A target that reads one connection to its end, hands over the bytes and closes without a
/// word (no response: nothing for an HTTP relay to follow).
pub fn recording_server() -> (SocketAddr, std::sync::mpsc::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut got = Vec::new();
            let _ = stream.read_to_end(&mut got);
            let _ = tx.send(got);
        }
    });
    (addr, rx)
}

/// nginx (single process, on a Unix socket in its own directory) answering 200 to everything
/// and logging, per request it parsed, `$host|$http_host|$status|$request`; killed on drop.
pub struct Nginx {
    _proc: Proc,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx and waits (bounded) for its socket.
    pub fn start() -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let config = format!(
            "master_process off;\ndaemon off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log;\nevents {{ worker_connections 256; }}\nhttp {{\n\
             log_format hosts '$host|$http_host|$status|$request';\n\
             access_log {d}/access.log hosts;\nclient_body_temp_path {d};\n\
             proxy_temp_path {d};\nfastcgi_temp_path {d};\nuwsgi_temp_path {d};\n\
             scgi_temp_path {d};\nserver {{ listen unix:{d}/nginx.sock; server_name _;\n\
             location / {{ return 200 \"ok $host\\n\"; }} }}\n}}\n"
        );
        let file = dir.path().join("nginx.conf");
        std::fs::write(&file, config).unwrap();
        let error_log = dir.path().join("error.log");
        let mut cmd = Command::new("nginx");
        cmd.arg("-e").arg(&error_log).arg("-p").arg(dir.path());
        cmd.arg("-c").arg(&file);
        let nginx = Nginx {
            _proc: Proc::spawn(cmd),
            dir,
        };
        let start = Instant::now();
        while UnixStream::connect(nginx.socket()).is_err() {
            assert!(start.elapsed() < PATIENCE, "nginx did not start");
            thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    /// Its socket.
    pub fn socket(&self) -> std::path::PathBuf {
        self.dir.path().join("nginx.sock")
    }

    /// Every access-log line so far: `$host|$http_host|$status|$request`.
    pub fn log(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        text.lines().map(str::to_string).collect()
    }
}

/// Sends `data` from `socket` to `to` every 50 ms until a reply comes; the reply, or `None`
/// after [`PATIENCE`].
pub fn udp_answer(socket: &std::net::UdpSocket, to: SocketAddr, data: &[u8]) -> Option<String> {
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        socket.send_to(data, to).unwrap();
        if let Ok((len, _)) = socket.recv_from(&mut buf) {
            return Some(String::from_utf8_lossy(&buf[..len]).into_owned());
        }
    }
    None
}
