//! The end of a ping: iputils' per-host statistics (`--- HOST ping statistics ---`, the
//! counts line with `+N duplicates` / `+N errors`, then `rtt min/avg/max/mdev`, `pipe N` and
//! `ipg/ewma` on one line), fping's one line per host (`--fping-summary`), or the JSON
//! `summary` records.

use std::io;

use netkit::report::ping::PingSummary;

use super::format::{format_fping_ms, format_loss};

use crate::output::Printer;

/// Prints every host's summary in the chosen style.
pub fn print(out: &Printer, summaries: &[PingSummary], fping: bool, ipg: bool) -> io::Result<()> {
    if out.json() {
        return summaries.iter().try_for_each(|s| out.record("summary", s));
    }
    if fping {
        return print_fping(out, summaries);
    }
    for summary in summaries {
        print_iputils(out, summary, ipg)?;
    }
    Ok(())
}

/// iputils' `finish`; `ipg` when the interval was zero, `-f` or `-A`.
fn print_iputils(out: &Printer, s: &PingSummary, ipg: bool) -> io::Result<()> {
    out.line("")?;
    out.line(&format!("--- {} ping statistics ---", s.host))?;
    let mut counts = format!(
        "{} packets transmitted, {} received",
        s.transmitted, s.received
    );
    if s.duplicates > 0 {
        counts += &format!(", +{} duplicates", s.duplicates);
    }
    if s.corrupted > 0 {
        counts += &format!(", +{} corrupted", s.corrupted);
    }
    if s.errors > 0 {
        counts += &format!(", +{} errors", s.errors);
    }
    if s.transmitted > 0 {
        counts += &format!(
            ", {}% packet loss, time {}ms",
            format_loss(s.loss_pct),
            s.time_ms
        );
    }
    out.line(&counts)?;
    out.line(&figures(s, ipg).join(", "))
}

/// The last line's parts: round trips, pipe, inter-packet gap and moving average.
fn figures(s: &PingSummary, ipg: bool) -> Vec<String> {
    let mut parts = Vec::new();
    if let (Some(min), Some(avg), Some(max), Some(mdev)) = (s.min_ms, s.avg_ms, s.max_ms, s.mdev_ms)
    {
        // The figures are whole microseconds, so three decimals print them exactly.
        parts.push(format!(
            "rtt min/avg/max/mdev = {min:.3}/{avg:.3}/{max:.3}/{mdev:.3} ms"
        ));
    }
    if s.pipe > 1 {
        parts.push(format!("pipe {}", s.pipe));
    }
    if ipg && s.received > 0 && s.transmitted > 1 {
        // Untimed requests (`-s` below 16) leave iputils' moving average at 0.
        let ewma = s.ewma_ms.unwrap_or(0.0);
        let gap_us = s.elapsed.as_micros() / u128::from(s.transmitted - 1);
        let gap = format!("{}.{:03}", gap_us / 1000, gap_us % 1000);
        parts.push(format!("ipg/ewma {gap}/{ewma:.3} ms"));
    }
    parts
}

/// fping's `-c` summary: `HOST : xmt/rcv/%loss = 5/3/40%, min/avg/max = a/b/c`, hosts
/// padded to the longest name, after a blank line.
fn print_fping(out: &Printer, summaries: &[PingSummary]) -> io::Result<()> {
    let width = summaries.iter().map(|s| s.host.len()).max().unwrap_or(0);
    out.line("")?;
    for s in summaries {
        let loss = match s.transmitted {
            0 => 0,
            sent => sent.saturating_sub(s.received) * 100 / sent,
        };
        let mut line = format!(
            "{:<width$} : xmt/rcv/%loss = {}/{}/{loss}%",
            s.host, s.transmitted, s.received
        );
        if let Some([min, avg, max]) = first_replies(s) {
            let [min, avg, max] = [min, avg, max].map(format_fping_ms);
            line += &format!(", min/avg/max = {min}/{avg}/{max}");
        }
        out.line(&line)?;
    }
    Ok(())
}

/// fping's min/avg/max: of the first reply to each request (duplicates change nothing, unlike
/// iputils' figures), from the per-request round trips when they were kept.
fn first_replies(s: &PingSummary) -> Option<[f64; 3]> {
    let Some(rtts) = &s.rtts_ms else {
        return Some([s.min_ms?, s.avg_ms?, s.max_ms?]);
    };
    let firsts: Vec<f64> = rtts.iter().flatten().copied().collect();
    let min = firsts.iter().copied().reduce(f64::min)?;
    let max = firsts.iter().copied().reduce(f64::max)?;
    let avg = firsts.iter().sum::<f64>() / firsts.len() as f64;
    Some([min, avg, max])
}

#[cfg(test)]
mod tests {
    use super::*;
    use netkit::ping::Stats;
    use netkit::ping::SummaryParts;
    use std::time::Duration;

    fn summary(rtts_us: &[u64], sent: u64, pipe: u64, elapsed_ms: u64) -> PingSummary {
        let mut stats = Stats::default();
        (0..sent).for_each(|_| stats.sent());
        for us in rtts_us {
            stats.replied(Some(Duration::from_micros(*us)), false);
        }
        let parts = SummaryParts {
            pipe,
            elapsed: Duration::from_millis(elapsed_ms),
            rtts_ms: None,
        };
        stats.summary("h", "127.0.0.1".parse().unwrap(), parts)
    }

    #[test]
    fn the_last_line_joins_rtt_pipe_and_ipg() {
        let s = summary(&[9, 4, 3], 3, 2, 0);
        assert_eq!(
            figures(&s, false).join(", "),
            "rtt min/avg/max/mdev = 0.003/0.005/0.009/0.002 ms, pipe 2"
        );
        let s = summary(&[9, 4, 3], 3, 1, 1);
        let line = figures(&s, true).join(", ");
        assert!(line.ends_with(", ipg/ewma 0.500/0.007 ms"), "{line}");
        assert_eq!(figures(&summary(&[], 3, 3, 1000), false), ["pipe 3"]);
        assert!(figures(&summary(&[], 3, 0, 1000), true).is_empty());
    }
}
