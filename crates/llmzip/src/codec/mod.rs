//! Compression and decompression of whole streams, block by block.
//!
//! Input is read in blocks of `schedule.block_size` bytes, so memory stays bounded whatever the
//! input size. Each block is tokenized, split into segments, and coded by stepping the model over
//! all segments in lockstep (`lockstep::run`); one range-coder stream per block carries the
//! symbols in step-major, row-minor order. A block whose coded form would not be smaller than the
//! original is stored verbatim, so incompressible data grows only by a few header bytes.
//!
//! Resources are bounded by the *decoder*: before a block is decoded, the memory its claimed
//! shape (rows, tokens, window, bytes) would cost the model is checked against [`Limits`], and
//! its payload against its checksum; the coder's check values and end-of-payload guard stop a
//! crafted stream within a few thousand symbols. The encoder applies the same limits and uses
//! fewer rows where a block would need more, so its archives decode within the default limits.

mod bitwise;
mod costs;
mod lockstep;
mod schedule;

use std::io::{Read, Write};

use crate::coder::{BlockDecoder, BlockEncoder};
use crate::format::{self, ArchiveReader, BlockHeader, Header, Trailer};
use crate::models::fast::Fast;
use crate::models::{self, LanguageModel};
use crate::observer::{check_cancel, Observer};
use crate::stats::{Profile, Stage};
use crate::{Error, Result};

pub use costs::{Costs, Tally, AFTER_SLIDE, POSITION_EDGES};
pub use lockstep::steps_since_slide;
pub use schedule::{segment_lengths, Schedule, ScheduleOptions, MIN_WINDOW};

/// Working memory a model may use beyond its weights, by default.
///
/// 4 GiB fits a laptop with 8 GB and the default schedules as they were measured: `gru-cm` on
/// 1 MiB blocks (estimated at most ~630 MiB), and SmolLM2 on the Canterbury texts (alice29: 41
/// rows of ~1,025 tokens, estimated 3.9 GB). Larger SmolLM2 blocks get fewer rows from the
/// encoder (a 1 MiB block with the 2,048-token window: about 12 instead of 64).
pub const DEFAULT_MEMORY: u64 = 4 << 30;

/// What the codec allows a model to use, checked before anything is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of working memory beyond the model's weights ([`LanguageModel::working_memory`]).
    pub memory: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: DEFAULT_MEMORY,
        }
    }
}

/// The most rows up to `wanted` whose batch fits `limits`, for a block of `tokens` tokens and
/// `block_len` bytes.
/// Memory a coded block needs beyond the model's working memory: its decoded tokens (`u32`
/// each, kept per row until the block is detokenized) and its bytes. Part of every block's memory
/// claim on both sides, so that the decoder checks it before allocating either from the header's
/// counts.
fn block_buffers(tokens: u64, block_len: u64) -> u64 {
    tokens.saturating_mul(4).saturating_add(block_len)
}

/// What a block of this shape may make either side allocate: the model's claim, the block's
/// own buffers, and each row's distribution quantized for the range coder (two `u32` per
/// symbol: `coder::Quantized`, one per row since the rows are quantized in parallel).
fn block_memory(
    model: &dyn LanguageModel,
    schedule: &Schedule,
    rows: u64,
    tokens: u64,
    block_len: u64,
) -> u64 {
    let shape = schedule.batch_shape(rows, tokens, block_len);
    let quantized = rows.saturating_mul(8 * model.info().vocab_size as u64);
    model
        .working_memory(&shape)
        .saturating_add(block_buffers(tokens, block_len))
        .saturating_add(quantized)
}

fn rows_within(
    model: &dyn LanguageModel,
    schedule: &Schedule,
    limits: &Limits,
    wanted: usize,
    tokens: usize,
    block_len: usize,
) -> Result<usize> {
    let cost = |rows: usize| {
        block_memory(
            model,
            schedule,
            rows as u64,
            tokens as u64,
            block_len as u64,
        )
    };
    (1..=wanted.max(1))
        .rev()
        .find(|&rows| cost(rows) <= limits.memory)
        .ok_or_else(|| Error::MemoryLimit {
            during: "compressing",
            needed: cost(1),
            limit: limits.memory,
            hint: "use a smaller --block-size or --window, or raise the limit with --memory \
                   (decompressing will then need the same --memory)"
                .into(),
        })
}

/// What a compression or decompression did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Bytes of original data.
    pub original_len: u64,
    /// Bytes of archive.
    pub archive_len: u64,
    /// Tokens coded through the model (blocks stored verbatim included: they were modelled too),
    /// and the bytes of fast blocks (one token each to `fast1`).
    pub tokens: u64,
    /// The model's ideal code length for those tokens, Σ -log2 p, in bits (compression only).
    pub ideal_bits: f64,
    /// The same, by where the tokens stood: position in segment, after a window slide
    /// (compression only).
    pub costs: Costs,
    /// Blocks coded through the model.
    pub coded_blocks: u64,
    /// Blocks stored verbatim.
    pub stored_blocks: u64,
    /// Blocks that looked binary, coded by the fast model instead of the archive's
    /// ([`BinaryBlocks::Fast`]).
    pub fast_blocks: u64,
    /// Time per stage.
    pub profile: Profile,
}

/// What a compressor does with a block that looks binary (not text: [`looks_binary`]).
///
/// Text models code binary data slowly (the default model at tens of KB/s, SmolLM2 at one)
/// and, having been trained on text, not much better than the fast model does at a
/// megabyte per second; a large binary file would take hours. So unless a model was asked for
/// by name, such blocks go to `fast1` ([`crate::models::fast`]) and say so in their header; the
/// decoder needs no setting to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BinaryBlocks {
    /// Code every block with the archive's model (what `-m MODEL` asks for).
    #[default]
    Model,
    /// Code blocks that look binary with the fast model.
    Fast,
}

/// Compresses `input` into `output` as one `.llmz` archive.
pub fn compress(
    input: &mut dyn Read,
    output: &mut dyn Write,
    model: &mut dyn LanguageModel,
    schedule: &Schedule,
    limits: &Limits,
    binary: BinaryBlocks,
    observer: &mut dyn Observer,
) -> Result<Summary> {
    let mut writer = ArchiveWriter::new(output, model, schedule, limits)?;
    writer.binary_blocks(binary);
    let mut block = Vec::new();
    loop {
        let got = writer.summary.profile.time(Stage::Read, || {
            read_block(input, schedule.block_size as usize, &mut block)
        })?;
        if got == 0 {
            break;
        }
        writer.write_block(&block, model, observer)?;
    }
    Ok(writer.finish()?.1)
}

/// Writes an archive block by block: the engine behind [`compress`] and the streaming
/// [`Encoder`](crate::Encoder). The caller cuts the input into blocks of the schedule's block
/// size (only the last may be shorter) and passes the same model every time.
pub struct ArchiveWriter<W: Write> {
    out: CountingWriter<W>,
    schedule: Schedule,
    limits: Limits,
    crc_all: crc32fast::Hasher,
    summary: Summary,
    /// The fast model, for blocks that look binary ([`BinaryBlocks::Fast`]).
    fast: Option<Fast>,
}

impl<W: Write> ArchiveWriter<W> {
    /// Checks the schedule against the model and writes the header.
    pub fn new(
        output: W,
        model: &dyn LanguageModel,
        schedule: &Schedule,
        limits: &Limits,
    ) -> Result<Self> {
        schedule.validate()?;
        schedule.check_model(model.info())?;
        let mut writer = ArchiveWriter {
            out: CountingWriter::new(output),
            schedule: *schedule,
            limits: *limits,
            crc_all: crc32fast::Hasher::new(),
            summary: Summary::default(),
            fast: None,
        };
        let info = model.info();
        let header = Header {
            writer: format::WRITER.to_string(),
            model_name: info.name.clone(),
            fingerprint: info.fingerprint,
            tokenizer: model.tokenizer().id().to_string(),
            backend: info.backend.clone(),
            schedule: *schedule,
        };
        let out = &mut writer.out;
        writer
            .summary
            .profile
            .time(Stage::Write, || header.write(out))?;
        Ok(writer)
    }

    /// The schedule the archive records.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Sets what happens to blocks that look binary from now on (default: the archive's model
    /// codes them).
    pub fn binary_blocks(&mut self, binary: BinaryBlocks) {
        self.fast = match binary {
            BinaryBlocks::Model => None,
            BinaryBlocks::Fast => self.fast.take().or_else(|| Some(Fast::new())),
        };
    }

    /// Codes one block (1 ..= block size bytes) and writes it.
    pub fn write_block(
        &mut self,
        block: &[u8],
        model: &mut dyn LanguageModel,
        observer: &mut dyn Observer,
    ) -> Result<()> {
        if block.is_empty() || block.len() as u64 > self.schedule.block_size {
            return Err(Error::InvalidSetting(format!(
                "a block must hold 1 to {} bytes, not {}",
                self.schedule.block_size,
                block.len()
            )));
        }
        let schedule = self.schedule;
        let summary = &mut self.summary;
        observer.original_block(block);
        self.crc_all.update(block);
        let crc = crc32fast::hash(block);
        let start = summary.original_len;
        let block_len = block.len() as u64;

        // A model coded bit by bit reads the block's bytes themselves: its tokens would only be
        // a copy four times the block's size (256 MiB for a 64 MiB block). So does the fast
        // model, which takes the blocks that look binary when asked to.
        let bitwise = model.bits().is_some();
        let fast = match self.fast.as_mut() {
            // Only within the memory limit; else the model codes the block, as it would have.
            Some(fast)
                if !bitwise
                    && looks_binary(block)
                    && fast_claim(fast, model, &schedule, block_len) <= self.limits.memory =>
            {
                Some(fast)
            }
            _ => None,
        };
        let tokens = summary.profile.time(Stage::Tokenize, || -> Result<_> {
            if looks_incompressible(block) {
                return Ok(None);
            }
            if bitwise || fast.is_some() {
                return Ok(Some(Vec::new()));
            }
            // A tokenizer that cannot represent this block (or not exactly) gets it stored.
            let Ok(tokens) = model.tokenizer().encode(block) else {
                return Ok(None);
            };
            let mut check = Vec::with_capacity(block.len());
            let exact = model.tokenizer().decode(&tokens, &mut check).is_ok() && check == block;
            let bounded = tokens.len() as u64 <= format::MAX_TOKENS_PER_BYTE * block.len() as u64;
            Ok((exact && bounded).then_some(tokens))
        })?;

        let coded = match (tokens, fast) {
            (Some(_), Some(fast)) => {
                let payload = bits_of(fast, block, &schedule, &self.limits, summary, observer);
                fast.release();
                let payload = payload?;
                (payload.len() < block.len()).then_some(Coding::Fast(payload))
            }
            (Some(_), None) if bitwise => {
                let payload = bits_of(model, block, &schedule, &self.limits, summary, observer)?;
                (payload.len() < block.len()).then_some(Coding::Model(block_len, 1, payload))
            }
            (Some(tokens), None) if !tokens.is_empty() => {
                let segments = rows_within(
                    model,
                    &schedule,
                    &self.limits,
                    schedule.segments_for(tokens.len()),
                    tokens.len(),
                    block.len(),
                )?;
                let lengths = segment_lengths(tokens.len(), segments);
                let offsets = offsets(&lengths);
                let mut encoder = BlockEncoder::new();
                let total = tokens.len() as u64;
                lockstep::run(
                    model,
                    &lengths,
                    schedule.window as usize,
                    &mut summary.profile,
                    |done| block_progress(observer, start, block_len, done as u64, total),
                    |row, t, since_slide, probs, quantized| {
                        let token = tokens[offsets[row] + t];
                        let bits = encoder.encode_quantized(probs, quantized, token)?;
                        summary.costs.add(t, since_slide, bits);
                        Ok(token)
                    },
                )?;
                summary.tokens += total;
                summary.ideal_bits += encoder.ideal_bits();
                let payload = summary.profile.time(Stage::ArithCode, || encoder.finish());
                (payload.len() < block.len()).then_some(Coding::Model(total, segments, payload))
            }
            _ => None,
        };

        let out = &mut self.out;
        summary.profile.time(Stage::Write, || -> Result<()> {
            match coded {
                Some(Coding::Model(tokens, segments, payload)) => {
                    BlockHeader::Coded {
                        len: block_len,
                        tokens,
                        segments: segments as u64,
                        payload_len: payload.len() as u64,
                        payload_crc: crc32fast::hash(&payload),
                        crc,
                    }
                    .write(out)?;
                    out.write_all(&payload)?;
                    summary.coded_blocks += 1;
                }
                Some(Coding::Fast(payload)) => {
                    BlockHeader::Fast {
                        len: block_len,
                        payload_len: payload.len() as u64,
                        payload_crc: crc32fast::hash(&payload),
                        crc,
                    }
                    .write(out)?;
                    out.write_all(&payload)?;
                    summary.fast_blocks += 1;
                }
                None => {
                    BlockHeader::Stored {
                        len: block_len,
                        crc,
                    }
                    .write(out)?;
                    out.write_all(block)?;
                    summary.stored_blocks += 1;
                }
            }
            Ok(())
        })?;
        summary.original_len += block_len;
        observer.progress(summary.original_len);
        Ok(())
    }

    /// Writes the end marker and trailer, flushes, and returns the output and what was done.
    pub fn finish(mut self) -> Result<(W, Summary)> {
        let out = &mut self.out;
        let trailer = Trailer {
            original_len: self.summary.original_len,
            crc: self.crc_all.clone().finalize(),
        };
        self.summary.profile.time(Stage::Write, || -> Result<()> {
            BlockHeader::End.write(out)?;
            trailer.write(out)?;
            out.flush()?;
            Ok(())
        })?;
        self.summary.archive_len = self.out.count;
        Ok((self.out.inner, self.summary))
    }
}

/// How a block was coded, on its way to being written.
enum Coding {
    /// By the archive's model: tokens, lockstep rows, range-coder stream.
    Model(u64, usize, Vec<u8>),
    /// By the fast model: a binary-coder stream.
    Fast(Vec<u8>),
}

/// Codes a block bit by bit with `model` (one that predicts bits, [`LanguageModel::bits`]) in
/// one stream (codec::bitwise); its memory claim is that of one row.
fn bits_of(
    model: &mut dyn LanguageModel,
    block: &[u8],
    schedule: &Schedule,
    limits: &Limits,
    summary: &mut Summary,
    observer: &mut dyn Observer,
) -> Result<Vec<u8>> {
    let start = summary.original_len;
    rows_within(model, schedule, limits, 1, block.len(), block.len())?;
    summary
        .profile
        .time(Stage::ModelInfer, || model.start_block(1))?;
    let bits = model.bits().expect("a model that predicts bits");
    let (payload, ideal) = summary.profile.time(Stage::ModelInfer, || {
        bitwise::encode(bits, block, |done| bitwise::report(observer, start, done))
    })?;
    summary.tokens += block.len() as u64;
    summary.ideal_bits += ideal;
    Ok(payload)
}

/// What a fast block may make either side allocate: the fast model's claim for it, plus the
/// archive's model's for one row of it, as that model keeps its tables between blocks (the
/// fast model's are freed after each fast block).
fn fast_claim(fast: &Fast, model: &dyn LanguageModel, schedule: &Schedule, block_len: u64) -> u64 {
    block_memory(fast, schedule, 1, block_len, block_len)
        .saturating_add(block_memory(model, schedule, 1, block_len, block_len))
}

/// Refuses a block whose memory claim is beyond the limit, before anything is allocated.
fn within(needed: u64, limits: &Limits) -> Result<()> {
    if needed > limits.memory {
        return Err(Error::MemoryLimit {
            during: "decoding this archive",
            needed,
            limit: limits.memory,
            hint: format!(
                "if you trust the archive, allow it with --memory {}M",
                needed.div_ceil(1 << 20)
            ),
        });
    }
    Ok(())
}

/// Refuses a damaged payload before any model time is spent on it.
fn check_payload(payload: &[u8], crc: u32) -> Result<()> {
    if crc32fast::hash(payload) != crc && format::ENFORCE_CHECKSUMS {
        return Err(Error::Corrupt(
            "a block's coded data does not match its checksum".into(),
        ));
    }
    Ok(())
}

/// Decodes a block of `len` bytes coded by [`bits_of`] with the same model into `block`.
fn bits_back(
    model: &mut dyn LanguageModel,
    payload: &[u8],
    len: u64,
    block: &mut Vec<u8>,
    summary: &mut Summary,
    observer: &mut dyn Observer,
) -> Result<()> {
    let start = summary.original_len;
    summary
        .profile
        .time(Stage::ModelInfer, || model.start_block(1))?;
    let bits = model.bits().expect("a model that predicts bits");
    summary.profile.time(Stage::ModelInfer, || {
        bitwise::decode(bits, payload, len as usize, block, |done| {
            bitwise::report(observer, start, done)
        })
    })?;
    summary.tokens += len;
    Ok(())
}

/// Reads an archive: first the header (so the caller can pick the model it names), then the data.
pub struct Decompressor<R> {
    reader: ArchiveReader<R>,
    /// The fast model, made when the first block coded by it comes.
    fast: Option<Fast>,
    model_checked: bool,
    finished: bool,
    payload: Vec<u8>,
    crc_all: crc32fast::Hasher,
    summary: Summary,
}

impl<R: Read> Decompressor<R> {
    /// Reads and validates the header.
    pub fn new(input: R) -> Result<Self> {
        Ok(Decompressor {
            reader: ArchiveReader::new(input)?,
            fast: None,
            model_checked: false,
            finished: false,
            payload: Vec::new(),
            crc_all: crc32fast::Hasher::new(),
            summary: Summary::default(),
        })
    }

    /// The archive header (read by [`Decompressor::new`]).
    pub fn header(&self) -> &Header {
        self.reader.header()
    }

    /// Refuses a model or backend that cannot reproduce the archive's probabilities.
    pub fn check_model(&self, model: &dyn LanguageModel) -> Result<()> {
        let info = model.info();
        let h = self.header();
        if info.fingerprint != h.fingerprint {
            return Err(Error::ModelMismatch {
                needed_name: h.model_name.clone(),
                needed_fingerprint: h.fingerprint,
                given_name: info.name.clone(),
                given_fingerprint: info.fingerprint,
            });
        }
        if model.tokenizer().id() != h.tokenizer {
            return Err(Error::TokenizerMismatch {
                needed: h.tokenizer.clone(),
                given: model.tokenizer().id().to_string(),
            });
        }
        let same_kind =
            info.backend.device == h.backend.device && info.backend.dtype == h.backend.dtype;
        let same_platform = !h.backend.must_match_exactly() || info.backend == h.backend;
        if !same_kind || !same_platform {
            let hint = if !same_kind {
                "run with --device/--dtype matching the archive"
            } else {
                "decompress it on the same GPU model with the same driver and CUDA libraries \
                 (GPU rounding depends on all three)"
            };
            return Err(Error::BackendMismatch {
                needed: h.backend.to_string(),
                given: info.backend.to_string(),
                hint: hint.into(),
            });
        }
        h.schedule.check_model(info)
    }

    /// Decodes every block into `output`. A block reaches `output` only after its checksum has
    /// been verified, so a corrupt archive never yields unverified bytes.
    pub fn run(
        mut self,
        output: &mut dyn Write,
        model: &mut dyn LanguageModel,
        limits: &Limits,
        observer: &mut dyn Observer,
    ) -> Result<Summary> {
        let mut block = Vec::new();
        while self.next_block(model, limits, observer, &mut block)? {
            self.summary
                .profile
                .time(Stage::Write, || output.write_all(&block))?;
        }
        self.summary.profile.time(Stage::Write, || output.flush())?;
        Ok(self.summary)
    }

    /// Decodes the next block into `block` (replacing its contents) and returns `true`, or
    /// checks the trailer and returns `false` at the end of the archive. The block is verified
    /// against its checksum before it is returned. Pass the same model every time: the first
    /// call checks that it is the archive's.
    pub fn next_block(
        &mut self,
        model: &mut dyn LanguageModel,
        limits: &Limits,
        observer: &mut dyn Observer,
        block: &mut Vec<u8>,
    ) -> Result<bool> {
        if self.finished {
            return Ok(false);
        }
        if !self.model_checked {
            self.check_model(model)?;
            self.model_checked = true;
        }
        let schedule = self.header().schedule;
        let reader = &mut self.reader;
        let summary = &mut self.summary;
        let header = summary.profile.time(Stage::Read, || reader.next_block())?;
        let coded = matches!(header, Some(BlockHeader::Coded { .. }));
        let (len, crc) = match header {
            None => {
                let trailer = *reader.trailer().expect("read at the end");
                let crc_ok =
                    trailer.crc == self.crc_all.clone().finalize() || !format::ENFORCE_CHECKSUMS;
                if !crc_ok {
                    // Every block passed its own check: no rounding can cause this.
                    return Err(Error::Corrupt(
                        "the checksum of the whole file does not match".into(),
                    ));
                }
                self.summary.archive_len = self.reader.bytes_read();
                self.finished = true;
                return Ok(false);
            }
            Some(BlockHeader::End) => unreachable!("the reader never returns the end marker"),
            Some(BlockHeader::Stored { len, crc }) => {
                summary
                    .profile
                    .time(Stage::Read, || reader.read_payload(block))?;
                summary.stored_blocks += 1;
                (len, crc)
            }
            Some(BlockHeader::Fast {
                len,
                payload_crc,
                crc,
                ..
            }) => {
                // Any archive may hold such blocks: the fast model needs no weights and no
                // setting, and its arithmetic is integers (the same on every machine).
                let fast = self.fast.get_or_insert_with(Fast::new);
                within(fast_claim(fast, model, &schedule, len), limits)?;
                let payload = &mut self.payload;
                summary
                    .profile
                    .time(Stage::Read, || reader.read_payload(payload))?;
                check_payload(payload, payload_crc)?;
                let decoded = bits_back(fast, payload, len, block, summary, observer);
                fast.release();
                decoded?;
                summary.fast_blocks += 1;
                // A mismatch here is damage: no machine-dependent arithmetic ran.
                return self.finish_block(block, len, crc, false, observer);
            }
            Some(BlockHeader::Coded {
                len,
                tokens,
                segments,
                payload_crc,
                crc,
                ..
            }) => {
                let needed = block_memory(model, &schedule, segments, tokens, len);
                within(needed, limits)?;
                let payload = &mut self.payload;
                summary
                    .profile
                    .time(Stage::Read, || reader.read_payload(payload))?;
                check_payload(payload, payload_crc)?;
                if model.bits().is_some() {
                    if segments != 1 || tokens != len {
                        return Err(Error::Corrupt(format!(
                            "a block of {} claims {segments} segments of {tokens} tokens for \
                             {len} bytes; this model codes one segment of one token per byte",
                            reader.header().model_name
                        )));
                    }
                    bits_back(model, payload, len, block, summary, observer)?;
                    summary.coded_blocks += 1;
                    return self.finish_block(block, len, crc, true, observer);
                }
                let lengths = segment_lengths(tokens as usize, segments as usize);
                // Sized from the header's counts, which the memory claim above has checked.
                let mut rows: Vec<Vec<u32>> =
                    lengths.iter().map(|&n| Vec::with_capacity(n)).collect();
                let mut decoder = BlockDecoder::new(payload)?;
                let start = summary.original_len;
                let vocab = model.info().vocab_size as u32;
                // The coded data is intact (checked above): a symbol the coder cannot place
                // means the model computed other probabilities than the encoder's.
                let replayed = |e: Error| match e {
                    Error::Corrupt(what) => corruption(reader.header(), &what),
                    other => other,
                };
                lockstep::run(
                    model,
                    &lengths,
                    schedule.window as usize,
                    &mut summary.profile,
                    |done| block_progress(observer, start, len, done as u64, tokens),
                    |row, _t, _since_slide, _probs, quantized| {
                        let token = decoder.decode_quantized(quantized)?;
                        debug_assert!(token < vocab);
                        rows[row].push(token);
                        Ok(token)
                    },
                )
                .map_err(replayed)?;
                summary.tokens += tokens;
                block.clear();
                // As one sequence (a multi-token escape may straddle rows), without copying it.
                summary
                    .profile
                    .time(Stage::Tokenize, || {
                        block.reserve_exact(len as usize);
                        model.tokenizer().decode_parts(&rows, block)
                    })
                    .map_err(replayed)?;
                summary.coded_blocks += 1;
                (len, crc)
            }
        };
        self.finish_block(block, len, crc, coded, observer)
    }

    /// Checks a decoded block against its length and checksum, and accounts for it.
    fn finish_block(
        &mut self,
        block: &[u8],
        len: u64,
        crc: u32,
        coded: bool,
        observer: &mut dyn Observer,
    ) -> Result<bool> {
        let crc_ok = crc32fast::hash(block) == crc || !format::ENFORCE_CHECKSUMS;
        if block.len() as u64 != len || !crc_ok {
            let what = "a block's checksum does not match";
            return Err(if coded {
                corruption(self.header(), what)
            } else {
                // A stored block: no model ran.
                Error::Corrupt(what.into())
            });
        }
        observer.original_block(block);
        self.crc_all.update(block);
        self.summary.original_len += len;
        observer.progress(self.summary.original_len);
        Ok(true)
    }

    /// What decoding has done so far (complete once [`next_block`](Self::next_block) returned
    /// `false`).
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// The input, positioned after what was read (after the trailer once
    /// [`next_block`](Self::next_block) returned `false`): where a following member starts.
    pub fn into_inner(self) -> R {
        self.reader.into_inner()
    }
}

/// The error for a failed check of data a model decoded: corruption, unless the archive is
/// machine-bound ([`models::archive_portability`]) and so may simply come from a CPU that rounds
/// differently.
fn corruption(header: &Header, what: &str) -> Error {
    let backend = &header.backend;
    match models::archive_portability(header) {
        models::Portability::MachineBound if header.tokenizer == crate::tokenization::BYTES_ID => {
            Error::MachineBound(format!(
                "{what}: this archive is machine-bound: it was written by {} with a model of \
                 your own ({}), whose arithmetic that release took from the machine that made \
                 it ({}: candle's cache-sized blocks for layers over 512 wide, that machine's C \
                 library without portable activations), and which llmzip 0.2.0 computes with \
                 portable kernels instead; or the file is damaged. Decompress it with {} on the \
                 machine that made it (docs/format.md, \"Portability\")",
                header.writer, header.model_name, backend.platform, header.writer
            ))
        }
        models::Portability::MachineBound => Error::MachineBound(format!(
            "{what}: this archive is machine-bound: its model ({}, {}) was computed by \
             kernels whose rounding depends on the CPU that runs them (candle's cache-sized \
             blocks and SIMD code, or the C library of the machine that made it), and this \
             machine ({}) rounds differently from the one that made it ({}), or the file is \
             damaged. Decompress it on the machine that made it, with {} or a later release; \
             archives made by llmzip 0.2.0 or later with the CPU defaults are portable \
             (docs/format.md, \"Portability\")",
            header.model_name,
            backend.dtype,
            models::platform(),
            backend.platform,
            header.writer
        )),
        models::Portability::AnyCpu => Error::Corrupt(format!(
            "{what} (the model's arithmetic is the same on every CPU, so the file is damaged, or \
             this is a bug in llmzip: please report it if the file is intact)"
        )),
        models::Portability::ExactPlatform => Error::Corrupt(format!(
            "{what} (this GPU archive was decoded on the platform it names, so the file is \
             damaged, or the GPU computed differently this time)"
        )),
    }
}

/// Facts about an archive gathered without a model.
#[derive(Debug, Clone)]
pub struct ArchiveInfo {
    /// The archive header.
    pub header: Header,
    /// Bytes of archive.
    pub archive_len: u64,
    /// Bytes of original data, from the blocks.
    pub original_len: u64,
    /// Blocks coded through a model.
    pub coded_blocks: u64,
    /// Blocks stored verbatim.
    pub stored_blocks: u64,
    /// Blocks coded by the fast model because they looked binary.
    pub fast_blocks: u64,
    /// Tokens of the coded blocks, and the bytes of fast blocks (one token each to `fast1`).
    pub tokens: u64,
    /// Bytes of coded payload (coded and fast blocks) plus stored bytes.
    pub payload_bytes: u64,
    /// CRC-32 of the whole original, from the trailer.
    pub crc: u32,
}

/// Walks an archive's structure (header, block headers, trailer) without decoding.
pub fn inspect(input: impl Read) -> Result<ArchiveInfo> {
    let mut reader = ArchiveReader::new(input)?;
    let mut info = ArchiveInfo {
        header: reader.header().clone(),
        archive_len: 0,
        original_len: 0,
        coded_blocks: 0,
        stored_blocks: 0,
        fast_blocks: 0,
        tokens: 0,
        payload_bytes: 0,
        crc: 0,
    };
    while let Some(block) = reader.next_block()? {
        let (len, payload) = match block {
            BlockHeader::End => unreachable!("the reader never returns the end marker"),
            BlockHeader::Stored { len, .. } => {
                info.stored_blocks += 1;
                (len, len)
            }
            BlockHeader::Coded {
                len,
                tokens,
                payload_len,
                ..
            } => {
                info.coded_blocks += 1;
                info.tokens += tokens;
                (len, payload_len)
            }
            BlockHeader::Fast {
                len, payload_len, ..
            } => {
                info.fast_blocks += 1;
                info.tokens += len;
                (len, payload_len)
            }
        };
        reader.skip_payload()?;
        info.original_len += len;
        info.payload_bytes += payload;
    }
    info.crc = reader.trailer().expect("read at the end").crc;
    info.archive_len = reader.bytes_read();
    Ok(info)
}

/// True for blocks that are not text: more than 1 in 256 of their bytes are control characters
/// (NUL to backspace, vertical tab, shift out to unit separator but escape, delete). Text in any
/// ASCII-compatible encoding (UTF-8, Latin-N, CRLF or not, with form feeds or colour escapes) has
/// next to none; executables, images, databases and arrays of numbers have many. Decided from
/// the block alone, as the block header then says what was chosen.
pub(crate) fn looks_binary(block: &[u8]) -> bool {
    let control = block
        .iter()
        .filter(|&&b| matches!(b, 0..=8 | 0x0B | 0x0E..=0x1A | 0x1C..=0x1F | 0x7F))
        .count();
    control * 256 > block.len()
}

/// True for blocks whose byte histogram is nearly flat (random, encrypted or already compressed
/// data). Such blocks are stored without running the model: no model does better on them, and a
/// stored block needs no model to decode, so this shortcut costs the decoder nothing to replay.
fn looks_incompressible(block: &[u8]) -> bool {
    if block.len() < 4096 {
        return false;
    }
    let mut counts = [0u64; 256];
    for &b in block {
        counts[b as usize] += 1;
    }
    let n = block.len() as f64;
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum();
    entropy > 7.9
}

/// Reports progress within a block (`done` of its `tokens` coded, the block starting at `start`
/// original bytes) and stops if the observer asks to.
fn block_progress(
    observer: &mut dyn Observer,
    start: u64,
    block_len: u64,
    done: u64,
    tokens: u64,
) -> Result<()> {
    check_cancel(observer)?;
    observer.progress(start + block_len * done / tokens.max(1));
    Ok(())
}

fn offsets(lengths: &[usize]) -> Vec<usize> {
    lengths
        .iter()
        .scan(0, |acc, &l| {
            let o = *acc;
            *acc += l;
            Some(o)
        })
        .collect()
}

/// Fills `buf` with up to `size` bytes, reading until the block is full or the input ends.
fn read_block(input: &mut dyn Read, size: usize, buf: &mut Vec<u8>) -> Result<usize> {
    buf.clear();
    Read::take(&mut *input, size as u64).read_to_end(buf)?;
    Ok(buf.len())
}

/// Counts the bytes written through it (the archive's length).
pub(crate) struct CountingWriter<W> {
    inner: W,
    pub(crate) count: u64,
}

impl<W: Write> CountingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        CountingWriter { inner, count: 0 }
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests;
