//! Happy Eyeballs with its memory, on loopback sockets: a silent address (a listener whose
//! accept queue is full drops every SYN) passed over once another answered, a remembered
//! winner that died left within the same connect.

use std::net::TcpListener;

use super::*;

/// A loopback address that never answers: a listener with a backlog of 0 whose accept queue
/// is filled (it never accepts), so the kernel drops every SYN to it. Keep all three alive.
fn silent_addr() -> (Socket, Vec<std::net::TcpStream>, SocketAddr) {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    socket.bind(&any.into()).unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut queued = Vec::new();
    for _ in 0..8 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(client) => queued.push(client),
            Err(err) if err.kind() == io::ErrorKind::TimedOut => return (socket, queued, addr),
            Err(err) => panic!("connect to the silent listener: {err}"),
        }
    }
    panic!("the accept queue never filled: {} queued", queued.len());
}

fn live_addr() -> (TcpListener, SocketAddr) {
    let live = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = live.local_addr().unwrap();
    (live, addr)
}

/// A delay longer than a test may take: only a failure starts the next attempt.
const HOUR: Duration = Duration::from_secs(3600);

/// [`connect_noting`] to `list` with attempts `delay` apart: the address connected to (it
/// must connect) and the verdicts.
async fn connected(
    list: Vec<SocketAddr>,
    delay: Duration,
) -> (SocketAddr, Vec<(SocketAddr, Verdict)>) {
    let (stream, verdicts) =
        connect_noting(list, Duration::from_secs(30), delay, HandshakeAck::Now).await;
    (stream.unwrap().peer_addr().unwrap(), verdicts)
}

#[tokio::test]
async fn a_silent_first_address_is_passed_over_once_another_answered() {
    let (_silent, _queued, silent) = silent_addr();
    let (_live, live) = live_addr();
    let list = vec![silent, live];
    // First: the silent one alone for the (short) delay, then the live one wins.
    let short = Duration::from_millis(50);
    let (to, verdicts) = connected(list.clone(), short).await;
    assert_eq!(to, live);
    assert_eq!(
        verdicts,
        [(silent, Verdict::Failed), (live, Verdict::Answered)]
    );
    // Then: a delay longer than the test may take, so only an order starting with the live
    // one connects without ever trying the silent one.
    let (to, verdicts) = connected(list, HOUR).await;
    assert_eq!(to, live);
    assert_eq!(verdicts, [(live, Verdict::Answered)]);
}

#[tokio::test]
async fn a_remembered_winner_that_died_is_left_within_the_same_connect() {
    let (_refusing, dead) = crate::testing::refused_addr();
    let (_live, live) = live_addr();
    memory::record(&[(dead, Verdict::Answered)]);
    let list = vec![live, dead];
    // Only the dead one's failure can start the live one before the hour-long delay.
    let (to, verdicts) = connected(list.clone(), HOUR).await;
    assert_eq!(to, live);
    assert_eq!(
        verdicts,
        [(dead, Verdict::Failed), (live, Verdict::Answered)]
    );
    let mut order = list;
    memory::arrange(&mut order);
    assert_eq!(order, [live, dead]);
}

#[tokio::test]
async fn every_address_remembered_dead_is_still_tried_in_the_plain_order() {
    let (_refusing, dead) = crate::testing::refused_addr();
    let (_live, live) = live_addr();
    memory::record(&[(dead, Verdict::Failed), (live, Verdict::Failed)]);
    let (to, verdicts) = connected(vec![dead, live], HOUR).await;
    assert_eq!(to, live);
    assert_eq!(
        verdicts,
        [(dead, Verdict::Failed), (live, Verdict::Answered)]
    );
}
