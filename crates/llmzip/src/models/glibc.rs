//! Bit-exact replicas of the C-library functions the first embedded GRUs (`gru`, `gru2` and the
//! `-cm` wrappers over them) were made with, so that their archives decode on every CPU and
//! under every C library.
//!
//! Why: those models compute their gates with `expf`/`tanhf` and their output softmax with
//! candle's, which sums with AVX2 when the CPU has it. Every archive of them was written on an
//! x86-64 Linux machine with glibc 2.36 and AVX2 + FMA, where glibc runs its FMA variant of
//! `expf` and candle its eight-lane sum. A machine without FMA (glibc then runs another `expf`
//! variant) or without AVX2 (candle then sums left to right), a newer glibc (whose `tanhf` is
//! correctly rounded since 2.41), musl or macOS computes other last bits now and then, and an
//! archive whose probabilities differ by one bit does not decode.
//!
//! So these functions perform the very operations that machine performed, from IEEE-754 basic
//! operations and `mul_add` (a fused multiply-add, which Rust computes exactly on every target:
//! in hardware, or in software where the CPU has none):
//!
//! - [`expf`]: glibc's `__expf_fma` (sysdeps/ieee754/flt-32/e_expf.c compiled with `-mfma`, so
//!   GCC contracts each `a * b + c` into one FMA), with its 32-entry table of `2^(i/32)`.
//! - [`tanhf`]: glibc's `__tanhf` over `__expm1f` (fdlibm's float versions, no FMA variant).
//! - [`softmax`]: candle 0.11's `softmax_last_dim` on a CPU with AVX2: the maximum left to right,
//!   `expf(x − max)`, the sum in candle's eight-lane, four-register order, then a division.
//!
//! Tested to equal the platform's own `expf`/`tanhf`/`expm1f` on every one of the 2³² inputs on
//! such a machine (the test below checks a sample wherever the platform is that one, and pinned
//! bits everywhere); the golden archives of `gru`, `gru2` and `gru-cm…` check the whole path.
//! New models use [`super::activation`], which is faster and was designed portable.

/// `tab[i] = bits(2^(i/32)) − (i << 47)`: glibc's `__exp2f_data.tab`.
const EXP2F_TAB: [u64; 32] = [
    0x3ff0000000000000,
    0x3fefd9b0d3158574,
    0x3fefb5586cf9890f,
    0x3fef9301d0125b51,
    0x3fef72b83c7d517b,
    0x3fef54873168b9aa,
    0x3fef387a6e756238,
    0x3fef1e9df51fdee1,
    0x3fef06fe0a31b715,
    0x3feef1a7373aa9cb,
    0x3feedea64c123422,
    0x3feece086061892d,
    0x3feebfdad5362a27,
    0x3feeb42b569d4f82,
    0x3feeab07dd485429,
    0x3feea47eb03a5585,
    0x3feea09e667f3bcd,
    0x3fee9f75e8ec5f74,
    0x3feea11473eb0187,
    0x3feea589994cce13,
    0x3feeace5422aa0db,
    0x3feeb737b0cdc5e5,
    0x3feec49182a3f090,
    0x3feed503b23e255d,
    0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47,
    0x3fef199bdd85529c,
    0x3fef3720dcef9069,
    0x3fef5818dcfba487,
    0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da,
    0x3fefd0765b6e4540,
];

/// `e^x` exactly as glibc 2.36's `__expf_fma` computes it.
pub(crate) fn expf(x: f32) -> f32 {
    let abstop = (x.to_bits() >> 20) & 0x7ff;
    if abstop >= 88f32.to_bits() >> 20 {
        // |x| >= 88, or NaN.
        if x == f32::NEG_INFINITY {
            return 0.0;
        }
        if abstop >= f32::INFINITY.to_bits() >> 20 {
            return x + x;
        }
        if x > f32::from_bits(0x42b1_7217) {
            return f32::INFINITY;
        }
        if x < -f32::from_bits(0x42cf_f1b4) {
            return 0.0;
        }
    }
    // N/ln 2 with N = 32; 1.5 · 2^52; the polynomial scaled by powers of 1/N.
    let inv_ln2_n = f64::from_bits(0x4047_1547_652b_82fe);
    let shift = f64::from_bits(0x4338_0000_0000_0000);
    let c = [
        f64::from_bits(0x3ebc_6af8_4b91_2394),
        f64::from_bits(0x3f2e_bfce_50fa_c4f3),
        f64::from_bits(0x3f96_2e42_ff0c_52d6),
    ];
    let xd = f64::from(x);
    // z = x·N/ln 2 = k + r; GCC fused the product into both of its uses.
    let kd = inv_ln2_n.mul_add(xd, shift);
    let ki = kd.to_bits();
    let kd = kd - shift;
    let r = inv_ln2_n.mul_add(xd, -kd);
    let t = EXP2F_TAB[(ki % 32) as usize].wrapping_add(ki << 47);
    let s = f64::from_bits(t);
    let z = c[0].mul_add(r, c[1]);
    let r2 = r * r;
    let y = c[2].mul_add(r, 1.0);
    let y = z.mul_add(r2, y);
    (y * s) as f32
}

/// `e^x − 1` exactly as glibc 2.36's `__expm1f` (fdlibm) computes it.
fn expm1f(mut x: f32) -> f32 {
    // fdlibm's constants, by their bits: ln 2 split high and low, 1/ln 2, and the scaled
    // coefficients Q1..Q5.
    const LN2_HI: f32 = f32::from_bits(0x3f31_7180);
    const LN2_LO: f32 = f32::from_bits(0x3717_f7d1);
    const INV_LN2: f32 = f32::from_bits(0x3fb8_aa3b);
    const Q: [f32; 5] = [
        f32::from_bits(0xbd08_8889),
        f32::from_bits(0x3ad0_0d01),
        f32::from_bits(0xb8a6_70cd),
        f32::from_bits(0x3686_7e54),
        f32::from_bits(0xb457_edbb),
    ];
    let sign = x.is_sign_negative();
    let hx = x.to_bits() & 0x7fff_ffff;
    if hx >= 0x4195_b844 {
        // |x| >= 27·ln 2
        if hx >= 0x42b1_7218 {
            if hx > 0x7f80_0000 {
                return x + x;
            }
            if hx == 0x7f80_0000 {
                return if sign { -1.0 } else { x };
            }
            if x > 88.721_68 {
                return f32::INFINITY;
            }
        }
        if sign {
            return 1.0e-30 - 1.0;
        }
    }
    let k: i32;
    let mut c = 0f32;
    if hx > 0x3eb1_7218 {
        // |x| > ln 2 / 2: reduce.
        let (hi, lo);
        if hx < 0x3f85_1592 {
            (hi, lo, k) = if sign {
                (x + LN2_HI, -LN2_LO, -1)
            } else {
                (x - LN2_HI, LN2_LO, 1)
            };
        } else {
            k = (INV_LN2 * x + if sign { -0.5 } else { 0.5 }) as i32;
            let t = k as f32;
            hi = x - t * LN2_HI;
            lo = t * LN2_LO;
        }
        x = hi - lo;
        c = (hi - x) - lo;
    } else if hx < 0x3300_0000 {
        // |x| < 2^-25
        let t = 1.0e30f32 + x;
        return x - (t - (1.0e30f32 + x));
    } else {
        k = 0;
    }
    let hfx = 0.5 * x;
    let hxs = x * hfx;
    let r1 = 1.0 + hxs * (Q[0] + hxs * (Q[1] + hxs * (Q[2] + hxs * (Q[3] + hxs * Q[4]))));
    let t = 3.0 - r1 * hfx;
    let mut e = hxs * ((r1 - t) / (6.0 - x * t));
    if k == 0 {
        return x - (x * e - hxs);
    }
    e = x * (e - c) - c;
    e -= hxs;
    if k == -1 {
        return 0.5 * (x - e) - 0.5;
    }
    if k == 1 {
        if x < -0.25 {
            return -2.0 * (e - (x + 0.5));
        }
        return 1.0 + 2.0 * (x - e);
    }
    let add_exponent = |y: f32| f32::from_bits((y.to_bits() as i32).wrapping_add(k << 23) as u32);
    if k <= -2 || k > 56 {
        return add_exponent(1.0 - (e - x)) - 1.0;
    }
    if k < 23 {
        let t = f32::from_bits((0x3f80_0000 - (0x0100_0000 >> k)) as u32);
        add_exponent(t - (e - x))
    } else {
        let t = f32::from_bits(((0x7f - k) << 23) as u32);
        add_exponent(x - (e + t) + 1.0)
    }
}

/// `tanh x` exactly as glibc 2.36's `__tanhf` computes it.
pub(crate) fn tanhf(x: f32) -> f32 {
    let negative = x.is_sign_negative();
    let ix = x.to_bits() & 0x7fff_ffff;
    if ix >= 0x7f80_0000 {
        return if negative {
            1.0 / x - 1.0
        } else {
            1.0 / x + 1.0
        };
    }
    let z = if ix < 0x41b0_0000 {
        // |x| < 22
        if ix == 0 {
            return x;
        }
        if ix < 0x2400_0000 {
            return x * (1.0 + x);
        }
        if ix >= 0x3f80_0000 {
            let t = expm1f(2.0 * x.abs());
            1.0 - 2.0 / (t + 2.0)
        } else {
            let t = expm1f(-2.0 * x.abs());
            -t / (t + 2.0)
        }
    } else {
        1.0 - 1.0e-30
    };
    if negative {
        -z
    } else {
        z
    }
}

/// The gates of the models made with the C library's functions: candle's sigmoid,
/// `(e^-x + 1).recip()` (the same bits as `1 / (1 + e^-x)`), [`tanhf`] and [`softmax`].
pub(crate) struct Glibc;

impl super::activation::Gates for Glibc {
    #[inline]
    fn sigmoid(x: f32) -> f32 {
        (expf(-x) + 1.0).recip()
    }
    #[inline]
    fn tanh(x: f32) -> f32 {
        tanhf(x)
    }
    fn softmax(row: &mut [f32]) {
        softmax(row)
    }
}

/// Softmax of one row in place, as candle 0.11's `softmax_last_dim` computes it on an AVX2 CPU.
pub(crate) fn softmax(row: &mut [f32]) {
    let Some(&first) = row.first() else {
        return;
    };
    let max = row[1..].iter().fold(first, |m, &v| m.max(v));
    for v in row.iter_mut() {
        *v = expf(*v - max);
    }
    let sum = candle_avx_sum(row);
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// candle's `vec_sum` with AVX2: four registers of eight lanes take 32 elements at a time; the
/// registers are added pairwise ((0+1) + (2+3)), the two halves of the result added lane by
/// lane, then two horizontal adds; the elements past the last multiple of 32 follow one by one.
fn candle_avx_sum(xs: &[f32]) -> f32 {
    let whole = xs.len() & !31;
    let mut acc = [[0f32; 8]; 4];
    for chunk in xs[..whole].chunks_exact(32) {
        for (j, reg) in acc.iter_mut().enumerate() {
            for (l, lane) in reg.iter_mut().enumerate() {
                *lane += chunk[j * 8 + l];
            }
        }
    }
    let lanes = |a: [f32; 8], b: [f32; 8]| -> [f32; 8] { std::array::from_fn(|l| a[l] + b[l]) };
    let x = lanes(lanes(acc[0], acc[1]), lanes(acc[2], acc[3]));
    let t: [f32; 4] = std::array::from_fn(|l| x[l] + x[l + 4]);
    // hadd(t, t) = [t0+t1, t2+t3, …]; hadd again: (t0+t1) + (t2+t3).
    let mut sum = (t[0] + t[1]) + (t[2] + t[3]);
    for &v in &xs[whole..] {
        sum += v;
    }
    sum
}

/// Whether this machine computes what the replicas replicate: x86-64 Linux with glibc 2.36 and
/// AVX2 + FMA (glibc then runs its FMA `expf`, candle its AVX2 sum), the machines every archive
/// of `gru`/`gru2` was made on. Tests compare with the platform's own functions only there.
#[cfg(test)]
pub(crate) fn is_reference_platform() -> bool {
    #[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn gnu_get_libc_version() -> *const std::ffi::c_char;
        }
        // SAFETY: glibc returns a static NUL-terminated string.
        let version = unsafe { std::ffi::CStr::from_ptr(gnu_get_libc_version()) };
        version.to_bytes() == b"2.36"
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `step`-th float: a sample of the whole range, NaNs and infinities included.
    fn sample(step: u64) -> impl Iterator<Item = f32> {
        (0..1u64 << 32)
            .step_by(step as usize)
            .map(|i| f32::from_bits(i as u32))
    }

    fn digest(f: impl Fn(f32) -> f32) -> u64 {
        // FNV-1a over the output bits of a fixed sample.
        sample(4099).fold(0xcbf2_9ce4_8422_2325, |h, x| {
            (h ^ u64::from(f(x).to_bits())).wrapping_mul(0x100_0000_01b3)
        })
    }

    #[test]
    fn pinned_outputs_catch_any_change() {
        // The outputs of glibc 2.36 (x86-64, FMA) on a fixed sample of 1,047,807 floats, as
        // computed by these replicas when they were checked against it on all 2^32 inputs.
        // Archives of gru, gru2 and gru-cm… depend on every bit.
        assert_eq!(digest(expf), 0xc7b6_6f60_6a70_5163, "expf");
        assert_eq!(digest(tanhf), 0x9ac0_48e4_5dab_0e6e, "tanhf");
    }

    /// Where the platform is the one those models were made on (x86-64 glibc with FMA), the
    /// replicas must equal its functions; elsewhere they differ now and then, which is why they
    /// exist.
    #[test]
    fn equal_to_the_platform_where_it_is_the_reference() {
        if !is_reference_platform() {
            eprintln!("not x86-64 glibc 2.36 with AVX2 + FMA: only the pinned outputs are checked");
            return;
        }
        for x in sample(65_537).chain([0.0, -0.0, 1e-40, 88.7, -103.9, 21.9, 22.0]) {
            let same = |a: f32, b: f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
            assert!(same(expf(x), x.exp()), "expf({x:e})");
            assert!(same(tanhf(x), x.tanh()), "tanhf({x:e})");
            assert!(same(expm1f(x), x.exp_m1()), "expm1f({x:e})");
        }
    }

    /// All 2^32 inputs (about a minute): `cargo test --release -p llmzip --lib -- --ignored
    /// every_input`, on an x86-64 glibc 2.36 machine with FMA.
    #[test]
    #[ignore]
    fn every_input_equals_the_platform() {
        let same = |a: f32, b: f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
        let bad = sample(1)
            .filter(|&x| {
                !same(expf(x), x.exp()) || !same(tanhf(x), x.tanh()) || !same(expm1f(x), x.exp_m1())
            })
            .take(10)
            .collect::<Vec<_>>();
        eprintln!(
            "digests: expf {:#x}, tanhf {:#x}",
            digest(expf),
            digest(tanhf)
        );
        assert!(bad.is_empty(), "differ at {bad:?}");
    }

    #[test]
    fn softmax_is_candles_bit_for_bit() {
        let mut rng = crate::models::rng::SplitMix64::new(5);
        // 256 (the byte models' rows) and 300: nine groups of 32 and a tail of 12.
        let rows: Vec<Vec<f32>> = [256, 300]
            .iter()
            .map(|&n| (0..n).map(|_| rng.uniform(9.0)).collect())
            .collect();
        let ours: Vec<Vec<u32>> = rows
            .iter()
            .map(|r| {
                let mut r = r.clone();
                softmax(&mut r);
                assert!((r.iter().sum::<f32>() - 1.0).abs() < 1e-5);
                r.iter().map(|x| x.to_bits()).collect()
            })
            .collect();
        // Pinned: a digest of both rows' bits, as candle computed them on the reference machine.
        let digest = ours
            .iter()
            .flatten()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        if is_reference_platform() {
            for (row, ours) in rows.iter().zip(&ours) {
                let t =
                    candle_core::Tensor::from_slice(row, (1, row.len()), &candle_core::Device::Cpu)
                        .unwrap();
                let theirs = candle_nn::ops::softmax_last_dim(&t).unwrap();
                let theirs: Vec<u32> = theirs
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
                    .iter()
                    .map(|x| x.to_bits())
                    .collect();
                assert_eq!(ours, &theirs, "{} elements", row.len());
            }
        }
        assert_eq!(digest, PINNED_SOFTMAX, "softmax digest {digest:#x}");
        let mut empty: [f32; 0] = [];
        softmax(&mut empty);
    }

    const PINNED_SOFTMAX: u64 = 0xa5bb_684c_ce63_579e;
}
