//! Connecting to and listening on endpoints; [`Stream`] and [`Listener`] hide whether the
//! socket is TCP or Unix.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use nix::unistd::AccessFlags;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use super::happy_eyeballs::{self, HandshakeAck};
use super::{unix_addr, unix_connect, unix_path, Endpoint, Host};
use crate::error::Error;

/// A connected byte stream.
#[derive(Debug)]
pub enum Stream {
    /// TCP, with `TCP_NODELAY` set.
    Tcp(TcpStream),
    /// A Unix stream socket.
    Unix(UnixStream),
    /// The parent's end of the socketpair of an `exec:` child.
    Child(UnixStream, super::exec::Child),
}

/// A bound, listening socket.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// Unix; a path-bound listener removes its socket file when dropped.
    Unix(UnixListener, Option<unix_path::Guard>),
}

impl Endpoint {
    /// Every socket address a TCP or UDP endpoint stands for, in resolver order.
    pub async fn resolve(&self) -> Result<Vec<SocketAddr>, Error> {
        let (Endpoint::Tcp { host, port } | Endpoint::Udp { host, port }) = self else {
            return Ok(Vec::new());
        };
        let Host::Name(name) = host else {
            return Ok(host.socket_addr(*port).into_iter().collect());
        };
        let found = tokio::net::lookup_host((name.as_str(), *port))
            .await
            .map_err(|e| Error::Resolve {
                host: name.clone(),
                why: crate::error::describe_io(&e),
            })?;
        let mut found: Vec<SocketAddr> = found.collect();
        super::names::add_loopbacks(name, *port, &mut found);
        if found.is_empty() {
            return Err(Error::Resolve {
                host: name.clone(),
                why: "no addresses".into(),
            });
        }
        Ok(found)
    }

    /// Connects; the addresses of a name are tried Happy Eyeballs style (RFC 8305: staggered
    /// by 250 ms, families alternating, the first to answer wins), each bounded by `timeout`.
    /// A Unix server whose accept queue is full is waited for, up to `timeout`, as a blocking
    /// connect would (a timeout then says the queue stayed full).
    pub async fn connect(&self, timeout: Duration) -> Result<Stream, Error> {
        self.connect_with(timeout, HandshakeAck::Now).await
    }

    /// Connects to `addrs`, the addresses this TCP endpoint's name was looked up to apart (as
    /// `wait` looks names up, to bound the lookup on its own), as [`Endpoint::connect`]
    /// connects after its own lookup: Happy Eyeballs, each attempt bounded by `timeout`.
    pub async fn connect_resolved(
        &self,
        addrs: &[SocketAddr],
        timeout: Duration,
    ) -> Result<Stream, Error> {
        let delay = happy_eyeballs::ATTEMPT_DELAY;
        happy_eyeballs::connect(addrs, timeout, delay, HandshakeAck::Now)
            .await
            .map(Stream::Tcp)
            .map_err(|err| Error::io(format!("connect to {self}"), err))
    }

    /// [`Endpoint::connect`], with the last ACK of a TCP handshake sent as `ack` says (other
    /// streams have no handshake of their own).
    pub async fn connect_with(
        &self,
        timeout: Duration,
        ack: HandshakeAck,
    ) -> Result<Stream, Error> {
        let what = || format!("connect to {self}");
        match self {
            Endpoint::Tcp { host, port } => {
                let stream = match host.socket_addr(*port) {
                    // An address needs no resolving, nor the race of several.
                    Some(addr) => happy_eyeballs::attempt(addr, timeout, ack).await,
                    None => {
                        let addrs = self.resolve().await?;
                        let delay = happy_eyeballs::ATTEMPT_DELAY;
                        happy_eyeballs::connect(&addrs, timeout, delay, ack).await
                    }
                };
                stream
                    .map(Stream::Tcp)
                    .map_err(|err| Error::io(what(), err))
            }
            Endpoint::Unix(path) => connect_unix(unix_addr::at_path(path), timeout, self).await,
            Endpoint::Abstract(name) => {
                connect_unix(unix_addr::at_abstract(name), timeout, self).await
            }
            Endpoint::Exec(argv) => super::exec::spawn(argv).await,
            Endpoint::Systemd(_) => Err(Error::io("connect", systemd_only())),
            Endpoint::Udp { .. } => Err(Error::io("connect", datagram_only())),
        }
        .map_err(|err| match err {
            Error::Io { source, .. } => Error::io(what(), source),
            other => other,
        })
    }

    /// Binds and listens. TCP listeners use `SO_REUSEADDR`; a Unix path is only taken over
    /// when the socket file there is stale.
    pub async fn listen(&self) -> Result<Listener, Error> {
        let what = || format!("listen on {self}");
        match self {
            Endpoint::Tcp { .. } => {
                let addr = *self.resolve().await?.first().ok_or_else(|| {
                    Error::io(
                        what(),
                        io::Error::new(io::ErrorKind::NotFound, "no address"),
                    )
                })?;
                let listener = listen_tcp(addr).map_err(|e| Error::io(what(), e))?;
                Ok(Listener::from(listener))
            }
            Endpoint::Unix(path) => {
                let (listener, guard) =
                    unix_path::bind(path).map_err(|e| unix_listen_error(what(), path, e))?;
                Ok(Listener::Unix(listener, Some(guard)))
            }
            Endpoint::Abstract(name) => {
                let listener = unix_addr::at_abstract(name)
                    .and_then(|addr| unix_addr::bind(&addr))
                    .map_err(|e| Error::io(what(), e))?;
                Ok(Listener::Unix(listener, None))
            }
            Endpoint::Exec(_) => Err(Error::io(
                what(),
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "exec: endpoints can only be targets",
                ),
            )),
            Endpoint::Systemd(_) => Err(Error::io(what(), systemd_only())),
            Endpoint::Udp { .. } => Err(Error::io(what(), datagram_only())),
        }
    }
}

/// What connecting to, or binding, a `systemd:` endpoint gives: its socket comes from the
/// service manager, through `forward`'s socket activation.
fn systemd_only() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "systemd: sockets are passed by systemd to netkit forward; nothing binds them",
    )
}

/// A `udp:` endpoint has no stream to connect or accept: `forward::udp` serves it.
fn datagram_only() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "udp: endpoints are datagram endpoints, served by forward only",
    )
}

/// A peer address as it is logged: an IPv4 client of a dual-stack (`[::]`) listener arrives as
/// an IPv4-mapped IPv6 address (`[::ffff:127.0.0.1]:5000`) and is shown as the IPv4 address
/// it is (`127.0.0.1:5000`).
pub fn plain_peer(peer: SocketAddr) -> SocketAddr {
    match peer {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => peer,
        },
        v4 => v4,
    }
}

/// Connects to the Unix socket at `addr` (or fails to make it), as [`Endpoint::connect`] does.
async fn connect_unix(
    addr: io::Result<rustix::net::SocketAddrUnix>,
    timeout: Duration,
    shown: &Endpoint,
) -> Result<Stream, Error> {
    let addr = addr.map_err(|err| Error::io("connect", err))?;
    unix_connect::connect(&addr, timeout, shown)
        .await
        .map(Stream::from)
        .map_err(|err| Error::io("connect", err))
}

/// A Unix listen failure; "permission denied" names the directory the user may not write.
fn unix_listen_error(what: String, path: &Path, err: io::Error) -> Error {
    if err.kind() != io::ErrorKind::PermissionDenied {
        return Error::io(what, err);
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let writable = nix::unistd::access(dir, AccessFlags::W_OK | AccessFlags::X_OK).is_ok();
    if writable {
        return Error::io(what, err);
    }
    Error::UnixDirDenied {
        what,
        dir: dir.display().to_string(),
    }
}

fn listen_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    super::refuse_unzoned_link_local(addr)?;
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

impl From<TcpStream> for Stream {
    fn from(stream: TcpStream) -> Self {
        Stream::Tcp(stream)
    }
}

impl From<UnixStream> for Stream {
    fn from(stream: UnixStream) -> Self {
        Stream::Unix(stream)
    }
}

/// A TCP listener the caller bound (or was handed, e.g. by a service manager), with
/// `TCP_NODELAY` set on it: Linux copies a listener's options into each connection it accepts,
/// so they have it from the start, one system call fewer per connection.
impl From<TcpListener> for Listener {
    fn from(listener: TcpListener) -> Self {
        if let Err(err) = socket2::SockRef::from(&listener).set_nodelay(true) {
            tracing::debug!("TCP_NODELAY on a listener: {err}");
        }
        Listener::Tcp(listener)
    }
}

/// Who connected: a TCP client's address (an IPv4-mapped one as the IPv4 address it is, see
/// [`plain_peer`]), or a client of a Unix socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// A TCP client.
    Tcp(SocketAddr),
    /// A Unix socket's client.
    Unix,
}

impl Peer {
    /// The TCP client's address.
    pub fn addr(self) -> Option<SocketAddr> {
        match self {
            Peer::Tcp(addr) => Some(addr),
            Peer::Unix => None,
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // A link-local client with the name of the interface it came through.
            Peer::Tcp(addr) => Endpoint::tcp(*addr).fmt(f),
            Peer::Unix => f.write_str("unix"),
        }
    }
}

/// A Unix listener the caller bound; its socket file, if any, is the caller's to remove.
impl From<UnixListener> for Listener {
    fn from(listener: UnixListener) -> Self {
        Listener::Unix(listener, None)
    }
}

impl Listener {
    /// Accepts one connection; returns the stream and who it is from. A TCP connection has
    /// `TCP_NODELAY` from its listener.
    pub async fn accept(&self) -> io::Result<(Stream, Peer)> {
        match self {
            Listener::Tcp(listener) => {
                let (stream, peer) = listener.accept().await?;
                Ok((Stream::Tcp(stream), Peer::Tcp(plain_peer(peer))))
            }
            Listener::Unix(listener, _) => {
                let (stream, _) = listener.accept().await?;
                Ok((Stream::Unix(stream), Peer::Unix))
            }
        }
    }

    /// The bound address, for logs (`127.0.0.1:40123`, `unix:/run/x.sock`).
    pub fn local_addr(&self) -> String {
        match self {
            // As an endpoint is shown: a link-local address with its interface's name.
            Listener::Tcp(listener) => listener
                .local_addr()
                .map(|a| Endpoint::tcp(a).to_string())
                .unwrap_or_else(|_| "?".into()),
            Listener::Unix(listener, _) => match listener.local_addr() {
                Ok(addr) => match (addr.as_pathname(), addr.as_abstract_name()) {
                    (Some(path), _) => format!("unix:{}", path.display()),
                    (None, Some(name)) => format!("unix:@{}", String::from_utf8_lossy(name)),
                    _ => "unix:(unnamed)".into(),
                },
                Err(_) => "unix:?".into(),
            },
        }
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $call:expr) => {
        match $self.get_mut() {
            Stream::Tcp($s) => $call,
            Stream::Unix($s) => $call,
            Stream::Child($s, _) => $call,
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_shutdown(cx))
    }
}

/// Runs `$call` on the inner socket of any [`Stream`] variant.
macro_rules! each {
    ($stream:expr, $s:ident => $call:expr) => {
        match $stream {
            Stream::Tcp($s) => $call,
            Stream::Unix($s) | Stream::Child($s, _) => $call,
        }
    };
}

/// Readiness-based access for relays that drive both directions of a stream at once through
/// `&Stream` (no split halves, no locks): raw fd, readiness, non-blocking I/O, half-close.
impl Stream {
    /// The socket's file descriptor, borrowed (for `splice(2)`).
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        each!(self, s => s.as_fd())
    }

    /// Whether bytes or an end of file wait to be read now: a one-byte `MSG_PEEK`, which takes
    /// no byte. When nothing waits (`Ok(false)`), the stream's readiness is cleared as a read
    /// that found nothing clears it, so the next read waits for the poller instead of asking
    /// the kernel again (tokio takes an accepted stream for readable until a read says no).
    /// An error is the stream's pending one (its peer's reset), which the peek took: the
    /// kernel reports it once, and a read after it finds a plain end of file.
    pub fn readable_now(&self) -> io::Result<bool> {
        use nix::sys::socket::{recv, MsgFlags};
        use std::os::fd::AsRawFd;
        let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
        let peeked = self.try_io(tokio::io::Interest::READABLE, || {
            recv(self.fd().as_raw_fd(), &mut [0u8; 1], flags).map_err(io::Error::from)
        });
        match peeked {
            Ok(_) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Sends the ACK a TCP socket holds back (`TCP_QUICKACK` on), as the handshake's last one
    /// after a [`HandshakeAck::WithData`] connect. Unix streams have none.
    pub fn ack_now(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => socket2::SockRef::from(s).set_quickack(true),
            _ => Ok(()),
        }
    }

    /// Waits until the stream is readable (data, EOF or an error), using the stream's single
    /// reader waker slot: cheaper than [`Stream::ready`] when one task reads.
    pub async fn read_ready(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| each!(self, s => s.poll_read_ready(cx))).await
    }

    /// Waits until the stream is writable, using the stream's single writer waker slot.
    pub async fn write_ready(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| each!(self, s => s.poll_write_ready(cx))).await
    }

    /// Waits until the stream is ready for `interest`.
    pub async fn ready(&self, interest: tokio::io::Interest) -> io::Result<tokio::io::Ready> {
        each!(self, s => s.ready(interest).await)
    }

    /// Runs a non-blocking operation on the raw socket; `WouldBlock` clears readiness.
    pub fn try_io<R>(
        &self,
        interest: tokio::io::Interest,
        f: impl FnOnce() -> io::Result<R>,
    ) -> io::Result<R> {
        each!(self, s => s.try_io(interest, f))
    }

    /// Whether the peer's end of file has already been seen (the kernel reported
    /// `EPOLLRDHUP`), learnt without waiting and without a system call. A TCP read that did
    /// not fill its buffer after this says `true` took everything the peer sent.
    pub fn read_closed(&self) -> bool {
        let Stream::Tcp(s) = self else {
            return false;
        };
        use std::future::Future;
        let ready = std::pin::pin!(s.ready(tokio::io::Interest::READABLE));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        matches!(ready.poll(&mut cx), Poll::Ready(Ok(ready)) if ready.is_read_closed())
    }

    /// Writes what the stream takes of `buf` now, as [`Stream::try_write`], telling a TCP
    /// socket that more follows (`MSG_MORE`): the bytes wait in the socket until the next
    /// write, half-close or close, which then leaves in the same segment (a FIN with the last
    /// data instead of a segment of its own). The caller must follow it at once with one of
    /// those.
    pub fn try_write_more(&self, buf: &[u8]) -> io::Result<usize> {
        use nix::sys::socket::{send, MsgFlags};
        use std::os::fd::AsRawFd;
        let Stream::Tcp(s) = self else {
            return self.try_write(buf);
        };
        s.try_io(tokio::io::Interest::WRITABLE, || {
            let flags = MsgFlags::from_bits_retain(libc::MSG_MORE) | MsgFlags::MSG_NOSIGNAL;
            send(s.as_raw_fd(), buf, flags).map_err(io::Error::from)
        })
    }

    /// Reads without blocking; `WouldBlock` when nothing is buffered.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        each!(self, s => s.try_read(buf))
    }

    /// Writes without blocking; `WouldBlock` when the send buffer is full.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        each!(self, s => s.try_write(buf))
    }

    /// Half-closes the stream: sends FIN (or EOF on a Unix socket); reading goes on.
    pub fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(nix::sys::socket::Shutdown::Write)
    }

    /// Ends both directions: sends FIN (or EOF on a Unix socket), and reads give end of file
    /// at once, whatever the peer still sends (nothing more from it is wanted).
    pub fn shutdown_both(&self) -> io::Result<()> {
        self.shutdown(nix::sys::socket::Shutdown::Both)
    }

    /// `shutdown(2)` with `how`; a stream no longer connected has nothing to end.
    fn shutdown(&self, how: nix::sys::socket::Shutdown) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        match nix::sys::socket::shutdown(self.fd().as_raw_fd(), how) {
            Ok(()) | Err(nix::errno::Errno::ENOTCONN) => Ok(()),
            Err(errno) => Err(io::Error::from(errno)),
        }
    }

    /// Makes closing send a reset (`SO_LINGER` 0) instead of a clean end of file, so the peer
    /// learns that the stream was cut. Unix streams have no reset; they are left as they are.
    pub fn set_abortive_close(&self) {
        if let Stream::Tcp(s) = self {
            let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
        }
    }

    /// Waits until an error is pending on the stream (its peer reset it, or keepalive gave
    /// the peer up) and takes it (`SO_ERROR`, which clears it). Readiness alone, no read:
    /// for a side nothing reads any more, whose bytes and end of file were all taken.
    pub async fn failure(&self) -> io::Error {
        loop {
            if let Err(err) = self.ready(tokio::io::Interest::ERROR).await {
                return err;
            }
            match each!(self, s => s.take_error()) {
                Ok(Some(err)) | Err(err) => return err,
                // Already taken (by a write that failed): wait for the next one.
                Ok(None) => {
                    let none = || Err::<(), _>(io::ErrorKind::WouldBlock.into());
                    let _ = self.try_io(tokio::io::Interest::ERROR, none);
                }
            }
        }
    }

    /// Waits until the stream's peer is gone abortively. Unlike [`Stream::failure`] the
    /// error is left in the socket, for the next read to take after the bytes that came
    /// before it. TCP: the peer reset the connection, or keepalive gave it up (an error
    /// pending and the connection closed). A Unix stream (an `exec:` child's socketpair too):
    /// the peer closed with bytes it had not read, which leaves `ECONNRESET` pending here,
    /// the only error a Unix stream is given (its reset).
    pub async fn aborted(&self) {
        while self.ready(tokio::io::Interest::ERROR).await.is_ok() {
            if self.gone_abortively() {
                return;
            }
            // An error readiness left from before (its error already taken): wait for the
            // next one.
            let none = || Err::<(), _>(io::ErrorKind::WouldBlock.into());
            let _ = self.try_io(tokio::io::Interest::ERROR, none);
        }
        std::future::pending().await
    }

    /// Whether the peer is gone abortively now, its error still pending ([`Stream::aborted`]).
    pub(super) fn gone_abortively(&self) -> bool {
        /// `tcpi_state` of a connection that is over (`TCP_CLOSE` in the kernel's numbering).
        const CLOSED: u8 = 7;
        match self {
            Stream::Tcp(s) => {
                crate::sys::sockopt::tcp_info(s).is_ok_and(|info| info.tcpi_state == CLOSED)
            }
            Stream::Unix(_) | Stream::Child(..) => {
                crate::sys::sockopt::error_pending_peer_gone(&self.fd())
            }
        }
    }

    /// Takes the error pending on the stream (`SO_ERROR`, which clears it); a reset when none
    /// is left.
    pub fn take_failure(&self) -> io::Error {
        match each!(self, s => s.take_error()) {
            Ok(Some(err)) | Err(err) => err,
            Ok(None) => io::ErrorKind::ConnectionReset.into(),
        }
    }

    /// Whether a TCP stream's peer sent its FIN, `read` bytes having been read from it and its
    /// end of file after them: `TCP_INFO` counts a FIN as one byte received. Once a reset has
    /// been taken from the stream (by a write that failed) its reads end in an end of file
    /// whether a FIN came or not; this tells them apart. `None` for other streams, or when the
    /// kernel does not say.
    pub fn fin_received(&self, read: u64) -> Option<bool> {
        match self {
            Stream::Tcp(s) => crate::sys::sockopt::tcp_info(s)
                .ok()
                .filter(|info| info.tcpi_bytes_received > 0 || read == 0)
                .map(|info| info.tcpi_bytes_received > read),
            _ => None,
        }
    }

    /// Bytes sent on a TCP stream that its peer has acknowledged so far (`TCP_INFO`); `None`
    /// for other streams, or when the kernel does not say.
    pub fn acked(&self) -> Option<u64> {
        match self {
            Stream::Tcp(s) => crate::sys::sockopt::tcp_info(s)
                .ok()
                .map(|info| info.tcpi_bytes_acked),
            _ => None,
        }
    }

    /// The smoothed round-trip time of a TCP stream (`TCP_INFO`); `None` for other streams, or
    /// when the kernel does not say.
    pub fn rtt(&self) -> Option<std::time::Duration> {
        match self {
            Stream::Tcp(s) => crate::sys::sockopt::tcp_info(s)
                .ok()
                .map(|info| std::time::Duration::from_micros(u64::from(info.tcpi_rtt))),
            _ => None,
        }
    }

    /// Bytes of data sent on a TCP stream that its peer has not acknowledged yet (an abortive
    /// close throws them away); `None` for other streams, or when the kernel does not say.
    /// The FIN of a write side shut down is not counted (`TIOCOUTQ` counts it until it is
    /// acknowledged): 0 means every byte written reached the peer's kernel, whether it
    /// acknowledged the FIN or not.
    pub fn unacked(&self) -> Option<usize> {
        match self {
            Stream::Tcp(s) => tcp_data_unacked(s),
            _ => None,
        }
    }

    /// Bytes written to a Unix stream (or an `exec:` child's socketpair) that its peer has
    /// not read yet (`SIOCOUTQ`: they stay charged to the writer until read); `None` for TCP
    /// streams (see [`Stream::unacked`]), or when the kernel does not say.
    pub fn unread(&self) -> Option<usize> {
        match self {
            Stream::Unix(s) | Stream::Child(s, _) => crate::sys::sockopt::unacked(s).ok(),
            Stream::Tcp(_) => None,
        }
    }

    /// Bytes a Unix stream's peer (or an `exec:` child) sent that wait here unread
    /// (`FIONREAD`); `None` for TCP streams, or when the kernel does not say.
    pub fn unread_here(&self) -> Option<usize> {
        match self {
            Stream::Unix(s) | Stream::Child(s, _) => crate::sys::sockopt::unread_here(s).ok(),
            Stream::Tcp(_) => None,
        }
    }

    /// Whether the peer will send nothing more (it half-closed or closed: `POLLRDHUP`), asked
    /// of the kernel now, without reading.
    pub fn peer_done_sending(&self) -> bool {
        crate::sys::sockopt::peer_done_sending(&self.fd())
    }

    /// The peer's address, for TCP streams.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        match self {
            Stream::Tcp(s) => s.peer_addr().ok(),
            _ => None,
        }
    }

    /// Our own address, for TCP streams.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Stream::Tcp(s) => s.local_addr().ok(),
            _ => None,
        }
    }
}

/// The bytes of data `stream` sent that its peer has not acknowledged. `TIOCOUTQ` is the
/// kernel's `write_seq - snd_una`, and a FIN takes a sequence number of its own, counted from
/// the moment the write side is shut (sent or still queued) until acknowledged: while the
/// state says a FIN is out unacknowledged (`FIN_WAIT1`, `CLOSING`, `LAST_ACK`) it counts one
/// more than the data; once it says the FIN was acknowledged (`FIN_WAIT2`, `TIME_WAIT`), so
/// was every byte before it. `TCP_INFO` is asked only when `TIOCOUTQ` is not 0, and
/// `TIOCOUTQ` again after it: a FIN state seen stays until the FIN's acknowledgement, which
/// also empties the queue, so the count read after it holds the FIN or nothing.
fn tcp_data_unacked(stream: &TcpStream) -> Option<usize> {
    /// `tcpi_state` numbers of the kernel's `include/net/tcp_states.h`.
    const FIN_WAIT1: u8 = 4;
    const FIN_WAIT2: u8 = 5;
    const TIME_WAIT: u8 = 6;
    const LAST_ACK: u8 = 9;
    const CLOSING: u8 = 11;
    let queued = crate::sys::sockopt::unacked(stream).ok()?;
    if queued == 0 {
        return Some(0);
    }
    let Ok(info) = crate::sys::sockopt::tcp_info(stream) else {
        return Some(queued);
    };
    match info.tcpi_state {
        FIN_WAIT1 | CLOSING | LAST_ACK => crate::sys::sockopt::unacked(stream)
            .ok()
            .map(|queued| queued.saturating_sub(1)),
        FIN_WAIT2 | TIME_WAIT => Some(0),
        _ => Some(queued),
    }
}
