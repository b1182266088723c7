//! Llama-family models from GGUF files (SmolLM2-135M first), with the tokenizer read from the
//! file's metadata, or from Hugging Face directories (`config.json`, `*.safetensors` in
//! f32/bf16/f16, `tokenizer.json`), as `transformers` saves them and the Hub serves them.
//!
//! Both layouts become the same network: the weights are renamed to GGUF's names and assembled
//! by one function. One difference stays: llama.cpp's converter permutes the rows of the query
//! and key matrices so that RoPE rotates *adjacent* pairs of a head's dimensions (`rope_i`),
//! while Hugging Face weights expect the two *halves* of a head rotated against each other
//! (`rope`); the network applies the variant its weights were written for ([`Rope`]), rather
//! than permuting either file's weights at load.
//!
//! Adapted from candle-transformers' `quantized_llama`, which lacks what the codec needs: a way
//! to reset the KV cache between batches, a cache that does not copy itself on every step,
//! grouped-query attention without repeating keys, logits computed for the last position only
//! (a prefill of 32 rows × 512 tokens would otherwise produce 3 GB of logits), and a choice of
//! weight format.
//!
//! ## Weight formats
//! * `int8` (the CPU default): Q8_0 weights times Q8_0 activations, the whole network computed
//!   by llmzip's own code ([`super::llama_own`], [`super::int8`]) with batched kernels and an
//!   order of operations fixed in the source, so its archives decode on any CPU. CPU only.
//! * `f32-portable` (what `--dtype f32` makes on the CPU): every matrix dequantized once at load
//!   and run on the same own network with f32 weights ([`super::matmul`]'s fixed-order kernel),
//!   so its archives decode on any CPU too.
//! * `f32`: every matrix dequantized once at load and run through candle's ops: the GPU
//!   default, and what CPU archives of releases before `f32-portable` record (they keep decoding
//!   with it, on machines whose CPU rounds candle's kernels alike: machine-bound).
//! * `q8_0`: requantized once at load, candle's kernels; fast single-stream, flat with batch
//!   size. Machine-bound on the CPU.
//! * the file's own format (e.g. `q4_1`), as stored. Machine-bound on the CPU.
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

use super::llama_own::{self, CandleNet, Net, OwnLlama};
use super::rope::{rope_tables, Rope};
use super::transformer::{self, KvCache, NetShape, Transformer, TransformerNet};
use super::{Backend, BatchShape, Fingerprint, ModelInfo};
use crate::tokenization::{BpeOptions, BpeTokenizer};
use crate::{Error, Result};

/// Weight format used when none is asked for, by device: llmzip's own `int8` code on the CPU
/// (about 2.4 times the speed of `f32` on alice29 for 0.1 % more bytes, docs/models.md), `f32`
/// on GPUs, where candle's kernels run.
pub fn default_weights(device: &Device) -> &'static str {
    if device.is_cpu() {
        "int8"
    } else {
        "f32"
    }
}

/// Most positions llmzip attends over with a GGUF model, whatever its metadata claims (RoPE tables
/// of this length take 32 MiB at a head width of 64).
const MAX_MODEL_CONTEXT: usize = 1 << 17;

/// Default context window in tokens, chosen by measurement (docs/models.md).
pub const DEFAULT_WINDOW: u64 = 2048;

/// A block's weights as the file gave them, shapes checked.
struct LayerWeights {
    attn_norm: Weight,
    wq: Weight,
    wk: Weight,
    wv: Weight,
    wo: Weight,
    ffn_norm: Weight,
    gate: Weight,
    up: Weight,
    down: Weight,
}

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

/// The network of a llama-family model.
pub struct Llama {
    /// Who computes it: candle's ops (`f32`, `q8_0`, the file's format) or llmzip's own CPU
    /// code (`int8`, `f32-portable`: [`super::llama_own`]).
    net: Net<CandleLlama>,
    device: Device,
    shape: NetShape,
}

/// The network as candle ops.
struct CandleLlama {
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    output: Matrix,
    cos: Tensor,
    sin: Tensor,
    heads: usize,
    kv_heads: usize,
    eps: f32,
    rope: Rope,
}

/// The shape of a llama network, from GGUF metadata or a Hugging Face `config.json`.
struct Hyper {
    heads: usize,
    kv_heads: usize,
    layers: usize,
    width: usize,
    ffn: usize,
    /// Positions the RoPE tables are built for (capped at [`MAX_MODEL_CONTEXT`]).
    context: usize,
    eps: f32,
    rope_base: f32,
    vocab: usize,
}

impl Hyper {
    fn head_dim(&self, fail: &dyn Fn(String) -> Error) -> Result<usize> {
        let (heads, kv_heads, width) = (self.heads, self.kv_heads, self.width);
        if heads == 0
            || kv_heads == 0
            || heads % kv_heads != 0
            || width % heads != 0
            || (width / heads) % 2 != 0
            || self.layers == 0
            || self.vocab == 0
            || self.context == 0
        {
            return Err(fail(format!(
                "inconsistent shape: {heads} heads, {kv_heads} key/value heads, width {width}, \
                 {} layers, {} tokens, context {}",
                self.layers, self.vocab, self.context
            )));
        }
        Ok(width / heads)
    }

    /// The shape a tensor of GGUF name `name` must have (`[rows, columns]` of the matrix as
    /// `out × in`, or `[len]`).
    fn expected(&self, name: &str, head_dim: usize) -> Vec<usize> {
        let (w, kv) = (self.width, self.kv_heads * head_dim);
        let role = name.rsplit_once('.').map_or(name, |(r, _)| r);
        let role = role.rsplit('.').next().unwrap_or(role);
        match role {
            "token_embd" | "output" => vec![self.vocab, w],
            "attn_norm" | "ffn_norm" | "output_norm" => vec![w],
            "attn_q" | "attn_output" => vec![w, w],
            "attn_k" | "attn_v" => vec![kv, w],
            "ffn_gate" | "ffn_up" => vec![self.ffn, w],
            "ffn_down" => vec![w, self.ffn],
            _ => Vec::new(),
        }
    }
}

/// One weight as the file holds it: GGML blocks (GGUF) or a dense tensor (safetensors, already
/// f32).
enum Weight {
    Quantized(QTensor),
    Dense(Tensor),
}

impl Weight {
    fn dims(&self) -> &[usize] {
        match self {
            Weight::Quantized(q) => q.shape().dims(),
            Weight::Dense(t) => t.dims(),
        }
    }

    fn vector(&self, device: &Device) -> Result<Tensor> {
        Ok(match self {
            Weight::Quantized(q) => q.dequantize(device)?,
            Weight::Dense(t) => t.clone(),
        })
    }

    /// The weight's values, row-major, in `f32`.
    fn values(&self, device: &Device) -> Result<Vec<f32>> {
        Ok(self.vector(device)?.flatten_all()?.to_vec1::<f32>()?)
    }

    fn matrix(self, format: CandleFormat, device: &Device) -> Result<Matrix> {
        match self {
            Weight::Quantized(q) => format.matmul(q, device),
            Weight::Dense(t) => Ok(match format {
                CandleFormat::Q8_0 => Matrix::Quantized(QMatMul::QTensor(Arc::new(
                    QTensor::quantize(&t, GgmlDType::Q8_0)?,
                ))),
                CandleFormat::F32 | CandleFormat::Native => Matrix::Dense(t.t()?.contiguous()?),
            }),
        }
    }
}

/// How a file reaches [`assemble`]: its tensors by GGUF name, and errors that name the file.
struct Source<'a> {
    /// The weight GGUF calls `name` (`None` when the file has no such tensor).
    get: &'a mut dyn FnMut(&str) -> Result<Option<Weight>>,
    /// The file's own name for a tensor GGUF calls `name`, for messages.
    own_name: &'a dyn Fn(&str) -> String,
    fail: &'a dyn Fn(String) -> Error,
}

/// The network's weights, in GGUF's names whatever the file's layout, every shape checked
/// against `hyper`.
fn assemble(
    hyper: &Hyper,
    format: WeightFormat,
    rope: Rope,
    source: Source,
    device: &Device,
) -> Result<Llama> {
    let Source {
        get,
        own_name,
        fail,
    } = source;
    let head_dim = hyper.head_dim(fail)?;
    let mut weight = |name: &str| -> Result<Option<Weight>> {
        let Some(w) = get(name)? else {
            return Ok(None);
        };
        let want = hyper.expected(name, head_dim);
        if w.dims() != want.as_slice() {
            return Err(fail(format!(
                "tensor {} has shape {:?}, expected {want:?}",
                own_name(name),
                w.dims()
            )));
        }
        Ok(Some(w))
    };
    let mut need = |name: &str| -> Result<Weight> {
        weight(name)?.ok_or_else(|| fail(format!("tensor {} is missing", own_name(name))))
    };
    let embed = need("token_embd.weight")?;
    let norm = need("output_norm.weight")?;
    let mut layers = Vec::with_capacity(hyper.layers);
    for i in 0..hyper.layers {
        let mut w = |s: &str| need(&format!("blk.{i}.{s}.weight"));
        layers.push(LayerWeights {
            attn_norm: w("attn_norm")?,
            wq: w("attn_q")?,
            wk: w("attn_k")?,
            wv: w("attn_v")?,
            wo: w("attn_output")?,
            ffn_norm: w("ffn_norm")?,
            gate: w("ffn_gate")?,
            up: w("ffn_up")?,
            down: w("ffn_down")?,
        });
    }
    let output = weight("output.weight")?;
    let (cos, sin) = rope_tables(hyper.context, head_dim, hyper.rope_base, device)?;
    let shape = NetShape {
        layers: hyper.layers,
        width: hyper.width,
        ffn: hyper.ffn,
        heads: hyper.heads,
        kv_heads: hyper.kv_heads,
        head_dim,
        vocab: hyper.vocab,
    };
    let net = match format {
        WeightFormat::Int8 | WeightFormat::OwnF32 => {
            let int8 = matches!(format, WeightFormat::Int8);
            let matrix = |parts: &[&Weight]| -> Result<llama_own::Matrix> {
                let mut values = Vec::new();
                for p in parts {
                    values.extend(p.values(device)?);
                }
                let inner = parts[0].dims()[1];
                Ok(llama_own::Matrix::new(
                    int8,
                    &values,
                    values.len() / inner,
                    inner,
                ))
            };
            let mut blocks = Vec::with_capacity(layers.len());
            for l in &layers {
                blocks.push(llama_own::Layer {
                    gpt2: None,
                    attn_norm: l.attn_norm.values(device)?,
                    qkv: matrix(&[&l.wq, &l.wk, &l.wv])?,
                    wo: matrix(&[&l.wo])?,
                    ffn_norm: l.ffn_norm.values(device)?,
                    gate_up: matrix(&[&l.gate, &l.up])?,
                    down: matrix(&[&l.down])?,
                    cache: Vec::new(),
                });
            }
            Net::Own(Box::new(OwnLlama {
                output: matrix(&[output.as_ref().unwrap_or(&embed)])?,
                embed: embed.values(device)?,
                layers: blocks,
                norm: norm.values(device)?,
                norm_bias: None,
                positions: None,
                cos: cos.flatten_all()?.to_vec1::<f32>()?,
                sin: sin.flatten_all()?.to_vec1::<f32>()?,
                width: hyper.width,
                ffn: hyper.ffn,
                heads: hyper.heads,
                kv_heads: hyper.kv_heads,
                head_dim,
                eps: hyper.eps,
                rope: Some(rope),
                context: hyper.context,
                rows: 0,
                cached: 0,
                buffers: Default::default(),
                spare: Vec::new(),
            }))
        }
        WeightFormat::Candle(format) => {
            let mut blocks = Vec::with_capacity(layers.len());
            for l in layers {
                blocks.push(Layer {
                    attn_norm: l.attn_norm.vector(device)?,
                    wq: l.wq.matrix(format, device)?,
                    wk: l.wk.matrix(format, device)?,
                    wv: l.wv.matrix(format, device)?,
                    wo: l.wo.matrix(format, device)?,
                    ffn_norm: l.ffn_norm.vector(device)?,
                    gate: l.gate.matrix(format, device)?,
                    up: l.up.matrix(format, device)?,
                    down: l.down.matrix(format, device)?,
                    cache: KvCache::new(hyper.context),
                });
            }
            let embed_vector = embed.vector(device)?;
            Net::Candle(CandleLlama {
                output: output.unwrap_or(embed).matrix(format, device)?,
                embed: embed_vector,
                layers: blocks,
                norm: norm.vector(device)?,
                cos,
                sin,
                heads: hyper.heads,
                kv_heads: hyper.kv_heads,
                eps: hyper.eps,
                rope,
            })
        }
    };
    Ok(Llama {
        net,
        device: device.clone(),
        shape,
    })
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

/// The fields of a Hugging Face llama `config.json` that the network needs. Features llmzip
/// does not implement (RoPE scaling, biases, a head width other than width / heads) are read
/// so that such a model is refused by name instead of computing something else.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HfLlamaConfig {
    /// Must be `llama`.
    pub model_type: String,
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Transformer blocks.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention); the query heads' count when absent.
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Most positions the model was trained for.
    pub max_position_embeddings: usize,
    /// Epsilon of the RMS norms.
    pub rms_norm_eps: f64,
    /// RoPE base frequency.
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    /// The output head is the embedding (no `lm_head.weight`).
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Token fed first (a number, or a list whose first entry is used).
    #[serde(default)]
    pub bos_token_id: Option<serde_json::Value>,
    /// Must be absent or null (scaled RoPE, as in Llama 3.1, is not implemented).
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    /// Width of a head; must be `hidden_size / num_attention_heads` when present.
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// Must be false (biased projections are not implemented).
    #[serde(default)]
    pub attention_bias: bool,
    /// Must be false.
    #[serde(default)]
    pub mlp_bias: bool,
}

fn default_rope_theta() -> f64 {
    10_000.0
}

/// True if `dir` holds a Hugging Face llama model (its `config.json` says `model_type: llama`).
pub fn is_hf_dir(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("config.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .is_some_and(|v| v.get("model_type").and_then(|t| t.as_str()) == Some("llama"))
}

/// The Hugging Face name of a tensor that GGUF calls `gguf`.
fn hf_name(gguf: &str) -> String {
    let fixed = [
        ("token_embd.weight", "model.embed_tokens.weight"),
        ("output_norm.weight", "model.norm.weight"),
        ("output.weight", "lm_head.weight"),
    ];
    if let Some((_, hf)) = fixed.iter().find(|(g, _)| *g == gguf) {
        return hf.to_string();
    }
    let Some((layer, role)) = gguf
        .strip_prefix("blk.")
        .and_then(|rest| rest.split_once('.'))
    else {
        return gguf.to_string();
    };
    let role = match role.trim_end_matches(".weight") {
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        other => other,
    };
    format!("model.layers.{layer}.{role}.weight")
}

/// Loads a Hugging Face llama directory (`config.json`, `model.safetensors` or its shards,
/// `tokenizer.json`) named `name`, with weights converted once to `weights` (`f32`, the
/// default, or `q8_0`).
pub fn load_hf(
    dir: &Path,
    name: &str,
    weights: Option<&str>,
    device: &Device,
) -> Result<Transformer<Llama>> {
    let fail = |what: String| Error::Model(format!("{}: {what}", dir.display()));
    let (config, config_bytes): (HfLlamaConfig, _) = super::read_config(dir, "llama")?;
    let unsupported = |what: &str| {
        Err(fail(format!(
            "{what} is not supported (llmzip implements the plain llama architecture)"
        )))
    };
    if config.model_type != "llama" {
        return unsupported(&format!("model_type '{}'", config.model_type));
    }
    if config.rope_scaling.as_ref().is_some_and(|v| !v.is_null()) {
        return unsupported("rope_scaling");
    }
    if config.attention_bias || config.mlp_bias {
        return unsupported("a biased projection (attention_bias / mlp_bias)");
    }
    let heads = config.num_attention_heads;
    if config
        .head_dim
        .is_some_and(|d| heads == 0 || d * heads != config.hidden_size)
    {
        return unsupported("head_dim other than hidden_size / num_attention_heads");
    }
    let format = WeightFormat::parse(weights, None, device)?;
    let hyper = Hyper {
        heads,
        kv_heads: config.num_key_value_heads.unwrap_or(heads),
        layers: config.num_hidden_layers,
        width: config.hidden_size,
        ffn: config.intermediate_size,
        context: config.max_position_embeddings.min(MAX_MODEL_CONTEXT),
        eps: config.rms_norm_eps as f32,
        rope_base: config.rope_theta as f32,
        vocab: config.vocab_size,
    };

    let files = crate::registry::safetensors_files(dir)?;
    let mut hash = Sha256::new();
    hash.update(b"llmzip-llama-hf");
    hash.update(Sha256::digest(&config_bytes));
    let mut tensors = std::collections::HashMap::new();
    for file in &files {
        let path = dir.join(file);
        hash.update(file_digest(&mut File::open(&path)?)?);
        let loaded = candle_core::safetensors::load(&path, device)
            .map_err(|e| fail(format!("{file}: {e}")))?;
        tensors.extend(loaded);
    }
    let mut get = |gguf: &str| -> Result<Option<Weight>> {
        if gguf == "output.weight" && config.tie_word_embeddings {
            return Ok(None);
        }
        let name = hf_name(gguf);
        match tensors.remove(&name) {
            Some(t) => Ok(Some(Weight::Dense(
                t.to_dtype(candle_core::DType::F32)
                    .map_err(|e| fail(format!("tensor {name}: {e}")))?,
            ))),
            // Untied and without its own head, transformers would start one at random: that
            // model cannot be reproduced.
            None if gguf == "output.weight" => Err(fail(
                "lm_head.weight is missing and tie_word_embeddings is false".into(),
            )),
            None => Ok(None),
        }
    };
    let source = Source {
        get: &mut get,
        own_name: &hf_name,
        fail: &fail,
    };
    let net = assemble(&hyper, format, Rope::Halves, source, device)?;

    let tokenizer_bytes = std::fs::read(dir.join("tokenizer.json"))
        .map_err(|e| fail(format!("cannot read tokenizer.json: {e}")))?;
    hash.update(Sha256::digest(&tokenizer_bytes));
    let tokenizer = BpeTokenizer::from_tokenizer_json(&dir.join("tokenizer.json"))?;
    if tokenizer.vocab_size() > hyper.vocab {
        return Err(fail(format!(
            "the tokenizer has {} tokens but the model predicts {}",
            tokenizer.vocab_size(),
            hyper.vocab
        )));
    }
    let bos = match &config.bos_token_id {
        Some(serde_json::Value::Array(ids)) => ids.first().and_then(|v| v.as_u64()),
        Some(v) => v.as_u64(),
        None => None,
    }
    .map(|b| b as u32)
    .or_else(|| tokenizer.token_id("<|endoftext|>"))
    .filter(|&b| (b as usize) < hyper.vocab)
    .ok_or_else(|| fail("config.json has no valid bos_token_id".into()))?;
    let dtype = format.name("f32");
    let info = ModelInfo {
        name: name.to_string(),
        fingerprint: Fingerprint::of(&[&hash.finalize()]),
        vocab_size: hyper.vocab,
        bos,
        backend: Backend::of(device, &dtype),
        max_context: Some(hyper.context as u64),
        default_window: DEFAULT_WINDOW.min(hyper.context as u64),
        default_segment_tokens: format.segment_tokens(),
    };
    Ok(Transformer::new(info, tokenizer, net))
}

impl TransformerNet for Llama {
    fn forward(&mut self, ids: &Tensor, pos: usize) -> Result<Tensor> {
        self.net.forward(ids, pos, &self.device)
    }

    fn probabilities(&mut self, ids: &[u32], rows: usize, pos: usize) -> Result<Vec<f32>> {
        self.net.probabilities(ids, rows, pos, &self.device)
    }

    fn recycle(&mut self, probs: Vec<f32>) {
        self.net.recycle(probs)
    }

    fn clear_cache(&mut self) {
        self.net.clear_cache()
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn shape(&self) -> NetShape {
        self.shape
    }

    fn working_memory(&self, shape: &BatchShape) -> u64 {
        self.net.working_memory(&self.shape, shape)
    }
}

impl CandleNet for CandleLlama {
    fn clear_cache(&mut self) {
        for layer in &mut self.layers {
            layer.cache.clear();
        }
    }

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
            let rope = match self.rope {
                Rope::Interleaved => candle_nn::rotary_emb::rope_i,
                Rope::Halves => candle_nn::rotary_emb::rope,
            };
            let (q, k) = (rope(&q, &cos, &sin)?, rope(&k, &cos, &sin)?);
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
}

/// A weight matrix for candle: dequantized and stored transposed (`in × out`, contiguous, which
/// the f32 matmul kernels read without repacking), or quantized (`out × in`, ggml layout).
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

/// How the weights are stored and who computes with them.
#[derive(Clone, Copy)]
enum WeightFormat {
    Candle(CandleFormat),
    /// Q8_0 weights times Q8_0 activations in llmzip's own code ([`super::llama_own`]).
    Int8,
    /// f32 weights in llmzip's own code, one summation order on every CPU (`f32-portable`).
    OwnF32,
}

/// The formats candle's ops compute with.
#[derive(Clone, Copy)]
enum CandleFormat {
    F32,
    Q8_0,
    /// The file's own quantization (GGUF).
    Native,
}

impl WeightFormat {
    /// The format called `weights` (the default when `None`); `native` is the file's own
    /// quantization where it has one (GGUF).
    fn parse(weights: Option<&str>, native: Option<&str>, device: &Device) -> Result<WeightFormat> {
        let format = match weights.unwrap_or(default_weights(device)) {
            "f32" => WeightFormat::Candle(CandleFormat::F32),
            "q8_0" => WeightFormat::Candle(CandleFormat::Q8_0),
            "int8" => WeightFormat::Int8,
            super::F32_PORTABLE => WeightFormat::OwnF32,
            w if native.is_some_and(|n| w == "native" || w == n) => {
                WeightFormat::Candle(CandleFormat::Native)
            }
            other => {
                let mut names = vec!["int8", "f32", super::F32_PORTABLE, "q8_0"];
                names.extend(native);
                let last = names.pop().unwrap_or_default();
                return Err(Error::InvalidSetting(format!(
                    "weight format '{other}' is not available for this model (use {} or {last})",
                    names.join(", ")
                )));
            }
        };
        if matches!(format, WeightFormat::Int8 | WeightFormat::OwnF32) && !device.is_cpu() {
            return Err(Error::InvalidSetting(format!(
                "the {} weight format runs on the CPU only: use --device cpu, or --dtype f32 \
                 on this device",
                format.name("")
            )));
        }
        Ok(format)
    }

    /// The default row length of the lockstep batch.
    fn segment_tokens(self) -> u64 {
        match self {
            WeightFormat::Int8 => super::INT8_SEGMENT_TOKENS,
            WeightFormat::Candle(_) | WeightFormat::OwnF32 => super::TRANSFORMER_SEGMENT_TOKENS,
        }
    }

    /// The name recorded in archive headers; `native` is the file's own format's.
    fn name(self, native: &str) -> String {
        match self {
            WeightFormat::Candle(CandleFormat::F32) => "f32",
            WeightFormat::Candle(CandleFormat::Q8_0) => "q8_0",
            WeightFormat::Int8 => "int8",
            WeightFormat::OwnF32 => super::F32_PORTABLE,
            WeightFormat::Candle(CandleFormat::Native) => native,
        }
        .to_string()
    }
}

impl CandleFormat {
    fn matmul(self, q: QTensor, device: &Device) -> Result<Matrix> {
        Ok(match self {
            CandleFormat::F32 => Matrix::Dense(q.dequantize(device)?.t()?.contiguous()?),
            CandleFormat::Q8_0 if q.dtype() != GgmlDType::Q8_0 => {
                Matrix::Quantized(QMatMul::QTensor(Arc::new(QTensor::quantize(
                    &q.dequantize(device)?,
                    GgmlDType::Q8_0,
                )?)))
            }
            CandleFormat::Q8_0 | CandleFormat::Native => {
                Matrix::Quantized(QMatMul::QTensor(Arc::new(q)))
            }
        })
    }
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
    Ok(Fingerprint::of(&[b"llmzip-gguf", &file_digest(file)?]))
}

/// SHA-256 of what `file` holds from where it stands, read in 1 MiB pieces.
fn file_digest(file: &mut File) -> Result<[u8; 32]> {
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

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use candle_core::DType;

    use super::*;
    use crate::models::LanguageModel;
    use crate::testing::{toy_vocabulary, write_random_llama};

    pub(crate) fn tiny_config() -> HfLlamaConfig {
        HfLlamaConfig {
            model_type: "llama".into(),
            vocab_size: 272,
            hidden_size: 32,
            intermediate_size: 64,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: Some(2),
            max_position_embeddings: 64,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            tie_word_embeddings: false,
            bos_token_id: Some(serde_json::json!(0)),
            rope_scaling: None,
            head_dim: None,
            attention_bias: false,
            mlp_bias: false,
        }
    }

    /// The GGUF file llama.cpp's converter makes of Hugging Face weights: names mapped, the
    /// query and key rows of each head permuted from halves to pairs (its `permute`:
    /// `reshape(heads, 2, head_dim / 2, in).swapaxes(1, 2)`), the tokenizer in metadata.
    /// Written here independently of the loader, so that agreeing with it is evidence.
    fn write_gguf(path: &Path, config: &HfLlamaConfig, tensors: &HashMap<String, Tensor>) {
        use gguf_file::Value;
        let (heads, kv) = (
            config.num_attention_heads,
            config.num_key_value_heads.unwrap(),
        );
        let hd = config.hidden_size / heads;
        let permute = |t: &Tensor, n: usize| -> Tensor {
            let cols = t.dim(1).unwrap();
            t.reshape((n, 2, hd / 2, cols))
                .unwrap()
                .transpose(1, 2)
                .unwrap()
                .reshape((n * hd, cols))
                .unwrap()
        };
        let mut named: Vec<(String, QTensor)> = Vec::new();
        let mut put = |gguf: &str, hf: &str, t: Tensor| {
            let q = QTensor::quantize(&t, GgmlDType::F32).unwrap();
            assert!(tensors.contains_key(hf), "{hf}");
            named.push((gguf.to_string(), q));
        };
        put(
            "token_embd.weight",
            "model.embed_tokens.weight",
            tensors["model.embed_tokens.weight"].clone(),
        );
        put(
            "output.weight",
            "lm_head.weight",
            tensors["lm_head.weight"].clone(),
        );
        put(
            "output_norm.weight",
            "model.norm.weight",
            tensors["model.norm.weight"].clone(),
        );
        for i in 0..config.num_hidden_layers {
            for (g, h) in [
                ("attn_norm", "input_layernorm"),
                ("ffn_norm", "post_attention_layernorm"),
                ("attn_q", "self_attn.q_proj"),
                ("attn_k", "self_attn.k_proj"),
                ("attn_v", "self_attn.v_proj"),
                ("attn_output", "self_attn.o_proj"),
                ("ffn_gate", "mlp.gate_proj"),
                ("ffn_up", "mlp.up_proj"),
                ("ffn_down", "mlp.down_proj"),
            ] {
                let hf = format!("model.layers.{i}.{h}.weight");
                let t = &tensors[&hf];
                let t = match g {
                    "attn_q" => permute(t, heads),
                    "attn_k" => permute(t, kv),
                    _ => t.clone(),
                };
                put(&format!("blk.{i}.{g}.weight"), &hf, t);
            }
        }
        let (vocab, merges) = toy_vocabulary();
        // The embedding has more rows than the toy tokenizer has tokens: pad the vocabulary.
        let mut tokens = vocab.clone();
        while tokens.len() < config.vocab_size {
            tokens.push(format!("<unused{}>", tokens.len()));
        }
        let strings = |v: &[String]| Value::Array(v.iter().cloned().map(Value::String).collect());
        let meta: Vec<(&str, Value)> = vec![
            ("general.architecture", Value::String("llama".into())),
            ("llama.attention.head_count", Value::U32(heads as u32)),
            ("llama.attention.head_count_kv", Value::U32(kv as u32)),
            (
                "llama.block_count",
                Value::U32(config.num_hidden_layers as u32),
            ),
            (
                "llama.embedding_length",
                Value::U32(config.hidden_size as u32),
            ),
            (
                "llama.feed_forward_length",
                Value::U32(config.intermediate_size as u32),
            ),
            (
                "llama.context_length",
                Value::U32(config.max_position_embeddings as u32),
            ),
            (
                "llama.attention.layer_norm_rms_epsilon",
                Value::F32(config.rms_norm_eps as f32),
            ),
            ("llama.rope.freq_base", Value::F32(config.rope_theta as f32)),
            ("tokenizer.ggml.model", Value::String("gpt2".into())),
            ("tokenizer.ggml.tokens", strings(&tokens)),
            ("tokenizer.ggml.merges", strings(&merges)),
            ("tokenizer.ggml.bos_token_id", Value::U32(0)),
        ];
        let meta: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (*k, v)).collect();
        let named: Vec<(&str, &QTensor)> = named.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let mut file = File::create(path).unwrap();
        gguf_file::write(&mut file, &meta, &named).unwrap();
    }

    /// Both layouts of the same random weights predict the same distributions, step after
    /// step (RoPE at every position of a row), so the Hugging Face loader's names, orientation
    /// and RoPE variant are those of llama.cpp's conversion; in f32 and in bf16.
    #[test]
    fn hugging_face_and_gguf_layouts_of_one_model_predict_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let config = tiny_config();
        for dtype in [DType::F32, DType::BF16] {
            let hf_dir = dir.path().join(format!("hf-{dtype:?}"));
            let tensors = write_random_llama(&hf_dir, &config, dtype, 5).unwrap();
            let gguf = dir.path().join(format!("tiny-{dtype:?}.gguf"));
            write_gguf(&gguf, &config, &tensors);
            let mut hf = load_hf(&hf_dir, "tiny", None, &Device::Cpu).unwrap();
            let mut gg = load(&gguf, None, &Device::Cpu).unwrap();
            assert_eq!(hf.info().vocab_size, gg.info().vocab_size);
            assert_eq!(hf.info().bos, gg.info().bos);
            let ids = hf
                .tokenizer()
                .encode(b"the cat in the hat, then another")
                .unwrap();
            assert!(ids.len() > 8);
            assert_eq!(
                ids,
                gg.tokenizer()
                    .encode(b"the cat in the hat, then another")
                    .unwrap()
            );
            hf.start_block(2).unwrap();
            gg.start_block(2).unwrap();
            for pair in ids.windows(2) {
                let (a, b) = (hf.step(pair).unwrap(), gg.step(pair).unwrap());
                let worst = a
                    .iter()
                    .zip(&b)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0f32, f32::max);
                assert!(worst < 1e-5, "{dtype:?}: probabilities differ by {worst}");
            }
        }
    }

    /// The tiny model in both layouts (GGUF's interleaved RoPE and Hugging Face's halves), loaded
    /// with `weights`.
    fn tiny_pair(dir: &Path, weights: Option<&str>) -> [Transformer<Llama>; 2] {
        let config = tiny_config();
        let hf_dir = dir.join("hf");
        let gguf = dir.join("tiny.gguf");
        if !gguf.exists() {
            let tensors = write_random_llama(&hf_dir, &config, DType::F32, 7).unwrap();
            write_gguf(&gguf, &config, &tensors);
        }
        [
            load(&gguf, weights, &Device::Cpu).unwrap(),
            load_hf(&hf_dir, "tiny", weights, &Device::Cpu).unwrap(),
        ]
    }

    /// Steps `ids` (two rows) after a prefill of their first `prefill` tokens, returning every
    /// distribution.
    fn run_rows(model: &mut Transformer<Llama>, ids: &[u32], prefill: usize) -> Vec<Vec<f32>> {
        model.start_block(2).unwrap();
        let half = ids.len() / 2;
        let row = |r: usize, a: usize, b: usize| ids[r * half + a..r * half + b].to_vec();
        let first = [row(0, 0, prefill), row(1, 0, prefill)].concat();
        let mut out = vec![model.prefill(&first, prefill).unwrap()];
        for t in prefill..half {
            out.push(
                model
                    .step(&[row(0, t, t + 1), row(1, t, t + 1)].concat())
                    .unwrap(),
            );
        }
        out
    }

    /// llmzip's own network, with int8 weights (approximately) and with f32 weights (to float
    /// rounding), computes what candle's f32 network computes.
    #[test]
    fn own_networks_predict_like_candles_f32_in_both_layouts() {
        for (format, tolerance) in [("int8", 0.02), (super::super::F32_PORTABLE, 1e-5)] {
            own_network_predicts_like_candles(format, tolerance);
        }
    }

    fn own_network_predicts_like_candles(format: &str, tolerance: f32) {
        let dir = tempfile::tempdir().unwrap();
        let text = b"the cat in the hat, then another cat sat on the mat";
        for (mut f32s, mut int8) in tiny_pair(dir.path(), Some("f32"))
            .into_iter()
            .zip(tiny_pair(dir.path(), Some(format)))
        {
            assert_eq!(int8.info().backend.dtype, format);
            assert_eq!(int8.info().fingerprint, f32s.info().fingerprint);
            let ids = f32s.tokenizer().encode(text).unwrap();
            let ids = &ids[..ids.len() / 2 * 2];
            let (a, b) = (run_rows(&mut f32s, ids, 3), run_rows(&mut int8, ids, 3));
            for (a, b) in a.iter().zip(&b) {
                assert!(b.iter().all(|p| p.is_finite() && *p >= 0.0));
                let worst = a
                    .iter()
                    .zip(b)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0f32, f32::max);
                assert!(worst < tolerance, "{format} and f32 differ by {worst}");
            }
        }
    }

    /// Bit for bit: a prefill gives what the same tokens give step by step, whatever the thread
    /// count, and after a reset the network remembers nothing.
    #[test]
    fn own_results_depend_on_nothing_but_the_tokens() {
        for format in ["int8", super::super::F32_PORTABLE] {
            own_results_depend_on_tokens(format);
        }
    }

    fn own_results_depend_on_tokens(format: &str) {
        let dir = tempfile::tempdir().unwrap();
        let [mut model, _] = tiny_pair(dir.path(), Some(format));
        let ids = model
            .tokenizer()
            .encode(b"a long enough text for two rows of tokens, and more")
            .unwrap();
        let ids = &ids[..ids.len() / 2 * 2];
        let bits = |v: &[Vec<f32>]| -> Vec<u32> {
            v.iter()
                .flat_map(|p| p.iter().map(|x| x.to_bits()))
                .collect()
        };
        let want = run_rows(&mut model, ids, 1);
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let got = pool.install(|| run_rows(&mut model, ids, 1));
            assert_eq!(bits(&got), bits(&want), "{format}, {threads} threads");
        }
        // The last distribution after a prefill of 5 equals the 5th step's.
        let prefilled = run_rows(&mut model, ids, 5);
        assert_eq!(bits(&prefilled[..1]), bits(&want[4..5]));
        assert_eq!(bits(&prefilled[1..]), bits(&want[5..]));
    }

    #[test]
    fn int8_archives_round_trip_through_window_slides() {
        use crate::codec::Schedule;
        use crate::models::testing::round_trip;
        let dir = tempfile::tempdir().unwrap();
        let text = "the cat and the hat sat on the mat; then the rat ate the hat. ".repeat(8);
        let schedule = Schedule {
            block_size: 1 << 20,
            max_segments: 3,
            min_segment_tokens: 16,
            window: 24,
        };
        let [mut a, _] = tiny_pair(dir.path(), Some("int8"));
        let [mut b, _] = tiny_pair(dir.path(), Some("int8"));
        let (_, summary) = round_trip(&mut a, &mut b, text.as_bytes(), &schedule);
        assert!(summary.costs.after_slide.tokens > 0, "no window slide");
    }

    /// The int8 network claims its KV cache once (it is never copied) and so less than candle's
    /// network, but never less than the cache itself.
    #[test]
    fn int8_memory_claim_covers_the_cache_once() {
        let dir = tempfile::tempdir().unwrap();
        let [int8, _] = tiny_pair(dir.path(), Some("int8"));
        let [f32s, _] = tiny_pair(dir.path(), Some("f32"));
        let shape = BatchShape {
            rows: 3,
            positions: 512,
            prefill: 0,
            block_len: 1000,
            tokens: 1500,
        };
        let c = tiny_config();
        let kv = 3 * 512 * (c.num_hidden_layers * 2 * 2 * (c.hidden_size / 4)) as u64 * 4;
        let (a, b) = (int8.working_memory(&shape), f32s.working_memory(&shape));
        assert!(a >= kv && a < b, "int8 {a}, f32 {b}, cache {kv}");
    }

    #[test]
    fn unknown_weight_formats_name_the_choices() {
        let err = WeightFormat::parse(Some("int4"), Some("q4_1"), &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("(use int8, f32, f32-portable, q8_0 or q4_1)"),
            "{err}"
        );
    }

    #[test]
    fn unsupported_or_broken_configs_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = tiny_config();
        write_random_llama(dir.path(), &config, DType::F32, 1).unwrap();
        let refuse = |config: &HfLlamaConfig, what: &str| {
            let json = serde_json::to_string(config).unwrap();
            std::fs::write(dir.path().join("config.json"), json).unwrap();
            let err = load_hf(dir.path(), "x", None, &Device::Cpu)
                .err()
                .expect("refused")
                .to_string();
            assert!(err.contains(what), "{what}: {err}");
        };
        config.rope_scaling = Some(serde_json::json!({"rope_type": "llama3", "factor": 8.0}));
        refuse(&config, "rope_scaling");
        config.rope_scaling = None;
        config.attention_bias = true;
        refuse(&config, "attention_bias");
        config.attention_bias = false;
        config.intermediate_size = 40;
        refuse(&config, "mlp.gate_proj");
        config.intermediate_size = 64;
        config.num_key_value_heads = Some(3);
        refuse(&config, "inconsistent shape");
        config.num_key_value_heads = Some(2);
        let json = serde_json::to_string(&config).unwrap();
        std::fs::write(dir.path().join("config.json"), json).unwrap();
        let err = load_hf(dir.path(), "x", Some("q4_1"), &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("(use int8, f32, f32-portable or q8_0)"),
            "{err}"
        );
        assert!(load_hf(dir.path(), "x", Some("q8_0"), &Device::Cpu).is_ok());
        // An untied model without its head is refused, a tied one needs none.
        let mut weights =
            candle_core::safetensors::load(dir.path().join("model.safetensors"), &Device::Cpu)
                .unwrap();
        weights.remove("lm_head.weight");
        candle_core::safetensors::save(&weights, dir.path().join("model.safetensors")).unwrap();
        let err = load_hf(dir.path(), "x", None, &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("lm_head.weight"), "{err}");
        config.tie_word_embeddings = true;
        std::fs::write(
            dir.path().join("config.json"),
            serde_json::to_string(&config).unwrap(),
        )
        .unwrap();
        assert!(load_hf(dir.path(), "x", None, &Device::Cpu).is_ok());
        std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
        let err = load_hf(dir.path(), "x", None, &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("model.safetensors"), "{err}");
    }
}
