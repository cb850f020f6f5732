//! Helpers of the tests of several targets per rule: upstreams that say who they are (a tag
//! first, then an echo; or an HTTP status), which can be stopped and started again on the same
//! port; HAProxy with a stats socket, to read which servers it holds up; and reading which
//! upstream served a connection.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::forward_util::{Haproxy, PeerProxy, PATIENCE};

/// What an upstream answers on each connection.
#[derive(Debug, Clone, Copy)]
enum Reply {
    /// Its tag (4 bytes), then an echo of what it reads until EOF.
    TagThenEcho,
    /// `HTTP/1.1 STATUS` to the first request head, its tag as the body, then close.
    Http,
    /// `HTTP/1.1 STATUS` and one field to the first request head, then nothing until the
    /// client closes: a head that never ends.
    HttpStalled,
}

/// An upstream on 127.0.0.1 that says who it is; stopped (its port closed: connects are
/// refused) and started again on the same port at will; stopped when dropped.
pub struct Upstream {
    /// Where it listens.
    pub addr: SocketAddr,
    tag: &'static str,
    reply: Reply,
    status: Arc<AtomicU16>,
    running: Option<Arc<AtomicBool>>,
}

impl Upstream {
    /// A tag-then-echo upstream; `tag` is 4 bytes.
    pub fn tagged(tag: &'static str) -> Upstream {
        assert_eq!(tag.len(), 4);
        Upstream::start(tag, Reply::TagThenEcho, 200, "127.0.0.1:0".parse().unwrap())
    }

    /// An HTTP upstream answering `status` (changeable with [`Upstream::set_status`]).
    pub fn http(tag: &'static str, status: u16) -> Upstream {
        Upstream::start(tag, Reply::Http, status, "127.0.0.1:0".parse().unwrap())
    }

    /// An HTTP upstream whose answer stops after its status line and one field (the head
    /// never ends), and which holds the connection until the client closes it.
    pub fn http_stalled(tag: &'static str, status: u16) -> Upstream {
        let at = "127.0.0.1:0".parse().unwrap();
        Upstream::start(tag, Reply::HttpStalled, status, at)
    }

    fn start(tag: &'static str, reply: Reply, status: u16, at: SocketAddr) -> Upstream {
        let mut upstream = Upstream {
            addr: at,
            tag,
            reply,
            status: Arc::new(AtomicU16::new(status)),
            running: None,
        };
        upstream.resume();
        upstream
    }

    /// The address as a target.
    pub fn target(&self) -> String {
        self.addr.to_string()
    }

    /// Closes its port: connects to it are refused from now on.
    pub fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.store(false, Ordering::SeqCst);
            // Wake the accept loop, which then closes the listener.
            let _ = TcpStream::connect(self.addr);
            let start = Instant::now();
            while TcpStream::connect(self.addr).is_ok() {
                assert!(start.elapsed() < PATIENCE, "upstream did not stop");
                thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Listens again (on the same port once it has had one).
    pub fn resume(&mut self) {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_reuse_address(true).unwrap();
        socket.bind(&self.addr.into()).unwrap();
        socket.listen(128).unwrap();
        let listener: TcpListener = socket.into();
        self.addr = listener.local_addr().unwrap();
        let running = Arc::new(AtomicBool::new(true));
        self.running = Some(Arc::clone(&running));
        let (tag, reply, status) = (self.tag, self.reply, Arc::clone(&self.status));
        thread::spawn(move || {
            for stream in listener.incoming() {
                if !running.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let status = status.load(Ordering::SeqCst);
                thread::spawn(move || serve(stream, tag, reply, status));
            }
        });
    }

    /// The status an HTTP upstream answers from now on.
    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(mut stream: TcpStream, tag: &str, reply: Reply, status: u16) {
    match reply {
        Reply::TagThenEcho => {
            if stream.write_all(tag.as_bytes()).is_err() {
                return;
            }
            let mut buf = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 || stream.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = stream.shutdown(Shutdown::Write);
        }
        Reply::Http | Reply::HttpStalled => {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            if let Reply::HttpStalled = reply {
                let _ = write!(stream, "HTTP/1.1 {status} X\r\nX-Tag: {tag}\r\n");
                // Until the client closes (bounded: the read times out).
                let _ = stream.set_read_timeout(Some(PATIENCE));
                while let Ok(1..) = stream.read(&mut buf) {}
                return;
            }
            let response = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{tag}",
                tag.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    }
}

/// Connects to `addr` and returns the tag of the upstream that answered (closing at once).
pub fn tag_of(addr: SocketAddr) -> String {
    tag_from(TcpStream::connect(addr).expect("connect"))
}

/// The tag a tag-then-echo upstream sent on `stream`; then closes it.
pub fn tag_from(mut stream: TcpStream) -> String {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut tag = [0u8; 4];
    stream.read_exact(&mut tag).expect("a tag");
    String::from_utf8_lossy(&tag).into_owned()
}

/// Sends a GET through `addr` and returns the body of the answer (an HTTP upstream's tag).
pub fn http_tag(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply.split("\r\n\r\n").nth(1).unwrap_or("").to_string()
}

/// HAProxy relaying (tcp mode) to `servers` with `backend_lines` (balance, checks) and each
/// server line ending in `server_options`; with a stats socket to read server states.
pub struct HaproxyPool {
    /// The running HAProxy.
    pub proxy: PeerProxy,
    stats: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl HaproxyPool {
    /// Starts it.
    pub fn start(
        haproxy: &Haproxy,
        servers: &[&Upstream],
        backend_lines: &str,
        server_options: &str,
    ) -> HaproxyPool {
        let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();
        HaproxyPool::start_at(haproxy, &addrs, backend_lines, server_options)
    }

    /// Starts it with servers at `addrs` (servers of the test's own making).
    pub fn start_at(
        haproxy: &Haproxy,
        addrs: &[SocketAddr],
        backend_lines: &str,
        server_options: &str,
    ) -> HaproxyPool {
        let dir = tempfile::tempdir().unwrap();
        let stats = dir.path().join("stats.sock");
        let mut config = format!(
            "global\n  stats socket {}\ndefaults\n  mode tcp\n  timeout connect 5s\n  \
             timeout client 60s\n  timeout server 60s\nfrontend f\n  bind fd@3\n  \
             default_backend b\nbackend b\n{backend_lines}",
            stats.display()
        );
        for (i, addr) in addrs.iter().enumerate() {
            config.push_str(&format!("  server s{i} {addr} {server_options}\n"));
        }
        let proxy = haproxy.start(&config);
        HaproxyPool {
            proxy,
            stats,
            _dir: dir,
        }
    }

    /// The status column of each server (`UP`, `DOWN`, `UP 1/2`, ...), in order, once the
    /// stats socket answers.
    pub fn states(&self) -> Vec<String> {
        self.column("status")
    }

    /// The column `name` of each server's `show stat` line (`status`, `chkdown`, ...), in
    /// order, once the stats socket answers.
    pub fn column(&self, name: &str) -> Vec<String> {
        let start = Instant::now();
        let csv = loop {
            if let Ok(mut socket) = UnixStream::connect(&self.stats) {
                socket.write_all(b"show stat\n").unwrap();
                let mut csv = String::new();
                socket.read_to_string(&mut csv).unwrap();
                break csv;
            }
            assert!(start.elapsed() < PATIENCE, "no HAProxy stats socket");
            thread::sleep(Duration::from_millis(20));
        };
        let mut lines = csv.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap()
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let (px, sv, wanted) = (column("pxname"), column("svname"), column(name));
        lines
            .map(|l| l.split(',').collect::<Vec<&str>>())
            .filter(|f| f.len() > wanted && f[px] == "b" && f[sv].starts_with('s'))
            .map(|f| f[wanted].to_string())
            .collect()
    }

    /// Waits until the servers' states are `want` (`UP`/`DOWN` each).
    pub fn wait_states(&self, want: &[&str]) {
        let start = Instant::now();
        loop {
            let states = self.states();
            if states == want {
                return;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "HAProxy states {states:?}, want {want:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}
