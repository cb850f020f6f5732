//! Service names for TCP ports, from IANA's Service Name and Transport Protocol Port Number
//! Registry (sources in `data/services.txt`).

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::ports::top::parse_table;

const SERVICES: &str = include_str!("data/services.txt");

/// The usual service name of a TCP port, if the table has one.
pub fn service_name(port: u16) -> Option<&'static str> {
    static TABLE: OnceLock<HashMap<u16, &'static str>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        parse_table(SERVICES)
            .filter_map(|(port, name)| Some((port, name?)))
            .collect()
    });
    table.get(&port).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_names() {
        assert_eq!(service_name(22), Some("ssh"));
        assert_eq!(service_name(80), Some("http"));
        assert_eq!(service_name(443), Some("https"));
    }

    #[test]
    fn every_top_port_has_a_name() {
        let missing: Vec<u16> = crate::ports::top::top_ports()
            .iter()
            .copied()
            .filter(|p| service_name(*p).is_none())
            .collect();
        assert!(missing.is_empty(), "no service name for {missing:?}");
    }
}
