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

/// Every row's text so far and an index of where each context was last seen.
pub(crate) struct MatchModel {
    texts: Vec<Vec<u8>>,
    index: KeyMap<(u32, u32)>,
    min_len: usize,
}

impl MatchModel {
    /// A model for `rows` rows that matches contexts of `min_len` (1 to 7) bytes.
    pub(crate) fn new(rows: usize, min_len: usize) -> MatchModel {
        assert!((1..8).contains(&min_len), "match length {min_len}");
        MatchModel {
            texts: vec![Vec::new(); rows],
            index: KeyMap::default(),
            min_len,
        }
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
            if m.at.is_none() {
                if let Some(&found) = self.index.get(&key) {
                    m.at = Some(found);
                    m.len = 0;
                }
            }
            self.index.insert(key, here);
        }
    }
}
