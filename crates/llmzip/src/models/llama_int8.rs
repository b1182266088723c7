//! The llama network on llmzip's own CPU code: the `int8` weight format.
//!
//! **Why not candle here.** At the lockstep batch the f32 network spends most of a step outside
//! the weight products: in attention, which candle runs as one small matrix product per row and
//! head (thousands of calls per step, each waking the thread pool), in thread hand-offs, and in
//! zeroing the fresh pages every op allocates (docs/models.md, "Where the time goes"). This file
//! computes the same network on plain `f32` buffers: the weight products in [`super::int8`]'s
//! batched kernels, attention one row per task, everything else in loops whose order is written
//! down here.
//!
//! **Why it is the same everywhere.** Every sum is taken in an order fixed by this code (never by
//! a thread count or a SIMD width chosen at run time), no fused multiply–add is left to the
//! compiler, and `exp` is llmzip's own ([`super::activation`]); only `sqrt` (exact in IEEE 754)
//! and the RoPE tables (libm `sin`/`cos` in `f64`, rounded to `f32`) come from the platform.
//! Threads split rows and output columns, never a sum.
//!
//! **Layout.** Activations are `tokens × width`, token `t` of row `r` at `r · len + t`. The KV
//! cache keeps each row's key/value head apart (`positions × head_dim`, contiguous), and one
//! task reads it once for all the query heads that share it.

use rayon::prelude::*;

use super::activation;
use super::int8::Int8Matrix;
use super::llama::Rope;
use crate::{Error, Result};

/// One transformer block.
pub(super) struct Layer {
    pub attn_norm: Vec<f32>,
    /// Queries, keys and values in one product (`(heads + 2·kv_heads)·head_dim` outputs).
    pub qkv: Int8Matrix,
    pub wo: Int8Matrix,
    pub ffn_norm: Vec<f32>,
    /// Gate and up projections in one product (`2·ffn` outputs).
    pub gate_up: Int8Matrix,
    pub down: Int8Matrix,
    /// The KV cache: for row `r` and key/value head `g`, `cache[r · kv_heads + g]`.
    pub cache: Vec<HeadCache>,
}

/// The keys and values one key/value head has seen in one row, `positions × head_dim` each.
#[derive(Default)]
pub(super) struct HeadCache {
    keys: Vec<f32>,
    values: Vec<f32>,
}

/// The whole network and its KV cache.
pub(super) struct Int8Llama {
    /// `vocab × width`.
    pub embed: Vec<f32>,
    pub layers: Vec<Layer>,
    pub norm: Vec<f32>,
    pub output: Int8Matrix,
    /// `context × head_dim / 2` each.
    pub cos: Vec<f32>,
    pub sin: Vec<f32>,
    pub width: usize,
    pub ffn: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub eps: f32,
    pub rope: Rope,
    pub context: usize,
    /// Rows of the cached batch and positions cached per row.
    pub rows: usize,
    pub cached: usize,
}

/// `x · w / rms(x)` for every vector of `x` (each `w.len()` wide).
fn rms_norm(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let width = w.len();
    let mut out = vec![0f32; x.len()];
    for (o, v) in out.chunks_exact_mut(width).zip(x.chunks_exact(width)) {
        let sum = v.iter().fold(0f32, |s, &a| s + a * a);
        let inv = 1.0 / (sum / width as f32 + eps).sqrt();
        for ((o, &a), &g) in o.iter_mut().zip(v).zip(w) {
            *o = (a * inv) * g;
        }
    }
    out
}

/// `Σ a·b` in 8 lanes, reduced pairwise: an order fixed here, which compilers vectorize.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            lanes[l] += x[l] * y[l];
        }
    }
    let mut tail = 0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    let [a0, a1, a2, a3, a4, a5, a6, a7] = lanes;
    (((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))) + tail
}

impl Int8Llama {
    /// Rotates one head's vector for position `pos`.
    fn rotate(&self, x: &mut [f32], pos: usize) {
        let half = self.head_dim / 2;
        let (cos, sin) = (
            &self.cos[pos * half..][..half],
            &self.sin[pos * half..][..half],
        );
        for i in 0..half {
            let (a, b) = match self.rope {
                Rope::Interleaved => (2 * i, 2 * i + 1),
                Rope::Halves => (i, i + half),
            };
            let (x0, x1) = (x[a], x[b]);
            x[a] = x0 * cos[i] - x1 * sin[i];
            x[b] = x0 * sin[i] + x1 * cos[i];
        }
    }

    /// Empties the KV cache (keeping its memory).
    pub fn clear(&mut self) {
        for layer in &mut self.layers {
            for head in &mut layer.cache {
                head.keys.clear();
                head.values.clear();
            }
        }
        self.rows = 0;
        self.cached = 0;
    }

    /// [`Int8Llama::logits`] turned into probabilities (llmzip's softmax, one row per task).
    pub fn probabilities(&mut self, ids: &[u32], rows: usize, pos: usize) -> Result<Vec<f32>> {
        let mut probs = self.logits(ids, rows, pos)?;
        probs
            .par_chunks_mut(self.output.out())
            .for_each(activation::softmax);
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
            for layer in &mut self.layers {
                layer
                    .cache
                    .resize_with(rows * self.kv_heads, HeadCache::default);
            }
        }
        if rows != self.rows || pos != self.cached || pos + len > self.context {
            return Err(Error::Model(format!(
                "KV cache of {} rows × {} positions fed {rows} rows at position {pos} \
                 (context {})",
                self.rows, self.cached, self.context
            )));
        }
        let vocab = self.embed.len() / self.width;
        let mut h = Vec::with_capacity(ids.len() * self.width);
        for &id in ids {
            let id = id as usize;
            if id >= vocab {
                return Err(Error::Model(format!("token {id} outside the vocabulary")));
            }
            h.extend_from_slice(&self.embed[id * self.width..][..self.width]);
        }
        let tokens = rows * len;
        for l in 0..self.layers.len() {
            let x = rms_norm(&h, &self.layers[l].attn_norm, self.eps);
            let mut qkv = self.layers[l].qkv.matmul(&x, tokens);
            self.rope_and_cache(l, &mut qkv, len, pos);
            let attn = self.attention(l, &qkv, rows, len, pos);
            let layer = &self.layers[l];
            add(&mut h, &layer.wo.matmul(&attn, tokens));
            let x = rms_norm(&h, &layer.ffn_norm, self.eps);
            let gu = layer.gate_up.matmul(&x, tokens);
            let mut act = vec![0f32; tokens * self.ffn];
            act.par_chunks_mut(self.ffn)
                .zip(gu.par_chunks(2 * self.ffn))
                .for_each(|(a, gu)| {
                    let (g, u) = gu.split_at(self.ffn);
                    for ((a, &g), &u) in a.iter_mut().zip(g).zip(u) {
                        *a = (g * activation::sigmoid(g)) * u;
                    }
                });
            add(&mut h, &layer.down.matmul(&act, tokens));
        }
        self.cached += len;
        let last: Vec<f32> = h
            .chunks_exact(len * self.width)
            .flat_map(|row| row[(len - 1) * self.width..].iter().copied())
            .collect();
        let x = rms_norm(&last, &self.norm, self.eps);
        Ok(self.output.matmul(&x, rows))
    }

    /// Rotates the queries and keys of `qkv` and appends keys and values to layer `l`'s cache.
    fn rope_and_cache(&mut self, l: usize, qkv: &mut [f32], len: usize, pos: usize) {
        let (d, heads, kv) = (self.head_dim, self.heads, self.kv_heads);
        let stride = (heads + 2 * kv) * d;
        for (i, token) in qkv.chunks_exact_mut(stride).enumerate() {
            let p = pos + i % len;
            for head in token[..(heads + kv) * d].chunks_exact_mut(d) {
                self.rotate(head, p);
            }
        }
        let layer = &mut self.layers[l];
        for (i, token) in qkv.chunks_exact(stride).enumerate() {
            let r = i / len;
            for g in 0..kv {
                let head = &mut layer.cache[r * kv + g];
                head.keys.extend_from_slice(&token[(heads + g) * d..][..d]);
                head.values
                    .extend_from_slice(&token[(heads + kv + g) * d..][..d]);
            }
        }
    }

    /// Causal attention of every query in `qkv` over layer `l`'s cache: `tokens × heads·d`.
    ///
    /// One task per row and key/value head; it passes over that head's keys and values once
    /// per query position, for all the query heads of its group together.
    fn attention(&self, l: usize, qkv: &[f32], rows: usize, len: usize, pos: usize) -> Vec<f32> {
        let (d, heads, kv) = (self.head_dim, self.heads, self.kv_heads);
        let (stride, group, scale) = ((heads + 2 * kv) * d, heads / kv, 1.0 / (d as f32).sqrt());
        let cache = &self.layers[l].cache;
        let parts: Vec<Vec<f32>> = (0..rows * kv)
            .into_par_iter()
            .map(|task| {
                let (r, g) = (task / kv, task % kv);
                let head = &cache[task];
                let mut out = vec![0f32; len * group * d];
                let mut scores = vec![0f32; group * (pos + len)];
                for t in 0..len {
                    let keys = pos + t + 1;
                    let token = &qkv[(r * len + t) * stride..][..stride];
                    let queries = &token[g * group * d..][..group * d];
                    for (j, k) in head.keys.chunks_exact(d).take(keys).enumerate() {
                        for (q, s) in queries.chunks_exact(d).zip(scores.chunks_exact_mut(keys)) {
                            s[j] = dot(q, k) * scale;
                        }
                    }
                    let scores = &mut scores[..group * keys];
                    scores.chunks_exact_mut(keys).for_each(activation::softmax);
                    let out = &mut out[t * group * d..][..group * d];
                    for (j, v) in head.values.chunks_exact(d).take(keys).enumerate() {
                        for (i, o) in out.chunks_exact_mut(d).enumerate() {
                            let w = scores[i * keys + j];
                            for (o, &v) in o.iter_mut().zip(v) {
                                *o += w * v;
                            }
                        }
                    }
                }
                out
            })
            .collect();
        // Reassemble `tokens × heads·d`: query head h = g · group + i.
        let mut out = vec![0f32; rows * len * heads * d];
        for (task, part) in parts.iter().enumerate() {
            let (r, g) = (task / kv, task % kv);
            for t in 0..len {
                let dst = &mut out[((r * len + t) * heads + g * group) * d..][..group * d];
                dst.copy_from_slice(&part[t * group * d..][..group * d]);
            }
        }
        out
    }
}

/// `h += x`.
fn add(h: &mut [f32], x: &[f32]) {
    for (h, &x) in h.iter_mut().zip(x) {
        *h += x;
    }
}
