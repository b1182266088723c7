//! Writes the tiny test models of `tests/golden/models/` (randomly initialised, reproducible from
//! fixed seeds): `tiny-gru` (a GRU in `llmzip train`'s layout, portable activations),
//! `tiny-gru-libm` (the same shape computing with the C library's functions, as `gru`/`gru2`,
//! through llmzip's replicas of them),
//! `tiny-llama` (a llama in Hugging Face layout, f32 weights: runs as `int8`, `f32-portable` or
//! candle's `f32`), `tiny-gpt2` (a GPT-2 in Hugging Face layout), each with a tiny byte-level
//! BPE tokenizer, and `tiny-gemma3.gguf` (a Gemma 3 GGUF with a sliding window of 16 positions
//! and a tiny SentencePiece vocabulary). They are small enough for golden archives that every code path can afford to
//! decode under an emulated CPU (scripts/cross-cpu.sh), and they never change: an existing
//! directory is left alone.
//!
//!     cargo run --release -p llmzip --features test-support --example tiny_models -- DIR

use std::path::Path;

use candle_core::{DType, Device};
use llmzip::testing::{
    toy_vocabulary, write_random_gemma3, write_random_llama, write_random_model,
};
use llmzip::unstable::models::gpt2::Gpt2Config;
use llmzip::unstable::models::llama::HfLlamaConfig;
use llmzip::unstable::models::{save_dir, Activations, Cell, RnnConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: tiny_models DIR (e.g. tests/golden/models)")?;
    let dir = Path::new(&dir);
    let (vocab, _) = toy_vocabulary();

    let gru = dir.join("tiny-gru");
    if !gru.exists() {
        let config = RnnConfig::new(Cell::Gru, 8, 32, 2);
        save_dir(&gru, &config, &config.init_weights(11, &Device::Cpu)?)?;
        eprintln!("wrote {}", gru.display());
    }

    let libm = dir.join("tiny-gru-libm");
    if !libm.exists() {
        let mut config = RnnConfig::new(Cell::Gru, 8, 32, 2);
        config.activations = Activations::Libm;
        save_dir(&libm, &config, &config.init_weights(14, &Device::Cpu)?)?;
        eprintln!("wrote {}", libm.display());
    }

    let llama = dir.join("tiny-llama");
    if !llama.exists() {
        let config = HfLlamaConfig {
            model_type: "llama".into(),
            vocab_size: vocab.len(),
            hidden_size: 32,
            intermediate_size: 64,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: Some(2),
            max_position_embeddings: 256,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            tie_word_embeddings: false,
            bos_token_id: Some(serde_json::json!(0)),
            rope_scaling: None,
            head_dim: None,
            attention_bias: false,
            mlp_bias: false,
        };
        write_random_llama(&llama, &config, DType::F32, 12)?;
        eprintln!("wrote {}", llama.display());
    }

    let gpt2 = dir.join("tiny-gpt2");
    if !gpt2.exists() {
        let config = Gpt2Config {
            vocab_size: vocab.len(),
            n_positions: 256,
            n_embd: 32,
            n_layer: 2,
            n_head: 4,
            layer_norm_epsilon: 1e-5,
            model_type: "gpt2".into(),
        };
        write_random_model(&gpt2, &config, 13)?;
        let (vocab, merges) = toy_vocabulary();
        let json =
            llmzip::unstable::tokenization::tokenizer_json(&vocab, &merges, Default::default());
        std::fs::write(gpt2.join("tokenizer.json"), json.to_string())?;
        eprintln!("wrote {}", gpt2.display());
    }

    let gemma = dir.join("tiny-gemma3.gguf");
    if !gemma.exists() {
        write_random_gemma3(&gemma, 16, 15)?;
        eprintln!("wrote {}", gemma.display());
    }
    Ok(())
}
