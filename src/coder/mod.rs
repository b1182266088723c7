//! From model probabilities to bits: deterministic quantization plus constriction's range coder.
//!
//! The model hands us `f32` probabilities. Both sides turn them into the *same* integer
//! distribution with [`quantize`] (plain integer and IEEE arithmetic in a fixed order, no
//! platform-dependent math), and a constriction range coder spends `-log2(p)` bits (plus a tiny
//! rounding loss) on each symbol. One range-coder stream serves a whole block: symbols are coded in
//! the lockstep schedule's order (step by step, row by row), which the decoder replays exactly.

use constriction::stream::model::ContiguousCategoricalEntropyModel;
use constriction::stream::queue::{DefaultRangeDecoder, DefaultRangeEncoder};
use constriction::stream::{Decode, Encode};

use crate::{Error, Result};

/// Fixed-point precision of the quantized distributions: probabilities are multiples of 2^-24.
///
/// Every symbol keeps at least one unit, so a vocabulary of V symbols gives away at most
/// V·2^-24 of probability mass: for 256 byte values that costs ~2e-5 bits per symbol, for a
/// 50k-token vocabulary ~0.004 bits per token.
pub const PRECISION: usize = 24;
const TOTAL: u64 = 1 << PRECISION;

type Categorical = ContiguousCategoricalEntropyModel<u32, Vec<u32>, PRECISION>;

/// Turns probabilities into integer weights that are all ≥ 1 and sum to exactly 2^PRECISION.
///
/// Deterministic by construction: the same `probs` give the same weights on every machine.
/// Non-finite or negative inputs count as zero; an all-zero row becomes uniform.
pub fn quantize(probs: &[f32], weights: &mut Vec<u32>) -> Result<()> {
    let n = probs.len() as u64;
    if n == 0 || n > TOTAL / 2 {
        return Err(Error::InvalidSetting(format!(
            "a distribution over {n} symbols cannot be coded at {PRECISION}-bit precision"
        )));
    }
    let clean = |p: f32| {
        if p.is_finite() && p > 0.0 {
            p as f64
        } else {
            0.0
        }
    };
    let sum: f64 = probs.iter().map(|&p| clean(p)).sum();
    let free = (TOTAL - n) as f64;
    weights.clear();
    if sum <= 0.0 || !sum.is_finite() {
        weights.resize(probs.len(), (TOTAL / n) as u32);
        let rest = TOTAL - (TOTAL / n) * n;
        weights[0] += rest as u32;
        return Ok(());
    }
    let scale = free / sum;
    let mut total = 0u64;
    let mut argmax = 0;
    for (i, &p) in probs.iter().enumerate() {
        // `as` truncates toward zero, which for these non-negative values is `floor` (and
        // saturates): the same weights as before, without a libm call per symbol.
        let w = 1 + ((clean(p) * scale) as u64).min(TOTAL - n);
        if w > weights.get(argmax).map_or(0, |&m| u64::from(m)) {
            argmax = i;
        }
        total += w;
        weights.push(w as u32);
    }
    // Floors leave a little mass over; rounding in `scale` may (rarely) overshoot. Either way the
    // most probable symbol absorbs the difference, where it costs least.
    if total <= TOTAL {
        weights[argmax] += (TOTAL - total) as u32;
    } else {
        let mut excess = total - TOTAL;
        // Take from the largest weights first; they can always spare it.
        while excess > 0 {
            let (i, &w) = weights
                .iter()
                .enumerate()
                .max_by_key(|&(_, &w)| w)
                .expect("non-empty");
            let take = excess.min(u64::from(w) - 1);
            weights[i] -= take as u32;
            excess -= take;
        }
    }
    Ok(())
}

fn categorical(weights: &[u32]) -> Result<Categorical> {
    Categorical::from_nonzero_fixed_point_probabilities(weights, false)
        .map_err(|()| Error::InvalidSetting("quantized distribution does not sum to one".into()))
}

/// Encodes the symbols of one block into one range-coder stream.
pub struct BlockEncoder {
    coder: DefaultRangeEncoder,
    weights: Vec<u32>,
    ideal_bits: f64,
}

impl Default for BlockEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl BlockEncoder {
    pub fn new() -> Self {
        BlockEncoder {
            coder: DefaultRangeEncoder::new(),
            weights: Vec::new(),
            ideal_bits: 0.0,
        }
    }

    /// Encodes `symbol` under the distribution `probs`.
    pub fn encode(&mut self, probs: &[f32], symbol: u32) -> Result<()> {
        let index = symbol as usize;
        if index >= probs.len() {
            return Err(Error::InvalidSetting(format!(
                "symbol {symbol} is outside the model's vocabulary of {}",
                probs.len()
            )));
        }
        quantize(probs, &mut self.weights)?;
        self.ideal_bits -= f64::from(probs[index].max(f32::MIN_POSITIVE)).log2();
        let model = categorical(&self.weights)?;
        self.coder
            .encode_symbol(index, model)
            .map_err(|e| Error::InvalidSetting(format!("range coder failed: {e}")))?;
        Ok(())
    }

    /// The model's ideal code length so far (sum of -log2 p of the coded symbols), in bits.
    pub fn ideal_bits(&self) -> f64 {
        self.ideal_bits
    }

    /// Seals the stream and returns it as bytes (big-endian words, trailing zero bytes dropped:
    /// the decoder reads missing data as zeros, so they carry no information).
    pub fn finish(self) -> Vec<u8> {
        let words = self
            .coder
            .into_compressed()
            .unwrap_or_else(|never| match never {});
        let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        while bytes.last() == Some(&0) {
            bytes.pop();
        }
        bytes
    }
}

/// Decodes the symbols of one block from its range-coder stream.
pub struct BlockDecoder {
    coder: DefaultRangeDecoder,
    weights: Vec<u32>,
}

impl BlockDecoder {
    /// Wraps a payload written by [`BlockEncoder::finish`].
    pub fn new(payload: &[u8]) -> Result<Self> {
        let words: Vec<u32> = payload
            .chunks(4)
            .map(|c| {
                let mut w = [0u8; 4];
                w[..c.len()].copy_from_slice(c);
                u32::from_be_bytes(w)
            })
            .collect();
        let coder = DefaultRangeDecoder::from_compressed(words)
            .map_err(|_| Error::Corrupt("range-coder stream cannot be read".into()))?;
        Ok(BlockDecoder {
            coder,
            weights: Vec::new(),
        })
    }

    /// Decodes the next symbol under the distribution `probs`.
    pub fn decode(&mut self, probs: &[f32]) -> Result<u32> {
        quantize(probs, &mut self.weights)?;
        let model = categorical(&self.weights)?;
        let symbol = self
            .coder
            .decode_symbol(model)
            .map_err(|_| Error::Corrupt("range-coder stream is invalid".into()))?;
        Ok(symbol as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums_to_total(w: &[u32]) -> bool {
        w.iter().map(|&x| u64::from(x)).sum::<u64>() == TOTAL && w.iter().all(|&x| x >= 1)
    }

    #[test]
    fn quantize_handles_degenerate_inputs() {
        let mut w = Vec::new();
        for probs in [
            vec![0.0f32; 256],
            vec![f32::NAN; 7],
            vec![1.0, 0.0, 0.0],
            vec![1e30, 1e30, -1.0, f32::INFINITY],
            vec![0.25; 4],
            vec![1.0],
        ] {
            quantize(&probs, &mut w).unwrap();
            assert!(sums_to_total(&w), "{probs:?}");
        }
        assert!(quantize(&[], &mut w).is_err());
    }

    #[test]
    fn quantize_follows_the_probabilities() {
        let mut w = Vec::new();
        quantize(&[0.5, 0.25, 0.25], &mut w).unwrap();
        assert!(sums_to_total(&w));
        assert!((f64::from(w[0]) / TOTAL as f64 - 0.5).abs() < 1e-6);
    }

    /// A skewed, varying distribution per step, like a model's.
    fn probs_for(step: usize, vocab: usize) -> Vec<f32> {
        let mut p: Vec<f32> = (0..vocab)
            .map(|i| 1.0 / (1.0 + ((i * 7 + step * 13) % vocab) as f32).powi(2))
            .collect();
        let s: f32 = p.iter().sum();
        p.iter_mut().for_each(|x| *x /= s);
        p
    }

    #[test]
    fn encode_decode_round_trip_and_cost_near_ideal() {
        let vocab = 256;
        let symbols: Vec<u32> = (0..20_000u32).map(|i| (i * 31 + i / 7) % 9).collect();
        let mut enc = BlockEncoder::new();
        for (t, &s) in symbols.iter().enumerate() {
            enc.encode(&probs_for(t, vocab), s).unwrap();
        }
        let ideal = enc.ideal_bits();
        let payload = enc.finish();
        let actual = payload.len() as f64 * 8.0;
        assert!(actual <= ideal * 1.001 + 64.0, "{actual} vs ideal {ideal}");
        let mut dec = BlockDecoder::new(&payload).unwrap();
        for (t, &s) in symbols.iter().enumerate() {
            assert_eq!(dec.decode(&probs_for(t, vocab)).unwrap(), s, "step {t}");
        }
    }

    #[test]
    fn empty_stream_is_empty() {
        assert!(BlockEncoder::new().finish().is_empty());
    }

    #[test]
    fn out_of_vocabulary_symbol_is_an_error() {
        let mut enc = BlockEncoder::new();
        assert!(enc.encode(&[0.5, 0.5], 2).is_err());
    }
}
