//! The lab's errors: bad specifications (caught before anything is created) and failures of
//! the tools and sockets that build and run the lab.

use std::io;

/// Everything that can go wrong while specifying, building or running a lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A value of the specification could not be parsed or is out of range.
    #[error("{input}: {why}")]
    Spec {
        /// The input as given.
        input: String,
        /// Why it was refused and what is expected instead.
        why: String,
    },
    /// A command that builds the lab (`ip`, `iptables-restore`, `tc`, `sysctl`) failed.
    #[error("`{command}` failed: {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its standard error (or why it could not start).
        stderr: String,
    },
    /// A system call made for the lab (namespace switch, socket, NFQUEUE) failed.
    #[error("{what}: {source}")]
    Io {
        /// What the lab was doing.
        what: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl LabError {
    /// A specification error for `input`, saying `why`.
    pub fn spec(input: impl Into<String>, why: impl Into<String>) -> LabError {
        LabError::Spec {
            input: input.into(),
            why: why.into(),
        }
    }

    /// An I/O error while doing `what`.
    pub fn io(what: impl Into<String>, source: io::Error) -> LabError {
        LabError::Io {
            what: what.into(),
            source,
        }
    }
}

/// The lab's result type.
pub type Result<T> = std::result::Result<T, LabError>;
