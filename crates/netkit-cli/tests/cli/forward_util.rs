//! Helpers of the forward tests: a running forwarder (killed on drop, its stderr collected),
//! echo and late-reply upstreams on port 0, and hashed bulk transfers.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// How long any wait in these tests may last before it counts as a failure.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A running `netkit forward`; killed when dropped.
pub struct Forwarder {
    pub child: Child,
    pub listens: Vec<String>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Forwarder {
    /// Starts `netkit ARGS` and waits for `rules` `listening on` lines.
    pub fn start(args: &[&str]) -> Forwarder {
        let mut cmd = super::harness::netkit();
        cmd.args(args);
        Forwarder::spawn(cmd, 1)
    }

    /// Starts a prepared command and waits until it announced `rules` listeners.
    pub fn spawn(mut cmd: Command, rules: usize) -> Forwarder {
        cmd.stdin(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn netkit");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stderr.take().expect("stderr");
        let lines = stderr.clone();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let mut fw = Forwarder {
            child,
            listens: Vec::new(),
            stderr,
        };
        fw.wait_for(|l| l.starts_with("listening on "), rules);
        fw.listens = fw
            .lines()
            .iter()
            .filter_map(|l| l.strip_prefix("listening on "))
            .map(|l| l.split(" -> ").next().unwrap().to_string())
            .collect();
        fw
    }

    /// The first bound TCP address.
    pub fn addr(&self) -> SocketAddr {
        self.listens[0].parse().expect("tcp listen address")
    }

    /// Every stderr line so far.
    pub fn lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until `count` stderr lines match.
    pub fn wait_for(&self, pred: impl Fn(&str) -> bool, count: usize) -> Vec<String> {
        let start = Instant::now();
        loop {
            let found: Vec<String> = self.lines().into_iter().filter(|l| pred(l)).collect();
            if found.len() >= count {
                return found;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "waited for {count} matching lines; stderr:\n{}",
                self.lines().join("\n")
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process still runs.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Open file descriptors of the forwarder.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .expect("read /proc/PID/fd")
            .count()
    }

    /// Sends a signal by name (`TERM`, `INT`).
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        super::harness::sh(&["kill", &format!("-{name}"), &pid]);
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("forwarder stderr:\n{}", self.lines().join("\n"));
        }
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

/// A port with nothing listening on it.
pub fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
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
    child: Child,
    /// Where clients connect.
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for PeerProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                use nix::fcntl::{fcntl, FcntlArg, FdFlag};
                if fd == 3 {
                    fcntl(3, FcntlArg::F_SETFD(FdFlag::empty()))?;
                } else {
                    nix::unistd::dup2(fd, 3)?;
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn haproxy");
        PeerProxy {
            child,
            addr,
            _dir: dir,
        }
    }
}

/// Python's http.server as an upstream (tests/data/http_upstream.py) that logs, per request
/// it parsed, the method, the request-target and every Host field; killed on drop.
pub struct HttpUpstream {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl HttpUpstream {
    /// Starts the upstream; `connect_ok` is the one host CONNECT is allowed to.
    pub fn start(connect_ok: &str) -> HttpUpstream {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/http_upstream.py");
        let mut child = Command::new("python3")
            .args([script, "--connect-ok", connect_ok])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn python3");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("upstream started").unwrap();
        let port: u16 = first.strip_prefix("listening ").unwrap().parse().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let value = serde_json::from_str(&line).expect("upstream log line");
                sink.lock().unwrap().push(value);
            }
        });
        HttpUpstream {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
        }
    }

    /// Every request logged so far (tunnel records and sentinels left out).
    pub fn requests(&self) -> Vec<serde_json::Value> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|v| v.get("tunnel").is_none() && !is_sentinel(v))
            .cloned()
            .collect()
    }

    /// Sends a request of its own straight to the upstream and waits until it is logged, so
    /// that everything before it is too; returns [`HttpUpstream::requests`].
    pub fn settle(&self) -> Vec<serde_json::Value> {
        let path = format!("/__sentinel/{}", SENTINELS.fetch_add(1, Ordering::Relaxed));
        let request = format!("GET {path} HTTP/1.0\r\n\r\n");
        round_trip(connect(self.addr), request.as_bytes());
        let start = Instant::now();
        while !self
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|v| v["target"] == path.as_str())
        {
            assert!(start.elapsed() < PATIENCE, "sentinel {path} never logged");
            thread::sleep(Duration::from_millis(5));
        }
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

impl Drop for HttpUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
    child: Child,
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
        let child = Command::new("nginx")
            .arg("-e")
            .arg(&error_log)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&file)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx");
        let nginx = Nginx { child, dir };
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

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
