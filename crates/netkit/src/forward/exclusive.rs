//! Exclusive wake-ups (`EPOLLEXCLUSIVE`, Linux 4.5) for a listening socket accepted on from
//! every worker thread: when a client arrives, the kernel wakes one worker sleeping in
//! `epoll_wait`, not all of them (a busy worker is told too, without being woken, and the next
//! one asleep is woken). Each worker whose registration is told accepts until `EAGAIN`, so no
//! client waits unseen.
//!
//! Tokio registers a socket with its runtime's epoll instance with `EPOLLIN | EPOLLRDHUP |
//! EPOLLET` and has no way to ask for more. So [`Poller::of_current_runtime`] finds, once per
//! worker, the runtime's epoll descriptor (the one whose `/proc/self/fdinfo` lists a probe
//! socket just registered with it), and [`Wakeup`] finds tokio's own registration of a
//! listening socket there (its events and its data, the token tokio dispatches readiness by)
//! and replaces it by the same one with `EPOLLEXCLUSIVE`: deleted, then added again (the
//! kernel takes the flag only when an item is added; adding polls the socket, so a client that
//! came in between is reported). The data is tokio's, copied unchanged: tokio gets the same
//! events under the same token, and its own `EPOLL_CTL_DEL` when the listener is dropped
//! removes the item as before. Where any step fails (no `/proc`, an older kernel), the
//! registration stays tokio's and every worker wakes, as without this module.
//!
//! Why not an epoll instance of our own holding the socket exclusively, itself registered with
//! the runtime: the kernel counts an exclusive wake-up as delivered only when a thread sleeps in
//! `epoll_wait` on that very instance. A nested one is polled, not waited on, so each wake-up
//! goes on to the next worker: measured with two threads, 2 context switches per connection
//! nested (as many as without the flag), 1 registered directly.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;

/// The epoll descriptor of a runtime's I/O driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Poller(RawFd);

impl Poller {
    /// The epoll instance of the runtime the caller runs in or has entered (`Handle::enter`):
    /// the one that lists a probe socket registered with that runtime.
    pub fn of_current_runtime() -> io::Result<Poller> {
        let probe = tokio::net::UnixDatagram::unbound()?;
        let fd = probe.as_raw_fd();
        let ino = inode(fd)?;
        for entry in fs::read_dir("/proc/self/fd")? {
            let Some(candidate) = entry?.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let Ok(link) = fs::read_link(format!("/proc/self/fd/{candidate}")) else {
                continue;
            };
            if link.as_os_str() != "anon_inode:[eventpoll]" {
                continue;
            }
            if Poller(candidate).item(fd, ino).is_ok() {
                return Ok(Poller(candidate));
            }
        }
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            "the runtime's epoll instance is not in /proc/self/fd",
        ))
    }

    /// The registration of `fd` (the file of inode `ino`) in this instance, as its fdinfo
    /// says: `tfd: FD events: HEX data: HEX pos:N ino:HEX sdev:HEX`.
    fn item(self, fd: RawFd, ino: u64) -> io::Result<Item> {
        let info = fs::read_to_string(format!("/proc/self/fdinfo/{}", self.0))?;
        info.lines()
            .find_map(|line| Item::parse(line).filter(|item| item.fd == fd && item.ino == ino))
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "not registered"))
    }

    /// `epoll_ctl(op)` on `fd` with `events` and `data`.
    fn ctl(self, op: libc::c_int, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
        let mut event = libc::epoll_event { events, u64: data };
        // SAFETY: a plain system call; `event` outlives it. The descriptors are checked by the
        // kernel (a stale one fails, it corrupts nothing).
        match unsafe { libc::epoll_ctl(self.0, op, fd, &mut event) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }
}

/// One registration of an epoll instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Item {
    fd: RawFd,
    events: u32,
    data: u64,
    ino: u64,
}

impl Item {
    /// An fdinfo line of an epoll instance, if it is a registration.
    fn parse(line: &str) -> Option<Item> {
        let mut words = line.split_whitespace();
        if words.next()? != "tfd:" {
            return None;
        }
        let fd = words.next()?.parse().ok()?;
        let (mut events, mut data, mut ino) = (None, None, None);
        while let Some(word) = words.next() {
            match word {
                "events:" => events = u32::from_str_radix(words.next()?, 16).ok(),
                "data:" => data = u64::from_str_radix(words.next()?, 16).ok(),
                _ => {
                    if let Some(hex) = word.strip_prefix("ino:") {
                        ino = u64::from_str_radix(hex, 16).ok();
                    }
                }
            }
        }
        Some(Item {
            fd,
            events: events?,
            data: data?,
            ino: ino?,
        })
    }
}

/// The flags `EPOLLEXCLUSIVE` may go with (others make `epoll_ctl` fail).
const EXCLUSIVE_WITH: u32 =
    (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLET | libc::EPOLLWAKEUP) as u32;

/// How a listening socket's readiness wakes the workers: tokio's registration of it in one
/// worker's epoll instance, which [`Wakeup::set_exclusive`] switches between exclusive and
/// tokio's own.
#[derive(Debug)]
pub(super) struct Wakeup {
    poller: Poller,
    /// Tokio's registration, as found.
    tokio: Item,
}

impl Wakeup {
    /// Finds the registration of `socket` in `poller` (tokio's, made when it was registered
    /// with that runtime).
    pub fn find(poller: Poller, socket: &impl AsRawFd) -> io::Result<Wakeup> {
        let fd = socket.as_raw_fd();
        let tokio = poller.item(fd, inode(fd)?)?;
        Ok(Wakeup { poller, tokio })
    }

    /// Registers the socket again, exclusive or as tokio did, with tokio's data. Should the
    /// new registration be refused (a kernel without `EPOLLEXCLUSIVE`), tokio's is restored.
    pub fn set_exclusive(&self, exclusive: bool) -> io::Result<()> {
        let Item {
            fd, events, data, ..
        } = self.tokio;
        let wanted = match exclusive {
            true => (events & EXCLUSIVE_WITH) | libc::EPOLLEXCLUSIVE as u32,
            false => events,
        };
        self.poller.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)?;
        match self.poller.ctl(libc::EPOLL_CTL_ADD, fd, wanted, data) {
            Err(err) if wanted != events => {
                self.poller.ctl(libc::EPOLL_CTL_ADD, fd, events, data)?;
                Err(err)
            }
            done => done,
        }
    }

    /// Whether the registration is exclusive now, as the kernel says.
    #[cfg(test)]
    fn is_exclusive(&self) -> io::Result<bool> {
        let item = self.poller.item(self.tokio.fd, self.tokio.ino)?;
        Ok(item.events & libc::EPOLLEXCLUSIVE as u32 != 0 && item.data == self.tokio.data)
    }
}

/// The inode of the file `fd` stands for.
fn inode(fd: RawFd) -> io::Result<u64> {
    Ok(fs::metadata(format!("/proc/self/fd/{fd}"))?.ino())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_lines_parse() {
        let line = "tfd:       12 events:       19 data:     7f3a5c000b80  pos:0 ino:2f31 sdev:8";
        let item = Item::parse(line).unwrap();
        assert_eq!(
            item,
            Item {
                fd: 12,
                events: 0x19,
                data: 0x7f3a_5c00_0b80,
                ino: 0x2f31
            }
        );
        assert_eq!(Item::parse("pos:\t0"), None);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_listener_registration_turns_exclusive_and_back_and_still_accepts() {
        let poller = Poller::of_current_runtime().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let wakeup = Wakeup::find(poller, &listener).unwrap();
        assert!(!wakeup.is_exclusive().unwrap());
        wakeup.set_exclusive(true).unwrap();
        assert!(wakeup.is_exclusive().unwrap());
        // A client arriving now wakes this runtime through the new registration.
        let client = tokio::net::TcpStream::connect(addr);
        let (accepted, connected) = tokio::join!(listener.accept(), client);
        assert!(accepted.is_ok() && connected.is_ok());
        wakeup.set_exclusive(false).unwrap();
        assert!(!wakeup.is_exclusive().unwrap());
    }
}
