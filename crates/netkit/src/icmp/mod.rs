//! ICMP echo: the sans-IO codec ([`packet`], [`error`] for the errors that quote a request),
//! probe payload ([`probe`]), the sockets ([`socket`]: raw, else the unprivileged datagram
//! socket; their control messages are read by [`crate::sys::cmsg`]), and the [`Engine`] that
//! `ping` and `sweep` drive (many probes in flight over one socket per family).

pub mod engine;
pub mod error;
pub mod packet;
pub mod probe;
pub mod socket;

pub use engine::{Answer, Config, Engine, ErrorReply, Reply, UNKNOWN_INDEX};
pub use packet::Version;
pub use socket::{FlowLabel, Kind, Pmtu, SocketOptions};
