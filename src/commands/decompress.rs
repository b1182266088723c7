//! `llmzip decompress`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use anyhow::{bail, Result};
use clap::Args;
use llmzip::codec::{Decompressor, Limits};
use llmzip::format::Trailer;
use llmzip::models::loads_by_name;
use llmzip::tensors;

use super::files::{decompressed_name, Input};
use super::models::ModelCache;
use super::pipeline::{self, Direction, FileArgs};

/// Options of `llmzip decompress`.
#[derive(Debug, Args)]
pub struct DecompressArgs {
    #[command(flatten)]
    pub files: FileArgs,
    /// Model to decode with [default: the built-in model the archive names].
    #[arg(short, long)]
    pub model: Option<String>,
    /// Download the model the archive names from the Hugging Face Hub if it is not installed
    /// (never done otherwise: an archive alone does not make llmzip reach the network).
    #[arg(long)]
    pub allow_download: bool,
}

pub fn run(
    args: DecompressArgs,
    models: &mut ModelCache,
    limits: Limits,
    quiet: bool,
) -> Result<()> {
    let jobs = pipeline::plan(&args.files, decompressed_name)?;
    pipeline::run_all(
        &args.files,
        jobs,
        quiet,
        Direction::Decompress,
        |job, _| match &job.input {
            Input::File(p) => original_len_hint(p),
            Input::Stdin => None,
        },
        |_, cx| {
            // Tensor archives start with their own magic.
            let mut magic = [0u8; 4];
            let n = llmzip::format::read_up_to(cx.reader, &mut magic)?;
            let mut input = std::io::Cursor::new(magic[..n].to_vec()).chain(cx.reader);
            if magic == tensors::MAGIC {
                let s = tensors::decompress(&mut input, cx.writer, cx.observer)?;
                if args.files.stats {
                    super::report::tensor_table(&s);
                }
                return Ok(super::report::as_codec_summary(s));
            }
            let decompressor = Decompressor::new(&mut input)?;
            let header = decompressor.header();
            let spec = match &args.model {
                Some(m) => m.clone(),
                None if loads_by_name(&header.model_name, &models.registry()) => {
                    header.model_name.clone()
                }
                None => bail!(
                    "the archive was made with model '{}' (fingerprint {}), which was loaded \
                     from a path; pass that path with -m",
                    header.model_name,
                    header.fingerprint
                ),
            };
            // The weight format is part of the computation: take the archive's.
            let weights = header.backend.dtype.clone();
            // A model the user named with -m may be downloaded; one the archive names only with
            // --allow-download.
            let download = args.model.is_some() || args.allow_download;
            let model = models.get_named_by_archive(&spec, Some(&weights), download)?;
            Ok(decompressor.run(cx.writer, model, &limits, cx.observer)?)
        },
    )
}

/// The original length from the archive's trailer, for the progress bar only (never trusted
/// for anything else).
fn original_len_hint(path: &std::path::Path) -> Option<u64> {
    let mut f = File::open(path).ok()?;
    let mut magic = [0u8; 4];
    f.read_exact(&mut magic).ok()?;
    if magic == tensors::MAGIC {
        f.seek(SeekFrom::Start(0)).ok()?;
        let layout = tensors::read_layout(std::io::BufReader::new(f)).ok()?;
        return Some(layout.regions.iter().map(|r| r.len).sum());
    }
    f.seek(SeekFrom::End(-12)).ok()?;
    Trailer::read(&mut f).ok().map(|t| t.original_len)
}
