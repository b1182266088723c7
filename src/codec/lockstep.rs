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
pub fn run(
    model: &mut dyn LanguageModel,
    lengths: &[usize],
    profile: &mut Profile,
    mut on_step: impl FnMut(usize) -> Result<()>,
    mut code: impl FnMut(usize, usize, &[f32]) -> Result<u32>,
) -> Result<()> {
    let rows = lengths.len();
    let steps = lengths.iter().copied().max().unwrap_or(0);
    let vocab = model.info().vocab_size;
    let mut inputs = vec![model.info().bos; rows];
    profile.time(Stage::ModelInfer, || model.reset(rows))?;
    let mut done = 0;
    for t in 0..steps {
        let probs = profile.time(Stage::ModelInfer, || model.step(&inputs))?;
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
