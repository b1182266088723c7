//! The llama network as candle's ops (`f32` on GPUs, `q8_0` and a GGUF file's own format):
//! layers, the KV cache, and weight matrices dense or quantized.

use candle_core::quantized::QMatMul;
use candle_core::{Module, Tensor};

use crate::models::llama_own::CandleNet;
use crate::models::rope::Rope;
use crate::models::transformer::{self, KvCache};
use crate::Result;

pub(super) struct Layer {
    pub(super) attn_norm: Tensor,
    pub(super) wq: Matrix,
    pub(super) wk: Matrix,
    pub(super) wv: Matrix,
    pub(super) wo: Matrix,
    pub(super) ffn_norm: Tensor,
    pub(super) gate: Matrix,
    pub(super) up: Matrix,
    pub(super) down: Matrix,
    pub(super) cache: KvCache,
}

/// The network as candle ops.
pub struct CandleLlama {
    pub(super) embed: Tensor,
    pub(super) layers: Vec<Layer>,
    pub(super) norm: Tensor,
    pub(super) output: Matrix,
    pub(super) cos: Tensor,
    pub(super) sin: Tensor,
    pub(super) heads: usize,
    pub(super) kv_heads: usize,
    pub(super) eps: f32,
    pub(super) rope: Rope,
}

impl CandleNet for CandleLlama {
    fn clear_cache(&mut self) {
        for layer in &mut self.layers {
            layer.cache.clear();
        }
    }

    fn forward(&mut self, ids: &Tensor, pos: usize) -> Result<Tensor> {
        let (rows, len) = ids.dims2()?;
        let width = self.embed.dim(1)?;
        let mut h = self
            .embed
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((rows, len, width))?;
        let cos = self.cos.narrow(0, pos, len)?;
        let sin = self.sin.narrow(0, pos, len)?;
        for layer in &mut self.layers {
            let x = candle_nn::ops::rms_norm(&h, &layer.attn_norm, self.eps)?;
            let q = transformer::split_heads(&apply(&layer.wq, &x)?, self.heads)?;
            let k = transformer::split_heads(&apply(&layer.wk, &x)?, self.kv_heads)?;
            let v = transformer::split_heads(&apply(&layer.wv, &x)?, self.kv_heads)?;
            let rope = match self.rope {
                Rope::Interleaved => candle_nn::rotary_emb::rope_i,
                Rope::Halves => candle_nn::rotary_emb::rope,
            };
            let (q, k) = (rope(&q, &cos, &sin)?, rope(&k, &cos, &sin)?);
            let (k, v) = layer.cache.append(&k, &v)?;
            let attn = transformer::causal_attention(&q, &k, &v)?;
            h = (h + apply(&layer.wo, &attn)?)?;
            let x = candle_nn::ops::rms_norm(&h, &layer.ffn_norm, self.eps)?;
            let gated = (candle_nn::ops::silu(&apply(&layer.gate, &x)?)? * apply(&layer.up, &x)?)?;
            h = (h + apply(&layer.down, &gated)?)?;
        }
        let last =
            candle_nn::ops::rms_norm(&transformer::last_position(&h)?, &self.norm, self.eps)?;
        apply(&self.output, &last)
    }
}

/// A weight matrix for candle: dequantized and stored transposed (`in × out`, contiguous, which
/// the f32 matmul kernels read without repacking), or quantized (`out × in`, ggml layout).
pub(super) enum Matrix {
    Dense(Tensor),
    Quantized(QMatMul),
}

/// `w` applied to the last dimension of `x` (any rank), as one 2-D matmul.
pub(super) fn apply(w: &Matrix, x: &Tensor) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let flat = x.flatten_to(dims.len().saturating_sub(2))?.contiguous()?;
    let y = match w {
        Matrix::Dense(w) => flat.matmul(w)?,
        Matrix::Quantized(w) => w.forward(&flat)?,
    };
    let mut out = dims;
    *out.last_mut().expect("rank >= 1") = y.dim(1)?;
    Ok(y.reshape(out)?)
}
