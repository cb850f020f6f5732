//! `forward --http-host` against request smuggling and desync: a corpus of hostile request
//! streams (CL.TE, TE.CL, obfuscated Transfer-Encoding, duplicate Content-Length, bare LF, CR
//! and NUL, Upgrade without 101, refused CONNECT, absolute-form targets, folded lines, ...)
//! sent through the forwarder to two real upstreams that log the Host they parsed: nginx
//! (`$host`, which takes an absolute-form target's authority over the Host field, and
//! `$http_host`) and Python's http.server (every Host field, and the target). The property:
//! no request reaches an upstream with a Host or authority that was not rewritten.
//!
//! HAProxy (`http-request set-header Host`) runs the same corpus against the same kind of
//! upstreams for comparison; its results are printed (`--nocapture`), not asserted, and
//! summed up in docs/http-host.md.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::net::SocketAddr;

use crate::forward_util::*;

const HOST: &str = "rewritten.test";

/// Upgrade and CONNECT openings followed by bytes that would smuggle a request if the
/// connection became a tunnel without the upstream agreeing.
const SMUGGLE: &str = "GET /smuggled HTTP/1.1\r\nHost: evil.test\r\n\r\n";

/// The corpus: a name and the bytes a client sends (then its FIN).
fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    let s = SMUGGLE;
    let cases: Vec<(&str, String)> = vec![
        // CL.TE and TE.CL
        ("cl-te", format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{s}")),
        ("te-cl", format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n2c\r\n{s}\r\n0\r\n\r\n")),
        ("te-cl-zero", format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n2c\r\n{s}\r\n0\r\n\r\n")),
        ("cl-te-http10", format!("POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{s}")),
        // obfuscated Transfer-Encoding
        ("te-xchunked", format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n{s}")),
        ("te-space-before-colon", format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\nContent-Length: 44\r\n\r\n0\r\n\r\n{s}")),
        ("te-tab", format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n{s}")),
        ("te-vertical-tab", format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n{s}")),
        ("te-nul", format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\0\r\n\r\n0\r\n\r\n{s}")),
        ("te-twice", format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n{s}")),
        ("te-chunked-identity", format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n{s}")),
        ("te-quoted", format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n{s}")),
        ("te-upper", format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n{s}")),
        ("te-folded", format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n{s}")),
        ("te-underscore", format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\n\r\n0\r\n\r\n{s}")),
        ("te-leading-space-line", format!("POST / HTTP/1.1\r\nHost: a\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n{s}")),
        // Content-Length
        ("cl-duplicate", format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 44\r\n\r\n{s}")),
        ("cl-list", format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0, 44\r\n\r\n{s}")),
        ("cl-equal-twice", format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 44\r\nContent-Length: 44\r\n\r\n{s}")),
        ("cl-plus", format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +44\r\n\r\n{s}")),
        ("cl-hex", format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x2c\r\n\r\n{s}")),
        ("cl-space-inside", format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4 4\r\n\r\n{s}")),
        ("cl-on-get", format!("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 44\r\n\r\n{s}")),
        ("cl-on-head", format!("HEAD / HTTP/1.1\r\nHost: a\r\nContent-Length: 44\r\n\r\n{s}")),
        ("cl-short-body", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nshort".to_string()),
        // bare LF, CR, NUL, other controls
        ("bare-lf-lines", format!("GET / HTTP/1.1\nHost: a\n\n{}", s.replace("\r\n", "\n"))),
        ("bare-lf-inside-field", "GET / HTTP/1.1\r\nHost: a\r\nX: y\nHost: evil.test\r\n\r\n".to_string()),
        ("bare-cr-in-value", format!("GET / HTTP/1.1\r\nHost: a\r\nX: y\r{s}")),
        ("bare-cr-ends-head", format!("GET / HTTP/1.1\r\nHost: a\r\n\r{s}")),
        ("bare-cr-in-name", "GET / HTTP/1.1\r\nHo\rst: evil.test\r\n\r\n".to_string()),
        ("nul-in-value", "GET / HTTP/1.1\r\nHost: evil.test\0rewritten\r\n\r\n".to_string()),
        ("nul-in-target", "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n".to_string()),
        ("ctl-in-value", "GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n".to_string()),
        ("del-in-value", "GET / HTTP/1.1\r\nHost: a\r\nX: \x7f\r\n\r\n".to_string()),
        // Upgrade without 101, CONNECT refused or allowed
        ("upgrade-no-connection", format!("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n{s}")),
        ("upgrade-h2c", format!("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n{s}")),
        ("upgrade-websocket-101", format!("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n{s}")),
        ("upgrade-with-body", format!("POST / HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\nContent-Length: 2\r\n\r\nok{s}")),
        ("connect-refused", format!("CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n{s}")),
        ("connect-allowed", format!("CONNECT {HOST}:443 HTTP/1.1\r\nHost: {HOST}:443\r\n\r\n{s}")),
        ("connect-with-body", format!("CONNECT evil.test:443 HTTP/1.1\r\nHost: a\r\nContent-Length: 44\r\n\r\n{s}")),
        // absolute-form and other targets
        ("absolute-form", "GET http://evil.test/x HTTP/1.1\r\nHost: a\r\n\r\n".to_string()),
        ("absolute-form-https-port", "GET HTTPS://evil.test:8443/x HTTP/1.1\r\nHost: a\r\n\r\n".to_string()),
        ("absolute-form-userinfo", "GET http://rewritten.test@evil.test/ HTTP/1.1\r\nHost: a\r\n\r\n".to_string()),
        ("absolute-form-fragment", "GET http://evil.test#@rewritten.test/ HTTP/1.1\r\nHost: a\r\n\r\n".to_string()),
        ("absolute-form-no-path", "GET http://evil.test HTTP/1.1\r\nHost: a\r\n\r\n".to_string()),
        ("absolute-form-ws", "GET ws://evil.test/ HTTP/1.1\r\nHost: a\r\n\r\n".to_string()),
        ("scheme-without-slashes", "GET http:evil.test/ HTTP/1.1\r\nHost: a\r\n\r\n".to_string()),
        ("authority-as-target", "GET evil.test:80 HTTP/1.1\r\nHost: a\r\n\r\n".to_string()),
        ("double-slash-path", "GET //evil.test/x HTTP/1.1\r\nHost: a\r\n\r\n".to_string()),
        ("options-star", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n".to_string()),
        // folded lines and Host variants
        ("folded-host", "GET / HTTP/1.1\r\nHost: a\r\n evil.test\r\n\r\n".to_string()),
        ("folded-into-host", "GET / HTTP/1.1\r\nX: a\r\n\tHost: evil.test\r\n\r\n".to_string()),
        ("host-twice", "GET / HTTP/1.1\r\nHost: a\r\nHost: evil.test\r\n\r\n".to_string()),
        ("host-case", "GET / HTTP/1.1\r\nhOST: evil.test\r\n\r\n".to_string()),
        ("host-space-before-colon", "GET / HTTP/1.1\r\nHost : evil.test\r\n\r\n".to_string()),
        ("host-missing", "GET / HTTP/1.1\r\nX: a\r\n\r\n".to_string()),
        ("host-empty", "GET / HTTP/1.1\r\nHost:\r\n\r\n".to_string()),
        ("host-list", "GET / HTTP/1.1\r\nHost: evil.test, rewritten.test\r\n\r\n".to_string()),
        // chunked framing tricks
        ("chunk-ext-bare-lf", format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2;a\nxx\r\n45\r\n0\r\n\r\n{s}")),
        ("chunk-size-space", format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0 \r\n\r\n{s}")),
        ("chunk-size-0x", format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x2c\r\n{s}\r\n0\r\n\r\n")),
        ("chunk-size-overflow", format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000002c\r\n{s}\r\n0\r\n\r\n")),
        ("chunk-data-too-long", format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n{s}")),
        ("chunk-trailer-host", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nHost: evil.test\r\n\r\n".to_string()),
        ("chunk-lf-only", format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\n0\n\n{s}")),
        // request lines
        ("double-space", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n".to_string()),
        ("tab-in-line", "GET /\tHTTP/1.1\r\nHost: a\r\n\r\n".to_string()),
        ("http-0.9", "GET /\r\nHost: evil.test\r\n\r\n".to_string()),
        ("http-2-version", "GET / HTTP/2.0\r\nHost: evil.test\r\n\r\n".to_string()),
        ("lowercase-version", "GET / http/1.1\r\nHost: evil.test\r\n\r\n".to_string()),
        ("leading-empty-lines", format!("\r\n\r\n{s}")),
        // valid streams that must pass (rewritten)
        ("keep-alive-three", format!("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: b\r\nContent-Length: 2\r\n\r\nok{s}")),
        ("chunked-with-trailer", format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2;ext=1\r\nok\r\n0\r\nX-T: 1\r\n\r\n{s}")),
        ("expect-continue", format!("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok{s}")),
        ("obs-text", "GET /caf\u{e9} HTTP/1.1\r\nHost: a\r\nX: Jos\u{e9}\r\n\r\n".to_string()),
        ("http10-no-host", "GET / HTTP/1.0\r\n\r\n".to_string()),
    ];
    let mut cases: Vec<(&str, Vec<u8>)> = cases
        .into_iter()
        .map(|(name, text)| (name, latin1(&text)))
        .collect();
    let mut huge = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
    huge.resize(70 * 1024, b'a');
    huge.extend_from_slice(b"\r\n\r\n");
    huge.extend_from_slice(SMUGGLE.as_bytes());
    cases.push(("head-over-64k", huge));
    cases
}

/// The text's chars as single bytes (U+00E9 is the byte 0xE9), for obs-text cases.
fn latin1(text: &str) -> Vec<u8> {
    text.chars().map(|c| c as u32 as u8).collect()
}

/// Whether nginx saw the request with the new Host: `$host` (the absolute-form authority,
/// else the Host field) and `$http_host` both. nginx 1.22 refuses CONNECT and `OPTIONS *`
/// at the request line (400, before reading any field, so `$http_host` is `-`): such a line
/// is no leak when its request line is the rewritten one.
fn nginx_rewritten(line: &str) -> bool {
    let parts: Vec<&str> = line.splitn(4, '|').collect();
    let [host, http_host, status, request] = parts[..] else {
        return false;
    };
    let refused_line = status == "400"
        && http_host == "-"
        && (request.starts_with(&format!("CONNECT {HOST}")) || request == "OPTIONS * HTTP/1.1");
    (host == HOST && http_host == HOST) || refused_line
}

/// Whether Python saw the request with the new Host and authority (or refused it).
fn python_rewritten(request: &serde_json::Value) -> bool {
    if request.get("rejected").is_some() {
        return false;
    }
    let target = request["target"].as_str().unwrap_or_default();
    let authority = match (request["method"].as_str(), target.split_once("://")) {
        (Some("CONNECT"), _) => target.rsplit_once(':').map_or(target, |(h, _)| h),
        (_, Some((_, rest))) => rest.split(['/', '?', '#']).next().unwrap_or_default(),
        (_, None) => HOST,
    };
    request["hosts"] == serde_json::json!([HOST]) && authority == HOST
}

/// One proxy in front of each upstream.
struct Route {
    to_python: SocketAddr,
    to_nginx: SocketAddr,
}

/// What one case did through one proxy: the client's first reply line and the requests that
/// reached an upstream without the new Host.
struct Outcome {
    reply: String,
    leaks: Vec<String>,
}

/// Sends `bytes` and a FIN, returns what comes back until the proxy closes; a proxy that
/// closes or resets early is an answer too.
fn exchange(proxy: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut stream = connect(proxy);
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    reply
}

fn run_case(route: &Route, python: &HttpUpstream, nginx: &Nginx, bytes: &[u8]) -> Outcome {
    let (before_py, before_ngx) = (python.requests().len(), nginx.log().len());
    let reply = exchange(route.to_python, bytes);
    exchange(route.to_nginx, bytes);
    let logged = python.settle();
    let mut leaks: Vec<String> = logged[before_py..]
        .iter()
        .filter(|r| !python_rewritten(r))
        .map(|r| format!("python {r}"))
        .collect();
    let ngx = nginx.log();
    leaks.extend(
        ngx[before_ngx..]
            .iter()
            .filter(|l| !nginx_rewritten(l))
            .map(|l| format!("nginx {l}")),
    );
    let first = String::from_utf8_lossy(&reply);
    let reply = first.lines().next().unwrap_or("(closed)").to_string();
    Outcome { reply, leaks }
}

#[test]
fn forward_http_host_survives_a_smuggling_corpus_against_nginx_and_python() {
    let python = HttpUpstream::start(HOST);
    let nginx = Nginx::start();
    let nginx_target = format!("unix:{}", nginx.socket().display());
    let fw_py = Forwarder::start(&[
        "forward",
        "0",
        &python.addr.to_string(),
        "--http-host",
        HOST,
    ]);
    let fw_ngx = Forwarder::start(&["forward", "0", &nginx_target, "--http-host", HOST]);
    let netkit = Route {
        to_python: fw_py.addr(),
        to_nginx: fw_ngx.addr(),
    };
    let haproxy = Haproxy::available().map(|h| {
        let unix = format!("unix@{}", nginx.socket().display());
        (
            h.http_host(&python.addr.to_string(), HOST),
            h.http_host(&unix, HOST),
        )
    });
    let corpus = corpus();
    assert!(corpus.len() >= 50, "{} cases", corpus.len());
    let mut failures = Vec::new();
    eprintln!("{:<26} {:<34} HAProxy", "case", "netkit");
    for (name, bytes) in &corpus {
        let ours = run_case(&netkit, &python, &nginx, bytes);
        if !ours.leaks.is_empty() {
            failures.push(format!("{name}: {:?}", ours.leaks));
        }
        let theirs = haproxy.as_ref().map(|(py, ngx)| {
            let route = Route {
                to_python: py.addr,
                to_nginx: ngx.addr,
            };
            run_case(&route, &python, &nginx, bytes)
        });
        let theirs = theirs.map_or("-".to_string(), |o| match o.leaks.is_empty() {
            true => o.reply,
            false => format!("{}  LEAK {:?}", o.reply, o.leaks),
        });
        eprintln!("{name:<26} {:<34} {theirs}", ours.reply);
    }
    assert!(
        failures.is_empty(),
        "requests reached an upstream unrewritten: {failures:#?}"
    );
}
