//! Adaptive probability maps (secondary estimation): refine a probability given a small context
//! by interpolating between 33 learned points along the stretched probability.

use super::logistic::squash;

/// One APM over `contexts` contexts.
pub(crate) struct Apm {
    t: Vec<u16>,
    rate: i32,
}

impl Apm {
    /// An APM that starts as the identity and adapts by 1 / 2^`rate` of the error.
    pub(crate) fn new(contexts: usize, rate: i32) -> Apm {
        let mut t = vec![0u16; contexts * 33];
        for (i, slot) in t.iter_mut().enumerate() {
            *slot = (squash(((i % 33) as i32 - 16) * 128) * 16) as u16;
        }
        Apm { t, rate }
    }

    /// Returns the refined 12-bit probability of the stretched `st` and the table slot to
    /// update.
    pub(crate) fn predict(&self, st: i32, context: usize) -> (i32, u32) {
        let pos = (st.clamp(-2047, 2047) + 2048) as usize; // 1..=4095
        let lo = context * 33 + (pos >> 7);
        let w = (pos & 127) as u32;
        let p = (u32::from(self.t[lo]) * (128 - w) + u32::from(self.t[lo + 1]) * w) >> 11;
        let nearest = if w < 64 { lo } else { lo + 1 };
        ((p as i32).clamp(1, 4095), nearest as u32)
    }

    /// Learns the bit that came at a slot [`predict`](Self::predict) returned.
    pub(crate) fn update(&mut self, slot: u32, bit: u32) {
        let target: i32 = if bit == 1 { 65535 } else { 0 };
        let v = &mut self.t[slot as usize];
        let cur = i32::from(*v);
        *v = (cur + ((target - cur) >> self.rate)).clamp(0, 65535) as u16;
    }
}
