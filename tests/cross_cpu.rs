//! Archives decode on other CPUs: `scripts/cross-cpu.sh --quick` decodes the golden archives of
//! the tiny test models (every network: GRU, llama in int8 and f32, GPT-2, made natively and on
//! an emulated CPU without FMA), the empty and stored ones, the default model's and `fast1`'s
//! (alone, and as the fast blocks of a default archive), under
//! `qemu-x86_64 -cpu Haswell` (AVX2 + FMA) and `-cpu Nehalem` (no AVX, no FMA), and compares
//! the bytes. The script installs qemu-user when it is missing (Debian's package); without it
//! this test fails rather than skips. The full run (every golden archive) is the script without
//! `--quick`. On other machines (aarch64, macOS) there is no x86-64 emulation of this build, and
//! the test does not exist.

use std::path::Path;
use std::process::Command;

/// Only where the emulated CPUs can run this build: an x86-64 Linux binary built for the
/// baseline instruction set (a build for `target-cpu=native` needs what Nehalem lacks).
#[cfg(all(
    target_arch = "x86_64",
    target_os = "linux",
    not(target_feature = "avx")
))]
#[test]
fn golden_archives_decode_on_emulated_cpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = Command::new("bash")
        .arg(root.join("scripts/cross-cpu.sh"))
        .arg("--quick")
        .env("LLMZIP_BIN", env!("CARGO_BIN_EXE_llmzip"))
        .env("CPUS", "Haswell Nehalem")
        .output()
        .expect("runs bash");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "cross-CPU decoding failed:\n{out}\n{err}"
    );
    // Every archive of the subset ran on both CPUs.
    let ok = out.lines().filter(|l| l.starts_with("ok ")).count();
    assert!(ok >= 2 * 10, "only {ok} archives decoded:\n{out}");
    eprintln!("{out}");
}
