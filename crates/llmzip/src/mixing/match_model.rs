//! The match model: finds the last place the current context (the last `min_len` bytes) occurred,
//! in any row of the block, and predicts the byte that followed it there, for as long as the
//! match keeps holding. Long repeats (quoted passages, boilerplate) cost almost nothing with it.

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

/// Every row's text so far and an index of where each context was last seen.
pub(crate) struct MatchModel {
    texts: Vec<Vec<u8>>,
    index: Index,
    min_len: usize,
}

impl MatchModel {
    /// A model for `rows` rows that matches contexts of `min_len` (1 to 7) bytes.
    pub(crate) fn new(rows: usize, min_len: usize) -> MatchModel {
        assert!((1..8).contains(&min_len), "match length {min_len}");
        MatchModel {
            texts: vec![Vec::new(); rows],
            index: Index::Growing(KeyMap::default()),
            min_len,
        }
    }

    /// Like [`new`](Self::new), with an index of 2^`bits` entries whatever the input.
    pub(crate) fn bounded(rows: usize, min_len: usize, bits: u32) -> MatchModel {
        MatchModel {
            index: Index::Fixed(vec![0; 1 << bits], bits),
            ..MatchModel::new(rows, min_len)
        }
    }

    /// Bytes of memory the index of [`bounded`](Self::bounded) takes at most.
    pub(crate) fn index_bytes(bits: u32) -> u64 {
        8 << bits
    }

    /// The byte the match predicts next, if there is a match.
    pub(crate) fn expected(&self, m: &Match) -> Option<u8> {
        m.at.and_then(|(r, p)| self.texts[r as usize].get(p as usize).copied())
    }

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
        if let Some((r, p)) = m.at {
            if self.texts[r as usize].get(p as usize) == Some(&byte) {
                m.at = Some((r, p + 1));
                m.len += 1;
            } else {
                m.at = None;
                m.len = 0;
            }
        }
        self.texts[row].push(byte);
        if history_len + 1 >= self.min_len {
            let h = (history << 8) | u64::from(byte);
            let key = mix64((h & ((1u64 << (8 * self.min_len)) - 1)) ^ (0xC3 << 56));
            let here = (row as u32, self.texts[row].len() as u32);
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
}
