//! What clap's errors leave out, read back from the command line: the option a negative value
//! was given to, the subcommand an argument is missing from, and the argument that is not
//! UTF-8.

use std::ffi::OsString;

use clap::CommandFactory;

/// `OPTION VALUE` when `token`, which clap took for an unknown option, is a negative number or
/// duration given to an option that takes a value (`--timeout -1s`, `--max-conns -1`): clap
/// reads a leading `-` as the start of an option, so the user would be told of an unknown
/// option `-1` instead of the value they gave. clap names `-1` of `-1s`: the value is the first
/// argument that starts with `token`.
pub fn negative_value(token: &str, argv: &[OsString]) -> Option<String> {
    let negative = token
        .strip_prefix('-')
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit() || c == '.'));
    if !negative {
        return None;
    }
    let at = argv
        .iter()
        .position(|arg| arg.to_str().is_some_and(|arg| arg.starts_with(token)))?;
    let value = argv[at].to_str()?;
    let option = argv.get(at.checked_sub(1)?)?.to_str()?;
    let mut command = crate::cli::Cli::command();
    command.build();
    let mut current = &command;
    for arg in argv.iter().take(at).skip(1) {
        if let Some(sub) = arg.to_str().and_then(|name| current.find_subcommand(name)) {
            current = sub;
        }
    }
    let takes_value = current.get_arguments().any(|arg| {
        let long = arg
            .get_long()
            .is_some_and(|long| option == format!("--{long}"));
        let short = arg
            .get_short()
            .is_some_and(|short| option == format!("-{short}"));
        (long || short) && arg.get_action().takes_values()
    });
    takes_value.then(|| format!("{option} {value}"))
}

/// The subcommands named on the command line, after `netkit`: `netkit ping`, `netkit iface
/// show` (just `netkit` before any).
pub fn subcommand_path(argv: &[OsString]) -> String {
    let mut command = crate::cli::Cli::command();
    command.build();
    let mut path = vec!["netkit".to_string()];
    let mut current = &command;
    for arg in argv.iter().skip(1) {
        if let Some(sub) = arg.to_str().and_then(|name| current.find_subcommand(name)) {
            path.push(sub.get_name().to_string());
            current = sub;
        }
    }
    path.join(" ")
}

/// The first argument that is not UTF-8, its other bytes as they are and each byte that is
/// not UTF-8 as `\xNN`.
pub fn first_non_utf8(argv: &[OsString]) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let arg = argv.iter().find(|arg| arg.to_str().is_none())?;
    Some(netkit::text::escape_non_utf8(arg.as_bytes()))
}
