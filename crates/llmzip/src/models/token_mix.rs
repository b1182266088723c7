//! Online adaptation over a token-level model: an adaptive bias head (`smollm2-cm`), and with it
//! token match models (`smollm2-cm2`).
//!
//! A pretrained language model knows language but not the file at hand: its names, its
//! vocabulary, its habits. Byte models learn those from context statistics ([`super::BitMixed`]);
//! over a 49 K-token vocabulary the cheapest learner with the same effect is a *bias head*
//! (Nacrith's "adaptive log-space bias"): one bias per token, added to the model's
//! log-probabilities, `q = softmax(log p + b)`, and moved after every coded token along the
//! gradient of its code length, `b ← b + rate·(onehot(token) − q)`. Tokens the file uses more than
//! the model expects gain, the others lose a little; the model's context-dependent ranking stays
//! intact.
//!
//! What the bias head cannot see is text the model has no context for: an earlier row of the
//! block, or what fell out of the window. `-cm2` adds match models for that
//! ([`crate::mixing::match_model`], the byte models' own, over tokens): each finds the last
//! occurrence of the current context (2 and 5 tokens) in any row of the block and expects the
//! token that followed it. The expected token's probability is multiplied by `e^boost`, in the
//! same log-linear way as the biases, with one boost per (match length, power of two of the
//! token's probability before the boost), learned along the same gradient:
//! `boost ← boost + rate·(hit − q)`. A long match on a token the model finds unlikely earns a
//! large boost; a token the model already expects, little. The boosts cost one pass less than
//! nothing: they fold into the normalisation the biases need anyway.
//!
//! Determinism: `q` is computed with [`super::activation::exp`] (no libm) in `f32`, each row's
//! sums taken in token order, and rows may be predicted in parallel because they only read `b`
//! and the boosts. Both are shared by all rows of a block and updated row by row, in row order,
//! after each step, so the decoder, which sees the same tokens in the same order, learns the same
//! values. They reset with the block and survive a context-window slide, as do the match models'
//! histories.
//!
//! Identity: every constant and the version tag are hashed into the fingerprint, so a changed
//! constant gives a new name's archives rather than garbage. `-cm2`'s constants were chosen on
//! validation texts (docs/models.md, "`smollm2-cm2`").

use rayon::prelude::*;

use super::activation;
use super::{check_step, last_of_rows, wrapper_info, BatchShape, LanguageModel, ModelInfo};
use crate::mixing::match_model::{self, Match, MatchModel};
use crate::tokenization::Tokenizer;
use crate::{Error, Result};

/// Every constant that changes a prediction of the bias head; hashed into the fingerprint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BiasParams {
    /// Step size of the bias update per coded token.
    pub rate: f32,
    /// Biases are kept within `±limit`, so that no token's probability runs away.
    pub limit: f32,
}

/// The parameters of `-cm` over a token model (version 1: the bias head alone).
pub(crate) const BIAS: BiasParams = BiasParams {
    rate: 0.3,
    limit: 8.0,
};

/// Every constant of the match part of `-cm2`; hashed into the fingerprint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MatchParams {
    /// Tokens of context a match starts from, one match model for each.
    pub min_len: &'static [usize],
    /// Each match index has 2^`index_bits` entries.
    pub index_bits: u32,
    /// Step size of the boosts' update per coded token.
    pub rate: f32,
    /// Boosts are kept within `±limit`.
    pub limit: f32,
}

/// Every constant of `-cm2` over a token model: the bias head and the match part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MixParams {
    /// The bias head's constants.
    pub bias: BiasParams,
    /// The match part's constants.
    pub matches: MatchParams,
}

/// The parameters of `-cm2` over a token model.
pub(crate) const MIX2: MixParams = MixParams {
    bias: BiasParams {
        rate: 0.15,
        limit: 8.0,
    },
    matches: MatchParams {
        min_len: &[2, 5],
        index_bits: 20,
        rate: 0.5,
        limit: 8.0,
    },
};

/// Match lengths the boosts tell apart (longer ones share the last).
const LENGTHS: usize = 16;
/// Probability classes (by powers of two) the boosts tell apart: `1/2^k` for `k < PROBS`.
const PROBS: usize = 12;

/// The boost context of a match that has held for `len` tokens, on a token the model without
/// the boost gives probability `q`: the length up to [`LENGTHS`] − 1, `q` by its power of two,
/// read from its exponent bits (exact, no `log2`).
fn boost_context(len: u32, q: f32) -> usize {
    let exponent = ((q.to_bits() >> 23) & 0xff) as i32 - 127;
    let power = (-exponent).clamp(0, PROBS as i32 - 1) as usize;
    (len as usize).min(LENGTHS - 1) * PROBS + power
}

/// One match model of the match part, and its boosts.
struct Matcher {
    model: MatchModel<u32>,
    rows: Vec<Match>,
    boosts: Vec<f32>,
}

/// The match part of `-cm2`: the token that followed the last occurrence of the current context
/// (in any row of the block) gets its probability multiplied by `e^boost`, one boost per
/// context of [`boost_context`], learned like the biases along the gradient of the code length.
/// Several match models (contexts of different lengths) multiply their boosts.
struct Matches {
    params: MatchParams,
    matchers: Vec<Matcher>,
    /// What each row's last prediction boosted: (matcher, context, token) each, and the
    /// boosted tokens' final probabilities.
    boosted: Vec<Boosted>,
}

/// What one row's prediction boosted.
#[derive(Clone, Default)]
struct Boosted {
    /// (matcher, context, token, the token's final probability).
    by: Vec<(usize, usize, u32, f32)>,
}

impl Matches {
    fn new(params: MatchParams, rows: usize) -> Matches {
        Matches {
            params,
            matchers: params
                .min_len
                .iter()
                .map(|&n| Matcher {
                    model: MatchModel::bounded(rows, n, params.index_bits),
                    rows: vec![Match::default(); rows],
                    boosts: vec![0.0; LENGTHS * PROBS],
                })
                .collect(),
            boosted: vec![Boosted::default(); rows],
        }
    }

    /// Learns `token`, row `row`'s coded token: the boosts that predicted it, then the matches.
    fn learn(&mut self, row: usize, token: u32) {
        let MatchParams { rate, limit, .. } = self.params;
        for &(k, context, expected, q) in &self.boosted[row].by {
            let hit = if expected == token { 1.0 } else { 0.0 };
            let b = &mut self.matchers[k].boosts[context];
            *b = (*b + rate * (hit - q)).max(-limit).min(limit);
        }
        for m in &mut self.matchers {
            let key = m.model.key_with(row, token);
            m.model.learn_keyed(row, &mut m.rows[row], key, token);
        }
    }

    /// Each row's expected tokens: (matcher, match length, token).
    fn expected(&self) -> Vec<Vec<(usize, u32, u32)>> {
        (0..self.boosted.len())
            .map(|row| {
                self.matchers
                    .iter()
                    .enumerate()
                    .filter_map(|(k, m)| {
                        let r = &m.rows[row];
                        m.model.expected(r).map(|t| (k, r.len, t))
                    })
                    .collect()
            })
            .collect()
    }
}

/// Boosts `row` (already scaled by the biases, summing to `sum`) for the expected tokens and
/// normalises it; returns what it boosted.
fn boost(
    row: &mut [f32],
    sum: f32,
    expected: &[(usize, u32, u32)],
    matchers: &[Matcher],
) -> Boosted {
    // (token, its scaled weight, the product of its boosts' factors), in the order found.
    let mut tokens: Vec<(u32, f32, f32)> = Vec::with_capacity(expected.len());
    let mut by = Vec::with_capacity(expected.len());
    for &(k, len, token) in expected {
        if token as usize >= row.len() {
            continue;
        }
        let u = row[token as usize];
        let context = boost_context(len, u / sum);
        let e = activation::exp(matchers[k].boosts[context]);
        match tokens.iter_mut().find(|t| t.0 == token) {
            Some(t) => t.2 *= e,
            None => tokens.push((token, u, e)),
        }
        by.push((k, context, token, 0.0));
    }
    let mut total = sum;
    for &(_, u, e) in &tokens {
        total += u * (e - 1.0);
    }
    let inv = 1.0 / total;
    row.iter_mut().for_each(|p| *p *= inv);
    for &(token, u, e) in &tokens {
        row[token as usize] = u * e * inv;
    }
    for b in &mut by {
        b.3 = row[b.2 as usize];
    }
    Boosted { by }
}

/// The adaptive part of a token mixer, apart from the model it wraps: biases (and for `-cm2`
/// the match part), and what the last prediction was.
struct Head {
    bias_params: BiasParams,
    match_params: Option<MatchParams>,
    vocab: usize,
    /// One bias per token, shared by the block's rows.
    bias: Vec<f32>,
    /// `e^bias`, recomputed after each update.
    scale: Vec<f32>,
    /// Each row's last prediction `q` (rows × vocab), what the next update needs.
    predicted: Vec<f32>,
    /// Rows that have been predicted since the block started (the first input is BOS).
    started: Vec<bool>,
    matches: Option<Matches>,
}

impl Head {
    fn new(bias_params: BiasParams, match_params: Option<MatchParams>, vocab: usize) -> Head {
        Head {
            bias_params,
            match_params,
            vocab,
            bias: vec![0.0; vocab],
            scale: vec![1.0; vocab],
            predicted: Vec::new(),
            started: Vec::new(),
            matches: None,
        }
    }

    fn start_block(&mut self, rows: usize) {
        self.bias.fill(0.0);
        self.scale.fill(1.0);
        self.predicted = Vec::new();
        self.started = vec![false; rows];
        // The old match models go first, so that two sets never coexist.
        self.matches = None;
        self.matches = self.match_params.map(|p| Matches::new(p, rows));
    }

    /// The rows that had a prediction, with their coded tokens (this step's inputs), in row
    /// order; marks every row as started.
    fn coded(&mut self, inputs: &[u32]) -> Vec<(usize, u32)> {
        inputs
            .iter()
            .enumerate()
            .filter(|&(row, _)| std::mem::replace(&mut self.started[row], true))
            .map(|(row, &token)| (row, token))
            .collect()
    }

    /// Learns from each row's coded token (this step's input), in row order.
    fn learn(&mut self, inputs: &[u32]) {
        let vocab = self.vocab;
        let BiasParams { rate, limit } = self.bias_params;
        let rows = self.coded(inputs);
        if rows.is_empty() {
            return;
        }
        // Each bias sees the rows' updates in row order, whichever thread runs its chunk.
        const CHUNK: usize = 4096;
        let predicted = &self.predicted;
        self.bias
            .par_chunks_mut(CHUNK)
            .zip(self.scale.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each(|(c, (bias, scale))| {
                let start = c * CHUNK;
                for &(row, token) in &rows {
                    let q = &predicted[row * vocab + start..][..bias.len()];
                    for (b, &p) in bias.iter_mut().zip(q) {
                        *b -= rate * p;
                    }
                    if let Some(b) = (token as usize)
                        .checked_sub(start)
                        .and_then(|i| bias.get_mut(i))
                    {
                        *b += rate;
                    }
                }
                for (s, b) in scale.iter_mut().zip(bias.iter_mut()) {
                    *b = b.max(-limit).min(limit);
                    *s = activation::exp(*b);
                }
            });
        if let Some(m) = &mut self.matches {
            for &(row, token) in &rows {
                m.learn(row, token);
            }
        }
    }

    /// Turns the inner model's `probs` into `q ∝ p·e^b` (times the match's boost), row by row,
    /// and keeps them.
    fn predict(&mut self, probs: &mut [f32]) {
        let vocab = self.vocab;
        let scale = &self.scale;
        // Without match models nothing is expected, and `boost` only normalises.
        let (expected, matchers) = match &self.matches {
            Some(m) => (m.expected(), m.matchers.as_slice()),
            None => (vec![Vec::new(); probs.len() / vocab], &[][..]),
        };
        let boosted: Vec<Boosted> = probs
            .par_chunks_mut(vocab)
            .zip(expected)
            .map(|(row, expected)| {
                let sum = scaled(row, scale);
                if !(sum > 0.0 && sum.is_finite()) {
                    return Boosted::default();
                }
                boost(row, sum, &expected, matchers)
            })
            .collect();
        if let Some(m) = &mut self.matches {
            m.boosted = boosted;
        }
        self.predicted.clear();
        self.predicted.extend_from_slice(probs);
    }

    /// Memory of the match part for a block of this shape.
    fn working_memory(&self, shape: &BatchShape) -> u64 {
        match &self.match_params {
            None => 0,
            // The index, the rows' tokens (vectors grown by doubling), per-row state.
            Some(p) => (match_model::index_bytes(p.index_bits)
                .saturating_add(shape.tokens.saturating_mul(8))
                .saturating_add(shape.rows.saturating_mul(64)))
            .saturating_mul(p.min_len.len() as u64),
        }
    }
}

/// `row[i] *= scale[i]`; returns the row's sum, taken in token order.
fn scaled(row: &mut [f32], scale: &[f32]) -> f32 {
    let mut sum = 0f32;
    for (p, &s) in row.iter_mut().zip(scale) {
        *p *= s;
        sum += *p;
    }
    sum
}

/// A token-level model with an adaptive bias head (`-cm`), and with a match model besides
/// (`-cm2`).
pub struct TokenMixed {
    inner: Box<dyn LanguageModel>,
    info: ModelInfo,
    head: Head,
}

impl TokenMixed {
    /// Wraps a token-level model: `NAME-cm`, as `smollm2-cm`.
    pub fn new(inner: Box<dyn LanguageModel>) -> Result<TokenMixed> {
        TokenMixed::with(inner, BIAS)
    }

    /// Wraps a token-level model with the bias head and the match part: `NAME-cm2`, as
    /// `smollm2-cm2`.
    pub fn refined(inner: Box<dyn LanguageModel>) -> Result<TokenMixed> {
        TokenMixed::mixed(inner, MIX2)
    }

    pub(crate) fn with(inner: Box<dyn LanguageModel>, params: BiasParams) -> Result<TokenMixed> {
        let identity = ("llmzip-token-bias-v1", format!("{params:?}"));
        TokenMixed::build(inner, "cm", identity, params, None)
    }

    pub(crate) fn mixed(inner: Box<dyn LanguageModel>, params: MixParams) -> Result<TokenMixed> {
        let identity = ("llmzip-token-mix-v2", format!("{params:?}"));
        TokenMixed::build(inner, "cm2", identity, params.bias, Some(params.matches))
    }

    /// `identity`: the version tag and the parameters, hashed with the inner model's
    /// fingerprint.
    fn build(
        inner: Box<dyn LanguageModel>,
        suffix: &str,
        (tag, params): (&str, String),
        bias: BiasParams,
        matches: Option<MatchParams>,
    ) -> Result<TokenMixed> {
        let info = wrapper_info(check_vocabulary(inner.as_ref())?, suffix, tag, &params);
        let vocab = info.vocab_size;
        Ok(TokenMixed {
            inner,
            info,
            head: Head::new(bias, matches, vocab),
        })
    }
}

/// The wrapped model's info, if it predicts over a token vocabulary.
fn check_vocabulary(inner: &dyn LanguageModel) -> Result<ModelInfo> {
    let base = inner.info().clone();
    if base.vocab_size <= 256 {
        return Err(Error::Model(format!(
            "the token bias head is for models over token vocabularies; '{}' predicts {} \
             symbols (byte models take '-cm', '-cm5')",
            base.name, base.vocab_size
        )));
    }
    Ok(base)
}

impl LanguageModel for TokenMixed {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn tokenizer(&self) -> &dyn Tokenizer {
        self.inner.tokenizer()
    }

    fn working_memory(&self, shape: &BatchShape) -> u64 {
        // The kept predictions, and the inner model's step output they are copied from.
        let own = shape
            .rows
            .saturating_mul(self.info.vocab_size as u64)
            .saturating_mul(8)
            .saturating_add(self.head.working_memory(shape));
        own.saturating_add(self.inner.working_memory(shape))
    }

    fn start_block(&mut self, rows: usize) -> Result<()> {
        self.head.start_block(rows);
        self.inner.start_block(rows)
    }

    /// The biases (and matches) are the block's, not the context's: they stay.
    fn slide(&mut self, rows: usize) -> Result<()> {
        self.inner.slide(rows)
    }

    fn shift(&mut self, keep: usize) -> Result<bool> {
        self.inner.shift(keep)
    }

    /// Only the last token of each row is new (the one just coded); the re-fed ones were learned.
    fn prefill(&mut self, tokens: &[u32], len: usize) -> Result<Vec<f32>> {
        let last = last_of_rows(tokens, self.head.started.len(), len)?;
        self.head.learn(&last);
        let mut probs = self.inner.prefill(tokens, len)?;
        self.head.predict(&mut probs);
        Ok(probs)
    }

    fn step(&mut self, inputs: &[u32]) -> Result<Vec<f32>> {
        check_step(inputs, self.head.started.len())?;
        self.head.learn(inputs);
        let mut probs = self.inner.step(inputs)?;
        self.head.predict(&mut probs);
        Ok(probs)
    }

    fn recycle(&mut self, probs: Vec<f32>) {
        self.inner.recycle(probs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Schedule;
    use crate::models::llama::{load_hf, tests::tiny_config};
    use crate::models::testing::{round_trip, Uniform};
    use crate::testing::write_random_llama;
    use candle_core::{DType, Device};

    /// A random tiny llama in Hugging Face layout (272 tokens) and a text it tokenizes into
    /// many repeated tokens.
    fn tiny() -> (tempfile::TempDir, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        write_random_llama(dir.path(), &tiny_config(), DType::F32, 3).unwrap();
        let text = "the cat and the hat sat on the mat; then the rat ate the hat. "
            .repeat(12)
            .into_bytes();
        (dir, text)
    }

    fn llama(dir: &tempfile::TempDir) -> Box<dyn LanguageModel> {
        Box::new(load_hf(dir.path(), "tiny", None, &Device::Cpu).unwrap())
    }

    fn schedule(window: u64) -> Schedule {
        Schedule {
            block_size: 1 << 20,
            max_segments: 3,
            min_segment_tokens: 16,
            window,
        }
    }

    #[test]
    fn byte_models_are_refused_with_the_way_out() {
        let err = TokenMixed::new(Uniform::boxed()).err().unwrap().to_string();
        assert!(err.contains("'-cm', '-cm5'"), "{err}");
    }

    #[test]
    fn the_bias_head_learns_the_file_and_round_trips_through_slides() {
        let (dir, text) = tiny();
        let plain = {
            let (mut a, mut b) = (llama(&dir), llama(&dir));
            round_trip(a.as_mut(), b.as_mut(), &text, &schedule(64)).0
        };
        let mixed = |window: u64| {
            let mut a = TokenMixed::new(llama(&dir)).unwrap();
            let mut b = TokenMixed::new(llama(&dir)).unwrap();
            round_trip(&mut a, &mut b, &text, &schedule(window)).0
        };
        let wide = mixed(64);
        assert!(
            wide.len() * 20 < plain.len() * 19,
            "bias head {} bytes, plain model {}",
            wide.len(),
            plain.len()
        );
        // Windows of 24 tokens slide more often; the biases survive them.
        let windowed = mixed(24);
        assert!(windowed.len() * 20 < plain.len() * 19, "{}", windowed.len());
    }

    #[test]
    fn archives_do_not_depend_on_the_thread_count() {
        let (dir, text) = tiny();
        for version in [TokenMixed::new, TokenMixed::refined] {
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| {
                    let mut a = version(llama(&dir)).unwrap();
                    let mut b = version(llama(&dir)).unwrap();
                    round_trip(&mut a, &mut b, &text, &schedule(24)).0
                })
            };
            assert_eq!(run(1), run(3));
        }
    }

    /// The match part finds what the model has no context for: repeats in other rows and
    /// beyond the window, and pays for itself on a repetitive text, through slides.
    #[test]
    fn the_match_part_learns_repeats_across_rows_and_slides() {
        let (dir, text) = tiny();
        let size = |version: fn(Box<dyn LanguageModel>) -> Result<TokenMixed>, window: u64| {
            let mut a = version(llama(&dir)).unwrap();
            let mut b = version(llama(&dir)).unwrap();
            round_trip(&mut a, &mut b, &text, &schedule(window)).0.len()
        };
        for window in [64, 24] {
            let (cm, cm2) = (
                size(TokenMixed::new, window),
                size(TokenMixed::refined, window),
            );
            assert!(
                cm2 * 20 < cm * 19,
                "window {window}: -cm {cm} bytes, -cm2 {cm2}"
            );
        }
    }

    /// Boost contexts: the match length up to 15, the probability by its power of two.
    #[test]
    fn boost_contexts_split_lengths_and_powers_of_two() {
        assert_eq!(boost_context(0, 1.0), 0);
        assert_eq!(boost_context(0, 0.5), 1);
        assert_eq!(boost_context(0, 0.49), 2);
        assert_eq!(boost_context(3, 0.3), 3 * PROBS + 2);
        assert_eq!(boost_context(99, 1e-30), LENGTHS * PROBS - 1);
        assert_eq!(boost_context(1, 0.0), 2 * PROBS - 1);
    }

    /// A boost moves mass to the expected token and keeps the row a distribution; with nothing
    /// expected it only normalises.
    #[test]
    fn boosting_keeps_a_distribution() {
        let mut m = Matches::new(MIX2.matches, 1);
        m.matchers[0].boosts.fill(1.0);
        let mut row = vec![1.0f32, 2.0, 1.0];
        let b = boost(&mut row, 4.0, &[(0, 2, 2), (1, 0, 0)], &m.matchers);
        let e = std::f32::consts::E;
        assert!((row[2] - e / (3.0 + e)).abs() < 1e-6, "{row:?}");
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(b.by.len(), 2);
        assert_eq!(b.by[0].2, 2);
        let mut plain = vec![1.0f32, 3.0];
        assert!(boost(&mut plain, 4.0, &[], &m.matchers).by.is_empty());
        assert_eq!(plain, [0.25, 0.75]);
    }

    #[test]
    fn the_name_and_fingerprint_say_what_it_is() {
        let (dir, _) = tiny();
        let inner = llama(&dir);
        let base = inner.info().fingerprint;
        let m = TokenMixed::new(inner).unwrap();
        assert_eq!(m.info().name, "tiny-cm");
        assert_ne!(m.info().fingerprint, base);
        let other = TokenMixed::with(llama(&dir), BiasParams { rate: 0.5, ..BIAS }).unwrap();
        assert_ne!(other.info().fingerprint, m.info().fingerprint);
        let v2 = TokenMixed::refined(llama(&dir)).unwrap();
        assert_eq!(v2.info().name, "tiny-cm2");
        let tuned = MixParams {
            matches: MatchParams {
                rate: 0.4,
                ..MIX2.matches
            },
            ..MIX2
        };
        let v2b = TokenMixed::mixed(llama(&dir), tuned).unwrap();
        let prints = [base, m.info().fingerprint, v2.info().fingerprint];
        assert!(!prints.contains(&v2b.info().fingerprint));
        assert_ne!(v2.info().fingerprint, m.info().fingerprint);
    }

    /// The match part's memory is claimed, and grows with the block's tokens.
    #[test]
    fn the_match_part_is_in_the_memory_claim() {
        let (dir, _) = tiny();
        let shape = |tokens| BatchShape {
            rows: 2,
            positions: 64,
            prefill: 0,
            block_len: 4 * tokens,
            tokens,
        };
        let (cm, cm2) = (
            TokenMixed::new(llama(&dir)).unwrap(),
            TokenMixed::refined(llama(&dir)).unwrap(),
        );
        let index = 2 * match_model::index_bytes(MIX2.matches.index_bits);
        let small = cm2.working_memory(&shape(100));
        assert!(small >= cm.working_memory(&shape(100)) + index);
        assert!(cm2.working_memory(&shape(1_000_000)) >= small + 2 * 8 * 999_900);
    }
}
