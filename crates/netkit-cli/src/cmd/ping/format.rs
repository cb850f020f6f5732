//! Numbers as the classic tools print them: iputils' milliseconds from whole microseconds, its
//! reply times (precision by size), C's `%g` for the loss, and fping's `sprint_tm`.

use std::time::Duration;

/// Whole microseconds, truncated, as iputils measures.
fn micros(rtt: Duration) -> i64 {
    i64::try_from(rtt.as_micros()).unwrap_or(i64::MAX)
}

/// `a.bbb` milliseconds from microseconds, as iputils prints its statistics.
pub fn format_ms(us: i64) -> String {
    format!("{}.{:03}", us / 1000, us % 1000)
}

/// A reply's time as iputils prints it: 3 decimals below 1 ms, 2 below 10 ms, 1 below
/// 100 ms, none above (rounded where iputils rounds).
pub fn format_reply_time(rtt: Duration) -> String {
    let t = micros(rtt);
    if t >= 100_000 - 50 {
        format!("{}", (t + 500) / 1000)
    } else if t >= 10_000 - 5 {
        format!("{}.{:01}", (t + 50) / 1000, ((t + 50) % 1000) / 100)
    } else if t >= 1000 {
        format!("{}.{:02}", (t + 5) / 1000, ((t + 5) % 1000) / 10)
    } else {
        format!("{}.{:03}", t / 1000, t % 1000)
    }
}

/// A number as C's `%g` prints it (6 significant digits, no trailing zeros), for the loss.
pub fn format_g(value: f64) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    let digits = 6 - 1 - value.abs().log10().floor() as i32;
    let text = format!("{:.*}", digits.max(0) as usize, value);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// The loss of a summary as iputils prints it: `%g` of the percentage narrowed to a `float`
/// (iputils' `finish` casts it), so 41 requests with 2 replies are `95.1219`, not the
/// double's `95.122`.
pub fn format_loss(loss_pct: f64) -> String {
    format_g(f64::from(loss_pct as f32))
}

/// Milliseconds as fping prints them: 3 decimals below 1 ms, 2 below 10, 1 below 100, none
/// above.
pub fn format_fping_ms(ms: f64) -> String {
    let decimals = match ms {
        ms if ms < 1.0 => 3,
        ms if ms < 10.0 => 2,
        ms if ms < 100.0 => 1,
        _ => 0,
    };
    format!("{ms:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_print_three_decimals() {
        assert_eq!(format_ms(47), "0.047");
        assert_eq!(format_ms(1_234_567), "1234.567");
    }

    #[test]
    fn loss_prints_like_percent_g() {
        assert_eq!(format_g(200.0 / 3.0), "66.6667");
        assert_eq!(format_g(100.0 / 3.0), "33.3333");
        assert_eq!(format_g(50.0), "50");
        assert_eq!(format_g(0.0), "0");
        assert_eq!(format_g(100.0), "100");
        assert_eq!(format_g(100.0 / 7.0), "14.2857");
    }

    #[test]
    fn loss_prints_like_percent_g_of_a_float() {
        // Worked with C's printf("%g", (float)(lost * 100.0 / sent)).
        let loss = |lost: u32, sent: u32| format_loss(f64::from(lost) * 100.0 / f64::from(sent));
        assert_eq!(loss(39, 41), "95.1219");
        assert_eq!(loss(23, 31), "74.1936");
        assert_eq!(loss(5, 52), "9.61539");
        assert_eq!(loss(1, 3), "33.3333");
        assert_eq!(loss(1, 2), "50");
        assert_eq!(loss(0, 5), "0");
        assert_eq!(loss(5, 5), "100");
    }

    #[test]
    fn reply_times_like_iputils() {
        let t = |us| format_reply_time(Duration::from_micros(us));
        assert_eq!(t(45), "0.045");
        assert_eq!(t(999), "0.999");
        assert_eq!(t(1_234), "1.23");
        assert_eq!(t(9_994), "9.99");
        assert_eq!(t(9_995), "10.0");
        assert_eq!(t(12_345), "12.3");
        assert_eq!(t(99_950), "100");
        assert_eq!(t(123_456), "123");
    }

    #[test]
    fn fping_times() {
        assert_eq!(format_fping_ms(0.0361), "0.036");
        assert_eq!(format_fping_ms(1.234), "1.23");
        assert_eq!(format_fping_ms(12.34), "12.3");
        assert_eq!(format_fping_ms(1500.4), "1500");
    }
}
