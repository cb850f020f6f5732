//! Durations as users write them: `250ms`, `2s`, `1m`, `1h`, `1h30m`, or a bare number of
//! seconds (`0.5` is 500 ms).

use std::time::Duration;

/// A duration failed to parse: `input: why`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {kind}", crate::text::clipped(.input))]
pub struct DurationError {
    /// The text that failed, as given.
    pub input: String,
    /// What is wrong with it.
    pub kind: DurationErrorKind,
}

/// What is wrong with a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DurationErrorKind {
    /// Neither a number of seconds nor a number with a unit.
    #[error("invalid duration, expected e.g. 250ms, 2s, 1m, 1h or a number of seconds like 0.5")]
    Invalid,
    /// Longer than [`MAX_DURATION`].
    #[error("duration is too long")]
    TooLong,
    /// Zero where only a positive duration makes sense.
    #[error("must be longer than zero")]
    Zero,
}

impl DurationError {
    fn new(input: &str, kind: DurationErrorKind) -> DurationError {
        DurationError {
            input: input.to_string(),
            kind,
        }
    }
}

/// The longest duration accepted anywhere (about 31 years); keeps arithmetic on deadlines safe.
pub const MAX_DURATION: Duration = Duration::from_secs(1_000_000_000);

/// Parses a duration: a bare (possibly fractional) number of seconds, or a number with a unit
/// (`ms`, `s`, `m`, `h`, and the other units `humantime` knows, combinable as `1m30s`).
///
/// ```
/// use std::time::Duration;
/// assert_eq!(netkit::parse_duration("250ms").unwrap(), Duration::from_millis(250));
/// assert_eq!(netkit::parse_duration("0.5").unwrap(), Duration::from_millis(500));
/// assert!(netkit::parse_duration("-1").is_err());
/// ```
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let text = input.trim();
    let parsed = if looks_like_bare_number(text) {
        bare_seconds(text)
    } else {
        fractional_with_unit(text)
            .or_else(|| humantime::parse_duration(text).ok())
            .ok_or(())
    };
    match parsed {
        Ok(d) if d <= MAX_DURATION => Ok(d),
        Ok(_) => Err(DurationError::new(input, DurationErrorKind::TooLong)),
        Err(()) => Err(DurationError::new(input, DurationErrorKind::Invalid)),
    }
}

/// Parses a duration that must be longer than zero (a timeout, an interval).
pub fn parse_positive_duration(input: &str) -> Result<Duration, DurationError> {
    match parse_duration(input)? {
        d if d.is_zero() => Err(DurationError::new(input, DurationErrorKind::Zero)),
        d => Ok(d),
    }
}

fn looks_like_bare_number(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '-' || c == '+')
}

fn bare_seconds(text: &str) -> Result<Duration, ()> {
    let secs: f64 = text.parse().map_err(|_| ())?;
    Duration::try_from_secs_f64(secs).map_err(|_| ())
}

/// `1.5s`, `0.25m`: a fractional number with one of the common units.
fn fractional_with_unit(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    if !number.contains('.') {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(value * scale).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_the_documented_forms() {
        let cases = [
            ("250ms", 250),
            ("2s", 2000),
            ("1m", 60_000),
            ("1h", 3_600_000),
            ("1m30s", 90_000),
            ("0.5", 500),
            ("3", 3000),
            ("1.5s", 1500),
            ("0", 0),
            (" 2s ", 2000),
        ];
        for (text, ms) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_garbage_with_the_input_in_the_message() {
        for text in [
            "",
            "-1",
            "abc",
            "5 parsecs",
            "1.2.3",
            "nan",
            "inf",
            "1e400",
            "10x",
        ] {
            let err = parse_duration(text).expect_err(text);
            assert_eq!(err.input, text);
            assert_eq!(err.kind, DurationErrorKind::Invalid, "{text}");
        }
    }

    #[test]
    fn rejects_absurdly_long() {
        let err = parse_duration("99999999999").unwrap_err();
        assert_eq!(err.kind, DurationErrorKind::TooLong);
        assert_eq!(err.to_string(), "99999999999: duration is too long");
    }

    #[test]
    fn positive_durations_refuse_zero() {
        assert_eq!(parse_positive_duration("1s"), Ok(Duration::from_secs(1)));
        let err = parse_positive_duration("0ms").unwrap_err();
        assert_eq!(err.kind, DurationErrorKind::Zero);
        assert_eq!(err.to_string(), "0ms: must be longer than zero");
    }

    proptest! {
        #[test]
        fn millis_round_trip(ms in 0u64..10_000_000) {
            prop_assert_eq!(parse_duration(&format!("{ms}ms")), Ok(Duration::from_millis(ms)));
        }

        #[test]
        fn never_panics(text in ".{0,20}") {
            let _ = parse_duration(&text);
        }
    }
}
