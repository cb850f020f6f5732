//! Safe binding of Unix sockets at a path: never unlink a live socket (another server is
//! listening) nor a file that is not a socket; replace a stale socket file; remove ours when
//! the listener is dropped.
//!
//! A socket file is stale only when a test connect is refused (`ECONNREFUSED`: nobody is bound
//! to it). A live server with a full accept queue answers `EAGAIN`, and any other answer is
//! just as inconclusive: in all those cases the file is left alone.

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
    probe(path).await?;
    std::fs::remove_file(path)?;
    let listener = UnixListener::bind(path)?;
    Ok((listener, Guard(path.to_path_buf())))
}

/// Ok when the socket at `path` is stale (a connect is refused); an "address in use" error
/// when it is, or may be, live.
async fn probe(path: &Path) -> io::Result<()> {
    let why = match UnixStream::connect(path).await {
        Err(err) if err.raw_os_error() == Some(nix::errno::Errno::ECONNREFUSED as i32) => {
            return Ok(())
        }
        Ok(_) => "a live socket is there (another server is listening)".to_string(),
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
            "a live socket is there (its server is busy: accept queue full)".to_string()
        }
        Err(err) => format!(
            "a socket is there that may be live (a test connect gave: {})",
            crate::error::describe_io(&err)
        ),
    };
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("{why}; stop it or choose another path"),
    ))
}
