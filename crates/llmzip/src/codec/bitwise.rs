//! Blocks of models that predict one bit at a time ([`BitPredictor`]): one stream per block,
//! each byte's 8 bits most significant first, coded with the binary arithmetic coder.
//!
//! Both sides run this one loop, so the schedule is trivially the same: the model starts the
//! block with one row and sees every bit in order. The block header records one segment of
//! `len` tokens; the decoder refuses any other claim before decoding.

use crate::coder::binary;
use crate::models::BitPredictor;
use crate::observer::{check_cancel, Observer};
use crate::{Error, Result};

/// Bytes between two progress reports (and cancellation checks).
const REPORT_EVERY: usize = 1 << 16;

/// Code length of a bit predicted with probability p (12-bit), in bits.
fn cost_table() -> Vec<f32> {
    (0..4096)
        .map(|p| -((p.max(1) as f64) / 4096.0).log2() as f32)
        .collect()
}

/// A model's probability within the binary coder's range (any model's: a probability of 0 or
/// 65536 would empty the coding interval).
fn clamped(p1: u32) -> u32 {
    p1.clamp(binary::MIN_P, 65536 - binary::MIN_P)
}

/// Codes `block` and returns the payload and the model's ideal code length in bits.
pub(crate) fn encode(
    model: &mut dyn BitPredictor,
    block: &[u8],
    mut progress: impl FnMut(usize) -> Result<()>,
) -> Result<(Vec<u8>, f64)> {
    let costs = cost_table();
    let mut encoder = binary::Encoder::new();
    let mut ideal = 0f64;
    for (i, &byte) in block.iter().enumerate() {
        if i % REPORT_EVERY == 0 {
            progress(i)?;
        }
        let mut byte_bits = 0f32;
        for k in (0..8).rev() {
            let bit = (byte >> k) & 1 == 1;
            let p1 = clamped(model.predict());
            encoder.encode(bit, p1);
            let p = if bit { p1 } else { 65536 - p1 };
            byte_bits += costs[(p >> 4) as usize];
            model.update(bit);
        }
        ideal += f64::from(byte_bits);
    }
    Ok((encoder.finish(), ideal))
}

/// Decodes `len` bytes from `payload` into `out`; refuses a payload that ends early.
pub(crate) fn decode(
    model: &mut dyn BitPredictor,
    payload: &[u8],
    len: usize,
    out: &mut Vec<u8>,
    mut progress: impl FnMut(usize) -> Result<()>,
) -> Result<()> {
    let mut decoder = binary::Decoder::new(payload);
    out.clear();
    out.reserve_exact(len);
    for i in 0..len {
        if i % REPORT_EVERY == 0 {
            progress(i)?;
        }
        let mut byte = 0u8;
        for _ in 0..8 {
            let bit = decoder.decode(clamped(model.predict()));
            model.update(bit);
            byte = (byte << 1) | u8::from(bit);
        }
        out.push(byte);
        // An intact stream is read to its end at most (docs of binary::Decoder::overrun): more
        // means the header claims more bytes than the payload holds, so stop now rather than
        // decode a claimed length of zeros.
        if decoder.overrun() > 4 {
            return Err(Error::Corrupt(format!(
                "a block's coded data ends after {} of its {len} bytes",
                i + 1
            )));
        }
    }
    Ok(())
}

/// Progress within a block, for [`encode`] and [`decode`].
pub(crate) fn report(observer: &mut dyn Observer, start: u64, done: usize) -> Result<()> {
    check_cancel(observer)?;
    observer.progress(start + done as u64);
    Ok(())
}
