//! Reloading `--config` on SIGHUP: new connections follow the new rules, open ones go on with
//! the old, listeners that stay are never closed, removed rules stop accepting, a bad file
//! changes nothing; a `udp:` rule that stays keeps its sessions, one that changes drains them
//! while the new rule serves the same socket.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;

use super::forward_pool::{tag_from, tag_of, Upstream};
use super::forward_util::{udp_answer, Forwarder, PATIENCE};
use super::harness::netkit;

fn write_rules(file: &Path, rules: &[(&str, &str)]) {
    let text: String = rules
        .iter()
        .map(|(listen, target)| {
            format!("[[rule]]\nlisten = \"{listen}\"\ntarget = \"{target}\"\n\n")
        })
        .collect();
    std::fs::write(file, text).unwrap();
}

/// Sends SIGHUP and waits for the `reloaded`/`reload ... failed` line number `nth` (from 1).
fn reload(fw: &Forwarder, nth: usize) -> String {
    fw.signal("HUP");
    fw.wait_for(|l| l.contains(" reload"), nth).remove(nth - 1)
}

/// A connection through the forwarder, still open after its tag was read.
fn open(addr: SocketAddr) -> (TcpStream, String) {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let tag = tag_from(stream.try_clone().unwrap());
    (stream, tag)
}

/// The address of the `nth` (from 1) `listening on` line (a rule a reload added).
fn nth_listen(fw: &Forwarder, nth: usize) -> SocketAddr {
    fw.wait_for(|l| l.starts_with("listening on "), nth)[nth - 1]
        .strip_prefix("listening on ")
        .unwrap()
        .split(" -> ")
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn echoes(stream: &mut TcpStream, message: &[u8]) -> bool {
    let mut got = vec![0u8; message.len()];
    stream.write_all(message).is_ok() && stream.read_exact(&mut got).is_ok() && got == message
}

#[test]
fn forward_sighup_applies_new_rules_and_leaves_open_connections_and_kept_listeners_alone() {
    let (a, b) = (Upstream::tagged("aaaa"), Upstream::tagged("bbbb"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.toml");
    write_rules(&file, &[("0", &a.target())]);
    let mut cmd = netkit();
    cmd.args(["forward", "--config"]).arg(&file);
    let fw = Forwarder::spawn(cmd, 1);
    let first = fw.addr();
    let (mut before, tag) = open(first);
    assert_eq!(tag, "aaaa");

    // Same listen address, new target; a second rule.
    write_rules(&file, &[("0", &b.target()), ("127.0.0.1:0", &a.target())]);
    let line = reload(&fw, 1);
    assert!(
        line.contains("reloaded") && line.contains(": 2 rule(s); listening on 127.0.0.1:"),
        "{line}"
    );
    let second = nth_listen(&fw, 2);
    assert_eq!(
        tag_of(first),
        "bbbb",
        "new connections follow the new rule on the same socket"
    );
    assert_eq!(tag_of(second), "aaaa");
    assert!(
        echoes(&mut before, b"still there"),
        "the open connection was cut"
    );

    // The second rule removed (rules on port 0 are matched in order): its socket is closed;
    // the first rule, back to its first target, keeps its socket and its old connection.
    let (mut on_second, _) = open(second);
    write_rules(&file, &[("0", &a.target())]);
    let line = reload(&fw, 2);
    assert!(
        line.contains(&format!("stopped listening on {second}")),
        "{line}"
    );
    assert!(
        TcpStream::connect(second).is_err(),
        "the removed rule still accepts"
    );
    assert!(
        echoes(&mut on_second, b"removed, not cut"),
        "the open connection was cut"
    );
    assert!(
        echoes(&mut before, b"and still"),
        "the open connection was cut"
    );
    assert_eq!(tag_of(first), "aaaa");

    // A file that fails its checks changes nothing.
    std::fs::write(
        &file,
        "[[rule]]\nlisten = \"0\"\ntarget = \"exec:/missing/program\"\n",
    )
    .unwrap();
    let line = reload(&fw, 3);
    assert!(line.contains("failed, the rules in force stay: "), "{line}");
    assert!(
        line.contains("exec:/missing/program: /missing/program: no such file"),
        "{line}"
    );
    assert_eq!(tag_of(first), "aaaa");
    drop(on_second);
    drop(before);
    let (code, _, stderr) = fw.stop("TERM");
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn forward_reload_that_cannot_bind_keeps_every_old_rule() {
    let a = Upstream::tagged("aaaa");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.toml");
    write_rules(&file, &[("0", &a.target())]);
    let mut cmd = netkit();
    cmd.args(["--json", "forward", "--config"]).arg(&file);
    let fw = Forwarder::spawn(cmd, 1);
    let busy = taken.local_addr().unwrap().to_string();
    write_rules(&file, &[("0", &a.target()), (&busy, &a.target())]);
    fw.signal("HUP");
    let record = fw.stdout.wait_line("\"type\":\"reload\"");
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(record["ok"], false, "{record}");
    assert_eq!(record["rules"], 1, "{record}");
    let error = record["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!("listen on {busy}: address already in use")),
        "{error}"
    );
    assert_eq!(tag_of(fw.addr()), "aaaa");
    // Freed, the same file loads.
    drop(taken);
    fw.signal("HUP");
    let records = fw.stdout.wait_for(|l| l.contains("\"type\":\"reload\""), 2);
    let record: serde_json::Value = serde_json::from_str(&records[1]).unwrap();
    assert_eq!(
        (record["ok"].clone(), record["rules"].clone()),
        (true.into(), 2.into()),
        "{record}"
    );
    assert_eq!(record["added"], serde_json::json!([busy]), "{record}");
    assert_eq!(tag_of(busy.parse().unwrap()), "aaaa");
}

#[test]
fn forward_sighup_without_config_is_logged_and_ignored() {
    let a = Upstream::tagged("aaaa");
    let mut fw = Forwarder::start(&["forward", "0", &a.target()]);
    fw.signal("HUP");
    fw.wait_for(
        |l| l.contains("SIGHUP ignored: there is no --config file to reload"),
        1,
    );
    assert!(fw.alive());
    assert_eq!(tag_of(fw.addr()), "aaaa");
}

/// A UDP server answering `TAG:` and the datagram.
fn udp_tagged(tag: &'static str) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((len, from)) = socket.recv_from(&mut buf) {
            let reply = [tag.as_bytes(), b":", &buf[..len]].concat();
            let _ = socket.send_to(&reply, from);
        }
    });
    addr
}

/// Sends `data` to `to` until a reply comes (a datagram may be dropped while a changed rule
/// drains), within [`PATIENCE`]; the reply.
fn udp_reply(socket: &UdpSocket, to: SocketAddr, data: &[u8]) -> String {
    udp_answer(socket, to, data).unwrap_or_else(|| panic!("no reply from {to} within {PATIENCE:?}"))
}

#[test]
fn forward_reload_keeps_an_unchanged_udp_rule_and_drains_a_changed_one_onto_the_same_socket() {
    let (a, b) = (udp_tagged("aaaa"), udp_tagged("bbbb"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.toml");
    let rule = |target: SocketAddr| ("udp:127.0.0.1:0", format!("udp:{target}"));
    let (listen, to_a) = rule(a);
    write_rules(&file, &[(listen, &to_a)]);
    let mut cmd = netkit();
    cmd.args(["forward", "--config"]).arg(&file);
    let fw = Forwarder::spawn(cmd, 1);
    let addr: SocketAddr = fw.listens[0].strip_prefix("udp:").unwrap().parse().unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    assert_eq!(udp_reply(&client, addr, b"1"), "aaaa:1");

    // The same rule: its loop and the client's session go on (no session ended).
    let line = reload(&fw, 1);
    assert!(
        line.contains("reloaded") && line.ends_with(": 1 rule(s)"),
        "{line}"
    );
    assert_eq!(udp_reply(&client, addr, b"2"), "aaaa:2");
    let ended = |fw: &Forwarder| {
        fw.stderr
            .all()
            .iter()
            .filter(|l| l.contains(" udp "))
            .count()
    };
    assert_eq!(ended(&fw), 0, "{:?}", fw.stderr.all());

    // A new target: the answered session ends at once, the same socket serves the new rule.
    let (_, to_b) = rule(b);
    write_rules(&file, &[(listen, &to_b)]);
    let line = reload(&fw, 2);
    assert!(line.ends_with(": 1 rule(s)"), "{line}");
    let session = fw.wait_for(|l| l.contains(" udp "), 1).remove(0);
    let client_addr = client.local_addr().unwrap();
    assert!(
        session.contains(&format!(" udp {client_addr} -> {a} via "))
            && session.contains("up 2 dgrams")
            && session.ends_with(", done"),
        "{session}"
    );
    assert_eq!(udp_reply(&client, addr, b"3"), "bbbb:3");
    let announced = fw.stderr.all();
    let listening = announced.iter().filter(|l| l.starts_with("listening on "));
    assert_eq!(
        listening.count(),
        1,
        "a new listener was announced: {announced:?}"
    );
    let (code, _, stderr) = fw.stop("TERM");
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn forward_stop_closes_at_the_drain_timeout_the_connections_of_rules_a_reload_removed_too() {
    let a = Upstream::tagged("aaaa");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.toml");
    let rules = |listen: &str| {
        let text = format!(
            "[[rule]]\nlisten = \"{listen}\"\ntarget = \"{}\"\ndrain_timeout = \"1s\"\n",
            a.target()
        );
        std::fs::write(&file, text).unwrap();
    };
    rules("127.0.0.1:0");
    let mut cmd = netkit();
    cmd.args(["forward", "--config"]).arg(&file);
    let fw = Forwarder::spawn(cmd, 1);
    let (mut removed, _) = open(fw.addr());
    // The rule is replaced by one on another socket: its connection goes on, its accept loop
    // has stopped.
    rules("[::1]:0");
    let line = reload(&fw, 1);
    assert!(line.contains("stopped listening on"), "{line}");
    let kept = nth_listen(&fw, 2);
    let (mut current, _) = open(kept);
    assert!(echoes(&mut removed, b"old"), "the open connection was cut");
    assert!(
        echoes(&mut current, b"new"),
        "the new rule does not forward"
    );
    // Both stay open past the drain timeout: the one of the removed rule is closed too.
    fw.signal("TERM");
    let closed = fw.wait_for(|l| l.contains("drain-timeout"), 2);
    assert_eq!(closed.len(), 2, "{closed:?}");
    for stream in [&mut removed, &mut current] {
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        assert!(rest.is_empty(), "{rest:?}");
    }
    let (code, _, stderr) = fw.stop("TERM");
    assert_eq!(code, 0, "{stderr}");
}
