//! The shipped rules file, examples/forward.toml: netkit starts with it as it is (in a
//! network namespace of its own, where its ports are free), and it and docs/forward-config.md
//! cover every key the config parser knows.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::PathBuf;

use crate::forward_util::Forwarder;
use crate::harness::{privileged, Netns};

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_file(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The keys of a rule, as the parser declares them (`struct RuleSpec` in config.rs).
fn parser_keys() -> Vec<String> {
    let source = read("crates/netkit/src/forward/config.rs");
    let body = source
        .split("struct RuleSpec {")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .expect("struct RuleSpec in config.rs");
    let keys: Vec<String> = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with("//"))
        .filter_map(|l| l.split_once(':').map(|(key, _)| key.to_string()))
        .collect();
    assert!(keys.len() >= 2, "no keys found in {body}");
    keys
}

#[test]
fn example_and_docs_cover_every_config_key() {
    let example = read("examples/forward.toml");
    let docs = read("docs/forward-config.md");
    for key in parser_keys() {
        assert!(
            example.lines().any(|l| l.starts_with(&format!("{key} = "))),
            "examples/forward.toml does not show {key}"
        );
        assert!(
            docs.contains(&format!("### `{key}`")),
            "docs/forward-config.md does not document {key}"
        );
    }
}

#[test]
fn forward_starts_with_the_example_config_and_stops_on_sigterm() {
    if !privileged("forward_starts_with_the_example_config") {
        return;
    }
    let ns = Netns::with_loopback("fwconf");
    let example = read("examples/forward.toml");
    let rules = example.lines().filter(|l| l.trim() == "[[rule]]").count();
    let mut cmd = ns.netkit();
    cmd.args(["forward", "--config"])
        .arg(repo_file("examples/forward.toml"));
    let mut fw = Forwarder::spawn(cmd, rules);
    assert_eq!(
        fw.listens,
        ["[::]:8080", "[::1]:5432", "unix:@netkit-api", "[::]:8443"],
        "{:?}",
        fw.stderr.all()
    );
    fw.signal("TERM");
    assert_eq!(fw.wait(), 0, "still running after SIGTERM, or failed");
}
