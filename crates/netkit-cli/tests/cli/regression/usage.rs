//! Command-line errors that named the wrong input, or none, and a port form nmap takes that
//! netkit refused.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;

use crate::harness::{netkit, run, run_within, text, PATIENCE};

/// A negative value (`--timeout -1s`, `--max-conns -1`) was called an unknown option `-1`:
/// clap reads the leading `-` as an option's, and the message named neither the option nor the
/// value given.
#[test]
fn a_negative_value_was_called_an_unknown_option() {
    for (args, named) in [
        (
            &["wait", "--timeout", "-1s", "127.0.0.1:9"][..],
            "--timeout -1s",
        ),
        (
            &["forward", "0", "127.0.0.1:9", "--max-conns", "-1"][..],
            "--max-conns -1",
        ),
        (
            &["scan", "127.0.0.1", "-p", "9", "--timeout", "-0.5"][..],
            "--timeout -0.5",
        ),
    ] {
        let (code, _, stderr) = text(&run(args));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert_eq!(
            stderr,
            format!("netkit: {named}: negative values are not accepted\n"),
            "{args:?}"
        );
    }
    // After a flag that takes no value, or as a positional, it stays an unknown option.
    let (code, _, stderr) = text(&run(&["scan", "127.0.0.1", "-5"]));
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr, "netkit: -5: unknown option; see --help\n");
}

/// An argument that is not UTF-8 was refused with clap's "invalid UTF-8 was detected in one or
/// more arguments", without saying which; an empty subcommand name was not shown at all.
#[test]
fn an_argument_not_utf8_or_empty_was_not_named() {
    let out = netkit()
        .args([OsStr::new("scan"), OsStr::from_bytes(b"host\xff.test")])
        .output()
        .expect("run netkit");
    let (code, _, stderr) = text(&out);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with("netkit: host\\xff.test: not UTF-8"),
        "{stderr}"
    );
    let (code, _, stderr) = text(&run(&[""]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with("netkit: '': unknown subcommand"),
        "{stderr}"
    );
}

/// `scan -p -3` (ports 1 to 3, as `nmap -p -3` reads it) was refused as an unknown option `-3`;
/// nmap in the same run is the oracle for the ports it means.
#[test]
fn ports_up_to_n_after_a_space_were_refused() {
    let (code, stdout, stderr) = text(&run(&["scan", "127.0.0.1", "-p", "-3", "--json"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("\"scanned\":3,"), "{stdout}");
    let Ok(nmap) = Command::new("nmap")
        .args(["-n", "-sT", "-p", "-3", "127.0.0.1", "-oG", "-"])
        .output()
    else {
        return crate::harness::skip("nmap -p -3", "nmap is not installed");
    };
    let grepable = String::from_utf8_lossy(&nmap.stdout);
    let ports: Vec<&str> = grepable
        .lines()
        .filter_map(|line| line.split_once("Ports: "))
        .flat_map(|(_, ports)| ports.split(", "))
        .map(|port| port.split('/').next().unwrap_or_default())
        .collect();
    assert_eq!(ports, ["1", "2", "3"], "{grepable}");
}

/// A `--top-source FILE` that cannot be read exited 3 (an environment refusal), where an
/// `@FILE` of targets or a `--config` file that cannot be read is bad input, exit 2.
#[test]
fn an_unreadable_top_source_file_exited_3() {
    let missing = "/nonexistent/nmap-services";
    let (code, _, stderr) = text(&run(&["scan", "127.0.0.1", "--top-source", missing]));
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        stderr,
        format!("netkit: {missing}: cannot read: no such file or directory\n")
    );
    let (code, _, stderr) = text(&run(&["scan", "@/nonexistent/targets"]));
    assert_eq!(code, 2, "{stderr}");
}

/// A `--config` value of the wrong type said serde's words alone (`invalid type: string
/// "many", expected usize`), naming neither the line nor the key.
#[test]
fn a_config_type_error_named_no_line_or_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("rules.toml");
    let rules = "[[rule]]\nlisten = \"0\"\ntarget = \"127.0.0.1:9\"\nmax_conns = \"many\"\n";
    std::fs::write(&file, rules).expect("write rules");
    let path = file.to_str().expect("path");
    let (code, _, stderr) = text(&run(&["forward", "--config", path]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "netkit: {path}: line 4 (max_conns = \"many\"): invalid type"
        )),
        "{stderr}"
    );
}

/// `exec:''` (a quoted empty program name) was taken for a program and refused only when
/// looked up, as `: is a directory` (the PATH directories joined with nothing).
#[test]
fn an_empty_quoted_exec_program_was_called_a_directory() {
    for endpoint in ["exec:''", "exec:\"\" -x"] {
        let (code, _, stderr) = text(&run(&["forward", "0", endpoint]));
        assert_eq!(code, 2, "{endpoint}: {stderr}");
        assert_eq!(
            stderr,
            format!("netkit: {endpoint}: empty exec command, expected exec:COMMAND [ARGS]\n")
        );
    }
}

/// A megabyte line of a target file (or a 100 kB argument) came back whole in its error
/// message, a megabyte on the terminal for one mistake: the input is now shown clipped, with
/// its length, and the reason after it.
#[test]
fn a_megabyte_input_was_echoed_whole_in_its_error() {
    let dir = std::env::temp_dir().join(format!("nk-clipped-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("targets");
    std::fs::write(&file, format!("{}\n", "x".repeat(1_000_000))).unwrap();
    let list = format!("@{}", file.display());
    let long = "y".repeat(100_000);
    for args in [
        vec!["scan", list.as_str()],
        vec!["ping", long.as_str()],
        vec!["iface", long.as_str()],
        vec!["forward", "0", "127.0.0.1:9", "--balance", long.as_str()],
    ] {
        let (code, _, stderr) = text(&run(&args));
        assert_eq!(code, 2, "{}: {}", args[0], &stderr[..stderr.len().min(200)]);
        assert!(stderr.len() < 1000, "{}: {} bytes", args[0], stderr.len());
        assert!(stderr.starts_with("netkit: xxx") || stderr.starts_with("netkit: yyy"));
        assert!(stderr.contains(" bytes): "), "{}: {stderr}", args[0]);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A zone on a global address (`2001:db8::1%lo`) was taken and printed as if used, the kernel
/// ignoring it (iputils and fping refuse it); a zone by an index no interface has (`%99999`)
/// was taken by every command and printed as an empty zone, `fe80::1%`.
#[test]
fn a_zone_on_a_global_address_or_by_a_missing_index_was_taken() {
    for (args, why) in [
        (
            &["ping", "-c", "1", "2001:db8::1%lo"][..],
            "is for link-local addresses only",
        ),
        (
            &["sweep", "2001:db8::1%1"],
            "is for link-local addresses only",
        ),
        (
            &["scan", "-p", "80", "2001:db8::1%lo"],
            "is for link-local addresses only",
        ),
        (
            &["ping", "-c", "1", "fe80::1%99999"],
            "no interface 99999 for the zone",
        ),
        (
            &["wait", "[fe80::1%99999]:80"],
            "no interface 99999 for the zone",
        ),
        (
            &["forward", "0", "[fe80::1%99999]:80"],
            "no interface 99999 for the zone",
        ),
    ] {
        let (code, _, stderr) = text(&run(args));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("netkit: ") && stderr.contains(why),
            "{args:?}: {stderr}"
        );
    }
}

/// `ping -I fe80::1` (a link-local source without its interface) failed to bind with
/// `invalid argument` and exit 3, the environment's fault; iputils refuses it as bad usage
/// (exit 2), and it is bad input: named, exit 2.
#[test]
fn a_link_local_source_without_its_interface_was_the_environments_fault() {
    let (code, _, stderr) = text(&run(&["ping", "-c", "1", "-I", "fe80::1", "::1"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with("netkit: fe80::1: a link-local source address needs its interface"),
        "{stderr}"
    );
}

/// `netkit ARGS` under an open-files limit of `nofile` (soft and hard), as `prlimit` sets it.
fn under_nofile(nofile: u64, args: &[&str]) -> Command {
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--nofile={nofile}:{nofile}"))
        .arg(env!("CARGO_BIN_EXE_netkit"))
        .args(args);
    cmd
}

/// Asserts that `args` under an open-files limit of `nofile` ended at once with status 3 and
/// the message that names the limit and says how to raise it.
fn refused_for_the_limit(nofile: u64, args: &[&str]) {
    let (code, _, stderr) = run_within(under_nofile(nofile, args), PATIENCE);
    assert_eq!(code, 3, "{nofile} {args:?}: {stderr}");
    assert!(
        stderr.starts_with(&format!("netkit: open files limit {nofile}: ")),
        "{nofile} {args:?}: {stderr}"
    );
    assert!(stderr.contains("ulimit -n"), "{nofile} {args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{nofile} {args:?}: {stderr}");
}

/// Under `prlimit --nofile=6` (or 7) every command that starts a runtime panicked in tokio's
/// signal driver ("failed to create UnixStream: ... Too many open files", exit 101): it
/// creates its socketpair lazily and `expect`s it. Now a limit below what netkit needs is
/// refused before any runtime starts: exit 3, naming the limit.
#[test]
fn a_tiny_open_files_limit_panicked_in_the_signal_driver() {
    let port = crate::harness::Reserved::v4();
    let (endpoint, number) = (port.endpoint(), port.addr.port().to_string());
    for nofile in [6, 7] {
        for args in [
            &["ping", "-c1", "127.0.0.1"][..],
            &["echo", "0"][..],
            &["scan", "127.0.0.1", "-p", &number][..],
            &["forward", "0", &endpoint][..],
            &["wait", &endpoint, "--timeout", "1s"][..],
        ] {
            refused_for_the_limit(nofile, args);
        }
    }
}

/// Under `prlimit --nofile=5` (or 8) `ping`, `echo`, `forward`, `send` printed `netkit: Too
/// many open files (os error 24)`: neither what failed nor what to do about it.
#[test]
fn out_of_descriptors_at_start_named_nothing() {
    let port = crate::harness::Reserved::v4();
    let endpoint = port.endpoint();
    for nofile in [5, 8] {
        for args in [
            &["ping", "-c1", "127.0.0.1"][..],
            &["echo", "0"][..],
            &["forward", "0", &endpoint][..],
            &["send", &endpoint, "hi"][..],
            &["sweep", "127.0.0.1"][..],
        ] {
            refused_for_the_limit(nofile, args);
        }
    }
}

/// Under `prlimit --nofile=9` `scan 127.0.0.1 -p PORT` retried its one probe for 30 s (307
/// probes, each refused for want of a descriptor) before exiting 3; and `wait` ran out the
/// same way. Now the limit is refused at once. At the floor, both still work.
#[test]
fn scan_under_a_low_open_files_limit_spun_for_thirty_seconds() {
    let port = crate::harness::Reserved::v4();
    let listener = port.listen();
    let text_port = listener.local_addr().expect("addr").port().to_string();
    let endpoint = format!("127.0.0.1:{text_port}");
    refused_for_the_limit(9, &["scan", "127.0.0.1", "-p", &text_port]);
    refused_for_the_limit(9, &["wait", &endpoint, "--timeout", "5"]);
    for args in [
        &["scan", "127.0.0.1", "-p", &text_port][..],
        &["wait", &endpoint, "--timeout", "5"][..],
    ] {
        let (code, _, stderr) = run_within(under_nofile(16, args), PATIENCE);
        assert_eq!(code, 0, "{args:?} at the floor: {stderr}");
    }
}

/// clap's refusals were passed on in clap's words, not `netkit: <input>: <why>`: `netkit
/// completions nosh` said `invalid value 'nosh' for '<SHELL>'`, `--color bogus` `invalid value
/// 'bogus' for '--color <WHEN>'`, a conflict `the argument '--quiet' cannot be used with
/// '--verbose...'`, a missing argument `missing <HOST>...`. Every kind of clap error now names
/// the input first, on one line, exit 2.
#[test]
fn clap_refusals_did_not_name_the_input_first() {
    for (args, expected) in [
        (
            &["completions", "nosh"][..],
            "nosh: not a shell (bash, elvish, fish, powershell, zsh)",
        ),
        (
            &["--color", "bogus", "scan", "127.0.0.1"],
            "bogus: --color takes auto, always or never",
        ),
        (
            &["scan", "-q", "-v", "127.0.0.1"],
            "--quiet: cannot be used with --verbose",
        ),
        (&["ping", "-4", "-6", "::1"], "-4: cannot be used with -6"),
        (&["ping"], "ping: missing HOST; see 'netkit ping --help'"),
        (
            &["iface", "addr"],
            "iface addr: missing NAME; see 'netkit iface addr --help'",
        ),
        (&["ping", "-c"], "--count: needs a value; see --help"),
        (
            &["scan", "127.0.0.1", "--syn=yes"],
            "yes: unexpected value for --syn; see --help",
        ),
        (
            &["iface", "show", "lo", "extra"],
            "extra: unexpected argument; see --help",
        ),
        (&["bogus"], "bogus: unknown subcommand; see 'netkit --help'"),
        (&["ping", "--bogus"], "--bogus: unknown option; see --help"),
    ] {
        let (code, stdout, stderr) = text(&run(args));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert_eq!(stderr, format!("netkit: {expected}\n"), "{args:?}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
    }
}

/// `scan --top 0` said `top must be a whole number from 1 to 65535`, where the ranking used
/// has 1000 ports (`--top 1001` is refused): the range said is now the ranking's own.
#[test]
fn scan_top_0_said_a_range_it_does_not_take() {
    for top in ["0", "1001", "70000"] {
        let (code, _, stderr) = text(&run(&["scan", "127.0.0.1", "--top", top]));
        assert_eq!(code, 2, "{top}: {stderr}");
        assert_eq!(
            stderr,
            format!(
                "netkit: --top {top}: the top-ports list ranked from netkit's data (see \
                 docs/top-ports.md) has 1 to 1000 entries\n"
            )
        );
    }
}

/// An option given twice was refused outside `ping` as `--rounds: cannot be used with --rounds`
/// (exit 2), where getopt-reading peers take its last value (`fping -c 1 -c 2` sends two) and
/// a script appending its own `--timeout` to a user's is common. The last value now wins in
/// every command; options that collect (`forward --allow`, `-v`) keep every occurrence.
#[test]
fn an_option_given_twice_was_refused_outside_ping() {
    let fping = Command::new("fping")
        .args(["-c", "1", "-c", "2", "-p", "100", "127.0.0.1"])
        .output();
    if let Ok(fping) = &fping {
        let (_, _, err) = text(fping);
        assert!(err.contains("xmt/rcv/%loss = 2/"), "fping: {err}");
    }
    let args = [
        "--json",
        "sweep",
        "--every",
        "1s",
        "--every",
        "100ms",
        "--rounds",
        "1",
        "--rounds",
        "2",
        "--timeout",
        "9s",
        "--timeout",
        "500ms",
        "127.0.0.1",
    ];
    let (code, out, err) = text(&run(&args));
    assert_eq!(code, 0, "{err}");
    let rounds = out
        .lines()
        .filter(|l| l.contains(r#""type":"summary""#))
        .count();
    assert_eq!(rounds, 2, "{out}");
    let open = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = open.local_addr().expect("addr").port().to_string();
    let (code, out, err) = text(&run(&[
        "scan",
        "-p",
        "1",
        "-p",
        &port,
        "--json",
        "127.0.0.1",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(r#""scanned":1,"open":1"#), "{out}");
}
