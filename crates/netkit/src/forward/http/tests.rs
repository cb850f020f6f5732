use super::*;

const HOST: &str = "new.test:81";

fn session() -> Session {
    Session::new(HOST.into())
}

/// Feeds `input` in pieces of `piece` bytes; returns what went to the target.
fn requests_in_pieces(input: &[u8], piece: usize) -> Result<Vec<u8>, Error> {
    let mut session = session();
    let mut out = Vec::new();
    for chunk in input.chunks(piece.max(1)) {
        session.feed_request(chunk, &mut out)?;
    }
    Ok(out)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const KEEP_ALIVE: &[u8] = b"GET /a HTTP/1.1\r\nHost: old\r\nAccept: */*\r\n\r\n\
POST /b HTTP/1.1\r\nContent-Length: 5\r\nhost: old\r\n\r\nHost:\
PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: old\r\n\r\n\
4;x=1\r\nHost\r\n0\r\nX-Trailer: Host: t\r\n\r\n\
\r\nGET /d HTTP/1.0\n\n";

const EXPECTED: &[u8] = b"GET /a HTTP/1.1\r\nHost: new.test:81\r\nAccept: */*\r\n\r\n\
POST /b HTTP/1.1\r\nHost: new.test:81\r\nContent-Length: 5\r\n\r\nHost:\
PUT /c HTTP/1.1\r\nHost: new.test:81\r\nTransfer-Encoding: chunked\r\n\r\n\
4\r\nHost\r\n0\r\nX-Trailer: Host: t\r\n\r\n\
GET /d HTTP/1.0\r\nHost: new.test:81\r\n\r\n";

#[test]
fn rewrites_every_request_whatever_the_split() {
    for piece in 1..=KEEP_ALIVE.len() {
        let out = requests_in_pieces(KEEP_ALIVE, piece).unwrap();
        assert_eq!(text(&out), text(EXPECTED), "piece size {piece}");
    }
}

#[test]
fn bodies_pass_untouched() {
    let body = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut input = b"POST / HTTP/1.1\r\nContent-Length: 28\r\n\r\n".to_vec();
    input.extend_from_slice(body);
    let out = requests_in_pieces(&input, 7).unwrap();
    assert!(out.ends_with(body), "{}", text(&out));
}

#[test]
fn targets_get_the_new_authority() {
    let cases: &[(&str, &str)] = &[
        ("GET /p?q HTTP/1.1", "GET /p?q HTTP/1.1"),
        (
            "GET http://evil.test/p?q HTTP/1.1",
            "GET http://new.test:81/p?q HTTP/1.1",
        ),
        (
            "GET HTTPS://u:p@evil.test:8443 HTTP/1.1",
            "GET HTTPS://new.test:81/ HTTP/1.1",
        ),
        (
            "GET ws://evil.test?x HTTP/1.1",
            "GET ws://new.test:81/?x HTTP/1.1",
        ),
        (
            "OPTIONS http://evil.test HTTP/1.1",
            "OPTIONS http://new.test:81 HTTP/1.1",
        ),
        ("OPTIONS * HTTP/1.1", "OPTIONS * HTTP/1.1"),
        (
            "CONNECT evil.test:443 HTTP/1.1",
            "CONNECT new.test:81 HTTP/1.1",
        ),
        ("GET /caf\u{e9} HTTP/1.1", "GET /caf\u{e9} HTTP/1.1"),
    ];
    for (line, want) in cases {
        let input = format!("{line}\r\nHost: evil.test\r\n\r\n");
        let out = requests_in_pieces(input.as_bytes(), 1000).unwrap();
        let want = format!("{want}\r\nHost: {HOST}\r\n\r\n");
        assert_eq!(text(&out), want, "{line}");
    }
    let mut session = Session::new("plain.test".into());
    let mut out = Vec::new();
    session
        .feed_request(b"CONNECT [::1]:8443 HTTP/1.1\r\n\r\n", &mut out)
        .unwrap();
    assert!(
        out.starts_with(b"CONNECT plain.test:8443 HTTP/1.1\r\n"),
        "{}",
        text(&out)
    );
}

#[test]
fn obs_text_and_raw_bytes_in_the_target_pass() {
    let input = b"GET /caf\xe9?\xff HTTP/1.1\r\nX-Name: Jos\xe9\r\n\r\n";
    let out = requests_in_pieces(input, 5).unwrap();
    let want = b"GET /caf\xe9?\xff HTTP/1.1\r\nHost: new.test:81\r\nX-Name: Jos\xe9\r\n\r\n";
    assert_eq!(out, want);
}

#[test]
fn refuses_what_two_parsers_could_read_differently() {
    let malformed = Error::Malformed("");
    let framing = Error::Framing("");
    let chunked = Error::Chunked("");
    let cases: &[(&[u8], Error)] = &[
        (b"GARBAGE\r\n\r\n", malformed),
        (b"GET / HTTP/1.1\r\nNo colon\r\n\r\n", malformed),
        (b"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", malformed),
        (b"GET / HTTP/1.1\r\nX : a\r\n\r\n", malformed),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", malformed),
        (b"GET / SPDY/3\r\n\r\n", malformed),
        (b"GET / HTTP/1.2\r\n\r\n", malformed),
        (b"GET  / HTTP/1.1\r\n\r\n", malformed),
        (b"GET / HTTP/1.1 \r\n\r\n", malformed),
        (b"\rGET / HTTP/1.1\r\n\r\n", malformed),
        (b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", malformed),
        (b"GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", malformed),
        (b"GET / HTTP/1.1\r\nX: a\x1bb\r\n\r\n", malformed),
        (b"GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", malformed),
        (b"GET / HTTP/1.1\r\nX\x01: a\r\n\r\n", malformed),
        (b"GET /a\x01 HTTP/1.1\r\n\r\n", malformed),
        (b"GET evil.test/ HTTP/1.1\r\n\r\n", malformed),
        (b"GET http:evil HTTP/1.1\r\n\r\n", malformed),
        (b"GET http://evil.test#@x/ HTTP/1.1\r\n\r\n", malformed),
        (b"GET * HTTP/1.1\r\n\r\n", malformed),
        (b"CONNECT evil.test HTTP/1.1\r\n\r\n", malformed),
        (b"CONNECT u@evil.test:443 HTTP/1.1\r\n\r\n", malformed),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", framing),
        (b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n", framing),
        (b"POST / HTTP/1.1\r\nContent-Length: 0x1\r\n\r\n", framing),
        (b"POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", framing),
        // 19 digits (10^18 bytes or more) fit a u64, and some fit the signed 64 bits many
        // servers parse a length into, but not all (found by the fuzz run against the strict
        // reader, which reads at most 18): refused, as chunk sizes of 2^60 or more.
        (
            b"POST / HTTP/1.1\r\nContent-Length: 2222222222222222225\r\n\r\n",
            framing,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 0000000000000000005\r\n\r\n",
            framing,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            framing,
        ),
        (b"POST / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n", framing),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            framing,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            framing,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
            framing,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            framing,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: \"chunked\"\r\n\r\n",
            framing,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked,\r\n\r\n",
            framing,
        ),
        (
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            framing,
        ),
        (
            b"CONNECT a.test:443 HTTP/1.1\r\nContent-Length: 3\r\n\r\n",
            framing,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            chunked,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\n",
            chunked,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\n",
            chunked,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a\x01\r\n",
            chunked,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
            chunked,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n11111111111111111\r\n",
            chunked,
        ),
        // 16 hex digits fit a u64 but not the signed 64 bits many servers parse a chunk
        // size into (found by the fuzz run against the strict reader): refused.
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n9999999999999969\r\n",
            chunked,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nHost: evil\r\n\r\n",
            chunked,
        ),
    ];
    for (input, want) in cases {
        for piece in [1, 3, 1000] {
            let got = requests_in_pieces(input, piece).map(|out| text(&out));
            let same_kind = matches!(
                (&got, want),
                (Err(Error::Malformed(_)), Error::Malformed(_))
                    | (Err(Error::Framing(_)), Error::Framing(_))
                    | (Err(Error::Chunked(_)), Error::Chunked(_))
            );
            assert!(same_kind, "{}: {got:?}, want {want:?}", text(input));
        }
    }
}

#[test]
fn chunk_extensions_are_dropped_and_line_ends_made_crlf() {
    let input = b"POST / HTTP/1.1\nTransfer-Encoding: Chunked\n\n0A;name=\"v\"\n0123456789\n0\n\n";
    let out = requests_in_pieces(input, 4).unwrap();
    let want = "POST / HTTP/1.1\r\nHost: new.test:81\r\nTransfer-Encoding: Chunked\r\n\r\n\
        a\r\n0123456789\r\n0\r\n\r\n";
    assert_eq!(text(&out), want);
}

#[test]
fn other_codings_before_chunked_are_not_implemented() {
    for codings in [
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n",
    ] {
        let input = format!("POST / HTTP/1.1\r\n{codings}\r\n0\r\n\r\n");
        let result = requests_in_pieces(input.as_bytes(), 5);
        assert!(
            matches!(result, Err(Error::Unsupported(_))),
            "{codings}: {result:?}"
        );
    }
}

#[test]
fn equal_content_lengths_collapse_into_one() {
    let input = b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2, 2\r\n\r\nok";
    let out = requests_in_pieces(input, 3).unwrap();
    assert_eq!(
        text(&out),
        "POST / HTTP/1.1\r\nHost: new.test:81\r\nContent-Length: 2\r\n\r\nok"
    );
}

#[test]
fn a_bad_request_leaves_the_complete_ones_before_it() {
    let mut session = session();
    let mut out = Vec::new();
    let input = b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\nContent-Length: 2\r\n\r\nokBAD\r\n\r\n";
    let result = session.feed_request(input, &mut out);
    assert!(matches!(result, Err(Error::Malformed(_))), "{result:?}");
    let want = "GET /1 HTTP/1.1\r\nHost: new.test:81\r\n\r\n\
        GET /2 HTTP/1.1\r\nHost: new.test:81\r\nContent-Length: 2\r\n\r\nok";
    assert_eq!(text(&out), want);
    assert_eq!(session.pending(), 2);
    assert!(session.responses_owed());
}

#[test]
fn what_cannot_start_a_head_is_refused_before_the_head_ends() {
    let never: &[&[u8]] = &[
        b"\x16\x03\x01\x00\xa5\x01",
        b"\0\0",
        b"SSH-2.0-OpenSSH_9.2\r\n",
        b"G\x01ET / HTTP/1.1",
        b" GET / HTTP/1.1",
        b"GET / HTTP/9.9\r\n",
        b"GET /\0 HTTP/1.1",
        b"GET /a\tb",
        b"GET /a\rb",
        b"GET / HTTP/1.1\r\nHo st: evil.test\r\n",
        b"GET / HTTP/1.1\r\nX: a\0b\r\n",
        b"GET / HTTP/1.1\r\nX: a\r\n folded\r\n",
        // The line still coming: a forbidden byte in its value or name, a fold, no name.
        b"GET / HTTP/1.1\r\nHost: a\0",
        b"GET / HTTP/1.1\r\nX: a\x01",
        b"GET / HTTP/1.1\r\nX: a\x7f",
        b"GET / HTTP/1.1\r\nX: a\rb",
        b"GET / HTTP/1.1\r\nX:\r\r",
        b"GET / HTTP/1.1\r\nHo\0",
        b"GET / HTTP/1.1\r\nHo st",
        b"GET / HTTP/1.1\r\nHost\r:",
        b"GET / HTTP/1.1\r\nHost : a",
        b"GET / HTTP/1.1\r\n X",
        b"GET / HTTP/1.1\r\nX: a\r\n\t",
        b"GET / HTTP/1.1\r\n: a",
        // A second Host: as soon as its name has ended.
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n",
        b"GET / HTTP/1.1\r\nhost: a\r\nX: b\nHOST:",
        b"GET / HTTP/1.1\r\nHost:\r\nhOsT: a",
    ];
    for input in never {
        for piece in [1, 3, input.len()] {
            let result = requests_in_pieces(input, piece);
            assert!(result.is_err(), "{:?} in pieces of {piece}", text(input));
        }
        // What is refused early is refused whole.
        let whole = [*input, b"\r\n\r\n"].concat();
        assert!(
            requests_in_pieces(&whole, whole.len()).is_err(),
            "{:?}",
            text(input)
        );
    }
    // Over 100 fields: refused with the 101st line, before the head ends.
    let mut many = b"GET / HTTP/1.1\r\n".to_vec();
    for n in 0..100 {
        many.extend_from_slice(format!("X-{n}: v\r\n").as_bytes());
    }
    assert!(requests_in_pieces(&many, 7).is_ok());
    many.extend_from_slice(b"X-100: v\r\n");
    assert!(requests_in_pieces(&many, 7).is_err());
    // Valid so far, whatever the split: HTAB and obs-text in values, names that begin with
    // "host", a last CR, a Host after fields.
    let valid = b"GET / HTTP/1.1\r\nX-A: a\tb \xe9\xff\r\nHost-X: 1\r\nHostname: 2\r\n\
        hosts:\r\nX:\r\nHost: \r";
    for piece in 1..=valid.len() {
        assert_eq!(requests_in_pieces(valid, piece).map(|o| o.len()), Ok(0));
    }
    // Every prefix of valid requests is waited on.
    for piece in 1..KEEP_ALIVE.len() {
        assert_eq!(
            text(&requests_in_pieces(KEEP_ALIVE, piece).unwrap()),
            text(EXPECTED)
        );
    }
    let mut session = session();
    let mut out = Vec::new();
    for partial in [
        &b"\r"[..],
        b"\nGE",
        b"T /x HTTP/1.1\r",
        b"\nX: a\n",
        b"Host: b\r\n",
    ] {
        session.feed_request(partial, &mut out).unwrap();
    }
    assert!(out.is_empty());
}

#[test]
fn chunk_lines_that_cannot_be_valid_are_refused_before_they_end() {
    let head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    let never: &[&[u8]] = &[
        b"zz",
        b" 5",
        b";a",
        b"5\r5",
        b"5 x",
        b"5;a\0",
        b"5;a\rb",
        b"5\r\nhelloX",
        b"5\r\nhello\r\r",
        b"5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\nX: \0",
    ];
    for body in never {
        let input = [&head[..], body].concat();
        for piece in [1, 3, input.len()] {
            let result = requests_in_pieces(&input, piece);
            assert!(result.is_err(), "{:?} in pieces of {piece}", text(body));
        }
        // What is refused early is refused whole.
        let whole = [&input[..], b"\r\n\r\n"].concat();
        assert!(
            requests_in_pieces(&whole, whole.len()).is_err(),
            "{:?}",
            text(body)
        );
    }
    // Valid so far, whatever the split: the canonical head goes on, nothing of the body yet
    // but whole chunks.
    let valid = b"1A \t;x=\"y z\"\t;k\xe9\r\nabcdefghijklmnopqrstuvwxyz\r\n0000f \r";
    let input = [&head[..], valid].concat();
    let whole = requests_in_pieces(&input, input.len()).unwrap();
    for piece in 1..=input.len() {
        assert_eq!(
            requests_in_pieces(&input, piece).unwrap(),
            whole,
            "piece size {piece}"
        );
    }
}

#[test]
fn heads_over_64_kib_are_refused_without_growing() {
    let mut session = session();
    let mut out = Vec::new();
    session
        .feed_request(b"GET / HTTP/1.1\r\n", &mut out)
        .unwrap();
    let filler = [b'a'; 1024];
    let mut result = Ok(());
    for _ in 0..100 {
        result = session.feed_request(&filler, &mut out);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(Error::TooLarge));
    assert!(session.up_buf_len() <= MAX_HEAD + filler.len());
}

/// Feeds a request, then a response; returns (what reached the target, what reached the
/// client) after `later` client bytes were fed and released.
fn exchange(request: &[u8], response: &[u8], later: &[u8]) -> (Vec<u8>, Vec<u8>, Session) {
    let mut session = session();
    let (mut up, mut down) = (Vec::new(), Vec::new());
    session.feed_request(request, &mut up).unwrap();
    session.feed_request(later, &mut up).unwrap();
    session.feed_response(response, &mut down).unwrap();
    session.resume_requests(&mut up).unwrap();
    (up, down, session)
}

const SMUGGLED: &[u8] = b"GET /next HTTP/1.1\r\nHost: evil.test\r\n\r\n";
const NEXT_REWRITTEN: &str = "GET /next HTTP/1.1\r\nHost: new.test:81\r\n\r\n";

#[test]
fn a_tunnel_starts_only_when_the_response_says_so() {
    let upgrade = b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    let connect = b"CONNECT a.test:443 HTTP/1.1\r\n\r\n";
    let cases: &[(&[u8], &[u8], bool)] = &[
        (
            upgrade,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
            true,
        ),
        (
            upgrade,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            false,
        ),
        (
            upgrade,
            b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n",
            false,
        ),
        (
            connect,
            b"HTTP/1.1 200 Connection established\r\n\r\n",
            true,
        ),
        (connect, b"HTTP/1.1 204 No Content\r\n\r\n", true),
        // A server answering CONNECT as any request: its body framed, no tunnel.
        (
            connect,
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n",
            false,
        ),
        (
            connect,
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            false,
        ),
        (
            connect,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            false,
        ),
        (
            connect,
            b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n",
            false,
        ),
        (
            connect,
            b"HTTP/1.1 407 Auth\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            false,
        ),
    ];
    for (request, response, tunnel) in cases {
        let (up, down, session) = exchange(request, response, SMUGGLED);
        let after_request = text(&up[up.len() - SMUGGLED.len().max(NEXT_REWRITTEN.len())..]);
        if *tunnel {
            assert!(up.ends_with(SMUGGLED), "{}: {}", text(response), text(&up));
            assert!(session.requests_raw() && session.responses_raw());
        } else {
            assert!(
                after_request.ends_with(NEXT_REWRITTEN),
                "{}: {}",
                text(response),
                text(&up)
            );
            assert!(!session.requests_raw());
        }
        assert_eq!(down, *response);
    }
}

#[test]
fn bytes_after_a_request_that_may_switch_wait_for_its_response() {
    let mut session = session();
    let mut up = Vec::new();
    let request = b"CONNECT a.test:443 HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    session.feed_request(request, &mut up).unwrap();
    assert!(!session.wants_requests());
    assert!(session.holds_requests());
    assert_eq!(
        text(&up),
        "CONNECT new.test:81 HTTP/1.1\r\nHost: new.test:81\r\n\r\n"
    );
    let mut down = Vec::new();
    session
        .feed_response(b"HTTP/1.1 100 Continue\r\n\r\n", &mut down)
        .unwrap();
    session.resume_requests(&mut up).unwrap();
    assert!(
        !session.wants_requests(),
        "an interim response decides nothing"
    );
    session
        .feed_response(
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
            &mut down,
        )
        .unwrap();
    session.resume_requests(&mut up).unwrap();
    assert!(session.wants_requests());
    assert!(text(&up).ends_with("GET / HTTP/1.1\r\nHost: new.test:81\r\n\r\n"));
}

#[test]
fn the_upgrade_request_body_goes_first_then_the_tunnel() {
    let request = b"POST /ws HTTP/1.1\r\nUpgrade: x\r\nContent-Length: 3\r\n\r\nabc\x00tunnel";
    let mut session = session();
    let (mut up, mut down) = (Vec::new(), Vec::new());
    let split = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 5;
    session.feed_request(&request[..split], &mut up).unwrap();
    session
        .feed_response(b"HTTP/1.1 101 OK\r\n\r\n", &mut down)
        .unwrap();
    assert!(session.wants_requests(), "the body is still to come");
    session.feed_request(&request[split..], &mut up).unwrap();
    session.resume_requests(&mut up).unwrap();
    assert!(up.ends_with(b"abc\x00tunnel"), "{}", text(&up));
    assert!(session.requests_raw());
}

#[test]
fn responses_are_framed_by_their_request() {
    let mut session = session();
    let mut up = Vec::new();
    let requests = b"HEAD /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n\
        GET /4 HTTP/1.1\r\n\r\nGET /5 HTTP/1.1\r\n\r\n";
    session.feed_request(requests, &mut up).unwrap();
    assert_eq!(session.pending(), 5);
    let responses: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n\
        HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
        HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n\
        HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n\
        3;x\r\nabc\r\n0\r\nT: 1\r\n\r\n\
        HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n\
        HTTP/1.0 200 OK\r\n\r\nuntil close";
    for piece in [1, 5, responses.len()] {
        let mut session = session_with(requests);
        let mut down = Vec::new();
        for chunk in responses.chunks(piece) {
            session.feed_response(chunk, &mut down).unwrap();
        }
        assert_eq!(down, responses, "piece {piece}");
        assert_eq!(session.pending(), 0);
        assert!(session.responses_raw(), "the last body runs until close");
    }
}

fn session_with(requests: &[u8]) -> Session {
    let mut session = session();
    session.feed_request(requests, &mut Vec::new()).unwrap();
    session
}

#[test]
fn responses_that_cannot_be_followed_are_errors() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 101 Switching\r\n\r\n"),
        (
            b"GET / HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        ),
        (
            b"GET / HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        ),
        (b"GET / HTTP/1.1\r\n\r\n", b"NOT HTTP\r\n\r\n"),
        (
            b"GET / HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n",
        ),
    ];
    for (request, response) in cases {
        let mut session = session_with(request);
        let result = session.feed_response(response, &mut Vec::new());
        assert!(
            matches!(result, Err(Error::Response(_))),
            "{}: {result:?}",
            text(response)
        );
    }
}

#[test]
fn too_many_requests_in_flight_wait_for_responses() {
    let mut session = session();
    let one = b"GET / HTTP/1.1\r\n\r\n";
    let many: Vec<u8> = one.repeat(MAX_PENDING + 10);
    let mut up = Vec::new();
    session.feed_request(&many, &mut up).unwrap();
    assert_eq!(session.pending(), MAX_PENDING);
    assert!(!session.wants_requests());
    let answers = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".repeat(20);
    session.feed_response(&answers, &mut Vec::new()).unwrap();
    session.resume_requests(&mut up).unwrap();
    assert!(session.wants_requests());
    assert_eq!(session.pending(), MAX_PENDING - 10);
    let rewritten = "GET / HTTP/1.1\r\nHost: new.test:81\r\n\r\n".len();
    assert_eq!(
        up.len(),
        rewritten * (MAX_PENDING + 10),
        "every request sent on once"
    );
}

#[test]
fn the_target_closing_releases_held_bytes_as_requests() {
    let mut session = session();
    let mut up = Vec::new();
    session
        .feed_request(
            b"GET / HTTP/1.1\r\nUpgrade: x\r\n\r\nGET /n HTTP/1.1\r\n\r\n",
            &mut up,
        )
        .unwrap();
    assert!(session.holds_requests());
    session.responses_ended();
    session.resume_requests(&mut up).unwrap();
    assert!(text(&up).ends_with("GET /n HTTP/1.1\r\nHost: new.test:81\r\n\r\n"));
}

#[test]
fn opaque_body_runs_can_pass_without_being_fed() {
    let mut session = session_with(b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n");
    let mut down = Vec::new();
    session
        .feed_response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nabc",
            &mut down,
        )
        .unwrap();
    assert_eq!(session.response_body_left(), 99_997);
    session.response_body_passed(99_997);
    assert_eq!(session.response_body_left(), 0);
    assert_eq!(session.pending(), 1);
    session
        .feed_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000\r\nxy",
            &mut down,
        )
        .unwrap();
    assert_eq!(session.response_body_left(), 0x10000 - 2);
    session.response_body_passed(0x10000 - 2);
    session.feed_response(b"\r\n0\r\n\r\n", &mut down).unwrap();
    assert_eq!(session.pending(), 0);
    assert!(!session.responses_owed());
}

#[test]
fn upgrades_to_protocols_that_carry_http_are_taken_out() {
    let cases: &[(&str, Option<&str>)] = &[
        ("h2c", None),
        ("H2C, HTTP/2.0, TLS/1.0, SPDY/3.1, h2", None),
        ("websocket", Some("websocket")),
        ("h2c, websocket", Some("websocket")),
        (" ,websocket/13 , h2c,", Some("websocket/13")),
    ];
    for (upgrade, kept) in cases {
        let input =
            format!("GET /ws HTTP/1.1\r\nUpgrade: {upgrade}\r\nConnection: Upgrade\r\n\r\n");
        let mut session = session();
        let mut out = Vec::new();
        session.feed_request(input.as_bytes(), &mut out).unwrap();
        let expected = match kept {
            Some(kept) => format!("Upgrade: {kept}\r\n"),
            None => String::new(),
        };
        assert_eq!(
            text(&out),
            format!("GET /ws HTTP/1.1\r\nHost: {HOST}\r\n{expected}Connection: Upgrade\r\n\r\n"),
            "{upgrade}"
        );
        // Without an upgrade left, a 101 starts no tunnel: the next request is rewritten.
        assert_eq!(session.awaiting().is_some(), kept.is_some(), "{upgrade}");
    }
    for bad in ["h2c/", "web socket", "a/b/c", "x@y"] {
        let input = format!("GET / HTTP/1.1\r\nUpgrade: {bad}\r\n\r\n");
        let refused = requests_in_pieces(input.as_bytes(), 1000);
        assert!(refused.is_err(), "{bad}");
    }
}

#[test]
fn idle_only_between_exchanges() {
    let mut session = session();
    let mut out = Vec::new();
    assert!(session.idle(), "before the first request");
    session
        .feed_request(b"GET / HTTP/1.1\r\nHo", &mut out)
        .unwrap();
    assert!(!session.idle(), "a request head begun");
    session.feed_request(b"st: a\r\n\r\n", &mut out).unwrap();
    assert!(!session.idle(), "a request in flight");
    let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel";
    session.feed_response(reply, &mut out).unwrap();
    assert!(!session.idle(), "a response begun");
    session.feed_response(b"lo", &mut out).unwrap();
    assert!(session.idle(), "after the response");
}
