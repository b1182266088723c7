//! `llmzip bench`: every file × model × device through compress, decompress and a bit-exact
//! check, next to classic compressors on the same bytes in the same run.

pub mod baselines;
mod plots;

use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use indicatif::ProgressBar;
use llmzip::unstable::codec::{self, Decompressor, Schedule, ScheduleOptions};
use llmzip::unstable::models;
use llmzip::unstable::stats::Stage;
use llmzip::{tensors, Error, Observer, Registry, Result};

use crate::commands::progress;

pub use plots::{write_pareto_svg, write_profile_svg};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Files to measure.
    pub files: Vec<PathBuf>,
    /// Model specs as for `-m` (built-in names or directories), or `level-N` for level N's model
    /// and schedule.
    pub models: Vec<String>,
    /// Device names (`cpu`, `cuda`, `metal`).
    pub devices: Vec<String>,
    /// Only the first this many bytes of each file (`--quick`).
    pub prefix: Option<usize>,
    /// Schedule settings; unset ones take each model's defaults.
    pub schedule: ScheduleOptions,
    /// Weight format for models that offer several (GGUF).
    pub weights: Option<String>,
    /// Working-memory limits for compression and decompression.
    pub limits: codec::Limits,
    /// Where downloaded models are looked up.
    pub registry: Registry,
    /// Measure the classic compressors too.
    pub baselines: bool,
    /// Name of the machine, recorded in every row (empty: this one, unnamed).
    pub machine: String,
}

/// One measured combination (or one that could not run, with the reason in `status`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// File name (without its directory).
    pub file: String,
    /// Size of the file (or of the prefix measured).
    pub original_bytes: u64,
    /// `model` or `baseline`.
    pub kind: String,
    /// Model spec or compressor name.
    pub method: String,
    /// Device name (`cpu`, `cuda`, `metal`; `cpu` for baselines).
    pub device: String,
    /// The machine it was measured on, when named (`--machine`; rows of other machines are
    /// added with `--include`).
    #[serde(default)]
    pub machine: String,
    /// `ok`, or why this combination has no figures.
    pub status: String,
    /// Size of the compressed result.
    pub archive_bytes: u64,
    /// `8 × archive_bytes / original_bytes`.
    #[serde(deserialize_with = "nan_if_null")]
    pub bits_per_byte: f64,
    /// Seconds to compress.
    #[serde(deserialize_with = "nan_if_null")]
    pub compress_seconds: f64,
    /// Seconds to decompress.
    #[serde(deserialize_with = "nan_if_null")]
    pub decompress_seconds: f64,
    /// Decompressed output equal to the input, byte for byte.
    pub verified: bool,
    /// Peak resident memory of the process during this combination, in MiB (Linux only).
    pub peak_rss_mib: Option<f64>,
    /// Seconds per stage of compression: read, tokenize, model_infer, arith_encode, write, other.
    pub compress_profile: Vec<(String, f64)>,
    /// Where the model's ideal bits went (position in segment, after window slides); empty
    /// for baselines and the tensor codec.
    #[serde(default)]
    pub costs: llmzip::unstable::codec::Costs,
}

impl Row {
    fn empty(file: &str, bytes: u64, kind: &str, method: &str, device: &str) -> Row {
        Row {
            file: file.into(),
            original_bytes: bytes,
            kind: kind.into(),
            method: method.into(),
            device: device.into(),
            machine: String::new(),
            status: "ok".into(),
            archive_bytes: 0,
            bits_per_byte: f64::NAN,
            compress_seconds: f64::NAN,
            decompress_seconds: f64::NAN,
            verified: false,
            peak_rss_mib: None,
            compress_profile: Vec::new(),
            costs: Default::default(),
        }
    }

    fn finish(&mut self, archive: u64, c: f64, d: f64, verified: bool) {
        self.archive_bytes = archive;
        self.bits_per_byte = 8.0 * archive as f64 / self.original_bytes.max(1) as f64;
        self.compress_seconds = c;
        self.decompress_seconds = d;
        self.verified = verified;
    }

    /// Takes the process's peak memory and the compression profile (`c` seconds in all).
    fn record(&mut self, profile: &llmzip::unstable::stats::Profile, c: f64) {
        self.peak_rss_mib = peak_memory_mib();
        let mut accounted = 0.0;
        for stage in Stage::ALL {
            let t = profile.get(stage).as_secs_f64();
            accounted += t;
            self.compress_profile.push((stage.name(false).into(), t));
        }
        self.compress_profile
            .push(("other".into(), (c - accounted).max(0.0)));
    }

    /// Compression speed in bytes per second.
    pub fn compress_speed(&self) -> f64 {
        self.original_bytes as f64 / self.compress_seconds
    }

    /// Decompression speed in bytes per second.
    pub fn decompress_speed(&self) -> f64 {
        self.original_bytes as f64 / self.decompress_seconds
    }

    /// The device, with the machine when one is named: `cuda (NVIDIA H200)`.
    pub fn place(&self) -> String {
        if self.machine.is_empty() {
            self.device.clone()
        } else {
            format!("{} ({})", self.device, self.machine)
        }
    }
}

/// JSON has no NaN: serde_json writes the figures of a row that could not run as `null`.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Rows of an earlier run (its results.json), e.g. measured on a GPU machine, to show beside
/// this run's.
pub fn read_rows(path: &std::path::Path) -> Result<Vec<Row>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
    serde_json::from_str(&text).map_err(|e| {
        Error::InvalidSetting(format!(
            "{} is not a results.json of llmzip bench: {e}",
            path.display()
        ))
    })
}

/// Shows one combination's codec progress on the benchmark's bar (whose position counts bytes
/// through a model, both directions, over the whole run); Ctrl-C cancels.
struct Forward<'a> {
    bar: &'a ProgressBar,
    base: u64,
}

impl Observer for Forward<'_> {
    fn progress(&mut self, bytes: u64) {
        self.bar.set_position(self.base + bytes);
    }
    fn cancelled(&self) -> bool {
        progress::interrupted()
    }
}

/// Runs the whole matrix. A device that is not compiled in or not present, or a model that
/// cannot load, gives rows whose `status` says why; it does not stop the benchmark.
pub fn run(opts: &BenchOptions, bar: &ProgressBar) -> Result<Vec<Row>> {
    let mut inputs = Vec::new();
    for path in &opts.files {
        let mut data = std::fs::read(path).map_err(|e| Error::file(path, e))?;
        if let Some(n) = opts.prefix {
            data.truncate(n);
        }
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        inputs.push((name, data));
    }
    let per_pass: u64 = inputs.iter().map(|(_, d)| d.len() as u64).sum();
    let total = 2 * per_pass * (opts.models.len() * opts.devices.len()) as u64;
    bar.set_length(total);
    let mut done = 0u64;
    let mut rows = Vec::new();

    for device_name in &opts.devices {
        let device = models::device(device_name).map_err(|e| e.to_string());
        for spec in &opts.models {
            if spec == tensors::MODEL_NAME {
                for (name, data) in &inputs {
                    rows.push(tensor_row(name, data, device_name)?);
                    done += 2 * data.len() as u64;
                    bar.set_position(done);
                }
                continue;
            }
            let (model_spec, schedule) = match level_of(spec) {
                Some(level) => (level.model(), merged(&opts.schedule, level.schedule())),
                None => (spec.as_str(), opts.schedule),
            };
            let model = match &device {
                Ok(d) => models::load_for_compression(
                    model_spec,
                    d,
                    opts.weights.as_deref(),
                    &opts.registry,
                )
                .and_then(|m| {
                    let schedule = Schedule::for_model(&schedule, m.info())?;
                    Ok((m, schedule))
                })
                .map_err(|e| e.to_string()),
                Err(e) => Err(e.clone()),
            };
            let (mut model, schedule) = match model {
                Ok(loaded) => loaded,
                Err(e) => {
                    for (name, data) in &inputs {
                        let mut row =
                            Row::empty(name, data.len() as u64, "model", spec, device_name);
                        row.status = format!("unavailable: {e}");
                        rows.push(row);
                    }
                    done += 2 * per_pass;
                    continue;
                }
            };
            for (name, data) in &inputs {
                let mut row = Row::empty(name, data.len() as u64, "model", spec, device_name);
                reset_peak_memory();
                bar.set_message(format!("{spec} on {device_name}: {name}"));
                let mut fwd = Forward { bar, base: done };
                // Rows that take under a second are run up to three times and the fastest run
                // kept (every run decoded and compared): at that length the kernel's setup of
                // fresh pages for a model's tables varied the time by up to 3x between runs.
                let (mut c, mut d) = (f64::INFINITY, f64::INFINITY);
                let mut exact = true;
                let mut archive = Vec::new();
                let mut summary = None;
                for _ in 0..3 {
                    archive.clear();
                    fwd.base = done;
                    let start = Instant::now();
                    let s = codec::compress(
                        &mut data.as_slice(),
                        &mut archive,
                        model.as_mut(),
                        &schedule,
                        &opts.limits,
                        // The bench measures the model on every block.
                        codec::BinaryBlocks::Model,
                        &mut fwd,
                    )?;
                    let run_c = start.elapsed().as_secs_f64();
                    fwd.base = done + data.len() as u64;
                    let mut back = Vec::with_capacity(data.len());
                    let start = Instant::now();
                    Decompressor::new(archive.as_slice())?.run(
                        &mut back,
                        model.as_mut(),
                        &opts.limits,
                        &mut fwd,
                    )?;
                    let run_d = start.elapsed().as_secs_f64();
                    exact &= back == *data;
                    if run_c < c {
                        summary = Some(s);
                    }
                    c = c.min(run_c);
                    d = d.min(run_d);
                    if run_c + run_d >= 1.0 {
                        break;
                    }
                }
                let summary = summary.expect("ran at least once");
                let back_ok = exact;
                row.finish(archive.len() as u64, c, d, back_ok);
                row.record(&summary.profile, c);
                row.costs = summary.costs;
                rows.push(row);
                done += 2 * data.len() as u64;
                bar.set_position(done);
            }
        }
    }

    for (name, data) in inputs.iter().filter(|_| opts.baselines) {
        let weights = baselines::is_weights(data);
        for b in baselines::all()
            .into_iter()
            .filter(|b| weights || !b.weights_only)
        {
            if progress::interrupted() {
                return Err(Error::Interrupted);
            }
            let mut row = Row::empty(name, data.len() as u64, "baseline", b.name, "cpu");
            reset_peak_memory();
            let start = Instant::now();
            let packed = (b.compress)(data)?;
            let c = start.elapsed().as_secs_f64();
            let start = Instant::now();
            let back = (b.decompress)(&packed)?;
            let d = start.elapsed().as_secs_f64();
            row.finish(packed.len() as u64, c, d, back == *data);
            row.peak_rss_mib = peak_memory_mib();
            rows.push(row);
        }
    }
    for row in &mut rows {
        row.machine = opts.machine.clone();
    }
    Ok(rows)
}

/// The level a spec `level-N` names (`level-4`: level 4's model and schedule).
fn level_of(spec: &str) -> Option<llmzip::Level> {
    spec.strip_prefix("level-")
        .and_then(|n| n.parse().ok())
        .and_then(|n| llmzip::Level::new(n).ok())
}

/// Explicit schedule settings over a level's.
fn merged(explicit: &ScheduleOptions, level: ScheduleOptions) -> ScheduleOptions {
    ScheduleOptions {
        block_size: explicit.block_size.or(level.block_size),
        max_segments: explicit.max_segments.or(level.max_segments),
        min_segment_tokens: explicit.min_segment_tokens.or(level.min_segment_tokens),
        window: explicit.window.or(level.window),
    }
}

/// The tensor codec on one file: it runs on the CPU whatever the device.
fn tensor_row(name: &str, data: &[u8], device: &str) -> Result<Row> {
    let mut row = Row::empty(
        name,
        data.len() as u64,
        "model",
        tensors::MODEL_NAME,
        device,
    );
    if device != "cpu" {
        row.status = "unavailable: the tensor codec runs on the CPU".into();
        return Ok(row);
    }
    reset_peak_memory();
    let total = data.len() as u64;
    // Output buffers touched before the clock starts: a file's pages come from the page cache,
    // not fresh memory, and on the machines measured here the kernel's zeroing of fresh pages
    // varies from run to run by more than the codec's own time. The fastest of three runs is
    // kept for the same reason (each run decodes and is compared).
    let touched = || {
        let mut v = vec![0u8; data.len() + 4096];
        v.clear();
        v
    };
    let (mut archive, mut back) = (touched(), touched());
    let (mut c, mut d) = (f64::INFINITY, f64::INFINITY);
    let mut summary = None;
    let mut exact = true;
    for _ in 0..3 {
        archive.clear();
        back.clear();
        let start = Instant::now();
        let (head, layout) = tensors::recognise(&mut &data[..], total)?;
        let layout = layout.unwrap_or_else(|| tensors::Layout::bytes(total));
        let s = tensors::compress(
            &head,
            &layout,
            &data[head.len()..],
            &mut archive,
            &mut llmzip::Silent,
        )?;
        c = c.min(start.elapsed().as_secs_f64());
        let start = Instant::now();
        tensors::decompress(archive.as_slice(), &mut back, &mut llmzip::Silent)?;
        d = d.min(start.elapsed().as_secs_f64());
        exact &= back == data;
        summary = Some(s);
    }
    let summary = summary.expect("three runs");
    row.finish(archive.len() as u64, c, d, exact);
    row.record(&summary.profile, c);
    Ok(row)
}

/// Resets the kernel's peak-RSS mark for this process (Linux ≥ 4.0), so each combination's peak
/// is its own.
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The results as a markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| file | bytes | method | device | archive bytes | bpb | compress KiB/s | decompress KiB/s | peak MiB | exact |\n\
         |---|---:|---|---|---:|---:|---:|---:|---:|---|\n",
    );
    for r in rows {
        if r.status != "ok" {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | | | | | |\n",
                r.file,
                r.original_bytes,
                r.method,
                r.place(),
                r.status
            ));
            continue;
        }
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.3} | {:.1} | {:.1} | {} | {} |\n",
            r.file,
            r.original_bytes,
            r.method,
            r.place(),
            r.archive_bytes,
            r.bits_per_byte,
            r.compress_speed() / 1024.0,
            r.decompress_speed() / 1024.0,
            r.peak_rss_mib.map_or("-".into(), |m| format!("{m:.0}")),
            if r.verified { "yes" } else { "NO" }
        ));
    }
    s
}

/// The results as CSV (profile stages as extra columns).
pub fn csv(rows: &[Row]) -> String {
    let mut s = String::from(
        "file,original_bytes,kind,method,device,status,archive_bytes,bits_per_byte,compress_seconds,decompress_seconds,verified,peak_rss_mib,read,tokenize,model_infer,arith_encode,write,other\n",
    );
    for r in rows {
        let prof: Vec<String> = if r.compress_profile.is_empty() {
            vec![String::new(); 6]
        } else {
            r.compress_profile
                .iter()
                .map(|(_, t)| format!("{t:.4}"))
                .collect()
        };
        s.push_str(&format!(
            "{},{},{},\"{}\",\"{}\",\"{}\",{},{:.4},{:.4},{:.4},{},{},{}\n",
            r.file,
            r.original_bytes,
            r.kind,
            r.method,
            r.place(),
            r.status.replace('"', "'"),
            r.archive_bytes,
            r.bits_per_byte,
            r.compress_seconds,
            r.decompress_seconds,
            r.verified,
            r.peak_rss_mib.map_or(String::new(), |m| format!("{m:.1}")),
            prof.join(",")
        ));
    }
    s
}
