//! The f32 matrix product of the recurrent models on the CPU, with one summation order on every
//! machine.
//!
//! Why: an archive decodes only if the decoder computes the encoder's probabilities to the last
//! bit. candle's CPU product (the `gemm` crate) sums each output along K in order, one fused
//! multiply-add (FMA) per term, where the CPU has FMA; where it has none (x86-64 before Haswell)
//! it rounds the product and the sum separately, which gives other bits now and then, and the
//! archive fails. Every GRU archive so far was made on machines with FMA.
//!
//! So this kernel computes, for every output, what `gemm` computes there when the inner
//! dimension K is at most 512 (every built-in model: K is 32 or 256):
//!
//! ```text
//! acc = +0;  for p in 0..K { acc = fma(w[p][j], a[i][p], acc) };  out[i][j] = acc + bias[j]
//! ```
//!
//! (with one row, `gemm` starts from the plain product `w[0][j]·a[i][0]` instead, which differs
//! only in the sign of an exact zero; that is reproduced too). For K over 512, `gemm` splits the
//! sum into blocks whose size follows the CPU's cache sizes and adds them up one by one, which is
//! why archives of such models made before this kernel are machine-bound
//! ([`super::archive_portability`]); this kernel keeps one chain for any K. The order along K is fixed;
//! vectorising goes *across* outputs, so the vector width (AVX-512, AVX2, NEON or none), the
//! thread count and the cache sizes change only how many outputs are computed at once, never
//! the operations on one. Where the CPU has no FMA instruction, `f32::mul_add` computes the same
//! fused result in software: slower, identical.
//!
//! The weights are packed once at load time into panels of [`PANEL`] columns, each stored
//! K-major, so that the inner loop reads memory in order.

use rayon::prelude::*;

/// Columns per panel: one AVX-512 register, two AVX2 ones.
const PANEL: usize = 16;

/// A `K × N` weight matrix (the right operand of `x · W`), packed for [`PackedMatrix::matmul`].
#[derive(Debug, Clone)]
pub(crate) struct PackedMatrix {
    k: usize,
    n: usize,
    /// `ceil(N / PANEL)` panels of `K × PANEL`, the columns past `N` zero.
    panels: Vec<f32>,
}

impl PackedMatrix {
    /// Packs `w`, `K × N` row-major.
    pub(crate) fn new(w: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(w.len(), k * n, "weight matrix is not {k} × {n}");
        Self::pack(k, n, |p, j| w[p * n + j])
    }

    /// Packs `w` given output by output (`N × K` row-major, the layout of llama and GGUF
    /// weights): the matrix `wᵀ`.
    pub(crate) fn from_outputs(w: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(w.len(), k * n, "weight matrix is not {n} × {k}");
        Self::pack(k, n, |p, j| w[j * k + p])
    }

    /// The panels of the `K × N` matrix whose entry `(p, j)` is `at(p, j)`.
    fn pack(k: usize, n: usize, at: impl Fn(usize, usize) -> f32) -> Self {
        assert!(k > 0, "a product over nothing");
        let count = n.div_ceil(PANEL);
        let mut panels = vec![0f32; count * k * PANEL];
        for (c, panel) in panels.chunks_exact_mut(k * PANEL).enumerate() {
            for (p, dst) in panel.chunks_exact_mut(PANEL).enumerate() {
                for (l, j) in (c * PANEL..((c + 1) * PANEL).min(n)).enumerate() {
                    dst[l] = at(p, j);
                }
            }
        }
        PackedMatrix { k, n, panels }
    }

    /// Outputs per row.
    pub(crate) fn out(&self) -> usize {
        self.n
    }

    /// `a · W + bias` for `a` of `m × K` (row-major); returns `m × N`.
    pub(crate) fn matmul(&self, a: &[f32], m: usize, bias: Option<&[f32]>) -> Vec<f32> {
        let (k, n) = (self.k, self.n);
        assert_eq!(a.len(), m * k, "left operand is not {m} × {k}");
        if let Some(b) = bias {
            assert_eq!(b.len(), n, "bias is not {n} long");
        }
        if m == 0 {
            return Vec::new();
        }
        let first_is_product = m == 1;
        let kernel = Kernel::detect();
        let group = kernel.rows();
        // Panel-major results (`panel × m × PANEL`), then one pass to the row-major output.
        let mut tmp = vec![0f32; self.panels.len() / k.max(1) * m];
        let per_panel = m * PANEL;
        // Enough work per task that the thread hand-over does not dominate small products.
        let min_panels = (1 << 15) / (per_panel * k).max(1);
        tmp.par_chunks_mut(per_panel)
            .zip(self.panels.par_chunks(k * PANEL))
            .with_min_len(min_panels.max(1))
            .for_each(|(out, panel)| {
                for (r0, out) in (0..m).step_by(group).zip(out.chunks_mut(group * PANEL)) {
                    let rows = &a[r0 * k..(r0 + out.len() / PANEL) * k];
                    kernel.run(panel, rows, k, first_is_product, out);
                }
            });
        let mut result = vec![0f32; m * n];
        for (c, panel) in tmp.chunks_exact(per_panel).enumerate() {
            let cols = c * PANEL..((c + 1) * PANEL).min(n);
            for (i, acc) in panel.chunks_exact(PANEL).enumerate() {
                let dst = &mut result[i * n + cols.start..i * n + cols.end];
                match bias {
                    Some(b) => {
                        for ((d, &s), &b) in dst.iter_mut().zip(acc).zip(&b[cols.clone()]) {
                            *d = s + b;
                        }
                    }
                    None => dst.copy_from_slice(&acc[..cols.len()]),
                }
            }
        }
        result
    }
}

/// The widest instruction set this CPU offers for the same operations.
#[derive(Debug, Clone, Copy)]
enum Kernel {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
    Plain,
}

impl Kernel {
    fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Kernel::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Kernel::Avx2Fma;
            }
        }
        Kernel::Plain
    }

    /// Rows this kernel computes together (at most 8): their accumulators stay in registers
    /// while a panel streams by. Enough independent chains of fused multiply-adds to keep both
    /// FMA units busy (a chain waits about 4 cycles for its last result), few enough that
    /// nothing spills: AVX-512 has 32 registers, one per accumulator of 16 lanes; AVX2 has 16,
    /// two per accumulator. Grouping never changes the operations on one output.
    fn rows(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => 8,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma => 6,
            Kernel::Plain => 4,
        }
    }

    /// One panel against up to [`Kernel::rows`] rows of `a` (`rows.len() / k` of them).
    fn run(self, panel: &[f32], rows: &[f32], k: usize, first_is_product: bool, out: &mut [f32]) {
        match self {
            // SAFETY: the features were detected at run time.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { tile_avx512(panel, rows, k, first_is_product, out) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma => unsafe { tile_avx2(panel, rows, k, first_is_product, out) },
            Kernel::Plain => tile(panel, rows, k, first_is_product, out),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_avx512(panel: &[f32], rows: &[f32], k: usize, first: bool, out: &mut [f32]) {
    tile(panel, rows, k, first, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2(panel: &[f32], rows: &[f32], k: usize, first: bool, out: &mut [f32]) {
    tile(panel, rows, k, first, out)
}

/// The tile: written once, compiled for each instruction set by the callers' target features.
/// Each output lane sees the same operations whatever the compiler makes of the loops.
#[inline(always)]
fn tile(panel: &[f32], rows: &[f32], k: usize, first_is_product: bool, out: &mut [f32]) {
    match rows.len() / k {
        8 => tile_rows::<8>(panel, rows, k, first_is_product, out),
        7 => tile_rows::<7>(panel, rows, k, first_is_product, out),
        6 => tile_rows::<6>(panel, rows, k, first_is_product, out),
        5 => tile_rows::<5>(panel, rows, k, first_is_product, out),
        4 => tile_rows::<4>(panel, rows, k, first_is_product, out),
        3 => tile_rows::<3>(panel, rows, k, first_is_product, out),
        2 => tile_rows::<2>(panel, rows, k, first_is_product, out),
        1 => tile_rows::<1>(panel, rows, k, first_is_product, out),
        r => unreachable!("a tile holds 1 to 8 rows, not {r}"),
    }
}

#[inline(always)]
fn tile_rows<const R: usize>(
    panel: &[f32],
    rows: &[f32],
    k: usize,
    first_is_product: bool,
    out: &mut [f32],
) {
    let mut acc = [[0f32; PANEL]; R];
    let panel = &panel[..k * PANEL];
    let rows = &rows[..R * k];
    let mut start = 0;
    if first_is_product {
        let w = &panel[..PANEL];
        for (r, acc) in acc.iter_mut().enumerate() {
            let x = rows[r * k];
            for (acc, &w) in acc.iter_mut().zip(w) {
                *acc = w * x;
            }
        }
        start = 1;
    }
    // Raw pointers, so that the loop is the FMAs and their loads alone (no bounds or overflow
    // checks between them).
    let xs: [*const f32; R] = std::array::from_fn(|r| rows[r * k..].as_ptr());
    let ws = panel.as_ptr().cast::<[f32; PANEL]>();
    for p in start..k {
        // SAFETY: `p < k`, so the panel's row `p` (of `k`) and entry `p` of every row (each `k`
        // long, `R` of them in `rows`) lie within the slices cut above.
        let w = unsafe { &*ws.add(p) };
        for (acc, x) in acc.iter_mut().zip(&xs) {
            let x = unsafe { *x.add(p) };
            for l in 0..PANEL {
                acc[l] = w[l].mul_add(x, acc[l]);
            }
        }
    }
    for (dst, acc) in out.chunks_exact_mut(PANEL).zip(&acc) {
        dst.copy_from_slice(acc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::rng::SplitMix64;

    /// The definition, one output at a time.
    fn reference(a: &[f32], w: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut acc = if m == 1 { w[j] * a[i * k] } else { 0.0 };
                for p in usize::from(m == 1)..k {
                    acc = w[p * n + j].mul_add(a[i * k + p], acc);
                }
                out[i * n + j] = acc;
            }
        }
        out
    }

    #[test]
    fn every_kernel_sums_in_the_one_order() {
        let mut rng = SplitMix64::new(3);
        for (m, k, n) in [
            (1, 256, 768),
            (2, 32, 40),
            (7, 256, 256),
            (13, 256, 40),
            (5, 1, 17),
            (8, 32, 16),
            (9, 5, 17),
            (1, 1, 1),
        ] {
            let a: Vec<f32> = (0..m * k).map(|_| rng.uniform(3.0)).collect();
            let w: Vec<f32> = (0..k * n).map(|_| rng.uniform(0.2)).collect();
            let bias: Vec<f32> = (0..n).map(|_| rng.uniform(1.0)).collect();
            let packed = PackedMatrix::new(&w, k, n);
            let transposed: Vec<f32> = (0..n * k).map(|i| w[(i % k) * n + i / k]).collect();
            let by_outputs = PackedMatrix::from_outputs(&transposed, n, k);
            assert_eq!(bits(&by_outputs.panels), bits(&packed.panels));
            let want = reference(&a, &w, m, k, n);
            let got = packed.matmul(&a, m, None);
            assert_eq!(bits(&got), bits(&want), "{m}×{k}×{n}");
            let with_bias = packed.matmul(&a, m, Some(&bias));
            let want: Vec<f32> = want
                .iter()
                .enumerate()
                .map(|(i, v)| v + bias[i % n])
                .collect();
            assert_eq!(bits(&with_bias), bits(&want), "{m}×{k}×{n} + bias");
            // The portable tile gives what the detected one gives.
            let group = Kernel::detect().rows().min(m);
            let mut plain = vec![0f32; group * PANEL];
            let mut fast = plain.clone();
            let rows = &a[..group * k];
            tile(&packed.panels[..k * PANEL], rows, k, m == 1, &mut plain);
            Kernel::detect().run(&packed.panels[..k * PANEL], rows, k, m == 1, &mut fast);
            assert_eq!(bits(&plain), bits(&fast));
        }
    }

    #[test]
    fn one_row_keeps_the_sign_of_an_exact_zero_like_gemv() {
        // gemm's one-row path starts from a product (−0 stays −0); its tiled path from +0.
        let w = [-1.0f32, 1.0];
        let one = PackedMatrix::new(&w, 1, 2).matmul(&[0.0], 1, None);
        assert_eq!(one[0].to_bits(), (-0f32).to_bits());
        let two = PackedMatrix::new(&w, 1, 2).matmul(&[0.0, 0.0], 2, None);
        assert_eq!(two[0].to_bits(), 0f32.to_bits());
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }
}
