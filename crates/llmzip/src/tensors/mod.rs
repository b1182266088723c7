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
//! 3. hands each chunk to the thread pool as soon as it is read, and writes the coded chunks in
//!    file order.
//!
//! Chunks are independent and the arithmetic is integer only, so the archive is the same on every
//! machine and for every thread count. Memory is bounded by the chunks in flight (`2 × threads +
//! 2`: read, being coded, or waiting to be written) and per-thread working memory, never by the
//! file: multi-gigabyte files stream. [`Decoder`] is the same decoding as a `Read` (a batch of
//! chunks at a time).
//!
//! ## Archive (`LLMT`)
//!
//! | field | type | meaning |
//! |---|---|---|
//! | magic | 4 bytes | `LLMT` |
//! | version | u8 | `2` (version 1, one rANS state per chunk instead of four, still decodes: docs/format.md) |
//! | flags | u8 | `0`, or `1`: a delta against a base file (`tensors/delta.rs`) |
//! | writer | str8 | the release that wrote it |
//! | container | u8 | 0 unrecognised, 1 safetensors, 2 GGUF |
//! | length | varint | bytes of the original |
//! | regions | varint | how many follow, ≤ length |
//! | region × n | u8, varint, varint | kind (see [`Kind`]), length in bytes (≥ 1, a multiple of the kind's unit), units per row (≤ the region's units) |
//! | (delta only) base | 32 bytes, varint | the base file's SHA-256 and length |
//! | (delta only) patches | varint, then varint × 3 each | how many; each: the gap since the previous patch's end, its length (≥ 1), where its partner starts in the base |
//! | header CRC | u32 | CRC-32 of the header bytes before it |
//! | chunk × … | varint, u32, (delta only) u8, bytes | payload length (≤ chunk length + 1), CRC-32 of the chunk's original bytes (after a delta's XOR is undone), how the chunk is coded: alone (0), XORed with the base (1), or floats with the base's as context (2) — the encoder keeps the smallest — then the payload |
//! | CRC | u32 | CRC-32 of the whole original |
//!
//! The chunks are not listed: both sides cut each region the same way (whole units, at most
//! [`CHUNK_BYTES`] each). A region's lengths must add up to the original's, so a header that
//! claims more than it holds fails at the first chunk that is missing, and a chunk decodes only
//! into a buffer of its own claimed length (at most [`CHUNK_BYTES`]): work and memory are bounded
//! per chunk, and the first wrong CRC stops decoding before its bytes are written.

mod delta;
mod fields;
pub mod layout;

use std::io::{Read, Write};

use rayon::prelude::*;

pub use delta::{Base, BaseId, Delta, Patch};
pub use layout::{recognise, tensors, Container, Kind, Layout, Region, TensorEntry};

use crate::codec::CountingWriter;
use crate::coder::rans::Lanes;
use crate::format::varint;
use crate::stats::{Profile, Stage};
use crate::{Error, Observer, Result};

/// The name that selects this codec where a model is chosen (`-m tensors`, `bench --models`).
pub const MODEL_NAME: &str = "tensors";
/// The first four bytes of a tensor archive.
pub const MAGIC: [u8; 4] = *b"LLMT";
/// The version written. Version 2 interleaves four rANS states in each chunk's symbol stream
/// (`coder::rans::Lanes`; the same symbols, read up to 2× faster); version 1 (llmzip ≤ 0.5)
/// has one, and still decodes.
const VERSION: u8 = 2;
/// The rANS lanes of a version's chunks (`None`: a version this release does not know).
fn lanes_of(version: u8) -> Option<Lanes> {
    match version {
        1 => Some(Lanes::One),
        2 => Some(Lanes::Four),
        _ => None,
    }
}
/// The lanes [`VERSION`] writes.
const LANES: Lanes = Lanes::Four;
/// The header flag of a delta archive.
const DELTA: u8 = 1;
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
    /// The base a delta archive was made against, and how many of the original's bytes were
    /// coded against it (the rest alone).
    pub base: Option<(BaseId, u64)>,
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
            base: None,
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

/// One chunk's place: its region, where it starts in units, how many bytes, and where it
/// starts in the file.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    kind: Kind,
    row: u64,
    first: u64,
    len: u64,
    offset: u64,
}

/// Where the next chunk starts: a region and a byte offset in it. Both sides cut every region
/// the same way: whole units, at most [`CHUNK_BYTES`] a chunk.
#[derive(Debug, Clone, Copy, Default)]
struct Cursor {
    region: usize,
    at: u64,
    /// Where the region starts in the file.
    start: u64,
}

impl Cursor {
    fn next(&mut self, layout: &Layout) -> Option<Chunk> {
        loop {
            let r = layout.regions.get(self.region)?;
            if self.at == r.len {
                self.region += 1;
                self.start += r.len;
                self.at = 0;
                continue;
            }
            let unit = r.kind.unit();
            let len = ((CHUNK_BYTES / unit) * unit).min(r.len - self.at);
            let chunk = Chunk {
                kind: r.kind,
                row: r.row,
                first: self.at / unit,
                len,
                offset: self.start + self.at,
            };
            self.at += len;
            return Some(chunk);
        }
    }

    /// The next chunks, in a group coded at once: enough to keep every thread busy, few enough
    /// to bound memory. How they are grouped changes nothing in the archive, only the speed.
    /// Empty at the end.
    fn batch(&mut self, layout: &Layout) -> Vec<Chunk> {
        let size = 2 * rayon::current_num_threads().max(1);
        std::iter::from_fn(|| self.next(layout))
            .take(size)
            .collect()
    }
}

/// Every chunk of `layout` in file order, each a group of its own for [`pipeline`].
fn single_chunks(layout: &Layout) -> impl Iterator<Item = Vec<Chunk>> + '_ {
    let mut cursor = Cursor::default();
    std::iter::from_fn(move || cursor.next(layout).map(|c| vec![c]))
}

/// The three stages of both directions, overlapped: the calling thread reads chunks ahead and
/// hands each to the pool as soon as it is read, and writes them in file order as they come
/// back coded. Reading and writing stay on the calling thread (the caller's `Read` and `Write`
/// need not be `Send`); at most `2 × threads + 2` chunks' buffers (`S`) are alive, and they are
/// reused rather than freed, because on the machines measured here fresh memory costs more (the
/// kernel zeroes every new page) than coding into it.
///
/// Chunks are handed out one at a time, not in batches that all wait for their slowest: with
/// batches of four, the two cores of the machine measured were busy 1.3 of 2 seconds per
/// second on SmolLM2's GGUF, whose chunks range from a few KiB to 4 MiB (docs/profile.md).
///
/// Errors come out in file order: a chunk's `write` reports what its `code` found before a
/// later chunk's read error is returned.
fn pipeline<S: Default + Send>(
    layout: &Layout,
    observer: &mut dyn Observer,
    mut read: impl FnMut(&[Chunk], &mut S) -> Result<()>,
    code: impl Fn(&[Chunk], &mut S) + Sync,
    mut write: impl FnMut(&[Chunk], &mut S, &mut dyn Observer) -> Result<()>,
) -> Result<()> {
    type Coded<S> = (usize, Vec<Chunk>, S, Option<Box<dyn std::any::Any + Send>>);
    let limit = 2 * rayon::current_num_threads().max(1) + 2;
    let mut groups = single_chunks(layout);
    let mut spare: Vec<S> = Vec::new();
    let (done, coded) = std::sync::mpsc::channel::<Coded<S>>();
    let code = &code;
    rayon::in_place_scope(|scope| {
        let mut ready = std::collections::BTreeMap::new();
        let (mut read_at, mut write_at) = (0usize, 0usize);
        let mut read_error = None;
        loop {
            if observer.cancelled() {
                return Err(Error::Interrupted);
            }
            // Keep the pool busy first: reading from a file is fast next to coding.
            while read_error.is_none() && read_at - write_at < limit {
                let Some(group) = groups.next() else { break };
                let mut state = spare.pop().unwrap_or_default();
                if let Err(e) = read(&group, &mut state) {
                    read_error = Some(e);
                    break;
                }
                let (done, at) = (done.clone(), read_at);
                scope.spawn(move |_| {
                    // A panic is carried to the calling thread, which waits for this chunk.
                    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        code(&group, &mut state)
                    }))
                    .err();
                    let _ = done.send((at, group, state, panicked));
                });
                read_at += 1;
            }
            if write_at == read_at {
                return read_error.map_or(Ok(()), Err);
            }
            let (group, mut state) = loop {
                if let Some(next) = ready.remove(&write_at) {
                    break next;
                }
                let (at, group, state, panicked) = next_coded(&coded);
                if let Some(panic) = panicked {
                    std::panic::resume_unwind(panic);
                }
                ready.insert(at, (group, state));
            };
            write(&group, &mut state, observer)?;
            spare.push(state);
            write_at += 1;
        }
    })
}

/// The next chunk a task of [`pipeline`] sends back. On a thread of the pool (the CLI runs
/// everything in one) waiting would idle one of its threads: it codes waiting chunks itself
/// until one comes back.
fn next_coded<T>(coded: &std::sync::mpsc::Receiver<T>) -> T {
    use std::sync::mpsc::TryRecvError;
    let sender = "pipeline's scope holds a sender";
    loop {
        match coded.try_recv() {
            Ok(next) => return next,
            Err(TryRecvError::Disconnected) => unreachable!("{sender}"),
            // Only this thread's own queue: chunks it spawned, never another caller's job that
            // could block on this one.
            Err(TryRecvError::Empty) => match rayon::yield_local() {
                Some(rayon::Yield::Executed) => {}
                // Every chunk is taken: wait a little for one, then look for work again.
                Some(rayon::Yield::Idle) => {
                    match coded.recv_timeout(std::time::Duration::from_millis(1)) {
                        Ok(next) => return next,
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        Err(_) => unreachable!("{sender}"),
                    }
                }
                None => return coded.recv().expect(sender),
            },
        }
    }
}

/// A batch being compressed: each chunk's bytes, base bytes (its mask: empty without a
/// partner), payload, and how it was coded against the base ([`Against`]: a chunk with a mask is
/// coded every way, and the smallest kept; `other` holds a loser).
#[derive(Default)]
struct Packing {
    data: Vec<Vec<u8>>,
    masks: Vec<Vec<u8>>,
    payloads: Vec<Vec<u8>>,
    other: Vec<Vec<u8>>,
    how: Vec<Against>,
}

/// How a chunk of a delta archive is coded (its frame's byte).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(u8)]
enum Against {
    /// On its own.
    #[default]
    Alone = 0,
    /// XORed with the base's bytes.
    Xor = 1,
    /// Floats with the base's values as context (`fields::encode_with_base`).
    Context = 2,
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
    compress_with(head, layout, rest, output, observer, None)
}

/// [`compress`] of a fine-tune against its `base` (`tensors/delta.rs`): the tensors with a
/// partner in the base (`head`'s [`tensors`] matched by [`Base::delta`]) are coded as their XOR
/// with it. Decoding needs the same base ([`decompress_with_base`]).
pub fn compress_delta(
    head: &[u8],
    layout: &Layout,
    rest: impl Read,
    output: impl Write,
    observer: &mut dyn Observer,
    base: &Base,
) -> Result<Summary> {
    let total = layout.regions.iter().map(|r| r.len).sum();
    let entries = tensors(head, total).unwrap_or_default();
    let delta = base.delta(&entries);
    compress_with(head, layout, rest, output, observer, Some((base, &delta)))
}

fn compress_with(
    head: &[u8],
    layout: &Layout,
    rest: impl Read,
    output: impl Write,
    observer: &mut dyn Observer,
    delta: Option<(&Base, &Delta)>,
) -> Result<Summary> {
    let mut summary = Summary::new(layout.clone());
    let mut out = CountingWriter::new(output);
    let mut header = MAGIC.to_vec();
    header.extend_from_slice(&[VERSION, if delta.is_some() { DELTA } else { 0 }]);
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
    if let Some((_, delta)) = delta {
        delta.write(&mut header)?;
        summary.base = Some((delta.base, 0));
    }
    let crc = crc32fast::hash(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    out.write_all(&header)?;

    let profile = std::sync::Mutex::new(Profile::default());
    let scratch = Pool::<fields::Scratch>::default();
    let mut input = std::io::Cursor::new(head).chain(rest);
    let mut whole = crc32fast::Hasher::new();
    let mut done = 0u64;
    pipeline(
        layout,
        observer,
        |group, batch: &mut Packing| {
            timed(&profile, Stage::Read, || {
                batch.data.resize_with(group.len(), Vec::new);
                batch.masks.resize_with(group.len(), Vec::new);
                for ((c, buf), mask) in group.iter().zip(&mut batch.data).zip(&mut batch.masks) {
                    match delta {
                        Some((base, delta)) => base.mask(&delta.patches, c.offset, c.len, mask)?,
                        None => mask.clear(),
                    }
                    buf.resize(c.len as usize, 0);
                    input.read_exact(buf).map_err(|e| match e.kind() {
                        std::io::ErrorKind::UnexpectedEof => Error::InvalidSetting(
                            "the weight file is shorter than its header says (did it change \
                             while being read?)"
                                .into(),
                        ),
                        _ => Error::Io(e),
                    })?;
                }
                Ok(())
            })
        },
        |group, batch| {
            timed(&profile, Stage::ArithCode, || {
                batch.payloads.resize_with(group.len(), Vec::new);
                batch.other.resize_with(group.len(), Vec::new);
                batch.how.resize(group.len(), Against::Alone);
                group
                    .par_iter()
                    .zip(batch.data.par_iter_mut())
                    .zip(batch.masks.par_iter())
                    .zip(batch.payloads.par_iter_mut())
                    .zip(batch.other.par_iter_mut().zip(batch.how.par_iter_mut()))
                    .for_each(|((((c, d), m), p), (other, how))| {
                        let (kind, row, first) = (c.kind, c.row, c.first);
                        scratch.with(|s| fields::encode(kind, row, first, d, LANES, p, s));
                        *how = Against::Alone;
                        if m.is_empty() {
                            return;
                        }
                        let mut keep = |other: &mut Vec<u8>, way: Against| {
                            if other.len() < p.len() {
                                std::mem::swap(p, other);
                                *how = way;
                            }
                        };
                        if matches!(kind, Kind::F32 | Kind::F16 | Kind::Bf16) {
                            scratch.with(|s| {
                                fields::encode_with_base(kind, row, first, d, m, LANES, other, s)
                            });
                            keep(other, Against::Context);
                        }
                        // As the XOR with the base (the data stays the original, for the CRCs).
                        delta::apply(d, m);
                        scratch.with(|s| fields::encode(kind, row, first, d, LANES, other, s));
                        delta::apply(d, m);
                        keep(other, Against::Xor);
                    });
            })
        },
        |group, batch, observer| {
            timed(&profile, Stage::Write, || {
                let chunks = group.iter().zip(&batch.data).zip(&batch.payloads);
                for (((c, d), p), &how) in chunks.zip(&batch.how) {
                    whole.update(d);
                    observer.original_block(d);
                    let mut frame = Vec::with_capacity(16);
                    varint::write_u64(&mut frame, p.len() as u64)?;
                    frame.extend_from_slice(&crc32fast::hash(d).to_le_bytes());
                    if let Some((_, patched)) = summary.base.as_mut() {
                        frame.push(how as u8);
                        *patched += if how == Against::Alone { 0 } else { c.len };
                    }
                    out.write_all(&frame)?;
                    out.write_all(p)?;
                    summary.count(c.kind, c.len, p.len() as u64);
                    done += c.len;
                }
                observer.progress(done);
                Ok(())
            })
        },
    )?;
    let mut extra = [0u8; 1];
    if input.read(&mut extra)? != 0 {
        return Err(Error::InvalidSetting(
            "the weight file is longer than its layout (did it change while being read?)".into(),
        ));
    }
    out.write_all(&whole.finalize().to_le_bytes())?;
    out.flush()?;
    summary.archive_len = out.count;
    summary.profile = profile.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(summary)
}

/// Values that tasks on the pool borrow one at a time and give back, so that as many exist as
/// tasks ran at once (at most the thread count), for as long as the pool lives: working memory
/// for one call, dropped with it (a thread-local would keep it for the thread's life).
struct Pool<T>(std::sync::Mutex<Vec<T>>);

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool(std::sync::Mutex::new(Vec::new()))
    }
}

impl<T: Default> Pool<T> {
    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut value = self.lock().pop().unwrap_or_default();
        let result = f(&mut value);
        self.lock().push(value);
        result
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<T>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Times `f` as `stage` in a profile that stages on two threads add to.
fn timed<T>(profile: &std::sync::Mutex<Profile>, stage: Stage, f: impl FnOnce() -> T) -> T {
    let start = std::time::Instant::now();
    let value = f();
    let elapsed = start.elapsed();
    profile
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .add(stage, elapsed);
    value
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

/// Reads the header: the file's description, what a delta archive adds, and the rANS lanes of
/// the archive's version.
fn read_header(r: &mut Reader<impl Read>) -> Result<(Layout, Option<Delta>, Lanes)> {
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
    let Some(lanes) = lanes_of(start[4]) else {
        return Err(Error::Corrupt(format!(
            "tensor archive version {} is not known to this release (it reads versions 1 to \
             {VERSION}); a newer llmzip wrote it: decompress it with that release",
            start[4]
        )));
    };
    if start[5] & !DELTA != 0 {
        return Err(Error::Corrupt(
            "unknown flags in the tensor archive (a newer llmzip wrote it?)".into(),
        ));
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
    let delta = if start[5] & DELTA != 0 {
        Some(Delta::read(r, &mut header, total)?)
    } else {
        None
    };
    let mut crc = [0u8; 4];
    r.exact(&mut crc, "header")?;
    if u32::from_le_bytes(crc) != crc32fast::hash(&header) {
        return Err(Error::Corrupt(
            "the tensor archive's header is damaged".into(),
        ));
    }
    Ok((Layout { container, regions }, delta, lanes))
}

/// Reads only a tensor archive's header: the file's description (its length is the sum of the
/// regions).
pub fn read_layout(input: impl Read) -> Result<Layout> {
    read_header(&mut Reader { input, read: 0 }).map(|(layout, ..)| layout)
}

/// The base a delta archive needs, checked against the one given: an error that says what to
/// do when none is given or it is another file.
fn require_base<'a>(delta: Option<&Delta>, base: Option<&'a Base>) -> Result<Option<&'a Base>> {
    let Some(delta) = delta else {
        return Ok(None);
    };
    let Some(base) = base else {
        return Err(Error::InvalidSetting(format!(
            "this archive stores a fine-tune as its difference from a base file (SHA-256 {}, \
             {} bytes): decompress it with --base BASE",
            delta.base.hex(),
            delta.base.len
        )));
    };
    base.check(delta)?;
    Ok(Some(base))
}

/// Decompresses a tensor archive into `output`. Only chunks whose CRC matched are written.
pub fn decompress(
    input: impl Read,
    output: impl Write,
    observer: &mut dyn Observer,
) -> Result<Summary> {
    decompress_with_base(input, output, observer, None)
}

/// [`decompress`] of an archive that may be a delta against `base` ([`compress_delta`]): a
/// delta archive needs its base, checked by digest before anything is decoded.
pub fn decompress_with_base(
    input: impl Read,
    mut output: impl Write,
    observer: &mut dyn Observer,
    base: Option<&Base>,
) -> Result<Summary> {
    walk(input, Some(&mut output), observer, true, base)
}

/// [`decompress_with_base`] of one member of a longer archive: stops at its trailer.
pub(crate) fn decompress_member(
    input: impl Read,
    mut output: impl Write,
    observer: &mut dyn Observer,
    base: Option<&Base>,
) -> Result<Summary> {
    walk(input, Some(&mut output), observer, false, base)
}

/// Reads a tensor archive's structure and sizes without decoding (no base needed).
pub fn inspect(input: impl Read) -> Result<Summary> {
    walk(
        input,
        None::<&mut std::io::Sink>,
        &mut crate::Silent,
        true,
        None,
    )
}

/// [`inspect`] of one member of a longer archive: stops at its trailer.
pub(crate) fn inspect_member(input: impl Read) -> Result<Summary> {
    walk(
        input,
        None::<&mut std::io::Sink>,
        &mut crate::Silent,
        false,
        None,
    )
}

/// A batch being decoded: each chunk's stored CRC, payload and XOR mask (empty where the chunk
/// was coded alone), and what it decoded into.
#[derive(Default)]
struct Unpacking {
    frames: Vec<(u32, Vec<u8>)>,
    /// How each chunk was coded against the base (delta archives).
    how: Vec<Against>,
    masks: Vec<Vec<u8>>,
    decoded: Vec<(Vec<u8>, Result<()>)>,
}

impl Unpacking {
    /// Reads the frames of `group`'s chunks, and their masks from the base of a delta.
    /// `delta`: the archive's patches (`None` for an archive that is no delta), with the base
    /// when decoding.
    fn read(
        &mut self,
        group: &[Chunk],
        r: &mut Reader<impl Read>,
        delta: Option<(Option<&Base>, &Delta)>,
    ) -> Result<()> {
        self.frames.resize_with(group.len(), Default::default);
        self.how.resize(group.len(), Against::Alone);
        self.masks.resize_with(group.len(), Vec::new);
        let frames = group.iter().zip(&mut self.frames).zip(&mut self.how);
        for ((c, (crc, payload)), how) in frames {
            let len = varint::read_bounded(r, "chunk length", c.len + 1)?;
            let mut word = [0u8; 4];
            r.exact(&mut word, "chunk")?;
            *crc = u32::from_le_bytes(word);
            *how = Against::Alone;
            if let Some((_, delta)) = delta {
                let mut flag = [0u8];
                r.exact(&mut flag, "chunk")?;
                let patched = delta.touches(c.offset, c.len);
                *how = match flag[0] {
                    0 => Against::Alone,
                    1 if patched => Against::Xor,
                    2 if patched => Against::Context,
                    _ => return Err(Error::Corrupt("a chunk's delta flag is damaged".into())),
                };
            }
            payload.resize(len as usize, 0);
            r.exact(payload, "chunk")?;
        }
        for ((c, mask), &how) in group.iter().zip(&mut self.masks).zip(&self.how) {
            match delta {
                Some((Some(base), delta)) if how != Against::Alone => {
                    base.mask(&delta.patches, c.offset, c.len, mask)?
                }
                _ => mask.clear(),
            }
        }
        Ok(())
    }

    /// Decodes and checks every chunk of `group` in parallel; each result is kept with its
    /// chunk, to be reported in file order.
    fn decode(&mut self, group: &[Chunk], lanes: Lanes) {
        self.decoded
            .resize_with(group.len(), || (Vec::new(), Ok(())));
        group
            .par_iter()
            .zip(self.frames.par_iter())
            .zip(self.masks.par_iter().zip(self.how.par_iter()))
            .zip(self.decoded.par_iter_mut())
            .for_each(|(((c, (crc, p)), (mask, &how)), (data, result))| {
                let (kind, row, first, len) = (c.kind, c.row, c.first, c.len as usize);
                let decoded = match how {
                    Against::Context => {
                        fields::decode_with_base(kind, row, first, p, mask, lanes, len, data)
                    }
                    _ => fields::decode(kind, row, first, p, lanes, len, data),
                };
                *result = decoded.and_then(|()| {
                    if how == Against::Xor {
                        delta::apply(data, mask);
                    }
                    if crate::format::ENFORCE_CHECKSUMS && crc32fast::hash(data) != *crc {
                        return Err(Error::Corrupt(format!(
                            "a {} chunk's checksum does not match",
                            c.kind.name()
                        )));
                    }
                    Ok(())
                });
            });
    }
}

/// Checks the trailer: the whole original's CRC (when it was decoded), and, for a whole file
/// (`alone`), that nothing follows. A member of a longer archive leaves what follows to the
/// orchestrator (`session.rs`).
fn finish_reading(r: &mut Reader<impl Read>, whole: Option<u32>, alone: bool) -> Result<()> {
    let mut crc = [0u8; 4];
    r.exact(&mut crc, "trailer")?;
    if let Some(whole) = whole {
        if crate::format::ENFORCE_CHECKSUMS && u32::from_le_bytes(crc) != whole {
            return Err(Error::Corrupt(
                "the original's checksum does not match".into(),
            ));
        }
    }
    if alone {
        let mut extra = [0u8; 1];
        if r.read(&mut extra)? != 0 {
            return Err(Error::Corrupt(
                "data after the end of the tensor archive".into(),
            ));
        }
    }
    Ok(())
}

/// Decompresses a tensor archive read from `R`: a `Read` of the original bytes, decoding a batch
/// of chunks at a time in parallel (memory: one batch). A chunk's bytes are returned only once
/// its CRC matched, and the end of stream (`Ok(0)`) only once the whole original's did.
///
/// [`decompress`] does the same into a `Write`, faster: it reads and writes while it decodes.
/// [`crate::Decoder`] reads both kinds of archive and uses this one for tensor archives.
pub struct Decoder<R: Read> {
    r: Reader<R>,
    layout: Layout,
    lanes: Lanes,
    /// A delta archive's base (checked: present when decoding) and patches.
    delta: Option<(Option<std::sync::Arc<Base>>, Delta)>,
    cursor: Cursor,
    group: Vec<Chunk>,
    batch: Unpacking,
    /// The chunk of `batch` being served, and how much of it was.
    serving: usize,
    served: usize,
    whole: crc32fast::Hasher,
    done: bool,
    /// Nothing may follow the trailer (false for a member of a longer archive).
    alone: bool,
    /// Set by the first error: every later read fails too, never serving what failed.
    failed: bool,
}

impl<R: Read> Decoder<R> {
    /// The input, positioned after what was read (after the trailer once a read returned the
    /// end): where a following member starts.
    pub fn into_inner(self) -> R {
        self.r.input
    }

    /// Reads and checks the archive's header.
    pub fn new(input: R) -> Result<Self> {
        Decoder::open(input, true, None)
    }

    /// [`Decoder::new`] for an archive that may be a delta against `base`
    /// ([`compress_delta`]).
    pub fn with_base(input: R, base: std::sync::Arc<Base>) -> Result<Self> {
        Decoder::open(input, true, Some(base))
    }

    /// A decoder of one member of a longer archive, which may be a delta against `base`: it
    /// stops at the member's trailer.
    pub(crate) fn member_with_base(input: R, base: Option<std::sync::Arc<Base>>) -> Result<Self> {
        Decoder::open(input, false, base)
    }

    fn open(input: R, alone: bool, base: Option<std::sync::Arc<Base>>) -> Result<Self> {
        let mut r = Reader { input, read: 0 };
        let (layout, delta, lanes) = read_header(&mut r)?;
        require_base(delta.as_ref(), base.as_deref())?;
        Ok(Decoder {
            r,
            layout,
            lanes,
            delta: delta.map(|d| (base, d)),
            cursor: Cursor::default(),
            group: Vec::new(),
            batch: Unpacking::default(),
            serving: 0,
            served: 0,
            whole: crc32fast::Hasher::new(),
            done: false,
            alone,
            failed: false,
        })
    }

    /// The file's description, from the header.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Makes the next verified bytes available; false at the verified end.
    fn fill(&mut self) -> Result<bool> {
        loop {
            if self.done {
                return Ok(false);
            }
            if let Some((data, result)) = self.batch.decoded.get_mut(self.serving) {
                if self.served == 0 {
                    std::mem::replace(result, Ok(()))?;
                    self.whole.update(data);
                }
                if self.served < data.len() {
                    return Ok(true);
                }
                self.serving += 1;
                self.served = 0;
                continue;
            }
            self.group = self.cursor.batch(&self.layout);
            self.batch.decoded.clear();
            (self.serving, self.served) = (0, 0);
            if self.group.is_empty() {
                finish_reading(&mut self.r, Some(self.whole.clone().finalize()), self.alone)?;
                self.done = true;
                return Ok(false);
            }
            let delta = self.delta.as_ref().map(|(b, d)| (b.as_deref(), d));
            self.batch.read(&self.group, &mut self.r, delta)?;
            self.batch.decode(&self.group, self.lanes);
        }
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.failed {
            return Err(std::io::Error::other(Error::Corrupt(
                "an earlier read of this tensor archive failed".into(),
            )));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        match self.fill() {
            Ok(true) => {}
            Ok(false) => return Ok(0),
            Err(e) => {
                self.failed = true;
                return Err(std::io::Error::other(e));
            }
        }
        let data = &self.batch.decoded[self.serving].0[self.served..];
        let n = buf.len().min(data.len());
        buf[..n].copy_from_slice(&data[..n]);
        self.served += n;
        Ok(n)
    }
}

fn walk(
    input: impl Read,
    mut output: Option<&mut impl Write>,
    observer: &mut dyn Observer,
    alone: bool,
    base: Option<&Base>,
) -> Result<Summary> {
    let mut r = Reader { input, read: 0 };
    let (layout, delta, lanes) = read_header(&mut r)?;
    let mut summary = Summary::new(layout.clone());
    if let Some(d) = &delta {
        summary.base = Some((d.base, 0));
    }
    let decoding = output.is_some();
    // Only decoding needs the base (inspecting reads the sizes).
    let base = match decoding {
        true => require_base(delta.as_ref(), base)?,
        false => None,
    };
    let delta = delta.as_ref().map(|d| (base, d));
    let profile = std::sync::Mutex::new(Profile::default());
    let mut whole = crc32fast::Hasher::new();
    let mut done = 0u64;
    pipeline(
        &layout,
        observer,
        |group, batch: &mut Unpacking| {
            timed(&profile, Stage::Read, || batch.read(group, &mut r, delta))
        },
        |group, batch| {
            if decoding {
                timed(&profile, Stage::ArithCode, || batch.decode(group, lanes));
            }
        },
        |group, batch, observer| {
            if let Some((_, against)) = summary.base.as_mut() {
                for (c, &how) in group.iter().zip(&batch.how) {
                    *against += if how == Against::Alone { 0 } else { c.len };
                }
            }
            let Some(out) = output.as_mut() else {
                for (c, (_, p)) in group.iter().zip(&batch.frames) {
                    summary.count(c.kind, c.len, p.len() as u64);
                }
                return Ok(());
            };
            timed(&profile, Stage::Write, || {
                for ((c, (_, p)), (data, result)) in
                    group.iter().zip(&batch.frames).zip(&mut batch.decoded)
                {
                    std::mem::replace(result, Ok(()))?;
                    whole.update(data);
                    out.write_all(data)?;
                    summary.count(c.kind, c.len, p.len() as u64);
                    done += c.len;
                }
                observer.progress(done);
                Ok(())
            })
        },
    )?;
    finish_reading(&mut r, decoding.then(|| whole.finalize()), alone)?;
    if let Some(out) = output {
        out.flush()?;
    }
    summary.archive_len = r.read;
    summary.profile = profile.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(summary)
}

#[cfg(test)]
pub(crate) mod tests;
