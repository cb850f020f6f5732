//! Safe binding of Unix sockets at a path: never unlink a live socket (another server is
//! listening) nor a file that is not a socket; replace a stale socket file; remove ours when
//! the listener is dropped.

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};

/// Removes the socket file it names when dropped.
#[derive(Debug)]
pub struct Guard(PathBuf);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Binds a listener at `path`, taking over a stale socket file but nothing else.
pub(super) async fn bind(path: &Path) -> io::Result<(UnixListener, Guard)> {
    match UnixListener::bind(path) {
        Ok(listener) => return Ok((listener, Guard(path.to_path_buf()))),
        Err(err) if err.kind() != io::ErrorKind::AddrInUse => return Err(err),
        Err(_) => {}
    }
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "a file that is not a socket is in the way; remove it or choose another path",
        ));
    }
    if UnixStream::connect(path).await.is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "a live socket is there (another server is listening); stop it or choose another path",
        ));
    }
    std::fs::remove_file(path)?;
    let listener = UnixListener::bind(path)?;
    Ok((listener, Guard(path.to_path_buf())))
}
