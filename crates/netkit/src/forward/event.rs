//! What the forwarder reports ([`Event`]), and the channel its connections and health checks
//! report through ([`Events`]): events from every task reach the one sink in order, from one
//! task.

use tokio::sync::mpsc;

use crate::report::forward::{ConnRecord, TargetRecord};

/// What the forwarder reports while it serves.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A connection ended (`{"type":"conn",...}`).
    Conn(ConnRecord),
    /// A target went down or came back up (`{"type":"target",...}`).
    Target(TargetRecord),
    /// What a `udp:` rule reports: a session ended, datagrams were dropped.
    Udp(super::udp::Event),
}

/// Where connections and checks send their events; cheap to clone.
#[derive(Debug, Clone)]
pub struct Events(mpsc::UnboundedSender<Event>);

impl Events {
    /// A channel: the sender for the tasks, the receiver for the one that hands events to
    /// the sink.
    pub fn channel() -> (Events, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Events(tx), rx)
    }

    /// Sends `event`; dropped when nobody receives any more.
    pub fn send(&self, event: Event) {
        let _ = self.0.send(event);
    }
}

/// The time of a record: now, RFC 3339, UTC, milliseconds.
pub(super) fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
