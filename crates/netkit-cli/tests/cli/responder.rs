//! A user-space ICMPv4 echo responder for tests that need what loopback and a veth link cannot
//! give without `sch_netem` (absent on these machines): replies that take longer than ping's
//! timeout, and more than one reply per request. It runs on a thread that joins the far
//! namespace (whose kernel echo it turns off), answers every echo request after `delay`, `copies`
//! times (or with a wrong checksum, for the requests a test picks, or with its data cut or
//! padded to a length), and stops when dropped.
//! Nothing leaves the namespace it was started in.

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netkit::icmp::packet::Packet;
use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{self, sockopt, AddressFamily, MsgFlags, SockFlag, SockType, SockaddrIn};
use nix::sys::time::TimeVal;

use crate::harness::{sh, Netns};

/// Answers echo requests in a namespace until dropped.
pub struct Responder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// A reply waiting for its time.
struct Due {
    at: Instant,
    message: Vec<u8>,
    to: SockaddrIn,
}

impl Responder {
    /// Starts answering echo requests to `ns` after `delay`, `copies` times each.
    pub fn start(ns: &Netns, delay: Duration, copies: usize) -> Responder {
        let answering = Answering {
            delay,
            copies,
            ..Answering::default()
        };
        Responder::start_with(ns, answering)
    }

    /// Starts answering echo requests to `ns` at once, the reply to each request whose
    /// sequence number `bad` picks with a wrong ICMP checksum.
    pub fn bad_checksums(ns: &Netns, bad: fn(u16) -> bool) -> Responder {
        let answering = Answering {
            bad,
            ..Answering::default()
        };
        Responder::start_with(ns, answering)
    }

    /// Starts answering echo requests to `ns` at once with `data_len` bytes of data, the
    /// request's cut or padded with zeros.
    pub fn data_len(ns: &Netns, data_len: usize) -> Responder {
        let answering = Answering {
            data_len: Some(data_len),
            ..Answering::default()
        };
        Responder::start_with(ns, answering)
    }

    fn start_with(ns: &Netns, answering: Answering) -> Responder {
        let setting = "net.ipv4.icmp_echo_ignore_all=1";
        sh(&["ip", "netns", "exec", &ns.name, "sysctl", "-qw", setting]);
        let stop = Arc::new(AtomicBool::new(false));
        let (ready, is_ready) = mpsc::channel();
        let path = format!("/run/netns/{}", ns.name);
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let socket = open_in(&path);
            ready.send(()).expect("signal ready");
            serve(&socket, answering, &flag);
        });
        is_ready
            .recv_timeout(Duration::from_secs(10))
            .expect("responder started");
        Responder {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A raw ICMPv4 socket in the namespace at `path` (this thread joins it for good).
fn open_in(path: &str) -> OwnedFd {
    let ns = std::fs::File::open(path).expect("open namespace");
    setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).expect("setns");
    let socket = socket::socket(
        AddressFamily::Inet,
        SockType::Raw,
        SockFlag::empty(),
        socket::SockProtocol::Icmp,
    )
    .expect("raw socket");
    let tick = TimeVal::new(0, 10_000);
    socket::setsockopt(&socket, sockopt::ReceiveTimeout, &tick).expect("SO_RCVTIMEO");
    socket
}

/// How to answer.
#[derive(Clone, Copy)]
struct Answering {
    /// After this long.
    delay: Duration,
    /// So many times.
    copies: usize,
    /// With a wrong checksum for the sequence numbers it picks.
    bad: fn(u16) -> bool,
    /// With this many data bytes instead of the request's.
    data_len: Option<usize>,
}

impl Default for Answering {
    fn default() -> Self {
        Answering {
            delay: Duration::ZERO,
            copies: 1,
            bad: |_| false,
            data_len: None,
        }
    }
}

fn serve(socket: &OwnedFd, answering: Answering, stop: &AtomicBool) {
    let Answering { delay, copies, .. } = answering;
    let mut due: VecDeque<Due> = VecDeque::new();
    let mut buf = [0u8; 65536];
    while !stop.load(Ordering::SeqCst) {
        while due.front().is_some_and(|d| d.at <= Instant::now()) {
            let reply = due.pop_front().expect("front");
            let fd = socket.as_raw_fd();
            let _ = socket::sendto(fd, &reply.message, &reply.to, MsgFlags::empty());
        }
        let Ok((len, Some(from))) = socket::recvfrom::<SockaddrIn>(socket.as_raw_fd(), &mut buf)
        else {
            continue;
        };
        if let Some(message) = echo_reply(&buf[..len], answering) {
            let at = Instant::now() + delay;
            for _ in 0..copies {
                due.push_back(Due {
                    at,
                    message: message.clone(),
                    to: from,
                });
            }
        }
    }
}

/// The echo reply to `datagram` (IPv4 header + ICMP), when it is an echo request, made as
/// `answering` says.
fn echo_reply(datagram: &[u8], answering: Answering) -> Option<Vec<u8>> {
    let header = usize::from(datagram.first()? & 0x0f) * 4;
    let mut message = datagram.get(header..)?.to_vec();
    if message.len() < 8 || message[0] != 8 {
        return None;
    }
    message[0] = 0;
    if let Some(data_len) = answering.data_len {
        message.resize(8 + data_len, 0);
    }
    let mut packet = Packet::new_unchecked(&mut message[..]);
    packet.fill_checksum_v4();
    if (answering.bad)(packet.echo_seq_no()) {
        packet.set_checksum(packet.checksum() ^ 0x5a5a);
    }
    Some(message)
}
