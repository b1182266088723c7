#!/usr/bin/env bash
# The default model's frontier (issue 28): size against speed for each level that runs it,
# measured in one run together with its yardsticks (xz -9e, and paq8px -9 when
# target/paq8px/paq8px exists: scripts/paq8px.sh builds it), then written as the "frontier"
# section of docs/benchmarks.md (and docs/bench/frontier/section.md, which
# scripts/update-benchmarks.sh keeps).
#
#   scripts/frontier.sh [RUNS [FILES...]]     # default: 3 runs, alice29 and llmzip's own code
#
# PAQ8PX=BINARY names another paq8px (an empty PAQ8PX leaves it out).
# The code file is llmzip's own sources (five files of crates/llmzip/src, about 120 KB): code that
# is in no training data. Run nothing else meanwhile: the speeds are compared inside the run.
set -euo pipefail
runs="${1:-3}"; [ $# -gt 0 ] && shift
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [RUNS [FILES...]] (RUNS is a count, not '$runs')" >&2; exit 2; }
files=()
for f in "$@"; do files+=("$(realpath "$f")"); done
cd "$(dirname "$0")/.."
[ -f data/test/alice29.txt ] || scripts/fetch-data.sh
cargo build --release -q
bin=target/release/llmzip
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
if [ ${#files[@]} = 0 ]; then
  cat crates/llmzip/src/{session,members,stream}.rs crates/llmzip/src/codec/mod.rs \
    crates/llmzip/src/format/mod.rs > "$work/code.rs"
  files=(data/test/alice29.txt "$work/code.rs")
fi
variants=()
for level in 4 5 6 7 8; do variants+=("level-$level=$bin,-$level"); done
if [ -n "${PAQ8PX+set}" ]; then paq="$PAQ8PX"
elif [ -x target/paq8px/paq8px ]; then paq=target/paq8px/paq8px
else paq=""; fi
table=$(PAQ8PX="$paq" scripts/speed-table.sh --runs "$runs" "${variants[@]}" -- "${files[@]}")
section=$(
  echo "<!-- frontier: begin (scripts/frontier.sh writes this section) -->"
  echo "## The default model's frontier"
  echo
  echo "Regenerate with \`scripts/frontier.sh $runs\`; llmzip $(git rev-parse --short HEAD). Levels 4-8 all"
  echo "run \`$("$bin" models | grep -m1 -- '(default)' | sed 's/.*(default): //; s/ with.*//')\`; they differ only in how many rows a block is cut into"
  echo "(docs/format.md): fewer, longer rows cost the GRU fewer cold starts and batch its"
  echo "matrix products less. Both ways, 1 and 2 threads, interleaved, every archive decompressed"
  echo "and compared. \"× xz -9e\" is this row's compression time over xz -9e's on the same file in"
  if [ -n "$paq" ]; then
    echo "the same run, and \"paq8px time ÷ this\" how many times faster than paq8px -9 it is"
    echo "($("$paq" 2>&1 | grep -m1 -o 'paq8px v[0-9]*'), built by \`scripts/paq8px.sh\`). Both yardsticks run on one thread."
  else
    echo "the same run (it runs on one thread; paq8px was not built for this run: \`scripts/paq8px.sh\`)."
  fi
  echo "Such ratios depend less on the machine than KB/s do, but a slowed machine moves them too:"
  echo "compare rows of one run."
  for f in "${files[@]}"; do
    [ "$(basename "$f")" = code.rs ] && [ "$f" = "$work/code.rs" ] &&
      echo "code.rs ($(stat -c %s "$f") bytes) is five of llmzip's own source files, Rust that is in no training data (the corpus holds other Rust)."
  done
  echo
  echo "$table"
  echo "<!-- frontier: end -->"
)
mkdir -p docs/bench/frontier
printf '%s\n' "$section" > docs/bench/frontier/section.md
python3 scripts/replace-section.py frontier docs/benchmarks.md "$section"
echo "wrote the frontier section of docs/benchmarks.md"
