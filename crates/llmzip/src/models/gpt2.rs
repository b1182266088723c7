//! GPT-2 and DistilGPT-2 (candle-transformers has no GPT-2): Hugging Face `config.json` +
//! `model.safetensors` + a tokenizer (`tokenizer.json`, or `vocab.json`/`merges.txt`, or
//! OpenAI's `encoder.json`/`vocab.bpe`).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::transformer::{self, KvCache, NetShape, Transformer, TransformerNet};
use super::{Backend, Fingerprint, ModelInfo};
use crate::tokenization::BpeTokenizer;
use crate::{Error, Result};

/// Default context window in tokens (GPT-2's 1024 positions; docs/models.md).
pub const DEFAULT_WINDOW: u64 = 1024;

/// The fields of a Hugging Face GPT-2 `config.json` that the network needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Gpt2Config {
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
    /// Most positions the model attends to.
    pub n_positions: usize,
    /// Width of the residual stream.
    pub n_embd: usize,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Attention heads.
    pub n_head: usize,
    #[serde(default = "default_eps")]
    /// Epsilon of the layer norms.
    pub layer_norm_epsilon: f64,
    #[serde(default = "default_model_type")]
    /// Must be `gpt2`.
    pub model_type: String,
}

fn default_eps() -> f64 {
    1e-5
}
fn default_model_type() -> String {
    "gpt2".into()
}

struct Block {
    ln1: (Tensor, Tensor),
    attn_w: Tensor,
    attn_b: Tensor,
    proj_w: Tensor,
    proj_b: Tensor,
    ln2: (Tensor, Tensor),
    fc_w: Tensor,
    fc_b: Tensor,
    out_w: Tensor,
    out_b: Tensor,
    cache: KvCache,
}

/// The GPT-2 network.
pub struct Gpt2 {
    wte: Tensor,
    wpe: Tensor,
    blocks: Vec<Block>,
    ln_f: (Tensor, Tensor),
    heads: usize,
    eps: f32,
    device: Device,
}

/// True if `dir` holds a GPT-2 style model (its `config.json` says `model_type: gpt2`).
pub fn is_gpt2_dir(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("config.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .is_some_and(|v| v.get("model_type").and_then(|t| t.as_str()) == Some("gpt2"))
}

/// Loads a GPT-2 model directory.
pub fn load(dir: &Path, name: &str, device: &Device) -> Result<Transformer<Gpt2>> {
    let fail = |what: String| Error::Model(format!("{}: {what}", dir.display()));
    let read = |file: &str| {
        std::fs::read(dir.join(file)).map_err(|e| fail(format!("cannot read {file}: {e}")))
    };
    let (config, config_bytes): (Gpt2Config, _) = super::read_config(dir, "GPT-2")?;
    if config.n_head == 0 || !config.n_embd.is_multiple_of(config.n_head) {
        return Err(fail(format!(
            "n_embd {} is not a multiple of n_head {}",
            config.n_embd, config.n_head
        )));
    }
    let weights_bytes = read("model.safetensors")?;
    let tensors = candle_core::safetensors::load_buffer(&weights_bytes, device)
        .map_err(|e| fail(format!("model.safetensors: {e}")))?;
    let (tokenizer, tokenizer_bytes) = load_tokenizer(dir)?;
    if tokenizer.vocab_size() > config.vocab_size {
        return Err(fail(format!(
            "the tokenizer has {} tokens but the model predicts {}",
            tokenizer.vocab_size(),
            config.vocab_size
        )));
    }

    let weights = Weights {
        tensors: &tensors,
        prefix: if tensors.contains_key("wte.weight") {
            ""
        } else {
            "transformer."
        },
        dir,
    };
    let d = config.n_embd;
    let mut blocks = Vec::with_capacity(config.n_layer);
    for i in 0..config.n_layer {
        let p = |s: &str| format!("h.{i}.{s}");
        blocks.push(Block {
            ln1: weights.norm(&p("ln_1"), d)?,
            attn_w: weights.get(&p("attn.c_attn.weight"), &[d, 3 * d])?,
            attn_b: weights.get(&p("attn.c_attn.bias"), &[3 * d])?,
            proj_w: weights.get(&p("attn.c_proj.weight"), &[d, d])?,
            proj_b: weights.get(&p("attn.c_proj.bias"), &[d])?,
            ln2: weights.norm(&p("ln_2"), d)?,
            fc_w: weights.get(&p("mlp.c_fc.weight"), &[d, 4 * d])?,
            fc_b: weights.get(&p("mlp.c_fc.bias"), &[4 * d])?,
            out_w: weights.get(&p("mlp.c_proj.weight"), &[4 * d, d])?,
            out_b: weights.get(&p("mlp.c_proj.bias"), &[d])?,
            cache: KvCache::new(config.n_positions),
        });
    }
    let net = Gpt2 {
        wte: weights.get("wte.weight", &[config.vocab_size, d])?,
        wpe: weights.get("wpe.weight", &[config.n_positions, d])?,
        blocks,
        ln_f: weights.norm("ln_f", d)?,
        heads: config.n_head,
        eps: config.layer_norm_epsilon as f32,
        device: device.clone(),
    };
    let bos = tokenizer
        .token_id("<|endoftext|>")
        .unwrap_or(config.vocab_size as u32 - 1);
    let info = ModelInfo {
        name: name.to_string(),
        fingerprint: Fingerprint::of(&[
            b"llmzip-gpt2",
            &config_bytes,
            &weights_bytes,
            &tokenizer_bytes,
        ]),
        vocab_size: config.vocab_size,
        bos,
        backend: Backend::of(device, "f32"),
        max_context: Some(config.n_positions as u64),
        default_window: DEFAULT_WINDOW.min(config.n_positions as u64),
        default_segment_tokens: super::TRANSFORMER_SEGMENT_TOKENS,
    };
    Ok(Transformer::new(info, tokenizer, net))
}

/// The directory's tokenizer and the bytes that define it (for the fingerprint).
fn load_tokenizer(dir: &Path) -> Result<(BpeTokenizer, Vec<u8>)> {
    let json = dir.join("tokenizer.json");
    if json.exists() {
        let bytes = std::fs::read(&json)?;
        return Ok((BpeTokenizer::from_tokenizer_json(&json)?, bytes));
    }
    for (vocab, merges) in [("vocab.json", "merges.txt"), ("encoder.json", "vocab.bpe")] {
        let (v, m) = (dir.join(vocab), dir.join(merges));
        if v.exists() && m.exists() {
            let mut bytes = std::fs::read(&v)?;
            bytes.extend(std::fs::read(&m)?);
            return Ok((BpeTokenizer::from_gpt2_files(&v, &m)?, bytes));
        }
    }
    Err(Error::Model(format!(
        "{}: no tokenizer (tokenizer.json, vocab.json + merges.txt, or encoder.json + vocab.bpe)",
        dir.display()
    )))
}

impl TransformerNet for Gpt2 {
    fn forward(&mut self, ids: &Tensor, pos: usize) -> Result<Tensor> {
        let (rows, len) = ids.dims2()?;
        let d = self.wte.dim(1)?;
        let tokens = self
            .wte
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((rows, len, d))?;
        let mut h = tokens.broadcast_add(&self.wpe.narrow(0, pos, len)?)?;
        for b in &mut self.blocks {
            let x = layer_norm(&h, &b.ln1, self.eps)?;
            let qkv = transformer::linear(&x, &b.attn_w, Some(&b.attn_b))?;
            let part = |i: usize| -> Result<Tensor> {
                transformer::split_heads(&qkv.narrow(2, i * d, d)?, self.heads)
            };
            let (q, k, v) = (part(0)?, part(1)?, part(2)?);
            let (k, v) = b.cache.append(&k, &v)?;
            let attn = transformer::causal_attention(&q, &k, &v)?;
            h = (h + transformer::linear(&attn, &b.proj_w, Some(&b.proj_b))?)?;
            let x = layer_norm(&h, &b.ln2, self.eps)?;
            let m = transformer::linear(&x, &b.fc_w, Some(&b.fc_b))?.gelu()?;
            h = (h + transformer::linear(&m, &b.out_w, Some(&b.out_b))?)?;
        }
        let last = layer_norm(&transformer::last_position(&h)?, &self.ln_f, self.eps)?;
        Ok(last.matmul(&self.wte.t()?)?)
    }

    fn clear_cache(&mut self) {
        for b in &mut self.blocks {
            b.cache.clear();
        }
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn shape(&self) -> NetShape {
        let width = self.wpe.dims()[1];
        NetShape {
            layers: self.blocks.len(),
            width,
            ffn: 4 * width,
            heads: self.heads,
            kv_heads: self.heads,
            head_dim: width / self.heads,
            vocab: self.wte.dims()[0],
        }
    }
}

fn layer_norm(x: &Tensor, (w, b): &(Tensor, Tensor), eps: f32) -> Result<Tensor> {
    Ok(candle_nn::ops::layer_norm(&x.contiguous()?, w, b, eps)?)
}

/// Named tensors with shape checks, so a wrong file fails with its tensor's name.
struct Weights<'a> {
    tensors: &'a HashMap<String, Tensor>,
    prefix: &'a str,
    dir: &'a Path,
}

impl Weights<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let full = format!("{}{name}", self.prefix);
        let t = self.tensors.get(&full).ok_or_else(|| {
            Error::Model(format!("{}: tensor {full} is missing", self.dir.display()))
        })?;
        if t.dims() != shape {
            return Err(Error::Model(format!(
                "{}: tensor {full} has shape {:?}, expected {shape:?}",
                self.dir.display(),
                t.dims()
            )));
        }
        Ok(t.to_dtype(DType::F32)?)
    }
    fn norm(&self, name: &str, d: usize) -> Result<(Tensor, Tensor)> {
        Ok((
            self.get(&format!("{name}.weight"), &[d])?,
            self.get(&format!("{name}.bias"), &[d])?,
        ))
    }
}
