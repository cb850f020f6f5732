//! The echo server behind `netkit echo`: every byte a client sends comes back to it, each chunk
//! optionally preceded by a prefix (seed recipe 9's `Message received. Data: ...`).
//!
//! It runs on the [`crate::server`] accept loop: connections capped (more wait in the kernel's
//! backlog), accept errors backed off (`EMFILE` slows the loop down instead of spinning or
//! ending it), open connections closed at once on shutdown. What happens to each client is
//! reported as an [`Event`]; clients of Unix sockets are named by their credentials
//! (`SO_PEERCRED`).

use std::future::Future;
use std::io;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::endpoint::{Endpoint, Listener, Peer, Stream};
use crate::error::Error;
use crate::server::{self, Cancel, Reporter, Stop};

/// Bytes read (and echoed) at a time at first: a client of small messages keeps a small
/// buffer (a thousand of them at once hold 8 MB, not 256 MB that the allocator then keeps).
const FIRST_CHUNK: usize = 8 * 1024;

/// Bytes read (and echoed) at a time at most: a read that fills the buffer doubles it, up to
/// this, so a bulk transfer takes few system calls.
const CHUNK: usize = 256 * 1024;

/// What happened to a client, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A client connected.
    Connected {
        /// Its address, or for Unix sockets its credentials.
        peer: String,
    },
    /// A client closed its side; everything it sent was echoed.
    Closed {
        /// Its address, or for Unix sockets its credentials.
        peer: String,
        /// Bytes echoed.
        bytes: u64,
    },
    /// The connection failed.
    Failed {
        /// Its address, or for Unix sockets its credentials.
        peer: String,
        /// What went wrong.
        error: String,
    },
}

/// How the echo server answers.
#[derive(Debug, Clone)]
pub struct EchoConfig {
    /// Written before every echoed chunk (empty: plain echo).
    pub prefix: Vec<u8>,
    /// Connections served at once; more wait in the backlog.
    pub max_conns: usize,
}

impl Default for EchoConfig {
    fn default() -> Self {
        EchoConfig {
            prefix: Vec::new(),
            max_conns: 1024,
        }
    }
}

/// Binds `endpoint`; a Unix socket file gets permission bits `mode`.
///
/// The file is created under a umask that leaves only the owner's bits, then changed to `mode`,
/// so it is never more open than asked for, not even for an instant.
pub async fn listen(endpoint: &Endpoint, mode: u32) -> Result<Listener, Error> {
    let Endpoint::Unix(path) = endpoint else {
        return endpoint.listen().await;
    };
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = endpoint.listen().await;
    nix::sys::stat::umask(old);
    let listener = bound?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(format!("chmod {:o} {}", mode, path.display()), e))?;
    Ok(listener)
}

/// Echoes on every connection of `listener` until `shutdown` completes, then stops accepting,
/// closes open connections and drops the listener (which removes its socket file). Every
/// [`Event`] goes to `on_event`; when it fails, the server stops and returns its error.
pub async fn serve<E>(
    listener: Listener,
    config: EchoConfig,
    shutdown: impl Future,
    on_event: E,
) -> io::Result<()>
where
    E: FnMut(Event) -> io::Result<()>,
{
    let prefix: Arc<[u8]> = config.prefix.into();
    let name = listener.local_addr();
    let handler =
        move |(stream, peer): (Stream, Peer), _cancel: Cancel, events: Reporter<Event>| {
            serve_client(stream, peer.to_string(), prefix.clone(), events)
        };
    let stopping = async {
        shutdown.await;
        tracing::info!("shutting down {name}");
    };
    server::serve_reporting(
        listener,
        stopping,
        config.max_conns,
        handler,
        Stop::Abort,
        on_event,
    )
    .await
}

/// Serves one client and reports how it went.
async fn serve_client(
    mut stream: Stream,
    peer: String,
    prefix: Arc<[u8]>,
    events: Reporter<Event>,
) {
    let peer = describe_peer(&stream, peer);
    events.report(Event::Connected { peer: peer.clone() });
    events.report(match echo(&mut stream, &prefix).await {
        Ok(bytes) => Event::Closed { peer, bytes },
        Err(err) => Event::Failed {
            peer,
            error: crate::error::describe_io(&err),
        },
    });
}

/// Names a client: its address, or for Unix sockets its credentials.
fn describe_peer(stream: &Stream, peer: String) -> String {
    let Stream::Unix(unix) = stream else {
        return peer;
    };
    match unix.peer_cred() {
        Ok(cred) => format!(
            "unix client pid={} uid={} gid={}",
            cred.pid()
                .map_or_else(|| "?".to_string(), |p| p.to_string()),
            cred.uid(),
            cred.gid()
        ),
        Err(_) => "unix client".to_string(),
    }
}

/// Echoes until the client's end of file, then half-closes; returns the bytes read.
pub async fn echo(stream: &mut Stream, prefix: &[u8]) -> io::Result<u64> {
    let mut buf = vec![0u8; FIRST_CHUNK];
    let mut reply = Vec::new();
    let mut total = 0u64;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            stream.shutdown().await?;
            return Ok(total);
        }
        total += n as u64;
        if n == buf.len() && buf.len() < CHUNK {
            buf.resize(buf.len() * 2, 0);
        }
        if prefix.is_empty() {
            stream.write_all(&buf[..n]).await?;
        } else {
            reply.clear();
            reply.extend_from_slice(prefix);
            reply.extend_from_slice(&buf[..n]);
            stream.write_all(&reply).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    async fn start(
        text: &str,
        prefix: &[u8],
    ) -> (
        String,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let endpoint = Endpoint::parse_listen(text).unwrap();
        let listener = listen(&endpoint, 0o600).await.unwrap();
        let addr = listener.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let config = EchoConfig {
            prefix: prefix.to_vec(),
            ..EchoConfig::default()
        };
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            serve(listener, config, shutdown, |_| Ok(())).await.unwrap();
        });
        (addr, stop, server)
    }

    async fn ask(addr: &str, message: &[u8]) -> Vec<u8> {
        let endpoint: Endpoint = addr.parse().unwrap();
        let mut stream = endpoint.connect(Duration::from_secs(5)).await.unwrap();
        let mut reply = Vec::new();
        crate::ipc::exchange(
            &mut stream,
            message,
            &mut reply,
            None,
            std::future::pending(),
        )
        .await
        .unwrap();
        reply
    }

    #[test]
    fn echoes_on_tcp_with_and_without_prefix() {
        runtime().block_on(async {
            let (addr, stop, server) = start("127.0.0.1:0", b"").await;
            assert_eq!(ask(&addr, b"hello").await, b"hello");
            stop.send(()).unwrap();
            server.await.unwrap();

            let (addr, stop, server) = start("[::1]:0", b"Data: ").await;
            assert_eq!(ask(&addr, b"hi").await, b"Data: hi");
            stop.send(()).unwrap();
            server.await.unwrap();
        });
    }

    #[test]
    fn unix_socket_file_gets_its_mode_and_goes_away_on_shutdown() {
        use std::os::unix::fs::PermissionsExt;
        runtime().block_on(async {
            let path =
                std::env::temp_dir().join(format!("netkit-echo-{}.sock", std::process::id()));
            let endpoint = Endpoint::Unix(path.clone());
            let listener = listen(&endpoint, 0o640).await.unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o640);
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let server = tokio::spawn(serve(listener, EchoConfig::default(), stopped, |_| Ok(())));
            let text = format!("unix:{}", path.display());
            assert_eq!(ask(&text, b"over unix").await, b"over unix");
            stop.send(()).unwrap();
            server.await.unwrap().unwrap();
            assert!(!path.exists(), "socket file removed on shutdown");
        });
    }
}
