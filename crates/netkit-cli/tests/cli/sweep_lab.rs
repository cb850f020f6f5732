//! `netkit sweep` on the impaired-link lab (see `lab.rs`): lossy and delayed links, an
//! ICMP-policed far side, hosts that drop echo, IPv6 and unroutable prefixes. Each test checks
//! netkit against the lab's ground truth and, where fping can see the hosts, against fping run
//! in the same lab in the same test: netkit must find every live host fping finds, and report
//! nothing alive that is not. The helpers here are shared with `regression/sweep.rs`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use netkit::report::sweep::{ChangeRecord, HostRecord, SummaryRecord, ThrottleRecord};
use serde_json::Value;

use crate::harness::{privileged, text};
use crate::lab::{ms, IcmpLimits, Lab, LabBuilder, LabExt, Unroutable};

/// `count` distinct addresses `PREFIX.N` with N in 1..=254, chosen by a seeded xorshift so a
/// range holds only some live hosts; sorted.
pub fn pick(prefix: &str, count: usize, seed: u64) -> Vec<String> {
    let mut state = seed.max(1);
    let mut chosen = BTreeSet::new();
    while chosen.len() < count.min(254) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chosen.insert(1 + state % 254);
    }
    let sep = if prefix.contains(':') { "" } else { "." };
    chosen
        .into_iter()
        .map(|n| match sep {
            "" => format!("{prefix}{n:x}"),
            _ => format!("{prefix}{sep}{n}"),
        })
        .collect()
}

/// A lab whose far link delays 15±5 ms and loses `loss` each way (RTT 30±10 ms), holding
/// `hosts` as single live hosts.
pub fn lossy(tag: &str, loss: f64, seed: u64, hosts: &[String]) -> LabBuilder {
    hosts.iter().fold(
        Lab::builder(tag)
            .delay(ms(15))
            .jitter(ms(5))
            .loss(loss)
            .seed(seed),
        |b, h| b.host(h),
    )
}

/// What one `netkit --json sweep` run said.
pub struct Run {
    /// Exit code, stdout and stderr.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Every record, parsed.
    pub records: Vec<Value>,
}

impl Run {
    /// The host records.
    pub fn hosts(&self) -> Vec<HostRecord> {
        of_type(&self.records, "host")
    }

    /// The addresses reported alive in `round`.
    pub fn alive(&self, round: u64) -> BTreeSet<IpAddr> {
        self.hosts()
            .iter()
            .filter(|h| h.alive && h.round == round)
            .map(|h| h.addr)
            .collect()
    }

    /// The change records.
    pub fn changes(&self) -> Vec<ChangeRecord> {
        of_type(&self.records, "change")
    }

    /// The summary records, one per round.
    pub fn summaries(&self) -> Vec<SummaryRecord> {
        of_type(&self.records, "summary")
    }

    /// The throttle records.
    pub fn throttles(&self) -> Vec<ThrottleRecord> {
        of_type(&self.records, "throttle")
    }
}

/// Runs `netkit --json sweep ARGS` in the lab's scanner namespace.
pub fn netkit_sweep(lab: &Lab, args: &[&str]) -> Run {
    let out = lab
        .netkit()
        .args(["--json", "sweep"])
        .args(args)
        .output()
        .expect("run netkit");
    let (code, stdout, stderr) = text(&out);
    let records = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    Run {
        code,
        stdout,
        stderr,
        records,
    }
}

fn of_type<T: serde::de::DeserializeOwned>(records: &[Value], kind: &str) -> Vec<T> {
    records
        .iter()
        .filter(|r| r["type"] == kind)
        .map(|r| serde_json::from_value(r.clone()).unwrap_or_else(|e| panic!("{e}: {r}")))
        .collect()
}

/// The hosts `fping -a -q ARGS` (its default retries unless ARGS say otherwise) finds alive,
/// run in the lab's scanner namespace.
pub fn fping_alive(lab: &Lab, args: &[&str]) -> BTreeSet<IpAddr> {
    let out = lab
        .scanner_cmd("fping")
        .args(["-a", "-q"])
        .args(args)
        .output()
        .expect("run fping");
    let (code, stdout, stderr) = text(&out);
    assert!(code == 0 || code == 1, "fping {args:?}: {code}\n{stderr}");
    stdout
        .lines()
        .map(|l| {
            l.trim()
                .parse()
                .unwrap_or_else(|_| panic!("fping line {l}"))
        })
        .collect()
}

/// Every address of a target expression (`198.18.1.0/24`, `198.18.1.0-198.18.2.63`).
pub fn expand(range: &str) -> Vec<IpAddr> {
    let list = netkit::TargetList::parse(&[range], false).expect("range");
    let targets = list.resolve(netkit::Family::Any).expect("resolve");
    targets.iter().map(|t| t.addr).collect()
}

/// The addresses of `range` that the lab says answer ICMP echo.
pub fn pingable(lab: &Lab, range: &str) -> BTreeSet<IpAddr> {
    lab.truth().pingable(expand(range)).into_iter().collect()
}

/// Asserts that netkit found exactly `truth`, and everything fping found.
pub fn assert_exact(
    what: &str,
    netkit: &BTreeSet<IpAddr>,
    truth: &BTreeSet<IpAddr>,
    fping: &BTreeSet<IpAddr>,
) {
    let missed = few(truth.difference(netkit));
    let false_alive = few(netkit.difference(truth));
    let fping_only = few(fping.difference(netkit));
    assert!(
        missed.is_empty() && false_alive.is_empty() && fping_only.is_empty(),
        "{what}: netkit found {} of {} live hosts (fping {}); missed {missed}, false alive \
         {false_alive}, found by fping only {fping_only}",
        netkit.len(),
        truth.len(),
        fping.len(),
    );
}

/// At most ten addresses and how many there are in all, for assertion messages.
fn few<'a>(addrs: impl Iterator<Item = &'a IpAddr>) -> String {
    let all: Vec<_> = addrs.collect();
    match all.len() {
        0 => String::new(),
        n if n <= 10 => format!("{all:?}"),
        n => format!("{n}: {:?}...", &all[..10]),
    }
}

#[test]
fn v6_sweep_is_exact_at_10_percent_loss() {
    if !privileged("v6_sweep_is_exact_at_10_percent_loss") {
        return;
    }
    let hosts = pick("2001:db8:1::", 60, 29);
    let lab = lossy("swv6", 0.10, 31, &hosts).build().expect("lab");
    let range = "2001:db8:1::/120";
    let mut args = vec!["-6"];
    args.extend(hosts.iter().map(String::as_str));
    args.push("2001:db8:1::ff");
    let fping = fping_alive(&lab, &args);
    let run = netkit_sweep(&lab, &[range]);
    assert_eq!(run.code, 1, "silent targets: {}", run.stderr);
    assert_exact("v6", &run.alive(1), &pingable(&lab, range), &fping);
}

#[test]
fn tcp_finds_hosts_that_drop_echo_on_a_lossy_link() {
    if !privileged("tcp_finds_hosts_that_drop_echo_on_a_lossy_link") {
        return;
    }
    let v4 = pick("198.18.1", 40, 41);
    let v6 = pick("2001:db8:1::", 20, 43);
    let lab = v4
        .iter()
        .chain(&v6)
        .enumerate()
        .fold(lossy("swtcp", 0.10, 47, &[]), |b, (i, h)| {
            // Half the hosts listen on the port, the others refuse it: both are alive.
            let b = b.no_echo(h);
            match i % 2 {
                0 => b.open(h, &[22]),
                _ => b.host(h),
            }
        })
        .build()
        .expect("lab");
    let ranges = ["198.18.1.0/24", "2001:db8:1::/120"];
    let truth: BTreeSet<IpAddr> = ranges
        .iter()
        .flat_map(|r| expand(r))
        .filter(|a| lab.truth().is_host(*a))
        .collect();
    assert_eq!(truth.len(), 60);
    let fping = fping_alive(&lab, &["-g", "198.18.1.0/24"]);
    assert!(fping.is_empty(), "the hosts drop echo: {fping:?}");
    let run = netkit_sweep(&lab, &["--method", "tcp:22", ranges[0], ranges[1]]);
    assert_exact("tcp:22", &run.alive(1), &truth, &fping);
}

/// A lab with two live hosts (198.18.1.1, 2001:db8:1::1) and the unroutable prefixes of
/// [`UNREACHABLE`], without ICMP rate limits.
fn unroutable_lab(tag: &str) -> Lab {
    Lab::builder(tag)
        .delay(ms(5))
        .host("198.18.1.1")
        .host("2001:db8:1::1")
        .unroutable("198.18.5.0/24", Unroutable::Local)
        .unroutable("198.18.6.0/24", Unroutable::Net)
        .unroutable("198.18.7.0/24", Unroutable::Host)
        .unroutable("198.18.8.0/24", Unroutable::Prohibited)
        .unroutable("2001:db8:5::/64", Unroutable::Local)
        .unroutable("2001:db8:6::/64", Unroutable::Net)
        .icmp_limits(IcmpLimits::Off)
        .build()
        .expect("lab")
}

/// A target in each unroutable prefix of [`unroutable_lab`] and what a sweep says of it.
const UNREACHABLE: [(&str, &str); 6] = [
    ("198.18.5.1", "Network is unreachable"),
    (
        "198.18.6.1",
        "Destination Net Unreachable from 198.19.254.1",
    ),
    (
        "198.18.7.1",
        "Destination Host Unreachable from 198.19.254.1",
    ),
    ("198.18.8.1", "Packet filtered from 198.19.254.1"),
    ("2001:db8:5::1", "Network is unreachable"),
    (
        "2001:db8:6::1",
        "Destination unreachable: No route from 2001:db8:ffff::1",
    ),
];

/// The TCP method names an unreachable target as the echo method does: the ICMP error read
/// from the probe's error queue and the router that sent it, or this machine's errno.
#[test]
fn tcp_names_unreachable_targets_as_the_echo_method_does() {
    if !privileged("tcp_names_unreachable_targets_as_the_echo_method_does") {
        return;
    }
    let lab = unroutable_lab("swtcproute");
    let mut targets = vec!["198.18.1.1", "2001:db8:1::1"];
    targets.extend(UNREACHABLE.iter().map(|(t, _)| *t));
    let mut args = vec!["--method", "tcp:22"];
    args.extend(&targets);
    let run = netkit_sweep(&lab, &args);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let hosts = run.hosts();
    for (target, why) in UNREACHABLE {
        let host = hosts
            .iter()
            .find(|h| h.addr.to_string() == target)
            .unwrap_or_else(|| panic!("no record for {target}: {}", run.stdout));
        assert!(!host.alive, "{target}");
        assert_eq!(host.error.as_deref(), Some(why), "{target}");
    }
    let summary = &run.summaries()[0];
    assert_eq!(
        (summary.alive, summary.dead, summary.unreachable),
        (2, 0, 6)
    );
}

#[test]
fn unroutable_targets_are_errors_naming_them() {
    if !privileged("unroutable_targets_are_errors_naming_them") {
        return;
    }
    let lab = unroutable_lab("swroute");
    let unreachable = UNREACHABLE;
    let mut targets = vec!["198.18.1.1", "198.18.1.2", "2001:db8:1::1"];
    targets.extend(unreachable.iter().map(|(t, _)| *t));
    let run = netkit_sweep(&lab, &targets);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let hosts = run.hosts();
    for (target, why) in unreachable {
        let host = hosts
            .iter()
            .find(|h| h.addr.to_string() == target)
            .unwrap_or_else(|| panic!("no record for {target}: {}", run.stdout));
        assert!(!host.alive, "{target}");
        assert_eq!(host.error.as_deref(), Some(why), "{target}");
    }
    let silent = hosts.iter().find(|h| h.addr.to_string() == "198.18.1.2");
    assert_eq!(
        silent.map(|h| (h.alive, h.error.is_none())),
        Some((false, true))
    );
    let summary = &run.summaries()[0];
    assert_eq!(
        (summary.alive, summary.dead, summary.unreachable),
        (2, 1, 6)
    );
    // The human output names each target on stderr, as fping does. (Only targets whose errors
    // the router's kernel does not rate-limit again: its errors for unreachable routes come
    // from a token bucket of 5, then 1/s, that no sysctl of the namespace turns off.)
    let human = ["198.18.1.1", "198.18.5.1", "2001:db8:5::1", "2001:db8:6::1"];
    let out = lab
        .netkit()
        .arg("sweep")
        .args(human)
        .output()
        .expect("netkit");
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 1);
    for (target, why) in unreachable.iter().filter(|(t, _)| human.contains(t)) {
        let line = format!("netkit: {target}: {why}");
        assert!(
            stderr.lines().any(|l| l == line),
            "{line}\n{stdout}{stderr}"
        );
    }
    let total = "Total 0 hosts are inactive, 3 unreachable";
    assert!(stdout.lines().any(|l| l == total), "{stdout}");
}
