//! `netkit wait`: late listeners, closed ports, silent hosts, several targets, unix sockets,
//! names on a real DNS server, files, `--invert`, `--timeout 0`, and the command run only when
//! ready. (HTTP and HTTPS targets: wait_http.rs.) Ports are reserved, never guessed.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{netkit, privileged, text, Netns};
use crate::wait_util::{read_until, DnsLab, Reserved};

fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect(l))
        .collect()
}

#[test]
fn a_late_listener_is_detected() {
    let reserved = Reserved::v4();
    let port = reserved.addr.port();
    let child = netkit()
        .args([
            "--json",
            "wait",
            &format!("127.0.0.1:{port}"),
            "--interval",
            "50ms",
            "--timeout",
            "60s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(700));
    let _listener = reserved.listen();
    let (code, stdout, stderr) = text(&child.wait_with_output().expect("wait"));
    assert_eq!(code, 0, "{stderr}");
    let records = json_lines(&stdout);
    assert_eq!(records.len(), 1, "{stdout}");
    assert_eq!(records[0]["type"], "ready");
    assert_eq!(records[0]["endpoint"], format!("127.0.0.1:{port}"));
    assert!(records[0]["elapsed_s"].as_f64().expect("elapsed") > 0.5);
    assert!(
        stderr.contains(&format!("127.0.0.1:{port} is up after")),
        "{stderr}"
    );
}

#[test]
fn a_closed_port_times_out_with_status_1() {
    let closed = Reserved::on("::1");
    let port = closed.addr.port();
    let out = netkit()
        .args([
            "--json",
            "wait",
            &format!("[::1]:{port}"),
            "--timeout",
            "600ms",
            "--interval",
            "50ms",
        ])
        .output()
        .expect("run");
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 1, "{stderr}");
    let records = json_lines(&stdout);
    assert_eq!(records[0]["type"], "timeout");
    assert_eq!(records[0]["endpoint"], format!("[::1]:{port}"));
    assert!(stderr.contains("timed out waiting for"), "{stderr}");
}

#[test]
fn the_deadline_holds_against_a_silent_host() {
    if !privileged("wait silent host") {
        return;
    }
    let ns = Netns::new("wait");
    ns.ip(&["link", "add", "w0", "type", "veth", "peer", "name", "w1"]);
    ns.ip(&["addr", "add", "198.18.1.1/24", "dev", "w0"]);
    ns.ip(&["link", "set", "w0", "up"]);
    ns.ip(&["link", "set", "w1", "up"]);
    // A neighbour entry to a MAC nobody has: SYNs leave and vanish, so connects hang.
    ns.ip(&[
        "neigh",
        "add",
        "198.18.1.2",
        "lladdr",
        "02:00:00:00:00:99",
        "dev",
        "w0",
        "nud",
        "permanent",
    ]);
    let started = Instant::now();
    let out = ns
        .netkit()
        .args(["wait", "198.18.1.2:80", "--timeout", "1500ms"])
        .output()
        .expect("run");
    let (code, _, stderr) = text(&out);
    assert_eq!(code, 1, "{stderr}");
    // A generous bound: a hanging connect would take minutes.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn all_targets_by_default_any_on_request() {
    let up = TcpListener::bind("127.0.0.1:0").expect("bind");
    let up = up.local_addr().expect("addr").to_string();
    let closed = Reserved::v4();
    let down = closed.endpoint();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "wait",
            up.as_str(),
            down.as_str(),
            "--timeout",
            "700ms",
            "-q",
        ];
        args.extend_from_slice(extra);
        text(&netkit().args(&args).output().expect("run")).0
    };
    assert_eq!(run(&[]), 1);
    assert_eq!(run(&["--any"]), 0);
}

#[test]
fn unix_socket_that_appears_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("late.sock");
    let child = netkit()
        .args([
            "wait",
            &format!("unix:{}", path.display()),
            "--interval",
            "50ms",
            "--timeout",
            "60s",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(400));
    let _listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    let (code, _, stderr) = text(&child.wait_with_output().expect("wait"));
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn localhost_reaches_a_v6_only_listener() {
    let listener = TcpListener::bind("[::1]:0").expect("bind v6");
    let port = listener.local_addr().expect("addr").port();
    let out = netkit()
        .args(["wait", &format!("localhost:{port}"), "--timeout", "10s"])
        .output()
        .expect("run");
    let (code, _, stderr) = text(&out);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn the_command_runs_when_ready_and_its_status_is_ours() {
    let up = TcpListener::bind("127.0.0.1:0").expect("bind");
    let up = up.local_addr().expect("addr").to_string();
    let out = netkit()
        .args(["wait", &up, "-q", "--", "sh", "-c", "echo ran; exit 7"])
        .output()
        .expect("run");
    let (code, stdout, stderr) = text(&out);
    assert_eq!((code, stdout.as_str()), (7, "ran\n"), "{stderr}");
}

#[test]
fn the_command_gets_our_stdin() {
    let up = TcpListener::bind("127.0.0.1:0").expect("bind");
    let up = up.local_addr().expect("addr").to_string();
    let mut child = netkit()
        .args(["wait", &up, "-q", "--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"through\n")
        .expect("write");
    let (code, stdout, _) = text(&child.wait_with_output().expect("wait"));
    assert_eq!((code, stdout.as_str()), (0, "through\n"));
}

#[test]
fn no_command_after_a_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("ran");
    let closed = Reserved::v4();
    let down = closed.endpoint();
    let marker_arg = marker.display().to_string();
    let out = netkit()
        .args([
            "wait",
            &down,
            "--timeout",
            "300ms",
            "--",
            "touch",
            &marker_arg,
        ])
        .output()
        .expect("run");
    assert_eq!(text(&out).0, 1);
    assert!(!marker.exists(), "the command ran after a timeout");
}

#[test]
fn a_missing_command_exits_127() {
    let up = TcpListener::bind("127.0.0.1:0").expect("bind");
    let up = up.local_addr().expect("addr").to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_netkit"))
        .args(["wait", &up, "-q", "--", "/nonexistent/netkit-cmd"])
        .output()
        .expect("run");
    let (code, _, stderr) = text(&out);
    assert_eq!(code, 127);
    assert!(
        stderr.starts_with("netkit: /nonexistent/netkit-cmd: cannot run:"),
        "{stderr}"
    );
}

#[test]
fn tcp_urls_are_endpoints() {
    let listener = TcpListener::bind("[::1]:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let out = netkit()
        .args([
            "--json",
            "wait",
            &format!("tcp://{addr}"),
            "--timeout",
            "10s",
        ])
        .output()
        .expect("run");
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json_lines(&stdout)[0]["endpoint"], addr.to_string());
}

#[test]
fn invert_is_ready_once_the_port_is_freed() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let mut child = netkit()
        .args(["-v", "wait", &addr, "--invert", "--interval", "50ms"])
        .args(["--timeout", "60s"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    read_until(&mut lines, "not ready: still accepts connections");
    // Several more attempts see it still up: the reason is not repeated.
    std::thread::sleep(Duration::from_millis(300));
    listener.set_nonblocking(true).expect("nonblocking");
    let attempts = listener.incoming().map_while(Result::ok).count();
    drop(listener);
    let rest: Vec<String> = lines.map(|l| l.expect("line")).collect();
    assert_eq!(child.wait().expect("wait").code(), Some(0), "{rest:?}");
    assert!(attempts > 1, "{attempts} connections while up");
    assert!(!rest.iter().any(|l| l.contains("not ready")), "{rest:?}");
    assert!(
        rest.iter()
            .any(|l| l.starts_with(&format!("{addr} is gone after"))),
        "{rest:?}"
    );
}

#[test]
fn a_file_that_appears_with_no_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ready");
    let target = format!("file:{}", path.display());
    let mut child = netkit()
        .args([
            "-v",
            "wait",
            &target,
            "--timeout",
            "0",
            "--interval",
            "50ms",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    read_until(&mut lines, &format!("waiting for {target} (no timeout)"));
    read_until(&mut lines, "not ready: no such file or directory");
    std::fs::write(&path, b"").expect("create");
    read_until(&mut lines, &format!("{target} is up after"));
    assert_eq!(child.wait().expect("wait").code(), Some(0));
}

#[test]
fn localhost_resolves_and_a_wrong_address_is_named() {
    let out = netkit()
        .args([
            "wait",
            "dns:localhost",
            "dns:localhost=127.0.0.1",
            "--timeout",
            "10s",
        ])
        .output()
        .expect("run");
    assert_eq!(text(&out).0, 0, "{}", text(&out).2);
    let out = netkit()
        .args(["wait", "dns:localhost=198.18.0.1", "--timeout", "1500ms"])
        .output()
        .expect("run");
    let (code, _, stderr) = text(&out);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(", not 198.18.0.1"), "{stderr}");
}

#[test]
fn a_name_that_appears_on_a_real_dns_server() {
    if !privileged("wait dns server") {
        return;
    }
    let lab = DnsLab::start();
    let gone = lab
        .ns
        .netkit()
        .args(["wait", "dns:gone.test", "--timeout", "1500ms"])
        .output()
        .expect("run");
    let (code, _, stderr) = text(&gone);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.ends_with(": cannot resolve gone.test: name or service not known\n"),
        "{stderr}"
    );
    let mut child = lab
        .ns
        .netkit()
        .args([
            "-v",
            "wait",
            "dns:svc.test=198.18.0.7",
            "--interval",
            "50ms",
        ])
        .args(["--timeout", "60s"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    read_until(&mut lines, "not ready: cannot resolve svc.test");
    lab.add("svc.test", "198.18.0.6");
    read_until(
        &mut lines,
        "not ready: resolves to 198.18.0.6, not 198.18.0.7",
    );
    lab.add("svc.test", "198.18.0.7");
    read_until(&mut lines, "dns:svc.test=198.18.0.7 is up after");
    assert_eq!(child.wait().expect("wait").code(), Some(0));
}

#[test]
fn a_max_interval_below_the_interval_is_bad_input() {
    let out = netkit()
        .args(["wait", "80", "--interval", "1s", "--max-interval", "200ms"])
        .output()
        .expect("run");
    let (code, _, stderr) = text(&out);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        stderr,
        "netkit: --max-interval 200ms: must not be shorter than --interval (1s)\n"
    );
}
