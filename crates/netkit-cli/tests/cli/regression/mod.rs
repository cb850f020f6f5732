//! Regression tests: one test per defect found, named after the defect, each written to fail
//! before its fix. One file per command so that fixes in different areas never touch the same
//! file.

mod echo;
mod forward;
mod forward_audit;
mod iface;
mod ping;
mod scan;
mod send;
mod sweep;
mod usage;
mod wait;
