//! Helpers for tests of programs built on llmzip (feature `test-support`): tiny random models
//! in the layouts llmzip loads, so a test can exercise a model family without downloading it.

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
