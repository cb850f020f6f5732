//! The one integration-test binary: drives the real `netkit` executable against real sockets,
//! real interfaces and network namespaces that the tests create themselves.

mod echo;
mod errors;
mod forward;
mod forward_exec;
mod forward_util;
mod harness;
mod help;
mod iface;
mod json;
mod lab;
mod ping;
mod regression;
mod scan;
mod scan_lab;
mod send;
mod sweep;
mod wait;
