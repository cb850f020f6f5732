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
pub struct Events {
    tx: mpsc::UnboundedSender<Event>,
    conn_records: bool,
}

impl Events {
    /// A channel: the sender for the tasks, the receiver for the one that hands events to
    /// the sink.
    pub fn channel() -> (Events, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let events = Events {
            tx,
            conn_records: true,
        };
        (events, rx)
    }

    /// The same channel, without [`Event::Conn`]: for a sink that would drop them (`-q`
    /// without `--json`). A connection then builds no record (its strings, its time) and
    /// wakes no task when it ends; the metrics count it all the same.
    pub fn without_conn_records(self) -> Events {
        Events {
            conn_records: false,
            ..self
        }
    }

    /// Whether connections send their records.
    pub fn wants_conn_records(&self) -> bool {
        self.conn_records
    }

    /// Sends `event`; dropped when nobody receives any more.
    pub fn send(&self, event: Event) {
        let _ = self.tx.send(event);
    }
}

/// The time of a record: now, RFC 3339, UTC, milliseconds.
pub(super) fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
