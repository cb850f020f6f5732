//! The echo server behind `netkit echo`: every byte a client sends comes back to it, each chunk
//! optionally preceded by a prefix (seed recipe 9's `Message received. Data: ...`).
//!
//! Shaped like mini-redis's server: [`serve`] takes a bound [`Listener`] and a shutdown future,
//! caps concurrent connections with a semaphore (more wait in the kernel's backlog), and backs
//! off on accept errors (`EMFILE` slows the loop down instead of spinning or ending it).
//! Clients of Unix sockets are logged with their credentials (`SO_PEERCRED`).

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::endpoint::{Endpoint, Listener, Stream};
use crate::error::Error;

/// First pause after a failed `accept`; doubled on each failure in a row.
const BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest pause between failed `accept`s.
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Bytes read (and echoed) at a time.
const CHUNK: usize = 256 * 1024;

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
/// closes open connections and drops the listener (which removes its socket file).
pub async fn serve(listener: Listener, config: EchoConfig, shutdown: impl Future) {
    let limit = Arc::new(Semaphore::new(config.max_conns.max(1)));
    let prefix: Arc<[u8]> = config.prefix.into();
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            next = next_client(&listener, &limit) => {
                let Some((permit, stream, peer)) = next else { break };
                tasks.spawn(serve_client(stream, peer, prefix.clone(), permit));
            }
        }
        while tasks.try_join_next().is_some() {}
    }
    tracing::info!("shutting down {}", listener.local_addr());
    drop(listener);
    tasks.shutdown().await;
}

/// Waits for a free connection slot, then for a client.
async fn next_client(
    listener: &Listener,
    limit: &Arc<Semaphore>,
) -> Option<(OwnedSemaphorePermit, Stream, String)> {
    let permit = limit.clone().acquire_owned().await.ok()?;
    let (stream, peer) = accept(listener).await;
    Some((permit, stream, peer))
}

/// Accepts one client, pausing (with doubling backoff) after every failure instead of giving up.
async fn accept(listener: &Listener) -> (Stream, String) {
    let mut backoff = BACKOFF_MIN;
    loop {
        match listener.accept().await {
            Ok(conn) => return conn,
            Err(err) => {
                tracing::warn!(
                    "accept on {}: {}{}; retrying in {backoff:?}",
                    listener.local_addr(),
                    crate::error::describe_io(&err),
                    crate::error::hint(&err)
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Serves one client and logs how it went.
async fn serve_client(
    mut stream: Stream,
    peer: String,
    prefix: Arc<[u8]>,
    _permit: OwnedSemaphorePermit,
) {
    let peer = describe_peer(&stream, peer);
    tracing::info!("{peer}: connected");
    match echo(&mut stream, &prefix).await {
        Ok(bytes) => tracing::info!("{peer}: closed after echoing {bytes} bytes"),
        Err(err) => tracing::info!("{peer}: {}", crate::error::describe_io(&err)),
    }
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
    let mut buf = vec![0u8; CHUNK];
    let mut reply = Vec::with_capacity(prefix.len() + CHUNK);
    let mut total = 0u64;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            stream.shutdown().await?;
            return Ok(total);
        }
        total += n as u64;
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
        let server = tokio::spawn(serve(listener, config, async move {
            let _ = stopped.await;
        }));
        (addr, stop, server)
    }

    async fn ask(addr: &str, message: &[u8]) -> Vec<u8> {
        let endpoint: Endpoint = addr.parse().unwrap();
        let mut stream = endpoint.connect(Duration::from_secs(5)).await.unwrap();
        let mut reply = Vec::new();
        crate::ipc::exchange(&mut stream, message, &mut reply, None)
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
            let server = tokio::spawn(serve(listener, EchoConfig::default(), stopped));
            let text = format!("unix:{}", path.display());
            assert_eq!(ask(&text, b"over unix").await, b"over unix");
            stop.send(()).unwrap();
            server.await.unwrap();
            assert!(!path.exists(), "socket file removed on shutdown");
        });
    }
}
