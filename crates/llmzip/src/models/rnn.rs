//! Byte-level recurrent models: the GRU that is llmzip's small, fast, embedded default, and the
//! LSTM of the Python prototype. They differ only in the cell update ([`Cell`]).
//!
//! Architecture: token embedding → `num_layers` stacked recurrent layers (PyTorch weight layout
//! and gate order: GRU r, z, n; LSTM i, f, g, o) → linear head over 256 byte values. Input ids are
//! the 256 bytes plus one BOS id (256) that starts every segment.
//!
//! Inference on the CPU runs on llmzip's own kernels ([`CpuWeights`]: the fixed-order matrix
//! product of [`super::matmul`] and the gate functions the model names), so that archives decode
//! on every CPU; on GPUs it is written with plain candle ops rather than `candle_nn::rnn`. Either
//! way the first layer's input projection `embedding · W_ih + b_ih` is folded into a 257-row
//! lookup table once at load time, so a step costs one gather plus the recurrent matmuls.
//!
//! The recurrent state is a flat list of `rows × H` tensors, [`Cell::state_tensors`] per layer
//! (GRU: h; LSTM: h, c), so that code which resets, masks or splits states needs no case analysis.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::activation;
use super::glibc;
use super::matmul::PackedMatrix;
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

/// A cell's gate arithmetic for `rows` rows given the input and hidden projections (`gi`, `gh`:
/// `rows × gates·H`) and the old state (the cell's state tensors, each `rows × H`), with the
/// functions `G` ([`activation::Gates`]). Rows run in parallel; each row's result is the same
/// whichever thread computes it. Returns the new state, its first vector being `h`.
fn cell_rows<G: activation::Gates>(
    cell: Cell,
    gi: &[f32],
    gh: &[f32],
    old: &[Vec<f32>],
    hidden: usize,
) -> Vec<Vec<f32>> {
    use rayon::prelude::*;
    let g = cell.gates() * hidden;
    let rows = gi.len() / g;
    let mut new: Vec<Vec<f32>> = vec![vec![0f32; rows * hidden]; old.len()];
    match cell {
        Cell::Gru => new[0]
            .par_chunks_mut(hidden)
            .enumerate()
            .for_each(|(row, out)| {
                let span = row * g..(row + 1) * g;
                let h = &old[0][row * hidden..(row + 1) * hidden];
                activation::gru_row::<G>(&gi[span.clone()], &gh[span], h, out);
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
                    activation::lstm_row::<G>(&gi[span.clone()], &gh[span], c, h_out, c_out);
                })
        }
    }
    new
}

fn flat(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.contiguous()?.flatten_all()?.to_vec1()?)
}

/// A cell update with [`Activations::Portable`] on a GPU: candle's matrix product on the
/// device, then [`cell_rows`] with llmzip's portable functions.
fn update_portable(
    cell: Cell,
    gi: &Tensor,
    state: &[Tensor],
    layer: &RnnLayer,
    hidden: usize,
) -> Result<Vec<Tensor>> {
    let gh = state[0].matmul(&layer.w_hh_t)?.broadcast_add(&layer.b_hh)?;
    let rows = state[0].dim(0)?;
    let old: Vec<Vec<f32>> = state.iter().map(flat).collect::<Result<_>>()?;
    let new = cell_rows::<activation::Portable>(cell, &flat(gi)?, &flat(&gh)?, &old, hidden);
    let device = state[0].device();
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
    /// The C library's `expf`/`tanhf` and candle's softmax, as the embedded `gru` and `gru2` were
    /// made with: on the CPU, bit-exact replicas of glibc 2.36's on x86-64 with FMA
    /// ([`super::glibc`]), the same on every CPU.
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
    /// On the CPU, the same weights for llmzip's own kernels ([`CpuWeights`]).
    cpu: Option<CpuWeights>,
}

/// The weights as the CPU path computes with them: matrices packed for
/// [`PackedMatrix::matmul`], whose one summation order makes the archives of every recurrent
/// model decode on every CPU (its module docs say why candle's could not).
struct CpuWeights {
    /// `embedding · W_ih(0)ᵀ + b_ih(0)`, `257 × gates·H`, computed with the same kernel.
    input_table: Vec<f32>,
    layers: Vec<CpuLayer>,
    head: PackedMatrix,
    head_b: Vec<f32>,
}

struct CpuLayer {
    /// `W_ihᵀ`; `None` for layer 0, whose input projection is the table.
    w_ih: Option<PackedMatrix>,
    b_ih: Vec<f32>,
    w_hh: PackedMatrix,
    b_hh: Vec<f32>,
}

impl CpuWeights {
    fn new(
        embedding: &Tensor,
        layers: &[RnnLayer],
        head_w_t: &Tensor,
        head_b: &Tensor,
    ) -> Result<Self> {
        let flat = |t: &Tensor| -> Result<Vec<f32>> { Ok(t.flatten_all()?.to_vec1::<f32>()?) };
        let packed = |t: &Tensor| -> Result<PackedMatrix> {
            let (k, n) = t.dims2()?;
            Ok(PackedMatrix::new(&flat(t)?, k, n))
        };
        let mut cpu_layers = Vec::with_capacity(layers.len());
        for (l, layer) in layers.iter().enumerate() {
            cpu_layers.push(CpuLayer {
                w_ih: if l == 0 {
                    None
                } else {
                    Some(packed(&layer.w_ih_t)?)
                },
                b_ih: flat(&layer.b_ih)?,
                w_hh: packed(&layer.w_hh_t)?,
                b_hh: flat(&layer.b_hh)?,
            });
        }
        let w_ih0 = packed(&layers[0].w_ih_t)?;
        let inputs = embedding.dim(0)?;
        let input_table = w_ih0.matmul(&flat(embedding)?, inputs, Some(&cpu_layers[0].b_ih));
        Ok(CpuWeights {
            input_table,
            layers: cpu_layers,
            head: packed(head_w_t)?,
            head_b: flat(head_b)?,
        })
    }

    /// One step of every row: the layers with [`PackedMatrix::matmul`] and the cell's gates,
    /// then the head and the softmax, all with the functions `config.activations` names.
    fn step(&self, config: &RnnConfig, state: &mut [Tensor], inputs: &[u32]) -> Result<Vec<f32>> {
        let (rows, hidden, cell) = (inputs.len(), config.hidden_size, config.cell());
        let width = cell.gates() * hidden;
        let per_layer = cell.state_tensors();
        let mut x: Vec<f32> = Vec::with_capacity(rows * width);
        for &id in inputs {
            x.extend_from_slice(&self.input_table[id as usize * width..(id as usize + 1) * width]);
        }
        for (l, layer) in self.layers.iter().enumerate() {
            let gi = match &layer.w_ih {
                Some(w) => w.matmul(&x, rows, Some(&layer.b_ih)),
                None => x,
            };
            let slots = &mut state[l * per_layer..(l + 1) * per_layer];
            let old: Vec<Vec<f32>> = slots.iter().map(flat).collect::<Result<_>>()?;
            let gh = layer.w_hh.matmul(&old[0], rows, Some(&layer.b_hh));
            let new = match config.activations {
                Activations::Portable => {
                    cell_rows::<activation::Portable>(cell, &gi, &gh, &old, hidden)
                }
                Activations::Libm => cell_rows::<glibc::Glibc>(cell, &gi, &gh, &old, hidden),
            };
            x = new[0].clone();
            for (slot, v) in slots.iter_mut().zip(new) {
                *slot = Tensor::from_vec(v, (rows, hidden), &Device::Cpu)?;
            }
        }
        let mut probs = self.head.matmul(&x, rows, Some(&self.head_b));
        let softmax = match config.activations {
            Activations::Portable => <activation::Portable as activation::Gates>::softmax,
            Activations::Libm => <glibc::Glibc as activation::Gates>::softmax,
        };
        {
            use rayon::prelude::*;
            probs.par_chunks_mut(RnnConfig::VOCAB).for_each(softmax);
        }
        Ok(probs)
    }
}

/// The GRUs compiled into the binary, by name: config and weights. A retrained GRU comes under
/// a new name (its fingerprint differs), so that archives of the older one keep decoding.
const EMBEDDED: [(&str, &[u8], &[u8]); 4] = [
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
    (
        "gru4",
        include_bytes!("../../models/gru4/config.json"),
        include_bytes!("../../models/gru4/model.safetensors"),
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

    /// A GRU compiled into the binary, by name (`gru`, `gru2`, `gru3`, `gru4`); `None` for other
    /// names.
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
        let head_w_t = take("head.weight").t()?.contiguous()?;
        let head_b = take("head.bias");
        let cpu = match device {
            Device::Cpu => Some(CpuWeights::new(
                &take("embedding.weight"),
                &layers,
                &head_w_t,
                &head_b,
            )?),
            _ => None,
        };
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
            head_w_t,
            head_b,
            input_table,
            cpu,
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
        match &self.cpu {
            Some(cpu) => {
                let probs = cpu.step(&self.config, &mut self.state, inputs)?;
                Ok(probs)
            }
            None => self.step_candle(inputs),
        }
    }
}

impl Rnn {
    /// A step through candle's ops on the model's device (GPUs; the CPU uses [`CpuWeights`]).
    fn step_candle(&mut self, inputs: &[u32]) -> Result<Vec<f32>> {
        let rows = inputs.len();
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
    fn cpu_kernels_give_candles_bits_where_candle_is_the_reference() {
        // Every GRU archive so far was made with candle on x86-64 glibc 2.36 with AVX2 + FMA
        // (glibc's FMA `expf`, gemm's FMA chain, candle's AVX2 sum). There, llmzip's own kernels
        // must give the very same bits: both kinds of activations, both cells, one row (gemm's
        // gemv path) and many, and layers wider than 512 with one row (where gemm does not split
        // the sum). Elsewhere candle itself is what differs (the goldens check those machines:
        // scripts/cross-cpu.sh).
        if !glibc::is_reference_platform() {
            eprintln!("not the machine kind the GRU archives were made on: skipped");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let own_model = |cell: Cell, embed: usize, hidden: usize, activations: Activations| {
            let mut cfg = RnnConfig::new(cell, embed, hidden, 2);
            cfg.activations = activations;
            let path = dir
                .path()
                .join(format!("{cell:?}-{hidden}-{activations:?}"));
            save_dir(&path, &cfg, &cfg.init_weights(9, &Device::Cpu).unwrap()).unwrap();
            path
        };
        type Loader = Box<dyn Fn() -> Rnn>;
        let mut cases: Vec<(String, Loader, Vec<u32>)> = Vec::new();
        for name in ["gru", "gru3", "gru4"] {
            cases.push((
                name.into(),
                Box::new(move || Rnn::builtin(name, &Device::Cpu).unwrap().unwrap()),
                vec![1, 5, 37],
            ));
        }
        for (cell, activations) in [
            (Cell::Lstm, Activations::Libm),
            (Cell::Lstm, Activations::Portable),
        ] {
            let path = own_model(cell, 8, 24, activations);
            cases.push((
                format!("{cell:?} {activations:?}"),
                Box::new(move || Rnn::from_dir(&path, &Device::Cpu).unwrap()),
                vec![1, 6],
            ));
        }
        let wide = own_model(Cell::Gru, 8, 520, Activations::Libm);
        cases.push((
            "GRU 520 wide".into(),
            Box::new(move || Rnn::from_dir(&wide, &Device::Cpu).unwrap()),
            vec![1],
        ));
        for (name, load, row_counts) in &cases {
            let (mut own, mut candle) = (load(), load());
            for &rows in row_counts {
                own.start_block(rows as usize).unwrap();
                candle.start_block(rows as usize).unwrap();
                for t in 0..4u32 {
                    let inputs: Vec<u32> = (0..rows).map(|r| (r * 31 + t * 89) % 257).collect();
                    let a = own.step(&inputs).unwrap();
                    let b = candle.step_candle(&inputs).unwrap();
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert!(bits(&a) == bits(&b), "{name}, {rows} rows, step {t}");
                }
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
            [
                Activations::Libm,
                Activations::Libm,
                Activations::Portable,
                Activations::Portable
            ]
        );
        assert!(Rnn::builtin("gru5", &Device::Cpu).is_none());
    }
}
