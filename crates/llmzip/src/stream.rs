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

use crate::codec::{ArchiveWriter, Decompressor, Limits, Schedule};
use crate::models::LanguageModel;
use crate::observer::Silent;
use crate::session::{self, ArchiveKind, Options, Peeked, Session};
use crate::{Error, Result};

/// Compresses everything written to it into `W`; call [`finish`](Self::finish) at the end.
///
/// An encoder dropped without `finish` leaves an archive without its end, which every decoder
/// refuses as truncated (debug builds panic to point at the mistake): finishing on drop, as
/// flate2 does, would turn an early return after a failed read into an archive that decodes,
/// without an error, to part of the input. After any error the encoder is spent: every later
/// call fails too, so a failed block is never coded twice.
///
/// Input is buffered up to one block and coded when the block is full, so memory does not grow
/// with the input. A stream always goes through a model: weight files are recognised by
/// content only by [`encode_all`] (and the command-line tool), which know the input's length.
#[must_use = "an Encoder writes the end of the archive only in finish()"]
pub struct Encoder<W: Write> {
    /// `None` once finished, or after an error.
    state: Option<EncoderState<W>>,
    block_size: usize,
}

struct EncoderState<W: Write> {
    writer: ArchiveWriter<W>,
    model: Box<dyn LanguageModel>,
    block: Vec<u8>,
}

impl<W: Write> Encoder<W> {
    /// An encoder with the model and schedule of `options`; writes the archive header at once.
    pub fn new(output: W, options: &Options) -> Result<Self> {
        let (model, schedule, binary) = session::compression_model_for(options)?;
        let mut encoder = Encoder::with_model(output, model, &schedule, &options.limits())?;
        if let Some(state) = encoder.state.as_mut() {
            state.writer.binary_blocks(binary);
        }
        Ok(encoder)
    }

    /// An encoder with a model you loaded and an explicit schedule; the model codes every
    /// block, binary or not ([`Encoder::new`] at a level sends binary blocks to `fast1`).
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
            state: Some(EncoderState {
                writer,
                model,
                block: Vec::new(),
            }),
            block_size,
        })
    }

    fn state(&mut self) -> Result<&mut EncoderState<W>> {
        self.state.as_mut().ok_or_else(|| {
            Error::InvalidSetting(
                "this encoder failed earlier (or was finished): its archive is incomplete".into(),
            )
        })
    }

    /// Codes what is buffered, writes the end of the archive and returns the output.
    pub fn finish(mut self) -> Result<W> {
        let state = self.state.take().ok_or_else(|| {
            Error::InvalidSetting(
                "this encoder failed earlier: its archive is incomplete and must be discarded"
                    .into(),
            )
        })?;
        state.finish()
    }

    /// Gives up on the archive: what was written stays without its end (and will not decode:
    /// remove it), and the dropped encoder does not complain. For a caller whose own input
    /// failed midway.
    pub fn abandon(mut self) {
        self.state = None;
    }
}

impl<W: Write> EncoderState<W> {
    fn flush_block(&mut self) -> Result<()> {
        if !self.block.is_empty() {
            self.writer
                .write_block(&self.block, self.model.as_mut(), &mut Silent)?;
            self.block.clear();
        }
        Ok(())
    }

    fn finish(mut self) -> Result<W> {
        self.flush_block()?;
        Ok(self.writer.finish()?.0)
    }
}

impl<W: Write> Drop for Encoder<W> {
    /// Leaves an unfinished archive unfinished (see the type's docs); debug builds panic, unless
    /// already unwinding or the encoder failed.
    fn drop(&mut self) {
        debug_assert!(
            self.state.is_none() || std::thread::panicking(),
            "llmzip::Encoder dropped without finish(): the archive has no end and will not decode"
        );
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let block_size = self.block_size;
        let state = self.state().map_err(io::Error::other)?;
        let room = block_size - state.block.len();
        let n = buf.len().min(room);
        state.block.extend_from_slice(&buf[..n]);
        if state.block.len() == block_size {
            if let Err(e) = state.flush_block() {
                // Spent: the block's bytes are neither written nor retried.
                self.state = None;
                return Err(io::Error::other(e));
            }
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
    /// How the models of later members are loaded (`None` after [`Decoder::with_model`]: its
    /// model must then fit every model member).
    options: Option<Options>,
    limits: Limits,
}

enum Inner<R: Read> {
    Model {
        decompressor: Box<Decompressor<Peeked<R>>>,
        model: Box<dyn LanguageModel>,
        block: Vec<u8>,
        pos: usize,
    },
    Tensors(Box<crate::tensors::Decoder<Peeked<R>>>),
    /// After the last member: the input (at its end) and the last model, for
    /// [`Decoder::into_parts`].
    Done(R, Option<Box<dyn LanguageModel>>),
    /// A block failed its checks: every read fails from then on.
    Failed,
}

impl<R: Read> Decoder<R> {
    /// Reads the header and, for a model-coded archive, loads the model it names, with the
    /// archive's weight format, within the default limits ([`Decoder::with_options`] with
    /// `Options::default()`). Installed models are looked up in
    /// [`Registry::from_env`](crate::Registry::from_env) and never downloaded: an archive is not
    /// the user asking for a download. A weight-file archive needs no model. An archive of
    /// several members (`cat a.llmz b.llmz`) reads as their originals one after the other,
    /// each member's model loaded when it starts.
    pub fn new(input: R) -> Result<Self> {
        Decoder::with_options(input, &Options::default())
    }

    /// [`Decoder::new`] with options: the device, memory limit and registry, a model to decode
    /// with ([`Options::model`], for archives of models loaded from a path), downloads.
    pub fn with_options(input: R, options: &Options) -> Result<Self> {
        Decoder::open(input, Some(options), None)
    }

    /// A decoder of a model-coded archive with a model you loaded (it must be the archive's:
    /// checked before decoding) and explicit limits.
    pub fn with_model(input: R, model: Box<dyn LanguageModel>, limits: Limits) -> Result<Self> {
        let (kind, input) = ArchiveKind::peek(input)?;
        let inner = Decoder::open_member(kind, input, None, Some(model))?;
        Ok(Decoder {
            inner,
            options: None,
            limits,
        })
    }

    /// Opens a member: its header read, its model loaded (or `model`, when it is the member's).
    fn open_member(
        kind: ArchiveKind,
        input: Peeked<R>,
        options: Option<&Options>,
        model: Option<Box<dyn LanguageModel>>,
    ) -> Result<Inner<R>> {
        if kind == ArchiveKind::Tensors {
            // A fine-tune's archive decodes against the base the options name.
            let base = match options.and_then(Options::base_path) {
                Some(path) => Some(std::sync::Arc::new(crate::tensors::Base::open(path)?)),
                None => None,
            };
            return Ok(Inner::Tensors(Box::new(
                crate::tensors::Decoder::member_with_base(input, base)?,
            )));
        }
        let decompressor = Decompressor::new(input)?;
        let header = decompressor.header();
        let fits = |m: &dyn LanguageModel| {
            m.info().fingerprint == header.fingerprint
                && m.info().backend.dtype == header.backend.dtype
        };
        let model = match (model, options) {
            (Some(m), _) if fits(m.as_ref()) => m,
            (_, Some(options)) => session::archive_model_for(header, options)?,
            // The given model is checked against the archive before decoding (a clear refusal).
            (Some(m), None) => m,
            (None, None) => {
                return Err(Error::Model(format!(
                    "a member needs model '{}', and no way to load it was given",
                    header.model_name
                )))
            }
        };
        Ok(Inner::Model {
            decompressor: Box::new(decompressor),
            model,
            block: Vec::new(),
            pos: 0,
        })
    }

    /// At the end of a member: opens the next one and returns `true`, or returns `false` at the
    /// end of the input.
    fn next_member(&mut self) -> Result<bool> {
        let (mut input, model) = match std::mem::replace(&mut self.inner, Inner::Failed) {
            Inner::Model {
                decompressor,
                model,
                ..
            } => (decompressor.into_inner().into_inner().1, Some(model)),
            Inner::Tensors(t) => (t.into_inner().into_inner().1, None),
            Inner::Done(input, model) => {
                self.inner = Inner::Done(input, model);
                return Ok(false);
            }
            Inner::Failed => return Ok(false),
        };
        match ArchiveKind::next_member(&mut input, &mut 0)? {
            None => {
                self.inner = Inner::Done(input, model);
                Ok(false)
            }
            Some((kind, peeked)) => {
                let (magic, _) = peeked.into_inner();
                let input = magic.chain(input);
                self.inner = Decoder::open_member(kind, input, self.options.as_ref(), model)?;
                Ok(true)
            }
        }
    }

    /// A decoder that loads models through `options` (when given) and starts from `model`
    /// (kept while members fit it): what [`SeekableDecoder`](crate::SeekableDecoder) reopens
    /// members with.
    pub(crate) fn open(
        input: R,
        options: Option<&Options>,
        model: Option<Box<dyn LanguageModel>>,
    ) -> Result<Self> {
        let (kind, input) = ArchiveKind::peek(input)?;
        let limits = options.map(Options::limits).unwrap_or_default();
        let inner = Decoder::open_member(kind, input, options, model)?;
        Ok(Decoder {
            inner,
            options: options.cloned(),
            limits,
        })
    }

    /// The input, positioned after what was read (at its end once every member was read), and
    /// the model of the last member. `None` after a failed read.
    pub(crate) fn into_parts(self) -> Option<(R, Option<Box<dyn LanguageModel>>)> {
        match self.inner {
            Inner::Model {
                decompressor,
                model,
                ..
            } => Some((decompressor.into_inner().into_inner().1, Some(model))),
            Inner::Tensors(t) => Some((t.into_inner().into_inner().1, None)),
            Inner::Done(input, model) => Some((input, model)),
            Inner::Failed => None,
        }
    }

    /// The header of the current member when a model coded it: model, schedule, writer.
    /// `None` for a weight-file member, whose description is [`Decoder::layout`].
    pub fn header(&self) -> Option<&crate::format::Header> {
        match &self.inner {
            Inner::Model { decompressor, .. } => Some(decompressor.header()),
            _ => None,
        }
    }

    /// The file's description, for a weight-file member; `None` otherwise.
    pub fn layout(&self) -> Option<&crate::tensors::Layout> {
        match &self.inner {
            Inner::Tensors(t) => Some(t.layout()),
            _ => None,
        }
    }

    /// One read within the current member: `Ok(0)` at its end.
    fn read_member(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let limits = self.limits;
        match &mut self.inner {
            Inner::Done(..) => Ok(0),
            Inner::Failed => Err(io::Error::other(Error::Corrupt(
                "an earlier read of this archive failed".into(),
            ))),
            Inner::Tensors(t) => t.read(buf),
            Inner::Model {
                decompressor,
                model,
                block,
                pos,
            } => {
                while *pos == block.len() {
                    *pos = 0;
                    let more = decompressor
                        .next_block(model.as_mut(), &limits, &mut Silent, block)
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
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let result = self.read_member(buf);
            match result {
                Ok(0) if matches!(self.inner, Inner::Done(..)) => return Ok(0),
                Ok(0) => match self.next_member() {
                    Ok(true) => continue,
                    Ok(false) => return Ok(0),
                    Err(e) => {
                        self.inner = Inner::Failed;
                        return Err(io::Error::other(e));
                    }
                },
                Ok(n) => return Ok(n),
                Err(e) => {
                    // Nothing unverified is handed out later, and every later read fails too.
                    self.inner = Inner::Failed;
                    return Err(e);
                }
            }
        }
    }
}

/// Compresses everything `input` holds with `options` and returns the archive. Without a
/// model named in `options`, a safetensors or GGUF file gets the weight-file codec, as with
/// `llmzip compress` (the input is read whole first, to know its length).
pub fn encode_all(mut input: impl Read, options: &Options) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    input.read_to_end(&mut data)?;
    crate::unstable::pool::on_a_worker(|| {
        let mut out = Vec::new();
        Session::new(options.clone()).compress(
            &mut data.as_slice(),
            Some(data.len() as u64),
            &mut out,
            &mut Silent,
        )?;
        Ok(out)
    })
}

/// Decompresses a whole archive of either kind with the model it names (see [`Decoder::new`]).
/// The archive and its original are both held in memory; [`Decoder`] streams instead.
pub fn decode_all(mut input: impl Read) -> Result<Vec<u8>> {
    let mut archive = Vec::new();
    input.read_to_end(&mut archive)?;
    crate::unstable::pool::on_a_worker(|| {
        let mut out = Vec::new();
        Session::new(Options::default()).decompress(
            &mut archive.as_slice(),
            &mut out,
            &mut Silent,
        )?;
        Ok(out)
    })
}
