//! JSON Lines output: every line one flat object with a `type`, deserializable into the
//! documented record types.

use netkit::report::iface::Interface;

use crate::harness::{run, text};

#[test]
fn iface_records_deserialize_into_the_documented_type() {
    let (code, stdout, stderr) = text(&run(&["--json", "iface"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.is_empty());
    for line in stdout.lines() {
        let value: serde_json::Value = serde_json::from_str(line).expect(line);
        assert_eq!(value["type"], "iface", "{line}");
        for field in [
            "name",
            "index",
            "up",
            "running",
            "flags",
            "mtu",
            "mac",
            "operstate",
            "addrs",
        ] {
            assert!(value.get(field).is_some(), "{field} missing in {line}");
        }
        let iface: Interface = serde_json::from_value(value).expect("Interface");
        assert!(!iface.name.is_empty());
    }
}

#[test]
fn loopback_reports_its_addresses() {
    let (code, stdout, _) = text(&run(&["--json", "iface", "show", "lo"]));
    assert_eq!(code, 0);
    let lo: Interface = serde_json::from_str(stdout.trim()).expect("one object");
    assert!(lo.flags.iter().any(|f| f == "LOOPBACK"));
    if lo.up {
        assert!(lo
            .addrs
            .iter()
            .any(|a| a.addr.to_string() == "127.0.0.1" && a.prefix == 8));
        assert!(lo
            .addrs
            .iter()
            .any(|a| a.addr.to_string() == "::1" && a.prefix == 128));
    }
}
