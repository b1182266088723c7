//! The weight policy: one weight as a file holds it, the formats llmzip computes with, and
//! which format a name (`int8`, `f32`, `q8_0`, `native`) means on which device.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Tensor};

use super::candle::*;
use super::*;
use crate::{Error, Result};

/// One weight as the file holds it: GGML blocks (GGUF) or a dense tensor (safetensors, already
/// f32).
pub(super) enum Weight {
    Quantized(QTensor),
    Dense(Tensor),
}

impl Weight {
    pub(super) fn dims(&self) -> &[usize] {
        match self {
            Weight::Quantized(q) => q.shape().dims(),
            Weight::Dense(t) => t.dims(),
        }
    }

    pub(super) fn vector(&self, device: &Device) -> Result<Tensor> {
        Ok(match self {
            Weight::Quantized(q) => q.dequantize(device)?,
            Weight::Dense(t) => t.clone(),
        })
    }

    /// The weight's values, row-major, in `f32`.
    pub(super) fn values(&self, device: &Device) -> Result<Vec<f32>> {
        Ok(self.vector(device)?.flatten_all()?.to_vec1::<f32>()?)
    }

    pub(super) fn matrix(self, format: CandleFormat, device: &Device) -> Result<Matrix> {
        match self {
            Weight::Quantized(q) => format.matmul(q, device),
            Weight::Dense(t) => Ok(match format {
                CandleFormat::Q8_0 => Matrix::Quantized(QMatMul::QTensor(Arc::new(
                    QTensor::quantize(&t, GgmlDType::Q8_0)?,
                ))),
                CandleFormat::F32 | CandleFormat::Native => Matrix::Dense(t.t()?.contiguous()?),
            }),
        }
    }
}

/// A GGML matrix (`out × inner`) as an int8 matrix, dequantized a block of rows at a time: the
/// same values as quantizing its whole f32 dequantization ([`Int8Matrix::quantize`] quantizes
/// row by row too), without holding that f32 copy.
pub(super) fn int8_rows(q: &QTensor, device: &Device) -> Result<crate::models::int8::Int8Matrix> {
    use std::borrow::Cow;
    let (out, inner) = match q.shape().dims() {
        &[out, inner] => (out, inner),
        dims => {
            return Err(Error::Model(format!(
                "a matrix of shape {dims:?} is not two-dimensional"
            )))
        }
    };
    let (block, size) = (q.dtype().block_size(), q.dtype().type_size());
    let data = q.data()?;
    if inner % block != 0 || data.len() != out * inner / block * size {
        return Err(Error::Model(
            "a quantized matrix of inconsistent size".into(),
        ));
    }
    let row_bytes = inner / block * size;
    let mut m = crate::models::int8::Int8Matrix::zeros(out, inner);
    const ROWS: usize = 1024;
    for first in (0..out).step_by(ROWS) {
        let n = ROWS.min(out - first);
        let bytes = &data[first * row_bytes..(first + n) * row_bytes];
        let storage = candle_core::quantized::QStorage::from_data(
            Cow::Borrowed(bytes),
            &Device::Cpu,
            q.dtype(),
        )?;
        let part = QTensor::new(storage, (n, inner))?.dequantize(device)?;
        let values = part.flatten_all()?.to_vec1::<f32>()?;
        for (r, row) in values.chunks_exact(inner).enumerate() {
            m.set_row(first + r, row);
        }
    }
    Ok(m)
}

/// How the weights are stored and who computes with them.
#[derive(Clone, Copy)]
pub(super) enum WeightFormat {
    Candle(CandleFormat),
    /// Q8_0 weights times Q8_0 activations in llmzip's own code (`models/llama_own.rs`), with
    /// an f32 KV cache.
    Int8,
    /// `Int8` with the KV cache in 8 bits (`int8-kv8`, `models/kv8.rs`).
    Int8Kv8,
    /// f32 weights in llmzip's own code, one summation order on every CPU (`f32-portable`).
    OwnF32,
}

/// The formats candle's ops compute with.
#[derive(Clone, Copy)]
pub(super) enum CandleFormat {
    F32,
    Q8_0,
    /// The file's own quantization (GGUF).
    Native,
}

impl WeightFormat {
    /// The format called `weights` (the default when `None`); `native` is the file's own
    /// quantization where it has one (GGUF).
    pub(super) fn parse(
        weights: Option<&str>,
        native: Option<&str>,
        device: &Device,
    ) -> Result<WeightFormat> {
        let format = match weights.unwrap_or(default_weights(device)) {
            "f32" => WeightFormat::Candle(CandleFormat::F32),
            "q8_0" => WeightFormat::Candle(CandleFormat::Q8_0),
            "int8" => WeightFormat::Int8,
            crate::models::INT8_KV8 => WeightFormat::Int8Kv8,
            crate::models::F32_PORTABLE => WeightFormat::OwnF32,
            w if native.is_some_and(|n| w == "native" || w == n) => {
                WeightFormat::Candle(CandleFormat::Native)
            }
            other => {
                let mut names = vec![
                    crate::models::INT8_KV8,
                    "int8",
                    "f32",
                    crate::models::F32_PORTABLE,
                    "q8_0",
                ];
                names.extend(native);
                let last = names.pop().unwrap_or_default();
                return Err(Error::InvalidSetting(format!(
                    "weight format '{other}' is not available for this model (use {} or {last})",
                    names.join(", ")
                )));
            }
        };
        if format.is_own() && !device.is_cpu() {
            return Err(Error::InvalidSetting(format!(
                "the {} weight format runs on the CPU only: use --device cpu, or --dtype f32 \
                 on this device",
                format.name("")
            )));
        }
        Ok(format)
    }

    /// Whether llmzip's own network computes it (on the CPU only).
    pub(super) fn is_own(self) -> bool {
        matches!(
            self,
            WeightFormat::Int8 | WeightFormat::Int8Kv8 | WeightFormat::OwnF32
        )
    }

    /// The default row length of the lockstep batch.
    pub(super) fn segment_tokens(self) -> u64 {
        match self {
            WeightFormat::Int8Kv8 => crate::models::KV8_SEGMENT_TOKENS,
            WeightFormat::Int8 => crate::models::INT8_SEGMENT_TOKENS,
            WeightFormat::Candle(_) | WeightFormat::OwnF32 => {
                crate::models::TRANSFORMER_SEGMENT_TOKENS
            }
        }
    }

    /// The default context window in tokens, at most `context`: shorter for `int8-kv8`, whose
    /// cache shifts cheaply, than for the formats that re-fill it.
    pub(super) fn window(self, context: usize) -> u64 {
        let window = match self {
            WeightFormat::Int8Kv8 => KV8_WINDOW,
            _ => DEFAULT_WINDOW,
        };
        window.min(context as u64)
    }

    /// The name recorded in archive headers; `native` is the file's own format's.
    pub(super) fn name(self, native: &str) -> String {
        match self {
            WeightFormat::Candle(CandleFormat::F32) => "f32",
            WeightFormat::Candle(CandleFormat::Q8_0) => "q8_0",
            WeightFormat::Int8 => "int8",
            WeightFormat::Int8Kv8 => crate::models::INT8_KV8,
            WeightFormat::OwnF32 => crate::models::F32_PORTABLE,
            WeightFormat::Candle(CandleFormat::Native) => native,
        }
        .to_string()
    }
}

impl CandleFormat {
    pub(super) fn matmul(self, q: QTensor, device: &Device) -> Result<Matrix> {
        Ok(match self {
            CandleFormat::F32 => Matrix::Dense(q.dequantize(device)?.t()?.contiguous()?),
            CandleFormat::Q8_0 if q.dtype() != GgmlDType::Q8_0 => {
                Matrix::Quantized(QMatMul::QTensor(Arc::new(QTensor::quantize(
                    &q.dequantize(device)?,
                    GgmlDType::Q8_0,
                )?)))
            }
            CandleFormat::Q8_0 | CandleFormat::Native => {
                Matrix::Quantized(QMatMul::QTensor(Arc::new(q)))
            }
        })
    }
}
