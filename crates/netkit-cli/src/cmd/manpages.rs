//! `netkit manpages DIR` (hidden): writes the man pages, `netkit.1` and one `netkit-CMD.1`
//! per command, generated from the clap definitions (clap_mangen). Packaging and CI run it on
//! the binary they ship, so the pages always describe that binary.

use std::path::{Path, PathBuf};

use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit::Exit;

/// Arguments of `netkit manpages`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The directory to write the pages into (created if missing).
    pub dir: PathBuf,
}

/// Writes every page into `args.dir`.
pub fn run(args: Args) -> anyhow::Result<Exit> {
    std::fs::create_dir_all(&args.dir).map_err(|e| io_error(&args.dir, e))?;
    clap_mangen::generate_to(Cli::command(), &args.dir).map_err(|e| io_error(&args.dir, e))?;
    Ok(Exit::Success)
}

fn io_error(dir: &Path, err: std::io::Error) -> netkit::Error {
    netkit::Error::io(format!("write man pages to {}", dir.display()), err)
}
