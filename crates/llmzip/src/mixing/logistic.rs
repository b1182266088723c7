//! The logistic function and its inverse on lpaq's fixed-point scales: probabilities are 12-bit
//! (p · 4096 in [1, 4095]), the logistic domain ("stretched", ln(p/(1-p)) · 256) is clamped to
//! [-2047, 2047]. Mixing happens in the stretched domain, where adding evidence is adding numbers.

/// Logistic function: `d` is ln(p/(1-p)) · 256 in [-2047, 2047], the result p · 4096 in
/// [1, 4095]. Integer interpolation, so identical everywhere.
pub(crate) fn squash(d: i32) -> i32 {
    const T: [i32; 33] = [
        1, 2, 3, 6, 10, 16, 27, 45, 73, 120, 194, 310, 488, 747, 1101, 1546, 2047, 2549, 2994,
        3348, 3607, 3785, 3901, 3975, 4022, 4050, 4068, 4079, 4085, 4089, 4092, 4093, 4094,
    ];
    if d > 2047 {
        return 4095;
    }
    if d < -2047 {
        return 1;
    }
    let w = d & 127;
    let i = ((d >> 7) + 16) as usize;
    ((T[i] * (128 - w) + T[i + 1] * w + 64) >> 7).clamp(1, 4095)
}

/// Inverse of [`squash`] as a table over 12-bit probabilities.
pub(crate) fn stretch_table() -> Vec<i16> {
    let mut t = vec![0i16; 4096];
    let mut next = 0usize;
    for x in -2047..=2047 {
        let v = squash(x) as usize;
        for slot in t.iter_mut().take(v + 1).skip(next) {
            *slot = x as i16;
        }
        next = next.max(v + 1);
    }
    for slot in t.iter_mut().skip(next) {
        *slot = 2047;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stretch_inverts_squash() {
        let t = stretch_table();
        for (p, &st) in t.iter().enumerate().take(4095).skip(1) {
            let back = squash(i32::from(st));
            assert!(
                (back - p as i32).abs() <= 1 + p as i32 / 64,
                "{p} -> {st} -> {back}"
            );
        }
        assert!(t[1] < -1500 && t[4095] > 1500 && t[2048].abs() < 8);
        // The smallest stretched value that squashes to at least p.
        for p in 1..4096 {
            let x = i32::from(t[p as usize]);
            if x < 2047 {
                assert!(squash(x) >= p, "p = {p}");
            }
            if x > -2047 {
                assert!(squash(x - 1) < p, "p = {p}");
            }
        }
    }
}
