//! The Unix stream sockets of `unix:` endpoints, bound and connected by rustix and handed to
//! tokio.
//!
//! A path may fill all 108 bytes of `sun_path`, leaving no room for a terminating NUL: the
//! kernel takes it so (unix(7)), and so do socat and `ncat -U`. std, tokio (through mio),
//! socket2 and nix 0.32's `UnixAddr::new` all refuse it, wanting the NUL inside; rustix's
//! `SocketAddrUnix` takes it, and an abstract name of up to 107 bytes after its leading NUL.
//! A socket made here is the same non-blocking, close-on-exec socket tokio would make, with
//! tokio's backlog.

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
use tokio::net::{UnixListener, UnixStream};

/// The backlog of a listener, as tokio's `UnixListener::bind` (mio) gives it.
const BACKLOG: i32 = 1024;

/// The address of a socket file at `path` (up to 108 bytes).
pub(super) fn at_path(path: &Path) -> io::Result<SocketAddrUnix> {
    Ok(SocketAddrUnix::new(path)?)
}

/// The address of an abstract name (up to 107 bytes: `sun_path` less its leading NUL).
pub(super) fn at_abstract(name: &str) -> io::Result<SocketAddrUnix> {
    Ok(SocketAddrUnix::new_abstract_name(name.as_bytes())?)
}

/// A non-blocking, close-on-exec Unix stream socket.
fn stream_socket() -> io::Result<OwnedFd> {
    let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
    Ok(rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        flags,
        None,
    )?)
}

/// A listener bound to `addr`.
pub(super) fn bind(addr: &SocketAddrUnix) -> io::Result<UnixListener> {
    let socket = stream_socket()?;
    rustix::net::bind(&socket, addr)?;
    rustix::net::listen(&socket, BACKLOG)?;
    UnixListener::from_std(socket.into())
}

/// One non-blocking connect to `addr`. A Unix stream connect completes at once or fails: a
/// server whose accept queue is full answers `EAGAIN` (an error of kind `WouldBlock`).
pub(super) fn connect(addr: &SocketAddrUnix) -> io::Result<UnixStream> {
    let socket = stream_socket()?;
    rustix::net::connect(&socket, addr)?;
    UnixStream::from_std(socket.into())
}
