//! State maps: an adaptive probability for each count state of a context.
//!
//! A context's counts ("3 zeros, 1 one, and it has only ever seen one byte") are quantized into a
//! state; the map learns how often the bit is 1 in that state, over the whole file. It learns,
//! for example, that a context that has seen one byte twice is right far more often than 2/3.

/// Count states per context: 16 × 16 count levels, times "has only one successor byte".
pub(crate) const STATES: usize = 2 * 16 * 16;

/// Quantizes a count into 16 levels, exact up to 7, then roughly logarithmic.
pub(crate) fn count_level(n: u32) -> usize {
    match n {
        0..=7 => n as usize,
        8..=11 => 8,
        12..=15 => 9,
        16..=23 => 10,
        24..=31 => 11,
        32..=47 => 12,
        48..=63 => 13,
        64..=95 => 14,
        _ => 15,
    }
}

/// The state of a pair of counts: `single` (the context has one successor byte), then the
/// levels of the zero and one counts.
pub(crate) fn count_state(single: bool, n0: u32, n1: u32) -> usize {
    (usize::from(single) << 8) | (count_level(n0) << 4) | count_level(n1)
}

/// An adaptive map from a count state to a probability (16-bit), learning at rate 1/(n + 1.5)
/// where `n` counts the state's updates up to a limit.
#[derive(Clone)]
pub(crate) struct StateMap {
    pub(crate) p: Vec<u16>,
    n: Vec<u16>,
}

impl StateMap {
    /// Every state starts at the count ratio of its levels (their lower ends).
    pub(crate) fn new() -> StateMap {
        let mut p = vec![0u16; STATES];
        for (s, slot) in p.iter_mut().enumerate() {
            let (n0, n1) = ((s >> 4) & 15, s & 15);
            *slot = (((n1 as u32 * 2 + 1) << 16) / (2 * (n0 + n1) as u32 + 2)).min(65535) as u16;
        }
        StateMap {
            p,
            n: vec![0; STATES],
        }
    }

    /// Moves `state`'s probability towards `bit` by `recip[n]` / 65536 ([`rates`]); `n` stops
    /// growing at `limit`.
    pub(crate) fn update(&mut self, state: usize, bit: u32, recip: &[u32], limit: u32) {
        let n = u32::from(self.n[state]);
        let p = i64::from(self.p[state]);
        let target = if bit == 1 { 65535 } else { 0 };
        let p = p + (((target - p) * i64::from(recip[n as usize])) >> 16);
        self.p[state] = p.clamp(0, 65535) as u16;
        if n < limit {
            self.n[state] = (n + 1) as u16;
        }
    }
}

/// 65536 / (n + 1.5) for n in 0..=limit: the update rates of [`StateMap::update`].
pub(crate) fn rates(limit: u32) -> Vec<u32> {
    (0..=limit)
        .map(|n| (65536.0 * 2.0 / (2.0 * f64::from(n) + 3.0)) as u32)
        .collect()
}
