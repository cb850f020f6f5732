//! Several probing methods at once (`--method icmp,tcp:80,tcp:443`, as `nmap -sn -PE
//! -PS80,443`): [`Methods`] is the list, [`Probers`] opens one [`Prober`] per method, each with
//! its own reply channel, so that an answer says which method it answers (its *slot*, the
//! method's position in the list) without the probers knowing about each other. A target's
//! probe is one probe of every method; a control probe (module `loss`) goes only by the method
//! that found the host, so the loss measured is that of probes a host does answer, never that
//! of a method it ignores. A new [`Method`] variant needs only its [`Prober`]: the composite
//! takes it as it is.

use std::fmt;
use std::future::poll_fn;
use std::net::IpAddr;
use std::task::Poll;

use tokio::sync::mpsc::{self, UnboundedReceiver};

use super::probe::{Method, Prober};
use super::reply::{Reply, Tag};
use super::zone::Zones;
use super::Config;
use crate::error::{Error, ParseError};
use crate::target::Targets;

/// The most methods one sweep uses at once.
pub const MAX_METHODS: usize = 16;

/// The methods of a sweep, in the order given, each once; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Methods(Vec<Method>);

impl Methods {
    /// One method alone.
    pub fn one(method: Method) -> Self {
        Methods(vec![method])
    }

    /// `methods` without repeats, in the order given; an error when there is none or more
    /// than [`MAX_METHODS`].
    pub fn new(methods: impl IntoIterator<Item = Method>) -> Result<Self, ParseError> {
        let mut list: Vec<Method> = Vec::new();
        for method in methods {
            if !list.contains(&method) {
                list.push(method);
            }
        }
        let text = || Methods(list.clone()).to_string();
        match list.len() {
            0 => Err(ParseError::new("", "expected at least one method")),
            n if n > MAX_METHODS => Err(ParseError::new(
                text(),
                format!("at most {MAX_METHODS} methods at once"),
            )),
            _ => Ok(Methods(list)),
        }
    }

    /// The methods, in order.
    pub fn as_slice(&self) -> &[Method] {
        &self.0
    }

    /// The method in `slot`.
    pub fn get(&self, slot: u8) -> Option<Method> {
        self.0.get(usize::from(slot)).copied()
    }

    /// Whether there is more than one.
    pub fn is_several(&self) -> bool {
        self.0.len() > 1
    }
}

impl fmt::Display for Methods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, method) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{method}")?;
        }
        Ok(())
    }
}

/// One prober per method and the channels their answers come back on.
#[derive(Debug)]
pub struct Probers {
    probers: Vec<Prober>,
    replies: Vec<UnboundedReceiver<Reply>>,
    /// The channel read first next time, so that none starves the others.
    next: usize,
    /// The zones the targets were given with, for the probes' socket addresses.
    zones: Zones,
}

impl Probers {
    /// Opens a prober for each of `config.methods`; fails with the first one refused. The
    /// TCP probers share `config.max_in_flight` (each holds a descriptor per connect).
    pub fn open(config: &Config, targets: &Targets) -> Result<Self, Error> {
        let methods = config.methods.as_slice();
        let tcp = methods
            .iter()
            .filter(|m| matches!(m, Method::Tcp(_)))
            .count();
        let mut each = config.clone();
        each.max_in_flight = (config.max_in_flight / tcp.max(1)).max(1);
        let mut parts = Vec::new();
        for &method in methods {
            let (tx, rx) = mpsc::unbounded_channel();
            parts.push((Prober::open(method, &each, targets, tx)?, rx));
        }
        let probers = Probers::assemble(parts);
        Ok(Probers {
            zones: Zones::of(targets),
            ..probers
        })
    }

    /// Probers already open, each with the receiving end of its replies, in slot order.
    pub(super) fn assemble(parts: Vec<(Prober, UnboundedReceiver<Reply>)>) -> Self {
        let (probers, replies) = parts.into_iter().unzip();
        Probers {
            probers,
            replies,
            next: 0,
            zones: Zones::default(),
        }
    }

    /// How many methods a target's probe uses.
    pub fn len(&self) -> usize {
        self.probers.len()
    }

    /// How many methods send probes to the target at `index`, `addr` (module `probe`:
    /// [`Prober::takes`]): the votes needed to settle it unreachable.
    pub fn voters(&self, index: u64, addr: IpAddr) -> usize {
        let dst = self.zones.dst(index, addr);
        self.probers.iter().filter(|p| p.takes(dst)).count()
    }

    /// Whether there is no prober (never, once opened).
    pub fn is_empty(&self) -> bool {
        self.probers.is_empty()
    }

    /// Sends one probe of every method, tagged `tag`, to the target at `index`.
    pub async fn send(&mut self, tag: Tag, index: u64, addr: IpAddr) {
        let dst = self.zones.dst(index, addr);
        for prober in &mut self.probers {
            prober.send(tag, index, dst).await;
        }
    }

    /// Sends one probe by the method in `slot` only.
    pub async fn send_by(&mut self, slot: u8, tag: Tag, index: u64, addr: IpAddr) {
        let dst = self.zones.dst(index, addr);
        if let Some(prober) = self.probers.get_mut(usize::from(slot)) {
            prober.send(tag, index, dst).await;
        }
    }

    /// Drops whatever is still in flight at the end of a round.
    pub fn end_round(&mut self) {
        for prober in &mut self.probers {
            prober.end_round();
        }
    }

    /// An answer already waiting, with the slot of the method it answers.
    pub fn try_recv(&mut self) -> Option<(u8, Reply)> {
        let n = self.replies.len();
        for k in 0..n {
            let slot = (self.next + k) % n;
            if let Ok(reply) = self.replies[slot].try_recv() {
                self.next = (slot + 1) % n;
                return Some((slot_of(slot), reply));
            }
        }
        None
    }

    /// The next answer, with its slot; `None` once every prober is gone.
    pub async fn recv(&mut self) -> Option<(u8, Reply)> {
        poll_fn(|cx| {
            let n = self.replies.len();
            let mut open = 0;
            for k in 0..n {
                let slot = (self.next + k) % n;
                match self.replies[slot].poll_recv(cx) {
                    Poll::Ready(Some(reply)) => {
                        self.next = (slot + 1) % n;
                        return Poll::Ready(Some((slot_of(slot), reply)));
                    }
                    Poll::Ready(None) => {}
                    Poll::Pending => open += 1,
                }
            }
            match open {
                0 => Poll::Ready(None),
                _ => Poll::Pending,
            }
        })
        .await
    }
}

fn slot_of(slot: usize) -> u8 {
    u8::try_from(slot).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_keep_their_order_once_each() {
        let methods = Methods::new([Method::Icmp, Method::Tcp(443), Method::Icmp]).unwrap();
        assert_eq!(methods.to_string(), "icmp,tcp:443");
        assert_eq!(methods.get(1), Some(Method::Tcp(443)));
        assert!(methods.is_several());
        assert!(Methods::new([]).is_err());
        assert!(Methods::new((1..=17).map(Method::Tcp)).is_err());
    }
}
