//! Safe binding of Unix sockets at a path: never unlink a live socket (another server is
//! listening) nor a file that is not a socket; replace a stale socket file; remove ours when
//! the listener is dropped, and only ours (not a file put in its place since).
//!
//! A socket file is stale only when a test connect is refused (`ECONNREFUSED`: nobody is bound
//! to it). A live server with a full accept queue answers `EAGAIN`, and any other answer is
//! just as inconclusive: in all those cases the file is left alone. Anything else at the path,
//! a symbolic link above all, is refused and left alone, the refusal saying what it is
//! (`in_the_way`).

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

use super::{in_the_way, unix_addr};

/// Removes the socket file it names when dropped — if it is still ours: the same file
/// (device and inode) as the bind made, not one another server (or anyone) put there since.
#[derive(Debug)]
pub struct Guard {
    path: PathBuf,
    /// The device and inode of the socket file the bind made.
    file: Option<(u64, u64)>,
}

impl Guard {
    /// Guards the socket file just bound at `path`.
    fn new(path: &Path) -> Guard {
        Guard {
            path: path.to_path_buf(),
            file: identity(path),
        }
    }
}

/// The device and inode of the socket file at `path`, when there is one.
fn identity(path: &Path) -> Option<(u64, u64)> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    meta.file_type()
        .is_socket()
        .then(|| (meta.dev(), meta.ino()))
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.file.is_some() && identity(&self.path) == self.file {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds a listener at `path`, taking over a stale socket file but nothing else.
pub(super) fn bind(path: &Path) -> io::Result<(UnixListener, Guard)> {
    let addr = unix_addr::at_path(path)?;
    match unix_addr::bind(&addr) {
        Ok(listener) => return Ok((listener, Guard::new(path))),
        Err(err) if err.kind() != io::ErrorKind::AddrInUse => return Err(err),
        Err(_) => {}
    }
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.file_type().is_socket() {
        return Err(in_the_way::refusal(path, &meta, &addr));
    }
    if let Some((what, why)) = liveness(&addr) {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{what} is there ({why}); stop it or choose another path"),
        ));
    }
    std::fs::remove_file(path)?;
    let listener = unix_addr::bind(&addr)?;
    Ok((listener, Guard::new(path)))
}

/// None when the socket at `addr` (through any link) is stale, a connect to it refused;
/// otherwise what is there and why it is, or may be, live: ("a live socket", "another server
/// is listening").
pub(super) fn liveness(addr: &rustix::net::SocketAddrUnix) -> Option<(&'static str, String)> {
    match unix_addr::connect(addr) {
        Err(err) if err.raw_os_error() == Some(nix::errno::Errno::ECONNREFUSED as i32) => None,
        Ok(_) => Some(("a live socket", "another server is listening".to_string())),
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => Some((
            "a live socket",
            "its server is busy: accept queue full".to_string(),
        )),
        Err(err) => Some((
            "a socket that may be live",
            format!("a test connect gave: {}", crate::error::describe_io(&err)),
        )),
    }
}
