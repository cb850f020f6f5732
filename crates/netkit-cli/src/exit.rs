//! Exit statuses (SPEC.md "Exit status") and the one place errors are printed.

use netkit::text::{clipped, one_line};
use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};

use crate::argv;
use netkit::ErrorClass;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every target answered, the service is ready, the interface is up.
    Success,
    /// A negative answer: a host silent, a wait timed out, an interface down.
    Negative,
    /// Bad usage or bad input.
    Usage,
    /// The environment refused: permission, address in use, resource limits.
    Environment,
    /// A child command's own status (`wait ... -- COMMAND`).
    Child(u8),
    /// Stopped by SIGINT before the work was done (128 + 2, as shells report it).
    Interrupted,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(match exit {
            Exit::Success => 0,
            Exit::Negative => 1,
            Exit::Usage => 2,
            Exit::Environment => 3,
            Exit::Child(code) => code,
            Exit::Interrupted => 130,
        })
    }
}

/// An error that ends the process with a given status, e.g. 127 when `wait -- COMMAND` names
/// a program that does not exist (as shells do).
#[derive(Debug)]
pub struct WithStatus {
    /// The exit status.
    pub status: u8,
    /// What failed and why.
    pub message: String,
}

impl std::fmt::Display for WithStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for WithStatus {}

/// Prints `netkit: <error chain>` once on stderr and picks the exit status.
pub fn report(err: &anyhow::Error) -> ExitCode {
    if is_broken_pipe(err) {
        return Exit::Success.into();
    }
    let _ = writeln!(std::io::stderr(), "netkit: {}", one_line(&message(err)));
    classify(err).into()
}

/// The error chain joined by ": ", ending at the library's error: its text already says why
/// (an I/O source would only repeat it as "Connection refused (os error 111)", a typed input
/// error's kind would repeat its message).
fn message(err: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in err.chain() {
        parts.push(cause.to_string());
        if netkit::error::class_of(cause).is_some() {
            break;
        }
    }
    parts.join(": ")
}

/// A closed stdout (`netkit ... | head`) is not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn classify(err: &anyhow::Error) -> Exit {
    for cause in err.chain() {
        if let Some(with) = cause.downcast_ref::<WithStatus>() {
            return Exit::Child(with.status);
        }
        match netkit::error::class_of(cause) {
            Some(ErrorClass::Input) => return Exit::Usage,
            Some(ErrorClass::Environment) => return Exit::Environment,
            None => {}
        }
    }
    Exit::Environment
}

/// Turns a clap error into SPEC.md's form: help and version on stdout with status 0, anything
/// else as `netkit: <input>: <why>` with status 2.
pub fn clap_error(err: clap::Error, argv: &[OsString]) -> ExitCode {
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = err.print();
        let code = if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            2
        } else {
            0
        };
        return ExitCode::from(code);
    }
    let _ = writeln!(
        std::io::stderr(),
        "netkit: {}",
        one_line(&describe_clap(&err, argv))
    );
    Exit::Usage.into()
}

fn describe_clap(err: &clap::Error, argv: &[OsString]) -> String {
    if let Some(source) = std::error::Error::source(err) {
        if netkit::error::class_of(source).is_some() {
            return source.to_string();
        }
        if let Some(value) = context_str(err, ContextKind::InvalidValue) {
            return format!("{}: {source}", clipped(&value));
        }
    }
    let subject = [
        ContextKind::InvalidSubcommand,
        ContextKind::InvalidArg,
        ContextKind::InvalidValue,
    ]
    .into_iter()
    .find_map(|kind| context_str(err, kind))
    .map(|subject| shown(&subject));
    let why = match err.kind() {
        ErrorKind::InvalidSubcommand => "unknown subcommand; see 'netkit --help'".to_string(),
        ErrorKind::UnknownArgument => return unknown_argument(subject, argv),
        ErrorKind::InvalidUtf8 => match argv::first_non_utf8(argv) {
            Some(arg) => {
                let arg = clipped(&arg);
                return format!("{arg}: not UTF-8 (arguments are taken as UTF-8 text)");
            }
            None => first_line(err),
        },
        // From the parts, not clap's first line: a value with a newline would cut it.
        ErrorKind::InvalidValue => return invalid_value(err).unwrap_or_else(|| first_line(err)),
        ErrorKind::TooManyValues => return too_many_values(err).unwrap_or_else(|| first_line(err)),
        ErrorKind::ArgumentConflict => return conflict(err).unwrap_or_else(|| first_line(err)),
        ErrorKind::MissingRequiredArgument => {
            let command = argv::subcommand_path(argv);
            let missing = context_str(err, ContextKind::InvalidArg).unwrap_or_default();
            let name = command.strip_prefix("netkit ").unwrap_or("netkit");
            return format!(
                "{name}: missing {}; see '{command} --help'",
                arg_name(&missing)
            );
        }
        _ => first_line(err),
    };
    match subject {
        Some(subject) if !why.contains(&subject) => format!("{subject}: {why}"),
        _ => why,
    }
}

/// An input as shown at the start of a message: clipped, and `''` when empty.
fn shown(input: &str) -> String {
    match input.is_empty() {
        true => "''".to_string(),
        false => clipped(input).into_owned(),
    }
}

/// An argument as clap names it (`--color <WHEN>`, `<SHELL>`, `[LISTEN]`, `--verbose...`,
/// or a list of them) as the user would write it: `--color`, `SHELL`, `LISTEN`, `--verbose`.
fn arg_name(arg: &str) -> String {
    arg.split(", ")
        .map(|one| {
            let one = one.trim_end_matches("...");
            let one = one.split(' ').next().unwrap_or(one);
            one.trim_matches(|c| matches!(c, '<' | '>' | '[' | ']'))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// An option clap does not know, or an argument more than the command takes.
fn unknown_argument(subject: Option<String>, argv: &[OsString]) -> String {
    let subject = subject.unwrap_or_else(|| "''".to_string());
    if let Some(given) = argv::negative_value(&subject, argv) {
        return format!("{given}: negative values are not accepted");
    }
    match subject.starts_with('-') {
        true => format!("{subject}: unknown option; see --help"),
        false => format!("{subject}: unexpected argument; see --help"),
    }
}

/// A value outside an option's choices (`--color bogus`, `completions nosh`), or no value.
fn invalid_value(err: &clap::Error) -> Option<String> {
    let value = context_str(err, ContextKind::InvalidValue)?;
    let arg = arg_name(&context_str(err, ContextKind::InvalidArg)?);
    if value.is_empty() {
        return Some(format!("{arg}: needs a value; see --help"));
    }
    let value = clipped(&value);
    let Some(ContextValue::Strings(valid)) = err.get(ContextKind::ValidValue) else {
        return Some(format!("{value}: not a valid value for {arg}"));
    };
    Some(match arg.starts_with('-') {
        true => format!("{value}: {arg} takes {}", one_of(valid)),
        false => format!(
            "{value}: not a {} ({})",
            arg.to_lowercase(),
            valid.join(", ")
        ),
    })
}

/// `a, b or c`.
fn one_of(choices: &[String]) -> String {
    match choices.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// A value given to a flag that takes none (`--syn=yes`).
fn too_many_values(err: &clap::Error) -> Option<String> {
    let value = context_str(err, ContextKind::InvalidValue)?;
    let arg = arg_name(&context_str(err, ContextKind::InvalidArg)?);
    Some(format!(
        "{}: unexpected value for {arg}; see --help",
        shown(&value)
    ))
}

/// Two arguments that exclude each other (`-q -v`, `--config` with `LISTEN TARGET`).
fn conflict(err: &clap::Error) -> Option<String> {
    let arg = arg_name(&context_str(err, ContextKind::InvalidArg)?);
    let prior = arg_name(&context_str(err, ContextKind::PriorArg)?);
    Some(format!("{arg}: cannot be used with {prior}"))
}

fn context_str(err: &clap::Error, kind: ContextKind) -> Option<String> {
    match err.get(kind)? {
        ContextValue::String(text) => Some(text.clone()),
        ContextValue::Strings(texts) => Some(texts.join(", ")),
        _ => None,
    }
}

/// clap's own message, without its `error: ` prefix and styling, on one line: a first line
/// ending in ':' takes the indented lines after it (what an argument conflicts with).
fn first_line(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    let mut lines = rendered.lines();
    let mut line = lines
        .next()
        .unwrap_or("invalid usage")
        .trim_start_matches("error: ")
        .to_string();
    if line.ends_with(':') {
        let listed: Vec<&str> = lines
            .take_while(|l| l.starts_with(' '))
            .map(str::trim)
            .collect();
        line = format!("{line} {}", listed.join(", "));
    }
    line
}
