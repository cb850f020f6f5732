//! The `netkit-lab` binary as bench scripts use it: `up` prints one ready line with the
//! namespace names, the lab works, SIGTERM tears it down and the process exits 0; bad flags
//! exit 2 before anything is built. Needs root (skipped otherwise, failing under `CI=true`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn privileged(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: CI must run as root"
        );
        eprintln!("{test}: skipped: needs root");
    }
    root
}

fn netns_list() -> String {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn up_prints_names_serves_and_tears_down_on_sigterm() {
    if !privileged("up_prints_names_serves_and_tears_down_on_sigterm") {
        return;
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_netkit-lab"))
        .args([
            "up",
            "--tag",
            "binup",
            "--delay",
            "5ms",
            "--hosts",
            "198.18.1.0/24",
        ])
        .args(["--open", "198.18.1.5:22"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("netkit-lab");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("ready line");
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {line:?}"))
            .to_string()
    };
    let (scanner, router, far) = (field("scanner="), field("router="), field("far="));
    let backend = field("backend=");
    assert!(backend == "Relay" || backend == "Netem", "{line}");
    let ping = Command::new("ip")
        .args([
            "netns", "exec", &scanner, "ping", "-c", "2", "-i", "0.2", "-W", "2",
        ])
        .arg("198.18.1.1")
        .output()
        .expect("ping");
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stdout)
    );
    let ncat = Command::new("ip")
        .args([
            "netns",
            "exec",
            &scanner,
            "ncat",
            "-z",
            "-w",
            "2",
            "198.18.1.5",
            "22",
        ])
        .status()
        .expect("ncat");
    assert!(ncat.success(), "port 22 is open");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let after = netns_list();
    for name in [&scanner, &router, &far] {
        assert!(
            !after.contains(name.as_str()),
            "{name} left behind: {after}"
        );
    }
}

#[test]
fn bad_flags_exit_2_and_build_nothing() {
    let before = netns_list();
    let out = Command::new(env!("CARGO_BIN_EXE_netkit-lab"))
        .args(["up", "--tag", "badflag", "--hosts", "10.0.0.0/8"])
        .output()
        .expect("netkit-lab");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("netkit-lab: 10.0.0.0/8: expected addresses inside"),
        "{stderr}"
    );
    assert!(!netns_list().contains("badflag"), "{before}");
}
