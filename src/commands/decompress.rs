//! `llmzip decompress`.

use std::fs::File;

use anyhow::Result;
use clap::Args;
use llmzip::unstable::codec::Limits;
use llmzip::{Device, Options, Session};

use super::files::{decompressed_name, Input};
use super::pipeline::{self, Direction, FileArgs};

/// Options of `llmzip decompress`.
#[derive(Debug, Args)]
pub struct DecompressArgs {
    #[command(flatten)]
    pub files: FileArgs,
    /// Model to decode with [default: the model the archive names]; needed for archives of
    /// models loaded from a path.
    #[arg(short, long)]
    pub model: Option<String>,
    /// Download the model the archive names from the Hugging Face Hub if it is not installed
    /// (never done otherwise: an archive alone does not make llmzip reach the network).
    #[arg(long)]
    pub allow_download: bool,
}

pub fn run(args: DecompressArgs, device: Device, limits: Limits, quiet: bool) -> Result<()> {
    let mut options = Options::default()
        .device(device)
        .memory_limit(limits.memory)
        .allow_download(args.allow_download);
    if let Some(m) = &args.model {
        options = options.model(m.as_str());
    }
    let mut session = Session::new(options);
    let jobs = pipeline::plan(&args.files, decompressed_name)?;
    let stats = args.files.stats;
    pipeline::run_all(
        &args.files,
        jobs,
        quiet,
        Direction::Decompress,
        |job, _| match &job.input {
            Input::File(p) => llmzip::original_len_hint(&mut File::open(p).ok()?),
            Input::Stdin => None,
        },
        |_, cx| {
            let report = session.decompress(cx.reader, cx.writer, cx.observer)?;
            Ok(super::report::file_summary(report, stats))
        },
    )
}
