//! One chunk of one number format, split into fields and coded: what is predictable as symbols
//! of adaptive tables (rANS, [`crate::coder::rans`]), what is noise as raw bits.
//!
//! Both directions run the *same* function per format over a buffer ([`Io`] decides whether a
//! field is being written or read): the encoder's buffer holds the data, the decoder's starts as
//! zeros and is filled in, and every context is computed from fields already coded. So the two
//! sides cannot drift apart, and there is one place per format to read.
//!
//! What is modelled, and why (measured on real weights: docs/benchmarks.md, "Weight files"):
//! * **Floats** (f32, f16, bf16): the exponent carries the predictable part of a weight (about
//!   2.7 of its 8 bits). It is coded under the exponent of the value one row above (weight
//!   matrices have columns of larger and smaller magnitude), bucketed around the chunk's most
//!   common exponent; the previous value's exponent was tried as well, alone or together with
//!   it, and did worse on the GRU's weights; the mean of the two rows above does a little
//!   better than one (-0.1 %). The top two mantissa bits are coded by exponent (within a
//!   binade a bell-shaped density falls towards the end), the sign by the sign above (the GRU's
//!   output head has columns of one sign: 0.80 bits per sign there); the other mantissa bits
//!   are close to uniform noise and go out as raw bits.
//! * **Quantized blocks** (q8_0, q4_0, q4_1): each block's f16 scale exponent under the
//!   previous block's and the one above; q4_1's minimum under the previous minimum and this
//!   block's scale; sign and top mantissa bits of both by exponent. q4 nibbles under the
//!   block's zero point (the nibble that decodes to 0: −m/d), which says where its values
//!   centre (-1.3 % of q4_1 bytes against one table); q8 quants under the scale's bucket.
//!   q5_0 and q5_1 likewise, their 5-bit values (a nibble and a bit stored apart) under the
//!   block's zero point as whole symbols.
//! * **q2_k, q3_k**: the super-block scale (and q2_k's minimum) like the other K-quants', the
//!   packed sub-block scales byte by byte by position, q2_k's 2-bit values under their
//!   sub-block's zero point, q3_k's 3-bit values (a bit of `hmask` joined to two of `qs`) under
//!   the size of their sub-block's scale.
//! * **K-quants** (q4_k, q5_k, q6_k; super-blocks of 256 values): the super-block's f16 scale
//!   (and q4_k's and q5_k's minimum) like q4_1's; the packed sub-block scales byte by byte, by
//!   position; q4_k's nibbles and q5_k's 5-bit values under their sub-block's zero point
//!   (`dmin·m / (d·sc)`), q6_k's 6-bit values under
//!   the size of their sub-block's scale, which is coded first although the file stores it
//!   after them. On K-quants of the GRU's weights (candle's quantizers) this gives 1.070x
//!   (q4_k) and 1.040x (q6_k) where coding them as bytes gave 1.000x
//!   (`k_quants_of_real_weights_round_trip_and_beat_bytes`).
//! * **Bytes** (headers, metadata, anything else): adaptive bit models of the previous byte and
//!   of the previous two (hashed), mixed — the binary coder, as these regions are small.
//!
//! Tensors of one format and row length that follow each other are one region (layout), so
//! small tensors share a chunk and its statistics.

use crate::coder::binary::{Bit, Decoder, Encoder};
use crate::coder::rans::{self, Lanes, Models, Space};
use crate::coder::Padded;
use crate::{Error, Result};

use super::layout::Kind;

/// Mantissa bits of a float modelled (the rest are raw).
const TOP: u32 = 2;

/// 8-bit exponents are coded as one of the 31 from `reference − EXP_BELOW` up, or escaped.
const EXP_BELOW: i32 = 27;
const ESCAPE: u32 = 31;

/// Byte chunks shorter than this are padding, coded with one context per order.
const TINY_BYTES: usize = 256;

/// Rows longer than this many units get no "above" context (its history would cost memory).
const MAX_ROW: u64 = 1 << 20;

/// Writes or reads the fields of a chunk.
trait Io {
    /// Codes the low `n` bits of `value` through two adaptive bit-model trees (2^n entries
    /// each) whose probabilities are mixed, and returns them (the encoder its argument, the
    /// decoder what it decoded).
    fn tree2(&mut self, value: u32, n: u32, a: &mut [Bit], b: &mut [Bit]) -> u32;
    /// Codes symbol `value` of adaptive table `t` (of the format's [`Space`]).
    fn symbol(&mut self, value: u32, t: usize) -> u32;
    /// Codes each of `values` as a symbol of table `t`, in order, as [`Io::symbol`] would
    /// (the decoder fills them in), faster.
    fn symbols(&mut self, values: &mut [u8], t: usize);
    /// Codes the low `n ≤ 32` bits of `value` as they are.
    fn raw(&mut self, value: u32, n: u32) -> u32;
}

/// The encoder's side: bit-model decisions go straight to the binary coder; symbols update the
/// adaptive tables and their intervals are recorded, to be rANS-coded (backwards) a segment at
/// a time (`rans::Encoder`).
struct Writing<'a> {
    coder: Encoder,
    models: Models,
    symbols: &'a mut rans::Encoder,
    raw: BitWriter,
}

impl Io for Writing<'_> {
    #[inline(always)]
    fn tree2(&mut self, value: u32, n: u32, a: &mut [Bit], b: &mut [Bit]) -> u32 {
        self.coder.code_tree2(value, n, a, b);
        value & ((1u64 << n) - 1) as u32
    }
    #[inline(always)]
    fn symbol(&mut self, value: u32, t: usize) -> u32 {
        self.symbols.encode(&mut self.models, t, value);
        value
    }
    #[inline(always)]
    fn symbols(&mut self, values: &mut [u8], t: usize) {
        self.symbols.encode_run(&mut self.models, t, values);
    }
    #[inline(always)]
    fn raw(&mut self, value: u32, n: u32) -> u32 {
        self.raw.put(value, n);
        value & ((1u64 << n) - 1) as u32
    }
}

struct Reading<'a> {
    coder: Decoder<'a>,
    models: Models,
    symbols: rans::Decoder<'a>,
    raw: BitReader<'a>,
}

impl Io for Reading<'_> {
    #[inline(always)]
    fn tree2(&mut self, _: u32, n: u32, a: &mut [Bit], b: &mut [Bit]) -> u32 {
        self.coder.code_tree2(n, a, b)
    }
    #[inline(always)]
    fn symbol(&mut self, _: u32, t: usize) -> u32 {
        self.symbols.decode(&mut self.models, t)
    }
    #[inline(always)]
    fn symbols(&mut self, values: &mut [u8], t: usize) {
        self.symbols.decode_run(&mut self.models, t, values);
    }
    #[inline(always)]
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
    input: Padded<'a>,
    acc: u64,
    bits: u32,
}

impl BitReader<'_> {
    #[inline]
    fn get(&mut self, n: u32) -> u32 {
        while self.bits < n {
            let b = self.input.next_byte();
            self.acc |= u64::from(b) << self.bits;
            self.bits += 8;
        }
        let v = (self.acc & ((1u64 << n) - 1)) as u32;
        self.acc >>= n;
        self.bits -= n;
        v
    }
}

/// Working memory of [`encode`], reused from chunk to chunk: a chunk's copy, its symbols'
/// encoder and its raw bits. Fresh buffers for every chunk cost more in the kernel's zeroing
/// of new pages than the coding (measured on the 2-core machine: up to half of compression's
/// time).
#[derive(Default)]
pub(crate) struct Scratch {
    buf: Vec<u8>,
    symbols: rans::Encoder,
    raw: Vec<u8>,
}

/// Codes `data` (a chunk of `kind` that starts `first` units into its tensor, whose rows are
/// `row` units long) into `out` (cleared first): mode 1, the format's header, the binary
/// coder's stream and the rANS stream (each after its length), then the raw bits.
/// Data the models would expand is stored (mode 0). `lanes`: the rANS stream's (the archive
/// version's).
pub(crate) fn encode(
    kind: Kind,
    row: u64,
    first: u64,
    data: &[u8],
    lanes: Lanes,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
) {
    encode_impl(kind, row, first, data, None, lanes, out, scratch)
}

/// [`encode`] of a float chunk with the base's bytes at the same place (`base`, as long as
/// `data`) as context (`tensors/delta.rs`; [`floats_with_base`]): mode 2. Other kinds are
/// coded as [`encode`] codes them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn encode_with_base(
    kind: Kind,
    row: u64,
    first: u64,
    data: &[u8],
    base: &[u8],
    lanes: Lanes,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
) {
    encode_impl(kind, row, first, data, Some(base), lanes, out, scratch)
}

#[allow(clippy::too_many_arguments)]
fn encode_impl(
    kind: Kind,
    row: u64,
    first: u64,
    data: &[u8],
    base: Option<&[u8]>,
    lanes: Lanes,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
) {
    let base = base.filter(|b| b.len() == data.len() && is_float(kind));
    let s = scratch;
    s.buf.clear();
    s.buf.extend_from_slice(data);
    // A chunk's symbols rarely take more bytes than the chunk.
    s.symbols.start(lanes, data.len() + 64);
    s.raw.clear();
    let mut w = Writing {
        coder: Encoder::new(),
        models: Models::new(space_of(kind, base.is_some())),
        symbols: &mut s.symbols,
        raw: BitWriter {
            out: std::mem::take(&mut s.raw),
            ..BitWriter::default()
        },
    };
    let header = run(kind, row, first, &mut s.buf, base, &mut w, None);
    let coded = w.coder.finish();
    let raw = w.raw.finish();
    let symbols = s.symbols.finish();
    out.clear();
    out.reserve(coded.len() + symbols.len() + raw.len() + 32);
    out.push(if base.is_some() { 2 } else { 1 });
    out.extend_from_slice(&header);
    let varint = crate::format::varint::write_u64;
    varint(out, coded.len() as u64).expect("vec");
    out.extend_from_slice(&coded);
    varint(out, symbols.len() as u64).expect("vec");
    out.extend_from_slice(symbols);
    out.extend_from_slice(&raw);
    s.raw = raw;
    if out.len() > data.len() + 1 {
        out.clear();
        out.push(0);
        out.extend_from_slice(data);
    }
}

/// Decodes a payload of [`encode`] into `len` bytes of `buf` (reused: its old contents go). Garbage decodes into garbage of the right
/// length (the caller's CRC catches it); only the payload's structure is checked here.
pub(crate) fn decode(
    kind: Kind,
    row: u64,
    first: u64,
    payload: &[u8],
    lanes: Lanes,
    len: usize,
    buf: &mut Vec<u8>,
) -> Result<()> {
    decode_impl(kind, row, first, payload, None, lanes, len, buf)
}

/// Decodes a payload of [`encode_with_base`] (or of [`encode`]) with the same `base` bytes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn decode_with_base(
    kind: Kind,
    row: u64,
    first: u64,
    payload: &[u8],
    base: &[u8],
    lanes: Lanes,
    len: usize,
    buf: &mut Vec<u8>,
) -> Result<()> {
    decode_impl(kind, row, first, payload, Some(base), lanes, len, buf)
}

#[allow(clippy::too_many_arguments)]
fn decode_impl(
    kind: Kind,
    row: u64,
    first: u64,
    payload: &[u8],
    base: Option<&[u8]>,
    lanes: Lanes,
    len: usize,
    buf: &mut Vec<u8>,
) -> Result<()> {
    let corrupt = |what: &str| Error::Corrupt(format!("a {} chunk's payload {what}", kind.name()));
    let (&mode, rest) = payload.split_first().ok_or_else(|| corrupt("is empty"))?;
    match mode {
        0 if rest.len() == len => {
            buf.clear();
            buf.extend_from_slice(rest);
            Ok(())
        }
        0 => Err(corrupt("has the wrong length")),
        2 if base.is_none_or(|b| b.len() != len) || !is_float(kind) => {
            Err(corrupt("needs the base it was coded against"))
        }
        1 | 2 => {
            let base = if mode == 2 { base } else { None };
            let header_len = header_len(kind);
            let header = rest.get(..header_len).ok_or_else(|| corrupt("is cut"))?;
            let mut rest = &rest[header_len..];
            let mut stream = || -> Result<&[u8]> {
                let max = rest.len() as u64;
                let n = crate::format::varint::read_bounded(&mut rest, "stream length", max)?;
                if n > rest.len() as u64 {
                    return Err(Error::Corrupt("a chunk's stream is cut".into()));
                }
                let (s, tail) = rest.split_at(n as usize);
                rest = tail;
                Ok(s)
            };
            let (coded, symbols) = (stream()?, stream()?);
            let raw = rest;
            let mut r = Reading {
                coder: Decoder::new(coded),
                models: Models::new(space_of(kind, base.is_some())),
                symbols: rans::Decoder::new(symbols, lanes),
                raw: BitReader {
                    input: Padded::new(raw),
                    acc: 0,
                    bits: 0,
                },
            };
            // Every byte is written by the format's coder; zeros only make the start defined.
            buf.clear();
            buf.resize(len, 0);
            run(kind, row, first, buf, base, &mut r, Some(header));
            if r.coder.overrun() > 4 || r.symbols.overrun() > 0 || r.raw.input.overrun() > 0 {
                return Err(corrupt("is shorter than its data"));
            }
            Ok(())
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
    base: Option<&[u8]>,
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
            match base {
                Some(base) => floats_with_base(f, reference, buf, base, io),
                // One copy per format, so that widths and shifts are constants in each.
                None => match kind {
                    Kind::F32 => floats(Float::F32, reference, row, first, buf, io),
                    Kind::Bf16 => floats(Float::BF16, reference, row, first, buf, io),
                    _ => floats(Float::F16, reference, row, first, buf, io),
                },
            }
            vec![reference]
        }
        Kind::Q8_0
        | Kind::Q4_0
        | Kind::Q4_1
        | Kind::Q5_0
        | Kind::Q5_1
        | Kind::Q4K
        | Kind::Q5K
        | Kind::Q6K
        | Kind::Q2K
        | Kind::Q3K => {
            // The reference is the most common exponent of the blocks' f16 scales.
            let reference = match header {
                Some(h) => h[0],
                None => {
                    let scales = buf.get(scale_at(kind)..).unwrap_or(&[]);
                    Float::F16.common_exponent_strided(scales, kind.unit() as usize)
                }
            };
            match kind {
                Kind::Q8_0 | Kind::Q4_0 | Kind::Q4_1 | Kind::Q5_0 | Kind::Q5_1 => {
                    blocks(kind, reference, row, first, buf, io)
                }
                _ => k_blocks(kind, reference, row, first, buf, io),
            }
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

    const F32: Float = Float {
        width: 4,
        exp: 8,
        mant: 23,
    };
    const BF16: Float = Float {
        width: 2,
        exp: 8,
        mant: 7,
    };

    fn of(kind: Kind) -> Float {
        match kind {
            Kind::F32 => Float::F32,
            Kind::Bf16 => Float::BF16,
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

    /// Codes one value: its exponent as a symbol of table `exp_table`, the top [`TOP`]
    /// mantissa bits as a symbol of table `top_base + exponent` (within a binade the density of
    /// a bell-shaped weight distribution falls towards its end), the sign as a symbol of table
    /// `sign_table`, the other mantissa bits raw. Returns the value, its exponent and its sign.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn code(
        self,
        v: u32,
        reference: u8,
        exp_table: usize,
        top_base: usize,
        sign_table: usize,
        io: &mut impl Io,
    ) -> (u32, u32, u32) {
        let e = self.code_exponent(self.exponent(v), reference, exp_table, io);
        let low_bits = self.mant - TOP;
        let t = io.symbol((v >> low_bits) & ((1 << TOP) - 1), top_base + e as usize);
        let sign = io.symbol(v >> (self.exp + self.mant), sign_table);
        let low = io.raw(v & ((1 << low_bits) - 1), low_bits);
        let v = (sign << (self.exp + self.mant)) | (e << self.mant) | (t << low_bits) | low;
        (v, e, sign)
    }

    /// Codes an exponent as a symbol of table `t`. 8-bit exponents are coded relative to the
    /// chunk's most common one, in a 32-symbol alphabet whose last symbol escapes to the raw
    /// exponent: a table over all 256 would give every exponent that never occurs a share.
    #[inline]
    fn code_exponent(self, e: u32, reference: u8, t: usize, io: &mut impl Io) -> u32 {
        if self.exp < 8 {
            return io.symbol(e, t);
        }
        let low = i32::from(reference) - EXP_BELOW;
        let d = e as i32 - low;
        let sym = if (0..ESCAPE as i32).contains(&d) {
            d as u32
        } else {
            ESCAPE
        };
        match io.symbol(sym, t) {
            ESCAPE => io.raw(e, 8),
            // In range for everything the encoder wrote (it is `e`); a damaged stream can point
            // outside 0..=255, which must stay a valid exponent (the chunk's CRC then fails).
            d => (low + d as i32).clamp(0, 255) as u32,
        }
    }

    /// Codes one f16 scale: the exponent as [`Float::code`] does; the sign with the top 3
    /// mantissa bits as one symbol of table `top_base + exponent` (scales have a fixed sign and
    /// a skewed mantissa); the low 7 bits raw.
    #[inline]
    fn code_scale(self, v: u32, exp_table: usize, top_base: usize, io: &mut impl Io) -> (u32, u32) {
        let e = io.symbol(self.exponent(v), exp_table);
        let st = io.symbol(((v >> 15) << 3) | ((v >> 7) & 7), top_base + e as usize);
        let low = io.raw(v & 127, 7);
        (((st >> 3) << 15) | (e << 10) | ((st & 7) << 7) | low, e)
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

/// Whether `kind` is a float format (the ones [`floats_with_base`] codes).
fn is_float(kind: Kind) -> bool {
    matches!(kind, Kind::F32 | Kind::F16 | Kind::Bf16)
}

/// [`space`], or [`floats_with_base`]'s tables for a float kind coded with its base.
fn space_of(kind: Kind, with_base: bool) -> Space {
    use std::iter::repeat_n;
    if !with_base {
        return space(kind);
    }
    let low = Float::of(kind).mant - TOP;
    // Exponent step from the base's, by the base exponent's bucket (16 × 32); sign by the
    // base's sign and whether the exponents agree (4 × 2); top mantissa bits by the base's when
    // the exponents agree, else by the direction of the step (6 × 4); where exponent and top
    // bits agree, the leading zeros of the XOR of the low bits, by the last such count's bucket
    // (4 × (low + 1)).
    Space::new(
        repeat_n(32, 16)
            .chain(repeat_n(2, 4))
            .chain(repeat_n(1 << TOP, 6))
            .chain(repeat_n((low + 1).next_power_of_two(), 4)),
    )
}

/// The adaptive tables of a format's fields, in the order the coders below index them.
fn space(kind: Kind) -> Space {
    use std::iter::repeat_n;
    match kind {
        Kind::Bytes => Space::new([]),
        Kind::F32 | Kind::F16 | Kind::Bf16 => {
            let f = Float::of(kind);
            // Exponent by the bucket above (16), top mantissa bits by exponent, sign by the
            // sign above (2).
            Space::new(
                repeat_n(32, 16)
                    .chain(repeat_n(1 << TOP, 1 << f.exp))
                    .chain(repeat_n(2, 2)),
            )
        }
        Kind::Q8_0 | Kind::Q4_0 | Kind::Q4_1 => Space::new(
            // Scale and minimum exponents by (previous, above/scale) buckets; sign + top
            // mantissa bits of each by exponent; nibbles by zero point; q8 quants by scale.
            repeat_n(32, 2 * 256)
                .chain(repeat_n(16, 2 * 32))
                .chain(repeat_n(16, 17))
                .chain(repeat_n(256, 16)),
        ),
        // q5_0 and q5_1 code their scales like q4_1 and their 5-bit values like q5_k, in the
        // K-quants' tables.
        Kind::Q4K | Kind::Q5K | Kind::Q6K | Kind::Q5_0 | Kind::Q5_1 | Kind::Q2K | Kind::Q3K => {
            Space::new(
                // The super-block scale and minimum as above; q4_k's (and q5_k's) 12 bytes of
                // sub-block scales by position, q4_k's nibbles by their sub-block's zero point;
                // q6_k's 16 sub-block scales by position, its 6-bit values by the size of their
                // sub-block's scale; q5_k's 5-bit values by their sub-block's zero point; q2_k's
                // 2-bit values by theirs (q2_k's 16 scale bytes use q6_k's tables, q3_k's 12 q4_k's);
                // q3_k's 3-bit values by the size of their sub-block's scale.
                repeat_n(32, 2 * 256)
                    .chain(repeat_n(16, 2 * 32))
                    .chain(repeat_n(256, 12))
                    .chain(repeat_n(16, 17))
                    .chain(repeat_n(256, 16))
                    .chain(repeat_n(64, 16))
                    .chain(repeat_n(32, 33))
                    .chain(repeat_n(4, 5))
                    .chain(repeat_n(8, 8)),
            )
        }
    }
}

/// Table bases of [`space`] for the K-quants, after the block formats' first four groups
/// (their scales and minima are coded like those of q4_1).
const K4_SCALES: usize = 576;
const K4_NIBBLES: usize = K4_SCALES + 12;
const K6_SCALES: usize = K4_NIBBLES + 17;
const K6_QUANTS: usize = K6_SCALES + 16;
const K5_VALUES: usize = K6_QUANTS + 16;
const K2_VALUES: usize = K5_VALUES + 33;
const K3_VALUES: usize = K2_VALUES + 5;

/// Table bases of [`space`] for the block formats.
const SCALE_EXP: usize = 0;
const MIN_EXP: usize = 256;
const SCALE_TOP: usize = 512;
const MIN_TOP: usize = 544;
const NIBBLES: usize = 576;
const QUANTS: usize = 593;

/// The previous row's values, per column, for the "above" contexts: `N` bytes per position (a
/// block's scale exponent; or a float's exponent, the exponent above it and its sign). Zeros
/// when there are no rows.
struct Rows<const N: usize> {
    row: usize,
    col: usize,
    above: Vec<[u8; N]>,
}

impl<const N: usize> Rows<N> {
    fn new(row: u64, first: u64) -> Rows<N> {
        let row = row as usize;
        Rows {
            row,
            col: if row > 0 {
                (first % row as u64) as usize
            } else {
                0
            },
            // One unwritten column when there are no rows: it reads as zeros.
            above: vec![[0; N]; row.max(1)],
        }
    }

    /// The values one row above the current position.
    #[inline(always)]
    fn get(&self) -> [u32; N] {
        self.above[self.col].map(u32::from)
    }

    /// Records the current position's values (each below 256) and moves on.
    #[inline(always)]
    fn advance(&mut self, values: [u32; N]) {
        if self.row > 0 {
            self.above[self.col] = values.map(|v| v as u8);
            self.col += 1;
            if self.col == self.row {
                self.col = 0;
            }
        }
    }
}

#[inline(always)]
fn floats(f: Float, reference: u8, row: u64, first: u64, buf: &mut [u8], io: &mut impl Io) {
    // Exponents of the two rows above; the sign of the value above (some matrices, like the
    // GRU's output head, have columns of one sign).
    let mut above = Rows::<3>::new(row, first);
    let sign_tables = 16 + (1usize << f.exp);
    for at in (0..buf.len()).step_by(f.width) {
        let [a, a2, sign_above] = above.get();
        let ctx = bucket((a + a2).div_ceil(2), reference);
        let sign_ctx = sign_tables + sign_above as usize;
        let (v, e, sign) = f.code(f.load(buf, at), reference, ctx, 16, sign_ctx, io);
        f.store(buf, at, v);
        above.advance([e, a, sign]);
    }
}

/// Floats of a fine-tune with the base's value at the same place as context (`base`, the same
/// length as `buf`): a fine-tune's weight mostly keeps its base's sign and exponent, often its
/// top mantissa bits, and where it moved little, the top of its low mantissa bits too.
///
/// Per value: the exponent as its step from the base's (−15 ..= 15, else escaped to the raw
/// exponent), by the base exponent's bucket; the sign by the base's sign and whether the
/// exponents agree; the top [`TOP`] mantissa bits by the base's where the exponents agree;
/// where exponent and top bits both agree, the low bits as the count of leading zeros of their
/// XOR with the base's (a symbol), the first one implied, the rest raw; elsewhere the low bits
/// raw.
fn floats_with_base(f: Float, reference: u8, buf: &mut [u8], base: &[u8], io: &mut impl Io) {
    const STEP: i32 = 15;
    let (exp_tables, sign_tables, top_tables, lz_tables) = (0, 16, 20, 26);
    let low_bits = f.mant - TOP;
    let low_mask = (1u32 << low_bits) - 1;
    let sign_shift = f.exp + f.mant;
    let mut last_lz = 0usize;
    for at in (0..buf.len()).step_by(f.width) {
        let (v, u) = (f.load(buf, at), f.load(base, at));
        let (eu, su, tu) = (
            f.exponent(u),
            u >> sign_shift,
            (u >> low_bits) & ((1 << TOP) - 1),
        );
        // Exponent.
        let d = f.exponent(v) as i32 - eu as i32;
        let sym = if (-STEP..=STEP).contains(&d) {
            (d + STEP) as u32
        } else {
            ESCAPE
        };
        let ctx = exp_tables + bucket(eu, reference);
        let e = match io.symbol(sym, ctx) {
            ESCAPE => io.raw(f.exponent(v), f.exp),
            s => (eu as i32 + s as i32 - STEP).clamp(0, (1 << f.exp) - 1) as u32,
        };
        let same_exp = e == eu;
        // Sign.
        let sign = io.symbol(
            v >> sign_shift,
            sign_tables + 2 * su as usize + same_exp as usize,
        );
        // Top mantissa bits.
        let top_ctx = match (same_exp, e > eu) {
            (true, _) => tu as usize,
            (false, up) => 4 + up as usize,
        };
        let t = io.symbol((v >> low_bits) & ((1 << TOP) - 1), top_tables + top_ctx);
        // Low mantissa bits.
        let low = if same_exp && t == tu {
            let x = (v ^ u) & low_mask;
            let lz = if x == 0 {
                low_bits
            } else {
                x.leading_zeros() - (32 - low_bits)
            };
            // A damaged stream may decode a count past the bits there are (its CRC then fails).
            let lz = io.symbol(lz, lz_tables + last_lz).min(low_bits);
            last_lz = ((lz * 4) / (low_bits + 1)) as usize;
            if lz == low_bits {
                u & low_mask
            } else {
                // The first differing bit is 1 in the XOR; the bits below it raw.
                let below = low_bits - lz - 1;
                let rest = io.raw(x & ((1 << below) - 1), below);
                (u & low_mask) ^ ((1 << below) | rest)
            }
        } else {
            io.raw(v & low_mask, low_bits)
        };
        let v = (sign << sign_shift) | (e << f.mant) | (t << low_bits) | low;
        f.store(buf, at, v);
    }
}

fn blocks(kind: Kind, reference: u8, row: u64, first: u64, buf: &mut [u8], io: &mut impl Io) {
    let unit = kind.unit() as usize;
    let h = Float::F16;
    let mut rows = Rows::<1>::new(row, first);
    let mut prev = u32::from(reference);
    let mut prev_min = u32::from(reference);
    for block in buf.chunks_exact_mut(unit) {
        let ctx = bucket(prev, reference) * 16 + bucket(rows.get()[0], reference);
        let (d, e) = h.code_scale(h.load(block, 0), SCALE_EXP + ctx, SCALE_TOP, io);
        h.store(block, 0, d);
        rows.advance([e]);
        prev = e;
        let quants_at = match kind {
            Kind::Q4_1 | Kind::Q5_1 => {
                let ctx = bucket(prev_min, reference) * 16 + bucket(e, reference);
                let (m, e) = h.code_scale(h.load(block, 2), MIN_EXP + ctx, MIN_TOP, io);
                h.store(block, 2, m);
                prev_min = e;
                4
            }
            _ => 2,
        };
        if kind == Kind::Q8_0 {
            // A block's quants spread differently with the size of its scale.
            io.symbols(&mut block[quants_at..], QUANTS + bucket(e, reference));
        } else if matches!(kind, Kind::Q5_0 | Kind::Q5_1) {
            // 5-bit values, d·(q − 16) for q5_0, d·q + m for q5_1, under their zero as whole
            // symbols (q5_k's tables): value j's low nibble is in byte j of `qs` (value j + 16's
            // in its high half), their fifth bits are bits j and j + 16 of the 32-bit `qh`
            // before `qs`. Packed back the same way, a one-to-one map.
            let zero = match kind {
                Kind::Q5_1 => zero_point(h.load(block, 0), h.load(block, 2), 31.0),
                _ => 16,
            };
            let (qh, qs) = block[quants_at..].split_at_mut(4);
            let high = u32::from_le_bytes(qh.try_into().expect("4 bytes"));
            let mut values = [0u8; 32];
            for (j, (v, q)) in values.chunks_exact_mut(2).zip(qs.iter()).enumerate() {
                v[0] = *q & 15 | (((high >> j) & 1) as u8) << 4;
                v[1] = *q >> 4 | (((high >> (j + 16)) & 1) as u8) << 4;
            }
            io.symbols(&mut values, K5_VALUES + zero);
            let mut coded = 0u32;
            for (j, (v, q)) in values.chunks_exact(2).zip(qs.iter_mut()).enumerate() {
                *q = (v[0] & 15) | (v[1] & 15) << 4;
                coded |= u32::from(v[0] >> 4) << j | u32::from(v[1] >> 4) << (j + 16);
            }
            qh.copy_from_slice(&coded.to_le_bytes());
        } else {
            // The weights of a block centre on its zero: the nibble that decodes to 0, −m/d
            // for q4_1 (8 for q4_0, whose values are d·(q − 8)).
            let zero = match kind {
                Kind::Q4_1 => zero_point(h.load(block, 0), h.load(block, 2), 15.0),
                _ => 8,
            };
            nibbles(&mut block[quants_at..], NIBBLES + zero, io);
        }
    }
}

/// Codes the nibbles of `packed` as symbols of table `t`, each byte's low one first.
#[inline(always)]
fn nibbles(packed: &mut [u8], t: usize, io: &mut impl Io) {
    let mut values = [0u8; 64];
    let values = &mut values[..2 * packed.len()];
    for (v, q) in values.chunks_exact_mut(2).zip(packed.iter()) {
        v.copy_from_slice(&[*q & 15, *q >> 4]);
    }
    io.symbols(values, t);
    for (v, q) in values.chunks_exact(2).zip(packed.iter_mut()) {
        *q = v[0] | v[1] << 4;
    }
}

/// q2_k's sixteen scale and minimum bytes (a 4-bit scale, a 4-bit minimum) by position, then
/// its 2-bit values under their sub-block's zero point, `dmin·m / (d·sc)` (0..=3, or 4 when
/// undefined). ggml's layout: in each half n of 128 values, bits 2j of byte l < 32 of
/// qs[32n..] hold value 32j + l of the half, in sub-block 8n + 2j + l / 16.
fn q2_values(block: &mut [u8], d: f32, dmin: f32, io: &mut impl Io) {
    for (j, b) in block[..16].iter_mut().enumerate() {
        *b = io.symbol(u32::from(*b), K6_SCALES + j) as u8;
    }
    let zero = |sub: usize, scales: &[u8]| {
        let (sc, mn) = (scales[sub] & 15, scales[sub] >> 4);
        let z = dmin * f32::from(mn) / (d * f32::from(sc));
        if z.is_finite() {
            (z + 0.5).clamp(0.0, 3.0) as usize
        } else {
            4
        }
    };
    let (scales, qs) = block.split_at_mut(16);
    for (b, q) in qs[..64].iter_mut().enumerate() {
        let (n, l) = (b / 32, b % 32);
        let mut out = 0u8;
        for j in 0..4 {
            let t = K2_VALUES + zero(8 * n + 2 * j + l / 16, scales);
            let v = io.symbol(u32::from((*q >> (2 * j)) & 3), t);
            out |= (v as u8) << (2 * j);
        }
        *q = out;
    }
}

/// Sub-block `i`'s 6-bit scale (32 is zero) from q3_k's 12 packed bytes: the low 4 bits in the
/// first 8 bytes (sub-blocks 8..16 in their high halves), the high 2 in the last 4.
fn q3_scale(i: usize, packed: &[u8]) -> i32 {
    let low = if i < 8 {
        packed[i] & 15
    } else {
        packed[i - 8] >> 4
    };
    let high = (packed[8 + i % 4] >> (2 * (i / 4))) & 3;
    i32::from(low | high << 4) - 32
}

/// q3_k's 12 packed scale bytes by position, then its 3-bit values (the low 2 bits from `qs`,
/// the third from `hmask`) under the size of their sub-block's scale. ggml's layout: in each
/// half n of 128 values, value 32j + l of the half has its low bits at bits 2j of qs[32n + l],
/// its high bit at bit 4n + j of hmask[l], and scale 8n + 2j + l / 16.
fn q3_values(block: &mut [u8], io: &mut impl Io) {
    for (j, b) in block[96..108].iter_mut().enumerate() {
        *b = io.symbol(u32::from(*b), K4_SCALES + j) as u8;
    }
    let packed: [u8; 12] = block[96..108].try_into().expect("12 bytes");
    let mut hmask = [0u8; 32];
    for n in 0..2 {
        for l in 0..32 {
            let q = block[32 + 32 * n + l];
            let mut out = 0u8;
            for j in 0..4 {
                let size = q3_scale(8 * n + 2 * j + l / 16, &packed).unsigned_abs() / 4;
                let t = K3_VALUES + size.min(7) as usize;
                let high = (block[l] >> (4 * n + j)) & 1;
                let v = io.symbol(u32::from((q >> (2 * j)) & 3 | high << 2), t) as u8;
                out |= (v & 3) << (2 * j);
                hmask[l] |= (v >> 2) << (4 * n + j);
            }
            block[32 + 32 * n + l] = out;
        }
    }
    block[..32].copy_from_slice(&hmask);
}

/// Where a block keeps its f16 scale (q6_k at its end, the others first).
fn scale_at(kind: Kind) -> usize {
    match kind {
        Kind::Q6K => 208,
        Kind::Q2K => 80,
        Kind::Q3K => 108,
        _ => 0,
    }
}

/// Sub-block `j`'s 6-bit scale and minimum in q4_k's 12 packed bytes (ggml's
/// `get_scale_min_k4`).
fn k4_scale_min(j: usize, q: &[u8]) -> (u32, u32) {
    if j < 4 {
        (u32::from(q[j] & 63), u32::from(q[j + 4] & 63))
    } else {
        (
            u32::from((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4)),
            u32::from((q[j + 4] >> 4) | ((q[j] >> 6) << 4)),
        )
    }
}

/// The K-quants, super-block by super-block. Fields are coded in an order of their own (a
/// q6_k block's scales before its values, though the file stores them after), so that every
/// context is known to the decoder when it is needed.
fn k_blocks(kind: Kind, reference: u8, row: u64, first: u64, buf: &mut [u8], io: &mut impl Io) {
    let unit = kind.unit() as usize;
    let h = Float::F16;
    let at = scale_at(kind);
    let mut rows = Rows::<1>::new(row, first);
    let mut prev = u32::from(reference);
    let mut prev_min = u32::from(reference);
    for block in buf.chunks_exact_mut(unit) {
        let ctx = bucket(prev, reference) * 16 + bucket(rows.get()[0], reference);
        let (d, e) = h.code_scale(h.load(block, at), SCALE_EXP + ctx, SCALE_TOP, io);
        h.store(block, at, d);
        rows.advance([e]);
        prev = e;
        if kind == Kind::Q2K {
            let ctx = bucket(prev_min, reference) * 16 + bucket(e, reference);
            let (m, e) = h.code_scale(h.load(block, 82), MIN_EXP + ctx, MIN_TOP, io);
            h.store(block, 82, m);
            prev_min = e;
            q2_values(block, f16_to_f32(d), f16_to_f32(m), io);
        } else if kind == Kind::Q3K {
            q3_values(block, io);
        } else if kind != Kind::Q6K {
            let ctx = bucket(prev_min, reference) * 16 + bucket(e, reference);
            let (m, e) = h.code_scale(h.load(block, 2), MIN_EXP + ctx, MIN_TOP, io);
            h.store(block, 2, m);
            prev_min = e;
            for (j, b) in block[4..16].iter_mut().enumerate() {
                *b = io.symbol(u32::from(*b), K4_SCALES + j) as u8;
            }
            let (dd, dm) = (f16_to_f32(d), f16_to_f32(m));
            let scales: [u8; 12] = block[4..16].try_into().expect("12 bytes");
            // The value that decodes to zero in sub-block j: dmin·m / (d·sc), clamped to the
            // format's values (0..=top), or top + 1 when undefined.
            let zero = |j: usize, top: f32| {
                let (sc, mn) = k4_scale_min(j, &scales);
                let z = dm * mn as f32 / (dd * sc as f32);
                if z.is_finite() {
                    (z + 0.5).clamp(0.0, top) as usize
                } else {
                    top as usize + 1
                }
            };
            if kind == Kind::Q4K {
                for group in 0..4 {
                    let lo_t = K4_NIBBLES + zero(2 * group, 15.0);
                    let hi_t = K4_NIBBLES + zero(2 * group + 1, 15.0);
                    for q in &mut block[16 + 32 * group..16 + 32 * (group + 1)] {
                        let lo = io.symbol(u32::from(*q & 15), lo_t);
                        let hi = io.symbol(u32::from(*q >> 4), hi_t);
                        *q = (lo | (hi << 4)) as u8;
                    }
                }
            } else {
                // q5_k: qh[0..32] at 16, qs[0..128] at 48. Group g's byte l holds values l
                // (low nibble, fifth bit: bit 2g of qh[l]) and l + 32 (high nibble, bit 2g + 1).
                for group in 0..4 {
                    let lo_t = K5_VALUES + zero(2 * group, 31.0);
                    let hi_t = K5_VALUES + zero(2 * group + 1, 31.0);
                    for l in 0..32 {
                        let (q, h) = (block[48 + 32 * group + l], block[16 + l]);
                        let lo = u32::from(q & 15) | u32::from((h >> (2 * group)) & 1) << 4;
                        let hi = u32::from(q >> 4) | u32::from((h >> (2 * group + 1)) & 1) << 4;
                        let lo = io.symbol(lo, lo_t);
                        let hi = io.symbol(hi, hi_t);
                        block[48 + 32 * group + l] = ((lo & 15) | (hi & 15) << 4) as u8;
                        let bits = ((lo >> 4) | (hi >> 4) << 1) as u8;
                        block[16 + l] = (h & !(3 << (2 * group))) | bits << (2 * group);
                    }
                }
            }
        } else {
            for (j, b) in block[192..208].iter_mut().enumerate() {
                *b = io.symbol(u32::from(*b), K6_SCALES + j) as u8;
            }
            // ggml's layout: for each half n of 128 values, byte l < 32 of ql[64n..] holds
            // values l (low nibble) and l + 64 (high), byte l + 32 values l + 32 and l + 96,
            // and qh[32n + l] the top 2 bits of all four; value i of the half has scale
            // 8n + i / 16.
            for n in 0..2 {
                for l in 0..32 {
                    let (a, b, c) = (64 * n + l, 64 * n + l + 32, 128 + 32 * n + l);
                    let (qa, qb, qh) = (block[a], block[b], block[c]);
                    let mut q = [
                        u32::from(qa & 15) | u32::from(qh & 3) << 4,
                        u32::from(qb & 15) | u32::from((qh >> 2) & 3) << 4,
                        u32::from(qa >> 4) | u32::from((qh >> 4) & 3) << 4,
                        u32::from(qb >> 4) | u32::from(qh >> 6) << 4,
                    ];
                    for (k, v) in q.iter_mut().enumerate() {
                        let scale = block[192 + 8 * n + l / 16 + 2 * k] as i8;
                        let t = K6_QUANTS + (scale.unsigned_abs() >> 3).min(15) as usize;
                        *v = io.symbol(*v, t);
                    }
                    block[a] = ((q[0] & 15) | (q[2] & 15) << 4) as u8;
                    block[b] = ((q[1] & 15) | (q[3] & 15) << 4) as u8;
                    block[c] =
                        ((q[0] >> 4) | (q[1] >> 4) << 2 | (q[2] >> 4) << 4 | (q[3] >> 4) << 6)
                            as u8;
                }
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
fn zero_point(d: u32, m: u32, top: f32) -> usize {
    let (d, m) = (f16_to_f32(d), f16_to_f32(m));
    let z = -m / d;
    if z.is_finite() {
        (z + 0.5).clamp(0.0, top) as usize
    } else {
        top as usize + 1
    }
}

/// Headers and metadata: the previous byte's and the previous two bytes' (hashed to 4096)
/// predictions, averaged.
fn bytes(buf: &mut [u8], io: &mut impl Io) {
    // Padding between tensors (a few bytes, both sides know the length) gets one context per
    // order, so that it does not cost 16 MiB of zeroed models each time.
    let tiny = buf.len() < TINY_BYTES;
    let contexts1 = if tiny { 1 } else { 256 };
    let contexts2 = if tiny { 1 } else { 16384 };
    let mut order1 = vec![Bit::default(); contexts1 * 256];
    let mut order2 = vec![Bit::default(); contexts2 * 256];
    let (mut p1, mut p2) = (0usize, 0usize);
    for b in buf.iter_mut() {
        let h = (p2 << 6 ^ p1) & (contexts2 - 1);
        let c1 = p1 & (contexts1 - 1);
        *b = io.tree2(
            u32::from(*b),
            8,
            &mut order1[c1 * 256..][..256],
            &mut order2[h * 256..][..256],
        ) as u8;
        p2 = p1;
        p1 = *b as usize;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensors::tests::{lcg, weights};

    /// Codes `data` with both versions' lanes; the size of the current version's payload.
    fn round_trip(kind: Kind, row: u64, first: u64, data: &[u8]) -> usize {
        let mut len = 0;
        for lanes in [Lanes::One, Lanes::Four] {
            let mut payload = vec![7; 3];
            let scratch = &mut Scratch::default();
            encode(kind, row, first, data, lanes, &mut payload, scratch);
            let mut back = vec![9; 5];
            decode(kind, row, first, &payload, lanes, data.len(), &mut back).unwrap();
            assert_eq!(back, data, "{kind:?} {lanes:?}");
            len = payload.len();
        }
        len
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
        assert_eq!(zero_point(0x3c00, 0xc000, 15.0), 2); // -(-2) / 1
        assert_eq!(zero_point(0, 0xc000, 15.0), 16);
    }

    #[test]
    fn every_format_round_trips_any_bytes() {
        let mut s = crate::models::rng::SplitMix64::new(3);
        let random: Vec<u8> = (0..210 * 80).map(|_| lcg(&mut s) as u8).collect();
        for kind in Kind::ALL {
            for len in [0, kind.unit() as usize, kind.unit() as usize * 80] {
                for (row, first) in [(0, 0), (3, 0), (7, 5)] {
                    let n = round_trip(kind, row, first, &random[..len]);
                    assert!(n <= len + 1, "{kind:?} expanded {len} to {n}");
                }
            }
        }
    }

    /// Floats coded with a base as context come back exactly whatever the bytes on either side
    /// (NaNs, infinities, subnormals, unrelated or equal bases), and a payload of one mode is
    /// refused by the other where it needs the base.
    #[test]
    fn floats_with_a_base_round_trip_any_bytes() {
        let mut s = crate::models::rng::SplitMix64::new(4);
        let mut bytes = |n: usize| -> Vec<u8> { (0..n).map(|_| lcg(&mut s) as u8).collect() };
        let (a, b) = (bytes(4 * 900), bytes(4 * 900));
        let w: Vec<u8> = weights(900, 3)
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let near: Vec<u8> = weights(900, 3)
            .iter()
            .flat_map(|x| (x.to_bits() ^ 5).to_le_bytes())
            .collect();
        for kind in [Kind::F32, Kind::F16, Kind::Bf16] {
            for (data, base) in [
                (&a, &b),
                (&a, &a),
                (&w, &near),
                (&w, &b),
                (&b, &vec![0; 3600]),
            ] {
                for len in [0, 4, 4 * 900] {
                    let (data, base) = (&data[..len], &base[..len]);
                    let mut payload = Vec::new();
                    let (scratch, four) = (&mut Scratch::default(), Lanes::Four);
                    encode_with_base(kind, 0, 0, data, base, four, &mut payload, scratch);
                    let mut back = Vec::new();
                    decode_with_base(kind, 0, 0, &payload, base, four, len, &mut back).unwrap();
                    assert_eq!(back, data, "{kind:?}");
                    if payload.first() == Some(&2) {
                        assert!(decode(kind, 0, 0, &payload, four, len, &mut back).is_err());
                    }
                }
            }
        }
        // Close to its base, a weight costs far less than alone.
        let mut with = Vec::new();
        encode_with_base(
            Kind::F32,
            0,
            0,
            &w,
            &near,
            Lanes::Four,
            &mut with,
            &mut Scratch::default(),
        );
        let alone = round_trip(Kind::F32, 0, 0, &w);
        assert!(with.len() * 4 < alone, "{} against {alone}", with.len());
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
