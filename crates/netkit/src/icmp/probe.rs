//! The payload of a netkit echo request, which every echo reply returns unchanged: a per-engine
//! cookie, the target's index and the send time. A reply therefore says by itself which probe
//! it answers and how long it took, with no per-probe table to look up; replies without the
//! cookie (other programs' pings, corrupted data) are not ours.
//!
//! Layout (big-endian): `cookie: u32`, `index: u32`, `sent_ns: u64` (nanoseconds on the
//! engine's monotonic clock), then the engine's filler or pattern up to the payload size.

/// Bytes the probe fields take; payloads must be at least this long.
pub const PROBE_LEN: usize = 16;

/// What a probe carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Random per engine, so that replies to other processes are ignored.
    pub cookie: u32,
    /// Which target the probe went to, as the caller numbered them.
    pub index: u32,
    /// Send time in nanoseconds since the engine's epoch.
    pub sent_ns: u64,
}

impl Probe {
    /// Writes the probe over the first [`PROBE_LEN`] bytes of `payload` (which must be that
    /// long), leaving the rest as it is.
    pub fn write(&self, payload: &mut [u8]) {
        payload[0..4].copy_from_slice(&self.cookie.to_be_bytes());
        payload[4..8].copy_from_slice(&self.index.to_be_bytes());
        payload[8..16].copy_from_slice(&self.sent_ns.to_be_bytes());
    }

    /// Reads a probe back from a reply's data; `None` when it is too short.
    pub fn read(data: &[u8]) -> Option<Probe> {
        let field = |range: std::ops::Range<usize>| data.get(range);
        Some(Probe {
            cookie: u32::from_be_bytes(field(0..4)?.try_into().ok()?),
            index: u32::from_be_bytes(field(4..8)?.try_into().ok()?),
            sent_ns: u64::from_be_bytes(field(8..16)?.try_into().ok()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_leaves_the_rest() {
        let probe = Probe {
            cookie: 0xdead_beef,
            index: 7,
            sent_ns: 0x0102_0304_0506_0708,
        };
        let mut payload = [0xaau8; 20];
        probe.write(&mut payload);
        assert_eq!(
            payload,
            [0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 7, 1, 2, 3, 4, 5, 6, 7, 8, 0xaa, 0xaa, 0xaa, 0xaa]
        );
        assert_eq!(Probe::read(&payload), Some(probe));
        assert_eq!(Probe::read(&payload[..15]), None);
    }
}
