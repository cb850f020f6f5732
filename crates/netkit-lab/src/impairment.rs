//! What a link does to the packets crossing it in one direction: delay, jitter, loss,
//! duplication, reordering and a rate limit, plus the names of the links and directions.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{LabError, Result};

/// One of the lab's two links.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Link {
    /// The scanner's link: scanner namespace ↔ router namespace.
    Near,
    /// The far link: router namespace ↔ far namespace (the one the builder's shortcuts impair).
    Far,
}

/// A direction of travel through the lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the scanner towards the far hosts (probes, requests).
    ToFar,
    /// From the far hosts back to the scanner (answers).
    ToScanner,
}

impl Link {
    /// Both links, near first (the order a packet to the far side crosses them).
    pub const ALL: [Link; 2] = [Link::Near, Link::Far];

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl Direction {
    /// Both directions.
    pub const ALL: [Direction; 2] = [Direction::ToFar, Direction::ToScanner];

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// A rate limit in bits per second (`tc tbf`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate(pub u64);

impl Rate {
    /// The rate in bits per second.
    pub fn bits_per_sec(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}bit", self.0)
    }
}

impl FromStr for Rate {
    type Err = LabError;

    /// Parses `2mbit`, `500kbit`, `1gbit`, `64000bit` or a plain number of bits per second.
    fn from_str(s: &str) -> Result<Rate> {
        let lower = s.trim().to_ascii_lowercase();
        let split = lower
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(lower.len());
        let (digits, unit) = lower.split_at(split);
        let scale = match unit {
            "" | "bit" => 1,
            "kbit" => 1_000,
            "mbit" => 1_000_000,
            "gbit" => 1_000_000_000,
            _ => {
                return Err(LabError::spec(
                    s,
                    "expected a rate such as 2mbit, 500kbit or 1gbit",
                ))
            }
        };
        match digits
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(scale))
        {
            Some(bits) if bits >= 8_000 => Ok(Rate(bits)),
            _ => Err(LabError::spec(
                s,
                "expected a rate of at least 8kbit, such as 2mbit",
            )),
        }
    }
}

/// Parses a probability given as a percentage (`2%`) or a fraction (`0.02`).
pub fn parse_probability(s: &str) -> Result<f64> {
    let t = s.trim();
    let value = match t.strip_suffix('%') {
        Some(pct) => pct.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    };
    match value {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(LabError::spec(
            s,
            "expected a probability such as 2% or 0.02 (0 to 100%)",
        )),
    }
}

/// What one link does to packets in one direction. The default impairs nothing.
///
/// Semantics follow `netem`, so both back ends agree: `delay ± jitter` (uniform) is added to
/// each packet; `loss`, `dup` and `reorder` are per-packet probabilities; a *reordered* packet
/// skips the delay and so overtakes the packets held before it (reordering needs a delay);
/// a duplicate is delayed independently of its original; `rate` shapes with `tc tbf`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Impairment {
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Uniform jitter: each packet's delay is drawn from `delay ± jitter` (never below zero).
    pub jitter: Duration,
    /// Probability that a packet is dropped.
    pub loss: f64,
    /// Probability that a packet is sent twice.
    pub dup: f64,
    /// Probability that a packet skips the delay (and so overtakes earlier packets).
    pub reorder: f64,
    /// Rate limit (token bucket on the link's egress); `None` is line rate.
    pub rate: Option<Rate>,
}

impl Impairment {
    /// No impairment (same as `Default`).
    pub fn none() -> Impairment {
        Impairment::default()
    }

    /// Sets the fixed one-way delay.
    pub fn delay(mut self, delay: Duration) -> Impairment {
        self.delay = delay;
        self
    }

    /// Sets the uniform jitter around the delay.
    pub fn jitter(mut self, jitter: Duration) -> Impairment {
        self.jitter = jitter;
        self
    }

    /// Sets the loss probability (0.02 is 2%).
    pub fn loss(mut self, p: f64) -> Impairment {
        self.loss = p;
        self
    }

    /// Sets the duplication probability.
    pub fn dup(mut self, p: f64) -> Impairment {
        self.dup = p;
        self
    }

    /// Sets the reordering probability.
    pub fn reorder(mut self, p: f64) -> Impairment {
        self.reorder = p;
        self
    }

    /// Sets the rate limit.
    pub fn rate(mut self, rate: Rate) -> Impairment {
        self.rate = Some(rate);
        self
    }

    /// Whether anything other than the rate limit is set (the part netem or the relay does).
    pub fn has_packet_effects(&self) -> bool {
        !self.delay.is_zero()
            || !self.jitter.is_zero()
            || self.loss > 0.0
            || self.dup > 0.0
            || self.reorder > 0.0
    }

    /// Checks ranges: probabilities within 0..=1, jitter and reordering only with a delay,
    /// and bounded values (delay and jitter at most 10 s).
    pub fn validate(&self, what: &str) -> Result<()> {
        for (name, p) in [
            ("loss", self.loss),
            ("dup", self.dup),
            ("reorder", self.reorder),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(LabError::spec(
                    format!("{what} {name} {p}"),
                    "expected 0 to 1",
                ));
            }
        }
        let limit = Duration::from_secs(10);
        if self.delay > limit || self.jitter > limit {
            return Err(LabError::spec(what, "delay and jitter are limited to 10s"));
        }
        if self.jitter > self.delay {
            return Err(LabError::spec(what, "jitter must not exceed the delay"));
        }
        if self.reorder > 0.0 && self.delay.is_zero() {
            return Err(LabError::spec(
                what,
                "reordering needs a delay to reorder against",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_units() {
        assert_eq!("2mbit".parse::<Rate>().unwrap(), Rate(2_000_000));
        assert_eq!("500kbit".parse::<Rate>().unwrap(), Rate(500_000));
        assert_eq!("64000".parse::<Rate>().unwrap(), Rate(64_000));
        assert_eq!(Rate(2_000_000).to_string(), "2000000bit");
        for bad in ["", "mbit", "2mb", "10", "-1mbit"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn probabilities_parse_as_percent_or_fraction() {
        assert_eq!(parse_probability("2%").unwrap(), 0.02);
        assert_eq!(parse_probability("0.5").unwrap(), 0.5);
        for bad in ["101%", "-1", "x", "1.5"] {
            assert!(parse_probability(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_refuses_reordering_without_delay_and_big_jitter() {
        let ms = Duration::from_millis;
        assert!(Impairment::none().reorder(0.1).validate("x").is_err());
        assert!(Impairment::none()
            .delay(ms(5))
            .jitter(ms(6))
            .validate("x")
            .is_err());
        assert!(Impairment::none().loss(1.5).validate("x").is_err());
        let ok = Impairment::none().delay(ms(5)).jitter(ms(5)).reorder(0.1);
        assert!(ok.validate("x").is_ok());
        assert!(ok.has_packet_effects());
        assert!(!Impairment::none().rate(Rate(8_000)).has_packet_effects());
    }
}
