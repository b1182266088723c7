//! `llmzip train`: fits a byte-level GRU or LSTM to a corpus with truncated BPTT and AdamW.
//!
//! Training runs the *same* cell code as inference ([`crate::models::Cell`]), but over
//! whole chunks: each layer's input projection for all time steps is one matmul, and only the
//! recurrent product runs step by step. Streams carry their hidden state from chunk to chunk
//! (detached) and restart from BOS and a zero state at random points, matching how the codec runs
//! the model on segments.

mod adamw;
mod corpus;
mod curve;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var, D};
use serde::{Deserialize, Serialize};

use crate::models::rng::SplitMix64;
use crate::models::{save_dir, Cell, RnnConfig, RnnLayer, CONFIG_FILE, WEIGHTS_FILE};
use crate::{Error, Observer, Result};
use adamw::{AdamW, OPTIMIZER_FILE};

pub use corpus::Corpus;
pub use curve::{write_csv, write_svg, CurvePoint};

/// Everything a training run is configured with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Shape of the model to train.
    pub model: RnnConfig,
    /// Parallel streams per batch.
    pub batch: usize,
    /// Time steps per chunk (truncated BPTT length).
    pub seq_len: usize,
    /// Total training bytes to consume.
    pub train_bytes: u64,
    /// Peak learning rate.
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Global gradient-norm clip.
    pub clip: f64,
    /// Mean number of chunks a stream runs before restarting at a random place.
    pub mean_stream_chunks: usize,
    /// Evaluate validation BPC every this many bytes.
    pub eval_every: u64,
    /// At most this many validation bytes per evaluation.
    pub eval_bytes: usize,
    /// Seed of initialisation and sampling.
    pub seed: u64,
    /// Worker threads; each batch is split across them (data parallel). Each worker's kernels
    /// should run single-threaded: the matrices are too small for candle to split well.
    #[serde(default = "one")]
    pub workers: usize,
    /// From this many bytes seen on, keep the mean of the weights at every checkpoint (stochastic
    /// weight averaging), evaluate it with them and write it as a model to `OUT/average/`.
    #[serde(default)]
    pub average_from: Option<u64>,
}

fn one() -> usize {
    1
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            model: RnnConfig::new(Cell::Gru, 32, 256, 2),
            batch: 32,
            seq_len: 128,
            train_bytes: 20 << 20,
            lr: 3e-3,
            weight_decay: 0.01,
            clip: 1.0,
            mean_stream_chunks: 32,
            eval_every: 2 << 20,
            eval_bytes: 256 << 10,
            seed: 1,
            workers: 1,
            average_from: None,
        }
    }
}

/// Progress of a run, saved with checkpoints so that `--resume` continues where it stopped.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrainState {
    /// Training bytes seen so far.
    pub bytes_seen: u64,
    /// Optimizer steps so far.
    pub steps: u64,
    /// Wall time of the run so far, evaluations included.
    pub seconds: f64,
    /// Part of `seconds` spent on validation passes; training throughput excludes it.
    #[serde(default)]
    pub eval_seconds: f64,
    /// Validation points so far.
    pub curve: Vec<CurvePoint>,
    /// Checkpoints in the running mean of `OUT/average/` (see [`TrainOptions::average_from`]).
    #[serde(default)]
    pub averaged: u64,
}

impl TrainState {
    /// Training throughput in bytes of text per second, validation passes excluded.
    pub fn bytes_per_second(&self) -> f64 {
        self.bytes_seen as f64 / (self.seconds - self.eval_seconds).max(1e-9)
    }
}

const STATE_FILE: &str = "train_state.json";
/// The directory, inside a run's output, of the mean of its checkpoints' weights.
pub const AVERAGE_DIR: &str = "average";
const OPTIONS_FILE: &str = "train_options.json";

struct Params {
    vars: Vec<(String, Var)>,
}

impl Params {
    fn get(&self, name: &str) -> &Tensor {
        self.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_tensor())
            .expect("parameter exists")
    }

    /// New variables holding copies of `tensors` (never sharing storage with them: a mean made
    /// from the live weights must not move with them). `from` names the source in errors.
    fn from_tensors(
        names: &[String],
        tensors: &HashMap<String, Tensor>,
        from: &dyn std::fmt::Display,
    ) -> Result<Params> {
        Ok(Params {
            vars: names
                .iter()
                .map(|n| -> Result<_> {
                    let t = tensors
                        .get(n)
                        .ok_or_else(|| Error::Model(format!("{from} lacks '{n}'")))?;
                    let copy = t.to_dtype(DType::F32)?.copy()?;
                    Ok((n.clone(), Var::from_tensor(&copy)?))
                })
                .collect::<Result<_>>()?,
        })
    }

    /// Folds `p` into this running mean of `n - 1` weight sets, making it the mean of `n`.
    fn fold_into_mean(&self, p: &Params, n: u64) -> Result<()> {
        for ((_, mean), (_, w)) in self.vars.iter().zip(&p.vars) {
            let m = mean.as_tensor();
            mean.set(&(m + ((w.as_tensor() - m)? / n as f64)?)?)?;
        }
        Ok(())
    }

    fn tensors(&self) -> HashMap<String, Tensor> {
        self.vars
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect()
    }
}

/// Runs the GRU over `ids` (`B × T`) from `state` (one `B × H` per layer) and returns the logits
/// (`B·T × 256`, row-major by stream then time) and the final states.
///
/// The loop is time-major with one input projection per step: slicing a precomputed `(B, T, 3H)`
/// projection per step would be cheaper forwards, but each slice's backward pass pads a full
/// `(B, T, 3H)` gradient, which made training quadratic in `T`.
fn forward(
    p: &Params,
    cfg: &RnnConfig,
    ids: &Tensor,
    state: &[Tensor],
) -> Result<(Tensor, Vec<Tensor>)> {
    let (b, t) = ids.dims2()?;
    let h = cfg.hidden_size;
    let cell = cfg.cell();
    let k = cell.state_tensors();
    let layers: Vec<RnnLayer> = (0..cfg.num_layers)
        .map(|l| -> Result<RnnLayer> {
            Ok(RnnLayer {
                w_ih_t: p.get(&format!("rnn.{l}.weight_ih")).t()?,
                b_ih: p.get(&format!("rnn.{l}.bias_ih")).clone(),
                w_hh_t: p.get(&format!("rnn.{l}.weight_hh")).t()?,
                b_hh: p.get(&format!("rnn.{l}.bias_hh")).clone(),
            })
        })
        .collect::<Result<_>>()?;
    // Time-major ids so that step `k` is one contiguous slice of B ids.
    let ids_tm = ids.t()?.contiguous()?;
    let embedding = p.get("embedding.weight");
    let mut hs: Vec<Tensor> = state.to_vec();
    let mut outs = Vec::with_capacity(t);
    for step in 0..t {
        let mut x = embedding.index_select(&ids_tm.get(step)?, 0)?; // (B, E)
        for (l, layer) in layers.iter().enumerate() {
            let gi = x.matmul(&layer.w_ih_t)?.broadcast_add(&layer.b_ih)?;
            let next = cell.update(&gi, &hs[l * k..(l + 1) * k], layer, h)?;
            x = next[0].clone();
            for (slot, t) in hs[l * k..(l + 1) * k].iter_mut().zip(next) {
                *slot = t;
            }
        }
        outs.push(x);
    }
    // (T, B, H) -> (B, T, H) so logits line up with targets laid out stream by stream.
    let top = Tensor::stack(&outs, 1)?.reshape((b * t, h))?;
    let logits = top
        .matmul(&p.get("head.weight").t()?)?
        .broadcast_add(p.get("head.bias"))?;
    Ok((logits, hs))
}

/// Mean cross-entropy of `logits` against `targets`, in nats.
fn loss(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let picked = logp.gather(&targets.unsqueeze(1)?, 1)?;
    Ok(picked.mean_all()?.neg()?)
}

/// Validation bits per byte over the first `max_bytes` of each validation file, run as segments
/// from BOS with a zero state, as the codec does.
fn evaluate(p: &Params, opts: &TrainOptions, corpus: &Corpus, device: &Device) -> Result<f64> {
    let cfg = &opts.model;
    let text = corpus.validation_sample(opts.eval_bytes)?;
    let rows = opts.batch.min(text.len() / (opts.seq_len + 1)).max(1);
    let seg = text.len() / rows;
    if seg < 2 {
        return Err(Error::InvalidSetting("validation data is too small".into()));
    }
    let mut state = cfg.zero_state(rows, device)?;
    let mut bits = 0.0;
    let mut count = 0usize;
    let mut pos = 0;
    while pos < seg {
        let t = opts.seq_len.min(seg - pos);
        let mut ids = Vec::with_capacity(rows * t);
        let mut targets = Vec::with_capacity(rows * t);
        for r in 0..rows {
            let base = r * seg;
            for k in 0..t {
                let i = pos + k;
                ids.push(if i == 0 {
                    RnnConfig::BOS
                } else {
                    u32::from(text[base + i - 1])
                });
                targets.push(u32::from(text[base + i]));
            }
        }
        let ids = Tensor::from_vec(ids, (rows, t), device)?;
        let targets = Tensor::from_vec(targets, rows * t, device)?;
        let (logits, next) = forward(p, cfg, &ids, &state)?;
        // Detached, or the graph would chain across every chunk of the validation text.
        state = next.iter().map(Tensor::detach).collect();
        bits += loss(&logits, &targets)?.to_scalar::<f32>()? as f64 * (rows * t) as f64
            / std::f64::consts::LN_2;
        count += rows * t;
        pos += t;
    }
    Ok(bits / count as f64)
}

/// Forward and backward over one batch, split row-wise across `workers` threads. Returns the
/// mean loss in bits per byte, the gradients of the mean loss, and the detached final states.
/// Gradients are summed in worker order, so a given worker count is reproducible.
fn parallel_step(
    p: &Params,
    cfg: &RnnConfig,
    ids: &Tensor,
    targets: &Tensor,
    h0: &[Tensor],
    workers: usize,
) -> Result<(f64, candle_core::backprop::GradStore, Vec<Tensor>)> {
    let b = ids.dim(0)?;
    let workers = workers.clamp(1, b);
    let chunks: Vec<(usize, usize)> = (0..workers)
        .map(|w| (w * b / workers, (w + 1) * b / workers - w * b / workers))
        .collect();
    let run = |&(start, len): &(usize, usize)| -> Result<_> {
        let ids = ids.narrow(0, start, len)?;
        let targets = targets.narrow(0, start, len)?.flatten_all()?;
        let h: Vec<Tensor> = h0
            .iter()
            .map(|h| h.narrow(0, start, len))
            .collect::<candle_core::Result<_>>()?;
        let (logits, next) = forward(p, cfg, &ids, &h)?;
        // Weighted so that the summed gradients are those of the mean over the whole batch.
        let l = (loss(&logits, &targets)? * (len as f64 / b as f64))?;
        let grads = l.backward()?;
        let next: Vec<Tensor> = next.iter().map(Tensor::detach).collect();
        Ok((l.to_scalar::<f32>()? as f64, grads, next))
    };
    let results: Vec<Result<_>> = if workers == 1 {
        vec![run(&chunks[0])]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = chunks.iter().map(|c| scope.spawn(move || run(c))).collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("training worker panicked"))
                .collect()
        })
    };
    let mut total_loss = 0.0;
    let mut merged: Option<candle_core::backprop::GradStore> = None;
    let mut states: Vec<Vec<Tensor>> = Vec::with_capacity(workers);
    for r in results {
        let (l, grads, next) = r?;
        total_loss += l;
        states.push(next);
        merged = Some(match merged {
            None => grads,
            Some(mut acc) => {
                for (_, v) in &p.vars {
                    if let Some(g) = grads.get(v.as_tensor()) {
                        let sum = match acc.remove(v.as_tensor()) {
                            Some(a) => (a + g)?,
                            None => g.clone(),
                        };
                        acc.insert(v.as_tensor(), sum);
                    }
                }
                acc
            }
        });
    }
    let hidden = (0..h0.len())
        .map(|l| {
            let parts: Vec<&Tensor> = states.iter().map(|s| &s[l]).collect();
            Tensor::cat(&parts, 0)
        })
        .collect::<candle_core::Result<_>>()?;
    Ok((
        total_loss / std::f64::consts::LN_2,
        merged.expect("at least one worker"),
        hidden,
    ))
}

/// Scales gradients so that their global L2 norm is at most `max_norm`; returns the norm.
fn clip_gradients(
    grads: &mut candle_core::backprop::GradStore,
    p: &Params,
    max_norm: f64,
) -> Result<f64> {
    let mut sq = 0.0f64;
    for (_, v) in &p.vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
    }
    let norm = sq.sqrt();
    if norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for (_, v) in &p.vars {
            if let Some(g) = grads.remove(v.as_tensor()) {
                grads.insert(v.as_tensor(), (g * scale)?);
            }
        }
    }
    Ok(norm)
}

/// Learning rate at `progress` ∈ [0, 1]: linear warm-up over the first 2%, then cosine to 10%.
fn learning_rate(base: f64, progress: f64) -> f64 {
    let warm = 0.02;
    if progress < warm {
        base * (0.1 + 0.9 * progress / warm)
    } else {
        let x = ((progress - warm) / (1.0 - warm)).min(1.0);
        base * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * x).cos()))
    }
}

/// What training reports beyond an [`Observer`]'s progress and cancellation.
pub trait TrainObserver: Observer {
    /// After every training step: the state so far and the step's loss in bits per byte.
    fn trained(&mut self, _state: &TrainState, _loss_bpc: f64) {}

    /// After every evaluation on the validation text.
    fn evaluated(&mut self, _point: &CurvePoint) {}

    /// On `--resume`: whether the optimizer's moments were restored (if not, the checkpoint had
    /// none, and the learning rate re-warms over a few hundred steps).
    fn resumed(&mut self, _moments_restored: bool) {}
}

/// Trains a model into `out_dir`, checkpointing there as it goes. With `resume`, continues from
/// the weights, optimizer moments and progress saved in `out_dir` (a checkpoint without moments
/// resumes with zero moments and re-warms the rate over a few hundred steps).
pub fn train(
    corpus: &Corpus,
    opts: &TrainOptions,
    out_dir: &Path,
    resume: bool,
    device: crate::Device,
    observer: &mut dyn TrainObserver,
) -> Result<TrainState> {
    let device = &crate::models::device(device.name())?;
    let cfg = &opts.model;
    let (tensors, mut state) = if resume {
        let weights = candle_core::safetensors::load(out_dir.join(WEIGHTS_FILE), device)?;
        let st: TrainState = read_json(&out_dir.join(STATE_FILE))?;
        let saved: RnnConfig = read_json(&out_dir.join(CONFIG_FILE))?;
        if &saved != cfg {
            return Err(Error::InvalidSetting(format!(
                "the checkpoint in {} has a different model shape ({saved:?})",
                out_dir.display()
            )));
        }
        (weights, st)
    } else {
        (cfg.init_weights(opts.seed, device)?, TrainState::default())
    };
    let mut names: Vec<String> = cfg.tensor_shapes().into_iter().map(|(n, _)| n).collect();
    names.sort();
    let params = Params::from_tensors(&names, &tensors, &"the checkpoint")?;
    // The running mean of checkpoints, when this run keeps one and has started it. Resumed
    // without `--average-from`, a saved mean is left as it is (neither read nor rewritten); with
    // it, the saved mean continues, whatever start point it had.
    let mut average = if opts.average_from.is_some() && state.averaged > 0 {
        let path = out_dir.join(AVERAGE_DIR).join(WEIGHTS_FILE);
        let saved = candle_core::safetensors::load(&path, device).map_err(|e| {
            Error::Model(format!(
                "the checkpoint's mean of {} weight sets, {}, cannot be read ({e}); copy the \
                 run's {AVERAGE_DIR}/ directory along with the checkpoint, or set \
                 \"averaged\": 0 in {STATE_FILE} to start the mean again",
                state.averaged,
                path.display()
            ))
        })?;
        Some(Params::from_tensors(&names, &saved, &path.display())?)
    } else {
        None
    };
    let mut opt = AdamW::new(&params.vars, opts.weight_decay)?;
    if resume {
        let restored = opt.restore(out_dir)?;
        observer.resumed(restored);
    }
    std::fs::create_dir_all(out_dir)?;
    write_json(&out_dir.join(OPTIONS_FILE), opts)?;

    let b = opts.batch;
    let t = opts.seq_len;
    let mut rng = SplitMix64::new(opts.seed ^ state.steps.wrapping_mul(0x9e37));
    let train_len = usize::try_from(corpus.train_len())
        .map_err(|_| Error::InvalidSetting("the corpus is too large for this machine".into()))?;
    if train_len < 4 * (t + 1) {
        return Err(Error::InvalidSetting("training data is too small".into()));
    }
    // Per stream: position of the next target byte, and whether it starts fresh from BOS.
    let mut pos: Vec<usize> = (0..b)
        .map(|_| random_start(&mut rng, train_len, t))
        .collect();
    let mut fresh = vec![true; b];
    let mut hidden = cfg.zero_state(b, device)?;
    let started = Instant::now();
    let seconds_before = state.seconds;
    let mut next_eval = (state.bytes_seen / opts.eval_every + 1) * opts.eval_every;
    if state.curve.is_empty() {
        let eval_start = Instant::now();
        let bpc = evaluate(&params, opts, corpus, device)?;
        state.eval_seconds += eval_start.elapsed().as_secs_f64();
        let point = CurvePoint {
            bytes_seen: 0,
            seconds: 0.0,
            valid_bpc: bpc,
            train_bpc: None,
            average_bpc: None,
        };
        observer.evaluated(&point);
        state.curve.push(point);
    }
    let mut window = vec![0u8; t + 1];
    let mut recent = Vec::new();
    while state.bytes_seen < opts.train_bytes {
        if observer.cancelled() {
            return Err(Error::Interrupted);
        }
        // Streams that restart get BOS and a zero state; others continue where they were.
        let mut ids = Vec::with_capacity(b * t);
        let mut targets = Vec::with_capacity(b * t);
        let mut keep = Vec::with_capacity(b);
        for r in 0..b {
            if pos[r] + t > train_len {
                pos[r] = random_start(&mut rng, train_len, t);
                fresh[r] = true;
            }
            keep.push(if fresh[r] { 0f32 } else { 1f32 });
            // Bytes pos-1 .. pos+t: the inputs, then the targets one byte later.
            corpus.read_train(pos[r] as u64 - 1, &mut window)?;
            for k in 0..t {
                ids.push(if fresh[r] && k == 0 {
                    RnnConfig::BOS
                } else {
                    u32::from(window[k])
                });
                targets.push(u32::from(window[k + 1]));
            }
            pos[r] += t;
            fresh[r] = rng
                .next_u64()
                .is_multiple_of(opts.mean_stream_chunks as u64);
            if fresh[r] {
                pos[r] = random_start(&mut rng, train_len, t);
            }
        }
        let keep = Tensor::from_vec(keep, (b, 1), device)?;
        let h0: Vec<Tensor> = hidden
            .iter()
            .map(|h| h.broadcast_mul(&keep))
            .collect::<candle_core::Result<_>>()?;
        let ids = Tensor::from_vec(ids, (b, t), device)?;
        let targets = Tensor::from_vec(targets, (b, t), device)?;
        let (bpc, mut grads, next) =
            parallel_step(&params, cfg, &ids, &targets, &h0, opts.workers)?;
        hidden = next;
        clip_gradients(&mut grads, &params, opts.clip)?;
        let progress = state.bytes_seen as f64 / opts.train_bytes as f64;
        opt.step(&grads, learning_rate(opts.lr, progress))?;
        recent.push(bpc);
        state.steps += 1;
        state.bytes_seen += (b * t) as u64;
        state.seconds = seconds_before + started.elapsed().as_secs_f64();
        observer.progress(state.bytes_seen);
        observer.trained(&state, bpc);
        if state.bytes_seen >= next_eval || state.bytes_seen >= opts.train_bytes {
            next_eval += opts.eval_every;
            let eval_start = Instant::now();
            let valid_bpc = evaluate(&params, opts, corpus, device)?;
            let mut average_bpc = None;
            if opts
                .average_from
                .is_some_and(|from| state.bytes_seen >= from)
            {
                state.averaged += 1;
                match &average {
                    Some(mean) => mean.fold_into_mean(&params, state.averaged)?,
                    None => {
                        let first = Params::from_tensors(&names, &params.tensors(), &"weights")?;
                        average = Some(first);
                    }
                }
                let mean = average.as_ref().expect("just made");
                average_bpc = Some(evaluate(mean, opts, corpus, device)?);
            }
            state.eval_seconds += eval_start.elapsed().as_secs_f64();
            state.seconds = seconds_before + started.elapsed().as_secs_f64();
            let train_bpc = Some(recent.iter().sum::<f64>() / recent.len().max(1) as f64);
            recent.clear();
            let point = CurvePoint {
                bytes_seen: state.bytes_seen,
                seconds: state.seconds,
                valid_bpc,
                train_bpc,
                average_bpc,
            };
            observer.evaluated(&point);
            state.curve.push(point);
            save_checkpoint(out_dir, cfg, &params, average.as_ref(), &opt, &state)?;
        }
    }
    save_checkpoint(out_dir, cfg, &params, average.as_ref(), &opt, &state)?;
    Ok(state)
}

fn random_start(rng: &mut SplitMix64, len: usize, t: usize) -> usize {
    1 + (rng.next_u64() as usize) % (len - t - 1)
}

/// Writes weights, optimizer state, the running mean, config, progress and the curve. Each file
/// is written aside and renamed into place, the progress (`train_state.json`) last, so a crash
/// mid-write never leaves a file half written; one between two renames leaves tensors a
/// checkpoint ahead of the progress, which a resume then trains over again.
fn save_checkpoint(
    dir: &Path,
    cfg: &RnnConfig,
    p: &Params,
    average: Option<&Params>,
    opt: &AdamW,
    state: &TrainState,
) -> Result<()> {
    let tmp = dir.join(".checkpoint.tmp");
    save_dir(&tmp, cfg, &p.tensors())?;
    let has_moments = opt.has_state();
    if has_moments {
        opt.save(&tmp.join(OPTIMIZER_FILE))?;
    }
    let tmp_avg = tmp.join(AVERAGE_DIR);
    if let Some(mean) = average {
        save_dir(&tmp_avg, cfg, &mean.tensors())?;
    }
    write_json(&tmp.join(STATE_FILE), state)?;
    // Everything is written; now the renames.
    if average.is_some() {
        let avg_dir = dir.join(AVERAGE_DIR);
        std::fs::create_dir_all(&avg_dir)?;
        std::fs::rename(tmp_avg.join(WEIGHTS_FILE), avg_dir.join(WEIGHTS_FILE))?;
        std::fs::rename(tmp_avg.join(CONFIG_FILE), avg_dir.join(CONFIG_FILE))?;
    }
    std::fs::rename(tmp.join(WEIGHTS_FILE), dir.join(WEIGHTS_FILE))?;
    if has_moments {
        std::fs::rename(tmp.join(OPTIMIZER_FILE), dir.join(OPTIMIZER_FILE))?;
    }
    std::fs::rename(tmp.join(CONFIG_FILE), dir.join(CONFIG_FILE))?;
    std::fs::rename(tmp.join(STATE_FILE), dir.join(STATE_FILE))?;
    std::fs::remove_dir_all(&tmp)?;
    write_csv(&dir.join("curve.csv"), &state.curve)?;
    write_svg(&dir.join("curve.svg"), &state.curve)?;
    Ok(())
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let json = serde_json::to_string_pretty(value).expect("serialisable");
    std::fs::write(path, json + "\n")?;
    Ok(())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &PathBuf) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::InvalidSetting(format!("{} is not valid: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An observer that reports nothing.
    struct Quiet;
    impl crate::Observer for Quiet {}
    impl TrainObserver for Quiet {}

    #[test]
    fn learning_rate_warms_up_and_decays() {
        assert!(learning_rate(1.0, 0.0) < learning_rate(1.0, 0.02));
        assert!((learning_rate(1.0, 0.02) - 1.0).abs() < 1e-9);
        assert!((learning_rate(1.0, 1.0) - 0.1).abs() < 1e-9);
    }

    #[test]
    fn a_few_steps_lower_the_loss_and_checkpoint_loads_as_model() {
        let dir = tempfile::tempdir().unwrap();
        let text: Vec<u8> = b"abcabcabd ".iter().cycle().take(40_000).copied().collect();
        let corpus = Corpus::from_parts(text.clone(), text[..5000].to_vec());
        let opts = TrainOptions {
            model: RnnConfig::new(Cell::Gru, 8, 24, 1),
            batch: 8,
            seq_len: 16,
            train_bytes: 8 * 16 * 60,
            lr: 1e-2,
            eval_every: 1 << 30,
            eval_bytes: 2000,
            ..Default::default()
        };
        let state = train(
            &corpus,
            &opts,
            dir.path(),
            false,
            crate::Device::Cpu,
            &mut Quiet,
        )
        .unwrap();
        let first = state.curve.first().unwrap().valid_bpc;
        let last = state.curve.last().unwrap().valid_bpc;
        assert!(last < first * 0.6, "validation bpc {first} -> {last}");
        // The checkpoint is a model directory the codec can load.
        crate::models::Rnn::from_dir(dir.path(), &Device::Cpu).unwrap();
        // Resuming with an already reached budget keeps the progress.
        let resumed = train(
            &corpus,
            &opts,
            dir.path(),
            true,
            crate::Device::Cpu,
            &mut Quiet,
        )
        .unwrap();
        assert_eq!(resumed.steps, state.steps);
        // The data-parallel path (batch split across workers) learns the same way.
        let two = tempfile::tempdir().unwrap();
        let opts2 = TrainOptions { workers: 2, ..opts };
        let state2 = train(
            &corpus,
            &opts2,
            two.path(),
            false,
            crate::Device::Cpu,
            &mut Quiet,
        )
        .unwrap();
        let last2 = state2.curve.last().unwrap().valid_bpc;
        assert!(
            (last2 - last).abs() < 0.05 * last,
            "1 worker {last}, 2 workers {last2}"
        );
    }

    #[test]
    fn the_average_is_the_mean_of_the_checkpoints_across_a_resume() {
        let text: Vec<u8> = b"one two three, two three one; "
            .iter()
            .cycle()
            .take(20_000)
            .copied()
            .collect();
        let corpus = Corpus::from_parts(text.clone(), text[..3000].to_vec());
        let step = 4 * 16 * 5;
        let opts = TrainOptions {
            model: RnnConfig::new(Cell::Gru, 4, 8, 1),
            batch: 4,
            seq_len: 16,
            eval_every: step,
            eval_bytes: 500,
            average_from: Some(2 * step),
            ..Default::default()
        };
        let out = tempfile::tempdir().unwrap();
        let weights = |dir: &Path| -> Vec<f32> {
            let t = candle_core::safetensors::load(dir.join(WEIGHTS_FILE), &Device::Cpu).unwrap();
            let mut names: Vec<_> = t.keys().cloned().collect();
            names.sort();
            names
                .iter()
                .flat_map(|n| t[n].flatten_all().unwrap().to_vec1::<f32>().unwrap())
                .collect()
        };
        let run = |budget: u64, resume: bool| {
            let o = TrainOptions {
                train_bytes: budget,
                ..opts.clone()
            };
            let state = train(
                &corpus,
                &o,
                out.path(),
                resume,
                crate::Device::Cpu,
                &mut Quiet,
            )
            .unwrap();
            assert_eq!(state.averaged, budget / step - 1);
            let p = *state.curve.last().unwrap();
            let mean = weights(&out.path().join(AVERAGE_DIR));
            (p, weights(out.path()), mean)
        };
        // Checkpoints at 1, 2 and 3 steps of `step` bytes in one session: the mean starts at
        // the second and takes the third in. Regression: the mean made in a session shared its
        // storage with the weights and moved with them, so it was the last weights.
        let (p3, w3, mean3) = run(3 * step, false);
        assert_ne!(mean3, w3);
        assert_ne!(p3.average_bpc, Some(p3.valid_bpc), "{p3:?}");
        // One more checkpoint after a resume: the mean of three.
        let (p4, w4, mean4) = run(4 * step, true);
        assert!(p4.average_bpc.is_some_and(|a| a.is_finite()), "{p4:?}");
        for i in 0..mean4.len() {
            let want = (2.0 * mean3[i] + w4[i]) / 3.0;
            assert!(
                (mean4[i] - want).abs() < 1e-5,
                "{i}: {} vs {want}",
                mean4[i]
            );
        }
        // The mean is a model directory the codec can load, and the curve records it.
        crate::models::Rnn::from_dir(&out.path().join(AVERAGE_DIR), &Device::Cpu).unwrap();
        let csv = std::fs::read_to_string(out.path().join("curve.csv")).unwrap();
        assert!(csv.starts_with("bytes_seen,seconds,valid_bpc,train_bpc,average_bpc\n"));
    }

    #[test]
    fn a_corpus_streamed_from_files_trains_exactly_like_one_in_memory() {
        let text: Vec<u8> = b"the quick brown fox; "
            .iter()
            .cycle()
            .take(9_000)
            .copied()
            .collect();
        let valid = b"a held-out line of text, read from its own file\n".repeat(20);
        let files = tempfile::tempdir().unwrap();
        // Uneven pieces, so training windows straddle file boundaries.
        for (i, piece) in text.chunks(1234).enumerate() {
            std::fs::write(files.path().join(format!("{i:02}.txt")), piece).unwrap();
        }
        std::fs::write(files.path().join("valid"), &valid).unwrap();
        let opts = TrainOptions {
            model: RnnConfig::new(Cell::Gru, 4, 8, 1),
            batch: 4,
            seq_len: 16,
            train_bytes: 4 * 16 * 20,
            eval_every: 4 * 16 * 10,
            eval_bytes: 500,
            ..Default::default()
        };
        let run = |corpus: &Corpus| {
            let out = tempfile::tempdir().unwrap();
            let state = train(
                corpus,
                &opts,
                out.path(),
                false,
                crate::Device::Cpu,
                &mut Quiet,
            )
            .unwrap();
            let weights = std::fs::read(out.path().join(crate::models::WEIGHTS_FILE)).unwrap();
            (
                state.curve.iter().map(|p| p.valid_bpc).collect::<Vec<_>>(),
                weights,
            )
        };
        let streamed =
            Corpus::load(&[files.path().to_path_buf()], &[files.path().join("valid")]).unwrap();
        assert_eq!(streamed.train_len(), text.len() as u64);
        let in_memory = Corpus::from_parts(text, valid);
        assert!(run(&streamed) == run(&in_memory));
    }
}
