//! Durations never panic and never exceed the documented maximum.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(d) = netkit::parse_duration(text) {
        assert!(d <= netkit::duration::MAX_DURATION);
    }
});
