//! Port sets never panic, never hold port 0 and never hold a port twice.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netkit::PortSet;

fuzz_target!(|text: &str| {
    let Ok(set) = text.parse::<PortSet>() else { return };
    let ports = set.as_slice();
    assert!(!ports.is_empty() && !ports.contains(&0));
    // Flags, not a HashSet: `all` or `1-` gives 65535 ports, and hashing each of them under
    // the fuzzer's instrumentation cost ~25 ms per such input.
    let mut seen = vec![false; 1 << 16];
    assert!(ports
        .iter()
        .all(|p| !std::mem::replace(&mut seen[usize::from(*p)], true)));
});
