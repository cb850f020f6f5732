//! Test harness: runs the built `netkit`, checks privilege, and builds throw-away network
//! namespaces (removed on drop) for tests that need their own interfaces or hosts.

use std::io::Write;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

/// A `netkit` command ready to run.
pub fn netkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netkit"))
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
    let root = nix_euid_is_root();
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

fn nix_euid_is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .is_some_and(|euid| euid == "0")
}

/// A network namespace that lives as long as this value.
pub struct Netns {
    pub name: String,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl Netns {
    /// Creates a fresh, empty namespace with a unique name.
    pub fn new(tag: &str) -> Netns {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let name = format!("nk-{tag}-{}-{n}", std::process::id());
        sh(&["ip", "netns", "add", &name]);
        Netns { name }
    }

    /// Runs `ip -n NS ARGS...`, panicking with its stderr on failure.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut full = vec!["ip", "-n", &self.name];
        full.extend_from_slice(args);
        sh(&full)
    }

    /// A `netkit` command that runs inside the namespace.
    pub fn netkit(&self) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, env!("CARGO_BIN_EXE_netkit")]);
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
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
