//! Portable activation functions: `exp`, `sigmoid`, `tanh` and `softmax` built from IEEE-754
//! additions, multiplications, divisions and bit moves only.
//!
//! Why: an archive is only as reproducible as the arithmetic behind its probabilities. The first
//! embedded GRUs compute their gates with the C library's `expf`/`tanhf`, whose last bit is not
//! specified and differs between libm versions and CPU-specific code paths (glibc picks an FMA
//! variant of `expf` at run time). They are also the slowest part of a GRU step that is not a
//! matrix product: one scalar call per gate and unit (21 % of a one-thread compression).
//!
//! These functions give the same bits wherever `f32` arithmetic is IEEE-754 with round to nearest
//! (every CPU Rust targets): no fused multiply-adds (Rust never contracts `a * b + c`), no table
//! whose contents could vary, no branch on the value except clamps, which are exact. Each slice
//! function works element by element, so whether the compiler vectorises a loop, and how wide,
//! cannot change a result: vectorising changes how many elements are done at once, never the
//! operations done on one.
//!
//! Accuracy: `exp` is within 2 ulp of the true value (correctly rounded on the pinned test values) on `[-87, 87]` (tested against `f64`), which
//! is all a model trained with libm's functions needs: the difference is far below what training
//! noise moves. A model opts in with `"activations": "portable"` in its `config.json`; models
//! without the field keep libm's functions, so their archives keep decoding.

/// Input clamp for [`exp`]: `exp(±87)` stays a normal `f32` (no overflow, no subnormals), so
/// `1 / (1 + exp(87))` is still a normal number too.
const EXP_LIMIT: f32 = 87.0;

/// `1.5 · 2²³`: adding it rounds an `f32` below 2²² in magnitude to an integer (ties to even),
/// and leaves that integer, plus 2²², in the low mantissa bits.
const ROUNDER: f32 = 12_582_912.0;

/// `ln 2` split (Cody and Waite; the constants of Cephes' `expf`) so that `n · LN2_HI` is exact
/// for the `|n| ≤ 127` that occur: `LN2_HI` has 9 significant bits.
const LN2_HI: f32 = 355.0 / 512.0;
const LN2_LO: f32 = -2.121_944_4e-4;

/// `e^x` for `x` clamped to `[-87, 87]`.
///
/// `x = n·ln 2 + r` with integer `n` and `|r| ≤ ln 2 / 2`; `e^r = 1 + r + r²·q(r)` with Cephes'
/// degree-5 minimax `q` in Horner form; `2^n` written straight into the exponent bits.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    // Not `clamp`: that would pass a NaN through, where these turn it into a limit.
    #[allow(clippy::manual_clamp)]
    let x = x.max(-EXP_LIMIT).min(EXP_LIMIT);
    let k = x * std::f32::consts::LOG2_E + ROUNDER;
    let n = k - ROUNDER;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let q = 1.987_569_2e-4;
    let q = q * r + 1.398_199_9e-3;
    let q = q * r + 8.333_452e-3;
    let q = q * r + 4.166_579_6e-2;
    let q = q * r + 1.666_666_5e-1;
    let q = q * r + 0.5;
    let p = q * (r * r) + r + 1.0;
    // k's bits are 0x4B40_0000 + n; adding 127 − 2²² leaves 127 + n in the low bits, and the
    // shift drops everything above them into the void, leaving the biased exponent of 2^n.
    let scale = k.to_bits().wrapping_add(127u32.wrapping_sub(1 << 22)) << 23;
    p * f32::from_bits(scale)
}

/// `1 / (1 + e^-x)`.
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `1 − 2 / (e^{2x} + 1)`: exact limits ±1, absolute error a few 10⁻⁸ near 0.
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(x + x) + 1.0)
}

/// The functions a recurrent cell's gates and output are computed with: llmzip's own
/// ([`Portable`]) or the replicas of those the first GRUs were made with
/// ([`super::glibc::Glibc`]). The cell arithmetic around them is shared ([`gru_row`],
/// [`lstm_row`]), so the two differ in these functions alone.
pub(crate) trait Gates {
    /// `1 / (1 + e^-x)`.
    fn sigmoid(x: f32) -> f32;
    /// `tanh x`.
    fn tanh(x: f32) -> f32;
    /// Softmax of one row of logits, in place.
    fn softmax(row: &mut [f32]);
}

/// llmzip's portable functions (this module's).
pub(crate) struct Portable;

impl Gates for Portable {
    #[inline(always)]
    fn sigmoid(x: f32) -> f32 {
        sigmoid(x)
    }
    #[inline(always)]
    fn tanh(x: f32) -> f32 {
        tanh(x)
    }
    fn softmax(row: &mut [f32]) {
        softmax(row)
    }
}

/// The GRU cell's gate arithmetic for one row, in place of candle's ops:
/// `r = σ(gi_r + gh_r)`, `z = σ(gi_z + gh_z)`, `n = tanh(gi_n + r·gh_n)`, `h' = n + z·(h − n)`.
/// `gi` and `gh` hold the three gate blocks (`3·H`), `h` and `out` one state (`H`).
///
/// Every operation is an IEEE-754 basic operation on one lane (no fused multiply-add: Rust
/// never contracts), so the 8-lane AVX2 build computes the bits of the 4-lane SSE2 one; where
/// the CPU has AVX2, that build runs.
pub(crate) fn gru_row<G: Gates>(gi: &[f32], gh: &[f32], h: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the feature was detected at run time.
        return unsafe { gru_row_avx2::<G>(gi, gh, h, out) };
    }
    gru_row_lanes::<G>(gi, gh, h, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn gru_row_avx2<G: Gates>(gi: &[f32], gh: &[f32], h: &[f32], out: &mut [f32]) {
    gru_row_lanes::<G>(gi, gh, h, out)
}

#[inline(always)]
fn gru_row_lanes<G: Gates>(gi: &[f32], gh: &[f32], h: &[f32], out: &mut [f32]) {
    let hidden = h.len();
    assert!(gi.len() == 3 * hidden && gh.len() == 3 * hidden && out.len() == hidden);
    let (gi_r, rest) = gi.split_at(hidden);
    let (gi_z, gi_n) = rest.split_at(hidden);
    let (gh_r, rest) = gh.split_at(hidden);
    let (gh_z, gh_n) = rest.split_at(hidden);
    for j in 0..hidden {
        let r = G::sigmoid(gi_r[j] + gh_r[j]);
        let z = G::sigmoid(gi_z[j] + gh_z[j]);
        let n = G::tanh(gi_n[j] + r * gh_n[j]);
        out[j] = n + z * (h[j] - n);
    }
}

/// The LSTM cell's gate arithmetic for one row: with `g = gi + gh` (blocks i, f, g, o),
/// `c' = σ(f)·c + σ(i)·tanh(g)`, `h' = σ(o)·tanh(c')`.
pub(crate) fn lstm_row<G: Gates>(
    gi: &[f32],
    gh: &[f32],
    c: &[f32],
    h_out: &mut [f32],
    c_out: &mut [f32],
) {
    let hidden = c.len();
    assert!(gi.len() == 4 * hidden && gh.len() == 4 * hidden);
    assert!(h_out.len() == hidden && c_out.len() == hidden);
    for j in 0..hidden {
        let pre = |k: usize| gi[k * hidden + j] + gh[k * hidden + j];
        let c_new = G::sigmoid(pre(1)) * c[j] + G::sigmoid(pre(0)) * G::tanh(pre(2));
        c_out[j] = c_new;
        h_out[j] = G::sigmoid(pre(3)) * G::tanh(c_new);
    }
}

/// Softmax of one row in place: `e^(x − max) / Σ`, the sum taken left to right.
#[inline]
pub(crate) fn softmax(row: &mut [f32]) {
    let max = max_of(row);
    for v in row.iter_mut() {
        *v = exp(*v - max);
    }
    let sum: f32 = row.iter().fold(0.0, |s, &v| s + v);
    let inv = 1.0 / sum;
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// The largest value of `row` (NaN ignored, −∞ when there is none), taken in 16 lanes so that
/// it vectorizes: a maximum is the same value in any order, up to the sign of a zero, which
/// `x − max` and `exp` cannot tell apart (−0 and +0 both give 1). (A signalling NaN could make
/// the order matter on some CPUs; arithmetic never produces one, and logits come from
/// arithmetic.)
#[inline(always)]
fn max_of(row: &[f32]) -> f32 {
    let (chunks, rest) = row.as_chunks::<16>();
    let mut lanes = [f32::NEG_INFINITY; 16];
    for c in chunks {
        for (m, &v) in lanes.iter_mut().zip(c) {
            *m = m.max(v);
        }
    }
    let max = lanes.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    rest.iter().fold(max, |m, &v| m.max(v))
}

/// Softmax of one row with the sum taken in 16 lanes (lane `l` adds the values at `l, l + 16,
/// …` in order, the lanes are added pairwise, `((l0 + l1) + (l2 + l3)) + …`, then the values
/// past the last 16 in order): the softmax of the `int8-kv8` network. A sum left to right waits
/// for each addition before the next (4 cycles each, 3 % of a SmolLM2 run over its 49,152-token
/// vocabulary); lanes run side by side, and the order is fixed, so the bits are the same on
/// every CPU and vector width.
#[inline]
pub(crate) fn softmax_lanes(row: &mut [f32]) {
    let max = max_of(row);
    for v in row.iter_mut() {
        *v = exp(*v - max);
    }
    let (chunks, rest) = row.as_chunks::<16>();
    let mut lanes = [0f32; 16];
    for c in chunks {
        for (s, &v) in lanes.iter_mut().zip(c) {
            *s += v;
        }
    }
    let mut width = 16;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            lanes[l] = lanes[2 * l] + lanes[2 * l + 1];
        }
    }
    let sum = rest.iter().fold(lanes[0], |s, &v| s + v);
    let inv = 1.0 / sum;
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// `softmax` (or [`softmax_lanes`] when `lanes`) compiled for AVX-512 where the CPU has it:
/// the same operations on each element, more of them at once.
pub(crate) fn softmax_compiled(row: &mut [f32], lanes: bool) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512 F.
        return unsafe { softmax_avx512(row, lanes) };
    }
    if lanes {
        softmax_lanes(row)
    } else {
        softmax(row)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn softmax_avx512(row: &mut [f32], lanes: bool) {
    if lanes {
        softmax_lanes(row)
    } else {
        softmax(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two finite positive floats.
    fn ulps(a: f32, b: f32) -> u32 {
        a.to_bits().abs_diff(b.to_bits())
    }

    #[test]
    fn exp_is_within_two_ulp_everywhere_it_is_used() {
        let mut worst = 0;
        let mut x = -EXP_LIMIT;
        while x <= EXP_LIMIT {
            let want = (x as f64).exp() as f32;
            worst = worst.max(ulps(exp(x), want));
            x += 0.000_731;
        }
        assert!(worst <= 2, "worst error {worst} ulp");
        assert_eq!(exp(0.0), 1.0);
        // Clamped, finite, normal at and beyond the limits.
        for x in [
            -1e30f32,
            -88.0,
            88.0,
            1e30,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ] {
            assert!(exp(x).is_normal(), "exp({x}) = {}", exp(x));
        }
    }

    #[test]
    fn gates_stay_in_range_and_close_to_libm() {
        let mut x = -40.0f32;
        while x <= 40.0 {
            let (s, t) = (sigmoid(x), tanh(x));
            assert!((0.0..=1.0).contains(&s) && (-1.0..=1.0).contains(&t), "{x}");
            assert!((s - 1.0 / (1.0 + (-x).exp())).abs() < 2e-7, "sigmoid({x})");
            assert!((t - x.tanh()).abs() < 2e-7, "tanh({x}) = {t}");
            x += 0.0137;
        }
        assert_eq!(tanh(50.0), 1.0);
        assert_eq!(tanh(-50.0), -1.0);
    }

    #[test]
    fn pinned_bits_catch_any_change_to_the_arithmetic() {
        // Archives of models with portable activations depend on these exact bits: a change
        // here is a format change, which must come as a new model version instead.
        let got: Vec<u32> = [-3.7f32, -0.3, 0.1, 1.0, 2.5, 60.0]
            .iter()
            .map(|&x| exp(x).to_bits())
            .collect();
        assert_eq!(
            got,
            [
                0x3cca_88fe,
                0x3f3d_a643,
                0x3f8d_763e,
                0x402d_f854,
                0x4142_eb7f,
                0x6abc_ede5
            ]
        );
    }

    /// The dispatched gate loop (the AVX2 build where the CPU has it) gives the bits of the
    /// baseline build, for both sets of functions, over the whole range the gates see.
    #[test]
    fn gru_rows_are_the_same_in_every_build() {
        let hidden = 37;
        let mut x = 11u32;
        let mut next = |scale: f32| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((x >> 8) as f32 / (1 << 24) as f32 - 0.5) * scale
        };
        for scale in [0.5, 8.0, 60.0, 400.0] {
            let gi: Vec<f32> = (0..3 * hidden).map(|_| next(scale)).collect();
            let gh: Vec<f32> = (0..3 * hidden).map(|_| next(scale)).collect();
            let h: Vec<f32> = (0..hidden).map(|_| next(2.0)).collect();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let (mut a, mut b) = (vec![0f32; hidden], vec![0f32; hidden]);
            gru_row::<Portable>(&gi, &gh, &h, &mut a);
            gru_row_lanes::<Portable>(&gi, &gh, &h, &mut b);
            assert_eq!(bits(&a), bits(&b), "portable, scale {scale}");
            gru_row::<super::super::glibc::Glibc>(&gi, &gh, &h, &mut a);
            gru_row_lanes::<super::super::glibc::Glibc>(&gi, &gh, &h, &mut b);
            assert_eq!(bits(&a), bits(&b), "glibc, scale {scale}");
        }
    }

    /// The maximum in lanes gives the softmax of the maximum taken left to right, bit for bit
    /// (zeros of either sign and NaN included), and the copies compiled for this CPU give the
    /// plain functions' bits; the lane sum stays a softmax, and its bits are pinned.
    #[test]
    fn softmax_in_lanes_and_compiled_copies() {
        fn sequential(row: &mut [f32]) {
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            for v in row.iter_mut() {
                *v = exp(*v - max);
            }
            let sum: f32 = row.iter().fold(0.0, |s, &v| s + v);
            let inv = 1.0 / sum;
            for v in row.iter_mut() {
                *v *= inv;
            }
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let mut x = 5u32;
        for len in [1, 15, 16, 17, 100, 49_152] {
            let mut row: Vec<f32> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    ((x >> 8) as f32 / (1 << 24) as f32 - 0.9) * 30.0
                })
                .collect();
            for (i, special) in [0.0, -0.0, f32::NAN].into_iter().enumerate() {
                if len > 3 {
                    row[len / 4 * (i + 1)] = special;
                }
            }
            let mut zeros = row.iter().map(|v| v.min(0.0)).collect::<Vec<_>>();
            zeros[0] = -0.0;
            for row in [&row, &zeros] {
                let (mut a, mut b, mut c) = (row.clone(), row.clone(), row.clone());
                sequential(&mut a);
                softmax(&mut b);
                softmax_compiled(&mut c, false);
                assert_eq!(bits(&a), bits(&b), "{len}");
                assert_eq!(bits(&a), bits(&c), "{len}");
                let (mut d, mut e) = (row.clone(), row.clone());
                softmax_lanes(&mut d);
                softmax_compiled(&mut e, true);
                assert_eq!(bits(&d), bits(&e), "{len}");
                for (p, q) in a.iter().zip(&d) {
                    assert!((p - q).abs() <= 1e-6 || p.is_nan() && q.is_nan(), "{p} {q}");
                }
            }
        }
        let mut row: Vec<f32> = (0..37).map(|i| (i as f32 * 0.7).sin() * 4.0).collect();
        softmax_lanes(&mut row);
        let pinned: Vec<u32> = [0, 16, 36].iter().map(|&i| row[i].to_bits()).collect();
        assert_eq!(
            pinned,
            [992015927, 944574788, 995269487],
            "{:?}",
            [row[0], row[16], row[36]]
        );
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let mut row: Vec<f32> = (0..256)
            .map(|i| ((i * 37) % 101) as f32 / 7.0 - 6.0)
            .collect();
        let before = row.clone();
        softmax(&mut row);
        let sum: f32 = row.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "{sum}");
        for i in 1..256 {
            assert_eq!(before[i] > before[i - 1], row[i] > row[i - 1]);
        }
    }
}
