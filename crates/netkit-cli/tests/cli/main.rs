//! The one integration-test binary: drives the real `netkit` executable against real sockets,
//! real interfaces and network namespaces that the tests create themselves.

mod errors;
mod harness;
mod help;
mod iface;
mod json;
mod scan;
