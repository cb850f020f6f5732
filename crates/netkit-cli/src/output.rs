//! Printing results: the human printer and the JSON Lines printer are two views of the same
//! serde records. Every JSON object is flat and carries a `type` field.

use std::io::{self, Write};

use serde::Serialize;

use crate::cli::Global;

pub mod files;
pub mod nmap;
pub mod nmap_grep;
pub mod nmap_xml;

/// Writes results to stdout as text or JSON Lines.
#[derive(Debug, Clone)]
pub struct Printer {
    json: bool,
    quiet: bool,
    verbose: u8,
    color: bool,
}

#[derive(Serialize)]
struct Tagged<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(flatten)]
    record: &'a T,
}

/// Writes one JSON Lines object with `"type": kind` and the record's fields to `out` (stdout,
/// or a results file such as `scan -o`).
pub fn write_record<T: Serialize>(out: &mut impl Write, kind: &str, record: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &Tagged { kind, record })?;
    out.write_all(b"\n")
}

impl Printer {
    /// A printer for the global flags.
    pub fn new(global: &Global) -> Self {
        Printer {
            json: global.json,
            quiet: global.quiet,
            verbose: global.verbose,
            color: global.color.enabled_for_stdout(),
        }
    }

    /// Whether records go out as JSON Lines.
    pub fn json(&self) -> bool {
        self.json
    }

    /// Whether `-q` was given: no progress lines, only results.
    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// How many `-v` were given.
    pub fn verbose(&self) -> u8 {
        self.verbose
    }

    /// Writes one JSON object with `"type": kind` and the record's fields.
    pub fn record<T: Serialize>(&self, kind: &str, record: &T) -> io::Result<()> {
        let mut out = io::stdout().lock();
        write_record(&mut out, kind, record)?;
        out.flush()
    }

    /// Writes one line of human output.
    pub fn line(&self, text: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.write_all(b"\n")?;
        out.flush()
    }

    /// Paints `text` green (good) or red (bad) when colour is on.
    pub fn paint(&self, text: &str, good: bool) -> String {
        match (self.color, good) {
            (false, _) => text.to_string(),
            (true, true) => format!("\x1b[32m{text}\x1b[0m"),
            (true, false) => format!("\x1b[31m{text}\x1b[0m"),
        }
    }
}
