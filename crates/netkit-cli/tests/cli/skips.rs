//! Skipped tests are visible and counted: run as an unprivileged user, a privileged test says
//! `skipped: needs root` although the harness captures the output of passing tests, and the
//! test binary ends with the number of tests it skipped.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::harness::{privileged, text};

/// A privileged test that returns at once without root.
const PROBE: &str = "forward_config::forward_starts_with_the_example_config_and_stops_on_sigterm";

#[test]
fn skips_are_reported_past_the_capture_and_counted() {
    if !privileged("skips_are_reported_past_the_capture_and_counted") {
        return;
    }
    // A copy of this test binary where user nobody may run it, whatever the checkout's modes.
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("cli-tests");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(&exe)
        .args(["--exact", PROBE, "--test-threads", "1"])
        .current_dir(dir.path())
        .env_remove("CI")
        .output()
        .unwrap();
    let (code, stdout, stderr) = text(&output);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}");
    assert!(
        stderr.contains("forward_starts_with_the_example_config: skipped: needs root\n"),
        "{stderr}"
    );
    assert!(
        stderr.trim_end().ends_with("netkit tests: 1 skipped"),
        "no count at the end:\n{stderr}"
    );
}
