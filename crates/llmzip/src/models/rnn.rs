//! Byte-level recurrent models: the GRU that is llmzip's small, fast, embedded default, and the
//! LSTM of the Python prototype. They differ only in the cell update ([`Cell`]).
//!
//! Architecture: token embedding → `num_layers` stacked recurrent layers (PyTorch weight layout
//! and gate order: GRU r, z, n; LSTM i, f, g, o) → linear head over 256 byte values. Input ids are
//! the 256 bytes plus one BOS id (256) that starts every segment.
//!
//! Inference is written with plain candle ops rather than `candle_nn::rnn`, for speed: the first
//! layer's input projection `embedding · W_ih + b_ih` is folded into a 257-row lookup table once at
//! load time, so a step costs one gather plus the recurrent matmuls.
//!
//! The recurrent state is a flat list of `rows × H` tensors, [`Cell::state_tensors`] per layer
//! (GRU: h; LSTM: h, c), so that code which resets, masks or splits states needs no case analysis.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::activation;
use super::rng::SplitMix64;
use super::{Backend, BatchShape, Fingerprint, LanguageModel, ModelInfo, RNN_SEGMENT_TOKENS};
use crate::tokenization::{ByteTokenizer, Tokenizer};
use crate::{Error, Result};

/// File names inside a model directory.
pub const CONFIG_FILE: &str = "config.json";
/// File name of a model directory's weights.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// The recurrent cell of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// Gated recurrent unit.
    Gru,
    /// Long short-term memory.
    Lstm,
}

impl Cell {
    /// Parses the `arch` field of a configuration.
    pub fn from_arch(arch: &str) -> Option<Cell> {
        match arch {
            "gru" => Some(Cell::Gru),
            "lstm" => Some(Cell::Lstm),
            _ => None,
        }
    }

    /// Gate blocks in the weight matrices (rows = gates · H).
    pub fn gates(self) -> usize {
        match self {
            Cell::Gru => 3,
            Cell::Lstm => 4,
        }
    }

    /// State tensors per layer.
    pub fn state_tensors(self) -> usize {
        match self {
            Cell::Gru => 1,
            Cell::Lstm => 2,
        }
    }

    /// One update of a layer's state given the input projection `gi` (`rows × gates·H`).
    /// `state` holds this layer's [`Cell::state_tensors`]; the new state is returned in the same
    /// layout, its first tensor being the layer's output `h`.
    pub(crate) fn update(
        self,
        gi: &Tensor,
        state: &[Tensor],
        layer: &RnnLayer,
        hidden: usize,
    ) -> Result<Vec<Tensor>> {
        let h = &state[0];
        let gh = h.matmul(&layer.w_hh_t)?.broadcast_add(&layer.b_hh)?;
        let gate = |t: &Tensor, k: usize| t.narrow(1, k * hidden, hidden);
        match self {
            Cell::Gru => {
                let r = candle_nn::ops::sigmoid(&(gate(gi, 0)? + gate(&gh, 0)?)?)?;
                let z = candle_nn::ops::sigmoid(&(gate(gi, 1)? + gate(&gh, 1)?)?)?;
                let n = (gate(gi, 2)? + (r * gate(&gh, 2)?)?)?.tanh()?;
                // h' = (1 - z) ⊙ n + z ⊙ h = n + z ⊙ (h - n)
                Ok(vec![(&n + (z * (h - &n)?)?)?])
            }
            Cell::Lstm => {
                let g = (gi + gh)?;
                let i = candle_nn::ops::sigmoid(&gate(&g, 0)?)?;
                let f = candle_nn::ops::sigmoid(&gate(&g, 1)?)?;
                let c_new = gate(&g, 2)?.tanh()?;
                let o = candle_nn::ops::sigmoid(&gate(&g, 3)?)?;
                let c = ((f * &state[1])? + (i * c_new)?)?;
                let h = (o * c.tanh()?)?;
                Ok(vec![h, c])
            }
        }
    }
}

/// The GRU update of [`Cell::update`] for inference, with the gate arithmetic fused into one pass
/// over each row instead of a dozen candle ops (each allocating and dispatching), and rows
/// computed in parallel.
///
/// It performs the very same IEEE operations in the same order as the candle ops — sigmoid as
/// `1 / (exp(-x) + 1)`, `tanh` from the same libm, `h' = n + z·(h − n)`, no fused multiply-adds —
/// so its results are bit-identical (tested), and archives written by either decode with the
/// other.
fn gru_update_fused(gi: &Tensor, h: &Tensor, layer: &RnnLayer, hidden: usize) -> Result<Tensor> {
    use rayon::prelude::*;
    let gh = h.matmul(&layer.w_hh_t)?.broadcast_add(&layer.b_hh)?;
    let rows = h.dim(0)?;
    let gi = gi.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
    let gh = gh.flatten_all()?.to_vec1::<f32>()?;
    let h_old = h.flatten_all()?.to_vec1::<f32>()?;
    let sigmoid = |v: f32| ((-v).exp() + 1.0).recip();
    let mut h_new = vec![0f32; rows * hidden];
    h_new
        .par_chunks_mut(hidden)
        .enumerate()
        .for_each(|(row, out)| {
            let gi = &gi[row * 3 * hidden..(row + 1) * 3 * hidden];
            let gh = &gh[row * 3 * hidden..(row + 1) * 3 * hidden];
            let h = &h_old[row * hidden..(row + 1) * hidden];
            for j in 0..hidden {
                let r = sigmoid(gi[j] + gh[j]);
                let z = sigmoid(gi[hidden + j] + gh[hidden + j]);
                let n = (gi[2 * hidden + j] + r * gh[2 * hidden + j]).tanh();
                out[j] = n + z * (h[j] - n);
            }
        });
    Ok(Tensor::from_vec(h_new, (rows, hidden), h.device())?)
}

/// A cell update with [`Activations::Portable`]: the gate arithmetic of [`Cell::update`] done
/// row by row with [`activation`]'s functions, rows in parallel (each row's result is the same
/// whichever thread computes it). The matrix product stays candle's, on the model's device.
fn update_portable(
    cell: Cell,
    gi: &Tensor,
    state: &[Tensor],
    layer: &RnnLayer,
    hidden: usize,
) -> Result<Vec<Tensor>> {
    use rayon::prelude::*;
    let gh = state[0].matmul(&layer.w_hh_t)?.broadcast_add(&layer.b_hh)?;
    let rows = state[0].dim(0)?;
    let g = cell.gates() * hidden;
    let flat = |t: &Tensor| -> Result<Vec<f32>> { Ok(t.contiguous()?.flatten_all()?.to_vec1()?) };
    let (gi, gh) = (flat(gi)?, flat(&gh)?);
    let old: Vec<Vec<f32>> = state.iter().map(flat).collect::<Result<_>>()?;
    let mut new: Vec<Vec<f32>> = vec![vec![0f32; rows * hidden]; state.len()];
    let device = state[0].device();
    match cell {
        Cell::Gru => new[0]
            .par_chunks_mut(hidden)
            .enumerate()
            .for_each(|(row, out)| {
                let span = row * g..(row + 1) * g;
                let h = &old[0][row * hidden..(row + 1) * hidden];
                activation::gru_row(&gi[span.clone()], &gh[span], h, out);
            }),
        Cell::Lstm => {
            let (h_new, c_new) = new.split_at_mut(1);
            h_new[0]
                .par_chunks_mut(hidden)
                .zip(c_new[0].par_chunks_mut(hidden))
                .enumerate()
                .for_each(|(row, (h_out, c_out))| {
                    let span = row * g..(row + 1) * g;
                    let c = &old[1][row * hidden..(row + 1) * hidden];
                    activation::lstm_row(&gi[span.clone()], &gh[span], c, h_out, c_out);
                })
        }
    }
    new.into_iter()
        .map(|v| Ok(Tensor::from_vec(v, (rows, hidden), device)?))
        .collect()
}

/// Shape of a recurrent model, stored as `config.json` next to the weights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RnnConfig {
    /// `"gru"` or `"lstm"`.
    pub arch: String,
    /// Width of the byte embedding.
    pub embed_dim: usize,
    /// Width of each recurrent layer.
    pub hidden_size: usize,
    /// Stacked recurrent layers.
    pub num_layers: usize,
    /// Whose `exp`/`sigmoid`/`tanh`/softmax inference uses. Absent in the configurations of
    /// models made before the choice existed, which therefore keep libm's (and their
    /// fingerprints, which hash this configuration's JSON).
    #[serde(default, skip_serializing_if = "Activations::is_libm")]
    pub activations: Activations,
}

/// The activation functions a recurrent model's inference computes with. Part of the model's
/// arithmetic: archives decode only with the same choice, so it is fixed per model (in its
/// `config.json`) and covered by its fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activations {
    /// The C library's `expf`/`tanhf` and candle's softmax: the embedded `gru` and `gru2`.
    #[default]
    Libm,
    /// llmzip's own, from IEEE-754 basic operations ([`super::activation`]): the same bits on
    /// every platform and several times faster. What `llmzip train` writes for new models.
    Portable,
}

impl Activations {
    fn is_libm(&self) -> bool {
        *self == Activations::Libm
    }
}

impl RnnConfig {
    /// A configuration of the given cell and sizes, with [`Activations::Portable`].
    pub fn new(cell: Cell, embed_dim: usize, hidden_size: usize, num_layers: usize) -> Self {
        RnnConfig {
            arch: match cell {
                Cell::Gru => "gru",
                Cell::Lstm => "lstm",
            }
            .into(),
            embed_dim,
            hidden_size,
            num_layers,
            activations: Activations::Portable,
        }
    }

    /// The cell named by `arch` (validated configurations always have one).
    pub fn cell(&self) -> Cell {
        Cell::from_arch(&self.arch).unwrap_or(Cell::Gru)
    }

    /// Number of input ids: 256 bytes plus BOS.
    pub const INPUTS: usize = 257;
    /// Number of predicted symbols.
    pub const VOCAB: usize = 256;
    /// The id that starts every segment.
    pub const BOS: u32 = 256;

    /// Expected tensor names and shapes, in a fixed order.
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (e, h) = (self.embed_dim, self.hidden_size);
        let g = self.cell().gates();
        let mut shapes = vec![("embedding.weight".to_string(), vec![Self::INPUTS, e])];
        for l in 0..self.num_layers {
            let input = if l == 0 { e } else { h };
            shapes.push((format!("rnn.{l}.weight_ih"), vec![g * h, input]));
            shapes.push((format!("rnn.{l}.weight_hh"), vec![g * h, h]));
            shapes.push((format!("rnn.{l}.bias_ih"), vec![g * h]));
            shapes.push((format!("rnn.{l}.bias_hh"), vec![g * h]));
        }
        shapes.push(("head.weight".into(), vec![Self::VOCAB, h]));
        shapes.push(("head.bias".into(), vec![Self::VOCAB]));
        shapes
    }

    fn validate(&self) -> Result<()> {
        let ok = Cell::from_arch(&self.arch).is_some()
            && (1..=4096).contains(&self.embed_dim)
            && (1..=8192).contains(&self.hidden_size)
            && (1..=16).contains(&self.num_layers);
        if ok {
            Ok(())
        } else {
            Err(Error::Model(format!(
                "unsupported GRU configuration {self:?}"
            )))
        }
    }

    /// The all-zero recurrent state for `rows` streams.
    pub fn zero_state(&self, rows: usize, device: &Device) -> Result<Vec<Tensor>> {
        let zeros = Tensor::zeros((rows, self.hidden_size), DType::F32, device)?;
        Ok(vec![zeros; self.num_layers * self.cell().state_tensors()])
    }

    /// Freshly initialised weights (PyTorch's default uniform ±1/√fan-in), reproducible from `seed`.
    pub fn init_weights(&self, seed: u64, device: &Device) -> Result<HashMap<String, Tensor>> {
        let mut rng = SplitMix64::new(seed);
        let mut tensors = HashMap::new();
        for (name, shape) in self.tensor_shapes() {
            let bound = if name.starts_with("embedding") {
                1.0
            } else {
                1.0 / (self.hidden_size as f32).sqrt()
            };
            let n: usize = shape.iter().product();
            let data: Vec<f32> = (0..n).map(|_| rng.uniform(bound)).collect();
            tensors.insert(name, Tensor::from_vec(data, shape, device)?);
        }
        Ok(tensors)
    }
}

/// Writes a model directory (`config.json` + `model.safetensors`).
pub fn save_dir(dir: &Path, config: &RnnConfig, tensors: &HashMap<String, Tensor>) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(config).expect("config serialises");
    std::fs::write(dir.join(CONFIG_FILE), json + "\n")?;
    candle_core::safetensors::save(tensors, dir.join(WEIGHTS_FILE))?;
    Ok(())
}

/// One layer's weights, transposed for `x · Wᵀ` products. Shared with the trainer, which
/// builds it from trainable variables, so training and inference run the same cell code.
pub(crate) struct RnnLayer {
    /// `W_ihᵀ` (input × gates·H); at inference, layer 0 uses the lookup table instead.
    pub w_ih_t: Tensor,
    pub b_ih: Tensor,
    /// `W_hhᵀ` (H × gates·H).
    pub w_hh_t: Tensor,
    pub b_hh: Tensor,
}

/// A loaded recurrent model, ready for lockstep inference.
pub struct Rnn {
    info: ModelInfo,
    config: RnnConfig,
    cell: Cell,
    device: Device,
    /// `embedding · W_ih(0)ᵀ + b_ih(0)`, one row per input id (257 × 3H).
    input_table: Tensor,
    layers: Vec<RnnLayer>,
    head_w_t: Tensor,
    head_b: Tensor,
    /// Recurrent state: `cell.state_tensors()` tensors of `rows × H` per layer.
    state: Vec<Tensor>,
}

/// The GRUs compiled into the binary, by name: config and weights. A retrained GRU comes under
/// a new name (its fingerprint differs), so that archives of the older one keep decoding.
const EMBEDDED: [(&str, &[u8], &[u8]); 3] = [
    (
        "gru",
        include_bytes!("../../models/gru/config.json"),
        include_bytes!("../../models/gru/model.safetensors"),
    ),
    (
        "gru2",
        include_bytes!("../../models/gru2/config.json"),
        include_bytes!("../../models/gru2/model.safetensors"),
    ),
    (
        "gru3",
        include_bytes!("../../models/gru3/config.json"),
        include_bytes!("../../models/gru3/model.safetensors"),
    ),
];

impl Rnn {
    /// The first model compiled into the binary (`gru`).
    pub fn embedded(device: &Device) -> Result<Rnn> {
        Rnn::builtin("gru", device).expect("gru is embedded")
    }

    /// The names of the GRUs compiled into the binary.
    pub fn embedded_names() -> impl Iterator<Item = &'static str> {
        EMBEDDED.iter().map(|(n, ..)| *n)
    }

    /// A GRU compiled into the binary, by name (`gru`, `gru2`, `gru3`); `None` for other names.
    pub fn builtin(name: &str, device: &Device) -> Option<Result<Rnn>> {
        let (name, config, weights) = EMBEDDED.iter().find(|(n, ..)| *n == name)?;
        Some(Rnn::from_bytes(name, config, weights, device))
    }

    /// Loads `config.json` + `model.safetensors` from a directory (or the directory of a given
    /// `.safetensors` file).
    pub fn from_dir(path: &Path, device: &Device) -> Result<Rnn> {
        let dir = if path.is_file() {
            path.parent().unwrap_or(Path::new("."))
        } else {
            path
        };
        let read = |name: &str| {
            std::fs::read(dir.join(name)).map_err(|e| {
                Error::Model(format!(
                    "cannot read {}: {e} (a model directory holds {CONFIG_FILE} and {WEIGHTS_FILE})",
                    dir.join(name).display()
                ))
            })
        };
        let config = read(CONFIG_FILE)?;
        let weights = read(WEIGHTS_FILE)?;
        Rnn::from_bytes(&super::dir_name(dir), &config, &weights, device)
    }

    /// Builds a model from the bytes of its config and safetensors file.
    pub fn from_bytes(name: &str, config: &[u8], weights: &[u8], device: &Device) -> Result<Rnn> {
        let config: RnnConfig = serde_json::from_slice(config).map_err(|e| {
            Error::Model(format!(
                "{CONFIG_FILE} is not a recurrent model configuration: {e}"
            ))
        })?;
        config.validate()?;
        let tensors = candle_core::safetensors::load_buffer(weights, device)
            .map_err(|e| Error::Model(format!("{WEIGHTS_FILE} cannot be read: {e}")))?;
        let get = |name: &str, shape: &[usize]| -> Result<Tensor> {
            let t = tensors
                .get(name)
                .ok_or_else(|| Error::Model(format!("weights lack tensor '{name}'")))?;
            if t.dims() != shape {
                return Err(Error::Model(format!(
                    "tensor '{name}' has shape {:?}, the configuration needs {shape:?}",
                    t.dims()
                )));
            }
            Ok(t.to_dtype(DType::F32)?)
        };
        let shapes = config.tensor_shapes();
        let mut by_name = HashMap::new();
        for (n, s) in &shapes {
            by_name.insert(n.clone(), get(n, s)?);
        }
        let take = |n: &str| by_name[n].clone();
        let mut layers = Vec::with_capacity(config.num_layers);
        for l in 0..config.num_layers {
            layers.push(RnnLayer {
                w_ih_t: take(&format!("rnn.{l}.weight_ih")).t()?.contiguous()?,
                b_ih: take(&format!("rnn.{l}.bias_ih")),
                w_hh_t: take(&format!("rnn.{l}.weight_hh")).t()?.contiguous()?,
                b_hh: take(&format!("rnn.{l}.bias_hh")),
            });
        }
        let input_table = take("embedding.weight")
            .matmul(&layers[0].w_ih_t)?
            .broadcast_add(&layers[0].b_ih)?;
        let config_json = serde_json::to_vec(&config).expect("config serialises");
        let info = ModelInfo {
            name: name.to_string(),
            fingerprint: Fingerprint::of(&[b"llmzip-gru", &config_json, weights]),
            vocab_size: RnnConfig::VOCAB,
            bos: RnnConfig::BOS,
            backend: Backend::of(device, "f32"),
            max_context: None,
            default_window: 0,
            default_segment_tokens: RNN_SEGMENT_TOKENS,
        };
        Ok(Rnn {
            info,
            cell: config.cell(),
            head_w_t: take("head.weight").t()?.contiguous()?,
            head_b: take("head.bias"),
            input_table,
            layers,
            config,
            device: device.clone(),
            state: Vec::new(),
        })
    }

    /// The model's shape.
    pub fn config(&self) -> &RnnConfig {
        &self.config
    }

    /// Number of parameters.
    pub fn parameter_count(&self) -> usize {
        self.config
            .tensor_shapes()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }
}

impl LanguageModel for Rnn {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn tokenizer(&self) -> &dyn Tokenizer {
        &ByteTokenizer
    }

    fn working_memory(&self, shape: &BatchShape) -> u64 {
        // Per row and layer: the state and the step's temporaries (input and hidden gate
        // products of 3H each, the gates, the new state), all f32; then logits, softmax and
        // the returned copy of the distribution.
        let h = self.config.hidden_size as u64;
        let per_row = self.config.num_layers as u64 * h * 4 * 12 + RnnConfig::VOCAB as u64 * 4 * 4;
        shape.rows.saturating_mul(per_row)
    }

    fn start_block(&mut self, rows: usize) -> Result<()> {
        self.state = self.config.zero_state(rows, &self.device)?;
        Ok(())
    }

    /// The recurrent state is all the context there is.
    fn slide(&mut self, rows: usize) -> Result<()> {
        self.start_block(rows)
    }

    fn step(&mut self, inputs: &[u32]) -> Result<Vec<f32>> {
        let rows = inputs.len();
        if self.state.first().map(|s| s.dim(0)).transpose()? != Some(rows) {
            return Err(Error::InvalidSetting(format!(
                "step with {rows} inputs on a batch that was reset for a different size"
            )));
        }
        if let Some(&bad) = inputs.iter().find(|&&t| t as usize >= RnnConfig::INPUTS) {
            return Err(Error::InvalidSetting(format!(
                "input id {bad} out of range"
            )));
        }
        let hidden = self.config.hidden_size;
        let k = self.cell.state_tensors();
        let ids = Tensor::from_slice(inputs, rows, &self.device)?;
        let mut x = self.input_table.index_select(&ids, 0)?;
        for (l, layer) in self.layers.iter().enumerate() {
            let gi = if l == 0 {
                x
            } else {
                x.matmul(&layer.w_ih_t)?.broadcast_add(&layer.b_ih)?
            };
            let state = &self.state[l * k..(l + 1) * k];
            let next = match (self.config.activations, self.cell, &self.device) {
                (Activations::Portable, cell, _) => {
                    update_portable(cell, &gi, state, layer, hidden)?
                }
                (Activations::Libm, Cell::Gru, Device::Cpu) => {
                    vec![gru_update_fused(&gi, &state[0], layer, hidden)?]
                }
                (Activations::Libm, cell, _) => cell.update(&gi, state, layer, hidden)?,
            };
            x = next[0].clone();
            for (slot, t) in self.state[l * k..(l + 1) * k].iter_mut().zip(next) {
                *slot = t;
            }
        }
        let logits = x.matmul(&self.head_w_t)?.broadcast_add(&self.head_b)?;
        match self.config.activations {
            Activations::Libm => {
                let probs = candle_nn::ops::softmax_last_dim(&logits)?;
                Ok(probs.flatten_all()?.to_vec1::<f32>()?)
            }
            Activations::Portable => {
                let mut probs = logits.flatten_all()?.to_vec1::<f32>()?;
                probs
                    .chunks_mut(RnnConfig::VOCAB)
                    .for_each(activation::softmax);
                Ok(probs)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_model(dir: &Path, cell: Cell) -> Rnn {
        let cfg = RnnConfig::new(cell, 8, 16, 2);
        let w = cfg.init_weights(1, &Device::Cpu).unwrap();
        save_dir(dir, &cfg, &w).unwrap();
        Rnn::from_dir(dir, &Device::Cpu).unwrap()
    }

    #[test]
    fn probabilities_are_normalised_and_batch_shaped() {
        for cell in [Cell::Gru, Cell::Lstm] {
            let dir = tempfile::tempdir().unwrap();
            let mut m = tiny_model(dir.path(), cell);
            m.start_block(3).unwrap();
            let p = m.step(&[RnnConfig::BOS, 65, 0]).unwrap();
            assert_eq!(p.len(), 3 * 256);
            for row in p.chunks(256) {
                let s: f32 = row.iter().sum();
                assert!((s - 1.0).abs() < 1e-4);
            }
            // State carries over: the same input gives a different prediction next step.
            let q = m.step(&[RnnConfig::BOS, 65, 0]).unwrap();
            assert_ne!(p, q, "{cell:?} ignores its state");
            assert!(m.step(&[1, 2]).is_err(), "wrong batch size must be refused");
        }
    }

    #[test]
    fn fingerprint_changes_with_weights_and_shape_errors_are_clear() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let cfg = RnnConfig::new(Cell::Gru, 8, 16, 1);
        save_dir(a.path(), &cfg, &cfg.init_weights(1, &Device::Cpu).unwrap()).unwrap();
        save_dir(b.path(), &cfg, &cfg.init_weights(2, &Device::Cpu).unwrap()).unwrap();
        let fa = Rnn::from_dir(a.path(), &Device::Cpu)
            .unwrap()
            .info()
            .fingerprint;
        let fb = Rnn::from_dir(b.path(), &Device::Cpu)
            .unwrap()
            .info()
            .fingerprint;
        assert_ne!(fa, fb);
        // A config that does not match the weights is refused with the tensor's name.
        let wrong = RnnConfig::new(Cell::Gru, 8, 32, 1);
        std::fs::write(
            a.path().join(CONFIG_FILE),
            serde_json::to_string(&wrong).unwrap(),
        )
        .unwrap();
        let err = Rnn::from_dir(a.path(), &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("rnn.0.weight_ih"), "{err}");
    }

    #[test]
    fn fused_gru_update_is_bit_identical_to_the_candle_ops() {
        // Archives written before the fused update existed must still decode, so the two must
        // agree in every bit, not approximately. The embedded model's layers, varied inputs.
        let model = Rnn::embedded(&Device::Cpu).unwrap();
        let hidden = model.config.hidden_size;
        let mut rng = SplitMix64::new(7);
        for (rows, scale) in [(1, 1.0), (5, 4.0), (37, 12.0)] {
            for layer in &model.layers {
                let gi: Vec<f32> = (0..rows * 3 * hidden).map(|_| rng.uniform(scale)).collect();
                let h: Vec<f32> = (0..rows * hidden).map(|_| rng.uniform(1.0)).collect();
                let gi = Tensor::from_vec(gi, (rows, 3 * hidden), &Device::Cpu).unwrap();
                let h = Tensor::from_vec(h, (rows, hidden), &Device::Cpu).unwrap();
                let reference = Cell::Gru
                    .update(&gi, std::slice::from_ref(&h), layer, hidden)
                    .unwrap();
                let fused = gru_update_fused(&gi, &h, layer, hidden).unwrap();
                let bits = |t: &Tensor| -> Vec<u32> {
                    let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                    v.into_iter().map(f32::to_bits).collect()
                };
                assert_eq!(
                    bits(&reference[0]),
                    bits(&fused),
                    "{rows} rows, scale {scale}"
                );
            }
        }
    }

    #[test]
    fn activations_default_to_libm_and_only_portable_is_written() {
        // Configurations from before the field must keep their arithmetic and their JSON (the
        // fingerprint hashes it).
        let old = r#"{"arch":"gru","embed_dim":32,"hidden_size":256,"num_layers":2}"#;
        let cfg: RnnConfig = serde_json::from_str(old).unwrap();
        assert_eq!(cfg.activations, Activations::Libm);
        assert_eq!(serde_json::to_string(&cfg).unwrap(), old);
        let new = RnnConfig::new(Cell::Gru, 32, 256, 2);
        assert_eq!(new.activations, Activations::Portable);
        let json = serde_json::to_string(&new).unwrap();
        assert!(json.ends_with(r#","activations":"portable"}"#), "{json}");
        let bad = old.replace('}', r#","activations":"fast"}"#);
        assert!(serde_json::from_str::<RnnConfig>(&bad).is_err());
    }

    #[test]
    fn portable_activations_stay_close_to_the_candle_ops_for_both_cells() {
        let mut rng = SplitMix64::new(11);
        for cell in [Cell::Gru, Cell::Lstm] {
            let dir = tempfile::tempdir().unwrap();
            let model = tiny_model(dir.path(), cell);
            let hidden = model.config.hidden_size;
            let g = cell.gates() * hidden;
            for (rows, scale) in [(1, 1.0), (6, 5.0)] {
                let layer = &model.layers[1];
                let gi: Vec<f32> = (0..rows * g).map(|_| rng.uniform(scale)).collect();
                let gi = Tensor::from_vec(gi, (rows, g), &Device::Cpu).unwrap();
                let state: Vec<Tensor> = (0..cell.state_tensors())
                    .map(|_| {
                        let v: Vec<f32> = (0..rows * hidden).map(|_| rng.uniform(1.0)).collect();
                        Tensor::from_vec(v, (rows, hidden), &Device::Cpu).unwrap()
                    })
                    .collect();
                let want = cell.update(&gi, &state, layer, hidden).unwrap();
                let got = update_portable(cell, &gi, &state, layer, hidden).unwrap();
                assert_eq!(want.len(), got.len());
                for (w, g) in want.iter().zip(&got) {
                    let diff = (w - g).unwrap().abs().unwrap().max_all().unwrap();
                    let diff = diff.to_scalar::<f32>().unwrap();
                    assert!(diff < 1e-6, "{cell:?}, {rows} rows: {diff}");
                }
            }
        }
    }

    #[test]
    fn portable_steps_do_not_depend_on_the_thread_count() {
        let dir = tempfile::tempdir().unwrap();
        let run = |threads: usize| -> Vec<u32> {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut m = Rnn::from_dir(dir.path(), &Device::Cpu).unwrap();
                m.start_block(9).unwrap();
                let mut bits = Vec::new();
                for t in 0..5u32 {
                    let inputs: Vec<u32> = (0..9).map(|r| (r * 31 + t * 7) % 257).collect();
                    bits.extend(m.step(&inputs).unwrap().into_iter().map(f32::to_bits));
                }
                bits
            })
        };
        let m = tiny_model(dir.path(), Cell::Gru);
        assert_eq!(m.config.activations, Activations::Portable);
        assert_eq!(run(1), run(4));
    }

    #[test]
    fn embedded_models_load_and_differ() {
        let names: Vec<&str> = Rnn::embedded_names().collect();
        let models: Vec<Rnn> = names
            .iter()
            .map(|n| Rnn::builtin(n, &Device::Cpu).unwrap().unwrap())
            .collect();
        for (m, name) in models.iter().zip(names) {
            assert_eq!(m.info().vocab_size, 256);
            assert_eq!(m.info().name, name);
            assert!(m.parameter_count() > 0);
        }
        for (i, a) in models.iter().enumerate() {
            for b in &models[i + 1..] {
                assert_ne!(a.info().fingerprint, b.info().fingerprint);
            }
        }
        // gru3 is the first with portable activations; the older two keep libm's.
        let activations: Vec<Activations> = models.iter().map(|m| m.config.activations).collect();
        assert_eq!(
            activations,
            [Activations::Libm, Activations::Libm, Activations::Portable]
        );
        assert!(Rnn::builtin("gru4", &Device::Cpu).is_none());
    }
}
