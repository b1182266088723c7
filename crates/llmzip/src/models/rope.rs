//! Rotary position embeddings (RoPE), the one implementation both llama networks use: which
//! dimensions of a head rotate together, and the cosine and sine tables.
//!
//! GGUF files and Hugging Face weights differ in the pairs they rotate (llama.cpp permuted the
//! query and key matrices so that adjacent dimensions pair up); the network applies the variant
//! its weights were written for instead of permuting weights back.

use candle_core::{Device, Tensor};

use crate::Result;

/// Which dimensions of a head RoPE rotates together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rope {
    /// Adjacent pairs `(2i, 2i + 1)`: GGUF files (llama.cpp permuted the weights for it).
    Interleaved,
    /// Dimension `i` with `i + head_dim / 2`: Hugging Face weights.
    Halves,
}

/// Interleaved RoPE tables for positions `0..context` (`context × head_dim/2`).
pub(crate) fn rope_tables(
    context: usize,
    head_dim: usize,
    base: f32,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let half = head_dim / 2;
    let mut cos = Vec::with_capacity(context * half);
    let mut sin = Vec::with_capacity(context * half);
    for p in 0..context {
        for i in 0..half {
            let freq = 1.0 / (base as f64).powf(2.0 * i as f64 / head_dim as f64);
            let angle = p as f64 * freq;
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    Ok((
        Tensor::from_vec(cos, (context, half), device)?,
        Tensor::from_vec(sin, (context, half), device)?,
    ))
}
