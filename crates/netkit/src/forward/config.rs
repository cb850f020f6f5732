//! Forwarding rules from a TOML file (`netkit forward --config FILE.toml`):
//!
//! ```toml
//! [[rule]]
//! listen = "8080"              # or a port range, "8000-8010"
//! target = "app.internal:80"   # or a list, ["a.internal:80", "b.internal:80"]
//! http_host = "auto"           # optional, like every key below
//! allow = ["198.18.0.0/15"]
//! max_conns = 100
//! idle_timeout = "5m"
//! connect_timeout = "2s"
//! retries = 3                  # the default; 0: each target once
//! proxy_protocol = "v2"
//! drain_timeout = "10s"        # default 30s
//! balance = "least-conn"       # round-robin (default), least-conn, hash
//! check = "http:/health"       # or "tcp"; none by default
//! check_interval = "2s"
//! rise = 2
//! fall = 3
//! keepalive = "60s"            # the default; "off" for none
//!
//! [[rule]]                     # UDP: both sides udp:, a session per client
//! listen = "udp:5353"
//! target = "udp:127.0.0.1:53"
//! idle_timeout = "30s"         # per session; default 60s for udp: rules
//! max_conns = 1000             # sessions at once
//! ```
//! Unknown keys are errors. Every value is checked before anything is bound (an `exec:`
//! program must exist), and no two rules listen on the same address.

use std::path::Path;

use serde::Deserialize;

use super::{Options, Rule};
use crate::duration::{parse_duration, parse_positive_duration, DurationError};
use crate::endpoint::EndpointError;
use crate::error::ParseError;
use crate::target::TargetError;

/// A rules file could not be read or failed its checks: `FILE: why`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {kind}", crate::text::clipped(.input))]
pub struct ConfigError {
    /// The file as given.
    pub input: String,
    /// What is wrong with it.
    pub kind: ConfigErrorKind,
}

/// What is wrong with a rules file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigErrorKind {
    /// It cannot be read.
    #[error("{0}")]
    Unreadable(String),
    /// It is not TOML of the expected shape (an unknown key, a value of the wrong type); the
    /// TOML parser's message after the line it points at.
    #[error("{0}")]
    Toml(String),
    /// It has no `[[rule]]` table.
    #[error("no [[rule]] tables")]
    NoRules,
    /// Two rules listen on the same address.
    #[error("rule {rule}: listen {listen} is also the listen address of rule {first}")]
    DuplicateListen {
        /// The later rule's position in the file, from 1.
        rule: usize,
        /// The earlier one's.
        first: usize,
        /// The address.
        listen: String,
    },
    /// A value of a rule failed its check.
    #[error("rule {rule}: {error}")]
    Rule {
        /// The rule's position in the file, from 1.
        rule: usize,
        /// The key whose value failed (`listen`, `target`, `drain_timeout`, ...).
        key: &'static str,
        /// Why the value failed, naming the value.
        error: Box<ValueError>,
    },
}

/// Why a value in a rule failed, in the words of the value's own domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// `listen` or `target`.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// An `allow` block.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// A timeout.
    #[error(transparent)]
    Duration(#[from] DurationError),
    /// `http_host`, `proxy_protocol`, `max_conns`, `balance`, `check`, `keepalive`, port ranges.
    #[error(transparent)]
    Other(#[from] ParseError),
}

impl From<ValueError> for crate::error::Error {
    fn from(err: ValueError) -> Self {
        match err {
            ValueError::Endpoint(e) => e.into(),
            ValueError::Target(e) => e.into(),
            ValueError::Duration(e) => e.into(),
            ValueError::Other(e) => e.into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    rule: Vec<RuleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    listen: String,
    target: TargetSpec,
    http_host: Option<String>,
    #[serde(default)]
    allow: Vec<String>,
    max_conns: Option<usize>,
    idle_timeout: Option<String>,
    connect_timeout: Option<String>,
    retries: Option<u32>,
    proxy_protocol: Option<String>,
    drain_timeout: Option<String>,
    balance: Option<String>,
    check: Option<String>,
    check_interval: Option<String>,
    rise: Option<u32>,
    fall: Option<u32>,
    keepalive: Option<String>,
}

/// `target = "HOST:PORT"` (a comma list as on the command line) or `target = [...]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TargetSpec {
    One(String),
    Many(Vec<String>),
}

impl TargetSpec {
    fn texts(&self) -> Vec<&str> {
        match self {
            TargetSpec::One(text) => super::rules::split_targets(text),
            TargetSpec::Many(list) => list.iter().map(String::as_str).collect(),
        }
    }
}

/// Reads and checks the rules of `path`.
pub fn load(path: &Path) -> Result<Vec<Rule>, ConfigError> {
    let input = path.display().to_string();
    let fail = |kind| ConfigError {
        input: input.clone(),
        kind,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| fail(ConfigErrorKind::Unreadable(crate::error::describe_io(&e))))?;
    parse(&text).map_err(fail)
}

/// Parses rules from TOML text; the error says which rule and key failed.
pub fn parse(text: &str) -> Result<Vec<Rule>, ConfigErrorKind> {
    let file: File =
        toml::from_str(text).map_err(|e| ConfigErrorKind::Toml(toml_message(text, &e)))?;
    if file.rule.is_empty() {
        return Err(ConfigErrorKind::NoRules);
    }
    let mut rules = Vec::new();
    let mut tables = Vec::new();
    for (i, spec) in file.rule.into_iter().enumerate() {
        let expanded = spec.check().map_err(|(key, error)| ConfigErrorKind::Rule {
            rule: i + 1,
            key,
            error: Box::new(error),
        })?;
        tables.extend(std::iter::repeat_n(i + 1, expanded.len()));
        rules.extend(expanded);
    }
    if let Some((second, first)) = super::rules::duplicate_listen(&rules) {
        return Err(ConfigErrorKind::DuplicateListen {
            rule: tables[second],
            first: tables[first],
            listen: rules[second].listen.to_string(),
        });
    }
    Ok(rules)
}

/// The TOML parser's message after the line it points at (`line 4 (max_conns = "many"):
/// invalid type: ...`): serde's words alone name neither the rule nor the key. A long line is
/// cut to its first 60 characters.
fn toml_message(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().replace('\n', "; ");
    let Some(before) = err.span().and_then(|span| text.get(..span.start)) else {
        return message;
    };
    let number = before.matches('\n').count() + 1;
    let line = text.lines().nth(number - 1).unwrap_or_default().trim();
    let shown: String = line.chars().take(60).collect();
    let cut = if shown.len() < line.len() { " ..." } else { "" };
    format!("line {number} ({shown}{cut}): {message}")
}

/// Tags a value's error with its key.
fn key<T, E: Into<ValueError>>(
    key: &'static str,
    result: Result<T, E>,
) -> Result<T, (&'static str, ValueError)> {
    result.map_err(|e| (key, e.into()))
}

impl RuleSpec {
    fn check(self) -> Result<Vec<Rule>, (&'static str, ValueError)> {
        let defaults = Options::default();
        let options = Options {
            http_host: key(
                "http_host",
                self.http_host.as_deref().map(str::parse).transpose(),
            )?,
            allow: key(
                "allow",
                self.allow
                    .iter()
                    .map(|net| crate::target::parse_net(net))
                    .collect::<Result<_, _>>(),
            )?,
            max_conns: match self.max_conns {
                Some(0) => {
                    let zero = ParseError::new("max_conns = 0", "must be 1 or more");
                    return Err(("max_conns", zero.into()));
                }
                other => other,
            },
            idle_timeout: key(
                "idle_timeout",
                self.idle_timeout
                    .as_deref()
                    .map(parse_positive_duration)
                    .transpose(),
            )?,
            connect_timeout: match self.connect_timeout.as_deref() {
                Some(text) => key("connect_timeout", parse_positive_duration(text))?,
                None => defaults.connect_timeout,
            },
            retries: self.retries.unwrap_or(defaults.retries),
            proxy_protocol: key(
                "proxy_protocol",
                self.proxy_protocol.as_deref().map(str::parse).transpose(),
            )?,
            drain_timeout: match self.drain_timeout.as_deref() {
                Some(text) => key("drain_timeout", parse_duration(text))?,
                None => defaults.drain_timeout,
            },
            balance: match self.balance.as_deref() {
                Some(text) => key("balance", text.parse())?,
                None => defaults.balance,
            },
            check: key("check", self.check.as_deref().map(str::parse).transpose())?,
            check_interval: match self.check_interval.as_deref() {
                Some(text) => key("check_interval", parse_positive_duration(text))?,
                None => defaults.check_interval,
            },
            rise: self.rise.unwrap_or(defaults.rise),
            fall: self.fall.unwrap_or(defaults.fall),
            keepalive: match self.keepalive.as_deref() {
                Some(text) => key("keepalive", text.parse())?,
                None => defaults.keepalive,
            },
        };
        let rules = super::rules::expand(&self.listen, &self.target.texts(), &options)?;
        rules.iter().try_for_each(super::rules::check)?;
        Ok(rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Endpoint;

    #[test]
    fn parses_rules_with_options() {
        let rules = parse(
            "[[rule]]\nlisten = \"0\"\ntarget = \"127.0.0.1:80\"\nidle_timeout = \"5s\"\n\
             allow = [\"127.0.0.0/8\"]\nproxy_protocol = \"v1\"\ndrain_timeout = \"2s\"\n\
             [[rule]]\nlisten = \"unix:@a\"\ntarget = \"[::1]:81\"\nhttp_host = \"auto\"\n",
        )
        .unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(
            rules[0].options.idle_timeout,
            Some(std::time::Duration::from_secs(5))
        );
        assert_eq!(rules[1].listen, Endpoint::Abstract("a".into()));
        assert_eq!(
            rules[0].options.drain_timeout,
            std::time::Duration::from_secs(2)
        );
        assert_eq!(
            rules[1].options.drain_timeout,
            super::super::DEFAULT_DRAIN_TIMEOUT
        );
        assert_eq!(
            rules[1].options.keepalive,
            super::super::Keepalive::default()
        );
    }

    #[test]
    fn keepalive_takes_a_duration_or_off() {
        let rule = |value: &str| {
            parse(&format!(
                "[[rule]]\nlisten = \"0\"\ntarget = \"[::1]:1\"\nkeepalive = \"{value}\"\n"
            ))
        };
        let keepalive = |value: &str| rule(value).unwrap()[0].options.keepalive;
        assert_eq!(
            keepalive("15s"),
            super::super::Keepalive::After(std::time::Duration::from_secs(15))
        );
        assert_eq!(keepalive("off"), super::super::Keepalive::Off);
        let bad = rule("sometimes").unwrap_err();
        assert!(
            matches!(
                &bad,
                ConfigErrorKind::Rule {
                    key: "keepalive",
                    ..
                }
            ),
            "{bad:?}"
        );
        assert!(bad.to_string().starts_with("rule 1: sometimes: "), "{bad}");
    }

    #[test]
    fn retries_default_to_3_and_are_checked() {
        let rule = |line: &str| {
            parse(&format!(
                "[[rule]]\nlisten = \"0\"\ntarget = \"[::1]:1\"\n{line}\n"
            ))
        };
        assert_eq!(rule("").unwrap()[0].options.retries, 3);
        assert_eq!(rule("retries = 0").unwrap()[0].options.retries, 0);
        let bad = rule("retries = 101").unwrap_err();
        assert!(
            matches!(
                &bad,
                ConfigErrorKind::Rule {
                    rule: 1,
                    key: "retries",
                    ..
                }
            ),
            "{bad:?}"
        );
        assert_eq!(
            bad.to_string(),
            "rule 1: retries = 101: retries must be a whole number from 0 to 100"
        );
        let negative = rule("retries = -1").unwrap_err();
        assert!(
            matches!(&negative, ConfigErrorKind::Toml(_)),
            "{negative:?}"
        );
    }

    #[test]
    fn refuses_unknown_keys_and_bad_values_naming_rule_and_key() {
        let unknown = parse("[[rule]]\nlisten = \"0\"\ntarget = \"1.2.3.4:80\"\ncolour = 1\n");
        assert!(
            matches!(&unknown, Err(ConfigErrorKind::Toml(why)) if why.contains("colour")),
            "{unknown:?}"
        );
        let bad = parse("[[rule]]\nlisten = \"0\"\ntarget = \"1.2.3.4:0\"\n").unwrap_err();
        let ConfigErrorKind::Rule { rule, key, error } = &bad else {
            panic!("{bad:?}");
        };
        assert_eq!((*rule, *key), (1, "target"));
        let ValueError::Endpoint(endpoint) = error.as_ref() else {
            panic!("{error:?}");
        };
        assert_eq!(endpoint.input, "1.2.3.4:0");
        assert_eq!(
            endpoint.kind,
            crate::endpoint::EndpointErrorKind::Port(crate::ports::PortErrorKind::OutOfRange)
        );
        assert_eq!(
            bad.to_string(),
            "rule 1: 1.2.3.4:0: port must be between 1 and 65535"
        );
        let zero = parse(
            "[[rule]]\nlisten = \"0\"\ntarget = \"[::1]:1\"\n\
                          [[rule]]\nlisten = \"0\"\ntarget = \"[::1]:1\"\nidle_timeout = \"0s\"\n",
        );
        assert!(
            matches!(
                zero,
                Err(ConfigErrorKind::Rule {
                    rule: 2,
                    key: "idle_timeout",
                    ..
                })
            ),
            "{zero:?}"
        );
        assert_eq!(parse(""), Err(ConfigErrorKind::NoRules));
    }

    #[test]
    fn udp_rules_need_udp_on_both_sides_and_no_v1() {
        let rules = parse(
            "[[rule]]\nlisten = \"udp:0\"\ntarget = \"udp:[::1]:53\"\nproxy_protocol = \"v2\"\n",
        )
        .unwrap();
        assert!(rules[0].listen.is_udp() && rules[0].targets[0].is_udp());
        for (text, want) in [
            ("listen = \"udp:0\"\ntarget = \"127.0.0.1:53\"", "target"),
            ("listen = \"0\"\ntarget = \"udp:127.0.0.1:53\"", "listen"),
            ("listen = \"udp:0\"\ntarget = \"exec:cat\"", "target"),
            (
                "listen = \"udp:0\"\ntarget = \"udp:1.2.3.4:5\"\nproxy_protocol = \"v1\"",
                "proxy_protocol",
            ),
        ] {
            let err = parse(&format!("[[rule]]\n{text}\n")).unwrap_err();
            assert!(
                matches!(&err, ConfigErrorKind::Rule { rule: 1, key, .. } if *key == want),
                "{text}: {err:?}"
            );
        }
    }

    #[test]
    fn an_unreadable_file_is_named() {
        let err = load(Path::new("/nonexistent/rules.toml")).unwrap_err();
        assert_eq!(err.input, "/nonexistent/rules.toml");
        assert!(
            matches!(err.kind, ConfigErrorKind::Unreadable(_)),
            "{err:?}"
        );
    }
}
