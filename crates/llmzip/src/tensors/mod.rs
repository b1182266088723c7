//! Weight files (safetensors, GGUF): a lossless codec that models the numbers, not the bytes.
//!
//! A language model that reads a weight file byte by byte sees noise: a float's bytes mix a
//! nearly random mantissa with a very predictable exponent, and a quantized block mixes scales
//! with 4-bit values. This codec instead
//!
//! 1. recognises the container by its content ([`layout::recognise`]: safetensors' JSON header,
//!    GGUF's metadata and tensor table) and describes the file as [`Region`]s of one number
//!    format each, covering it exactly (headers, padding and unknown formats are bytes);
//! 2. cuts every region into chunks of at most [`CHUNK_BYTES`] and codes each chunk on its own
//!    (`tensors/fields.rs`): fields that carry information as symbols of adaptive tables
//!    through rANS, noise as raw bits;
//! 3. codes the chunks in parallel batches and writes them in file order.
//!
//! Chunks are independent and the arithmetic is integer only, so the archive is the same on every
//! machine and for every thread count, and memory is bounded by the batch of chunks, never by the
//! file: multi-gigabyte files stream.
//!
//! ## Archive (`LLMT`)
//!
//! | field | type | meaning |
//! |---|---|---|
//! | magic | 4 bytes | `LLMT` |
//! | version | u8 | `1` |
//! | flags | u8 | `0` |
//! | writer | str8 | the release that wrote it |
//! | container | u8 | 0 unrecognised, 1 safetensors, 2 GGUF |
//! | length | varint | bytes of the original |
//! | regions | varint | how many follow, ≤ length |
//! | region × n | u8, varint, varint | kind (see [`Kind`]), length in bytes (≥ 1, a multiple of the kind's unit), units per row (≤ the region's units) |
//! | header CRC | u32 | CRC-32 of the header bytes before it |
//! | chunk × … | varint, u32, bytes | payload length (≤ chunk length + 1), CRC-32 of the chunk's original bytes, payload |
//! | CRC | u32 | CRC-32 of the whole original |
//!
//! The chunks are not listed: both sides cut each region the same way (whole units, at most
//! [`CHUNK_BYTES`] each). A region's lengths must add up to the original's, so a header that
//! claims more than it holds fails at the first chunk that is missing, and a chunk decodes only
//! into a buffer of its own claimed length (at most [`CHUNK_BYTES`]): work and memory are bounded
//! per chunk, and the first wrong CRC stops decoding before its bytes are written.

mod fields;
pub mod layout;

use std::io::{Read, Write};

use rayon::prelude::*;

pub use layout::{recognise, Container, Kind, Layout, Region};

use crate::codec::CountingWriter;
use crate::format::varint;
use crate::stats::{Profile, Stage};
use crate::{Error, Observer, Result};

/// The name that selects this codec where a model is chosen (`-m tensors`, `bench --models`).
pub const MODEL_NAME: &str = "tensors";
/// The first four bytes of a tensor archive.
pub const MAGIC: [u8; 4] = *b"LLMT";
const VERSION: u8 = 1;
/// Largest chunk, in bytes (a chunk holds whole units).
pub const CHUNK_BYTES: u64 = 4 << 20;
/// Most regions an archive may list (two per tensor is typical).
const MAX_REGIONS: u64 = 1 << 24;

/// Sizes per number format, as `llmzip info` and `--stats` show them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KindStats {
    /// Bytes of the original in this format.
    pub original: u64,
    /// Bytes of payload they were coded into.
    pub coded: u64,
    /// Weights (values, or 32 per quantized block; bytes for [`Kind::Bytes`]).
    pub values: u64,
}

/// What a tensor archive holds and cost.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The file's description.
    pub layout: Layout,
    /// Bytes of the original.
    pub original_len: u64,
    /// Bytes of the archive.
    pub archive_len: u64,
    /// Per number format, in [`Kind`] order.
    pub kinds: Vec<(Kind, KindStats)>,
    /// Time spent per stage (read, code, write).
    pub profile: Profile,
}

impl Summary {
    fn new(layout: Layout) -> Summary {
        let original_len = layout.regions.iter().map(|r| r.len).sum();
        Summary {
            layout,
            original_len,
            archive_len: 0,
            kinds: Vec::new(),
            profile: Profile::default(),
        }
    }

    fn count(&mut self, kind: Kind, original: u64, coded: u64) {
        let at = match self.kinds.binary_search_by_key(&kind, |(k, _)| *k) {
            Ok(at) => at,
            Err(at) => {
                self.kinds.insert(at, (kind, KindStats::default()));
                at
            }
        };
        let s = &mut self.kinds[at].1;
        s.original += original;
        s.coded += coded;
        s.values += original / kind.unit() * kind.values_per_unit();
    }
}

/// One chunk's place: its region, where it starts in units, how many bytes.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    kind: Kind,
    row: u64,
    first: u64,
    len: u64,
}

fn chunks(layout: &Layout) -> impl Iterator<Item = Chunk> + '_ {
    layout.regions.iter().flat_map(|r| {
        let unit = r.kind.unit();
        let per = (CHUNK_BYTES / unit) * unit;
        (0..r.len.div_ceil(per)).map(move |i| Chunk {
            kind: r.kind,
            row: r.row,
            first: i * per / unit,
            len: per.min(r.len - i * per),
        })
    })
}

/// The chunks in groups coded at once: enough to keep every thread busy, few enough to bound
/// memory. How they are grouped changes nothing in the archive, only the speed.
fn batches(layout: &Layout) -> impl Iterator<Item = Vec<Chunk>> + '_ {
    let size = 4 * rayon::current_num_threads().max(1);
    let mut pending = chunks(layout).peekable();
    std::iter::from_fn(move || {
        pending.peek()?;
        Some(pending.by_ref().take(size).collect())
    })
}

/// Compresses a file described by `layout`, whose first bytes `head` were already read (by
/// [`recognise`]) and whose rest comes from `rest`.
pub fn compress(
    head: &[u8],
    layout: &Layout,
    rest: impl Read,
    output: impl Write,
    observer: &mut dyn Observer,
) -> Result<Summary> {
    let mut summary = Summary::new(layout.clone());
    let mut out = CountingWriter::new(output);
    let mut header = MAGIC.to_vec();
    header.extend_from_slice(&[VERSION, 0]);
    let writer = crate::format::WRITER.as_bytes();
    header.push(writer.len() as u8);
    header.extend_from_slice(writer);
    header.push(layout.container as u8);
    varint::write_u64(&mut header, summary.original_len)?;
    varint::write_u64(&mut header, layout.regions.len() as u64)?;
    for r in &layout.regions {
        header.push(r.kind as u8);
        varint::write_u64(&mut header, r.len)?;
        varint::write_u64(&mut header, r.row)?;
    }
    let crc = crc32fast::hash(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    out.write_all(&header)?;

    let mut profile = Profile::default();
    let mut input = std::io::Cursor::new(head).chain(rest);
    let mut whole = crc32fast::Hasher::new();
    let mut done = 0u64;
    for group in batches(layout) {
        if observer.cancelled() {
            return Err(Error::Interrupted);
        }
        let data = profile.time(Stage::Read, || {
            group
                .iter()
                .map(|c| {
                    let mut buf = vec![0u8; c.len as usize];
                    input.read_exact(&mut buf).map(|_| buf)
                })
                .collect::<std::io::Result<Vec<_>>>()
        });
        let data = data.map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => Error::InvalidSetting(
                "the weight file is shorter than its header says (did it change while being \
                 read?)"
                    .into(),
            ),
            _ => Error::Io(e),
        })?;
        let coded: Vec<Vec<u8>> = profile.time(Stage::ArithCode, || {
            group
                .par_iter()
                .zip(data.par_iter())
                .map(|(c, d)| fields::encode(c.kind, c.row, c.first, d))
                .collect()
        });
        profile.time(Stage::Write, || -> Result<()> {
            for ((c, d), p) in group.iter().zip(&data).zip(&coded) {
                whole.update(d);
                observer.original_block(d);
                let mut frame = Vec::with_capacity(16);
                varint::write_u64(&mut frame, p.len() as u64)?;
                frame.extend_from_slice(&crc32fast::hash(d).to_le_bytes());
                out.write_all(&frame)?;
                out.write_all(p)?;
                summary.count(c.kind, c.len, p.len() as u64);
                done += c.len;
            }
            Ok(())
        })?;
        observer.progress(done);
    }
    let mut extra = [0u8; 1];
    if input.read(&mut extra)? != 0 {
        return Err(Error::InvalidSetting(
            "the weight file is longer than its layout (did it change while being read?)".into(),
        ));
    }
    out.write_all(&whole.finalize().to_le_bytes())?;
    out.flush()?;
    summary.archive_len = out.count;
    summary.profile = profile;
    Ok(summary)
}

/// Reads a tensor archive's header.
struct Reader<R> {
    input: R,
    read: u64,
}

impl<R: Read> Reader<R> {
    fn exact(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        self.input
            .read_exact(buf)
            .map_err(|e| Error::from_read(e, what))?;
        self.read += buf.len() as u64;
        Ok(())
    }
}

impl<R: Read> Read for Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.input.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Reads the header; `header` collects its bytes for the CRC.
fn read_header(r: &mut Reader<impl Read>) -> Result<Layout> {
    let mut header = Vec::new();
    let take = |r: &mut Reader<_>, n: usize, what: &str| -> Result<Vec<u8>> {
        let mut b = vec![0u8; n];
        r.exact(&mut b, what)?;
        Ok(b)
    };
    let start = take(r, 7, "header")?;
    if start[..4] != MAGIC {
        return Err(Error::Corrupt("not a tensor archive".into()));
    }
    if start[4] != VERSION {
        return Err(Error::Corrupt(format!(
            "tensor archive version {} is not known to this release (it reads version \
             {VERSION}); a newer llmzip wrote it",
            start[4]
        )));
    }
    if start[5] != 0 {
        return Err(Error::Corrupt("unknown flags in the tensor archive".into()));
    }
    header.extend_from_slice(&start);
    let writer = take(r, start[6] as usize, "header")?;
    header.extend_from_slice(&writer);
    let container = take(r, 1, "header")?;
    header.extend_from_slice(&container);
    let container = Container::from_tag(container[0])
        .ok_or_else(|| Error::Corrupt("unknown container in the tensor archive".into()))?;
    let varint_of = |r: &mut Reader<_>, header: &mut Vec<u8>, what: &str, max: u64| {
        let v = varint::read_bounded(r, what, max)?;
        varint::write_u64(header, v)?;
        Ok::<u64, Error>(v)
    };
    let total = varint_of(r, &mut header, "original length", u64::MAX)?;
    let count = varint_of(r, &mut header, "region count", total.min(MAX_REGIONS))?;
    let mut regions = Vec::new();
    let mut sum = 0u64;
    for _ in 0..count {
        let tag = take(r, 1, "header")?;
        header.extend_from_slice(&tag);
        let kind = Kind::from_tag(tag[0])
            .ok_or_else(|| Error::Corrupt("unknown number format in a tensor archive".into()))?;
        let len = varint_of(r, &mut header, "region length", total - sum)?;
        if len == 0 || len % kind.unit() != 0 {
            return Err(Error::Corrupt(
                "a region's length is not whole units".into(),
            ));
        }
        let row = varint_of(r, &mut header, "row length", len / kind.unit())?;
        sum += len;
        regions.push(Region { kind, len, row });
    }
    if sum != total {
        return Err(Error::Corrupt(
            "the regions do not add up to the original's length".into(),
        ));
    }
    let mut crc = [0u8; 4];
    r.exact(&mut crc, "header")?;
    if u32::from_le_bytes(crc) != crc32fast::hash(&header) {
        return Err(Error::Corrupt(
            "the tensor archive's header is damaged".into(),
        ));
    }
    Ok(Layout { container, regions })
}

/// Reads only a tensor archive's header: the file's description (its length is the sum of the
/// regions).
pub fn read_layout(input: impl Read) -> Result<Layout> {
    read_header(&mut Reader { input, read: 0 })
}

/// Decompresses a tensor archive into `output`. Only chunks whose CRC matched are written.
pub fn decompress(
    input: impl Read,
    mut output: impl Write,
    observer: &mut dyn Observer,
) -> Result<Summary> {
    walk(input, Some(&mut output), observer)
}

/// Reads a tensor archive's structure and sizes without decoding.
pub fn inspect(input: impl Read) -> Result<Summary> {
    walk(input, None::<&mut std::io::Sink>, &mut crate::Silent)
}

fn walk(
    input: impl Read,
    mut output: Option<&mut impl Write>,
    observer: &mut dyn Observer,
) -> Result<Summary> {
    let mut r = Reader { input, read: 0 };
    let layout = read_header(&mut r)?;
    let mut summary = Summary::new(layout.clone());
    let mut profile = Profile::default();
    let mut whole = crc32fast::Hasher::new();
    let mut done = 0u64;
    for group in batches(&layout) {
        if observer.cancelled() {
            return Err(Error::Interrupted);
        }
        let mut frames = Vec::with_capacity(group.len());
        profile.time(Stage::Read, || -> Result<()> {
            for c in &group {
                let len = varint::read_bounded(&mut r, "chunk length", c.len + 1)?;
                let mut crc = [0u8; 4];
                r.exact(&mut crc, "chunk")?;
                let mut payload = vec![0u8; len as usize];
                r.exact(&mut payload, "chunk")?;
                frames.push((u32::from_le_bytes(crc), payload));
            }
            Ok(())
        })?;
        let Some(out) = output.as_mut() else {
            for (c, (_, p)) in group.iter().zip(&frames) {
                summary.count(c.kind, c.len, p.len() as u64);
            }
            continue;
        };
        let decoded: Vec<Result<Vec<u8>>> = profile.time(Stage::ArithCode, || {
            group
                .par_iter()
                .zip(frames.par_iter())
                .map(|(c, (crc, p))| {
                    let data = fields::decode(c.kind, c.row, c.first, p, c.len as usize)?;
                    if crate::format::ENFORCE_CHECKSUMS && crc32fast::hash(&data) != *crc {
                        return Err(Error::Corrupt(format!(
                            "a {} chunk's checksum does not match",
                            c.kind.name()
                        )));
                    }
                    Ok(data)
                })
                .collect()
        });
        profile.time(Stage::Write, || -> Result<()> {
            for ((c, (_, p)), d) in group.iter().zip(&frames).zip(decoded) {
                let d = d?;
                whole.update(&d);
                out.write_all(&d)?;
                summary.count(c.kind, c.len, p.len() as u64);
                done += c.len;
            }
            Ok(())
        })?;
        observer.progress(done);
    }
    let mut crc = [0u8; 4];
    r.exact(&mut crc, "trailer")?;
    if output.is_some()
        && crate::format::ENFORCE_CHECKSUMS
        && u32::from_le_bytes(crc) != whole.finalize()
    {
        return Err(Error::Corrupt(
            "the original's checksum does not match".into(),
        ));
    }
    let mut extra = [0u8; 1];
    if r.read(&mut extra)? != 0 {
        return Err(Error::Corrupt(
            "data after the end of the tensor archive".into(),
        ));
    }
    if let Some(out) = output {
        out.flush()?;
    }
    summary.archive_len = r.read;
    summary.profile = profile;
    Ok(summary)
}

#[cfg(test)]
pub(crate) mod tests;
