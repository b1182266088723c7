//! `llmzip bench`: compare bits per byte and speed across models, devices and classic compressors.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use llmzip::Registry;

use crate::bench::{self, BenchOptions};
use llmzip::unstable::codec::Limits;

use super::progress;

/// Options of `llmzip bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Files to measure [default: the Canterbury texts in data/test/ from scripts/fetch-data.sh].
    pub files: Vec<PathBuf>,
    /// Comma-separated models: built-in names, model directories, or level-N for level N's
    /// model and schedule ('' for none: the classic compressors alone).
    #[arg(long, value_delimiter = ',', default_value = llmzip::unstable::models::DEFAULT_MODEL)]
    pub models: Vec<String>,
    /// Comma-separated devices: cpu, cuda, metal. Devices not compiled in or not present are
    /// reported as such in the results.
    #[arg(long, value_delimiter = ',', default_value = "cpu")]
    pub devices: Vec<String>,
    /// Use only the first 16 KiB of each file, for a fast look.
    #[arg(long)]
    pub quick: bool,
    /// Weight format of GGUF models (as for compress).
    #[arg(long)]
    pub dtype: Option<String>,
    #[command(flatten)]
    pub schedule: super::ScheduleArgs,
    /// Skip the classic compressors (gzip, bzip2, xz, zstd, brotli).
    #[arg(long)]
    pub no_baselines: bool,
    /// Name of this machine, recorded in every row (e.g. the GPU's name).
    #[arg(long, default_value = "")]
    pub machine: String,
    /// Add the rows of an earlier run's results.json (e.g. from a GPU machine) to this run's
    /// tables and plots; repeatable.
    #[arg(long)]
    pub include: Vec<PathBuf>,
    /// Directory for results.csv, results.json, pareto.svg and profile.svg.
    #[arg(long, default_value = "bench-results")]
    pub out: PathBuf,
}

const DEFAULT_FILES: [&str; 4] = [
    "data/test/alice29.txt",
    "data/test/asyoulik.txt",
    "data/test/lcet10.txt",
    "data/test/plrabn12.txt",
];

pub fn run(args: BenchArgs, limits: Limits, quiet: bool) -> Result<()> {
    let files: Vec<PathBuf> = if args.files.is_empty() {
        let defaults: Vec<PathBuf> = DEFAULT_FILES.iter().map(PathBuf::from).collect();
        if let Some(missing) = defaults.iter().find(|p| !p.exists()) {
            bail!(
                "{} is missing: run scripts/fetch-data.sh for the default files, or name files",
                missing.display()
            );
        }
        defaults
    } else {
        args.files.clone()
    };
    let opts = BenchOptions {
        files,
        // `--models ''`: the classic compressors alone.
        models: args
            .models
            .iter()
            .filter(|m| !m.is_empty())
            .cloned()
            .collect(),
        devices: args.devices.clone(),
        prefix: args.quick.then_some(16 << 10),
        schedule: args.schedule.options(),
        weights: args.dtype.clone(),
        limits,
        registry: Registry::from_env(),
        baselines: !args.no_baselines,
        machine: args.machine.clone(),
    };
    let mut included = Vec::new();
    for path in &args.include {
        included.extend(bench::read_rows(path)?);
    }
    let bar = progress::bar(None, "bench", quiet);
    let mut rows = bench::run(&opts, &bar).context("benchmark failed")?;
    bar.finish_and_clear();
    let measured = rows.len();
    rows.extend(included);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    std::fs::write(args.out.join("results.csv"), bench::csv(&rows))?;
    let json = serde_json::to_string_pretty(&rows).expect("rows serialise");
    std::fs::write(args.out.join("results.json"), json + "\n")?;
    bench::write_pareto_svg(&args.out.join("pareto.svg"), &rows)?;
    bench::write_profile_svg(&args.out.join("profile.svg"), &rows)?;
    print!("{}", bench::markdown(&rows));
    if !quiet {
        eprintln!(
            "results in {}: results.csv, results.json, pareto.svg, profile.svg",
            args.out.display()
        );
    }
    if rows[..measured]
        .iter()
        .any(|r| r.status == "ok" && !r.verified)
    {
        bail!("a round trip was not exact (see the 'exact' column)");
    }
    Ok(())
}
