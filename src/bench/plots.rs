//! Dependency-free SVG plots of a benchmark: bits per byte against compression speed (log
//! scale) with the Pareto front, and the per-stage time profile of each model as stacked bars.
//! Each point aggregates all files: total archive bytes over total input, total time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::Row;
use llmzip::Result;

struct Point {
    label: String,
    bpb: f64,
    speed: f64,
    model: bool,
}

fn aggregate(rows: &[Row]) -> Vec<Point> {
    let mut by: BTreeMap<(String, String), (u64, u64, f64, bool)> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.status == "ok") {
        let e = by
            .entry((r.method.clone(), r.place()))
            .or_insert((0, 0, 0.0, r.kind == "model"));
        e.0 += r.original_bytes;
        e.1 += r.archive_bytes;
        e.2 += r.compress_seconds;
    }
    by.into_iter()
        .filter(|(_, (orig, _, secs, _))| *orig > 0 && *secs > 0.0)
        .map(|((method, device), (orig, arch, secs, model))| Point {
            label: if model {
                format!("{method} ({device})")
            } else {
                method
            },
            bpb: 8.0 * arch as f64 / orig as f64,
            speed: orig as f64 / secs,
            model,
        })
        .collect()
}

/// Bits per byte (y) against compression speed in bytes/s (x, log scale); points on the Pareto
/// front (no other point both faster and smaller) are joined by a line.
pub fn write_pareto_svg(path: &Path, rows: &[Row]) -> Result<()> {
    let pts = aggregate(rows);
    let (w, h, m) = (720.0, 460.0, 70.0);
    let lx = |v: f64| v.max(1.0).log10();
    let (xmin, xmax) = pts.iter().fold((f64::MAX, f64::MIN), |(a, b), p| {
        (a.min(lx(p.speed)), b.max(lx(p.speed)))
    });
    let (xmin, xmax) = if xmin > xmax {
        (0.0, 1.0)
    } else {
        (xmin.floor(), xmax.ceil().max(xmin.floor() + 1.0))
    };
    let ymax = pts
        .iter()
        .map(|p| p.bpb)
        .fold(0.0, f64::max)
        .max(1.0)
        .ceil();
    let px = |s: f64| m + (lx(s) - xmin) / (xmax - xmin) * (w - 2.0 * m);
    let py = |b: f64| h - m - b / ymax * (h - 1.6 * m);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    let _ = writeln!(
        s,
        "<line x1=\"{m}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>",
        h - m,
        w - m,
        h - m
    );
    let _ = writeln!(
        s,
        "<line x1=\"{m}\" y1=\"{}\" x2=\"{m}\" y2=\"{}\" stroke=\"black\"/>",
        h - m,
        0.6 * m
    );
    let mut decade = xmin;
    while decade <= xmax {
        let x = px(10f64.powf(decade));
        let label = match decade as i32 {
            d if d < 3 => format!("{} B/s", 10f64.powi(d)),
            d if d < 6 => format!("{} KB/s", 10f64.powi(d - 3)),
            d => format!("{} MB/s", 10f64.powi(d - 6)),
        };
        let _ = writeln!(
            s,
            "<text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
            h - m + 16.0
        );
        decade += 1.0;
    }
    for i in 0..=4 {
        let b = ymax * i as f64 / 4.0;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{b:.1}</text>",
            m - 6.0,
            py(b) + 4.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">compression speed (log scale)</text>",
        w / 2.0,
        h - m + 36.0
    );
    let _ = writeln!(s, "<text x=\"18\" y=\"{}\" transform=\"rotate(-90 18 {})\" text-anchor=\"middle\">bits per byte (lower is better)</text>", h / 2.0, h / 2.0);
    // Pareto front: sorted by speed descending, keep points that improve bpb.
    let mut order: Vec<&Point> = pts.iter().collect();
    order.sort_by(|a, b| b.speed.total_cmp(&a.speed));
    let mut front = Vec::new();
    let mut best = f64::MAX;
    for p in order {
        if p.bpb < best {
            best = p.bpb;
            front.push(p);
        }
    }
    let line: Vec<String> = front
        .iter()
        .map(|p| format!("{:.1},{:.1}", px(p.speed), py(p.bpb)))
        .collect();
    let _ = writeln!(
        s,
        "<polyline fill=\"none\" stroke=\"#999\" stroke-dasharray=\"4 3\" points=\"{}\"/>",
        line.join(" ")
    );
    for p in &pts {
        let color = if p.model { "#d62728" } else { "#1f77b4" };
        let _ = writeln!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{color}\"/>",
            px(p.speed),
            py(p.bpb)
        );
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\">{} {:.3}</text>",
            px(p.speed) + 6.0,
            py(p.bpb) - 6.0,
            xml(&p.label),
            p.bpb
        );
    }
    let _ = writeln!(s, "<text x=\"{m}\" y=\"20\" font-size=\"13\">bits per byte vs compression speed; dashed: Pareto front; red: models, blue: classic</text>");
    s.push_str("</svg>\n");
    std::fs::write(path, s)?;
    Ok(())
}

/// Stacked bars of each model's compression time by stage (all files together), in percent.
pub fn write_profile_svg(path: &Path, rows: &[Row]) -> Result<()> {
    let mut by: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    for r in rows
        .iter()
        .filter(|r| r.status == "ok" && r.kind == "model")
    {
        let e = by
            .entry(format!("{} ({})", r.method, r.device))
            .or_insert_with(|| {
                r.compress_profile
                    .iter()
                    .map(|(n, _)| (n.clone(), 0.0))
                    .collect()
            });
        for (slot, (_, t)) in e.iter_mut().zip(&r.compress_profile) {
            slot.1 += t;
        }
    }
    let colors = [
        "#8c564b", "#9467bd", "#d62728", "#2ca02c", "#ff7f0e", "#7f7f7f",
    ];
    let (bar_h, gap, left, width) = (26.0, 14.0, 200.0, 440.0);
    let h = 70.0 + by.len() as f64 * (bar_h + gap) + 40.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"20\" font-size=\"13\">compression time by stage</text>\n",
        left + width + 40.0
    );
    for (i, (label, stages)) in by.iter().enumerate() {
        let y = 40.0 + i as f64 * (bar_h + gap);
        let total: f64 = stages.iter().map(|(_, t)| t).sum::<f64>().max(1e-12);
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            left - 8.0,
            y + bar_h / 2.0 + 4.0,
            xml(label)
        );
        let mut x = left;
        for (k, (_, t)) in stages.iter().enumerate() {
            let wd = t / total * width;
            let _ = writeln!(
                s,
                "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{wd:.1}\" height=\"{bar_h}\" fill=\"{}\"/>",
                colors[k % colors.len()]
            );
            x += wd;
        }
    }
    if let Some(stages) = by.values().next() {
        let y = h - 25.0;
        for (k, (name, _)) in stages.iter().enumerate() {
            let x = 10.0 + k as f64 * 105.0;
            let _ = writeln!(s, "<rect x=\"{x}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{name}</text>", y - 10.0, colors[k % colors.len()], x + 16.0, y);
        }
    }
    s.push_str("</svg>\n");
    std::fs::write(path, s)?;
    Ok(())
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
