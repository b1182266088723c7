//! Writes a GGUF file of K-quants made from real weights, for the weight-file benchmark
//! (`scripts/weights-bench.sh`): every 2-D f32/bf16/f16 tensor of a safetensors file whose rows
//! are a multiple of 256 long, quantized by candle (llama.cpp's reference quantizers) to Q4_K,
//! Q5_K and Q6_K, as three tensors each; other tensors are left out. With COPIES, every
//! tensor is written that many times (under new names), to make a file large enough for speed
//! figures: the codec codes 4 MiB chunks independently and finds no repeats between them.
//!
//!     cargo run --release --example k_quant_gguf -- model.safetensors out.gguf [COPIES]

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{DType, Device};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (input, output, copies) = match args.as_slice() {
        [_, i, o] => (i, o, 1),
        [_, i, o, n] => (i, o, n.parse::<usize>()?),
        _ => return Err("usage: k_quant_gguf MODEL.safetensors OUT.gguf [COPIES]".into()),
    };
    let tensors = candle_core::safetensors::load(input, &Device::Cpu)?;
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    let mut out: Vec<(String, QTensor)> = Vec::new();
    for name in names {
        let t = &tensors[name];
        if t.rank() != 2 || t.dim(1)? % 256 != 0 {
            continue;
        }
        let t = t.to_dtype(DType::F32)?;
        for (dtype, tag) in [
            (GgmlDType::Q4K, "q4_k"),
            (GgmlDType::Q5K, "q5_k"),
            (GgmlDType::Q6K, "q6_k"),
        ] {
            for copy in 0..copies {
                out.push((
                    format!("{name}.{tag}.{copy}"),
                    QTensor::quantize(&t, dtype)?,
                ));
            }
        }
    }
    if out.is_empty() {
        return Err(format!("{input} has no 2-D tensor with rows a multiple of 256").into());
    }
    let name = gguf_file::Value::String("k-quants of real weights".into());
    let tensors: Vec<(&str, &QTensor)> = out.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut file = std::fs::File::create(output)?;
    gguf_file::write(&mut file, &[("general.name", &name)], &tensors)?;
    eprintln!("{output}: {} tensors", tensors.len());
    Ok(())
}
