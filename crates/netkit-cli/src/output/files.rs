//! Where results go besides the terminal: nmap's output options, `-oN FILE` (the text printed
//! on a terminal), `-oX FILE` (nmap's XML), `-oG FILE` (nmap's grepable lines), `-oJ FILE`
//! (JSON Lines) and `-oA BASE` (BASE.nmap, BASE.xml and BASE.gnmap). clap takes them as long
//! flags (`--output-xml FILE`); [`crate::nmap_flags`] rewrites nmap's spelling into those
//! before parsing. `-` as FILE means stdout, which then carries that format only.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use netkit::ParseError;

use super::nmap::Document;
use super::nmap_grep::Grepable;
use super::nmap_xml::Xml;

/// nmap's document formats, for `scan` and `sweep`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DocumentArgs {
    /// -oX FILE: nmap's XML (the nmaprun document ndiff and python-libnmap read); - is stdout.
    #[arg(long = "output-xml", value_name = "FILE")]
    pub output_xml: Option<PathBuf>,
    /// -oG FILE: nmap's grepable lines, one per host, tab-separated fields ('Host: ADDR ()',
    /// 'Ports: 22/open/tcp//ssh///'); - is stdout.
    #[arg(long = "output-grepable", value_name = "FILE")]
    pub output_grepable: Option<PathBuf>,
}

/// The text formats of `scan`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TextArgs {
    /// -oN FILE: the text printed on a terminal, whatever --json says; - is stdout.
    #[arg(long = "output-normal", value_name = "FILE")]
    pub output_normal: Option<PathBuf>,
    /// -oJ FILE: JSON Lines, whatever --json says; - is stdout.
    #[arg(long = "output-json", value_name = "FILE")]
    pub output_json: Option<PathBuf>,
    /// -oA BASE: BASE.nmap (text), BASE.xml and BASE.gnmap at once.
    #[arg(long = "output-all", value_name = "BASE")]
    pub output_all: Option<PathBuf>,
}

/// A text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    /// The lines a terminal shows.
    Human,
    /// JSON Lines.
    Json,
}

/// Whether `path` is `-` (stdout).
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Refuses more than one output on stdout: `netkit: -: ...` (exit 2).
pub fn one_stdout<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Result<(), ParseError> {
    let on_stdout = paths.into_iter().filter(|p| is_stdout(p)).count();
    match on_stdout {
        0 | 1 => Ok(()),
        _ => Err(ParseError::new(
            "-",
            "only one output format can go to stdout",
        )),
    }
}

/// Opens `path` for writing: stdout for `-`, else the file, created or truncated (an error
/// naming it otherwise).
pub fn create(path: &Path) -> Result<Box<dyn Write>, netkit::Error> {
    if is_stdout(path) {
        return Ok(Box::new(BufWriter::new(io::stdout())));
    }
    let file = File::create(path).map_err(|e| file_error(path, e))?;
    Ok(Box::new(BufWriter::new(file)))
}

/// An error writing to `path` (`write PATH: permission denied`: a file's error, not a
/// socket's, so its hint is about the file).
pub fn file_error(path: &Path, err: io::Error) -> netkit::Error {
    netkit::Error::io(format!("write {}", path.display()), err)
}

/// `BASE.EXT`: BASE with an extension appended (`-oA scan` gives `scan.xml`).
pub fn with_extension(base: &Path, ext: &str) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

/// The documents asked for, each opened: `-oX`, `-oG`, and `-oA`'s XML and grepable files.
pub fn documents(args: &DocumentArgs, all: Option<&Path>) -> Result<Documents, netkit::Error> {
    let mut docs: Documents = Vec::new();
    let xml = args.output_xml.iter().cloned();
    for path in xml.chain(all.map(|base| with_extension(base, "xml"))) {
        let doc = Box::new(Xml::new(create(&path)?));
        docs.push((path, doc));
    }
    let grepable = args.output_grepable.iter().cloned();
    for path in grepable.chain(all.map(|base| with_extension(base, "gnmap"))) {
        let doc = Box::new(Grepable::new(create(&path)?));
        docs.push((path, doc));
    }
    Ok(docs)
}

/// Opened documents, each with its path (`-` for stdout) for error messages.
pub type Documents = Vec<(PathBuf, Box<dyn Document>)>;

/// Does `write` to every document; a failure names the document's file.
pub fn each(
    docs: &mut Documents,
    mut write: impl FnMut(&mut dyn Document) -> io::Result<()>,
) -> Result<(), netkit::Error> {
    for (path, doc) in docs {
        write(doc.as_mut()).map_err(|e| file_error(path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_output_on_stdout_at_most() {
        let (a, b, dash) = (Path::new("a"), Path::new("b"), Path::new("-"));
        assert!(one_stdout([a, b, dash]).is_ok());
        assert!(one_stdout([dash, a, dash]).is_err());
    }

    #[test]
    fn all_appends_the_extension() {
        assert_eq!(
            with_extension(Path::new("out/scan.v1"), "xml"),
            Path::new("out/scan.v1.xml")
        );
    }
}
