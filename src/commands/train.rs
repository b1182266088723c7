//! `llmzip train`: fit a byte-level GRU or LSTM on your own text.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::ProgressBar;
use llmzip::train::{self, Corpus, CurvePoint, TrainOptions, TrainState};
use llmzip::unstable::models::{Cell, RnnConfig};

use super::progress;

/// Options of `llmzip train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training text: files or directories (walked recursively).
    #[arg(long, required = true, num_args = 1..)]
    pub data: Vec<PathBuf>,
    /// Validation files; by default every tenth data file (at least one) is held out.
    #[arg(long, num_args = 1..)]
    pub valid: Vec<PathBuf>,
    /// Output model directory (config.json + model.safetensors + curve.csv/svg + checkpoints).
    #[arg(short, long)]
    pub out: PathBuf,
    /// Continue from the checkpoint in --out.
    #[arg(long)]
    pub resume: bool,
    /// Recurrent cell: gru (the default model's) or lstm (the Python prototype's).
    #[arg(long, default_value = "gru", value_parser = ["gru", "lstm"])]
    pub arch: String,
    #[arg(long, default_value_t = 2)]
    pub layers: usize,
    #[arg(long, default_value_t = 256)]
    pub hidden: usize,
    #[arg(long, default_value_t = 32)]
    pub embed: usize,
    /// Streams per batch (split across --threads workers).
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Truncated-BPTT length in bytes.
    #[arg(long, default_value_t = 64)]
    pub seq_len: usize,
    /// Training budget in bytes (suffixes K, M, G allowed).
    #[arg(long, default_value = "20M", value_parser = super::parse_size)]
    pub bytes: u64,
    /// Peak learning rate (AdamW; warm-up then cosine decay).
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,
    /// Gradient-norm clip.
    #[arg(long, default_value_t = 1.0)]
    pub clip: f64,
    /// Evaluate validation bits per byte every this many training bytes.
    #[arg(long, default_value = "2M", value_parser = super::parse_size)]
    pub eval_every: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// From this many training bytes on, also keep the mean of the weights at every evaluation
    /// (stochastic weight averaging): evaluated alongside, written as a model to OUT/average.
    #[arg(long, value_parser = super::parse_size)]
    pub average_from: Option<u64>,
}

struct Observer {
    bar: ProgressBar,
    quiet: bool,
}

impl llmzip::Observer for Observer {
    fn cancelled(&self) -> bool {
        progress::interrupted()
    }
}

impl llmzip::train::TrainObserver for Observer {
    fn resumed(&mut self, moments_restored: bool) {
        if !self.quiet && !moments_restored {
            self.bar.suspend(|| {
                eprintln!(
                    "the checkpoint has no optimizer moments (optimizer.safetensors): resuming \
                     with zero moments, the learning rate re-warmed over the first steps"
                )
            });
        }
    }
    fn trained(&mut self, state: &TrainState, loss_bpc: f64) {
        self.bar.set_position(state.bytes_seen);
        self.bar.set_message(format!("loss {loss_bpc:.3} bpc"));
    }
    fn evaluated(&mut self, p: &CurvePoint) {
        if !self.quiet {
            self.bar.suspend(|| {
                eprintln!(
                    "{:>9.2} MB  {:>7.0} s  validation {:.4} bpc  training {}{}",
                    p.bytes_seen as f64 / 1e6,
                    p.seconds,
                    p.valid_bpc,
                    p.train_bpc
                        .map_or("-".to_string(), |t| format!("{t:.4} bpc")),
                    p.average_bpc
                        .map_or(String::new(), |a| format!("  average {a:.4} bpc"))
                )
            });
        }
    }
}

/// `workers` is the `--threads` count: each batch is split across that many threads.
pub fn run(args: TrainArgs, device: llmzip::Device, workers: usize, quiet: bool) -> Result<()> {
    let corpus = Corpus::load(&args.data, &args.valid).context("cannot load the corpus")?;
    if !quiet {
        eprintln!(
            "training on {} bytes from {} files, validating on {} bytes from {} files",
            corpus.train_len(),
            corpus.train_files.len(),
            corpus.valid_len(),
            corpus.valid_files.len()
        );
    }
    let opts = TrainOptions {
        model: RnnConfig::new(
            Cell::from_arch(&args.arch).expect("clap allows only known cells"),
            args.embed,
            args.hidden,
            args.layers,
        ),
        batch: args.batch,
        seq_len: args.seq_len,
        train_bytes: args.bytes,
        lr: args.lr,
        clip: args.clip,
        eval_every: args.eval_every,
        seed: args.seed,
        workers,
        average_from: args.average_from,
        ..Default::default()
    };
    let bar = progress::bar(Some(args.bytes), "training", quiet);
    let mut observer = Observer { bar, quiet };
    let state = train::train(
        &corpus,
        &opts,
        &args.out,
        args.resume,
        device,
        &mut observer,
    )
    .with_context(|| format!("training into {} failed", args.out.display()))?;
    observer.bar.finish_and_clear();
    if !quiet {
        let last = state.curve.last();
        eprintln!(
            "trained {} bytes in {:.0} s ({:.0} s of it validating); {:.0} B/s of training; \
             validation {:.4} bpc; model in {}",
            state.bytes_seen,
            state.seconds,
            state.eval_seconds,
            state.bytes_per_second(),
            last.map_or(f64::NAN, |p| p.valid_bpc),
            args.out.display()
        );
        if let Some(a) = last.and_then(|p| p.average_bpc) {
            eprintln!(
                "the mean of the last {} checkpoints: validation {a:.4} bpc; model in {}",
                state.averaged,
                args.out.join(train::AVERAGE_DIR).display()
            );
        }
    }
    Ok(())
}
