//! netkit: the library behind the `netkit` command.
//!
//! # Layout
//! - Shared vocabulary, parsed without I/O: [`target`] (lazy target iterators), [`ports`]
//!   (port sets), [`endpoint`] (TCP/Unix/exec endpoints with `connect`/`listen`), [`duration`].
//! - [`error`]: one error type per domain and the input/environment classification that the
//!   binary turns into exit codes.
//! - Engines: [`iface`] (interfaces), [`scan`] (port ranking and services data), [`wait`]
//!   (readiness of ports, URLs, names and files), [`icmp`] (echo codec, sockets and the probe
//!   engine) with [`ping`] (iputils' rules as a session without I/O, its driver and
//!   statistics), [`ipc`] (echo server, one-shot client; `exec:` children live in
//!   [`endpoint::exec`]), [`sweep`] (host discovery, once or periodic), [`forward`] (the port
//!   forwarder).
//! - [`report`]: the serde result types that the binary prints as text or JSON Lines.
//!
//! The library never parses argv, prints or exits.
#![warn(clippy::print_stdout, clippy::print_stderr, missing_docs)]

pub mod duration;
pub mod endpoint;
pub mod error;
pub mod forward;
pub mod icmp;
pub mod iface;
pub mod ipc;
pub mod ping;
pub mod ports;
pub mod report;
pub mod scan;
pub mod sweep;
pub mod target;
pub mod wait;

pub use duration::parse_duration;
pub use endpoint::Endpoint;
pub use error::{Error, ErrorClass, ParseError, Result};
pub use ipnet::IpNet;
pub use ports::PortSet;
pub use target::{Family, Target, TargetList, Targets};
