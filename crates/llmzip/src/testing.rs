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

/// The SentencePiece vocabulary of [`write_random_gemma3`], in id order with scores and GGUF
/// token types: Gemma's control pieces (`<pad>`, `<eos>`, `<bos>`), user-defined newline and
/// space runs, the 256 byte pieces, then every printable ASCII character, `▁` and a few merges,
/// best first.
pub fn toy_sentencepiece() -> (Vec<String>, Vec<f32>, Vec<i32>) {
    let mut pieces: Vec<String> = ["<pad>", "<eos>", "<bos>", "\n", "\n\n", "  ", "    "]
        .map(String::from)
        .to_vec();
    let mut types = vec![3, 3, 3, 4, 4, 4, 4];
    for b in 0..=255u8 {
        pieces.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    let merges = [
        "▁t", "he", "▁the", "in", "▁a", "er", "an", "ing", "▁th", "on", "re", "▁s", "▁w", "nd",
        "▁and", "ou", "ed", "▁o", "▁of", "it", "is", "▁i", "▁b", "at", "en", "ll", "or", "▁to",
    ];
    for m in merges {
        pieces.push(m.into());
        types.push(1);
    }
    pieces.push("▁".into());
    types.push(1);
    for c in (0x21u8..0x7f).map(char::from) {
        pieces.push(c.to_string());
        types.push(1);
    }
    let scores = (0..pieces.len())
        .map(|i| if types[i] == 1 { -(i as f32) } else { 0.0 })
        .collect();
    (pieces, scores, types)
}

/// Writes a randomly initialised Gemma 3 as a GGUF file (`general.architecture = gemma3`, f32
/// tensors named and laid out as llama.cpp's converter writes them, [`toy_sentencepiece`] in
/// the metadata): width 32, 4 query heads and 1 key/value head of width 24 (so queries are
/// wider than the model), 6 layers (five with a sliding window of `window` positions, then a
/// global one), a feed-forward width of 64, the embedding tied to the output.
pub fn write_random_gemma3(path: &Path, window: u32, seed: u64) -> Result<()> {
    use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
    use gguf_file::Value;
    let (width, heads, kv, hd, ffn, layers) = (32usize, 4usize, 1usize, 24usize, 64usize, 6);
    let (pieces, scores, types) = toy_sentencepiece();
    let mut rng = crate::models::rng::SplitMix64::new(seed);
    let mut named: Vec<(String, QTensor)> = Vec::new();
    let mut add = |name: String, shape: &[usize], scale: f32, offset: f32| -> Result<()> {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|_| offset + rng.uniform(scale)).collect();
        let t = Tensor::from_vec(data, shape, &Device::Cpu)?;
        named.push((name, QTensor::quantize(&t, GgmlDType::F32)?));
        Ok(())
    };
    add("token_embd.weight".into(), &[pieces.len(), width], 0.5, 0.0)?;
    add("output_norm.weight".into(), &[width], 0.1, 1.0)?;
    for i in 0..layers {
        let p = |s: &str| format!("blk.{i}.{s}.weight");
        for norm in [
            "attn_norm",
            "ffn_norm",
            "post_attention_norm",
            "post_ffw_norm",
        ] {
            add(p(norm), &[width], 0.1, 1.0)?;
        }
        add(p("attn_q_norm"), &[hd], 0.1, 1.0)?;
        add(p("attn_k_norm"), &[hd], 0.1, 1.0)?;
        add(p("attn_q"), &[heads * hd, width], 0.3, 0.0)?;
        add(p("attn_k"), &[kv * hd, width], 0.3, 0.0)?;
        add(p("attn_v"), &[kv * hd, width], 0.3, 0.0)?;
        add(p("attn_output"), &[width, heads * hd], 0.3, 0.0)?;
        add(p("ffn_gate"), &[ffn, width], 0.3, 0.0)?;
        add(p("ffn_up"), &[ffn, width], 0.3, 0.0)?;
        add(p("ffn_down"), &[width, ffn], 0.3, 0.0)?;
    }
    let arch = |k: &str| format!("gemma3.{k}");
    let meta: Vec<(String, Value)> = vec![
        (
            "general.architecture".into(),
            Value::String("gemma3".into()),
        ),
        (arch("context_length"), Value::U32(512)),
        (arch("embedding_length"), Value::U32(width as u32)),
        (arch("block_count"), Value::U32(layers as u32)),
        (arch("feed_forward_length"), Value::U32(ffn as u32)),
        (arch("attention.head_count"), Value::U32(heads as u32)),
        (arch("attention.head_count_kv"), Value::U32(kv as u32)),
        (arch("attention.key_length"), Value::U32(hd as u32)),
        (arch("attention.value_length"), Value::U32(hd as u32)),
        (arch("attention.layer_norm_rms_epsilon"), Value::F32(1e-6)),
        (arch("attention.sliding_window"), Value::U32(window)),
        (arch("rope.freq_base"), Value::F32(1e6)),
        ("tokenizer.ggml.model".into(), Value::String("llama".into())),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(pieces.into_iter().map(Value::String).collect()),
        ),
        (
            "tokenizer.ggml.scores".into(),
            Value::Array(scores.into_iter().map(Value::F32).collect()),
        ),
        (
            "tokenizer.ggml.token_type".into(),
            Value::Array(types.into_iter().map(Value::I32).collect()),
        ),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(2)),
    ];
    let meta: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let named: Vec<(&str, &QTensor)> = named.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = std::fs::File::create(path)?;
    gguf_file::write(&mut file, &meta, &named)?;
    Ok(())
}
