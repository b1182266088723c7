//! The one orchestrator: what to compress with, which codec an archive needs, which model to
//! load, and the loop that runs them. The command-line tool, [`Encoder`](crate::Encoder),
//! [`Decoder`](crate::Decoder), [`encode_all`](crate::encode_all) and
//! [`decode_all`](crate::decode_all) all go through here, so that a file compresses to the same
//! archive whichever of them is used, and every rule lives in one place:
//!
//! - *Which codec an archive needs* is read from its first four bytes ([`ArchiveKind`]): `LLMZ`
//!   (a model's) or `LLMT` (the weight-file codec's).
//! - *What compresses an input*: the model and schedule of the [`Options`] — a level or a model
//!   named with [`Options::model`]. Without a model named, a safetensors or GGUF file is
//!   recognised by its content and gets the weight-file codec ([`crate::tensors`]), as it does
//!   with `-m tensors`.
//! - *Which model decodes an archive*: the one its header names, when that name is enough to
//!   load it ([`models::loads_by_name`]); otherwise the model the user gives, and an archive alone
//!   never makes llmzip download a model.
//!
//! A [`Session`] keeps the models it loaded, so that compressing many files loads each model
//! once.

use std::collections::HashMap;
use std::io::{self, Read, Write};

use crate::catalogue::{self, Level};
use crate::codec::{self, Limits, Schedule, ScheduleOptions, Summary};
use crate::format::{seek, Header};
use crate::models::{self, LanguageModel, Portability};
use crate::observer::Observer;
use crate::registry::Registry;
use crate::tensors;
use crate::{Error, Result};

/// Where models compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// The CPU: archives that decode on every CPU.
    #[default]
    Cpu,
    /// An NVIDIA GPU (a build with the `cuda` feature); archives decode on the same GPU only.
    Cuda,
    /// An Apple GPU (a build with the `metal` feature); archives decode on the same GPU only.
    Metal,
}

impl Device {
    /// The device's name, as `--device` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
            Device::Metal => "metal",
        }
    }

    /// The device named `cpu`, `cuda` or `metal`.
    pub fn from_name(name: &str) -> Result<Device> {
        match name {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda),
            "metal" => Ok(Device::Metal),
            other => Err(Error::InvalidSetting(format!(
                "unknown device '{other}' (use cpu, cuda or metal)"
            ))),
        }
    }
}

/// A model to compress with, as `-m` takes it: a catalogue name or alias (`gru4-cm5`, `best`),
/// a model installed in a [`Registry`] directory, a Hugging Face id (`owner/name`), a path to
/// a GGUF file or a model directory, or `tensors` for the weight-file codec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec(String);

impl ModelSpec {
    /// The spec as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ModelSpec {
    fn from(s: &str) -> Self {
        ModelSpec(s.to_string())
    }
}

impl From<String> for ModelSpec {
    fn from(s: String) -> Self {
        ModelSpec(s)
    }
}

impl From<&std::path::Path> for ModelSpec {
    fn from(p: &std::path::Path) -> Self {
        ModelSpec(p.to_string_lossy().into_owned())
    }
}

/// What to compress with, and how to decode. `Options::default()` is level 6 (the embedded
/// default model, `gru4-cm5`) on the CPU, as `llmzip compress` uses; set what differs with the
/// builder methods:
///
/// ```
/// use llmzip::{Level, Options};
/// let fast = Options::default().level(Level::FAST);
/// let custom = Options::default().model("gru2-cm5").block_size(64 << 10);
/// # let _ = (fast, custom);
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    choice: Choice,
    /// `None`: the CPU for compression, the archive's own device for decoding.
    device: Option<Device>,
    weights: Option<String>,
    schedule: ScheduleOptions,
    limits: Limits,
    registry: Registry,
    allow_download: bool,
    /// Original bytes per member (`None`: one member).
    members: Option<u64>,
    /// The base file of fine-tuned weights (`--base`).
    base: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Choice {
    Level(Level),
    Model(ModelSpec),
}

impl Default for Options {
    fn default() -> Self {
        Options {
            choice: Choice::Level(Level::DEFAULT),
            device: None,
            weights: None,
            schedule: ScheduleOptions::default(),
            limits: Limits::default(),
            registry: Registry::from_env(),
            allow_download: false,
            members: None,
            base: None,
        }
    }
}

impl Options {
    /// Compress at `level` (its model and schedule; explicit schedule settings still win).
    /// Weight files recognised by their content go to the weight-file codec, and blocks that
    /// are not text to the fast model (`fast1`; docs/format.md, "Fast blocks").
    pub fn level(mut self, level: Level) -> Self {
        self.choice = Choice::Level(level);
        self
    }

    /// Compress with this model (and its own schedule), every block, whatever its content.
    /// When decoding, decode with it instead of the model the archive names (for models loaded
    /// from a path).
    pub fn model(mut self, model: impl Into<ModelSpec>) -> Self {
        self.choice = Choice::Model(model.into());
        self
    }

    /// Where the model computes. Unset, compression runs on the CPU and decoding on the device
    /// the archive was made on.
    pub fn device(mut self, device: Device) -> Self {
        self.device = Some(device);
        self
    }

    /// The weight format of llama and GPT-2 models (`int8`, `f32`, `q8_0`, a GGUF file's own).
    pub fn weights(mut self, format: &str) -> Self {
        self.weights = Some(format.to_string());
        self
    }

    /// Bytes per independently coded block.
    pub fn block_size(mut self, bytes: u64) -> Self {
        self.schedule.block_size = Some(bytes);
        self
    }

    /// Schedule settings at once (unset ones keep the level's or the model's).
    pub fn schedule(mut self, schedule: ScheduleOptions) -> Self {
        let s = &mut self.schedule;
        s.block_size = schedule.block_size.or(s.block_size);
        s.max_segments = schedule.max_segments.or(s.max_segments);
        s.min_segment_tokens = schedule.min_segment_tokens.or(s.min_segment_tokens);
        s.window = schedule.window.or(s.window);
        self
    }

    /// Working memory the model may use beyond its weights (default 4 GiB), both ways.
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.limits = Limits { memory: bytes };
        self
    }

    /// Where installed models are looked up (default: [`Registry::from_env`]).
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = registry;
        self
    }

    /// Let decoding download the model an archive names when it is not installed (never done
    /// otherwise: an archive alone does not make llmzip reach the network).
    pub fn allow_download(mut self, allow: bool) -> Self {
        self.allow_download = allow;
        self
    }

    /// Cut the input into members of `bytes` original bytes each (the last may be shorter):
    /// independent archives one after the other, each decodable alone, which is what parallel
    /// and partial decoding start from. Applies to model-coded input compressed through a
    /// [`Session`] or [`encode_all`](crate::encode_all) (the streaming `Encoder` writes one
    /// member); `bytes` must be at least 1.
    pub fn members(mut self, bytes: u64) -> Self {
        self.members = Some(bytes.max(1));
        self
    }

    /// Code a weight file as a fine-tune of `base` (a safetensors or GGUF file): each tensor
    /// with a partner of the same name, dtype and shape in the base as the XOR with it
    /// ([`tensors::compress_delta`]). Decoding such an archive needs the same base, given the
    /// same way; the archive records its SHA-256. Input that is not a weight file is refused.
    pub fn base(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.base = Some(path.into());
        self
    }

    /// The base file of [`Options::base`], if any.
    pub fn base_path(&self) -> Option<&std::path::Path> {
        self.base.as_deref()
    }

    /// The working-memory limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The model a spec names: an alias (`best`) means its model, unless a path or an installed
    /// model has that name.
    fn resolve(&self, spec: &ModelSpec) -> String {
        let s = spec.as_str();
        let taken = std::path::Path::new(s).exists() || self.registry.find(s).is_some();
        if taken {
            s.to_string()
        } else {
            catalogue::resolve_alias(s).to_string()
        }
    }

    /// What compresses an input under these options.
    fn plan(&self) -> Result<Plan> {
        let (spec, level_schedule, recognise) = match &self.choice {
            Choice::Level(level) => {
                level.check_installed(&self.registry)?;
                (level.model().to_string(), level.schedule(), true)
            }
            Choice::Model(m) if m.as_str() == tensors::MODEL_NAME => return Ok(Plan::Tensors),
            Choice::Model(m) => (self.resolve(m), ScheduleOptions::default(), false),
        };
        let schedule = ScheduleOptions {
            block_size: self.schedule.block_size.or(level_schedule.block_size),
            max_segments: self.schedule.max_segments.or(level_schedule.max_segments),
            min_segment_tokens: self
                .schedule
                .min_segment_tokens
                .or(level_schedule.min_segment_tokens),
            window: self.schedule.window.or(level_schedule.window),
        };
        Ok(Plan::Model {
            spec,
            schedule,
            by_level: recognise,
        })
    }
}

/// Blocks that look binary go to the fast model when the model was not asked for by name: the
/// same rule as for recognising weight files (a level is a policy, `-m` a demand).
fn binary_blocks(by_level: bool) -> codec::BinaryBlocks {
    if by_level {
        codec::BinaryBlocks::Fast
    } else {
        codec::BinaryBlocks::Model
    }
}

/// How an input is compressed.
enum Plan {
    /// The weight-file codec, whatever the content (`-m tensors`).
    Tensors,
    /// A model. When it was chosen `by_level` (not named), weight files recognised by content
    /// go to the weight-file codec instead, and blocks that look binary to the fast model.
    Model {
        spec: String,
        schedule: ScheduleOptions,
        by_level: bool,
    },
}

/// Which codec an archive needs, from its first four bytes: the one place that tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// `LLMZ`: coded by a model ([`crate::codec`]).
    Model,
    /// `LLMT`: a weight file coded by [`crate::tensors`].
    Tensors,
}

/// The input after its magic was looked at: the four bytes read, then the rest.
pub(crate) type Peeked<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

impl ArchiveKind {
    /// Reads the first four bytes of `input` and gives them back in front of the rest. Anything
    /// that is not a weight-file archive counts as a model's (whose reader then says whether it
    /// is an archive at all).
    pub(crate) fn peek<R: Read>(mut input: R) -> Result<(ArchiveKind, Peeked<R>)> {
        let mut magic = [0u8; 4];
        let n = crate::format::read_up_to(&mut input, &mut magic)?;
        let kind = if magic == tensors::MAGIC {
            ArchiveKind::Tensors
        } else {
            ArchiveKind::Model
        };
        Ok((kind, io::Cursor::new(magic[..n].to_vec()).chain(input)))
    }
}

impl ArchiveKind {
    /// After a member: the kind of the member that follows, given back in front of the rest of
    /// `input`, or `None` at the end of the input. Seek tables ([`crate::format::seek`]) on the
    /// way are read, checked (their own CRC) and skipped, their bytes added to `skipped`: they
    /// index members but hold no data. Anything else after a member is refused: an archive is
    /// a sequence of whole members and nothing else.
    pub(crate) fn next_member<R: Read>(
        mut input: R,
        skipped: &mut u64,
    ) -> Result<Option<(ArchiveKind, Peeked<R>)>> {
        loop {
            let mut magic = [0u8; 4];
            let n = crate::format::read_up_to(&mut input, &mut magic)?;
            let kind = match (n, magic) {
                (0, _) => return Ok(None),
                (4, m) if m == tensors::MAGIC => ArchiveKind::Tensors,
                (4, m) if m == crate::format::MAGIC => ArchiveKind::Model,
                (4, m) if m == seek::MAGIC => {
                    let (_, len) = seek::SeekTable::read_after_magic(&mut input)?;
                    *skipped += len;
                    continue;
                }
                _ => {
                    return Err(Error::Corrupt(
                        "unexpected data after the end of the archive (neither another member \
                         nor the end of the file)"
                            .into(),
                    ))
                }
            };
            return Ok(Some((kind, io::Cursor::new(magic.to_vec()).chain(input))));
        }
    }
}

/// What one compression or decompression did, by codec.
#[derive(Debug, Clone)]
pub enum Report {
    /// A model coded it.
    Model(Summary),
    /// The weight-file codec coded it.
    Tensors(tensors::Summary),
    /// An archive of several members (`cat a.llmz b.llmz`, `compress --members`).
    Members {
        /// Each member's report, in order.
        members: Vec<Report>,
        /// Bytes of seek tables among (or after) them.
        seek_tables: u64,
    },
}

impl Report {
    /// Bytes of original data.
    pub fn original_len(&self) -> u64 {
        match self {
            Report::Model(s) => s.original_len,
            Report::Tensors(s) => s.original_len,
            Report::Members { members, .. } => members.iter().map(Report::original_len).sum(),
        }
    }

    /// Bytes of archive.
    pub fn archive_len(&self) -> u64 {
        match self {
            Report::Model(s) => s.archive_len,
            Report::Tensors(s) => s.archive_len,
            Report::Members {
                members,
                seek_tables,
            } => members.iter().map(Report::archive_len).sum::<u64>() + seek_tables,
        }
    }
}

/// What an archive holds, read without decoding ([`info`]).
#[derive(Debug, Clone)]
pub enum ArchiveDescription {
    /// A model's archive: header, blocks, sizes.
    Model(codec::ArchiveInfo),
    /// A weight-file archive: the file's layout and sizes.
    Tensors(tensors::Summary),
}

/// Describes an archive without decoding it (what `llmzip info` prints): each of its members,
/// of either kind, in order.
pub fn info(mut input: impl Read) -> Result<Vec<ArchiveDescription>> {
    let (mut kind, mut member) = ArchiveKind::peek(&mut input)?;
    let mut members = Vec::new();
    loop {
        members.push(describe(kind, &mut member)?);
        drop(member);
        match ArchiveKind::next_member(&mut input, &mut 0)? {
            Some((k, next)) => (kind, member) = (k, next),
            None => return Ok(members),
        }
    }
}

/// One member, read to its end without decoding.
pub(crate) fn describe(kind: ArchiveKind, member: &mut impl Read) -> Result<ArchiveDescription> {
    Ok(match kind {
        ArchiveKind::Tensors => ArchiveDescription::Tensors(tensors::inspect_member(member)?),
        ArchiveKind::Model => ArchiveDescription::Model(codec::inspect(member)?),
    })
}

/// The original length an archive file records, read cheaply (for progress bars; never trusted
/// for anything else): the seek table's total when the file ends with one, otherwise the first
/// member's own (exact for a file of one member). `None` if it cannot be read.
pub fn original_len_hint(file: &mut (impl Read + io::Seek)) -> Option<u64> {
    let hint = if let Ok(Some((table, _))) = seek::SeekTable::read_from_end(file) {
        table
            .entries
            .iter()
            .try_fold(0u64, |a, e| a.checked_add(e.original_len))
    } else {
        file.seek(io::SeekFrom::Start(0)).ok()?;
        let (kind, _) = ArchiveKind::peek(&mut *file).ok()?;
        file.seek(io::SeekFrom::Start(0)).ok()?;
        match kind {
            ArchiveKind::Tensors => {
                let layout = tensors::read_layout(io::BufReader::new(&mut *file)).ok()?;
                Some(layout.regions.iter().map(|r| r.len).sum())
            }
            ArchiveKind::Model => {
                file.seek(io::SeekFrom::End(-12)).ok()?;
                crate::format::Trailer::read(file)
                    .ok()
                    .map(|t| t.original_len)
            }
        }
    };
    file.seek(io::SeekFrom::Start(0)).ok()?;
    hint
}

/// An observer of one member, seeing progress as offsets into the whole input.
struct Offset<'a> {
    inner: &'a mut dyn Observer,
    base: u64,
}

impl Observer for Offset<'_> {
    fn progress(&mut self, bytes: u64) {
        self.inner.progress(self.base + bytes);
    }
    fn cancelled(&self) -> bool {
        self.inner.cancelled()
    }
    fn original_block(&mut self, data: &[u8]) {
        self.inner.original_block(data);
    }
}

/// Loaded models by (spec, weight format, for compression).
type Loaded = HashMap<(String, Option<String>, bool), Box<dyn LanguageModel>>;

/// Compresses and decompresses any number of inputs with one set of [`Options`], loading each
/// model once: the engine of the command-line tool and of the one-call helpers.
///
/// Its calls are fastest on a thread of rayon's pool (the models step their rows in parallel at
/// every symbol): wrap them in [`on_a_worker`](crate::unstable::pool::on_a_worker), as the tool
/// and [`encode_all`](crate::encode_all) do.
pub struct Session {
    options: Options,
    device: Option<candle_core::Device>,
    loaded: Loaded,
    /// The base file, opened (and hashed) on first use.
    base: Option<std::sync::Arc<tensors::Base>>,
}

/// [`Session::compress`] with a base: the input must be a weight file, coded against it.
fn compress_fine_tune(
    input: &mut dyn Read,
    len: Option<u64>,
    output: &mut dyn Write,
    observer: &mut dyn Observer,
    base: &tensors::Base,
) -> Result<Report> {
    let refuse = || {
        Error::InvalidSetting(
            "--base is for weight files (safetensors, GGUF) read from a file: this input is not \
             one that llmzip recognises"
                .into(),
        )
    };
    let total = len.ok_or_else(refuse)?;
    let (head, layout) = tensors::recognise(input, total)?;
    let layout = layout.ok_or_else(refuse)?;
    let s = tensors::compress_delta(&head, &layout, input, output, observer, base)?;
    Ok(Report::Tensors(s))
}

impl Session {
    /// A session; nothing is loaded until needed (see [`prepare`](Self::prepare)).
    pub fn new(options: Options) -> Session {
        Session {
            options,
            device: None,
            loaded: HashMap::new(),
            base: None,
        }
    }

    /// The options.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The device new archives are made on (the CPU unless the options name one), opened once.
    fn device(&mut self) -> Result<candle_core::Device> {
        if self.device.is_none() {
            let device = self.options.device.unwrap_or_default();
            self.device = Some(models::device(device.name())?);
        }
        Ok(self.device.clone().expect("set above"))
    }

    /// The device an archive decodes on: the one the options name, else the archive's own.
    fn decoding_device(&mut self, header: &Header) -> Result<candle_core::Device> {
        match self.options.device {
            Some(_) => self.device(),
            None => models::device(&header.backend.device),
        }
    }

    /// Loads the model that compression will use (so that a bad model or schedule fails before
    /// any file is touched) and says which machines its archives decode on; `None` for the
    /// weight-file codec.
    pub fn prepare(&mut self) -> Result<Option<Portability>> {
        match self.options.plan()? {
            Plan::Tensors => Ok(None),
            Plan::Model { spec, schedule, .. } => {
                let weights = self.options.weights.clone();
                let model = self.compression_model(&spec, weights.as_deref())?;
                let info = model.info().clone();
                let portability = models::portability(&info.backend, model.tokenizer().id());
                Schedule::for_model(&schedule, &info)?;
                Ok(Some(portability))
            }
        }
    }

    fn compression_model(
        &mut self,
        spec: &str,
        weights: Option<&str>,
    ) -> Result<&mut dyn LanguageModel> {
        let device = self.device()?;
        let registry = self.options.registry.clone();
        cached(&mut self.loaded, (spec, weights, true), || {
            models::load_for_compression(spec, &device, weights, &registry)
        })
    }

    /// The base of [`Options::base`], opened once per session.
    fn base(&mut self) -> Result<Option<std::sync::Arc<tensors::Base>>> {
        if let (None, Some(path)) = (&self.base, &self.options.base) {
            self.base = Some(std::sync::Arc::new(tensors::Base::open(path)?));
        }
        Ok(self.base.clone())
    }

    /// Compresses `input` (of `len` bytes, when known: weight files are recognised only then)
    /// into `output`.
    pub fn compress(
        &mut self,
        input: &mut dyn Read,
        len: Option<u64>,
        output: &mut dyn Write,
        observer: &mut dyn Observer,
    ) -> Result<Report> {
        if let Some(base) = self.base()? {
            return compress_fine_tune(input, len, output, observer, &base);
        }
        let (spec, schedule, recognise) = match self.options.plan()? {
            Plan::Tensors => {
                let Some(total) = len else {
                    return Err(Error::InvalidSetting(
                        "the weight-file codec (tensors) needs a file, not a stream: it reads \
                         the file's size first"
                            .into(),
                    ));
                };
                let (head, layout) = tensors::recognise(input, total)?;
                let layout = layout.unwrap_or_else(|| tensors::Layout::bytes(total));
                let s = tensors::compress(&head, &layout, input, output, observer)?;
                return Ok(Report::Tensors(s));
            }
            Plan::Model {
                spec,
                schedule,
                by_level,
            } => (spec, schedule, by_level),
        };
        let mut head = Vec::new();
        if let (true, Some(total)) = (recognise, len) {
            let (read, layout) = tensors::recognise(input, total)?;
            if let Some(layout) = layout {
                let s = tensors::compress(&read, &layout, input, output, observer)?;
                return Ok(Report::Tensors(s));
            }
            head = read;
        }
        let weights = self.options.weights.clone();
        let limits = self.options.limits;
        let members = self.options.members;
        let model = self.compression_model(&spec, weights.as_deref())?;
        let schedule = Schedule::for_model(&schedule, model.info())?;
        let mut input = io::Cursor::new(head).chain(input);
        let binary = binary_blocks(recognise);
        let Some(member_len) = members else {
            let s = codec::compress(
                &mut input, output, model, &schedule, &limits, binary, observer,
            )?;
            return Ok(Report::Model(s));
        };
        // Members of `member_len` original bytes each, one after the other: each a whole
        // archive, which a reader may decode on its own, and a seek table after them.
        let mut input = io::BufReader::with_capacity(1 << 16, input);
        let mut reports = Vec::new();
        let mut table = seek::SeekTable::default();
        let mut done = 0u64;
        loop {
            let mut member = (&mut input).take(member_len);
            let mut offset = Offset {
                inner: &mut *observer,
                base: done,
            };
            let s = codec::compress(
                &mut member,
                output,
                model,
                &schedule,
                &limits,
                binary,
                &mut offset,
            )?;
            done += s.original_len;
            table.entries.push(seek::Entry {
                archive_len: s.archive_len,
                original_len: s.original_len,
            });
            reports.push(Report::Model(s));
            // Another member only while input remains (an empty input is one empty member).
            if io::BufRead::fill_buf(&mut input)?.is_empty() {
                break;
            }
        }
        // A file of more members than a table may list gets none (readers walk it).
        let table = table.to_bytes().unwrap_or_default();
        output.write_all(&table)?;
        Ok(Report::Members {
            members: reports,
            seek_tables: table.len() as u64,
        })
    }

    /// Decompresses an archive from `input` into `output`: its members, of either kind, one
    /// after the other (`cat a.llmz b.llmz` decodes to the two originals concatenated). Each
    /// block reaches `output` only after its checksum was verified.
    pub fn decompress(
        &mut self,
        input: &mut dyn Read,
        output: &mut dyn Write,
        observer: &mut dyn Observer,
    ) -> Result<Report> {
        let (mut kind, mut member) = ArchiveKind::peek(&mut *input)?;
        let mut reports = Vec::new();
        let mut seek_tables = 0;
        loop {
            reports.push(self.decompress_member(kind, &mut member, output, observer)?);
            drop(member);
            match ArchiveKind::next_member(&mut *input, &mut seek_tables)? {
                Some((k, next)) => (kind, member) = (k, next),
                None => break,
            }
        }
        Ok(if reports.len() == 1 && seek_tables == 0 {
            reports.pop().expect("one report")
        } else {
            Report::Members {
                members: reports,
                seek_tables,
            }
        })
    }

    /// One member, read to its end.
    fn decompress_member(
        &mut self,
        kind: ArchiveKind,
        input: &mut dyn Read,
        output: &mut dyn Write,
        observer: &mut dyn Observer,
    ) -> Result<Report> {
        if kind == ArchiveKind::Tensors {
            let base = self.base()?;
            return Ok(Report::Tensors(tensors::decompress_member(
                input,
                output,
                observer,
                base.as_deref(),
            )?));
        }
        let decompressor = codec::Decompressor::new(input)?;
        let limits = self.options.limits;
        let model = self.archive_model(decompressor.header())?;
        Ok(Report::Model(
            decompressor.run(output, model, &limits, observer)?,
        ))
    }

    /// The model that decodes an archive with this header (loaded once per session).
    fn archive_model(&mut self, header: &Header) -> Result<&mut dyn LanguageModel> {
        let device = self.decoding_device(header)?;
        let spec = archive_spec(header, &self.options)?;
        // The weight format is part of the computation: the archive's.
        let weights = header.backend.dtype.clone();
        let registry = decoding_registry(&self.options);
        // Archives of several devices may pass through one session.
        let device_name: &str = match self.options.device {
            Some(d) => d.name(),
            None => &header.backend.device,
        };
        let key = format!("{weights} on {device_name}");
        cached(&mut self.loaded, (&spec, Some(&key), false), || {
            models::load(&spec, &device, Some(&weights), &registry)
        })
    }
}

/// A model from `loaded`, loading it with `load` the first time.
fn cached<'a>(
    loaded: &'a mut Loaded,
    (spec, weights, compress): (&str, Option<&str>, bool),
    load: impl FnOnce() -> Result<Box<dyn LanguageModel>>,
) -> Result<&'a mut dyn LanguageModel> {
    let key = (spec.to_string(), weights.map(str::to_string), compress);
    if !loaded.contains_key(&key) {
        loaded.insert(key.clone(), load()?);
    }
    Ok(loaded.get_mut(&key).expect("inserted above").as_mut())
}

/// The model spec that decodes an archive: the one the options name, else the archive's own
/// when its name is enough to load it.
fn archive_spec(header: &Header, options: &Options) -> Result<String> {
    match &options.choice {
        Choice::Model(m) => Ok(options.resolve(m)),
        Choice::Level(_) => {
            if models::loads_by_name(&header.model_name, &decoding_registry(options)) {
                Ok(header.model_name.clone())
            } else {
                Err(Error::Model(format!(
                    "the archive was made with model '{}' (fingerprint {}), which was loaded \
                     from a path: give that path as the model to decode with (-m PATH, or \
                     Options::model)",
                    header.model_name, header.fingerprint
                )))
            }
        }
    }
}

/// Where decoding looks models up: downloads only when the options allow them, or for a model
/// the user named.
fn decoding_registry(options: &Options) -> Registry {
    let named = matches!(options.choice, Choice::Model(_));
    if options.allow_download || named {
        options.registry.clone()
    } else {
        options.registry.clone().without_downloads()
    }
}

/// The model for a streaming [`Decoder`](crate::Decoder): what [`Session`] would load.
pub(crate) fn archive_model_for(
    header: &Header,
    options: &Options,
) -> Result<Box<dyn LanguageModel>> {
    let spec = archive_spec(header, options)?;
    let device = match options.device {
        Some(d) => models::device(d.name())?,
        None => models::device(&header.backend.device)?,
    };
    models::load(
        &spec,
        &device,
        Some(&header.backend.dtype),
        &decoding_registry(options),
    )
}

/// The model and schedule for a streaming [`Encoder`](crate::Encoder): what [`Session`] would
/// use, except that a stream is never recognised as a weight file.
pub(crate) fn compression_model_for(
    options: &Options,
) -> Result<(Box<dyn LanguageModel>, Schedule, codec::BinaryBlocks)> {
    match options.plan()? {
        Plan::Tensors => Err(Error::InvalidSetting(
            "the streaming Encoder codes with a model; weight files go through encode_all or \
             llmzip::tensors::compress"
                .into(),
        )),
        Plan::Model {
            spec,
            schedule,
            by_level,
        } => {
            let device = models::device(options.device.unwrap_or_default().name())?;
            let model = models::load_for_compression(
                &spec,
                &device,
                options.weights.as_deref(),
                &options.registry,
            )?;
            let schedule = Schedule::for_model(&schedule, model.info())?;
            Ok((model, schedule, binary_blocks(by_level)))
        }
    }
}
