//! The impaired-link lab for netkit's tests and benches: a *scanner* network namespace, joined
//! through a *router* namespace to a *far* namespace holding many hosts (198.18.0.0/15,
//! 2001:db8::/32), with seeded, bounded impairments per link and direction and far-side
//! behaviours (listeners, RST, DROP, REJECT kinds, hosts ignoring echo, ICMP rate limits, SYN
//! limiting, ICMP policing, unroutable prefixes). docs/lab.md tells how tests and benches use it.
//!
//! ```no_run
//! use std::time::Duration;
//! use netkit_lab::Lab;
//!
//! let lab = Lab::builder("doc")
//!     .delay(Duration::from_millis(15))
//!     .loss(0.02)
//!     .seed(7)
//!     .hosts("198.18.1.0/28")
//!     .open("198.18.1.5", &[22, 80])
//!     .build()?;
//! let status = lab.scanner_cmd("ping").args(["-c", "3", "198.18.1.5"]).status();
//! # Ok::<(), netkit_lab::LabError>(())
//! ```
//!
//! # Layout
//! - Description: [`impairment`] (what a link does), [`ports`], [`behaviour`] (far-side
//!   kinds), [`spec`] (the validated whole), [`builder`] (the fluent way to write one).
//! - Building: `netns` (namespaces and the commands run in them), `topology` (address plan and
//!   wiring), `firewall` (iptables rules), `impair` (tc and the relay), `listen` (far
//!   listeners), [`lab`] (the running lab and its teardown).
//! - The relay: [`schedule`] (seeded per-packet decisions) and `relay` (the NFQUEUE thread).
//! - [`truth`]: what each address and port was built to answer.

#![warn(clippy::print_stdout, clippy::print_stderr, missing_docs)]

pub mod behaviour;
pub mod builder;
pub mod error;
mod firewall;
mod impair;
pub mod impairment;
pub mod lab;
mod listen;
mod netns;
mod nfqueue;
pub mod ports;
mod relay;
pub mod schedule;
pub mod spec;
pub mod topology;
pub mod truth;

pub use behaviour::{Backend, IcmpLimits, PortAction, Reject, Serve, Unroutable};
pub use builder::{parse_net, LabBuilder};
pub use error::LabError;
pub use firewall::burst;
pub use impair::{netem_available, Applied, TBF_LATENCY_MS};
pub use impairment::{parse_probability, Direction, Impairment, Link, Rate};
pub use lab::{remove_stale, Lab};
pub use netns::Netns;
pub use ports::Ports;
pub use relay::RelayStats;
pub use spec::{LabSpec, Listener, PortRule};
pub use truth::{EchoTruth, PortTruth, Truth};
