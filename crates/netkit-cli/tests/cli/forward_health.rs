//! Active health checks (`--check tcp|http:/PATH`, `--check-interval`, `--rise`, `--fall`):
//! which targets are held up, beside HAProxy's `option httpchk` on the same upstreams, and a
//! target brought back after `rise` passed checks.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::BTreeSet;

use super::forward_pool::{http_tag, HaproxyPool, Upstream};
use super::forward_util::{Forwarder, Haproxy};

#[test]
fn forward_http_check_holds_up_the_targets_haproxy_holds_up() {
    let upstreams = [
        Upstream::http("s200", 200),
        Upstream::http("s302", 302),
        Upstream::http("s404", 404),
        Upstream::http("s503", 503),
    ];
    let targets: Vec<String> = upstreams.iter().map(Upstream::target).collect();
    let fw = Forwarder::start(&[
        "forward",
        "0",
        &targets.join(","),
        "--check",
        "http:/health",
        "--check-interval",
        "200ms",
        "--rise",
        "2",
        "--fall",
        "1",
    ]);
    for (target, status) in [(&targets[2], 404), (&targets[3], 503)] {
        let line = fw
            .wait_for(|l| l.contains(&format!("target {target} of ")), 1)
            .remove(0);
        assert!(
            line.ends_with(&format!("is down: 1 check(s) failed: HTTP status {status}")),
            "{line}"
        );
    }
    let served: BTreeSet<String> = (0..8).map(|_| http_tag(fw.addr())).collect();
    assert_eq!(
        served,
        BTreeSet::from(["s200".to_string(), "s302".to_string()])
    );
    let Some(haproxy) = Haproxy::available() else {
        return;
    };
    let refs: Vec<&Upstream> = upstreams.iter().collect();
    let peer = HaproxyPool::start(
        &haproxy,
        &refs,
        "  balance roundrobin\n  option httpchk GET /health\n",
        "check inter 200 rise 2 fall 1",
    );
    peer.wait_states(&["UP", "UP", "DOWN", "DOWN"]);
    let theirs: BTreeSet<String> = (0..8).map(|_| http_tag(peer.proxy.addr)).collect();
    assert_eq!(
        theirs, served,
        "HAProxy serves from {theirs:?}, netkit from {served:?}"
    );
}

#[test]
fn forward_a_checked_target_comes_back_after_rise_passed_checks() {
    let (good, flaky) = (Upstream::http("good", 200), Upstream::http("flak", 503));
    let targets = format!("{},{}", good.target(), flaky.target());
    let fw = Forwarder::start(&[
        "forward",
        "0",
        &targets,
        "--check",
        "http:/",
        "--check-interval",
        "100ms",
        "--rise",
        "3",
        "--fall",
        "2",
    ]);
    let about = format!("target {} of ", flaky.target());
    fw.wait_for(
        |l| l.contains(&about) && l.ends_with("is down: 1 check(s) failed: HTTP status 503"),
        1,
    );
    assert!((0..4).all(|_| http_tag(fw.addr()) == "good"));
    flaky.set_status(204);
    let up = fw
        .wait_for(|l| l.contains(&about) && l.contains("is up"), 1)
        .remove(0);
    assert!(up.ends_with("is up: 3 check(s) passed"), "{up}");
    let served: BTreeSet<String> = (0..4).map(|_| http_tag(fw.addr())).collect();
    assert_eq!(served.len(), 2, "both serve again: {served:?}");
    // From the top, `fall` failures in a row take it down again.
    flaky.set_status(500);
    let down = fw
        .wait_for(|l| l.contains(&about) && l.contains("is down"), 2)
        .remove(1);
    assert!(
        down.ends_with("is down: 2 check(s) failed: HTTP status 500"),
        "{down}"
    );
}
