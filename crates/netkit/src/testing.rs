//! Helpers of the library's own tests.

use std::io::Write;

/// Marks `test` as skipped here for want of privilege (root, CAP_NET_RAW, a
/// `net.ipv4.ping_group_range` that admits the user): writes `TEST: skipped: WHY` straight to
/// stderr (past the test harness's capture) so that `cargo test` passes for any user, but fails
/// under `CI=true`, where the tests run as root and a skip would hide a regression (as the CLI
/// harness's `privileged` and `skip` do).
pub fn skip(test: &str, why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: {why}; CI must run it (as root)"
    );
    let _ = writeln!(std::io::stderr(), "{test}: skipped: {why}");
}
