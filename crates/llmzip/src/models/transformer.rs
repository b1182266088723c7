//! What the transformer models (GPT-2, llama-family GGUF) share: a preallocated KV cache,
//! causal attention with grouped key/value heads, and the adapter that makes any
//! [`TransformerNet`] a [`LanguageModel`].
//!
//! Each architecture file only describes its layers; batching, positions, cache resets and the
//! conversion from logits to probabilities live here once.

use candle_core::{DType, Device, Tensor, D};

use super::{BatchShape, LanguageModel, ModelInfo};
use crate::tokenization::Tokenizer;
use crate::{Error, Result};

/// A decoder-only network that keeps its own KV cache.
pub trait TransformerNet: Send {
    /// Runs `ids` (`rows × len`) at positions `pos..pos + len` of every row, appending to the
    /// cache, and returns the logits after the last position, `rows × vocab`.
    fn forward(&mut self, ids: &Tensor, pos: usize) -> Result<Tensor>;
    /// [`TransformerNet::forward`] of `ids` (`rows × len`, row-major) as next-token
    /// probabilities, `rows × vocab` (candle's softmax unless the network has its own).
    fn probabilities(&mut self, ids: &[u32], rows: usize, pos: usize) -> Result<Vec<f32>> {
        let ids = Tensor::from_slice(ids, (rows, ids.len() / rows.max(1)), self.device())?;
        softmax_rows(&self.forward(&ids, pos)?)
    }
    /// Takes back a vector [`TransformerNet::probabilities`] returned (see
    /// [`LanguageModel::recycle`]).
    fn recycle(&mut self, probs: Vec<f32>) {
        drop(probs);
    }
    /// Empties the KV cache.
    fn clear_cache(&mut self);
    /// [`LanguageModel::shift`] of the KV cache: `false` where the network does not shift.
    fn shift(&mut self, keep: usize) -> Result<bool> {
        let _ = keep;
        Ok(false)
    }
    /// Where the network computes.
    fn device(&self) -> &Device;
    /// The sizes that determine working memory.
    fn shape(&self) -> NetShape;
    /// Upper estimate of the working memory of a lockstep batch, in bytes.
    fn working_memory(&self, shape: &BatchShape) -> u64 {
        self.shape().working_memory(shape)
    }
}

/// The sizes of a transformer that determine its working memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetShape {
    pub layers: usize,
    pub width: usize,
    /// Hidden width of the feed-forward block.
    pub ffn: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub vocab: usize,
}

impl NetShape {
    /// Upper estimate of the working memory of a lockstep batch, in bytes (f32 throughout).
    ///
    /// Per row: the KV cache of the positions held, counted twice (its buffers grow by doubling
    /// and are zero-filled, so only the positions written become resident, but the old buffer is
    /// copied before it is freed, and the allocator keeps some of what is freed), plus the larger
    /// of a step's and a prefill's activations. A prefill of `L` tokens holds `L × (8·width +
    /// 3·ffn)` activations and, per head, an `L × L` score matrix in three forms (scores, masked,
    /// softmax).
    ///
    /// Measured (SmolLM2 f32, 10 rows of ~1,089 positions, the first 40,000 bytes of alice29):
    /// 560 MiB of resident memory above the loaded model, where this estimate says 1,010 MiB.
    pub fn working_memory(&self, shape: &BatchShape) -> u64 {
        let f = 4u64; // bytes per f32
        let positions = shape.positions;
        let kv_per_position = (self.layers * 2 * self.kv_heads * self.head_dim) as u64 * f;
        let kv = kv_per_position.saturating_mul(positions).saturating_mul(2);
        let activations = |len: u64, keys: u64| -> u64 {
            let linear = len.saturating_mul((8 * self.width + 3 * self.ffn) as u64 * f);
            let scores = (self.heads as u64 * 3 * f)
                .saturating_mul(len)
                .saturating_mul(keys);
            linear.saturating_add(scores)
        };
        let step = activations(1, positions).saturating_add(self.vocab as u64 * 4 * f);
        let prefill = activations(shape.prefill, shape.prefill);
        let per_row = kv.saturating_add(step.max(prefill));
        shape.rows.saturating_mul(per_row)
    }
}

/// A [`TransformerNet`] plus its tokenizer, stepped in lockstep batches.
pub struct Transformer<N> {
    info: ModelInfo,
    tokenizer: Box<dyn Tokenizer>,
    net: N,
    rows: usize,
    pos: usize,
}

impl<N: TransformerNet> Transformer<N> {
    /// Wraps a network, its tokenizer and its identity.
    pub fn new(info: ModelInfo, tokenizer: Box<dyn Tokenizer>, net: N) -> Self {
        Transformer {
            info,
            tokenizer,
            net,
            rows: 0,
            pos: 0,
        }
    }

    /// Renames the model (for built-in names that resolve to a file).
    pub fn rename(&mut self, name: &str) {
        self.info.name = name.to_string();
    }

    fn run(&mut self, tokens: &[u32], len: usize) -> Result<Vec<f32>> {
        let limit = self.info.max_context.unwrap_or(u64::MAX) as usize;
        if self.rows == 0 || tokens.len() != self.rows * len || self.pos + len > limit {
            return Err(Error::Model(format!(
                "cannot feed {} tokens to {} rows at position {} (context {limit})",
                tokens.len(),
                self.rows,
                self.pos
            )));
        }
        let probs = self.net.probabilities(tokens, self.rows, self.pos)?;
        self.pos += len;
        Ok(probs)
    }
}

impl<N: TransformerNet> LanguageModel for Transformer<N> {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn tokenizer(&self) -> &dyn Tokenizer {
        self.tokenizer.as_ref()
    }

    fn working_memory(&self, shape: &BatchShape) -> u64 {
        self.net.working_memory(shape)
    }

    fn start_block(&mut self, rows: usize) -> Result<()> {
        self.net.clear_cache();
        self.rows = rows;
        self.pos = 0;
        Ok(())
    }

    /// The KV cache is all the context there is; the prefill re-fills it.
    fn slide(&mut self, rows: usize) -> Result<()> {
        self.start_block(rows)
    }

    fn shift(&mut self, keep: usize) -> Result<bool> {
        // The network checks `keep` against the positions it holds (`self.pos` of them).
        if !self.net.shift(keep)? {
            return Ok(false);
        }
        self.pos = keep - 1;
        Ok(true)
    }

    fn step(&mut self, inputs: &[u32]) -> Result<Vec<f32>> {
        self.run(inputs, 1)
    }

    fn prefill(&mut self, tokens: &[u32], len: usize) -> Result<Vec<f32>> {
        self.run(tokens, len)
    }

    fn recycle(&mut self, probs: Vec<f32>) {
        self.net.recycle(probs);
    }
}

/// candle's softmax of each row of `logits`, flattened.
pub fn softmax_rows(logits: &Tensor) -> Result<Vec<f32>> {
    let probs = candle_nn::ops::softmax_last_dim(&logits.to_dtype(DType::F32)?)?;
    Ok(probs.flatten_all()?.to_vec1::<f32>()?)
}

/// Keys and values of one layer for all rows, in buffers that grow by doubling (up to `limit`)
/// so that a step writes one slot instead of copying the cache.
///
/// `clear` drops the buffers: the memory layout the attention kernels see (buffer capacity, hence
/// strides) must depend only on the steps since the last reset, which both sides replay, and not
/// on what the same model object computed before (an earlier file or a compression in the same
/// process).
#[derive(Debug, Clone)]
pub struct KvCache {
    k: Option<Tensor>,
    v: Option<Tensor>,
    len: usize,
    limit: usize,
}

impl KvCache {
    pub fn new(limit: usize) -> Self {
        KvCache {
            k: None,
            v: None,
            len: 0,
            limit,
        }
    }

    pub fn clear(&mut self) {
        self.k = None;
        self.v = None;
        self.len = 0;
    }

    /// Appends `k`, `v` (`rows × heads × len × head_dim`) and returns views of everything
    /// cached so far.
    pub fn append(&mut self, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let (rows, heads, len, dim) = k.dims4()?;
        let needed = self.len + len;
        if needed > self.limit {
            return Err(Error::Model(format!(
                "context overflow: {needed} positions, the model has {}",
                self.limit
            )));
        }
        let capacity = match &self.k {
            Some(t) if t.dims()[..2] == [rows, heads] && t.dims()[3] == dim => t.dim(2)?,
            Some(_) => {
                return Err(Error::Model(
                    "KV cache fed a different batch shape without a reset".into(),
                ))
            }
            None => 0,
        };
        if needed > capacity {
            let grown = needed.max(2 * capacity).max(64).min(self.limit);
            let shape = (rows, heads, grown, dim);
            let (nk, nv) = (
                Tensor::zeros(shape, k.dtype(), k.device())?,
                Tensor::zeros(shape, v.dtype(), v.device())?,
            );
            if let (Some(ok), Some(ov), true) = (&self.k, &self.v, self.len > 0) {
                nk.slice_set(&ok.narrow(2, 0, self.len)?.contiguous()?, 2, 0)?;
                nv.slice_set(&ov.narrow(2, 0, self.len)?.contiguous()?, 2, 0)?;
            }
            self.k = Some(nk);
            self.v = Some(nv);
        }
        let (kc, vc) = (self.k.as_ref().unwrap(), self.v.as_ref().unwrap());
        kc.slice_set(&k.contiguous()?, 2, self.len)?;
        vc.slice_set(&v.contiguous()?, 2, self.len)?;
        self.len += len;
        Ok((kc.narrow(2, 0, self.len)?, vc.narrow(2, 0, self.len)?))
    }
}

/// Causal attention of `q` (`rows × heads × len × d`) over cached `k`, `v`
/// (`rows × kv_heads × total × d`, the last `len` positions being the queries' own), where query
/// head `h` reads key/value head `h / (heads / kv_heads)`.
///
/// Grouped heads are handled by folding the query heads of one group into the query axis, so
/// keys and values are never copied per head.
pub fn causal_attention(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
    let (rows, heads, len, dim) = q.dims4()?;
    let (_, kv_heads, total, _) = k.dims4()?;
    let group = heads / kv_heads;
    let q = q
        .contiguous()?
        .reshape((rows, kv_heads, group * len, dim))?;
    let scale = 1.0 / (dim as f64).sqrt();
    let mut scores = (q.matmul(&k.t()?)? * scale)?;
    if len > 1 {
        // Query i sits at position total - len + i and may see keys 0..=that position.
        let past = total - len;
        let mask: Vec<f32> = (0..group * len)
            .flat_map(|qi| {
                let i = qi % len;
                (0..total).map(move |j| {
                    if j <= past + i {
                        0.0
                    } else {
                        f32::NEG_INFINITY
                    }
                })
            })
            .collect();
        let mask = Tensor::from_vec(mask, (group * len, total), q.device())?;
        scores = scores.broadcast_add(&mask)?;
    }
    let weights = candle_nn::ops::softmax_last_dim(&scores)?;
    let out = weights.matmul(v)?; // rows × kv_heads × group·len × d
    Ok(out
        .reshape((rows, heads, len, dim))?
        .transpose(1, 2)?
        .reshape((rows, len, heads * dim))?)
}

/// `x` (`rows × len × d`) at its last position, `rows × d`.
pub fn last_position(x: &Tensor) -> Result<Tensor> {
    let len = x.dim(1)?;
    Ok(x.narrow(1, len - 1, 1)?.squeeze(1)?.contiguous()?)
}

/// Splits the last dimension of `x` (`rows × len × heads·d`) into heads: `rows × heads × len × d`.
pub fn split_heads(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (rows, len, width) = x.dims3()?;
    Ok(x.reshape((rows, len, heads, width / heads))?
        .transpose(1, 2)?
        .contiguous()?)
}

/// Applies a linear map whose weight is given as `in × out` (GPT-2's Conv1D layout, or a
/// transposed view of PyTorch's `out × in`) to `x` of rank 2 or more.
pub fn linear(x: &Tensor, weight_t: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let flat = x.flatten_to(dims.len() - 2)?;
    let mut y = flat.matmul(weight_t)?;
    if let Some(b) = bias {
        y = y.broadcast_add(b)?;
    }
    let mut out_dims = dims;
    *out_dims.last_mut().unwrap() = y.dim(D::Minus1)?;
    Ok(y.reshape(out_dims)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attention over a cache filled in one prefill equals attention filled step by step, up
    /// to float rounding, and grouped heads read the right key/value head.
    #[test]
    fn prefill_and_steps_agree() {
        let dev = Device::Cpu;
        let (rows, heads, kv_heads, len, dim) = (2, 4, 2, 5, 8);
        let q = Tensor::randn(0f32, 1.0, (rows, heads, len, dim), &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (rows, kv_heads, len, dim), &dev).unwrap();
        let v = Tensor::randn(0f32, 1.0, (rows, kv_heads, len, dim), &dev).unwrap();
        let mut cache = KvCache::new(16);
        let (kc, vc) = cache.append(&k, &v).unwrap();
        let full = causal_attention(&q, &kc, &vc).unwrap();

        let mut cache = KvCache::new(16);
        for t in 0..len {
            let (kc, vc) = cache
                .append(&k.narrow(2, t, 1).unwrap(), &v.narrow(2, t, 1).unwrap())
                .unwrap();
            let one = causal_attention(&q.narrow(2, t, 1).unwrap(), &kc, &vc).unwrap();
            let want = full.narrow(1, t, 1).unwrap();
            let diff = (one - want).unwrap().abs().unwrap().max_all().unwrap();
            assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
        }

        // Reference for head 3 of row 1 at the last position: plain softmax(q·k/√d)·v with
        // key/value head 3 / 2 = 1.
        let qh = q.get(1).unwrap().get(3).unwrap().get(len - 1).unwrap();
        let kh = k.get(1).unwrap().get(1).unwrap();
        let vh = v.get(1).unwrap().get(1).unwrap();
        let s = (kh.matmul(&qh.unsqueeze(1).unwrap()).unwrap() / (dim as f64).sqrt()).unwrap();
        let w = candle_nn::ops::softmax(&s.squeeze(1).unwrap(), 0).unwrap();
        let want = w
            .unsqueeze(0)
            .unwrap()
            .matmul(&vh)
            .unwrap()
            .squeeze(0)
            .unwrap();
        let got = full
            .get(1)
            .unwrap()
            .get(len - 1)
            .unwrap()
            .narrow(0, 3 * dim, dim)
            .unwrap();
        let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
    }
}
