//! Command-line behaviour: zstd-style flags, reports, and clean failures on bad input.

mod common;

use common::*;

fn compressed(dir: &std::path::Path, name: &str, data: &[u8]) -> Vec<u8> {
    std::fs::write(dir.join(name), data).unwrap();
    ok(&run(&["compress", "-q", name], dir));
    std::fs::read(dir.join(format!("{name}.llmz"))).unwrap()
}

/// Standard output of a run that must succeed.
fn stdout_of(o: &std::process::Output) -> String {
    ok(o);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Decompressing `archive` must fail cleanly and leave no output or temporary file behind.
fn fails_cleanly(archive: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.llmz"), archive).unwrap();
    let o = run(&["decompress", "bad.llmz"], dir.path());
    let err = clean_failure(&o);
    assert_eq!(listing(dir.path()), vec!["bad.llmz"], "output left behind");
    err
}

#[test]
fn keeps_input_refuses_overwrite_and_honours_force_and_rm() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = text(3000);
    compressed(d, "a.txt", &data);
    assert!(d.join("a.txt").exists());
    // Existing output: refused, untouched.
    std::fs::write(d.join("a.txt.llmz"), b"precious").unwrap();
    let err = clean_failure(&run(&["compress", "a.txt"], d));
    assert!(
        err.contains("already exists") && err.contains("-f"),
        "{err}"
    );
    assert_eq!(std::fs::read(d.join("a.txt.llmz")).unwrap(), b"precious");
    // -f overwrites; --rm removes the input after success.
    ok(&run(&["compress", "-q", "-f", "--rm", "a.txt"], d));
    assert!(!d.join("a.txt").exists());
    ok(&run(&["decompress", "-q", "--rm", "a.txt.llmz"], d));
    assert_eq!(std::fs::read(d.join("a.txt")).unwrap(), data);
    assert!(!d.join("a.txt.llmz").exists());
}

#[test]
fn output_and_stdout_flags() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = text(2000);
    std::fs::write(d.join("x"), &data).unwrap();
    ok(&run(&["compress", "-q", "x", "-o", "custom.bin"], d));
    let c = run(&["decompress", "-c", "custom.bin"], d);
    ok(&c);
    assert_eq!(c.stdout, data);
    // Without .llmz and without -o/-c there is no output name to derive.
    let err = clean_failure(&run(&["decompress", "custom.bin"], d));
    assert!(err.contains("-o"), "{err}");
    // -o with several inputs is refused, and so is --rm with -c.
    clean_failure(&run(&["compress", "x", "custom.bin", "-o", "y"], d));
    clean_failure(&run(&["compress", "--rm", "-c", "x"], d));
    assert!(d.join("x").exists());
}

#[cfg(unix)]
#[test]
fn devices_are_written_in_place_never_replaced() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("n.txt"), text(500)).unwrap();
    for extra in [&[][..], &["-f"][..]] {
        let mut args = vec!["compress", "-q", "n.txt", "-o", "/dev/null"];
        args.extend_from_slice(extra);
        ok(&run(&args, d));
        let meta = std::fs::metadata("/dev/null").unwrap();
        assert!(meta.file_type().is_char_device(), "/dev/null was replaced");
    }
    // --rm into a device would lose the input: refused, input kept.
    clean_failure(&run(&["compress", "--rm", "n.txt", "-o", "/dev/null"], d));
    assert!(d.join("n.txt").exists());
    // A directory as output is refused.
    std::fs::create_dir(d.join("sub")).unwrap();
    clean_failure(&run(&["compress", "n.txt", "-o", "sub"], d));
}

#[cfg(unix)]
#[test]
fn permissions_travel_through_the_archive() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("script.sh"), b"#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(d.join("script.sh"), std::fs::Permissions::from_mode(0o750)).unwrap();
    ok(&run(&["compress", "-q", "--rm", "script.sh"], d));
    ok(&run(&["decompress", "-q", "script.sh.llmz"], d));
    let mode = std::fs::metadata(d.join("script.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o750);
    // From stdin: ordinary permissions, not the temporary file's 0600.
    let o = run_stdin(&["compress", "-o", "piped.llmz"], d, b"data");
    ok(&o);
    let mode = std::fs::metadata(d.join("piped.llmz"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
}

#[test]
fn several_files_and_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a"), text(1000)).unwrap();
    std::fs::write(d.join("b"), text(1500)).unwrap();
    let o = run(&["compress", "a", "b"], d);
    ok(&o);
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 2, "one summary line per file: {err}");
    assert!(err.contains("bpb"), "{err}");
    let q = run(&["decompress", "-q", "-f", "a.llmz", "b.llmz"], d);
    ok(&q);
    assert!(q.stderr.is_empty());
    // A missing file fails, the other is still processed, exit is non-zero.
    let o = run(&["compress", "-f", "missing", "a"], d);
    let err = clean_failure(&o);
    assert!(err.contains("missing"), "{err}");
}

#[test]
fn stats_report_has_profile_and_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("s.txt"), text(5000)).unwrap();
    let o = run(&["compress", "--stats", "s.txt"], d);
    ok(&o);
    let err = stderr(&o);
    for needle in [
        "read",
        "tokenize",
        "model_infer",
        "arith_encode",
        "write",
        "other",
        "ratio",
        "bits per byte",
        "model ideal",
        "zip -9 baseline",
        "where the bits go",
        "tokens 0-15 ",
        "tokens 1024-4095 ",
    ] {
        assert!(err.contains(needle), "missing '{needle}' in:\n{err}");
    }
    let o = run(&["decompress", "--stats", "-c", "s.txt.llmz"], d);
    ok(&o);
    assert!(stderr(&o).contains("arith_decode"));
}

#[test]
fn info_describes_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    compressed(dir.path(), "i.txt", &text(4000));
    let o = run(&["info", "i.txt.llmz"], dir.path());
    ok(&o);
    let out = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "model          gru",
        "fingerprint",
        "tokenizer      bytes",
        "original size  4000",
    ] {
        assert!(out.contains(needle), "missing '{needle}' in:\n{out}");
    }
}

/// Runs llmzip with a pseudo-terminal as stdin and stdout, through util-linux `script`.
#[cfg(unix)]
fn on_terminal(args: &str, dir: &std::path::Path) -> std::process::Output {
    let command = format!("{} {args}", env!("CARGO_BIN_EXE_llmzip"));
    std::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("util-linux `script` runs (it provides the terminal for this test)")
}

#[cfg(unix)]
#[test]
fn refuses_compressed_data_to_and_from_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("t.txt"), text(500)).unwrap();
    // Compressed output to a terminal: refused, nothing written.
    let o = on_terminal("compress -c t.txt", d);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("refusing to write compressed data to a terminal"),
        "{out}"
    );
    assert!(
        !out.contains("LLMZ"),
        "archive bytes reached the terminal: {out}"
    );
    // Compressed input from a terminal: refused.
    let o = on_terminal("decompress", d);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("refusing to read compressed data from a terminal"),
        "{out}"
    );
    // -f allows it, and a pipe is not a terminal.
    assert_eq!(
        on_terminal("compress -c -f t.txt", d).status.code(),
        Some(0)
    );
    ok(&run_stdin(&["compress", "-c"], d, b"abc"));
    assert_eq!(listing(d), vec!["t.txt"]);
}

#[test]
fn truncated_archives_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let archive = compressed(dir.path(), "t.txt", &text(3000));
    for cut in [
        0,
        3,
        10,
        40,
        archive.len() / 2,
        archive.len() - 13,
        archive.len() - 1,
    ] {
        let err = fails_cleanly(&archive[..cut]);
        assert!(
            err.contains("truncated") || err.contains("not an llmzip archive"),
            "cut {cut}: {err}"
        );
    }
}

#[test]
fn flipped_bytes_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let archive = compressed(dir.path(), "f.txt", &text(3000));
    let header_len = 60; // well inside the header
    for pos in [
        5,
        12,
        30,
        header_len,
        archive.len() / 2,
        archive.len() - 20,
        archive.len() - 2,
    ] {
        let mut bad = archive.clone();
        bad[pos] ^= 0x21;
        let err = fails_cleanly(&bad);
        assert!(
            err.contains("corrupt") || err.contains("truncated") || err.contains("version"),
            "flip at {pos}: {err}"
        );
    }
}

#[test]
fn wrong_magic_and_future_version() {
    let dir = tempfile::tempdir().unwrap();
    let archive = compressed(dir.path(), "v.txt", &text(1000));
    let mut magic = archive.clone();
    magic[0] = b'X';
    assert!(fails_cleanly(&magic).contains("not an llmzip archive"));
    let mut future = archive.clone();
    future[4] = 99;
    let err = fails_cleanly(&future);
    assert!(
        err.contains("version 99") && err.contains("upgrade"),
        "{err}"
    );
    assert!(fails_cleanly(b"").contains("not an llmzip archive"));
}

#[test]
fn archive_from_another_model_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model_a = tiny_model(d, "model-a", 1);
    let model_b = tiny_model(d, "model-b", 2);
    std::fs::write(d.join("m.txt"), text(2000)).unwrap();
    let a = model_a.to_str().unwrap();
    let b = model_b.to_str().unwrap();
    ok(&run(&["compress", "-q", "-m", a, "m.txt"], d));
    // With the wrong model: refused, naming the model the archive needs.
    let err = clean_failure(&run(&["decompress", "-m", b, "m.txt.llmz", "-o", "out"], d));
    assert!(err.contains("model-a") && err.contains("-m"), "{err}");
    assert!(!d.join("out").exists());
    // Without -m: the archive's model is not built in, and the message says what to do.
    let err = clean_failure(&run(&["decompress", "m.txt.llmz", "-o", "out"], d));
    assert!(err.contains("model-a") && err.contains("-m"), "{err}");
    // With the built-in default: also refused.
    let err = clean_failure(&run(
        &["decompress", "-m", "gru", "m.txt.llmz", "-o", "out"],
        d,
    ));
    assert!(err.contains("model-a"), "{err}");
    // With the right one: exact.
    ok(&run(
        &["decompress", "-q", "-m", a, "m.txt.llmz", "-o", "out"],
        d,
    ));
    assert_eq!(std::fs::read(d.join("out")).unwrap(), text(2000));
}

#[test]
fn bad_options_fail_with_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a"), b"abc").unwrap();
    // Malformed options are usage errors: exit 2, naming the option.
    for (args, needle) in [
        (&["compress", "--threads", "0", "a"][..], "--threads"),
        (&["compress", "--device", "tpu", "a"][..], "tpu"),
        (&["compress", "--memory", "lots", "a"][..], "--memory"),
        (
            &["compress", "--block-size", "12Q", "a"][..],
            "--block-size",
        ),
        (&["compress", "--no-such-flag", "a"][..], "--no-such-flag"),
    ] {
        let o = run(args, dir.path());
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // Valid options that do not work out are errors: exit 1.
    let o = run(&["compress", "-m", "no-such-model", "a"], dir.path());
    let err = clean_failure(&o);
    assert!(
        err.contains("no-such-model") && err.contains("gru"),
        "{err}"
    );
    let err = clean_failure(&run(&["compress", "-m", "nosuch-cm", "a"], dir.path()));
    assert!(err.contains("nosuch"), "{err}");
    let err = clean_failure(&run(
        &["train", "--data", "missing", "--out", "m"],
        dir.path(),
    ));
    assert!(err.contains("missing"), "{err}");
    assert_eq!(
        listing(dir.path()),
        vec!["a"],
        "failed commands left files behind"
    );
}

#[cfg(unix)]
#[test]
fn interrupt_leaves_no_partial_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("long.txt"), text(3 << 20)).unwrap();
    let child = llmzip()
        .args(["compress", "-q", "--threads", "1", "long.txt"])
        .current_dir(d)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert_eq!(listing(d), vec!["long.txt"], "partial output left behind");
}

#[cfg(target_os = "linux")]
#[test]
fn full_disk_fails_cleanly_and_keeps_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Random bytes: stored, so the archive is as large as the input.
    let data = random_bytes(200_000, 7);
    std::fs::write(d.join("big.txt"), &data).unwrap();
    // To stdout on a full device.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = llmzip()
        .args(["compress", "-c", "big.txt"])
        .current_dir(d)
        .stdout(full)
        .output()
        .unwrap();
    let err = clean_failure(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("No space left on device"), "{err}");
    // To a file on a filesystem that fills up: the file-size limit makes writes past 8 KiB fail
    // like a full disk would (SIGXFSZ ignored, so the write returns an error instead).
    for command in ["compress big.txt", "compress big.txt -o out.llmz"] {
        let o = std::process::Command::new("sh")
            .args([
                "-c",
                &format!(
                    "trap '' XFSZ; ulimit -f 16; exec {} {command}",
                    env!("CARGO_BIN_EXE_llmzip")
                ),
            ])
            .current_dir(d)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let err = clean_failure(&o);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("File too large"), "{err}");
        assert_eq!(listing(d), vec!["big.txt"], "partial output left behind");
    }
    assert_eq!(std::fs::read(d.join("big.txt")).unwrap(), data);
}

#[cfg(target_os = "linux")]
#[test]
fn unreadable_input_and_bad_output_paths_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a.txt"), text(2000)).unwrap();
    // A file that opens but cannot be read (even by root): reading fails part-way.
    let err = clean_failure(&run(&["compress", "/proc/self/mem", "-o", "mem.llmz"], d));
    assert!(err.contains("/proc/self/mem"), "{err}");
    // A directory as input.
    std::fs::create_dir(d.join("sub")).unwrap();
    let err = clean_failure(&run(&["compress", "sub"], d));
    assert!(err.contains("sub"), "{err}");
    // Output into a directory that does not exist.
    let err = clean_failure(&run(&["compress", "a.txt", "-o", "missing/x.llmz"], d));
    assert!(err.contains("missing"), "{err}");
    // Output path that is a directory.
    let err = clean_failure(&run(&["compress", "a.txt", "-o", "sub"], d));
    assert!(err.contains("sub"), "{err}");
    assert_eq!(listing(d), vec!["a.txt", "sub"]);
    assert_eq!(listing(&d.join("sub")), Vec::<String>::new());
}

#[test]
fn crafted_claims_fail_fast_with_the_default_model() {
    let dir = tempfile::tempdir().unwrap();
    let real = compressed(dir.path(), "r.txt", &text(100));
    let max = llmzip::unstable::format::MAX_BLOCK_SIZE;
    // 64 MiB claimed under a limit below the model's fixed tables: refused before decoding.
    let claim = crafted_archive(&real, max, 0, max, max, 1, &[]);
    let err = crafted_fails_fast(&claim, &["--memory", "64M"], 20);
    assert!(
        err.contains("working memory") && err.contains("--memory"),
        "{err}"
    );
    // Within the limit, an empty or all-zero payload claiming a 1 MiB block is noticed early.
    for payload in [&[][..], &[0u8; 64][..]] {
        let archive = crafted_archive(&real, 1 << 20, 0, 1 << 20, 1 << 20, 1, payload);
        let err = crafted_fails_fast(&archive, &[], 20);
        assert!(err.contains("corrupt"), "{err}");
    }
    // The default model's memory does not grow with the block (gru4-cm5's tables and match
    // history are of fixed size), so the 64 MiB claim fits the default limit and reaches the
    // same early stop.
    let err = crafted_fails_fast(&claim, &[], 20);
    assert!(err.contains("corrupt"), "{err}");
}

/// A device that cannot be opened is one clean line, even with RUST_BACKTRACE=1 (the unit test
/// `error::tests::candle_errors_lose_their_backtrace` covers the candle side of that).
#[test]
fn devices_that_cannot_open_say_so_in_one_clean_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a"), b"abc").unwrap();
    #[cfg(not(feature = "cuda"))]
    let devices = ["cuda", "metal"];
    #[cfg(feature = "cuda")]
    let devices = ["metal"];
    for device in devices {
        let o = llmzip()
            .env("RUST_BACKTRACE", "1")
            .args(["compress", "-q", "--device", device, "a"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let err = clean_failure(&o);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains("--device cpu"), "{err}");
        assert!(!dir.path().join("a.llmz").exists());
    }
}

/// An archive that names a Hugging Face model id never makes decompression download it: the
/// model is taken from the local directories and cache, or refused with a message that names
/// the id and the flag that allows the download (regression: it used to fetch it at once).
#[test]
fn an_archive_naming_a_hub_id_never_triggers_a_download() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let model = store.join("acme").join("tiny-llama");
    let config = llmzip::unstable::models::llama::HfLlamaConfig {
        model_type: "llama".into(),
        vocab_size: llmzip::testing::toy_vocabulary().0.len(),
        hidden_size: 16,
        intermediate_size: 32,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        num_key_value_heads: Some(1),
        max_position_embeddings: 64,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        tie_word_embeddings: true,
        bos_token_id: Some(serde_json::json!(0)),
        rope_scaling: None,
        head_dim: None,
        attention_bias: false,
        mlp_bias: false,
    };
    llmzip::testing::write_random_llama(&model, &config, candle_core::DType::F32, 2).unwrap();
    std::fs::write(dir.path().join("t.txt"), text(300)).unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let with_store = |args: &[&str], models: &std::path::Path| {
        llmzip()
            .args(args)
            .current_dir(dir.path())
            .env("LLMZIP_MODELS", models)
            .env("HOME", &home)
            .env("HF_HOME", home.join("hf"))
            .env_remove("HF_HUB_OFFLINE")
            .output()
            .unwrap()
    };
    ok(&with_store(
        &["-q", "compress", "t.txt", "-m", "acme/tiny-llama"],
        &store,
    ));
    // Found locally: decodes without -m.
    ok(&with_store(
        &["-q", "decompress", "t.txt.llmz", "-o", "back"],
        &store,
    ));
    assert_eq!(std::fs::read(dir.path().join("back")).unwrap(), text(300));
    // Not found: refused before any network access, naming the id and the way to allow it.
    let start = std::time::Instant::now();
    let o = with_store(
        &["-q", "decompress", "t.txt.llmz", "-o", "again"],
        &dir.path().join("nothing"),
    );
    let err = clean_failure(&o);
    assert!(
        err.contains("acme/tiny-llama") && err.contains("--allow-download"),
        "{err}"
    );
    assert!(start.elapsed().as_secs() < 30, "took {:?}", start.elapsed());
    assert!(!dir.path().join("again").exists());
    assert!(
        !home.join("hf").exists(),
        "the Hugging Face cache was touched"
    );
}

/// Levels: `-1` … `-9`, `--fast`, `--best`, `--level N`; each names its model in the archive,
/// one level at a time and not with `-m`; the help names the levels and the best model.
#[test]
fn levels_pick_documented_models_and_the_help_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = text(30_000);
    for (flag, model) in [
        ("-1", "fast1"),
        ("--fast", "fast1"),
        ("-3", "fast1"),
        ("--level", "fast1"),
        ("-4", "gru4-cm5"),
    ] {
        let mut args = vec![flag];
        if flag == "--level" {
            args.push("2");
        }
        let archive = round_trip(dir.path(), "t.txt", &data, &args);
        let info = stdout_of(&run(&["info", archive.to_str().unwrap()], dir.path()));
        assert!(
            info.contains(&format!("model          {model} ")),
            "{flag}: {info}"
        );
    }
    for args in [
        &["compress", "-1", "-9", "t.txt"][..],
        &["compress", "-1", "-m", "gru", "t.txt"][..],
        &["compress", "--level", "10", "t.txt"][..],
    ] {
        let o = run(args, dir.path());
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
    let help = stdout_of(&run(&["compress", "--help"], dir.path()));
    for needle in [
        "--fast",
        "--best",
        "-9 (--best): smollm2-cm2",
        "-6 (default): gru4-cm5",
    ] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
}

/// Level 9 without SmolLM2's weights says, in one line, how to get them (and writes nothing).
#[test]
fn the_best_level_without_its_weights_says_how_to_get_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a"), b"abc").unwrap();
    let empty = tempfile::tempdir().unwrap();
    let o = llmzip()
        .args(["compress", "--best", "a"])
        .current_dir(dir.path())
        .env("LLMZIP_MODELS", empty.path())
        .env("XDG_DATA_HOME", empty.path())
        .env("HOME", empty.path())
        .output()
        .unwrap();
    let err = clean_failure(&o);
    assert!(err.contains("scripts/fetch-models.sh"), "{err}");
    assert_eq!(listing(dir.path()), vec!["a"]);
}

/// `llmzip models`: the levels, the current models with their sources, the older ones by name.
#[test]
fn models_lists_the_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    let out = stdout_of(&run(&["models"], dir.path()));
    for needle in [
        "-1 (--fast)",
        "fast1",
        "gru4-cm5",
        "smollm2-cm2",
        "built in",
        "gru-cm4",
    ] {
        assert!(out.contains(needle), "{needle}: {out}");
    }
    let all = stdout_of(&run(&["models", "--all"], dir.path()));
    for entry in llmzip::catalogue::CATALOGUE {
        assert!(all.contains(entry.purpose), "{}", entry.name);
    }
}

/// The README shows the levels exactly as the catalogue defines them, and its model table
/// names exactly the current models (the history is in docs/models.md).
#[test]
fn the_readme_shows_the_catalogue() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains(&llmzip::catalogue::levels_help()),
        "README's level list differs from catalogue::levels_help():\n{}",
        llmzip::catalogue::levels_help()
    );
    let section = readme
        .split("## Levels and models")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a Levels and models section");
    for entry in llmzip::catalogue::CATALOGUE {
        let row = format!("| `{}` |", entry.name);
        assert_eq!(
            section.contains(&row),
            entry.current,
            "{}: in the README's table exactly when current",
            entry.name
        );
    }
}

/// `cat a.llmz b.llmz > ab.llmz` decodes to the two originals concatenated (as gzip and zstd
/// frames do), whatever each member's model; `info` lists the members; data after the last
/// member is refused without output.
#[test]
fn concatenated_archives_decode_to_the_concatenation() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (text(20_000), random_bytes(3000, 7));
    std::fs::write(dir.path().join("a"), &a).unwrap();
    std::fs::write(dir.path().join("b"), &b).unwrap();
    ok(&run(&["-q", "compress", "-1", "a"], dir.path()));
    ok(&run(&["-q", "compress", "b"], dir.path()));
    let mut ab = std::fs::read(dir.path().join("a.llmz")).unwrap();
    ab.extend(std::fs::read(dir.path().join("b.llmz")).unwrap());
    std::fs::write(dir.path().join("ab.llmz"), &ab).unwrap();
    ok(&run(&["-q", "decompress", "ab.llmz"], dir.path()));
    assert_eq!(
        std::fs::read(dir.path().join("ab")).unwrap(),
        [&a[..], &b[..]].concat()
    );
    let info = stdout_of(&run(&["info", "ab.llmz"], dir.path()));
    assert!(
        info.contains("member 1 of 2") && info.contains("member 2 of 2"),
        "{info}"
    );
    assert!(
        info.contains("fast1") && info.contains("gru4-cm5"),
        "{info}"
    );

    ab.extend_from_slice(b"trailing junk");
    let err = fails_cleanly(&ab);
    assert!(err.contains("after the end of the archive"), "{err}");
}

/// `--members SIZE` writes exactly what compressing each SIZE-byte piece alone and
/// concatenating the archives writes, then a seek table; it decodes to the input, and `info`
/// counts the members.
#[test]
fn members_are_independent_archives_of_the_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let data = text(20_000);
    std::fs::write(dir.path().join("t"), &data).unwrap();
    ok(&run(
        &["-q", "compress", "-1", "--members", "8K", "t"],
        dir.path(),
    ));
    let whole = std::fs::read(dir.path().join("t.llmz")).unwrap();
    let mut pieces = Vec::new();
    for (i, piece) in data.chunks(8192).enumerate() {
        let name = format!("p{i}");
        std::fs::write(dir.path().join(&name), piece).unwrap();
        ok(&run(&["-q", "compress", "-1", &name], dir.path()));
        pieces.extend(std::fs::read(dir.path().join(format!("{name}.llmz"))).unwrap());
    }
    assert_eq!(whole[..pieces.len()], pieces[..]);
    let table = &whole[pieces.len()..];
    assert!(
        table.starts_with(b"LLMS") && table.ends_with(b"LLMS"),
        "a seek table follows the members"
    );
    ok(&run(
        &["-q", "decompress", "-f", "t.llmz", "-o", "back"],
        dir.path(),
    ));
    assert_eq!(std::fs::read(dir.path().join("back")).unwrap(), data);
    let info = stdout_of(&run(&["info", "t.llmz"], dir.path()));
    assert!(info.contains("member 3 of 3"), "{info}");
    assert!(info.contains("seek table     3 members"), "{info}");
    let err = clean_failure(&run(&["compress", "-f", "--members", "0", "t"], dir.path()));
    assert!(err.contains("--members"), "{err}");
}

/// `decompress --range START:LEN` writes exactly that slice of the original (to stdout unless
/// -o is given), decoding only the members it touches: a damaged member elsewhere does not
/// stop it, while a full decompression refuses the same file.
#[test]
fn range_decodes_a_slice_from_the_members_it_touches() {
    let dir = tempfile::tempdir().unwrap();
    let data = text(40_000);
    std::fs::write(dir.path().join("t"), &data).unwrap();
    ok(&run(
        &["-q", "compress", "-1", "--members", "10K", "t"],
        dir.path(),
    ));
    let slice = |start: usize, len: usize| data[start..(start + len).min(data.len())].to_vec();
    for (arg, start, len) in [
        ("0:100", 0, 100),
        ("10230:50", 10230, 50),
        ("12K:20K", 12 << 10, 20 << 10),
        ("39990:", 39990, 10),
        ("39000:99999", 39000, 1000),
        ("40000:5", 40000, 0),
    ] {
        let out = run(&["-q", "decompress", "--range", arg, "t.llmz"], dir.path());
        ok(&out);
        assert_eq!(out.stdout, slice(start, len), "--range {arg}");
    }
    ok(&run(
        &[
            "-q",
            "decompress",
            "--range",
            "100:10",
            "t.llmz",
            "-o",
            "part",
        ],
        dir.path(),
    ));
    assert_eq!(
        std::fs::read(dir.path().join("part")).unwrap(),
        slice(100, 10)
    );

    // Damage the last member's payload: a range in the first member still decodes.
    let mut archive = std::fs::read(dir.path().join("t.llmz")).unwrap();
    let members = llmzip::members(&mut std::io::Cursor::new(&archive)).unwrap();
    assert_eq!(members.len(), 4);
    let last = members[3];
    archive[(last.archive_offset + last.archive_len / 2) as usize] ^= 0x55;
    std::fs::write(dir.path().join("d.llmz"), &archive).unwrap();
    let out = run(
        &["-q", "decompress", "--range", "0:100", "d.llmz"],
        dir.path(),
    );
    ok(&out);
    assert_eq!(out.stdout, slice(0, 100));
    let err = clean_failure(&run(
        &[
            "decompress",
            "--range",
            "39000:10",
            "d.llmz",
            "-o",
            "bad-part",
        ],
        dir.path(),
    ));
    assert!(!err.is_empty());
    assert!(!dir.path().join("bad-part").exists(), "no partial output");
    let err = clean_failure(&run(&["decompress", "--range", "0:10", "-"], dir.path()));
    assert!(err.contains("needs an archive file"), "{err}");
    let err = clean_failure(&run(
        &["decompress", "-f", "d.llmz", "-o", "whole"],
        dir.path(),
    ));
    assert!(err.contains("corrupt") || err.contains("CRC"), "{err}");

    let err = clean_failure(&run(
        &["decompress", "--range", "50000:1", "t.llmz"],
        dir.path(),
    ));
    assert!(err.contains("after the end of the original"), "{err}");
    let out = run(&["decompress", "--range", "12", "t.llmz"], dir.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("START:LEN"));
}

/// `llmzip info x | head` and `llmzip models | head`: a reader that went away is not an error
/// and never a panic (regression: println! panicked on the closed pipe).
#[test]
fn reports_to_a_closed_pipe_end_quietly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t"), text(3000)).unwrap();
    ok(&run(
        &["-q", "compress", "-1", "--members", "1K", "t"],
        dir.path(),
    ));
    for args in [&["info", "t.llmz"][..], &["models", "--all"][..]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_llmzip"))
            .args(args)
            .current_dir(dir.path())
            .stdout(writer)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "{args:?}: {stderr}"
        );
    }
}

/// A binary file compressed at the default level has its blocks coded by fast1 (seconds, not
/// hours, for a large one), and `info` and `--stats` say so; asked for a model by name, llmzip
/// codes every block with it. Both archives decompress exactly.
#[test]
fn binary_input_goes_to_the_fast_model_unless_a_model_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let binary: Vec<u8> = (0u32..20_000)
        .flat_map(|i| (i.wrapping_mul(2_654_435_761) >> 20).to_le_bytes())
        .collect();
    std::fs::write(dir.path().join("b.bin"), &binary).unwrap();
    let o = run(&["compress", "--stats", "b.bin"], dir.path());
    ok(&o);
    let stats = String::from_utf8_lossy(&o.stderr);
    assert!(stats.contains("1 coded by fast1"), "{stats}");
    let info = stdout_of(&run(&["info", "b.bin.llmz"], dir.path()));
    assert!(
        info.contains("1 coded by fast1 (they looked binary)"),
        "{info}"
    );
    std::fs::rename(dir.path().join("b.bin.llmz"), dir.path().join("fast.llmz")).unwrap();
    ok(&run(
        &["compress", "-q", "-m", "gru4-cm5", "b.bin"],
        dir.path(),
    ));
    let info = stdout_of(&run(&["info", "b.bin.llmz"], dir.path()));
    assert!(!info.contains("fast1"), "{info}");
    for archive in ["fast.llmz", "b.bin.llmz"] {
        let o = run(&["decompress", "-c", archive], dir.path());
        ok(&o);
        assert!(o.stdout == binary, "{archive}");
    }
}
