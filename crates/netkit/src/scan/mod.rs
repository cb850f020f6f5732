//! The TCP connect scanner: which ports to try ([`rank`]), what they are called ([`services`]),
//! and the engine that finds them open, closed or filtered.
//!
//! - [`engine`]: settings, events and totals; [`worker`]: the tasks that carry out what the
//!   scheduler decides (connects, answers, banners); [`turns`]: the order their batches
//!   leave in, where it matters.
//! - [`schedule`]: which probe leaves when, timeouts, retransmissions, verdicts (no I/O).
//! - [`host`]: one host's ports, estimates and retry budget (no I/O).
//! - [`rtt`], [`window`], [`pace`], [`timing`]: round-trip estimation and timeouts,
//!   congestion windows, pacing and rate control, timing probes to hosts that answer rarely
//!   (no I/O, time is an input).
//! - [`probe`]: one non-blocking connect and what it found; [`errqueue`]: the ICMP errors
//!   queued on its socket; [`answer`]: what an answer means for the port (no I/O).
//! - `trace`: the per-try trace of `-vv` (each try, how it ended, each verdict).
//! - [`guard`]: phantom open ports on this host (TCP self-connect) and their prevention.
//! - [`limits`]: the open-files limit and the concurrency it allows.
//! - [`syn`]: the SYN scan (`--syn`, raw sockets): the same scheduler, raw SYNs instead of
//!   connects.
//! - [`banner`]: reading and sanitising what a service says first.
//! - [`discover`]: which targets are up before a scan of several (the sweep engine, one round).
//! - [`nmap_services`]: ranking from a local nmap-services. The result records are
//!   [`crate::report::scan`]'s.

pub mod answer;
pub mod banner;
pub mod discover;
pub mod engine;
pub mod errqueue;
pub mod guard;
pub mod host;
pub mod limits;
pub mod nmap_services;
pub mod pace;
pub mod probe;
pub mod rank;
pub mod rtt;
pub mod schedule;
pub mod services;
pub mod syn;
pub mod timing;
mod trace;
pub mod turns;
pub mod window;
pub mod worker;

pub use engine::{run, Config, Event, HostDone, Progress};
pub use host::{Retries, StateCounts};
