//! `netkit ping` beside iputils' `ping` in the impaired-link lab (tests/cli/lab.rs), on the
//! scenarios of issue 13: a 1.5 s round trip, ICMP errors that come back late, duplicated
//! replies, lossy links under `-c` with `-w`. Both run at the same time in the scanner
//! namespace, so both see the same link.

use crate::harness::privileged;
use crate::lab::{ms, Direction, IcmpLimits, Impairment, Lab, LabExt, Link, Unroutable};
use crate::ping_net::{counts, line_starting, side_by_side};

type Run = (i32, String, String);

/// netkit's and iputils' `ping ARGS` side by side in the lab's scanner namespace.
fn both(lab: &Lab, args: &[&str]) -> (Run, Run) {
    let mut netkit = lab.netkit();
    netkit.arg("ping").args(args);
    let mut iputils = lab.scanner_cmd("ping");
    iputils.args(args);
    side_by_side(netkit, iputils)
}

#[test]
fn lab_a_slow_link_loses_nothing_and_shows_the_pipe() {
    if !privileged("ping lab slow link") {
        return;
    }
    let lab = Lab::builder("pingslow")
        .delay(ms(750))
        .hosts("198.18.1.0/30")
        .build()
        .expect("lab");
    let ((code, out, err), (i_code, i_out, i_err)) = both(&lab, &["-c", "3", "198.18.1.1"]);
    assert_eq!(i_code, 0, "iputils: {i_out}{i_err}");
    assert_eq!(
        counts(&i_out),
        "3 packets transmitted, 3 received, 0% packet loss"
    );
    assert_eq!((code, counts(&out)), (i_code, counts(&i_out)), "{out}{err}");
    for output in [&out, &i_out] {
        assert!(
            line_starting(output, "rtt ").ends_with(" ms, pipe 2"),
            "{output}"
        );
    }
}

#[test]
fn lab_late_errors_count_the_same() {
    if !privileged("ping lab late errors") {
        return;
    }
    // The router answers host unreachable; its answers reach the scanner 1.5 s later. The
    // router's kernel sends at most 5 such errors at once to one peer (its route error
    // burst, a global sysctl left alone): two requests from each ping fit.
    let lab = Lab::builder("pingunr")
        .unroutable("198.18.2.0/24", Unroutable::Host)
        .impair(
            Link::Near,
            Direction::ToScanner,
            Impairment::none().delay(ms(1500)),
        )
        .icmp_limits(IcmpLimits::Off)
        .build()
        .expect("lab");
    let args = ["-c", "2", "-i", "0.2", "198.18.2.1"];
    let ((code, out, err), (i_code, i_out, i_err)) = both(&lab, &args);
    assert_eq!(i_code, 1, "iputils: {i_out}{i_err}");
    assert!(
        counts(&i_out).contains(" 0 received, +2 errors, "),
        "{i_out}"
    );
    assert_eq!((code, counts(&out)), (i_code, counts(&i_out)), "{out}{err}");
    let unreachable = |o: &str| o.matches(" Destination Host Unreachable").count();
    assert_eq!(unreachable(&out), unreachable(&i_out), "{out}");
}

#[test]
fn lab_duplicated_replies_count_the_same() {
    if !privileged("ping lab duplicates") {
        return;
    }
    let lab = Lab::builder("pingdupl")
        .impair(Link::Far, Direction::ToScanner, Impairment::none().dup(1.0))
        .hosts("198.18.1.0/30")
        .seed(13)
        .build()
        .expect("lab");
    let args = ["-c", "4", "-i", "0.2", "198.18.1.1"];
    let ((code, out, err), (i_code, i_out, i_err)) = both(&lab, &args);
    assert_eq!(i_code, 0, "iputils: {i_out}{i_err}");
    assert!(counts(&i_out).contains(" duplicates, "), "{i_out}");
    assert_eq!((code, counts(&out)), (i_code, counts(&i_out)), "{out}{err}");
    let dups = |o: &str| o.matches(" (DUP!)").count();
    assert_eq!(dups(&out), dups(&i_out), "{out}\n{i_out}");
}

#[test]
fn lab_count_with_deadline_on_a_lossy_link() {
    if !privileged("ping lab -c -w") {
        return;
    }
    let lab = Lab::builder("pinglossy")
        .impair(Link::Far, Direction::ToFar, Impairment::none().loss(0.5))
        .hosts("198.18.1.0/30")
        .seed(7)
        .build()
        .expect("lab");
    // Long enough: both go on past -c requests until 3 replies, and succeed.
    let args = ["-c", "3", "-w", "20", "-i", "0.1", "198.18.1.1"];
    let ((code, out, err), (i_code, i_out, i_err)) = both(&lab, &args);
    assert_eq!(i_code, 0, "iputils: {i_out}{i_err}");
    assert_eq!(code, 0, "{out}{err}");
    for output in [&out, &i_out] {
        assert!(
            counts(output).contains(" transmitted, 3 received, "),
            "{output}"
        );
    }
    // Too short for 20 replies: both exit 1 although replies came.
    let args = ["-c", "20", "-w", "1", "-i", "0.1", "198.18.1.1"];
    let ((code, out, err), (i_code, i_out, i_err)) = both(&lab, &args);
    assert_eq!((code, i_code), (1, 1), "{out}{err}\n{i_out}{i_err}");
    assert!(!counts(&out).contains(" 0 received"), "{out}");
}
