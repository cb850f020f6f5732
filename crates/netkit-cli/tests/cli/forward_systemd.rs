//! systemd socket activation: netkit exec'd as systemd would start it (listening sockets as
//! descriptors 3, 4, 5, `LISTEN_FDS`, `LISTEN_FDNAMES`, and `LISTEN_PID` set to its own pid
//! by `sh -c 'LISTEN_PID=$$ exec ...'`), serving `systemd:NAME` and `systemd:` rules, keeping
//! the passed sockets open across reloads, and handing none of it to `exec:` children; and
//! started by systemd's own launcher, `systemd-socket-activate` (package systemd).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::Read;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use super::forward_pool::{tag_from, tag_of, Upstream};
use super::forward_util::{Forwarder, PATIENCE};
use super::harness::{skip, text, Proc};

/// `netkit ARGS` started the way systemd starts a socket-activated service: `fds` become
/// descriptors 3, 4, ... with `LISTEN_FDS`, `LISTEN_FDNAMES` = `names` and `LISTEN_PID` =
/// `pid` (`$$`: the exec'd netkit's own).
fn activated(fds: &[RawFd], names: &str, pid: &str, args: &[&str]) -> Command {
    let script = format!("LISTEN_PID={pid} exec \"$0\" \"$@\"");
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script, env!("CARGO_BIN_EXE_netkit")])
        .args(args);
    cmd.env("LISTEN_FDS", fds.len().to_string())
        .env("LISTEN_FDNAMES", names);
    let fds = fds.to_vec();
    // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec, on descriptors
    // the parent keeps open until the child has exec'd.
    unsafe {
        cmd.pre_exec(move || {
            use nix::fcntl::{fcntl, FcntlArg};
            use std::os::fd::{BorrowedFd, IntoRawFd};
            // First out of the way (close-on-exec copies above 100), then into place.
            let mut high = Vec::with_capacity(fds.len());
            for &fd in &fds {
                high.push(fcntl(
                    BorrowedFd::borrow_raw(fd),
                    FcntlArg::F_DUPFD_CLOEXEC(100),
                )?);
            }
            for (i, &fd) in high.iter().enumerate() {
                let target = 3 + i as RawFd;
                let _ = nix::unistd::dup2_raw(BorrowedFd::borrow_raw(fd), target)?.into_raw_fd();
            }
            Ok(())
        });
    }
    cmd
}

/// The inode of the socket behind descriptor `fd` of process `pid`, if it is open.
fn socket_inode(pid: u32, fd: RawFd) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
    let link = link.to_string_lossy();
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

fn inode_of(fd: RawFd) -> u64 {
    std::fs::metadata(format!("/proc/self/fd/{fd}"))
        .unwrap()
        .ino()
}

fn write_config(file: &Path, rules: &[(&str, &str)]) {
    let text: String = rules
        .iter()
        .map(|(listen, target)| {
            format!("[[rule]]\nlisten = \"{listen}\"\ntarget = \"{target}\"\n\n")
        })
        .collect();
    std::fs::write(file, text).unwrap();
}

#[test]
fn forward_serves_the_sockets_systemd_passed_and_keeps_them_across_reloads() {
    let (a, b, c) = (
        Upstream::tagged("aaaa"),
        Upstream::tagged("bbbb"),
        Upstream::tagged("cccc"),
    );
    let web = TcpListener::bind("127.0.0.1:0").unwrap();
    let api = TcpListener::bind("[::1]:0")
        .or_else(|_| TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.sock");
    let sock = UnixListener::bind(&path).unwrap();
    let fds = [web.as_raw_fd(), api.as_raw_fd(), sock.as_raw_fd()];
    let inodes: Vec<u64> = fds.iter().map(|&fd| inode_of(fd)).collect();
    let file = dir.path().join("rules.toml");
    let env_probe = "exec:sh -c 'for f in 3 4 5; do readlink /proc/$$/fd/$f; done; env'";
    let full = [
        ("systemd:web", a.target()),
        ("systemd:", b.target()),
        ("systemd:sock", c.target()),
    ];
    let rules: Vec<(&str, &str)> = full.iter().map(|(l, t)| (*l, t.as_str())).collect();
    write_config(
        &file,
        &[rules[0], rules[1], rules[2], ("127.0.0.1:0", env_probe)],
    );
    let cmd = activated(
        &fds,
        "web:api:sock",
        "$$",
        &["forward", "--config", file.to_str().unwrap()],
    );
    let fw = Forwarder::spawn(cmd, 4);
    let web_addr = web.local_addr().unwrap();
    let api_addr = api.local_addr().unwrap();
    assert_eq!(
        fw.listens[..3],
        [
            web_addr.to_string(),
            api_addr.to_string(),
            format!("unix:{}", path.display())
        ]
    );
    assert_eq!(tag_of(web_addr), "aaaa");
    assert_eq!(
        tag_of(api_addr),
        "bbbb",
        "systemd: takes the socket no systemd:NAME names"
    );
    assert_eq!(tag_from_unix(&path), "cccc");
    // The test's own copies are not what serves: close them.
    drop((web, api, sock));
    assert_eq!(tag_of(web_addr), "aaaa");

    // An exec: child inherits neither the passed sockets nor the LISTEN_ variables.
    let probe: std::net::SocketAddr = fw.listens[3].parse().unwrap();
    let mut out = String::new();
    let mut child = std::net::TcpStream::connect(probe).unwrap();
    child.set_read_timeout(Some(PATIENCE)).unwrap();
    child.shutdown(std::net::Shutdown::Write).unwrap();
    child.read_to_string(&mut out).unwrap();
    assert!(out.contains("PATH="), "{out}");
    assert!(
        !out.contains("LISTEN_") && !out.contains("socket:["),
        "{out}"
    );

    // A reload without the systemd: rule: every passed socket stays open.
    write_config(&file, &[rules[0], rules[2]]);
    fw.signal("HUP");
    fw.wait_for(|l| l.contains(" reloaded "), 1);
    let pid = fw.pid();
    for (fd, inode) in (3..6).zip(&inodes) {
        assert_eq!(
            socket_inode(pid, fd),
            Some(*inode),
            "fd {fd} closed or replaced on reload"
        );
    }
    assert_eq!(tag_of(web_addr), "aaaa");
    // The kernel still queues clients on the socket no rule serves; the rule back, they are.
    let waiting = std::net::TcpStream::connect(api_addr).unwrap();
    write_config(&file, &[rules[0], rules[1], rules[2]]);
    fw.signal("HUP");
    fw.wait_for(|l| l.contains(" reloaded "), 2);
    assert_eq!(tag_from(waiting), "bbbb");
    let (code, _, stderr) = fw.stop("TERM");
    assert_eq!(code, 0, "{stderr}");
}

/// systemd's own launcher binds the socket, waits for the first client, then execs netkit with
/// `LISTEN_FDS`/`LISTEN_FDNAMES`/`LISTEN_PID` set: netkit serves that client (queued on the
/// passed socket before netkit ran) and the next ones, and leaves the socket file, which is
/// systemd's, where it is when it stops.
#[test]
fn forward_serves_the_socket_systemd_socket_activate_passes() {
    let launcher = "/usr/bin/systemd-socket-activate";
    if !Path::new(launcher).exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must have systemd-socket-activate (package systemd)"
        );
        skip(
            "forward_serves_the_socket_systemd_socket_activate_passes",
            "systemd-socket-activate (package systemd) is not installed",
        );
        return;
    }
    let up = Upstream::tagged("aaaa");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.sock");
    let listen = format!("--listen={}", path.display());
    let mut cmd = Command::new(launcher);
    cmd.args([&listen, "--fdname=app", env!("CARGO_BIN_EXE_netkit")])
        .args(["forward", "systemd:app", &up.target()]);
    let proc = Proc::spawn(cmd);
    proc.stderr.wait_line("Listening on ");
    // This first client is what makes the launcher exec netkit.
    assert_eq!(tag_from_unix(&path), "aaaa");
    let line = proc.stderr.wait_line("listening on ");
    assert_eq!(
        line,
        format!("listening on unix:{} -> {}", path.display(), up.target())
    );
    assert_eq!(tag_from_unix(&path), "aaaa");
    let (code, _, stderr) = proc.stop("TERM");
    assert_eq!(code, 0, "{stderr}");
    assert!(path.exists(), "netkit removed the socket file systemd made");
}

fn tag_from_unix(path: &Path) -> String {
    let mut stream = UnixStream::connect(path).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut tag = [0u8; 4];
    stream.read_exact(&mut tag).unwrap();
    String::from_utf8_lossy(&tag).into_owned()
}

#[test]
fn forward_systemd_listen_without_passed_sockets_exits_3_saying_what_to_do() {
    let web = TcpListener::bind("127.0.0.1:0").unwrap();
    let args = ["forward", "systemd:web", "127.0.0.1:9"];
    // Sockets passed to another process (LISTEN_PID is not netkit's) are not netkit's.
    let out = activated(&[web.as_raw_fd()], "web", "1", &args)
        .output()
        .unwrap();
    let (code, _, stderr) = text(&out);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.starts_with("netkit: listen on systemd:web: systemd passed no sockets"),
        "{stderr}"
    );
    let out = activated(&[web.as_raw_fd()], "other", "$$", &args)
        .output()
        .unwrap();
    let (code, _, stderr) = text(&out);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("no socket named web was passed (LISTEN_FDNAMES: other)"),
        "{stderr}"
    );
    assert!(stderr.contains("FileDescriptorName=web"), "{stderr}");
}

/// A UDP echo on 127.0.0.1 (port 0): every datagram back to its sender.
fn udp_echo() -> std::net::SocketAddr {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((len, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..len], from);
        }
    });
    addr
}

/// A `systemd:` rule with `udp:` targets serves the datagram socket systemd passed
/// (`ListenDatagram=`): a datagram queued on it before netkit ran is answered, and the next
/// ones; a rule of stream targets beside it takes its own socket by name.
#[test]
fn forward_serves_a_datagram_socket_systemd_passed_to_udp_targets() {
    let dns = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let web = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    let to = dns.local_addr().unwrap();
    client.send_to(b"queued", to).unwrap();
    let echo = udp_echo();
    let up = Upstream::tagged("webb");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rules.toml");
    let rules = format!(
        "[[rule]]\nlisten = \"systemd:dns\"\ntarget = \"udp:{echo}\"\n\
         [[rule]]\nlisten = \"systemd:web\"\ntarget = \"{}\"\n",
        up.target()
    );
    std::fs::write(&config, rules).unwrap();
    let fds = [dns.as_raw_fd(), web.as_raw_fd()];
    let args = ["forward", "--config", config.to_str().unwrap()];
    let fw = Forwarder::spawn(activated(&fds, "dns:web", "$$", &args), 2);
    assert!(
        fw.listens.contains(&format!("udp:{to}")),
        "{:?}",
        fw.listens
    );
    let mut buf = [0u8; 64];
    let (len, from) = client.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..len], from), (b"queued".as_slice(), to));
    client.send_to(b"next", to).unwrap();
    let (len, _) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..len], b"next");
    assert_eq!(tag_of(web.local_addr().unwrap()), "webb");
    let (code, _, stderr) = fw.stop("TERM");
    assert_eq!(code, 0, "{stderr}");
}

/// A stream socket passed for a rule of `udp:` targets is refused at start (exit 3) saying
/// what the unit needs.
#[test]
fn forward_systemd_udp_rule_given_a_stream_socket_exits_3() {
    let web = TcpListener::bind("127.0.0.1:0").unwrap();
    let args = ["forward", "systemd:dns", "udp:127.0.0.1:53"];
    let out = activated(&[web.as_raw_fd()], "dns", "$$", &args)
        .output()
        .unwrap();
    let (code, _, stderr) = text(&out);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.starts_with("netkit: listen on systemd:dns: not a UDP socket")
            && stderr.contains("ListenDatagram="),
        "{stderr}"
    );
}
