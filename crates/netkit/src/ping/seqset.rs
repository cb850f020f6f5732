//! Which sequence numbers have been answered, as iputils keeps it: one bit per 16-bit wire
//! sequence number, cleared when the number is sent (again, after a wrap) and set by the first
//! reply; a reply that finds its bit set is a duplicate. The bits grow with the numbers used,
//! so a short ping keeps a few words, and a long one at most 8 KiB.

/// Answered wire sequence numbers.
#[derive(Debug, Clone, Default)]
pub struct SeqSet {
    words: Vec<u64>,
}

impl SeqSet {
    /// Whether `seq` has been answered since it was last sent.
    pub fn contains(&self, seq: u16) -> bool {
        let (word, bit) = Self::place(seq);
        self.words.get(word).is_some_and(|w| w & bit != 0)
    }

    /// Marks `seq` answered; returns whether it already was (a duplicate).
    pub fn insert(&mut self, seq: u16) -> bool {
        let (word, bit) = Self::place(seq);
        if self.words.len() <= word {
            self.words.resize(word + 1, 0);
        }
        let seen = self.words[word] & bit != 0;
        self.words[word] |= bit;
        seen
    }

    /// Forgets `seq` (it is being sent again).
    pub fn remove(&mut self, seq: u16) {
        let (word, bit) = Self::place(seq);
        if let Some(w) = self.words.get_mut(word) {
            *w &= !bit;
        }
    }

    fn place(seq: u16) -> (usize, u64) {
        (usize::from(seq / 64), 1 << (seq % 64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_reply_then_duplicates_until_sent_again() {
        let mut set = SeqSet::default();
        assert!(!set.contains(7));
        assert!(!set.insert(7));
        assert!(set.insert(7));
        assert!(set.contains(7));
        set.remove(7);
        assert!(!set.contains(7));
        assert!(!set.insert(65535));
        assert!(set.contains(65535) && !set.contains(65534));
    }
}
