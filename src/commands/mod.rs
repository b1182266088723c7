//! Command-line parsing and dispatch. Each subcommand lives in its own module; shared pieces
//! (progress, output files, reports) have one home each.

mod bench;
mod compress;
mod decompress;
mod files;
mod info;
mod models;
mod pipeline;
pub(crate) mod progress;
mod report;
mod runtime;
mod train;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use llmzip::unstable::codec::{Limits, ScheduleOptions};

/// Lossless compression with neural language models.
#[derive(Debug, Parser)]
#[command(name = "llmzip", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Compute threads (default: all cores). Results never depend on it, only speed does.
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub threads: Option<u64>,
    /// Device to run the model on: cpu, cuda or metal (cuda needs the binary that
    /// scripts/build-cuda.sh builds, metal a build with `--features metal` on macOS).
    #[arg(long, global = true, default_value = "cpu", value_parser = ["cpu", "cuda", "metal"])]
    pub device: String,
    /// Working memory the model may use beyond its weights, e.g. 512M, 8G [default: 4G].
    /// Decompression refuses archives whose blocks would need more; compression uses fewer
    /// lockstep rows to stay within it, or refuses.
    #[arg(long, global = true, value_parser = parse_size)]
    pub memory: Option<u64>,
    /// Print nothing but errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compress files (FILE -> FILE.llmz; stdin -> stdout) at a level, -1 (fastest) to -9
    /// (best ratio, SmolLM2), default -6.
    #[command(visible_alias = "c", after_help = compress::after_help())]
    Compress(compress::CompressArgs),
    /// Decompress archives (FILE.llmz -> FILE; stdin -> stdout).
    #[command(visible_alias = "d")]
    Decompress(decompress::DecompressArgs),
    /// Describe archives: model, schedule, sizes (no decoding, no model needed).
    Info(info::InfoArgs),
    /// List the levels and models: what each is for, measured figures, whether installed.
    Models(models::ModelsArgs),
    /// Train a byte-level GRU or LSTM on your own text.
    Train(train::TrainArgs),
    /// Compare bits per byte and speed of models, devices and classic compressors.
    Bench(bench::BenchArgs),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    use llmzip::unstable::pool::on_a_worker;
    // Training splits each batch across `threads` workers whose kernels run single-threaded
    // (data parallelism beats candle's intra-op threads on these small matrices); everything
    // else gives candle all threads.
    let threads = runtime::resolve_threads(cli.threads.map(|n| n as usize))?;
    let limits = Limits {
        memory: cli
            .memory
            .unwrap_or(llmzip::unstable::codec::DEFAULT_MEMORY),
    };
    match cli.command {
        Command::Train(_) => runtime::configure_workers(threads),
        _ => runtime::configure_threads(threads),
    }
    progress::install_interrupt_handler();
    let device = llmzip::Device::from_name(&cli.device)?;
    match cli.command {
        Command::Compress(args) => on_a_worker(|| compress::run(args, device, limits, cli.quiet)),
        Command::Decompress(args) => {
            on_a_worker(|| decompress::run(args, device, limits, cli.quiet))
        }
        Command::Info(args) => info::run(args),
        Command::Models(args) => models::run(args),
        Command::Bench(args) => on_a_worker(|| bench::run(args, limits, cli.quiet)),
        Command::Train(args) => train::run(args, device, threads, cli.quiet),
    }
}

/// One line for the user: the error and its causes, without repeating identical messages.
pub fn describe(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

/// Writes a command's report to stdout; a closed pipe (`llmzip info x | head`) is not an error.
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

/// Parses sizes like `4096`, `64K`, `20M`, `1G` (binary multiples).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, mult) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 1u64 << 10),
        Some('m' | 'M') => (&s[..s.len() - 1], 1 << 20),
        Some('g' | 'G') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("'{s}' is not a size (e.g. 4096, 64K, 20M, 1G)"))
}

/// The computation schedule, recorded in the archive header (`llmzip info` shows it).
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// Bytes per independently coded block [default: 1M].
    #[arg(long, value_parser = parse_size, help_heading = "Schedule")]
    pub block_size: Option<u64>,
    /// Most segments coded side by side per block (lockstep batch rows) [default: 64].
    #[arg(long, help_heading = "Schedule")]
    pub segments: Option<u64>,
    /// Split a block further only while each segment keeps this many tokens
    /// [default: 4K for gru4-cm5 and the other -cm versions, 8K for plain gru, 1K for transformers].
    #[arg(long, value_parser = parse_size, help_heading = "Schedule")]
    pub min_segment: Option<u64>,
    /// Context window of transformer models in tokens; when full, the model restarts from the
    /// most recent half [default: 2048 for SmolLM2, 1024 for GPT-2].
    #[arg(long, value_parser = parse_size, help_heading = "Schedule")]
    pub window: Option<u64>,
}

impl ScheduleArgs {
    pub fn options(&self) -> ScheduleOptions {
        ScheduleOptions {
            block_size: self.block_size,
            max_segments: self.segments,
            min_segment_tokens: self.min_segment,
            window: self.window,
        }
    }
}
