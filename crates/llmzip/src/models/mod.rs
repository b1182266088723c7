//! Language models behind one trait, so the codec never knows which model it drives.
//!
//! Adding a model means one new file implementing [`LanguageModel`] plus one line in [`load`].

mod activation;
mod bit_mix;
mod device;
pub mod fast;
mod glibc;
pub mod gpt2;
mod int8;
mod kv8;
pub mod llama;
mod llama_own;
mod matmul;
pub(crate) mod rng;
mod rnn;
mod rope;
#[cfg(test)]
pub(crate) mod testing;
mod token_mix;
mod transformer;

use std::path::Path;

use candle_core::Device;

pub use bit_mix::{BitMixed, Version as MixingVersion};
pub use device::{
    archive_portability, device, platform, portability, Portability, F32_PORTABLE, INT8_KV8,
    PORTABLE_DTYPES,
};
#[cfg(feature = "train")]
pub(crate) use rnn::RnnLayer;
pub use rnn::{save_dir, Activations, Cell, Rnn, RnnConfig, CONFIG_FILE, WEIGHTS_FILE};
pub use token_mix::TokenMixed;
pub use transformer::{Transformer, TransformerNet};

use crate::registry::Registry;
use crate::tokenization::Tokenizer;
use crate::{Error, Result};

pub use crate::format::{Backend, Fingerprint};

/// What a model is, for headers and messages.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// Name users pass to `-m` (`gru`), or the directory name of a model loaded from a path.
    pub name: String,
    /// Hash of weights, configuration and (for wrappers) parameters.
    pub fingerprint: Fingerprint,
    /// Number of symbols the model predicts.
    pub vocab_size: usize,
    /// Token fed at the first step of every segment, before any real symbol.
    pub bos: u32,
    /// Device, dtype and CPU family the probabilities are computed with.
    pub backend: Backend,
    /// Most positions the model can attend to (`None`: unbounded, e.g. recurrent models).
    pub max_context: Option<u64>,
    /// Context window the codec uses unless told otherwise (0: none needed).
    pub default_window: u64,
    /// Segment length (in tokens) the codec aims for unless told otherwise.
    pub default_segment_tokens: u64,
}

/// The shape of one block's lockstep batch, as far as it sizes a model's working memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchShape {
    /// Lockstep rows.
    pub rows: u64,
    /// Most context positions a row holds at once (steps since the last reset).
    pub positions: u64,
    /// Tokens per row prefilled at a context-window slide (0: no slide in this block).
    pub prefill: u64,
    /// Original bytes of the block.
    pub block_len: u64,
    /// Tokens of the block, all rows together.
    pub tokens: u64,
}

/// Segment length for recurrent models: long segments, since their state carries all context.
pub const RNN_SEGMENT_TOKENS: u64 = 8 << 10;

/// Segment length for transformers other than `int8` llamas (candle's f32 and q8_0, llmzip's
/// `f32-portable` llama and GPT-2),
/// chosen by measurement on alice29 (docs/models.md).
pub const TRANSFORMER_SEGMENT_TOKENS: u64 = 1 << 10;

/// Segment length for llamas in the `int8` format (the CPU default): 1.5 K tokens. Measured on
/// the first 150,000 bytes of a validation text (docs.html): 0.838 → 0.791 bits per byte
/// against 1 K-token rows, at 922 instead of 1,014 B/s (docs/models.md, "Rows for int8").
pub const INT8_SEGMENT_TOKENS: u64 = 1536;

/// Segment length for llamas in the `int8-kv8` format (the CPU default since llmzip 0.5.0),
/// with its window ([`llama::KV8_WINDOW`]): rows of 3 K tokens whose cache is shifted past 768
/// positions. On alice29 with `smollm2-cm2` this gave 1.0906 bits per byte at 2.34 KB/s and a
/// peak of 567 MiB, where rows of 1.5 K tokens in a window of 2,048 gave 1.0982 at 2.15 KB/s and
/// 967 MiB in the same hour (docs/models.md, "Frontier on alice29").
pub const KV8_SEGMENT_TOKENS: u64 = 3072;

/// A next-symbol predictor shaped for lockstep batches.
///
/// The codec holds `rows` independent streams and asks for all of their next-symbol distributions
/// at once, one step at a time. Implementations must be deterministic: the same sequence of
/// `start_block`/`slide`/`step` calls must give bit-identical probabilities, whatever the thread count.
pub trait LanguageModel: Send {
    /// What the model is: name, fingerprint, vocabulary, defaults.
    fn info(&self) -> &ModelInfo;

    /// The tokenizer whose ids this model predicts.
    fn tokenizer(&self) -> &dyn Tokenizer;

    /// Working memory, in bytes, that a block of this shape needs beyond the weights: an upper
    /// estimate (saturating arithmetic), not an exact count.
    ///
    /// It exists so that the *decoder* decides how much memory an archive may make it use: the
    /// codec checks every block's claims against its [`Limits`](crate::codec::Limits) before the
    /// model allocates anything, and the encoder never writes a block those limits refuse.
    fn working_memory(&self, shape: &BatchShape) -> u64;

    /// Starts a block: `rows` empty streams, discarding all state, statistics learned online
    /// included. Blocks are independent, so this is the only way state may be cleared between
    /// them.
    fn start_block(&mut self, rows: usize) -> Result<()>;

    /// Slides the context window: forgets each row's context (recurrent state, KV cache) so that
    /// the codec can re-feed the most recent tokens with [`prefill`](Self::prefill). Statistics
    /// the model learns online from the whole block (counts, mixer weights) may survive, and
    /// should: that is why this is not [`start_block`](Self::start_block). Models without such
    /// statistics implement it as `start_block`.
    fn slide(&mut self, rows: usize) -> Result<()>;

    /// Slides the context window by keeping, in every row, the first position (the BOS the row
    /// began with, which attention leans on) and the last `keep − 2` positions, renumbered to
    /// follow it, so that the next [`step`](Self::step) is the row's `keep`-th position: what
    /// [`slide`](Self::slide) and a [`prefill`](Self::prefill) of BOS, the last `keep − 2`
    /// tokens fed and the new input would leave, without computing the kept positions again.
    /// Returns `false`, changing nothing, where the model does not (the codec then slides and
    /// prefills). Whether a model shifts must follow from its archive header (for transformers,
    /// the `int8-kv8` dtype: `models/kv8.rs`), since both sides must slide alike.
    fn shift(&mut self, keep: usize) -> Result<bool> {
        let _ = keep;
        Ok(false)
    }

    /// Feeds one token per row and returns the next-token probabilities, `rows × vocab_size`,
    /// row-major.
    fn step(&mut self, inputs: &[u32]) -> Result<Vec<f32>>;

    /// Feeds `len` tokens per row (`tokens` is `rows × len`, row-major) and returns the
    /// probabilities after the last one, like `len` calls of [`step`](Self::step) would.
    ///
    /// Transformers compute this in one pass, which is faster but rounds differently from
    /// single steps; the codec uses it at the same points on both sides (after a context-window
    /// slide), so the difference never matters for decoding.
    fn prefill(&mut self, tokens: &[u32], len: usize) -> Result<Vec<f32>> {
        let rows = tokens.len() / len.max(1);
        let mut probs = Vec::new();
        for t in 0..len {
            let column: Vec<u32> = (0..rows).map(|r| tokens[r * len + t]).collect();
            probs = self.step(&column)?;
        }
        Ok(probs)
    }

    /// Hands back a vector that [`step`](Self::step) or [`prefill`](Self::prefill) returned,
    /// once its probabilities have been used, so that the next step can write into its memory
    /// instead of fresh pages (for SmolLM2 8 MiB per step, whose zeroing by the kernel took 5 % of
    /// a run). Optional for both sides: the default drops it.
    fn recycle(&mut self, probs: Vec<f32>) {
        drop(probs);
    }

    /// A model that predicts one bit at a time returns itself here; the codec then codes each
    /// of its blocks bit by bit in one stream with the binary coder, and never calls
    /// [`step`](Self::step) or [`prefill`](Self::prefill). Such a model has the byte tokenizer.
    /// The default, `None`, is a model of whole distributions.
    fn bits(&mut self) -> Option<&mut dyn BitPredictor> {
        None
    }
}

/// A model that predicts the next bit of a byte stream (bytes most significant bit first), for
/// the binary coder ([`LanguageModel::bits`]). Deterministic like every model: the same bits
/// after the same [`LanguageModel::start_block`] give the same predictions.
pub trait BitPredictor {
    /// P(next bit = 1) in 1/65536 units, within the binary coder's range
    /// ([`crate::coder::binary::MIN_P`] to 65536 − `MIN_P`).
    fn predict(&mut self) -> u32;

    /// Learns the bit that came (after [`predict`](Self::predict)).
    fn update(&mut self, bit: bool);
}

/// The identity of a model that wraps a byte-level `inner` model with adaptive statistics:
/// named `<inner>-<suffix>`, fingerprinted by the inner fingerprint, a tag and the parameters
/// that change predictions. Models over more than bytes are refused.
pub(crate) fn byte_wrapper_info(
    inner: &dyn LanguageModel,
    suffix: &str,
    tag: &str,
    params: &str,
) -> Result<ModelInfo> {
    let base = inner.info().clone();
    if base.vocab_size != 256 {
        return Err(Error::Model(format!(
            "'-{suffix}' works only on byte-level models such as gru; '{}' predicts {} tokens",
            base.name, base.vocab_size
        )));
    }
    Ok(wrapper_info(base, suffix, tag, params))
}

/// The identity of any wrapper over a model described by `base`: named `<base>-<suffix>`,
/// fingerprinted by `tag`, the base's fingerprint and the wrapper's parameters.
pub(crate) fn wrapper_info(base: ModelInfo, suffix: &str, tag: &str, params: &str) -> ModelInfo {
    ModelInfo {
        name: format!("{}-{suffix}", base.name),
        fingerprint: Fingerprint::of(&[tag.as_bytes(), &base.fingerprint.0, params.as_bytes()]),
        ..base
    }
}

/// The last token of each of `rows` rows of a prefill (`tokens` is `rows × len`, row-major):
/// what a wrapper that has learned the re-fed tokens before still has to learn. Refuses a
/// prefill whose shape does not match the batch.
pub(crate) fn last_of_rows(tokens: &[u32], rows: usize, len: usize) -> Result<Vec<u32>> {
    if len == 0 || tokens.len() != rows * len {
        return Err(Error::InvalidSetting(format!(
            "prefill of {} tokens on a batch of {rows} rows of {len}",
            tokens.len()
        )));
    }
    Ok((0..rows).map(|r| tokens[r * len + len - 1]).collect())
}

/// Refuses a step whose input count is not the batch's row count.
pub(crate) fn check_step(inputs: &[u32], rows: usize) -> Result<()> {
    if inputs.len() == rows {
        Ok(())
    } else {
        Err(Error::InvalidSetting(format!(
            "step with {} inputs on a batch of {rows}",
            inputs.len()
        )))
    }
}

/// Names accepted by `-m` besides paths, the current ones first (`crate::catalogue` describes
/// each; its tests check that every name here is catalogued). `fast1` is context mixing alone,
/// coded bit by bit ([`fast`]). `gru`, `gru2`, `gru3` and `gru4` are the embedded GRUs (each
/// trained on further than the one before; `gru3` and `gru4` compute with portable activations,
/// and `gru4` is the mean of its run's last checkpoints). `NAME-cmN` wraps a
/// byte-level model in bitwise context-mixing version N ([`BitMixed`], [`MixingVersion`]);
/// every version works over every GRU (`gru2-cm4`) and over a directory path. Over a token
/// model (SmolLM2, GPT-2, a llama) `NAME-cm` is the adaptive bias head and `NAME-cm2` that with
/// token match models ([`TokenMixed`]). The list names the usual combinations.
pub const BUILTIN_MODELS: &[&str] = &[
    fast::NAME,
    "gru4-cm5",
    "smollm2-cm2",
    "gru",
    "gru-cm",
    "gru-cm2",
    "gru-cm3",
    "gru-cm4",
    "gru-cm5",
    "gru2",
    "gru2-cm5",
    "gru3",
    "gru3-cm5",
    "gru4",
    "smollm2",
    "smollm2-cm",
    "gemma3-cm2",
    "gemma3",
    "gpt2",
    "distilgpt2",
];

/// The model used when none is given: the fourth embedded GRU (portable activations) with
/// bitwise context mixing, version 5 (`gru3-cm5`, `gru2-cm5`, `gru-cm4` and `gru-cm` were the
/// defaults before; their archives keep decoding by name).
pub const DEFAULT_MODEL: &str = "gru4-cm5";

/// The wrappers a model name's suffix asks for: `NAME-cmN` is mixing version N over a byte
/// model ([`BitMixed`]); over a token model (SmolLM2, GPT-2, a llama) `-cm` is the adaptive bias
/// head and `-cm2` that with token match models ([`TokenMixed`]). No suffix ends another (`-cm`
/// vs `-cm2`), and the newest versions are tried first.
fn wrapper_for(spec: &str) -> Option<(&str, bit_mix::Version)> {
    bit_mix::Version::ALL.into_iter().find_map(|version| {
        spec.strip_suffix(version.suffix())
            .and_then(|rest| rest.strip_suffix('-'))
            .map(|base| (base, version))
    })
}

/// Wraps `inner` in mixing `version`: bitwise over a byte model, token mixing (versions 1 and 2
/// only) over a token model.
fn wrap(
    inner: Box<dyn LanguageModel>,
    version: bit_mix::Version,
) -> Result<Box<dyn LanguageModel>> {
    use bit_mix::Version;
    let token_model = inner.info().vocab_size > 256;
    match (token_model, version) {
        (true, Version::Cm1) => Ok(Box::new(TokenMixed::new(inner)?)),
        (true, Version::Cm2) => Ok(Box::new(TokenMixed::refined(inner)?)),
        _ => Ok(Box::new(BitMixed::new(inner, version)?)),
    }
}

/// Loads a model by built-in name or path.
///
/// `weights` picks the weight format where a model offers several (GGUF: `f32`, `q8_0`, or the
/// file's own; Hugging Face llama: `f32` or `q8_0`); `None` takes the model's default. Paths
/// may be a GGUF file, a llama or GPT-2 directory in Hugging Face layout, or a directory
/// written by `llmzip train`. Downloaded models (`smollm2`, `gpt2`, `distilgpt2`, and Hugging
/// Face ids such as `HuggingFaceTB/SmolLM2-135M`) are looked up in `registry`.
pub fn load(
    spec: &str,
    device: &Device,
    weights: Option<&str>,
    registry: &Registry,
) -> Result<Box<dyn LanguageModel>> {
    // A wrapper suffix, unless the whole spec names an existing file or directory.
    if !Path::new(spec).exists() {
        if let Some((base, version)) = wrapper_for(spec) {
            let mut inner = load(base, device, weights, registry)?;
            if inner.bits().is_some() {
                return Err(Error::Model(format!(
                    "'{base}' predicts one bit at a time and cannot be wrapped ('{spec}')"
                )));
            }
            return wrap(inner, version);
        }
    }
    let only_f32 = |model: Box<dyn LanguageModel>| match weights {
        None | Some("f32" | F32_PORTABLE) => Ok(model),
        Some(w) => Err(Error::InvalidSetting(format!(
            "model '{spec}' only has f32 weights, not '{w}'"
        ))),
    };
    if let Some(model) = Rnn::builtin(spec, device) {
        return only_f32(Box::new(model?));
    }
    match spec {
        fast::NAME => match weights {
            None | Some("int") => Ok(Box::new(fast::Fast::new())),
            Some(w) => Err(Error::InvalidSetting(format!(
                "model '{spec}' has no weights to choose a format for (it computes with \
                 integers), not '{w}'"
            ))),
        },
        "smollm2" => {
            let path = registry.smollm2()?;
            let mut model = llama::load(&path, weights, device)?;
            model.rename("smollm2");
            Ok(Box::new(model))
        }
        "gemma3" => {
            let path = registry.gemma3()?;
            let mut model = llama::load(&path, weights, device)?;
            model.rename("gemma3");
            Ok(Box::new(model))
        }
        "gpt2" | "distilgpt2" => {
            let dir = registry.gpt2_dir(spec)?;
            Ok(Box::new(gpt2::load(&dir, spec, weights, device)?))
        }
        _ => {
            let path = Path::new(spec);
            if !path.exists() && is_plain_name(spec) {
                if let Some(dir) = registry.find(spec).filter(|p| p.is_dir()) {
                    return load_dir(&dir, spec, weights, device);
                }
                if let Some(file) = registry.find(&format!("{spec}.gguf")) {
                    let mut model = llama::load(&file, weights, device)?;
                    model.rename(spec);
                    return Ok(Box::new(model));
                }
            }
            if path.is_file() {
                Ok(Box::new(llama::load(path, weights, device)?))
            } else if path.is_dir() {
                let name = dir_name(path);
                load_dir(path, &name, weights, device)
            } else if is_hub_id(spec) {
                let dir = registry.hub_dir(spec)?;
                load_dir(&dir, spec, weights, device)
            } else {
                Err(Error::Model(format!(
                    "'{spec}' is neither a built-in model ({}; `llmzip models` says what each is \
                     for), nor an existing path, nor a model in a directory of LLMZIP_MODELS, \
                     nor a Hugging Face model id (owner/name)",
                    BUILTIN_MODELS.join(", ")
                )))
            }
        }
    }
}

/// [`load`] for making new archives: the same, except that `f32` on the CPU means the portable
/// f32 network (`f32-portable`). candle's f32 kernels stay what `f32` in an archive header means,
/// so that archives made with them keep decoding, but on the CPU they are machine-bound
/// ([`Portability`]), and no new archive should be.
pub fn load_for_compression(
    spec: &str,
    device: &Device,
    weights: Option<&str>,
    registry: &Registry,
) -> Result<Box<dyn LanguageModel>> {
    let weights = match weights {
        Some("f32") if device.is_cpu() => Some(F32_PORTABLE),
        w => w,
    };
    load(spec, device, weights, registry)
}

/// A model directory, by what its `config.json` says: a Hugging Face llama or GPT-2, else one
/// written by `llmzip train`.
fn load_dir(
    dir: &Path,
    name: &str,
    weights: Option<&str>,
    device: &Device,
) -> Result<Box<dyn LanguageModel>> {
    let only_f32 = |model: Box<dyn LanguageModel>| match weights {
        None | Some("f32" | F32_PORTABLE) => Ok(model),
        Some(w) => Err(Error::InvalidSetting(format!(
            "model '{name}' only has f32 weights, not '{w}'"
        ))),
    };
    if llama::is_hf_dir(dir) {
        Ok(Box::new(llama::load_hf(dir, name, weights, device)?))
    } else if gpt2::is_gpt2_dir(dir) {
        Ok(Box::new(gpt2::load(dir, name, weights, device)?))
    } else {
        only_f32(Box::new(Rnn::from_dir(dir, device)?))
    }
}

/// A Hugging Face directory's `config.json`, parsed as `T` (a `kind` config, for the message),
/// with its bytes (for the fingerprint).
pub(crate) fn read_config<T: serde::de::DeserializeOwned>(
    dir: &Path,
    kind: &str,
) -> Result<(T, Vec<u8>)> {
    let fail = |what: String| Error::Model(format!("{}: {what}", dir.display()));
    let bytes = std::fs::read(dir.join("config.json"))
        .map_err(|e| fail(format!("cannot read config.json: {e}")))?;
    let config = serde_json::from_slice(&bytes)
        .map_err(|e| fail(format!("config.json is not a {kind} config: {e}")))?;
    Ok((config, bytes))
}

/// True if `spec` has the form of a Hugging Face model id, `owner/name` (letters, digits,
/// `-`, `_`, `.`; neither part starting with `.`).
pub fn is_hub_id(spec: &str) -> bool {
    spec.split_once('/')
        .is_some_and(|(owner, name)| is_plain_name(owner) && is_plain_name(name))
}

/// True if an archive's model name is enough to load its model: a built-in name, a Hugging
/// Face model id (looked up in the registry, the Hugging Face cache, then the Hub), or a model
/// directory (or `NAME.gguf`) of that name in one of `registry`'s directories. Other models
/// loaded from a path are named by their directory or file and need the path again.
pub fn loads_by_name(name: &str, registry: &Registry) -> bool {
    BUILTIN_MODELS.contains(&name)
        || is_hub_id(name)
        || Rnn::embedded_names().any(|n| n == name)
        || (is_plain_name(name)
            && (registry.find(name).is_some_and(|p| p.is_dir())
                || registry.find(&format!("{name}.gguf")).is_some()))
        // Any mixing version over a model that loads by name (`gru2-cm4`, `smollm2-cm`),
        // listed or not.
        || wrapper_for(name).is_some_and(|(base, _)| loads_by_name(base, registry))
}

/// True if `name` is a GRU compiled into the binary, under any mixing wrappers (`gru4-cm5`).
pub(crate) fn is_embedded_byte_model(name: &str) -> bool {
    Rnn::embedded_names().any(|n| n == name)
        || wrapper_for(name).is_some_and(|(base, _)| is_embedded_byte_model(base))
}

/// A name that can only mean an entry of a model directory: letters, digits, `-`, `_`, `.`, not
/// starting with `.` (so never a path that leaves the directory).
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The last component of a model directory's path, as the model's name.
pub(crate) fn dir_name(path: &Path) -> String {
    path.canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: an archive of `gru2-cm4` (a mixing version over the second embedded GRU that
    /// `BUILTIN_MODELS` does not list) was refused by `decompress` as if loaded from a path.
    #[test]
    fn every_mixing_version_of_an_embedded_gru_loads_by_name() {
        let none = Registry::with_dirs([]);
        for name in [
            "gru", "gru2", "gru3", "gru-cm", "gru-cm4", "gru-cm5", "gru2-cm4", "gru2-cm2",
            "gru3-cm5", "gru4", "gru4-cm5",
        ] {
            assert!(loads_by_name(name, &none), "{name}");
            let model = load(name, &Device::Cpu, None, &Registry::default()).unwrap();
            assert_eq!(model.info().name, name);
        }
        for name in ["mymodel", "mymodel-cm4", "gru5-cm5", "gru2-cm9", "-cm4"] {
            assert!(!loads_by_name(name, &none), "{name}");
        }
    }

    /// Regression: `decompress` refused a `smollm2-cm` archive as if its model had been loaded
    /// from a path, because only wrappers over embedded GRUs were known to load by name.
    #[test]
    fn wrappers_over_downloaded_and_hub_models_load_by_name() {
        let none = Registry::with_dirs([]);
        for name in [
            "smollm2-cm",
            "smollm2-cm2",
            "gpt2-cm",
            "HuggingFaceTB/SmolLM2-135M-cm2",
        ] {
            assert!(loads_by_name(name, &none), "{name}");
        }
        assert!(!loads_by_name("mymodel.gguf-cm", &none));
    }

    /// Models in a registry directory load by their name (how the golden archives of the tiny
    /// test models find them), wrapped or not; names that are paths never reach outside it.
    #[test]
    fn models_in_a_registry_directory_load_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = RnnConfig::new(Cell::Gru, 4, 8, 1);
        let model_dir = dir.path().join("tiny");
        save_dir(
            &model_dir,
            &cfg,
            &cfg.init_weights(5, &Device::Cpu).unwrap(),
        )
        .unwrap();
        let registry = Registry::with_dirs([dir.path().to_path_buf()]);
        for name in ["tiny", "tiny-cm5"] {
            assert!(loads_by_name(name, &registry), "{name}");
            let model = load(name, &Device::Cpu, None, &registry).unwrap();
            assert_eq!(model.info().name, name);
        }
        assert!(!loads_by_name("tiny", &Registry::with_dirs([])));
        assert!(!loads_by_name(
            "../tiny",
            &Registry::with_dirs([model_dir.join("x")])
        ));
        assert!(!is_plain_name(".hidden") && !is_plain_name("a/b") && is_plain_name("a.b-c_1"));
    }
}
