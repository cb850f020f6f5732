//! Forwarding rules from a TOML file (`netkit forward --config FILE.toml`):
//!
//! ```toml
//! [[rule]]
//! listen = "8080"
//! target = "app.internal:80"
//! http_host = "auto"           # optional, like every key below
//! allow = ["198.18.0.0/15"]
//! max_conns = 100
//! idle_timeout = "5m"
//! connect_timeout = "2s"
//! proxy_protocol = "v2"
//! drain_timeout = "10s"        # default 30s
//! ```
//! Unknown keys are errors. Every value is checked before anything is bound.

use std::path::Path;

use serde::Deserialize;

use super::{Options, Rule};
use crate::endpoint::Endpoint;
use crate::error::ParseError;

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
    target: String,
    http_host: Option<String>,
    #[serde(default)]
    allow: Vec<String>,
    max_conns: Option<usize>,
    idle_timeout: Option<String>,
    connect_timeout: Option<String>,
    proxy_protocol: Option<String>,
    drain_timeout: Option<String>,
}

/// Reads and checks the rules of `path`.
pub fn load(path: &Path) -> Result<Vec<Rule>, ParseError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ParseError::new(&name, crate::error::describe_io(&e)))?;
    parse(&text).map_err(|why| ParseError::new(name, why))
}

/// Parses rules from TOML text; the error says which rule and value failed.
pub fn parse(text: &str) -> Result<Vec<Rule>, String> {
    let file: File = toml::from_str(text).map_err(|e| e.message().to_string())?;
    if file.rule.is_empty() {
        return Err("no [[rule]] tables".into());
    }
    file.rule
        .into_iter()
        .enumerate()
        .map(|(i, spec)| spec.check().map_err(|e| format!("rule {}: {e}", i + 1)))
        .collect()
}

impl RuleSpec {
    fn check(self) -> Result<Rule, ParseError> {
        let defaults = Options::default();
        let options = Options {
            http_host: self.http_host.as_deref().map(str::parse).transpose()?,
            allow: self
                .allow
                .iter()
                .map(|net| crate::target::parse_net(net))
                .collect::<Result<_, _>>()?,
            max_conns: match self.max_conns {
                Some(0) => return Err(ParseError::new("max_conns = 0", "must be 1 or more")),
                other => other,
            },
            idle_timeout: self.idle_timeout.as_deref().map(positive).transpose()?,
            connect_timeout: match self.connect_timeout.as_deref() {
                Some(text) => positive(text)?,
                None => defaults.connect_timeout,
            },
            proxy_protocol: self.proxy_protocol.as_deref().map(str::parse).transpose()?,
            drain_timeout: match self.drain_timeout.as_deref() {
                Some(text) => crate::parse_duration(text)?,
                None => defaults.drain_timeout,
            },
        };
        Ok(Rule {
            listen: Endpoint::parse_listen(&self.listen)?,
            target: self.target.parse()?,
            options,
        })
    }
}

fn positive(text: &str) -> Result<std::time::Duration, ParseError> {
    let value = crate::parse_duration(text)?;
    if value.is_zero() {
        return Err(ParseError::new(text, "must be longer than zero"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn refuses_unknown_keys_and_bad_values() {
        let unknown = parse("[[rule]]\nlisten = \"0\"\ntarget = \"1.2.3.4:80\"\ncolour = 1\n");
        assert!(unknown.unwrap_err().contains("colour"));
        let bad = parse("[[rule]]\nlisten = \"0\"\ntarget = \"1.2.3.4:0\"\n").unwrap_err();
        assert!(bad.starts_with("rule 1: 1.2.3.4:0"), "{bad}");
        assert!(parse("").is_err());
    }
}
