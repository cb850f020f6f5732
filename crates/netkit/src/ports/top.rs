//! netkit's own ranking of TCP ports by how often they are found open on real hosts, most
//! frequent first (`data/top_ports.txt`, built from the documented public sources it lists and
//! docs/top-ports.md; no nmap data): what `topN` takes. Choosing another ranking (an nmap
//! install's `nmap-services`) is scan's `--top-source` ([`crate::scan::rank`]).

use std::sync::OnceLock;

const TOP_PORTS: &str = include_str!("data/top_ports.txt");

/// Every ranked port, most frequently open first.
pub fn top_ports() -> &'static [u16] {
    static RANKED: OnceLock<Vec<u16>> = OnceLock::new();
    RANKED.get_or_init(|| parse_table(TOP_PORTS).map(|(port, _)| port).collect())
}

/// Reads `PORT [NAME] [# comment]` lines of a bundled table, skipping comments and blanks.
pub(crate) fn parse_table(text: &'static str) -> impl Iterator<Item = (u16, Option<&'static str>)> {
    text.lines().filter_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let port = words.next()?.parse().ok()?;
        Some((port, words.next()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn thousand_distinct_valid_ports() {
        let ports = top_ports();
        assert_eq!(ports.len(), 1000);
        assert_eq!(ports.iter().collect::<HashSet<_>>().len(), 1000);
        assert!(ports.iter().all(|p| *p != 0));
    }

    #[test]
    fn every_data_line_parses() {
        let data_lines = TOP_PORTS
            .lines()
            .filter(|l| !l.split('#').next().unwrap_or("").trim().is_empty())
            .count();
        assert_eq!(data_lines, top_ports().len());
    }

    #[test]
    fn the_web_and_ssh_lead() {
        let top20 = &top_ports()[..20];
        for port in [80, 443, 22] {
            assert!(top20.contains(&port), "{port} not in the top 20");
        }
    }
}
