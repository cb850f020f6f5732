//! Regressions of `netkit wait`.

use crate::harness::{netkit, text};
use crate::wait_util::Reserved;

/// The timeout message said only "timed out waiting for X after N s", never why the target was
/// not ready.
#[test]
fn timeout_message_lacked_the_reason() {
    let port = Reserved::v4();
    let out = netkit()
        .args(["wait", &port.endpoint(), "--timeout", "400ms"])
        .args(["--interval", "50ms"])
        .output()
        .expect("run");
    let (code, _, stderr) = text(&out);
    assert_eq!(code, 1, "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("timed out waiting for"))
        .unwrap_or_else(|| panic!("no timeout line in {stderr}"));
    assert!(line.ends_with(": connection refused"), "{line}");
}

/// The JSON `timeout` record had no `reason` field.
#[test]
fn timeout_record_lacked_the_reason() {
    let port = Reserved::on("::1");
    let out = netkit()
        .args(["--json", "wait", &port.endpoint(), "--timeout", "400ms"])
        .output()
        .expect("run");
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 1, "{stderr}");
    let record: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one record");
    assert_eq!(record["type"], "timeout");
    assert_eq!(record["reason"], "connection refused", "{stdout}");
}
