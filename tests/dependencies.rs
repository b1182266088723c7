//! The library's dependency tree stays free of what only the command-line tool needs, so that
//! programs using `llmzip` as a library compile only what they use.

use std::process::Command;

/// Crates only the CLI (or its benchmark) may depend on.
const CLI_ONLY: [&str; 12] = [
    "clap",
    "indicatif",
    "ctrlc",
    "mimalloc",
    "anyhow",
    "flate2",
    "zstd",
    "liblzma",
    "bzip2",
    "brotli",
    "hf-hub",
    "ureq",
];

fn tree(args: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-p",
            "llmzip",
        ])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn library_with_default_features_has_no_cli_crates() {
    let crates = tree(&[]);
    assert!(crates.iter().any(|c| c == "candle-core"), "{crates:?}");
    for name in CLI_ONLY {
        assert!(
            !crates.iter().any(|c| c == name),
            "the llmzip library depends on {name}"
        );
    }
    // The hub feature brings the Hugging Face client, and only it.
    let with_hub = tree(&["--features", "hub"]);
    assert!(with_hub.iter().any(|c| c == "hf-hub"));
}
