//! The stable public surface, listed (`tests/public_api.txt`): every `pub` item of the files
//! whose items the crate's root exposes (everything under `llmzip::unstable` is excluded: it
//! makes no promise). A change to the surface fails this test until the listing shows it, so
//! that a review sees every addition; regenerate the listing with
//! `LLMZIP_BLESS_API=1 cargo test --release -p llmzip --test public_api` and read the diff.

use std::path::Path;

/// The files of the stable surface, relative to `src/`.
const FILES: &[&str] = &[
    "lib.rs",
    "catalogue.rs",
    "error.rs",
    "observer.rs",
    "registry.rs",
    "session.rs",
    "stream.rs",
    "tensors/mod.rs",
    "tensors/layout.rs",
    "testing.rs",
    "train/mod.rs",
    "train/corpus.rs",
    "train/curve.rs",
];

/// `pub` declarations, one per line: `file: signature` up to its body.
fn listing() -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = String::new();
    for file in FILES {
        let text = std::fs::read_to_string(src.join(file)).unwrap();
        let mut in_tests = false;
        let mut pending: Option<String> = None;
        for line in text.lines() {
            let t = line.trim();
            if t.starts_with("#[cfg(test)]") {
                in_tests = true;
            }
            if in_tests {
                continue;
            }
            if let Some(p) = &mut pending {
                p.push(' ');
                p.push_str(t);
                let open_use = p.starts_with("pub use ");
                let end = if open_use {
                    t.ends_with(';')
                } else {
                    t.ends_with(';') || t.ends_with('{') || (t.starts_with(')') && t.ends_with(')'))
                };
                if end {
                    let done = pending.take().unwrap();
                    out.push_str(&format!("{file}: {}\n", tidy(&done)));
                }
                continue;
            }
            let public = [
                "pub fn ",
                "pub struct ",
                "pub enum ",
                "pub const ",
                "pub trait ",
                "pub type ",
                "pub mod ",
                "pub use ",
                "pub static ",
            ]
            .iter()
            .any(|k| t.starts_with(k));
            if !public {
                continue;
            }
            let open_use = t.starts_with("pub use ") && !t.ends_with(';');
            if !open_use && (t.ends_with(';') || t.ends_with('{') || t.ends_with('}')) {
                out.push_str(&format!("{file}: {}\n", tidy(t)));
            } else {
                pending = Some(t.to_string());
            }
        }
    }
    out
}

/// A declaration without its body and with single spaces.
fn tidy(decl: &str) -> String {
    let decl = if decl.starts_with("pub use ") {
        decl
    } else {
        decl.split(" {").next().unwrap_or(decl)
    };
    let decl = decl.trim_end_matches(['{', ';', ' ']);
    decl.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("( ", "(")
        .replace(", )", ")")
}

#[test]
fn the_public_surface_is_the_listed_one() {
    let listed_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/public_api.txt");
    let now = listing();
    if std::env::var_os("LLMZIP_BLESS_API").is_some() {
        std::fs::write(&listed_path, &now).unwrap();
    }
    let listed = std::fs::read_to_string(&listed_path).unwrap_or_default();
    let added: Vec<&str> = now
        .lines()
        .filter(|l| !listed.lines().any(|x| x == *l))
        .collect();
    let removed: Vec<&str> = listed
        .lines()
        .filter(|l| !now.lines().any(|x| x == *l))
        .collect();
    assert!(
        added.is_empty() && removed.is_empty(),
        "the public surface changed; if that is intended, regenerate tests/public_api.txt \
         (see this file's docs)\nadded:\n  {}\nremoved:\n  {}",
        added.join("\n  "),
        removed.join("\n  ")
    );
}

/// The root exposes the flate2/zstd-shaped API and nothing of candle's.
#[test]
fn the_root_is_small_and_free_of_candle() {
    let now = listing();
    let root: Vec<&str> = now.lines().filter(|l| l.starts_with("lib.rs: ")).collect();
    assert!(root.len() <= 16, "{root:#?}");
    // (testing.rs, the test-support feature, writes candle tensors for tests.)
    for line in now.lines().filter(|l| !l.starts_with("testing.rs")) {
        assert!(
            !line.contains("candle"),
            "a candle type in the stable surface: {line}"
        );
    }
    // What the shape promises, by name (compiled, not run).
    let _calls = |data: &[u8]| -> llmzip::Result<()> {
        let options = llmzip::Options::default().level(llmzip::Level::BEST);
        let archive = llmzip::encode_all(data, &options)?;
        llmzip::decode_all(archive.as_slice())?;
        llmzip::info(archive.as_slice())?;
        let encoder = llmzip::Encoder::new(Vec::new(), &options)?;
        encoder.finish()?;
        llmzip::Decoder::new(archive.as_slice())?;
        Ok(())
    };
}
