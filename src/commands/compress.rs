//! `llmzip compress`.

use std::io::Read;

use anyhow::{bail, Context, Result};
use clap::Args;
use llmzip::codec::{self, Limits, Schedule, Summary};
use llmzip::tensors;

use super::files::compressed_name;
use super::models::ModelCache;
use super::pipeline::{self, Direction, FileArgs, Streams};
use super::ScheduleArgs;

const TENSORS: &str = tensors::MODEL_NAME;

/// Options of `llmzip compress`.
#[derive(Debug, Args)]
pub struct CompressArgs {
    #[command(flatten)]
    pub files: FileArgs,
    /// Model: a built-in name (gru3-cm5, gru2-cm5, gru-cm4, gru-cm3, gru-cm2, gru-cm, gru3, gru2,
    /// gru, smollm2, smollm2-cm, gpt2, distilgpt2), a GGUF file, or a model directory (GPT-2 in Hugging Face layout, or
    /// one written by `llmzip train`; add `-cm5` to mix it with the file's own statistics like
    /// the default, or an older version: `-cm`, `-cm2` with fixed-size tables, `-cm3` with more
    /// word contexts, `-cm4` with tuned mixers); `tensors` for the weight-file codec. Without
    /// -m, safetensors and GGUF files are recognised by their content and get the weight-file
    /// codec, anything else gru3-cm5. Over a token model (smollm2), `-cm` adds an adaptive
    /// bias head instead.
    #[arg(short, long)]
    pub model: Option<String>,
    /// Weight format of llama and GPT-2 models: int8 (the CPU default for llamas), f32 (on the
    /// CPU: llmzip's own f32 network, f32-portable; on GPUs candle's), or, machine-bound on the
    /// CPU (candle's kernels), q8_0 or a GGUF file's own (e.g. q4_1). Recorded in the archive;
    /// decompression picks it up by itself.
    #[arg(long)]
    pub dtype: Option<String>,
    #[command(flatten)]
    pub schedule: ScheduleArgs,
}

pub fn run(args: CompressArgs, models: &mut ModelCache, limits: Limits, quiet: bool) -> Result<()> {
    let weights = args.dtype.as_deref();
    let forced_tensors = args.model.as_deref() == Some(TENSORS);
    let spec = match args.model.as_deref() {
        None | Some(TENSORS) => llmzip::models::DEFAULT_MODEL,
        Some(m) => m,
    };
    // Load before touching any file so that a bad -m or schedule fails fast.
    let model = models.get(spec, weights)?;
    let info = model.info().clone();
    let portability = llmzip::models::portability(&info.backend, model.tokenizer().id());
    if portability == llmzip::models::Portability::MachineBound && !quiet {
        eprintln!(
            "llmzip: warning: {} archives are machine-bound: candle's CPU kernels compute them, \
             and another CPU may not decode them; --dtype int8 or f32 makes portable ones",
            info.backend.dtype
        );
    }
    let schedule = Schedule::for_model(&args.schedule.options(), &info)?;
    let jobs = pipeline::plan(&args.files, |p| Ok(compressed_name(p)))?;
    let stats = args.files.stats;
    pipeline::run_all(
        &args.files,
        jobs,
        quiet,
        Direction::Compress,
        |_, len| len,
        |job, cx| {
            let name = job.input.name();
            let context = || format!("cannot compress {name}");
            // Weight files: recognised by content when no model was asked for.
            let (head, layout) = match (cx.len, args.model.is_none() || forced_tensors) {
                (Some(total), true) => {
                    tensors::recognise(cx.reader, total).with_context(context)?
                }
                (None, true) if forced_tensors => {
                    bail!("-m tensors needs a file, not standard input (it reads the file's size)")
                }
                _ => (Vec::new(), None),
            };
            let layout = match layout {
                Some(l) => Some(l),
                None if forced_tensors => Some(tensors::Layout::bytes(cx.len.unwrap_or(0))),
                None => None,
            };
            if let Some(layout) = layout {
                return weights_file(&head, &layout, cx, stats).with_context(context);
            }
            let model = models.get(spec, weights)?;
            let mut input = std::io::Cursor::new(head).chain(cx.reader);
            codec::compress(
                &mut input,
                cx.writer,
                model,
                &schedule,
                &limits,
                cx.observer,
            )
            .with_context(context)
        },
    )
}

fn weights_file(
    head: &[u8],
    layout: &tensors::Layout,
    cx: Streams<'_>,
    stats: bool,
) -> Result<Summary> {
    let s = tensors::compress(head, layout, cx.reader, cx.writer, cx.observer)?;
    if stats {
        super::report::tensor_table(&s);
    }
    Ok(super::report::as_codec_summary(s))
}
