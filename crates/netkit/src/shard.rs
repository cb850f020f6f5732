//! The order targets are probed in and the share of them one run takes: `--randomize`,
//! `--seed` and `--shard K/N` (issue 16).
//!
//! A seeded pseudo-random permutation of `0..len` spreads the probes across hosts and
//! subnets, the way zmap walks a cyclic group; here it is a keyed Feistel network on the
//! smallest power-of-two domain that holds `len`, with cycle walking back into `0..len`
//! (an index that lands outside is permuted again; fewer than two steps on average). Unlike a
//! cyclic group it is random-access: position `i` maps to its target in a few hash rounds,
//! so the engines keep indexing targets by position. Shard `K` of `N` takes the positions
//! `K-1, K-1+N, K-1+2N, ...` of that order: the `N` shards are disjoint, their union is the
//! whole, and each one is spread over the whole space (not a contiguous block).

use crate::error::ParseError;

/// Feistel rounds: four make a keyed permutation indistinguishable from random for this use.
const ROUNDS: u64 = 4;

/// Which share of the targets a run probes, and in which order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Arrangement {
    /// `Some((k, n))`: shard `k` (1-based) of `n`.
    pub shard: Option<(u64, u64)>,
    /// The permutation's key; the same seed gives the same order on every machine.
    pub seed: u64,
    /// Whether the order is shuffled (`--randomize`, or implied by `--seed`).
    pub shuffle: bool,
}

impl Arrangement {
    /// Whether the targets stay as given (no shard, no shuffle).
    pub fn is_identity(&self) -> bool {
        self.shard.is_none() && !self.shuffle
    }
}

/// A bijection of `0..len` (the identity when not shuffled), restricted to one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    len: u128,
    bits: u32,
    seed: u64,
    shuffle: bool,
    first: u128,
    step: u128,
}

impl Order {
    /// The order of `len` positions under `arrangement`.
    pub fn new(len: u128, arrangement: &Arrangement) -> Self {
        let (k, n) = arrangement.shard.unwrap_or((1, 1));
        let bits = (u128::BITS - len.saturating_sub(1).leading_zeros()).max(2);
        Order {
            len,
            bits: bits + bits % 2,
            seed: arrangement.seed,
            shuffle: arrangement.shuffle,
            first: u128::from(k - 1),
            step: u128::from(n),
        }
    }

    /// How many positions this shard holds.
    pub fn len(&self) -> u128 {
        match self.len.checked_sub(self.first) {
            Some(rest) if rest > 0 => (rest - 1) / self.step + 1,
            _ => 0,
        }
    }

    /// Whether the shard is empty (more shards than targets).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The position in the original list of the shard's `i`-th target.
    pub fn nth(&self, i: u128) -> Option<u128> {
        let global = self.first.checked_add(i.checked_mul(self.step)?)?;
        if global >= self.len {
            return None;
        }
        Some(match self.shuffle {
            true => self.permute(global),
            false => global,
        })
    }

    /// Cycle walking: the Feistel network permutes `0..2^bits`; values past `len` go round
    /// again until they land inside (the walk ends: the cycle through `x` contains `x`).
    fn permute(&self, x: u128) -> u128 {
        let mut y = self.feistel(x);
        while y >= self.len {
            y = self.feistel(y);
        }
        y
    }

    fn feistel(&self, x: u128) -> u128 {
        let half = self.bits / 2;
        let mask = (1u128 << half) - 1;
        let (mut left, mut right) = (x >> half, x & mask);
        for round in 0..ROUNDS {
            let mixed = left ^ (round_key(right, self.seed, round) & mask);
            left = right;
            right = mixed;
        }
        (left << half) | right
    }
}

/// The round function: a keyed mix of one half (splitmix64's finaliser on each 64-bit word).
fn round_key(half: u128, seed: u64, round: u64) -> u128 {
    let key = seed ^ round.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let low = mix(half as u64 ^ key);
    let high = mix((half >> 64) as u64 ^ key.rotate_left(32) ^ low);
    (u128::from(high) << 64) | u128::from(low)
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Parses `--shard K/N` (1 ≤ K ≤ N).
pub fn parse_shard(text: &str) -> Result<(u64, u64), ParseError> {
    let why = "a shard is K/N, 1 <= K <= N (e.g. 2/8)";
    let bad = || ParseError::new(text, why);
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let k: u64 = k.trim().parse().map_err(|_| bad())?;
    let n: u64 = n.trim().parse().map_err(|_| bad())?;
    match (1..=n).contains(&k) {
        true => Ok((k, n)),
        false => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn shuffled(seed: u64, shard: Option<(u64, u64)>) -> Arrangement {
        Arrangement {
            shard,
            seed,
            shuffle: true,
        }
    }

    fn positions(len: u128, arrangement: &Arrangement) -> Vec<u128> {
        let order = Order::new(len, arrangement);
        (0..order.len()).map(|i| order.nth(i).unwrap()).collect()
    }

    #[test]
    fn a_shuffle_is_a_permutation_of_every_length() {
        for len in [1u128, 2, 3, 5, 16, 17, 255, 256, 257, 1000, 4099] {
            let got = positions(len, &shuffled(7, None));
            let set: BTreeSet<u128> = got.iter().copied().collect();
            assert_eq!(set, (0..len).collect(), "len {len}");
            assert_eq!(got.len() as u128, len);
        }
    }

    #[test]
    fn shards_are_disjoint_and_their_union_is_the_whole() {
        for (len, n) in [(1000u128, 3u64), (10, 4), (3, 8), (65536, 7)] {
            for shuffle in [false, true] {
                let mut all = Vec::new();
                for k in 1..=n {
                    let arrangement = Arrangement {
                        shard: Some((k, n)),
                        seed: 42,
                        shuffle,
                    };
                    all.extend(positions(len, &arrangement));
                }
                let set: BTreeSet<u128> = all.iter().copied().collect();
                assert_eq!(all.len(), set.len(), "overlap: len {len}, {n} shards");
                assert_eq!(set, (0..len).collect(), "len {len}, {n} shards");
            }
        }
    }

    #[test]
    fn the_seed_decides_the_order_and_the_same_seed_repeats_it() {
        let a = positions(4096, &shuffled(1, None));
        assert_eq!(a, positions(4096, &shuffled(1, None)));
        assert_ne!(a, positions(4096, &shuffled(2, None)));
        assert_ne!(a, (0..4096).collect::<Vec<_>>());
    }

    #[test]
    fn an_unshuffled_shard_strides_through_the_list() {
        let arrangement = Arrangement {
            shard: Some((2, 3)),
            ..Arrangement::default()
        };
        assert_eq!(positions(8, &arrangement), vec![1, 4, 7]);
        let order = Order::new(
            2,
            &Arrangement {
                shard: Some((3, 3)),
                ..arrangement
            },
        );
        assert!(order.is_empty());
    }

    #[test]
    fn huge_spaces_are_permuted_without_overflow() {
        let order = Order::new(u128::MAX, &shuffled(9, Some((5, 1000))));
        let first = order.nth(0).unwrap();
        assert!(first < u128::MAX);
        let order = Order::new(1u128 << 64, &shuffled(9, None));
        assert!(order.nth((1u128 << 64) - 1).unwrap() < 1u128 << 64);
    }

    #[test]
    fn shard_text_is_k_of_n() {
        assert_eq!(parse_shard("2/8").unwrap(), (2, 8));
        assert_eq!(parse_shard("1/1").unwrap(), (1, 1));
        for bad in ["0/8", "9/8", "2", "a/b", "2/0", "-1/3", ""] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
    }
}
