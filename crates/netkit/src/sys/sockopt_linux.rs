//! Socket options: [`set`] and [`get`] over nix's typed options, with errors as
//! [`std::io::Error`], and the options nix does not wrap yet ([`IpMtuDiscover`],
//! [`Ipv6MtuDiscover`], [`Ipv6Mtu`]), declared with nix's own `sockopt_impl!` so that no
//! `setsockopt(2)` call is written by hand. socket2 covers the portable options (TTL, TOS,
//! buffer sizes, broadcast, linger); nix the Linux ones (`IP_RECVERR`, `SO_TIMESTAMPNS`, ...).
//! Also the one socket query that is an `ioctl(2)`: [`unacked`] (`TIOCOUTQ`),
//! [`tcp_info`], read by hand because nix's typed getter insists on the whole structure, and
//! [`lease_flow_label`], set by hand because the kernel writes the label it chose back into
//! the option's value.

use std::io;
use std::net::Ipv6Addr;
use std::os::fd::{AsFd, AsRawFd};

use nix::libc;
use nix::sys::socket::{GetSockOpt, SetSockOpt};
use nix::{getsockopt_impl, setsockopt_impl, sockopt_impl};

pub use nix::sys::socket::sockopt::*;

sockopt_impl!(
    /// Path MTU discovery of IPv4 (`IP_MTU_DISCOVER`: `IP_PMTUDISC_DO`, `_DONT`, `_WANT`).
    IpMtuDiscover,
    Both,
    libc::IPPROTO_IP,
    libc::IP_MTU_DISCOVER,
    libc::c_int
);

sockopt_impl!(
    /// Path MTU discovery of IPv6 (`IPV6_MTU_DISCOVER`: `IPV6_PMTUDISC_DO`, `_DONT`, `_WANT`).
    Ipv6MtuDiscover,
    Both,
    libc::IPPROTO_IPV6,
    libc::IPV6_MTU_DISCOVER,
    libc::c_int
);

sockopt_impl!(
    /// The path MTU the kernel knows for a connected IPv6 socket (`IPV6_MTU`).
    Ipv6Mtu,
    GetOnly,
    libc::IPPROTO_IPV6,
    libc::IPV6_MTU,
    libc::c_int
);

sockopt_impl!(
    /// Whether IPv6 datagrams carry the flow label of their destination's `sin6_flowinfo`
    /// (`IPV6_FLOWINFO_SEND`; the label must be leased first, [`lease_flow_label`]).
    Ipv6FlowinfoSend,
    Both,
    libc::IPPROTO_IPV6,
    libc::IPV6_FLOWINFO_SEND,
    libc::c_int
);

/// `struct in6_flowlabel_req` of `<linux/in6.h>`: a request to the flow label manager.
#[repr(C)]
struct FlowLabelRequest {
    dst: [u8; 16],
    /// The label, in network byte order.
    label: u32,
    action: u8,
    share: u8,
    flags: u16,
    expires: u16,
    linger: u16,
    pad: u32,
}

/// `IPV6_FL_A_GET`, `IPV6_FL_F_CREATE`, `IPV6_FL_S_EXCL` of `<linux/in6.h>`.
const FL_ACTION_GET: u8 = 0;
const FL_FLAG_CREATE: u16 = 1;
const FL_SHARE_EXCLUSIVE: u8 = 1;

/// Leases IPv6 flow label `label` (20 bits; 0 asks the kernel to choose one) for this socket
/// alone, as iputils' `ping -F` does (`IPV6_FLOWLABEL_MGR`, get and create, exclusive, for
/// destination `dst`: the kernel refuses the unspecified address); the label leased. The
/// kernel refuses a label another socket holds, or released less than 6 s ago (`EPERM`).
pub fn lease_flow_label<F: AsRawFd>(socket: &F, label: u32, dst: Ipv6Addr) -> io::Result<u32> {
    let mut request = FlowLabelRequest {
        dst: dst.octets(),
        label: (label & 0xf_ffff).to_be(),
        action: FL_ACTION_GET,
        share: FL_SHARE_EXCLUSIVE,
        flags: FL_FLAG_CREATE,
        expires: 0,
        linger: 0,
        pad: 0,
    };
    let len = libc::socklen_t::try_from(std::mem::size_of::<FlowLabelRequest>())
        .map_err(io::Error::other)?;
    // SAFETY: the kernel reads `len` bytes of `request`, a live local of that size laid out
    // as its `in6_flowlabel_req`, and writes at most the label back into it.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_FLOWLABEL_MGR,
            std::ptr::addr_of_mut!(request).cast(),
            len,
        )
    };
    match rc {
        0 => Ok(u32::from_be(request.label)),
        _ => Err(io::Error::last_os_error()),
    }
}

nix::ioctl_read_bad!(
    /// `ioctl(fd, TIOCOUTQ, &mut n)`: a socket's bytes not yet acknowledged (TCP) or read (Unix)
    /// by its peer.
    tiocoutq,
    libc::TIOCOUTQ,
    libc::c_int
);

/// The bytes a TCP socket sent (or queued) that its peer has not acknowledged yet
/// (`TIOCOUTQ`, also named `SIOCOUTQ`): 0 once everything written reached the peer's kernel.
/// On a Unix stream socket: the bytes written that its peer has not read yet.
pub fn unacked<F: AsRawFd>(socket: &F) -> io::Result<usize> {
    queue_len(socket, tiocoutq)
}

nix::ioctl_read_bad!(
    /// `ioctl(fd, FIONREAD, &mut n)`: the bytes waiting to be read on a socket.
    fionread,
    libc::FIONREAD,
    libc::c_int
);

/// The bytes waiting to be read on a socket (`FIONREAD`, also named `SIOCINQ`); on a Unix
/// stream socket, what its peer sent that this end has not read yet.
pub fn unread_here<F: AsRawFd>(socket: &F) -> io::Result<usize> {
    queue_len(socket, fionread)
}

/// A socket's queue length as one of the `int`-reading ioctls above tells it.
fn queue_len<F: AsRawFd>(
    socket: &F,
    ioctl: unsafe fn(libc::c_int, *mut libc::c_int) -> nix::Result<libc::c_int>,
) -> io::Result<usize> {
    let mut queued: libc::c_int = 0;
    // SAFETY: the ioctl (TIOCOUTQ or FIONREAD) writes one int into `queued`, a live local; an
    // fd that is not a socket only makes the call fail.
    unsafe { ioctl(socket.as_raw_fd(), &mut queued) }.map_err(io::Error::from)?;
    Ok(usize::try_from(queued).unwrap_or(0))
}

/// Whether a socket's peer will send nothing more: it half-closed or closed (`POLLRDHUP` or
/// `POLLHUP`).
pub fn peer_done_sending<F: AsRawFd>(socket: &F) -> bool {
    polled(socket, libc::POLLRDHUP) & (libc::POLLRDHUP | libc::POLLHUP) != 0
}

/// Whether an error is pending on a socket whose peer is gone (`POLLERR` and `POLLHUP`),
/// seen without taking the error (`SO_ERROR` would clear it).
pub fn error_pending_peer_gone<F: AsRawFd>(socket: &F) -> bool {
    let gone = libc::POLLERR | libc::POLLHUP;
    polled(socket, 0) & gone == gone
}

/// The `revents` of a `poll(2)` of the socket for `events` that does not wait (`POLLERR` and
/// `POLLHUP` come unasked); none when the call fails. By hand: nix's `PollFlags` know no
/// `POLLRDHUP` and read `revents` holding it as none at all.
fn polled<F: AsRawFd>(socket: &F, events: libc::c_short) -> libc::c_short {
    let mut fd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events,
        revents: 0,
    };
    // SAFETY: one pollfd, a live local, and a count of one; a timeout of 0 does not wait.
    match unsafe { libc::poll(&mut fd, 1, 0) } {
        1 => fd.revents,
        _ => 0,
    }
}

/// What a TCP connection has been through, as `TCP_INFO` tells: segments in and out,
/// retransmissions, round-trip estimates. A kernel older than the `libc` crate's structure
/// fills only its own part; the rest reads 0 (nix's typed getter would panic there).
pub fn tcp_info<F: AsRawFd>(socket: &F) -> io::Result<libc::tcp_info> {
    // SAFETY: tcp_info is plain integers, for which all-zero is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::tcp_info>())
        .map_err(io::Error::other)?;
    // SAFETY: the kernel writes at most `len` bytes into `info`, a live local of that size,
    // and stores how many it wrote in `len`.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            std::ptr::addr_of_mut!(info).cast(),
            &mut len,
        )
    };
    match rc {
        0 => Ok(info),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Sets `option` on `socket` to `value`.
pub fn set<F: AsFd, O: SetSockOpt>(socket: &F, option: O, value: &O::Val) -> io::Result<()> {
    nix::sys::socket::setsockopt(socket, option, value).map_err(io::Error::from)
}

/// The value of `option` on `socket`.
pub fn get<F: AsFd, O: GetSockOpt>(socket: &F, option: O) -> io::Result<O::Val> {
    nix::sys::socket::getsockopt(socket, option).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;

    use super::*;

    #[test]
    fn options_nix_lacks_read_back_what_was_set() {
        let v4 = UdpSocket::bind("127.0.0.1:0").unwrap();
        set(&v4, IpMtuDiscover, &libc::IP_PMTUDISC_DO).unwrap();
        assert_eq!(get(&v4, IpMtuDiscover).unwrap(), libc::IP_PMTUDISC_DO);
        let v6 = UdpSocket::bind("[::1]:0").unwrap();
        set(&v6, Ipv6MtuDiscover, &libc::IPV6_PMTUDISC_WANT).unwrap();
        assert_eq!(get(&v6, Ipv6MtuDiscover).unwrap(), libc::IPV6_PMTUDISC_WANT);
        v6.connect("[::1]:9").unwrap();
        assert!(get(&v6, Ipv6Mtu).unwrap() >= 1280);
    }

    /// A connection that went through cleanly: one segment in (the SYN-ACK), nothing sent
    /// again; once the peer writes, one more.
    #[test]
    fn tcp_info_counts_the_segments_of_a_connection() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let info = tcp_info(&client).unwrap();
        assert_eq!((info.tcpi_segs_in, info.tcpi_total_retrans), (1, 0));
        let (mut server, _) = listener.accept().unwrap();
        server.write_all(b"hello").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(tcp_info(&client).unwrap().tcpi_segs_in, 2);
        assert!(tcp_info(&UdpSocket::bind("127.0.0.1:0").unwrap()).is_err());
    }

    /// A label asked for is leased as it is; 0 leases one the kernel chose.
    #[test]
    fn flow_labels_are_leased() {
        let v6 = UdpSocket::bind("[::1]:0").unwrap();
        // A label of this process's own: another test run may hold (or just have held) one.
        let label = 0x4_0000 | (std::process::id() & 0xffff);
        assert_eq!(
            lease_flow_label(&v6, label, Ipv6Addr::LOCALHOST).unwrap(),
            label
        );
        let chosen = lease_flow_label(&v6, 0, Ipv6Addr::LOCALHOST).unwrap();
        assert!(chosen != 0 && chosen <= 0xf_ffff, "{chosen:#x}");
        set(&v6, Ipv6FlowinfoSend, &1).unwrap();
        assert_eq!(get(&v6, Ipv6FlowinfoSend).unwrap(), 1);
    }

    #[test]
    fn options_nix_wraps_go_through_the_same_helpers() {
        let v4 = UdpSocket::bind("127.0.0.1:0").unwrap();
        set(&v4, Ipv4RecvErr, &true).unwrap();
        assert!(get(&v4, Ipv4RecvErr).unwrap());
        v4.connect("127.0.0.1:9").unwrap();
        assert!(get(&v4, IpMtu).unwrap() >= 576);
    }
}
