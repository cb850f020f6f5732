//! Self-tests of the lab's life cycle: the wrapper runs the netkit under test inside the
//! scanner namespace, teardown leaves no namespace behind, and two labs at once do not see
//! each other. (The `netkit-lab` binary's own life cycle is tested in its crate.)

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use super::peers::{connect_all, counts, ping};
use super::{ms, Lab, LabExt};
use crate::harness::{privileged, text};

fn netns_list() -> String {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn lab_teardown_leaves_no_namespace() {
    if !privileged("lab_teardown_leaves_no_namespace") {
        return;
    }
    let lab = Lab::builder("teardown")
        .delay(ms(5))
        .hosts("198.18.1.0/24")
        .open("198.18.1.5", &[22])
        .build()
        .expect("lab");
    // The wrapper runs the netkit under test inside the scanner namespace.
    let out = lab
        .netkit()
        .args(["wait", "198.18.1.5:22", "--timeout", "10s"])
        .output()
        .expect("netkit");
    let (code, stdout, stderr) = text(&out);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let names = [lab.scanner(), lab.router(), lab.far()].map(String::from);
    let before = netns_list();
    assert!(
        names.iter().all(|n| before.contains(n.as_str())),
        "{before}"
    );
    lab.down();
    let after = netns_list();
    assert!(names.iter().all(|n| !after.contains(n.as_str())), "{after}");
}

#[test]
fn two_labs_at_once_do_not_interfere() {
    if !privileged("two_labs_at_once_do_not_interfere") {
        return;
    }
    // Same addresses, opposite behaviour: lab A loses everything and has port 22 open.
    let build = |tag: &str, loss: f64| {
        let builder = Lab::builder(tag).loss(loss).hosts("198.18.1.0/24");
        let builder = if loss > 0.0 {
            builder.open("198.18.1.5", &[22])
        } else {
            builder
        };
        builder.build().expect("lab")
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| build("twoa", 1.0));
        let b = s.spawn(|| build("twob", 0.0));
        (a.join().expect("a"), b.join().expect("b"))
    });
    let out_a = ping(&a, &["-c", "3", "-i", "0.2", "-W", "1", "198.18.1.5"]);
    let out_b = ping(&b, &["-c", "3", "-i", "0.2", "-W", "1", "198.18.1.5"]);
    assert_eq!(
        counts(&text(&out_a).1),
        (3, 0),
        "lab A must lose every echo"
    );
    assert_eq!(
        counts(&text(&out_b).1),
        (3, 3),
        "lab B must answer every echo"
    );
    let to22 = vec![SocketAddr::new("198.18.1.5".parse().expect("addr"), 22)];
    let refused = connect_all(&b, to22, Duration::from_secs(2));
    assert_eq!(refused, [Err(std::io::ErrorKind::ConnectionRefused)]);
    assert_ne!(a.scanner(), b.scanner());
}
