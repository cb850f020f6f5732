//! The `exec:` children: each is reaped when its connection ends, and stopped if it does not
//! finish on its own soon after (`retire`: the closed socket is its signal to finish; one
//! that reads no input never sees it); the ones not known to be reaped are kept, so that a
//! forwarder that ends can stop those still running ([`end`]) rather than leave them orphans
//! of init. socat stops its `EXEC` child alike.
//!
//! In a forwarder each child leads a process group of its own ([`own_process_groups`]), and
//! the whole group is signalled (what the child started goes with it). Only this process's
//! own children's groups are: before a signal each child's id is checked with
//! `waitid(WNOWAIT)`, which answers for children alone (a reaped child's id may already be
//! another process's); a child that exited but is not reaped keeps its id, and so its group's.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Process ids of children spawned and not reaped yet (as far as this module was told).
static LIVE: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// Whether children lead process groups of their own ([`own_process_groups`]).
static OWN_GROUPS: AtomicBool = AtomicBool::new(false);

/// From now on each child leads a process group of its own: for a server (the forwarder),
/// whose Ctrl-C starts a drain that the children's connections may finish, and which stops
/// every group with [`end`]. A client (`send`) leaves its child in the terminal's group, so
/// that Ctrl-C ends both.
pub fn own_process_groups() {
    OWN_GROUPS.store(true, Ordering::Relaxed);
}

/// Whether a child spawned now is to lead a process group of its own.
pub(super) fn in_own_group() -> bool {
    OWN_GROUPS.load(Ordering::Relaxed)
}

/// How long a child may run on after its connection closed before `retire` sends SIGTERM.
pub const LINGER: Duration = Duration::from_secs(1);

/// How long after SIGTERM `retire` sends SIGKILL.
pub const KILL_AFTER: Duration = Duration::from_secs(2);

/// How often [`end`] looks whether the children it signalled have exited.
const POLL: Duration = Duration::from_millis(10);

/// Notes a child spawned.
pub(super) fn spawned(pid: u32) {
    live().insert(pid);
}

/// Notes a child reaped: its id is no longer this process's to signal.
pub(super) fn reaped(pid: u32) {
    live().remove(&pid);
}

fn live() -> std::sync::MutexGuard<'static, BTreeSet<u32>> {
    LIVE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Reaps the child of a connection that has ended. One still running [`LINGER`] after that
/// gets SIGTERM (its process group, where it leads one), and SIGKILL [`KILL_AFTER`] later:
/// a child that ignores its input (`tail -f`, `sleep`) would otherwise run for as long as the
/// forwarder does, one more for each connection.
///
/// The signals go only to a child not reaped yet, whose id is still this process's: `process`
/// is reaped here alone, and a wait cut short by a timeout has not reaped it.
pub(super) async fn retire(mut process: tokio::process::Child, pid: u32) {
    for (patience, signal) in [(LINGER, Signal::SIGTERM), (KILL_AFTER, Signal::SIGKILL)] {
        if let Ok(Ok(_)) = tokio::time::timeout(patience, process.wait()).await {
            reaped(pid);
            return;
        }
        tracing::debug!("exec child {pid} still running {patience:?} on: {signal}");
        signal_group(Pid::from_raw(pid as i32), signal);
    }
    if process.wait().await.is_ok() {
        reaped(pid);
    }
}

/// Stops every child still running: SIGTERM, then SIGKILL to those still running after
/// `grace`. Returns how many were running. Their exit is not awaited beyond that: the process
/// is about to end, and init reaps what it leaves.
pub async fn end(grace: Duration) -> usize {
    let running = still_running();
    let count = running.len();
    for &pid in &running {
        signal_group(pid, Signal::SIGTERM);
    }
    let deadline = tokio::time::Instant::now() + grace;
    let mut left = running.clone();
    while !left.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
        left.retain(|&pid| running_child(pid));
    }
    for &pid in &left {
        tracing::warn!("exec child {pid} still running {grace:?} after SIGTERM: SIGKILL");
    }
    // What the children started may outlive them: every group still ours is killed.
    for pid in running {
        if is_child(pid.as_raw() as u32) {
            signal_group(pid, Signal::SIGKILL);
        }
    }
    count
}

/// Sends `signal` to the process group `pid` leads (to `pid` alone where children do not
/// lead groups).
fn signal_group(pid: Pid, signal: Signal) {
    let target = match in_own_group() {
        true => Pid::from_raw(-pid.as_raw()),
        false => pid,
    };
    let _ = kill(target, signal);
}

/// The children that have not exited, as `waitid` says; the ids that are no child of this
/// process any more are forgotten.
fn still_running() -> Vec<Pid> {
    let mut live = live();
    live.retain(|&pid| is_child(pid));
    live.iter()
        .map(|&pid| Pid::from_raw(pid as i32))
        .filter(|&pid| running_child(pid))
        .collect()
}

/// Whether `pid` is a child of this process (running, or exited and not reaped).
fn is_child(pid: u32) -> bool {
    let pid = Pid::from_raw(pid as i32);
    waitid(Id::Pid(pid), peek()) != Err(Errno::ECHILD)
}

/// Whether `pid` is a child of this process that has not exited.
fn running_child(pid: Pid) -> bool {
    matches!(waitid(Id::Pid(pid), peek()), Ok(WaitStatus::StillAlive))
}

/// `waitid` flags that look without reaping or blocking.
fn peek() -> WaitPidFlag {
    WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT
}
