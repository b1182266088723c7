//! The `int8-kv8` KV cache: keys and values of the transformer's attention held in 8 bits.
//!
//! **Why.** At the default lockstep batch, attention over an f32 cache took 47 % of a SmolLM2
//! run (`perf`, 64 KiB of alice29, 12 rows; docs/models.md), and it was bound by memory, not
//! arithmetic: every step reads each row's whole cache once (35 MB per token at position 750 in
//! SmolLM2), far more than any cache level holds. In 8 bits with a scale per block of 32 (the
//! rule of ggml's Q8_0, as in llama.cpp's `q8_0` cache, with the scale kept in f32) a position
//! of one key/value head takes 152 bytes instead of 512, and the cache of a 28-row batch 0.6 GiB
//! instead of 1.9.
//!
//! **Why the bits do not depend on the CPU.** Keys are scored as an int8 product: the queries
//! are quantized like activations, and each chunk of keys is an [`Int8Matrix`] whose outputs are
//! positions, computed by the same kernels in the same order as every weight product (exact
//! integer block sums, then the same float steps; [`super::int8`]). Values are accumulated in
//! `f32`, position by position in order, each output element on its own (`acc += (p · s) · v`,
//! a multiply and an add, never fused), so the vector width changes nothing either.
//!
//! **Format.** This is new arithmetic, so it has its own name in the archive header's dtype,
//! `int8-kv8`; archives that record `int8` keep the f32 cache and decode as before.

use std::ops::Range;

use super::int8::{quantize_part, Int8Matrix, QuantizedRows, BLOCK};

/// Positions per chunk (one [`Int8Matrix`] of keys and one [`Values`] each).
pub(super) const CHUNK: usize = 256;

/// Bytes one position of one key/value head takes, for a head width `d`: the keys' bytes, scale
/// and offset per block, the values' bytes and scale per block.
pub(super) fn bytes_per_position(d: usize) -> u64 {
    let blocks = d.div_ceil(BLOCK) as u64;
    2 * (blocks * BLOCK as u64) + 3 * 4 * blocks
}

/// The keys and values one key/value head has seen in one row, in chunks of [`CHUNK`]
/// positions that are never moved (a reset keeps them for the next block).
pub(super) struct Head8 {
    keys: Vec<Int8Matrix>,
    values: Vec<Values>,
    len: usize,
    d: usize,
}

/// A chunk of values: `CHUNK × blocks·32` signed bytes and `CHUNK × blocks` scales.
struct Values {
    q: Vec<i8>,
    scale: Vec<f32>,
}

impl Head8 {
    /// An empty cache for heads of width `d`.
    pub fn new(d: usize) -> Head8 {
        Head8 {
            keys: Vec::new(),
            values: Vec::new(),
            len: 0,
            d,
        }
    }

    /// Appends one position's key and value (`d` values each), quantized.
    pub fn push(&mut self, key: &[f32], value: &[f32]) {
        let (c, at) = (self.len / CHUNK, self.len % CHUNK);
        let blocks = self.d.div_ceil(BLOCK);
        if c == self.keys.len() {
            self.keys.push(Int8Matrix::zeros(CHUNK, self.d));
            self.values.push(Values {
                q: vec![0; CHUNK * blocks * BLOCK],
                scale: vec![0.0; CHUNK * blocks],
            });
        }
        self.keys[c].set_row(at, key);
        let v = &mut self.values[c];
        for b in 0..blocks {
            let part = &value[b * BLOCK..((b + 1) * BLOCK).min(self.d)];
            let q = (&mut v.q[(at * blocks + b) * BLOCK..][..BLOCK]).try_into();
            v.scale[at * blocks + b] = quantize_part(part, q.expect("a block"));
        }
        self.len += 1;
    }

    /// Keeps position 0 and the last `last` positions, moved to follow it (1 ..= `last`), each
    /// key through `rotate` (dequantized, rotated, quantized again); values are moved as they
    /// are. The shift of [`super::llama_own::OwnLlama::shift`].
    pub fn shift(&mut self, last: usize, rotate: &impl Fn(&mut [f32])) {
        assert!(
            last < self.len,
            "cannot keep {last} of {} positions after the first",
            self.len
        );
        let blocks = self.d.div_ceil(BLOCK);
        let from = self.len - last;
        let mut key = vec![0f32; self.d];
        let mut q = vec![0i8; blocks * BLOCK];
        let mut scale = vec![0f32; blocks];
        // Ascending: every source lies at or after its destination, so none is overwritten
        // before it is read.
        for n in 0..last {
            let (src, dst) = (from + n, 1 + n);
            self.keys[src / CHUNK].row(src % CHUNK, &mut key);
            rotate(&mut key);
            self.keys[dst / CHUNK].set_row(dst % CHUNK, &key);
            let (values, at) = (&self.values[src / CHUNK], src % CHUNK);
            q.copy_from_slice(&values.q[at * blocks * BLOCK..][..blocks * BLOCK]);
            scale.copy_from_slice(&values.scale[at * blocks..][..blocks]);
            let (values, at) = (&mut self.values[dst / CHUNK], dst % CHUNK);
            values.q[at * blocks * BLOCK..][..blocks * BLOCK].copy_from_slice(&q);
            values.scale[at * blocks..][..blocks].copy_from_slice(&scale);
        }
        self.len = 1 + last;
    }

    /// Forgets every position, keeping the memory.
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

/// The query heads of one group at one position, over cached positions `first..keys` (`first`
/// is 0 but in sliding-window layers).
#[derive(Clone, Copy)]
pub(super) struct Query<'a> {
    /// `group × d`.
    pub queries: &'a [f32],
    pub first: usize,
    pub keys: usize,
    pub scale: f32,
}

/// Attention of one [`Query`] over `head`: `scores` (`group × keys`, of which each row's
/// `first..keys` are used) and `quantized` are scratch, `out` (`group × d`) receives
/// `Σ_j softmax(q·k_j · scale)_j · v_j` over `j` in `first..keys`, summed in key order.
pub(super) fn attend(
    head: &Head8,
    query: Query,
    quantized: &mut QuantizedRows,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let (queries, first, keys, d) = (query.queries, query.first, query.keys, head.d);
    let group = queries.len() / d;
    assert!(
        first < keys && keys <= head.len && scores.len() == group * keys && out.len() == group * d
    );
    quantized.quantize(queries, group, d);
    let chunks = head.keys.iter().enumerate().take(keys.div_ceil(CHUNK));
    for (c, chunk) in chunks.skip(first / CHUNK) {
        let n = (keys - c * CHUNK).min(CHUNK);
        chunk.products(quantized, n, &mut scores[c * CHUNK..], keys);
    }
    for row in scores.chunks_exact_mut(keys) {
        let row = &mut row[first..];
        for s in row.iter_mut() {
            *s *= query.scale;
        }
        super::activation::softmax_compiled(row, true);
    }
    accumulate_compiled(head, scores, first..keys, out);
}

/// [`accumulate`] compiled for AVX-512 where the CPU has it: the same operations in the same
/// order (compilers never fuse a multiply and an add on their own; tested).
fn accumulate_compiled(head: &Head8, scores: &[f32], keys: Range<usize>, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512 F.
        return unsafe { accumulate_avx512(head, scores, keys, out) };
    }
    accumulate_any(head, scores, keys, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn accumulate_avx512(head: &Head8, scores: &[f32], keys: Range<usize>, out: &mut [f32]) {
    accumulate_any(head, scores, keys, out)
}

/// [`accumulate`], through [`accumulate_fixed`] for SmolLM2's shape.
#[inline(always)]
fn accumulate_any(head: &Head8, scores: &[f32], keys: Range<usize>, out: &mut [f32]) {
    match (head.d, out.len() / head.d) {
        (64, 3) => accumulate_fixed::<64, 3>(head, scores, keys, out),
        (256, 4) => accumulate_fixed::<256, 4>(head, scores, keys, out),
        _ => accumulate(head, scores, keys, out),
    }
}

/// [`accumulate`] for a head width `D` (a multiple of 32) and group size `G` known when
/// compiling, so that the sums stay in registers and each value is converted once: the same
/// operations in the same order.
#[inline(always)]
fn accumulate_fixed<const D: usize, const G: usize>(
    head: &Head8,
    scores: &[f32],
    range: Range<usize>,
    out: &mut [f32],
) {
    const { assert!(D.is_multiple_of(BLOCK)) };
    let keys = range.end;
    let mut acc = [[0f32; D]; G];
    for (c, chunk) in head.values.iter().enumerate().take(keys.div_ceil(CHUNK)) {
        if (c + 1) * CHUNK <= range.start {
            continue;
        }
        let n = (keys - c * CHUNK).min(CHUNK);
        let (q, _) = chunk.q[..n * D].as_chunks::<D>();
        let skip = range.start.saturating_sub(c * CHUNK);
        for (at, q) in q.iter().enumerate().skip(skip) {
            let j = c * CHUNK + at;
            let v: [f32; D] = std::array::from_fn(|x| q[x] as f32);
            let s = &chunk.scale[at * (D / BLOCK)..][..D / BLOCK];
            for (i, acc) in acc.iter_mut().enumerate() {
                let p = scores[i * keys + j];
                for (b, &s) in s.iter().enumerate() {
                    let w = p * s;
                    for x in b * BLOCK..(b + 1) * BLOCK {
                        acc[x] += w * v[x];
                    }
                }
            }
        }
    }
    for (o, a) in out.chunks_exact_mut(D).zip(&acc) {
        o.copy_from_slice(a);
    }
}

/// `out[i] = Σ_j scores[i][j] · v_j` over positions `j` in `range` (the rows of `scores` are
/// `range.end` long), in order, every element on its own: `out += (p · scale_block) · q`.
#[inline(always)]
fn accumulate(head: &Head8, scores: &[f32], range: Range<usize>, out: &mut [f32]) {
    let (d, keys) = (head.d, range.end);
    let blocks = d.div_ceil(BLOCK);
    out.fill(0.0);
    for (c, chunk) in head.values.iter().enumerate().take(keys.div_ceil(CHUNK)) {
        let n = (keys - c * CHUNK).min(CHUNK);
        for at in range.start.saturating_sub(c * CHUNK).min(n)..n {
            let j = c * CHUNK + at;
            let q = &chunk.q[at * blocks * BLOCK..][..blocks * BLOCK];
            let s = &chunk.scale[at * blocks..][..blocks];
            for (i, o) in out.chunks_exact_mut(d).enumerate() {
                let p = scores[i * keys + j];
                for (b, (o, q)) in o.chunks_mut(BLOCK).zip(q.chunks_exact(BLOCK)).enumerate() {
                    let w = p * s[b];
                    for (o, &q) in o.iter_mut().zip(q) {
                        *o += w * q as f32;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values in ±0.5.
    fn values(n: usize, seed: u32) -> Vec<f32> {
        super::super::int8::tests::data(n, seed)
            .iter()
            .map(|v| v / 4.0)
            .collect()
    }

    /// [`attend`] with fresh scratch: `(scores, out)`.
    fn run(head: &Head8, queries: &[f32], first: usize, keys: usize) -> (Vec<f32>, Vec<f32>) {
        let group = queries.len() / head.d;
        let mut scores = vec![0f32; group * keys];
        let mut out = vec![1f32; queries.len()];
        let query = Query {
            queries,
            first,
            keys,
            scale: 0.125,
        };
        let mut quantized = QuantizedRows::default();
        attend(head, query, &mut quantized, &mut scores, &mut out);
        (scores, out)
    }

    /// A shift keeps the first position and moves the last ones after it: keys through the
    /// rotation (here none: quantized again, they come out as they were) and values as they are,
    /// so attention over the shifted cache is attention over those positions pushed afresh.
    #[test]
    fn a_shift_keeps_the_first_and_the_last_positions() {
        let (d, len, last) = (64, 600, 300);
        let (k, v) = (values(len * d, 7), values(len * d, 8));
        let mut shifted = Head8::new(d);
        for j in 0..len {
            shifted.push(&k[j * d..][..d], &v[j * d..][..d]);
        }
        shifted.shift(last, &|_: &mut [f32]| {});
        let mut fresh = Head8::new(d);
        for j in std::iter::once(0).chain(len - last..len) {
            let mut key = vec![0f32; d];
            let mut tmp = Head8::new(d);
            tmp.push(&k[j * d..][..d], &v[j * d..][..d]);
            tmp.keys[0].row(0, &mut key);
            fresh.push(&key, &v[j * d..][..d]);
        }
        let queries = values(3 * d, 9);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let (a, b) = (
            run(&shifted, &queries, 0, last + 1),
            run(&fresh, &queries, 0, last + 1),
        );
        assert_eq!(bits(&a.1), bits(&b.1));
        assert_eq!(bits(&a.0), bits(&b.0));
        // A rotation reaches the keys: negated keys flip every score.
        shifted.shift(last - 1, &|key: &mut [f32]| {
            key.iter_mut().for_each(|x| *x = -*x)
        });
        let (_, out) = run(&shifted, &queries, 0, last);
        assert_ne!(bits(&out), bits(&run(&fresh, &queries, 0, last).1));
    }

    /// Close to f32 attention, over all keys and over a sliding window's last ones; the copy
    /// compiled for this CPU gives the plain loop's bits; and the bits are pinned, so that a
    /// change of this arithmetic cannot pass unnoticed.
    #[test]
    fn close_to_f32_attention_and_the_same_bits_on_every_path() {
        for (d, group) in [(64, 3), (40, 2), (256, 4)] {
            let keys = 300;
            let mut head = Head8::new(d);
            let (k, v) = (values(keys * d, 1), values(keys * d, 2));
            for j in 0..keys {
                head.push(&k[j * d..][..d], &v[j * d..][..d]);
            }
            let queries: Vec<f32> = values(group * d, 3).iter().map(|q| 8.0 * q).collect();
            let cases = [
                (0, 1),
                (0, 255),
                (0, 256),
                (0, 257),
                (0, keys),
                (10, 40),
                (255, 257),
            ];
            for (first, n) in cases.into_iter().chain([(keys - 37, keys), (100, 256)]) {
                let (scores, out) = run(&head, &queries, first, n);
                // f32 reference.
                for i in 0..group {
                    let q = &queries[i * d..][..d];
                    let mut p: Vec<f32> = (first..n)
                        .map(|j| 0.125 * (0..d).map(|c| q[c] * k[j * d + c]).sum::<f32>())
                        .collect();
                    crate::models::activation::softmax_lanes(&mut p);
                    for c in 0..d {
                        let want: f32 = (first..n).map(|j| p[j - first] * v[j * d + c]).sum();
                        let got = out[i * d + c];
                        assert!(
                            (got - want).abs() < 0.01,
                            "{d}/{group}, {n} keys: {got} vs {want}"
                        );
                    }
                }
                let mut plain = vec![2f32; group * d];
                accumulate(&head, &scores, first..n, &mut plain);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&plain), bits(&out), "{d}/{group}, {n} keys");
            }
        }
        let mut head = Head8::new(64);
        let (k, v) = (values(64 * 20, 4), values(64 * 20, 5));
        for j in 0..20 {
            head.push(&k[j * 64..][..64], &v[j * 64..][..64]);
        }
        let (_, out) = run(&head, &values(3 * 64, 6), 0, 20);
        let pinned: Vec<u32> = [0, 63, 64, 191].iter().map(|&i| out[i].to_bits()).collect();
        assert_eq!(
            pinned,
            [3181309750, 993333200, 3181766993, 3143494552],
            "{:?}",
            [out[0], out[63], out[64], out[191]]
        );
    }
}
