//! `netkit`: parse the command line, run one command, print its results, exit with the status
//! of SPEC.md. Presentation lives here; the work lives in the `netkit` library.

// Doc comments here double as clap help text, where `[V6]:PORT` is literal, not a link.
#![allow(rustdoc::broken_intra_doc_links)]

mod argv;
mod cli;
mod cmd;
mod exit;
mod logging;
mod nmap_flags;
mod output;
mod parse;

use std::process::ExitCode;

use clap::Parser;

/// The static (musl) build allocates with mimalloc: with musl's allocator, one lock for all
/// threads, an idle forwarded connection held 3344 B after a bulk transfer, with mimalloc's
/// heaps per thread 2097 B (docs/benchmarks.md). The glibc builds keep glibc's allocator.
#[cfg(all(target_env = "musl", target_pointer_width = "64"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let argv = match nmap_flags::rewrite(std::env::args_os()) {
        Ok(argv) => argv,
        Err(err) => return exit::report(&err.into()),
    };
    let cli = match cli::Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(err) => return exit::clap_error(err, &argv),
    };
    logging::init(&cli.global);
    match run(cli) {
        Ok(code) => code.into(),
        Err(err) => exit::report(&err),
    }
}

fn run(cli: cli::Cli) -> anyhow::Result<exit::Exit> {
    // Before any runtime, signal handler or socket: a limit too low for them is refused here,
    // by name, instead of failing (or panicking, in tokio's signal driver) inside a command.
    if !matches!(
        cli.command,
        cli::Command::Completions(_) | cli::Command::Manpages(_)
    ) {
        netkit::sys::rlimit::ensure_min_nofile()?;
    }
    let out = output::Printer::new(&cli.global);
    cmd::run(cli.command, &out)
}
