//! Shell completions and man pages, generated from the clap definitions: every shell's script
//! names every command, the bash, zsh and fish scripts load in the real shells and complete,
//! and the man pages render without groff warnings.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::process::Command;

use crate::harness::{run, text};

/// The commands a user sees; the hidden `manpages` is for packagers only.
const COMMANDS: [&str; 9] = [
    "forward",
    "ping",
    "sweep",
    "scan",
    "wait",
    "iface",
    "echo",
    "send",
    "completions",
];

fn script(shell: &str) -> String {
    let (code, stdout, stderr) = text(&run(&["completions", shell]));
    assert_eq!(code, 0, "completions {shell}: {stderr}");
    stdout
}

/// Runs `shell ARGS` with `NETKIT` set to the binary under test; returns its stdout.
fn shell(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .env("NETKIT", env!("CARGO_BIN_EXE_netkit"))
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (.ci/run installs it)"));
    let (code, stdout, stderr) = text(&output);
    assert_eq!(code, 0, "{program} {args:?}: {stderr}\n{stdout}");
    stdout
}

#[test]
fn every_shell_script_names_every_command_but_no_hidden_one() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = script(shell);
        for command in COMMANDS {
            assert!(script.contains(command), "{shell}: no {command}");
        }
        for flag in ["json", "top", "http-host", "config"] {
            let form = match shell {
                "fish" => format!("-l {flag}"),
                _ => format!("--{flag}"),
            };
            assert!(script.contains(&form), "{shell}: no {form}");
        }
        assert!(!script.contains("manpages"), "{shell} offers manpages");
    }
}

#[test]
fn unknown_shell_is_a_usage_error() {
    let (code, _, stderr) = text(&run(&["completions", "tcsh"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.starts_with("netkit: "), "{stderr}");
    assert!(stderr.contains("tcsh"), "{stderr}");
}

#[test]
fn bash_completion_loads_and_completes_commands_and_flags() {
    let out = shell(
        "bash",
        &[
            "--norc",
            "-c",
            r#"source <("$NETKIT" completions bash) && complete -p netkit
               COMP_WORDS=(netkit sc); COMP_CWORD=1; _netkit netkit sc netkit
               echo "commands: ${COMPREPLY[*]}"
               COMP_WORDS=(netkit scan --to); COMP_CWORD=2; _netkit netkit --to scan
               echo "flags: ${COMPREPLY[*]}""#,
        ],
    );
    assert!(out.contains("-F _netkit netkit"), "{out}");
    assert!(out.contains("commands: scan\n"), "{out}");
    assert!(out.contains("flags: --top\n"), "{out}");
}

#[test]
fn fish_completion_completes_commands_and_flags() {
    let out = shell(
        "fish",
        &[
            "--no-config",
            "-c",
            r#""$NETKIT" completions fish | source
               complete -C 'netkit sw'; complete -C 'netkit forward --http'"#,
        ],
    );
    assert!(out.contains("sweep\t"), "{out}");
    assert!(out.contains("--http-host\t"), "{out}");
    assert!(!out.contains("manpages"), "{out}");
}

#[test]
fn zsh_completion_registers_with_compinit() {
    let out = shell(
        "zsh",
        &[
            "-f",
            "-c",
            r#"autoload -U compinit && compinit -u -D
               source <("$NETKIT" completions zsh) && print -r -- "netkit: $_comps[netkit]""#,
        ],
    );
    assert_eq!(out.trim(), "netkit: _netkit");
}

#[test]
fn man_pages_cover_every_command_and_render_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = text(&run(&["manpages", dir.path().to_str().unwrap()]));
    assert_eq!(code, 0, "{stderr}");
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    for command in COMMANDS {
        let page = format!("netkit-{command}.1");
        assert!(pages.contains(&page), "no {page} in {pages:?}");
    }
    assert!(pages.contains(&"netkit.1".to_string()), "{pages:?}");
    assert!(!pages.iter().any(|p| p.contains("manpages")), "{pages:?}");
    for page in &pages {
        let path = dir.path().join(page);
        let out = Command::new("groff")
            .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
            .arg(&path)
            .output()
            .expect("groff (.ci/run installs groff-base)");
        let (code, _, warnings) = text(&out);
        assert!(code == 0 && warnings.is_empty(), "{page}: {warnings}");
    }
    let scan = dir.path().join("netkit-scan.1");
    let rendered = shell("man", &["-l", scan.to_str().unwrap()]);
    assert!(rendered.contains("netkit-scan"), "{rendered}");
    assert!(rendered.contains("--top"), "{rendered}");
}

#[test]
fn man_pages_into_an_unwritable_place_exit_3() {
    let (code, _, stderr) = text(&run(&["manpages", "/proc/self/netkit-man"]));
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.starts_with("netkit: write man pages to /proc/self/netkit-man: "),
        "{stderr}"
    );
}
