//! The supervisor's stop: no connection drains while a listening socket still takes clients.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::forward::HttpHost;

/// A keep-alive target: answers every request `ok` on the same connection.
async fn keepalive_target() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                loop {
                    let Ok(n @ 1..) = stream.read(&mut buf).await else {
                        return;
                    };
                    head.extend_from_slice(&buf[..n]);
                    while let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                        head.drain(..at + 4);
                        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if stream.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Audit (stop 51, `bench/forward_diff/http_drain.py ... busy`, 100 stops): the requests that
/// met a graceful stop's close through netkit were all sent by clients that had got their
/// connection's last response (marked `Connection: close`) and connected again: the drain
/// reached the connections of one worker while another worker's accept loop still held the
/// listening socket, so the kernel queued the new client where nobody accepted any more and
/// reset it once the socket closed. Here the test holds the socket as a slow loop would: the
/// idle connection got its end of file at once, and a client connecting then was taken.
/// HAProxy's soft stop and nginx's graceful quit close their listeners first; now the
/// supervisor waits until every socket is closed before the connections drain: when the
/// idle client reads its end of file, a new client is refused.
#[tokio::test]
async fn connections_drain_only_once_their_listening_socket_is_closed() {
    let target = keepalive_target().await;
    let (events, _incoming) = Events::channel();
    let mut supervisor =
        Supervisor::new(events, Arc::new(Registry::default()), Activation::default());
    let listen = Endpoint::tcp(SocketAddr::from(([127, 0, 0, 1], 0)));
    let mut rule = Rule::new(listen, Endpoint::tcp(target));
    rule.options.http_host = Some(HttpHost::Fixed("a.test".into()));
    let started = supervisor.apply(vec![rule]).await.unwrap();
    let addr: SocketAddr = started.added[0].addr.parse().unwrap();
    let mut client = TcpStream::connect(addr).await.unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut reply = [0u8; 40];
    client.read_exact(&mut reply).await.unwrap();
    assert!(reply.ends_with(b"ok"));
    // Idle past the drain's grace (50 ms and four round trips since the response): the
    // connection closes as soon as the drain reaches it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // An accept loop slow to let go of the socket (its worker busy), for less than a stop
    // waits for one.
    let held = supervisor.slots[0].listeners[0].clone();
    let stopped = tokio::spawn(supervisor.stop());
    let slow_loop = tokio::spawn(async move {
        tokio::time::sleep(CLOSE_WAIT / 2).await;
        drop(held);
    });
    let patience = Duration::from_secs(10);
    let end = tokio::time::timeout(patience, client.read(&mut reply)).await;
    assert_eq!(
        end.unwrap().unwrap(),
        0,
        "the idle connection's end of file"
    );
    let again = TcpStream::connect(addr).await.map_err(|e| e.kind());
    assert_eq!(
        again.err(),
        Some(std::io::ErrorKind::ConnectionRefused),
        "a client connecting after its connection was drained was taken"
    );
    slow_loop.await.unwrap();
    tokio::time::timeout(patience, stopped)
        .await
        .unwrap()
        .unwrap();
}
