//! Talking over sockets: the echo server behind `netkit echo` ([`echo`]) and the one-shot
//! client behind `netkit send` ([`send`]). Both work on every [`Endpoint`](crate::Endpoint):
//! TCP v4/v6, Unix paths, abstract names and, for `send`, `exec:` children on a socketpair.

pub mod echo;
pub mod hangup;
pub mod send;

pub use echo::{listen, serve, EchoConfig};
pub use hangup::hung_up;
pub use send::{exchange, Exchange};
