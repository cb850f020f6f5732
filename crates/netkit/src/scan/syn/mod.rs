//! The SYN scan (`nmap -sS`): raw TCP SYNs instead of connects, with the connect scan's
//! scheduler and congestion control ([`super::schedule`]). A SYN-ACK is open (this machine's
//! kernel, knowing no such connection, answers it with the reset that closes the half-open
//! connection, as with nmap), a reset is closed, an ICMP error is classified as the connect
//! scan classifies it ([`super::answer`]), silence through the retries is filtered.
//!
//! - [`socket`]: the raw sockets and the reserved source port; [`packet`]: the SYN's bytes and
//!   the answers' (no I/O); [`table`]: the SYNs in flight and which answer is whose (no I/O).
//! - [`sender`]: the threads that send what the scheduler lets leave; [`receiver`]: the
//!   thread that reads the answers and hands them to the scheduler.
//! - [`follow`]: the full connect that reads a banner from a port the SYN found open.

pub mod follow;
pub mod packet;
pub mod receiver;
pub mod sender;
pub mod socket;
pub mod table;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use self::socket::RawSockets;
use self::table::Table;
use super::worker::Shared;
use crate::error::Error;

/// What the senders and the receiver share: the sockets and the SYNs in flight.
#[derive(Debug)]
pub struct Prober {
    sockets: RawSockets,
    table: Mutex<Table>,
}

impl Prober {
    /// Opens the raw sockets: an error with `EPERM` without `CAP_NET_RAW`
    /// ([`socket::is_denied`]).
    pub fn open() -> Result<Self, Error> {
        Ok(Prober {
            sockets: RawSockets::open()?,
            table: Mutex::new(Table::default()),
        })
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether this process may send raw SYNs: `Ok(false)` when it lacks `CAP_NET_RAW`.
pub fn available() -> Result<bool, Error> {
    match Prober::open() {
        Ok(_) => Ok(true),
        Err(err) if socket::is_denied(&err) => Ok(false),
        Err(err) => Err(err),
    }
}

/// Starts the sending threads (`count`, each reporting [`super::worker::Msg::Finished`]) and
/// the receiving thread (which ends once the scan is stopped). Returns every thread.
pub(in crate::scan) fn start(
    shared: &Arc<Shared>,
    prober: Prober,
    count: usize,
) -> Result<Vec<JoinHandle<()>>, Error> {
    let prober = Arc::new(prober);
    let mut threads = Vec::with_capacity(count + 1);
    let spawn = |name: String, body: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name)
            .spawn(body)
            .map_err(|e| Error::io("start a scan thread", e))
    };
    let (s, p) = (Arc::clone(shared), Arc::clone(&prober));
    threads.push(spawn(
        "syn-recv".into(),
        Box::new(move || receiver::listen(&s, &p)),
    )?);
    for i in 0..count {
        let (s, p) = (Arc::clone(shared), Arc::clone(&prober));
        threads.push(spawn(
            format!("syn-{i}"),
            Box::new(move || sender::work(&s, &p)),
        )?);
    }
    Ok(threads)
}
