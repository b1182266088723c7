//! From model probabilities to bits: deterministic quantization plus constriction's range coder.
//!
//! The model hands us `f32` probabilities. Both sides turn them into the *same* integer
//! distribution with `quantize` (plain integer and IEEE arithmetic in a fixed order, no
//! platform-dependent math), and a constriction range coder spends `-log2(p)` bits (plus a tiny
//! rounding loss) on each symbol. One range-coder stream serves a whole block: symbols are coded in
//! the lockstep schedule's order (step by step, row by row), which the decoder replays exactly.
//!
//! Two guards make a damaged or crafted stream fail early instead of after a whole claimed block
//! of decoding:
//!
//! * **Check values.** After every [`CHECK_INTERVAL`] symbols the encoder codes a 16-bit hash of
//!   all symbols of the block so far, uniformly (16 bits each). The decoder compares it with its
//!   own hash, so garbage is found within `CHECK_INTERVAL` symbols (a wrong check passes with
//!   probability 2^-16). Cost: 16 bits per 32,768 symbols, 0.0005 bits per symbol — about 0.03 %
//!   of a `gru-cm` archive of English text and less for token models (docs/format.md).
//! * **Exhaustion.** The decoder counts the words it reads past the end of the payload. A real
//!   stream needs at most [`MAX_WORDS_PAST_END`] of them (the sealed words the encoder dropped
//!   because they were zero, plus the decoder's look-ahead); more means the payload is too short
//!   for the symbols it claims, e.g. an empty payload in a header that claims 64 MiB.

pub mod binary;
pub mod rans;

/// A byte stream that goes on with zeros past its end, counting how far past: what the binary
/// and rANS decoders read, so that a short stream decodes (into garbage a checksum catches)
/// instead of failing in the middle of a symbol.
#[derive(Debug, Clone)]
pub struct Padded<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Padded<'a> {
    /// Reads `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Padded { input, pos: 0 }
    }

    /// The next byte, or 0 past the end.
    #[inline]
    pub fn next_byte(&mut self) -> u8 {
        let b = self.input.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// The next two bytes as a little-endian number (0 for those past the end), without
    /// moving on: with [`skip`](Self::skip), lets a coder renormalise without a branch.
    #[inline]
    pub fn peek_u16(&self) -> u32 {
        match self.input.get(self.pos..self.pos + 2) {
            Some(&[lo, hi]) => u32::from(lo) | u32::from(hi) << 8,
            _ => u32::from(self.input.get(self.pos).copied().unwrap_or(0)),
        }
    }

    /// Moves `n` bytes on.
    #[inline]
    pub fn skip(&mut self, n: usize) {
        self.pos += n;
    }

    /// Bytes read past the end.
    pub fn overrun(&self) -> usize {
        self.pos.saturating_sub(self.input.len())
    }
}

use std::borrow::Borrow;
use std::convert::Infallible;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use constriction::backends::ReadWords;
use constriction::stream::model::{DecoderModel, EncoderModel, EntropyModel, UniformModel};
use constriction::stream::queue::{DefaultRangeEncoder, RangeDecoder};
use constriction::stream::{Decode, Encode};
use constriction::Queue;

use crate::{Error, Result};

/// Fixed-point precision of the quantized distributions: probabilities are multiples of 2^-24.
///
/// Every symbol keeps at least one unit, so a vocabulary of V symbols gives away at most
/// V·2^-24 of probability mass: for 256 byte values that costs ~2e-5 bits per symbol, for a
/// 50k-token vocabulary ~0.004 bits per token.
pub const PRECISION: usize = 24;
const TOTAL: u64 = 1 << PRECISION;

/// Symbols between two check values in a block's stream.
pub const CHECK_INTERVAL: u64 = 1 << 15;
/// Bits of each check value.
const CHECK_BITS: usize = 16;
/// Most trailing zero bytes the encoder drops from a stream (the decoder reads them back as
/// zeros); capped so that the decoder knows how far past the end a real stream can read.
const MAX_DROPPED_ZEROS: usize = 8;
/// Words a decoder may read past the payload's end: the dropped zero words (2), one word of
/// look-ahead beyond the encoder's seal, and one of margin.
pub const MAX_WORDS_PAST_END: u32 = 4;

/// Running hash of the symbols coded so far in a block; its top bits are the check values.
#[derive(Clone, Copy)]
struct SymbolHash {
    hash: u64,
    count: u64,
}

impl SymbolHash {
    fn new() -> Self {
        SymbolHash {
            hash: 0xcbf2_9ce4_8422_2325,
            count: 0,
        }
    }

    /// Adds a symbol; returns the check value when one is due after it.
    fn push(&mut self, symbol: u32) -> Option<usize> {
        self.hash = (self.hash ^ u64::from(symbol)).wrapping_mul(0x0000_0100_0000_01b3);
        self.hash ^= self.hash >> 29;
        self.count += 1;
        self.count
            .is_multiple_of(CHECK_INTERVAL)
            .then_some((self.hash >> (64 - CHECK_BITS)) as usize)
    }
}

fn check_model() -> UniformModel<u32, PRECISION> {
    UniformModel::new(1 << CHECK_BITS)
}

/// Turns probabilities into integer weights that are all ≥ 1 and sum to exactly 2^PRECISION.
///
/// Deterministic by construction: the same `probs` give the same weights on every machine.
/// Non-finite or negative inputs count as zero; an all-zero row becomes uniform.
pub(crate) fn quantize(probs: &[f32], weights: &mut Vec<u32>) -> Result<()> {
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

/// Turns quantized weights (from [`quantize`]) into their cumulative table, `V + 1` entries from
/// 0 to 2^PRECISION, the form the range coder reads them in.
fn cumulate(weights: &[u32], cdf: &mut Vec<u32>) -> Result<()> {
    cdf.clear();
    cdf.push(0);
    let mut total = 0u64;
    for &w in weights {
        total += u64::from(w);
        if w == 0 || total > TOTAL {
            break;
        }
        cdf.push(total as u32);
    }
    if cdf.len() != weights.len() + 1 || total != TOTAL {
        return Err(Error::InvalidSetting(
            "quantized distribution does not sum to one".into(),
        ));
    }
    Ok(())
}

/// A quantized distribution as a cumulative table ([`cumulate`]): what constriction's
/// contiguous categorical model codes, the same (left cumulative, probability) pairs and the
/// same search (tested), but borrowed from a buffer that lives as long as the coder instead of
/// a fresh table per symbol (196 KB for a 49 K-token vocabulary).
///
/// Invariant (from [`cumulate`]): `cdf[0] = 0`, strictly increasing, last entry 2^PRECISION.
struct Cumulative<'a>(&'a [u32]);

impl EntropyModel<PRECISION> for Cumulative<'_> {
    type Symbol = usize;
    type Probability = u32;
}

impl EncoderModel<PRECISION> for Cumulative<'_> {
    fn left_cumulative_and_probability(
        &self,
        symbol: impl Borrow<usize>,
    ) -> Option<(u32, NonZeroU32)> {
        let index = *symbol.borrow();
        let (&left, &right) = (self.0.get(index)?, self.0.get(index.checked_add(1)?)?);
        NonZeroU32::new(right - left).map(|p| (left, p))
    }
}

impl DecoderModel<PRECISION> for Cumulative<'_> {
    fn quantile_function(&self, quantile: u32) -> (usize, u32, NonZeroU32) {
        let cdf = self.0;
        // The first entry above `quantile`: it exists, since the last is 2^PRECISION and a
        // quantile is below it, and it is not the first, which is 0.
        let next = cdf[..cdf.len() - 1].partition_point(|&x| x <= quantile);
        let (left, right) = (cdf[next - 1], cdf[next]);
        let probability = NonZeroU32::new(right - left).expect("cumulative table increases");
        (next - 1, left, probability)
    }
}

/// A distribution quantized for the range coder ([`quantize`], then its cumulative table):
/// what [`BlockEncoder::encode_quantized`] and [`BlockDecoder::decode_quantized`] code with.
/// Preparing it is most of the coder's work per symbol (a pass over the whole vocabulary) and
/// needs nothing but the probabilities, so the codec prepares every row of a step at once, in
/// parallel, and codes them in order after.
#[derive(Debug, Default)]
pub struct Quantized {
    weights: Vec<u32>,
    cdf: Vec<u32>,
}

impl Quantized {
    /// Quantizes `probs`, reusing this value's memory.
    pub fn set(&mut self, probs: &[f32]) -> Result<()> {
        quantize(probs, &mut self.weights)?;
        cumulate(&self.weights, &mut self.cdf)
    }

    /// Symbols in the distribution.
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    /// Whether it holds no distribution yet.
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }
}

/// Encodes the symbols of one block into one range-coder stream.
pub struct BlockEncoder {
    coder: DefaultRangeEncoder,
    quantized: Quantized,
    ideal_bits: f64,
    hash: SymbolHash,
}

impl Default for BlockEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl BlockEncoder {
    /// An empty stream.
    pub fn new() -> Self {
        BlockEncoder {
            coder: DefaultRangeEncoder::new(),
            quantized: Quantized::default(),
            ideal_bits: 0.0,
            hash: SymbolHash::new(),
        }
    }

    /// Encodes `symbol` under the distribution `probs`; returns its ideal cost, −log2 p, in
    /// bits.
    pub fn encode(&mut self, probs: &[f32], symbol: u32) -> Result<f64> {
        let mut quantized = std::mem::take(&mut self.quantized);
        let bits = quantized
            .set(probs)
            .and_then(|()| self.encode_quantized(probs, &quantized, symbol));
        self.quantized = quantized;
        bits
    }

    /// [`BlockEncoder::encode`] with `probs` already quantized into `quantized`
    /// ([`Quantized::set`]); `probs` gives the ideal cost.
    pub fn encode_quantized(
        &mut self,
        probs: &[f32],
        quantized: &Quantized,
        symbol: u32,
    ) -> Result<f64> {
        let index = symbol as usize;
        if index >= probs.len() || quantized.len() != probs.len() {
            return Err(Error::InvalidSetting(format!(
                "symbol {symbol} is outside the model's vocabulary of {} (or of its {} quantized \
                 weights)",
                probs.len(),
                quantized.len()
            )));
        }
        let bits = -f64::from(probs[index].max(f32::MIN_POSITIVE)).log2();
        self.ideal_bits += bits;
        let model = Cumulative(&quantized.cdf);
        let fail = |e| Error::InvalidSetting(format!("range coder failed: {e}"));
        self.coder.encode_symbol(index, model).map_err(fail)?;
        if let Some(check) = self.hash.push(symbol) {
            self.coder
                .encode_symbol(check, check_model())
                .map_err(fail)?;
        }
        Ok(bits)
    }

    /// The model's ideal code length so far (sum of -log2 p of the coded symbols), in bits.
    pub fn ideal_bits(&self) -> f64 {
        self.ideal_bits
    }

    /// Seals the stream and returns it as bytes (big-endian words, up to
    /// 8 (`MAX_DROPPED_ZEROS`) trailing zero bytes dropped: the decoder reads missing data as
    /// zeros, so they carry no information).
    pub fn finish(self) -> Vec<u8> {
        let words = self
            .coder
            .into_compressed()
            .unwrap_or_else(|never| match never {});
        let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        let keep = bytes.len().saturating_sub(MAX_DROPPED_ZEROS);
        while bytes.len() > keep && bytes.last() == Some(&0) {
            bytes.pop();
        }
        bytes
    }
}

/// The payload as the range decoder reads it: big-endian words, then zeros, counted.
struct PayloadWords {
    words: Vec<u32>,
    next: usize,
    /// Shared with the [`BlockDecoder`], which cannot reach into constriction's decoder.
    past_end: Arc<AtomicU32>,
}

impl ReadWords<u32, Queue> for PayloadWords {
    type ReadError = Infallible;

    fn read(&mut self) -> Result<Option<u32>, Infallible> {
        match self.words.get(self.next) {
            Some(&w) => {
                self.next += 1;
                Ok(Some(w))
            }
            None => {
                // Zeros, never "end of data": constriction would otherwise shift in zeros
                // itself, and this way every read past the end is counted.
                self.past_end.fetch_add(1, Ordering::Relaxed);
                Ok(Some(0))
            }
        }
    }

    fn maybe_exhausted(&self) -> bool {
        self.next >= self.words.len()
    }
}

/// Decodes the symbols of one block from its range-coder stream.
pub struct BlockDecoder {
    coder: RangeDecoder<u32, u64, PayloadWords>,
    quantized: Quantized,
    hash: SymbolHash,
    past_end: Arc<AtomicU32>,
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
        let past_end = Arc::new(AtomicU32::new(0));
        let backend = PayloadWords {
            words,
            next: 0,
            past_end: Arc::clone(&past_end),
        };
        let coder = RangeDecoder::with_backend(backend).unwrap_or_else(|never| match never {});
        Ok(BlockDecoder {
            coder,
            quantized: Quantized::default(),
            hash: SymbolHash::new(),
            past_end,
        })
    }

    /// Decodes the next symbol under the distribution `probs`.
    pub fn decode(&mut self, probs: &[f32]) -> Result<u32> {
        let mut quantized = std::mem::take(&mut self.quantized);
        let symbol = quantized
            .set(probs)
            .and_then(|()| self.decode_quantized(&quantized));
        self.quantized = quantized;
        symbol
    }

    /// [`BlockDecoder::decode`] under a distribution already quantized ([`Quantized::set`]).
    pub fn decode_quantized(&mut self, quantized: &Quantized) -> Result<u32> {
        if quantized.is_empty() {
            return Err(Error::InvalidSetting(
                "no distribution to decode with".into(),
            ));
        }
        let model = Cumulative(&quantized.cdf);
        let invalid = |_| Error::Corrupt("range-coder stream is invalid".into());
        let symbol = self.coder.decode_symbol(model).map_err(invalid)? as u32;
        if let Some(expected) = self.hash.push(symbol) {
            let check = self.coder.decode_symbol(check_model()).map_err(invalid)?;
            if check != expected {
                return Err(Error::Corrupt(format!(
                    "the coded stream fails its check after {} symbols of a block",
                    self.hash.count
                )));
            }
        }
        if self.past_end.load(Ordering::Relaxed) > MAX_WORDS_PAST_END {
            return Err(Error::Corrupt(format!(
                "a block's coded stream ends after {} symbols, before the symbols it claims",
                self.hash.count
            )));
        }
        Ok(symbol)
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

    /// The borrowed cumulative table codes exactly what constriction's contiguous categorical
    /// model coded before it (the archives of every model depend on it), and decodes it back.
    #[test]
    fn the_cumulative_table_codes_as_constriction_categorical_did() {
        use constriction::stream::model::ContiguousCategoricalEntropyModel;
        type Categorical = ContiguousCategoricalEntropyModel<u32, Vec<u32>, PRECISION>;
        let (mut ours, mut theirs) = (DefaultRangeEncoder::new(), DefaultRangeEncoder::new());
        let (mut weights, mut cdf) = (Vec::new(), Vec::new());
        let mut symbols = Vec::new();
        for step in 0..300 {
            let vocab = [2, 256, 49_152][step % 3];
            quantize(&probs_for(step, vocab), &mut weights).unwrap();
            cumulate(&weights, &mut cdf).unwrap();
            let symbol = (step * 7919) % vocab;
            symbols.push((vocab, symbol));
            ours.encode_symbol(symbol, Cumulative(&cdf)).unwrap();
            let model =
                Categorical::from_nonzero_fixed_point_probabilities(&weights, false).unwrap();
            theirs.encode_symbol(symbol, model).unwrap();
        }
        let words = ours.into_compressed().unwrap();
        assert_eq!(words, theirs.into_compressed().unwrap());
        let mut decoder =
            constriction::stream::queue::DefaultRangeDecoder::from_compressed(words).unwrap();
        for (step, &(vocab, symbol)) in symbols.iter().enumerate() {
            quantize(&probs_for(step, vocab), &mut weights).unwrap();
            cumulate(&weights, &mut cdf).unwrap();
            assert_eq!(decoder.decode_symbol(Cumulative(&cdf)).unwrap(), symbol);
        }
        // Weights that do not sum to 2^PRECISION, or hold a zero, make no table.
        assert!(cumulate(&[1, 2, 3], &mut cdf).is_err());
        assert!(cumulate(&[0, 1 << PRECISION], &mut cdf).is_err());
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
    fn real_streams_stay_within_the_past_end_allowance() {
        // Many lengths and skews, including near-certain symbols whose streams end in zeros.
        for len in [0usize, 1, 2, 3, 5, 17, 100, 1000, 40_000] {
            for skew in [1.0f32, 0.999, 0.5] {
                let probs = |t: usize| {
                    let mut p = vec![(1.0 - skew).max(1e-6) / 255.0; 256];
                    p[t % 3] = skew;
                    p
                };
                let symbols: Vec<u32> = (0..len).map(|t| (t % 3) as u32).collect();
                let mut enc = BlockEncoder::new();
                for (t, &s) in symbols.iter().enumerate() {
                    enc.encode(&probs(t), s).unwrap();
                }
                let payload = enc.finish();
                let mut dec = BlockDecoder::new(&payload).unwrap();
                for (t, &s) in symbols.iter().enumerate() {
                    assert_eq!(dec.decode(&probs(t)).unwrap(), s, "len {len} skew {skew}");
                }
            }
        }
    }

    #[test]
    fn empty_or_zero_payloads_fail_early() {
        let uniform = vec![1.0f32 / 256.0; 256];
        for payload in [vec![], vec![0u8; 64]] {
            let mut dec = BlockDecoder::new(&payload).unwrap();
            let failed_at = (0..1_000_000).find(|_| dec.decode(&uniform).is_err());
            // 8 bits per symbol: the payload plus the allowance is used up within ~100 symbols.
            assert!(failed_at.is_some_and(|n| n < 200), "{failed_at:?}");
        }
    }

    #[test]
    fn garbage_fails_its_check_within_an_interval() {
        // A skewed model: garbage decodes into likely symbols cheaply, so only the check stops it
        // before the payload runs out.
        let probs = |t: usize| probs_for(t, 256);
        let mut x = 0x1234_5678u32;
        let garbage: Vec<u8> = (0..1 << 16)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let mut dec = BlockDecoder::new(&garbage).unwrap();
        let failure = (0..10 * CHECK_INTERVAL as usize)
            .find_map(|t| dec.decode(&probs(t)).err().map(|e| (t, e.to_string())));
        // The check value, or constriction noticing an impossible point first.
        let (at, msg) = failure.expect("garbage decoded without complaint");
        assert!(
            at < CHECK_INTERVAL as usize && msg.contains("corrupt"),
            "{at}: {msg}"
        );
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
