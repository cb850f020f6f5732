//! netkit: the library behind the `netkit` command.
//!
//! # Layout
//! - Shared vocabulary, parsed without I/O: [`target`] (lazy target iterators), [`ports`]
//!   (port sets), [`endpoint`] (TCP/Unix/exec endpoints with `connect`/`listen`), [`ipv4`]
//!   (the IPv4 address forms both take, inet_aton's short ones too), [`duration`],
//!   [`text`] (network text made safe for a terminal).
//! - [`error`]: the typed input errors of each domain, the library's [`Error`], and the
//!   input/environment classification that the binary turns into exit codes.
//! - [`sys`]: the Linux system layer (open-files limit, shortage errnos, ENOBUFS retry, socket
//!   options, control messages, splice, /proc, signals); nothing else calls below tokio,
//!   socket2 and nix for these.
//! - [`server`]: the one accept loop (connection cap, accept backoff, drain with a deadline or
//!   abort) under every stream server; [`prometheus`]: the metrics endpoint on it.
//! - Engines: [`iface`] (interfaces), [`scan`] (port ranking and services data), [`wait`]
//!   (readiness of ports, URLs, names and files), [`icmp`] (echo codec, sockets and the probe
//!   engine) with [`ping`] (iputils' rules as a session without I/O, its driver and
//!   statistics), [`ipc`] (echo server, one-shot client; `exec:` children live in
//!   [`endpoint::exec`]), [`sweep`] (host discovery, once or periodic), [`forward`] (the port
//!   forwarder); [`pace`] is the one pacer of the probing engines (sweep, scan). Engines
//!   report what happens through one convention: a sink `FnMut(Event) -> io::Result<()>`
//!   called in order; an error from it ends the engine's run.
//! - [`report`]: every result record, one module per command: the serde types that the binary
//!   prints as text or JSON Lines.
//!
//! The library never parses argv, prints or exits. docs/ARCHITECTURE.md tells the whole story.
#![warn(clippy::print_stdout, clippy::print_stderr, missing_docs)]

mod descriptor_wait;
pub mod duration;
pub mod endpoint;
pub mod error;
pub mod forward;
pub mod icmp;
pub mod iface;
pub mod ipc;
pub mod ipv4;
pub mod pace;
pub mod ping;
pub mod ports;
pub mod prometheus;
pub mod report;
pub mod scan;
pub mod server;
pub mod shard;
pub mod sweep;
pub mod sys;
pub mod target;
#[cfg(test)]
mod testing;
pub mod text;
pub mod wait;
pub mod wilson;

pub use duration::parse_duration;
pub use endpoint::Endpoint;
pub use error::{Error, ErrorClass, ParseError, Result};
pub use ipnet::IpNet;
pub use ports::PortSet;
pub use target::{Family, Target, TargetList, Targets};
