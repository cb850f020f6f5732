//! The far side's listeners: real TCP sockets bound inside the far namespace by one thread
//! that accepts every connection and closes it at once or echoes it, until the lab stops.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use socket2::{Domain, Socket, Type};

use crate::behaviour::Serve;
use crate::error::{LabError, Result};
use crate::netns;
use crate::spec::Listener;

/// How often the server looks at its stop flag when nothing happens.
const TICK_MS: u16 = 50;
/// Longest an echo may wait for a peer that does not read (then the connection is closed).
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// Most echo connections kept open at once; beyond it new ones are closed after accept.
const MAX_ECHO: usize = 1024;

/// The running listeners; dropping this stops the thread and closes every socket.
#[derive(Debug)]
pub(crate) struct FarServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FarServer {
    /// Binds every listener inside namespace `far`; returns once all are listening.
    pub fn start(far: &str, listeners: Vec<Listener>) -> Result<FarServer> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let (name, flag) = (far.to_string(), stop.clone());
        let thread = thread::Builder::new()
            .name("lab-listen".into())
            .spawn(move || match bind_all(&name, &listeners) {
                Ok(bound) => {
                    let _ = ready_tx.send(Ok(()));
                    serve(bound, &flag);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| LabError::io("spawn the listener thread", e))?;
        let mut server = FarServer {
            stop,
            thread: Some(thread),
        };
        match ready_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(())) => Ok(server),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                server.stop();
                Err(LabError::io(
                    "start the listeners",
                    io::ErrorKind::TimedOut.into(),
                ))
            }
        }
    }

    /// Stops the thread and closes the sockets.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for FarServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Enters the far namespace and binds one socket per listener port.
fn bind_all(far: &str, listeners: &[Listener]) -> Result<Vec<(TcpListener, Serve)>> {
    netns::enter(far)?;
    let mut bound = Vec::new();
    for l in listeners {
        for &port in &l.ports {
            let addr = SocketAddr::new(l.addr, port);
            let socket = bind(addr).map_err(|e| LabError::io(format!("listen on {addr}"), e))?;
            bound.push((socket, l.serve));
        }
    }
    Ok(bound)
}

/// A non-blocking listener on `addr`; freebind so AnyIP addresses can be bound too.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
        socket.set_freebind_ipv6(true)?;
    } else {
        socket.set_freebind(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Accepts and serves until `stop` is set.
fn serve(listeners: Vec<(TcpListener, Serve)>, stop: &AtomicBool) {
    let mut echoes: Vec<TcpStream> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let ready = wait(&listeners, &echoes);
        for (i, (listener, how)) in listeners.iter().enumerate() {
            if ready.get(i).copied().unwrap_or(false) {
                accept_all(listener, *how, &mut echoes);
            }
        }
        let offset = listeners.len();
        let mut i = 0;
        echoes.retain_mut(|stream| {
            let readable = ready.get(offset + i).copied().unwrap_or(false);
            i += 1;
            !readable || echo(stream)
        });
    }
}

/// Polls every socket for one tick; returns which ones are readable.
fn wait(listeners: &[(TcpListener, Serve)], echoes: &[TcpStream]) -> Vec<bool> {
    let mut fds: Vec<PollFd> = listeners
        .iter()
        .map(|(l, _)| PollFd::new(l.as_fd(), PollFlags::POLLIN))
        .chain(
            echoes
                .iter()
                .map(|s| PollFd::new(s.as_fd(), PollFlags::POLLIN)),
        )
        .collect();
    if poll(&mut fds, PollTimeout::from(TICK_MS)).is_err() {
        return Vec::new();
    }
    fds.iter()
        .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
        .collect()
}

/// Accepts every pending connection: closes it, or keeps it for echoing.
fn accept_all(listener: &TcpListener, how: Serve, echoes: &mut Vec<TcpStream>) {
    while let Ok((stream, _)) = listener.accept() {
        let usable = stream.set_nonblocking(true).is_ok()
            && stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_ok();
        if how == Serve::Echo && echoes.len() < MAX_ECHO && usable {
            echoes.push(stream);
        }
    }
}

/// Echoes what is readable; returns whether the connection stays open.
fn echo(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                let _ = stream.set_nonblocking(false);
                let written = stream.write_all(&buf[..n]);
                let _ = stream.set_nonblocking(true);
                if written.is_err() {
                    return false;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}
