//! A fixed-size bitset indexed by target position: one bit per target, so a sweep of a million
//! addresses keeps its per-round state in 128 KiB instead of a map of addresses.

/// One bit per target, all clear at first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitset {
    words: Vec<u64>,
    len: u64,
    ones: u64,
}

impl Bitset {
    /// `len` clear bits.
    pub fn new(len: u64) -> Self {
        let words = usize::try_from(len.div_ceil(64)).unwrap_or(usize::MAX);
        Bitset {
            words: vec![0; words],
            len,
            ones: 0,
        }
    }

    /// How many bits there are.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the set holds no bits at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many bits are set.
    pub fn count(&self) -> u64 {
        self.ones
    }

    /// Whether bit `index` is set; out-of-range bits read as clear.
    pub fn get(&self, index: u64) -> bool {
        let (word, bit) = split(index);
        self.words
            .get(word)
            .is_some_and(|w| w & (1 << bit) != 0 && index < self.len)
    }

    /// Sets bit `index`; returns whether it was clear before. Out-of-range bits are ignored.
    pub fn set(&mut self, index: u64) -> bool {
        if index >= self.len {
            return false;
        }
        let (word, bit) = split(index);
        let Some(w) = self.words.get_mut(word) else {
            return false;
        };
        let was_clear = *w & (1 << bit) == 0;
        *w |= 1 << bit;
        self.ones += u64::from(was_clear);
        was_clear
    }
}

fn split(index: u64) -> (usize, u32) {
    let word = usize::try_from(index / 64).unwrap_or(usize::MAX);
    (word, (index % 64) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_counts_and_ignores_out_of_range() {
        let mut bits = Bitset::new(130);
        assert!(!bits.get(0) && !bits.get(129));
        assert!(bits.set(0));
        assert!(bits.set(129));
        assert!(!bits.set(129), "second set reports it was already set");
        assert!(!bits.set(130), "out of range");
        assert!(bits.get(0) && bits.get(129) && !bits.get(64) && !bits.get(130));
        assert_eq!(bits.count(), 2);
        assert_eq!(bits.len(), 130);
    }

    #[test]
    fn a_million_bits_take_128_kib() {
        let bits = Bitset::new(1 << 20);
        assert_eq!(bits.words.len() * 8, 128 * 1024);
    }
}
