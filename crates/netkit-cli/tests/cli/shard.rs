//! `--shard K/N`, `--seed`, `--randomize` on `sweep` and `scan` (issue 16): the shards of one
//! run are disjoint and their union is the unsharded answer, host by host.

use std::collections::BTreeMap;
use std::net::{IpAddr, TcpListener};

use serde_json::Value;

use crate::harness::{privileged, run, text, Netns};
use crate::ping_net::iptables;
use crate::scan::parse_scan;

/// addr → alive, from a sweep's JSON Lines, failing on a target reported twice.
fn hosts(stdout: &str) -> BTreeMap<IpAddr, bool> {
    let mut seen = BTreeMap::new();
    for line in stdout.lines() {
        let value: Value = serde_json::from_str(line).expect("json line");
        if value["type"] != "host" {
            continue;
        }
        let addr: IpAddr = value["addr"].as_str().expect("addr").parse().expect("ip");
        let alive = value["alive"].as_bool().expect("alive");
        assert!(
            seen.insert(addr, alive).is_none(),
            "{addr} twice in\n{stdout}"
        );
    }
    seen
}

#[test]
fn sweep_shards_are_disjoint_and_add_up_to_the_whole_sweep() {
    if !privileged("sweep shards") {
        return;
    }
    // Every 127/8 address answers inside the namespace but the eight echo requests dropped.
    let ns = Netns::with_loopback("shardsw");
    iptables(
        &ns,
        &[
            "-A",
            "INPUT",
            "-d",
            "127.0.0.8/29",
            "-p",
            "icmp",
            "-j",
            "DROP",
        ],
    );
    let sweep = |extra: &[&str]| {
        let mut cmd = ns.netkit();
        cmd.args(["--json", "sweep", "127.0.0.0/27", "--retries", "2"])
            .args(extra);
        let (_, out, err) = text(&cmd.output().expect("run"));
        assert!(err.is_empty() || !err.contains("panicked"), "{err}");
        hosts(&out)
    };
    let whole = sweep(&[]);
    assert_eq!(whole.len(), 32);
    assert_eq!(
        whole.values().filter(|alive| !**alive).count(),
        8,
        "{whole:?}"
    );
    for seed in [None, Some("7")] {
        let mut union = BTreeMap::new();
        for k in 1..=3 {
            let shard = format!("{k}/3");
            let mut args = vec!["--shard", shard.as_str()];
            if let Some(seed) = seed {
                args.extend(["--seed", seed]);
            }
            let part = sweep(&args);
            assert!((10..=11).contains(&part.len()), "{shard}: {part:?}");
            for (addr, alive) in part {
                assert!(union.insert(addr, alive).is_none(), "{addr} in two shards");
            }
        }
        assert_eq!(union, whole, "seed {seed:?}");
    }
    // A shuffled whole run finds the same hosts.
    assert_eq!(sweep(&["--randomize"]), whole);
}

#[test]
fn scan_shards_split_the_hosts_and_add_up_to_the_whole_scan() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port().to_string();
    let scan = |extra: &[&str]| {
        let mut args = vec!["--json", "scan", "127.0.0.1-8", "-p", port.as_str()];
        args.extend_from_slice(extra);
        let (code, out, err) = text(&run(&args));
        assert_eq!(code, 0, "{out}{err}");
        parse_scan(&out)
    };
    let whole = scan(&[]);
    assert_eq!((whole.summary.hosts, whole.summary.open), (8, 1));
    let (mut hosts, mut open, mut closed) = (0, Vec::new(), 0);
    for k in 1..=4 {
        let shard = format!("{k}/4");
        let part = scan(&["--shard", &shard, "--seed", "11"]);
        assert_eq!(part.summary.hosts, 2, "{shard}");
        hosts += part.summary.hosts;
        closed += part.summary.closed;
        open.extend(part.found());
    }
    assert_eq!((hosts, closed), (8, 7));
    assert_eq!(open, whole.found().into_iter().collect::<Vec<_>>());
}

/// Fewer targets than shards: the shards split the ports, so that every shard has work; each
/// scans the one host on a share of the ports, the shares disjoint and together the whole.
#[test]
fn scan_shards_of_one_host_split_its_ports() {
    let listeners: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let open: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().expect("addr").port().to_string())
        .collect();
    let ports = format!("1-2000,{}", open.join(","));
    let scan = |extra: &[&str]| {
        let mut args = vec!["--json", "scan", "127.0.0.1", "-p", ports.as_str()];
        args.extend_from_slice(extra);
        let (code, out, err) = text(&run(&args));
        assert_eq!(code, 0, "{out}{err}");
        parse_scan(&out)
    };
    let whole = scan(&[]);
    assert_eq!(whole.summary.open, 3, "{:?}", whole.summary);
    for extra in [&["--seed", "5"][..], &[][..]] {
        let (mut scanned, mut found) = (Vec::new(), Vec::new());
        for k in 1..=3 {
            let shard = format!("{k}/3");
            let mut args = vec!["--shard", shard.as_str()];
            args.extend_from_slice(extra);
            let part = scan(&args);
            assert_eq!(part.summary.hosts, 1, "{shard}: every shard scans the host");
            scanned.push(part.summary.scanned);
            found.extend(part.found());
        }
        let total: u64 = scanned.iter().sum();
        assert_eq!(total, whole.summary.scanned, "{extra:?}: {scanned:?}");
        assert!(
            scanned.iter().all(|&n| n * 3 + 3 >= total),
            "{extra:?}: even shares {scanned:?}"
        );
        found.sort();
        assert_eq!(
            found,
            whole.found().into_iter().collect::<Vec<_>>(),
            "{extra:?}"
        );
    }
}

#[test]
fn shuffled_shards_without_a_seed_are_refused() {
    let (code, _, err) = text(&run(&[
        "sweep",
        "127.0.0.1",
        "--shard",
        "1/2",
        "--randomize",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("netkit: --shard 1/2 --randomize: "),
        "{err}"
    );
    assert!(err.contains("--seed"), "{err}");
}

/// The `args:` list of the Kubernetes example, quotes removed.
fn job_args() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/kubernetes/sweep-indexed-job.yaml"
    );
    let yaml = std::fs::read_to_string(path).expect("the example");
    let mut lines = yaml.lines().skip_while(|l| l.trim() != "args:").skip(1);
    let mut args = Vec::new();
    for line in lines.by_ref() {
        let Some(item) = line.trim().strip_prefix("- ") else {
            break;
        };
        args.push(item.trim_matches('"').to_string());
    }
    args
}

#[test]
fn the_kubernetes_indexed_job_example_runs_disjoint_shards_that_cover_the_targets() {
    if !privileged("kubernetes example shards") {
        return;
    }
    let args = job_args();
    assert!(args.contains(&"job/8".to_string()), "{args:?}");
    // Its placeholder network becomes loopback: a test never sends to a test network from
    // the host's namespace.
    let args: Vec<String> = args
        .into_iter()
        .map(|a| {
            if a == "198.18.0.0/16" {
                "127.0.0.0/29".into()
            } else {
                a
            }
        })
        .collect();
    assert!(!args.iter().any(|a| a.starts_with("198.18.")), "{args:?}");
    let ns = Netns::with_loopback("shardk8s");
    let mut union = BTreeMap::new();
    for index in 0..8 {
        let mut cmd = ns.netkit();
        cmd.args(&args)
            .env("JOB_COMPLETION_INDEX", index.to_string());
        let (code, out, err) = text(&cmd.output().expect("run"));
        assert_eq!(code, 0, "pod {index}: {out}{err}");
        for (addr, alive) in hosts(&out) {
            assert!(union.insert(addr, alive).is_none(), "{addr} in two pods");
        }
    }
    assert_eq!(union.len(), 8);
    assert!(union.values().all(|alive| *alive), "{union:?}");
}
