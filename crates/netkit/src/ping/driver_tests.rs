//! The driver on tokio's paused clock over a scripted transport: answers come back after the
//! scripted delay in virtual time, so whole sessions run in microseconds and their timing is
//! exact.

use std::net::SocketAddr;
use std::sync::Mutex;

use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

use super::*;
use crate::icmp::Reply;

/// Answers every request after `delay`, `copies` times; remembers what was sent.
struct Scripted {
    delay: Duration,
    copies: usize,
    answers: UnboundedSender<Answer>,
    inbox: tokio::sync::Mutex<UnboundedReceiver<Answer>>,
    sent: Mutex<Vec<(u32, u16, Instant)>>,
}

impl Scripted {
    fn new(delay: Duration, copies: usize) -> Scripted {
        let (answers, inbox) = mpsc::unbounded_channel();
        Scripted {
            delay,
            copies,
            answers,
            inbox: tokio::sync::Mutex::new(inbox),
            sent: Mutex::new(Vec::new()),
        }
    }
}

impl Transport for Scripted {
    async fn send(&self, index: u32, dst: SocketAddr, seq: u16) -> io::Result<()> {
        let addr = dst.ip();
        self.sent.lock().unwrap().push((index, seq, Instant::now()));
        let (answers, delay, copies) = (self.answers.clone(), self.delay, self.copies);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            for _ in 0..copies {
                let reply = Reply {
                    index,
                    addr,
                    seq,
                    ttl: Some(64),
                    bytes: 64,
                    rtt: Some(delay),
                };
                let _ = answers.send(Answer::Reply(reply));
            }
        });
        Ok(())
    }

    async fn recv(&self) -> io::Result<(Answer, Instant)> {
        let answer = self.inbox.lock().await.recv().await;
        let answer = answer.ok_or_else(|| io::Error::from(io::ErrorKind::BrokenPipe))?;
        Ok((answer, Instant::now()))
    }

    fn path_mtu(&self, _dst: SocketAddr) -> Option<u32> {
        None
    }
}

fn targets() -> Vec<Target> {
    vec![Target::addr("198.18.0.2".parse().unwrap())]
}

#[tokio::test(start_paused = true)]
async fn late_replies_count_on_paused_time() {
    let transport = Scripted::new(Duration::from_millis(1500), 1);
    let config = PingConfig {
        count: Some(3),
        linger: Duration::from_secs(1),
        ..PingConfig::default()
    };
    let (_keep, controls) = mpsc::channel(1);
    let start = Instant::now();
    let mut events = Vec::new();
    let summaries = drive(&transport, &targets(), config, controls, |e| {
        events.push(e);
        Ok(())
    })
    .await
    .unwrap();
    let s = &summaries[0];
    assert_eq!(
        (s.transmitted, s.received, s.pipe, s.time_ms),
        (3, 3, 2, 2000)
    );
    assert_eq!(s.min_ms, Some(1500.0));
    // Ends as the third reply arrives: 2 s for the requests, 1.5 s for the last reply.
    assert_eq!(Instant::now() - start, Duration::from_millis(3500));
    let sent = transport.sent.lock().unwrap().clone();
    let at: Vec<Duration> = sent.iter().map(|(_, _, t)| *t - start).collect();
    assert_eq!(at, [0, 1000, 2000].map(Duration::from_millis));
}

#[tokio::test(start_paused = true)]
async fn status_goes_on_and_stop_summarises() {
    let transport = Scripted::new(Duration::from_millis(10), 2);
    let (control, controls) = mpsc::channel(4);
    let config = PingConfig {
        interval: Duration::from_millis(100),
        ..PingConfig::default()
    };
    let targets = targets();
    let driver = drive(&transport, &targets, config, controls, |e| {
        if let Event::Status(stats) = &e {
            assert_eq!((stats[0].received, stats[0].duplicates), (3, 3));
        }
        Ok(())
    });
    let signals = async {
        tokio::time::sleep(Duration::from_millis(250)).await;
        control.send(Control::Status).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        control.send(Control::Stop).await.unwrap();
    };
    let (summaries, ()) = tokio::join!(driver, signals);
    let s = &summaries.unwrap()[0];
    assert_eq!((s.transmitted, s.received, s.duplicates), (4, 4, 4));
    assert_eq!(s.time_ms, 300);
}
