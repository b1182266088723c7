//! The training curve: validation bits per byte against bytes seen, as CSV and as an SVG plot.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Result;

/// One evaluation during training.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Training bytes seen at this point.
    pub bytes_seen: u64,
    /// Seconds of training so far.
    pub seconds: f64,
    /// Validation bits per byte.
    pub valid_bpc: f64,
    /// Mean training loss since the previous point (none for the first).
    pub train_bpc: Option<f64>,
    /// Validation bits per byte of the running mean of checkpoints, once a run keeps one.
    #[serde(default)]
    pub average_bpc: Option<f64>,
}

/// Writes the curve as CSV (`bytes_seen,seconds,valid_bpc,train_bpc`, and `average_bpc` when
/// the run keeps a mean of its checkpoints).
pub fn write_csv(path: &Path, curve: &[CurvePoint]) -> Result<()> {
    let averaged = curve.iter().any(|p| p.average_bpc.is_some());
    let mut s = String::from("bytes_seen,seconds,valid_bpc,train_bpc");
    s.push_str(if averaged { ",average_bpc\n" } else { "\n" });
    let opt = |v: Option<f64>| v.map_or(String::new(), |t| format!("{t:.4}"));
    for p in curve {
        let _ = write!(
            s,
            "{},{:.1},{:.4},{}",
            p.bytes_seen,
            p.seconds,
            p.valid_bpc,
            opt(p.train_bpc)
        );
        if averaged {
            let _ = write!(s, ",{}", opt(p.average_bpc));
        }
        s.push('\n');
    }
    std::fs::write(path, s)?;
    Ok(())
}

/// A dependency-free line plot (validation and training bits per byte vs megabytes seen).
pub fn write_svg(path: &Path, curve: &[CurvePoint]) -> Result<()> {
    let (w, h, m) = (640.0, 400.0, 60.0);
    let max_x = curve.iter().map(|p| p.bytes_seen).max().unwrap_or(1).max(1) as f64 / 1e6;
    let ys = curve
        .iter()
        .flat_map(|p| [p.valid_bpc, p.train_bpc.unwrap_or(f64::NAN)])
        .filter(|y| y.is_finite());
    let (mut lo, mut hi) = ys.fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(y), b.max(y)));
    if lo > hi {
        (lo, hi) = (0.0, 8.0);
    }
    let (lo, hi) = ((lo - 0.1).max(0.0).floor(), hi.ceil().max(lo + 1.0));
    let px = |x: f64| m + (x / max_x) * (w - 1.5 * m);
    let py = |y: f64| h - m - (y - lo) / (hi - lo) * (h - 1.5 * m);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <line x1=\"{m}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n\
         <line x1=\"{m}\" y1=\"{}\" x2=\"{m}\" y2=\"{}\" stroke=\"black\"/>\n",
        h - m, w - 0.5 * m, h - m, h - m, 0.5 * m
    );
    for i in 0..=4 {
        let y = lo + (hi - lo) * i as f64 / 4.0;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{y:.2}</text>",
            m - 6.0,
            py(y) + 4.0
        );
        let x = max_x * i as f64 / 4.0;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{x:.1}</text>",
            px(x),
            h - m + 18.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">megabytes of training text seen</text>",
        w / 2.0,
        h - 12.0
    );
    let _ = writeln!(s, "<text x=\"16\" y=\"{}\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">bits per byte</text>", h / 2.0, h / 2.0);
    for (name, color, get) in [
        (
            "validation",
            "#1f77b4",
            (|p: &CurvePoint| p.valid_bpc) as fn(&CurvePoint) -> f64,
        ),
        ("training", "#ff7f0e", |p: &CurvePoint| {
            p.train_bpc.unwrap_or(f64::NAN)
        }),
    ] {
        let pts: Vec<String> = curve
            .iter()
            .filter(|p| get(p).is_finite())
            .map(|p| format!("{:.1},{:.1}", px(p.bytes_seen as f64 / 1e6), py(get(p))))
            .collect();
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            pts.join(" ")
        );
        let ly = if name == "validation" {
            0.5 * m + 4.0
        } else {
            0.5 * m + 20.0
        };
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{ly}\" fill=\"{color}\">{name}</text>",
            w - 2.0 * m
        );
    }
    s.push_str("</svg>\n");
    std::fs::write(path, s)?;
    Ok(())
}
