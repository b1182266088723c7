//! The one loop that steps a model over a batch of segments. Compression and decompression both
//! call [`run`], differing only in the closure that turns a distribution into a token (encode the
//! known token, or decode the next one), so the two sides cannot drift apart.

use crate::models::LanguageModel;
use crate::stats::{Profile, Stage};
use crate::{Error, Result};

/// Steps `model` over segments of the given lengths in lockstep.
///
/// At step `t` every row is fed its previous token (BOS at `t = 0`); rows whose segment has ended
/// keep being fed their last token so that the batch shape never changes, and their outputs are
/// ignored. `code(row, t, probs)` must return the token at position `t` of `row`.
/// `on_step(tokens_done)` reports progress and may cancel by returning an error.
///
/// With a non-zero `window`, the model never holds more than `window` tokens: when it is full,
/// it [slides](LanguageModel::slide) and is re-fed BOS plus the most recent `window / 2 - 1`
/// tokens in one [`prefill`](LanguageModel::prefill). All rows start together, so they all slide at the same
/// steps, which depend on nothing but `window`: the decoder replays them exactly.
pub fn run(
    model: &mut dyn LanguageModel,
    lengths: &[usize],
    window: usize,
    profile: &mut Profile,
    mut on_step: impl FnMut(usize) -> Result<()>,
    mut code: impl FnMut(usize, usize, &[f32]) -> Result<u32>,
) -> Result<()> {
    let rows = lengths.len();
    let steps = lengths.iter().copied().max().unwrap_or(0);
    let vocab = model.info().vocab_size;
    let bos = model.info().bos;
    let mut inputs = vec![bos; rows];
    profile.time(Stage::ModelInfer, || model.start_block(rows))?;
    let mut done = 0;
    // Tokens fed to each row so far (only kept when there is a window to slide).
    let mut fed: Vec<Vec<u32>> = vec![Vec::new(); if window > 0 { rows } else { 0 }];
    let mut context = 0;
    for t in 0..steps {
        let probs = if window > 0 && context == window {
            let keep = window / 2;
            let mut batch = Vec::with_capacity(rows * keep);
            for (row, history) in fed.iter().enumerate() {
                batch.push(bos);
                batch.extend_from_slice(&history[history.len() + 2 - keep..]);
                batch.push(inputs[row]);
            }
            context = keep;
            profile.time(Stage::ModelInfer, || -> Result<_> {
                model.slide(rows)?;
                model.prefill(&batch, keep)
            })?
        } else {
            context += 1;
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
            for (row, &len) in lengths.iter().enumerate() {
                if t < len {
                    inputs[row] = code(row, t, &probs[row * vocab..(row + 1) * vocab])?;
                    done += 1;
                }
            }
            Ok(())
        })?;
        on_step(done)?;
    }
    Ok(())
}
