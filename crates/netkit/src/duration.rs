//! Durations as users write them: `250ms`, `2s`, `1m`, `1h`, `1h30m`, or a bare number of
//! seconds (`0.5` is 500 ms).

use std::time::Duration;

use crate::error::ParseError;

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
pub fn parse_duration(input: &str) -> Result<Duration, ParseError> {
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
        Ok(_) => Err(ParseError::new(input, "duration is too long")),
        Err(()) => Err(ParseError::new(
            input,
            "invalid duration, expected e.g. 250ms, 2s, 1m, 1h or a number of seconds like 0.5",
        )),
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
        }
    }

    #[test]
    fn rejects_absurdly_long() {
        assert!(parse_duration("99999999999").is_err());
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
