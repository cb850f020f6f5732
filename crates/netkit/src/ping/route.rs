//! What the kernel would do with a request, asked before anything is sent, as iputils asks
//! it: a UDP socket connected to the host (bound to `-I`'s interface, if any) tells whether
//! there is a route at all (iputils: `connect: Network is unreachable`, exit 2), which source
//! address would be used, and whether the address is a broadcast one (connecting to one is
//! refused without `SO_BROADCAST`). The same kind of socket later reads the path MTU that a
//! request was too big for.

use std::io;
use std::net::{IpAddr, SocketAddr};

use socket2::{Domain, SockAddr, Socket, Type};

use crate::error::{describe_io, Error, ParseError};
use crate::sys::sockopt;

/// Where requests to a host go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The source address the kernel picks.
    pub source: IpAddr,
    /// The host address is a broadcast address (only allowed with `broadcast_ok`).
    pub broadcast: bool,
}

/// Asks the kernel how it would reach `dst`'s address in its zone (shown to the user as
/// `host`; the port is not used), through `device` if given. No route is an input error
/// naming the host, as is a broadcast address unless `broadcast_ok` (ping's `-b`).
pub fn route(
    host: &str,
    dst: SocketAddr,
    device: Option<&str>,
    broadcast_ok: bool,
) -> Result<Route, Error> {
    let socket = probe_socket(dst.ip(), device)?;
    let to = SockAddr::from(with_port(dst, 1025));
    let mut broadcast = false;
    if let Err(e) = socket.connect(&to) {
        if e.raw_os_error() != Some(nix::libc::EACCES) {
            return Err(refused(host, e));
        }
        if !broadcast_ok {
            let why = "a broadcast address: ping it with -b (or check the local firewall rules)";
            return Err(ParseError::new(host, why).into());
        }
        broadcast = true;
        socket
            .set_broadcast(true)
            .and_then(|()| socket.connect(&to))
            .map_err(|e| refused(host, e))?;
    }
    let source = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(|a| a.ip())
        .ok_or_else(|| Error::io(format!("{host}: getsockname"), io::ErrorKind::Other.into()))?;
    Ok(Route { source, broadcast })
}

/// The path MTU to `dst`'s address in its zone the kernel knows, e.g. after a request was
/// too big for it.
pub fn path_mtu(dst: SocketAddr) -> Option<u32> {
    let socket = probe_socket(dst.ip(), None).ok()?;
    socket.connect(&SockAddr::from(with_port(dst, 1025))).ok()?;
    let mtu = match dst.ip() {
        IpAddr::V4(_) => sockopt::get(&socket, sockopt::IpMtu),
        IpAddr::V6(_) => sockopt::get(&socket, sockopt::Ipv6Mtu),
    };
    mtu.ok().and_then(|mtu| u32::try_from(mtu).ok())
}

/// `addr` with port `port`, its zone kept.
fn with_port(mut addr: SocketAddr, port: u16) -> SocketAddr {
    addr.set_port(port);
    addr
}

fn probe_socket(addr: IpAddr, device: Option<&str>) -> Result<Socket, Error> {
    let domain = match addr {
        IpAddr::V4(_) => Domain::IPV4,
        IpAddr::V6(_) => Domain::IPV6,
    };
    let socket =
        Socket::new(domain, Type::DGRAM, None).map_err(|e| Error::io("open a UDP socket", e))?;
    if let Some(device) = device {
        socket
            .bind_device(Some(device.as_bytes()))
            .map_err(|e| match e.raw_os_error() {
                Some(nix::libc::ENODEV) => Error::NoSuchInterface(device.to_string()),
                _ => Error::io(format!("bind to interface {device}"), e),
            })?;
    }
    Ok(socket)
}

/// No route (or another refusal of the connect): an error about the host, as iputils'
/// `connect: Network is unreachable`.
fn refused(host: &str, err: io::Error) -> Error {
    let unreachable = matches!(
        err.raw_os_error(),
        Some(nix::libc::ENETUNREACH | nix::libc::EHOSTUNREACH | nix::libc::EADDRNOTAVAIL)
    );
    match unreachable {
        true => ParseError::new(host, format!("connect: {}", describe_io(&err))).into(),
        false => Error::io(format!("{host}: connect"), err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_reached_from_loopback() {
        let route = route("127.0.0.1", "127.0.0.1:0".parse().unwrap(), None, false).unwrap();
        assert_eq!(route.source, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert!(!route.broadcast);
    }

    #[test]
    fn an_unknown_interface_is_an_input_error() {
        let addr = "127.0.0.1:0".parse().unwrap();
        match route("127.0.0.1", addr, Some("nk-no-such0"), false) {
            Err(Error::NoSuchInterface(name)) => assert_eq!(name, "nk-no-such0"),
            Err(Error::Io { source, .. }) if source.raw_os_error() == Some(nix::libc::EPERM) => {}
            other => panic!("{other:?}"),
        }
    }
}
