//! Linear mixers in the logistic domain: a weighted sum of stretched probabilities, trained
//! online to minimize coding cost. Weights are 16.16 fixed point; a model keeps several weight
//! sets and picks one per prediction by a small context.

use super::logistic::squash;

/// The mixer's output for `inputs` under `weights`: the stretched probability, clamped.
///
/// The sum cannot overflow (each product of an `i16` and an `i32` is below 2^46, so fewer than
/// 2^17 terms fit in `i64`; N is a few dozen), so it is written with wrapping operations: the
/// same integers, without the overflow checks this crate keeps in release builds, which cost
/// a test and a branch per term in the hottest loop of the mixing models.
#[inline]
pub(crate) fn dot<const N: usize>(inputs: &[i16; N], weights: &[i32; N]) -> i32 {
    let d: i64 = inputs
        .iter()
        .zip(weights.iter())
        .fold(0i64, |acc, (&x, &w)| {
            acc.wrapping_add(i64::from(x).wrapping_mul(i64::from(w)))
        });
    (d >> 16).clamp(-2047, 2047) as i32
}

/// The rate [`train`] takes for a step of exactly `input · error >> shift`.
pub(crate) const UNIT_RATE: i32 = 16;

/// How a mixer learns: the size of its steps, their bound, and how they round.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Learning {
    /// Weights move by `input · error · rate / 16 >> shift`.
    pub shift: i32,
    /// In sixteenths; [`UNIT_RATE`] makes the step exactly `input · error >> shift`.
    pub rate: i32,
    /// Weights stay within ±`max_weight`, so sums cannot overflow.
    pub max_weight: i32,
    /// Steps round to nearest instead of down. A step that rounds down drifts every weight by
    /// −½ on average per update, which a mixer with a small learning rate (a large `shift`)
    /// cannot outgrow; the first mixers round down (their archives depend on it).
    pub nearest: bool,
}

/// One step of online gradient descent on coding cost for a mixer whose output was `st`.
/// With `rate` = [`UNIT_RATE`] and rounding down, the step is exactly `input · error >> shift`
/// (models made before rates existed depend on that).
pub(crate) fn train<const N: usize>(
    weights: &mut [i32; N],
    inputs: &[i16; N],
    st: i32,
    bit: u32,
    how: Learning,
) {
    let err = i64::from(((bit as i32) << 12) - squash(st)) * i64::from(how.rate);
    let half = if how.nearest {
        1i64 << (how.shift + 3)
    } else {
        0
    };
    let max = i64::from(how.max_weight);
    // Wrapping for the reason given at [`dot`]: |x · err| < 2^11 · 2^12 · rate, far inside i64.
    let shift = how.shift + 4;
    for (w, &x) in weights.iter_mut().zip(inputs) {
        let step = i64::from(x).wrapping_mul(err).wrapping_add(half) >> shift;
        *w = i64::from(*w).wrapping_add(step).clamp(-max, max) as i32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wrapping sum is the integer sum, at the extremes of inputs and weights too (a guard
    /// against a narrower accumulator).
    #[test]
    fn dot_is_the_integer_sum() {
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as i64
        };
        for case in 0..2000 {
            let mut x = [0i16; 37];
            let mut w = [0i32; 37];
            for (x, w) in x.iter_mut().zip(&mut w) {
                (*x, *w) = if case % 2 == 0 {
                    (
                        (next() % 4095 - 2047) as i16,
                        (next() % (1 << 25) - (1 << 24)) as i32,
                    )
                } else {
                    (2047 * if next() % 2 == 0 { 1 } else { -1 }, 1 << 24)
                };
            }
            let exact: i64 = x
                .iter()
                .zip(&w)
                .map(|(&x, &w)| i64::from(x) * i64::from(w))
                .sum();
            assert_eq!(dot(&x, &w), (exact >> 16).clamp(-2047, 2047) as i32);
        }
    }

    /// The unit rate is the old fixed step, to the bit, for every sign and size of input.
    #[test]
    fn unit_rate_is_the_plain_shift() {
        for st in [-2047, -900, -1, 0, 1, 555, 2047] {
            for bit in [0, 1] {
                let inputs = [2047i16, -2047, 1, -1, 0, 300, -301, 1234];
                let mut a = [1 << 14; 8];
                let mut b = a;
                let how = Learning {
                    shift: 12,
                    rate: UNIT_RATE,
                    max_weight: 1 << 24,
                    nearest: false,
                };
                train(&mut a, &inputs, st, bit, how);
                let err = ((bit as i32) << 12) - squash(st);
                for (w, &x) in b.iter_mut().zip(&inputs) {
                    *w = (*w + ((i32::from(x) * err) >> 12)).clamp(-(1 << 24), 1 << 24);
                }
                assert_eq!(a, b, "st {st} bit {bit}");
            }
        }
    }
}
