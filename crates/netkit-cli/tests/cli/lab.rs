//! The impaired-link lab for integration tests — the API reference for test writers.
//!
//! A lab is three network namespaces: **scanner** (where `netkit` and the peer tools run),
//! **router** (forwards IPv4 and IPv6, and impairs) and **far** (holds the hosts and their
//! behaviours). It is the crate `netkit-lab`, re-exported here, plus [`LabExt`] for running
//! the `netkit` under test. Every lab needs root: call `harness::privileged(name)` first.
//! Dropping the [`Lab`] stops its threads and deletes its namespaces (also on panic).
//!
//! ```ignore
//! use crate::harness::privileged;
//! use crate::lab::{ms, Lab, LabExt, Reject, PortTruth};
//!
//! if !privileged("scan_is_exact_on_a_lossy_link") { return; }
//! let lab = Lab::builder("scanloss")          // tag: part of the namespace names
//!     .delay(ms(15)).jitter(ms(5))            // far link, each direction: RTT 30±10 ms
//!     .loss(0.02).seed(7)                     // 2% per direction, seeded
//!     .hosts("198.18.1.0/28")                 // every address of the block is a live host
//!     .open("198.18.1.5", &[22, 80])          // real listeners (accept, close)
//!     .drop_ports("198.18.1.5", 1000..=1099)  // filtered
//!     .reject("198.18.1.5", &[25], Reject::AdminProhibited)
//!     .build()
//!     .expect("lab");
//! let out = lab.netkit().args(["--json", "scan", "198.18.1.5", "-p", "1-1100"]).output().unwrap();
//! assert_eq!(lab.truth().port("198.18.1.5".parse().unwrap(), 22), PortTruth::Open);
//! let nmap = lab.scanner_cmd("nmap").args(["-sS", "-n", "-Pn", "198.18.1.5"]).output();
//! ```
//!
//! # Addresses
//! - Far hosts live in 198.18.0.0/15 and 2001:db8::/32 outside the lab's own links
//!   (198.19.254.0/24, 2001:db8:ffff::/48; the builder refuses anything else).
//!   `.hosts(BLOCK)`: every address of the block is a host (AnyIP route in the far
//!   namespace). `.host(ADDR)`: only the addresses named exist (sweep tests with some live
//!   hosts in a range). Addresses that are no host are silent: nothing answers them.
//! - The scanner's sources are [`SCANNER_V4`] (198.19.254.2) and [`SCANNER_V6`]
//!   (2001:db8:ffff::2); it routes only the test ranges, through the router. Nothing leaves
//!   the lab: no namespace has a link or route to the host's namespace.
//!
//! # Impairments ([`LabBuilder`])
//! `.delay/.jitter/.loss/.dup/.reorder/.rate("2mbit")` set the *far link in both directions*;
//! a round trip crosses them twice (`delay(ms(15))` ⇒ RTT ≥ 30 ms; `loss(0.02)` ⇒ ≈4% of
//! echo round trips lost). `.impair(Link::Near|Far, Direction::ToFar|ToScanner,
//! Impairment::none().delay(..).loss(..))` sets one link and direction. Semantics are netem's:
//! jitter is uniform `delay ± jitter` (so it reorders too), a *reordered* packet skips the delay
//! (needs a delay), a duplicate is delayed on its own, `rate` is a `tc tbf` on the link's
//! egress (queue of [`TBF_LATENCY_MS`] ms). The kernel here has no `sch_netem`, so the user-space
//! relay (NFQUEUE in the router, real-time priority) does delay/jitter/loss/dup/reorder,
//! seeded by `.seed(N)`, about 0.1 ms late on average; `lab.relay_stats()` counts what it did
//! (`lost`, `duplicated`, `reordered`, and `overflowed`/`kernel_drops`/`errors`, which should
//! stay 0). `.backend(Backend::Relay)` forces the relay where netem exists;
//! `.realtime(false)` runs it at normal priority (less CPU, less punctual under load).
//!
//! # Far-side behaviours
//! | builder | what the far side does |
//! |---|---|
//! | `.open(addr, ports)` / `.open_echo(..)` | real listeners: accept and close / echo |
//! | `.open_all(ports)` | every far host (v4, v6) has these ports open (wildcard listeners) |
//! | (nothing) | closed: the far kernel answers RST |
//! | `.drop_ports(target, ports)` | DROP (filtered); `Ports::all()` for a whole host |
//! | `.reject(target, ports, Reject::PortUnreachable / AdminProhibited / HostUnreachable / TcpReset)` | REJECT with that ICMP(v6) error or a reset |
//! | `.no_echo(target)` | drops ICMP echo requests (ports still answer) |
//! | `.icmp_limits(IcmpLimits::Off)` | no ICMP rate limits in the far and router kernels (default: the kernel's, 1/s per peer, burst 6) |
//! | `.syn_limit(n)` | drops TCP SYNs above n/s per source (hashlimit, burst n/10) |
//! | `.icmp_police(n)` | drops ICMP echo requests above n/s (hashlimit, burst n/10) |
//! | `.unroutable(prefix, Unroutable::Local / Net / Host / Prohibited)` | scanner has no route (ENETUNREACH) / router answers net unreachable / host unreachable / admin prohibited |
//!
//! The router's IPv4 no-route errors are limited host-wide (5 at once, then 1/s per source);
//! tests of ICMP errors should use a delay of a few ms (an error that arrives within
//! microseconds can hit the connecting socket while it is locked: docs/lab.md "Limits").
//!
//! Targets are an address or a prefix (`"198.18.1.0/28"`); ports are `&[22, 80]`, `22`,
//! `1000..=1999` or `Ports::all()`. Rules apply in the order given, first match wins.
//!
//! # Running things
//! - `lab.netkit()` — the `netkit` under test, in the scanner namespace (a `Command`).
//! - `lab.scanner_cmd("ping")`, `lab.far_cmd("ss")`, `lab.router_cmd("tc")` — any program
//!   inside a namespace (`ip netns exec`); spawn, wait and kill them yourself, bounded.
//! - `lab.in_scanner(|| ...)` / `lab.in_far(|| ...)` — a closure on a thread inside the
//!   namespace (sockets made there live there; threads it spawns stay there).
//! - `lab.remove_host(addr)` / `lab.add_host(addr)` (needs `mut lab`) — single hosts go silent
//!   or come alive while the lab runs (sweep's periodic mode); the truth follows.
//! - [`peers`]: `ping(&lab, args)` (iputils), `counts`/`min_rtt` (its summary),
//!   `nmap_states` (`-oG -` output → port → state), `connect_all(&lab, addrs, timeout)`
//!   (parallel connects from the scanner, each outcome as an `io::ErrorKind`).
//!
//! # Ground truth
//! `lab.truth()`: `.port(addr, port)` → [`PortTruth`] (`Open`, `Closed`, `Dropped`,
//! `Rejected(kind)`, `NoHost`, `Unroutable(kind)`), `.open_ports(addr)`, `.echo(addr)` →
//! [`EchoTruth`], `.pingable(addrs)`, `.is_host(addr)`. Rate limits change how many probes
//! get through, never the truth.

// The whole lab API is offered to every test; not every test uses every part of it.
#![allow(dead_code, unused_imports)]

pub use netkit_lab::topology::{SCANNER_V4, SCANNER_V6};
pub use netkit_lab::*;

use std::process::Command;
use std::time::Duration;

/// Milliseconds, for short builder calls: `.delay(ms(15))`.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What tests add to a [`Lab`]: the `netkit` under test, run inside the scanner namespace.
pub trait LabExt {
    /// A `netkit` command (the binary under test) inside the scanner namespace.
    fn netkit(&self) -> Command;
}

impl LabExt for Lab {
    fn netkit(&self) -> Command {
        self.scanner_cmd(env!("CARGO_BIN_EXE_netkit"))
    }
}

mod far_side;
mod impairments;
mod lifecycle;
pub mod peers;
