//! `llmzip models`: the levels and the model catalogue (`llmzip::catalogue`), with whether each
//! model's weights are here and the figures of the benchmark run that docs/benchmarks.md
//! records (compiled in from docs/bench/results.json, so that every figure shown is a measured
//! one with the command that reproduces it).

use anyhow::Result;
use clap::Args;
use llmzip::catalogue::{self, Entry, Level, Source};
use llmzip::Registry;
use std::fmt::Write as _;

/// Options of `llmzip models`.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Also list the older models, kept so that their archives keep decoding.
    #[arg(long)]
    pub all: bool,
}

/// The benchmark run the figures come from.
const RESULTS: &str = include_str!("../../docs/bench/results.json");
const BENCHMARKS: &str = include_str!("../../docs/benchmarks.md");
/// The file the figures are for.
const FIGURES_FILE: &str = "alice29.txt";

/// Bits per byte and compression speed (KiB/s) of `model` on [`FIGURES_FILE`] on the CPU, and
/// the machine the row was measured on when it came from another run (empty: this page's).
fn figures(model: &str) -> Option<(f64, f64, String)> {
    let rows: Vec<serde_json::Value> = serde_json::from_str(RESULTS).ok()?;
    let row = rows.iter().find(|r| {
        r["file"] == FIGURES_FILE
            && r["method"] == model
            && r["device"] == "cpu"
            && r["kind"] == "model"
    })?;
    let bpb = row["bits_per_byte"].as_f64()?;
    let bytes = row["original_bytes"].as_f64()?;
    let seconds = row["compress_seconds"].as_f64()?;
    let machine = row["machine"].as_str().unwrap_or_default().to_string();
    Some((bpb, bytes / seconds / 1024.0, machine))
}

/// The machine line of docs/benchmarks.md.
fn machine() -> &'static str {
    BENCHMARKS
        .lines()
        .find_map(|l| l.strip_prefix("Machine: "))
        .unwrap_or("unknown")
        .trim_end_matches(';')
}

fn weights(entry: &Entry, registry: &Registry) -> String {
    match (entry.source, catalogue::is_installed(entry, registry)) {
        (Source::BuiltIn, _) => "built in".into(),
        (Source::None, _) => "none needed".into(),
        (_, true) => "installed".into(),
        (Source::SmolLm2, false) => "missing: scripts/fetch-models.sh".into(),
        (_, false) => "missing: Hugging Face cache or Hub".into(),
    }
}

pub fn run(args: ModelsArgs) -> Result<()> {
    let mut out = String::new();
    let registry = Registry::from_env().without_downloads();
    writeln!(out, "Levels (llmzip compress -N):").expect("writing to a String");
    out.push_str(&catalogue::levels_help());
    out.push('\n');
    writeln!(
        out,
        "{:<12} {:<8} {:<34} {:>6} {:>7}  what for",
        "model", "alias", "weights", "bpb", "KiB/s"
    )
    .expect("writing to a String");
    let mut elsewhere = Vec::new();
    for entry in catalogue::CATALOGUE
        .iter()
        .filter(|e| e.current || args.all)
    {
        let (bpb, speed) = match figures(entry.name) {
            Some((b, s, machine)) if machine.is_empty() => (format!("{b:.3}"), format!("{s:.1}")),
            Some((b, s, machine)) => {
                elsewhere.push(format!("{} ({machine})", entry.name));
                (format!("{b:.3}"), format!("{s:.1}*"))
            }
            None => ("-".into(), "-".into()),
        };
        writeln!(
            out,
            "{:<12} {:<8} {:<34} {:>6} {:>7}  {}",
            entry.name,
            entry.aliases.join(","),
            weights(entry, &registry),
            bpb,
            speed,
            entry.purpose
        )
        .expect("writing to a String");
    }
    if !args.all {
        let older: Vec<&str> = catalogue::CATALOGUE
            .iter()
            .filter(|e| !e.current)
            .map(|e| e.name)
            .collect();
        writeln!(
            out,
            "\nOlder models, kept so that their archives decode (--all describes them): {}",
            older.join(", ")
        )
        .expect("writing to a String");
    }
    let installed = installed(&registry);
    if !installed.is_empty() {
        writeln!(
            out,
            "\nModels of your own in LLMZIP_MODELS directories: {}",
            installed.join(", ")
        )
        .expect("writing to a String");
    }
    writeln!(
        out,
        "\nbpb and compression speed: {FIGURES_FILE}, from docs/benchmarks.md \
         ({}); `-` where that run did not include the model.",
        machine()
    )
    .expect("writing to a String");
    if !elsewhere.is_empty() {
        writeln!(
            out,
            "* measured on another machine: {}",
            elsewhere.join(", ")
        )
        .expect("writing to a String");
    }
    writeln!(
        out,
        "Levels 1-8 need nothing but this binary; level {} {}.",
        Level::BEST,
        match Level::BEST.check_installed(&registry) {
            Ok(()) => "is installed".to_string(),
            Err(e) => format!("is not: {e}"),
        }
    )
    .expect("writing to a String");
    super::print_stdout(&out)
}

/// Model directories and GGUF files in the registry's directories that are not catalogue
/// entries.
fn installed(registry: &Registry) -> Vec<String> {
    let mut names = Vec::new();
    for dir in registry.dirs() {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            let model = if path.join(llmzip::unstable::models::CONFIG_FILE).is_file() {
                Some(name)
            } else {
                name.strip_suffix(".gguf").map(str::to_string)
            };
            if let Some(m) = model {
                let smollm2 = name_is_smollm2(&m);
                if !smollm2 && catalogue::entry(&m).is_none() && !names.contains(&m) {
                    names.push(m);
                }
            }
        }
    }
    names.sort();
    names
}

/// The SmolLM2 file that `smollm2` loads (not a model of one's own).
fn name_is_smollm2(stem: &str) -> bool {
    llmzip::catalogue::SMOLLM2_FILE.strip_suffix(".gguf") == Some(stem)
}
