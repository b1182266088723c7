//! Llama models from GGUF files: the metadata, the tokenizer stored in it, the tensors by
//! GGUF name, and the file's fingerprint.

use std::fs::File;
use std::io::Seek;
use std::path::Path;

use candle_core::quantized::{gguf_file, QTensor};
use candle_core::Device;

use super::weights::*;
use super::*;
use crate::models::rope::Rope;
use crate::models::transformer::Transformer;
use crate::models::{Backend, Fingerprint, ModelInfo};
use crate::tokenization::{BpeOptions, BpeTokenizer, PieceKind, SpmTokenizer, Tokenizer};
use crate::{Error, Result};

/// Loads `path` with weights in `weights` (`f32`, `q8_0`, `native`, or the file's own format
/// name), ready to be driven by the codec.
pub fn load(path: &Path, weights: Option<&str>, device: &Device) -> Result<Transformer<Llama>> {
    let fail = |what: String| Error::Model(format!("{}: {what}", path.display()));
    let mut file = File::open(path).map_err(|e| fail(e.to_string()))?;
    let content = gguf_file::Content::read(&mut file)
        .map_err(|e| fail(format!("not a readable GGUF file ({e})")))?;
    let meta = Meta {
        content: &content,
        path,
    };
    let arch = meta.string("general.architecture")?;
    let gemma = match arch.as_str() {
        "llama" => false,
        "gemma3" => true,
        _ => {
            return Err(fail(format!(
                "architecture '{arch}' is not supported (llama-family and Gemma 3 GGUF models \
                 are)"
            )))
        }
    };
    let key = |k: &str| format!("{arch}.{k}");
    let heads = meta.usize(&key("attention.head_count"))?;
    let width = meta.usize(&key("embedding_length"))?;
    let mut hyper = Hyper {
        heads,
        kv_heads: meta.usize(&key("attention.head_count_kv")).unwrap_or(heads),
        layers: meta.usize(&key("block_count"))?,
        width,
        ffn: meta.usize(&key("feed_forward_length")).unwrap_or(4 * width),
        // The RoPE tables are built for the whole context at load: a file may not size them
        // freely.
        context: meta.usize(&key("context_length"))?.min(MAX_MODEL_CONTEXT),
        eps: meta.f32(&key("attention.layer_norm_rms_epsilon"))?,
        rope_base: meta.f32(&key("rope.freq_base")).unwrap_or(10_000.0),
        vocab: 0,
        head_dim: None,
        gemma: None,
    };
    if gemma {
        // Gemma 3's head width is its own (256 at a width of 640); keys and values share it.
        let (k, v) = (
            meta.usize(&key("attention.key_length"))?,
            meta.usize(&key("attention.value_length"))?,
        );
        if k != v {
            return Err(fail(format!(
                "keys of width {k} and values of width {v} are not supported"
            )));
        }
        hyper.head_dim = Some(k);
        // What llama.cpp fixes for every Gemma 3 (`llama-model.cpp`): five sliding-window
        // layers to a global one, and a RoPE base of 10,000 in the sliding ones.
        hyper.gemma = Some(GemmaHyper {
            window: meta.usize(&key("attention.sliding_window"))?,
            pattern: 6,
            local_rope_base: 10_000.0,
        });
    }

    let tensor = |file: &mut File, name: &str| -> Result<QTensor> {
        content
            .tensor(file, name, device)
            .map_err(|e| fail(format!("tensor {name}: {e}")))
    };
    hyper.vocab = content
        .tensor_infos
        .get("token_embd.weight")
        .map(|t| t.shape.dims().first().copied().unwrap_or(0))
        .ok_or_else(|| fail("tensor token_embd.weight is missing".into()))?;
    let native = tensor(&mut file, "blk.0.attn_q.weight")?.dtype();
    let native_name = format!("{native:?}").to_lowercase();
    let format = WeightFormat::parse(weights, Some(&native_name), device)?;
    let mut get = |name: &str| -> Result<Option<Weight>> {
        if !content.tensor_infos.contains_key(name) {
            return Ok(None);
        }
        Ok(Some(Weight::Quantized(tensor(&mut file, name)?)))
    };
    let source = Source {
        get: &mut get,
        own_name: &|name| name.to_string(),
        fail: &fail,
    };
    // llama.cpp permuted llama's query and key rows for adjacent pairs, not Gemma's (NEOX).
    let rope = if gemma {
        Rope::Halves
    } else {
        Rope::Interleaved
    };
    let net = assemble(&hyper, format, rope, source, device)?;

    let (tokenizer, tokens) = gguf_tokenizer(&meta)?;
    let vocab_size = hyper.vocab;
    if tokens != vocab_size {
        return Err(fail(format!(
            "the tokenizer has {tokens} tokens but the embedding {vocab_size}"
        )));
    }
    let bos = meta
        .u32("tokenizer.ggml.bos_token_id")
        .ok()
        .filter(|&b| (b as usize) < vocab_size)
        .ok_or_else(|| fail("no valid tokenizer.ggml.bos_token_id".into()))?;
    let dtype = format.name(&native_name);
    let context = hyper.context;
    let info = ModelInfo {
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        fingerprint: file_fingerprint(&mut file)?,
        vocab_size,
        bos,
        backend: Backend::of(device, &dtype),
        max_context: Some(context as u64),
        default_window: format.window(context),
        default_segment_tokens: format.segment_tokens(),
    };
    Ok(Transformer::new(info, tokenizer, net))
}

/// The tokenizer stored in GGUF metadata, and its number of tokens: a byte-level BPE
/// (`gpt2`) or a SentencePiece vocabulary with byte fallback (`llama`, Gemma's).
///
/// candle's own GGUF tokenizer helper does not know SmolLM2's pre-tokenizer ("smollm") and does
/// not round-trip; SmolLM2 splits digits individually, then applies GPT-2's byte-level split.
pub(super) fn gguf_tokenizer(meta: &Meta) -> Result<(Box<dyn Tokenizer>, usize)> {
    let model = meta.string("tokenizer.ggml.model")?;
    let tokens = meta.strings("tokenizer.ggml.tokens")?;
    let count = tokens.len();
    match model.as_str() {
        "gpt2" => {
            let merges = meta.strings("tokenizer.ggml.merges")?;
            let pre = meta.string("tokenizer.ggml.pre").unwrap_or_default();
            let options = BpeOptions {
                individual_digits: matches!(pre.as_str(), "smollm" | "llama3" | "llama-bpe"),
            };
            let bpe = BpeTokenizer::from_vocab_and_merges(&tokens, &merges, options)?;
            Ok((Box::new(bpe), count))
        }
        "llama" => {
            let key = "tokenizer.ggml.scores";
            let scores = meta.array(key, |v| v.to_f32())?;
            let key = "tokenizer.ggml.token_type";
            let kinds = meta.array(key, |v| {
                let t = v.to_i32()?;
                PieceKind::from_gguf(t)
                    .ok_or_else(|| candle_core::Error::Msg(format!("unknown token type {t}")))
            })?;
            let spm = SpmTokenizer::new(&tokens, &scores, &kinds)
                .map_err(|e| Error::Model(format!("{}: {e}", meta.path.display())))?;
            Ok((Box::new(spm), count))
        }
        _ => Err(Error::Model(format!(
            "{}: tokenizer type '{model}' is not supported (byte-level BPE, 'gpt2', and \
             SentencePiece with byte fallback, 'llama', are)",
            meta.path.display()
        ))),
    }
}

/// SHA-256 of the whole file, so any change to weights or tokenizer changes the fingerprint.
pub(super) fn file_fingerprint(file: &mut File) -> Result<Fingerprint> {
    file.rewind()?;
    Ok(Fingerprint::of(&[b"llmzip-gguf", &file_digest(file)?]))
}

/// SHA-256 of what `file` holds from where it stands, read in 1 MiB pieces.
pub(super) fn file_digest(file: &mut File) -> Result<[u8; 32]> {
    Ok(crate::identity::sha256_of(file)?)
}

/// Typed access to GGUF metadata with errors that name the file and key.
pub(super) struct Meta<'a> {
    pub(super) content: &'a gguf_file::Content,
    pub(super) path: &'a Path,
}

impl Meta<'_> {
    pub(super) fn get(&self, key: &str) -> Result<&gguf_file::Value> {
        self.content.metadata.get(key).ok_or_else(|| {
            Error::Model(format!(
                "{}: metadata key {key} is missing",
                self.path.display()
            ))
        })
    }
    pub(super) fn wrong(&self, key: &str, e: candle_core::Error) -> Error {
        Error::Model(format!("{}: metadata {key}: {e}", self.path.display()))
    }
    pub(super) fn string(&self, key: &str) -> Result<String> {
        self.get(key)?
            .to_string()
            .cloned()
            .map_err(|e| self.wrong(key, e))
    }
    pub(super) fn u32(&self, key: &str) -> Result<u32> {
        self.get(key)?.to_u32().map_err(|e| self.wrong(key, e))
    }
    pub(super) fn usize(&self, key: &str) -> Result<usize> {
        let v = self.get(key)?;
        v.to_u32()
            .map(|x| x as usize)
            .or_else(|_| v.to_u64().map(|x| x as usize))
            .map_err(|e| self.wrong(key, e))
    }
    pub(super) fn f32(&self, key: &str) -> Result<f32> {
        self.get(key)?.to_f32().map_err(|e| self.wrong(key, e))
    }
    /// An array of `key`, each element through `each`.
    pub(super) fn array<T>(
        &self,
        key: &str,
        each: impl Fn(&gguf_file::Value) -> candle_core::Result<T>,
    ) -> Result<Vec<T>> {
        self.get(key)?
            .to_vec()
            .map_err(|e| self.wrong(key, e))?
            .iter()
            .map(|v| each(v).map_err(|e| self.wrong(key, e)))
            .collect()
    }
    pub(super) fn strings(&self, key: &str) -> Result<Vec<String>> {
        self.get(key)?
            .to_vec()
            .map_err(|e| self.wrong(key, e))?
            .iter()
            .map(|v| v.to_string().cloned().map_err(|e| self.wrong(key, e)))
            .collect()
    }
}
