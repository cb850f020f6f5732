//! The last response of a connection while the forwarder drains: marked `Connection: close`.

use super::*;

fn session() -> Session {
    Session::new("new.test".into())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The client bytes a session fed `requests` sends on, and what it passes of `responses` once
/// the forwarder began to drain (after the requests went on).
fn drained(requests: &[u8], responses: &[u8]) -> (Session, String) {
    let mut session = session();
    session.feed_request(requests, &mut Vec::new()).unwrap();
    session.drain();
    let mut out = Vec::new();
    session.feed_response(responses, &mut out).unwrap();
    (session, text(&out))
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";

#[test]
fn keep_alive_is_replaced_other_tokens_kept() {
    let reply =
        b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, X-Trace\r\nContent-Length: 2\r\n\r\nhi";
    let (session, out) = drained(GET, reply);
    assert_eq!(
        out,
        "HTTP/1.1 200 OK\r\nConnection: X-Trace\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
    );
    assert!(session.closed());
}

#[test]
fn a_response_without_connection_gets_one_and_http10_keep_alive_goes() {
    let (_, out) = drained(GET, b"HTTP/1.1 204 No Content\r\n\r\n");
    assert_eq!(out, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    let reply = b"HTTP/1.0 200 OK\nconnection: keep-alive\ncontent-length: 0\n\n";
    let (_, out) = drained(b"GET / HTTP/1.0\r\n\r\n", reply);
    assert_eq!(
        out,
        "HTTP/1.0 200 OK\ncontent-length: 0\nConnection: close\n\n"
    );
}

#[test]
fn interim_responses_pass_untouched_the_final_one_is_marked() {
    let reply = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let (_, out) = drained(GET, reply);
    assert_eq!(
        out,
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn only_the_answer_to_the_last_request_in_flight_is_marked() {
    let two = [GET, GET].concat();
    let first = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na";
    let (mut session, out) = drained(&two, first);
    assert_eq!(out, text(first), "another request is in flight behind it");
    assert!(!session.closed());
    let mut out = Vec::new();
    session.feed_response(first, &mut out).unwrap();
    assert!(text(&out).contains("Connection: close\r\n\r\na"));
    assert!(session.closed());
}

#[test]
fn the_connection_is_closed_only_once_the_marked_response_is_through() {
    let (mut session, _) = drained(GET, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab");
    assert!(!session.closed(), "body still coming");
    let mut sent = Vec::new();
    session
        .feed_request(b"GET /next HTTP/1.1\r\n\r\n", &mut sent)
        .unwrap();
    assert!(sent.is_empty(), "nothing is sent on after the mark");
    session.feed_response(b"cd", &mut Vec::new()).unwrap();
    assert!(session.closed());
}

#[test]
fn tunnels_and_responses_before_the_drain_pass_untouched() {
    let upgrade = b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    let reply = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n";
    let (session, out) = drained(upgrade, reply);
    assert_eq!(out, text(reply));
    assert!(!session.closed());
    let mut session = session_answered_before_draining();
    assert!(!session.closed(), "nothing marked before the drain");
    session.drain();
    assert!(!session.closed());
}

fn session_answered_before_draining() -> Session {
    let mut session = session();
    session.feed_request(GET, &mut Vec::new()).unwrap();
    let reply = b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n";
    let mut out = Vec::new();
    session.feed_response(reply, &mut out).unwrap();
    assert_eq!(out, reply);
    session
}
