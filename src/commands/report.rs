//! What the file commands print: one summary line per file, and the `--stats` report
//! (per-stage profile, sizes, ratio, bits per byte, speed, and the ZIP baseline).

use std::time::Duration;

use crate::bench::baselines::BaselineResult;
use indicatif::HumanBytes;
use llmzip::tensors;
use llmzip::unstable::codec::{Costs, Summary, Tally, AFTER_SLIDE};
use llmzip::unstable::stats::Stage;

/// Bits per byte of the archive: 8 × archive bytes / original bytes (header included).
pub fn bits_per_byte(archive: u64, original: u64) -> f64 {
    if original == 0 {
        0.0
    } else {
        8.0 * archive as f64 / original as f64
    }
}

fn ratio(archive: u64, original: u64) -> f64 {
    if archive == 0 {
        0.0
    } else {
        original as f64 / archive as f64
    }
}

fn speed(bytes: u64, elapsed: Duration) -> String {
    let s = elapsed.as_secs_f64();
    if s <= 0.0 {
        "-".into()
    } else {
        format!("{}/s", HumanBytes((bytes as f64 / s) as u64))
    }
}

/// `notes.txt: 10.6 KiB -> 2.3 KiB (4.70x, 1.702 bpb) in 1.2 s, 9.0 KiB/s -> notes.txt.llmz`
pub fn summary_line(
    decoding: bool,
    input: &str,
    output: &str,
    s: &Summary,
    elapsed: Duration,
) -> String {
    let (from, to) = if decoding {
        (s.archive_len, s.original_len)
    } else {
        (s.original_len, s.archive_len)
    };
    format!(
        "{input}: {} -> {} ({:.2}x, {:.3} bpb) in {:.2} s, {} -> {output}",
        HumanBytes(from),
        HumanBytes(to),
        ratio(s.archive_len, s.original_len),
        bits_per_byte(s.archive_len, s.original_len),
        elapsed.as_secs_f64(),
        speed(s.original_len, elapsed),
    )
}

/// The prototype-style report, printed to stderr.
pub fn stats(decoding: bool, s: &Summary, elapsed: Duration, baseline: Option<BaselineResult>) {
    let total = elapsed.as_secs_f64().max(1e-12);
    eprintln!("  {:<14} {:>10} {:>7}", "stage", "seconds", "%");
    let mut accounted = 0.0;
    for stage in Stage::ALL {
        let t = s.profile.get(stage).as_secs_f64();
        accounted += t;
        eprintln!(
            "  {:<14} {:>10.3} {:>6.1}%",
            stage.name(decoding),
            t,
            100.0 * t / total
        );
    }
    let other = (total - accounted).max(0.0);
    eprintln!(
        "  {:<14} {:>10.3} {:>6.1}%",
        "other",
        other,
        100.0 * other / total
    );
    eprintln!("  {:<14} {:>10.3} {:>6.1}%", "total", total, 100.0);
    let bpb = bits_per_byte(s.archive_len, s.original_len);
    eprintln!("  original size   {} bytes", s.original_len);
    eprintln!("  archive size    {} bytes", s.archive_len);
    eprintln!(
        "  ratio           {:.3}x",
        ratio(s.archive_len, s.original_len)
    );
    eprintln!("  bits per byte   {bpb:.4}");
    if !decoding && s.tokens > 0 {
        let ideal_bpb = s.ideal_bits / s.original_len as f64;
        let vs_ideal = (8.0 * s.archive_len as f64) / s.ideal_bits.max(1e-9);
        eprintln!(
            "  model ideal     {ideal_bpb:.4} bits per byte (Σ -log2 p = {:.0} bytes; archive/ideal {vs_ideal:.5})",
            s.ideal_bits / 8.0
        );
        eprintln!(
            "  tokens          {} ({} blocks coded, {} stored{})",
            s.tokens,
            s.coded_blocks,
            s.stored_blocks,
            super::info::fast_note(s.fast_blocks)
        );
        for line in cost_lines(&s.costs) {
            eprintln!("  {line}");
        }
    }
    eprintln!("  speed           {}", speed(s.original_len, elapsed));
    if let Some(b) = baseline {
        eprintln!(
            "  zip -9 baseline {} bytes ({:.3}x, {:.4} bpb) in {:.3} s, {}",
            b.compressed_bytes,
            ratio(b.compressed_bytes, b.input_bytes),
            bits_per_byte(b.compressed_bytes, b.input_bytes),
            b.elapsed.as_secs_f64(),
            speed(b.input_bytes, b.elapsed)
        );
    }
}

/// Where the model's ideal bits went: per position bucket in the segments and after window
/// slides, bits per token and share of all bits (buckets without tokens left out).
pub fn cost_lines(c: &Costs) -> Vec<String> {
    let all = c.total().bits.max(1e-12);
    let line = |label: &str, t: &Tally| {
        format!(
            "  {label:<20} {:>9} tokens {:>7.3} bits/token {:>6.1} % of the bits",
            t.tokens,
            t.bits_per_token(),
            100.0 * t.bits / all
        )
    };
    let mut lines = vec!["where the bits go (Σ -log2 p by position in the segment)".to_string()];
    for (label, t) in c.position_rows() {
        if t.tokens > 0 {
            lines.push(line(&label, &t));
        }
    }
    if c.after_slide.tokens > 0 {
        let label = format!("{AFTER_SLIDE} after a slide");
        lines.push(line(&label, &c.after_slide));
    }
    lines
}

/// The codec summary the per-file report prints, from either codec's report; prints the
/// per-format table of a weight file first when `stats`.
pub fn file_summary(report: llmzip::Report, stats: bool) -> Summary {
    match report {
        llmzip::Report::Model(s) => s,
        llmzip::Report::Tensors(s) => {
            if stats {
                tensor_table(&s);
            }
            as_codec_summary(s)
        }
        llmzip::Report::Members {
            members,
            seek_tables,
        } => {
            let mut total = Summary {
                archive_len: seek_tables,
                ..Summary::default()
            };
            for m in members {
                let s = file_summary(m, stats);
                total.original_len += s.original_len;
                total.archive_len += s.archive_len;
                total.tokens += s.tokens;
                total.ideal_bits += s.ideal_bits;
                total.coded_blocks += s.coded_blocks;
                total.stored_blocks += s.stored_blocks;
                total.fast_blocks += s.fast_blocks;
            }
            total
        }
    }
}

/// A tensor archive's summary in the shape the per-file report prints.
pub fn as_codec_summary(s: tensors::Summary) -> Summary {
    Summary {
        original_len: s.original_len,
        archive_len: s.archive_len,
        profile: s.profile,
        ..Summary::default()
    }
}

/// Per number format: sizes, ratio and bits per value (`llmzip info`, `--stats`).
pub fn tensor_lines(s: &tensors::Summary) -> Vec<String> {
    let mut lines = vec![format!(
        "  {:<8} {:>14} {:>14} {:>8} {:>14} {:>10}",
        "format", "original", "coded", "ratio", "values", "bits/value"
    )];
    for (kind, k) in &s.kinds {
        lines.push(format!(
            "  {:<8} {:>14} {:>14} {:>7.3}x {:>14} {:>10.3}",
            kind.name(),
            k.original,
            k.coded,
            ratio(k.coded, k.original),
            k.values,
            if k.values == 0 {
                0.0
            } else {
                8.0 * k.coded as f64 / k.values as f64
            }
        ));
    }
    lines
}

/// Prints [`tensor_lines`] to stderr, after the container's name.
pub fn tensor_table(s: &tensors::Summary) {
    eprintln!(
        "  weight file     {}, {} regions",
        s.layout.container.name(),
        s.layout.regions.len()
    );
    for line in tensor_lines(s) {
        eprintln!("{line}");
    }
}
