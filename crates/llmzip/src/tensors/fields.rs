//! One chunk of one number format, split into fields and coded: what is predictable through
//! adaptive bit models, what is noise as raw bits.
//!
//! Both directions run the *same* function per format over a buffer ([`Io`] decides whether a
//! field is being written or read): the encoder's buffer holds the data, the decoder's starts as
//! zeros and is filled in, and every context is computed from fields already coded. So the two
//! sides cannot drift apart, and there is one place per format to read.
//!
//! What is modelled, and why (measured on real weights: docs/benchmarks.md, "Weight files"):
//! * **Floats** (f32, f16, bf16): the exponent carries the predictable part of a weight (about
//!   2.7 of its 8 bits); it is coded through a binary tree of bit models chosen by the exponent
//!   of the value one row above (weight matrices have columns of larger and smaller magnitude),
//!   bucketed around the chunk's most common exponent. (The previous value's exponent was
//!   tried as well and alone or together with it did worse on the GRU's weights.) The top two
//!   mantissa bits are modelled by exponent; sign and the other mantissa bits are close to
//!   uniform noise and go out as raw bits.
//! * **Quantized blocks** (q8_0, q4_0, q4_1): the f16 scale (and minimum) of each block the same
//!   way as a float, from the previous block and the block above; the quants through bit-model
//!   trees (4-bit values given the previous one; 8-bit values order-0).
//! * **Bytes** (headers, metadata, anything else): order-1 bit-model tree.

use crate::coder::binary::{Bit, Decoder, Encoder};
use crate::{Error, Result};

use super::layout::Kind;

/// Mantissa bits of a float modelled (the rest are raw).
const TOP: u32 = 2;

/// Rows longer than this many units get no "above" context (its history would cost memory).
const MAX_ROW: u64 = 1 << 20;

/// Writes or reads the fields of a chunk.
trait Io {
    /// Codes the low `n` bits of `value` through the bit-model tree `tree` (2^n entries) and
    /// returns them (the encoder its argument, the decoder what it decoded).
    fn tree(&mut self, value: u32, n: u32, tree: &mut [Bit]) -> u32;
    /// Codes the low `n ≤ 32` bits of `value` as they are.
    fn raw(&mut self, value: u32, n: u32) -> u32;
}

struct Writing {
    coder: Encoder,
    raw: BitWriter,
}

impl Io for Writing {
    #[inline]
    fn tree(&mut self, value: u32, n: u32, tree: &mut [Bit]) -> u32 {
        self.coder.code_tree(value, n, tree);
        value & ((1u64 << n) - 1) as u32
    }
    #[inline]
    fn raw(&mut self, value: u32, n: u32) -> u32 {
        self.raw.put(value, n);
        value & ((1u64 << n) - 1) as u32
    }
}

struct Reading<'a> {
    coder: Decoder<'a>,
    raw: BitReader<'a>,
}

impl Io for Reading<'_> {
    #[inline]
    fn tree(&mut self, _: u32, n: u32, tree: &mut [Bit]) -> u32 {
        self.coder.code_tree(n, tree)
    }
    #[inline]
    fn raw(&mut self, _: u32, n: u32) -> u32 {
        self.raw.get(n)
    }
}

/// Little-endian bit packing of the raw fields.
#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    bits: u32,
}

impl BitWriter {
    #[inline]
    fn put(&mut self, value: u32, n: u32) {
        self.acc |= (u64::from(value) & ((1u64 << n) - 1)) << self.bits;
        self.bits += n;
        while self.bits >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.bits -= 8;
        }
    }
    fn finish(mut self) -> Vec<u8> {
        if self.bits > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

struct BitReader<'a> {
    input: &'a [u8],
    pos: usize,
    acc: u64,
    bits: u32,
}

impl BitReader<'_> {
    #[inline]
    fn get(&mut self, n: u32) -> u32 {
        while self.bits < n {
            let b = self.input.get(self.pos).copied().unwrap_or(0);
            self.pos += 1;
            self.acc |= u64::from(b) << self.bits;
            self.bits += 8;
        }
        let v = (self.acc & ((1u64 << n) - 1)) as u32;
        self.acc >>= n;
        self.bits -= n;
        v
    }
}

/// Codes `data` (a chunk of `kind` that starts `first` units into its tensor, whose rows are
/// `row` units long) and returns the payload. Data the models would expand is stored.
pub(crate) fn encode(kind: Kind, row: u64, first: u64, data: &[u8]) -> Vec<u8> {
    let mut buf = data.to_vec();
    let mut w = Writing {
        coder: Encoder::new(),
        raw: BitWriter::default(),
    };
    let header = run(kind, row, first, &mut buf, &mut w, None);
    let coded = w.coder.finish();
    let raw = w.raw.finish();
    let mut out = Vec::with_capacity(coded.len() + raw.len() + 16);
    out.push(1);
    out.extend_from_slice(&header);
    crate::format::varint::write_u64(&mut out, coded.len() as u64).expect("vec");
    out.extend_from_slice(&coded);
    out.extend_from_slice(&raw);
    if out.len() > data.len() + 1 {
        out.clear();
        out.push(0);
        out.extend_from_slice(data);
    }
    out
}

/// Decodes a payload of [`encode`] into `len` bytes. Garbage decodes into garbage of the right
/// length (the caller's CRC catches it); only the payload's structure is checked here.
pub(crate) fn decode(
    kind: Kind,
    row: u64,
    first: u64,
    payload: &[u8],
    len: usize,
) -> Result<Vec<u8>> {
    let corrupt = |what: &str| Error::Corrupt(format!("a {} chunk's payload {what}", kind.name()));
    let (&mode, rest) = payload.split_first().ok_or_else(|| corrupt("is empty"))?;
    match mode {
        0 if rest.len() == len => Ok(rest.to_vec()),
        0 => Err(corrupt("has the wrong length")),
        1 => {
            let header_len = header_len(kind);
            let header = rest.get(..header_len).ok_or_else(|| corrupt("is cut"))?;
            let mut rest = &rest[header_len..];
            let max = rest.len() as u64;
            let coded_len =
                crate::format::varint::read_bounded(&mut rest, "coded length", max)? as usize;
            if coded_len > rest.len() {
                return Err(corrupt("is cut"));
            }
            let (coded, raw) = rest.split_at(coded_len);
            let mut r = Reading {
                coder: Decoder::new(coded),
                raw: BitReader {
                    input: raw,
                    pos: 0,
                    acc: 0,
                    bits: 0,
                },
            };
            let mut buf = vec![0u8; len];
            run(kind, row, first, &mut buf, &mut r, Some(header));
            if r.coder.overrun() > 4 || r.raw.pos > raw.len() {
                return Err(corrupt("is shorter than its data"));
            }
            Ok(buf)
        }
        _ => Err(corrupt("has an unknown mode")),
    }
}

/// Bytes of per-chunk parameters a format writes before its streams.
fn header_len(kind: Kind) -> usize {
    match kind {
        Kind::Bytes => 0,
        _ => 1, // the reference exponent of the buckets
    }
}

/// Runs the field coder of `kind` over `buf`. The encoder passes `header: None` and gets the
/// header it chose back; the decoder passes the header it read.
fn run(
    kind: Kind,
    row: u64,
    first: u64,
    buf: &mut [u8],
    io: &mut impl Io,
    header: Option<&[u8]>,
) -> Vec<u8> {
    let row = if row > MAX_ROW { 0 } else { row };
    match kind {
        Kind::Bytes => {
            bytes(buf, io);
            Vec::new()
        }
        Kind::F32 | Kind::F16 | Kind::Bf16 => {
            let f = Float::of(kind);
            let reference = match header {
                Some(h) => h[0],
                None => f.common_exponent(buf),
            };
            floats(f, reference, row, first, buf, io);
            vec![reference]
        }
        Kind::Q8_0 | Kind::Q4_0 | Kind::Q4_1 => {
            let unit = kind.unit() as usize;
            let reference = match header {
                Some(h) => h[0],
                None => Float::F16.common_exponent_strided(buf, unit),
            };
            blocks(kind, reference, row, first, buf, io);
            vec![reference]
        }
    }
}

/// A binary floating-point format: `width` bytes, `exp` exponent bits, `mant` mantissa bits.
#[derive(Clone, Copy)]
struct Float {
    width: usize,
    exp: u32,
    mant: u32,
}

impl Float {
    const F16: Float = Float {
        width: 2,
        exp: 5,
        mant: 10,
    };

    fn of(kind: Kind) -> Float {
        match kind {
            Kind::F32 => Float {
                width: 4,
                exp: 8,
                mant: 23,
            },
            Kind::Bf16 => Float {
                width: 2,
                exp: 8,
                mant: 7,
            },
            _ => Float::F16,
        }
    }

    #[inline]
    fn load(self, buf: &[u8], at: usize) -> u32 {
        let mut v = 0u32;
        for k in 0..self.width {
            v |= u32::from(buf[at + k]) << (8 * k);
        }
        v
    }

    #[inline]
    fn store(self, buf: &mut [u8], at: usize, v: u32) {
        for k in 0..self.width {
            buf[at + k] = (v >> (8 * k)) as u8;
        }
    }

    #[inline]
    fn exponent(self, v: u32) -> u32 {
        (v >> self.mant) & ((1 << self.exp) - 1)
    }

    /// Codes one value: its exponent through `tree`, the top [`TOP`] mantissa bits through
    /// `top` (chosen by the exponent: within a binade the density of a bell-shaped weight
    /// distribution falls towards its end), sign and the other mantissa bits raw. Returns the
    /// value and its exponent.
    #[inline]
    fn code(self, v: u32, tree: &mut [Bit], top: &mut [Bit], io: &mut impl Io) -> (u32, u32) {
        let e = io.tree(self.exponent(v), self.exp, tree);
        let low_bits = self.mant - TOP;
        let t = io.tree(
            (v >> low_bits) & ((1 << TOP) - 1),
            TOP,
            &mut top[(e as usize) << TOP..][..1 << TOP],
        );
        let sign = v >> (self.exp + self.mant);
        let rest = io.raw(
            (sign << low_bits) | (v & ((1 << low_bits) - 1)),
            low_bits + 1,
        );
        let v = ((rest >> low_bits) << (self.exp + self.mant))
            | (e << self.mant)
            | (t << low_bits)
            | (rest & ((1 << low_bits) - 1));
        (v, e)
    }

    /// Codes one f16 scale: exponent through `tree` as [`Float::code`] does, but the sign
    /// through `sign` and the top 3 mantissa bits through `top` (chosen by the exponent), since
    /// scales have a fixed sign and a skewed mantissa; the low 7 bits raw.
    #[inline]
    fn code_scale(
        self,
        v: u32,
        tree: &mut [Bit],
        sign: &mut [Bit],
        top: &mut [Bit],
        io: &mut impl Io,
    ) -> (u32, u32) {
        let e = io.tree(self.exponent(v), self.exp, tree);
        let s = io.tree(v >> 15, 1, sign);
        let t = io.tree((v >> 7) & 7, 3, &mut top[e as usize * 8..][..8]);
        let low = io.raw(v & 127, 7);
        ((s << 15) | (e << 10) | (t << 7) | low, e)
    }

    fn common_exponent(self, buf: &[u8]) -> u8 {
        self.common_exponent_strided(buf, self.width)
    }

    /// The most common exponent of the values at the start of every `stride` bytes.
    fn common_exponent_strided(self, buf: &[u8], stride: usize) -> u8 {
        let mut counts = [0u32; 256];
        for at in (0..buf.len().saturating_sub(self.width - 1)).step_by(stride) {
            counts[self.exponent(self.load(buf, at)) as usize] += 1;
        }
        (0..256).max_by_key(|&e| (counts[e], e)).unwrap_or(0) as u8
    }
}

/// Contexts from an exponent: 16 buckets around the chunk's most common exponent (below it
/// the buckets are one exponent wide down to 12 under it, above it 3 over it).
#[inline]
fn bucket(e: u32, reference: u8) -> usize {
    (e as i32 - reference as i32 + 12).clamp(0, 15) as usize
}

/// Bit-model trees for an `n`-bit field under 256 contexts (previous × above bucket).
fn trees(n: u32) -> Vec<Bit> {
    vec![Bit::default(); 256 << n]
}

/// The exponents of the previous row, for the "above" context.
struct Rows {
    row: usize,
    col: usize,
    above: Vec<u8>,
}

impl Rows {
    fn new(row: u64, first: u64) -> Rows {
        let row = row as usize;
        Rows {
            row,
            col: if row > 0 {
                (first % row as u64) as usize
            } else {
                0
            },
            above: vec![0; row],
        }
    }

    /// The exponent one row above the current position (0 when there are no rows).
    #[inline]
    fn above(&self) -> u32 {
        if self.row > 0 {
            u32::from(self.above[self.col])
        } else {
            0
        }
    }

    /// Records the current position's exponent and moves on.
    #[inline]
    fn advance(&mut self, e: u32) {
        if self.row > 0 {
            self.above[self.col] = e as u8;
            self.col += 1;
            if self.col == self.row {
                self.col = 0;
            }
        }
    }
}

fn floats(f: Float, reference: u8, row: u64, first: u64, buf: &mut [u8], io: &mut impl Io) {
    let mut tree = trees(f.exp);
    let mut top = vec![Bit::default(); 256 << TOP];
    let size = 1usize << f.exp;
    let mut rows = Rows::new(row, first);
    for at in (0..buf.len()).step_by(f.width) {
        let ctx = bucket(rows.above(), reference) * 16;
        let (v, e) = f.code(
            f.load(buf, at),
            &mut tree[ctx * size..][..size],
            &mut top,
            io,
        );
        f.store(buf, at, v);
        rows.advance(e);
    }
}

fn blocks(kind: Kind, reference: u8, row: u64, first: u64, buf: &mut [u8], io: &mut impl Io) {
    let unit = kind.unit() as usize;
    let h = Float::F16;
    let size = 1usize << h.exp;
    let mut scale_tree = trees(h.exp);
    let mut min_tree = trees(h.exp);
    let mut rows = Rows::new(row, first);
    let mut prev = u32::from(reference);
    let mut prev_min = u32::from(reference);
    let mut nibbles = vec![Bit::default(); 17 * 16];
    let mut signs = [Bit::default(); 4];
    let mut tops = vec![Bit::default(); 2 * 32 * 8];
    let mut quants = vec![Bit::default(); 16 * 256];
    for block in buf.chunks_exact_mut(unit) {
        let ctx = bucket(prev, reference) * 16 + bucket(rows.above(), reference);
        let (d, e) = h.code_scale(
            h.load(block, 0),
            &mut scale_tree[ctx * size..][..size],
            &mut signs[..2],
            &mut tops[..256],
            io,
        );
        h.store(block, 0, d);
        rows.advance(e);
        prev = e;
        let quants_at = match kind {
            Kind::Q4_1 => {
                let ctx = bucket(prev_min, reference) * 16 + bucket(e, reference);
                let (m, e) = h.code_scale(
                    h.load(block, 2),
                    &mut min_tree[ctx * size..][..size],
                    &mut signs[2..],
                    &mut tops[256..],
                    io,
                );
                h.store(block, 2, m);
                prev_min = e;
                4
            }
            _ => 2,
        };
        if kind == Kind::Q8_0 {
            // A block's quants spread differently with the size of its scale.
            let tree = &mut quants[bucket(e, reference) * 256..][..256];
            for q in &mut block[quants_at..] {
                *q = io.tree(u32::from(*q), 8, tree) as u8;
            }
        } else {
            // The weights of a block centre on its zero: the nibble that decodes to 0, −m/d
            // for q4_1 (8 for q4_0, whose values are d·(q − 8)).
            let zero = match kind {
                Kind::Q4_1 => zero_point(h.load(block, 0), h.load(block, 2)),
                _ => 8,
            };
            let tree = &mut nibbles[zero * 16..][..16];
            for q in &mut block[quants_at..] {
                let lo = io.tree(u32::from(*q & 15), 4, tree);
                let hi = io.tree(u32::from(*q >> 4), 4, tree);
                *q = (lo | (hi << 4)) as u8;
            }
        }
    }
}

/// f16 bits to f32, exactly (integer work only: the same on every machine).
fn f16_to_f32(h: u32) -> f32 {
    let sign = (h >> 15) & 1;
    let exp = (h >> 10) & 31;
    let mant = h & 0x3ff;
    let bits = match (exp, mant) {
        (0, 0) => sign << 31,
        (0, _) => {
            // Subnormal: normalise the mantissa.
            let shift = mant.leading_zeros() - 21;
            (sign << 31) | ((113 - shift) << 23) | (((mant << shift) & 0x3ff) << 13)
        }
        (31, _) => (sign << 31) | (255 << 23) | (mant << 13),
        _ => (sign << 31) | ((exp + 112) << 23) | (mant << 13),
    };
    f32::from_bits(bits)
}

/// The q4_1 nibble that decodes to zero, `round(−m / d)` in 0..=15, or 16 when `d` is 0 or not
/// finite. IEEE division is correctly rounded everywhere, so both sides agree.
fn zero_point(d: u32, m: u32) -> usize {
    let (d, m) = (f16_to_f32(d), f16_to_f32(m));
    let z = -m / d;
    if z.is_finite() {
        (z + 0.5).clamp(0.0, 15.0) as usize
    } else {
        16
    }
}

fn bytes(buf: &mut [u8], io: &mut impl Io) {
    let mut tree = vec![Bit::default(); 256 * 256];
    let mut prev = 0usize;
    for b in buf.iter_mut() {
        *b = io.tree(u32::from(*b), 8, &mut tree[prev * 256..][..256]) as u8;
        prev = *b as usize;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensors::tests::{lcg, weights};

    fn round_trip(kind: Kind, row: u64, first: u64, data: &[u8]) -> usize {
        let payload = encode(kind, row, first, data);
        let back = decode(kind, row, first, &payload, data.len()).unwrap();
        assert_eq!(back, data, "{kind:?}");
        payload.len()
    }

    #[test]
    fn f16_converts_exactly() {
        for (h, f) in [
            (0x3c00, 1.0f32),
            (0xc000, -2.0),
            (0x0001, 2f32.powi(-24)),
            (0x0200, 2f32.powi(-15)),
            (0x03ff, 1023.0 / 1024.0 * 2f32.powi(-14)),
            (0x7bff, 65504.0),
            (0x8000, -0.0),
        ] {
            assert_eq!(f16_to_f32(h).to_bits(), f.to_bits(), "{h:#x}");
        }
        assert!(f16_to_f32(0x7c00).is_infinite() && f16_to_f32(0x7e00).is_nan());
        assert_eq!(zero_point(0x3c00, 0xc000), 2); // -(-2) / 1
        assert_eq!(zero_point(0, 0xc000), 16);
    }

    #[test]
    fn every_format_round_trips_any_bytes() {
        let mut s = crate::models::rng::SplitMix64::new(3);
        let random: Vec<u8> = (0..34 * 200).map(|_| lcg(&mut s) as u8).collect();
        for kind in Kind::ALL {
            for len in [0, kind.unit() as usize, 34 * 20 * 4] {
                for (row, first) in [(0, 0), (3, 0), (7, 5)] {
                    let n = round_trip(kind, row, first, &random[..len]);
                    assert!(n <= len + 1, "{kind:?} expanded {len} to {n}");
                }
            }
        }
    }

    #[test]
    fn weights_compress_below_raw_size_in_every_float_format() {
        let w = weights(64 * 1024, 9);
        let f32s: Vec<u8> = w.iter().flat_map(|x| x.to_le_bytes()).collect();
        let bf16: Vec<u8> = w
            .iter()
            .flat_map(|x| ((x.to_bits() >> 16) as u16).to_le_bytes())
            .collect();
        let n = round_trip(Kind::F32, 256, 0, &f32s);
        // Sign + mantissa alone are 24 of 32 bits; the exponent of these values costs ~2-3 bits.
        assert!(n * 32 < f32s.len() * 28, "f32: {n} of {}", f32s.len());
        let n = round_trip(Kind::Bf16, 256, 0, &bf16);
        assert!(n * 16 < bf16.len() * 12, "bf16: {n} of {}", bf16.len());
    }
}
