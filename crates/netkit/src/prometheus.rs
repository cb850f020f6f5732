//! The metrics endpoint of every command that has one (`sweep --metrics`, `forward
//! --metrics`): a minimal HTTP/1.1 server where `GET /metrics` (or `HEAD`) answers the current
//! metrics as Prometheus text ([`Render`]), every other path 404, every other method 405. One
//! request per connection, heads of at most 8 KiB, read within 5 seconds; at most
//! [`MAX_CONNS`] requests at once, on the [`crate::server`] accept loop.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::endpoint::{Listener, Peer, Stream};
use crate::server::{self, Stop};

const MAX_HEAD: usize = 8192;
const READ_TIMEOUT: Duration = Duration::from_secs(5);
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Metrics requests served at once; more wait in the kernel's backlog.
pub const MAX_CONNS: usize = 64;

/// Metrics that can be shown as Prometheus text.
pub trait Render: Send + Sync + 'static {
    /// The current values, in the text exposition format 0.0.4.
    fn render(&self) -> String;
}

/// Serves `metrics` on `listener` until `shutdown` completes; requests in flight then are
/// dropped.
pub async fn serve_until<M: Render>(listener: Listener, metrics: Arc<M>, shutdown: impl Future) {
    let handler = move |(stream, _peer): (Stream, Peer), _cancel| {
        let metrics = Arc::clone(&metrics);
        async move {
            if let Err(err) = respond(stream, metrics.as_ref()).await {
                tracing::debug!("metrics request: {err}");
            }
        }
    };
    server::serve(listener, shutdown, MAX_CONNS, handler, Stop::Abort).await;
}

async fn respond<M: Render>(mut stream: Stream, metrics: &M) -> io::Result<()> {
    let head = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    let answer = route(&head);
    let body = match answer {
        Answer::Metrics { .. } => metrics.render(),
        Answer::Status(_, text) => format!("{text}\n"),
    };
    let (status, with_body) = match answer {
        Answer::Metrics { head_only } => ("200 OK", !head_only),
        Answer::Status(status, _) => (status, true),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    if with_body {
        stream.write_all(body.as_bytes()).await?;
    }
    stream.shutdown().await
}

/// Reads up to the blank line that ends a request head.
async fn read_head(stream: &mut Stream) -> io::Result<String> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too long"));
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// What to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// The metrics (without the body for HEAD).
    Metrics { head_only: bool },
    /// An error status and its text.
    Status(&'static str, &'static str),
}

fn route(head: &str) -> Answer {
    let mut words = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => Answer::Metrics { head_only: false },
        ("HEAD", "/metrics") => Answer::Metrics { head_only: true },
        ("GET" | "HEAD", _) => Answer::Status("404 Not Found", "not found; try /metrics"),
        _ => Answer::Status("405 Method Not Allowed", "only GET and HEAD"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;

    impl Render for Fixed {
        fn render(&self) -> String {
            "netkit_test 1\n".into()
        }
    }

    #[tokio::test]
    async fn serves_metrics_until_shutdown() {
        let metrics = Arc::new(Fixed);
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_until(Listener::from(tcp), metrics, stopped));
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /metrics HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let mut reply = String::new();
        client.read_to_string(&mut reply).await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        assert!(reply.ends_with("\r\n\r\nnetkit_test 1\n"), "{reply}");
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("stopped")
            .unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    #[test]
    fn routes() {
        let get = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(route(get), Answer::Metrics { head_only: false });
        assert_eq!(
            route("GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Answer::Metrics { head_only: false }
        );
        assert_eq!(
            route("HEAD /metrics HTTP/1.1\r\n\r\n"),
            Answer::Metrics { head_only: true }
        );
        assert!(matches!(
            route("GET / HTTP/1.1\r\n\r\n"),
            Answer::Status("404 Not Found", _)
        ));
        assert!(
            matches!(route("POST /metrics HTTP/1.1\r\n\r\n"), Answer::Status(s, _) if s.starts_with("405"))
        );
        assert!(matches!(route(""), Answer::Status(s, _) if s.starts_with("405")));
    }
}
