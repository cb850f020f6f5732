//! The refusal to listen at a Unix socket path taken by something that is not a socket: it
//! says what is there, and for a symbolic link what the link points to, and what to do.
//!
//! Nothing is followed to be removed or taken over: a link to a stale socket (or to nothing)
//! is refused like any other file, with the link's target named as the place to listen
//! instead. socat refuses such a path with `"PATH" exists`, `ncat -lU` with `Address already
//! in use`; neither says what is there.

use std::fs::{FileType, Metadata};
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use rustix::net::SocketAddrUnix;

use super::unix_path::liveness;

/// The error for `path`, whose `meta` (not followed) is not a socket's; `addr` is the socket
/// address of `path`, for a test connect through a link to a socket.
pub(super) fn refusal(path: &Path, meta: &Metadata, addr: &SocketAddrUnix) -> io::Error {
    let why = if meta.file_type().is_symlink() {
        link(path, addr)
    } else {
        format!(
            "{} (not a socket) is in the way; remove it or choose another path",
            kind(&meta.file_type())
        )
    };
    io::Error::new(io::ErrorKind::AlreadyExists, why)
}

/// The refusal of a symbolic link at `path`: what it points to, and where one could listen.
fn link(path: &Path, addr: &SocketAddrUnix) -> String {
    let Ok(target) = std::fs::read_link(path) else {
        return "a symbolic link is in the way; remove it or choose another path".to_string();
    };
    let target = beside(path, &target);
    let shown = target.display();
    let (what, listenable) = match std::fs::metadata(path) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => ("nothing there".to_string(), true),
        Err(err) => (
            format!("not examined: {}", crate::error::describe_io(&err)),
            false,
        ),
        Ok(meta) if meta.file_type().is_socket() => match liveness(addr) {
            None => ("a stale socket".to_string(), true),
            Some((what, why)) => (format!("{what}: {why}"), false),
        },
        Ok(meta) => (kind(&meta.file_type()).to_string(), false),
    };
    let advice = if listenable {
        format!("remove it, or listen on unix:{shown}")
    } else {
        "remove it or choose another path".to_string()
    };
    format!(
        "a symbolic link to {shown} ({what}) is in the way; a link is neither followed nor \
         removed: {advice}"
    )
}

/// `target` as read from the link at `path`: a relative one is taken from the link's directory.
fn beside(path: &Path, target: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if target.is_relative() && !dir.as_os_str().is_empty() => dir.join(target),
        _ => target.to_path_buf(),
    }
}

/// What a file of type `kind` is, in words.
fn kind(kind: &FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_file() {
        "a regular file"
    } else if kind.is_fifo() {
        "a named pipe"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else {
        "a file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_target_is_taken_from_the_links_directory() {
        let at = Path::new("/run/app/link");
        assert_eq!(
            beside(at, Path::new("real.sock")),
            Path::new("/run/app/real.sock")
        );
        assert_eq!(beside(at, Path::new("/abs.sock")), Path::new("/abs.sock"));
        assert_eq!(beside(Path::new("link"), Path::new("x")), Path::new("x"));
    }
}
