//! Tests of the llama models: both layouts, every weight format, refusals.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{DType, Tensor};

use super::*;
#[allow(unused_imports)]
use super::{candle::*, gguf::*, hf::*, weights::*};
use crate::models::transformer::Transformer;
use crate::models::BatchShape;
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
    for (format, tolerance) in [
        ("int8", 0.02),
        (super::super::INT8_KV8, 0.02),
        (super::super::F32_PORTABLE, 1e-5),
    ] {
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
    for format in ["int8", super::super::INT8_KV8, super::super::F32_PORTABLE] {
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
    for format in ["int8", super::super::INT8_KV8] {
        let [mut a, _] = tiny_pair(dir.path(), Some(format));
        let [mut b, _] = tiny_pair(dir.path(), Some(format));
        // Only the 8-bit cache shifts at a slide (the f32 one is re-prefilled).
        a.start_block(1).unwrap();
        a.step(&[1]).unwrap();
        a.step(&[2]).unwrap();
        assert_eq!(a.shift(2).unwrap(), format == super::super::INT8_KV8);
        let (_, summary) = round_trip(&mut a, &mut b, text.as_bytes(), &schedule);
        assert!(
            summary.costs.after_slide.tokens > 0,
            "{format}: no window slide"
        );
    }
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
    // An 8-bit cache claims its own size instead, with the same allowance: per position, layer
    // and head, the keys and values padded to a block of 32 bytes each and 12 bytes of scales and
    // offsets (76 bytes: more than f32's 64 at the tiny model's head width of 8).
    let [kv8, _] = tiny_pair(dir.path(), Some(super::super::INT8_KV8));
    let cache8 = 3 * 512 * (c.num_hidden_layers * 2) as u64 * 76;
    assert_eq!(
        kv8.working_memory(&shape) as i64 - a as i64,
        (cache8 as i64 - kv as i64) * 3 / 2
    );
}

#[test]
fn unknown_weight_formats_name_the_choices() {
    let err = WeightFormat::parse(Some("int4"), Some("q4_1"), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("(use int8-kv8, int8, f32, f32-portable, q8_0 or q4_1)"),
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
        err.contains("(use int8-kv8, int8, f32, f32-portable or q8_0)"),
        "{err}"
    );
    assert!(load_hf(dir.path(), "x", Some("q8_0"), &Device::Cpu).is_ok());
    // An untied model without its head is refused, a tied one needs none.
    let mut weights =
        candle_core::safetensors::load(dir.path().join("model.safetensors"), &Device::Cpu).unwrap();
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

/// Gemma 3 written plainly from its description (llama.cpp's `gemma3` graph): every position
/// recomputed from the tokens, in f64. The own network is checked against it, so that its
/// sliding windows, RoPE bases, norms and gated GELU are evidence, not assumptions. Shapes are
/// those of [`crate::testing::write_random_gemma3`].
fn gemma_reference(path: &Path, ids: &[u32], window: usize) -> Vec<Vec<f64>> {
    let (w, heads, hd, ffn, layers) = (32, 4, 24, 64, 6);
    let mut file = File::open(path).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let mut get = |name: &str| -> Vec<f64> {
        let t = content.tensor(&mut file, name, &Device::Cpu).unwrap();
        let v = t.dequantize(&Device::Cpu).unwrap();
        v.flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|&x| x as f64)
            .collect()
    };
    let rms = |x: &[f64], g: &[f64]| -> Vec<f64> {
        let inv = 1.0 / (x.iter().map(|a| a * a).sum::<f64>() / x.len() as f64 + 1e-6).sqrt();
        x.iter().zip(g).map(|(a, g)| a * inv * g).collect()
    };
    let mul = |m: &[f64], x: &[f64]| -> Vec<f64> {
        m.chunks_exact(x.len())
            .map(|r| r.iter().zip(x).map(|(a, b)| a * b).sum())
            .collect()
    };
    let rope = |x: &mut [f64], pos: usize, base: f64| {
        let half = x.len() / 2;
        for j in 0..half {
            let angle = pos as f64 / base.powf(2.0 * j as f64 / x.len() as f64);
            let (a, b) = (x[j], x[j + half]);
            x[j] = a * angle.cos() - b * angle.sin();
            x[j + half] = a * angle.sin() + b * angle.cos();
        }
    };
    let gelu = |x: f64| {
        0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
    };
    let embed = get("token_embd.weight");
    let mut x: Vec<Vec<f64>> = ids
        .iter()
        .map(|&id| {
            embed[id as usize * w..][..w]
                .iter()
                .map(|e| e * (w as f64).sqrt())
                .collect()
        })
        .collect();
    for i in 0..layers {
        let p = |s: &str| format!("blk.{i}.{s}.weight");
        let (local, base) = if (i + 1) % 6 != 0 {
            (true, 1e4)
        } else {
            (false, 1e6)
        };
        let (an, qn, kn) = (
            get(&p("attn_norm")),
            get(&p("attn_q_norm")),
            get(&p("attn_k_norm")),
        );
        let (wq, wk, wv, wo) = (
            get(&p("attn_q")),
            get(&p("attn_k")),
            get(&p("attn_v")),
            get(&p("attn_output")),
        );
        let (pan, fnorm, pfn) = (
            get(&p("post_attention_norm")),
            get(&p("ffn_norm")),
            get(&p("post_ffw_norm")),
        );
        let (wg, wu, wd) = (get(&p("ffn_gate")), get(&p("ffn_up")), get(&p("ffn_down")));
        let mut qs = Vec::new();
        let mut ks = Vec::new();
        let mut vs = Vec::new();
        for (t, h) in x.iter().enumerate() {
            let a = rms(h, &an);
            let mut q = mul(&wq, &a);
            for head in q.chunks_exact_mut(hd) {
                let n = rms(head, &qn);
                head.copy_from_slice(&n);
                rope(head, t, base);
            }
            let mut k = rms(&mul(&wk, &a), &kn);
            rope(&mut k, t, base);
            qs.push(q);
            ks.push(k);
            vs.push(mul(&wv, &a));
        }
        for t in 0..x.len() {
            let first = if local {
                (t + 1).saturating_sub(window)
            } else {
                0
            };
            let mut o = vec![0.0; heads * hd];
            for h in 0..heads {
                let q = &qs[t][h * hd..][..hd];
                let s: Vec<f64> = (first..=t)
                    .map(|j| {
                        q.iter().zip(&ks[j]).map(|(a, b)| a * b).sum::<f64>() / (hd as f64).sqrt()
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = s.iter().map(|v| (v - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for (j, e) in (first..=t).zip(&e) {
                    for c in 0..hd {
                        o[h * hd + c] += e / z * vs[j][c];
                    }
                }
            }
            let y = rms(&mul(&wo, &o), &pan);
            x[t].iter_mut().zip(&y).for_each(|(a, b)| *a += b);
            let a = rms(&x[t], &fnorm);
            let (g, u) = (mul(&wg, &a), mul(&wu, &a));
            let act: Vec<f64> = g.iter().zip(&u).map(|(g, u)| gelu(*g) * u).collect();
            let y = rms(&mul(&wd, &act), &pfn);
            x[t].iter_mut().zip(&y).for_each(|(a, b)| *a += b);
            assert_eq!(act.len(), ffn);
        }
    }
    let norm = get("output_norm.weight");
    x.iter()
        .map(|h| {
            let logits = mul(&embed, &rms(h, &norm));
            let m = logits.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = logits.iter().map(|v| (v - m).exp()).collect();
            let z: f64 = e.iter().sum();
            e.iter().map(|v| v / z).collect()
        })
        .collect()
}

/// The own network computes Gemma 3 as the plain reference does, past its sliding window (to
/// float rounding in f32, approximately in int8), and a prefill gives what steps give.
#[test]
fn gemma3_predicts_like_the_reference_past_its_window() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny-gemma3.gguf");
    let window = 16;
    crate::testing::write_random_gemma3(&path, window as u32, 21).unwrap();
    let text = b"the cat in the hat, then another cat sat on the mat and the rat ate it all";
    for (format, tolerance) in [
        (super::super::F32_PORTABLE, 1e-5),
        ("int8", 0.02),
        (super::super::INT8_KV8, 0.02),
    ] {
        let mut model = load(&path, Some(format), &Device::Cpu).unwrap();
        let ids = model.tokenizer().encode(text).unwrap();
        assert!(ids.len() > 2 * window, "{} tokens", ids.len());
        let want = gemma_reference(&path, &ids, window);
        model.start_block(1).unwrap();
        let mut got = vec![model.prefill(&ids[..3], 3).unwrap()];
        for t in 3..ids.len() {
            got.push(model.step(&ids[t..t + 1]).unwrap());
        }
        for (t, (a, b)) in want[2..].iter().zip(&got).enumerate() {
            let worst = a
                .iter()
                .zip(b)
                .map(|(x, &y)| (x - y as f64).abs())
                .fold(0f64, f64::max);
            assert!(
                worst < tolerance,
                "{format}, position {}: off by {worst}",
                t + 2
            );
        }
        // The same, all in one prefill.
        model.start_block(1).unwrap();
        let all = model.prefill(&ids, ids.len()).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&all), bits(got.last().unwrap()), "{format}");
    }
}

/// A Gemma 3 GGUF runs on the own network only: candle's formats are refused by name.
#[test]
fn gemma3_refuses_candles_formats() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.gguf");
    crate::testing::write_random_gemma3(&path, 16, 3).unwrap();
    for w in ["f32", "q8_0", "native"] {
        let err = load(&path, Some(w), &Device::Cpu)
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains("Gemma 3") && err.contains("int8-kv8"),
            "{w}: {err}"
        );
    }
}
