use super::*;

fn rewrite_in_pieces(input: &[u8], piece: usize) -> Result<Vec<u8>, HeadError> {
    let mut rewriter = HostRewriter::new("new.test:81".into());
    let mut out = Vec::new();
    for chunk in input.chunks(piece.max(1)) {
        rewriter.feed(chunk, &mut out)?;
    }
    Ok(out)
}

const KEEP_ALIVE: &[u8] = b"GET /a HTTP/1.1\r\nHost: old\r\nAccept: */*\r\n\r\n\
POST /b HTTP/1.1\r\nContent-Length: 5\r\nhost: old\r\n\r\nHost:\
PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: old\r\n\r\n\
4;x=1\r\nHost\r\n0\r\nX-Trailer: Host: t\r\n\r\n\
GET /d HTTP/1.0\n\n";

const EXPECTED: &[u8] = b"GET /a HTTP/1.1\r\nHost: new.test:81\r\nAccept: */*\r\n\r\n\
POST /b HTTP/1.1\r\nHost: new.test:81\r\nContent-Length: 5\r\n\r\nHost:\
PUT /c HTTP/1.1\r\nHost: new.test:81\r\nTransfer-Encoding: chunked\r\n\r\n\
4;x=1\r\nHost\r\n0\r\nX-Trailer: Host: t\r\n\r\n\
GET /d HTTP/1.0\r\nHost: new.test:81\r\n\r\n";

#[test]
fn rewrites_every_request_whatever_the_split() {
    for piece in 1..=KEEP_ALIVE.len() {
        let out = rewrite_in_pieces(KEEP_ALIVE, piece).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(EXPECTED),
            "piece size {piece}"
        );
    }
}

#[test]
fn bodies_pass_untouched() {
    let body = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut input = b"POST / HTTP/1.1\r\nContent-Length: 28\r\n\r\n".to_vec();
    input.extend_from_slice(body);
    let out = rewrite_in_pieces(&input, 7).unwrap();
    assert!(out.ends_with(body), "{}", String::from_utf8_lossy(&out));
}

#[test]
fn upgrades_become_tunnels() {
    let input =
        b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nGET / HTTP/1.1\r\n";
    let out = rewrite_in_pieces(input, 5).unwrap();
    assert!(out.ends_with(b"\r\n\r\nGET / HTTP/1.1\r\n"));
}

#[test]
fn refuses_bad_heads() {
    let cases: &[(&[u8], HeadError)] = &[
        (b"GARBAGE\r\n\r\n", HeadError::Malformed),
        (b"GET / HTTP/1.1\r\nNo colon\r\n\r\n", HeadError::Malformed),
        (
            b"GET / HTTP/1.1\r\n folded: x\r\n\r\n",
            HeadError::Malformed,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            HeadError::Malformed,
        ),
        (b"GET / SPDY/3\r\n\r\n", HeadError::Malformed),
        (
            b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            HeadError::Framing,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            HeadError::Framing,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            HeadError::Framing,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            HeadError::Chunked,
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            rewrite_in_pieces(input, 3),
            Err(*want),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn heads_over_64_kib_are_refused_without_growing() {
    let mut rewriter = HostRewriter::new("h".into());
    let mut out = Vec::new();
    rewriter.feed(b"GET / HTTP/1.1\r\n", &mut out).unwrap();
    let filler = [b'a'; 1024];
    let mut result = Ok(());
    for _ in 0..100 {
        result = rewriter.feed(&filler, &mut out);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(HeadError::TooLarge));
    assert!(rewriter.buf.len() <= MAX_HEAD + filler.len());
}
