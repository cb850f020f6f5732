//! Small helpers for driving peers inside a lab and reading their answers: iputils ping
//! summaries, nmap's grepable output, and plain connects from the scanner namespace.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::process::Output;
use std::time::Duration;

use super::Lab;

/// Runs iputils `ping ARGS` in the lab's scanner namespace.
pub fn ping(lab: &Lab, args: &[&str]) -> Output {
    lab.scanner_cmd("ping")
        .args(args)
        .output()
        .expect("run ping")
}

/// The `rtt min` of an iputils ping summary, in milliseconds.
pub fn min_rtt(stdout: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("rtt min/avg/max/mdev"))
        .unwrap_or_else(|| panic!("no rtt line in {stdout}"));
    let values = line.split('=').nth(1).expect("rtt values").trim();
    values
        .split('/')
        .next()
        .expect("min")
        .parse()
        .expect("min rtt")
}

/// (transmitted, received) from an iputils ping summary.
pub fn counts(stdout: &str) -> (u32, u32) {
    let line = stdout
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("no summary in {stdout}"));
    let number = |word: &str| -> u32 {
        let before = line.split(word).next().expect("word");
        let n = before.trim_end().rsplit([' ', ',']).next().expect("number");
        n.parse().unwrap_or_else(|_| panic!("{word} in {line}"))
    };
    (number("packets transmitted"), number("received"))
}

/// Port → state (`open`, `closed`, `filtered`, ...) from nmap's `-oG -` output.
pub fn nmap_states(stdout: &str) -> BTreeMap<u16, String> {
    let Some(ports) = stdout.lines().find_map(|l| l.split("Ports: ").nth(1)) else {
        return BTreeMap::new();
    };
    ports
        .split(", ")
        .filter_map(|entry| {
            let mut fields = entry.split('/');
            let port = fields.next()?.trim().parse().ok()?;
            Some((port, fields.next()?.to_string()))
        })
        .collect()
}

/// Connects from the scanner namespace to every target at once (one thread each, `timeout`
/// per connect); returns each outcome in the order of `targets`.
pub fn connect_all(
    lab: &Lab,
    targets: Vec<SocketAddr>,
    timeout: Duration,
) -> Vec<Result<(), ErrorKind>> {
    lab.in_scanner(move || {
        let threads: Vec<_> = targets
            .into_iter()
            .map(|t| {
                // Threads started here inherit the scanner namespace.
                std::thread::spawn(move || {
                    TcpStream::connect_timeout(&t, timeout)
                        .map(drop)
                        .map_err(|e| e.kind())
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("connect thread"))
            .collect()
    })
    .expect("thread in the scanner namespace")
}

#[test]
fn nmap_grepable_ports_parse() {
    let out = "Host: 198.18.1.5 ()\tPorts: 22/open/tcp//ssh///, 81/closed/tcp//hosts2-ns///, \
               84/filtered/tcp//ctf///\n";
    let states = nmap_states(out);
    assert_eq!(states[&22], "open");
    assert_eq!(states[&81], "closed");
    assert_eq!(states[&84], "filtered");
    assert_eq!(
        counts("3 packets transmitted, 2 received, 33% packet loss"),
        (3, 2)
    );
    assert_eq!(
        counts("5 packets transmitted, 5 received, +2 duplicates, 0% packet loss"),
        (5, 5)
    );
}
