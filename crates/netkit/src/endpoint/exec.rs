//! `exec:COMMAND` endpoints: one child per connection, its stdin and stdout on one end of a
//! `socketpair(2)`, the other end a [`Stream`]. The child is reaped when the stream is dropped.

use super::Stream;
use crate::error::Error;

/// The child behind an `exec:` stream; reaped (never left a zombie) when dropped.
#[derive(Debug)]
pub struct Child {
    /// The running child process.
    pub process: Option<tokio::process::Child>,
}

/// Starts `argv` on a socketpair and returns the parent's end as a [`Stream::Child`].
pub(super) async fn spawn(_argv: &[String]) -> Result<Stream, Error> {
    Err(Error::NotImplemented("exec: endpoints"))
}
