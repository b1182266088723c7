//! Llama-family models from GGUF files (SmolLM2-135M first), with the tokenizer read from the
//! file's metadata.
//!
//! Adapted from candle-transformers' `quantized_llama`, which lacks what the codec needs: a way
//! to reset the KV cache between batches, a cache that does not copy itself on every step,
//! grouped-query attention without repeating keys, logits computed for the last position only
//! (a prefill of 32 rows × 512 tokens would otherwise produce 3 GB of logits), and a choice of
//! weight format.
//!
//! ## Weight formats
//! * `f32`: every matrix dequantized once at load. Slowest single-stream but the only format
//!   whose matrix kernels get faster with the lockstep batch (one large matmul per step): the
//!   CPU default.
//! * `q8_0`: requantized once at load; fast single-stream, flat with batch size.
//! * the file's own format (e.g. `q4_1`), as stored.
//!
//! The format changes the probabilities, so it is recorded in the archive header as the
//! backend's dtype and the decoder loads the same one.

use std::fs::File;
use std::io::{Read, Seek};
use std::path::Path;
use std::sync::Arc;

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use sha2::{Digest, Sha256};

use super::transformer::{self, KvCache, NetShape, Transformer, TransformerNet};
use super::{Backend, Fingerprint, ModelInfo};
use crate::tokenization::{BpeOptions, BpeTokenizer};
use crate::{Error, Result};

/// Weight format used when none is asked for.
pub const DEFAULT_WEIGHTS: &str = "f32";

/// Most positions llmzip attends over with a GGUF model, whatever its metadata claims (RoPE tables
/// of this length take 32 MiB at a head width of 64).
const MAX_MODEL_CONTEXT: usize = 1 << 17;

/// Default context window in tokens, chosen by measurement (docs/models.md).
pub const DEFAULT_WINDOW: u64 = 2048;

struct Layer {
    attn_norm: Tensor,
    wq: Matrix,
    wk: Matrix,
    wv: Matrix,
    wo: Matrix,
    ffn_norm: Tensor,
    gate: Matrix,
    up: Matrix,
    down: Matrix,
    cache: KvCache,
}

/// The network of a llama-family GGUF model.
pub struct Llama {
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    output: Matrix,
    cos: Tensor,
    sin: Tensor,
    heads: usize,
    kv_heads: usize,
    eps: f32,
    device: Device,
    shape: NetShape,
}

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
    let kv_heads = meta.usize("llama.attention.head_count_kv").unwrap_or(heads);
    let layers = meta.usize("llama.block_count")?;
    let width = meta.usize("llama.embedding_length")?;
    // The RoPE tables are built for the whole context at load: a file may not size them freely.
    let context = meta.usize("llama.context_length")?.min(MAX_MODEL_CONTEXT);
    let eps = meta.f32("llama.attention.layer_norm_rms_epsilon")?;
    let rope_base = meta.f32("llama.rope.freq_base").unwrap_or(10_000.0);
    if heads == 0 || kv_heads == 0 || heads % kv_heads != 0 || width % heads != 0 {
        return Err(fail(format!(
            "inconsistent shape: {heads} heads, {kv_heads} key/value heads, width {width}"
        )));
    }
    let head_dim = width / heads;
    let ffn = meta.usize("llama.feed_forward_length").unwrap_or(4 * width);

    let tensor = |file: &mut File, name: &str| -> Result<QTensor> {
        content
            .tensor(file, name, device)
            .map_err(|e| fail(format!("tensor {name}: {e}")))
    };
    let native = tensor(&mut file, "blk.0.attn_q.weight")?.dtype();
    let native_name = format!("{native:?}").to_lowercase();
    let format = match weights.unwrap_or(DEFAULT_WEIGHTS) {
        "f32" => WeightFormat::F32,
        "q8_0" => WeightFormat::Q8_0,
        w if w == "native" || w == native_name => WeightFormat::Native,
        other => {
            return Err(Error::InvalidSetting(format!(
                "weight format '{other}' is not available for this model (use f32, q8_0 or \
                 {native_name})"
            )))
        }
    };
    let matrix = |file: &mut File, name: &str| -> Result<Matrix> {
        format.matmul(tensor(file, name)?, device)
    };
    let vector = |file: &mut File, name: &str| -> Result<Tensor> {
        Ok(tensor(file, name)?.dequantize(device)?)
    };

    let embed_q = tensor(&mut file, "token_embd.weight")?;
    let embed = embed_q.dequantize(device)?;
    let output = if content.tensor_infos.contains_key("output.weight") {
        matrix(&mut file, "output.weight")?
    } else {
        format.matmul(embed_q, device)?
    };
    let norm = vector(&mut file, "output_norm.weight")?;
    let mut blocks = Vec::with_capacity(layers);
    for i in 0..layers {
        let p = |s: &str| format!("blk.{i}.{s}.weight");
        blocks.push(Layer {
            attn_norm: vector(&mut file, &p("attn_norm"))?,
            wq: matrix(&mut file, &p("attn_q"))?,
            wk: matrix(&mut file, &p("attn_k"))?,
            wv: matrix(&mut file, &p("attn_v"))?,
            wo: matrix(&mut file, &p("attn_output"))?,
            ffn_norm: vector(&mut file, &p("ffn_norm"))?,
            gate: matrix(&mut file, &p("ffn_gate"))?,
            up: matrix(&mut file, &p("ffn_up"))?,
            down: matrix(&mut file, &p("ffn_down"))?,
            cache: KvCache::new(context),
        });
    }
    let (cos, sin) = rope_tables(context, head_dim, rope_base, device)?;

    let tokenizer = gguf_tokenizer(&meta)?;
    let vocab_size = embed.dim(0)?;
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
    let dtype = match format {
        WeightFormat::F32 => "f32".to_string(),
        WeightFormat::Q8_0 => "q8_0".to_string(),
        WeightFormat::Native => native_name,
    };
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
        default_segment_tokens: super::TRANSFORMER_SEGMENT_TOKENS,
    };
    let net = Llama {
        embed,
        layers: blocks,
        norm,
        output,
        cos,
        sin,
        heads,
        kv_heads,
        eps,
        device: device.clone(),
        shape: NetShape {
            layers,
            width,
            ffn,
            heads,
            kv_heads,
            head_dim,
            vocab: vocab_size,
        },
    };
    Ok(Transformer::new(info, tokenizer, net))
}

impl TransformerNet for Llama {
    fn forward(&mut self, ids: &Tensor, pos: usize) -> Result<Tensor> {
        let (rows, len) = ids.dims2()?;
        let width = self.embed.dim(1)?;
        let mut h = self
            .embed
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((rows, len, width))?;
        let cos = self.cos.narrow(0, pos, len)?;
        let sin = self.sin.narrow(0, pos, len)?;
        for layer in &mut self.layers {
            let x = candle_nn::ops::rms_norm(&h, &layer.attn_norm, self.eps)?;
            let q = transformer::split_heads(&apply(&layer.wq, &x)?, self.heads)?;
            let k = transformer::split_heads(&apply(&layer.wk, &x)?, self.kv_heads)?;
            let v = transformer::split_heads(&apply(&layer.wv, &x)?, self.kv_heads)?;
            let q = candle_nn::rotary_emb::rope_i(&q, &cos, &sin)?;
            let k = candle_nn::rotary_emb::rope_i(&k, &cos, &sin)?;
            let (k, v) = layer.cache.append(&k, &v)?;
            let attn = transformer::causal_attention(&q, &k, &v)?;
            h = (h + apply(&layer.wo, &attn)?)?;
            let x = candle_nn::ops::rms_norm(&h, &layer.ffn_norm, self.eps)?;
            let gated = (candle_nn::ops::silu(&apply(&layer.gate, &x)?)? * apply(&layer.up, &x)?)?;
            h = (h + apply(&layer.down, &gated)?)?;
        }
        let last =
            candle_nn::ops::rms_norm(&transformer::last_position(&h)?, &self.norm, self.eps)?;
        apply(&self.output, &last)
    }

    fn clear_cache(&mut self) {
        for layer in &mut self.layers {
            layer.cache.clear();
        }
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn shape(&self) -> NetShape {
        self.shape
    }
}

/// A weight matrix: dequantized and stored transposed (`in × out`, contiguous, which the f32
/// matmul kernels read without repacking), or quantized (`out × in`, ggml layout).
enum Matrix {
    Dense(Tensor),
    Quantized(QMatMul),
}

/// `w` applied to the last dimension of `x` (any rank), as one 2-D matmul.
fn apply(w: &Matrix, x: &Tensor) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let flat = x.flatten_to(dims.len().saturating_sub(2))?.contiguous()?;
    let y = match w {
        Matrix::Dense(w) => flat.matmul(w)?,
        Matrix::Quantized(w) => w.forward(&flat)?,
    };
    let mut out = dims;
    *out.last_mut().expect("rank >= 1") = y.dim(1)?;
    Ok(y.reshape(out)?)
}

#[derive(Clone, Copy)]
enum WeightFormat {
    F32,
    Q8_0,
    Native,
}

impl WeightFormat {
    fn matmul(self, q: QTensor, device: &Device) -> Result<Matrix> {
        Ok(match self {
            WeightFormat::F32 => Matrix::Dense(q.dequantize(device)?.t()?.contiguous()?),
            WeightFormat::Q8_0 if q.dtype() != GgmlDType::Q8_0 => {
                Matrix::Quantized(QMatMul::QTensor(Arc::new(QTensor::quantize(
                    &q.dequantize(device)?,
                    GgmlDType::Q8_0,
                )?)))
            }
            WeightFormat::Q8_0 | WeightFormat::Native => {
                Matrix::Quantized(QMatMul::QTensor(Arc::new(q)))
            }
        })
    }
}

/// Interleaved RoPE tables for positions `0..context` (`context × head_dim/2`).
fn rope_tables(
    context: usize,
    head_dim: usize,
    base: f32,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let half = head_dim / 2;
    let mut cos = Vec::with_capacity(context * half);
    let mut sin = Vec::with_capacity(context * half);
    for p in 0..context {
        for i in 0..half {
            let freq = 1.0 / (base as f64).powf(2.0 * i as f64 / head_dim as f64);
            let angle = p as f64 * freq;
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    Ok((
        Tensor::from_vec(cos, (context, half), device)?,
        Tensor::from_vec(sin, (context, half), device)?,
    ))
}

/// The tokenizer stored in GGUF metadata, rebuilt as a byte-level BPE.
///
/// candle's own GGUF tokenizer helper does not know SmolLM2's pre-tokenizer ("smollm") and does
/// not round-trip; SmolLM2 splits digits individually, then applies GPT-2's byte-level split.
fn gguf_tokenizer(meta: &Meta) -> Result<BpeTokenizer> {
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
fn file_fingerprint(file: &mut File) -> Result<Fingerprint> {
    file.rewind()?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(Fingerprint::of(&[b"llmzip-gguf", &h.finalize()]))
}

/// Typed access to GGUF metadata with errors that name the file and key.
struct Meta<'a> {
    content: &'a gguf_file::Content,
    path: &'a Path,
}

impl Meta<'_> {
    fn get(&self, key: &str) -> Result<&gguf_file::Value> {
        self.content.metadata.get(key).ok_or_else(|| {
            Error::Model(format!(
                "{}: metadata key {key} is missing",
                self.path.display()
            ))
        })
    }
    fn wrong(&self, key: &str, e: candle_core::Error) -> Error {
        Error::Model(format!("{}: metadata {key}: {e}", self.path.display()))
    }
    fn string(&self, key: &str) -> Result<String> {
        self.get(key)?
            .to_string()
            .cloned()
            .map_err(|e| self.wrong(key, e))
    }
    fn u32(&self, key: &str) -> Result<u32> {
        self.get(key)?.to_u32().map_err(|e| self.wrong(key, e))
    }
    fn usize(&self, key: &str) -> Result<usize> {
        let v = self.get(key)?;
        v.to_u32()
            .map(|x| x as usize)
            .or_else(|_| v.to_u64().map(|x| x as usize))
            .map_err(|e| self.wrong(key, e))
    }
    fn f32(&self, key: &str) -> Result<f32> {
        self.get(key)?.to_f32().map_err(|e| self.wrong(key, e))
    }
    fn strings(&self, key: &str) -> Result<Vec<String>> {
        self.get(key)?
            .to_vec()
            .map_err(|e| self.wrong(key, e))?
            .iter()
            .map(|v| v.to_string().cloned().map_err(|e| self.wrong(key, e)))
            .collect()
    }
}
