//! One module per subcommand, each with its `Args` and its `run`.

pub mod completions;
pub mod echo;
pub mod forward;
pub mod iface;
pub mod manpages;
pub mod order;
pub mod ping;
pub mod scan;
pub mod send;
pub mod sweep;
pub mod wait;

use crate::cli::Command;
use crate::exit::Exit;
use crate::output::Printer;

/// Runs the chosen subcommand.
pub fn run(command: Command, out: &Printer) -> anyhow::Result<Exit> {
    match command {
        Command::Forward(args) => forward::run(args, out),
        Command::Ping(args) => ping::run(args, out),
        Command::Sweep(args) => sweep::run(args, out),
        Command::Scan(args) => scan::run(args, out),
        Command::Wait(args) => wait::run(args, out),
        Command::Iface(args) => iface::run(args, out),
        Command::Echo(args) => echo::run(args, out),
        Command::Send(args) => send::run(args, out),
        Command::Completions(args) => completions::run(args),
        Command::Manpages(args) => manpages::run(args),
    }
}

/// The async runtime the engines run on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(unstarted)
}

/// A runtime that could not be built (out of descriptors, threads), named as such.
pub fn unstarted(err: std::io::Error) -> anyhow::Error {
    netkit::Error::io("start the async runtime", err).into()
}
