//! Helpers for tests that run the real `llmzip` binary.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The binary under test, finding downloaded models in this repository's `models/` (where
/// scripts/fetch-models.sh puts them) from whatever directory a test runs it in.
pub fn llmzip() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_llmzip"));
    c.stdin(Stdio::null());
    c.env(
        "LLMZIP_MODELS",
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models"),
    );
    c
}

/// Runs with `args`, returning the output (never panics on failure of the command itself).
pub fn run(args: &[&str], dir: &Path) -> Output {
    llmzip().args(args).current_dir(dir).output().expect("runs")
}

/// Runs with `input` on stdin.
pub fn run_stdin(args: &[&str], dir: &Path, input: &[u8]) -> Output {
    let mut child = llmzip()
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().expect("waits");
    writer.join().unwrap();
    out
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success, showing stderr otherwise.
pub fn ok(o: &Output) {
    assert!(o.status.success(), "llmzip failed: {}", stderr(o));
}

/// Asserts a clean failure: non-zero exit, one `llmzip: error:` line, no panic.
pub fn clean_failure(o: &Output) -> String {
    let err = stderr(o);
    assert!(!o.status.success(), "expected failure, got success: {err}");
    assert!(err.contains("llmzip: error:"), "no error line: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    err
}

/// The round trip every CLI test shares: writes `data` to `dir/name`, runs `compress -q name`
/// with `args` (model, schedule, …), then `decompress` with no model given (the archive names
/// it) into `restored`, and checks the bytes, that the input was kept and that no temporary
/// file is left. Returns the archive's path (`dir/name.llmz`).
pub fn round_trip(dir: &Path, name: &str, data: &[u8], args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, data).unwrap();
    let mut compress = vec!["-q", "compress", "-f", name];
    compress.extend_from_slice(args);
    ok(&run(&compress, dir));
    assert!(path.exists(), "input must be kept by default");
    let archive = dir.join(format!("{name}.llmz"));
    let archive_name = archive.file_name().unwrap().to_str().unwrap().to_owned();
    ok(&run(
        &["-q", "decompress", "-f", &archive_name, "-o", "restored"],
        dir,
    ));
    assert!(
        std::fs::read(dir.join("restored")).unwrap() == data,
        "{name} changed in the round trip"
    );
    let leftovers: Vec<_> = listing(dir)
        .into_iter()
        .filter(|f| f.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    archive
}

/// Bits per byte of `archive` for `original` bytes of input.
pub fn bits_per_byte(archive: &Path, original: usize) -> f64 {
    8.0 * std::fs::metadata(archive).unwrap().len() as f64 / original as f64
}

/// Files in `dir` (names), sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// English-like text of `n` bytes (deterministic).
pub fn text(n: usize) -> Vec<u8> {
    let base = "Alice was beginning to get very tired of sitting by her sister on the bank, \
and of having nothing to do: once or twice she had peeped into the book her sister was reading, \
but it had no pictures or conversations in it, \"and what is the use of a book,\" thought Alice \
\"without pictures or conversations?\"\n";
    base.as_bytes().iter().cycle().take(n).copied().collect()
}

/// Pseudo-random bytes (deterministic).
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e3779b97f4a7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Trains a tiny model into `dir/name` (a few seconds) and returns its path.
pub fn tiny_model(dir: &Path, name: &str, seed: u64) -> PathBuf {
    let corpus = dir.join(format!("{name}-corpus"));
    std::fs::create_dir_all(&corpus).unwrap();
    std::fs::write(corpus.join("a.txt"), text(30_000)).unwrap();
    std::fs::write(corpus.join("b.txt"), text(5_000)).unwrap();
    let out = dir.join(name);
    let o = llmzip()
        .args(["train", "-q", "--threads", "1", "--data"])
        .arg(&corpus)
        .arg("--out")
        .arg(&out)
        .args([
            "--hidden", "16", "--embed", "8", "--layers", "1", "--batch", "4",
        ])
        .args(["--seq-len", "16", "--bytes", "2K", "--eval-every", "1G"])
        .args(["--seed", &seed.to_string()])
        .output()
        .unwrap();
    ok(&o);
    out
}

/// Golden archives that decode only on the machine that made them, by name: the names listed
/// in `tests/golden/machine-bound.txt` (with the release that made them and why), which
/// scripts/cross-cpu.sh reads too. Nothing else may fail.
pub fn machine_bound() -> Vec<String> {
    let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/machine-bound.txt");
    std::fs::read_to_string(list)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

/// Decodes every golden archive `tests/golden/NAME.llmz` whose name `wanted` accepts with the
/// current build and requires its original `NAME` back, byte for byte. Returns how many it
/// checked (so a test can insist that there were some).
///
/// No failure is excused but those of [`machine_bound`] archives, and only with the message
/// that names them machine-bound; each is printed.
pub fn check_golden(wanted: impl Fn(&str) -> bool) -> usize {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut checked = 0;
    let mut names: Vec<String> = std::fs::read_dir(&golden)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".llmz"))
        .collect();
    names.sort();
    let machine_bound = machine_bound();
    for name in names.iter().filter(|n| wanted(n)) {
        let original = golden.join(name.trim_end_matches(".llmz"));
        // A fine-tune's archive names its base in NAME.base.
        let mut base = Vec::new();
        if let Ok(file) =
            std::fs::read_to_string(golden.join(format!("{}.base", original.display())))
        {
            base = vec!["--base".into(), golden.join(file.trim()).into_os_string()];
        }
        let o = llmzip()
            .env("LLMZIP_MODELS", models_dirs())
            .args(["decompress", "-c"])
            .args(base)
            .arg(golden.join(name))
            .output()
            .unwrap();
        let err = stderr(&o);
        if !o.status.success() && machine_bound.contains(name) {
            assert!(
                err.contains("machine-bound") && !err.contains("panicked"),
                "machine-bound golden archive {name} fails without saying so: {err}"
            );
            eprintln!("TOLERATED: machine-bound golden archive {name} fails here: {err}");
        } else {
            assert!(
                o.status.success(),
                "golden archive {name} no longer decodes: {err}"
            );
            assert!(
                o.stdout == std::fs::read(&original).unwrap(),
                "golden archive {name} decodes to different bytes"
            );
        }
        checked += 1;
    }
    checked
}

/// The model directories golden archives are decoded with: the repository's `models/` (what
/// scripts/fetch-models.sh downloads) and `tests/golden/models/` (the tiny test models), as
/// `LLMZIP_MODELS` lists them.
pub fn models_dirs() -> std::ffi::OsString {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::join_paths([root.join("models"), root.join("tests/golden/models")]).unwrap()
}

/// What a hostile writer can make: `real`'s header (model, fingerprint, backend) with the given
/// schedule claims, then one coded block claiming `len` bytes and `tokens` tokens in `rows` rows
/// with `payload`, every checksum valid.
pub fn crafted_archive(
    real: &[u8],
    block_size: u64,
    window: u64,
    len: u64,
    tokens: u64,
    rows: u64,
    payload: &[u8],
) -> Vec<u8> {
    let mut header = llmzip::unstable::format::Header::read(&mut &real[..]).unwrap();
    header.schedule.block_size = block_size;
    header.schedule.max_segments = rows;
    header.schedule.window = window;
    llmzip::testing::crafted_archive(&header, len, tokens, rows, payload)
}

/// Decompresses `archive` from a file in a fresh directory; it must fail cleanly, leave nothing
/// behind, and finish within `seconds`. Returns the error message.
pub fn crafted_fails_fast(archive: &[u8], extra: &[&str], seconds: u64) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("evil.llmz"), archive).unwrap();
    let mut args = vec!["decompress", "evil.llmz"];
    args.extend_from_slice(extra);
    let start = std::time::Instant::now();
    let o = run(&args, dir.path());
    let took = start.elapsed().as_secs();
    let err = clean_failure(&o);
    assert!(took <= seconds, "took {took} s: {err}");
    assert_eq!(listing(dir.path()), vec!["evil.llmz"], "output left behind");
    err
}
