//! GPT-2 and DistilGPT-2 (candle-transformers has no GPT-2): Hugging Face `config.json` +
//! `model.safetensors` + a tokenizer (`tokenizer.json`, or `vocab.json`/`merges.txt`, or
//! OpenAI's `encoder.json`/`vocab.bpe`).
//!
//! Two computations of the same network, recorded in the archive as the dtype:
//! `f32-portable` (the CPU default): llmzip's own network (`models/llama_own.rs`, GPT-2 being a
//! variant of its blocks), one order of operations on every CPU; and `f32`: candle's ops, on
//! GPUs, and on the CPU for archives made before the portable network existed (machine-bound:
//! [`super::Portability`]).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::llama_own::{self, CandleNet, Gpt2Parts, Matrix, Net, OwnLlama, Placed};
use super::transformer::{self, KvCache, NetShape, Transformer};
use super::{Backend, Fingerprint, ModelInfo, F32_PORTABLE};
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

/// The GPT-2 network, computed by candle or by llmzip's own code.
pub type Gpt2 = Placed<CandleGpt2>;

/// The network as candle ops.
pub struct CandleGpt2 {
    wte: Tensor,
    wpe: Tensor,
    blocks: Vec<Block>,
    ln_f: (Tensor, Tensor),
    heads: usize,
    eps: f32,
}

/// True if `dir` holds a GPT-2 style model (its `config.json` says `model_type: gpt2`).
pub fn is_gpt2_dir(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("config.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .is_some_and(|v| v.get("model_type").and_then(|t| t.as_str()) == Some("gpt2"))
}

/// Loads a GPT-2 model directory, computed as `weights` says: `f32-portable` (llmzip's own
/// network, CPU only), `f32` (candle's), or `None` for the device's default (the former on the
/// CPU, the latter elsewhere).
pub fn load(
    dir: &Path,
    name: &str,
    format: Option<&str>,
    device: &Device,
) -> Result<Transformer<Gpt2>> {
    let dtype = match format {
        None if device.is_cpu() => F32_PORTABLE,
        None | Some("f32") => "f32",
        Some(F32_PORTABLE) if device.is_cpu() => F32_PORTABLE,
        Some(F32_PORTABLE) => {
            return Err(Error::InvalidSetting(format!(
                "the {F32_PORTABLE} weight format runs on the CPU only: use --device cpu, or \
                 --dtype f32 on this device"
            )))
        }
        Some(other) => {
            return Err(Error::InvalidSetting(format!(
                "model '{name}' has f32 weights only (computed as f32 or {F32_PORTABLE}), not \
                 '{other}'"
            )))
        }
    };
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
    let candle = CandleGpt2 {
        wte: weights.get("wte.weight", &[config.vocab_size, d])?,
        wpe: weights.get("wpe.weight", &[config.n_positions, d])?,
        blocks,
        ln_f: weights.norm("ln_f", d)?,
        heads: config.n_head,
        eps: config.layer_norm_epsilon as f32,
    };
    let shape = candle.shape();
    let net = Gpt2 {
        net: if dtype == F32_PORTABLE {
            Net::Own(Box::new(candle.own(config.n_positions)?))
        } else {
            Net::Candle(candle)
        },
        shape,
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
        backend: Backend::of(device, dtype),
        max_context: Some(config.n_positions as u64),
        default_window: DEFAULT_WINDOW.min(config.n_positions as u64),
        default_segment_tokens: super::TRANSFORMER_SEGMENT_TOKENS,
    };
    Ok(Transformer::new(info, Box::new(tokenizer), net))
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

impl CandleNet for CandleGpt2 {
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
}

impl CandleGpt2 {
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

    /// The same weights for llmzip's own network: every product transposed to `out × in` (Hugging
    /// Face's GPT-2 stores `in × out`) and packed, the output head tied to the embedding.
    fn own(self, context: usize) -> Result<OwnLlama> {
        let values = |t: &Tensor| -> Result<Vec<f32>> { Ok(t.flatten_all()?.to_vec1::<f32>()?) };
        let matrix = |w: &Tensor| -> Result<Matrix> {
            let (inner, out) = w.dims2()?;
            Ok(Matrix::new(
                false,
                &values(&w.t()?.contiguous()?)?,
                out,
                inner,
            ))
        };
        let shape = self.shape();
        let mut layers = Vec::with_capacity(self.blocks.len());
        for b in &self.blocks {
            layers.push(llama_own::Layer {
                gpt2: Some(Gpt2Parts {
                    attn_norm_bias: values(&b.ln1.1)?,
                    qkv_bias: values(&b.attn_b)?,
                    wo_bias: values(&b.proj_b)?,
                    ffn_norm_bias: values(&b.ln2.1)?,
                    up_bias: values(&b.fc_b)?,
                    down_bias: values(&b.out_b)?,
                }),
                gemma: None,
                attn_norm: values(&b.ln1.0)?,
                qkv: matrix(&b.attn_w)?,
                wo: matrix(&b.proj_w)?,
                ffn_norm: values(&b.ln2.0)?,
                gate_up: matrix(&b.fc_w)?,
                down: matrix(&b.out_w)?,
                cache: Vec::new(),
            });
        }
        let embed = values(&self.wte)?;
        Ok(OwnLlama {
            output: Matrix::new(false, &embed, shape.vocab, shape.width),
            embed,
            layers,
            norm: values(&self.ln_f.0)?,
            norm_bias: Some(values(&self.ln_f.1)?),
            positions: Some(values(&self.wpe)?),
            gemma: None,
            cos: Vec::new(),
            sin: Vec::new(),
            width: shape.width,
            ffn: shape.ffn,
            heads: shape.heads,
            kv_heads: shape.kv_heads,
            head_dim: shape.head_dim,
            eps: self.eps,
            rope: None,
            kv8: false,
            context,
            rows: 0,
            cached: 0,
            buffers: Default::default(),
            spare: Vec::new(),
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(unused_imports)]
    use crate::models::transformer::TransformerNet;
    use crate::models::LanguageModel;
    use crate::testing::{toy_vocabulary, write_random_model};

    /// llmzip's own GPT-2 computes what candle's computes, to float rounding, through a prefill
    /// and steps over two rows; and its bits do not depend on the thread count.
    #[test]
    fn own_network_predicts_like_candles() {
        let dir = tempfile::tempdir().unwrap();
        let (vocab, merges) = toy_vocabulary();
        let config = Gpt2Config {
            vocab_size: vocab.len(),
            n_positions: 64,
            n_embd: 32,
            n_layer: 2,
            n_head: 4,
            layer_norm_epsilon: 1e-5,
            model_type: "gpt2".into(),
        };
        write_random_model(dir.path(), &config, 3).unwrap();
        let json = crate::tokenization::tokenizer_json(&vocab, &merges, Default::default());
        std::fs::write(dir.path().join("tokenizer.json"), json.to_string()).unwrap();
        let mut candle = load(dir.path(), "t", Some("f32"), &Device::Cpu).unwrap();
        let mut own = load(dir.path(), "t", None, &Device::Cpu).unwrap();
        assert_eq!(own.info().backend.dtype, F32_PORTABLE);
        assert_eq!(candle.info().backend.dtype, "f32");
        let ids = own
            .tokenizer()
            .encode(b"the hat and the cat, the end")
            .unwrap();
        let half = ids.len() / 2;
        let run = |m: &mut Transformer<Gpt2>| -> Vec<Vec<f32>> {
            m.start_block(2).unwrap();
            let mut out = vec![m
                .prefill(&[&ids[..3], &ids[half..half + 3]].concat(), 3)
                .unwrap()];
            for t in 3..half {
                out.push(m.step(&[ids[t], ids[half + t]]).unwrap());
            }
            out
        };
        let (a, b) = (run(&mut candle), run(&mut own));
        for (a, b) in a.iter().zip(&b) {
            let worst = a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-5, "differ by {worst}");
        }
        let bits = |v: &[Vec<f32>]| -> Vec<u32> {
            v.iter()
                .flat_map(|p| p.iter().map(|x| x.to_bits()))
                .collect()
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        assert_eq!(bits(&pool.install(|| run(&mut own))), bits(&b));
    }
}
