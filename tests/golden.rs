//! Archives made by earlier builds keep decoding: every golden archive of a built-in byte model
//! decodes to its original, byte for byte. (SmolLM2's and Gemma 3's are checked in
//! tests/models.rs, which fetches the models.) Never regenerate these to make a test pass: see tests/golden/README.md.

mod common;

use common::*;

#[test]
fn golden_archives_of_the_embedded_models_decode() {
    let checked = check_golden(|name| !name.starts_with("smollm2") && !name.starts_with("gemma3"));
    // empty, stored, gru-cm, gru, a window slide, several blocks, gru-cm2 with slides, gru-cm3,
    // gru-cm4 with slides, gru2, gru2-cm5 with slides, gru3-cm5 and gru4-cm5 with slides, the
    // tensor codec's safetensors and GGUF archives and a fine-tune against its base (versions 1
    // and 2), a version-2 chunk of two rANS segments, and the tiny test models' archives.
    assert!(checked >= 35, "only {checked} golden archives found");
}

#[test]
fn golden_archives_say_who_wrote_them() {
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let o = run(&["info", "gru-cm.txt.llmz"], &golden);
    ok(&o);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("written by     llmzip 0."), "{out}");
}
