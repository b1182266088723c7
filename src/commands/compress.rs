//! `llmzip compress`.

use anyhow::{Context, Result};
use clap::Args;
use llmzip::codec::{self, Schedule};

use super::files::compressed_name;
use super::models::ModelCache;
use super::pipeline::{self, Direction, FileArgs};

/// Options of `llmzip compress`.
#[derive(Debug, Args)]
pub struct CompressArgs {
    #[command(flatten)]
    pub files: FileArgs,
    /// Model: a built-in name (gru) or a model directory (config.json + model.safetensors).
    #[arg(short, long, default_value = llmzip::models::DEFAULT_MODEL)]
    pub model: String,
    /// Bytes per independently coded block [default: 1M].
    #[arg(long, value_parser = super::parse_size, help_heading = "Schedule")]
    pub block_size: Option<u64>,
    /// Most segments coded side by side per block (lockstep batch rows) [default: 64].
    #[arg(long, help_heading = "Schedule")]
    pub segments: Option<u64>,
    /// Split a block further only while each segment keeps this many tokens [default: 8K].
    #[arg(long, value_parser = super::parse_size, help_heading = "Schedule")]
    pub min_segment: Option<u64>,
}

impl CompressArgs {
    fn schedule(&self) -> Schedule {
        let d = Schedule::default();
        Schedule {
            block_size: self.block_size.unwrap_or(d.block_size),
            max_segments: self.segments.unwrap_or(d.max_segments),
            min_segment_tokens: self.min_segment.unwrap_or(d.min_segment_tokens),
            window: d.window,
        }
    }
}

pub fn run(args: CompressArgs, models: &mut ModelCache, quiet: bool) -> Result<()> {
    let schedule = args.schedule();
    schedule.validate()?;
    let jobs = pipeline::plan(&args.files, |p| Ok(compressed_name(p)))?;
    // Load before touching any file so that a bad -m fails fast.
    models.get(&args.model)?;
    pipeline::run_all(
        &args.files,
        jobs,
        quiet,
        Direction::Compress,
        |_, len| len,
        |job, cx| {
            let model = models.get(&args.model)?;
            codec::compress(cx.reader, cx.writer, model, &schedule, cx.observer)
                .with_context(|| format!("cannot compress {}", job.input.name()))
        },
    )
}
