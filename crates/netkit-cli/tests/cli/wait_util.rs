//! Helpers of the wait tests: a scripted HTTP server, a test CA with `openssl s_server` as the
//! TLS peer, curl as the oracle, and a namespace whose DNS server is dnsmasq. (Ports are
//! reserved with the harness's [`Reserved`](crate::harness::Reserved), never guessed.)

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::harness::{Netns, Proc};

/// A loopback HTTP server that answers each connection with the next of its canned raw
/// responses (the last one repeats), and records each request's head. Stops when dropped.
pub struct HttpServer {
    /// Where it listens.
    pub addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl HttpServer {
    /// Listens on port 0 of `ip` and serves `responses` in turn.
    pub fn start(ip: &str, responses: Vec<String>) -> HttpServer {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = thread::spawn({
            let (heads, stop) = (heads.clone(), stop.clone());
            move || serve(listener, responses, heads, stop)
        });
        HttpServer {
            addr,
            heads,
            stop,
            thread: Some(thread),
        }
    }

    /// The request heads received so far.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    listener: TcpListener,
    responses: Vec<String>,
    heads: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
) {
    for (n, conn) in listener.incoming().enumerate() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut conn) = conn else { continue };
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let head = read_head(&mut conn);
        heads.lock().unwrap().push(head);
        let response = &responses[n.min(responses.len() - 1)];
        let _ = conn.write_all(response.as_bytes());
    }
}

fn read_head(conn: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A complete HTTP/1.1 response with a `Content-Length` body.
pub fn response(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A 200 response whose body comes in chunks (`Transfer-Encoding: chunked`).
pub fn chunked(pieces: &[&str]) -> String {
    let mut out =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_string();
    for piece in pieces {
        out += &format!("{:x}\r\n{piece}\r\n", piece.len());
    }
    out + "0\r\n\r\n"
}

/// The value of header `name` in a request head.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// A test CA and a server certificate it signed, made with the openssl CLI in a temporary
/// directory.
pub struct Pki {
    /// Holds the files.
    pub dir: tempfile::TempDir,
}

impl Pki {
    /// A CA and a server certificate for the subject alternative names `san`
    /// (e.g. `DNS:localhost,IP:127.0.0.1`).
    pub fn new(san: &str) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &["-keyout", &path("ca.key"), "-out", &path("ca.pem")],
                &["-days", "2", "-subj", "/CN=netkit test CA"],
                &[
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign",
                ],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req"][..],
                &ec,
                &["-keyout", &path("server.key"), "-out", &path("server.csr")],
                &["-subj", "/CN=netkit test server"],
            ]
            .concat(),
        );
        let ext = format!(
            "subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
        );
        std::fs::write(path("server.ext"), ext).unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            &path("server.csr"),
            "-CA",
            &path("ca.pem"),
            "-CAkey",
            &path("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &path("server.ext"),
            "-out",
            &path("server.pem"),
        ]);
        Pki { dir }
    }

    /// A file of the set: `ca.pem`, `server.pem`, `server.key`.
    pub fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl s_server -www` (a real TLS server answering every GET with a 200 status page) on
/// port 0 of 127.0.0.1; killed when dropped.
pub struct TlsServer {
    _proc: Proc,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl TlsServer {
    /// Serves with the server certificate of `pki`.
    pub fn start(pki: &Pki) -> TlsServer {
        let mut cmd = Command::new("openssl");
        cmd.args(["s_server", "-accept", "127.0.0.1:0", "-www"]);
        cmd.args(["-cert", &pki.file("server.pem")]);
        cmd.args(["-key", &pki.file("server.key")]);
        let proc = Proc::spawn(cmd);
        let accept = proc.stdout.wait_line("ACCEPT ");
        let addr = accept.strip_prefix("ACCEPT ").unwrap().parse().unwrap();
        TlsServer { _proc: proc, addr }
    }
}

/// `curl`'s exit status for a plain GET of `url` (no redirects followed), with extra `args`.
pub fn curl(url: &str, args: &[&str]) -> i32 {
    Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "10"])
        .args(args)
        .arg(url)
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .status()
        .unwrap()
        .code()
        .unwrap_or(-1)
}

/// A network namespace whose resolver is a real DNS server, dnsmasq on its own 127.0.0.1:53,
/// authoritative for `.test` (unknown names are NXDOMAIN) and serving the names the test adds.
/// `ip netns exec` gives processes in it the namespace's own `/etc/resolv.conf` and
/// `/etc/hosts` from `/etc/netns/NAME/`, so no query ever leaves it.
pub struct DnsLab {
    /// The namespace; run netkit in it with `lab.ns.netkit()`.
    pub ns: Netns,
    _etc: NetnsEtc,
    names: PathBuf,
    dnsmasq: Proc,
    _dir: tempfile::TempDir,
}

impl DnsLab {
    /// Starts dnsmasq in a fresh namespace and waits until it has read its (empty) names.
    pub fn start() -> DnsLab {
        let ns = Netns::with_loopback("wait-dns");
        let etc = NetnsEtc::new(&ns, "nameserver 127.0.0.1\n");
        let dir = tempfile::tempdir().unwrap();
        let names = dir.path().join("names");
        std::fs::write(&names, "").unwrap();
        let mut cmd = ns.command("dnsmasq");
        cmd.arg("--keep-in-foreground");
        cmd.args([
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--user=root",
        ]);
        cmd.args([
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--local=/test/",
        ]);
        cmd.arg(format!("--addn-hosts={}", names.display()));
        cmd.args(["--pid-file", "--log-facility=-"]);
        // dnsmasq comes from the Debian package dnsmasq-base.
        let dnsmasq = Proc::spawn(cmd);
        dnsmasq.stderr.wait_line(" names");
        DnsLab {
            ns,
            _etc: etc,
            names,
            dnsmasq,
            _dir: dir,
        }
    }

    /// Serves `name` at `ip` from now on (dnsmasq rereads its names on SIGHUP).
    pub fn add(&self, name: &str, ip: &str) {
        let mut names = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.names)
            .unwrap();
        writeln!(names, "{ip} {name}").unwrap();
        self.dnsmasq.signal("HUP");
    }
}

/// `/etc/netns/NAME/`: the `resolv.conf` (and a `hosts` with only localhost) that processes
/// started with `ip netns exec NAME` see as their own; removed when dropped.
pub struct NetnsEtc(PathBuf);

impl NetnsEtc {
    /// Gives the namespace this `resolv.conf`.
    pub fn new(ns: &Netns, resolv_conf: &str) -> NetnsEtc {
        let etc = PathBuf::from("/etc/netns").join(&ns.name);
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("resolv.conf"), resolv_conf).unwrap();
        std::fs::write(etc.join("hosts"), "127.0.0.1 localhost\n").unwrap();
        NetnsEtc(etc)
    }
}

impl Drop for NetnsEtc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Pki {
    /// A server certificate made as `openssl req -x509` makes one by default: self-signed
    /// and, as OpenSSL's default configuration marks it, `CA:TRUE`; for the subject
    /// alternative names `san`. Its files are named as [`Pki::new`]'s (`server.pem`,
    /// `server.key`), so [`TlsServer::start`] serves it.
    pub fn self_signed(san: &str) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &path("server.key"),
            "-out",
            &path("server.pem"),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            &format!("subjectAltName={san}"),
        ]);
        Pki { dir }
    }
}
