//! Test harness: runs the built `netkit` (once, or as a running [`Proc`] whose output is read
//! while it runs), checks privilege, reserves ports without guessing ([`Reserved`]), and
//! creates throw-away network namespaces ([`Netns`], the lab's own namespace primitive; the
//! impaired-link lab itself is in `lab.rs`).
//!
//! Every process a test starts goes through [`Proc`] when the test talks to it while it runs:
//! its output is collected line by line, every wait on it is bounded by [`PATIENCE`], it is
//! killed when dropped, and its output is printed when the test failed (hickory's
//! `server_harness`). One-shot runs use [`run`] and [`text`].

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::ops::Deref;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

/// How long any wait on a process or its output may last before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A `netkit` command ready to run.
pub fn netkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netkit"))
}

/// How long a scan in the lab may run before its test fails: far beyond any run's length,
/// even on a loaded machine (the longest take a minute there).
pub const LAB_PATIENCE: Duration = Duration::from_secs(600);

/// Runs `cmd` to its end within `limit`: (code, stdout, stderr). A run still going at the
/// limit is killed and fails its test with what it printed, so a hang costs one test rather
/// than the whole suite's time.
pub fn run_within(cmd: Command, limit: Duration) -> (i32, String, String) {
    Proc::spawn(cmd).finish_within(limit)
}

/// What each thread of process `pid` waits in (`/proc`: name, state, wait channel), to
/// show where a process that did not end was stuck.
fn threads_of(pid: u32) -> String {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten();
    let read = |path: std::path::PathBuf, file: &str| {
        std::fs::read_to_string(path.join(file)).unwrap_or_default()
    };
    let threads = tasks.flatten().map(|task| {
        let (stat, wchan) = (read(task.path(), "stat"), read(task.path(), "wchan"));
        let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.get(..1));
        let name = read(task.path(), "comm");
        format!("{} {} {wchan}", name.trim(), state.unwrap_or("?"))
    });
    threads.collect::<Vec<_>>().join("; ")
}

/// Runs `netkit ARGS` and returns its output.
pub fn run(args: &[&str]) -> Output {
    netkit().args(args).output().expect("run netkit")
}

/// Exit code, stdout and stderr as text, for assertions that show everything on failure.
pub fn text(output: &Output) -> (i32, String, String) {
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Whether this test may use root-only features. Without root it reports `TEST: skipped:
/// needs root` (see [`skip`]) and returns false, except under `CI=true`, where missing
/// privilege fails the test.
pub fn privileged(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: CI must run privileged tests as root"
        );
        skip(test, "needs root");
    }
    root
}

static SKIPPED: AtomicUsize = AtomicUsize::new(0);

/// Reports a skipped test or check where it is seen: written straight to stderr, past the
/// test harness's output capture (which hides `eprintln!` of passing tests), and counted in
/// a `netkit tests: N skipped` line printed when the test binary exits.
pub fn skip(test: &str, why: &str) {
    static SUMMARY: Once = Once::new();
    SUMMARY.call_once(|| {
        // SAFETY: registers a plain function, which touches only an atomic and stderr, to
        // run once at exit; nothing else is required of atexit's callers.
        unsafe { atexit(print_skip_summary) };
    });
    SKIPPED.fetch_add(1, Ordering::SeqCst);
    let _ = writeln!(std::io::stderr(), "{test}: skipped: {why}");
}

extern "C" fn print_skip_summary() {
    let skipped = SKIPPED.load(Ordering::SeqCst);
    let _ = writeln!(std::io::stderr(), "netkit tests: {skipped} skipped");
}

extern "C" {
    fn atexit(callback: extern "C" fn()) -> std::os::raw::c_int;
}

/// Runs a command, panicking with its output when it fails; returns stdout.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The lines of one output stream of a running child, collected by a thread as they come.
#[derive(Debug, Clone, Default)]
pub struct Lines(Arc<(Mutex<Collected>, Condvar)>);

#[derive(Debug, Default)]
struct Collected {
    lines: Vec<String>,
    ended: bool,
}

impl Lines {
    /// Starts collecting `stream` (as text: invalid UTF-8 becomes U+FFFD; a line ends at
    /// `\n` or `\r\n`, as `BufRead::lines` has it).
    fn collect(stream: impl Read + Send + 'static) -> Lines {
        let lines = Lines::default();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).split(b'\n').map_while(Result::ok) {
                let line = line.strip_suffix(b"\r").unwrap_or(&line);
                let line = String::from_utf8_lossy(line).into_owned();
                sink.update(|c| c.lines.push(line));
            }
            sink.update(|c| c.ended = true);
        });
        lines
    }

    /// A stream that was not piped: already ended, empty.
    fn none() -> Lines {
        let lines = Lines::default();
        lines.update(|c| c.ended = true);
        lines
    }

    fn lock(&self) -> MutexGuard<'_, Collected> {
        self.0
             .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn update(&self, change: impl FnOnce(&mut Collected)) {
        change(&mut self.lock());
        self.0 .1.notify_all();
    }

    /// Waits (bounded by [`PATIENCE`]) until `done` holds for what was collected; `None` when
    /// the stream ended first.
    fn wait_until<T>(&self, mut done: impl FnMut(&Collected) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + PATIENCE;
        let mut collected = self.lock();
        loop {
            if let Some(found) = done(&collected) {
                return Some(found);
            }
            if collected.ended {
                return None;
            }
            let left = deadline.checked_duration_since(Instant::now());
            let left = left.unwrap_or_else(|| {
                panic!("waited {PATIENCE:?}; got:\n{}", collected.lines.join("\n"))
            });
            collected = self.0 .1.wait_timeout(collected, left).unwrap().0;
        }
    }

    /// Every line so far.
    pub fn all(&self) -> Vec<String> {
        self.lock().lines.clone()
    }

    /// The lines that came after `mark`.
    pub fn since(&self, mark: usize) -> Vec<String> {
        self.lock().lines.get(mark..).unwrap_or_default().to_vec()
    }

    /// Waits until `count` lines match `pred`, and returns them; the test fails when the
    /// stream ends or [`PATIENCE`] runs out first.
    pub fn wait_for(&self, pred: impl Fn(&str) -> bool, count: usize) -> Vec<String> {
        let matching = |c: &Collected| -> Vec<String> {
            c.lines.iter().filter(|l| pred(l)).cloned().collect()
        };
        let found = self.wait_until(|c| Some(matching(c)).filter(|m| m.len() >= count));
        found.unwrap_or_else(|| {
            panic!(
                "ended before {count} matching lines:\n{}",
                self.all().join("\n")
            )
        })
    }

    /// The first line containing `text`, waiting for it.
    pub fn wait_line(&self, text: &str) -> String {
        self.wait_for(|l| l.contains(text), 1).remove(0)
    }

    /// Where the first line containing `text` is, waiting for it (a mark for
    /// [`Lines::since`]: what came after it).
    pub fn position(&self, text: &str) -> usize {
        let found = self.wait_until(|c| c.lines.iter().position(|l| l.contains(text)));
        found.unwrap_or_else(|| {
            panic!(
                "ended before a line with {text:?}:\n{}",
                self.all().join("\n")
            )
        })
    }

    /// Line number `*cursor`, waiting for it, and moves the cursor past it: lines read in
    /// order. `None` when the stream ended first.
    pub fn next(&self, cursor: &mut usize) -> Option<String> {
        let line = self.wait_until(|c| c.lines.get(*cursor).cloned())?;
        *cursor += 1;
        Some(line)
    }

    /// Every line, once the stream has ended (bounded by [`PATIENCE`]).
    pub fn to_end(&self) -> Vec<String> {
        self.wait_until(|c| c.ended.then(|| c.lines.clone()))
            .unwrap_or_else(|| self.all())
    }
}

/// A child process under test: its stdout and stderr collected as [`Lines`] (when piped),
/// every wait bounded, killed when dropped, its output printed when the test failed.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    /// Its standard output.
    pub stdout: Lines,
    /// Its standard error.
    pub stderr: Lines,
}

impl Proc {
    /// Starts `cmd` with stdin closed and both outputs collected.
    pub fn spawn(mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null());
        Proc::start(cmd, true)
    }

    /// Starts `cmd` with both outputs collected and its stdin piped to the returned writer.
    pub fn spawn_with_stdin(mut cmd: Command) -> (Proc, ChildStdin) {
        cmd.stdin(Stdio::piped());
        let mut proc = Proc::start(cmd, true);
        let stdin = proc.child.stdin.take().unwrap();
        (proc, stdin)
    }

    /// Starts `cmd` with stdin closed, stderr collected and stdout left to `cmd` (e.g.
    /// `Stdio::null()` for a chatty peer).
    pub fn spawn_quiet(mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null());
        Proc::start(cmd, false)
    }

    fn start(mut cmd: Command, stdout: bool) -> Proc {
        if stdout {
            cmd.stdout(Stdio::piped());
        }
        cmd.stderr(Stdio::piped());
        let shown = format!("{cmd:?}");
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {shown}: {e}"));
        let stdout = child.stdout.take().map_or_else(Lines::none, Lines::collect);
        let stderr = child.stderr.take().map_or_else(Lines::none, Lines::collect);
        Proc {
            child,
            stdout,
            stderr,
        }
    }

    /// Its process id (`ip netns exec` execs the program, so this is the program's own).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends the signal named `name` (`TERM`, `INT`, `HUP`, `QUIT`, `STOP`, `CONT`).
    pub fn signal(&self, name: &str) {
        let signal: nix::sys::signal::Signal = format!("SIG{name}").parse().unwrap();
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.pid()).unwrap());
        nix::sys::signal::kill(pid, signal).unwrap();
    }

    /// Whether it still runs.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits (bounded by [`PATIENCE`]) for it to exit on its own; its exit code (-1 when a
    /// signal ended it). The test fails, with the output, if it is still running.
    pub fn wait(&mut self) -> i32 {
        self.wait_within(PATIENCE)
    }

    /// [`Proc::wait`] for a process that may legitimately run longer than [`PATIENCE`] (one
    /// bounded by its own flags, such as `ping -w 20`).
    pub fn wait_within(&mut self, limit: Duration) -> i32 {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "still running after {limit:?}; its threads: {}",
                threads_of(self.child.id())
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `signal`, waits for it to exit and for its output to end: (code, stdout, stderr).
    pub fn stop(self, signal: &str) -> (i32, String, String) {
        self.signal(signal);
        self.finish()
    }

    /// Waits for it to exit and for its output to end: (code, stdout, stderr).
    pub fn finish(self) -> (i32, String, String) {
        self.finish_within(PATIENCE)
    }

    /// [`Proc::finish`] with a longer bound (see [`Proc::wait_within`]).
    pub fn finish_within(mut self, limit: Duration) -> (i32, String, String) {
        let code = self.wait_within(limit);
        let join = |lines: Vec<String>| lines.iter().map(|l| format!("{l}\n")).collect();
        (code, join(self.stdout.to_end()), join(self.stderr.to_end()))
    }

    /// Its open file descriptors.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("read /proc/PID/fd")
            .count()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- process {} stdout:\n{}\n--- stderr:\n{}",
                self.child.id(),
                self.stdout.all().join("\n"),
                self.stderr.all().join("\n")
            );
        }
    }
}

/// A loopback TCP port held by a socket that is bound but not listening: connects to it are
/// refused, and no other socket can take the port while this value lives (no free-then-rebind
/// race). [`Reserved::listen`] turns the same socket into a listener, so a "late listener"
/// never races for the port either.
#[derive(Debug)]
pub struct Reserved {
    socket: socket2::Socket,
    /// The reserved address.
    pub addr: SocketAddr,
}

impl Reserved {
    /// Reserves a port on `ip` (`127.0.0.1` or `::1`).
    pub fn on(ip: &str) -> Reserved {
        let ask = SocketAddr::new(ip.parse().unwrap(), 0);
        let domain = socket2::Domain::for_address(ask);
        let socket = socket2::Socket::new(domain, socket2::Type::STREAM, None).unwrap();
        socket.bind(&ask.into()).unwrap();
        let addr = socket.local_addr().unwrap().as_socket().unwrap();
        Reserved { socket, addr }
    }

    /// Reserves a port on 127.0.0.1.
    pub fn v4() -> Reserved {
        Reserved::on("127.0.0.1")
    }

    /// The address as `netkit` takes and prints it.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// Starts listening on the reserved port.
    pub fn listen(self) -> TcpListener {
        self.socket.listen(128).unwrap();
        self.socket.into()
    }

    /// Starts listening on the reserved port with a backlog of 0 and fills the accept queue
    /// (the listener never accepts): the kernel then drops every SYN to the port, as a silent
    /// host's. Returns the listener and the queued clients (keep both alive).
    pub fn listen_full(self) -> (TcpListener, Vec<std::net::TcpStream>) {
        self.socket.listen(0).unwrap();
        let mut queued = Vec::new();
        for _ in 0..8 {
            match std::net::TcpStream::connect_timeout(&self.addr, Duration::from_millis(300)) {
                Ok(client) => queued.push(client),
                Err(err) if err.kind() == std::io::ErrorKind::TimedOut => {
                    return (self.socket.into(), queued)
                }
                Err(err) => panic!("connect to the test listener: {err}"),
            }
        }
        panic!(
            "the accept queue never filled: {} clients queued",
            queued.len()
        );
    }
}

/// A throw-away network namespace with a unique name, deleted when dropped: the lab's own
/// [`netkit_lab::Netns`] (which it dereferences to: `command`, `veth`, `sysctl`, `run_in`),
/// with its loopback left down as the kernel makes it, plus what tests need: `ip` commands that
/// panic with their error, and `netkit` inside it.
#[derive(Debug)]
pub struct Netns {
    /// The name, as `ip netns` knows it.
    pub name: String,
    ns: netkit_lab::Netns,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl Netns {
    /// Creates a fresh, empty namespace called `nk-TAG-PID-N`.
    pub fn new(tag: &str) -> Netns {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let name = format!("nk-{tag}-{}-{n}", std::process::id());
        let ns = netkit_lab::Netns::add(&name).unwrap_or_else(|e| panic!("{e}"));
        Netns { name, ns }
    }

    /// [`Netns::new`] with its loopback up.
    pub fn with_loopback(tag: &str) -> Netns {
        let ns = Netns::new(tag);
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Runs `ip -n NS ARGS...`, panicking with its stderr on failure; returns stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        self.ns.ip(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A `netkit` command that runs inside the namespace.
    pub fn netkit(&self) -> Command {
        self.ns.command(env!("CARGO_BIN_EXE_netkit"))
    }
}

impl Deref for Netns {
    type Target = netkit_lab::Netns;

    fn deref(&self) -> &netkit_lab::Netns {
        &self.ns
    }
}
