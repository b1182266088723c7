//! Every kind of input must come back bit for bit, through files and through pipes.

mod common;

use common::*;

/// [`round_trip`] in a fresh directory, plus the bound on growth.
fn round_trip_file(name: &str, data: &[u8], extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let archive = round_trip(dir.path(), name, data, extra);
    let size = std::fs::metadata(&archive).unwrap().len() as usize;
    // Nothing may grow by more than 0.1% plus header and block overhead.
    assert!(
        size <= data.len() + data.len() / 1000 + 128,
        "{name}: {size} bytes for {} input bytes",
        data.len()
    );
}

#[test]
fn empty_file() {
    round_trip_file("empty", b"", &[]);
}

#[test]
fn one_byte() {
    round_trip_file("one", b"x", &[]);
}

#[test]
fn ascii_text_compresses() {
    let data = text(20_000);
    round_trip_file("ascii.txt", &data, &[]);
}

#[test]
fn plain_gru_without_context_blending() {
    round_trip_file("plain.txt", &text(12_000), &["-m", "gru"]);
}

#[test]
fn default_model_with_a_sliding_window() {
    // A window on a recurrent model resets it (and the mixing statistics) and replays the kept
    // tokens at the same steps on both sides.
    round_trip_file(
        "window.txt",
        &text(5_000),
        &["--window", "64", "--min-segment", "1000"],
    );
}

#[test]
fn utf8_text() {
    let data = "Żółć gęślą jaźń — naïve café, 日本語のテキスト, emoji 🦀🚀\n".repeat(200);
    round_trip_file("utf8.txt", data.as_bytes(), &[]);
}

#[test]
fn crlf_text() {
    let data = String::from_utf8(text(6000)).unwrap().replace('\n', "\r\n");
    round_trip_file("crlf.txt", data.as_bytes(), &[]);
}

#[test]
fn text_with_nul_bytes() {
    let mut data = text(5000);
    for i in (0..data.len()).step_by(97) {
        data[i] = 0;
    }
    round_trip_file("nul.bin", &data, &[]);
}

#[test]
fn invalid_utf8_iso_8859_2() {
    // "Zażółć gęślą jaźń" in ISO-8859-2: bytes above 0x7f that are not valid UTF-8.
    let line: &[u8] = b"Za\xbf\xf3\xb3\xe6 g\xea\x9cl\xb1 ja\x9f\xf1. P\xf3jd\xbf, ki\xf1 t\xea chmurno\xb6\xe6\n";
    let data: Vec<u8> = line.repeat(150);
    assert!(std::str::from_utf8(&data).is_err());
    round_trip_file("latin2.txt", &data, &[]);
}

#[test]
fn random_bytes_are_stored() {
    round_trip_file("random.bin", &random_bytes(300_000, 7), &[]);
}

#[test]
fn an_executable() {
    let exe = std::fs::read("/bin/true")
        .or_else(|_| std::fs::read(env!("CARGO_BIN_EXE_llmzip")).map(|b| b[..60_000].to_vec()))
        .unwrap();
    round_trip_file("exe", &exe, &[]);
}

#[test]
fn several_blocks() {
    let mut data = text(9_000);
    data.extend(random_bytes(9_000, 3));
    data.extend(text(3_001));
    round_trip_file(
        "blocks.txt",
        &data,
        &["--block-size", "4K", "--min-segment", "512"],
    );
}

#[test]
fn larger_than_a_default_block() {
    // 1 MiB + 1 byte: two blocks with the default schedule (the random part is stored quickly).
    let mut data = random_bytes((1 << 20) - 20_000, 11);
    data.extend(text(20_001));
    round_trip_file("big.bin", &data, &[]);
}

#[test]
fn stdin_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let data = text(8000);
    let c = run_stdin(&["compress"], dir.path(), &data);
    ok(&c);
    assert!(c.stdout.starts_with(b"LLMZ"));
    let d = run_stdin(&["decompress", "-"], dir.path(), &c.stdout);
    ok(&d);
    assert_eq!(d.stdout, data);
    assert!(
        listing(dir.path()).is_empty(),
        "pipes must not create files"
    );
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.txt"), text(30_000)).unwrap();
    ok(&run(
        &[
            "compress",
            "-q",
            "--threads",
            "1",
            "t.txt",
            "-o",
            "one.llmz",
        ],
        dir.path(),
    ));
    ok(&run(
        &[
            "compress",
            "-q",
            "--threads",
            "2",
            "t.txt",
            "-o",
            "two.llmz",
        ],
        dir.path(),
    ));
    let one = std::fs::read(dir.path().join("one.llmz")).unwrap();
    let two = std::fs::read(dir.path().join("two.llmz")).unwrap();
    assert_eq!(one, two, "archives differ between 1 and 2 threads");
    ok(&run(
        &["decompress", "-q", "--threads", "2", "one.llmz", "-o", "a"],
        dir.path(),
    ));
    ok(&run(
        &["decompress", "-q", "--threads", "1", "two.llmz", "-o", "b"],
        dir.path(),
    ));
    let original = std::fs::read(dir.path().join("t.txt")).unwrap();
    assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), original);
    assert_eq!(std::fs::read(dir.path().join("b")).unwrap(), original);
}

/// The library and the tool write the same archives and read each other's.
#[test]
fn library_and_cli_archives_interchange() {
    let mut data = text(20_000);
    data.extend_from_slice(&[0, 0xFF, b'\r', b'\n', 0xC3]);
    let dir = tempfile::tempdir().unwrap();
    let from_library = llmzip::encode_all(&data[..], &llmzip::Options::default()).unwrap();
    std::fs::write(dir.path().join("a.txt"), &data).unwrap();
    ok(&run(&["-q", "compress", "a.txt"], dir.path()));
    let from_cli = std::fs::read(dir.path().join("a.txt.llmz")).unwrap();
    assert_eq!(from_cli, from_library);
    assert_eq!(llmzip::decode_all(&from_cli[..]).unwrap(), data);
    let o = run(&["-q", "decompress", "-c", "a.txt.llmz"], dir.path());
    ok(&o);
    assert_eq!(o.stdout, data);
}
