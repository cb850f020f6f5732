//! systemd socket activation (sd_listen_fds(3)): the listening sockets systemd passes as
//! descriptors 3, 4, ... with `LISTEN_FDS` (how many), `LISTEN_PID` (for which process) and
//! `LISTEN_FDNAMES` (their `FileDescriptorName=`s, colon-separated), taken once at start
//! ([`Activation::from_env`], before any thread: it clears the three variables and marks the
//! descriptors close-on-exec, so `exec:` children inherit neither).
//!
//! A rule listening on `systemd:NAME` serves every passed socket named NAME; one listening on
//! `systemd:` (no name) serves one socket: the first rule of that form the first socket that no
//! `systemd:NAME` rule names, the second the next one, in the order systemd passed them (the
//! order of the `ListenStream=` lines). Rules listen on duplicates, never on the passed
//! descriptors themselves, which stay open as long as the process lives: a rule removed by a
//! reload closes its duplicate, and a reload that brings it back finds the socket again.

use std::collections::BTreeSet;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::endpoint::{Endpoint, Listener};
use crate::error::Error;

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const FIRST_FD: RawFd = 3;

/// The sockets passed by systemd, with their names.
#[derive(Debug, Default)]
pub struct Activation {
    sockets: Vec<(String, OwnedFd)>,
}

/// What the activation environment said, before any descriptor is taken.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Passed {
    count: usize,
    names: Vec<String>,
}

impl Activation {
    /// Takes the sockets passed to this process, if any (none when `LISTEN_PID` is another
    /// process's, as sd_listen_fds(3) says). Call it before starting threads: it changes the
    /// environment.
    pub fn from_env() -> Result<Activation, Error> {
        let var = |name| std::env::var(name).ok();
        let passed = parse_env(
            var("LISTEN_PID").as_deref(),
            var("LISTEN_FDS").as_deref(),
            var("LISTEN_FDNAMES").as_deref(),
            std::process::id(),
        );
        for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
            std::env::remove_var(name);
        }
        let Some(passed) = passed.map_err(|why| environment("LISTEN_FDS", why))? else {
            return Ok(Activation::default());
        };
        let mut sockets = Vec::with_capacity(passed.count);
        for (i, name) in passed.names.into_iter().enumerate() {
            let fd = FIRST_FD + RawFd::try_from(i).unwrap_or(RawFd::MAX - FIRST_FD);
            sockets.push((name, take(fd)?));
        }
        Ok(Activation { sockets })
    }

    /// How many sockets were passed.
    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// The names of the sockets no rule of `listens` uses (to warn about).
    pub fn unused(&self, listens: &[Endpoint]) -> Vec<String> {
        let used = self.claims(listens);
        (0..self.sockets.len())
            .filter(|i| !used.iter().any(|set| set.contains(i)))
            .map(|i| {
                format!(
                    "{} (fd {})",
                    self.sockets[i].0,
                    self.sockets[i].1.as_raw_fd()
                )
            })
            .collect()
    }

    /// For each of `listens`, the sockets it serves (indexes; none for other endpoints).
    fn claims(&self, listens: &[Endpoint]) -> Vec<Vec<usize>> {
        let named: BTreeSet<&str> = listens
            .iter()
            .filter_map(|l| match l {
                Endpoint::Systemd(name) if !name.is_empty() => Some(name.as_str()),
                _ => None,
            })
            .collect();
        let mut unnamed =
            (0..self.sockets.len()).filter(|&i| !named.contains(self.sockets[i].0.as_str()));
        listens
            .iter()
            .map(|listen| match listen {
                Endpoint::Systemd(name) if name.is_empty() => unnamed.next().into_iter().collect(),
                Endpoint::Systemd(name) => (0..self.sockets.len())
                    .filter(|&i| self.sockets[i].0 == *name)
                    .collect(),
                _ => Vec::new(),
            })
            .collect()
    }

    /// Listeners for rule `index` of `listens` (a `systemd:` one), each on a duplicate of a
    /// passed socket; exit-3 errors that say what is missing.
    pub fn listeners(&self, listens: &[Endpoint], index: usize) -> Result<Vec<Listener>, Error> {
        let listen = &listens[index];
        let what = format!("listen on {listen}");
        let claimed = self.claims(listens).swap_remove(index);
        if claimed.is_empty() {
            return Err(environment(&what, self.missing(listen)));
        }
        claimed
            .into_iter()
            .map(|i| listener(&self.sockets[i].1).map_err(|e| Error::io(what.clone(), e)))
            .collect()
    }

    /// The datagram socket for rule `index` of `listens` (a `systemd:` one whose targets are
    /// `udp:`), a duplicate of the passed socket; exit-3 errors that say what is missing or
    /// wrong (a stream socket, several sockets of one name).
    pub fn datagram(
        &self,
        listens: &[Endpoint],
        index: usize,
    ) -> Result<std::net::UdpSocket, Error> {
        let listen = &listens[index];
        let what = format!("listen on {listen}");
        let claimed = self.claims(listens).swap_remove(index);
        let socket = match claimed.as_slice() {
            [] => return Err(environment(&what, self.missing(listen))),
            [one] => &self.sockets[*one].1,
            more => {
                let why = format!(
                    "{} sockets were passed for it; a udp rule serves one (give each \
                     ListenDatagram= its own FileDescriptorName=)",
                    more.len()
                );
                return Err(environment(&what, why));
            }
        };
        datagram(socket).map_err(|e| Error::io(what, e))
    }

    /// Why no socket is there for `listen`.
    fn missing(&self, listen: &Endpoint) -> String {
        if self.sockets.is_empty() {
            return "systemd passed no sockets (LISTEN_FDS is unset, or LISTEN_PID is not \
                    this process); start netkit from a .socket unit"
                .into();
        }
        let names: Vec<&str> = self.sockets.iter().map(|(n, _)| n.as_str()).collect();
        match listen {
            Endpoint::Systemd(name) if !name.is_empty() => format!(
                "no socket named {name} was passed (LISTEN_FDNAMES: {}); set \
                 FileDescriptorName={name} in the .socket unit",
                names.join(":")
            ),
            _ => format!(
                "no socket left for it: systemd passed {} ({}), taken by name or by earlier \
                 systemd: rules",
                names.len(),
                names.join(":")
            ),
        }
    }
}

/// What the environment says, when the sockets are for this process (`pid`).
fn parse_env(
    pid: Option<&str>,
    fds: Option<&str>,
    names: Option<&str>,
    own: u32,
) -> Result<Option<Passed>, String> {
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(None);
    };
    if pid.trim().parse::<u32>().ok() != Some(own) {
        return Ok(None);
    }
    let count: usize = fds
        .trim()
        .parse()
        .map_err(|_| format!("LISTEN_FDS={fds} is not a count of descriptors"))?;
    let names: Vec<String> = match names {
        Some(names) => names.split(':').map(str::to_string).collect(),
        None => vec!["unknown".to_string(); count],
    };
    if names.len() != count {
        return Err(format!(
            "LISTEN_FDNAMES has {} names for {count} descriptors",
            names.len()
        ));
    }
    Ok(Some(Passed { count, names }))
}

/// Takes ownership of passed descriptor `fd`, marking it close-on-exec.
fn take(fd: RawFd) -> Result<OwnedFd, Error> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    let what = format!("take socket fd {fd} passed by systemd");
    // SAFETY: only borrowed for this call; fcntl on a closed descriptor fails with EBADF,
    // which is how a missing one is found.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .map_err(|e| Error::io(what, io::Error::from(e)))?;
    // SAFETY: the descriptor is open (checked above) and, by the activation protocol, passed
    // to this process to own; nothing else in the process takes it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A listener on a duplicate of passed socket `fd`: TCP or Unix, listening, stream.
fn listener(fd: &OwnedFd) -> io::Result<Listener> {
    let socket = socket2::Socket::from(fd.as_fd().try_clone_to_owned()?);
    if socket.r#type()? != socket2::Type::STREAM || !socket.is_listener()? {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a listening stream socket (Accept=yes is not supported; a datagram socket \
             serves udp: targets)",
        ));
    }
    socket.set_nonblocking(true)?;
    if socket.domain()? == socket2::Domain::UNIX {
        let std: std::os::unix::net::UnixListener = OwnedFd::from(socket).into();
        return Ok(Listener::from(tokio::net::UnixListener::from_std(std)?));
    }
    let std: std::net::TcpListener = socket.into();
    Ok(Listener::from(tokio::net::TcpListener::from_std(std)?))
}

/// A UDP socket on a duplicate of passed socket `fd`.
fn datagram(fd: &OwnedFd) -> io::Result<std::net::UdpSocket> {
    let socket = socket2::Socket::from(fd.as_fd().try_clone_to_owned()?);
    if socket.r#type()? != socket2::Type::DGRAM || socket.domain()? == socket2::Domain::UNIX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a UDP socket (a udp: target needs ListenDatagram= in the .socket unit)",
        ));
    }
    Ok(socket.into())
}

/// An environment error (exit 3) about `what`.
fn environment(what: &str, why: String) -> Error {
    Error::io(what, io::Error::new(io::ErrorKind::NotFound, why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_is_read_as_sd_listen_fds_reads_it() {
        let ours = parse_env(Some("42"), Some("2"), Some("web:api"), 42);
        assert_eq!(
            ours,
            Ok(Some(Passed {
                count: 2,
                names: vec!["web".into(), "api".into()]
            }))
        );
        assert_eq!(parse_env(Some("41"), Some("2"), None, 42), Ok(None));
        assert_eq!(parse_env(None, Some("2"), None, 42), Ok(None));
        let unnamed = parse_env(Some("42"), Some("1"), None, 42).unwrap().unwrap();
        assert_eq!(unnamed.names, ["unknown"]);
        assert!(parse_env(Some("42"), Some("x"), None, 42).is_err());
        assert!(parse_env(Some("42"), Some("2"), Some("a"), 42).is_err());
    }

    fn passed(names: &[&str]) -> Activation {
        let sockets = names
            .iter()
            .map(|n| {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                (n.to_string(), OwnedFd::from(l))
            })
            .collect();
        Activation { sockets }
    }

    #[test]
    fn names_take_theirs_and_bare_rules_the_rest_in_order() {
        let activation = passed(&["web", "x", "web", "y"]);
        let listens: Vec<Endpoint> = ["systemd:", "systemd:web", "systemd:", "8080"]
            .iter()
            .map(|l| Endpoint::parse_listen(l).unwrap())
            .collect();
        let claims = activation.claims(&listens);
        assert_eq!(claims, vec![vec![1], vec![0, 2], vec![3], vec![]]);
        assert!(activation.unused(&listens).is_empty());
        assert_eq!(activation.unused(&listens[1..2]).len(), 2);
    }

    #[tokio::test]
    async fn missing_sockets_are_environment_errors_saying_what_to_do() {
        let activation = passed(&["web"]);
        let listens = vec![Endpoint::parse_listen("systemd:api").unwrap()];
        let err = activation.listeners(&listens, 0).unwrap_err();
        assert_eq!(err.class(), crate::ErrorClass::Environment);
        assert!(err.to_string().contains("FileDescriptorName=api"), "{err}");
        let none = Activation::default().listeners(&listens, 0).unwrap_err();
        assert!(
            none.to_string().contains("systemd passed no sockets"),
            "{none}"
        );
        let listens = vec![Endpoint::parse_listen("systemd:web").unwrap()];
        let got = activation.listeners(&listens, 0).unwrap();
        assert_eq!(got.len(), 1);
        assert!(got[0].local_addr().starts_with("127.0.0.1:"));
    }
}
