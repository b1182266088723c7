//! `llmzip compress`.

use anyhow::{Context, Result};
use clap::Args;
use llmzip::unstable::codec::Limits;
use llmzip::unstable::models::Portability;
use llmzip::{Device, Level, Options, Session};

use super::files::compressed_name;
use super::pipeline::{self, Direction, FileArgs};
use super::ScheduleArgs;

/// Options of `llmzip compress`.
#[derive(Debug, Args)]
pub struct CompressArgs {
    #[command(flatten)]
    pub files: FileArgs,
    #[command(flatten)]
    pub level: LevelArgs,
    /// Model, for experts (instead of a level): a name from `llmzip models` (e.g. gru4-cm5,
    /// smollm2-cm2, fast1), a model installed in a directory of LLMZIP_MODELS, a GGUF file, a
    /// model directory (GPT-2 or llama in Hugging Face layout, or one written by `llmzip
    /// train`; add -cm5 to mix it with the file's own statistics), a Hugging Face id, or
    /// `tensors` for the weight-file codec. Without -m, safetensors and GGUF files are
    /// recognised by their content and get the weight-file codec.
    #[arg(short, long)]
    pub model: Option<String>,
    /// Weight format of llama and GPT-2 models: int8-kv8 (the CPU default for llamas: int8
    /// weights and an 8-bit KV cache), int8 (an f32 KV cache), f32 (on the CPU: llmzip's own
    /// f32 network, f32-portable; on GPUs candle's), or, machine-bound on the CPU (candle's
    /// kernels), q8_0 or a GGUF file's own (e.g. q4_1). Recorded in the archive; decompression
    /// picks it up by itself.
    #[arg(long)]
    pub dtype: Option<String>,
    /// Cut the input into members of this many original bytes (e.g. 64M), each a whole archive
    /// that decodes on its own, followed by a seek table; the archive decodes to the whole input
    /// as usual, and `decompress --range` decodes only the members a range touches.
    #[arg(long, value_parser = super::parse_size)]
    pub members: Option<u64>,
    /// Code a fine-tuned weight file (safetensors, GGUF) against the file it was fine-tuned
    /// from: each tensor with a partner of the same name, dtype and shape in BASE is stored as
    /// its XOR with it. Decompressing needs the same BASE (`decompress --base BASE`).
    #[arg(long, value_name = "BASE")]
    pub base: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub schedule: ScheduleArgs,
}

/// `-1` … `-9`, `--fast`, `--best`, `--level N`: one of them, and not with `-m`.
#[derive(Debug, Args)]
#[group(id = "levels", multiple = false, conflicts_with = "model")]
pub struct LevelArgs {
    /// Level 1, the fastest: context mixing alone, no neural network (listed below).
    #[arg(short = '1', long = "fast", help_heading = "Levels")]
    fast: bool,
    #[arg(short = '2', hide = true)]
    l2: bool,
    #[arg(short = '3', hide = true)]
    l3: bool,
    #[arg(short = '4', hide = true)]
    l4: bool,
    #[arg(short = '5', hide = true)]
    l5: bool,
    #[arg(short = '6', hide = true)]
    l6: bool,
    #[arg(short = '7', hide = true)]
    l7: bool,
    #[arg(short = '8', hide = true)]
    l8: bool,
    /// Level 9, the best ratio: SmolLM2 with token mixing (needs its weights).
    #[arg(short = '9', long = "best", help_heading = "Levels")]
    best: bool,
    /// A level by number, 1 (fastest) to 9 (best ratio); -2 … -8 work too [default: 6].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=9), help_heading = "Levels")]
    level: Option<u32>,
}

impl LevelArgs {
    /// The level asked for, if any.
    pub fn get(&self) -> Option<Level> {
        let flags = [
            self.fast, self.l2, self.l3, self.l4, self.l5, self.l6, self.l7, self.l8, self.best,
        ];
        let n = flags
            .iter()
            .position(|&f| f)
            .map(|i| i as u32 + 1)
            .or(self.level)?;
        Some(Level::new(n).expect("flags and the parser give 1 to 9"))
    }
}

/// The text after `llmzip compress --help`: the levels, from the catalogue.
pub fn after_help() -> String {
    format!(
        "Levels (each a model and a schedule; `llmzip models` lists the models):\n{}",
        llmzip::catalogue::levels_help()
    )
}

pub fn run(args: CompressArgs, device: Device, limits: Limits, quiet: bool) -> Result<()> {
    let mut options = Options::default()
        .device(device)
        .memory_limit(limits.memory)
        .schedule(args.schedule.options());
    options = match (&args.model, args.level.get()) {
        (Some(m), _) => options.model(m.as_str()),
        (None, level) => options.level(level.unwrap_or_default()),
    };
    if let Some(d) = &args.dtype {
        options = options.weights(d);
    }
    if let Some(m) = args.members {
        if m == 0 {
            anyhow::bail!("--members must be at least 1 byte");
        }
        options = options.members(m);
    }
    if let Some(base) = &args.base {
        if args.model.is_some()
            || args.level.get().is_some()
            || args.dtype.is_some()
            || args.members.is_some()
        {
            anyhow::bail!(
                "--base codes weight files with the tensor codec: leave out -m, levels, --dtype \
                 and --members"
            );
        }
        options = options.base(base);
    }
    let mut session = Session::new(options);
    // Load before touching any file so that a bad -m or schedule fails fast.
    let portability = session.prepare()?;
    if portability == Some(Portability::MachineBound) && !quiet {
        eprintln!(
            "llmzip: warning: these archives are machine-bound: candle's CPU kernels compute \
             them, and another CPU may not decode them; --dtype int8 or f32 makes portable ones"
        );
    }
    let jobs = pipeline::plan(&args.files, |p| Ok(compressed_name(p)))?;
    let stats = args.files.stats;
    pipeline::run_all(
        &args.files,
        jobs,
        quiet,
        Direction::Compress,
        |_, len| len,
        |job, cx| {
            let report = session
                .compress(cx.reader, cx.len, cx.writer, cx.observer)
                .with_context(|| format!("cannot compress {}", job.input.name()))?;
            Ok(super::report::file_summary(report, stats))
        },
    )
}
