//! Batched int8 matrix products for the CPU, with the same bits on every CPU and thread count.
//!
//! The `int8` weight format of the llama models. Weights and activations are both quantized in
//! blocks of 32 along the inner dimension, the scheme of ggml's Q8_0 (one `f32` scale per block,
//! `q = round(x / d)` with `d = max|x| / 127`), and a product is
//!
//! ```text
//! y[m][n] = Σ_b  (dx[m][b] · dw[n][b]) · Σ_{j<32} qx[m][32b + j] · qw[n][32b + j]
//! ```
//!
//! **Why int8.** The lockstep batch makes the forward pass a matrix–matrix product (rows × weights)
//! at every step; in `f32` it is bound by the FMA units (docs/models.md, "Where the time goes").
//! One AVX-512 VNNI instruction does 64 int8 multiply–adds where an `f32` FMA does 16, and the
//! weights take a quarter of the memory. candle's own Q8_0 kernels work one row at a time (no gain
//! from the batch) and have their AVX kernels only in builds with `target-feature=+avx2`.
//!
//! **Why the bits do not depend on the CPU.** The inner sums over a block are integers and exact
//! whatever the order (at most 32 · 127² = 516,128, also exact in `f32`). Across blocks, every
//! output is accumulated in block order by one thread with the same three IEEE operations (one
//! multiply of the two scales, one by the block sum, one add; never a fused multiply–add). The
//! VNNI and AVX2 kernels, selected at run time, and the portable loop compute exactly that, so
//! an archive made on a CPU with VNNI decodes on one without, only slower (tested: [`tests`]). Threads split
//! the output columns, never a sum.
//!
//! **The VNNI kernel.** `vpdpbusd` multiplies unsigned by signed bytes, so activations are stored
//! offset by 128 (stored so) and each block's sum is started at `−128 · Σ qw` (precomputed per column and
//! block), which leaves exactly `Σ qx · qw`. Weights are packed in panels of 16 output columns,
//! 4 consecutive inner indices per column per 32-bit lane, the layout the instruction reads; a
//! panel of a 576-wide matrix is 9 KiB and stays in L1 while every row of the batch passes over it.

use rayon::prelude::*;

/// Inner indices per quantization block.
pub const BLOCK: usize = 32;
/// Output columns per packed panel (one 512-bit vector of `i32`/`f32`).
const PANEL: usize = 16;
/// Bytes of packed weights per panel and block.
const PANEL_BLOCK: usize = PANEL * BLOCK;

/// A weight matrix (`out × in`) quantized and packed for [`Int8Matrix::matmul`].
#[derive(Debug, Clone)]
pub struct Int8Matrix {
    out: usize,
    inner: usize,
    blocks: usize,
    panels: usize,
    /// `[panel][block][BLOCK / 4][PANEL][4]` signed bytes.
    w: Vec<i8>,
    /// `[panel][block][PANEL]` scales.
    scale: Vec<f32>,
    /// `[panel][block][PANEL]`: `−128 · Σ qw` of the block (read by the VNNI kernel only).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    offset: Vec<i32>,
}

/// `x` quantized to one block: `(scale, values)`, ggml's Q8_0 rule.
///
/// Written so that compilers vectorize it (activations are quantized before every product:
/// 8 % of a SmolLM2 run when it was scalar): the largest magnitude is taken on the bits (for
/// non-negative floats the integer order is the float order; a NaN counts as 0, as `f32::max`
/// ignores it), and the rounding has no branches. The values are those of the plain rule
/// (tested).
#[inline(always)]
pub(super) fn quantize_block(x: &[f32; BLOCK], q: &mut [i8; BLOCK]) -> f32 {
    let amax_bits = x
        .iter()
        .map(|v| {
            let bits = v.to_bits() & 0x7fff_ffff;
            if bits > 0x7f80_0000 {
                0
            } else {
                bits
            }
        })
        .fold(0u32, u32::max);
    let d = f32::from_bits(amax_bits) / 127.0;
    let inv = if d != 0.0 { 1.0 / d } else { 0.0 };
    for (q, &v) in q.iter_mut().zip(x) {
        *q = quantize_value(v * inv);
    }
    d
}

/// `y.round().clamp(−127, 127) as i8` (halves away from zero, NaN to 0) in operations that
/// vectorize: no libm call (on the x86-64 baseline `round` is one, and it took 3 % of a SmolLM2
/// run), and no saturating `as` conversion (those stay scalar): `y` is first brought within ±128,
/// which changes no result since the clamp to ±127 follows, then truncated unchecked; the
/// truncation is exact and so is `y − t`, so the halves are found exactly (tested).
#[inline(always)]
fn quantize_value(y: f32) -> i8 {
    let y = if y.is_nan() {
        0.0
    } else {
        y.clamp(-128.0, 128.0)
    };
    // SAFETY: `y` is finite and within ±128.
    let t = unsafe { y.to_int_unchecked::<i32>() } as f32;
    let frac = y - t;
    let up = if frac >= 0.5 { 1.0 } else { 0.0 };
    let down = if frac <= -0.5 { 1.0 } else { 0.0 };
    let r = (t + up) - down;
    let r = r.clamp(-127.0, 127.0);
    // SAFETY: `r` is an integer within ±127.
    unsafe { r.to_int_unchecked::<i32>() as i8 }
}

/// `part` (at most [`BLOCK`] values) zero-padded to a block and quantized.
#[inline(always)]
pub(super) fn quantize_part(part: &[f32], q: &mut [i8; BLOCK]) -> f32 {
    let mut xs = [0f32; BLOCK];
    xs[..part.len()].copy_from_slice(part);
    quantize_block(&xs, q)
}

impl Int8Matrix {
    /// Quantizes `weights`, row-major `out × inner` (PyTorch's and ggml's layout).
    pub fn quantize(weights: &[f32], out: usize, inner: usize) -> Int8Matrix {
        assert_eq!(weights.len(), out * inner, "weights of the wrong size");
        let mut m = Int8Matrix::zeros(out, inner);
        for (n, row) in weights.chunks_exact(inner.max(1)).enumerate() {
            m.set_row(n, row);
        }
        m
    }

    /// An `out × inner` matrix of zeros, to be filled one output at a time by
    /// [`Int8Matrix::set_row`]: a chunk of a KV cache's keys.
    pub fn zeros(out: usize, inner: usize) -> Int8Matrix {
        let blocks = inner.div_ceil(BLOCK);
        let panels = out.div_ceil(PANEL);
        Int8Matrix {
            out,
            inner,
            blocks,
            panels,
            w: vec![0i8; panels * blocks * PANEL_BLOCK],
            scale: vec![0f32; panels * blocks * PANEL],
            offset: vec![0i32; panels * blocks * PANEL],
        }
    }

    /// Quantizes `row` (`inner` values) as output `n`.
    pub fn set_row(&mut self, n: usize, row: &[f32]) {
        assert!(
            n < self.out && row.len() == self.inner,
            "row of the wrong size"
        );
        let (panel, col, blocks) = (n / PANEL, n % PANEL, self.blocks);
        let mut qs = [0i8; BLOCK];
        for b in 0..blocks {
            let part = &row[b * BLOCK..((b + 1) * BLOCK).min(self.inner)];
            let d = quantize_part(part, &mut qs);
            let at = (panel * blocks + b) * PANEL + col;
            self.scale[at] = d;
            self.offset[at] = -128 * qs.iter().map(|&q| q as i32).sum::<i32>();
            let base = (panel * blocks + b) * PANEL_BLOCK;
            for (j, &q) in qs.iter().enumerate() {
                self.w[base + (j / 4) * PANEL * 4 + col * 4 + j % 4] = q;
            }
        }
    }

    /// Output `n`'s values as quantized (each value times its block's scale), into `row`
    /// (`inner` values).
    pub fn row(&self, n: usize, row: &mut [f32]) {
        assert!(
            n < self.out && row.len() == self.inner,
            "row of the wrong size"
        );
        let (panel, col, blocks) = (n / PANEL, n % PANEL, self.blocks);
        for (b, part) in row.chunks_mut(BLOCK).enumerate() {
            let d = self.scale[(panel * blocks + b) * PANEL + col];
            let base = (panel * blocks + b) * PANEL_BLOCK;
            for (j, v) in part.iter_mut().enumerate() {
                *v = self.w[base + (j / 4) * PANEL * 4 + col * 4 + j % 4] as f32 * d;
            }
        }
    }

    /// The products of every row of `x` with the first `outputs` outputs, on the calling thread
    /// (attention runs one task per row already): `y[i · stride + n]` for row `i` and `n <
    /// outputs`, the same bits as [`Int8Matrix::matmul_into`] gives.
    pub fn products(&self, x: &QuantizedRows, outputs: usize, y: &mut [f32], stride: usize) {
        assert!(
            outputs <= self.out && x.acts.stride == self.blocks * BLOCK,
            "product of the wrong shape"
        );
        let kernel = Kernel::detect();
        let mut tile = [[0f32; PANEL]; TILE_ROWS];
        for panel in 0..outputs.div_ceil(PANEL) {
            let (first, n) = (panel * PANEL, (outputs - panel * PANEL).min(PANEL));
            let mut m = 0;
            while m < x.rows {
                let r = (x.rows - m).min(TILE_ROWS);
                self.panel_rows(&x.acts, Tile { panel, m, r }, &mut tile, kernel);
                for (i, vals) in tile[..r].iter().enumerate() {
                    y[(m + i) * stride + first..][..n].copy_from_slice(&vals[..n]);
                }
                m += r;
            }
        }
    }

    /// Output width.
    pub fn out(&self) -> usize {
        self.out
    }

    /// `x · Wᵀ` for `x` row-major `rows × inner`: `rows × out`, row-major.
    #[cfg(test)]
    pub fn matmul(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut y = Vec::new();
        self.matmul_into(x, rows, &mut y, &mut Scratch::default());
        y
    }

    /// `x · Wᵀ` (`x` row-major `rows × inner`) into `y` (`rows × out`, row-major), reusing `y`'s and `scratch`'s memory: a network that
    /// allocates its buffers afresh at every step spends a tenth of its time in the kernel
    /// zeroing new pages.
    pub fn matmul_into(&self, x: &[f32], rows: usize, y: &mut Vec<f32>, scratch: &mut Scratch) {
        self.matmul_with(x, rows, y, scratch, Kernel::detect());
    }

    fn matmul_with(
        &self,
        x: &[f32],
        rows: usize,
        y: &mut Vec<f32>,
        scratch: &mut Scratch,
        kernel: Kernel,
    ) {
        assert_eq!(x.len(), rows * self.inner, "input of the wrong size");
        let acts = &mut scratch.acts;
        acts.quantize(x, rows, self.inner, self.blocks);
        let acts = &*acts;
        let width = self.panels * PANEL;
        y.clear();
        y.resize(rows * width, 0.0);
        // Threads take runs of panels; each writes only its own columns of `y`.
        let per_task = self
            .panels
            .div_ceil(4 * rayon::current_num_threads().max(1))
            .max(1);
        let tasks = self.panels.div_ceil(per_task);
        let out = SharedOut(y.as_mut_ptr());
        (0..tasks).into_par_iter().for_each(|t| {
            let out = &out;
            for panel in t * per_task..((t + 1) * per_task).min(self.panels) {
                let mut tile = [[0f32; PANEL]; TILE_ROWS];
                let mut m = 0;
                while m < rows {
                    let r = (rows - m).min(TILE_ROWS);
                    self.panel_rows(acts, Tile { panel, m, r }, &mut tile, kernel);
                    for (i, vals) in tile[..r].iter().enumerate() {
                        // SAFETY: row m + i, columns of this panel only: no other task writes
                        // them, and they lie inside `y` (`rows × width`).
                        unsafe {
                            let dst = out.0.add((m + i) * width + panel * PANEL);
                            std::ptr::copy_nonoverlapping(vals.as_ptr(), dst, PANEL);
                        }
                    }
                    m += r;
                }
            }
        });
        if width != self.out {
            for r in 0..rows {
                y.copy_within(r * width..r * width + self.out, r * self.out);
            }
            y.truncate(rows * self.out);
        }
    }

    /// One tile's outputs, computed by `kernel`.
    fn panel_rows(&self, acts: &Activations, tile: Tile, out: &mut TileOut, kernel: Kernel) {
        match kernel {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Kernel::Vnni` is only chosen when the CPU has these features.
            Kernel::Vnni => unsafe { vnni::panel_rows(self, acts, tile, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Kernel::Avx2` is only chosen when the CPU has AVX2.
            Kernel::Avx2 => unsafe { avx2::panel_rows(self, acts, tile, out) },
            Kernel::Portable => self.panel_rows_portable(acts, tile, out),
        }
    }

    fn panel_rows_portable(&self, acts: &Activations, tile: Tile, tile_out: &mut TileOut) {
        let Tile { panel, m, r } = tile;
        for (i, out) in tile_out[..r].iter_mut().enumerate() {
            let row = m + i;
            let mut acc = [0f32; PANEL];
            for b in 0..self.blocks {
                let w = &self.w[(panel * self.blocks + b) * PANEL_BLOCK..][..PANEL_BLOCK];
                let x = &acts.u[row * acts.stride + b * BLOCK..][..BLOCK];
                let mut sums = [0i32; PANEL];
                for (j4, group) in w.chunks_exact(PANEL * 4).enumerate() {
                    let xs = &x[j4 * 4..j4 * 4 + 4];
                    for (sum, ws) in sums.iter_mut().zip(group.chunks_exact(4)) {
                        *sum += xs
                            .iter()
                            .zip(ws)
                            .map(|(&a, &b)| (a as i32 - 128) * b as i32)
                            .sum::<i32>();
                    }
                }
                let dx = acts.scale[row * self.blocks + b];
                let dw = &self.scale[(panel * self.blocks + b) * PANEL..][..PANEL];
                for c in 0..PANEL {
                    acc[c] += (dx * dw[c]) * sums[c] as f32;
                }
            }
            *out = acc;
        }
    }
}

/// Rows of the batch handled together (each packed weight vector loaded once per tile).
const TILE_ROWS: usize = 8;

/// Rows `m..m + r` (`r ≤ TILE_ROWS`) of one panel's 16 outputs.
#[derive(Clone, Copy)]
struct Tile {
    panel: usize,
    m: usize,
    r: usize,
}

/// A tile's outputs, row by row.
type TileOut = [[f32; PANEL]; TILE_ROWS];

/// Where `matmul` writes; tasks write disjoint columns.
struct SharedOut(*mut f32);
// SAFETY: see the use in `matmul_with`: every task writes a disjoint set of elements.
unsafe impl Sync for SharedOut {}

/// Memory a product reuses from call to call.
#[derive(Debug, Default)]
pub struct Scratch {
    acts: Activations,
}

/// Rows of activations quantized once for several [`Int8Matrix::products`] (a query against
/// every chunk of keys).
#[derive(Debug, Default)]
pub struct QuantizedRows {
    acts: Activations,
    rows: usize,
}

impl QuantizedRows {
    /// Quantizes `x`, `rows × inner` row-major.
    pub fn quantize(&mut self, x: &[f32], rows: usize, inner: usize) {
        assert_eq!(x.len(), rows * inner, "input of the wrong size");
        self.acts.quantize(x, rows, inner, inner.div_ceil(BLOCK));
        self.rows = rows;
    }
}

/// Activations quantized per row and block.
#[derive(Debug, Default)]
struct Activations {
    /// `rows × stride` values plus 128 (`stride` = blocks · 32, zero-padded before the offset),
    /// the unsigned operand `vpdpbusd` takes.
    u: Vec<u8>,
    stride: usize,
    /// `rows × blocks` scales.
    scale: Vec<f32>,
}

impl Activations {
    fn quantize(&mut self, x: &[f32], rows: usize, inner: usize, blocks: usize) {
        let stride = blocks * BLOCK;
        self.stride = stride;
        self.u.clear();
        self.u.resize(rows * stride, 0);
        self.scale.clear();
        self.scale.resize(rows * blocks, 0.0);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
        {
            // SAFETY: the CPU has these features.
            return unsafe { self.fill_avx512(x, rows, inner, blocks) };
        }
        self.fill(x, rows, inner, blocks)
    }

    /// [`Activations::fill`] compiled for AVX-512: the same operations, wider.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn fill_avx512(&mut self, x: &[f32], rows: usize, inner: usize, blocks: usize) {
        self.fill(x, rows, inner, blocks)
    }

    #[inline(always)]
    fn fill(&mut self, x: &[f32], rows: usize, inner: usize, blocks: usize) {
        let stride = self.stride;
        let mut q = [0i8; BLOCK];
        for m in 0..rows {
            let row = &x[m * inner..(m + 1) * inner];
            for b in 0..blocks {
                let part = &row[b * BLOCK..((b + 1) * BLOCK).min(inner)];
                self.scale[m * blocks + b] = quantize_part(part, &mut q);
                let dst = &mut self.u[m * stride + b * BLOCK..][..BLOCK];
                for (u, &q) in dst.iter_mut().zip(&q) {
                    *u = (q as i16 + 128) as u8;
                }
            }
        }
    }
}

/// A SIMD kernel's `panel_rows`, compiled for `$features`: calls the module's `rows_n::<R>` for
/// the tile's row count `R` (1 ..= [`TILE_ROWS`]), so that each count gets its own unrolled loop.
#[cfg(target_arch = "x86_64")]
macro_rules! panel_rows_for {
    ($features:literal) => {
        /// The tile's outputs.
        ///
        /// # Safety
        /// The CPU must support the kernel's features.
        #[target_feature(enable = $features)]
        pub(super) unsafe fn panel_rows(
            w: &Int8Matrix,
            acts: &Activations,
            t: Tile,
            tile: &mut TileOut,
        ) {
            let (panel, m) = (t.panel, t.m);
            match t.r {
                8 => rows_n::<8>(w, acts, panel, m, tile),
                7 => rows_n::<7>(w, acts, panel, m, tile),
                6 => rows_n::<6>(w, acts, panel, m, tile),
                5 => rows_n::<5>(w, acts, panel, m, tile),
                4 => rows_n::<4>(w, acts, panel, m, tile),
                3 => rows_n::<3>(w, acts, panel, m, tile),
                2 => rows_n::<2>(w, acts, panel, m, tile),
                1 => rows_n::<1>(w, acts, panel, m, tile),
                r => unreachable!("a tile has 1 to 8 rows, not {r}"),
            }
        }
    };
}

/// Which inner loop runs; all give the same bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    #[cfg(target_arch = "x86_64")]
    Vnni,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Portable,
}

impl Kernel {
    /// The fastest kernel this CPU runs, or the one `LLMZIP_INT8_KERNEL` (`vnni`, `avx2`,
    /// `portable`) names when the CPU runs it: a way to measure the kernels that other CPUs
    /// would choose (docs/models.md). The archives are the same whichever runs.
    fn detect() -> Kernel {
        static CHOSEN: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
        *CHOSEN.get_or_init(|| {
            let available = Kernel::available();
            std::env::var("LLMZIP_INT8_KERNEL")
                .ok()
                .and_then(|name| available.iter().copied().find(|k| k.name() == name))
                .unwrap_or(available[0])
        })
    }

    /// The kernels this CPU runs, fastest first.
    fn available() -> Vec<Kernel> {
        let mut kernels = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vnni")
            {
                kernels.push(Kernel::Vnni);
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                kernels.push(Kernel::Avx2);
            }
        }
        kernels.push(Kernel::Portable);
        kernels
    }

    fn name(self) -> &'static str {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Vnni => "vnni",
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => "avx2",
            Kernel::Portable => "portable",
        }
    }
}

/// The AVX2 version of `Int8Matrix::panel_rows_portable`. AVX2's byte product
/// (`vpmaddubsw`, unsigned × signed, pairs summed into 16 bits) would saturate on the unsigned
/// activations (255 · 127 · 2 > 32,767), so it takes the activations' signed values q instead:
/// |q| times the weight with q's sign, both within ±127 (activations and weights are quantized
/// to ±127, never −128), so a pair sums to at most 32,258 and nothing saturates. The sums are
/// then the same integers as the other kernels' (Σ q·w, where VNNI adds −128·Σw to Σ (q+128)·w),
/// and the floating-point steps are the same operations in the same order, without fusing.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Activations, Int8Matrix, Tile, TileOut, BLOCK, PANEL, PANEL_BLOCK};
    use std::arch::x86_64::*;

    panel_rows_for!("avx2");

    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn rows_n<const R: usize>(
        w: &Int8Matrix,
        acts: &Activations,
        panel: usize,
        m: usize,
        tile: &mut TileOut,
    ) {
        let blocks = w.blocks;
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        let wp = w.w.as_ptr().add(panel * blocks * PANEL_BLOCK);
        let sp = w.scale.as_ptr().add(panel * blocks * PANEL);
        let ones = _mm256_set1_epi16(1);
        let flip = _mm256_set1_epi8(-128);
        for b in 0..blocks {
            let mut sums = [[_mm256_setzero_si256(); 2]; R];
            for j4 in 0..BLOCK / 4 {
                // 16 outputs × 4 inputs: outputs 0..8 in the first 32 bytes, 8..16 after.
                let base = wp.add(b * PANEL_BLOCK + j4 * PANEL * 4);
                let halves = [
                    _mm256_loadu_si256(base as *const __m256i),
                    _mm256_loadu_si256(base.add(32) as *const __m256i),
                ];
                for (i, sum) in sums.iter_mut().enumerate() {
                    let xp = acts
                        .u
                        .as_ptr()
                        .add((m + i) * acts.stride + b * BLOCK + j4 * 4);
                    let u4 = _mm256_set1_epi32((xp as *const i32).read_unaligned());
                    // q = u − 128, bytewise.
                    let q4 = _mm256_xor_si256(u4, flip);
                    let magnitude = _mm256_sign_epi8(q4, q4);
                    for (s, wv) in sum.iter_mut().zip(halves) {
                        let signed = _mm256_sign_epi8(wv, q4);
                        let pairs = _mm256_maddubs_epi16(magnitude, signed);
                        *s = _mm256_add_epi32(*s, _mm256_madd_epi16(pairs, ones));
                    }
                }
            }
            for h in 0..2 {
                let dw = _mm256_loadu_ps(sp.add(b * PANEL + 8 * h));
                for (i, a) in acc.iter_mut().enumerate() {
                    let dx = _mm256_set1_ps(*acts.scale.get_unchecked((m + i) * blocks + b));
                    let s = _mm256_mul_ps(dx, dw);
                    let term = _mm256_mul_ps(s, _mm256_cvtepi32_ps(sums[i][h]));
                    a[h] = _mm256_add_ps(a[h], term);
                }
            }
        }
        for (i, a) in acc.iter().enumerate() {
            _mm256_storeu_ps(tile[i].as_mut_ptr(), a[0]);
            _mm256_storeu_ps(tile[i].as_mut_ptr().add(8), a[1]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use super::{Activations, Int8Matrix, Tile, TileOut, BLOCK, PANEL, PANEL_BLOCK};
    use std::arch::x86_64::*;

    // The VNNI version of `Int8Matrix::panel_rows_portable`.
    panel_rows_for!("avx512f,avx512bw,avx512vnni");

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    unsafe fn rows_n<const R: usize>(
        w: &Int8Matrix,
        acts: &Activations,
        panel: usize,
        m: usize,
        tile: &mut TileOut,
    ) {
        let blocks = w.blocks;
        let mut acc = [_mm512_setzero_ps(); R];
        let wp = w.w.as_ptr().add(panel * blocks * PANEL_BLOCK);
        let sp = w.scale.as_ptr().add(panel * blocks * PANEL);
        let op = w.offset.as_ptr().add(panel * blocks * PANEL);
        for b in 0..blocks {
            let start = _mm512_loadu_si512(op.add(b * PANEL) as *const _);
            let mut sums = [start; R];
            for j4 in 0..BLOCK / 4 {
                let wv = _mm512_loadu_si512(wp.add(b * PANEL_BLOCK + j4 * PANEL * 4) as *const _);
                for (i, sum) in sums.iter_mut().enumerate() {
                    let xp = acts
                        .u
                        .as_ptr()
                        .add((m + i) * acts.stride + b * BLOCK + j4 * 4);
                    let x4 = _mm512_set1_epi32((xp as *const i32).read_unaligned());
                    *sum = _mm512_dpbusd_epi32(*sum, x4, wv);
                }
            }
            let dw = _mm512_loadu_ps(sp.add(b * PANEL));
            for (i, a) in acc.iter_mut().enumerate() {
                let dx = _mm512_set1_ps(*acts.scale.get_unchecked((m + i) * blocks + b));
                let s = _mm512_mul_ps(dx, dw);
                *a = _mm512_add_ps(*a, _mm512_mul_ps(s, _mm512_cvtepi32_ps(sums[i])));
            }
        }
        for (i, a) in acc.iter().enumerate() {
            _mm512_storeu_ps(tile[i].as_mut_ptr(), *a);
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Values in ±2 from a linear congruential generator.
    pub(crate) fn data(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((s >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 4.0
            })
            .collect()
    }

    /// Close to the f32 product (the quantization error of two Q8_0 operands).
    #[test]
    fn approximates_the_f32_product() {
        let (rows, inner, out) = (5, 100, 37);
        let (x, w) = (data(rows * inner, 1), data(out * inner, 2));
        let y = Int8Matrix::quantize(&w, out, inner).matmul(&x, rows);
        for m in 0..rows {
            for n in 0..out {
                let exact: f32 = (0..inner)
                    .map(|k| x[m * inner + k] * w[n * inner + k])
                    .sum();
                // Each operand is off by at most half a step, d / 2 ≤ max|v| / 254 = 2 / 254.
                let bound: f32 = (0..inner)
                    .map(|k| (x[m * inner + k].abs() + w[n * inner + k].abs() + 0.01) / 127.0)
                    .sum();
                let got = y[m * out + n];
                assert!(
                    (got - exact).abs() <= bound,
                    "{got} vs {exact} (bound {bound})"
                );
            }
        }
    }

    /// Every kernel and thread count gives the same bits, for every tile remainder.
    #[test]
    fn kernels_and_thread_counts_agree_bit_for_bit() {
        // Values that all quantize to ±127, in every sign combination: the AVX2 kernel's
        // largest pair sums.
        fn extreme(n: usize, seed: u32) -> Vec<f32> {
            (0..n)
                .map(|i| {
                    if (i * 7 + seed as usize).is_multiple_of(3) {
                        -1.0
                    } else {
                        1.0
                    }
                })
                .collect()
        }
        // Widths that fill whole blocks and panels, and ones that do not.
        type Values = fn(usize, u32) -> Vec<f32>;
        let cases: [(usize, usize, Values); 3] =
            [(96, 50, data), (100, 37, data), (64, 16, extreme)];
        for (inner, out, values) in cases {
            let w = Int8Matrix::quantize(&values(out * inner, 3), out, inner);
            for rows in [1, 7, 8, 13] {
                let x = values(rows * inner, rows as u32);
                let run = |kernel| {
                    let mut y = Vec::new();
                    w.matmul_with(&x, rows, &mut y, &mut Scratch::default(), kernel);
                    y
                };
                let want = run(Kernel::Portable);
                for kernel in Kernel::available() {
                    for threads in [1, 3] {
                        let pool = rayon::ThreadPoolBuilder::new()
                            .num_threads(threads)
                            .build()
                            .unwrap();
                        let got = pool.install(|| run(kernel));
                        let same = want
                            .iter()
                            .zip(&got)
                            .all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(
                            same,
                            "{kernel:?}, {inner} × {out}, {rows} rows, {threads} threads"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn rounding_is_f32_round() {
        let mut values = vec![
            0.5,
            -0.5,
            1.5,
            -1.5,
            126.5,
            -126.5,
            0.49999997,
            -0.49999997,
            0.0,
        ];
        values.extend([-0.0, 2.5000002, 127.49999, 1e-30, 8388607.5, 1e9, -1e9]);
        let mut s = 7u32;
        for _ in 0..100_000 {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            values.push(((s >> 8) as f32 / (1 << 24) as f32 - 0.5) * 300.0);
        }
        values.extend([
            f32::INFINITY,
            -f32::INFINITY,
            127.5,
            -127.5,
            128.0,
            -129.0,
            f32::NAN,
        ]);
        for v in values {
            assert_eq!(
                quantize_value(v),
                v.round().clamp(-127.0, 127.0) as i8,
                "{v}"
            );
        }
    }

    /// The vectorized quantization is ggml's plain rule, NaN, infinities, signed zeros and
    /// subnormals included, and its AVX-512 copy fills the same activations.
    #[test]
    fn vectorized_quantization_is_the_plain_rule() {
        fn plain(x: &[f32; BLOCK], q: &mut [i8; BLOCK]) -> f32 {
            let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let inv = if d != 0.0 { 1.0 / d } else { 0.0 };
            for (q, &v) in q.iter_mut().zip(x) {
                *q = (v * inv).round().clamp(-127.0, 127.0) as i8;
            }
            d
        }
        let special = [
            f32::NAN,
            f32::INFINITY,
            -f32::INFINITY,
            -0.0,
            0.0,
            1e-40,
            -3e-39,
        ];
        let mut blocks: Vec<[f32; BLOCK]> = vec![[0.0; BLOCK], [-0.0; BLOCK], [f32::NAN; BLOCK]];
        for seed in 0..200u32 {
            let mut x: [f32; BLOCK] = data(BLOCK, seed).try_into().unwrap();
            if seed % 3 == 0 {
                x[seed as usize % BLOCK] = special[seed as usize % special.len()];
            }
            if seed % 5 == 0 {
                x.iter_mut().for_each(|v| *v *= 1e-38);
            }
            blocks.push(x);
        }
        for x in &blocks {
            let (mut a, mut b) = ([0i8; BLOCK], [0i8; BLOCK]);
            let (da, db) = (quantize_block(x, &mut a), plain(x, &mut b));
            assert!(da.to_bits() == db.to_bits() && a == b, "{x:?}");
        }
        let flat: Vec<f32> = blocks.iter().flatten().copied().collect();
        let (rows, inner) = (blocks.len() / 4, 4 * BLOCK - 7);
        let x = &flat[..rows * inner];
        let mut want = Activations {
            stride: inner.div_ceil(BLOCK) * BLOCK,
            ..Default::default()
        };
        want.u.resize(rows * want.stride, 0);
        want.scale.resize(rows * inner.div_ceil(BLOCK), 0.0);
        want.fill(x, rows, inner, inner.div_ceil(BLOCK));
        let mut got = Activations::default();
        got.quantize(x, rows, inner, inner.div_ceil(BLOCK));
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert!(want.u == got.u && bits(&want.scale) == bits(&got.scale));
    }

    /// Pinned bits of one product, so that a change of the arithmetic cannot pass unnoticed.
    #[test]
    fn pinned_bits() {
        let (rows, inner, out) = (2, 64, 3);
        let w = Int8Matrix::quantize(&data(out * inner, 5), out, inner);
        let y = w.matmul(&data(rows * inner, 6), rows);
        let bits: Vec<u32> = y.iter().map(|v| v.to_bits()).collect();
        assert_eq!(
            bits,
            [1084434445, 1100854457, 3221663279, 1099879296, 1076413517, 3240489956],
            "{y:?}"
        );
    }
}
