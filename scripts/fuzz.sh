#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS seconds each and exits non-zero if any crashes.
#
#   scripts/fuzz.sh 600            # 10 minutes per target
#   scripts/fuzz.sh 900 tensors    # only the named targets
#
# Needs the nightly toolchain; installs cargo-fuzz from crates.io when it is missing (about a
# minute; `cargo install cargo-fuzz --locked`). Resumable: each target's
# corpus lives in fuzz/corpus/TARGET (not committed) and grows across runs; a fresh machine starts
# from the committed seeds (fuzz/seeds/: real archives of small files) and tests/golden/*.llmz.
# Every run appends a line to fuzz/runs.tsv (committed): date, commit, target, seconds,
# executions, result - the record of how long the decoder has been fuzzed.
# Crashes land in fuzz/artifacts/TARGET/; commit each as a regression test before fixing it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}"
shift
if ! command -v cargo-fuzz >/dev/null; then
  echo "cargo-fuzz is missing: installing it from crates.io (cargo install cargo-fuzz --locked)" >&2
  cargo install cargo-fuzz --locked >&2
fi
targets=(archive_structure decompress_default decompress_fast tensors seekable)
[ $# -gt 0 ] && targets=("$@")
# No sanitizer: llmzip's only unsafe code is SIMD intrinsics behind run-time feature checks, and
# AddressSanitizer would slow the model's kernels down,
# so more inputs get through the decoder. Overflow checks and debug assertions stay on (-a).
build=(cargo +nightly fuzz build --release -s none -a)
commit="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src fuzz/fuzz_targets || echo +changes)"
"${build[@]}" >&2
status=0
for t in "${targets[@]}"; do
  corpus="fuzz/corpus/$t"
  mkdir -p "$corpus" "fuzz/artifacts/$t"
  cp -n fuzz/seeds/* "$corpus"/ 2>/dev/null || true
  cp -n tests/golden/*.llmz "$corpus"/ 2>/dev/null || true
  log="$(mktemp)"
  set +e
  cargo +nightly fuzz run --release -s none -a "$t" "$corpus" -- \
    -max_total_time="$seconds" -max_len=8192 -timeout=60 -rss_limit_mb=3072 \
    -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 2>&1 | tee "$log" | grep -E "^#[0-9]+[[:space:]]+(DONE|INITED)|ERROR|panicked|SUMMARY" >&2
  rc=${PIPESTATUS[0]}
  set -e
  execs=$(grep -E "^stat::number_of_executed_units" "$log" | awk '{print $2}' | tail -n 1)
  result=$([ "$rc" = 0 ] && echo clean || echo "crash (exit $rc)")
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%MZ)" "$commit" \
    "$t" "$seconds" "${execs:-?}" "$result" >> fuzz/runs.tsv
  rm -f "$log"
  [ "$rc" = 0 ] || status=1
done
exit $status
