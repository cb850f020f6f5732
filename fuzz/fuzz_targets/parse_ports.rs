//! Port sets never panic, never hold port 0 and never hold a port twice.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netkit::PortSet;

fuzz_target!(|text: &str| {
    let Ok(set) = text.parse::<PortSet>() else { return };
    let ports = set.as_slice();
    assert!(!ports.is_empty() && !ports.contains(&0));
    let mut seen = std::collections::HashSet::new();
    assert!(ports.iter().all(|p| seen.insert(*p)));
});
