//! Error types shared by every layer, and how each one is classified.
//!
//! The library reports two kinds of failure: the input was wrong or the environment refused
//! what was asked ([`Error::Io`] for permission, address in use, resource limits). Input
//! errors are typed per domain, each a `{input, kind}` pair whose message is
//! `input: why` (the input as the user gave it, then what was expected):
//! [`PortError`], [`EndpointError`], [`TargetError`], [`DurationError`], [`ConfigError`]
//! (which rule and key, for forwarding rules files); [`ParseError`]
//! carries the other input errors (flags, wait targets, HTTP status sets), and
//! [`Error::NoSuchInterface`] and [`Error::Resolve`] name what does not exist, [`NameError`]
//! a name no interface can have. The binary maps
//! the [`ErrorClass`] ([`class_of`]) to an exit status; the library never exits.

use std::io;

use crate::duration::DurationError;
use crate::endpoint::EndpointError;
use crate::forward::config::ConfigError;
use crate::iface::NameError;
use crate::ports::PortError;
use crate::target::TargetError;

/// Who is to blame for a failure: the user's input or the machine's environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The input was malformed or names something that does not exist (exit 2).
    Input,
    /// The environment refused: permission, address in use, resource limits (exit 3).
    Environment,
}

/// An input outside the typed domains (a flag's value, a wait target, an HTTP status set)
/// failed to parse.
///
/// The message always starts with the input that failed, then says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {why}", crate::text::clipped(.input))]
pub struct ParseError {
    /// The text that failed to parse, as the user gave it.
    pub input: String,
    /// Why it failed and what form was expected, in lower case.
    pub why: String,
}

impl ParseError {
    /// Builds a parse error for `input` with the reason `why`.
    pub fn new(input: impl Into<String>, why: impl Into<String>) -> Self {
        ParseError {
            input: input.into(),
            why: why.into(),
        }
    }
}

/// A typed input error as a plain one (`input`, and its kind's message as `why`), for inputs
/// that embed another (a wait target's endpoint, a CLI flag's port).
macro_rules! into_parse_error {
    ($($domain:ty),*) => {$(
        impl From<$domain> for ParseError {
            fn from(err: $domain) -> ParseError {
                ParseError::new(err.input, err.kind.to_string())
            }
        }
    )*};
}

into_parse_error!(PortError, EndpointError, TargetError, DurationError);

/// Errors from the library's operations (resolution, sockets, interfaces).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input failed to parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A port set or port number failed to parse.
    #[error(transparent)]
    Ports(#[from] PortError),
    /// An endpoint failed to parse.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// A target (address, range, block, name, `@FILE`) failed to parse or to match the family.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// A duration failed to parse.
    #[error(transparent)]
    Duration(#[from] DurationError),
    /// A forwarding rules file could not be read or failed its checks.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The named network interface does not exist.
    #[error("{}: no such interface", crate::text::clipped(.0))]
    NoSuchInterface(String),
    /// A name no network interface can have (empty, longer than the kernel allows).
    #[error(transparent)]
    Name(#[from] NameError),
    /// A host name did not resolve to any usable address.
    #[error("{}: cannot resolve host name: {why}", crate::text::clipped(.host))]
    Resolve {
        /// The name that failed.
        host: String,
        /// The resolver's reason.
        why: String,
    },
    /// A system call failed; `what` names the operation and its subject.
    #[error("{what}: {}{}", describe_io(source), hint_for(what, source))]
    Io {
        /// What was being done, e.g. `listen on 127.0.0.1:80`.
        what: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A Unix socket could not be created because this user may not write its directory.
    #[error(
        "{what}: permission denied; the directory {dir} is not writable by this user: choose a \
         socket path in a directory you can write (e.g. $XDG_RUNTIME_DIR) or run as a user who can"
    )]
    UnixDirDenied {
        /// What was being done, e.g. `listen on unix:/run/app.sock`.
        what: String,
        /// The directory that would hold the socket file.
        dir: String,
    },
    /// Neither a raw nor an unprivileged datagram ICMP socket may be opened.
    #[error(
        "open an {0} socket: permission denied; raw sockets need root or CAP_NET_RAW \
         (setcap cap_net_raw+ep netkit), unprivileged ICMP sockets need your group inside \
         sysctl net.ipv4.ping_group_range (e.g. sysctl -w net.ipv4.ping_group_range=\"0 2147483647\")"
    )]
    IcmpDenied(&'static str),
    /// Even the hard open-files limit is below what a command needs to start
    /// ([`crate::sys::rlimit::MIN_NOFILE`]).
    #[error(
        "open files limit {limit}: netkit needs at least {needed} open files to run; raise it \
         (ulimit -n {needed} or more in the shell, LimitNOFILE= for a systemd service)"
    )]
    OpenFilesLimit {
        /// The limit in force (the hard limit; the soft one is raised to it).
        limit: u64,
        /// The least netkit needs.
        needed: u64,
    },
}

impl Error {
    /// Wraps an I/O error with a description of what was being done.
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    /// Whether the input or the environment is to blame.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Parse(_)
            | Error::Ports(_)
            | Error::Endpoint(_)
            | Error::Target(_)
            | Error::Duration(_)
            | Error::Config(_)
            | Error::NoSuchInterface(_)
            | Error::Name(_)
            | Error::Resolve { .. } => ErrorClass::Input,
            Error::Io { .. }
            | Error::UnixDirDenied { .. }
            | Error::IcmpDenied(_)
            | Error::OpenFilesLimit { .. } => ErrorClass::Environment,
        }
    }
}

/// The class of any error of this library found in a chain of causes: `None` when `err` is
/// none of them (the binary then decides).
pub fn class_of(err: &(dyn std::error::Error + 'static)) -> Option<ErrorClass> {
    if let Some(err) = err.downcast_ref::<Error>() {
        return Some(err.class());
    }
    let input = err.is::<ParseError>()
        || err.is::<PortError>()
        || err.is::<EndpointError>()
        || err.is::<TargetError>()
        || err.is::<DurationError>()
        || err.is::<ConfigError>()
        || err.is::<NameError>();
    input.then_some(ErrorClass::Input)
}

/// Result type of the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The lower-case description of an I/O error, without Rust's "(os error N)" suffix.
pub fn describe_io(err: &io::Error) -> String {
    let text = err.to_string();
    let text = match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    };
    lower_first(&text)
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// What a user can do about an environment refusal of `what` (`listen on unix:@name`,
/// `connect to exec:prog`), as a suffix starting with "; ": the generic [`hint`] but where the
/// subject is a Unix socket name or a program, which have no ports nor capabilities to grant,
/// or what only a raw socket may do (ping's short intervals), which CAP_NET_RAW grants.
pub fn hint_for(what: &str, err: &io::Error) -> &'static str {
    use nix::libc::{EACCES, EADDRINUSE, EMFILE, ENFILE, EPERM, EPROTOTYPE};
    match (err.raw_os_error(), what) {
        (Some(EPROTOTYPE), w) if w.contains("unix:") => {
            "; that is a datagram (or seqpacket) socket, and netkit speaks to stream sockets only"
        }
        (Some(EADDRINUSE), w) if w.contains("unix:") => {
            "; another process is listening on that name: stop it or choose another name"
        }
        (Some(EMFILE | ENFILE), w) if w.starts_with("listen on") => {
            "; raise the open-files limit (ulimit -n) or listen on fewer ports"
        }
        (Some(EMFILE | ENFILE), w) if w.starts_with("wait for") => {
            "; raise the open-files limit (ulimit -n) or wait for fewer targets at once"
        }
        (Some(EACCES | EPERM), w) if w.contains("exec:") => {
            "; this user may not run that program (check that it is executable)"
        }
        (Some(EACCES | EPERM), w) if w.contains("unix:") && !w.contains("unix:@") => {
            "; this user may not open that socket (check its and its directories' permissions)"
        }
        (Some(EACCES | EPERM), w) if w.contains("raw socket, as with iputils") => {
            "; run as root or grant CAP_NET_RAW (setcap cap_net_raw+ep netkit)"
        }
        (Some(EACCES | EPERM), w) if w.starts_with("write ") => {
            "; this user may not write that file (check it and its directory's permissions)"
        }
        _ => hint(err),
    }
}

/// What a user can do about an environment refusal, as a suffix starting with "; ".
pub fn hint(err: &io::Error) -> &'static str {
    use nix::libc::{EACCES, EADDRINUSE, EADDRNOTAVAIL, EMFILE, ENFILE, EPERM};
    match err.raw_os_error() {
        Some(EMFILE | ENFILE) => {
            "; raise the open-files limit (ulimit -n) or lower the concurrency"
        }
        Some(EADDRINUSE) => {
            "; another process is using that address: stop it or choose another port"
        }
        Some(EACCES | EPERM) => {
            "; run as root or grant the needed capability (CAP_NET_BIND_SERVICE for ports \
             below 1024, CAP_NET_RAW for raw sockets)"
        }
        Some(EADDRNOTAVAIL) => "; that address is not configured on this machine",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_messages_are_lower_case_without_os_error_suffix() {
        let err = Error::io("listen on 127.0.0.1:80", io::Error::from_raw_os_error(98));
        let text = err.to_string();
        assert!(
            text.starts_with("listen on 127.0.0.1:80: address already in use"),
            "{text}"
        );
        assert!(!text.contains("os error"), "{text}");
        assert!(text.contains("choose another port"), "{text}");
        assert_eq!(err.class(), ErrorClass::Environment);
    }

    #[test]
    fn unix_names_and_programs_get_their_own_advice() {
        let in_use = io::Error::from_raw_os_error(nix::libc::EADDRINUSE);
        let text = Error::io("listen on unix:@name", in_use).to_string();
        assert!(text.ends_with("stop it or choose another name"), "{text}");
        let denied = io::Error::from_raw_os_error(nix::libc::EACCES);
        let text = Error::io("connect to exec:/etc/passwd", denied).to_string();
        assert!(text.ends_with("(check that it is executable)"), "{text}");
        assert!(!text.contains("CAP_"), "{text}");
    }

    #[test]
    fn parse_errors_name_the_input_first() {
        let err = Error::from(ParseError::new("70000", "port must be 1-65535"));
        assert_eq!(err.to_string(), "70000: port must be 1-65535");
        assert_eq!(err.class(), ErrorClass::Input);
    }
}
