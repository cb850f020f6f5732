//! Pipes for `splice(2)`: bytes move from a socket into a pipe and from the pipe into another
//! socket without entering user space. These are the non-blocking system calls only; waiting
//! for readiness is the caller's (the forwarder's relay).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};

/// A non-blocking pipe carrying one direction of a connection.
#[derive(Debug)]
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    /// A non-blocking, close-on-exec pipe, enlarged to `size` bytes when the system allows
    /// (`F_SETPIPE_SZ`; an unprivileged user is held to `fs.pipe-max-size`).
    pub fn new(size: usize) -> io::Result<Pipe> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
        let asked = i32::try_from(size).unwrap_or(i32::MAX);
        let _ = fcntl(&write, FcntlArg::F_SETPIPE_SZ(asked));
        let capacity = fcntl(&write, FcntlArg::F_GETPIPE_SZ)?;
        Ok(Pipe {
            read,
            write,
            capacity: usize::try_from(capacity).unwrap_or(65536),
        })
    }

    /// How many bytes the pipe holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Moves up to `len` bytes from `src` into the pipe: the bytes moved, 0 at `src`'s end of
    /// file, `WouldBlock` when `src` has nothing (or the pipe is full).
    pub fn fill_from(&self, src: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
        Ok(splice(src, None, self.write.as_fd(), None, len, flags())?)
    }

    /// Moves up to `len` bytes from the pipe into `dst`: the bytes moved, `WouldBlock` when
    /// `dst` takes nothing now.
    pub fn drain_to(&self, dst: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
        Ok(splice(self.read.as_fd(), None, dst, None, len, flags())?)
    }
}

fn flags() -> SpliceFFlags {
    SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    use super::*;

    #[test]
    fn bytes_go_through_the_pipe_unchanged() {
        let pipe = Pipe::new(256 * 1024).unwrap();
        assert!(pipe.capacity() >= 4096);
        let (mut writer, src) = UnixStream::pair().unwrap();
        let (dst, mut reader) = UnixStream::pair().unwrap();
        writer.write_all(b"zero copy").unwrap();
        drop(writer);
        assert_eq!(pipe.fill_from(src.as_fd(), 1024).unwrap(), 9);
        assert_eq!(pipe.drain_to(dst.as_fd(), 9).unwrap(), 9);
        assert_eq!(pipe.fill_from(src.as_fd(), 1024).unwrap(), 0, "end of file");
        drop(dst);
        let mut got = String::new();
        reader.read_to_string(&mut got).unwrap();
        assert_eq!(got, "zero copy");
        let empty = pipe.drain_to(src.as_fd(), 1).unwrap_err();
        assert_eq!(empty.kind(), io::ErrorKind::WouldBlock);
    }
}
