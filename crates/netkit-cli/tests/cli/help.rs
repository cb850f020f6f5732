//! Every command has help with examples; help and version go to stdout with status 0.

use crate::harness::{run, text};

#[test]
fn every_subcommand_has_examples() {
    for command in [
        "forward", "ping", "sweep", "scan", "wait", "iface", "echo", "send",
    ] {
        let (code, stdout, stderr) = text(&run(&[command, "--help"]));
        assert_eq!(code, 0, "{command}: {stderr}");
        assert!(
            stdout.contains("Examples:"),
            "{command} --help has no examples:\n{stdout}"
        );
        assert!(
            stdout.contains(&format!("netkit {command}")),
            "{command}:\n{stdout}"
        );
    }
}

#[test]
fn top_level_help_lists_commands_and_exit_codes() {
    let (code, stdout, _) = text(&run(&["--help"]));
    assert_eq!(code, 0);
    for word in [
        "forward",
        "ping",
        "sweep",
        "scan",
        "wait",
        "iface",
        "echo",
        "send",
        "Exit status",
    ] {
        assert!(stdout.contains(word), "missing {word}:\n{stdout}");
    }
}

#[test]
fn version_prints_the_crate_version() {
    let (code, stdout, _) = text(&run(&["--version"]));
    assert_eq!(code, 0);
    assert_eq!(
        stdout.trim(),
        format!("netkit {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn json_flag_is_accepted_before_or_after_the_subcommand() {
    // `iface addr`, not `iface show`: lo's packet counters move between the two runs.
    let before = text(&run(&["--json", "iface", "addr", "lo"]));
    let after = text(&run(&["iface", "addr", "lo", "--json"]));
    assert_eq!(before.0, 0, "{}", before.2);
    assert_eq!(before.1, after.1);
    assert!(before.1.starts_with('{'));
}
