//! The llama network on llmzip's own CPU code: the `int8` and `f32-portable` weight formats; and
//! GPT-2 as a variant of it ([`Gpt2Parts`]: layer norms, biases, learned positions, GELU), in
//! `f32-portable`.
//!
//! **Why not candle here.** At the lockstep batch the f32 network spends most of a step outside
//! the weight products: in attention, which candle runs as one small matrix product per row and
//! head (thousands of calls per step, each waking the thread pool), in thread hand-offs, and in
//! zeroing the fresh pages every op allocates (docs/models.md, "Where the time goes"). This file
//! computes the same network on plain `f32` buffers: the weight products in [`super::int8`]'s
//! batched kernels (`int8`) or [`super::matmul`]'s fixed-order f32 kernel (`f32-portable`),
//! attention one row per task, everything else in loops whose order is written down here.
//!
//! **Why it is the same everywhere.** Every sum is taken in an order fixed by this code (never by
//! a thread count or a SIMD width chosen at run time), no fused multiply–add is left to the
//! compiler, and `exp` is llmzip's own ([`super::activation`]); only `sqrt` (exact in IEEE 754)
//! and the RoPE tables (libm `sin`/`cos` in `f64`, rounded to `f32`) come from the platform.
//! Threads split rows and output columns, never a sum.
//!
//! **Layout.** Activations are `tokens × width`, token `t` of row `r` at `r · len + t`. The KV
//! cache keeps each row's key/value head apart (`positions × head_dim`, in chunks of 256
//! positions), and one task reads it once for all the query heads that share it.

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use super::activation;
use super::int8::{Int8Matrix, QuantizedRows, Scratch};
use super::kv8::{self, Head8, Query};
use super::matmul::PackedMatrix;
use super::rope::Rope;
use super::transformer::{self, NetShape};
use super::BatchShape;
use crate::{Error, Result};

/// A transformer's network as candle's ops (what `f32` and `q8_0` archives and GPUs compute
/// with): llama's and GPT-2's.
pub trait CandleNet: Send {
    /// Logits after each row's last position (see [`transformer::TransformerNet::forward`]).
    fn forward(&mut self, ids: &Tensor, pos: usize) -> Result<Tensor>;
    /// Empties the KV cache.
    fn clear_cache(&mut self);
}

/// Who computes a transformer: candle's ops, or this file's network (`int8`, `f32-portable`).
/// The one dispatch between them, for every architecture.
pub(super) enum Net<C> {
    Candle(C),
    Own(Box<OwnLlama>),
}

impl<C: CandleNet> Net<C> {
    /// [`transformer::TransformerNet::forward`], the logits as a tensor on `device`.
    pub fn forward(&mut self, ids: &Tensor, pos: usize, device: &Device) -> Result<Tensor> {
        match self {
            Net::Candle(net) => net.forward(ids, pos),
            Net::Own(net) => {
                let rows = ids.dim(0)?;
                let logits = net.logits(&ids.flatten_all()?.to_vec1::<u32>()?, rows, pos)?;
                let vocab = logits.len() / rows.max(1);
                Ok(Tensor::from_vec(logits, (rows, vocab), device)?)
            }
        }
    }

    /// [`transformer::TransformerNet::probabilities`]: this file's softmax, or candle's.
    pub fn probabilities(
        &mut self,
        ids: &[u32],
        rows: usize,
        pos: usize,
        device: &Device,
    ) -> Result<Vec<f32>> {
        match self {
            Net::Own(net) => net.probabilities(ids, rows, pos),
            Net::Candle(net) => {
                let ids = Tensor::from_slice(ids, (rows, ids.len() / rows.max(1)), device)?;
                transformer::softmax_rows(&net.forward(&ids, pos)?)
            }
        }
    }

    /// [`transformer::TransformerNet::recycle`].
    pub fn recycle(&mut self, probs: Vec<f32>) {
        if let Net::Own(net) = self {
            net.spare = probs;
        }
    }

    /// [`transformer::TransformerNet::clear_cache`].
    pub fn clear_cache(&mut self) {
        match self {
            Net::Candle(net) => net.clear_cache(),
            Net::Own(net) => net.clear(),
        }
    }

    /// [`transformer::TransformerNet::working_memory`] of a network of `shape`.
    pub fn working_memory(&self, shape: &NetShape, batch: &BatchShape) -> u64 {
        match self {
            Net::Candle(_) => shape.working_memory(batch),
            Net::Own(net) => working_memory(shape, batch, net.is_f32(), net.kv8),
        }
    }
}

/// A transformer network with the device it runs on and its shape: the one
/// [`TransformerNet`](transformer::TransformerNet) of llamas and GPT-2 (`llama::Llama`,
/// `gpt2::Gpt2`), whichever network computes inside.
pub struct Placed<C> {
    pub(super) net: Net<C>,
    pub(super) device: Device,
    pub(super) shape: NetShape,
}

impl<C: CandleNet> transformer::TransformerNet for Placed<C> {
    fn forward(&mut self, ids: &Tensor, pos: usize) -> Result<Tensor> {
        self.net.forward(ids, pos, &self.device)
    }

    fn probabilities(&mut self, ids: &[u32], rows: usize, pos: usize) -> Result<Vec<f32>> {
        self.net.probabilities(ids, rows, pos, &self.device)
    }

    fn recycle(&mut self, probs: Vec<f32>) {
        self.net.recycle(probs)
    }

    fn clear_cache(&mut self) {
        self.net.clear_cache()
    }

    fn shift(&mut self, keep: usize) -> Result<bool> {
        Ok(match &mut self.net {
            Net::Own(net) => net.shift(keep),
            Net::Candle(_) => false,
        })
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn shape(&self) -> NetShape {
        self.shape
    }

    fn working_memory(&self, shape: &BatchShape) -> u64 {
        self.net.working_memory(&self.shape, shape)
    }
}

/// A weight matrix of the network, in one of its two formats.
pub(super) enum Matrix {
    /// Q8_0 weights times Q8_0 activations ([`super::int8`]).
    Int8(Int8Matrix),
    /// f32 weights, each output summed in one fixed order ([`super::matmul`]).
    F32(PackedMatrix),
}

impl Matrix {
    /// The matrix in `format` (`int8` or not) from its weights, `out × inner` row-major.
    pub fn new(int8: bool, weights: &[f32], out: usize, inner: usize) -> Matrix {
        if int8 {
            Matrix::Int8(Int8Matrix::quantize(weights, out, inner))
        } else {
            Matrix::F32(PackedMatrix::from_outputs(weights, out, inner))
        }
    }

    /// Outputs per row.
    pub fn out(&self) -> usize {
        match self {
            Matrix::Int8(m) => m.out(),
            Matrix::F32(m) => m.out(),
        }
    }

    /// `y = x · Wᵀ` for `rows` rows of `x`.
    fn matmul_into(&self, x: &[f32], rows: usize, y: &mut Vec<f32>, scratch: &mut Scratch) {
        match self {
            Matrix::Int8(m) => m.matmul_into(x, rows, y, scratch),
            Matrix::F32(m) => *y = m.matmul(x, rows, None),
        }
    }
}

/// What GPT-2 adds to a llama block: biases on the norms (which makes them layer norms: the
/// mean is subtracted too) and on every product. GELU replaces the gated SiLU feed-forward, and
/// `gate_up` holds the single up projection.
pub(super) struct Gpt2Parts {
    pub attn_norm_bias: Vec<f32>,
    pub qkv_bias: Vec<f32>,
    pub wo_bias: Vec<f32>,
    pub ffn_norm_bias: Vec<f32>,
    pub up_bias: Vec<f32>,
    pub down_bias: Vec<f32>,
}

/// What Gemma 3 adds to the network: its embeddings are scaled, and its sliding-window layers
/// rotate with a RoPE base of their own.
pub(super) struct Gemma {
    /// What each embedding is multiplied by: `√width`.
    pub embed_scale: f32,
    /// The RoPE tables of the sliding-window layers (`context × head_dim / 2` each).
    pub local_cos: Vec<f32>,
    pub local_sin: Vec<f32>,
}

/// What Gemma 3 adds to a llama block: RMS norms of each query and key head (before RoPE) and of
/// the attention's and the feed-forward block's outputs (before they are added), a GELU-gated
/// feed-forward block instead of SiLU, and in most layers a sliding attention window.
pub(super) struct GemmaLayer {
    pub q_norm: Vec<f32>,
    pub k_norm: Vec<f32>,
    pub post_attn_norm: Vec<f32>,
    pub post_ffn_norm: Vec<f32>,
    /// The positions a query sees in a sliding-window layer, itself included; `None` in a
    /// global layer.
    pub window: Option<usize>,
}

/// One transformer block.
pub(super) struct Layer {
    /// GPT-2's biases; `None` for a llama block.
    pub gpt2: Option<Gpt2Parts>,
    /// Gemma 3's norms and window; `None` for a llama block.
    pub gemma: Option<GemmaLayer>,
    pub attn_norm: Vec<f32>,
    /// Queries, keys and values in one product (`(heads + 2·kv_heads)·head_dim` outputs).
    pub qkv: Matrix,
    pub wo: Matrix,
    pub ffn_norm: Vec<f32>,
    /// Gate and up projections in one product (`2·ffn` outputs).
    pub gate_up: Matrix,
    pub down: Matrix,
    /// The KV cache: for row `r` and key/value head `g`, `cache[r · kv_heads + g]`.
    pub cache: Vec<HeadCache>,
}

/// The keys and values one key/value head has seen in one row, `positions × head_dim` each, in
/// chunks of [`CHUNK`] positions: the cache grows a chunk at a time and is never moved (a
/// doubling buffer was copying and page-faulting 8 % of a run away), and a reset keeps the
/// chunks for the next block.
#[derive(Default)]
pub(super) struct F32Head {
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    len: usize,
}

/// One key/value head's cache in one row, in the network's cache format.
pub(super) enum HeadCache {
    /// `int8`, `f32-portable`, GPT-2's formats: f32 keys and values.
    F32(F32Head),
    /// `int8-kv8` ([`super::kv8`]).
    Int8(Head8),
}

impl HeadCache {
    fn new(kv8: bool, d: usize) -> HeadCache {
        if kv8 {
            HeadCache::Int8(Head8::new(d))
        } else {
            HeadCache::F32(F32Head::default())
        }
    }

    fn push(&mut self, key: &[f32], value: &[f32]) {
        match self {
            HeadCache::F32(h) => h.push(key, value),
            HeadCache::Int8(h) => h.push(key, value),
        }
    }

    fn clear(&mut self) {
        match self {
            HeadCache::F32(h) => h.clear(),
            HeadCache::Int8(h) => h.clear(),
        }
    }
}

/// Positions per chunk of a [`HeadCache`] (at most `CHUNK − 1` positions of slack per row).
const CHUNK: usize = 256;

/// Upper estimate of the working memory of a lockstep batch, in bytes: per row, the KV cache of
/// the positions held (in whole chunks, written once and never copied) with half as much again
/// for the allocator, the larger of a step's and a prefill's intermediate vectors, and two
/// output rows (the one being computed and the one the codec hands back). Attention keeps only
/// one row of scores per task, never a `len × len` matrix.
///
/// Measured: SmolLM2 on alice29 at the default schedule (28 rows of ~1.5 K positions, a cache of
/// 1.9 GiB) peaked 2,412 MiB above the 544 MiB of a run on 2 KB, which this estimate's
/// 2.9 GiB covers; the cache alone would not (docs/models.md, "The int8 network").
///
/// An `int8-kv8` cache takes [`kv8::bytes_per_position`] per position and head instead of 8
/// bytes per value.
///
/// The `f32-portable` format's products also keep a panel-major copy of their output: twice the
/// largest product (`2·ffn` per token) more.
pub(super) fn working_memory(
    net: &NetShape,
    shape: &BatchShape,
    f32_products: bool,
    kv8: bool,
) -> u64 {
    let f = 4u64;
    let per_head = if kv8 {
        kv8::bytes_per_position(net.head_dim)
    } else {
        2 * net.head_dim as u64 * f
    };
    let kv_per_position = (net.layers * net.kv_heads) as u64 * per_head;
    let positions = shape.positions.div_ceil(CHUNK as u64) * CHUNK as u64;
    let kv = kv_per_position.saturating_mul(positions).saturating_mul(3) / 2;
    let qkv = ((net.heads + 2 * net.kv_heads) * net.head_dim) as u64;
    // h, x, qkv, attention output, the activated and the gate/up vectors, a product's output,
    // and the quantized activations (a byte per input).
    let mut per_token = (4 * net.width as u64 + qkv + 3 * net.ffn as u64) * f + 2 * net.ffn as u64;
    if f32_products {
        per_token += 4 * net.ffn as u64 * f;
    }
    let tokens = shape.prefill.max(1);
    let scores = (net.heads as u64 * f).saturating_mul(positions.max(shape.prefill));
    let output = 2 * net.vocab as u64 * f;
    let per_row = kv
        .saturating_add(per_token.saturating_mul(tokens))
        .saturating_add(scores)
        .saturating_add(output);
    shape.rows.saturating_mul(per_row)
}

impl F32Head {
    fn push(&mut self, key: &[f32], value: &[f32]) {
        let c = self.len / CHUNK;
        if c == self.keys.len() {
            self.keys.push(Vec::with_capacity(CHUNK * key.len()));
            self.values.push(Vec::with_capacity(CHUNK * value.len()));
        }
        self.keys[c].extend_from_slice(key);
        self.values[c].extend_from_slice(value);
        self.len += 1;
    }

    fn clear(&mut self) {
        self.keys.iter_mut().for_each(Vec::clear);
        self.values.iter_mut().for_each(Vec::clear);
        self.len = 0;
    }

    /// The first `n` keys, chunk by chunk (`positions × d` slices, in order).
    fn keys(&self, n: usize, d: usize) -> impl Iterator<Item = &[f32]> {
        Self::first(&self.keys, n, d)
    }

    /// The first `n` values, chunk by chunk.
    fn values(&self, n: usize, d: usize) -> impl Iterator<Item = &[f32]> {
        Self::first(&self.values, n, d)
    }

    fn first(chunks: &[Vec<f32>], n: usize, d: usize) -> impl Iterator<Item = &[f32]> {
        chunks
            .iter()
            .enumerate()
            .take(n.div_ceil(CHUNK))
            .map(move |(c, chunk)| &chunk[..(n - c * CHUNK).min(CHUNK) * d])
    }
}

impl Layer {
    /// Whether the layer attends over a sliding window (and rotates with Gemma's local tables).
    fn is_local(&self) -> bool {
        self.gemma.as_ref().is_some_and(|g| g.window.is_some())
    }
}

/// The whole network and its KV cache.
pub(super) struct OwnLlama {
    /// `vocab × width`; empty where the embedding is read from the rows of an int8 `output`
    /// (Gemma 3, whose 262 K × 640 embedding is tied to its output: 671 MB in f32 that the int8
    /// copy makes unnecessary).
    pub embed: Vec<f32>,
    pub layers: Vec<Layer>,
    pub norm: Vec<f32>,
    /// GPT-2's final norm bias (a layer norm); `None` for llamas.
    pub norm_bias: Option<Vec<f32>>,
    /// GPT-2's learned position embeddings (`context × width`), added to the token embeddings;
    /// llamas rotate queries and keys instead (`rope`).
    pub positions: Option<Vec<f32>>,
    pub output: Matrix,
    /// `context × head_dim / 2` each.
    pub cos: Vec<f32>,
    pub sin: Vec<f32>,
    pub width: usize,
    pub ffn: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub eps: f32,
    /// How queries and keys are rotated; `None` (GPT-2): not at all.
    pub rope: Option<Rope>,
    /// Gemma 3's scale and local RoPE tables; `None` for other models.
    pub gemma: Option<Gemma>,
    /// Whether the KV cache is held in 8 bits (`int8-kv8`, [`super::kv8`]) rather than f32.
    pub kv8: bool,
    pub context: usize,
    /// Rows of the cached batch and positions cached per row.
    pub rows: usize,
    pub cached: usize,
    /// A step's intermediate vectors, kept from step to step.
    pub buffers: Buffers,
    /// A vector of probabilities the codec handed back, for the next step's output.
    pub spare: Vec<f32>,
}

/// The intermediate vectors of a forward pass (`tokens × width` and the like).
#[derive(Default)]
pub(super) struct Buffers {
    h: Vec<f32>,
    x: Vec<f32>,
    qkv: Vec<f32>,
    attn: Vec<f32>,
    act: Vec<f32>,
    /// A product's output.
    y: Vec<f32>,
    scratch: Scratch,
    /// Each row's attention scores, kept from step to step instead of allocated per task and
    /// layer.
    scores: Vec<Vec<f32>>,
    /// Each row's quantized queries (`int8-kv8`).
    queries: Vec<QuantizedRows>,
}

/// `x · w / rms(x)` for every vector of `x` (each `w.len()` wide), into `out`.
fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut Vec<f32>) {
    let width = w.len();
    out.clear();
    out.resize(x.len(), 0.0);
    for (o, v) in out.chunks_exact_mut(width).zip(x.chunks_exact(width)) {
        let sum = v.iter().fold(0f32, |s, &a| s + a * a);
        let inv = 1.0 / (sum / width as f32 + eps).sqrt();
        for ((o, &a), &g) in o.iter_mut().zip(v).zip(w) {
            *o = (a * inv) * g;
        }
    }
}

/// [`rms_norm`] of one vector, in place: the same operations.
fn rms_norm_in_place(v: &mut [f32], w: &[f32], eps: f32) {
    let sum = v.iter().fold(0f32, |s, &a| s + a * a);
    let inv = 1.0 / (sum / w.len() as f32 + eps).sqrt();
    for (a, &g) in v.iter_mut().zip(w) {
        *a = (*a * inv) * g;
    }
}

/// [`rms_norm`], or with a bias a layer norm: `(x − mean) / √(var + ε) · w + b`, mean and
/// variance summed left to right.
fn norm(x: &[f32], w: &[f32], bias: Option<&[f32]>, eps: f32, out: &mut Vec<f32>) {
    let Some(bias) = bias else {
        return rms_norm(x, w, eps, out);
    };
    let width = w.len();
    out.clear();
    out.resize(x.len(), 0.0);
    for (o, v) in out.chunks_exact_mut(width).zip(x.chunks_exact(width)) {
        let mean = v.iter().fold(0f32, |s, &a| s + a) / width as f32;
        let var = v.iter().fold(0f32, |s, &a| s + (a - mean) * (a - mean)) / width as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for (((o, &a), &g), &b) in o.iter_mut().zip(v).zip(w).zip(bias) {
            *o = ((a - mean) * inv) * g + b;
        }
    }
}

/// `y[i][j] += bias[j]` for every row of `y`.
fn add_bias(y: &mut [f32], bias: &[f32]) {
    for row in y.chunks_exact_mut(bias.len()) {
        add(row, bias);
    }
}

/// GELU, the tanh form GPT-2 was trained with: `x/2 · (1 + tanh(√(2/π) · (x + 0.044715·x³)))`,
/// with llmzip's own `tanh`.
fn gelu(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + activation::tanh(SQRT_2_OVER_PI * (x + 0.044_715 * (x * x * x))))
}

/// `Σ a·b` in 8 lanes, reduced pairwise: lane `l` sums the products at `l, l + 8, l + 16, …`
/// in order, then `((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))`, then the tail. On x86-64
/// the lanes are two SSE registers (the baseline every x86-64 CPU has: compilers leave this loop
/// scalar otherwise, at three times the time); elsewhere plain code with the same operations.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (ca, ra) = a.as_chunks::<8>();
    let (cb, rb) = b.as_chunks::<8>();
    let lanes = lanes8(ca, cb);
    let mut tail = 0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    let [a0, a1, a2, a3, a4, a5, a6, a7] = lanes;
    (((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))) + tail
}

/// The 8 lane sums of [`dot`].
#[inline(always)]
fn lanes8(a: &[[f32; 8]], b: &[[f32; 8]]) -> [f32; 8] {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY: SSE is part of x86-64; every load reads 4 floats inside a [f32; 8].
        unsafe {
            let (mut lo, mut hi) = (_mm_setzero_ps(), _mm_setzero_ps());
            for (x, y) in a.iter().zip(b) {
                let (x, y) = (x.as_ptr(), y.as_ptr());
                lo = _mm_add_ps(lo, _mm_mul_ps(_mm_loadu_ps(x), _mm_loadu_ps(y)));
                hi = _mm_add_ps(
                    hi,
                    _mm_mul_ps(_mm_loadu_ps(x.add(4)), _mm_loadu_ps(y.add(4))),
                );
            }
            let mut out = [0f32; 8];
            _mm_storeu_ps(out.as_mut_ptr(), lo);
            _mm_storeu_ps(out.as_mut_ptr().add(4), hi);
            out
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut lanes = [0f32; 8];
        for (x, y) in a.iter().zip(b) {
            for l in 0..8 {
                lanes[l] += x[l] * y[l];
            }
        }
        lanes
    }
}

impl OwnLlama {
    /// Whether the weights are f32 (`f32-portable`) rather than int8.
    pub fn is_f32(&self) -> bool {
        matches!(self.output, Matrix::F32(_))
    }

    /// Rotates one head's vector for position `pos` (in a `local` layer: by Gemma's
    /// sliding-window tables).
    fn rotate(&self, x: &mut [f32], pos: usize, local: bool) {
        self.rotate_by(x, pos, local, false)
    }

    /// Rotates one head's vector back by `by` positions.
    fn rotate_back(&self, x: &mut [f32], by: usize, local: bool) {
        self.rotate_by(x, by, local, true)
    }

    /// The rotation of `pos` positions, or its inverse (`sin` negated).
    fn rotate_by(&self, x: &mut [f32], pos: usize, local: bool, back: bool) {
        let Some(rope) = self.rope else {
            return;
        };
        let half = self.head_dim / 2;
        let (cos, sin) = match (&self.gemma, local) {
            (Some(g), true) => (&g.local_cos, &g.local_sin),
            _ => (&self.cos, &self.sin),
        };
        let (cos, sin) = (&cos[pos * half..][..half], &sin[pos * half..][..half]);
        let sign = if back { -1.0 } else { 1.0 };
        for i in 0..half {
            let (a, b) = match rope {
                Rope::Interleaved => (2 * i, 2 * i + 1),
                Rope::Halves => (i, i + half),
            };
            let (x0, x1, sin) = (x[a], x[b], sign * sin[i]);
            x[a] = x0 * cos[i] - x1 * sin;
            x[b] = x0 * sin + x1 * cos[i];
        }
    }

    /// Keeps each row's first cached position and its last `keep − 2`, renumbered to follow
    /// it ([`LanguageModel::shift`](super::LanguageModel::shift)): keys are rotated back by the
    /// positions dropped, which RoPE makes the keys of their new positions (attention depends on
    /// the distance between positions only). Only the 8-bit cache shifts; its keys are requantized
    /// after the rotation, the same on both sides.
    ///
    /// Returns whether it shifted: not for an f32 cache, nor for a `keep` outside `2..=cached`.
    pub fn shift(&mut self, keep: usize) -> bool {
        if !self.kv8 || keep < 2 || keep > self.cached {
            return false;
        }
        let dropped = self.cached - (keep - 1);
        let mut layers = std::mem::take(&mut self.layers);
        let this = &*self;
        layers
            .par_iter_mut()
            .flat_map(|layer| {
                let local = layer.is_local();
                layer.cache.par_iter_mut().map(move |head| (local, head))
            })
            .for_each(|(local, head)| {
                if let HeadCache::Int8(head) = head {
                    head.shift(keep - 2, &|key: &mut [f32]| {
                        this.rotate_back(key, dropped, local)
                    });
                }
            });
        self.layers = layers;
        self.cached = keep - 1;
        true
    }

    /// Empties the KV cache (keeping its memory).
    pub fn clear(&mut self) {
        for layer in &mut self.layers {
            for head in &mut layer.cache {
                head.clear();
            }
        }
        self.rows = 0;
        self.cached = 0;
    }

    /// [`OwnLlama::logits`] turned into probabilities (llmzip's softmax, one row per task; the
    /// `int8-kv8` network's sums in lanes).
    pub fn probabilities(&mut self, ids: &[u32], rows: usize, pos: usize) -> Result<Vec<f32>> {
        let mut probs = self.logits(ids, rows, pos)?;
        let lanes = self.kv8;
        probs
            .par_chunks_mut(self.output.out())
            .for_each(|row| activation::softmax_compiled(row, lanes));
        Ok(probs)
    }

    /// Runs `ids` (`rows × len`, row-major) at positions `pos..pos + len`, appending to the
    /// cache, and returns the logits after each row's last position, `rows × vocab`.
    pub fn logits(&mut self, ids: &[u32], rows: usize, pos: usize) -> Result<Vec<f32>> {
        let len = ids.len() / rows.max(1);
        if rows == 0 || len == 0 || ids.len() != rows * len {
            return Err(Error::Model(format!(
                "cannot run {} tokens in {rows} rows",
                ids.len()
            )));
        }
        if self.cached == 0 {
            self.rows = rows;
            let (kv8, d) = (self.kv8, self.head_dim);
            for layer in &mut self.layers {
                layer
                    .cache
                    .resize_with(rows * self.kv_heads, || HeadCache::new(kv8, d));
            }
        }
        if rows != self.rows || pos != self.cached || pos + len > self.context {
            return Err(Error::Model(format!(
                "KV cache of {} rows × {} positions fed {rows} rows at position {pos} \
                 (context {})",
                self.rows, self.cached, self.context
            )));
        }
        let vocab = self.output.out();
        let mut b = std::mem::take(&mut self.buffers);
        b.h.clear();
        for &id in ids {
            let id = id as usize;
            if id >= vocab {
                self.buffers = b;
                return Err(Error::Model(format!("token {id} outside the vocabulary")));
            }
            match &self.output {
                Matrix::Int8(output) if self.embed.is_empty() => {
                    let n = b.h.len();
                    b.h.resize(n + self.width, 0.0);
                    output.row(id, &mut b.h[n..]);
                }
                _ => {
                    b.h.extend_from_slice(&self.embed[id * self.width..][..self.width])
                }
            }
        }
        if let Some(g) = &self.gemma {
            b.h.iter_mut().for_each(|h| *h *= g.embed_scale);
        }
        if let Some(positions) = &self.positions {
            for (i, h) in b.h.chunks_exact_mut(self.width).enumerate() {
                add(h, &positions[(pos + i % len) * self.width..][..self.width]);
            }
        }
        let tokens = rows * len;
        for l in 0..self.layers.len() {
            let layer = &self.layers[l];
            let gpt2 = layer.gpt2.as_ref();
            norm(
                &b.h,
                &layer.attn_norm,
                gpt2.map(|g| &g.attn_norm_bias[..]),
                self.eps,
                &mut b.x,
            );
            layer
                .qkv
                .matmul_into(&b.x, tokens, &mut b.qkv, &mut b.scratch);
            if let Some(g) = gpt2 {
                add_bias(&mut b.qkv, &g.qkv_bias);
            }
            self.rope_and_cache(l, &mut b.qkv, len, pos);
            self.attention(
                l,
                &b.qkv,
                (rows, len, pos),
                &mut b.scores,
                &mut b.queries,
                &mut b.attn,
            );
            let layer = &self.layers[l];
            let gpt2 = layer.gpt2.as_ref();
            layer
                .wo
                .matmul_into(&b.attn, tokens, &mut b.y, &mut b.scratch);
            if let Some(g) = gpt2 {
                add_bias(&mut b.y, &g.wo_bias);
            }
            if let Some(g) = &layer.gemma {
                rms_norm(&b.y, &g.post_attn_norm, self.eps, &mut b.x);
                std::mem::swap(&mut b.x, &mut b.y);
            }
            add(&mut b.h, &b.y);
            norm(
                &b.h,
                &layer.ffn_norm,
                gpt2.map(|g| &g.ffn_norm_bias[..]),
                self.eps,
                &mut b.x,
            );
            layer
                .gate_up
                .matmul_into(&b.x, tokens, &mut b.y, &mut b.scratch);
            b.act.clear();
            b.act.resize(tokens * self.ffn, 0.0);
            let gemma = layer.gemma.is_some();
            match gpt2 {
                None if gemma => b
                    .act
                    .par_chunks_mut(self.ffn)
                    .zip(b.y.par_chunks(2 * self.ffn))
                    .for_each(|(a, gu)| {
                        let (g, u) = gu.split_at(self.ffn);
                        for ((a, &g), &u) in a.iter_mut().zip(g).zip(u) {
                            *a = gelu(g) * u;
                        }
                    }),
                Some(g) => b
                    .act
                    .par_chunks_mut(self.ffn)
                    .zip(b.y.par_chunks(self.ffn))
                    .for_each(|(a, u)| {
                        for ((a, &u), &bias) in a.iter_mut().zip(u).zip(&g.up_bias) {
                            *a = gelu(u + bias);
                        }
                    }),
                None => b
                    .act
                    .par_chunks_mut(self.ffn)
                    .zip(b.y.par_chunks(2 * self.ffn))
                    .for_each(|(a, gu)| {
                        let (g, u) = gu.split_at(self.ffn);
                        for ((a, &g), &u) in a.iter_mut().zip(g).zip(u) {
                            *a = (g * activation::sigmoid(g)) * u;
                        }
                    }),
            }
            layer
                .down
                .matmul_into(&b.act, tokens, &mut b.y, &mut b.scratch);
            if let Some(g) = gpt2 {
                add_bias(&mut b.y, &g.down_bias);
            }
            if let Some(g) = &layer.gemma {
                rms_norm(&b.y, &g.post_ffn_norm, self.eps, &mut b.x);
                std::mem::swap(&mut b.x, &mut b.y);
            }
            add(&mut b.h, &b.y);
        }
        self.cached += len;
        b.y.clear();
        for row in b.h.chunks_exact(len * self.width) {
            b.y.extend_from_slice(&row[(len - 1) * self.width..]);
        }
        norm(
            &b.y,
            &self.norm,
            self.norm_bias.as_deref(),
            self.eps,
            &mut b.x,
        );
        let mut logits = std::mem::take(&mut self.spare);
        self.output
            .matmul_into(&b.x, rows, &mut logits, &mut b.scratch);
        self.buffers = b;
        Ok(logits)
    }

    /// Rotates the queries and keys of `qkv` and appends keys and values to layer `l`'s cache.
    fn rope_and_cache(&mut self, l: usize, qkv: &mut [f32], len: usize, pos: usize) {
        let (d, heads, kv) = (self.head_dim, self.heads, self.kv_heads);
        let stride = (heads + 2 * kv) * d;
        // One task per row: its tokens rotated, then appended to its own heads' caches.
        let mut cache = std::mem::take(&mut self.layers[l].cache);
        let (this, layer) = (&*self, &self.layers[l]);
        let local = layer.is_local();
        qkv.par_chunks_mut(len * stride)
            .zip(cache.par_chunks_mut(kv))
            .for_each(|(row, heads_cache)| {
                for (t, token) in row.chunks_exact_mut(stride).enumerate() {
                    for (i, head) in token[..(heads + kv) * d].chunks_exact_mut(d).enumerate() {
                        if let Some(g) = &layer.gemma {
                            let w = if i < heads { &g.q_norm } else { &g.k_norm };
                            rms_norm_in_place(head, w, this.eps);
                        }
                        this.rotate(head, pos + t, local);
                    }
                    for (g, head) in heads_cache.iter_mut().enumerate() {
                        head.push(
                            &token[(heads + g) * d..][..d],
                            &token[(heads + kv + g) * d..][..d],
                        );
                    }
                }
            });
        self.layers[l].cache = cache;
    }

    /// Causal attention of every query in `qkv` over layer `l`'s cache: `tokens × heads·d`.
    ///
    /// One task per row; for each key/value head it passes over the keys and values once per
    /// query position, for all the query heads of its group together.
    fn attention(
        &self,
        l: usize,
        qkv: &[f32],
        (rows, len, pos): (usize, usize, usize),
        scores: &mut Vec<Vec<f32>>,
        scratch: &mut Vec<QuantizedRows>,
        out: &mut Vec<f32>,
    ) {
        let (d, heads, kv) = (self.head_dim, self.heads, self.kv_heads);
        let (stride, group, scale) = ((heads + 2 * kv) * d, heads / kv, 1.0 / (d as f32).sqrt());
        let cache = &self.layers[l].cache;
        let window = self.layers[l].gemma.as_ref().and_then(|g| g.window);
        out.clear();
        out.resize(rows * len * heads * d, 0.0);
        scores.resize_with(rows, Vec::new);
        scratch.resize_with(rows, Default::default);
        out.par_chunks_mut(len * heads * d)
            .zip(scores.par_iter_mut().zip(scratch.par_iter_mut()))
            .enumerate()
            .for_each(|(r, (out, (scores, quantized)))| {
                scores.clear();
                scores.resize(group * (pos + len), 0.0);
                for t in 0..len {
                    let keys = pos + t + 1;
                    let token = &qkv[(r * len + t) * stride..][..stride];
                    let out = &mut out[t * heads * d..][..heads * d];
                    // Query head h = g · group + i reads key/value head g.
                    for (g, out) in out.chunks_exact_mut(group * d).enumerate() {
                        let query = Query {
                            queries: &token[g * group * d..][..group * d],
                            first: window.map_or(0, |w| keys.saturating_sub(w)),
                            keys,
                            scale,
                        };
                        let scores = &mut scores[..group * keys];
                        match &cache[r * kv + g] {
                            HeadCache::F32(head) => attend_compiled(head, query, d, scores, out),
                            HeadCache::Int8(head) => {
                                kv8::attend(head, query, quantized, scores, out)
                            }
                        }
                    }
                }
            });
    }
}

/// [`attend`] in the copy compiled for this CPU: the same source and the same operations in
/// the same order, built for AVX-512 (wider vectors, twice the registers) where the CPU has it,
/// otherwise for the baseline. Compilers never fuse a multiply and an add on their own, so the
/// copies give the same bits (tested).
fn attend_compiled(head: &F32Head, query: Query, d: usize, scores: &mut [f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512 F.
        return unsafe { attend_avx512(head, query, d, scores, out) };
    }
    attend_any(head, query, d, scores, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn attend_avx512(
    head: &F32Head,
    query: Query,
    d: usize,
    scores: &mut [f32],
    out: &mut [f32],
) {
    attend_any(head, query, d, scores, out)
}

/// [`attend`], through [`attend_fixed`] for SmolLM2's shape.
#[inline(always)]
fn attend_any(head: &F32Head, query: Query, d: usize, scores: &mut [f32], out: &mut [f32]) {
    let group = query.queries.len() / d;
    match (d, group) {
        (64, 3) => attend_fixed::<64, 3>(head, query, scores, out),
        _ => attend(head, query, d, scores, out),
    }
}

/// Attention of one [`Query`]: `scores` (`group × keys`, of which each row's `first..keys`
/// are used) are scratch, `out` (`group × d`) receives `Σ_j softmax(q·k_j · scale)_j · v_j`
/// over `j` in `first..keys`, summed in key order.
#[inline(always)]
fn attend(head: &F32Head, query: Query, d: usize, scores: &mut [f32], out: &mut [f32]) {
    let Query {
        queries,
        first,
        keys,
        scale,
    } = query;
    let all_keys = head.keys(keys, d).flat_map(|c| c.chunks_exact(d));
    for (j, k) in all_keys.enumerate().skip(first) {
        for (q, s) in queries.chunks_exact(d).zip(scores.chunks_exact_mut(keys)) {
            s[j] = dot(q, k) * scale;
        }
    }
    scores
        .chunks_exact_mut(keys)
        .for_each(|row| activation::softmax(&mut row[first..]));
    out.fill(0.0);
    let all_values = head.values(keys, d).flat_map(|c| c.chunks_exact(d));
    for (j, v) in all_values.enumerate().skip(first) {
        for (i, o) in out.chunks_exact_mut(d).enumerate() {
            let w = scores[i * keys + j];
            for (o, &v) in o.iter_mut().zip(v) {
                *o += w * v;
            }
        }
    }
}

/// [`attend`] for a head width `D` and group size `G` known when compiling (SmolLM2's 64 and 3),
/// so that the `G` output vectors stay in registers: the same operations in the same order.
#[inline(always)]
fn attend_fixed<const D: usize, const G: usize>(
    head: &F32Head,
    query: Query,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let Query {
        queries,
        first,
        keys,
        scale,
    } = query;
    let q: [&[f32; D]; G] = std::array::from_fn(|i| queries[i * D..][..D].try_into().unwrap());
    let mut j = 0;
    for chunk in head.keys(keys, D) {
        let (chunk, _) = chunk.as_chunks::<D>();
        for k in chunk {
            if j >= first {
                for i in 0..G {
                    scores[i * keys + j] = dot(q[i], k) * scale;
                }
            }
            j += 1;
        }
    }
    scores
        .chunks_exact_mut(keys)
        .for_each(|row| activation::softmax(&mut row[first..]));
    let mut acc = [[0f32; D]; G];
    let mut j = 0;
    for chunk in head.values(keys, D) {
        let (chunk, _) = chunk.as_chunks::<D>();
        for v in chunk {
            if j < first {
                j += 1;
                continue;
            }
            for i in 0..G {
                let w = scores[i * keys + j];
                for c in 0..D {
                    acc[i][c] += w * v[c];
                }
            }
            j += 1;
        }
    }
    for (o, a) in out.chunks_exact_mut(D).zip(&acc) {
        o.copy_from_slice(a);
    }
}

/// `h += x`.
fn add(h: &mut [f32], x: &[f32]) {
    for (h, &x) in h.iter_mut().zip(x) {
        *h += x;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SIMD lanes of `dot` are its plain lanes.
    #[test]
    fn dot_lanes_are_the_plain_lanes() {
        let a: Vec<f32> = (0..67).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let b: Vec<f32> = (0..67).map(|i| (i as f32 * 0.91).cos() / 7.0).collect();
        let mut lanes = [0f32; 8];
        for c in 0..8 {
            for l in 0..8 {
                lanes[l] += a[c * 8 + l] * b[c * 8 + l];
            }
        }
        let tail = (64..67).fold(0f32, |t, i| t + a[i] * b[i]);
        let [a0, a1, a2, a3, a4, a5, a6, a7] = lanes;
        let want = (((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))) + tail;
        assert_eq!(dot(&a, &b).to_bits(), want.to_bits());
    }

    /// The specialised attention, and its copy compiled for this CPU, give the generic one's
    /// bits.
    #[test]
    fn fixed_width_attention_is_the_generic_one() {
        let (d, group, keys) = (64, 3, 300);
        let mut x = 1u32;
        let mut next = move || {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 8) as f32 / (1 << 24) as f32 - 0.5
        };
        let mut head = F32Head::default();
        for _ in 0..keys {
            let (k, v): (Vec<f32>, Vec<f32>) = (0..d).map(|_| (next(), next())).unzip();
            head.push(&k, &v);
        }
        let queries: Vec<f32> = (0..group * d).map(|_| 4.0 * next()).collect();
        for (first, n) in [
            (0, 1),
            (0, 255),
            (0, 256),
            (0, 257),
            (0, keys),
            (1, 2),
            (200, 280),
        ] {
            let query = Query {
                queries: &queries,
                first,
                keys: n,
                scale: 0.125,
            };
            let (mut s1, mut s2) = (vec![0f32; group * n], vec![0f32; group * n]);
            let (mut o1, mut o2) = (vec![1f32; group * d], vec![2f32; group * d]);
            attend(&head, query, d, &mut s1, &mut o1);
            attend_fixed::<64, 3>(&head, query, &mut s2, &mut o2);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&o1), bits(&o2), "{n} keys");
            // The copy compiled for this CPU (AVX-512 here) too.
            attend_compiled(&head, query, d, &mut s2, &mut o2);
            assert_eq!(bits(&o1), bits(&o2), "{n} keys, compiled for this CPU");
        }
    }
}
