//! Reading an nmap install's `nmap-services` file at run time, to rank TCP ports by its
//! open-frequency column exactly as `nmap --top-ports` does. The file is the user's own: netkit
//! never ships or copies it (its license does not allow redistribution in netkit's form).

use std::path::{Path, PathBuf};

use crate::error::{Error, ParseError, Result};

/// Where nmap keeps its data files, in the order nmap itself looks (`$NMAPDIR` first).
const INSTALL_DIRS: &[&str] = &["/usr/local/share/nmap", "/usr/share/nmap"];

/// The file name nmap reads its port frequencies from.
pub const FILE_NAME: &str = "nmap-services";

/// The `nmap-services` candidates of an nmap install: `$NMAPDIR/nmap-services` when `NMAPDIR`
/// is set, then the install directories.
pub fn install_paths() -> Vec<PathBuf> {
    let from_env = std::env::var_os("NMAPDIR").map(|dir| Path::new(&dir).join(FILE_NAME));
    from_env
        .into_iter()
        .chain(
            INSTALL_DIRS
                .iter()
                .map(|dir| Path::new(dir).join(FILE_NAME)),
        )
        .collect()
}

/// The `nmap-services` file nmap would read, or an environment error naming where it looked.
pub fn find_install() -> Result<PathBuf> {
    let tried = install_paths();
    if let Some(found) = tried.iter().find(|path| path.is_file()) {
        return Ok(found.clone());
    }
    let places: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    Err(Error::io(
        format!(
            "--top-source nmap: no nmap-services file in {} (install nmap, or name the file: \
             --top-source FILE)",
            places.join(", ")
        ),
        std::io::ErrorKind::NotFound.into(),
    ))
}

/// Reads `path` and ranks its TCP ports (see [`rank_tcp`]). A file without frequencies is bad
/// input; so is one that cannot be read when the user named it (`given`), as an `@FILE` of
/// targets is, where the file an nmap install should have is the environment's refusal.
pub fn read(path: &Path, given: bool) -> Result<Vec<u16>> {
    let bytes = std::fs::read(path).map_err(|e| {
        if given {
            let why = format!("cannot read: {}", crate::error::describe_io(&e));
            ParseError::new(path.display().to_string(), why).into()
        } else {
            Error::io(format!("--top-source: read {}", path.display()), e)
        }
    })?;
    let ranked = rank_tcp(&String::from_utf8_lossy(&bytes));
    if ranked.is_empty() {
        return Err(ParseError::new(
            path.display().to_string(),
            "no TCP port with an open frequency: not an nmap-services file \
             (NAME PORT/tcp FREQUENCY lines)",
        )
        .into());
    }
    Ok(ranked)
}

/// The TCP ports of an `nmap-services` text, most frequently open first: frequency descending,
/// equal frequencies in file order, a port listed twice counted once (its first line), as
/// nmap's `--top-ports` orders them. Empty when no line carries a frequency (an
/// `/etc/services`-style file, which nmap also refuses to rank).
pub fn rank_tcp(text: &str) -> Vec<u16> {
    let mut seen = vec![false; 1 << 16];
    let mut entries: Vec<(u16, f64)> = text
        .lines()
        .filter_map(tcp_entry)
        .filter(|(port, _)| !std::mem::replace(&mut seen[usize::from(*port)], true))
        .collect();
    if entries.iter().all(|(_, ratio)| ratio.is_nan()) {
        return Vec::new();
    }
    // A stable sort keeps file order among equal frequencies; a line without one counts 0.
    let key = |ratio: f64| if ratio.is_nan() { 0.0 } else { ratio };
    entries.sort_by(|a, b| key(b.1).total_cmp(&key(a.1)));
    entries.into_iter().map(|(port, _)| port).collect()
}

/// `NAME PORT/tcp [FREQUENCY] [# comment]` as (port, frequency); NaN when the line has no
/// frequency. Comments, other protocols, port 0 and malformed lines give `None`.
fn tcp_entry(line: &str) -> Option<(u16, f64)> {
    let line = line.split('#').next()?;
    let mut words = line.split_whitespace();
    let (_name, port_proto) = (words.next()?, words.next()?);
    let (port, proto) = port_proto.split_once('/')?;
    if !proto.eq_ignore_ascii_case("tcp") {
        return None;
    }
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    let ratio = match words.next() {
        None => f64::NAN,
        Some(word) => word
            .parse()
            .ok()
            .filter(|r: &f64| (0.0..=1.0).contains(r))?,
    };
    Some((port, ratio))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# Fields in this file are: Service name, portnum/protocol, open-frequency, optional comments
tcpmux\t1/tcp\t0.001995\t# TCP Port Service Multiplexer
tcpmux\t1/udp\t0.9\t# a UDP line never ranks TCP
echo\t7/tcp\t0.004855
http\t80/tcp\t0.484143\t# World Wide Web HTTP
dup\t80/tcp\t0.99\t# a repeated port keeps its first line
telnet\t23/tcp\t0.221265
a\t9/tcp\t0.004855\t# ties keep file order: 7 before 9
zero\t0/tcp\t0.5
noratio\t11/tcp
bad\t12/tcp\tlots
";

    #[test]
    fn frequency_descending_ties_in_file_order() {
        assert_eq!(rank_tcp(SAMPLE), vec![80, 23, 7, 9, 1, 11]);
    }

    #[test]
    fn a_file_without_frequencies_ranks_nothing() {
        let etc_services = "ssh\t\t22/tcp\t\t\t# SSH Remote Login Protocol\nhttp\t80/tcp\twww\n";
        assert!(rank_tcp(etc_services).is_empty());
        assert!(rank_tcp("").is_empty());
    }

    #[test]
    fn nmapdir_comes_first() {
        let paths = install_paths();
        assert_eq!(
            paths.last().map(PathBuf::as_path),
            Some(Path::new("/usr/share/nmap/nmap-services"))
        );
    }

    #[test]
    fn unreadable_is_environment_or_input_and_garbage_is_input() {
        use crate::error::ErrorClass;
        let path = Path::new("/nonexistent/nmap-services");
        for (given, class) in [(false, ErrorClass::Environment), (true, ErrorClass::Input)] {
            let missing = read(path, given).unwrap_err();
            assert_eq!(missing.class(), class);
            assert!(missing.to_string().contains("/nonexistent/nmap-services"));
        }
        let dir = std::env::temp_dir().join(format!("nk-nmap-services-{}", std::process::id()));
        std::fs::write(&dir, "not\nan nmap-services file\n").expect("write");
        let garbage = read(&dir, true).unwrap_err();
        let _ = std::fs::remove_file(&dir);
        assert_eq!(garbage.class(), ErrorClass::Input);
    }

    #[test]
    fn the_installed_file_ranks_http_first() {
        let Ok(path) = find_install() else {
            return; // no nmap here: the CLI tests compare with nmap itself where it exists
        };
        let ranked = read(&path, false).expect("read nmap-services");
        assert_eq!(ranked[0], 80);
        assert!(ranked.len() > 1000, "{}", ranked.len());
    }
}
