//! `llmzip compress`.

use anyhow::{Context, Result};
use clap::Args;
use llmzip::codec::{self, Limits, Schedule};

use super::files::compressed_name;
use super::models::ModelCache;
use super::pipeline::{self, Direction, FileArgs};
use super::ScheduleArgs;

/// Options of `llmzip compress`.
#[derive(Debug, Args)]
pub struct CompressArgs {
    #[command(flatten)]
    pub files: FileArgs,
    /// Model: a built-in name (gru-cm4, gru-cm3, gru-cm2, gru-cm, gru, smollm2, gpt2, distilgpt2),
    /// a GGUF file, or a model directory (GPT-2 in Hugging Face layout, or one written by
    /// `llmzip train`; add `-cm4` to mix it with the file's own statistics like the default, or
    /// an older version: `-cm`, `-cm2` with fixed-size tables, `-cm3` with more word contexts).
    #[arg(short, long, default_value = llmzip::models::DEFAULT_MODEL)]
    pub model: String,
    /// Weight format of GGUF models: f32 (dequantized; fastest on CPU), q8_0, or the file's own
    /// (e.g. q4_1). Recorded in the archive; decompression picks it up by itself.
    #[arg(long)]
    pub dtype: Option<String>,
    #[command(flatten)]
    pub schedule: ScheduleArgs,
}

pub fn run(args: CompressArgs, models: &mut ModelCache, limits: Limits, quiet: bool) -> Result<()> {
    let weights = args.dtype.as_deref();
    // Load before touching any file so that a bad -m or schedule fails fast.
    let info = models.get(&args.model, weights)?.info().clone();
    let schedule = Schedule::for_model(&args.schedule.options(), &info)?;
    let jobs = pipeline::plan(&args.files, |p| Ok(compressed_name(p)))?;
    pipeline::run_all(
        &args.files,
        jobs,
        quiet,
        Direction::Compress,
        |_, len| len,
        |job, cx| {
            let model = models.get(&args.model, weights)?;
            codec::compress(cx.reader, cx.writer, model, &schedule, &limits, cx.observer)
                .with_context(|| format!("cannot compress {}", job.input.name()))
        },
    )
}
