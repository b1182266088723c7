//! The per-file loop shared by `compress` and `decompress`: resolve inputs and outputs, open,
//! run the codec, commit the output atomically, remove the input on `--rm`, report.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::bench::baselines::{BaselineResult, DeflateBaseline};
use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::ProgressBar;
use llmzip::unstable::codec::Summary;
use llmzip::Observer;

use super::files::{is_terminal_stdout, Input, Output, Sink};
use super::{progress, report};

/// Arguments shared by `compress` and `decompress`.
#[derive(Debug, Args)]
pub struct FileArgs {
    /// Input files; `-` or none reads stdin and writes stdout.
    pub files: Vec<PathBuf>,
    /// Write to this path (only with a single input).
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Write to standard output; keep the input.
    #[arg(short = 'c', long)]
    pub stdout: bool,
    /// Overwrite existing outputs (and allow binary output to a terminal).
    #[arg(short, long)]
    pub force: bool,
    /// Remove each input after its output has been written successfully.
    #[arg(long)]
    pub rm: bool,
    /// Print the per-stage time profile, sizes, bits per byte and a zip -9 baseline.
    #[arg(long)]
    pub stats: bool,
}

/// One input and where its output goes.
pub struct Job {
    pub input: Input,
    pub output: Output,
}

/// Resolves inputs and outputs; `rename` maps an input path to its default output path.
pub fn plan(args: &FileArgs, rename: fn(&Path) -> Result<PathBuf>) -> Result<Vec<Job>> {
    let inputs: Vec<Input> = if args.files.is_empty() {
        vec![Input::Stdin]
    } else {
        args.files.iter().map(|p| Input::from_arg(p)).collect()
    };
    if args.output.is_some() && inputs.len() > 1 {
        bail!("-o/--output takes a single input file");
    }
    if args.output.is_some() && args.stdout {
        bail!("-o and -c cannot be used together");
    }
    if args.rm && args.stdout {
        bail!("--rm cannot be combined with -c: the input is kept when writing to stdout");
    }
    inputs
        .into_iter()
        .map(|input| {
            let output = match (&args.output, args.stdout, &input) {
                (Some(p), _, _) if p.as_os_str() == "-" => Output::Stdout,
                (Some(p), _, _) => Output::File(p.clone()),
                (None, true, _) | (None, _, Input::Stdin) => Output::Stdout,
                (None, false, Input::File(p)) => Output::File(rename(p)?),
            };
            Ok(Job { input, output })
        })
        .collect()
}

/// Feeds the codec's progress to a bar, Ctrl-C to cancellation, and blocks to the baseline.
pub struct CliObserver {
    pub bar: ProgressBar,
    pub baseline: Option<DeflateBaseline>,
}

impl Observer for CliObserver {
    fn progress(&mut self, bytes: u64) {
        self.bar.set_position(bytes);
    }
    fn cancelled(&self) -> bool {
        progress::interrupted()
    }
    fn original_block(&mut self, data: &[u8]) {
        if let Some(b) = &mut self.baseline {
            b.update(data);
        }
    }
}

/// Which way a command converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Compress,
    Decompress,
}

/// The open streams of one job, handed to the codec.
pub struct Streams<'a> {
    pub reader: &'a mut dyn Read,
    /// The input's length, when it is a file.
    pub len: Option<u64>,
    pub writer: &'a mut dyn Write,
    pub observer: &'a mut CliObserver,
}

/// Runs `op` on every job. Errors are reported per file and the loop goes on (as gzip does);
/// the result fails if any file failed. Compressed data is never written to, nor read from, a
/// terminal. `progress_total` gives the progress bar's length from the job and its input size.
pub fn run_all(
    args: &FileArgs,
    jobs: Vec<Job>,
    quiet: bool,
    direction: Direction,
    progress_total: impl Fn(&Job, Option<u64>) -> Option<u64>,
    mut op: impl FnMut(&Job, Streams<'_>) -> Result<Summary>,
) -> Result<()> {
    let decoding = direction == Direction::Decompress;
    let count = jobs.len();
    let mut failures = 0;
    let mut last_error = None;
    for job in &jobs {
        let result = (|| -> Result<()> {
            if !decoding && !args.force && is_terminal_stdout(&job.output) {
                bail!("refusing to write compressed data to a terminal; use -c with a redirect, -o, or -f");
            }
            if decoding && matches!(job.input, Input::Stdin) && std::io::stdin().is_terminal() {
                bail!("refusing to read compressed data from a terminal; give a file or a pipe");
            }
            if let (Input::File(i), Output::File(o)) = (&job.input, &job.output) {
                if same_file(i, o) {
                    bail!("input and output are the same file");
                }
            }
            let (mut reader, len) = job.input.open()?;
            let mut sink = Sink::create(&job.output, args.force)?;
            if args.rm && matches!(sink, Sink::Special(_)) {
                bail!(
                    "--rm with {} as output would lose the input",
                    job.output.name()
                );
            }
            let bar = progress::bar(progress_total(job, len), &job.input.name(), quiet);
            let mut observer = CliObserver {
                bar,
                baseline: args.stats.then(DeflateBaseline::new),
            };
            let start = Instant::now();
            let summary = op(
                job,
                Streams {
                    reader: &mut reader,
                    len,
                    writer: sink.writer(),
                    observer: &mut observer,
                },
            )?;
            let source = match &job.input {
                Input::File(p) => Some(p.as_path()),
                Input::Stdin => None,
            };
            sink.commit(source)
                .with_context(|| format!("cannot finish {}", job.output.name()))?;
            let elapsed = start.elapsed();
            observer.bar.finish_and_clear();
            if args.rm {
                if let Input::File(p) = &job.input {
                    std::fs::remove_file(p)
                        .with_context(|| format!("cannot remove {}", p.display()))?;
                }
            }
            report_file(
                args,
                job,
                quiet,
                decoding,
                &summary,
                elapsed,
                observer.baseline.map(DeflateBaseline::finish),
            );
            Ok(())
        })();
        if let Err(e) = result {
            failures += 1;
            if progress::interrupted() {
                return Err(e);
            }
            if count > 1 {
                eprintln!(
                    "llmzip: error: {}: {}",
                    job.input.name(),
                    super::describe(&e)
                );
            }
            last_error = Some(e.context(job.input.name()));
        }
    }
    match (failures, last_error) {
        (0, _) => Ok(()),
        (1, Some(e)) if count == 1 => Err(e),
        (n, _) => bail!("{n} of {count} files failed"),
    }
}

fn report_file(
    args: &FileArgs,
    job: &Job,
    quiet: bool,
    decoding: bool,
    summary: &Summary,
    elapsed: Duration,
    baseline: Option<BaselineResult>,
) {
    if !quiet {
        eprintln!(
            "{}",
            report::summary_line(
                decoding,
                &job.input.name(),
                &job.output.name(),
                summary,
                elapsed
            )
        );
    }
    if args.stats {
        report::stats(decoding, summary, elapsed, baseline);
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
