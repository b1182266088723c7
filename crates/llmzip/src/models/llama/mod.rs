//! Llama-family models from GGUF files (SmolLM2-135M first), with the tokenizer read from the
//! file's metadata, or from Hugging Face directories (`config.json`, `*.safetensors` in
//! f32/bf16/f16, `tokenizer.json`), as `transformers` saves them and the Hub serves them.
//!
//! Both layouts become the same network: the weights are renamed to GGUF's names and assembled
//! by one function. One difference stays: llama.cpp's converter permutes the rows of the query
//! and key matrices so that RoPE rotates *adjacent* pairs of a head's dimensions (`rope_i`),
//! while Hugging Face weights expect the two *halves* of a head rotated against each other
//! (`rope`); the network applies the variant its weights were written for (`models/rope.rs`), rather
//! than permuting either file's weights at load.
//!
//! Adapted from candle-transformers' `quantized_llama`, which lacks what the codec needs: a way
//! to reset the KV cache between batches, a cache that does not copy itself on every step,
//! grouped-query attention without repeating keys, logits computed for the last position only
//! (a prefill of 32 rows × 512 tokens would otherwise produce 3 GB of logits), and a choice of
//! weight format.
//!
//! ## Weight formats
//! * `int8-kv8` (the CPU default since llmzip 0.5.0): `int8` with the KV cache in 8 bits too,
//!   attention scores as int8 products, softmax sums in lanes, and the cache shifted rather than
//!   re-filled at the window's end (`models/kv8.rs`). CPU only.
//! * `int8` (the CPU default before): Q8_0 weights times Q8_0 activations, the whole network
//!   computed by llmzip's own code (`models/llama_own.rs`, `models/int8.rs`) with batched kernels
//!   and an order of operations fixed in the source, so its archives decode on any CPU. CPU only.
//! * `f32-portable` (what `--dtype f32` makes on the CPU): every matrix dequantized once at load
//!   and run on the same own network with f32 weights (the fixed-order kernel of `models/matmul.rs`),
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

use candle_core::Device;

use crate::models::llama_own::{self, Net, OwnLlama, Placed};
use crate::models::rope::{rope_tables, Rope};
use crate::models::transformer::{KvCache, NetShape};
use crate::{Error, Result};

mod candle;
mod gguf;
mod hf;
#[cfg(test)]
pub(crate) mod tests;
mod weights;

use self::candle::{CandleLlama, Layer};
use self::weights::{Weight, WeightFormat};
pub use gguf::load;
pub use hf::{is_hf_dir, load_hf, HfLlamaConfig};

/// Weight format used when none is asked for, by device: llmzip's own int8 code with an 8-bit
/// KV cache on the CPU (`int8-kv8`: 1.3 times the speed of `int8` with its f32 cache on alice29
/// for 0.07 % more bytes, and `int8` 2.4 times `f32`'s for 0.1 %; docs/models.md), `f32` on
/// GPUs, where candle's kernels run.
pub fn default_weights(device: &Device) -> &'static str {
    if device.is_cpu() {
        crate::models::INT8_KV8
    } else {
        "f32"
    }
}

/// Most positions llmzip attends over with a GGUF model, whatever its metadata claims (RoPE tables
/// of this length take 32 MiB at a head width of 64).
const MAX_MODEL_CONTEXT: usize = 1 << 17;

/// Default context window in tokens, chosen by measurement (docs/models.md).
pub const DEFAULT_WINDOW: u64 = 2048;

/// Default context window of the `int8-kv8` format, with rows of
/// [`KV8_SEGMENT_TOKENS`](crate::models::KV8_SEGMENT_TOKENS): chosen on the frontier of rows ×
/// window (docs/models.md, "Frontier on alice29").
pub const KV8_WINDOW: u64 = 768;

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
    /// Gemma 3's query and key norms and post-norms, in that order.
    gemma: Option<[Weight; 4]>,
}

/// The network of a llama-family model: candle's ops (`f32`, `q8_0`, the file's format) or
/// llmzip's own CPU code (`int8-kv8`, `int8`, `f32-portable`: `models/llama_own.rs`).
pub type Llama = Placed<CandleLlama>;

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
    /// Width of a query, key and value head where the file gives it (Gemma 3's 256 with a width
    /// of 640 and 4 heads); otherwise `width / heads`.
    head_dim: Option<usize>,
    /// Gemma 3's sliding windows; `None` for a llama.
    gemma: Option<GemmaHyper>,
}

/// What a Gemma 3 file adds to [`Hyper`].
#[derive(Clone, Copy)]
struct GemmaHyper {
    /// Positions a sliding-window layer attends over, the query's own included.
    window: usize,
    /// Every `pattern`-th layer is global, the others slide (llama.cpp's `swa_pattern`).
    pattern: usize,
    /// The RoPE base of the sliding-window layers (the global ones use [`Hyper::rope_base`]).
    local_rope_base: f32,
}

impl Hyper {
    fn head_dim(&self, fail: &dyn Fn(String) -> Error) -> Result<usize> {
        let (heads, kv_heads, width) = (self.heads, self.kv_heads, self.width);
        let head_dim = match self.head_dim {
            Some(d) => d,
            None if heads > 0 && width % heads == 0 => width / heads,
            None => 0,
        };
        if heads == 0
            || kv_heads == 0
            || heads % kv_heads != 0
            || head_dim == 0
            || head_dim % 2 != 0
            || head_dim > 1 << 12
            || heads > 1 << 10
            || self.layers == 0
            || self.vocab == 0
            || self.context == 0
            || self.gemma.is_some_and(|g| g.window == 0 || g.pattern == 0)
        {
            return Err(fail(format!(
                "inconsistent shape: {heads} heads, {kv_heads} key/value heads, width {width}, \
                 {} layers, {} tokens, context {}",
                self.layers, self.vocab, self.context
            )));
        }
        Ok(head_dim)
    }

    /// The shape a tensor of GGUF name `name` must have (`[rows, columns]` of the matrix as
    /// `out × in`, or `[len]`).
    fn expected(&self, name: &str, head_dim: usize) -> Vec<usize> {
        let (w, q, kv) = (self.width, self.heads * head_dim, self.kv_heads * head_dim);
        let role = name.rsplit_once('.').map_or(name, |(r, _)| r);
        let role = role.rsplit('.').next().unwrap_or(role);
        match role {
            "token_embd" | "output" => vec![self.vocab, w],
            "attn_norm" | "ffn_norm" | "output_norm" => vec![w],
            "post_attention_norm" | "post_ffw_norm" => vec![w],
            "attn_q_norm" | "attn_k_norm" => vec![head_dim],
            "attn_q" => vec![q, w],
            "attn_output" => vec![w, q],
            "attn_k" | "attn_v" => vec![kv, w],
            "ffn_gate" | "ffn_up" => vec![self.ffn, w],
            "ffn_down" => vec![w, self.ffn],
            _ => Vec::new(),
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
    if hyper.gemma.is_some() && !format.is_own() {
        return Err(fail(format!(
            "Gemma 3 runs on llmzip's own CPU network only: use --device cpu with --dtype {}, \
             int8 or {}, not {}",
            crate::models::INT8_KV8,
            crate::models::F32_PORTABLE,
            format.name("its own format")
        )));
    }
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
            gemma: match hyper.gemma {
                Some(_) => Some([
                    w("attn_q_norm")?,
                    w("attn_k_norm")?,
                    w("post_attention_norm")?,
                    w("post_ffw_norm")?,
                ]),
                None => None,
            },
        });
    }
    let output = weight("output.weight")?;
    let output_tied = output.is_none();
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
        WeightFormat::Int8 | WeightFormat::Int8Kv8 | WeightFormat::OwnF32 => {
            let int8 = matches!(format, WeightFormat::Int8 | WeightFormat::Int8Kv8);
            let matrix = |parts: &[&Weight]| -> Result<llama_own::Matrix> {
                if let ([Weight::Quantized(q)], true) = (parts, int8) {
                    // Row by row, never the whole matrix in f32 (Gemma's embedding: 671 MB).
                    return Ok(llama_own::Matrix::Int8(weights::int8_rows(q, device)?));
                }
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
            for (i, l) in layers.iter().enumerate() {
                let gemma = match (&l.gemma, hyper.gemma) {
                    (Some([q, k, post_attn, post_ffn]), Some(g)) => Some(llama_own::GemmaLayer {
                        q_norm: q.values(device)?,
                        k_norm: k.values(device)?,
                        post_attn_norm: post_attn.values(device)?,
                        post_ffn_norm: post_ffn.values(device)?,
                        window: ((i + 1) % g.pattern != 0).then_some(g.window),
                    }),
                    _ => None,
                };
                blocks.push(llama_own::Layer {
                    gpt2: None,
                    gemma,
                    attn_norm: l.attn_norm.values(device)?,
                    qkv: matrix(&[&l.wq, &l.wk, &l.wv])?,
                    wo: matrix(&[&l.wo])?,
                    ffn_norm: l.ffn_norm.values(device)?,
                    gate_up: matrix(&[&l.gate, &l.up])?,
                    down: matrix(&[&l.down])?,
                    cache: Vec::new(),
                });
            }
            let gemma = match hyper.gemma {
                Some(g) => {
                    let (cos, sin) =
                        rope_tables(hyper.context, head_dim, g.local_rope_base, device)?;
                    Some(llama_own::Gemma {
                        embed_scale: (hyper.width as f32).sqrt(),
                        local_cos: cos.flatten_all()?.to_vec1::<f32>()?,
                        local_sin: sin.flatten_all()?.to_vec1::<f32>()?,
                    })
                }
                None => None,
            };
            let output = matrix(&[output.as_ref().unwrap_or(&embed)])?;
            // Gemma's int8 network reads its tied embedding from the output's int8 rows.
            let tied = output_tied && int8 && hyper.gemma.is_some();
            Net::Own(Box::new(OwnLlama {
                output,
                embed: if tied {
                    Vec::new()
                } else {
                    embed.values(device)?
                },
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
                gemma,
                kv8: matches!(format, WeightFormat::Int8Kv8),
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
