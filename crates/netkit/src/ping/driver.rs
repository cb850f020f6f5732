//! Runs a [`Session`] over the ICMP [`Engine`]: sends the requests the session asks for,
//! feeds it every answer and the time, and obeys the caller's [`Control`]s (stop: SIGINT,
//! SIGTERM; status: SIGQUIT). The clock is tokio's, so the loop also runs on paused time over
//! a scripted transport in the tests.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::mpsc::Receiver;
use tokio::time::{sleep_until, Instant};

use super::config::PingConfig;
use super::route::path_mtu;
use super::session::{Event, Request, Session};
use crate::icmp::{Answer, Engine};
use crate::report::ping::PingSummary;
use crate::sys::retry_enobufs;
use crate::target::Target;

/// What the caller may ask of a running session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// End now and summarise (SIGINT, SIGTERM).
    Stop,
    /// Report the statistics so far and go on (SIGQUIT).
    Status,
}

/// Sending requests and receiving answers: the engine, or a script in tests.
pub(crate) trait Transport {
    /// Sends request `seq` (modulo 65536) for target `index` to `dst` (in its zone).
    fn send(&self, index: u32, dst: SocketAddr, seq: u16) -> impl Future<Output = io::Result<()>>;
    /// The next answer to one of our requests, with when it arrived. Cancel safe.
    fn recv(&self) -> impl Future<Output = io::Result<(Answer, Instant)>>;
    /// The path MTU to `dst` (in its zone), after a request was too big for it.
    fn path_mtu(&self, dst: SocketAddr) -> Option<u32>;
}

impl Transport for Engine {
    fn send(&self, index: u32, dst: SocketAddr, seq: u16) -> impl Future<Output = io::Result<()>> {
        Engine::send(self, index, dst, seq)
    }

    async fn recv(&self) -> io::Result<(Answer, Instant)> {
        let (answer, arrived) = self.recv_answer_at().await?;
        Ok((answer, Instant::from_std(arrived)))
    }

    fn path_mtu(&self, dst: SocketAddr) -> Option<u32> {
        path_mtu(dst)
    }
}

/// Pings `targets` (target `i` is engine index `i`) until the session ends or `controls` says
/// stop, reporting events to `on_event` as they happen; returns one summary per target.
pub async fn run<E>(
    engine: &Engine,
    targets: &[Target],
    config: PingConfig,
    controls: Receiver<Control>,
    on_event: E,
) -> io::Result<Vec<PingSummary>>
where
    E: FnMut(Event) -> io::Result<()>,
{
    drive(engine, targets, config, controls, on_event).await
}

/// The loop of [`run`] over any transport.
pub(crate) async fn drive<T, E>(
    transport: &T,
    targets: &[Target],
    config: PingConfig,
    mut controls: Receiver<Control>,
    mut on_event: E,
) -> io::Result<Vec<PingSummary>>
where
    T: Transport,
    E: FnMut(Event) -> io::Result<()>,
{
    let mut session = Session::new(config, targets, Instant::now());
    let mut controls_open = true;
    // A pass over every host happens when the timer fires (or a control came); an answer
    // only moves its own host, and can only bring the wake-up earlier through that host.
    let mut wake = None;
    let mut pass = true;
    loop {
        if pass {
            send_due(transport, &mut session).await;
            session.tick(Instant::now());
            wake = session.wake_at(Instant::now());
            pass = false;
        }
        report(&mut session, &mut on_event)?;
        if session.is_over() {
            break;
        }
        // Answers before the timer: one already in when a wait ends (the timer fires late by
        // up to a millisecond) is taken in first, and counts if it arrived in time.
        tokio::select! {
            biased;
            control = controls.recv(), if controls_open => {
                match control {
                    Some(Control::Stop) => session.stop(),
                    Some(Control::Status) => session.status(),
                    None => controls_open = false,
                }
                pass = true;
            }
            answer = transport.recv() => {
                let (answer, arrived) = answer?;
                if let Some(host) = session.answer(&answer, arrived.min(Instant::now())) {
                    while let Some(request) = session.next_request_of(host, Instant::now()) {
                        send(transport, &mut session, &request).await;
                    }
                    wake = [wake, session.wake_of(host, Instant::now())].into_iter().flatten().min();
                }
            }
            () = sleep_until(wake.unwrap_or_else(far_future)) => pass = true,
        }
    }
    report(&mut session, &mut on_event)?;
    Ok(session.summaries())
}

/// Sends every request due now.
async fn send_due<T: Transport>(transport: &T, session: &mut Session) {
    while let Some(request) = session.next_request(Instant::now()) {
        send(transport, session, &request).await;
    }
}

/// Sends `request`; a refusal is the session's to count.
async fn send<T: Transport>(transport: &T, session: &mut Session, request: &Request) {
    if let Err(error) = send_one(transport, request).await {
        let mtu = match super::is_too_big(&error) {
            true => transport.path_mtu(request.dst),
            false => None,
        };
        session.send_failed(request, error, mtu);
    }
}

/// Sends one request, pausing briefly while the kernel's transmit queue is full (ENOBUFS).
async fn send_one<T: Transport>(transport: &T, request: &Request) -> io::Result<()> {
    let index = u32::try_from(request.host).unwrap_or(u32::MAX);
    retry_enobufs(|| transport.send(index, request.dst, request.seq as u16)).await
}

fn report<E>(session: &mut Session, on_event: &mut E) -> io::Result<()>
where
    E: FnMut(Event) -> io::Result<()>,
{
    while let Some(event) = session.next_event() {
        on_event(event)?;
    }
    Ok(())
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}

#[cfg(test)]
#[path = "driver_tests.rs"]
mod tests;
