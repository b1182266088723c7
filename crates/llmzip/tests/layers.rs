//! No import circles between the library's top-level modules (`codec`, `models`, `format`, …):
//! the folder layout is the architecture, and a circle would make two layers one. Counted from
//! `crate::X` paths in code, outside test modules (code after `#[cfg(test)]`, `tests.rs`,
//! `testing.rs`) and comments.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Top-level module → the top-level modules its code names.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| top(&src, f))
        .filter(|m| m != "lib")
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy();
        if name == "tests.rs" || name == "testing.rs" {
            continue;
        }
        let from = top(&src, file);
        let text = std::fs::read_to_string(file).unwrap();
        for line in code_outside_tests(&text) {
            let line = line.split("//").next().unwrap();
            for (i, _) in line.match_indices("crate::") {
                let rest = &line[i + "crate::".len()..];
                let to: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if to != from && modules.contains(&to) {
                    edges.entry(from.clone()).or_default().insert(to);
                }
            }
        }
    }
    edges
}

/// The lines of `text` outside test modules: a `#[cfg(test)]` followed by a `mod … {` block
/// (by convention the end of a file) ends the code; other `#[cfg(test)]` items (`mod testing;`)
/// are skipped alone.
fn code_outside_tests(text: &str) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "#[cfg(test)]" {
            let next = lines.get(i + 1).map_or("", |l| l.trim());
            if next.contains("mod ") && next.ends_with('{') {
                break;
            }
            i += 2;
            continue;
        }
        out.push(lines[i]);
        i += 1;
    }
    out
}

/// `src/models/llama.rs` → `models`; `src/stream.rs` → `stream`.
fn top(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

#[test]
fn top_level_modules_import_no_circles() {
    let edges = imports();
    let mut circles = Vec::new();
    for (a, targets) in &edges {
        for b in targets {
            // Is there a path back from b to a?
            let mut seen = BTreeSet::new();
            let mut stack = vec![vec![a.clone(), b.clone()]];
            while let Some(path) = stack.pop() {
                let last = path.last().unwrap().clone();
                if last == *a {
                    circles.push(path.join(" -> "));
                    continue;
                }
                if !seen.insert(last.clone()) {
                    continue;
                }
                for next in edges.get(&last).into_iter().flatten() {
                    let mut p = path.clone();
                    p.push(next.clone());
                    stack.push(p);
                }
            }
        }
    }
    assert!(
        circles.is_empty(),
        "import circles: {circles:#?}\nedges: {edges:#?}"
    );
    // The layers hold: the container and the coders know nothing of models or codecs.
    for low in [
        "format",
        "coder",
        "identity",
        "error",
        "observer",
        "tokenization",
    ] {
        let reach = edges.get(low).cloned().unwrap_or_default();
        for high in ["models", "codec", "session", "stream", "tensors"] {
            assert!(!reach.contains(high), "{low} imports {high}");
        }
    }
}
