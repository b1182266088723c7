//! The weight-file codec through the CLI: recognition by content, `-m tensors`, fallback for
//! files that only look like weights, `info`, and the real GRU weights.

mod common;

use common::*;
use llmzip::testing::{gguf_file, safetensors_file};

fn bf16_weights(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| {
            let x = ((i * 7919 % 1000) as f32 - 500.0) * 1e-4 * (1.0 + (i % 64) as f32 / 8.0);
            ((x.to_bits() >> 16) as u16).to_le_bytes()
        })
        .collect()
}

fn info(dir: &std::path::Path, archive: &str) -> String {
    let o = run(&["info", archive], dir);
    ok(&o);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn weight_files_are_recognised_by_content_and_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let st = safetensors_file(&[("w", "BF16", vec![256, 64], bf16_weights(256 * 64))]);
    let gg = gguf_file(&[(
        vec![64, 20],
        3,
        (0..20 * 2 * 20).map(|i| (i * 37) as u8).collect(),
    )]);
    // Names that say nothing: the content decides.
    for (name, data, container, kind) in [
        ("model.bin", &st, "safetensors", "bf16"),
        ("weights", &gg, "GGUF", "q4_1"),
    ] {
        let archive = round_trip(d, name, data, &[]);
        let shown = info(d, archive.file_name().unwrap().to_str().unwrap());
        assert!(shown.contains(container) && shown.contains(kind), "{shown}");
        assert!(std::fs::metadata(&archive).unwrap().len() < data.len() as u64);
    }
}

#[test]
fn lookalikes_take_the_generic_path_and_tensors_can_be_forced() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A safetensors header whose offsets run past the end of the file.
    let mut lying = safetensors_file(&[("w", "F32", vec![4], vec![1; 16])]);
    lying.truncate(lying.len() - 4);
    let archive = round_trip(d, "lying.safetensors", &lying, &[]);
    let shown = info(d, archive.file_name().unwrap().to_str().unwrap());
    assert!(
        shown.contains(llmzip::unstable::models::DEFAULT_MODEL),
        "{shown}"
    );

    // -m tensors on anything: the weight codec, its byte model for what it does not recognise.
    let archive = round_trip(d, "notes.txt", &text(5000), &["-m", "tensors"]);
    let shown = info(d, archive.file_name().unwrap().to_str().unwrap());
    assert!(
        shown.contains("unrecognised") && shown.contains("bytes"),
        "{shown}"
    );

    // An explicit text model is obeyed on a weight file.
    let st = safetensors_file(&[("w", "BF16", vec![8, 8], bf16_weights(64))]);
    let archive = round_trip(d, "small.safetensors", &st, &["-m", "gru"]);
    let shown = info(d, archive.file_name().unwrap().to_str().unwrap());
    assert!(shown.contains("model          gru "), "{shown}");

    let err = clean_failure(&run_stdin(&["compress", "-c", "-m", "tensors"], d, &st));
    assert!(err.contains("needs a file"), "{err}");
}

#[test]
fn the_real_gru_weights_shrink_more_than_bytewise_coding_allows() {
    let dir = tempfile::tempdir().unwrap();
    let weights = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("crates/llmzip/models/gru/model.safetensors"),
    )
    .unwrap();
    let archive = round_trip(dir.path(), "model.safetensors", &weights, &["--stats"]);
    let ratio = weights.len() as f64 / std::fs::metadata(&archive).unwrap().len() as f64;
    // f32 weights trained in f32: sign and 23 mantissa bits are noise, so 32 / (24 + ~2.5) is
    // about the ceiling; zstd -19 gets 1.075x and byte grouping + zstd 1.177x (docs/benchmarks.md).
    assert!(ratio > 1.18, "{ratio:.3}");
}

#[test]
fn damaged_tensor_archives_are_refused_and_leave_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let st = safetensors_file(&[("w", "BF16", vec![64, 64], bf16_weights(64 * 64))]);
    let archive = round_trip(d, "w.safetensors", &st, &[]);
    let mut bad = std::fs::read(&archive).unwrap();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    std::fs::write(d.join("bad.llmz"), &bad).unwrap();
    let err = clean_failure(&run(&["decompress", "bad.llmz", "-o", "out"], d));
    assert!(err.contains("corrupt") || err.contains("checksum"), "{err}");
    assert!(!d.join("out").exists());
    std::fs::write(d.join("cut.llmz"), &bad[..mid]).unwrap();
    clean_failure(&run(&["decompress", "cut.llmz", "-o", "out"], d));
    assert!(!d.join("out").exists());
}

/// The real pair `gru2` → `gru3` (gru3 is gru2 trained on) through the binary: `--base` makes
/// the archive smaller, `info` names the base, and decoding needs that base: without it, or with
/// another file, it fails with what to do and writes nothing.
#[test]
fn a_fine_tune_against_its_base_round_trips_only_with_that_base() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/llmzip/models");
    let base = models.join("gru2/model.safetensors");
    let tuned = std::fs::read(models.join("gru3/model.safetensors")).unwrap();
    let base_arg = base.to_str().unwrap();
    let alone = round_trip(d, "alone.safetensors", &tuned, &[]);
    std::fs::write(d.join("t.safetensors"), &tuned).unwrap();
    ok(&run(
        &["-q", "compress", "--base", base_arg, "t.safetensors"],
        d,
    ));
    let (with, without) = (
        std::fs::metadata(d.join("t.safetensors.llmz"))
            .unwrap()
            .len(),
        std::fs::metadata(&alone).unwrap().len(),
    );
    assert!(with < without, "{with} against {without} alone");
    let shown = info(d, "t.safetensors.llmz");
    assert!(shown.contains("base           SHA-256 "), "{shown}");

    std::fs::remove_file(d.join("t.safetensors")).unwrap();
    let err = clean_failure(&run(&["-q", "decompress", "t.safetensors.llmz"], d));
    assert!(err.contains("--base"), "{err}");
    assert!(!d.join("t.safetensors").exists());
    let other = models.join("gru/model.safetensors");
    let err = clean_failure(&run(
        &[
            "-q",
            "decompress",
            "--base",
            other.to_str().unwrap(),
            "t.safetensors.llmz",
        ],
        d,
    ));
    assert!(
        err.contains("not the file this archive was made against"),
        "{err}"
    );
    assert!(!d.join("t.safetensors").exists());
    // Part of it too, through the seekable decoder (a regression: it ignored --base).
    let part = run(
        &[
            "-q",
            "decompress",
            "--base",
            base_arg,
            "--range",
            "1000:5000",
            "t.safetensors.llmz",
        ],
        d,
    );
    ok(&part);
    assert_eq!(part.stdout, &tuned[1000..6000]);
    ok(&run(
        &["-q", "decompress", "--base", base_arg, "t.safetensors.llmz"],
        d,
    ));
    assert_eq!(std::fs::read(d.join("t.safetensors")).unwrap(), tuned);

    // --base is for weight files.
    std::fs::write(d.join("notes.txt"), text(2000)).unwrap();
    let err = clean_failure(&run(
        &["-q", "compress", "--base", base_arg, "notes.txt"],
        d,
    ));
    assert!(err.contains("--base is for weight files"), "{err}");
    assert!(!d.join("notes.txt.llmz").exists());
}
