//! Llama models from GGUF files: the metadata, the tokenizer stored in it, the tensors by
//! GGUF name, and the file's fingerprint.

use std::fs::File;
use std::io::{Read, Seek};
use std::path::Path;

use candle_core::quantized::{gguf_file, QTensor};
use candle_core::Device;
use sha2::{Digest, Sha256};

use super::weights::*;
use super::*;
use crate::models::rope::Rope;
use crate::models::transformer::Transformer;
use crate::models::{Backend, Fingerprint, ModelInfo};
use crate::tokenization::{BpeOptions, BpeTokenizer};
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
    if arch != "llama" {
        return Err(fail(format!(
            "architecture '{arch}' is not supported (only llama-family GGUF models are)"
        )));
    }
    let heads = meta.usize("llama.attention.head_count")?;
    let width = meta.usize("llama.embedding_length")?;
    let mut hyper = Hyper {
        heads,
        kv_heads: meta.usize("llama.attention.head_count_kv").unwrap_or(heads),
        layers: meta.usize("llama.block_count")?,
        width,
        ffn: meta.usize("llama.feed_forward_length").unwrap_or(4 * width),
        // The RoPE tables are built for the whole context at load: a file may not size them
        // freely.
        context: meta.usize("llama.context_length")?.min(MAX_MODEL_CONTEXT),
        eps: meta.f32("llama.attention.layer_norm_rms_epsilon")?,
        rope_base: meta.f32("llama.rope.freq_base").unwrap_or(10_000.0),
        vocab: 0,
    };

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
    let net = assemble(&hyper, format, Rope::Interleaved, source, device)?;

    let tokenizer = gguf_tokenizer(&meta)?;
    let vocab_size = hyper.vocab;
    if tokenizer.vocab_size() != vocab_size {
        return Err(fail(format!(
            "the tokenizer has {} tokens but the embedding {vocab_size}",
            tokenizer.vocab_size()
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
        default_window: DEFAULT_WINDOW.min(context as u64),
        default_segment_tokens: format.segment_tokens(),
    };
    Ok(Transformer::new(info, tokenizer, net))
}

/// The tokenizer stored in GGUF metadata, rebuilt as a byte-level BPE.
///
/// candle's own GGUF tokenizer helper does not know SmolLM2's pre-tokenizer ("smollm") and does
/// not round-trip; SmolLM2 splits digits individually, then applies GPT-2's byte-level split.
pub(super) fn gguf_tokenizer(meta: &Meta) -> Result<BpeTokenizer> {
    let model = meta.string("tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(Error::Model(format!(
            "{}: tokenizer type '{model}' is not supported (only byte-level BPE, 'gpt2', is)",
            meta.path.display()
        )));
    }
    let tokens = meta.strings("tokenizer.ggml.tokens")?;
    let merges = meta.strings("tokenizer.ggml.merges")?;
    let pre = meta.string("tokenizer.ggml.pre").unwrap_or_default();
    let options = BpeOptions {
        individual_digits: matches!(pre.as_str(), "smollm" | "llama3" | "llama-bpe"),
    };
    BpeTokenizer::from_vocab_and_merges(&tokens, &merges, options)
}

/// SHA-256 of the whole file, so any change to weights or tokenizer changes the fingerprint.
pub(super) fn file_fingerprint(file: &mut File) -> Result<Fingerprint> {
    file.rewind()?;
    Ok(Fingerprint::of(&[b"llmzip-gguf", &file_digest(file)?]))
}

/// SHA-256 of what `file` holds from where it stands, read in 1 MiB pieces.
pub(super) fn file_digest(file: &mut File) -> Result<[u8; 32]> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
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
    pub(super) fn strings(&self, key: &str) -> Result<Vec<String>> {
        self.get(key)?
            .to_vec()
            .map_err(|e| self.wrong(key, e))?
            .iter()
            .map(|v| v.to_string().cloned().map_err(|e| self.wrong(key, e)))
            .collect()
    }
}
