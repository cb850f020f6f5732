//! Target expressions never panic, and a parsed list's length matches what it yields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netkit::target::TargetExpr;
use netkit::{Family, TargetList};

fuzz_target!(|text: &str| {
    let Ok(list) = TargetList::parse(&[text], true) else { return };
    let len = list.len();
    assert!(len >= 1);
    // Names would need DNS: only walk lists made of addresses and ranges.
    if list.exprs().iter().any(|e| matches!(e, TargetExpr::Name(_))) {
        return;
    }
    let targets = list.resolve(Family::Any).expect("addresses and ranges always resolve");
    assert_eq!(targets.len(), len);
    if len <= 4096 {
        assert_eq!(targets.iter().count() as u128, len);
    }
});
