//! The command line of SPEC.md: global flags and one subcommand each with its own Args.

use std::io::IsTerminal;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::cmd;

const ABOUT: &str = "One binary for forwarding ports, pinging and sweeping networks, scanning \
ports, waiting for services, reporting interfaces and talking over Unix sockets — IPv6 first \
class everywhere, JSON Lines for scripts.";

const EXIT_CODES: &str = "\
Exit status:
  0  success: every target answered, the service is ready, the interface is up
  1  a negative answer: a host silent, the wait timed out, the interface is down
  2  bad usage or bad input (message on stderr as 'netkit: <input>: <why>')
  3  the environment refused: permission, address in use, resource limits";

/// netkit: the network toolkit.
#[derive(Debug, Parser)]
#[command(name = "netkit", version, about = ABOUT, after_help = EXIT_CODES)]
// An option given twice takes its last value, as getopt does for iputils, fping and curl
// (`ping -6 -6` from a `ping6`-style wrapper, `-c 3 ... -c 1` from a script appending its
// own); options that collect (`--allow`, `-v`) keep every occurrence.
#[command(propagate_version = true, arg_required_else_help = true)]
#[command(args_override_self = true)]
pub struct Cli {
    /// Flags every command accepts, before or after the subcommand.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags shared by every command.
#[derive(Debug, Args)]
pub struct Global {
    /// Print results as JSON Lines on stdout (one object per line, each with a "type").
    #[arg(long, global = true)]
    pub json: bool,
    /// Print less: only results, no progress or per-probe lines.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log more on stderr (repeat for more detail: -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// When to use colours.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto, value_name = "WHEN")]
    pub color: Color,
}

/// `--color auto|always|never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    /// Colour when the stream is a terminal and NO_COLOR is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

impl Color {
    fn enabled(self, is_terminal: bool) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => is_terminal && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    /// Whether stdout output is coloured.
    pub fn enabled_for_stdout(self) -> bool {
        self.enabled(std::io::stdout().is_terminal())
    }

    /// Whether stderr output (logs, progress) is coloured.
    pub fn enabled_for_stderr(self) -> bool {
        self.enabled(std::io::stderr().is_terminal())
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Relay a local port (TCP or Unix) to a target, optionally rewriting the HTTP Host header.
    Forward(cmd::forward::Args),
    /// Send ICMP echo requests to one or many hosts and report round-trip statistics.
    Ping(cmd::ping::Args),
    /// Find the live and the inactive hosts of address ranges, once or every N seconds.
    Sweep(cmd::sweep::Args),
    /// Scan TCP ports of hosts with non-blocking connects, or raw SYNs (--syn).
    Scan(cmd::scan::Args),
    /// Wait until services are ready (a port, a URL, a DNS name, a file), then run a command.
    Wait(cmd::wait::Args),
    /// List network interfaces, show one, its addresses or whether it is up, or watch events.
    Iface(cmd::iface::Args),
    /// Run an echo server on TCP or a Unix socket.
    Echo(cmd::echo::Args),
    /// Send a message (or stdin) to an endpoint and print the reply.
    Send(cmd::send::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(cmd::completions::Args),
    /// Write the man pages into a directory (for packagers).
    #[command(hide = true)]
    Manpages(cmd::manpages::Args),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
