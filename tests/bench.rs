//! `llmzip bench` end to end on a small file: every output file, exact round trips, and devices
//! that are not compiled in reported rather than skipped.

mod common;

use common::*;

#[test]
fn bench_writes_table_csv_json_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("sample.txt"), text(6000)).unwrap();
    let o = run(
        &[
            "bench",
            "-q",
            "sample.txt",
            "--models",
            "gru",
            "--devices",
            "cpu,cuda",
            "--out",
            "res",
        ],
        d,
    );
    ok(&o);
    let table = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "| sample.txt | 6000 | gru | cpu |",
        "gzip -9",
        "xz -9e",
        "zstd -19",
        "bzip2 -9",
        "brotli -q11",
    ] {
        assert!(table.contains(needle), "missing '{needle}' in:\n{table}");
    }
    assert!(!table.contains("| NO |"), "a round trip failed:\n{table}");
    #[cfg(not(feature = "cuda"))]
    assert!(table.contains("| cuda | unavailable"), "{table}");
    for f in ["results.csv", "results.json", "pareto.svg", "profile.svg"] {
        let content = std::fs::read_to_string(d.join("res").join(f)).unwrap();
        assert!(content.len() > 100, "{f} is nearly empty");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("res/results.json")).unwrap())
            .unwrap();
    assert!(json.as_array().unwrap().len() >= 8);
}

#[test]
fn bench_without_data_says_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let err = clean_failure(&run(&["bench"], dir.path()));
    assert!(err.contains("scripts/fetch-data.sh"), "{err}");
}

#[test]
fn rows_from_another_machine_join_the_tables_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("sample.txt"), text(3000)).unwrap();
    let bench = |extra: &[&str]| {
        let mut args = vec!["bench", "-q", "sample.txt", "--models", "gru"];
        args.extend_from_slice(extra);
        let o = run(&args, d);
        ok(&o);
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // On the "other machine": named, without the classic compressors.
    let there = bench(&[
        "--no-baselines",
        "--machine",
        "Other GPU",
        "--devices",
        "cpu,metal",
        "--out",
        "there",
    ]);
    assert!(there.contains("| gru | cpu (Other GPU) |"), "{there}");
    assert!(
        there.contains("| gru | metal (Other GPU) | unavailable"),
        "{there}"
    );
    assert!(!there.contains("xz -9e"), "{there}");

    let here = bench(&["--include", "there/results.json", "--out", "here"]);
    assert!(here.contains("| gru | cpu |"), "{here}");
    assert!(here.contains("| gru | cpu (Other GPU) |"), "{here}");
    assert!(
        here.contains("| gru | metal (Other GPU) | unavailable"),
        "{here}"
    );
    assert!(here.contains("xz -9e"), "{here}");
    let plot = std::fs::read_to_string(d.join("here/pareto.svg")).unwrap();
    assert!(plot.contains("gru (cpu (Other GPU))"), "{plot}");
    assert!(plot.contains("gru (cpu)"), "{plot}");

    std::fs::write(d.join("bad.json"), "{}").unwrap();
    let err = clean_failure(&run(&["bench", "sample.txt", "--include", "bad.json"], d));
    assert!(err.contains("not a results.json"), "{err}");
}
