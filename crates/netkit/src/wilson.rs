//! How large a loss rate may be, for all a count of answered and lost probes can tell: the
//! upper end of a one-sided 95% Wilson score interval. The sweep counts its re-probes and the
//! scan its retransmissions against it rather than against the count itself, which a few
//! lucky probes put far too low.

/// The z of a one-sided 95% interval.
const Z: f64 = 1.645;

/// The upper end of the one-sided 95% Wilson score interval of a share `lost` of
/// `ok + lost` (1 when nothing was counted).
pub fn upper(ok: u64, lost: u64) -> f64 {
    upper_at(ok, lost, Z)
}

/// The upper end of the one-sided Wilson score interval at `z` (1.645: 95%, 2.326: 99%) of a
/// share `lost` of `ok + lost` (1 when nothing was counted).
pub fn upper_at(ok: u64, lost: u64, z: f64) -> f64 {
    let n = (ok + lost) as f64;
    if n == 0.0 {
        return 1.0;
    }
    let p = lost as f64 / n;
    let z2 = z * z;
    let centre = p + z2 / (2.0 * n);
    let spread = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre + spread) / (1.0 + z2 / n)).min(1.0)
}

/// The lower end of the same interval: how small the share `lost` of `ok + lost` may be
/// (0 when nothing was counted).
pub fn lower(ok: u64, lost: u64) -> f64 {
    1.0 - upper(lost, ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_above_the_count_and_tightens_with_more_counted() {
        // 8 of 8 answered could still be a link losing a quarter of the round trips.
        assert!((upper(8, 0) - 0.253).abs() < 0.01, "{}", upper(8, 0));
        // 6 of 32 lost: the count says 19%, the bound about a third.
        let wide = upper(26, 6);
        assert!((0.30..0.35).contains(&wide), "{wide}");
        let narrow = upper(810, 190);
        assert!((0.19..0.22).contains(&narrow), "{narrow}");
        assert!(upper(0, 8) <= 1.0);
        assert_eq!(upper(0, 0), 1.0);
        // 4 of 4 lost: most probes are lost, for all four can tell.
        assert!((lower(0, 4) - 0.596).abs() < 0.01, "{}", lower(0, 4));
        assert!(lower(26, 6) < 6.0 / 32.0 && lower(26, 6) > 0.05);
        assert_eq!(lower(0, 0), 0.0);
    }
}
