//! `netkit forward`'s keepalive and what an idle connection costs it: the socket options as
//! the kernel reports them (`ss -o` on live connections), descriptors from `/proc/PID/fd`.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;

use super::forward_util::*;
use super::harness::{privileged, Netns};

/// The keepalive timers of process `pid`'s established TCP sockets, as the kernel reports
/// them in `/proc/net/tcp` (its sockets found by inode in `/proc/PID/fd`): the seconds left
/// before the first probe, `None` for a socket without keepalive.
fn keepalive_timers(pid: u32) -> Vec<Option<f64>> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            Some(
                link.strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect();
    let mut timers = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table).unwrap().lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st queues tr:when retrnsmt uid timeout inode
            if fields[3] != "01" || !inodes.iter().any(|i| i == fields[9]) {
                continue;
            }
            let (active, when) = fields[5].split_once(':').unwrap();
            let ticks = u64::from_str_radix(when, 16).unwrap();
            // timer 2 is the keepalive timer; `when` is in clock ticks (USER_HZ, 100 a second)
            timers.push((active == "02").then_some(ticks as f64 / 100.0));
        }
    }
    timers
}

/// [`keepalive_timers`] once the target leg has had its worker's tick after next (it gets
/// keepalive half a second to a second after its connect): polled until `on` of them have
/// keepalive, at most 5 s; with `on` 0, after 1.5 s.
fn settled_keepalive_timers(pid: u32, on: usize) -> Vec<Option<f64>> {
    let start = std::time::Instant::now();
    loop {
        let timers = keepalive_timers(pid);
        let waited = start.elapsed();
        let settled = match on {
            0 => waited >= std::time::Duration::from_millis(1500),
            on => timers.iter().flatten().count() >= on,
        };
        if settled || waited >= std::time::Duration::from_secs(5) {
            return timers;
        }
        thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Sends `data` and reads the echo back on a connection that stays open.
fn echo_through(stream: &TcpStream, data: Vec<u8>) -> bool {
    let mut writer = stream.try_clone().unwrap();
    let len = data.len();
    let sender = thread::spawn(move || {
        writer.write_all(&data).unwrap();
        data
    });
    let mut got = vec![0u8; len];
    (&*stream).read_exact(&mut got).unwrap();
    sender.join().unwrap() == got
}

#[test]
fn forward_keepalive_is_set_on_both_legs_and_off_disables_it() {
    let upstream = tcp_echo("127.0.0.1:0");
    let target = upstream.to_string();
    let cases: [(&[&str], Option<f64>); 3] = [
        (&[], Some(60.0)),
        (&["--keepalive", "7s"], Some(7.0)),
        (&["--keepalive", "off"], None),
    ];
    for (flags, idle) in cases {
        let mut args = vec!["forward", "0", target.as_str()];
        args.extend_from_slice(flags);
        let fw = Forwarder::start(&args);
        let client = connect(fw.addr());
        assert!(echo_through(&client, b"both legs up".to_vec()));
        let timers = settled_keepalive_timers(fw.pid(), if idle.is_some() { 2 } else { 0 });
        assert_eq!(
            timers.len(),
            2,
            "{flags:?}: the client and the target leg: {timers:?}"
        );
        for timer in timers {
            match (idle, timer) {
                (None, None) => {}
                (Some(idle), Some(left)) => {
                    assert!(left <= idle, "{flags:?}: {left}s of {idle}s");
                }
                _ => panic!("{flags:?}: keepalive timer {timer:?}, expected {idle:?}"),
            }
        }
    }
}

#[test]
fn forward_keepalive_key_in_the_config_file_sets_the_timer() {
    let upstream = tcp_echo("127.0.0.1:0");
    let dir = std::env::temp_dir().join(format!("nk-keepalive-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rules.toml");
    let rules = format!(
        "[[rule]]\nlisten = \"127.0.0.1:0\"\ntarget = \"{upstream}\"\nkeepalive = \"9s\"\n"
    );
    std::fs::write(&file, rules).unwrap();
    let fw = Forwarder::start(&["forward", "--config", file.to_str().unwrap()]);
    let client = connect(fw.addr());
    assert!(echo_through(&client, b"config".to_vec()));
    let timers = settled_keepalive_timers(fw.pid(), 2);
    assert_eq!(timers.len(), 2, "{timers:?}");
    assert!(
        timers
            .iter()
            .all(|t| matches!(t, Some(left) if *left <= 9.0)),
        "{timers:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn forward_keepalive_gives_up_a_vanished_target_and_resets_the_client() {
    if !privileged("forward_keepalive_gives_up_a_vanished_target") {
        return;
    }
    let ns = Netns::with_loopback("fwdka");
    let (_upstream, target) = echo_in(&ns, "127.0.0.1:0", &[]);
    let mut forward = ns.netkit();
    forward.args([
        "forward",
        "127.0.0.1:0",
        &target.to_string(),
        "--keepalive",
        "1s",
    ]);
    let fw = Forwarder::spawn(forward, 1);
    let addr = fw.addr();
    let mut client = ns.run_in(move || connect(addr)).unwrap();
    client.write_all(b"hi").unwrap();
    let mut buf = [0u8; 2];
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hi");
    // The target vanishes: nothing it sends (the answers to the probes) gets out any more.
    let rules = format!(
        "*filter\n-A OUTPUT -p tcp --sport {} -j DROP\nCOMMIT\n",
        target.port()
    );
    ns.restore(false, &rules).unwrap();
    let logged = fw.wait_for(|l| l.contains("dead-peer"), 1);
    assert!(
        logged[0].contains("the target stopped answering"),
        "{logged:?}"
    );
    let err = client.read(&mut buf).expect_err("the client leg is reset");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
}
