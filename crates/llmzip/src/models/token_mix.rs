//! Online adaptation over a token-level model (`smollm2-cm`): an adaptive bias head.
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
//! Determinism: `q` is computed with [`super::activation::exp`] (no libm) in `f32`, each row's
//! sums taken in token order, and rows may be predicted in parallel because they only read `b`.
//! `b` is shared by all rows of a block and updated row by row, in row order, after each step, so
//! the decoder, which sees the same tokens in the same order, learns the same biases. It resets
//! with the block and survives a context-window slide.
//!
//! Identity: the learning rate and the version tag are hashed into the fingerprint, so a changed
//! constant gives a new name's archives rather than garbage.

use rayon::prelude::*;

use super::activation;
use super::{check_step, last_of_rows, BatchShape, Fingerprint, LanguageModel, ModelInfo};
use crate::tokenization::Tokenizer;
use crate::{Error, Result};

/// Every constant that changes a prediction; hashed into the fingerprint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BiasParams {
    /// Step size of the bias update per coded token.
    pub rate: f32,
    /// Biases are kept within `±limit`, so that no token's probability runs away.
    pub limit: f32,
}

/// The parameters of `-cm` over a token model.
pub(crate) const BIAS: BiasParams = BiasParams {
    rate: 0.3,
    limit: 8.0,
};

/// A token-level model with an adaptive bias head.
pub struct TokenMixed {
    inner: Box<dyn LanguageModel>,
    info: ModelInfo,
    params: BiasParams,
    /// One bias per token, shared by the block's rows.
    bias: Vec<f32>,
    /// `e^bias`, recomputed after each update.
    scale: Vec<f32>,
    /// Each row's last prediction `q` (rows × vocab), what the next update needs.
    predicted: Vec<f32>,
    /// Rows that have been predicted since the block started (the first input is BOS).
    started: Vec<bool>,
}

impl TokenMixed {
    /// Wraps a token-level model: `NAME-cm`, as `smollm2-cm`.
    pub fn new(inner: Box<dyn LanguageModel>) -> Result<TokenMixed> {
        TokenMixed::with(inner, BIAS)
    }

    pub(crate) fn with(inner: Box<dyn LanguageModel>, params: BiasParams) -> Result<TokenMixed> {
        let base = inner.info().clone();
        if base.vocab_size <= 256 {
            return Err(Error::Model(format!(
                "the token bias head is for models over token vocabularies; '{}' predicts {} \
                 symbols (byte models take '-cm', '-cm5')",
                base.name, base.vocab_size
            )));
        }
        let info = ModelInfo {
            name: format!("{}-cm", base.name),
            fingerprint: Fingerprint::of(&[
                b"llmzip-token-bias-v1",
                &base.fingerprint.0,
                format!("{params:?}").as_bytes(),
            ]),
            ..base
        };
        let vocab = info.vocab_size;
        Ok(TokenMixed {
            inner,
            info,
            params,
            bias: vec![0.0; vocab],
            scale: vec![1.0; vocab],
            predicted: Vec::new(),
            started: Vec::new(),
        })
    }

    /// Learns from each row's coded token (this step's input), in row order.
    fn learn(&mut self, inputs: &[u32]) {
        let vocab = self.info.vocab_size;
        let BiasParams { rate, limit } = self.params;
        // Rows that had a prediction, in row order.
        let rows: Vec<(usize, u32)> = inputs
            .iter()
            .enumerate()
            .filter(|&(row, _)| std::mem::replace(&mut self.started[row], true))
            .map(|(row, &token)| (row, token))
            .collect();
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
    }

    /// Turns the inner model's `probs` into `q ∝ p·e^b`, row by row, and keeps them.
    fn predict(&mut self, probs: &mut [f32]) {
        let vocab = self.info.vocab_size;
        let scale = &self.scale;
        probs.par_chunks_mut(vocab).for_each(|row| {
            let mut sum = 0f32;
            for (p, &s) in row.iter_mut().zip(scale) {
                *p *= s;
                sum += *p;
            }
            if sum > 0.0 && sum.is_finite() {
                let inv = 1.0 / sum;
                row.iter_mut().for_each(|p| *p *= inv);
            }
        });
        self.predicted.clear();
        self.predicted.extend_from_slice(probs);
    }
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
            .saturating_mul(8);
        own.saturating_add(self.inner.working_memory(shape))
    }

    fn start_block(&mut self, rows: usize) -> Result<()> {
        self.bias.fill(0.0);
        self.scale.fill(1.0);
        self.predicted = Vec::new();
        self.started = vec![false; rows];
        self.inner.start_block(rows)
    }

    /// The biases are the block's, not the context's: they stay.
    fn slide(&mut self, rows: usize) -> Result<()> {
        self.inner.slide(rows)
    }

    /// Only the last token of each row is new (the one just coded); the re-fed ones were learned.
    fn prefill(&mut self, tokens: &[u32], len: usize) -> Result<Vec<f32>> {
        let last = last_of_rows(tokens, self.started.len(), len)?;
        self.learn(&last);
        let mut probs = self.inner.prefill(tokens, len)?;
        self.predict(&mut probs);
        Ok(probs)
    }

    fn step(&mut self, inputs: &[u32]) -> Result<Vec<f32>> {
        check_step(inputs, self.started.len())?;
        self.learn(inputs);
        let mut probs = self.inner.step(inputs)?;
        self.predict(&mut probs);
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
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut a = TokenMixed::new(llama(&dir)).unwrap();
                let mut b = TokenMixed::new(llama(&dir)).unwrap();
                round_trip(&mut a, &mut b, &text, &schedule(24)).0
            })
        };
        assert_eq!(run(1), run(3));
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
    }
}
