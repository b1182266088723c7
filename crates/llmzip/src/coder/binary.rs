//! A binary arithmetic coder with adaptive bit models, for data that is coded one yes/no decision
//! at a time at high speed (the tensor codec: tens of millions of decisions per second).
//!
//! The range coder next to it (constriction, [`super`]) codes whole symbols from a model's
//! distribution; for bits whose probability a small counter learns, a carry-less 32-bit binary
//! coder in the style of lpaq/paq8 is several times faster: one multiply, one compare and at
//! most a byte of output per decision. Everything is integer arithmetic, so both sides agree on
//! every machine.
//!
//! * Probabilities are 16-bit: `p1` is P(bit = 1) in 1/65536 units, clamped to
//!   `[MIN_P, 65536 − MIN_P]` so that no decision costs more than 11 bits and a wrong certainty
//!   cannot make the interval empty.
//! * [`Bit`] learns `p1` with a rate of 1/(n + 1.5) after n updates, floored at 1/`LIMIT`:
//!   quick to settle on a new chunk's statistics, then steady.
//! * The decoder reads zeros past the end of its input; a stream that runs out therefore decodes
//!   into garbage rather than failing, and callers check what they decoded (the tensor codec keeps
//!   a CRC of every chunk).

use super::Padded;

/// Smallest probability either outcome gets, in 1/65536 units (1/2048: at most 11 bits a bit).
pub const MIN_P: u32 = 32;
/// Updates after which a [`Bit`] stops slowing down its learning rate.
pub const LIMIT: u16 = 1023;

/// Learning rates 65536/(n + 1.5) for n = 0..=LIMIT.
const RATES: [u32; LIMIT as usize + 1] = {
    let mut t = [0u32; LIMIT as usize + 1];
    let mut n = 0;
    while n <= LIMIT as usize {
        t[n] = 65536 * 2 / (2 * n as u32 + 3);
        n += 1;
    }
    t
};

/// An adaptive probability of a 1 bit.
#[derive(Debug, Clone, Copy)]
pub struct Bit {
    p1: u16,
    n: u16,
}

impl Default for Bit {
    fn default() -> Self {
        Bit { p1: 32768, n: 0 }
    }
}

impl Bit {
    /// P(1) in 1/65536 units, clamped for coding.
    #[inline]
    pub fn p1(self) -> u32 {
        (self.p1 as u32).clamp(MIN_P, 65536 - MIN_P)
    }

    /// Moves the estimate towards what was seen.
    #[inline]
    pub fn update(&mut self, bit: bool) {
        let p = self.p1 as i64;
        let target = if bit { 65535 } else { 0 };
        let rate = RATES[self.n as usize] as i64;
        self.p1 = (p + (((target - p) * rate) >> 16)) as u16;
        if self.n < LIMIT {
            self.n += 1;
        }
    }
}

/// Encodes decisions into a byte vector.
#[derive(Debug)]
pub struct Encoder {
    low: u32,
    high: u32,
    out: Vec<u8>,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// An empty stream.
    pub fn new() -> Self {
        Encoder {
            low: 0,
            high: u32::MAX,
            out: Vec::new(),
        }
    }

    /// Codes `bit` with probability `p1` (1/65536 units) of a 1; `p1` must come from
    /// [`Bit::p1`] or lie in `[MIN_P, 65536 − MIN_P]`.
    #[inline]
    pub fn encode(&mut self, bit: bool, p1: u32) {
        let mid = self.low + (((self.high - self.low) as u64 * p1 as u64) >> 16) as u32;
        if bit {
            self.high = mid;
        } else {
            self.low = mid + 1;
        }
        while (self.low ^ self.high) & 0xff00_0000 == 0 {
            self.out.push((self.high >> 24) as u8);
            self.low <<= 8;
            self.high = (self.high << 8) | 0xff;
        }
    }

    /// Codes `bit` with `model`'s probability and updates the model.
    #[inline]
    pub fn code(&mut self, bit: bool, model: &mut Bit) {
        self.encode(bit, model.p1());
        model.update(bit);
    }

    /// Codes the low `n` bits of `value`, most significant first, through a binary tree of
    /// models (`tree` has at least `2^n` entries; entry 0 is unused).
    #[inline]
    pub fn code_tree(&mut self, value: u32, n: u32, tree: &mut [Bit]) {
        let mut node = 1usize;
        for i in (0..n).rev() {
            let bit = (value >> i) & 1 != 0;
            self.code(bit, &mut tree[node]);
            node = 2 * node + bit as usize;
        }
    }

    /// Like [`Encoder::code_tree`], with the average of two trees' probabilities (both learn).
    #[inline]
    pub fn code_tree2(&mut self, value: u32, n: u32, a: &mut [Bit], b: &mut [Bit]) {
        let mut node = 1usize;
        for i in (0..n).rev() {
            let bit = (value >> i) & 1 != 0;
            self.encode(bit, (a[node].p1() + 3 * b[node].p1()) / 4);
            a[node].update(bit);
            b[node].update(bit);
            node = 2 * node + bit as usize;
        }
    }

    /// Ends the stream and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        // Four bytes of `low` identify a point inside the final interval.
        self.out.extend_from_slice(&self.low.to_be_bytes());
        self.out
    }
}

/// Decodes what an [`Encoder`] wrote, given the same probabilities in the same order.
#[derive(Debug)]
pub struct Decoder<'a> {
    low: u32,
    high: u32,
    x: u32,
    input: Padded<'a>,
}

impl<'a> Decoder<'a> {
    /// Starts decoding `input`.
    pub fn new(input: &'a [u8]) -> Self {
        let mut d = Decoder {
            low: 0,
            high: u32::MAX,
            x: 0,
            input: Padded::new(input),
        };
        for _ in 0..4 {
            d.x = (d.x << 8) | d.next_byte();
        }
        d
    }

    #[inline]
    fn next_byte(&mut self) -> u32 {
        u32::from(self.input.next_byte())
    }

    /// Decodes one decision coded with probability `p1` of a 1.
    #[inline]
    pub fn decode(&mut self, p1: u32) -> bool {
        let mid = self.low + (((self.high - self.low) as u64 * p1 as u64) >> 16) as u32;
        let bit = self.x <= mid;
        if bit {
            self.high = mid;
        } else {
            self.low = mid + 1;
        }
        while (self.low ^ self.high) & 0xff00_0000 == 0 {
            self.low <<= 8;
            self.high = (self.high << 8) | 0xff;
            self.x = (self.x << 8) | self.next_byte();
        }
        bit
    }

    /// Decodes one decision with `model`'s probability and updates the model.
    #[inline]
    pub fn code(&mut self, model: &mut Bit) -> bool {
        let bit = self.decode(model.p1());
        model.update(bit);
        bit
    }

    /// Decodes an `n`-bit value coded by [`Encoder::code_tree`].
    #[inline]
    pub fn code_tree(&mut self, n: u32, tree: &mut [Bit]) -> u32 {
        let mut node = 1usize;
        for _ in 0..n {
            let bit = self.code(&mut tree[node]);
            node = 2 * node + bit as usize;
        }
        (node - (1 << n)) as u32
    }

    /// Decodes a value coded by [`Encoder::code_tree2`].
    #[inline]
    pub fn code_tree2(&mut self, n: u32, a: &mut [Bit], b: &mut [Bit]) -> u32 {
        let mut node = 1usize;
        for _ in 0..n {
            let bit = self.decode((a[node].p1() + 3 * b[node].p1()) / 4);
            a[node].update(bit);
            b[node].update(bit);
            node = 2 * node + bit as usize;
        }
        (node - (1 << n)) as u32
    }

    /// Bytes read past the end of the input (zeros were decoded from them). A stream the encoder
    /// wrote is read exactly to its end (its final four bytes match the decoder's four bytes of
    /// look-ahead), so any overrun means a payload shorter than its claim.
    pub fn overrun(&self) -> usize {
        self.input.overrun()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::rng::SplitMix64;

    fn lcg(state: &mut SplitMix64) -> u32 {
        state.next_u64() as u32
    }

    #[test]
    fn decisions_round_trip_and_learned_skew_compresses() {
        let mut s = SplitMix64::new(7);
        // 200,000 bits that are 1 with probability ~1/16, plus 8-bit tree values.
        let bits: Vec<bool> = (0..200_000)
            .map(|_| lcg(&mut s).is_multiple_of(16))
            .collect();
        let values: Vec<u32> = (0..20_000).map(|_| lcg(&mut s) % 7).collect();
        let mut e = Encoder::new();
        let mut m = Bit::default();
        let mut tree = vec![Bit::default(); 256];
        for &b in &bits {
            e.code(b, &mut m);
        }
        for &v in &values {
            e.code_tree(v, 8, &mut tree);
        }
        let out = e.finish();
        // Entropy: 200,000 × H(1/16) ≈ 67,450 bits + 20,000 × log2(7) ≈ 56,150 bits.
        assert!(
            out.len() < (67_450 + 56_150) / 8 * 102 / 100,
            "{}",
            out.len()
        );
        let mut d = Decoder::new(&out);
        let mut m = Bit::default();
        let mut tree = vec![Bit::default(); 256];
        for &b in &bits {
            assert_eq!(d.code(&mut m), b);
        }
        for &v in &values {
            assert_eq!(d.code_tree(8, &mut tree), v);
        }
        assert!(d.overrun() <= 4, "{}", d.overrun());
    }

    #[test]
    fn extreme_probabilities_and_wrong_certainty_still_round_trip() {
        let mut e = Encoder::new();
        let pattern: Vec<(bool, u32)> = (0..5000)
            .map(|i| (i % 97 == 0, if i % 2 == 0 { MIN_P } else { 65536 - MIN_P }))
            .collect();
        for &(b, p) in &pattern {
            e.encode(b, p);
        }
        let out = e.finish();
        let mut d = Decoder::new(&out);
        for &(b, p) in &pattern {
            assert_eq!(d.decode(p), b);
        }
    }

    #[test]
    fn empty_streams_decode_and_rates_start_fast() {
        let out = Encoder::new().finish();
        assert_eq!(out.len(), 4);
        let mut m = Bit::default();
        m.update(true);
        // After one 1 the estimate moves 2/3 of the way to certainty.
        assert!((m.p1() as i32 - 54613).abs() < 4, "{}", m.p1());
    }
}
