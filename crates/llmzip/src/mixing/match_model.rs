//! The match model: finds the last place the current context (the last `min_len` bytes) occurred,
//! in any row of the block, and predicts the byte that followed it there, for as long as the
//! match keeps holding. Long repeats (quoted passages, boilerplate) cost almost nothing with it.
//!
//! The same model serves token-level models (`smollm2-cm2`): it is generic over the symbol, bytes
//! by default, and a token model hashes its contexts with [`MatchModel::key_with`].

use super::context::{mix64, KeyMap};

/// Per-row state: where the match points (row, position of the byte that followed the context)
/// and for how many bytes it has held.
#[derive(Clone, Default)]
pub(crate) struct Match {
    at: Option<(u32, u32)>,
    /// Bytes predicted correctly since the match was found.
    pub(crate) len: u32,
}

/// Where each context was last seen: (row, position of the byte that followed it).
enum Index {
    /// One entry per distinct context: grows with the block (`gru-cm`).
    Growing(KeyMap<(u32, u32)>),
    /// 2^bits entries of `row << 32 | position` (0: empty), addressed by the key's high bits;
    /// a context that hashes where another was seen takes its place (`gru-cm2`).
    Fixed(Vec<u64>, u32),
}

/// One row's text: all of it, or (with a ring) only its last 2^k bytes, so that memory does not
/// grow with the block.
#[derive(Clone)]
struct Text<S> {
    symbols: Vec<S>,
    /// Bytes pushed so far.
    len: u32,
    /// `Some(2^k - 1)`: only the last 2^k bytes are kept.
    ring: Option<u32>,
}

impl<S> Default for Text<S> {
    fn default() -> Self {
        Text {
            symbols: Vec::new(),
            len: 0,
            ring: None,
        }
    }
}

impl<S: Copy> Text<S> {
    /// The symbol at `pos`, if the text has it (still).
    fn get(&self, pos: u32) -> Option<S> {
        if pos >= self.len {
            return None;
        }
        match self.ring {
            None => self.symbols.get(pos as usize).copied(),
            Some(mask) => (self.len - pos <= mask + 1).then(|| self.symbols[(pos & mask) as usize]),
        }
    }

    fn push(&mut self, symbol: S) {
        match self.ring {
            Some(mask) if self.len > mask => self.symbols[(self.len & mask) as usize] = symbol,
            _ => self.symbols.push(symbol),
        }
        self.len += 1;
    }
}

/// Bytes of memory the index of [`MatchModel::bounded`] takes at most.
pub(crate) fn index_bytes(bits: u32) -> u64 {
    8 << bits
}

/// Every row's text so far and an index of where each context was last seen.
pub(crate) struct MatchModel<S = u8> {
    texts: Vec<Text<S>>,
    index: Index,
    min_len: usize,
}

impl<S: Copy + PartialEq> MatchModel<S> {
    /// A model for `rows` rows that matches contexts of `min_len` (1 to 7) symbols.
    pub(crate) fn new(rows: usize, min_len: usize) -> MatchModel<S> {
        assert!((1..8).contains(&min_len), "match length {min_len}");
        MatchModel {
            texts: vec![Text::default(); rows],
            index: Index::Growing(KeyMap::default()),
            min_len,
        }
    }

    /// Like [`new`](Self::new), with an index of 2^`bits` entries whatever the input.
    pub(crate) fn bounded(rows: usize, min_len: usize, bits: u32) -> MatchModel<S> {
        MatchModel {
            index: Index::Fixed(vec![0; 1 << bits], bits),
            ..MatchModel::new(rows, min_len)
        }
    }

    /// Like [`bounded`](Self::bounded), keeping only the last bytes of each row: the largest
    /// power of two that lets all rows together hold at most `history` bytes (at least 4 KiB
    /// each). A match that points further back than that ends.
    pub(crate) fn bounded_history(
        rows: usize,
        min_len: usize,
        bits: u32,
        history: u64,
    ) -> MatchModel<S> {
        let per_row = (history / rows.max(1) as u64).max(4096);
        let keep = 1u64 << per_row.ilog2().min(31);
        let text = Text {
            ring: Some((keep - 1) as u32),
            ..Text::default()
        };
        MatchModel {
            texts: vec![text; rows],
            ..MatchModel::bounded(rows, min_len, bits)
        }
    }

    /// The symbol the match predicts next, if there is a match.
    pub(crate) fn expected(&self, m: &Match) -> Option<S> {
        m.at.and_then(|(r, p)| self.texts[r as usize].get(p))
    }

    /// Learns `symbol`, which came next in row `row`: follows or drops the match, then indexes
    /// the context ending here under `key` (`None`: too short to index), and starts a match from
    /// where that context was last seen if there was none.
    pub(crate) fn learn_keyed(&mut self, row: usize, m: &mut Match, key: Option<u64>, symbol: S) {
        if let Some((r, p)) = m.at {
            if self.texts[r as usize].get(p) == Some(symbol) {
                m.at = Some((r, p + 1));
                m.len += 1;
            } else {
                m.at = None;
                m.len = 0;
            }
        }
        self.texts[row].push(symbol);
        let Some(key) = key else { return };
        let here = (row as u32, self.texts[row].len);
        let found = match &mut self.index {
            Index::Growing(map) => map.insert(key, here),
            Index::Fixed(slots, bits) => {
                let slot = &mut slots[(key >> (64 - *bits)) as usize];
                let old = *slot;
                *slot = (u64::from(here.0) << 32) | u64::from(here.1);
                (old != 0).then_some(((old >> 32) as u32, old as u32))
            }
        };
        if m.at.is_none() {
            if let Some(found) = found {
                m.at = Some(found);
                m.len = 0;
            }
        }
    }
}

impl MatchModel<u32> {
    /// The key of the context that `token` ends in row `row` (its last `min_len − 1` tokens and
    /// `token`), or `None` while the row is shorter than that: what
    /// [`learn_keyed`](Self::learn_keyed) takes for token models.
    pub(crate) fn key_with(&self, row: usize, token: u32) -> Option<u64> {
        let text = &self.texts[row];
        let before = self.min_len as u32 - 1;
        if text.len < before {
            return None;
        }
        let mut h = 0x70C3_u64 << 48;
        for pos in text.len - before..text.len {
            h = mix64(h ^ u64::from(text.get(pos)?));
        }
        Some(mix64(h ^ u64::from(token)))
    }
}

impl MatchModel {
    /// Learns `byte`, which followed `history` (the row's last `history_len` ≤ 8 bytes, newest
    /// in the low byte) in row `row`: follows or drops the match, then indexes the context
    /// ending here (and starts a match from it if there was none).
    pub(crate) fn learn(
        &mut self,
        row: usize,
        m: &mut Match,
        history: u64,
        history_len: usize,
        byte: u8,
    ) {
        let key = (history_len + 1 >= self.min_len).then(|| {
            let h = (history << 8) | u64::from(byte);
            mix64((h & ((1u64 << (8 * self.min_len)) - 1)) ^ (0xC3 << 56))
        });
        self.learn_keyed(row, m, key, byte);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `text` to row 0, returning what the model expected before each byte.
    fn expectations(model: &mut MatchModel, text: &[u8]) -> Vec<Option<u8>> {
        let (mut m, mut history, mut len) = (Match::default(), 0u64, 0usize);
        let mut seen = Vec::new();
        for &b in text {
            seen.push(model.expected(&m));
            model.learn(0, &mut m, history, len, b);
            history = (history << 8) | u64::from(b);
            len = (len + 1).min(8);
        }
        seen
    }

    /// Tokens: a context seen in another row predicts what followed it there; one that differs
    /// in any of its tokens does not.
    #[test]
    fn token_contexts_match_across_rows() {
        fn feed(model: &mut MatchModel<u32>, m: &mut Match, row: usize, tokens: &[u32]) {
            for &t in tokens {
                let key = model.key_with(row, t);
                model.learn_keyed(row, m, key, t);
            }
        }
        let mut model: MatchModel<u32> = MatchModel::bounded(3, 3, 16);
        let mut m = [Match::default(), Match::default(), Match::default()];
        feed(&mut model, &mut m[0], 0, &[40_000, 7, 123, 65_541, 9]);
        feed(&mut model, &mut m[1], 1, &[1, 7, 123, 65_541]);
        assert_eq!(model.expected(&m[1]), Some(9));
        // The match holds while the row goes on as the other did.
        feed(&mut model, &mut m[1], 1, &[9]);
        assert_eq!(m[1].len, 1);
        feed(&mut model, &mut m[2], 2, &[7, 124, 65_541]);
        assert_eq!(model.expected(&m[2]), None);
    }

    /// A repeat is predicted from the whole text, or from a ring only while it is near enough.
    #[test]
    fn a_ring_forgets_what_lies_too_far_back() {
        // Pseudo-random bytes: no repeats of their own.
        let mut x = 1u32;
        let phrase: Vec<u8> = (0..5000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (x >> 16) as u8
            })
            .collect();
        let mut text = phrase.clone();
        text.extend(std::iter::repeat_n(b'-', 5000));
        text.extend(&phrase[..100]);
        let tail = |seen: Vec<Option<u8>>| seen[seen.len() - 50..].to_vec();
        let whole = tail(expectations(&mut MatchModel::bounded(1, 7, 16), &text));
        assert!(whole
            .iter()
            .zip(&phrase[50..100])
            .all(|(e, &b)| *e == Some(b)));
        // 4 KiB of history: the phrase lies 10,000 bytes back.
        let mut ring = MatchModel::bounded_history(1, 7, 16, 4096);
        assert_eq!(ring.texts[0].ring, Some(4095));
        assert!(tail(expectations(&mut ring, &text))
            .iter()
            .all(Option::is_none));
        // Near repeats still match through the ring, and its memory stays at 4 KiB.
        let near: Vec<u8> = phrase[..3000]
            .iter()
            .chain(&phrase[..3000])
            .copied()
            .collect();
        let mut ring = MatchModel::bounded_history(1, 7, 16, 4096);
        let seen = expectations(&mut ring, &near);
        let bad: Vec<_> = (3100..near.len())
            .filter(|&i| seen[i] != Some(near[i]))
            .collect();
        assert!(
            bad.is_empty(),
            "{:?} {:?}",
            &bad[..bad.len().min(5)],
            bad.first().map(|&i| (seen[i], near[i]))
        );
        assert_eq!(ring.texts[0].symbols.len(), 4096);
        // Rows share the budget: 4 rows of 1 MiB in 4 MiB.
        let ring: MatchModel = MatchModel::bounded_history(4, 7, 16, 4 << 20);
        assert_eq!(ring.texts[3].ring, Some((1 << 20) - 1));
    }
}
