//! `llmzip decompress`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use anyhow::{bail, Result};
use clap::Args;
use llmzip::unstable::codec::{Limits, Summary};
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
    /// Decode only original bytes START .. START+LEN (`START:LEN`, sizes like 64K; `START:` to
    /// the end), decoding only the members they lie in; written to stdout unless -o is given.
    #[arg(long, value_name = "START:LEN", value_parser = parse_range)]
    pub range: Option<(u64, Option<u64>)>,
    /// The base file a fine-tune was compressed against (`compress --base`); checked by its
    /// SHA-256.
    #[arg(long, value_name = "BASE")]
    pub base: Option<std::path::PathBuf>,
}

/// `START:LEN` or `START:`.
fn parse_range(s: &str) -> Result<(u64, Option<u64>), String> {
    let (start, len) = s
        .split_once(':')
        .ok_or_else(|| format!("'{s}' is not a range: give START:LEN (e.g. 1M:4096) or START:"))?;
    let start = super::parse_size(start)?;
    let len = match len.trim() {
        "" => None,
        l => Some(super::parse_size(l)?),
    };
    Ok((start, len))
}

pub fn run(mut args: DecompressArgs, device: Device, limits: Limits, quiet: bool) -> Result<()> {
    if args.range.is_some() {
        if args.files.rm {
            bail!("--rm cannot be combined with --range: the output is only part of the input");
        }
        if args.files.output.is_none() {
            // Part of a file is never written under the whole file's name.
            args.files.stdout = true;
        }
    }
    let range = args.range;
    let mut options = Options::default()
        .device(device)
        .memory_limit(limits.memory)
        .allow_download(args.allow_download);
    if let Some(m) = &args.model {
        options = options.model(m.as_str());
    }
    if let Some(base) = &args.base {
        options = options.base(base);
    }
    let mut session = Session::new(options);
    let jobs = pipeline::plan(&args.files, decompressed_name)?;
    let stats = args.files.stats;
    pipeline::run_all(
        &args.files,
        jobs,
        quiet,
        Direction::Decompress,
        |job, _| match (&job.input, range) {
            (_, Some((_, Some(len)))) => Some(len),
            (Input::File(p), _) => llmzip::original_len_hint(&mut File::open(p).ok()?),
            (Input::Stdin, _) => None,
        },
        |job, cx| {
            if let Some((start, len)) = range {
                let Input::File(path) = &job.input else {
                    bail!("--range needs an archive file: it seeks to the members it decodes");
                };
                return decode_range(path, start, len, session.options(), cx);
            }
            let report = session.decompress(cx.reader, cx.writer, cx.observer)?;
            Ok(super::report::file_summary(report, stats))
        },
    )
}

/// `--range`: the members holding the range, decoded through a [`llmzip::SeekableDecoder`].
fn decode_range(
    path: &std::path::Path,
    start: u64,
    len: Option<u64>,
    options: &Options,
    cx: pipeline::Streams<'_>,
) -> Result<Summary> {
    let file = std::io::BufReader::new(File::open(path)?);
    let mut decoder = llmzip::SeekableDecoder::with_options(file, options)?;
    let total = decoder.len();
    if start > total {
        bail!("--range starts at byte {start}, after the end of the original ({total} bytes)");
    }
    let len = len.unwrap_or(total - start).min(total - start);
    let end = start + len;
    let members = decoder
        .members()
        .iter()
        .filter(|m| m.original_offset < end && m.original_offset + m.original_len > start)
        .map(|m| m.archive_len)
        .sum();
    decoder.seek(SeekFrom::Start(start))?;
    let mut part = decoder.take(len);
    let mut buf = vec![0u8; 1 << 16];
    let mut done = 0u64;
    loop {
        let n = part.read(&mut buf)?;
        if n == 0 {
            break;
        }
        cx.writer.write_all(&buf[..n])?;
        done += n as u64;
        llmzip::Observer::progress(cx.observer, done);
        if llmzip::Observer::cancelled(cx.observer) {
            return Err(llmzip::Error::Interrupted.into());
        }
    }
    if done != len {
        bail!(
            "the archive ended {} bytes before the range did",
            len - done
        );
    }
    Ok(Summary {
        original_len: done,
        archive_len: members,
        ..Summary::default()
    })
}
