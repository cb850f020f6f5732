//! The process signals a command stops on (or reports on), received as values. One style for
//! every command: register the signals first, before binding or sending anything, so that a
//! signal that comes early is handled rather than killing the process; then await
//! [`Signals::recv`] and decide what each one means (stop, drain, report, ignore).

use std::future::poll_fn;
use std::task::Poll;

use tokio::signal::unix::{signal, SignalKind};

/// A signal the commands handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `SIGINT` (Ctrl-C).
    Interrupt,
    /// `SIGTERM`.
    Terminate,
    /// `SIGHUP`.
    Hangup,
    /// `SIGQUIT` (Ctrl-\).
    Quit,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
            Signal::Hangup => "SIGHUP",
            Signal::Quit => "SIGQUIT",
        }
    }

    fn kind(self) -> SignalKind {
        match self {
            Signal::Interrupt => SignalKind::interrupt(),
            Signal::Terminate => SignalKind::terminate(),
            Signal::Hangup => SignalKind::hangup(),
            Signal::Quit => SignalKind::quit(),
        }
    }
}

/// The signals a command listens for. From [`Signals::new`] on, they no longer have their
/// default effect (ending the process, or a core dump for `SIGQUIT`); each one that comes is
/// returned by [`Signals::recv`]. Needs a tokio runtime.
#[derive(Debug)]
pub struct Signals {
    streams: Vec<(Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    /// Starts listening for `which`; an error names the signal that could not be handled
    /// (out of descriptors, say: the driver needs a socketpair).
    pub fn new(which: &[Signal]) -> crate::Result<Signals> {
        let streams = which
            .iter()
            .map(|&s| {
                let stream = signal(s.kind())
                    .map_err(|e| crate::Error::io(format!("handle {}", s.name()), e))?;
                Ok((s, stream))
            })
            .collect::<crate::Result<_>>()?;
        Ok(Signals { streams })
    }

    /// The next signal that comes (forever pending when listening for none).
    pub async fn recv(&mut self) -> Signal {
        poll_fn(|cx| {
            for (which, stream) in &mut self.streams {
                if stream.poll_recv(cx).is_ready() {
                    return Poll::Ready(*which);
                }
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    // SIGHUP to itself: the test process survives it only because it is being listened for.
    #[tokio::test]
    async fn a_signal_sent_to_the_process_is_received_as_its_value() {
        let mut signals = Signals::new(&[Signal::Interrupt, Signal::Hangup]).unwrap();
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGHUP).unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), signals.recv()).await;
        assert_eq!(got, Ok(Signal::Hangup));
    }
}
