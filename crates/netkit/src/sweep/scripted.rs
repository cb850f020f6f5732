//! A prober for tests: no network, answers decided by a script, delivered after the scripted
//! round-trip time on tokio's (pausable) clock, so round timing can be checked exactly.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::task::JoinSet;

use super::probe::{Prober, Reply};
use super::{Config, Sweep};
use crate::target::Targets;

/// The answers to probe number `attempt` (from 1) of round `round` to target `index`: for each,
/// the round tag it carries and its delay.
pub type Script = fn(round: u16, index: u64, attempt: u32) -> Vec<(u16, Duration)>;

/// Every probe sent: (round tag, target index).
pub type Log = Arc<Mutex<Vec<(u16, u64)>>>;

#[derive(Debug)]
pub struct Scripted {
    script: Script,
    attempts: HashMap<(u16, u64), u32>,
    log: Log,
    replies: UnboundedSender<Reply>,
    tasks: JoinSet<()>,
}

impl Scripted {
    pub fn send(&mut self, round: u16, index: u64, addr: IpAddr) {
        self.log.lock().expect("log").push((round, index));
        let attempt = self.attempts.entry((round, index)).or_insert(0);
        *attempt += 1;
        for (tag, rtt) in (self.script)(round, index, *attempt) {
            let replies = self.replies.clone();
            self.tasks.spawn(async move {
                tokio::time::sleep(rtt).await;
                let reply = Reply {
                    round: tag,
                    index,
                    addr,
                    rtt,
                };
                let _ = replies.send(reply);
            });
        }
    }
}

impl Scripted {
    pub fn end_round(&mut self) {
        self.tasks.abort_all();
    }
}

/// A sweep of `targets` whose probes follow `script`, and the log of its probes.
pub fn sweep(targets: Targets, config: Config, script: Script) -> (Sweep, Log) {
    let (tx, replies) = mpsc::unbounded_channel();
    let log = Log::default();
    let prober = Prober::Scripted(Scripted {
        script,
        attempts: HashMap::new(),
        log: Arc::clone(&log),
        replies: tx,
        tasks: JoinSet::new(),
    });
    let total = super::count(&targets).expect("count");
    (
        Sweep::assemble(targets, total, config, prober, replies),
        log,
    )
}
