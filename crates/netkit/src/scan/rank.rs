//! Which ranking of TCP ports by how often they are found open a scan's `--top N` takes
//! ([`TopSource`]): netkit's own ([`crate::ports::top`], what `topN` port sets take), or, on
//! request, the user's own nmap install's `nmap-services`, read at run time.

use std::borrow::Cow;
use std::path::PathBuf;
use std::str::FromStr;

use super::nmap_services;
use crate::error::{ParseError, Result};
use crate::ports::top::top_ports;
use crate::PortSet;

/// What netkit's own ranking rests on, for help texts and messages.
pub const NETKIT_SOURCE: &str = "netkit's data (see docs/top-ports.md)";

/// Where a top-ports ranking comes from (`--top-source`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TopSource {
    /// netkit's own list ([`crate::ports::top`]).
    #[default]
    Netkit,
    /// The `nmap-services` of the nmap install (see [`nmap_services::install_paths`]).
    Nmap,
    /// An `nmap-services` file at this path.
    File(PathBuf),
}

impl FromStr for TopSource {
    type Err = ParseError;

    /// `netkit`, `nmap`, or the path of an nmap-services file.
    fn from_str(text: &str) -> std::result::Result<Self, ParseError> {
        match text {
            "" => Err(ParseError::new(
                text,
                "expected netkit, nmap or the path of an nmap-services file",
            )),
            "netkit" => Ok(TopSource::Netkit),
            "nmap" => Ok(TopSource::Nmap),
            path => Ok(TopSource::File(PathBuf::from(path))),
        }
    }
}

impl TopSource {
    /// Loads the ranking: netkit's is built in; an nmap-services file is read now. A file the
    /// user named that cannot be read, or one without frequencies, is bad input; an nmap
    /// install without its file, or whose file cannot be read, the environment's refusal.
    pub fn load(&self) -> Result<Ranking> {
        let (path, given) = match self {
            TopSource::Netkit => return Ok(Ranking::netkit()),
            TopSource::Nmap => (nmap_services::find_install()?, false),
            TopSource::File(path) => (path.clone(), true),
        };
        Ok(Ranking {
            ports: Cow::Owned(nmap_services::read(&path, given)?),
            source: path.display().to_string(),
        })
    }
}

/// TCP ports ranked most frequently open first, and what the ranking rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranking {
    ports: Cow<'static, [u16]>,
    source: String,
}

impl Ranking {
    /// netkit's own ranking.
    pub fn netkit() -> Ranking {
        Ranking {
            ports: Cow::Borrowed(top_ports()),
            source: NETKIT_SOURCE.to_string(),
        }
    }

    /// Every ranked port, most frequently open first.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// What ranked the list: netkit's data, or the nmap-services file's path.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The `n` most frequently open ports, most frequent first; bad input when the ranking
    /// has fewer (or `n` is 0).
    pub fn top(&self, n: usize) -> std::result::Result<PortSet, ParseError> {
        let len = self.ports.len();
        if n == 0 || n > len {
            return Err(ParseError::new(
                format!("--top {n}"),
                format!(
                    "the top-ports list ranked from {} has 1 to {len} entries",
                    self.source
                ),
            ));
        }
        Ok(PortSet::from_ports(self.ports[..n].iter().copied()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netkit_ranking_is_the_bundled_list() {
        let ranking = "netkit".parse::<TopSource>().unwrap().load().unwrap();
        assert_eq!(ranking.ports(), top_ports());
        assert_eq!(ranking.source(), NETKIT_SOURCE);
        assert_eq!(ranking.top(3).unwrap().as_slice(), &top_ports()[..3]);
        let too_many = ranking.top(1001).unwrap_err();
        assert_eq!(too_many.input, "--top 1001");
        assert!(too_many.why.contains("1 to 1000"), "{}", too_many.why);
        assert!(ranking.top(0).is_err());
    }

    #[test]
    fn sources_parse() {
        assert_eq!("nmap".parse(), Ok(TopSource::Nmap));
        assert_eq!(
            "./my-services".parse(),
            Ok(TopSource::File(PathBuf::from("./my-services")))
        );
        assert!("".parse::<TopSource>().is_err());
        assert_eq!(TopSource::default(), TopSource::Netkit);
    }

    #[test]
    fn a_file_source_ranks_from_the_file() {
        let path = std::env::temp_dir().join(format!("nk-rank-{}", std::process::id()));
        std::fs::write(&path, "a 8080/tcp 0.5\nb 22/tcp 0.7\nc 53/udp 0.9\n").unwrap();
        let ranking = TopSource::File(path.clone()).load();
        let _ = std::fs::remove_file(&path);
        let ranking = ranking.unwrap();
        assert_eq!(ranking.ports(), &[22, 8080]);
        assert_eq!(ranking.source(), path.display().to_string());
    }
}
