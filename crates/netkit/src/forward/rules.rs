//! From the text of a rule (`LISTEN TARGET[,TARGET...]`, or a file's `listen` and `target`)
//! to [`Rule`]s, and the checks every rule passes before anything is bound.
//!
//! - Several targets: a comma list on the command line (`a:80,b:80`; an `exec:` target is
//!   never split, its command may hold commas), a list in the file.
//! - Port ranges: `8000-8010` (or `HOST:8000-8010`, `[V6]:8000-8010`) listens on each port,
//!   each one a rule of its own relaying to the same offset in the targets' ranges
//!   (`host:9000-9010`); every TCP or UDP target needs a range of the same length (`udp:`
//!   rules take ranges on both sides as well). Unix and `exec:` targets take every port's
//!   connections as they are.
//! - [`check`]: an `exec:` program must exist and be executable (found in `PATH` for a bare
//!   name), `exec:` targets cannot be health-checked, `rise`/`fall` are 1 to 100, `retries`
//!   0 to 100.

use super::{Options, Rule};
use crate::endpoint::{exec, names, Endpoint};
use crate::error::ParseError;
use crate::forward::config::ValueError;

/// The most checks in a row `rise` and `fall` may ask for.
pub const MAX_IN_A_ROW: u32 = 100;

/// The most connect retries a rule may ask for (each one bounded by the connect timeout).
pub const MAX_RETRIES: u32 = 100;

/// A value that failed, and the key it came from (`listen`, `target`, `check`, ...).
pub type KeyError = (&'static str, ValueError);

/// The targets of a command-line TARGET: split at commas, unless it is one `exec:` command.
pub fn split_targets(text: &str) -> Vec<&str> {
    if text.starts_with("exec:") {
        return vec![text];
    }
    text.split(',').collect()
}

/// The rules of one `listen` and its `targets` (text), with `options`: one rule, or one per
/// port of a listen port range.
pub fn expand(listen: &str, targets: &[&str], options: &Options) -> Result<Vec<Rule>, KeyError> {
    if targets.is_empty() || targets.iter().any(|t| t.is_empty()) {
        let why = "empty target, expected HOST:PORT[,HOST:PORT...]";
        return Err(("target", ParseError::new(targets.join(","), why).into()));
    }
    let Some(range) = port_range(listen)? else {
        for target in targets {
            if port_range(target)?.is_some() {
                let why = "a target port range needs a listen port range of the same length";
                return Err(("target", ParseError::new(*target, why).into()));
            }
        }
        let listen = Endpoint::parse_listen(listen).map_err(|e| ("listen", e.into()))?;
        let targets = parse_targets(targets.iter().map(|t| t.to_string()))?;
        return Ok(vec![rule(listen, targets, options)]);
    };
    let mut columns = Vec::with_capacity(targets.len());
    for target in targets {
        columns.push(target_ports(target, &range)?);
    }
    (0..range.len())
        .map(|offset| {
            let listen =
                Endpoint::parse_listen(&range.at(offset)).map_err(|e| ("listen", e.into()))?;
            let texts = targets
                .iter()
                .zip(&columns)
                .map(|(plain, column)| match column {
                    Some(range) => range.at(offset),
                    None => plain.to_string(),
                });
            Ok(rule(listen, parse_targets(texts)?, options))
        })
        .collect()
}

fn rule(listen: Endpoint, targets: Vec<Endpoint>, options: &Options) -> Rule {
    Rule {
        listen,
        targets,
        options: options.clone(),
    }
}

fn parse_targets(texts: impl Iterator<Item = String>) -> Result<Vec<Endpoint>, KeyError> {
    texts
        .map(|text| text.parse::<Endpoint>().map_err(|e| ("target", e.into())))
        .collect()
}

/// `PREFIX:FIRST-LAST` (or `FIRST-LAST` alone): a run of ports.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PortRange {
    /// What comes before the ports, without the colon (empty for `FIRST-LAST` alone).
    prefix: String,
    first: u16,
    last: u16,
}

impl PortRange {
    fn len(&self) -> usize {
        usize::from(self.last - self.first) + 1
    }

    /// The endpoint text of port number `offset` of the run.
    fn at(&self, offset: usize) -> String {
        let port = usize::from(self.first) + offset;
        match self.prefix.as_str() {
            "" => port.to_string(),
            prefix => format!("{prefix}:{port}"),
        }
    }
}

/// The port range of `text`, if its port is one; an error when it is a malformed one.
fn port_range(text: &str) -> Result<Option<PortRange>, KeyError> {
    let (prefix, ports) = match text.rsplit_once(':') {
        Some((prefix, ports)) => (prefix, ports),
        None => ("", text),
    };
    let Some((first, last)) = ports.split_once('-') else {
        return Ok(None);
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(first) || !digits(last) || text.starts_with("exec:") || text.starts_with("unix:") {
        return Ok(None);
    }
    let port = |p: &str| {
        crate::ports::parse_port(p).map_err(|e| {
            (
                "listen",
                ValueError::Other(ParseError::new(text, e.kind.to_string())),
            )
        })
    };
    let (first, last) = (port(first)?, port(last)?);
    if last < first {
        let why = "port range ends before it starts";
        return Err(("listen", ParseError::new(text, why).into()));
    }
    Ok(Some(PortRange {
        prefix: prefix.to_string(),
        first,
        last,
    }))
}

/// A target's port range matching the listen range `listen` (`None` for a Unix or `exec:`
/// target, which every port shares).
fn target_ports(target: &str, listen: &PortRange) -> Result<Option<PortRange>, KeyError> {
    let range = port_range(target).map_err(|(_, e)| ("target", e))?;
    match range {
        Some(range) if range.len() == listen.len() => Ok(Some(range)),
        Some(range) => {
            let why = format!(
                "{} ports, but the listen range has {}; expected the same length",
                range.len(),
                listen.len()
            );
            Err(("target", ParseError::new(target, why).into()))
        }
        None => match target.parse::<Endpoint>() {
            Ok(Endpoint::Tcp { .. } | Endpoint::Udp { .. }) => {
                let why = format!(
                    "a listen port range of {} ports needs a target port range of the same \
                     length (HOST:FIRST-LAST)",
                    listen.len()
                );
                Err(("target", ParseError::new(target, why).into()))
            }
            Ok(_) => Ok(None),
            Err(e) => Err(("target", e.into())),
        },
    }
}

/// The checks a rule passes before anything is bound.
pub fn check(rule: &Rule) -> Result<(), KeyError> {
    super::udp::check(rule).map_err(|(key, error)| (key, error.into()))?;
    for target in &rule.targets {
        exec::check(target).map_err(|e| ("target", e.into()))?;
        if rule.options.check.is_some() && matches!(target, Endpoint::Exec(_)) {
            let why = "exec: targets cannot be health-checked (a check would start the program)";
            return Err(("check", ParseError::new(target.to_string(), why).into()));
        }
    }
    for (key, value) in [("rise", rule.options.rise), ("fall", rule.options.fall)] {
        if !(1..=MAX_IN_A_ROW).contains(&value) {
            let why = format!("{key} must be a whole number from 1 to {MAX_IN_A_ROW}");
            return Err((key, ParseError::new(format!("{key} = {value}"), why).into()));
        }
    }
    let retries = rule.options.retries;
    if retries > MAX_RETRIES {
        let why = format!("retries must be a whole number from 0 to {MAX_RETRIES}");
        return Err((
            "retries",
            ParseError::new(format!("retries = {retries}"), why).into(),
        ));
    }
    Ok(())
}

/// Looks up each target host name of `rules` once, before anything is bound (a blocking
/// `getaddrinfo` per name): a name that does not exist is bad input, as HAProxy and nginx refuse
/// to start on it; a name the resolver cannot answer for now gives a warning (returned) and
/// does not stop the forwarder, whose names are resolved again per connection, so a DNS
/// outage at boot does not keep it down.
pub fn check_names(rules: &[Rule]) -> Result<Vec<String>, crate::Error> {
    let mut seen = std::collections::HashSet::new();
    let mut warnings = Vec::new();
    for target in rules.iter().flat_map(|rule| &rule.targets) {
        let (Endpoint::Tcp { host, port } | Endpoint::Udp { host, port }) = target else {
            continue;
        };
        let crate::endpoint::Host::Name(name) = host else {
            continue;
        };
        if !seen.insert(name.as_str()) {
            continue;
        }
        match names::look_up(name, *port) {
            names::Lookup::Found(_) => {}
            names::Lookup::NoSuchName(why) => {
                let host = name.clone();
                return Err(crate::Error::Resolve { host, why });
            }
            names::Lookup::Unanswered(why) => warnings.push(format!(
                "{target}: cannot resolve {name} now ({why}); it is resolved again at each \
                 connection"
            )),
        }
    }
    Ok(warnings)
}

/// The listen addresses given twice in `rules` (but port 0, a new port each time, and bare
/// `systemd:`, the next passed socket each time): the index of the second rule and of the
/// first.
pub fn duplicate_listen(rules: &[Rule]) -> Option<(usize, usize)> {
    rules.iter().enumerate().find_map(|(i, rule)| {
        let fresh = match &rule.listen {
            Endpoint::Systemd(name) => name.is_empty(),
            Endpoint::Tcp { port, .. } | Endpoint::Udp { port, .. } => *port == 0,
            _ => false,
        };
        if fresh {
            return None;
        }
        rules[..i]
            .iter()
            .position(|r| r.listen == rule.listen)
            .map(|first| (i, first))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(rules: &[Rule]) -> Vec<String> {
        rules
            .iter()
            .map(|r| format!("{} -> {}", r.listen, r.targets_text()))
            .collect()
    }

    fn expand_text(listen: &str, targets: &str) -> Result<Vec<String>, String> {
        expand(listen, &split_targets(targets), &Options::default())
            .map(|rules| texts(&rules))
            .map_err(|(key, e)| format!("{key}: {e}"))
    }

    #[test]
    fn target_lists_and_exec_commands() {
        assert_eq!(split_targets("a:1,b:2"), ["a:1", "b:2"]);
        assert_eq!(split_targets("exec:sh -c 'a,b'"), ["exec:sh -c 'a,b'"]);
        assert_eq!(
            expand_text("8080", "127.0.0.1:81,[::1]:82").unwrap(),
            ["127.0.0.1:8080 -> 127.0.0.1:81,[::1]:82"]
        );
        assert_eq!(
            expand_text("8080", "a:1,").unwrap_err(),
            "target: a:1,: empty target, expected HOST:PORT[,HOST:PORT...]"
        );
    }

    #[test]
    fn port_ranges_become_one_rule_per_port() {
        assert_eq!(
            expand_text("8000-8002", "host:9000-9002,unix:/run/a.sock").unwrap(),
            [
                "127.0.0.1:8000 -> host:9000,unix:/run/a.sock",
                "127.0.0.1:8001 -> host:9001,unix:/run/a.sock",
                "127.0.0.1:8002 -> host:9002,unix:/run/a.sock",
            ]
        );
        assert_eq!(
            expand_text("[::1]:7-8", "[::1]:17-18").unwrap(),
            ["[::1]:7 -> [::1]:17", "[::1]:8 -> [::1]:18"]
        );
        assert_eq!(
            expand_text("udp:7-8", "udp:h:17-18").unwrap(),
            ["udp:127.0.0.1:7 -> udp:h:17", "udp:127.0.0.1:8 -> udp:h:18"]
        );
    }

    #[test]
    fn mismatched_or_malformed_ranges_are_refused_naming_the_input() {
        assert_eq!(
            expand_text("8000-8010", "host:9000-9005").unwrap_err(),
            "target: host:9000-9005: 6 ports, but the listen range has 11; expected the same length"
        );
        assert_eq!(
            expand_text("8000-8001", "host:9000").unwrap_err(),
            "target: host:9000: a listen port range of 2 ports needs a target port range of \
             the same length (HOST:FIRST-LAST)"
        );
        assert!(expand_text("udp:8000-8001", "udp:host:9000")
            .unwrap_err()
            .starts_with("target: udp:host:9000: a listen port range of 2 ports needs"));
        assert_eq!(
            expand_text("8000", "host:9000-9001").unwrap_err(),
            "target: host:9000-9001: a target port range needs a listen port range of the same length"
        );
        assert_eq!(
            expand_text("8010-8000", "h:1-11").unwrap_err(),
            "listen: 8010-8000: port range ends before it starts"
        );
        assert!(expand_text("0-2", "h:1-3")
            .unwrap_err()
            .starts_with("listen: 0-2: "));
        assert!(expand_text("1-70000", "h:1-3").is_err());
    }

    #[test]
    fn rules_are_checked() {
        let mut options = Options::default();
        let rule =
            |target: &str, options: &Options| expand("0", &[target], options).unwrap().remove(0);
        let missing = check(&rule("exec:/missing/program", &options)).unwrap_err();
        assert_eq!(missing.0, "target");
        options.check = Some(super::super::Check::Tcp);
        let checked_exec = check(&rule("exec:cat", &options)).unwrap_err();
        assert_eq!(checked_exec.0, "check");
        options.check = None;
        options.fall = 0;
        assert_eq!(check(&rule("127.0.0.1:1", &options)).unwrap_err().0, "fall");
    }

    #[test]
    fn duplicate_listens_are_found_but_port_0_and_bare_systemd_may_repeat() {
        let rules: Vec<Rule> = ["1", "0", "systemd:", "systemd:", "127.0.0.1:0", "1"]
            .iter()
            .map(|l| {
                Rule::new(
                    Endpoint::parse_listen(l).unwrap(),
                    "127.0.0.1:9".parse().unwrap(),
                )
            })
            .collect();
        assert_eq!(duplicate_listen(&rules), Some((5, 0)));
        assert_eq!(duplicate_listen(&rules[..5]), None);
    }
}
