//! `scan --top N --top-source SOURCE` (issue 16, item 6): the ports ranked from an nmap-services
//! file are the ports nmap itself scans for `--top-ports N` (nmap, run in the same test, is the
//! oracle), a file source ranks from that file, and a missing or wrong file is reported with
//! exit 3 (the environment) or 2 (bad input).

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::process::Command;

use netkit::scan::rank::TopSource;
use serde_json::Value;

use crate::harness::{netkit, privileged, run, skip, text, Netns};

/// Whether nmap is installed; outside CI a missing nmap skips the test, under CI it fails.
fn have_nmap(test: &str) -> bool {
    let found = Command::new("nmap").arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: CI installs nmap"
        );
        skip(test, "nmap is not installed");
    }
    found
}

/// Expands nmap's `services="21-23,25,80"` list.
fn expand(list: &str) -> BTreeSet<u16> {
    let mut ports = BTreeSet::new();
    for item in list.split(',').filter(|item| !item.is_empty()) {
        let (lo, hi) = item.split_once('-').unwrap_or((item, item));
        let (lo, hi): (u16, u16) = (lo.parse().expect("port"), hi.parse().expect("port"));
        ports.extend(lo..=hi);
    }
    ports
}

/// `nmap -sT --top-ports N -oX - 127.0.0.1` (in `ns` when given): the ports nmap scanned (its
/// scaninfo line) and those it found open.
fn nmap_top(n: usize, ns: Option<&Netns>) -> (BTreeSet<u16>, BTreeSet<u16>) {
    let top = n.to_string();
    let nmap = ["nmap", "-sT", "-Pn", "-n", "--max-retries", "0"];
    let mut cmd = match ns {
        Some(ns) => {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", &ns.name]).args(nmap);
            cmd
        }
        None => {
            let mut cmd = Command::new(nmap[0]);
            cmd.args(&nmap[1..]);
            cmd
        }
    };
    let out = cmd
        .args(["--top-ports", &top, "-oX", "-", "127.0.0.1"])
        .output()
        .expect("run nmap");
    let xml = String::from_utf8_lossy(&out.stdout);
    let services = xml
        .split(" services=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no scaninfo services in nmap's output:\n{xml}"));
    let open = xml
        .split("<port protocol=\"tcp\" portid=\"")
        .skip(1)
        .filter(|port| port.contains("state=\"open\""))
        .map(|port| {
            port.split('"')
                .next()
                .expect("portid")
                .parse()
                .expect("port")
        })
        .collect();
    (expand(services), open)
}

/// Runs `netkit --json scan ARGS` and returns (scanned, open ports), asserting exit 0.
fn netkit_scan(mut cmd: Command, args: &[&str]) -> (u64, BTreeSet<u16>) {
    let out = cmd
        .args(["--json", "scan"])
        .args(args)
        .output()
        .expect("run netkit");
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 0, "scan {args:?}\n{stdout}\n{stderr}");
    let (mut scanned, mut open) = (None, BTreeSet::new());
    for line in stdout.lines() {
        let record: Value = serde_json::from_str(line).expect("json line");
        match record["type"].as_str() {
            Some("port") if record["state"] == "open" => {
                open.insert(record["port"].as_u64().expect("port") as u16);
            }
            Some("summary") => scanned = record["scanned"].as_u64(),
            _ => {}
        }
    }
    (scanned.expect("a summary record"), open)
}

#[test]
fn ranking_from_nmap_services_is_what_nmap_top_ports_scans() {
    if !have_nmap("scan top nmap ranking") {
        return;
    }
    let ranking = TopSource::Nmap
        .load()
        .expect("read the installed nmap-services");
    for n in [10, 100, 1000, ranking.ports().len()] {
        let ours: BTreeSet<u16> = ranking
            .top(n)
            .expect("top")
            .as_slice()
            .iter()
            .copied()
            .collect();
        let (nmaps, _) = nmap_top(n, None);
        assert_eq!(ours, nmaps, "--top {n}: netkit's set vs nmap's scaninfo");
    }
}

/// In a namespace of its own, listeners on exactly nmap's top N ports: netkit's
/// `--top N --top-source nmap` scans N ports and finds every one open, as nmap does there.
#[test]
fn top_source_nmap_scans_nmaps_top_ports() {
    if !privileged("scan top-source nmap") || !have_nmap("scan top-source nmap") {
        return;
    }
    let ns = Netns::with_loopback("topsrc");
    for n in [10, 100] {
        let (wanted, _) = nmap_top(n, Some(&ns));
        let held = listen_in(&ns, &wanted);
        let top = n.to_string();
        let (scanned, open) = netkit_scan(
            ns.netkit(),
            &["127.0.0.1", "--top", &top, "--top-source", "nmap"],
        );
        let (_, nmap_open) = nmap_top(n, Some(&ns));
        assert_eq!(scanned, n as u64);
        assert_eq!(open, wanted, "--top {n}: netkit open vs nmap's top ports");
        assert_eq!(open, nmap_open, "--top {n}: netkit open vs nmap open");
        drop(held);
    }
}

/// Listeners on 127.0.0.1 at `ports`, bound inside `ns`.
fn listen_in(ns: &Netns, ports: &BTreeSet<u16>) -> Vec<TcpListener> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let file = std::fs::File::open(format!("/run/netns/{}", ns.name)).expect("netns");
                nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                ports
                    .iter()
                    .map(|port| TcpListener::bind(("127.0.0.1", *port)).expect("bind"))
                    .collect()
            })
            .join()
            .expect("namespace thread")
    })
}

/// A file source: the first N of its ranking are scanned, a listening port ranked lower is not.
#[test]
fn top_source_file_ranks_from_that_file() {
    let held: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let ports: Vec<u16> = held
        .iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("nmap-services");
    let table = format!(
        "# name port/proto frequency\nlow\t{}/tcp\t0.001\nhigh\t{}/tcp\t0.9\nudp\t{}/udp\t0.99\n\
         mid\t{}/tcp\t0.5\n",
        ports[2], ports[0], ports[2], ports[1]
    );
    std::fs::write(&file, table).expect("write");
    let path = file.to_str().expect("path");
    let (scanned, open) = netkit_scan(netkit(), &["127.0.0.1", "--top", "2", "--top-source", path]);
    assert_eq!(scanned, 2);
    assert_eq!(open, ports[..2].iter().copied().collect());
}

/// nmap-services missing where nmap keeps it (hidden under empty mounts in a private mount
/// namespace): exit 3, saying where netkit looked and what to do.
#[test]
fn top_source_nmap_without_nmap_services_exits_3() {
    if !privileged("scan top-source without nmap-services") {
        return;
    }
    let hide = "for d in /usr/share/nmap /usr/local/share/nmap; do \
                [ -d \"$d\" ] && mount -t tmpfs none \"$d\"; done; exec \"$@\"";
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", hide, "sh", env!("CARGO_BIN_EXE_netkit")])
        .args(["scan", "127.0.0.1", "--top", "10", "--top-source", "nmap"])
        .env_remove("NMAPDIR")
        .output()
        .expect("run unshare");
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 3, "{stdout}{stderr}");
    assert!(
        stderr.starts_with("netkit: --top-source nmap: no nmap-services file in ")
            && stderr.contains("/usr/share/nmap/nmap-services")
            && stderr.contains("--top-source FILE"),
        "{stderr}"
    );
}

#[test]
fn bad_sources_counts_and_unreadable_files_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let no_ratio = dir.path().join("services");
    std::fs::write(&no_ratio, "ssh\t22/tcp\nhttp\t80/tcp\twww\n").expect("write");
    let no_ratio = no_ratio.to_str().expect("path");
    let missing = "/nonexistent/nmap-services";
    for (args, code, needle) in [
        (&["--top", "1001"][..], 2, "netkit: --top 1001: "),
        (&["--top", "0"][..], 2, "netkit: --top 0: "),
        (&["--top-source", ""][..], 2, "netkit: : "),
        (&["--top-source", no_ratio][..], 2, no_ratio),
        (&["-p", "22", "--top-source", "nmap"][..], 2, "--top-source"),
        (
            &["--top-source", missing][..],
            2,
            "/nonexistent/nmap-services: cannot read",
        ),
    ] {
        let mut full = vec!["scan", "127.0.0.1"];
        full.extend_from_slice(args);
        let (got, _, stderr) = text(&run(&full));
        assert_eq!(got, code, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("netkit: ") && stderr.contains(needle),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn help_says_what_ranks_the_list() {
    let (code, stdout, _) = text(&run(&["scan", "--help"]));
    assert_eq!(code, 0);
    for needle in ["--top-source", "docs/top-ports.md", "nmap-services"] {
        assert!(stdout.contains(needle), "{needle} not in\n{stdout}");
    }
}
