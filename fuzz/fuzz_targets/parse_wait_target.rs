//! `netkit wait` targets and `--status` lists never panic; every target but a URL (kept as
//! given) and every status list survive a Display round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netkit::wait::{StatusSet, Target};

fuzz_target!(|text: &str| {
    if let Ok(set) = text.parse::<StatusSet>() {
        let again: StatusSet = set.to_string().parse().expect("display parses back");
        assert_eq!(again, set);
    }
    let Ok(target) = text.parse::<Target>() else { return };
    let again: Target = target.to_string().parse().expect("display parses back");
    assert_eq!(again, target);
});
