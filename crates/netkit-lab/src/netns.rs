//! Named network namespaces the lab owns (deleted on drop), the commands that configure them
//! (`ip`, `iptables-restore`, `tc`, `sysctl`, all through `ip netns exec`), and threads that
//! run inside one of them (a network namespace is a per-thread attribute on Linux).

use std::fs::File;
use std::io::Write;
use std::process::{Command, Stdio};
use std::thread;

use nix::sched::{setns, CloneFlags};

use crate::error::{LabError, Result};

/// A network namespace created by the lab; dropping it deletes the namespace.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates the namespace `name` (`ip netns add`) with its loopback up.
    pub fn create(name: &str) -> Result<Netns> {
        run(Command::new("ip").args(["netns", "add", name]), None)?;
        let ns = Netns {
            name: name.to_string(),
        };
        ns.ip_batch(&["link set lo up".to_string()])?;
        Ok(ns)
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside the namespace (`ip netns exec NAME program`).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Runs `args` inside the namespace; fails with the command's stderr when it fails.
    pub fn exec(&self, args: &[&str]) -> Result<String> {
        let mut cmd = self.command(args[0]);
        cmd.args(&args[1..]);
        run(&mut cmd, None)
    }

    /// Runs `ip -n NAME -batch -` with one `ip` command per line.
    pub fn ip_batch(&self, lines: &[String]) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut cmd = Command::new("ip");
        cmd.args(["-n", &self.name, "-batch", "-"]);
        run(&mut cmd, Some(&lines.join("\n"))).map(drop)
    }

    /// Loads `rules` (iptables-save syntax) with `iptables-restore` (`ip6tables-restore` when
    /// `v6`), flushing the tables the rules name.
    pub fn restore(&self, v6: bool, rules: &str) -> Result<()> {
        let program = if v6 {
            "ip6tables-restore"
        } else {
            "iptables-restore"
        };
        run(&mut self.command(program), Some(rules)).map(drop)
    }

    /// Sets sysctls (`key=value`) inside the namespace, by writing `/proc/sys` from a thread
    /// inside it (network sysctls are those of the writer's namespace).
    pub fn sysctl(&self, settings: &[String]) -> Result<()> {
        let settings = settings.to_vec();
        self.run_in(move || settings.iter().try_for_each(|s| write_sysctl(s)))?
    }

    /// Moves the calling thread into this namespace (for sockets created afterwards).
    pub fn enter(&self) -> Result<()> {
        enter(&self.name)
    }

    /// Runs `f` on a new thread inside this namespace and returns its result.
    pub fn run_in<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let name = self.name.clone();
        let handle = thread::spawn(move || enter(&name).map(|()| f()));
        handle
            .join()
            .map_err(|_| LabError::io("thread in namespace", std::io::Error::other("panicked")))?
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// Writes one `key=value` sysctl of the calling thread's namespace.
fn write_sysctl(setting: &str) -> Result<()> {
    let (key, value) = setting
        .split_once('=')
        .ok_or_else(|| LabError::spec(setting, "expected key=value"))?;
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    std::fs::write(&path, format!("{value}\n"))
        .map_err(|e| LabError::io(format!("set {key} to {value:?}"), e))
}

/// Moves the calling thread into the namespace called `name`.
pub(crate) fn enter(name: &str) -> Result<()> {
    let path = format!("/var/run/netns/{name}");
    let file = File::open(&path).map_err(|e| LabError::io(format!("open {path}"), e))?;
    setns(file, CloneFlags::CLONE_NEWNET)
        .map_err(|e| LabError::io(format!("enter namespace {name}"), e.into()))
}

/// Runs `cmd` (feeding `stdin` when given); returns stdout, or the failure with stderr.
pub(crate) fn run(cmd: &mut Command, stdin: Option<&str>) -> Result<String> {
    let shown = format!("{cmd:?}").replace('"', "");
    let failed = |stderr: String| LabError::Command {
        command: shown.clone(),
        stderr,
    };
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| failed(e.to_string()))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .and_then(|()| pipe.write_all(b"\n"))
            .map_err(|e| failed(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    if !out.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
