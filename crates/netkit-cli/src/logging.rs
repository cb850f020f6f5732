//! Logs go to stderr through `tracing`; `-v` raises the level, `-q` lowers it, `RUST_LOG`
//! overrides both.

use tracing_subscriber::EnvFilter;

use crate::cli::Global;

/// Installs the stderr subscriber for this process.
pub fn init(global: &Global) {
    let level = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(global.color.enabled_for_stderr())
        .with_target(false)
        .without_time()
        .try_init();
}
