//! A prober for tests: no network, answers decided by a script, delivered after the scripted
//! round-trip time on tokio's (pausable) clock, so round timing can be checked exactly.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::task::JoinSet;

use super::multi::Probers;
use super::probe::Prober;
use super::reply::{Answer, Reply, Tag};
use super::{Config, Sweep};
use crate::target::Targets;

/// The answers to the probe tagged `tag` (round and attempt) to target `index`, the how-many-th
/// probe `sent` (from 1) this target got in any round: for each, the tag it carries and its
/// delay.
pub type Script = fn(tag: Tag, index: u64, sent: u32) -> Vec<(Tag, Duration)>;

/// Every probe sent: (tag, target index).
pub type Log = Arc<Mutex<Vec<(Tag, u64)>>>;

#[derive(Debug)]
pub struct Scripted {
    script: Script,
    sent: HashMap<u64, u32>,
    log: Log,
    replies: UnboundedSender<Reply>,
    tasks: JoinSet<()>,
}

impl Scripted {
    pub fn send(&mut self, tag: Tag, index: u64, addr: IpAddr) {
        self.log.lock().expect("log").push((tag, index));
        let sent = self.sent.entry(index).or_insert(0);
        *sent += 1;
        for (tag, rtt) in (self.script)(tag, index, *sent) {
            let replies = self.replies.clone();
            self.tasks.spawn(async move {
                tokio::time::sleep(rtt).await;
                let reply = Reply {
                    tag,
                    index,
                    addr,
                    answer: Answer::Alive(rtt),
                    ttl: None,
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
    let (sweep, mut logs) = sweep_by(targets, config, &[script]);
    (sweep, logs.remove(0))
}

/// A sweep of `targets` by one scripted method per script (slot 0 first), and each method's
/// log of its probes.
pub fn sweep_by(targets: Targets, config: Config, scripts: &[Script]) -> (Sweep, Vec<Log>) {
    let mut logs = Vec::new();
    let mut parts = Vec::new();
    for &script in scripts {
        let (tx, replies) = mpsc::unbounded_channel();
        let log = Log::default();
        logs.push(Arc::clone(&log));
        let prober = Prober::Scripted(Scripted {
            script,
            sent: HashMap::new(),
            log,
            replies: tx,
            tasks: JoinSet::new(),
        });
        parts.push((prober, replies));
    }
    let total = super::count(&targets).expect("count");
    let probers = Probers::assemble(parts);
    (Sweep::assemble(targets, total, config, probers), logs)
}
