//! The one loop that steps a model over a batch of segments. Compression and decompression both
//! call [`run`], differing only in the closure that turns a distribution into a token (encode the
//! known token, or decode the next one), so the two sides cannot drift apart.

use rayon::prelude::*;

use crate::coder::Quantized;
use crate::models::LanguageModel;
use crate::stats::{Profile, Stage};
use crate::{Error, Result};

/// Steps `model` over segments of the given lengths in lockstep.
///
/// At step `t` every row is fed its previous token (BOS at `t = 0`); rows whose segment has ended
/// keep being fed their last token so that the batch shape never changes, and their outputs are
/// ignored. `code(row, t, since_slide, probs, quantized)` must return the token at position `t`
/// of `row`, coded under `probs` as quantized for the range coder.
/// `on_step(tokens_done)` reports progress and may cancel by returning an error.
///
/// With a non-zero `window`, the model never holds more than `window` tokens: when it is full,
/// it [slides](LanguageModel::slide) and is re-fed BOS plus the most recent `window / 2 - 1`
/// tokens in one [`prefill`](LanguageModel::prefill), or, for a model that
/// [shifts](LanguageModel::shift) (decided by its header, so on both sides alike), keeps those
/// positions and is stepped on. All rows start together, so they all slide at the same
/// steps, which depend on nothing but `window`: the decoder replays them exactly.
///
/// `code` also learns how many steps ago the last slide was ([`steps_since_slide`]).
pub fn run(
    model: &mut dyn LanguageModel,
    lengths: &[usize],
    window: usize,
    profile: &mut Profile,
    mut on_step: impl FnMut(usize) -> Result<()>,
    mut code: impl FnMut(usize, usize, Option<usize>, &[f32], &Quantized) -> Result<u32>,
) -> Result<()> {
    let rows = lengths.len();
    let steps = lengths.iter().copied().max().unwrap_or(0);
    let vocab = model.info().vocab_size;
    let bos = model.info().bos;
    let mut inputs = vec![bos; rows];
    let mut quantized: Vec<Quantized> = (0..rows).map(|_| Quantized::default()).collect();
    profile.time(Stage::ModelInfer, || model.start_block(rows))?;
    let mut done = 0;
    // Tokens fed to each row so far (only kept when there is a window to slide).
    let mut fed: Vec<Vec<u32>> = vec![Vec::new(); if window > 0 { rows } else { 0 }];
    for t in 0..steps {
        let since_slide = steps_since_slide(t, window);
        let keep = window / 2;
        let shifted =
            since_slide == Some(0) && profile.time(Stage::ModelInfer, || model.shift(keep))?;
        let probs = if since_slide == Some(0) && !shifted {
            let mut batch = Vec::with_capacity(rows * keep);
            for (row, history) in fed.iter().enumerate() {
                batch.push(bos);
                batch.extend_from_slice(&history[history.len() + 2 - keep..]);
                batch.push(inputs[row]);
            }
            profile.time(Stage::ModelInfer, || -> Result<_> {
                model.slide(rows)?;
                model.prefill(&batch, keep)
            })?
        } else {
            profile.time(Stage::ModelInfer, || model.step(&inputs))?
        };
        for (history, &input) in fed.iter_mut().zip(&inputs) {
            if history.len() >= 2 * window {
                history.drain(..window);
            }
            history.push(input);
        }
        if probs.len() != rows * vocab {
            return Err(Error::Model(format!(
                "model returned {} probabilities for {rows} rows of {vocab}",
                probs.len()
            )));
        }
        profile.time(Stage::ArithCode, || -> Result<()> {
            // Every row's distribution quantized at once (a pass over the vocabulary each), then
            // coded in row order.
            quantized
                .par_iter_mut()
                .zip(probs.par_chunks(vocab.max(1)))
                .zip(lengths)
                .filter(|(_, &len)| t < len)
                .try_for_each(|((q, probs), _)| q.set(probs))?;
            for (row, &len) in lengths.iter().enumerate() {
                if t < len {
                    let probs = &probs[row * vocab..(row + 1) * vocab];
                    inputs[row] = code(row, t, since_slide, probs, &quantized[row])?;
                    done += 1;
                }
            }
            Ok(())
        })?;
        model.recycle(probs);
        on_step(done)?;
    }
    Ok(())
}

/// How many steps before step `t` the context window last slid (`Some(0)`: it slides at `t`),
/// or `None` before the first slide. The model holds `window` tokens at most: the first slide
/// comes when it is full, at step `window`; a slide's prefill leaves it holding `window / 2`,
/// each later step adds one, and the step that finds it full again slides: `window − window / 2
/// + 1` steps after the last. A function of `t` and `window` alone, the same on both sides.
pub fn steps_since_slide(t: usize, window: usize) -> Option<usize> {
    if window == 0 || t < window {
        return None;
    }
    Some((t - window) % (window - window / 2 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slide steps are those of a model whose context grows by one per step and is cut to
    /// half the window when full (what `run` used to count step by step).
    #[test]
    fn slides_come_when_the_window_is_full() {
        for window in [0usize, 2, 3, 8, 33] {
            let mut context = 0;
            for t in 0..200 {
                let slides = window > 0 && context == window;
                if slides {
                    context = window / 2;
                } else {
                    context += 1;
                }
                assert_eq!(
                    steps_since_slide(t, window) == Some(0),
                    slides,
                    "{window} {t}"
                );
            }
        }
        assert_eq!(steps_since_slide(10, 8), Some(2));
        assert_eq!(steps_since_slide(25, 16), Some(0));
        assert_eq!(steps_since_slide(7, 8), None);
    }
}
