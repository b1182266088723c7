//! Llama models in Hugging Face layout (`config.json`, `*.safetensors`, `tokenizer.json`): the
//! config's fields, refusal of features llmzip does not implement, the weights renamed to
//! GGUF's names.

use std::fs::File;
use std::path::Path;

use candle_core::Device;
use sha2::{Digest, Sha256};

use super::*;
use super::{gguf::*, weights::*};
use crate::models::rope::Rope;
use crate::models::transformer::Transformer;
use crate::models::{Backend, Fingerprint, ModelInfo};
use crate::tokenization::BpeTokenizer;
use crate::{Error, Result};

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

pub(super) fn default_rope_theta() -> f64 {
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
pub(super) fn hf_name(gguf: &str) -> String {
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
    let (config, config_bytes): (HfLlamaConfig, _) = crate::models::read_config(dir, "llama")?;
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
        head_dim: None,
        gemma: None,
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
        default_window: format.window(hyper.context),
        default_segment_tokens: format.segment_tokens(),
    };
    Ok(Transformer::new(info, Box::new(tokenizer), net))
}
