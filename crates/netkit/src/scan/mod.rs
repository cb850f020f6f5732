//! The TCP connect scanner: which ports to try ([`rank`]), what they are called ([`services`]),
//! and the engine that finds them open, closed or filtered.
//!
//! - [`jobs`]: targets × ports as a lazy stream, interleaved across hosts.
//! - [`probe`]: one non-blocking connect and what it means.
//! - [`guard`]: phantom open ports on this host (TCP self-connect) and their prevention.
//! - [`engine`]: workers, retries, back-off on local shortages, `--rate` pacing, totals.
//! - [`limits`]: the open-files limit and the concurrency it allows.
//! - [`banner`]: reading and sanitising what a service says first.
//! - [`record`]: the result records.

pub mod banner;
pub mod engine;
pub mod guard;
pub mod jobs;
pub mod limits;
pub mod nmap_services;
pub mod probe;
pub mod rank;
pub mod record;
pub mod services;

pub use engine::{run, Config, Progress};
pub use record::{OpenPort, PortState, ScanSummary};
