//! Endpoints never panic, and every TCP or Unix endpoint survives a Display round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netkit::Endpoint;

fuzz_target!(|text: &str| {
    let _ = Endpoint::parse_listen(text);
    let Ok(endpoint) = text.parse::<Endpoint>() else { return };
    if !matches!(endpoint, Endpoint::Exec(_)) {
        let again: Endpoint = endpoint.to_string().parse().expect("display parses back");
        assert_eq!(again, endpoint);
    }
});
