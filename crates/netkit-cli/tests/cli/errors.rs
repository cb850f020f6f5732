//! Bad input exits 2 with `netkit: <input>: <why>`; nothing ever panics.

use crate::harness::{run, text};

/// Each row: arguments, the input the message must start with.
const BAD_INPUT: &[(&[&str], &str)] = &[
    (&["scan", "127.0.0.1", "-p", "0"], "0: "),
    (&["scan", "127.0.0.1", "-p", "70000"], "70000: "),
    (&["scan", "127.0.0.1", "-p", "10-5"], "10-5: "),
    (&["scan", "127.0.0.1", "--top", "0"], "--top 0: "),
    (&["scan", "1.2.3.300"], "1.2.3.300: "),
    (&["sweep", "10.0.0.5-2"], "10.0.0.5-2: "),
    (&["sweep", "/33"], "/33: "),
    (&["sweep", "10.0.0.0/33"], "10.0.0.0/33: "),
    (&["sweep", "::1/129"], "::1/129: "),
    // Too big to sweep; even if the size check broke, link-local without a scope cannot leave.
    (&["sweep", "fe80::/64"], "fe80::/64: "),
    (&["scan", "fe80::1%nk-no-such0"], "fe80::1%nk-no-such0: "),
    (&["ping", "198.18.0.1%lo"], "198.18.0.1%lo: "),
    (&["sweep", "127.0.0.1", "--method", "udp:53"], "udp:53: "),
    (&["sweep", "127.0.0.1", "--timeout", "soon"], "soon: "),
    (&["wait", "tcp://udp:116"], "tcp://udp:116: "),
    (&["sweep", "127.0.0.1", "--shard", "0/4"], "0/4: "),
    (&["sweep", "127.0.0.1", "--shard", "5/4"], "5/4: "),
    (&["scan", "127.0.0.1", "--shard", "two"], "two: "),
    (&["scan", "127.0.0.1", "--seed", "-1"], "--seed -1: "),
    (&["ping", "-c", "-1", "::1"], "-1: "),
    (&["ping", "-c", "0", "::1"], "0: "),
    (&["ping", "-s", "70000", "::1"], "70000: "),
    (&["ping", "-t", "0", "127.0.0.1"], "0: "),
    (&["ping", "-i", "-2", "::1"], "-2: "),
    (&["ping", "bad_host!"], "bad_host!: "),
    (&["send", ":80"], ":80: "),
    (&["send", "unix:"], "unix:: "),
    (&["send", "exec:"], "exec:: "),
    (&["send", "[::1]"], "[::1]: "),
    (&["send", "::1:80"], "::1:80: "),
    (&["send", "[fe80::1]:80"], "[fe80::1]:80: "),
    (
        &["send", "[fe80::1%nk-no-such0]:80"],
        "[fe80::1%nk-no-such0]:80: ",
    ),
    (&["send", "[::1%lo]:80"], "[::1%lo]:80: "),
    (&["echo", "[fe80::1]:0"], "[fe80::1]:0: "),
    (
        &["echo", "[fe80::1%nk-no-such0]:0"],
        "[fe80::1%nk-no-such0]:0: ",
    ),
    (
        &["forward", "[fe80::1%nk-no-such0]:0", "[::1]:80"],
        "[fe80::1%nk-no-such0]:0: ",
    ),
    (&["forward", "0", "[fe80::1]:80"], "[fe80::1]:80: "),
    (
        &["forward", "udp:0", "udp:[fe80::1%nk-no-such0]:53"],
        "udp:[fe80::1%nk-no-such0]:53: ",
    ),
    (
        &["wait", "http://[fe80::1%25nk-no-such0]/"],
        "http://[fe80::1%25nk-no-such0]/: ",
    ),
    (&["wait", "127.0.0.1:0"], "127.0.0.1:0: "),
    (&["wait", "localhost:99999"], "localhost:99999: "),
    (&["forward", "8080", "host:0"], "host:0: "),
    (&["forward", "exec:cat", "8080"], "exec:cat: "),
    (
        &["forward", "8080", "127.0.0.1:1", "--allow", "10.0.0.0/40"],
        "10.0.0.0/40: ",
    ),
    (
        &["forward", "8080", "127.0.0.1:1", "--proxy-protocol", "v3"],
        "v3: ",
    ),
    (
        &["forward", "8080", "127.0.0.1:1", "--keepalive", "sometimes"],
        "sometimes: ",
    ),
    (
        &["forward", "8080", "127.0.0.1:1", "--keepalive", "10h"],
        "10h: ",
    ),
    (&["echo", "unix:/tmp/x", "--mode", "999"], "999: "),
    (&["iface", "show", "nosuchif0"], "nosuchif0: "),
    (&["iface", "addr", "nosuchif0"], "nosuchif0: "),
    (&["iface", "status", "nosuchif0"], "nosuchif0: "),
    (&["bogus"], "bogus: "),
    (&["scan", "::1", "--bogus"], "--bogus: "),
];

#[test]
fn bad_input_exits_2_naming_the_input() {
    for (args, prefix) in BAD_INPUT {
        let (code, stdout, stderr) = text(&run(args));
        let expected = format!("netkit: {prefix}");
        assert_eq!(code, 2, "{args:?}: stderr {stderr:?}");
        assert!(
            stderr.starts_with(&expected),
            "{args:?}: expected {expected:?}, got {stderr:?}"
        );
        assert_eq!(
            stderr.lines().count(),
            1,
            "{args:?}: one line only, got {stderr:?}"
        );
        assert!(stdout.is_empty(), "{args:?}: stdout {stdout:?}");
        assert!(!stderr.contains("panicked"), "{args:?}");
    }
}

#[test]
fn unknown_host_names_are_bad_input() {
    if !crate::harness::privileged("unknown host names are bad input") {
        return;
    }
    // In a namespace with only loopback the resolver reaches no server: no query leaves.
    let ns = crate::harness::Netns::with_loopback("unknown-name");
    let mut scan = ns.netkit();
    scan.args(["scan", "no-such-host.invalid", "-p", "80"]);
    let (code, _, stderr) = text(&scan.output().expect("run netkit"));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with("netkit: no-such-host.invalid: "),
        "{stderr}"
    );
}

#[test]
fn missing_arguments_are_usage_errors() {
    for args in [&["forward"][..], &["scan"], &["wait"], &["echo"], &["send"]] {
        let (code, _, stderr) = text(&run(args));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        let expected = format!("netkit: {}: missing ", args[0]);
        assert!(stderr.starts_with(&expected), "{args:?}: {stderr}");
    }
}

#[test]
fn address_in_use_is_an_environment_refusal() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = holder.local_addr().expect("addr").port().to_string();
    let (code, _, stderr) = text(&run(&["echo", &format!("127.0.0.1:{port}")]));
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("address already in use"), "{stderr}");
}

/// A Unix datagram socket is refused by the kernel (`EPROTOTYPE`), and the message says what
/// that means rather than only the kernel's words.
#[test]
fn a_unix_datagram_socket_is_an_environment_refusal_that_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dgram.sock");
    let _socket = std::os::unix::net::UnixDatagram::bind(&path).expect("bind");
    let endpoint = format!("unix:{}", path.display());
    let (code, _, stderr) = text(&run(&["send", &endpoint, "hello"]));
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("protocol wrong type"), "{stderr}");
    assert!(
        stderr.contains("a datagram (or seqpacket) socket"),
        "{stderr}"
    );
}

#[test]
fn closed_stdout_is_not_an_error() {
    use std::process::Stdio;
    let mut child = crate::harness::netkit()
        .args(["iface", "--help"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}
