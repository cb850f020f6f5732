//! nmap's spelling of the output options, `-oX FILE`, is not one clap can parse: to clap it is
//! `-o` with the value `X`, then `FILE` as a target (which wrote text into a file named `X`).
//! Before clap sees the command line, this rewrites `-oN`, `-oX`, `-oG`, `-oJ` and `-oA`
//! after `scan` (`-oX` and `-oG` after `sweep`) into their long flags (`--output-xml`), and
//! refuses the ones that would otherwise be misread: another letter (`-oZ`, nmap's `-oS`),
//! or a format letter with the file name attached (`-oXscan.xml`). nmap's `-Pn` after `scan`
//! becomes `--no-ping`.

use std::ffi::OsString;

use netkit::ParseError;

/// The commands that take nmap's output options, each with the letters it takes.
const COMMANDS: [(&str, &str); 2] = [("scan", "NXGJA"), ("sweep", "XG")];

/// nmap's spellings clap cannot take as they are, per command, and the long flag each means.
const ALIASES: [(&str, &str, &str); 1] = [("scan", "-Pn", "--no-ping")];

/// `argv` with nmap's output options rewritten; an error naming the option clap would misread.
pub fn rewrite(argv: impl IntoIterator<Item = OsString>) -> Result<Vec<OsString>, ParseError> {
    let argv: Vec<OsString> = argv.into_iter().collect();
    let Some((at, (command, letters))) = subcommand(&argv) else {
        return Ok(argv);
    };
    let last = argv.len() - 1;
    let mut out = Vec::with_capacity(argv.len());
    let mut after_dashes = false;
    for (i, arg) in argv.into_iter().enumerate() {
        after_dashes |= i > at && arg == "--";
        if i <= at || after_dashes {
            out.push(arg);
            continue;
        }
        if let Some(&(_, _, long)) = ALIASES
            .iter()
            .find(|(c, short, _)| *c == command && arg == *short)
        {
            out.push(OsString::from(long));
            continue;
        }
        let option = arg.clone();
        let rewritten = rewrite_one(arg, letters)?;
        if i == last && rewritten != option {
            let why = "needs a file name (- for stdout)";
            return Err(ParseError::new(option.to_string_lossy(), why));
        }
        out.push(rewritten);
    }
    Ok(out)
}

/// Where the subcommand is, its name and the letters it takes, when it takes nmap's options:
/// the first argument that is neither a flag nor `--color`'s value.
fn subcommand(argv: &[OsString]) -> Option<(usize, (&'static str, &'static str))> {
    let mut skip_value = false;
    for (i, arg) in argv.iter().enumerate().skip(1) {
        let text = arg.to_str()?;
        if std::mem::take(&mut skip_value) {
            continue;
        }
        if text.starts_with('-') {
            skip_value = text == "--color";
            continue;
        }
        let found = COMMANDS.iter().find(|(c, _)| *c == text);
        return found.map(|&command| (i, command));
    }
    None
}

/// One argument: `-oX` becomes `--output-xml`; anything not `-o` followed by a letter stays.
fn rewrite_one(arg: OsString, letters: &str) -> Result<OsString, ParseError> {
    let Some(rest) = arg.to_str().and_then(|t| t.strip_prefix("-o")) else {
        return Ok(arg);
    };
    let mut chars = rest.chars();
    let Some(letter) = chars.next().filter(char::is_ascii_alphabetic) else {
        return Ok(arg);
    };
    let attached = !chars.as_str().is_empty();
    let long = match letter {
        'N' => "--output-normal",
        'X' => "--output-xml",
        'G' => "--output-grepable",
        'J' => "--output-json",
        'A' => "--output-all",
        // -oFILE (a file name starting with another letter) stays -o FILE, as before.
        _ if attached => return Ok(arg),
        _ => return Err(unknown(&format!("-o{letter}"), letters)),
    };
    if !letters.contains(letter) {
        return Err(unknown(&format!("-o{letter}"), letters));
    }
    if attached {
        let why = format!("put a space between -o{letter} and the file name");
        return Err(ParseError::new(format!("-o{rest}"), why));
    }
    Ok(OsString::from(long))
}

fn unknown(option: &str, letters: &str) -> ParseError {
    let known: Vec<String> = letters.chars().map(|l| format!("-o{l}")).collect();
    let why = format!(
        "unknown output format; this command writes {}",
        known.join(", ")
    );
    ParseError::new(option, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Result<Vec<String>, ParseError> {
        let argv = line.split(' ').map(OsString::from);
        rewrite(argv).map(|v| {
            v.into_iter()
                .map(|a| a.into_string().unwrap_or_default())
                .collect()
        })
    }

    #[test]
    fn nmap_spellings_become_long_flags_after_scan() {
        assert_eq!(
            args("netkit scan ::1 -oX a.xml -oG - -p 22").unwrap(),
            [
                "netkit",
                "scan",
                "::1",
                "--output-xml",
                "a.xml",
                "--output-grepable",
                "-",
                "-p",
                "22"
            ]
        );
        assert_eq!(
            args("netkit --json scan ::1 -oA base").unwrap()[4],
            "--output-all"
        );
        assert_eq!(args("netkit scan ::1 -Pn").unwrap()[3], "--no-ping");
        assert_eq!(args("netkit sweep ::1 -Pn").unwrap()[3], "-Pn");
    }

    #[test]
    fn other_commands_and_commands_after_dashes_are_left_alone() {
        assert_eq!(args("netkit wait 80 -- scan -oX f").unwrap()[5], "-oX");
        assert_eq!(args("netkit ping -oX").unwrap()[2], "-oX");
        assert_eq!(args("netkit scan ::1 -oout.txt").unwrap()[3], "-oout.txt");
        assert_eq!(args("netkit ping scan -oX").unwrap()[3], "-oX");
        assert_eq!(
            args("netkit --color never scan ::1 -oX f").unwrap()[5],
            "--output-xml"
        );
    }

    #[test]
    fn misreadable_options_are_refused_by_name() {
        let err = args("netkit scan ::1 -oZ f").unwrap_err();
        assert_eq!(err.input, "-oZ");
        assert!(err.why.contains("-oX"), "{}", err.why);
        assert_eq!(
            args("netkit scan ::1 -oXa.xml").unwrap_err().input,
            "-oXa.xml"
        );
        assert_eq!(args("netkit sweep ::1 -oN f").unwrap_err().input, "-oN");
        assert_eq!(args("netkit scan ::1 -oS f").unwrap_err().input, "-oS");
        let last = args("netkit scan ::1 -oX").unwrap_err();
        assert_eq!(
            (last.input.as_str(), last.why.as_str()),
            ("-oX", "needs a file name (- for stdout)")
        );
    }
}
