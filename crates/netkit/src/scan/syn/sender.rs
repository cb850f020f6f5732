//! The SYN scan's senders: each takes the probes the scheduler lets leave, records them in the
//! table of SYNs in flight (before sending, so that an answer the kernel delivers at once is
//! never unknown) and sends them. A send the kernel refuses at once is an answer too, read as
//! the connect scan reads a refused connect ([`super::super::answer::from_errno`]: this
//! machine's firewall or routing table); a shortage of buffers pauses the scan and sends the
//! same try again.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use nix::errno::Errno;

use super::packet;
use super::socket::Sources;
use super::table::Entry;
use super::Prober;
use crate::scan::answer;
use crate::scan::probe::Outcome;
use crate::scan::schedule::Reply;
use crate::scan::worker::{Batch, Found, Job, Report, Shared};

/// One sending thread: takes probes and sends their SYNs until the scan is done or stopped.
pub fn work(shared: &Arc<Shared>, prober: &Prober) {
    let mut sources = Sources::default();
    while let Some(mut batch) = shared.take() {
        let refused = send_all(prober, &mut sources, &mut batch);
        drop(batch);
        if let Err(err) = shared.report(refused) {
            shared.fail(err);
        }
    }
    shared.finished();
}

/// Sends the SYNs of `batch`; returns what this machine refused at once.
fn send_all(prober: &Prober, sources: &mut Sources, batch: &mut Batch) -> Vec<Report> {
    let jobs = batch.jobs();
    let sent = Instant::now();
    let seqs: Vec<u32> = {
        let mut table = prober.table();
        let record = |job: &Job| {
            let seq = table.seq(job.id);
            let entry = Entry {
                id: job.id,
                dst: job.dst,
                sent,
            };
            table.insert(seq, entry, job.expires.into_std());
            seq
        };
        jobs.iter().map(record).collect()
    };
    let mut refused = Vec::new();
    for (job, seq) in jobs.into_iter().zip(seqs) {
        if let Err(err) = send_one(prober, sources, &job, seq) {
            prober.table().remove(seq);
            let found = refusal(err, sent);
            refused.push(Report {
                id: job.id,
                dst: job.dst,
                found,
            });
        }
    }
    refused
}

/// Sends `job`'s SYN with sequence number `seq`, from its try's source port.
fn send_one(prober: &Prober, sources: &mut Sources, job: &Job, seq: u32) -> io::Result<()> {
    let dst = job.dst;
    let family = prober
        .sockets
        .family(dst.ip())
        .ok_or_else(|| io::Error::from_raw_os_error(Errno::EAFNOSUPPORT as i32))?;
    let src: IpAddr = sources.of(dst)?;
    let sport = family.port_for(job.tryno);
    let syn = packet::syn(src, sport, dst.ip(), dst.port(), seq);
    family.send(&syn, dst)
}

/// What a send this machine refused means: a port state, a pause, or the end of the scan.
fn refusal(err: io::Error, sent: Instant) -> Found {
    let errno = err.raw_os_error().map(Errno::from_raw);
    match errno.and_then(answer::from_errno) {
        Some(answer) => Found::Raw(Reply::Answered(answer, sent.elapsed()), None),
        None if crate::sys::shortage(&err).is_some() => Found::Connect(Ok(Outcome::Busy(err))),
        None => Found::Connect(Err(err)),
    }
}
