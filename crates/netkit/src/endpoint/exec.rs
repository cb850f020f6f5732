//! `exec:COMMAND` endpoints: one child per connection, its stdin and stdout on one end of a
//! `socketpair(2)`, the other end a [`Stream`]. The child is reaped when the stream is dropped.
//!
//! No shell is involved: `argv` was already split. The child's stderr is inherited, so it goes
//! wherever netkit's stderr goes. Both ends of the pair are close-on-exec, so a child never
//! holds another connection's socket open; a half-close of the parent's end (`shutdown(Write)`)
//! is seen by the child as end of file on stdin, while it can still write its reply.

use std::io;
use std::os::fd::OwnedFd;
use std::process::{ExitStatus, Stdio};

use tokio::net::UnixStream;

use std::path::{Path, PathBuf};

use super::{children, Endpoint, EndpointError, EndpointErrorKind, Stream};
use crate::error::Error;

/// The child behind an `exec:` stream; reaped (never left a zombie) when dropped.
///
/// Dropping it inside a tokio runtime hands the process to a task that waits for it to exit
/// and stops it if it runs on (`children::retire`: SIGTERM [`children::LINGER`] after the
/// drop, SIGKILL [`children::KILL_AFTER`] later). Call [`Child::kill`] to stop it at once; a
/// forwarder that ends stops the children still running with [`super::children::end`].
#[derive(Debug)]
pub struct Child {
    /// The running child process (`None` once it has been waited for or handed to a reaper).
    /// Boxed, so that every [`Stream`] stays small (a forwarded connection holds two).
    pub process: Option<Box<tokio::process::Child>>,
}

impl Child {
    /// The child's process id, while it has not been reaped.
    pub fn id(&self) -> Option<u32> {
        self.process.as_deref().and_then(tokio::process::Child::id)
    }

    /// Waits for the child to exit and reaps it.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        let pid = self.id();
        let status = match self.process.as_mut() {
            Some(process) => process.wait().await,
            None => Err(io::Error::new(io::ErrorKind::NotFound, "already reaped")),
        };
        if let (Some(pid), Ok(_)) = (pid, &status) {
            children::reaped(pid);
        }
        status
    }

    /// Sends SIGKILL to the child; it is still reaped on drop.
    pub fn kill(&mut self) -> io::Result<()> {
        match self.process.as_mut() {
            Some(process) => process.start_kill(),
            None => Ok(()),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let Some(mut process) = self.process.take() else {
            return;
        };
        let Some(pid) = process.id() else {
            return;
        };
        if let Ok(Some(_)) = process.try_wait() {
            children::reaped(pid);
            return;
        }
        // Without a runtime, tokio's orphan queue reaps it on a best-effort basis; one still
        // running when the forwarder ends is stopped there ([`children::end`]).
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(children::retire(*process, pid));
        }
    }
}

/// Starts `argv` on a socketpair and returns the parent's end as a [`Stream::Child`].
pub(super) async fn spawn(argv: &[String]) -> Result<Stream, Error> {
    let what = || format!("run {}", argv.first().map(String::as_str).unwrap_or(""));
    let (parent, child) =
        std::os::unix::net::UnixStream::pair().map_err(|e| Error::io(what(), e))?;
    let process = start(argv, child.into()).map_err(|e| Error::io(what(), e))?;
    if let Some(pid) = process.id() {
        children::spawned(pid);
    }
    let parent = into_tokio(parent).map_err(|e| Error::io(what(), e))?;
    Ok(Stream::Child(
        parent,
        Child {
            process: Some(Box::new(process)),
        },
    ))
}

/// Spawns the child with `end` as its stdin and stdout; our copies of `end` are closed when
/// the command is dropped at the end of this function.
fn start(argv: &[String], end: OwnedFd) -> io::Result<tokio::process::Child> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
    let stdin = end.try_clone()?;
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(end))
        .stderr(Stdio::inherit())
        .kill_on_drop(false);
    // In a forwarder, a process group of its own: what it starts is stopped with it at the
    // end ([`children::end`]), and a terminal's Ctrl-C, which the forwarder answers with a
    // drain, does not cut its connection short.
    if children::in_own_group() {
        command.process_group(0);
    }
    command.spawn()
}

/// Checks that the program of an `exec:` endpoint can be run, before any connection needs it:
/// a program named with a `/` must be an executable file; a bare name must be one in a
/// directory of `PATH` (as `execvp(3)` looks for it). Other endpoints pass. The error names
/// the endpoint and says what is wrong.
pub fn check(endpoint: &Endpoint) -> Result<(), EndpointError> {
    let Endpoint::Exec(argv) = endpoint else {
        return Ok(());
    };
    let program = argv.first().map(String::as_str).unwrap_or("");
    let found = if program.contains('/') {
        runnable(Path::new(program))
    } else {
        let path = std::env::var_os("PATH").unwrap_or_default();
        search_path(program, &path)
    };
    found.map_err(|why| {
        EndpointError::new(
            &endpoint.to_string(),
            EndpointErrorKind::ExecProgram(format!("{program}: {why}")),
        )
    })
}

/// The first directory of `path` (colon-separated, an empty entry being the current
/// directory) holding `program` as an executable file.
fn search_path(program: &str, path: &std::ffi::OsStr) -> Result<(), String> {
    let mut seen = None;
    for dir in std::env::split_paths(path) {
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        match runnable(&dir.join(program)) {
            Ok(()) => return Ok(()),
            Err(why) if dir.join(program).exists() => seen = Some(why),
            Err(_) => {}
        }
    }
    Err(seen.unwrap_or_else(|| "not found in PATH".to_string()))
}

/// Whether `file` is a file this process may execute; else why not.
fn runnable(file: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(file).map_err(|e| crate::error::describe_io(&e))?;
    if meta.is_dir() {
        return Err("is a directory".into());
    }
    nix::unistd::access(file, nix::unistd::AccessFlags::X_OK)
        .map_err(|e| format!("not executable ({})", e.desc().to_lowercase()))
}

fn into_tokio(parent: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
    parent.set_nonblocking(true)?;
    UnixStream::from_std(parent)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::Endpoint;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    async fn open(command: &str) -> Stream {
        let endpoint: Endpoint = format!("exec:{command}").parse().unwrap();
        endpoint.connect(Duration::from_secs(5)).await.unwrap()
    }

    fn pid_of(stream: &Stream) -> u32 {
        match stream {
            Stream::Child(_, child) => child.id().unwrap(),
            other => panic!("not a child stream: {other:?}"),
        }
    }

    /// The process state letter of `pid` (`Z` for a zombie), or `None` once it is gone.
    fn state(pid: u32) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let after = &stat[stat.rfind(')')? + 2..];
        after.chars().next()
    }

    #[test]
    fn half_close_gives_the_child_eof_and_the_reply_comes_back() {
        runtime().block_on(async {
            let mut stream = open("wc -c").await;
            stream.write_all(&[7u8; 100_000]).await.unwrap();
            stream.shutdown().await.unwrap();
            let mut reply = String::new();
            stream.read_to_string(&mut reply).await.unwrap();
            assert_eq!(reply.trim(), "100000");
        });
    }

    #[test]
    fn dropped_children_are_reaped_not_left_as_zombies() {
        runtime().block_on(async {
            let mut pids = Vec::new();
            for _ in 0..20 {
                let mut stream = open("cat").await;
                pids.push(pid_of(&stream));
                stream.write_all(b"x").await.unwrap();
                let mut byte = [0u8; 1];
                stream.read_exact(&mut byte).await.unwrap();
                drop(stream);
            }
            for pid in pids {
                let mut waited = 0;
                while state(pid).is_some() && waited < 1000 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    waited += 1;
                }
                assert_eq!(state(pid), None, "child {pid} left behind");
            }
        });
    }

    #[test]
    fn a_missing_program_is_an_environment_error_naming_the_endpoint() {
        runtime().block_on(async {
            let endpoint: Endpoint = "exec:/nonexistent/netkit-test".parse().unwrap();
            let err = endpoint.connect(Duration::from_secs(1)).await.unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with("connect to exec:/nonexistent/netkit-test: "),
                "{text}"
            );
            assert!(text.contains("no such file"), "{text}");
        });
    }

    #[test]
    fn programs_are_checked_before_any_connection() {
        let check_of = |text: &str| check(&text.parse::<Endpoint>().unwrap());
        assert_eq!(check_of("exec:cat"), Ok(()));
        assert_eq!(check_of("exec:/bin/sh -c 'exit 0'"), Ok(()));
        assert_eq!(check_of("127.0.0.1:80"), Ok(()));
        let missing = check_of("exec:/missing/program").unwrap_err();
        assert_eq!(
            missing.to_string(),
            "exec:/missing/program: /missing/program: no such file or directory"
        );
        let nowhere = check_of("exec:netkit-no-such-program-here").unwrap_err();
        assert_eq!(
            nowhere.to_string(),
            "exec:netkit-no-such-program-here: netkit-no-such-program-here: not found in PATH"
        );
        let dir = check_of("exec:/").unwrap_err();
        assert!(dir.to_string().ends_with("/: is a directory"), "{dir}");
    }

    #[test]
    fn a_name_in_path_that_is_not_executable_says_so() {
        let dir = std::env::temp_dir().join(format!("netkit-exec-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("plain"), "not a program").unwrap();
        let got = search_path("plain", dir.as_os_str());
        let _ = std::fs::remove_dir_all(&dir);
        // No execute bit at all: not even root may run it.
        let why = got.unwrap_err();
        assert!(why.starts_with("not executable"), "{why}");
    }

    #[test]
    fn the_child_does_not_inherit_other_connections() {
        runtime().block_on(async {
            // If the second child held the first pair open, the first never saw EOF.
            let mut first = open("cat").await;
            let second = open("sleep 30").await;
            first.write_all(b"done").await.unwrap();
            first.shutdown().await.unwrap();
            let mut reply = Vec::new();
            tokio::time::timeout(Duration::from_secs(20), first.read_to_end(&mut reply))
                .await
                .expect("first child saw EOF")
                .unwrap();
            assert_eq!(reply, b"done");
            let mut second = second;
            if let Stream::Child(_, child) = &mut second {
                child.kill().unwrap();
            }
        });
    }
}
