//! `netkit completions SHELL`: a shell completion script generated from the clap definitions
//! (clap_complete), so it always matches the command line of this very binary.

use std::io::Write;

use clap::{Command, CommandFactory};
use clap_complete::Shell;

use crate::cli::Cli;
use crate::exit::Exit;

const EXAMPLES: &str = "\
Examples:
  source <(netkit completions bash)                         try it in the current bash
  netkit completions bash > ~/.local/share/bash-completion/completions/netkit
  netkit completions zsh > ~/.zfunc/_netkit                 with fpath+=(~/.zfunc) in ~/.zshrc
  netkit completions fish > ~/.config/fish/completions/netkit.fish

The Debian package installs the bash, zsh and fish scripts system-wide.";

/// Arguments of `netkit completions`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Prints the completion script for `args.shell` on stdout.
pub fn run(args: Args) -> anyhow::Result<Exit> {
    let mut out = std::io::stdout().lock();
    out.write_all(&script(args.shell))?;
    out.flush()?;
    Ok(Exit::Success)
}

/// The script as bytes: clap_complete panics on a write error, so it writes into memory and
/// the caller's write reports a closed stdout like every other command does.
fn script(shell: Shell) -> Vec<u8> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut visible(Cli::command()), "netkit", &mut buf);
    buf
}

/// The command line without its hidden subcommands (`manpages`), which clap_complete would
/// offer too. clap cannot remove a subcommand, so the top level is rebuilt around the rest.
fn visible(full: Command) -> Command {
    let subcommands: Vec<Command> = full
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .cloned()
        .collect();
    let about = full.get_about().cloned().unwrap_or_default();
    Command::new("netkit")
        .about(about)
        .version(env!("CARGO_PKG_VERSION"))
        .propagate_version(true)
        .args(full.get_arguments().cloned())
        .subcommands(subcommands)
}
