//! Logs go to stderr through `tracing`; `-v` raises the level, `-q` lowers it, `RUST_LOG`
//! overrides both.

use std::io::{self, Write};

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
        .with_writer(|| OneLine)
        .with_ansi(global.color.enabled_for_stderr())
        .with_target(false)
        .without_time()
        .try_init();
}

/// Stderr for log lines, each event one line: a newline or carriage return inside an event (a
/// Unix socket path given with one) is written `\n`/`\r`, so it cannot split the line or fake
/// another; tracing escapes the other control characters of a message itself. The formatter
/// writes each event whole with one `write_all`, its line end last.
struct OneLine;

impl Write for OneLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let body = buf.strip_suffix(b"\n").unwrap_or(buf);
        if !body.iter().any(|b| matches!(b, b'\n' | b'\r')) {
            io::stderr().write_all(buf)?;
            return Ok(buf.len());
        }
        let mut line = Vec::with_capacity(buf.len() + 8);
        for &byte in body {
            match byte {
                b'\n' => line.extend_from_slice(b"\\n"),
                b'\r' => line.extend_from_slice(b"\\r"),
                byte => line.push(byte),
            }
        }
        line.extend_from_slice(&buf[body.len()..]);
        io::stderr().write_all(&line)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}
