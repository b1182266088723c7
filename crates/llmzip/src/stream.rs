//! The library's front door: streaming [`Encoder`] / [`Decoder`] adapters and one-call helpers,
//! shaped like flate2's and zstd's.
//!
//! ```
//! use std::io::{Read, Write};
//!
//! let text = b"It was the best of times, it was the worst of times.".repeat(20);
//! // One call each way, with the embedded default model.
//! let archive = llmzip::encode_all(&text[..], &llmzip::Options::default())?;
//! assert_eq!(llmzip::decode_all(&archive[..])?, text);
//!
//! // Streaming: `Encoder` is a `Write`, `Decoder` a `Read`.
//! let mut encoder = llmzip::Encoder::new(Vec::new(), &llmzip::Options::default())?;
//! encoder.write_all(&text)?;
//! let archive = encoder.finish()?;
//! let mut back = Vec::new();
//! llmzip::Decoder::new(&archive[..])?.read_to_end(&mut back)?;
//! assert_eq!(back, text);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Memory stays bounded by the block size: the encoder holds at most one block of input, the
//! decoder one block of output, and the model's working memory is checked against
//! [`Options::limits`] before each block.

use std::io::{self, Read, Write};

use crate::codec::{ArchiveWriter, Decompressor, Limits, Schedule, ScheduleOptions};
use crate::models::{self, LanguageModel, DEFAULT_MODEL};
use crate::observer::Silent;
use crate::registry::Registry;
use crate::{Error, Result};

/// What to compress with. `Options::default()` is the embedded default model on the CPU with its
/// default schedule, as `llmzip compress` uses.
#[derive(Debug, Clone)]
pub struct Options {
    /// A built-in model name (`gru3-cm5`, `gru`, `smollm2`, …) or a model path, as for `-m`.
    pub model: String,
    /// `cpu`, `cuda` or `metal`.
    pub device: String,
    /// Weight format for models that offer several (GGUF: `f32`, `q8_0`, the file's own).
    pub weights: Option<String>,
    /// Schedule settings; unset ones take the model's defaults.
    pub schedule: ScheduleOptions,
    /// Working-memory limits (as `--memory`).
    pub limits: Limits,
    /// Where downloaded models (`smollm2`, `gpt2`, …) are looked up.
    pub registry: Registry,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            model: DEFAULT_MODEL.to_string(),
            device: "cpu".to_string(),
            weights: None,
            schedule: ScheduleOptions::default(),
            limits: Limits::default(),
            registry: Registry::from_env(),
        }
    }
}

impl Options {
    /// Loads the model these options name, for compression ([`models::load_for_compression`]).
    pub fn load_model(&self) -> Result<Box<dyn LanguageModel>> {
        models::load_for_compression(
            &self.model,
            &models::device(&self.device)?,
            self.weights.as_deref(),
            &self.registry,
        )
    }
}

/// Compresses everything written to it into `W`; call [`finish`](Self::finish) at the end.
///
/// Input is buffered up to one block and coded when the block is full, so memory does not grow
/// with the input.
pub struct Encoder<W: Write> {
    writer: ArchiveWriter<W>,
    model: Box<dyn LanguageModel>,
    block: Vec<u8>,
    block_size: usize,
}

impl<W: Write> Encoder<W> {
    /// An encoder with the model and schedule of `options`; writes the archive header at once.
    pub fn new(output: W, options: &Options) -> Result<Self> {
        let model = options.load_model()?;
        let schedule = Schedule::for_model(&options.schedule, model.info())?;
        Encoder::with_model(output, model, &schedule, &options.limits)
    }

    /// An encoder with a model you loaded and an explicit schedule.
    pub fn with_model(
        output: W,
        model: Box<dyn LanguageModel>,
        schedule: &Schedule,
        limits: &Limits,
    ) -> Result<Self> {
        let writer = ArchiveWriter::new(output, model.as_ref(), schedule, limits)?;
        let block_size = usize::try_from(schedule.block_size)
            .map_err(|_| Error::InvalidSetting("block size does not fit in memory".into()))?;
        Ok(Encoder {
            writer,
            model,
            block: Vec::new(),
            block_size,
        })
    }

    fn flush_block(&mut self) -> Result<()> {
        if !self.block.is_empty() {
            self.writer
                .write_block(&self.block, self.model.as_mut(), &mut Silent)?;
            self.block.clear();
        }
        Ok(())
    }

    /// Codes what is buffered, writes the end of the archive and returns the output.
    pub fn finish(mut self) -> Result<W> {
        self.flush_block()?;
        Ok(self.writer.finish()?.0)
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.block_size - self.block.len();
        let n = buf.len().min(room);
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == self.block_size {
            self.flush_block().map_err(io::Error::other)?;
        }
        Ok(n)
    }

    /// Does nothing: a block is coded only when it is full (or at [`finish`](Self::finish)),
    /// because where blocks end changes the archive.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Decompresses an archive read from `R`; a `Read` of the original bytes. Reads both kinds of
/// archive: model-coded ones (`LLMZ`) and weight-file ones ([`crate::tensors`], `LLMT`).
///
/// Each block (or chunk of a weight file) is verified against its checksum before any of it is
/// returned, and the trailer is verified before the final end of stream (`Ok(0)`), so a reader
/// that sees the end has seen exactly the original.
pub struct Decoder<R: Read> {
    inner: Inner<R>,
}

/// The input after its magic was looked at.
type Peeked<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

enum Inner<R: Read> {
    Model {
        decompressor: Box<Decompressor<Peeked<R>>>,
        model: Box<dyn LanguageModel>,
        limits: Limits,
        block: Vec<u8>,
        pos: usize,
    },
    Tensors(Box<crate::tensors::Decoder<Peeked<R>>>),
}

/// Reads the first four bytes and gives them back in front of the rest.
fn peek_magic<R: Read>(mut input: R) -> Result<([u8; 4], Peeked<R>)> {
    let mut magic = [0u8; 4];
    let n = crate::format::read_up_to(&mut input, &mut magic)?;
    Ok((magic, io::Cursor::new(magic[..n].to_vec()).chain(input)))
}

impl<R: Read> Decoder<R> {
    /// Reads the header and, for a model-coded archive, loads the built-in model it names, with
    /// the archive's weight format, on the device it was made on, within the default limits;
    /// downloaded models are looked up in [`Registry::from_env`], and never downloaded (an
    /// archive is not the user asking for a download): load such a model yourself and use
    /// [`Decoder::with_model`]. A weight-file archive needs no model.
    pub fn new(input: R) -> Result<Self> {
        let (magic, input) = peek_magic(input)?;
        if magic == crate::tensors::MAGIC {
            let decoder = crate::tensors::Decoder::new(input)?;
            return Ok(Decoder {
                inner: Inner::Tensors(Box::new(decoder)),
            });
        }
        let decompressor = Decompressor::new(input)?;
        let header = decompressor.header();
        // Never a download because an archive names a model (see Registry::without_downloads).
        let registry = Registry::from_env().without_downloads();
        if !models::loads_by_name(&header.model_name, &registry) {
            return Err(Error::Model(format!(
                "the archive was made with model '{}' (fingerprint {}), which is loaded from a \
                 path; load it and use Decoder::with_model",
                header.model_name, header.fingerprint
            )));
        }
        let model = models::load(
            &header.model_name,
            &models::device(&header.backend.device)?,
            Some(&header.backend.dtype),
            &registry,
        )?;
        Ok(Decoder::from_parts(decompressor, model, Limits::default()))
    }

    /// A decoder of a model-coded archive with a model you loaded (it must be the archive's:
    /// checked before decoding) and explicit limits.
    pub fn with_model(input: R, model: Box<dyn LanguageModel>, limits: Limits) -> Result<Self> {
        let (_, input) = peek_magic(input)?;
        Ok(Decoder::from_parts(
            Decompressor::new(input)?,
            model,
            limits,
        ))
    }

    fn from_parts(
        decompressor: Decompressor<Peeked<R>>,
        model: Box<dyn LanguageModel>,
        limits: Limits,
    ) -> Self {
        Decoder {
            inner: Inner::Model {
                decompressor: Box::new(decompressor),
                model,
                limits,
                block: Vec::new(),
                pos: 0,
            },
        }
    }

    /// The header of a model-coded archive: model, schedule, writer. `None` for a weight-file
    /// archive, whose description is [`Decoder::layout`].
    pub fn header(&self) -> Option<&crate::format::Header> {
        match &self.inner {
            Inner::Model { decompressor, .. } => Some(decompressor.header()),
            Inner::Tensors(_) => None,
        }
    }

    /// The file's description, for a weight-file archive; `None` for a model-coded one.
    pub fn layout(&self) -> Option<&crate::tensors::Layout> {
        match &self.inner {
            Inner::Model { .. } => None,
            Inner::Tensors(t) => Some(t.layout()),
        }
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (decompressor, model, limits, block, pos) = match &mut self.inner {
            Inner::Tensors(t) => return t.read(buf),
            Inner::Model {
                decompressor,
                model,
                limits,
                block,
                pos,
            } => (decompressor, model, limits, block, pos),
        };
        while *pos == block.len() {
            *pos = 0;
            let more = decompressor
                .next_block(model.as_mut(), limits, &mut Silent, block)
                .map_err(io::Error::other)?;
            if !more {
                block.clear();
                return Ok(0);
            }
        }
        let n = buf.len().min(block.len() - *pos);
        buf[..n].copy_from_slice(&block[*pos..*pos + n]);
        *pos += n;
        Ok(n)
    }
}

/// Compresses everything `input` holds with `options` and returns the archive.
pub fn encode_all(mut input: impl Read, options: &Options) -> Result<Vec<u8>> {
    let mut encoder = Encoder::new(Vec::new(), options)?;
    io::copy(&mut input, &mut encoder).map_err(unwrap_io)?;
    encoder.finish()
}

/// Decompresses a whole archive with the built-in model it names, or a weight-file archive of
/// [`crate::tensors`].
pub fn decode_all(input: impl Read) -> Result<Vec<u8>> {
    let (magic, input) = peek_magic(input)?;
    let mut out = Vec::new();
    if magic == crate::tensors::MAGIC {
        // Faster than through the Decoder: reads and writes overlap the decoding.
        crate::tensors::decompress(input, &mut out, &mut crate::Silent)?;
        return Ok(out);
    }
    Decoder::new(input)?
        .read_to_end(&mut out)
        .map_err(unwrap_io)?;
    Ok(out)
}

/// Recovers a library error that travelled through `io::Error` (the `Read`/`Write` traits).
fn unwrap_io(e: io::Error) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        *e.into_inner()
            .expect("checked above")
            .downcast::<Error>()
            .expect("checked above")
    } else {
        Error::Io(e)
    }
}
