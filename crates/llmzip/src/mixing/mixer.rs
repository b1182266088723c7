//! Linear mixers in the logistic domain: a weighted sum of stretched probabilities, trained
//! online to minimize coding cost. Weights are 16.16 fixed point; a model keeps several weight
//! sets and picks one per prediction by a small context.

use super::logistic::squash;

/// The mixer's output for `inputs` under `weights`: the stretched probability, clamped.
pub(crate) fn dot<const N: usize>(inputs: &[i16; N], weights: &[i32; N]) -> i32 {
    let d: i64 = inputs
        .iter()
        .zip(weights.iter())
        .map(|(&x, &w)| i64::from(x) * i64::from(w))
        .sum();
    (d >> 16).clamp(-2047, 2047) as i32
}

/// One step of online gradient descent on coding cost for a mixer whose output was `st`:
/// weights move by `input · error >> shift` and stay within ±`max_weight`, so sums cannot
/// overflow.
pub(crate) fn train<const N: usize>(
    weights: &mut [i32; N],
    inputs: &[i16; N],
    st: i32,
    bit: u32,
    shift: i32,
    max_weight: i32,
) {
    let err = ((bit as i32) << 12) - squash(st);
    for (w, &x) in weights.iter_mut().zip(inputs) {
        *w = (*w + ((i32::from(x) * err) >> shift)).clamp(-max_weight, max_weight);
    }
}
