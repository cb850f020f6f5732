//! `netkit wait http://… https://…`: status lists, body text, redirects not followed, IPv6
//! literals, reasons said once per change, and TLS against `openssl s_server` with curl as the
//! oracle for what verifies and what does not.

use std::io::Write;
use std::process::{Command, Output};

use crate::harness::{netkit, text, Proc, Reserved};
use crate::wait_util::{chunked, curl, header, response, HttpServer, Pki, TlsServer};

/// `netkit ARGS` without the certificate variables of the caller's environment.
fn wait(args: &[&str]) -> Output {
    let mut cmd: Command = netkit();
    cmd.args(args)
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR");
    cmd.output().expect("run netkit")
}

/// The reason at the end of the timeout line.
fn timeout_reason(stderr: &str) -> &str {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("timed out waiting for"))
        .unwrap_or_else(|| panic!("no timeout line in {stderr}"));
    line.split_once("): ").map(|(_, why)| why).unwrap_or(line)
}

#[test]
fn a_503_then_200_is_ready_and_the_reason_is_said_once() {
    let unavailable = response("503 Service Unavailable", "starting\n");
    let mut script = vec![unavailable; 4];
    script.push(response("200 OK", "up\n"));
    let server = HttpServer::start("127.0.0.1", script);
    let url = format!("http://{}/health", server.addr);
    let out = wait(&["-v", "wait", &url, "--interval", "50ms", "--timeout", "60s"]);
    let (code, _, stderr) = text(&out);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(server.heads().len(), 5, "{stderr}");
    let said = stderr
        .matches("not ready: HTTP 503 Service Unavailable")
        .count();
    assert_eq!(said, 1, "once per change, not once per attempt:\n{stderr}");
    assert!(stderr.contains(&format!("{url} is up after")), "{stderr}");
}

#[test]
fn status_lists_decide_and_the_timeout_says_which_status_came() {
    let server = HttpServer::start("127.0.0.1", vec![response("204 No Content", "")]);
    let url = format!("http://{}/", server.addr);
    let only_200 = wait(&["wait", &url, "--status", "200", "--timeout", "1500ms"]);
    let (code, _, stderr) = text(&only_200);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(timeout_reason(&stderr), "HTTP 204 No Content");
    let listed = wait(&[
        "wait",
        &url,
        "--status",
        "200,204,300-399",
        "--timeout",
        "10s",
    ]);
    assert_eq!(text(&listed).0, 0, "{}", text(&listed).2);
    let failing = HttpServer::start("127.0.0.1", vec![response("500 Internal Server Error", "")]);
    let url = format!("http://{}/", failing.addr);
    let class = wait(&["wait", &url, "--status", "5xx", "--timeout", "10s"]);
    assert_eq!(text(&class).0, 0, "{}", text(&class).2);
}

#[test]
fn body_text_is_found_across_chunks_or_named_when_missing() {
    let server = HttpServer::start("127.0.0.1", vec![chunked(&["{\"status\":\"re", "ady\"}"])]);
    let url = format!("http://{}/", server.addr);
    let found = wait(&["wait", &url, "--body", "\"ready\"", "--timeout", "10s"]);
    assert_eq!(text(&found).0, 0, "{}", text(&found).2);
    let missing = wait(&[
        "--json",
        "wait",
        &url,
        "--body",
        "healthy",
        "--timeout",
        "1500ms",
    ]);
    let (code, stdout, stderr) = text(&missing);
    assert_eq!(code, 1, "{stderr}");
    let record: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one record");
    assert_eq!(record["reason"], "HTTP 200 but the body lacks \"healthy\"");
}

#[test]
fn a_redirect_is_ready_and_not_followed_as_curl_without_l() {
    // The redirect points at a port that refuses: following it could never be ready.
    let nowhere = Reserved::v4();
    let redirect = format!(
        "HTTP/1.1 302 Found\r\nLocation: http://{}/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        nowhere.addr
    );
    let server = HttpServer::start("127.0.0.1", vec![redirect]);
    let url = format!("http://{}/", server.addr);
    let out = wait(&["wait", &url, "--timeout", "10s"]);
    assert_eq!(text(&out).0, 0, "{}", text(&out).2);
    assert_eq!(server.heads().len(), 1);
    let strict = wait(&["wait", &url, "--status", "200", "--timeout", "1500ms"]);
    assert_eq!(timeout_reason(&text(&strict).2), "HTTP 302 Found");
    // curl without -L also stops at the 302 (and succeeds).
    assert_eq!(curl(&url, &[]), 0);
}

#[test]
fn ipv6_literal_urls_send_what_curl_sends() {
    let server = HttpServer::start("::1", vec![response("200 OK", "ok\n")]);
    let url = format!("http://[::1]:{}/x/y?z=1", server.addr.port());
    let out = wait(&["wait", &url, "--timeout", "10s"]);
    assert_eq!(text(&out).0, 0, "{}", text(&out).2);
    assert_eq!(curl(&url, &[]), 0);
    let heads = server.heads();
    let (ours, curls) = (&heads[0], &heads[1]);
    assert!(ours.starts_with("GET /x/y?z=1 HTTP/1.1\r\n"), "{ours}");
    assert_eq!(ours.lines().next(), curls.lines().next());
    assert_eq!(header(ours, "host"), header(curls, "host"));
    assert_eq!(
        header(ours, "host"),
        Some(format!("[::1]:{}", server.addr.port()).as_str())
    );
}

#[test]
fn invert_waits_until_the_server_is_gone() {
    let server = HttpServer::start("127.0.0.1", vec![response("200 OK", "")]);
    let url = format!("http://{}/", server.addr);
    let mut cmd = netkit();
    cmd.args(["-v", "wait", &url, "--invert", "--interval", "50ms"]);
    cmd.args(["--timeout", "60s"]);
    let mut child = Proc::spawn(cmd);
    let mark = child.stderr.position("not ready: still answers HTTP 200") + 1;
    std::thread::sleep(std::time::Duration::from_millis(300));
    let answered = server.heads().len();
    drop(server);
    assert_eq!(child.wait(), 0);
    child.stderr.to_end();
    let rest = child.stderr.since(mark);
    assert!(answered > 1, "{answered} requests");
    assert!(
        !rest.iter().any(|l| l.contains("not ready")),
        "said once: {rest:?}"
    );
    assert!(
        rest.iter()
            .any(|l| l.starts_with(&format!("{url} is gone after"))),
        "{rest:?}"
    );
}

#[test]
fn a_server_that_never_answers_is_cut_at_the_deadline() {
    // Connections complete in the kernel's backlog; nobody ever reads or answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/", silent.local_addr().expect("addr"));
    let started = std::time::Instant::now();
    let out = wait(&["wait", &url, "--timeout", "1s"]);
    let (code, _, stderr) = text(&out);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(timeout_reason(&stderr), "no HTTP response in time");
    // A generous bound: without the deadline the attempt would wait its full 10 s.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn https_verifies_against_the_ca_given_like_curl() {
    let pki = Pki::new("DNS:localhost,IP:127.0.0.1");
    let server = TlsServer::start(&pki);
    let url = format!("https://127.0.0.1:{}/", server.addr.port());
    let ca = pki.file("ca.pem");
    let out = wait(&[
        "wait",
        &url,
        "--cacert",
        &ca,
        "--body",
        "s_server",
        "--timeout",
        "10s",
    ]);
    assert_eq!(text(&out).0, 0, "{}", text(&out).2);
    assert_eq!(curl(&url, &["--cacert", &ca]), 0);
    // The same CA through SSL_CERT_FILE, and a name rather than an address.
    let named = format!("https://localhost:{}/", server.addr.port());
    let out = netkit()
        .args(["wait", &named, "--timeout", "10s"])
        .env("SSL_CERT_FILE", &ca)
        .output()
        .expect("run");
    assert_eq!(text(&out).0, 0, "{}", text(&out).2);
}

#[test]
fn https_with_an_unknown_issuer_says_so_and_curl_agrees() {
    let pki = Pki::new("IP:127.0.0.1");
    let server = TlsServer::start(&pki);
    let url = format!("https://127.0.0.1:{}/", server.addr.port());
    let out = wait(&["--json", "wait", &url, "--timeout", "1500ms"]);
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        timeout_reason(&stderr),
        "TLS error: certificate signed by an unknown authority (use --cacert FILE or --insecure)"
    );
    let record: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one record");
    assert_eq!(
        record["reason"],
        "TLS error: certificate signed by an unknown authority (use --cacert FILE or --insecure)"
    );
    // curl: 60 = peer certificate cannot be authenticated with known CA certificates.
    assert_eq!(curl(&url, &[]), 60);
    let insecure = wait(&["wait", &url, "--insecure", "--timeout", "10s"]);
    assert_eq!(text(&insecure).0, 0, "{}", text(&insecure).2);
    assert_eq!(curl(&url, &["--insecure"]), 0);
}

#[test]
fn https_with_a_certificate_for_another_name_says_so_and_curl_agrees() {
    let pki = Pki::new("DNS:other.test");
    let server = TlsServer::start(&pki);
    let url = format!("https://127.0.0.1:{}/", server.addr.port());
    let ca = pki.file("ca.pem");
    let out = wait(&["wait", &url, "--cacert", &ca, "--timeout", "1500ms"]);
    let (code, _, stderr) = text(&out);
    assert_eq!(code, 1, "{stderr}");
    let why = timeout_reason(&stderr);
    assert!(
        why == "TLS error: certificate is for other.test, not 127.0.0.1",
        "{why}"
    );
    assert_eq!(curl(&url, &["--cacert", &ca]), 60);
}

#[test]
fn https_to_a_plain_http_server_is_a_tls_error() {
    // A plain HTTP server rejects the binary ClientHello at once, as nginx does.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
        }
    });
    let out = wait(&["wait", &format!("https://{addr}/"), "--timeout", "1500ms"]);
    let (code, _, stderr) = text(&out);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        timeout_reason(&stderr),
        "TLS error: corrupt message from the server (not TLS?)"
    );
}

#[test]
fn http_only_flags_need_http_targets() {
    let port = Reserved::v4();
    for (flag, value) in [
        ("--status", "200"),
        ("--body", "x"),
        ("--cacert", "/etc/hosts"),
    ] {
        let out = wait(&["wait", &port.endpoint(), flag, value]);
        let (code, _, stderr) = text(&out);
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.starts_with(&format!("netkit: {flag}: applies only to")),
            "{stderr}"
        );
    }
    let out = wait(&[
        "wait",
        "https://127.0.0.1/",
        "--cacert",
        "/nonexistent/ca.pem",
    ]);
    let (code, _, stderr) = text(&out);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with("netkit: /nonexistent/ca.pem: cannot read CA certificates"),
        "{stderr}"
    );
}
