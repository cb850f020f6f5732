//! Active health checks (`--check tcp` or `--check http:/PATH`, every `--check-interval`):
//! one task per target, its results counted into the target's [`Health`](super::health) with
//! the rule's `rise` and `fall`. A `tcp` check passes when a connection is made (then closed
//! at once); an `http` check sends `GET PATH HTTP/1.1` (Host: the rule's `--http-host` value,
//! else the target's `host:port`; `Connection: close`) and passes on a 2xx or 3xx status, as
//! HAProxy's `option httpchk` with `http-check expect status` left at its default; like
//! HAProxy it waits for the whole response head (its empty line), so a target whose answer
//! stops after the status line fails. A check that has not passed within the interval
//! (connect and response together, as HAProxy without `timeout check`; `--connect-timeout`
//! is for clients' connects only) has failed.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use super::health::Thresholds;
use super::http::MAX_HEAD;
use super::target::Target;
use super::{HttpHost, Options};
use crate::endpoint::Endpoint;
use crate::error::{describe_io, Error, ParseError};

/// How a target is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// A connection can be made.
    Tcp,
    /// `GET PATH` answers 2xx or 3xx.
    Http(String),
}

impl FromStr for Check {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, ParseError> {
        let path = match text {
            "tcp" => return Ok(Check::Tcp),
            "http" => "/",
            _ => text.strip_prefix("http:").unwrap_or(""),
        };
        let valid = path.starts_with('/') && path.bytes().all(|b| b.is_ascii_graphic());
        if !valid {
            return Err(ParseError::new(
                text,
                "unknown check, expected tcp or http:/PATH (a path without spaces)",
            ));
        }
        Ok(Check::Http(path.to_string()))
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::Tcp => f.write_str("tcp"),
            Check::Http(path) => write!(f, "http:{path}"),
        }
    }
}

/// Starts checking every target of `targets` as `options` say (nothing without a check). The
/// checks stop when the returned set is dropped. The first checks are spread over the first
/// interval, so that many targets are not all checked at the same moment.
pub(super) fn start(targets: &[Arc<Target>], options: &Options) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    let Some(check) = &options.check else {
        return tasks;
    };
    let count = u32::try_from(targets.len()).unwrap_or(u32::MAX).max(1);
    for (i, target) in targets.iter().enumerate() {
        let host = match &options.http_host {
            Some(host) => host.value_for(&target.endpoint),
            None => HttpHost::Auto.value_for(&target.endpoint),
        };
        let job = Job {
            target: Arc::clone(target),
            check: check.clone(),
            host,
            interval: options.check_interval,
            limits: Thresholds {
                rise: options.rise,
                fall: options.fall,
            },
        };
        let first = options.check_interval * u32::try_from(i).unwrap_or(0) / count;
        tasks.spawn(job.run(first));
    }
    tasks
}

/// The checks of one target.
struct Job {
    target: Arc<Target>,
    check: Check,
    host: String,
    interval: Duration,
    limits: Thresholds,
}

impl Job {
    async fn run(self, first: Duration) {
        tokio::time::sleep(first).await;
        loop {
            let endpoint = &self.target.endpoint;
            // The connect too has the whole interval, not --connect-timeout: HAProxy bounds a
            // check's connect by `timeout connect` only beside `timeout check`, so a lost SYN
            // retransmitted within the interval does not fail a check.
            let probe = probe(endpoint, &self.check, &self.host, self.interval);
            let result = tokio::time::timeout(self.interval, probe)
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {:?}", self.interval)));
            let (health, metrics) = (&self.target.health, &self.target.metrics);
            let change = match result {
                Ok(()) => {
                    metrics.checks_passed.fetch_add(1, Ordering::Relaxed);
                    health.check_passed(self.limits)
                }
                Err(why) => {
                    metrics.checks_failed.fetch_add(1, Ordering::Relaxed);
                    health.check_failed(self.limits, &why)
                }
            };
            self.target.report(change);
            tokio::time::sleep(self.interval).await;
        }
    }
}

/// One check of `endpoint`; why it failed.
pub(super) async fn probe(
    endpoint: &Endpoint,
    check: &Check,
    host: &str,
    connect_timeout: Duration,
) -> Result<(), String> {
    let mut stream = endpoint
        .connect(connect_timeout)
        .await
        .map_err(|err| match err {
            Error::Io { source, .. } => describe_io(&source),
            other => other.to_string(),
        })?;
    let Check::Http(path) = check else {
        return Ok(());
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: netkit-check\r\n\
         Connection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| describe_io(&e))?;
    let status = response_status(&mut stream).await?;
    match status {
        200..=399 => Ok(()),
        other => Err(format!("HTTP status {other}")),
    }
}

/// Reads a response head to its empty line and returns its status code. HAProxy judges a
/// check on the whole head too: a status line alone, or a head the target cuts short or never
/// ends, is no answer. A first line that is no status line fails at once.
async fn response_status(stream: &mut crate::endpoint::Stream) -> Result<u16, String> {
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 1024];
    loop {
        let status = head
            .contains(&b'\n')
            .then(|| parse_status(&head).ok_or_else(|| "not an HTTP response".to_string()))
            .transpose()?;
        if let Some(code) = status.filter(|_| head_ends(&head)) {
            return Ok(code);
        }
        if head.len() > MAX_HEAD {
            return Err("response head over 64 KiB".to_string());
        }
        let n = stream.read(&mut buf).await.map_err(|e| describe_io(&e))?;
        if n == 0 {
            return Err(match status {
                Some(_) => "response head cut short".to_string(),
                None => "not an HTTP response".to_string(),
            });
        }
        head.extend_from_slice(&buf[..n]);
    }
}

/// Whether `head` holds the empty line that ends a head (CRLF or bare LF line ends).
fn head_ends(head: &[u8]) -> bool {
    head.windows(2).any(|w| w == b"\n\n") || head.windows(3).any(|w| w == b"\n\r\n")
}

/// The status code of `HTTP/1.x NNN ...`.
fn parse_status(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    let version = words.next()?;
    let code = words.next()?;
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_forms() {
        assert_eq!("tcp".parse(), Ok(Check::Tcp));
        assert_eq!("http".parse(), Ok(Check::Http("/".into())));
        assert_eq!(
            "http:/health?x=1".parse(),
            Ok(Check::Http("/health?x=1".into()))
        );
        assert_eq!(Check::Http("/h".into()).to_string(), "http:/h");
        for bad in ["udp", "http:", "http:health", "http:/a b", "HTTP:/x"] {
            let err = bad.parse::<Check>().unwrap_err();
            assert_eq!(err.input, bad);
        }
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(
            parse_status(b"HTTP/1.0 503 Service Unavailable\r\n\r\n"),
            Some(503)
        );
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH_9.2\r\n"), None);
        assert_eq!(parse_status(b"HTTP/1.1 20"), None);
        assert_eq!(parse_status(b""), None);
    }

    async fn http_server(reply: &'static [u8]) -> Endpoint {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(reply).await;
            }
        });
        Endpoint::tcp(addr)
    }

    #[tokio::test]
    async fn http_checks_pass_on_2xx_and_3xx_only() {
        let timeout = Duration::from_secs(5);
        let http = Check::Http("/health".into());
        for (reply, want) in [
            (&b"HTTP/1.1 200 OK\r\n\r\n"[..], Ok(())),
            (b"HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n", Ok(())),
            (
                b"HTTP/1.1 503 Busy\r\n\r\n",
                Err("HTTP status 503".to_string()),
            ),
            (b"garbage\n", Err("not an HTTP response".to_string())),
            (b"HTTP/1.0 204\n\n", Ok(())),
            (
                b"HTTP/1.1 200 OK\r\nX: 1\r\n",
                Err("response head cut short".to_string()),
            ),
            (b"HTTP/1.1 2", Err("not an HTTP response".to_string())),
        ] {
            let reply: &'static [u8] = Box::leak(reply.to_vec().into_boxed_slice());
            let target = http_server(reply).await;
            assert_eq!(probe(&target, &http, "x", timeout).await, want);
        }
        let (_refusing, refused) = crate::testing::refused_addr();
        let dead = Endpoint::tcp(refused);
        let got = probe(&dead, &Check::Tcp, "x", timeout).await;
        assert_eq!(got, Err("connection refused".to_string()));
    }
}
