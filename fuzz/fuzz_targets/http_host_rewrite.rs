//! The Host rewriter never panics, and how the bytes are split across reads never changes what
//! it sends on or whether it rejects the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netkit::forward::http::HostRewriter;

fuzz_target!(|input: (u16, &[u8])| {
    let (split, bytes) = input;
    let whole = feed(&[bytes]);
    let at = usize::from(split) % (bytes.len() + 1);
    let (head, tail) = bytes.split_at(at);
    assert_eq!(feed(&[head, tail]), whole);
});

/// Feeds the pieces in order; returns what was sent on and whether the stream was rejected.
fn feed(pieces: &[&[u8]]) -> (Vec<u8>, bool) {
    let mut rewriter = HostRewriter::new("fuzz.example:8080".to_string());
    let mut out = Vec::new();
    for piece in pieces {
        if rewriter.feed(piece, &mut out).is_err() {
            return (Vec::new(), true);
        }
    }
    (out, false)
}
