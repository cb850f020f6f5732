//! The system layer: everything that talks to the operating system below what tokio, socket2
//! and nix offer directly, in one place and one way each.
//!
//! - [`rlimit`]: the open-files limit policy ([`raise_nofile`]) and the floor every command
//!   checks before it starts ([`rlimit::ensure_min_nofile`]).
//! - [`errno`]: which errors mean "this machine is short of something right now"
//!   ([`shortage`]) and which `accept(2)` errors concern only the connection being accepted
//!   ([`aborted_connection`]), and the one retry of a send the kernel refused for a full
//!   transmit queue ([`retry_enobufs`]).
//! - [`sockopt`]: the socket options nix does not wrap yet, and `setsockopt`/`getsockopt`
//!   returning [`std::io::Error`].
//! - [`cmsg`]: `recvmsg(2)` with control messages (TTL or hop limit, kernel receive time, a
//!   queued ICMP error), decoded by nix.
//! - [`pktinfo`]: answering a UDP datagram from the address it was sent to, on a wildcard
//!   socket (`IP_PKTINFO`, `IPV6_PKTINFO`).
//! - [`splice`]: pipes and `splice(2)`, the zero-copy path of the forwarder.
//! - [`proc`]: readers of `/proc` (nothing reads `/sys` any more: interfaces come from
//!   rtnetlink).
//! - [`signal`]: the process signals the commands stop (or report) on.
//! - [`bpf`]: the classic BPF programs that keep a raw socket to the packets that can answer
//!   its probes.
//!
//! Each module has one file per operating system, chosen with `#[path]` (as boringtun's
//! `device/mod.rs` does). Linux is the only one today; elsewhere the crate does not compile,
//! with a message saying so, rather than half-working.

#[cfg(not(target_os = "linux"))]
compile_error!(
    "netkit runs on Linux only: its system layer (crates/netkit/src/sys) has no port to this \
     operating system yet"
);

#[cfg(target_os = "linux")]
#[path = "bpf_linux.rs"]
pub mod bpf;
#[cfg(target_os = "linux")]
#[path = "cmsg_linux.rs"]
pub mod cmsg;
#[cfg(target_os = "linux")]
#[path = "errno_linux.rs"]
pub mod errno;
#[cfg(target_os = "linux")]
#[path = "pktinfo_linux.rs"]
pub mod pktinfo;
#[cfg(target_os = "linux")]
#[path = "proc_linux.rs"]
pub mod proc;
#[cfg(target_os = "linux")]
#[path = "rlimit_linux.rs"]
pub mod rlimit;
#[cfg(target_os = "linux")]
#[path = "signal_linux.rs"]
pub mod signal;
#[cfg(target_os = "linux")]
#[path = "sockopt_linux.rs"]
pub mod sockopt;
#[cfg(target_os = "linux")]
#[path = "splice_linux.rs"]
pub mod splice;

pub use errno::{aborted_connection, retry_enobufs, shortage, Shortage};
pub use rlimit::raise_nofile;
pub use signal::{Signal, Signals};
