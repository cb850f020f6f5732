//! The one integration-test binary: drives the real `netkit` executable against real sockets,
//! real interfaces and network namespaces that the tests create themselves.

mod completions;
mod echo;
mod errors;
mod forward;
mod forward_config;
mod forward_desync;
mod forward_exec;
mod forward_udp;
mod forward_util;
mod harness;
mod help;
mod iface;
mod json;
mod lab;
mod ping;
mod ping_flags;
mod ping_lab;
mod ping_net;
mod regression;
mod responder;
mod scan;
mod scan_lab;
mod scan_output;
mod scan_top;
mod send;
mod skips;
mod sweep;
mod sweep_lab;
mod wait;
mod wait_http;
mod wait_util;
