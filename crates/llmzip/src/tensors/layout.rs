//! What a weight file is made of: its container's own header, then tensors of known number
//! formats, cut into [`Region`]s that cover the file exactly.
//!
//! The parsers only *describe* a file; they never decide what is lossless. Every byte lands in
//! some region, and a region whose format is unknown (or any gap, padding or trailing data) is
//! [`Kind::Bytes`]. A header that does not parse cleanly — offsets past the end, overlapping or
//! unordered tensors, a size that does not match the dtype and shape, absurd counts — makes the
//! parser return `None`, and the caller takes the generic path. (A GGUF tensor of a type newer
//! than [`GGML_TYPES`] cannot be sized: it is not checked, and its data stays in the bytes
//! between the tensors that are.) Nothing is allocated by a claim:
//! the header is read only up to the file's real size and [`MAX_HEAD`], and counts are checked
//! against the bytes that are really there before anything is reserved.

use std::io::Read;

/// A GGML tensor type: its id in GGUF files, its name, and its size (`bytes` per `block`
/// values); `kind` is how llmzip models it ([`Kind::Bytes`] where it does not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GgmlType {
    /// The id in a GGUF tensor's info.
    pub id: u32,
    /// ggml's name.
    pub name: &'static str,
    /// Values per block.
    pub block: u64,
    /// Bytes per block.
    pub bytes: u64,
    /// How the tensor codec models it.
    pub kind: Kind,
}

const fn ggml(id: u32, name: &'static str, block: u64, bytes: u64, kind: Kind) -> GgmlType {
    GgmlType {
        id,
        name,
        block,
        bytes,
        kind,
    }
}

/// The GGML types of ggml.h up to NVFP4 (id 40; ids 4, 5, 31–33 and 36–38 were removed from GGUF
/// files), with the sizes of gguf-py's `GGML_QUANT_SIZES`. Later ids (Q1_0 and what comes
/// after) have had different layouts in different forks; they are left unsized. A GGUF whose tensors are all of these types and whose
/// layout is consistent is recognised; a tensor of a newer type is left to the bytes around it.
pub const GGML_TYPES: &[GgmlType] = &[
    ggml(0, "F32", 1, 4, Kind::F32),
    ggml(1, "F16", 1, 2, Kind::F16),
    ggml(2, "Q4_0", 32, 18, Kind::Q4_0),
    ggml(3, "Q4_1", 32, 20, Kind::Q4_1),
    ggml(6, "Q5_0", 32, 22, Kind::Q5_0),
    ggml(7, "Q5_1", 32, 24, Kind::Q5_1),
    ggml(8, "Q8_0", 32, 34, Kind::Q8_0),
    ggml(9, "Q8_1", 32, 36, Kind::Bytes),
    ggml(10, "Q2_K", 256, 84, Kind::Q2K),
    ggml(11, "Q3_K", 256, 110, Kind::Q3K),
    ggml(12, "Q4_K", 256, 144, Kind::Q4K),
    ggml(13, "Q5_K", 256, 176, Kind::Q5K),
    ggml(14, "Q6_K", 256, 210, Kind::Q6K),
    ggml(15, "Q8_K", 256, 292, Kind::Bytes),
    ggml(16, "IQ2_XXS", 256, 66, Kind::Bytes),
    ggml(17, "IQ2_XS", 256, 74, Kind::Bytes),
    ggml(18, "IQ3_XXS", 256, 98, Kind::Bytes),
    ggml(19, "IQ1_S", 256, 50, Kind::Bytes),
    ggml(20, "IQ4_NL", 32, 18, Kind::Bytes),
    ggml(21, "IQ3_S", 256, 110, Kind::Bytes),
    ggml(22, "IQ2_S", 256, 82, Kind::Bytes),
    ggml(23, "IQ4_XS", 256, 136, Kind::Bytes),
    ggml(24, "I8", 1, 1, Kind::Bytes),
    ggml(25, "I16", 1, 2, Kind::Bytes),
    ggml(26, "I32", 1, 4, Kind::Bytes),
    ggml(27, "I64", 1, 8, Kind::Bytes),
    ggml(28, "F64", 1, 8, Kind::Bytes),
    ggml(29, "IQ1_M", 256, 56, Kind::Bytes),
    ggml(30, "BF16", 1, 2, Kind::Bf16),
    ggml(34, "TQ1_0", 256, 54, Kind::Bytes),
    ggml(35, "TQ2_0", 256, 66, Kind::Bytes),
    ggml(39, "MXFP4", 32, 17, Kind::Bytes),
    ggml(40, "NVFP4", 64, 36, Kind::Bytes),
];

/// The GGML type with id `id`, if this build knows it.
pub fn ggml_type(id: u32) -> Option<&'static GgmlType> {
    GGML_TYPES.iter().find(|t| t.id == id)
}

/// The most header bytes read to recognise a container (safetensors' own limit is 100 MB).
pub const MAX_HEAD: u64 = 128 << 20;

/// The number format of a region, which decides how its values are split into fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    /// Anything else: container headers, metadata, padding, unknown dtypes.
    Bytes = 0,
    /// IEEE binary32, little-endian.
    F32 = 1,
    /// IEEE binary16, little-endian.
    F16 = 2,
    /// bfloat16, little-endian.
    Bf16 = 3,
    /// GGML Q8_0: blocks of an f16 scale and 32 signed bytes.
    Q8_0 = 4,
    /// GGML Q4_0: blocks of an f16 scale and 32 4-bit values.
    Q4_0 = 5,
    /// GGML Q4_1: blocks of an f16 scale, an f16 minimum and 32 4-bit values.
    Q4_1 = 6,
    /// GGML Q4_K: super-blocks of 256 values: f16 scale and minimum, eight 6-bit sub-block
    /// scales and minima (12 bytes), 256 4-bit values.
    Q4K = 7,
    /// GGML Q6_K: super-blocks of 256 6-bit values (low 4 bits, high 2 bits), sixteen 8-bit
    /// sub-block scales, an f16 scale.
    Q6K = 8,
    /// GGML Q5_K: q4_k's super-blocks with a fifth bit per value (32 bytes of high bits).
    Q5K = 9,
    /// GGML Q5_0: blocks of an f16 scale, 32 high bits and 32 low nibbles (5-bit values).
    Q5_0 = 10,
    /// GGML Q5_1: q5_0 with an f16 minimum after the scale.
    Q5_1 = 11,
    /// GGML Q2_K: super-blocks of 256 2-bit values: sixteen 4-bit scale and minimum pairs, the
    /// values, an f16 scale and an f16 minimum.
    Q2K = 12,
    /// GGML Q3_K: super-blocks of 256 3-bit values (a high-bit mask, then the low 2 bits),
    /// sixteen 6-bit scales packed in 12 bytes, an f16 scale.
    Q3K = 13,
}

impl Kind {
    /// Every kind, in tag order.
    pub const ALL: [Kind; 14] = [
        Kind::Bytes,
        Kind::F32,
        Kind::F16,
        Kind::Bf16,
        Kind::Q8_0,
        Kind::Q4_0,
        Kind::Q4_1,
        Kind::Q4K,
        Kind::Q6K,
        Kind::Q5K,
        Kind::Q5_0,
        Kind::Q5_1,
        Kind::Q2K,
        Kind::Q3K,
    ];

    /// The kind with tag `tag`, if any.
    pub fn from_tag(tag: u8) -> Option<Kind> {
        Kind::ALL.get(tag as usize).copied()
    }

    /// Bytes of one unit: a value, or a quantized block.
    pub fn unit(self) -> u64 {
        match self {
            Kind::Bytes => 1,
            Kind::F32 => 4,
            Kind::F16 | Kind::Bf16 => 2,
            Kind::Q8_0 => 34,
            Kind::Q4_0 => 18,
            Kind::Q4_1 => 20,
            Kind::Q4K => 144,
            Kind::Q6K => 210,
            Kind::Q5K => 176,
            Kind::Q5_0 => 22,
            Kind::Q5_1 => 24,
            Kind::Q2K => 84,
            Kind::Q3K => 110,
        }
    }

    /// Weights in one unit (32 for the block formats, 256 for the K-quants).
    pub fn values_per_unit(self) -> u64 {
        match self {
            Kind::Q8_0 | Kind::Q4_0 | Kind::Q4_1 | Kind::Q5_0 | Kind::Q5_1 => 32,
            Kind::Q4K | Kind::Q5K | Kind::Q6K | Kind::Q2K | Kind::Q3K => 256,
            _ => 1,
        }
    }

    /// The name `llmzip info` shows.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bytes => "bytes",
            Kind::F32 => "f32",
            Kind::F16 => "f16",
            Kind::Bf16 => "bf16",
            Kind::Q8_0 => "q8_0",
            Kind::Q4_0 => "q4_0",
            Kind::Q4_1 => "q4_1",
            Kind::Q4K => "q4_k",
            Kind::Q6K => "q6_k",
            Kind::Q5K => "q5_k",
            Kind::Q5_0 => "q5_0",
            Kind::Q5_1 => "q5_1",
            Kind::Q2K => "q2_k",
            Kind::Q3K => "q3_k",
        }
    }
}

/// A run of bytes of one kind. `row` is the number of units per row of the tensor (0 when the
/// region has no rows, e.g. bytes or a vector), used as a context: the unit above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// Number format.
    pub kind: Kind,
    /// Length in bytes, a multiple of the kind's unit.
    pub len: u64,
    /// Units per tensor row (0: none).
    pub row: u64,
}

/// The container a file was recognised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Container {
    /// Not recognised: one region of bytes.
    None = 0,
    /// Hugging Face safetensors.
    Safetensors = 1,
    /// GGUF (llama.cpp).
    Gguf = 2,
}

impl Container {
    /// The container with tag `tag`, if any.
    pub fn from_tag(tag: u8) -> Option<Container> {
        match tag {
            0 => Some(Container::None),
            1 => Some(Container::Safetensors),
            2 => Some(Container::Gguf),
            _ => None,
        }
    }

    /// Its name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Container::None => "unrecognised",
            Container::Safetensors => "safetensors",
            Container::Gguf => "GGUF",
        }
    }
}

/// A tensor as a container describes it: where its bytes are, in which format.
#[derive(Debug, Clone)]
struct Extent {
    start: u64,
    len: u64,
    kind: Kind,
    row: u64,
    /// The name, dtype and shape, as [`TensorEntry`] shows them.
    name: String,
    dtype: String,
    dims: Vec<u64>,
}

/// One tensor of a recognised file: what `--base` matches a fine-tune's tensors by (name,
/// dtype and shape) and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorEntry {
    /// The container's name for it.
    pub name: String,
    /// The container's name for its number format (`BF16`, `Q4_K`, …).
    pub dtype: String,
    /// Its shape, in the container's order.
    pub dims: Vec<u64>,
    /// Where its bytes start in the file.
    pub start: u64,
    /// How many bytes it takes.
    pub len: u64,
}

/// The tensors of a file whose first bytes `head` were read by [`recognise`] (which described
/// the file as a [`Layout`]); `None` where it did not recognise one. Tensors of a GGML type
/// this build cannot size are left out.
pub fn tensors(head: &[u8], total: u64) -> Option<Vec<TensorEntry>> {
    let extents = if head.starts_with(b"GGUF") {
        match gguf(head, total) {
            Parse::Done(_, extents) => extents,
            _ => return None,
        }
    } else {
        safetensors(head, total)?.1
    };
    Some(
        extents
            .into_iter()
            .map(|e| TensorEntry {
                name: e.name,
                dtype: e.dtype,
                dims: e.dims,
                start: e.start,
                len: e.len,
            })
            .collect(),
    )
}

/// Reads the container header at the start of `input` (a file of `total` bytes) and describes
/// the whole file as regions. Returns the bytes read (which the caller codes as the first
/// region(s)) and the description, or `None` as the layout when the file is not a clean
/// safetensors or GGUF file.
pub fn recognise(
    input: &mut (impl Read + ?Sized),
    total: u64,
) -> std::io::Result<(Vec<u8>, Option<Layout>)> {
    let mut head = Vec::new();
    let mut take = |head: &mut Vec<u8>, upto: u64| -> std::io::Result<bool> {
        let upto = upto.min(total).min(MAX_HEAD);
        if (head.len() as u64) < upto {
            let want = upto - head.len() as u64;
            let got = (&mut *input).take(want).read_to_end(head)?;
            if (got as u64) < want {
                return Ok(false);
            }
        }
        Ok(true)
    };
    take(&mut head, 8)?;
    if head.len() < 8 {
        return Ok((head, None));
    }
    if &head[..4] == b"GGUF" {
        // The tensor table's end is found by parsing; read in steps until it parses or is cut.
        let mut want = 1u64 << 20;
        loop {
            take(&mut head, want)?;
            match gguf(&head, total) {
                Parse::Done(layout, _) => return Ok((head, Some(layout))),
                Parse::Invalid => return Ok((head, None)),
                Parse::NeedMore if (head.len() as u64) < want.min(total).min(MAX_HEAD) => {
                    return Ok((head, None)); // the input ended early
                }
                Parse::NeedMore => want = want.saturating_mul(4),
            }
        }
    }
    let n = u64::from_le_bytes(head[..8].try_into().unwrap());
    if (2..=MAX_HEAD - 8).contains(&n) && 8 + n <= total {
        take(&mut head, 8 + n)?;
        if head.len() as u64 == 8 + n {
            let layout = safetensors(&head, total).map(|(layout, _)| layout);
            return Ok((head, layout));
        }
    }
    Ok((head, None))
}

/// A file described as regions that cover it exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// What the file was recognised as.
    pub container: Container,
    /// Regions in file order; their lengths add up to the file's length.
    pub regions: Vec<Region>,
}

impl Layout {
    /// The whole file as one region of bytes.
    pub fn bytes(total: u64) -> Layout {
        Layout {
            container: Container::None,
            regions: if total == 0 {
                Vec::new()
            } else {
                vec![Region {
                    kind: Kind::Bytes,
                    len: total,
                    row: 0,
                }]
            },
        }
    }

    /// Regions for a file of `total` bytes whose tensors are `extents` (any order); the rest is
    /// bytes. `None` if tensors overlap or run past the end.
    fn cover(container: Container, extents: &mut [Extent], total: u64) -> Option<Layout> {
        extents.sort_by_key(|e| e.start);
        let mut regions = Vec::with_capacity(2 * extents.len() + 1);
        let mut pos = 0u64;
        for e in extents.iter() {
            let end = e.start.checked_add(e.len)?;
            if e.start < pos || end > total {
                return None;
            }
            if e.start > pos {
                push_bytes(&mut regions, e.start - pos);
            }
            // Neighbouring tensors of one format and row length make one region: fewer, larger
            // chunks, whose statistics (and static tables) serve them all.
            match regions.last_mut() {
                Some(r) if r.kind == e.kind && r.row == e.row => r.len += e.len,
                _ if e.len > 0 => regions.push(Region {
                    kind: e.kind,
                    len: e.len,
                    row: e.row,
                }),
                _ => {}
            }
            pos = end;
        }
        if total > pos {
            push_bytes(&mut regions, total - pos);
        }
        Some(Layout { container, regions })
    }
}

fn push_bytes(regions: &mut Vec<Region>, len: u64) {
    match regions.last_mut() {
        Some(r) if r.kind == Kind::Bytes => r.len += len,
        _ => regions.push(Region {
            kind: Kind::Bytes,
            len,
            row: 0,
        }),
    }
}

/// safetensors: u64 header length, a JSON object `name → {dtype, shape, data_offsets}`
/// (offsets relative to the end of the header), then the data.
fn safetensors(head: &[u8], total: u64) -> Option<(Layout, Vec<Extent>)> {
    let json: serde_json::Value = serde_json::from_slice(&head[8..]).ok()?;
    let base = head.len() as u64;
    let mut extents = Vec::new();
    for (name, t) in json.as_object()? {
        if name == "__metadata__" {
            continue;
        }
        let dtype = t.get("dtype")?.as_str()?;
        let shape: Vec<u64> = t
            .get("shape")?
            .as_array()?
            .iter()
            .map(|d| d.as_u64())
            .collect::<Option<_>>()?;
        let offsets = t.get("data_offsets")?.as_array()?;
        if offsets.len() != 2 {
            return None;
        }
        let (begin, end) = (offsets[0].as_u64()?, offsets[1].as_u64()?);
        if end < begin {
            return None;
        }
        let (kind, size) = match dtype {
            "F32" => (Kind::F32, 4),
            "F16" => (Kind::F16, 2),
            "BF16" => (Kind::Bf16, 2),
            "F64" | "I64" | "U64" => (Kind::Bytes, 8),
            "I32" | "U32" => (Kind::Bytes, 4),
            "I16" | "U16" => (Kind::Bytes, 2),
            "I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2" => (Kind::Bytes, 1),
            _ => return None,
        };
        let count = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d))?;
        if count.checked_mul(size)? != end - begin {
            return None;
        }
        let row = if shape.len() >= 2 {
            shape[shape.len() - 1]
        } else {
            0
        };
        extents.push(Extent {
            start: base.checked_add(begin)?,
            len: end - begin,
            kind,
            row,
            name: name.clone(),
            dtype: dtype.to_string(),
            dims: shape,
        });
    }
    // safetensors packs the data with no holes; a hole or overlap means a header that lies.
    let mut sorted: Vec<(u64, u64)> = extents.iter().map(|e| (e.start, e.len)).collect();
    sorted.sort_unstable();
    let mut pos = base;
    for (start, len) in sorted {
        if start != pos {
            return None;
        }
        pos += len;
    }
    if pos != total {
        return None;
    }
    let layout = Layout::cover(Container::Safetensors, &mut extents, total)?;
    Some((layout, extents))
}

enum Parse {
    Done(Layout, Vec<Extent>),
    NeedMore,
    Invalid,
}

/// Why a metadata value could not be skipped.
enum Skip {
    /// It runs past the bytes read so far.
    Short,
    /// Its type is unknown (or an array nests in an array).
    Invalid,
}

/// A cursor over GGUF's little-endian header fields.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn bytes(&mut self, n: u64) -> Option<&[u8]> {
        let end = self.pos.checked_add(usize::try_from(n).ok()?)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.bytes(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.bytes(8)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<&[u8]> {
        let n = self.u64()?;
        self.bytes(n)
    }
    /// Skips a metadata value of type `t` (arrays one level deep).
    fn skip_value(&mut self, t: u32, depth: u32) -> Result<(), Skip> {
        let fixed = match t {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            10..=12 => 8,
            8 => {
                return self.string().map(|_| ()).ok_or(Skip::Short);
            }
            9 if depth == 0 => {
                let inner = self.u32().ok_or(Skip::Short)?;
                let n = self.u64().ok_or(Skip::Short)?;
                // Each element takes at least one byte: a count beyond what is left is a lie
                // about this file, or more header than we have read yet.
                if n > (self.buf.len() - self.pos) as u64 {
                    return Err(Skip::Short);
                }
                for _ in 0..n {
                    self.skip_value(inner, 1)?;
                }
                return Ok(());
            }
            _ => return Err(Skip::Invalid),
        };
        self.bytes(fixed).map(|_| ()).ok_or(Skip::Short)
    }
}

/// GGUF v2/v3: magic, version, tensor count, metadata count, metadata, tensor infos, padding to
/// `general.alignment`, data. `NeedMore` when `head` ends inside the header.
fn gguf(head: &[u8], total: u64) -> Parse {
    let mut c = Cursor { buf: head, pos: 4 };
    let more = |c: &Cursor| {
        if (c.buf.len() as u64) < total.min(MAX_HEAD) {
            Parse::NeedMore
        } else {
            Parse::Invalid
        }
    };
    macro_rules! get {
        ($e:expr) => {
            match $e {
                Some(v) => v,
                None => return more(&c),
            }
        };
    }
    let version = get!(c.u32());
    if !(2..=3).contains(&version) {
        return Parse::Invalid;
    }
    let tensors = get!(c.u64());
    let kvs = get!(c.u64());
    // Every tensor info and key-value pair takes more than 16 bytes of a file this size.
    if tensors > total / 16 || kvs > total / 16 {
        return Parse::Invalid;
    }
    let mut alignment = 32u64;
    for _ in 0..kvs {
        let key = get!(c.string()).to_vec();
        let t = get!(c.u32());
        if key == b"general.alignment" && t == 4 {
            let start = c.pos;
            alignment = u64::from(get!(c.u32()));
            c.pos = start;
        }
        match c.skip_value(t, 0) {
            Ok(()) => {}
            Err(Skip::Invalid) => return Parse::Invalid,
            Err(Skip::Short) => return more(&c),
        }
    }
    if alignment == 0 || !alignment.is_power_of_two() || alignment > 1 << 20 {
        return Parse::Invalid;
    }
    let mut infos = Vec::new();
    for _ in 0..tensors {
        let name = String::from_utf8_lossy(get!(c.string())).into_owned();
        let dims = get!(c.u32());
        if dims == 0 || dims > 8 {
            return Parse::Invalid;
        }
        let mut shape = Vec::with_capacity(dims as usize);
        for _ in 0..dims {
            shape.push(get!(c.u64()));
        }
        let t = get!(c.u32());
        let offset = get!(c.u64());
        infos.push((name, shape, t, offset));
    }
    let data = (c.pos as u64).div_ceil(alignment) * alignment;
    let mut extents = Vec::with_capacity(infos.len());
    for (name, shape, t, offset) in infos {
        let Some(count) = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d)) else {
            return Parse::Invalid;
        };
        let Some(&GgmlType {
            kind,
            block,
            bytes,
            name: dtype,
            ..
        }) = ggml_type(t)
        else {
            // A type this build does not know: its size cannot be checked, so its data is left
            // in the bytes between the tensors that are known (coded as bytes, exactly).
            continue;
        };
        if count % block != 0 || shape[0] % block != 0 {
            return Parse::Invalid;
        }
        let Some(len) = (count / block).checked_mul(bytes) else {
            return Parse::Invalid;
        };
        let Some(start) = data.checked_add(offset) else {
            return Parse::Invalid;
        };
        let row = if shape.len() >= 2 {
            shape[0] / block
        } else {
            0
        };
        extents.push(Extent {
            start,
            len,
            kind,
            row,
            name,
            dtype: dtype.to_string(),
            dims: shape,
        });
    }
    if data > total {
        return Parse::Invalid;
    }
    match Layout::cover(Container::Gguf, &mut extents, total) {
        Some(layout) => Parse::Done(layout, extents),
        None => Parse::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{gguf_file, safetensors_file};

    fn layout_of(file: &[u8]) -> Option<Layout> {
        let (head, layout) = recognise(&mut &file[..], file.len() as u64).unwrap();
        assert!(file.starts_with(&head));
        layout
    }

    fn covers(layout: &Layout, len: usize) {
        assert_eq!(
            layout.regions.iter().map(|r| r.len).sum::<u64>(),
            len as u64
        );
        for r in &layout.regions {
            assert_eq!(r.len % r.kind.unit(), 0, "{r:?}");
        }
    }

    #[test]
    fn safetensors_and_gguf_are_described_exactly() {
        let st = safetensors_file(&[
            ("w", "BF16", vec![4, 8], vec![1; 64]),
            ("b", "F32", vec![8], vec![2; 32]),
            ("i", "I64", vec![2], vec![3; 16]),
        ]);
        let l = layout_of(&st).unwrap();
        assert_eq!(l.container, Container::Safetensors);
        covers(&l, st.len());
        let kinds: Vec<Kind> = l.regions.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, [Kind::Bytes, Kind::Bf16, Kind::F32, Kind::Bytes]);
        assert_eq!(l.regions[1].row, 8);

        let g = gguf_file(&[
            (vec![64, 2], 3, vec![5; 2 * 2 * 20]),
            (vec![64], 0, vec![6; 256]),
            (vec![32, 3], 8, vec![7; 3 * 34]),
        ]);
        let l = layout_of(&g).unwrap();
        assert_eq!(l.container, Container::Gguf);
        covers(&l, g.len());
        let kinds: Vec<Kind> = l.regions.iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::Bytes,
                Kind::Q4_1,
                Kind::Bytes,
                Kind::F32,
                Kind::Q8_0,
                Kind::Bytes
            ]
        );
        assert_eq!(l.regions[1].row, 2);
    }

    #[test]
    fn headers_that_lie_are_not_recognised() {
        let good = safetensors_file(&[("w", "F32", vec![2, 2], vec![1; 16])]);
        let n = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
        let json = std::str::from_utf8(&good[8..8 + n]).unwrap().to_string();
        let with = |json: &str, data: usize| {
            let mut f = (json.len() as u64).to_le_bytes().to_vec();
            f.extend_from_slice(json.as_bytes());
            f.extend(std::iter::repeat_n(1u8, data));
            f
        };
        for (what, file) in [
            (
                "offsets past the end",
                with(&json.replace("16]", "99]"), 16),
            ),
            (
                "size not matching the shape",
                with(&json.replace("[2,2]", "[2,3]"), 16),
            ),
            (
                "huge claimed shape",
                with(&json.replace("[2,2]", "[4294967296,4294967296]"), 16),
            ),
            ("unknown dtype", with(&json.replace("F32", "Q7"), 16)),
            ("trailing data", with(&json, 20)),
            ("truncated data", with(&json, 8)),
            ("not JSON", with(&json.replace('{', "["), 16)),
        ] {
            assert_eq!(layout_of(&file), None, "{what}");
        }
        let mut huge = good.clone();
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(layout_of(&huge), None);
        let two = safetensors_file(&[
            ("a", "F32", vec![2], vec![1; 8]),
            ("b", "F32", vec![2], vec![1; 8]),
        ]);
        let n = u64::from_le_bytes(two[..8].try_into().unwrap()) as usize;
        let json = std::str::from_utf8(&two[8..8 + n]).unwrap();
        assert!(json.contains("[8,16]"));
        let overlapping = with(&json.replace("[8,16]", "[4,12]"), 16);
        assert_eq!(layout_of(&overlapping), None, "overlap");

        let g = gguf_file(&[(vec![64, 2], 3, vec![5; 80])]);
        for cut in [10, 40, g.len() - 20] {
            assert_eq!(layout_of(&g[..cut]), None, "cut at {cut}");
        }
        let mut lying = g.clone();
        lying[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes()); // tensor count
        assert_eq!(layout_of(&lying), None);
        let mut lying = g.clone();
        // The tensor's offset field: after its name, dimension count, two dimensions and type.
        let name = g.windows(2).position(|w| w == b"t0").unwrap();
        let at = name + 2 + 4 + 16 + 4;
        assert_eq!(&g[at..at + 8], &0u64.to_le_bytes());
        lying[at..at + 8].copy_from_slice(&(1u64 << 50).to_le_bytes());
        assert_eq!(layout_of(&lying), None, "offset past the end");
    }
}
