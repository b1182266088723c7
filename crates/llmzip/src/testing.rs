//! Helpers for tests of programs built on llmzip (feature `test-support`): tiny random models
//! in the layouts llmzip loads, so a test can exercise a model family without downloading it,
//! and small weight files (safetensors, GGUF) for the tensor codec.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use crate::format::{BlockHeader, Header};
use crate::models::gpt2::Gpt2Config;
use crate::Result;

/// What a hostile writer can make: `header`, then one coded block claiming `len` bytes and
/// `tokens` tokens in `rows` rows with `payload`, its payload checksum valid (the block's own
/// checksum is 0, and no end marker follows). Decoders must refuse such archives quickly and
/// within their memory limits.
pub fn crafted_archive(
    header: &Header,
    len: u64,
    tokens: u64,
    rows: u64,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    header.write(&mut out).expect("a valid header");
    BlockHeader::Coded {
        len,
        tokens,
        segments: rows,
        payload_len: payload.len() as u64,
        payload_crc: crc32fast::hash(payload),
        crc: 0,
    }
    .write(&mut out)
    .expect("writing to a Vec");
    out.extend_from_slice(payload);
    out
}

/// Writes a randomly initialised GPT-2 with `config` to `dir` (`config.json` +
/// `model.safetensors`), for tests and experiments. Add a tokenizer to the directory to load it.
pub fn write_random_model(dir: &Path, config: &Gpt2Config, seed: u64) -> Result<()> {
    let mut rng = crate::models::rng::SplitMix64::new(seed);
    let mut tensors: Vec<(String, Tensor)> = Vec::new();
    let dev = Device::Cpu;
    let mut add = |name: String, shape: &[usize], scale: f32, offset: f32| -> Result<()> {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|_| offset + rng.uniform(scale)).collect();
        tensors.push((name, Tensor::from_vec(data, shape, &dev)?));
        Ok(())
    };
    let d = config.n_embd;
    add("wte.weight".into(), &[config.vocab_size, d], 0.1, 0.0)?;
    add("wpe.weight".into(), &[config.n_positions, d], 0.05, 0.0)?;
    for i in 0..config.n_layer {
        for ln in ["ln_1", "ln_2"] {
            add(format!("h.{i}.{ln}.weight"), &[d], 0.1, 1.0)?;
            add(format!("h.{i}.{ln}.bias"), &[d], 0.1, 0.0)?;
        }
        for (name, rows, cols) in [
            ("attn.c_attn", d, 3 * d),
            ("attn.c_proj", d, d),
            ("mlp.c_fc", d, 4 * d),
            ("mlp.c_proj", 4 * d, d),
        ] {
            add(format!("h.{i}.{name}.weight"), &[rows, cols], 0.2, 0.0)?;
            add(format!("h.{i}.{name}.bias"), &[cols], 0.02, 0.0)?;
        }
    }
    add("ln_f.weight".into(), &[d], 0.1, 1.0)?;
    add("ln_f.bias".into(), &[d], 0.1, 0.0)?;
    std::fs::create_dir_all(dir)?;
    candle_core::safetensors::save(
        &tensors.into_iter().collect::<HashMap<_, _>>(),
        dir.join("model.safetensors"),
    )?;
    let config = serde_json::to_string_pretty(config).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("config.json"), config)?;
    Ok(())
}

/// The vocabulary and merges of a tiny byte-level BPE: `<|endoftext|>` (id 0), the 256 byte
/// characters, and a few English merges after them, for tiny llama models in tests.
pub fn toy_vocabulary() -> (Vec<String>, Vec<String>) {
    let mut vocab = vec!["<|endoftext|>".to_string()];
    vocab.extend(
        crate::tokenization::byte_characters()
            .iter()
            .map(|c| c.to_string()),
    );
    let merges: Vec<String> = [
        "t h", "th e", "Ġ t", "Ġt h", "Ġth e", "a n", "i n", "e r", "Ġ a",
    ]
    .map(String::from)
    .to_vec();
    for m in &merges {
        vocab.push(m.replace(' ', ""));
    }
    (vocab, merges)
}

/// Writes a randomly initialised llama in Hugging Face layout to `dir`: `config.json`,
/// `model.safetensors` with weights in `dtype` (`F32`, `BF16` or `F16`) and the
/// [`toy_vocabulary`]'s `tokenizer.json` (`config.vocab_size` must be at least its size).
/// Returns the f32 values of every tensor, by Hugging Face name, as a loader will see them
/// (rounded to `dtype`).
pub fn write_random_llama(
    dir: &Path,
    config: &crate::models::llama::HfLlamaConfig,
    dtype: candle_core::DType,
    seed: u64,
) -> Result<HashMap<String, Tensor>> {
    let mut rng = crate::models::rng::SplitMix64::new(seed);
    let dev = Device::Cpu;
    let (d, f) = (config.hidden_size, config.intermediate_size);
    let head_dim = d / config.num_attention_heads;
    let kv = config
        .num_key_value_heads
        .unwrap_or(config.num_attention_heads)
        * head_dim;
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    let mut add = |name: String, shape: &[usize], scale: f32, offset: f32| -> Result<()> {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|_| offset + rng.uniform(scale)).collect();
        let t = Tensor::from_vec(data, shape, &dev)?.to_dtype(dtype)?;
        tensors.insert(name, t);
        Ok(())
    };
    add(
        "model.embed_tokens.weight".into(),
        &[config.vocab_size, d],
        0.5,
        0.0,
    )?;
    for i in 0..config.num_hidden_layers {
        let p = |s: &str| format!("model.layers.{i}.{s}.weight");
        add(p("input_layernorm"), &[d], 0.1, 1.0)?;
        add(p("post_attention_layernorm"), &[d], 0.1, 1.0)?;
        for (name, rows, cols) in [
            ("self_attn.q_proj", d, d),
            ("self_attn.k_proj", kv, d),
            ("self_attn.v_proj", kv, d),
            ("self_attn.o_proj", d, d),
            ("mlp.gate_proj", f, d),
            ("mlp.up_proj", f, d),
            ("mlp.down_proj", d, f),
        ] {
            add(p(name), &[rows, cols], 0.3, 0.0)?;
        }
    }
    add("model.norm.weight".into(), &[d], 0.1, 1.0)?;
    if !config.tie_word_embeddings {
        add("lm_head.weight".into(), &[config.vocab_size, d], 0.5, 0.0)?;
    }
    std::fs::create_dir_all(dir)?;
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))?;
    let config = serde_json::to_string_pretty(config).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("config.json"), config)?;
    let (vocab, merges) = toy_vocabulary();
    let json = crate::tokenization::tokenizer_json(&vocab, &merges, Default::default());
    std::fs::write(dir.join("tokenizer.json"), json.to_string())?;
    tensors
        .into_iter()
        .map(|(name, t)| Ok((name, t.to_dtype(candle_core::DType::F32)?)))
        .collect()
}

/// A safetensors file with the given `(name, dtype, shape, data)` tensors.
pub fn safetensors_file(tensors: &[(&str, &str, Vec<u64>, Vec<u8>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
    let mut data = Vec::new();
    for (name, dtype, shape, bytes) in tensors {
        let begin = data.len();
        data.extend_from_slice(bytes);
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [begin, data.len()]}),
        );
    }
    let json = serde_json::to_vec(&header).unwrap();
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&json);
    out.extend_from_slice(&data);
    out
}

/// A GGUF v3 file with two metadata entries (a string, an array of strings) and `(dims, GGML
/// type id, data)` tensors, each padded to 32 bytes.
pub fn gguf_file(tensors: &[(Vec<u64>, u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&2u64.to_le_bytes());
    let key = b"general.name";
    out.extend_from_slice(&(key.len() as u64).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&4u64.to_le_bytes());
    out.extend_from_slice(b"test");
    let key = b"tokenizer.tokens";
    out.extend_from_slice(&(key.len() as u64).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&9u32.to_le_bytes());
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&3u64.to_le_bytes());
    for w in [&b"a"[..], b"bc", b"def"] {
        out.extend_from_slice(&(w.len() as u64).to_le_bytes());
        out.extend_from_slice(w);
    }
    let mut offset = 0u64;
    for (i, (dims, t, data)) in tensors.iter().enumerate() {
        let name = format!("t{i}");
        out.extend_from_slice(&(name.len() as u64).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
        for d in dims {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&t.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        offset += (data.len() as u64).div_ceil(32) * 32;
    }
    while !out.len().is_multiple_of(32) {
        out.push(0);
    }
    for (_, _, data) in tensors {
        out.extend_from_slice(data);
        while !out.len().is_multiple_of(32) {
            out.push(0);
        }
    }
    out
}
