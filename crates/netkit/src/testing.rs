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

/// A loopback TCP address where connects are refused, and stay refused while the returned
/// socket lives: it is bound there without listening, so the kernel answers a SYN with a reset
/// and no other test's listener can take the port (binding port 0, dropping the listener and
/// connecting later races with every test that binds port 0 meanwhile).
pub fn refused_addr() -> (socket2::Socket, std::net::SocketAddr) {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    socket.bind(&any.into()).expect("bind 127.0.0.1:0");
    let addr = socket.local_addr().expect("local address");
    (socket, addr.as_socket().expect("an inet address"))
}
