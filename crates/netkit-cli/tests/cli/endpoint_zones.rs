//! Link-local IPv6 endpoints with their zone, `[fe80::2%vA]:PORT`, across a veth pair between
//! two namespaces the test creates (`vA` fe80::1 -- `vB` fe80::2): `wait` beside `ncat -z`,
//! `send` and `echo` beside socat, `forward` listening on and relaying to link-local
//! addresses with real clients, `wait` on an RFC 6874 URL beside curl.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{Read, Write};
use std::process::{Output, Stdio};

use serde_json::Value;

use crate::echo::EchoServer;
use crate::forward_util::Forwarder;
use crate::harness::{privileged, text, Netns, Proc};
use crate::ping_net::mac;
use crate::wait_util::{header, response};

/// Two namespaces joined by a veth pair, `vA` (fe80::1) in the first and `vB` (fe80::2) in the
/// second: the addresses without duplicate address detection, each end a static neighbour of
/// the other (neighbour discovery right after link-up can lose its first solicitation).
pub fn link(tag: &str) -> (Netns, Netns) {
    let a = Netns::with_loopback(tag);
    let b = Netns::with_loopback(&format!("{tag}b"));
    a.veth("vA", &b, "vB").unwrap_or_else(|e| panic!("{e}"));
    for (ns, dev, addr) in [(&a, "vA", "fe80::1/64"), (&b, "vB", "fe80::2/64")] {
        ns.ip(&["-6", "addr", "add", addr, "dev", dev, "nodad"]);
        ns.ip(&["link", "set", dev, "up"]);
    }
    for (ns, dev, addr, peer, peer_dev) in [
        (&a, "vA", "fe80::2", &b, "vB"),
        (&b, "vB", "fe80::1", &a, "vA"),
    ] {
        let mac = mac(peer, peer_dev);
        ns.ip(&["neigh", "replace", addr, "lladdr", &mac, "dev", dev]);
    }
    (a, b)
}

/// A namespace with two links, each to a namespace of its own: `vA` (fe80::1) to `vB`
/// (fe80::2) and `vC` (fe80::11) to `vD` (fe80::3), without duplicate address detection,
/// each far address a static neighbour of its near end. Every link has `fe80::/64`: only a
/// zone tells which link `fe80::3` is on (`fe80::3%vC`; `fe80::3%vA` is nobody).
pub fn two_links(tag: &str) -> (Netns, Netns, Netns) {
    let (near, b) = link(tag);
    let d = Netns::with_loopback(&format!("{tag}d"));
    near.veth("vC", &d, "vD").unwrap_or_else(|e| panic!("{e}"));
    for (ns, dev, addr) in [(&near, "vC", "fe80::11/64"), (&d, "vD", "fe80::3/64")] {
        ns.ip(&["-6", "addr", "add", addr, "dev", dev, "nodad"]);
        ns.ip(&["link", "set", dev, "up"]);
    }
    let far_mac = mac(&d, "vD");
    near.ip(&[
        "neigh", "replace", "fe80::3", "lladdr", &far_mac, "dev", "vC",
    ]);
    let near_mac = mac(&near, "vC");
    d.ip(&[
        "neigh", "replace", "fe80::11", "lladdr", &near_mac, "dev", "vD",
    ]);
    (near, b, d)
}

/// Runs `program ARGS` inside `ns` with `input` on stdin, to its end.
pub fn run_with(ns: &Netns, program: &str, args: &[&str], input: &[u8]) -> Output {
    let mut child = ns
        .command(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// `netkit ARGS` inside `ns`, to its end.
fn netkit_in(ns: &Netns, args: &[&str]) -> (i32, String, String) {
    let mut cmd = ns.netkit();
    cmd.args(args);
    Proc::spawn(cmd).finish()
}

/// A socat echo server (`EXEC:cat`, a child per connection) bound to `[fe80::2%vB]:PORT` in
/// `b`, ready once `netkit wait` from `a` reaches it.
fn socat_echo(a: &Netns, b: &Netns, port: &str) -> Proc {
    let listen = format!("TCP6-LISTEN:{port},bind=[fe80::2%vB],reuseaddr,fork");
    let mut cmd = b.command("socat");
    cmd.args([listen.as_str(), "EXEC:cat"]);
    let server = Proc::spawn(cmd);
    let target = format!("[fe80::2%vA]:{port}");
    let (code, _, stderr) = netkit_in(a, &["wait", &target, "--timeout", "15s"]);
    assert_eq!(code, 0, "socat echo server never listened: {stderr}");
    server
}

#[test]
fn wait_reaches_a_link_local_listener_through_its_zone_as_ncat_does() {
    if !privileged("wait_reaches_a_link_local_listener_through_its_zone_as_ncat_does") {
        return;
    }
    let (a, b) = link("zwait");
    let mut listen = b.netkit();
    listen.args(["echo", "[fe80::2%vB]:7000"]);
    let server = EchoServer::spawn(listen);
    assert_eq!(server.addr, "[fe80::2%vB]:7000");

    let (code, stdout, stderr) = netkit_in(
        &a,
        &["--json", "wait", "[fe80::2%vA]:7000", "--timeout", "15s"],
    );
    assert_eq!(code, 0, "{stderr}");
    let record: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(record["type"], "ready");
    assert_eq!(record["endpoint"], "[fe80::2%vA]:7000");
    let ncat = run_with(&a, "ncat", &["-z", "fe80::2%vA", "7000"], b"");
    assert!(ncat.status.success(), "{:?}", text(&ncat));

    // Nothing on the next port: both say so (netkit after its timeout, exit 1).
    let (code, _, stderr) = netkit_in(&a, &["wait", "[fe80::2%vA]:7001", "--timeout", "1s"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("connection refused"), "{stderr}");
    let ncat = run_with(&a, "ncat", &["-z", "fe80::2%vA", "7001"], b"");
    assert!(!ncat.status.success(), "{:?}", text(&ncat));

    // Without the zone no socket can reach the address: ncat fails, netkit refuses the input.
    let ncat = run_with(&a, "ncat", &["-z", "fe80::2", "7000"], b"");
    assert!(!ncat.status.success(), "{:?}", text(&ncat));
    let (code, _, stderr) = netkit_in(&a, &["wait", "[fe80::2]:7000", "--timeout", "1s"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.starts_with("netkit: [fe80::2]:7000: "), "{stderr}");
    assert!(stderr.contains("add %IFACE"), "{stderr}");
    // A zone naming an interface of the other namespace only.
    let (code, _, stderr) = netkit_in(&a, &["wait", "[fe80::2%vB]:7000", "--timeout", "1s"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with("netkit: [fe80::2%vB]:7000: no interface vB"),
        "{stderr}"
    );
    assert_eq!(server.stop("TERM").0, 0);
}

#[test]
fn send_and_echo_across_a_link_local_link_give_what_socat_gives() {
    if !privileged("send_and_echo_across_a_link_local_link_give_what_socat_gives") {
        return;
    }
    let (a, b) = link("zsend");
    let message = "over the link-local link";
    let socat_to = |port: &str| {
        let address = format!("TCP6:[fe80::2%vA]:{port}");
        let out = run_with(
            &a,
            "socat",
            &["-", &address],
            format!("{message}\n").as_bytes(),
        );
        assert!(out.status.success(), "{:?}", text(&out));
        out.stdout
    };
    let netkit_to = |port: &str| {
        let target = format!("[fe80::2%vA]:{port}");
        let (code, stdout, stderr) = netkit_in(&a, &["send", &target, message]);
        assert_eq!(code, 0, "{stderr}");
        stdout.into_bytes()
    };

    // netkit echo in b: netkit send and socat from a get the same bytes back.
    let mut listen = b.netkit();
    listen.args(["echo", "[fe80::2%vB]:7000"]);
    let server = EchoServer::spawn(listen);
    let ours = netkit_to("7000");
    assert_eq!(ours, format!("{message}\n").into_bytes());
    assert_eq!(socat_to("7000"), ours);
    assert_eq!(server.stop("TERM").0, 0);

    // socat's echo in b: netkit send gets from it what socat gets.
    let _socat = socat_echo(&a, &b, "7001");
    assert_eq!(netkit_to("7001"), socat_to("7001"));

    // The zone by index too (as ncat takes it); the JSON record names the interface.
    let index = a.ip(&["-o", "link", "show", "vA"]);
    let index = index.split(':').next().unwrap().trim();
    let by_index = format!("[fe80::2%{index}]:7001");
    let (code, stdout, stderr) = netkit_in(&a, &["--json", "send", &by_index, "x"]);
    assert_eq!(code, 0, "{stderr}");
    let record: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(record["endpoint"], "[fe80::2%vA]:7001");
    assert_eq!(record["reply"], "x\n");
    let ncat = run_with(&a, "ncat", &[&format!("fe80::2%{index}"), "7001"], b"x\n");
    assert_eq!(text(&ncat).1, "x\n", "{:?}", text(&ncat));
}

#[test]
fn forward_listens_on_and_relays_to_link_local_addresses() {
    if !privileged("forward_listens_on_and_relays_to_link_local_addresses") {
        return;
    }
    let (a, b) = link("zfwd");
    let _server = socat_echo(&a, &b, "7000");

    // Listening on a's link-local address, relaying to b's: a client in b goes through a.
    let mut cmd = a.netkit();
    cmd.args(["forward", "[fe80::1%vA]:8000", "[fe80::2%vA]:7000"]);
    let fw = Forwarder::spawn(cmd, 1);
    assert_eq!(fw.listens, ["[fe80::1%vA]:8000"]);
    let line = fw.stderr.wait_line("listening on");
    assert_eq!(line, "listening on [fe80::1%vA]:8000 -> [fe80::2%vA]:7000");
    let out = run_with(
        &b,
        "socat",
        &["-", "TCP6:[fe80::1%vB]:8000"],
        b"through a\n",
    );
    assert_eq!(text(&out).1, "through a\n", "{:?}", text(&out));
    // The connection's line: the client with the interface it came through, and the target.
    let conn = fw.wait_for(|l| l.contains(" -> [fe80::2%vA]:7000: up "), 1);
    assert!(conn[0].contains(" [fe80::2%vA]:"), "{conn:?}");

    // Listening on loopback, relaying to the link-local target, with health checks; socat as
    // the client in a.
    let mut cmd = a.netkit();
    cmd.args([
        "forward",
        "[::1]:8001",
        "[fe80::2%vA]:7000",
        "--check",
        "tcp",
    ]);
    let checked = Forwarder::spawn(cmd, 1);
    let out = run_with(&a, "socat", &["-", "TCP6:[::1]:8001"], b"via loopback\n");
    assert_eq!(text(&out).1, "via loopback\n", "{:?}", text(&out));
    assert_eq!(checked.stop("TERM").0, 0);
    let (code, _, stderr) = fw.stop("TERM");
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains(" is down"), "{stderr}");
}

#[test]
fn wait_takes_an_rfc_6874_url_as_curl_does_and_sends_the_same_host() {
    if !privileged("wait_takes_an_rfc_6874_url_as_curl_does_and_sends_the_same_host") {
        return;
    }
    let (a, b) = link("zurl");
    // An HTTP server bound in b to its link-local address (the socket stays in b), answering
    // exactly two requests: netkit's and curl's.
    let listener = b
        .run_in(|| std::net::TcpListener::bind(("fe80::2%vB", 8080)))
        .unwrap()
        .unwrap();
    let server = std::thread::spawn(move || {
        let mut heads = Vec::new();
        for _ in 0..2 {
            let (mut conn, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            conn.write_all(response("200 OK", "ok\n").as_bytes())
                .unwrap();
            heads.push(String::from_utf8_lossy(&head).into_owned());
        }
        heads
    });
    let url = "http://[fe80::2%25vA]:8080/health";
    let (code, _, stderr) = netkit_in(&a, &["wait", url, "--timeout", "15s"]);
    assert_eq!(code, 0, "{stderr}");
    let curl = run_with(&a, "curl", &["-sS", "-o", "/dev/null", url], b"");
    assert!(curl.status.success(), "{:?}", text(&curl));
    let heads = server.join().unwrap();
    let (ours, curls) = (&heads[0], &heads[1]);
    assert_eq!(ours.lines().next(), curls.lines().next());
    assert_eq!(header(ours, "host"), header(curls, "host"));
    assert_eq!(header(ours, "host"), Some("[fe80::2]:8080"));
}

/// Waits (bounded) until a UDP socket is bound to `port` in `ns`, as `ss` lists it.
fn udp_bound(ns: &Netns, port: &str) {
    let filter = format!("sport = :{port}");
    for _ in 0..500 {
        let out = run_with(ns, "ss", &["-Hlun", &filter], b"");
        if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("nothing bound UDP port {port}");
}

#[test]
fn forward_relays_udp_between_link_local_addresses() {
    if !privileged("forward_relays_udp_between_link_local_addresses") {
        return;
    }
    let (a, b) = link("zudp");
    // socat's UDP echo in b on vB (socat 1.7.4 binds a zoned `bind=` address of a UDP6
    // server without its scope id, which the kernel refuses).
    let mut cmd = b.command("socat");
    cmd.args(["UDP6-RECVFROM:5301,so-bindtodevice=vB,fork", "EXEC:cat"]);
    let _server = Proc::spawn(cmd);
    udp_bound(&b, "5301");

    let mut cmd = a.netkit();
    cmd.args(["forward", "udp:[fe80::1%vA]:5300", "udp:[fe80::2%vA]:5301"]);
    let fw = Forwarder::spawn(cmd, 1);
    assert_eq!(fw.listens, ["udp:[fe80::1%vA]:5300"]);
    let out = run_with(
        &b,
        "socat",
        &["-T5", "-", "UDP6:[fe80::1%vB]:5300"],
        b"datagram\n",
    );
    assert_eq!(text(&out).1, "datagram\n", "{:?}", text(&out));
    // The session's line, when it ends (on exit): the client and target with their zone.
    let (code, _, stderr) = fw.stop("TERM");
    assert_eq!(code, 0, "{stderr}");
    let session = stderr.lines().find(|l| l.contains(" udp ")).unwrap_or("");
    assert!(
        session.contains(" udp [fe80::2%vA]:") && session.contains(" -> [fe80::2%vA]:5301 via "),
        "{stderr}"
    );
}
