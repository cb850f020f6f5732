//! Several targets per rule: the balance policies (round-robin beside HAProxy's, least-conn,
//! hash with its stability), failover within a client connection, passive health.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};

use super::forward_pool::{tag_from, tag_of, HaproxyPool, Upstream};
use super::forward_util::{closed_port, connect, round_trip, tcp_echo, Forwarder, Haproxy};
use super::harness::{run, text};

fn counts(tags: &[String]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for tag in tags {
        *counts.entry(tag.clone()).or_insert(0) += 1;
    }
    counts
}

/// Three tagged upstreams (`aaaa`, `bbbb`, `cccc`) and their addresses as a rule's targets.
fn three_upstreams() -> ([Upstream; 3], Vec<String>) {
    let upstreams = [
        Upstream::tagged("aaaa"),
        Upstream::tagged("bbbb"),
        Upstream::tagged("cccc"),
    ];
    let targets = upstreams.iter().map(Upstream::target).collect();
    (upstreams, targets)
}

#[test]
fn forward_round_robin_shares_connections_as_haproxy_does() {
    let (upstreams, targets) = three_upstreams();
    let fw = Forwarder::start(&[
        "forward",
        "0",
        &targets.join(","),
        "--balance",
        "round-robin",
    ]);
    let netkit: Vec<String> = (0..9).map(|_| tag_of(fw.addr())).collect();
    // Each in turn: the same target every third connection.
    for (i, tag) in netkit.iter().enumerate().skip(3) {
        assert_eq!(tag, &netkit[i - 3], "{netkit:?}");
    }
    assert_eq!(
        counts(&netkit).values().collect::<Vec<_>>(),
        [&3, &3, &3],
        "{netkit:?}"
    );
    let Some(haproxy) = Haproxy::available() else {
        return;
    };
    let refs: Vec<&Upstream> = upstreams.iter().collect();
    let peer = HaproxyPool::start(&haproxy, &refs, "  balance roundrobin\n", "");
    let theirs: Vec<String> = (0..9).map(|_| tag_of(peer.proxy.addr)).collect();
    assert_eq!(
        counts(&theirs),
        counts(&netkit),
        "HAProxy: {theirs:?}, netkit: {netkit:?}"
    );
}

#[test]
fn forward_fails_over_to_the_next_target_when_a_connect_fails() {
    let dead = closed_port();
    let live = tcp_echo("127.0.0.1:0");
    let targets = format!("{},{live}", dead.endpoint());
    let fw = Forwarder::start(&["forward", "0", &targets]);
    for i in 0..6 {
        let message = format!("message {i}");
        assert_eq!(
            round_trip(connect(fw.addr()), message.as_bytes()),
            message.as_bytes()
        );
    }
    let records = fw.wait_for(|l| l.contains(" done"), 6);
    assert!(
        records.iter().all(|l| l.contains(&format!("-> {live}:"))),
        "{records:?}"
    );
    let (_, _, stderr) = fw.stop("TERM");
    let down = format!("target {} of ", dead.endpoint());
    let downs: Vec<&str> = stderr.lines().filter(|l| l.contains(&down)).collect();
    assert_eq!(downs.len(), 1, "one record when it goes down: {stderr}");
    assert!(
        downs[0].ends_with("is down: connect failed: connection refused"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("connect-failed"),
        "no client saw the failure: {stderr}"
    );
}

#[test]
fn forward_every_target_down_closes_the_client_and_names_each_failure() {
    let (one, two) = (closed_port(), closed_port());
    let targets = format!("{},{}", one.endpoint(), two.endpoint());
    let fw = Forwarder::start(&["forward", "0", &targets]);
    let closed = |fw: &Forwarder| {
        let mut got = Vec::new();
        connect(fw.addr()).read_to_end(&mut got).unwrap();
        assert!(got.is_empty());
    };
    closed(&fw);
    let line = fw.wait_for(|l| l.contains("connect-failed"), 1).remove(0);
    assert!(line.contains(&format!("-> {targets}: ")), "{line}");
    for dead in [&one, &two] {
        assert!(
            line.contains(&format!(
                "connect to {}: connection refused",
                dead.endpoint()
            )),
            "{line}"
        );
    }
    // Both are down now, and still tried: the forwarder goes on.
    closed(&fw);
    fw.wait_for(|l| l.contains("connect-failed"), 2);
}

#[test]
fn forward_least_conn_sends_new_clients_to_the_less_busy_target() {
    let upstreams = [Upstream::tagged("aaaa"), Upstream::tagged("bbbb")];
    let targets: Vec<String> = upstreams.iter().map(Upstream::target).collect();
    let fw = Forwarder::start(&[
        "forward",
        "0",
        &targets.join(","),
        "--balance",
        "least-conn",
    ]);
    let held = connect(fw.addr());
    let held_tag = tag_from(held.try_clone().unwrap());
    for done in 1..=4 {
        let tag = tag_of(fw.addr());
        assert_ne!(tag, held_tag, "a new client went to the busy target");
        // The connection is over for the forwarder too before the next one comes.
        fw.wait_for(|l| l.contains(" done"), done);
    }
}

#[test]
fn forward_least_conn_spreads_held_connections_as_haproxy_leastconn_does() {
    let (upstreams, targets) = three_upstreams();
    let fw = Forwarder::start(&[
        "forward",
        "0",
        &targets.join(","),
        "--balance",
        "least-conn",
    ]);
    // Six connections held open, one after the other: each goes where fewest are open.
    let hold = |addr: SocketAddr| -> (Vec<TcpStream>, Vec<String>) {
        let mut held = Vec::new();
        let mut tags = Vec::new();
        for _ in 0..6 {
            let stream = connect(addr);
            tags.push(tag_from(stream.try_clone().unwrap()));
            held.push(stream);
        }
        (held, tags)
    };
    let (_ours, netkit) = hold(fw.addr());
    assert_eq!(counts(&netkit[..3]).len(), 3, "{netkit:?}");
    assert_eq!(
        counts(&netkit).values().collect::<Vec<_>>(),
        [&2, &2, &2],
        "{netkit:?}"
    );
    let Some(haproxy) = Haproxy::available() else {
        return;
    };
    let refs: Vec<&Upstream> = upstreams.iter().collect();
    let peer = HaproxyPool::start(&haproxy, &refs, "  balance leastconn\n", "");
    let (_theirs_held, theirs) = hold(peer.proxy.addr);
    assert_eq!(
        counts(&theirs),
        counts(&netkit),
        "HAProxy: {theirs:?}, netkit: {netkit:?}"
    );
}

/// Connects from source address `from` (any of 127/8) and returns the tag that answered.
fn tag_from_source(to: SocketAddr, from: [u8; 4]) -> String {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    socket.connect(&to.into()).unwrap();
    tag_from(TcpStream::from(socket))
}

#[test]
fn forward_hash_keeps_clients_on_their_target_while_it_is_up_and_brings_them_back() {
    let (mut upstreams, targets) = three_upstreams();
    let fw = Forwarder::start(&[
        "forward",
        "0",
        &targets.join(","),
        "--balance",
        "hash",
        "--check",
        "tcp",
        "--check-interval",
        "100ms",
        "--rise",
        "1",
        "--fall",
        "1",
    ]);
    let clients: Vec<[u8; 4]> = (2..32).map(|n| [127, 0, 0, n]).collect();
    let map = |fw: &Forwarder| -> Vec<String> {
        clients
            .iter()
            .map(|c| tag_from_source(fw.addr(), *c))
            .collect()
    };
    let before = map(&fw);
    assert_eq!(map(&fw), before, "the same client went elsewhere");
    assert_eq!(
        counts(&before).len(),
        3,
        "30 clients all on some targets: {before:?}"
    );
    let b = upstreams[1].target();
    upstreams[1].stop();
    fw.wait_for(
        |l| l.contains(&format!("target {b} of ")) && l.contains("is down"),
        1,
    );
    let during = map(&fw);
    for (was, now) in before.iter().zip(&during) {
        match was.as_str() {
            "bbbb" => assert_ne!(now, "bbbb"),
            _ => assert_eq!(now, was, "a client of a target that stayed up moved"),
        }
    }
    upstreams[1].resume();
    fw.wait_for(
        |l| l.contains(&format!("target {b} of ")) && l.contains("is up"),
        1,
    );
    assert_eq!(
        map(&fw),
        before,
        "the clients of the target that came back are back"
    );
}

#[test]
fn forward_bad_balance_check_and_counts_exit_2_naming_the_value() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["--balance", "random"],
            "netkit: random: unknown balance, expected round-robin, least-conn or hash",
        ),
        (
            &["--check", "udp"],
            "netkit: udp: unknown check, expected tcp or http:/PATH",
        ),
        (
            &["--rise", "0"],
            "netkit: 0: checks in a row must be a whole number from 1 to 100",
        ),
        (
            &["--check-interval", "0"],
            "netkit: 0: must be longer than zero",
        ),
        (
            &["--retries", "101"],
            "netkit: 101: retries must be a whole number from 0 to 100",
        ),
        (
            &["--retries", "some"],
            "netkit: some: retries must be a whole number from 0 to 100",
        ),
    ];
    for (flags, want) in cases {
        let mut args = vec!["forward", "0", "127.0.0.1:1"];
        args.extend_from_slice(flags);
        let (code, _, stderr) = text(&run(&args));
        assert_eq!(code, 2, "{flags:?}: {stderr}");
        assert!(stderr.contains(want), "{flags:?}: {stderr}");
    }
    let (code, _, stderr) = text(&run(&["forward", "0", "exec:cat", "--check", "tcp"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with("netkit: exec:cat: exec: targets cannot be health-checked"),
        "{stderr}"
    );
}
