//! What one attempt found out about a target: up (and how), down (and why), or nothing netkit
//! can judge (a certificate it does not trust, a resolver failing for now, a path it may not
//! check): see [`Verdict`]. The reason a wait is not over yet is the last finding: a down one
//! normally, an up one with `--invert`, or one that could not judge.

use std::fmt;
use std::net::IpAddr;

use crate::endpoint::names::{no_such_name, resolver_reason};
use crate::error::Error;

/// The outcome of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A connection was accepted.
    Accepts,
    /// The HTTP server answered with an accepted status (and the body text, if asked for).
    Answers(u16),
    /// The path exists.
    Exists,
    /// The name resolved (to the expected address, if one was given); sorted.
    Resolves(Vec<IpAddr>),
    /// The connection failed: `connection refused`, `no route to host`.
    ConnectFailed(String),
    /// Nothing answered the connect within the attempt's bound.
    ConnectTimedOut,
    /// A Unix server is there but its accept queue stayed full for the attempt's bound: not
    /// ready, and not gone either.
    QueueFull,
    /// The host name does not exist, or has no address (NXDOMAIN, no data); the resolver's
    /// reason.
    Unresolved(String),
    /// The name lookup failed for now (SERVFAIL, REFUSED, no name server answered, timed
    /// out): nothing is known of the name.
    LookupFailed(String),
    /// The name resolved, but not to the expected address.
    ResolvesElsewhere {
        /// What it resolved to, sorted.
        found: Vec<IpAddr>,
        /// The address asked for.
        expect: IpAddr,
    },
    /// The HTTP status is not in `--status`.
    Status(u16),
    /// The status was accepted but the body lacks the `--body` text.
    BodyLacks {
        /// The response's status.
        status: u16,
        /// The text that was looked for.
        text: String,
    },
    /// The TLS handshake failed: a closed connection, a peer that does not speak TLS, ...
    Tls(String),
    /// The server's certificate is not trusted (`self-signed certificate`, `certificate
    /// expired`, ...): the server is there, but netkit cannot say it is the one asked for.
    Untrusted(String),
    /// The HTTP exchange failed: a malformed answer, a connection closed early.
    Http(String),
    /// No HTTP answer within the attempt's bound (or the deadline): the request was sent.
    NoResponse,
    /// The server accepted the connection but the TLS handshake was not over within the
    /// attempt's bound (or the deadline).
    HandshakeUnfinished,
    /// The status was accepted, but the body had not brought the `--body` text by the end of
    /// the attempt's bound (or the deadline): it was still coming.
    BodyUnfinished {
        /// The response's status.
        status: u16,
        /// The text that was looked for.
        text: String,
    },
    /// The path does not exist.
    Missing,
    /// A component of the path is not a directory: the path cannot exist.
    NotADirectory,
    /// The path could not be checked (`permission denied`, an I/O error).
    Unchecked(String),
    /// The deadline passed before any attempt finished.
    NoAnswer,
    /// This process ran out of file descriptors (`EMFILE`, or the system `ENFILE`, the errno
    /// here): nothing was learnt about the target, and the wait cannot go on
    /// ([`super::wait_for`] ends with the environment's refusal).
    OutOfDescriptors(i32),
}

/// What a finding says of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It is there: ready, or not gone with `--invert`.
    Up,
    /// It answered not ready, or is not there: refused, a wrong status, NXDOMAIN, no such
    /// file. Gone, with `--invert`.
    Down,
    /// Netkit could not judge: neither ready nor gone (an untrusted certificate, a resolver
    /// failing for now, a path it may not check, a full accept queue).
    Unknown,
}

impl Finding {
    /// What this finding says of the service. (A connect that timed out is [`Verdict::Down`]
    /// here; `--invert` takes it for gone only after the longest connect.)
    pub fn verdict(&self) -> Verdict {
        match self {
            _ if self.is_up() => Verdict::Up,
            Finding::Untrusted(_)
            | Finding::LookupFailed(_)
            | Finding::Unchecked(_)
            | Finding::QueueFull
            | Finding::NoAnswer
            | Finding::OutOfDescriptors(_) => Verdict::Unknown,
            _ => Verdict::Down,
        }
    }

    /// Whether the target was up (ready, unless the wait is inverted).
    pub fn is_up(&self) -> bool {
        matches!(
            self,
            Finding::Accepts | Finding::Answers(_) | Finding::Exists | Finding::Resolves(_)
        )
    }

    /// Whether the attempt heard nothing at all (a connect, a TLS handshake or an HTTP
    /// answer that timed out, no attempt finished): an earlier finding may say more.
    pub fn is_silence(&self) -> bool {
        matches!(
            self,
            Finding::ConnectTimedOut
                | Finding::HandshakeUnfinished
                | Finding::NoResponse
                | Finding::NoAnswer
        )
    }

    /// Whether the server's answer (TLS handshake, HTTP head or body) was not over within
    /// the attempt's bound.
    pub fn is_slow_answer(&self) -> bool {
        matches!(
            self,
            Finding::HandshakeUnfinished | Finding::NoResponse | Finding::BodyUnfinished { .. }
        )
    }

    /// Why a wait that saw this finding is not over: the finding itself when the target is
    /// down, `still …` when it is up and the wait is for it to go away.
    pub fn reason(&self) -> String {
        if self.is_up() {
            format!("still {self}")
        } else {
            self.to_string()
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Accepts => f.write_str("accepts connections"),
            Finding::Answers(code) => write!(f, "answers HTTP {code}"),
            Finding::Exists => f.write_str("exists"),
            Finding::Resolves(found) => write!(f, "resolves to {}", List(found)),
            Finding::ConnectFailed(why) | Finding::Unresolved(why) | Finding::LookupFailed(why) => {
                f.write_str(why)
            }
            Finding::ConnectTimedOut => f.write_str("connect timed out"),
            Finding::QueueFull => {
                f.write_str("accept queue full (the server is there but not accepting)")
            }
            Finding::ResolvesElsewhere { found, expect } => {
                write!(f, "resolves to {}, not {expect}", List(found))
            }
            Finding::Status(code) => write!(f, "HTTP {code}{}", phrase(*code)),
            Finding::BodyLacks { status, text } => {
                write!(f, "HTTP {status} but the body lacks {text:?}")
            }
            Finding::Tls(why) | Finding::Untrusted(why) => write!(f, "TLS error: {why}"),
            Finding::Http(why) => write!(f, "HTTP error: {why}"),
            Finding::NoResponse => f.write_str("no HTTP response in time"),
            Finding::HandshakeUnfinished => f.write_str("TLS handshake not finished in time"),
            Finding::BodyUnfinished { status, text } => {
                write!(f, "HTTP {status} but no {text:?} in the body in time")
            }
            Finding::Missing => f.write_str("no such file or directory"),
            Finding::NotADirectory => f.write_str("not a directory"),
            Finding::Unchecked(why) => f.write_str(why),
            Finding::NoAnswer => f.write_str("no answer"),
            Finding::OutOfDescriptors(errno) => {
                let err = std::io::Error::from_raw_os_error(*errno);
                f.write_str(&crate::error::describe_io(&err))
            }
        }
    }
}

/// ` Service Unavailable` for 503: the standard reason phrase, if the code has one.
fn phrase(code: u16) -> String {
    hyper::StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" {r}"))
        .unwrap_or_default()
}

struct List<'a>(&'a [IpAddr]);

impl fmt::Display for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, ip) in self.0.iter().enumerate() {
            write!(f, "{}{ip}", if i == 0 { "" } else { ", " })?;
        }
        Ok(())
    }
}

impl Finding {
    /// A failed connect (or the lookup before it) as a finding.
    pub(super) fn of_connect_error(err: &Error) -> Finding {
        match err {
            Error::Resolve { host, why } => {
                let said = format!("cannot resolve {host}: {}", resolver_reason(why));
                match no_such_name(why) {
                    true => Finding::Unresolved(said),
                    false => Finding::LookupFailed(said),
                }
            }
            Error::Io { source, .. } if crate::endpoint::AcceptQueueFull::is(source) => {
                Finding::QueueFull
            }
            Error::Io { source, .. } if is_out_of_descriptors(source) => {
                Finding::OutOfDescriptors(source.raw_os_error().unwrap_or(nix::libc::EMFILE))
            }
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::TimedOut => {
                Finding::ConnectTimedOut
            }
            Error::Io { source, .. } => Finding::ConnectFailed(crate::error::describe_io(source)),
            other => Finding::ConnectFailed(other.to_string()),
        }
    }
}

fn is_out_of_descriptors(err: &std::io::Error) -> bool {
    crate::sys::shortage(err) == Some(crate::sys::Shortage::Descriptors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_out_of_descriptors_is_its_own_finding() {
        let err = Error::io(
            "connect to 127.0.0.1:80",
            std::io::Error::from_raw_os_error(nix::libc::EMFILE),
        );
        let finding = Finding::of_connect_error(&err);
        assert_eq!(finding, Finding::OutOfDescriptors(nix::libc::EMFILE));
        assert_eq!(finding.to_string(), "too many open files");
        assert!(!finding.is_up() && !finding.is_silence());
    }

    #[test]
    fn reasons_read_as_sentences() {
        assert_eq!(
            Finding::Status(503).reason(),
            "HTTP 503 Service Unavailable"
        );
        assert_eq!(Finding::Status(599).reason(), "HTTP 599");
        assert_eq!(Finding::Accepts.reason(), "still accepts connections");
        assert_eq!(
            Finding::Tls("unknown issuer".into()).reason(),
            "TLS error: unknown issuer"
        );
        let found = vec!["127.0.0.1".parse().expect("ip"), "::1".parse().expect("ip")];
        let elsewhere = Finding::ResolvesElsewhere {
            found,
            expect: "198.18.0.1".parse().expect("ip"),
        };
        assert_eq!(
            elsewhere.reason(),
            "resolves to 127.0.0.1, ::1, not 198.18.0.1"
        );
        assert_eq!(
            Finding::BodyLacks {
                status: 200,
                text: "ready".into()
            }
            .reason(),
            "HTTP 200 but the body lacks \"ready\""
        );
        let trickling = Finding::BodyUnfinished {
            status: 200,
            text: "ready".into(),
        };
        assert_eq!(
            trickling.reason(),
            "HTTP 200 but no \"ready\" in the body in time"
        );
        assert_eq!(
            Finding::HandshakeUnfinished.reason(),
            "TLS handshake not finished in time"
        );
        assert!(Finding::HandshakeUnfinished.is_silence() && !trickling.is_silence());
    }
}
